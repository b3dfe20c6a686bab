//! Prompt → token ids, for the CLIP text encoders (`nets::text_encoder` embeds them).
//!
//! Tokenization matches transformers' `CLIPTokenizer(prompt, padding="max_length",
//! max_length=77, truncation=True)` as the diffusers pipelines call it: start token, BPE ids,
//! end token, then the model's pad token (`<|endoftext|>` for SD 1.x, `!` for SD 2.x) up to the
//! encoder's length. A prompt longer than that is refused unless the recipe allows truncation.
//! Where a textual inversion's name stands in the prompt, its vectors take the place of those
//! tokens (`encode_with`, as A1111 places them); the ids there are placeholders.

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
    /// Positions whose input vector is an embedding's instead of the token's (their id is
    /// `EMBEDDED_ID`), in position order.
    pub embedded: Vec<Embedded>,
}

/// One position of a prompt that takes a textual-inversion vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    pub position: usize,
    /// Index of the embedding in the list given to `encode_with`.
    pub word: usize,
    /// Which of its vectors.
    pub row: usize,
}

/// The id that stands at an embedded position. Never looked up (the vector replaces the
/// token's); 0 keeps every rule that finds the end token by id or by the largest id unchanged,
/// so a pooled output is read at the end token as A1111 reads it (diffusers' appended ids,
/// being the largest, would move a legacy `argmax` onto the embedding).
pub(crate) const EMBEDDED_ID: u32 = 0;

/// A textual-inversion embedding as the tokenizer sees it: the word that calls it and how many
/// vectors (positions) it stands for.
#[derive(Debug, Clone, Copy)]
pub struct Word<'a> {
    pub name: &'a str,
    pub vectors: usize,
}

/// The token ids that call each word (its index), longest first: `PromptTokenizer::patterns`.
pub(crate) type Patterns = Vec<(Vec<u32>, usize)>;

/// Where the tokens of a word stand in a prompt's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// The token at this index.
    Token(usize),
    /// The word of this index, whose tokens start at `at`.
    Word { word: usize, at: usize },
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
        self.encode_with(prompt, &[])
    }

    /// `encode`, where the tokens of each word of `words` (as the prompt spells it, or as
    /// ComfyUI's `embedding:name`) stand for that many embedded positions, as A1111 places a
    /// textual inversion (modules/sd_hijack_clip.py `tokenize_line` with
    /// textual_inversion.py `find_embedding_at_position`: at each position the longest name
    /// whose token ids follow). The positions count toward the limit like any token.
    pub fn encode_with(&self, prompt: &str, words: &[Word<'_>]) -> Result<Tokens> {
        let enc = self
            .tokenizer
            .encode(prompt, true)
            .map_err(|e| Error::Invalid(format!("cannot tokenize the prompt: {e}")))?;
        // The post-processor puts the start and end tokens around the prompt's own.
        let all = enc.get_ids();
        let inner = &all[1..all.len() - 1];
        let offsets = &enc.get_offsets()[1..all.len() - 1];
        let patterns = self.patterns(words.iter().map(|w| w.name))?;
        let (mut ids, mut starts, mut embedded) = (vec![all[0]], vec![0], Vec::new());
        for piece in pieces(inner, &patterns) {
            match piece {
                Piece::Token(i) => {
                    ids.push(inner[i]);
                    starts.push(offsets[i].0);
                }
                Piece::Word { word, at } => {
                    let start = offsets[at].0;
                    for row in 0..words[word].vectors {
                        embedded.push(Embedded {
                            position: ids.len(),
                            word,
                            row,
                        });
                        ids.push(EMBEDDED_ID);
                        starts.push(start);
                    }
                }
            }
        }
        ids.push(self.eos_id);
        let mut dropped = 0;
        let mut dropped_text = String::new();
        if ids.len() > self.max_len {
            dropped = ids.len() - self.max_len;
            // The first dropped token's offset into the prompt starts the tail.
            let first_dropped = self.max_len - 1;
            dropped_text = prompt
                .get(starts[first_dropped]..)
                .unwrap_or_default()
                .trim()
                .to_string();
            ids.truncate(first_dropped);
            ids.push(self.eos_id);
            embedded.retain(|e| e.position < first_dropped);
        }
        ids.resize(self.max_len, self.pad_id);
        Ok(Tokens {
            ids,
            dropped,
            dropped_text,
            embedded,
        })
    }

    /// Which words of `patterns` (from `patterns`) the prompt uses as embeddings
    /// (`encode_with`'s matching), each once, in the order they first appear.
    pub(crate) fn words_in(&self, prompt: &str, patterns: &Patterns) -> Result<Vec<usize>> {
        if patterns.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode(prompt, false)
            .map_err(|e| Error::Invalid(format!("cannot tokenize the prompt: {e}")))?;
        let mut used = Vec::new();
        for piece in pieces(enc.get_ids(), patterns) {
            if let Piece::Word { word, .. } = piece {
                if !used.contains(&word) {
                    used.push(word);
                }
            }
        }
        Ok(used)
    }

    /// The token ids each name is matched by (its own spelling and ComfyUI's
    /// `embedding:name`), with the name's index, longest first.
    pub(crate) fn patterns<'a>(&self, names: impl Iterator<Item = &'a str>) -> Result<Patterns> {
        let mut patterns = Vec::new();
        for (word, name) in names.enumerate() {
            for spelling in [name.to_string(), format!("embedding:{name}")] {
                let ids = self
                    .tokenizer
                    .encode(spelling.as_str(), false)
                    .map_err(|e| Error::Invalid(format!("cannot tokenize {name:?}: {e}")))?
                    .get_ids()
                    .to_vec();
                if !ids.is_empty() {
                    patterns.push((ids, word));
                }
            }
        }
        // Stable: of two names with the same tokens, the first given wins.
        patterns.sort_by_key(|(ids, _)| std::cmp::Reverse(ids.len()));
        Ok(patterns)
    }
}
/// `ids` cut into tokens and words: at each position the first (longest) pattern whose ids
/// follow is a word and its tokens are skipped, else the token stands for itself.
fn pieces(ids: &[u32], patterns: &Patterns) -> Vec<Piece> {
    let mut out = Vec::with_capacity(ids.len());
    let mut i = 0;
    while i < ids.len() {
        match patterns.iter().find(|(p, _)| ids[i..].starts_with(p)) {
            Some((p, word)) => {
                out.push(Piece::Word { word: *word, at: i });
                i += p.len();
            }
            None => {
                out.push(Piece::Token(i));
                i += 1;
            }
        }
    }
    out
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

/// Tokens of `text` with `words` placed, refusing an over-long prompt unless `truncate`.
pub(crate) fn checked(
    tokenizer: &PromptTokenizer,
    text: &str,
    words: &[Word<'_>],
    which: &str,
    truncate: bool,
) -> Result<Tokens> {
    let tokens = tokenizer.encode_with(text, words)?;
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

    /// A1111's placement (and diffusers' ids `a tinystyle tinystyle_1 apple` →
    /// [49406, 320, 49408, 49409, 3055, 49407]): the word's tokens give way to its vectors.
    #[test]
    fn an_embedding_word_stands_for_its_vectors() {
        let tok = PromptTokenizer::load(&files("tiny-sd", true), 77).unwrap();
        let words = [
            Word {
                name: "tinystyle",
                vectors: 2,
            },
            Word {
                name: "red",
                vectors: 1,
            },
        ];
        for prompt in ["a tinystyle apple", "a embedding:tinystyle apple"] {
            let t = tok.encode_with(prompt, &words).unwrap();
            assert_eq!(&t.ids[..6], &[49406, 320, 0, 0, 3055, 49407], "{prompt}");
            let placed: Vec<(usize, usize, usize)> = t
                .embedded
                .iter()
                .map(|e| (e.position, e.word, e.row))
                .collect();
            assert_eq!(placed, [(2, 0, 0), (3, 0, 1)], "{prompt}");
        }
        // A word inside another word is not the embedding; plain text is as before.
        let plain = tok.encode("a tinystyles apple").unwrap();
        assert_eq!(
            tok.encode_with("a tinystyles apple", &words).unwrap(),
            plain
        );
        assert!(plain.embedded.is_empty());
        let names = tok.patterns(["tinystyle", "red"].into_iter()).unwrap();
        assert_eq!(
            tok.words_in("red, then tinystyle and red", &names).unwrap(),
            [1, 0]
        );
        assert!(tok.words_in("a blue apple", &names).unwrap().is_empty());
    }

    /// Vectors count toward the limit; truncation keeps the ones before the cut.
    #[test]
    fn embedding_vectors_count_toward_the_limit() {
        let tok = PromptTokenizer::load(&files("tiny-sd", true), 77).unwrap();
        let words = [Word {
            name: "tinystyle",
            vectors: 4,
        }];
        let prompt = format!("{}tinystyle apple", "a ".repeat(72));
        let t = tok.encode_with(&prompt, &words).unwrap();
        // 72 + 4 vectors + apple = 77 prompt tokens, 2 over 75: one vector and "apple" go.
        assert_eq!(t.dropped, 2);
        assert_eq!(t.dropped_text, "tinystyle apple");
        assert_eq!(t.embedded.len(), 3);
        assert_eq!(t.ids[76], 49407);
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
