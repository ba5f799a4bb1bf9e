//! What retention policies share: checking that the host follows the
//! two-pass protocol, and reading a JSON object configuration.
//!
//! The protocol, for filtered units: every record goes through `observe`
//! (pass one) before any goes through `decide` (pass two), and pass two sees
//! the same records in the same order. A host that breaks the order gets an
//! error instead of a silent wrong answer.

use std::cell::Cell;

use serde_json::{Map, Value};

use crate::policy::{MetaBatch, PolicyError};

/// What a policy is told about one record, borrowed from its batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordMeta<'a> {
    /// The record's kind.
    pub kind: &'a str,
    /// Its store.
    pub store: &'a str,
    /// Unix seconds.
    pub timestamp: f64,
    /// Bytes on disk, as the backend reported them.
    pub stored_bytes: u64,
}

/// The records of a `meta-batch`, in order.
pub fn metas(batch: &MetaBatch) -> Result<Vec<RecordMeta<'_>>, PolicyError> {
    let name = |i: u32| {
        batch
            .names
            .get(i as usize)
            .map(String::as_str)
            .ok_or_else(|| {
                PolicyError::InvalidState(format!("name index {i} of {} names", batch.names.len()))
            })
    };
    batch
        .entries
        .iter()
        .map(|e| {
            Ok(RecordMeta {
                kind: name(e.kind)?,
                store: name(e.store)?,
                timestamp: e.timestamp,
                stored_bytes: e.stored_bytes,
            })
        })
        .collect()
}

/// Records seen by each pass so far. Methods take `&self` because the
/// evaluator resource they live in is only ever borrowed.
#[derive(Default, Debug)]
pub struct Passes {
    observed: Cell<u64>,
    decided: Cell<u64>,
    deciding: Cell<bool>,
}

impl Passes {
    /// Accounts for a pass-one batch of `len` records.
    pub fn observe(&self, len: usize) -> Result<(), PolicyError> {
        if self.deciding.get() {
            return Err(PolicyError::InvalidState(format!(
                "observe called after decide had begun ({} of {} records decided); pass one must finish before pass two",
                self.decided.get(),
                self.observed.get()
            )));
        }
        self.observed.set(self.observed.get() + len as u64);
        Ok(())
    }

    /// Accounts for a pass-two batch of `len` records.
    pub fn decide(&self, len: usize) -> Result<(), PolicyError> {
        self.deciding.set(true);
        let after = self.decided.get() + len as u64;
        if after > self.observed.get() {
            return Err(PolicyError::InvalidState(format!(
                "decide got records up to #{after} but observe saw only {}; pass two must replay the records of pass one",
                self.observed.get()
            )));
        }
        self.decided.set(after);
        Ok(())
    }
}

/// The fields of the JSON object in `text`; blank text is the empty object.
/// A field not in `known` is refused: a misspelt name would otherwise
/// silently fall back to its default. Every error ends with `expected`,
/// which says what a valid configuration looks like.
pub fn config_fields(
    text: &str,
    known: &[&str],
    expected: &str,
) -> Result<Map<String, Value>, String> {
    let fields = if text.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str(text) {
            Ok(Value::Object(fields)) => fields,
            Ok(other) => {
                return Err(format!(
                    "configuration is not a JSON object: `{other}`; {expected}"
                ));
            }
            Err(e) => return Err(format!("configuration is not valid JSON ({e}); {expected}")),
        }
    };
    if let Some(name) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown field `{name}`; {expected}"));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::{Passes, PolicyError, config_fields};

    fn state_message(result: Result<(), PolicyError>) -> String {
        match result {
            Err(PolicyError::InvalidState(m)) => m,
            other => panic!("expected invalid-state, got {other:?}"),
        }
    }

    #[test]
    fn decide_follows_observe() {
        let p = Passes::default();
        p.observe(3).unwrap();
        p.observe(2).unwrap();
        p.decide(4).unwrap();
        p.decide(1).unwrap();
    }

    #[test]
    fn observe_after_decide_is_refused() {
        let p = Passes::default();
        p.observe(2).unwrap();
        p.decide(1).unwrap();
        let e = state_message(p.observe(1));
        assert!(e.contains("observe called after decide"), "{e}");
    }

    #[test]
    fn decide_beyond_observed_is_refused() {
        let p = Passes::default();
        p.observe(2).unwrap();
        let e = state_message(p.decide(3));
        assert!(
            e.contains("records up to #3") && e.contains("saw only 2"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_decide_still_ends_pass_one() {
        let p = Passes::default();
        p.decide(0).unwrap();
        assert!(p.observe(0).is_err());
    }

    #[test]
    fn blank_text_is_the_empty_object() {
        for text in ["", "  \n", "{}", " { } "] {
            assert!(
                config_fields(text, &[], "E").unwrap().is_empty(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn known_fields_pass_and_the_first_unknown_is_named() {
        let fields = config_fields(r#"{"a": 1, "b": 2}"#, &["a", "b"], "E").unwrap();
        assert_eq!(fields.len(), 2);
        let e = config_fields(r#"{"a": 1, "zz": 2, "c": 3}"#, &["a"], "E").unwrap_err();
        assert_eq!(e, "unknown field `c`; E");
    }

    #[test]
    fn non_objects_and_bad_json_are_refused_with_the_expectation() {
        let e = config_fields("[]", &[], "E").unwrap_err();
        assert_eq!(e, "configuration is not a JSON object: `[]`; E");
        let e = config_fields("{", &[], "E").unwrap_err();
        assert!(
            e.starts_with("configuration is not valid JSON (") && e.ends_with("); E"),
            "{e}"
        );
    }
}
