//! AUTOMATIC1111's prompt syntax, which seedling does not interpret yet: it passes every prompt
//! to the tokenizer as plain text, so `(red:1.3)` is the words "(red:1.3)", not "red" weighted
//! 1.3. This finds such syntax so the user can be told, instead of getting a different image
//! without a word.
//!
//! What counts (A1111's `prompt_parser.py` and extra-networks syntax): weights `(text:1.3)`,
//! stacked emphasis `((text))`, anything in square brackets (de-emphasis `[text]`, alternation
//! `[a|b]`, scheduling `[a:b:0.5]`), extra networks `<lora:name:1>`, and the `BREAK` keyword.
//! Escaped brackets (`\(`) are text in A1111 too. A single unweighted pair of parentheses,
//! `a cat (sleeping)`, is A1111 emphasis (×1.1) as well, but it is also ordinary punctuation, and
//! warning about every parenthesis would make the warning noise on plain prompts; it is left
//! out on purpose.

use std::fmt;

/// A kind of A1111 syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SyntaxKind {
    Weight,
    Emphasis,
    DeEmphasis,
    Alternation,
    Scheduling,
    Network,
    Break,
}

impl SyntaxKind {
    /// What A1111 would do with it.
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            SyntaxKind::Weight => "a weight",
            SyntaxKind::Emphasis => "emphasis",
            SyntaxKind::DeEmphasis => "de-emphasis",
            SyntaxKind::Alternation => "alternation",
            SyntaxKind::Scheduling => "prompt scheduling",
            SyntaxKind::Network => "a LoRA or other network",
            SyntaxKind::Break => "a chunk break",
        }
    }
}

/// One piece of syntax found: its kind and the text, shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub kind: SyntaxKind,
    pub text: String,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.kind.meaning())
    }
}

/// The longest example quoted in a warning, in characters.
const QUOTE_CHARS: usize = 32;

/// The first example of each kind of A1111 syntax in `prompt`, in the order of [`SyntaxKind`].
/// One pass over the text with a stack of open brackets, so any prompt costs linear time.
pub(crate) fn find(prompt: &str) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    let mut note = |kind: SyntaxKind, text: &str| {
        if !found.iter().any(|f| f.kind == kind) {
            found.push(Found {
                kind,
                text: shorten(text),
            });
        }
    };
    // Open brackets: the character, its byte offset, and whether a `|` stands directly inside
    // it (kept here rather than searched for at the close, so nested groups stay linear).
    let mut open: Vec<(char, usize, bool)> = Vec::new();
    let mut chars = prompt.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            // An escaped character is text (A1111 reads `\(` as "(").
            '\\' => {
                chars.next();
            }
            '(' | '[' => open.push((c, at, false)),
            '|' => {
                if let Some(top) = open.last_mut() {
                    top.2 = true;
                }
            }
            ')' | ']' => {
                let opener = if c == ')' { '(' } else { '[' };
                if open.last().map(|(o, _, _)| *o) != Some(opener) {
                    continue;
                }
                let (_, start, bar) = open.pop().expect("checked above");
                let group = &prompt[start..=at];
                let inner = &group[1..group.len() - 1];
                match opener {
                    '(' if ends_in_number_after_colon(inner) => note(SyntaxKind::Weight, group),
                    '(' if is_parenthesised(inner.trim()) => note(SyntaxKind::Emphasis, group),
                    '(' => {}
                    _ if bar => note(SyntaxKind::Alternation, group),
                    _ if ends_in_number_after_colon(inner) => note(SyntaxKind::Scheduling, group),
                    _ => note(SyntaxKind::DeEmphasis, group),
                }
            }
            '<' => {
                if let Some(len) = network_len(&prompt[at..]) {
                    note(SyntaxKind::Network, &prompt[at..at + len]);
                }
            }
            'B' if is_break(prompt, at) => note(SyntaxKind::Break, "BREAK"),
            _ => {}
        }
    }
    found.sort_by_key(|f| f.kind);
    found
}

/// A one-line warning for `which` ("prompt", "negative prompt") when it has A1111 syntax.
pub(crate) fn warning(which: &str, prompt: &str) -> Option<String> {
    let found = find(prompt);
    if found.is_empty() {
        return None;
    }
    let list: Vec<String> = found.iter().map(Found::to_string).collect();
    Some(format!(
        "the {which} has AUTOMATIC1111 syntax that seedling does not support yet: {}; it is \
         taken literally, as plain text (no weights, emphasis, LoRAs, alternation or scheduling)",
        list.join(", ")
    ))
}

/// Warnings for a recipe's prompt (when `prompt`) and negative prompt (when `negative`, and only
/// when guidance uses it) that have AUTOMATIC1111 syntax, which seedling takes literally.
pub fn recipe_warnings(recipe: &crate::Recipe, prompt: bool, negative: bool) -> Vec<String> {
    let texts = [
        ("prompt", &recipe.prompt, prompt),
        (
            "negative prompt",
            &recipe.negative_prompt,
            negative && recipe.cfg > 1.0,
        ),
    ];
    texts
        .into_iter()
        .filter(|(_, _, asked)| *asked)
        .filter_map(|(which, text, _)| warning(which, text))
        .collect()
}

/// Whether `text` is itself one parenthesised group, as the inside of `((text))`.
fn is_parenthesised(text: &str) -> bool {
    text.len() >= 2 && text.starts_with('(') && text.ends_with(')')
}

/// Whether `text` ends in `:NUMBER` (spaces allowed around the number), as A1111's weights
/// `(red:1.3)` and schedules `[a:b:0.5]` do. Looks only at the end, so nested groups stay linear.
fn ends_in_number_after_colon(text: &str) -> bool {
    let body = text.trim_end();
    let number_start = body
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'))
        .last()
        .map(|(i, _)| i);
    let Some(start) = number_start else {
        return false;
    };
    let number = &body[start..];
    number.chars().any(|c| c.is_ascii_digit())
        && body[..start].trim_end().ends_with(':')
        && number.trim_start_matches(['+', '-']).parse::<f64>().is_ok()
}

/// The length of an extra-network tag `<word:args>` at the start of `text` (A1111's
/// `<(\w+):([^>]+)>`), looking no further than a tag can reasonably be.
fn network_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('<')?;
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|&n| n > 0)?;
    let args = rest[name_len..].strip_prefix(':')?;
    let args_len = args.find(['>', '<']).filter(|&n| n > 0)?;
    if !args[args_len..].starts_with('>') {
        return None;
    }
    Some(1 + name_len + 1 + args_len + 1)
}

/// Whether the `BREAK` keyword, as a word of its own, starts at byte `at`.
fn is_break(prompt: &str, at: usize) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    prompt[at..].starts_with("BREAK")
        && !prompt[..at].chars().next_back().is_some_and(word)
        && !prompt[at + 5..].chars().next().is_some_and(word)
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(QUOTE_CHARS - 1).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(prompt: &str) -> Vec<SyntaxKind> {
        find(prompt).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn each_kind_is_found_with_its_text() {
        use SyntaxKind::*;
        let f = find("a (red:1.3) apple, ((sharp)), [blurry], <lora:detail:0.5>");
        let got: Vec<(SyntaxKind, &str)> = f.iter().map(|f| (f.kind, f.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (Weight, "(red:1.3)"),
                (Emphasis, "((sharp))"),
                (DeEmphasis, "[blurry]"),
                (Network, "<lora:detail:0.5>"),
            ]
        );
        assert_eq!(kinds("a [cat|dog] in a field"), [Alternation]);
        assert_eq!(kinds("a [cat:dog:0.5]"), [Scheduling]);
        assert_eq!(kinds("a [cat: 10]"), [Scheduling]);
        assert_eq!(kinds("a cat BREAK a dog"), [Break]);
        assert_eq!(kinds("(worst quality: 1.4 ), lowres"), [Weight]);
        assert_eq!(kinds("(((masterpiece)))"), [Emphasis]);
        assert_eq!(kinds("<hypernet:anime:1>"), [Network]);
    }

    #[test]
    fn plain_text_is_left_alone() {
        for prompt in [
            "a lighthouse at dawn",
            "a cat (sleeping) on a mat",
            "a cat (sleeping: soundly)",
            "escaped \\(red:1.3\\) and \\[x\\]",
            "a BREAKFAST table, BREAKS",
            "3 < 4 and x > y, a ratio 16:9",
            "unbalanced ) ] ( [",
            "",
        ] {
            assert_eq!(find(prompt), [], "{prompt}");
            assert_eq!(warning("prompt", prompt), None);
        }
    }

    #[test]
    fn the_warning_is_one_line_naming_what_was_found() {
        let w = warning("negative prompt", "(worst quality:1.4), [a|b]").unwrap();
        assert_eq!(
            w,
            "the negative prompt has AUTOMATIC1111 syntax that seedling does not support yet: \
             (worst quality:1.4) (a weight), [a|b] (alternation); it is taken literally, as \
             plain text (no weights, emphasis, LoRAs, alternation or scheduling)"
        );
        assert!(!w.contains('\n'));
        let long = format!("({}:1.2)", "word ".repeat(40));
        let w = warning("prompt", &long).unwrap();
        assert!(w.contains("(word word word word word word …"), "{w}");
    }

    /// Deep nesting and long runs cost linear time (a quadratic scan of a 200 000-character
    /// prompt would take minutes).
    #[test]
    fn hostile_prompts_stay_linear() {
        let deep = format!("{}x:1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(kinds(&deep), [SyntaxKind::Weight, SyntaxKind::Emphasis]);
        let opens = "<lora".repeat(50_000);
        assert_eq!(kinds(&opens), []);
        let colons = format!("[{}]", ":1".repeat(100_000));
        assert_eq!(kinds(&colons), [SyntaxKind::Scheduling]);
        let bars = format!("{}a|b{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            kinds(&bars),
            [SyntaxKind::DeEmphasis, SyntaxKind::Alternation]
        );
    }
}
