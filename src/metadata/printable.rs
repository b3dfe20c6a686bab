//! Text from an image's metadata, made safe to print on a terminal.
//!
//! Metadata is written by whoever made the file: a prompt can hold escape sequences that retitle
//! the terminal window, move the cursor, erase lines or draw a fake shell prompt, and Unicode
//! bidi overrides that show text in another order than it is. Anything printed from a file goes
//! through [`printable`] first; the `--json` output needs nothing, as JSON escapes controls.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every character a terminal acts on instead of showing written as a visible
/// escape: C0 controls (newline and carriage return included, so a value cannot fake a line of
/// its own or overwrite one), DEL, C1 controls and the bidi embedding, override and isolate
/// marks. `\n`, `\r` and `\t` read as such, the others as `\u{1b}`. Tab is kept: it only moves
/// to the next tab stop. Text without such characters is returned as is.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    match c {
        '\t' => false,
        // C0, DEL and C1.
        c if c.is_control() => true,
        // Arabic letter mark, left-to-right and right-to-left marks, the embeddings and
        // overrides (LRE, RLE, PDF, LRO, RLO) and the isolates (LRI, RLI, FSI, PDI).
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for text in [
            "",
            "a lighthouse, «golden» hour",
            "灯台 🌅 ß",
            "tab\there",
            "\\(x\\)",
        ] {
            assert!(matches!(printable(text), std::borrow::Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_and_bidi_marks_are_escaped() {
        assert_eq!(
            printable("\u{1b}]0;owned\u{7}title\u{1b}[2K\rfake$ \n"),
            "\\u{1b}]0;owned\\u{7}title\\u{1b}[2K\\rfake$ \\n"
        );
        assert_eq!(
            printable("a\u{0}b\u{7f}c\u{9b}d"),
            "a\\u{0}b\\u{7f}c\\u{9b}d"
        );
        assert_eq!(
            printable("x\u{202E}gnp.exe\u{202C}\u{2066}y\u{2069}\u{200F}"),
            "x\\u{202e}gnp.exe\\u{202c}\\u{2066}y\\u{2069}\\u{200f}"
        );
        // Every C0 and C1 control but tab is escaped; nothing escaped holds a control.
        for c in (0u32..0x20).chain(0x7F..0xA0).filter_map(char::from_u32) {
            let shown = printable(&c.to_string()).into_owned();
            assert_eq!(shown == "\t", c == '\t', "{c:?} -> {shown:?}");
            assert!(
                shown.chars().all(|s| s == '\t' || !s.is_control()),
                "{shown:?}"
            );
        }
    }
}
