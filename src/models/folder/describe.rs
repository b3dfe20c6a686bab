//! What a model file is, from its safetensors header alone: the family a checkpoint, LoRA or
//! embedding is for, its main dtype, a LoRA's key layout and rank, an embedding's vectors.

use super::layout::Kind;
use crate::models::lora::{self, Detected, Layout};
use crate::models::safetensors_header::Header;
use serde::Serialize;

/// A family name as `Family::name` spells it, or "unknown".
pub const UNKNOWN: &str = "unknown";

/// What the header says about a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Description {
    /// "sd1", "sd2", "sdxl" or "unknown"; `None` for a VAE (the SD and SDXL VAEs have the same
    /// layout; their weights differ).
    pub family: Option<String>,
    /// The floating dtype holding most elements ("F32", "F16", "BF16").
    pub dtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoraInfo {
    /// "kohya" (`lora_down`/`lora_up`), "diffusers" (PEFT's `lora_A`/`lora_B`), "lycoris"
    /// (LoHa/LoKr factors and LyCORIS's other layouts), "unsupported" (a layout seedling does
    /// not apply, such as older diffusers' `lora.down`/`lora.up`) or "unknown", as loading
    /// the file detects it.
    pub format: String,
    /// The rank of the first down projection.
    pub rank: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmbeddingInfo {
    /// Vectors one use of the embedding's name stands for.
    pub vectors: u64,
    /// Their width per text encoder (SDXL: CLIP-L's then CLIP-G's).
    pub widths: Vec<u64>,
}

pub fn describe(kind: Kind, header: &Header) -> Description {
    let dtype = header.main_float_dtype().map(str::to_string);
    match kind {
        Kind::Checkpoint => Description {
            family: Some(checkpoint_family(header).into()),
            dtype,
            ..Description::default()
        },
        Kind::Lora => Description {
            family: Some(lora_family(header).into()),
            dtype,
            lora: Some(lora_info(header)),
            ..Description::default()
        },
        Kind::Embedding => {
            let (family, embedding) = embedding_info(header);
            Description {
                family: Some(family.into()),
                dtype,
                embedding,
                ..Description::default()
            }
        }
        Kind::Vae => Description {
            dtype,
            ..Description::default()
        },
    }
}

/// The family of an original-layout (LDM/SGM) checkpoint, decided as loading decides it
/// (`single_file::detect`, by key prefixes); anything else (a diffusers UNet or VAE saved
/// alone) is "unknown".
fn checkpoint_family(h: &Header) -> &'static str {
    let keys = h.tensors.iter().map(|t| t.name.as_str());
    crate::models::single_file::detect::family_of_keys(keys).map_or(UNKNOWN, |f| f.name())
}

/// kohya's `ss_base_model_version` ("sd_v1", "sd_v2_768_v", "sdxl_base_v1-0", …) or `ss_v2`
/// (as A1111's `network.py` `detect_version` reads them), else a second text encoder's keys
/// (SDXL's `lora_te2_` / `text_encoder_2.`).
fn lora_family(h: &Header) -> &'static str {
    let base = h.metadata.get("ss_base_model_version").map(String::as_str);
    match base {
        Some(b) if b.starts_with("sdxl") => return "sdxl",
        Some(b) if b.starts_with("sd_v2") => return "sd2",
        Some(b) if b.starts_with("sd_v1") => return "sd1",
        _ => {}
    }
    if h.metadata.get("ss_v2").is_some_and(|v| v == "True") {
        return "sd2";
    }
    if h.has_prefix("lora_te2_") || h.has_prefix("text_encoder_2.") {
        return "sdxl";
    }
    UNKNOWN
}

/// The layout as loading the file detects it (`models::lora::detect`), and the rank of its
/// first layer.
fn lora_info(h: &Header) -> LoraInfo {
    let rank_of = |suffix: &str| {
        h.tensors
            .iter()
            .find(|t| t.name.ends_with(suffix))
            .and_then(|t| t.shape.first().copied())
    };
    let detected = lora::detect(h.tensors.iter().map(|t| t.name.as_str()));
    let (format, rank) = match &detected {
        Detected::Plain(Layout::Kohya) => ("kohya", rank_of(".lora_down.weight")),
        Detected::Plain(Layout::Peft) => ("diffusers", rank_of(".lora_A.weight")),
        d if d.is_lycoris() => ("lycoris", None),
        Detected::Refused { .. } => ("unsupported", None),
        Detected::NotALora => (UNKNOWN, None),
    };
    LoraInfo {
        format: format.into(),
        rank,
    }
}

/// The vectors of a textual-inversion file: SDXL's `clip_l` + `clip_g`, A1111's `emb_params`
/// or `string_to_param.*`, or a diffusers concept's single tensor. The family follows from the
/// width: 768 is CLIP ViT-L (SD 1.x), 1024 OpenCLIP ViT-H (SD 2.x).
fn embedding_info(h: &Header) -> (&'static str, Option<EmbeddingInfo>) {
    let rows = |name: &str| h.tensor(name).map(|t| vectors_and_width(&t.shape));
    if let (Some((n, l)), Some((_, g))) = (rows("clip_l"), rows("clip_g")) {
        let info = EmbeddingInfo {
            vectors: n,
            widths: vec![l, g],
        };
        return ("sdxl", Some(info));
    }
    let single = rows("emb_params")
        .or_else(|| {
            let t = h
                .tensors
                .iter()
                .find(|t| t.name.starts_with("string_to_param."));
            t.map(|t| vectors_and_width(&t.shape))
        })
        .or_else(|| match &h.tensors[..] {
            [only] => Some(vectors_and_width(&only.shape)),
            _ => None,
        });
    let Some((vectors, width)) = single else {
        return (UNKNOWN, None);
    };
    let family = match width {
        768 => "sd1",
        1024 => "sd2",
        _ => UNKNOWN,
    };
    let widths = vec![width];
    (family, Some(EmbeddingInfo { vectors, widths }))
}

/// `[n, width]` or a single `[width]` vector (diffusers' concept files).
fn vectors_and_width(shape: &[u64]) -> (u64, u64) {
    match shape {
        [width] => (1, *width),
        [.., n, width] => (*n, *width),
        [] => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::safetensors_header::{read_header, TensorInfo};
    use std::path::PathBuf;

    fn wild(rel: &str) -> Header {
        read_header(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/fixtures/wild")
                .join(rel),
        )
        .unwrap()
    }

    fn header(tensors: &[(&str, &[u64])], metadata: &[(&str, &str)]) -> Header {
        Header {
            tensors: tensors
                .iter()
                .map(|(n, s)| TensorInfo {
                    name: n.to_string(),
                    dtype: "F16".into(),
                    shape: s.to_vec(),
                    data_offsets: [0, 0],
                })
                .collect(),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data_offset: 8,
        }
    }

    #[test]
    fn checkpoints_family_and_dtype() {
        let cases = [
            ("tiny-sd1.safetensors", "sd1", "F32"),
            ("tiny-sd1-fp16.safetensors", "sd1", "F16"),
            ("tiny-sd2v.safetensors", "sd2", "F32"),
            ("tiny-sdxl.safetensors", "sdxl", "F32"),
        ];
        for (file, family, dtype) in cases {
            let d = describe(Kind::Checkpoint, &wild(&format!("checkpoints/{file}")));
            assert_eq!(d.family.as_deref(), Some(family), "{file}");
            assert_eq!(d.dtype.as_deref(), Some(dtype), "{file}");
        }
        // A diffusers UNet saved alone.
        let unet = header(
            &[("down_blocks.0.resnets.0.conv1.weight", &[4, 4, 3, 3])],
            &[],
        );
        assert_eq!(describe(Kind::Checkpoint, &unet).family.unwrap(), "unknown");
    }

    #[test]
    fn loras_layout_rank_and_base() {
        let kohya = describe(Kind::Lora, &wild("loras/tiny-sd1-lora.safetensors"));
        assert_eq!(kohya.family.as_deref(), Some("sd1"));
        assert_eq!(kohya.dtype.as_deref(), Some("F16"));
        let info = kohya.lora.unwrap();
        assert_eq!((info.format.as_str(), info.rank), ("kohya", Some(4)));
        let diffusers = describe(
            Kind::Lora,
            &wild("loras/tiny-sd1-lora-diffusers.safetensors"),
        );
        assert_eq!(diffusers.family.as_deref(), Some("unknown"));
        assert_eq!(diffusers.dtype.as_deref(), Some("F32"));
        let info = diffusers.lora.unwrap();
        assert_eq!((info.format.as_str(), info.rank), ("diffusers", Some(4)));

        let xl = header(
            &[(
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                &[8, 1280],
            )],
            &[],
        );
        let d = describe(Kind::Lora, &xl);
        assert_eq!(d.family.as_deref(), Some("sdxl"));
        assert_eq!(d.lora.unwrap().rank, Some(8));
        // Named as loading the file names them: LyCORIS, and layouts seedling does not apply.
        for (key, format) in [
            ("lora_unet_x.hada_w1_a", "lycoris"),
            ("lora_unet_x.lokr_w1", "lycoris"),
            ("unet.x.lora.down.weight", "unsupported"),
            ("unet.x.weight", "unknown"),
        ] {
            let d = describe(Kind::Lora, &header(&[(key, &[4, 8])], &[]));
            assert_eq!(d.lora.unwrap().format, format, "{key}");
        }
        let v2 = header(&[], &[("ss_v2", "True")]);
        assert_eq!(describe(Kind::Lora, &v2).family.as_deref(), Some("sd2"));
        let base = header(&[], &[("ss_base_model_version", "sdxl_base_v1-0")]);
        assert_eq!(describe(Kind::Lora, &base).family.as_deref(), Some("sdxl"));
    }

    #[test]
    fn embeddings_vectors_and_width() {
        let d = describe(Kind::Embedding, &wild("embeddings/tinystyle.safetensors"));
        let e = d.embedding.unwrap();
        assert_eq!((e.vectors, e.widths), (2, vec![32]));
        assert_eq!(
            d.family.as_deref(),
            Some("unknown"),
            "32 wide: the tiny model's"
        );
        assert_eq!(d.dtype.as_deref(), Some("F32"));

        let xl = header(&[("clip_g", &[3, 1280]), ("clip_l", &[3, 768])], &[]);
        let d = describe(Kind::Embedding, &xl);
        assert_eq!(d.family.as_deref(), Some("sdxl"));
        assert_eq!(d.embedding.unwrap().widths, [768, 1280]);
        let a1111 = header(&[("string_to_param.*", &[5, 1024])], &[]);
        let d = describe(Kind::Embedding, &a1111);
        assert_eq!(d.family.as_deref(), Some("sd2"));
        assert_eq!(d.embedding.unwrap().vectors, 5);
        let concept = header(&[("<cat-toy>", &[768])], &[]);
        let d = describe(Kind::Embedding, &concept);
        assert_eq!(d.family.as_deref(), Some("sd1"));
        assert_eq!(d.embedding.unwrap().vectors, 1);
    }

    #[test]
    fn a_vae_has_no_family() {
        let d = describe(Kind::Vae, &wild("checkpoints/tiny-sd1-fp16.safetensors"));
        assert_eq!(d.family, None);
        assert_eq!(d.dtype.as_deref(), Some("F16"));
    }
}
