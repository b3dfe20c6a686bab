//! The mapping against the fixtures of ../shared/fixtures/wild/checkpoints, each made from a
//! diffusers folder seedling already loads: every tensor of the folder must come from exactly
//! one key of the file, with the folder's shape, and every key of the file must be used or
//! known to be unused.

use super::keys::{self, KeyMap, Layout, Transform};
use super::shapes;
use super::*;
use crate::models::{FolderConfigs, Location, ModelSpec};
use std::collections::{BTreeMap, BTreeSet};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(rel)
}

fn folder_configs(folder: &str) -> (Location, FolderConfigs) {
    let location = Location::open(&ModelSpec::Local(fixture(folder))).unwrap();
    let c = FolderConfigs::read(&location).unwrap();
    (location, c)
}

/// name → shape of a diffusers weight file, without transformers 4's `text_model.`.
fn folder_tensors(path: &Path) -> BTreeMap<String, Vec<usize>> {
    let header = Header::read(path).unwrap();
    header
        .tensors
        .into_iter()
        .map(|(k, t)| {
            (
                k.strip_prefix("text_model.").unwrap_or(&k).to_string(),
                t.shape,
            )
        })
        .collect()
}

/// What the map serves: name → shape after the transform.
fn served(map: &KeyMap, header: &Header) -> BTreeMap<String, Vec<usize>> {
    map.iter()
        .map(|(name, s)| {
            let mut shape = header.tensors[&s.key].shape.clone();
            match s.transform {
                Transform::Copy => {}
                Transform::ConvAsLinear => shape.truncate(2),
                Transform::Chunk { of, .. } => shape[0] /= of,
                Transform::Transpose => shape.reverse(),
            }
            (name.clone(), shape)
        })
        .collect()
}

fn check(file: &str, folder: &str, family: Family, unused: &[&str]) {
    let checkpoint = Checkpoint::open(&fixture(&format!("wild/checkpoints/{file}"))).unwrap();
    assert_eq!(checkpoint.family, family, "{file}");
    let (_, c) = folder_configs(folder);
    let layout = Layout {
        family,
        unet_layers_per_block: c.unet.spec().unwrap().layers_per_block,
        text_layers: c.text.num_hidden_layers,
        text_2_layers: c.text_2.as_ref().map_or(0, |t| t.num_hidden_layers),
    };
    let header = &checkpoint.header;
    let mapping = keys::map(header, &layout, &checkpoint.path).unwrap();
    let dir = fixture(folder);
    let mut parts = vec![
        (&mapping.unet, "unet/diffusion_pytorch_model.safetensors"),
        (&mapping.vae, "vae/diffusion_pytorch_model.safetensors"),
        (&mapping.text_encoder, "text_encoder/model.safetensors"),
    ];
    if family == Family::Sdxl {
        parts.push((&mapping.text_encoder_2, "text_encoder_2/model.safetensors"));
    } else {
        assert!(mapping.text_encoder_2.is_empty());
    }
    let mut used = BTreeSet::new();
    for (map, rel) in parts {
        assert_eq!(
            served(map, header),
            folder_tensors(&dir.join(rel)),
            "{file}: {rel}"
        );
        used.extend(map.values().map(|s| s.key.clone()));
    }
    // Each key is used or unused, never both; together they are the whole file.
    let unused_keys: BTreeSet<String> = mapping.unused.iter().cloned().collect();
    assert!(used.is_disjoint(&unused_keys), "{file}");
    assert_eq!(
        used.len() + unused_keys.len(),
        header.tensors.len(),
        "{file}"
    );
    let expected: BTreeSet<String> = unused.iter().map(|s| s.to_string()).collect();
    let not_buffers: BTreeSet<String> = unused_keys
        .into_iter()
        .filter(|k| !k.contains("cumprod") && !k.starts_with("posterior_") && k != "betas")
        .collect();
    assert_eq!(not_buffers, expected, "{file}");
}

#[test]
fn sd1_maps_every_tensor_once() {
    let pos = ["cond_stage_model.transformer.text_model.embeddings.position_ids"];
    check("tiny-sd1.safetensors", "tiny-sd", Family::Sd1, &pos);
    check("tiny-sd1-fp16.safetensors", "tiny-sd", Family::Sd1, &pos);
}

#[test]
fn sd2_maps_every_tensor_once_and_leaves_the_last_block() {
    let mut unused: Vec<String> = ["logit_scale", "text_projection"]
        .iter()
        .map(|k| format!("cond_stage_model.model.{k}"))
        .collect();
    for p in [
        "attn.in_proj_bias",
        "attn.in_proj_weight",
        "attn.out_proj.bias",
        "attn.out_proj.weight",
        "ln_1.bias",
        "ln_1.weight",
        "ln_2.bias",
        "ln_2.weight",
        "mlp.c_fc.bias",
        "mlp.c_fc.weight",
        "mlp.c_proj.bias",
        "mlp.c_proj.weight",
    ] {
        unused.push(format!(
            "cond_stage_model.model.transformer.resblocks.4.{p}"
        ));
    }
    let unused: Vec<&str> = unused.iter().map(String::as_str).collect();
    check("tiny-sd2v.safetensors", "tiny-sd2v", Family::Sd2, &unused);
}

#[test]
fn sdxl_maps_every_tensor_once() {
    let pos = ["conditioner.embedders.0.transformer.text_model.embeddings.position_ids"];
    check("tiny-sdxl.safetensors", "tiny-sdxl", Family::Sdxl, &pos);
}

#[test]
fn the_shapes_give_the_reference_config_the_files_sizes() {
    // The SD 1.5 reference config is full size; the tiny file's shapes make it the folder's.
    let checkpoint = Checkpoint::open(&fixture("wild/checkpoints/tiny-sd1.safetensors")).unwrap();
    let (_, folder) = folder_configs("tiny-sd");
    let mut r = crate::models::reference::configs(Family::Sd1);
    let layout = Layout {
        family: Family::Sd1,
        unet_layers_per_block: 2,
        text_layers: 4,
        text_2_layers: 0,
    };
    let mapping = keys::map(&checkpoint.header, &layout, &checkpoint.path).unwrap();
    let header = &checkpoint.header;
    // 4 levels in the reference config, 2 in the file: refused, naming the fix.
    let err = shapes::unet(&mut r.unet, &mapping, header, &checkpoint.path).unwrap_err();
    assert!(
        err.to_string()
            .contains("its UNet has 2 levels, the config describes 4"),
        "{err}"
    );
    let mut unet = folder.unet.clone();
    unet.block_out_channels = vec![1, 1];
    unet.in_channels = 9;
    shapes::unet(&mut unet, &mapping, header, &checkpoint.path).unwrap();
    assert_eq!(unet.block_out_channels, folder.unet.block_out_channels);
    assert_eq!(unet.in_channels, 4);
    shapes::text(&mut r.text_encoder, &mapping.text_encoder, header);
    assert_eq!(r.text_encoder.hidden_size, folder.text.hidden_size);
    assert_eq!(
        r.text_encoder.intermediate_size,
        folder.text.intermediate_size
    );
}

#[test]
fn pickles_are_refused_with_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.ckpt");
    std::fs::write(&path, b"PK\x03\x04rest of a zip").unwrap();
    let err = Checkpoint::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("is a PyTorch pickle checkpoint; seedling never runs pickle code"),
        "{err}"
    );
    assert!(
        err.contains("st.save_file(sd.get('state_dict', sd), 'model.safetensors')"),
        "{err}"
    );
    // By content too, whatever the name says.
    let renamed = dir.path().join("model.safetensors");
    std::fs::write(&renamed, b"\x80\x02}q\x00").unwrap();
    assert!(Checkpoint::open(&renamed).is_err());
}
