//! Prompt → token ids, for the CLIP text encoders (`nets::text_encoder` embeds them).
//!
//! Tokenization matches transformers' `CLIPTokenizer(prompt, padding="max_length",
//! max_length=77, truncation=True)` as the diffusers pipelines call it: start token, BPE ids,
//! end token, then the model's pad token (`<|endoftext|>` for SD 1.x, `!` for SD 2.x) up to the
//! encoder's length. A prompt longer than that is refused unless the recipe allows truncation.

use crate::{Error, ErrorKind, Message, Result, Setting};
use serde::Deserialize;
use std::path::Path;
use tokenizers::Tokenizer;

/// Where a tokenizer comes from: the files of a diffusers `tokenizer/` folder, or CLIP's
/// vocabulary compiled into seedling (for single-file checkpoints, which carry none).
#[derive(Debug, Clone)]
pub enum TokenizerFiles {
    Folder {
        /// `tokenizer.json` (fast tokenizer), when the repo ships one.
        json: Option<std::path::PathBuf>,
        /// `vocab.json` + `merges.txt` (what every SD repo ships).
        vocab_merges: Option<(std::path::PathBuf, std::path::PathBuf)>,
        /// `tokenizer_config.json` (pad token, max length).
        config: std::path::PathBuf,
    },
    /// OpenAI CLIP's BPE vocabulary (models/clip/, the `vocab.json` and `merges.txt` every SD
    /// 1.x/2.x/SDXL repo ships, byte for byte), padding with `pad`.
    BuiltIn { pad: &'static str },
}

/// CLIP's vocabulary and merges, compiled in (1.5 MB): every SD family uses this one BPE
/// vocabulary (SD 2.x and SDXL's OpenCLIP towers too; only the pad token differs).
const CLIP_VOCAB: &str = include_str!("../models/clip/vocab.json");
const CLIP_MERGES: &str = include_str!("../models/clip/merges.txt");

/// The pad token of transformers' CLIP tokenizer config for SD 1.x and SDXL's first encoder.
pub(crate) const PAD_EOS: &str = "<|endoftext|>";
/// The pad token of SD 2.x's and SDXL's second tokenizer (open_clip pads with id 0, "!").
pub(crate) const PAD_EXCLAMATION: &str = "!";

#[derive(Debug, Deserialize)]
struct TokenizerConfig {
    #[serde(default)]
    pad_token: Option<TokenValue>,
    #[serde(default)]
    model_max_length: Option<f64>,
}

/// transformers writes special tokens either as a string or as an AddedToken object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenValue {
    Plain(String),
    Added { content: String },
}

const BOS: &str = "<|startoftext|>";
const EOS: &str = "<|endoftext|>";

/// Prompt ids, padded to the encoder's length, and what truncation dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// Number of prompt tokens beyond the limit (0 when it fits).
    pub dropped: usize,
    /// The part of the prompt those tokens came from.
    pub dropped_text: String,
}

#[derive(Clone)]
pub struct PromptTokenizer {
    tokenizer: Tokenizer,
    max_len: usize,
    pad_id: u32,
    eos_id: u32,
}

impl PromptTokenizer {
    /// Loads `tokenizer.json` when present, else builds the same tokenizer from vocab.json and
    /// merges.txt. `max_len` is the text encoder's `max_position_embeddings`.
    pub(crate) fn load(files: &TokenizerFiles, max_len: usize) -> Result<Self> {
        let (json, vocab_merges, config) = match files {
            TokenizerFiles::Folder {
                json,
                vocab_merges,
                config,
            } => (json, vocab_merges, read_config(config)?),
            TokenizerFiles::BuiltIn { pad } => {
                let config = TokenizerConfig {
                    pad_token: Some(TokenValue::Plain(pad.to_string())),
                    model_max_length: None,
                };
                let tokenizer = clip_tokenizer(CLIP_VOCAB, CLIP_MERGES, "the built-in vocabulary")?;
                return Self::with_config(tokenizer, config, max_len);
            }
        };
        let tokenizer =
            match (json, vocab_merges) {
                (Some(json), _) => Tokenizer::from_file(json).map_err(|e| {
                    Error::Model(format!("cannot load tokenizer {}: {e}", json.display()))
                })?,
                (None, Some((vocab, merges))) => clip_tokenizer_from_vocab(vocab, merges)?,
                (None, None) => return Err(Error::Model(
                    "the tokenizer folder has neither tokenizer.json nor vocab.json + merges.txt"
                        .into(),
                )),
            };
        Self::with_config(tokenizer, config, max_len)
    }

    fn with_config(tokenizer: Tokenizer, config: TokenizerConfig, max_len: usize) -> Result<Self> {
        let pad = match config.pad_token {
            Some(TokenValue::Plain(s)) | Some(TokenValue::Added { content: s }) => s,
            None => EOS.to_string(),
        };
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| Error::Model(format!("the tokenizer has no token {token:?}")))
        };
        let max_len = match config.model_max_length {
            Some(m) if m >= 2.0 && (m as usize) < max_len => m as usize,
            _ => max_len,
        };
        Ok(Self {
            pad_id: id(&pad)?,
            eos_id: id(EOS)?,
            tokenizer,
            max_len,
        })
    }

    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Ids with start and end tokens, padded to `max_len`; a prompt that does not fit keeps
    /// its first `max_len - 2` tokens and reports what was dropped.
    pub fn encode(&self, prompt: &str) -> Result<Tokens> {
        let enc = self
            .tokenizer
            .encode(prompt, true)
            .map_err(|e| Error::Invalid(format!("cannot tokenize the prompt: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        let mut dropped = 0;
        let mut dropped_text = String::new();
        if ids.len() > self.max_len {
            dropped = ids.len() - self.max_len;
            // enc offsets index the original prompt; the first dropped token starts the tail.
            let first_dropped = self.max_len - 1;
            if let Some(&(start, _)) = enc.get_offsets().get(first_dropped) {
                dropped_text = prompt.get(start..).unwrap_or_default().trim().to_string();
            }
            ids.truncate(self.max_len - 1);
            ids.push(self.eos_id);
        }
        ids.resize(self.max_len, self.pad_id);
        Ok(Tokens {
            ids,
            dropped,
            dropped_text,
        })
    }
}

/// `tokenizer_config.json`, with the messages `models::configs::read_json` gives for a config.
fn read_config(path: &Path) -> Result<TokenizerConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Model(format!("{} is not a valid config: {e}", path.display())))
}

/// Builds transformers' fast CLIP tokenizer from vocab.json + merges.txt: the same
/// normalizer (NFC, whitespace runs → one space, lowercase), pre-tokenizer (CLIP's word regex,
/// then byte-level), BPE with the `</w>` end-of-word suffix, and `<|startoftext|> … <|endoftext|>`
/// post-processing that transformers' `CLIPConverter` writes into tokenizer.json.
fn clip_tokenizer_from_vocab(vocab: &Path, merges: &Path) -> Result<Tokenizer> {
    let vocab_text =
        std::fs::read_to_string(vocab).map_err(|e| Error::io("cannot read", vocab, e))?;
    let merges_text =
        std::fs::read_to_string(merges).map_err(|e| Error::io("cannot read", merges, e))?;
    clip_tokenizer(&vocab_text, &merges_text, &vocab.display().to_string())
}

/// The tokenizer of `clip_tokenizer_from_vocab` from the files' text; `name` names the
/// vocabulary in errors.
fn clip_tokenizer(vocab_text: &str, merges_text: &str, name: &str) -> Result<Tokenizer> {
    let vocab_map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(vocab_text)
        .map_err(|e| Error::Model(format!("{name} is not valid JSON: {e}")))?;
    let merges_list: Vec<&str> = merges_text
        .lines()
        .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
        .collect();
    let id_of = |t: &str| vocab_map.get(t).and_then(|v| v.as_u64());
    let (Some(bos), Some(eos)) = (id_of(BOS), id_of(EOS)) else {
        return Err(Error::Model(format!(
            "{name} has no {BOS}/{EOS} tokens; is it a CLIP vocabulary?"
        )));
    };
    let special = |id: u64, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": true, "special": true})
    };
    let doc = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(bos, BOS), special(eos, EOS)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex":
                "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [EOS, eos], "cls": [BOS, bos],
            "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": EOS, "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false,
            "vocab": vocab_map, "merges": merges_list}
    });
    doc.to_string()
        .parse::<Tokenizer>()
        .map_err(|e| Error::Model(format!("cannot build the CLIP tokenizer from {name}: {e}")))
}

/// Tokens of `text`, refusing an over-long prompt unless `truncate`.
pub(crate) fn checked(
    tokenizer: &PromptTokenizer,
    text: &str,
    which: &str,
    truncate: bool,
) -> Result<Tokens> {
    let tokens = tokenizer.encode(text)?;
    if tokens.dropped > 0 && !truncate {
        return Err(too_long_error(which, &tokens, tokenizer.max_len()));
    }
    Ok(tokens)
}

/// The error for a prompt that does not fit, naming the fix.
pub(crate) fn too_long_error(which: &str, tokens: &Tokens, max_len: usize) -> Error {
    let message = Message::text(format!(
        "the {which} is too long: {} tokens over the text encoder's limit of {} (plus start/end tokens), \
         so this part would be dropped: \"{}\"; shorten it, or pass ",
        tokens.dropped,
        max_len - 2,
        tokens.dropped_text
    ))
    .set(Setting::field("truncate_prompt"), true)
    .then(" to drop those tokens");
    Error::hint(ErrorKind::BadInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared")
            .join(rel)
    }

    fn files(model: &str, use_json: bool) -> TokenizerFiles {
        let dir = fixture(&format!("fixtures/{model}/tokenizer"));
        TokenizerFiles::Folder {
            json: use_json.then(|| dir.join("tokenizer.json")),
            vocab_merges: Some((dir.join("vocab.json"), dir.join("merges.txt"))),
            config: dir.join("tokenizer_config.json"),
        }
    }

    #[derive(Deserialize)]
    struct Vector {
        prompt: String,
        ids: Vec<u32>,
        ids_padded_77: Vec<u32>,
    }

    /// ../shared/spec/tokenizer_vectors.json: transformers' CLIPTokenizer outputs.
    fn check_vectors(tok: &PromptTokenizer) {
        let text = std::fs::read_to_string(fixture("spec/tokenizer_vectors.json")).unwrap();
        let vectors: Vec<Vector> = serde_json::from_str(&text).unwrap();
        assert!(vectors.len() >= 10);
        for v in vectors {
            let t = tok.encode(&v.prompt).unwrap();
            assert_eq!(t.ids, v.ids_padded_77, "prompt {:?}", v.prompt);
            assert_eq!(
                t.dropped,
                v.ids.len().saturating_sub(77),
                "prompt {:?}",
                v.prompt
            );
        }
    }

    #[test]
    fn tokenizer_json_matches_transformers_vectors() {
        check_vectors(&PromptTokenizer::load(&files("tiny-sd", true), 77).unwrap());
    }

    #[test]
    fn tokenizer_built_from_vocab_and_merges_matches_too() {
        check_vectors(&PromptTokenizer::load(&files("tiny-sd", false), 77).unwrap());
    }

    #[test]
    fn the_built_in_vocabulary_matches_transformers_vectors() {
        let files = TokenizerFiles::BuiltIn { pad: PAD_EOS };
        check_vectors(&PromptTokenizer::load(&files, 77).unwrap());
        let files = TokenizerFiles::BuiltIn {
            pad: PAD_EXCLAMATION,
        };
        let t = PromptTokenizer::load(&files, 77)
            .unwrap()
            .encode("a photo of a cat");
        assert_eq!(&t.unwrap().ids[6..9], &[49407, 0, 0]);
    }

    #[test]
    fn sd2_pads_with_exclamation_mark() {
        let tok = PromptTokenizer::load(&files("tiny-sd2v", false), 77).unwrap();
        let t = tok.encode("a photo of a cat").unwrap();
        assert_eq!(&t.ids[..8], &[49406, 320, 1125, 539, 320, 2368, 49407, 0]);
        assert_eq!(t.ids[76], 0);
    }

    #[test]
    fn overlong_prompt_reports_the_dropped_tail() {
        let tok = PromptTokenizer::load(&files("tiny-sd", true), 77).unwrap();
        let prompt = format!("{} tail words", "a ".repeat(75));
        let t = tok.encode(&prompt).unwrap();
        assert_eq!(t.dropped, 2);
        assert_eq!(t.dropped_text, "tail words");
        assert_eq!(t.ids.len(), 77);
        assert_eq!(t.ids[76], 49407);
    }
}
