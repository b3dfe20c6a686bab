//! Python's whitespace, as A1111's text handling (Python's `str.strip()` and `re`'s `\s`) sees
//! it: the writer strips the text as A1111 does, and the reader splits and scans it the same way.

/// Python's `str.isspace()` (and `\s` of a `str` pattern): Unicode White_Space plus the ASCII
/// separators U+001C..U+001F.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument: strips characters for which `str.isspace()` is true.
pub(super) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_space)
}
