use super::*;

fn wild(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/wild")
        .join(rel)
}

/// Links (or, without symlinks, copies) a wild fixture to `dest`.
fn place(rel: &str, dest: &Path) {
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(wild(rel), dest).unwrap();
    #[cfg(not(unix))]
    std::fs::copy(wild(rel), dest).unwrap();
}

/// A ComfyUI `models/` folder with two checkpoints (one in a subfolder), both LoRAs, the
/// embedding and a pickle.
fn comfy(root: &Path) {
    place(
        "checkpoints/tiny-sd1.safetensors",
        &root.join("checkpoints/tiny-sd1.safetensors"),
    );
    place(
        "checkpoints/tiny-sdxl.safetensors",
        &root.join("checkpoints/xl/tiny-sdxl.safetensors"),
    );
    place(
        "loras/tiny-sd1-lora.safetensors",
        &root.join("loras/tiny-sd1-lora.safetensors"),
    );
    place(
        "loras/tiny-sd1-lora-diffusers.safetensors",
        &root.join("loras/tiny-sd1-lora-diffusers.safetensors"),
    );
    place(
        "embeddings/tinystyle.safetensors",
        &root.join("embeddings/tinystyle.safetensors"),
    );
    std::fs::write(root.join("checkpoints/old.ckpt"), b"PK not really").unwrap();
}

fn scan(roots: &[PathBuf], cache: &mut HashCache) -> ModelsIndex {
    ModelsIndex::scan(roots, cache, &mut |_, _| {}).unwrap()
}

#[test]
fn indexes_a_comfyui_folder_with_a1111s_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    comfy(&root);
    let mut cache = HashCache::open(&tmp.path().join("hashes.json"));
    let mut told = Vec::new();
    let index = ModelsIndex::scan(std::slice::from_ref(&root), &mut cache, &mut |p, n| {
        told.push((p.to_path_buf(), n))
    })
    .unwrap();
    assert_eq!(index.dirs[0].layout, Layout::ComfyUi);
    let rows: Vec<(Kind, &str, Option<&str>, &str)> = index
        .files
        .iter()
        .map(|f| {
            (
                f.kind,
                f.name.as_str(),
                f.description.family.as_deref(),
                f.hashes.autov2(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (Kind::Checkpoint, "old", None, rows[0].3),
            (Kind::Checkpoint, "tiny-sd1", Some("sd1"), "79e01fec06"),
            (Kind::Checkpoint, "xl/tiny-sdxl", Some("sdxl"), "17bbf87075"),
            (Kind::Lora, "tiny-sd1-lora", Some("sd1"), "a0d2d2e011"),
            (
                Kind::Lora,
                "tiny-sd1-lora-diffusers",
                Some("unknown"),
                "68a89fd1ab"
            ),
            (Kind::Embedding, "tinystyle", Some("unknown"), "77c1085bc1"),
        ]
    );
    assert_eq!(index.files[0].note.as_deref(), Some(PICKLE_NOTE));
    assert_eq!(index.files[0].format, "pickle");
    assert_eq!(index.files[1].hashes.autov1, "6a243d3f");
    assert_eq!(index.files[1].bytes, 15643996);
    assert_eq!(told.len(), 6, "every file was hashed once");
    assert_eq!(cache.hashed, 6);
    cache.save().unwrap();

    // The second listing reads headers, not whole files.
    let mut cache = HashCache::open(&tmp.path().join("hashes.json"));
    let again = ModelsIndex::scan(std::slice::from_ref(&root), &mut cache, &mut |p, _| {
        panic!("{} hashed again", p.display())
    })
    .unwrap();
    assert_eq!(cache.hashed, 0);
    assert_eq!(again, index);
}

#[test]
fn the_loras_and_embeddings_hashes() {
    // Computed here once and pinned: sha256 of the fixtures (`sha256sum`), and the LoRA's
    // addnet hash (sha256 of the bytes after the header).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    comfy(&root);
    let mut cache = HashCache::open(&tmp.path().join("hashes.json"));
    let index = scan(&[root], &mut cache);
    let by_name = |k, n| index.find_by_name(k, n)[0].hashes.clone();
    let lora = by_name(Kind::Lora, "tiny-sd1-lora");
    assert_eq!(
        lora.sha256,
        crate::models::file_hash::hash_file(&wild("loras/tiny-sd1-lora.safetensors"), None)
            .unwrap()
            .sha256
    );
    let header = safetensors_header::read_header(&wild("loras/tiny-sd1-lora.safetensors")).unwrap();
    let bytes = std::fs::read(wild("loras/tiny-sd1-lora.safetensors")).unwrap();
    assert_eq!(
        lora.addnet.as_deref().unwrap(),
        crate::provenance::sha256_hex(&bytes[header.data_offset as usize..])
    );
    let emb = by_name(Kind::Embedding, "tinystyle");
    let bytes = std::fs::read(wild("embeddings/tinystyle.safetensors")).unwrap();
    assert_eq!(emb.sha256, crate::provenance::sha256_hex(&bytes));
    assert_eq!(
        emb.autov1, "e3b0c442",
        "shorter than 1 MiB: the empty window"
    );
}

#[test]
fn finds_files_by_hash_then_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("models");
    comfy(&root);
    let mut cache = HashCache::open(&tmp.path().join("hashes.json"));
    let index = scan(std::slice::from_ref(&root), &mut cache);
    let found = |k, h: &str| index.find_by_hash(k, h).map(|f| f.name.as_str());

    assert_eq!(found(Kind::Checkpoint, "79e01fec06"), Some("tiny-sd1"));
    assert_eq!(
        found(Kind::Checkpoint, " 17BBF87075 "),
        Some("xl/tiny-sdxl")
    );
    assert_eq!(
        found(Kind::Checkpoint, "6a243d3f"),
        Some("tiny-sd1"),
        "AutoV1"
    );
    let full = "79e01fec06486921bb36318d6d161682c8a4e2b7abf1417ca7b91ea3fea8a863";
    assert_eq!(found(Kind::Checkpoint, full), Some("tiny-sd1"));
    // The right hash for the wrong kind, too short, or not hex: nothing.
    assert_eq!(found(Kind::Lora, "79e01fec06"), None);
    assert_eq!(found(Kind::Checkpoint, "79e01f"), None);
    assert_eq!(found(Kind::Checkpoint, "79e01fec0g"), None);
    // A LoRA by A1111's 12-digit LoRA hash and by its sha256.
    let lora = &index.find_by_name(Kind::Lora, "tiny-sd1-lora")[0];
    let a1111 = lora.hashes.a1111_lora().unwrap().to_string();
    assert_eq!(found(Kind::Lora, &a1111), Some("tiny-sd1-lora"));
    assert_eq!(
        found(Kind::Lora, lora.hashes.autov2()),
        Some("tiny-sd1-lora")
    );

    let names = |k, n: &str| -> Vec<String> {
        index
            .find_by_name(k, n)
            .iter()
            .map(|f| f.name.clone())
            .collect()
    };
    assert_eq!(names(Kind::Checkpoint, "TINY-SDXL"), ["xl/tiny-sdxl"]);
    assert_eq!(
        names(Kind::Checkpoint, "xl/tiny-sdxl.safetensors"),
        ["xl/tiny-sdxl"]
    );
    assert_eq!(names(Kind::Lora, "tiny-sd1-lora"), ["tiny-sd1-lora"]);
    assert!(names(Kind::Embedding, "tiny-sd1").is_empty());

    // Two folders holding a file of the same name: both come back, in folder order.
    let a1111 = tmp.path().join("webui");
    place(
        "checkpoints/tiny-sd1-fp16.safetensors",
        &a1111.join("models/Stable-diffusion/tiny-sd1.safetensors"),
    );
    let both = scan(&[a1111.clone(), root], &mut cache);
    assert_eq!(both.dirs[0].layout, Layout::A1111);
    let same: Vec<&Path> = both
        .find_by_name(Kind::Checkpoint, "tiny-sd1")
        .iter()
        .map(|f| f.path.as_path())
        .collect();
    assert_eq!(same.len(), 2);
    assert!(same[0].starts_with(&a1111));
    assert_eq!(
        both.find_by_hash(Kind::Checkpoint, "c11b273173")
            .unwrap()
            .path,
        a1111.join("models/Stable-diffusion/tiny-sd1.safetensors")
    );
}

#[test]
fn a_broken_safetensors_file_is_listed_with_why() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("Lora")).unwrap();
    std::fs::write(
        root.join("Lora/cut.safetensors"),
        [200, 0, 0, 0, 0, 0, 0, 0, b'{'],
    )
    .unwrap();
    let mut cache = HashCache::open(&root.join("hashes.json"));
    let index = scan(&[root.to_path_buf()], &mut cache);
    let f = &index.files[0];
    assert_eq!(
        f.note.as_deref(),
        Some(
            "not a readable safetensors file: its header claims 200 bytes but the file has \
             only 1 after the length (truncated?)"
        )
    );
    assert_eq!(f.description, Description::default());
    assert_eq!(f.hashes.addnet, None);
}

#[test]
fn the_env_var_is_a_path_list() {
    let list = std::env::join_paths(["/a/b", "", "/c"]).unwrap();
    assert_eq!(
        parse_dirs(&list),
        [PathBuf::from("/a/b"), PathBuf::from("/c")]
    );
    assert!(parse_dirs(std::ffi::OsStr::new("")).is_empty());
}
