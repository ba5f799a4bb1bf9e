//! A fast path for the common line: checks the JSON grammar and lifts
//! `kind`, `store`, `system_id` and `timestamp` without serde's per-byte,
//! per-token machinery (most of a scan's time in wasm). Stage one (`masks`)
//! finds quotes, structural characters and spaces sixteen bytes at a time,
//! and `tokens` turns each 64-byte block's bitmaps into the line's tokens as
//! it goes; stage two (`shape`, else `grammar`) looks only at those tokens.
//!
//! It only ever says "this is a record, with these fields" or "not sure";
//! anything unusual — an escape in a string, a control character, a
//! duplicate or non-string head field, deep nesting, any syntax error — is
//! "not sure", and the caller asks serde_json for the verdict: the guest
//! helper's `record::classify` when scanning and reading, the host's
//! `Record` lifting when appending. So the fast path can make them faster
//! but never change what they say; differential tests in both hold it to
//! serde_json on valid and damaged lines.

/// The fields lifted from a record line that the fast path accepted.
#[derive(Debug, PartialEq)]
pub struct Head<'a> {
    /// `kind`.
    pub kind: &'a str,
    /// `store`, when present.
    pub store: Option<&'a str>,
    /// `system_id`, when present.
    pub system_id: Option<&'a str>,
    /// `timestamp`.
    pub timestamp: f64,
}

mod decimal;
mod grammar;
mod masks;
mod shape;
mod tokens;

use std::cell::RefCell;

use decimal::plain_decimal;
use tokens::Refuse;

thread_local! {
    /// This thread's remembered line shapes and token buffers.
    // Built in a constant: no lazy start to check on every line.
    static SHAPES: RefCell<shape::Shapes> = const { RefCell::new(shape::Shapes::new()) };
}

/// Longest line the fast path takes. Its token buffers grow to the longest
/// line seen (five bytes per byte of line) and are kept for the next, so a
/// hostile multi-megabyte line is left to serde instead.
const FAST_LINE_MAX: usize = 64 * 1024;

/// Lifts the head of `text` when it is plainly a record; `None` when serde
/// must decide.
pub fn lift(text: &str) -> Option<Head<'_>> {
    lift_from(text.as_bytes(), Refuse::Nothing).map(|(_, head)| head)
}

/// As [`lift`], for bytes whose UTF-8 is not known yet: when they are a
/// plain record in ASCII (seen while gathering its tokens, so there is no
/// separate UTF-8 pass), the text and its head; `None` for anything else,
/// non-ASCII text included, which the caller checks and lifts as usual.
#[inline]
pub fn lift_ascii(bytes: &[u8]) -> Option<(&str, Head<'_>)> {
    lift_from(bytes, Refuse::NonAscii)
}

/// The lift of `bytes`, which are UTF-8 unless `refuse` is
/// [`Refuse::NonAscii`] (then gathering refuses any byte from 0x80 up).
#[inline(always)]
fn lift_from(bytes: &[u8], refuse: Refuse) -> Option<(&str, Head<'_>)> {
    if bytes.len() > FAST_LINE_MAX {
        return None;
    }
    let (text, raw) = SHAPES.with(|shapes| {
        let mut shapes = shapes.borrow_mut();
        if !shapes.tokens.gather(bytes, refuse) {
            return None;
        }
        // SAFETY: the bytes came from a `&str`, or gathering found none
        // from 0x80 up: ASCII is UTF-8.
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        if let Some(raw) = shapes.fit(text) {
            return Some((text, raw));
        }
        let raw = grammar::walk(text, &shapes.tokens)?;
        shapes.learn(text);
        Some((text, raw))
    })?;
    // The one number quire reads is converted exactly as serde_json does.
    let timestamp = timestamp_value(raw.timestamp?)?;
    Some((
        text,
        Head {
            kind: raw.kind?,
            store: raw.store,
            system_id: raw.system_id,
            timestamp: Some(timestamp).filter(|t| t.is_finite())?,
        },
    ))
}

/// [`lift`] without remembered shapes: every line walked (tests compare).
#[cfg(test)]
fn lift_walking(text: &str) -> Option<Head<'_>> {
    let mut tokens = tokens::Tokens::default();
    if !tokens.gather(text.as_bytes(), Refuse::Nothing) {
        return None;
    }
    let raw = grammar::walk(text, &tokens)?;
    Some(Head {
        kind: raw.kind?,
        store: raw.store,
        system_id: raw.system_id,
        timestamp: Some(timestamp_value(raw.timestamp?)?).filter(|t| t.is_finite())?,
    })
}

/// The value serde_json reads from a number's text.
fn timestamp_value(text: &str) -> Option<f64> {
    plain_decimal(text).or_else(|| serde_json::from_str(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papyra_lines_take_the_fast_path() {
        let line = r#"{"kind": "event", "system_id": "local", "actor_address": "local:w-1", "payload": {"n": 12, "xs": [1.5e3, -0, true, null, "é"]}, "timestamp": 1700000000.125}"#;
        assert_eq!(
            lift(line),
            Some(Head {
                kind: "event",
                store: None,
                system_id: Some("local"),
                timestamp: 1700000000.125,
            })
        );
        assert_eq!(
            lift(r#" {"timestamp":-0,"store":"s","kind":"a"} "#).map(|h| h.timestamp.to_bits()),
            Some(serde_json::from_str::<f64>("-0").unwrap().to_bits()),
            "an integer converts as serde_json converts it"
        );
    }

    /// From bytes, an ASCII line lifts exactly as its text does; any other
    /// line, valid UTF-8 or not, is left to the caller.
    #[test]
    fn ascii_lines_lift_from_bytes_and_others_are_left_to_the_caller() {
        let seed = r#"{"kind": "event", "store": "s", "payload": {"n": [1, "x"]}, "timestamp": 1700000000.125}"#;
        let alphabet = b"{}[]:,\" tfn0123456789.-kx\xc3\xa9\xff\x80";
        let mut lifted = 0;
        for line in crate::edits::single_edits(seed.as_bytes(), alphabet) {
            let got = lift_ascii(&line);
            let want = match std::str::from_utf8(&line) {
                Ok(text) if line.is_ascii() => lift(text).map(|head| (text, head)),
                _ => None,
            };
            assert_eq!(got, want, "{}", String::from_utf8_lossy(&line));
            lifted += usize::from(got.is_some());
        }
        assert!(lifted > 100, "{lifted}");
        let accented = r#"{"kind": "été", "timestamp": 1}"#;
        assert!(lift(accented).is_some());
        assert_eq!(lift_ascii(accented.as_bytes()), None);
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for line in [
            r#"{"kind":"a\"b","timestamp":1}"#,
            r#"{"kind":"a","timestamp":1,"kind":"b"}"#,
            r#"{"kind":null,"timestamp":1}"#,
            r#"{"kind":"a","timestamp":"1"}"#,
            r#"{"kind":"a","timestamp":01}"#,
            r#"{"kind":"a","timestamp":1.}"#,
            r#"{"kind":"a","timestamp":1,}"#,
            r#"{"kind":"a","timestamp":1} x"#,
            r#"{"kind":"a","timestamp":1e999}"#,
            r#"{"kind":"a"}"#,
            r#"{"timestamp":1}"#,
            "{\"kind\":\"a\u{1}\",\"timestamp\":1}",
            r#"{"k\u0069nd":"a","timestamp":1}"#,
            r#"[{"kind":"a","timestamp":1}]"#,
            r#"{"kind":"a","timestamp":1,"x":[1,]}"#,
            r#"{"kind":"a","timestamp":1,"x":tru}"#,
        ] {
            assert_eq!(lift(line), None, "{line}");
        }
        let deep = format!(
            r#"{{"kind":"a","timestamp":1,"x":{}{}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert_eq!(lift(&deep), None);
    }

    #[test]
    fn lines_of_every_length_take_the_fast_path() {
        for len in (0..2100)
            .step_by(7)
            .chain([64, 256, 1024, 1025, 4096, 60_000])
        {
            let line = format!(
                r#"{{"kind":"event","note":"{}","n":[{{}}, [], "{}"],"timestamp":5}}"#,
                "x".repeat(len),
                "{:}[,".repeat(len % 13)
            );
            assert_eq!(lift(&line).map(|h| h.timestamp), Some(5.0), "{len}");
            let cut = &line[..line.len() - 1];
            assert_eq!(lift(cut), None, "{len}: an unclosed object");
        }
        let huge = format!(
            r#"{{"kind":"k","x":"{}","timestamp":1}}"#,
            "x".repeat(FAST_LINE_MAX)
        );
        assert_eq!(lift(&huge), None, "a line past the limit is left to serde");
        assert!(SHAPES.with(|s| s.borrow().tokens.capacity()) <= FAST_LINE_MAX + 64);
    }

    #[test]
    fn plain_decimals_read_as_serde_json_reads_them() {
        let mut next = crate::edits::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut fast = 0;
        for _ in 0..200_000 {
            let len = 1 + (next() % 17) as usize;
            let mut digits: String = (0..len)
                .map(|_| (b'0' + (next() % 10) as u8) as char)
                .collect();
            if digits.len() > 1 && digits.starts_with('0') {
                digits.replace_range(0..1, "1");
            }
            let mut text = digits.clone();
            let point = (next() % (len as u64 + 1)) as usize;
            if point > 0 && point < len {
                text.insert(point, '.');
            }
            if next().is_multiple_of(2) {
                text.insert(0, '-');
            }
            let want: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(
                timestamp_value(&text).map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
            fast += usize::from(plain_decimal(&text).is_some());
        }
        assert!(fast > 100_000, "{fast}");
        // Whatever the fast reading accepts, serde_json reads as the same
        // number: every text of up to 18 characters over these bytes.
        let alphabet = b"0123456789.-e";
        let mut accepted = 0;
        for _ in 0..300_000 {
            let len = (next() % 19) as usize;
            let text: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            if let Some(v) = plain_decimal(&text) {
                let want: f64 = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{text:?} read as {v}, serde_json says {e}"));
                assert_eq!(v.to_bits(), want.to_bits(), "{text:?}");
                accepted += 1;
            }
        }
        assert!(accepted > 1_000, "{accepted}");
        for text in [
            "01", "1.", ".5", "-", "-.5", "00.5", "1..2", "1.2.3", "--1", "1-",
        ] {
            assert_eq!(plain_decimal(text), None, "{text}");
        }
        assert_eq!(plain_decimal("0.5"), Some(0.5));
        assert_eq!(plain_decimal("-10.25"), Some(-10.25));
        for text in [
            "1700000000.125",
            "0.1",
            "-12.5",
            "42",
            "1e3",
            "-0",
            "0.0",
            "1234567890123456",
        ] {
            let want: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(
                timestamp_value(text).map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
        }
    }

    /// A line that fits a remembered shape gets exactly the answer the
    /// grammar walk gives: every single edit of lines whose shapes are
    /// remembered, edits in keys, words, strings and structure alike.
    #[test]
    fn remembered_shapes_answer_as_the_walk_does() {
        let seeds = [
            r#"{"kind": "event", "system_id": "local", "payload": {"n": 12, "ok": true, "xs": [1, null]}, "timestamp": 1700000000.125}"#,
            r#"{"timestamp":7,"store":"s","kind":"audit","a":[],"b":{}}"#,
            r#"{"kind":"dead_letter","timestamp":-1.5e3,"system_id":"x","store":"y"}"#,
        ];
        let alphabet = b"{}[]:,\" tfn0123456789.-+eE\\\x01\xc3kindstoreyx_";
        let mut fitted = 0;
        for seed in seeds {
            for line in crate::edits::single_edits(seed.as_bytes(), alphabet) {
                let Ok(text) = std::str::from_utf8(&line) else {
                    continue;
                };
                for known in seeds {
                    assert!(lift(known).is_some(), "{known}");
                }
                let remembered = SHAPES.with(|s| s.borrow().remembers(text));
                assert_eq!(lift(text), lift_walking(text), "{text}");
                fitted += usize::from(remembered);
            }
        }
        assert!(fitted > 1000, "only {fitted} edits fit a remembered shape");
    }
}
