//! `--lora FILE[:WEIGHT]` end to end: the recipe records each LoRA by content and strengths,
//! replay finds it again by name and hash, and a LoRA that does not fit the model (or is gone)
//! is refused naming the file before anything is written. Parity with diffusers is in parity.rs.

use crate::common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn kohya_lora() -> PathBuf {
    shared("fixtures/wild/loras/tiny-sd1-lora.safetensors")
}

#[test]
fn generate_with_lora_records_it_and_replays_identically() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let lora = h.join("my-lora.safetensors");
    std::fs::copy(kohya_lora(), &lora).unwrap();
    let src = h.join("src.png");
    let mut arg = lora.clone().into_os_string();
    arg.push(":0.8");
    ok(tiny_generate(h, "a red apple", 42, &src)
        .arg("--lora")
        .arg(&arg));
    let plain = h.join("plain.png");
    ok(&mut tiny_generate(h, "a red apple", 42, &plain));
    assert_ne!(pixels(&src).as_raw(), pixels(&plain).as_raw());

    let r = recipe_json(h, &src);
    let loras = r["model"]["loras"].as_array().expect("a loras list");
    assert_eq!(loras.len(), 1);
    let l = &loras[0];
    let name = l["name"].as_str().unwrap();
    assert!(name.ends_with("my-lora.safetensors"), "{name}");
    assert_eq!(l["sha256"], sha256(&lora));
    assert_eq!(l["unet"], 0.8);
    assert_eq!(l["text_encoder"], 0.8);
    // Without a LoRA the recipe has no loras key at all.
    assert!(recipe_json(h, &plain)["model"].get("loras").is_none());
    let params = seedling::metadata::read_png(&plain).unwrap().parameters;
    assert!(!params.unwrap().contains("Lora hashes"));
    // A1111's parameters name it by stem and its addnet short hash.
    let params = seedling::metadata::read_png(&src)
        .unwrap()
        .parameters
        .unwrap();
    let hash = l["a1111_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 12);
    assert!(
        params.contains(&format!("Lora hashes: \"my-lora: {hash}\"")),
        "{params}"
    );

    let o = ok(seedling(h).args(["replay", "--verify"]).arg(&src));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));

    // --lora on replay replaces the set: the same file split 0.8/0.8 is the same image.
    let mut split = lora.clone().into_os_string();
    split.push(":0.8:0.8");
    let o = ok(seedling(h)
        .args(["replay", "--verify", "--lora"])
        .arg(&split)
        .arg(&src));
    assert_eq!(stdout(&o).trim(), "identical", "{}", stderr(&o));
    // And another strength is other weights, so another image, named as the cause.
    let mut other = lora.clone().into_os_string();
    other.push(":0.3");
    let e = fails(
        seedling(h)
            .args(["replay", "--verify", "--lora"])
            .arg(&other)
            .arg(&src),
    );
    assert!(
        e.contains("at 0.8/0.8 recorded") && e.contains("at 0.3/0.3 here"),
        "{e}"
    );
    assert!(!h.join("outputs").exists());
}

#[test]
fn replay_refuses_a_missing_lora_naming_it_and_its_hash() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let lora = h.join("gone.safetensors");
    std::fs::copy(kohya_lora(), &lora).unwrap();
    let src = h.join("src.png");
    ok(tiny_generate(h, "a red apple", 42, &src)
        .arg("--lora")
        .arg(&lora));
    let sha = sha256(&lora);
    std::fs::remove_file(&lora).unwrap();
    let out = h.join("again.png");
    let e = fails(seedling(h).args(["replay", "-o"]).arg(&out).arg(&src));
    assert!(e.contains("gone.safetensors"), "{e}");
    assert!(e.contains(&sha[..10]), "{e}");
    assert!(e.contains("--lora"), "{e}");
    assert!(!out.exists());
    // Another file under its name is refused too.
    std::fs::write(&lora, b"not the weights").unwrap();
    let e = fails(seedling(h).args(["replay", "-o"]).arg(&out).arg(&src));
    assert!(
        e.contains("gone.safetensors") && e.contains(&sha[..10]),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn a_lora_of_another_family_is_refused_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // SDXL's LDM-style module name: nothing in tiny-sd is called that.
    let lora = h.join("xl-style.safetensors");
    let t = |shape: &[usize]| {
        candle_core::Tensor::zeros(shape, candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap()
    };
    let tensors = HashMap::from([
        (
            "lora_unet_input_blocks_4_1_proj_in.lora_down.weight".to_string(),
            t(&[4, 32]),
        ),
        (
            "lora_unet_input_blocks_4_1_proj_in.lora_up.weight".to_string(),
            t(&[32, 4]),
        ),
    ]);
    candle_core::safetensors::save(&tensors, &lora).unwrap();
    let out = h.join("out.png");
    let e = fails(
        tiny_generate(h, "a red apple", 42, &out)
            .arg("--lora")
            .arg(&lora),
    );
    assert!(e.contains("xl-style.safetensors"), "{e}");
    assert!(e.contains("another model family"), "{e}");
    assert!(!out.exists());
    assert!(!h.join("outputs").exists());
}

/// kohya names SDXL's UNet layers by the LDM model's modules (`lora_unet_input_blocks_4_1_…`):
/// the same LoRA under LDM and under diffusers names is the same image on tiny-sdxl.
#[test]
fn sdxl_kohya_ldm_names_are_the_diffusers_layers() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let unet = shared("fixtures/tiny-sdxl/unet/diffusion_pytorch_model.safetensors");
    let weights = candle_core::safetensors::load(&unet, &candle_core::Device::Cpu).unwrap();
    // (diffusers module, LDM module) for the attention projections of tiny-sdxl's blocks
    // (2 layers a block: down_blocks.1.attentions.k is input_blocks.4+k, up_blocks.0 is
    // output_blocks.k, the middle block's is middle_block.1).
    let modules = [
        ("down_blocks.1.attentions.0", "input_blocks_4_1"),
        ("down_blocks.1.attentions.1", "input_blocks_5_1"),
        ("mid_block.attentions.0", "middle_block_1"),
        ("up_blocks.0.attentions.2", "output_blocks_2_1"),
    ];
    let (mut diffusers, mut ldm) = (HashMap::new(), HashMap::new());
    for (d, l) in modules {
        for layer in ["attn1.to_q", "attn2.to_k", "attn1.to_out.0"] {
            let name = format!("{d}.transformer_blocks.0.{layer}.weight");
            let w = weights.get(&name).unwrap_or_else(|| panic!("no {name}"));
            let (o, i) = w.dims2().unwrap();
            let cpu = candle_core::Device::Cpu;
            let down = candle_core::Tensor::randn(0f32, 0.5, (4, i), &cpu).unwrap();
            let up = candle_core::Tensor::randn(0f32, 0.5, (o, 4), &cpu).unwrap();
            let alpha = candle_core::Tensor::new(4f32, &cpu).unwrap();
            let layer = layer.replace('.', "_");
            for (map, module) in [(&mut diffusers, d.replace('.', "_")), (&mut ldm, l.into())] {
                let stem = format!("lora_unet_{module}_transformer_blocks_0_{layer}");
                map.insert(format!("{stem}.lora_down.weight"), down.clone());
                map.insert(format!("{stem}.lora_up.weight"), up.clone());
                map.insert(format!("{stem}.alpha"), alpha.clone());
            }
        }
    }
    let (d_file, l_file) = (
        h.join("xl-diffusers.safetensors"),
        h.join("xl-ldm.safetensors"),
    );
    candle_core::safetensors::save(&diffusers, &d_file).unwrap();
    candle_core::safetensors::save(&ldm, &l_file).unwrap();
    let xl = |out: &str, lora: Option<&Path>| {
        let out = h.join(out);
        let mut cmd = seedling(h);
        cmd.args(["generate", "a red apple", "--model"])
            .arg(shared("fixtures/tiny-sdxl"))
            .args([
                "--steps", "3", "--width", "64", "--height", "64", "--seed", "4", "-o",
            ])
            .arg(&out);
        if let Some(l) = lora {
            cmd.arg("--lora").arg(l);
        }
        ok(&mut cmd);
        pixels(&out).into_raw()
    };
    let by_ldm = xl("ldm.png", Some(&l_file));
    assert_eq!(by_ldm, xl("diffusers.png", Some(&d_file)));
    assert_ne!(by_ldm, xl("plain.png", None));
}
