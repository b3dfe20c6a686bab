//! Many images from one command: image i of `generate --count N` is seed + i and does not
//! depend on N or on `--batch-size`; variation seeds reach both ends exactly.

use crate::common::*;
use std::path::Path;

/// (seed, sha256 of the pixels) of every PNG in `dir`, ordered by seed.
fn images_by_seed(dir: &Path) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let seed = name.split('-').nth(1).unwrap().parse().unwrap();
            (seed, seedling::provenance::sha256_hex(pixels(&p).as_raw()))
        })
        .collect();
    out.sort_by_key(|(s, _)| *s);
    out
}

fn generate_count(
    h: &Path,
    dir: &str,
    sampler: &str,
    count: &str,
    batch: &str,
) -> Vec<(u64, String)> {
    ok(seedling(h).args([
        "generate",
        "a red apple",
        "--model",
        &tiny_sd(),
        "--steps",
        "3",
        "--seed",
        "100",
        "--sampler",
        sampler,
        "--count",
        count,
        "--batch-size",
        batch,
        "--out-dir",
        dir,
    ]));
    images_by_seed(&h.join(dir))
}

#[test]
fn an_image_does_not_depend_on_count_or_batch_size() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for sampler in ["euler_a", "ddim"] {
        let one_by_one = generate_count(h, &format!("{sampler}-a"), sampler, "3", "1");
        let batched = generate_count(h, &format!("{sampler}-b"), sampler, "3", "2");
        let longer = generate_count(h, &format!("{sampler}-c"), sampler, "4", "4");
        assert_eq!(
            one_by_one.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![100, 101, 102]
        );
        assert_eq!(
            one_by_one, batched,
            "{sampler}: batch size changed an image"
        );
        assert_eq!(
            one_by_one[..],
            longer[..3],
            "{sampler}: count changed an image"
        );
        // And each equals a single generate of that seed.
        let single = h.join(format!("{sampler}-single.png"));
        ok(seedling(h)
            .args([
                "generate",
                "a red apple",
                "--model",
                &tiny_sd(),
                "--steps",
                "3",
                "--seed",
                "101",
            ])
            .args(["--sampler", sampler, "-o"])
            .arg(&single));
        assert_eq!(
            seedling::provenance::sha256_hex(pixels(&single).as_raw()),
            one_by_one[1].1
        );
    }
}

#[test]
fn count_with_an_output_file_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let e = fails(
        tiny_generate(home.path(), "a cat", 1, &home.path().join("x.png")).args(["--count", "2"]),
    );
    assert!(e.contains("use --out-dir DIR instead of -o"), "{e}");
}

#[test]
fn variation_strength_zero_is_the_seed_and_one_is_the_variation_seed() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    for sampler in ["euler_a", "ddim", "euler"] {
        let run = |name: &str, extra: &[&str]| {
            let out = h.join(format!("{sampler}-{name}.png"));
            let mut cmd = tiny_generate(h, "a red apple", 7, &out);
            cmd.args(["--sampler", sampler, "--eta", "1"]).args(extra);
            ok(&mut cmd);
            pixels(&out).into_raw()
        };
        let base = run("base", &[]);
        let other = {
            let out = h.join(format!("{sampler}-other.png"));
            ok(tiny_generate(h, "a red apple", 99, &out).args([
                "--sampler",
                sampler,
                "--eta",
                "1",
            ]));
            pixels(&out).into_raw()
        };
        let v0 = run(
            "v0",
            &["--variation-seed", "99", "--variation-strength", "0"],
        );
        let v1 = run(
            "v1",
            &["--variation-seed", "99", "--variation-strength", "1"],
        );
        let half = run(
            "v05",
            &["--variation-seed", "99", "--variation-strength", "0.5"],
        );
        assert_eq!(v0, base, "{sampler}: strength 0 must be the base seed");
        assert_eq!(
            v1, other,
            "{sampler}: strength 1 must be the variation seed"
        );
        assert_ne!(half, base, "{sampler}");
        assert_ne!(half, other, "{sampler}");
    }
}

#[test]
fn variation_is_recorded_and_replays() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("v.png");
    ok(tiny_generate(h, "a red apple", 7, &out).args([
        "--variation-seed",
        "99",
        "--variation-strength",
        "0.3",
    ]));
    let json = stdout(&ok(seedling(h).args(["inspect", "--json"]).arg(&out)));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["recipe"]["variation_seed"], 99);
    assert_eq!(v["recipe"]["variation_strength"], 0.3);
    assert_eq!(
        stdout(&ok(seedling(h).args(["replay", "--verify"]).arg(&out))).trim(),
        "identical"
    );
    let e = fails(
        tiny_generate(h, "a red apple", 7, &h.join("w.png")).args(["--variation-strength", "0.3"]),
    );
    assert!(
        e.contains("a variation strength needs a variation seed"),
        "{e}"
    );
}
