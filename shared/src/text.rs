//! Text from a peer, made safe to print and to store.
//!
//! Anything a peer sends (reasons, names, user IDs, file names) may hold control characters
//! (a newline that forges a log line, ANSI or OSC escapes that drive a terminal) or
//! bidirectional overrides (`invoice\u{202e}fdp.exe` shows as `invoiceexe.pdf`). Every program
//! prints such text through [`escape`] (or [`escape_bounded`]), and names that become files
//! pass [`safe_file_name`].

use std::borrow::Cow;
use std::fmt::Write;

/// True for the characters that reorder the text around them: the bidirectional embeddings,
/// overrides and isolates, and the directional marks.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// True for a character that must not reach a terminal as it is: a control character or a
/// bidirectional control.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `s` with every unsafe character written as an escape (`\n`, `\t`, `\r`, `\u{1b}`), and
/// backslashes doubled only when something was escaped, so plain text prints unchanged.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`], cut to at most `max` characters of the original with `…` after a cut.
pub fn escape_bounded(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => escape(s),
        Some((end, _)) => Cow::Owned(format!("{}…", escape(&s[..end]))),
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A name that is safe as a file name and on a screen: unsafe characters (see [`is_unsafe`])
/// become `_`. Borrowed when nothing changed.
pub fn safe_file_name(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_unsafe) {
        Cow::Owned(
            s.chars()
                .map(|c| if is_unsafe(c) { '_' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged_and_borrowed() {
        for s in ["", "scan 1.pdf", "営業部", "a\\b"] {
            assert!(matches!(escape(s), Cow::Borrowed(x) if x == s));
            assert!(matches!(safe_file_name(s), Cow::Borrowed(x) if x == s));
        }
    }

    #[test]
    fn controls_and_overrides_are_escaped() {
        assert_eq!(
            escape("ok\n2026 forged line\x1b]0;pwned\x07"),
            "ok\\n2026 forged line\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(escape("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(escape("a\\b\n"), "a\\\\b\\n");
        assert_eq!(safe_file_name("invoice\u{202e}fdp.exe"), "invoice_fdp.exe");
        assert_eq!(safe_file_name("a\tb\u{2066}"), "a_b_");
        assert!(is_bidi_control('\u{061C}') && !is_bidi_control('a'));
    }

    #[test]
    fn bounded_escape_cuts_on_characters() {
        assert_eq!(escape_bounded("abcdef", 3), "abc…");
        assert_eq!(escape_bounded("ab", 3), "ab");
        assert_eq!(escape_bounded("é\né\n", 2), "é\\n…");
        assert_eq!(truncate("éé", 3), "é");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
