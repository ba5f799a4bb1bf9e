//! What a line of NDJSON is: a record, or which kind of damage.
//!
//! Scan and read both call [`classify`], so the two can never disagree about
//! which lines are records (Papyra's scan and read did).

use std::borrow::Cow;

use serde::Deserialize;

use crate::types::{AnomalyKind, Envelope, ReadFilter};

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

/// Classifies one line (without its newline). `terminated` is false for a
/// final line with no newline: even valid JSON there is a torn append.
pub fn classify(line: &[u8], terminated: bool) -> Verdict<'_> {
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
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Verdict::Damaged(AnomalyKind::CorruptedRecord, format!("invalid UTF-8: {e}"));
        }
    };
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
pub fn matches(filter: &ReadFilter, kind: &str, store: &str, timestamp: f64) -> bool {
    (filter.kinds.is_empty() || filter.kinds.iter().any(|k| k == kind))
        && (filter.stores.is_empty() || filter.stores.iter().any(|s| s == store))
        && filter.since.is_none_or(|s| timestamp >= s)
        && filter.until.is_none_or(|u| timestamp < u)
}

/// Checks an envelope handed to `append` for a line format: one line, an
/// object. Returns the reason it is unacceptable.
pub fn check_appendable(envelope: &Envelope) -> Result<(), String> {
    let json = envelope.json.as_bytes();
    if json.contains(&b'\n') || json.contains(&b'\r') {
        return Err("record JSON contains a line break".into());
    }
    if json.first() != Some(&b'{') || json.last() != Some(&b'}') {
        return Err("record JSON is not an object".into());
    }
    if !envelope.timestamp.is_finite() {
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
}
