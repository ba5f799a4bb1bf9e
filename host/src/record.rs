//! Records as applications hand them to quire.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

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
        Self::from_json_string(line.trim().to_string(), now)
    }

    /// As [`Record::from_json_line`], taking the line by value so a record
    /// that needs no change keeps its text without a copy.
    pub fn from_json_string(mut line: String, now: f64) -> Result<Self> {
        let trimmed = line.trim();
        if trimmed.len() != line.len() {
            line = trimmed.to_string();
        }
        if let Some((kind, store, timestamp)) = lift_plain(&line) {
            let (kind, store) = (kind.to_string(), store.to_string());
            return Ok(Record {
                kind,
                store,
                timestamp,
                json: line,
            });
        }
        let head = match serde_json::from_str::<Head<'_>>(&line) {
            Ok(Head::Object(fields)) => fields,
            Ok(Head::NotObject) => return Err(Error::InvalidRecord("not a JSON object".into())),
            Err(e) => return Err(Error::InvalidRecord(format!("invalid JSON: {e}"))),
        };
        let kind = match head.kind {
            Some(Scalar::Str(k)) if !k.is_empty() => k.into_owned(),
            _ => {
                return Err(Error::InvalidRecord(
                    "no `kind` string (event, audit, dead_letter, ...)".into(),
                ));
            }
        };
        let store = match (head.store, head.system_id) {
            (Some(Scalar::Str(s)), _) | (_, Some(Scalar::Str(s))) => s.into_owned(),
            _ => DEFAULT_STORE.to_string(),
        };
        match head.timestamp {
            Some(Scalar::Num(t)) if t.is_finite() => Ok(Record {
                kind,
                store,
                timestamp: t,
                json: line,
            }),
            Some(Scalar::Num(_)) => Err(Error::InvalidRecord(
                "`timestamp` is not a finite number".into(),
            )),
            Some(_) => Err(Error::InvalidRecord(
                "`timestamp` must be unix seconds as a number".into(),
            )),
            None => {
                // Rare: rebuild the object with the time added at the end.
                let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&line) else {
                    unreachable!("the line parsed as an object above")
                };
                map.insert("timestamp".into(), Value::from(now));
                Ok(Record {
                    kind,
                    store,
                    timestamp: now,
                    json: serde_json::to_string(&map).expect("a map serializes"),
                })
            }
        }
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
}

/// Kind, store and timestamp of a plain record line (trimmed), lifted in
/// one pass (`quire_records::head`); `None` when serde must decide. The fast
/// path accepts only lines the serde path below accepts with the same
/// fields; an empty kind (refused below) and a zero timestamp (`-0` is
/// read two ways) are left to it.
pub(crate) fn lift_plain(line: &str) -> Option<(&str, &str, f64)> {
    let head = quire_records::head::lift(line)?;
    if head.kind.is_empty() || head.timestamp == 0.0 {
        return None;
    }
    let store = head.store.or(head.system_id).unwrap_or(DEFAULT_STORE);
    Some((head.kind, store, head.timestamp))
}

/// What a line is, read without building it: the four fields quire lifts
/// (the last occurrence of a key wins, as in a JSON object read whole), the
/// rest validated and skipped.
enum Head<'a> {
    Object(Fields<'a>),
    NotObject,
}

#[derive(Default)]
struct Fields<'a> {
    kind: Option<Scalar<'a>>,
    store: Option<Scalar<'a>>,
    system_id: Option<Scalar<'a>>,
    timestamp: Option<Scalar<'a>>,
}

/// A field's value, as far as lifting cares.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(f64),
    Other,
}

impl<'de> serde::Deserialize<'de> for Head<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(HeadVisitor)
    }
}

struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let slot = match key.as_ref() {
                "kind" => &mut fields.kind,
                "store" => &mut fields.store,
                "system_id" => &mut fields.system_id,
                "timestamp" => &mut fields.timestamp,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<Scalar<'de>>()?);
        }
        Ok(Head::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Head::NotObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Head::NotObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(Head::NotObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(Head::NotObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(Head::NotObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(Head::NotObject)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Head::NotObject)
    }
}

impl<'de> serde::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Num(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Scalar::Other)
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
        assert!(Record::from_json_line(r#"{"kind":"","timestamp":1}"#, 0.0).is_err());
        assert!(Record::from_json_line(r#"{"kind":"e","timestamp":1"#, 0.0).is_err());
        assert!(Record::from_json_line(r#"{"kind":"e","timestamp":1} x"#, 0.0).is_err());
        assert!(Record::from_json_line(r#"{"kind":"e","timestamp":1e999}"#, 0.0).is_err());
        assert!(Record::from_json_line(r#""text""#, 0.0).is_err());
    }

    #[test]
    fn lifts_as_a_whole_object_read_would() {
        // The last of duplicate keys wins; a non-string `store` falls back to
        // `system_id`; escaped keys are the same keys; whitespace is trimmed
        // and everything else kept byte for byte.
        let line = " {\"kind\":\"a\",\"store\":7,\"system_id\":\"s\\u0031\",\"ki\\u006ed\":\"b\",\"timestamp\":3,\"x\":[{\"timestamp\":\"no\"}]}\n";
        let r = Record::from_json_string(line.to_string(), 0.0).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.store.as_str(), r.timestamp),
            ("b", "s1", 3.0)
        );
        assert_eq!(r.json, line.trim());
        let r = Record::from_json_line(
            r#"{"kind":"e","store":"x","system_id":"y","timestamp":-2}"#,
            0.0,
        )
        .unwrap();
        assert_eq!((r.store.as_str(), r.timestamp), ("x", -2.0));
    }

    /// The fast path agrees with the serde path on every single edit of a
    /// few records (each byte replaced by, or preceded by, a JSON-ish byte,
    /// or removed), and takes most of them.
    #[test]
    fn the_fast_path_agrees_with_serde_on_every_single_edit() {
        const SEEDS: &[&str] = &[
            r#"{"kind": "event", "system_id": "local", "payload": {"n": 12, "xs": [1, -0.5e3, true, null]}, "timestamp": 1700000000.125}"#,
            r#"{"timestamp":-12,"store":"s","kind":"audit","system_id":"p"}"#,
        ];
        const ALPHABET: &[u8] = b"{}[]:,\" 0-9.eE+tfnuls\\k\x01";
        let slow = |line: &str| -> Option<(String, String, u64)> {
            // What lifting meant before the fast path: a whole JSON value.
            let value: Value = serde_json::from_str(line).ok()?;
            let map = value.as_object()?;
            let kind = map
                .get("kind")?
                .as_str()
                .filter(|k| !k.is_empty())?
                .to_string();
            let ts = map.get("timestamp")?.as_f64().filter(|t| t.is_finite())?;
            Some((kind, store_of(map), ts.to_bits()))
        };
        let mut taken = 0;
        let mut check = |bytes: &[u8]| {
            let Ok(line) = std::str::from_utf8(bytes) else {
                return;
            };
            let line = line.trim();
            if let Some((kind, store, ts)) = lift_plain(line) {
                taken += 1;
                assert_eq!(
                    slow(line),
                    Some((kind.to_string(), store.to_string(), ts.to_bits())),
                    "{line}"
                );
                let r = Record::from_json_line(line, 0.0).unwrap();
                assert_eq!(
                    (r.kind.as_str(), r.store.as_str(), r.json.as_str()),
                    (kind, store, line)
                );
            }
        };
        for seed in SEEDS {
            for line in quire_records::edits::single_edits(seed.as_bytes(), ALPHABET) {
                check(&line);
            }
        }
        assert!(taken > 1000, "the fast path took {taken} edits");
    }
}
