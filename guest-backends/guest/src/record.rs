//! What a line of NDJSON is: a record, or which kind of damage.
//!
//! Scan and read both call [`classify`], so the two can never disagree about
//! which lines are records (Papyra's scan and read did).

use std::borrow::Cow;

use serde::Deserialize;

use crate::batch::EnvelopeRef;
use crate::lines::Line;
use crate::types::{AnomalyKind, ReadFilter};

/// The fields quire needs from a record; everything else is validated by
/// the parser and skipped without being built.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    timestamp: Option<f64>,
    #[serde(borrow)]
    store: Option<Cow<'a, str>>,
    #[serde(borrow)]
    system_id: Option<Cow<'a, str>>,
}

/// A line's verdict.
pub enum Verdict<'a> {
    /// A valid record.
    Record {
        /// Its kind.
        kind: Cow<'a, str>,
        /// Its store (`store`, else `system_id`, else `default`).
        store: Cow<'a, str>,
        /// Its timestamp.
        timestamp: f64,
        /// The JSON text (the line without `\r`).
        json: &'a str,
    },
    /// Damage of the given kind, with a message for the report.
    Damaged(AnomalyKind, String),
}

/// Store name for records that name none.
pub const DEFAULT_STORE: &str = "default";

/// Classifies a line as a [`LineReader`](crate::lines::LineReader) found it
/// (its UTF-8 already checked with its neighbours when it could be).
pub fn classify_line<'a>(line: &Line<'a>) -> Verdict<'a> {
    classify_checked(line.bytes, line.terminated, line.utf8)
}

/// Classifies one line (without its newline). `terminated` is false for a
/// final line with no newline: even valid JSON there is a torn append.
pub fn classify(line: &[u8], terminated: bool) -> Verdict<'_> {
    classify_checked(line, terminated, false)
}

fn classify_checked(line: &[u8], terminated: bool, utf8: bool) -> Verdict<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !terminated {
        return Verdict::Damaged(
            AnomalyKind::TruncatedTail,
            format!(
                "last line has no newline ({} bytes): the writer stopped mid-append",
                line.len()
            ),
        );
    }
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Verdict::Damaged(AnomalyKind::BlankLine, "blank line".into());
    }
    if line.iter().all(|&b| b == 0) {
        return Verdict::Damaged(
            AnomalyKind::PartialWrite,
            format!("{} zero bytes", line.len()),
        );
    }
    let bench_build = cfg!(feature = "bench-no-check") || cfg!(feature = "bench-serde-check");
    if !utf8 && !bench_build {
        // Most lines are ASCII: then the lift sees it while gathering the
        // line's tokens, and no UTF-8 pass of its own is needed.
        if let Some((text, head)) = crate::head::lift_ascii(line) {
            return lifted(text, head);
        }
    }
    let text = if utf8 {
        // SAFETY: the reader checked this line's bytes as UTF-8, as part of
        // a run of whole lines (cut at newlines, which are ASCII, so the
        // line is UTF-8 on its own; so is it without a final `\r`).
        unsafe { std::str::from_utf8_unchecked(line) }
    } else {
        match simdutf8::basic::from_utf8(line) {
            Ok(t) => t,
            Err(_) => {
                let e = std::str::from_utf8(line).expect_err("both validators agree");
                return Verdict::Damaged(
                    AnomalyKind::CorruptedRecord,
                    format!("invalid UTF-8: {e}"),
                );
            }
        }
    };
    if cfg!(feature = "bench-no-check") {
        return Verdict::Record {
            kind: Cow::Borrowed("event"),
            store: Cow::Borrowed(DEFAULT_STORE),
            timestamp: 0.0,
            json: text,
        };
    }
    if cfg!(feature = "bench-serde-check") {
        return classify_with_serde(text);
    }
    if let Some(head) = crate::head::lift(text) {
        return lifted(text, head);
    }
    classify_with_serde(text)
}

/// The verdict on a line the fast path lifted.
fn lifted<'a>(text: &'a str, head: crate::head::Head<'a>) -> Verdict<'a> {
    Verdict::Record {
        kind: Cow::Borrowed(head.kind),
        store: Cow::Borrowed(head.store.or(head.system_id).unwrap_or(DEFAULT_STORE)),
        timestamp: head.timestamp,
        json: text,
    }
}

/// The verdict on a UTF-8 line the fast path left undecided.
fn classify_with_serde(text: &str) -> Verdict<'_> {
    let first = text.trim_start().as_bytes().first().copied();
    if first != Some(b'{') {
        // Valid JSON that is not an object is a different fault from garbage.
        let kind = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            AnomalyKind::InvalidRecord
        } else {
            AnomalyKind::CorruptedRecord
        };
        return Verdict::Damaged(kind, "not a JSON object".into());
    }
    match serde_json::from_str::<Head>(text) {
        Err(e) => Verdict::Damaged(AnomalyKind::CorruptedRecord, format!("invalid JSON: {e}")),
        Ok(head) => match (head.kind, head.timestamp) {
            (Some(kind), Some(timestamp)) if timestamp.is_finite() => Verdict::Record {
                kind,
                store: head
                    .store
                    .or(head.system_id)
                    .unwrap_or(Cow::Borrowed(DEFAULT_STORE)),
                timestamp,
                json: text,
            },
            (None, _) => Verdict::Damaged(
                AnomalyKind::InvalidRecord,
                "record has no `kind` string".into(),
            ),
            (_, _) => Verdict::Damaged(
                AnomalyKind::InvalidRecord,
                "record has no numeric `timestamp`".into(),
            ),
        },
    }
}

/// Whether a record passes a read filter.
#[inline]
pub fn matches(filter: &ReadFilter, kind: &str, store: &str, timestamp: f64) -> bool {
    (filter.kinds.is_empty() || filter.kinds.iter().any(|k| k == kind))
        && (filter.stores.is_empty() || filter.stores.iter().any(|s| s == store))
        && filter.since.is_none_or(|s| timestamp >= s)
        && filter.until.is_none_or(|u| timestamp < u)
}

/// Checks an envelope handed to `append` for a line format: one line, an
/// object. Returns the reason it is unacceptable.
pub fn check_appendable(envelope: EnvelopeRef<'_>) -> Result<(), String> {
    let json = envelope.json.as_bytes();
    if memchr::memchr2(b'\n', b'\r', json).is_some() {
        return Err("record JSON contains a line break".into());
    }
    check_object(json, envelope.timestamp)
}

/// [`check_appendable`] without the line-break check (done once for a
/// whole batch by `linefile::checked_text`).
#[inline]
pub fn check_object(json: &[u8], timestamp: f64) -> Result<(), String> {
    if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
        return Err("record JSON is not an object".into());
    }
    if !timestamp.is_finite() {
        return Err("timestamp is not a finite number".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(line: &str) -> Option<AnomalyKind> {
        match classify(line.as_bytes(), true) {
            Verdict::Record { .. } => None,
            Verdict::Damaged(k, _) => Some(k),
        }
    }

    #[test]
    fn papyra_lines_are_records_in_any_spacing_and_order() {
        assert!(kind_of(r#"{"kind": "event", "system_id": "a", "timestamp": 1.5}"#).is_none());
        assert!(kind_of(r#"{"timestamp":1.5,"kind":"audit"}"#).is_none());
        assert!(kind_of("{\"kind\":\"event\",\"timestamp\":2}\r").is_none());
    }

    #[test]
    fn damage_is_told_apart() {
        assert!(matches!(kind_of(""), Some(AnomalyKind::BlankLine)));
        assert!(matches!(kind_of("[1,2]"), Some(AnomalyKind::InvalidRecord)));
        assert!(matches!(
            kind_of(r#"{"kind":"event""#),
            Some(AnomalyKind::CorruptedRecord)
        ));
        assert!(matches!(
            kind_of(r#"{"timestamp":1}"#),
            Some(AnomalyKind::InvalidRecord)
        ));
        assert!(matches!(kind_of("\0\0\0"), Some(AnomalyKind::PartialWrite)));
        assert!(matches!(
            classify(br#"{"kind":"event","timestamp":1}"#, false),
            Verdict::Damaged(AnomalyKind::TruncatedTail, _)
        ));
    }

    /// The fast path never says anything serde_json would not: every line
    /// it accepts, serde accepts with the same fields. Lines are mutated
    /// records (bytes flipped, inserted, removed, ranges repeated).
    mod fast_path_agrees_with_serde {
        use super::*;
        use proptest::prelude::*;

        const SEEDS: &[&str] = &[
            r#"{"kind": "event", "system_id": "local", "actor_address": "local:worker-3", "event_type": "Tick", "payload": {"n": 12, "note": "mailbox drained"}, "timestamp": 1700000000.125}"#,
            r#"{"timestamp":-12.5e-3,"store":"s","kind":"audit","x":[true,false,null,{"a":[]},-0.0E+1]}"#,
            r#"{"kind":"dead_letter","store":"q","system_id":"p","message":"é \"quoted\" \\ \u00e9","timestamp":17}"#,
        ];
        const ALPHABET: &[u8] = b"{}[]:,\" 0123456789.-+eEtrufalsnkidmpy\\\x01\t\xc3\xa9\xff";

        fn serde_fields(text: &str) -> Option<(String, String, u64)> {
            match classify_with_serde(text) {
                Verdict::Record {
                    kind,
                    store,
                    timestamp,
                    ..
                } => Some((kind.into_owned(), store.into_owned(), timestamp.to_bits())),
                Verdict::Damaged(..) => None,
            }
        }

        fn mutate(seed: &str, ops: &[(u8, usize, u8)]) -> Vec<u8> {
            let mut bytes = seed.as_bytes().to_vec();
            for &(op, at, b) in ops {
                let at = at % (bytes.len() + 1);
                match op % 4 {
                    0 if at < bytes.len() => bytes[at] = ALPHABET[b as usize % ALPHABET.len()],
                    1 => bytes.insert(at, ALPHABET[b as usize % ALPHABET.len()]),
                    2 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {
                        let end = (at + b as usize % 12).min(bytes.len());
                        let run = bytes[at..end].to_vec();
                        bytes.splice(at..at, run);
                    }
                }
            }
            bytes
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]
            #[test]
            fn on_mutated_records(
                seed in 0..SEEDS.len(),
                ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..4),
            ) {
                let bytes = mutate(SEEDS[seed], &ops);
                let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(()) };
                if let Some(head) = crate::head::lift(text) {
                    let store = head.store.or(head.system_id).unwrap_or(DEFAULT_STORE);
                    prop_assert_eq!(
                        serde_fields(text),
                        Some((head.kind.to_string(), store.to_string(), head.timestamp.to_bits())),
                        "{}", text
                    );
                }
            }
        }

        fn check(bytes: &[u8]) -> usize {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return 0;
            };
            let Some(head) = crate::head::lift(text) else {
                return 0;
            };
            let store = head.store.or(head.system_id).unwrap_or(DEFAULT_STORE);
            assert_eq!(
                serde_fields(text),
                Some((
                    head.kind.to_string(),
                    store.to_string(),
                    head.timestamp.to_bits()
                )),
                "{text}"
            );
            1
        }

        /// Every single edit of every seed: each byte replaced by, or
        /// preceded by, each byte of the alphabet, or removed.
        #[test]
        fn on_every_single_edit() {
            let mut accepted = 0;
            for seed in SEEDS {
                for line in quire_records::edits::single_edits(seed.as_bytes(), ALPHABET) {
                    accepted += check(&line);
                }
            }
            assert!(accepted > 1000, "the fast path took {accepted} edits");
        }

        #[test]
        fn seeds_without_escapes_take_the_fast_path() {
            assert!(crate::head::lift(SEEDS[0]).is_some());
            assert!(crate::head::lift(SEEDS[1]).is_some());
            assert!(crate::head::lift(SEEDS[2]).is_none(), "escapes go to serde");
            assert!(serde_fields(SEEDS[2]).is_some());
        }
    }
}
