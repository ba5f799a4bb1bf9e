//! Plugin words made safe to print: whatever a plugin returns (unit ids,
//! anomaly details, errors, descriptions) may hold terminal control
//! sequences, and reaches an operator's terminal or log only escaped.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that reorder or hide text on display (Trojan Source):
/// bidirectional embeddings, overrides and isolates, and the marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with every control character (C0, DEL, C1) and bidirectional
/// control escaped as `\n`, `\t`, `\r` or `\u{..}`; borrowed when clean.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            clean("events-0001.ndjson: ok é"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escape_sequences_and_overwrites_are_escaped() {
        assert_eq!(
            clean("\x1b[2J\x1b]0;pwned\x07"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(clean("ok\rFAKE"), "ok\\rFAKE");
        assert_eq!(clean("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(clean("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(clean("x\u{7f}"), "x\\u{7f}");
    }

    #[test]
    fn bidi_overrides_are_escaped() {
        assert_eq!(clean("log\u{202e}txt.exe"), "log\\u{202e}txt.exe");
    }

    #[test]
    fn no_control_character_survives() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let s = format!("a{c}b");
            let out = clean(&s);
            assert!(!out.chars().any(needs_escape), "{c:?} -> {out:?}");
        }
    }
}
