//! The LoRAs a session applies: each file hashed (what the recipe records) and resolved against
//! the model when the session opens, before any weights load; their deltas are computed when
//! the networks are built.

use crate::models::lora::{self, LoraFile};
use crate::models::{file_hash, safetensors_header, ModelInfo};
use crate::nets::lora::Deltas;
use crate::recipe::LoraRef;
use crate::{Error, ErrorKind, Message, Result, Setting};
use candle_core::Device;
use std::path::PathBuf;

/// A LoRA file to apply, with its strengths on the UNet and on the text encoder(s).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    pub path: PathBuf,
    pub unet: f64,
    pub text_encoder: f64,
}

impl LoraSpec {
    /// `FILE`, `FILE:WEIGHT` (both networks) or `FILE:UNET:TE`; the weight defaults to 1. A
    /// trailing part that is not a number belongs to the file name.
    pub fn parse(s: &str) -> Result<LoraSpec> {
        let num = |p: &str| p.parse::<f64>().ok().filter(|v| v.is_finite());
        let parts: Vec<&str> = s.rsplitn(3, ':').collect();
        let (path, unet, te) = match parts.as_slice() {
            [te, unet, path] if num(te).is_some() && num(unet).is_some() => {
                (path.to_string(), num(unet).unwrap(), num(te).unwrap())
            }
            [w, _, ..] if num(w).is_some() => {
                let w = num(w).unwrap();
                (s[..s.len() - parts[0].len() - 1].to_string(), w, w)
            }
            _ => (s.to_string(), 1.0, 1.0),
        };
        if path.is_empty() {
            return Err(Error::hint(
                ErrorKind::BadInput,
                Message::text(format!("'{s}' names no LoRA file; give ")).mention(Setting::Lora),
            ));
        }
        Ok(LoraSpec {
            path: PathBuf::from(path),
            unet,
            text_encoder: te,
        })
    }

    /// The LoRA a recipe records, at its recorded strengths: from its recorded name when that
    /// file is there with the recorded sha256; else an error naming the file and its AutoV2
    /// hash, before any work.
    pub fn recorded(r: &LoraRef) -> Result<LoraSpec> {
        let path = PathBuf::from(&r.name);
        let found = match path.is_file() {
            true => Some(file_hash::hash_file(&path, None)?.sha256),
            false => None,
        };
        if found.as_deref() == Some(r.sha256.as_str()) {
            return Ok(LoraSpec {
                path,
                unet: r.unet,
                text_encoder: r.text_encoder,
            });
        }
        let why = match found {
            Some(_) => "is there, but holds other weights (its sha256 differs)",
            None => "is not there",
        };
        let message = Message::text(format!(
            "the image was made with the LoRA {} (AutoV2 hash {}, sha256 {}), which {why}; find \
             the file with that hash and give it with ",
            r.name,
            r.autov2(),
            r.sha256
        ))
        .mention(Setting::Lora);
        Err(Error::hint(ErrorKind::Model, message))
    }
}

/// A LoRA read, hashed and checked against the model.
pub(crate) struct Opened {
    pub file: LoraFile,
    pub reference: LoraRef,
}

/// Reads, hashes and resolves every LoRA of `specs` against `info`'s networks: a file that does
/// not fit the model is refused naming it. Returns the LoRAs and the targets they resolve in.
pub(crate) fn open(info: &ModelInfo, specs: &[LoraSpec]) -> Result<(Vec<Opened>, Targets)> {
    if specs.is_empty() {
        return Ok((Vec::new(), Targets::new()));
    }
    let targets = info.lora_targets()?;
    let mut opened = Vec::with_capacity(specs.len());
    for spec in specs {
        if !spec.path.is_file() {
            return Err(Error::hint(
                ErrorKind::BadInput,
                Message::text(format!("no LoRA file {}; check ", spec.path.display()))
                    .mention(Setting::Lora),
            ));
        }
        let header = safetensors_header::read_header(&spec.path)?;
        let file = lora::read(&spec.path, &Device::Cpu)?;
        lora::resolve(&file, &targets)?;
        let hashes = file_hash::hash_file(&spec.path, Some(header.data_offset))?;
        // A1111 takes the hash the file's own metadata gives, else the addnet hash
        // (extensions-builtin/Lora/network.py `NetworkOnDisk`).
        let a1111_hash = header
            .metadata
            .get("sshs_model_hash")
            .map(String::as_str)
            .filter(|h| !h.is_empty())
            .or(hashes.a1111_lora())
            .map(|h| h.chars().take(12).collect());
        opened.push(Opened {
            file,
            reference: LoraRef {
                // Absolute, so a replay from another working folder finds it.
                name: std::fs::canonicalize(&spec.path)
                    .unwrap_or_else(|_| spec.path.clone())
                    .display()
                    .to_string(),
                sha256: hashes.sha256,
                unet: spec.unet,
                text_encoder: spec.text_encoder,
                a1111_hash,
            },
        });
    }
    Ok((opened, targets))
}

pub(crate) use crate::models::lora::Targets;

/// The summed deltas of `opened` at their strengths.
pub(crate) fn deltas(opened: &[Opened], targets: &Targets) -> Result<Deltas> {
    let mut resolved = Vec::with_capacity(opened.len());
    for o in opened {
        resolved.push((
            lora::resolve(&o.file, targets)?,
            o.reference.unet,
            o.reference.text_encoder,
        ));
    }
    crate::nets::lora::deltas(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_file_weight_and_split_weights() {
        let p = |s| LoraSpec::parse(s).unwrap();
        assert_eq!(
            p("a.safetensors"),
            LoraSpec {
                path: "a.safetensors".into(),
                unet: 1.0,
                text_encoder: 1.0
            }
        );
        assert_eq!(p("d/a.safetensors:0.8").unet, 0.8);
        assert_eq!(p("d/a.safetensors:0.8").text_encoder, 0.8);
        let s = p("a.safetensors:0.5:-1");
        assert_eq!((s.unet, s.text_encoder), (0.5, -1.0));
        assert_eq!(s.path, PathBuf::from("a.safetensors"));
        assert_eq!(p("c:x.safetensors").path, PathBuf::from("c:x.safetensors"));
        assert!(LoraSpec::parse(":0.5").is_err());
    }
}
