//! Records as applications hand them to quire.

use serde_json::{Map, Value};

use crate::bindings::Envelope;
use crate::error::{Error, Result};

/// Store name for records that name none (same as the guest helper's).
pub const DEFAULT_STORE: &str = "default";

/// A record ready to append: the JSON text plus the fields lifted out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `kind` field.
    pub kind: String,
    /// `store`, else `system_id`, else `default`.
    pub store: String,
    /// `timestamp` field, unix seconds.
    pub timestamp: f64,
    /// The whole record as one line of JSON.
    pub json: String,
}

impl Record {
    /// Parses one line of JSON. The text is kept byte for byte when it is
    /// already a complete record; a missing `timestamp` is filled with `now`
    /// (Papyra's readers drop records without one).
    pub fn from_json_line(line: &str, now: f64) -> Result<Self> {
        let line = line.trim();
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Error::InvalidRecord(format!("invalid JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(Error::InvalidRecord("not a JSON object".into()));
        };
        let kind = match map.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => {
                return Err(Error::InvalidRecord(
                    "no `kind` string (event, audit, dead_letter, ...)".into(),
                ));
            }
        };
        let (timestamp, json) = match map.get("timestamp") {
            Some(Value::Number(n)) => match n.as_f64().filter(|t| t.is_finite()) {
                Some(t) => (t, line.to_string()),
                None => {
                    return Err(Error::InvalidRecord(
                        "`timestamp` is not a finite number".into(),
                    ));
                }
            },
            None => {
                map.insert("timestamp".into(), Value::from(now));
                (now, serde_json::to_string(&map).expect("a map serializes"))
            }
            Some(_) => {
                return Err(Error::InvalidRecord(
                    "`timestamp` must be unix seconds as a number".into(),
                ));
            }
        };
        Ok(Record {
            store: store_of(&map),
            kind,
            timestamp,
            json,
        })
    }

    /// Builds a record from fields; `kind` and `timestamp` are set in them.
    pub fn new(kind: &str, timestamp: f64, fields: Map<String, Value>) -> Result<Self> {
        if !timestamp.is_finite() {
            return Err(Error::InvalidRecord(
                "timestamp is not a finite number".into(),
            ));
        }
        let mut map = Map::new();
        map.insert("kind".into(), Value::from(kind));
        for (k, v) in fields {
            if k != "kind" && k != "timestamp" {
                map.insert(k, v);
            }
        }
        map.insert("timestamp".into(), Value::from(timestamp));
        Ok(Record {
            kind: kind.into(),
            store: store_of(&map),
            timestamp,
            json: serde_json::to_string(&map).expect("a map serializes"),
        })
    }

    /// The record's JSON as a value.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// A record read back, ready to append elsewhere (its fields were
    /// checked when it was first appended).
    pub(crate) fn from_envelope(e: Envelope) -> Self {
        Record {
            kind: e.kind,
            store: e.store,
            timestamp: e.timestamp,
            json: e.json,
        }
    }

    pub(crate) fn into_envelope(self) -> Envelope {
        Envelope {
            kind: self.kind,
            store: self.store,
            timestamp: self.timestamp,
            json: self.json,
        }
    }
}

fn store_of(map: &Map<String, Value>) -> String {
    ["store", "system_id"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .unwrap_or(DEFAULT_STORE)
        .to_string()
}

/// Current unix time in seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_and_lifts_fields() {
        let r = Record::from_json_line(
            r#"{"kind": "event", "system_id": "s1", "timestamp": 1.25}"#,
            9.0,
        )
        .unwrap();
        assert_eq!(
            (r.kind.as_str(), r.store.as_str(), r.timestamp),
            ("event", "s1", 1.25)
        );
        assert_eq!(
            r.json,
            r#"{"kind": "event", "system_id": "s1", "timestamp": 1.25}"#
        );
    }

    #[test]
    fn fills_missing_timestamp_and_refuses_bad_input() {
        let r = Record::from_json_line(r#"{"kind":"audit"}"#, 7.5).unwrap();
        assert_eq!(r.timestamp, 7.5);
        assert!(r.json.contains("\"timestamp\":7.5"));
        assert!(Record::from_json_line("[1]", 0.0).is_err());
        assert!(Record::from_json_line(r#"{"timestamp":1}"#, 0.0).is_err());
        assert!(Record::from_json_line(r#"{"kind":"e","timestamp":"x"}"#, 0.0).is_err());
    }
}
