//! AUTOMATIC1111's extra-network tags in a prompt (`<lora:name:0.8>`), read as A1111 reads them
//! (modules/extra_networks.py `parse_prompt`, extensions-builtin/Lora/extra_networks_lora.py):
//! every match of `<(\w+):([^>]+)>` is taken out of the prompt text, its arguments split at `:`;
//! an argument `k=v` (exactly one `=`) is named, others positional. For `lora`: positional 0 is
//! the name, 1 the text-encoder strength (default 1), 2 the UNet strength (default: the text
//! encoder's); `te=` and `unet=` override them.

use crate::{Error, ErrorKind, Message, Result};

/// One `<kind:…>` tag taken out of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkTag {
    /// `lora`, `hypernet`, `lyco`, …
    pub kind: String,
    /// The tag as written, for messages.
    pub text: String,
    pub positional: Vec<String>,
    pub named: Vec<(String, String)>,
}

/// A LoRA a prompt asks for, with its strengths.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraTag {
    pub name: String,
    pub text_encoder: f64,
    pub unet: f64,
}

/// The prompt without its tags and the LoRAs its `<lora:…>` tags ask for, in order. A tag of
/// another kind is an error naming it: seedling applies LoRAs only, and encoding the rest of
/// the prompt without the network it asks for would make another image than A1111's.
pub fn take_loras(prompt: &str) -> Result<(String, Vec<LoraTag>)> {
    let (text, tags) = take_tags(prompt);
    let loras = tags
        .iter()
        .map(|t| match t.kind.as_str() {
            "lora" => t.lora(),
            _ => Err(unsupported(t)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((text, loras))
}

/// A tag seedling cannot apply, named with what it is and the way out.
fn unsupported(tag: &NetworkTag) -> Error {
    let what = match tag.kind.as_str() {
        // extensions-builtin/Lora registers `lyco` for LyCORIS files (LoHa, LoKr, …).
        "lyco" => "a LyCORIS network (seedling applies plain LoRAs only; if the file is one, \
                   write <lora:NAME:WEIGHT>)"
            .to_string(),
        "hypernet" => "a hypernetwork, which seedling does not apply".to_string(),
        other => format!("an extra network of kind '{other}', which seedling does not apply"),
    };
    let message = Message::text(format!(
        "the prompt's {} asks for {what}; take the tag out of the prompt",
        tag.text
    ));
    Error::hint(ErrorKind::BadInput, message)
}

/// The prompt without its tags (as A1111 encodes it: each tag replaced by nothing, the text
/// around it kept as is), and the tags in order.
pub fn take_tags(prompt: &str) -> (String, Vec<NetworkTag>) {
    let mut text = String::with_capacity(prompt.len());
    let mut tags = Vec::new();
    let mut rest = prompt;
    while let Some(at) = rest.find('<') {
        text.push_str(&rest[..at]);
        match tag_at(&rest[at..]) {
            Some((tag, len)) => {
                tags.push(tag);
                rest = &rest[at + len..];
            }
            None => {
                text.push('<');
                rest = &rest[at + 1..];
            }
        }
    }
    text.push_str(rest);
    (text, tags)
}

/// The tag at the start of `s` (which starts with `<`) and its length in bytes, if one is there:
/// `\w+` (Python's Unicode word characters: letters, digits, `_`), `:`, one or more characters
/// up to the first `>`.
fn tag_at(s: &str) -> Option<(NetworkTag, usize)> {
    let body = &s[1..];
    let kind_len: usize = body
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if kind_len == 0 || !body[kind_len..].starts_with(':') {
        return None;
    }
    let args_start = kind_len + 1;
    let close = body[args_start..].find('>')?;
    if close == 0 {
        return None;
    }
    let args = &body[args_start..args_start + close];
    let (mut positional, mut named) = (Vec::new(), Vec::new());
    for item in args.split(':') {
        // Python's `item.split('=', 2)` is named only when it gives exactly two parts.
        let parts: Vec<&str> = item.splitn(3, '=').collect();
        match parts.as_slice() {
            [k, v] => named.push((k.to_string(), v.to_string())),
            _ => positional.push(item.to_string()),
        }
    }
    let len = 1 + args_start + close + 1;
    let tag = NetworkTag {
        kind: body[..kind_len].to_string(),
        text: s[..len].to_string(),
        positional,
        named,
    };
    Some((tag, len))
}

impl NetworkTag {
    fn named(&self, key: &str) -> Option<&str> {
        // A1111 builds a dict: the last of repeated keys wins.
        self.named
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// This `lora` tag's name and strengths; a strength that is not a number is an error
    /// naming the tag (A1111 fails the whole generation on it too).
    pub fn lora(&self) -> Result<LoraTag> {
        let number = |s: &str| -> Result<f64> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the prompt's {} gives the strength '{s}', which is not a number; write \
                         <lora:NAME:0.8> (text encoder and UNet) or <lora:NAME:0.8:0.5> (text \
                         encoder, then UNet)",
                        self.text
                    ))
                })
        };
        let name = self.positional.first().cloned().unwrap_or_default();
        if name.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "the prompt's {} names no LoRA; write <lora:NAME:0.8>",
                self.text
            )));
        }
        let mut te = match self.positional.get(1) {
            Some(s) => number(s)?,
            None => 1.0,
        };
        if let Some(s) = self.named("te") {
            te = number(s)?;
        }
        let mut unet = match self.positional.get(2) {
            Some(s) => number(s)?,
            None => te,
        };
        if let Some(s) = self.named("unet") {
            unet = number(s)?;
        }
        Ok(LoraTag {
            name,
            text_encoder: te,
            unet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_taken_out_and_the_rest_kept_as_is() {
        let (text, tags) = take_tags("a cat <lora:x:0.8>, <hypernet:h:1> on a mat");
        assert_eq!(text, "a cat ,  on a mat");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].kind, "lora");
        assert_eq!(tags[0].text, "<lora:x:0.8>");
        assert_eq!(tags[0].positional, ["x", "0.8"]);
        assert_eq!(tags[1].kind, "hypernet");
        // Not tags: no word before the colon, nothing after it, no closing bracket.
        for plain in ["a <:x> b", "a <lora:> b", "a <lora:x b", "1 < 2", "<a b:c>"] {
            let (text, tags) = take_tags(plain);
            assert_eq!((text.as_str(), tags.len()), (plain, 0), "{plain}");
        }
        // `[^>]+` runs to the first `>`, across `<` and lines, as Python's does.
        let (text, tags) = take_tags("<lora:a<b\nc>d");
        assert_eq!(
            (text.as_str(), tags[0].positional.clone()),
            ("d", vec!["a<b\nc".to_string()])
        );
    }

    #[test]
    fn loras_are_taken_and_other_kinds_refused() {
        let (text, loras) = take_loras("<lora:style:0.8>a cat, <lora:sub/b:1:0.5>").unwrap();
        assert_eq!(text, "a cat, ");
        assert_eq!(loras.len(), 2);
        assert_eq!((loras[1].name.as_str(), loras[1].unet), ("sub/b", 0.5));
        let (text, loras) = take_loras("a <b> cat").unwrap();
        assert_eq!((text.as_str(), loras.len()), ("a <b> cat", 0));
        let e = take_loras("a cat <hypernet:anime:1>")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "the prompt's <hypernet:anime:1> asks for a hypernetwork, which seedling does not \
             apply; take the tag out of the prompt"
        );
        let e = take_loras("<lyco:x:1>").unwrap_err().to_string();
        assert!(e.contains("a LyCORIS network"), "{e}");
        let e = take_loras("<foo:x>").unwrap_err().to_string();
        assert!(e.contains("kind 'foo'"), "{e}");
    }

    #[test]
    fn lora_strengths_follow_a1111() {
        let lora = |p: &str| take_tags(p).1[0].lora().unwrap();
        let l = lora("<lora:style>");
        assert_eq!(
            (l.name.as_str(), l.text_encoder, l.unet),
            ("style", 1.0, 1.0)
        );
        let l = lora("<lora:style:0.8>");
        assert_eq!((l.text_encoder, l.unet), (0.8, 0.8));
        let l = lora("<lora:style:0.8:0.5>");
        assert_eq!((l.text_encoder, l.unet), (0.8, 0.5));
        let l = lora("<lora:style:0.8:unet=0.3>");
        assert_eq!((l.text_encoder, l.unet), (0.8, 0.3));
        let l = lora("<lora:style:unet=0.3:te=0.2>");
        assert_eq!((l.text_encoder, l.unet), (0.2, 0.3));
        // `a=b=c` is not named (Python's split('=', 2) gives three parts): it is the UNet
        // strength, and not a number.
        let tag = &take_tags("<lora:style:0.5:x=y=z>").1[0];
        assert_eq!(tag.positional[2], "x=y=z");
        assert!(tag.lora().unwrap_err().to_string().contains("'x=y=z'"));
        let e = take_tags("<lora:style:strong>").1[0]
            .lora()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("<lora:style:strong>") && e.contains("'strong'"),
            "{e}"
        );
        let e = take_tags("<lora: :1>").1[0].lora().unwrap_err().to_string();
        assert!(e.contains("names no LoRA"), "{e}");
    }
}
