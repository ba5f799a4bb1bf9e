//! Stream entries as records: what `XRANGE` returns, decided the same way
//! for scan and read (a record a scan would flag is never read).

use quire_guest::record::{self, Verdict};
use quire_guest::types::AnomalyKind;

use crate::ids::{self, EntryId};
use crate::resp::Reply;

/// One entry of a stream, as the server sent it.
pub struct Entry<'a> {
    /// Its id (`None` when the server sent one quire cannot read).
    pub id: Option<EntryId>,
    /// The id as sent, for messages.
    pub raw_id: &'a [u8],
    /// Field names and values, alternating.
    pub fields: &'a [Reply],
}

/// The entries of an `XRANGE`/`XREVRANGE` reply.
pub fn entries(reply: &Reply) -> Result<Vec<Entry<'_>>, String> {
    let items = reply
        .items()
        .ok_or_else(|| format!("expected a list of entries, got {}", reply.describe()))?;
    items
        .iter()
        .map(|item| {
            let pair = item.items().filter(|p| p.len() == 2);
            let (raw_id, fields) = match pair {
                Some([id, fields]) => (id.bytes(), fields.items()),
                _ => (None, None),
            };
            match (raw_id, fields) {
                (Some(raw_id), Some(fields)) => Ok(Entry {
                    id: EntryId::parse(raw_id),
                    raw_id,
                    fields,
                }),
                _ => Err(format!(
                    "expected an entry [id, fields], got {}",
                    item.describe()
                )),
            }
        })
        .collect()
}

/// A record read from an entry.
pub struct Found<'a> {
    /// Its kind.
    pub kind: std::borrow::Cow<'a, str>,
    /// Its timestamp.
    pub timestamp: f64,
    /// Its JSON.
    pub json: &'a str,
}

impl Entry<'_> {
    /// The entry's place: its packed id.
    pub fn offset(&self) -> Option<u64> {
        self.id.and_then(EntryId::offset)
    }

    /// Bytes the entry counts as.
    pub fn bytes(&self) -> u64 {
        ids::entry_bytes(self.fields.iter().map(|f| f.bytes().unwrap_or(&[])))
    }

    /// The id as text, for messages.
    pub fn id_text(&self) -> String {
        String::from_utf8_lossy(self.raw_id).into_owned()
    }
}

/// An entry id as sent, displayed on demand.
struct IdText<'a>(&'a [u8]);

impl std::fmt::Display for IdText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
    }
}

impl Entry<'_> {
    /// The value of field `name` (the last one, if it is repeated).
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields.chunks(2).rev().find_map(|pair| match pair {
            [n, value] if n.bytes() == Some(name.as_bytes()) => value.bytes(),
            _ => None,
        })
    }

    /// The record the entry holds, or what is wrong with it. `stream_kind`
    /// is the kind its stream is for.
    pub fn record(&self, stream_kind: &str) -> Result<Found<'_>, (AnomalyKind, String)> {
        // Shown in messages only: no allocation for a record that is fine.
        let id = IdText(self.raw_id);
        let Some(packed) = self.id else {
            return Err((
                AnomalyKind::CorruptedRecord,
                format!("entry id `{id}` is not ms-seq"),
            ));
        };
        if packed.offset().is_none() {
            return Err((
                AnomalyKind::InvalidRecord,
                format!(
                    "entry {id}: quire addresses ids up to {}-{} (later ms, or a million \
                     entries in one ms, cannot be named)",
                    ids::MAX_MS,
                    ids::MAX_SEQ
                ),
            ));
        }
        let Some(data) = self.field("data") else {
            let names: Vec<String> = self
                .fields
                .chunks(2)
                .filter_map(|p| {
                    p[0].bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                })
                .collect();
            return Err((
                AnomalyKind::InvalidRecord,
                format!(
                    "entry {id} has no `data` field (fields: {})",
                    names.join(", ")
                ),
            ));
        };
        if data.contains(&b'\n') {
            return Err((
                AnomalyKind::InvalidRecord,
                format!("entry {id}: `data` spans lines; a record is one line of JSON"),
            ));
        }
        match record::classify(data, true) {
            Verdict::Record {
                kind,
                timestamp,
                json,
                ..
            } => {
                if kind != stream_kind {
                    return Err((
                        AnomalyKind::InvalidRecord,
                        format!("entry {id}: a `{kind}` record in the stream for `{stream_kind}`"),
                    ));
                }
                Ok(Found {
                    kind,
                    timestamp,
                    json,
                })
            }
            Verdict::Damaged(kind, detail) => Err((kind, format!("entry {id}: {detail}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[&[u8]]) -> Reply {
        Reply::Array(Some(vec![
            Reply::Bulk(Some(id.as_bytes().to_vec())),
            Reply::Array(Some(
                fields
                    .iter()
                    .map(|f| Reply::Bulk(Some(f.to_vec())))
                    .collect(),
            )),
        ]))
    }

    fn verdict(id: &str, fields: &[&[u8]]) -> Result<(String, f64), (AnomalyKind, String)> {
        let reply = Reply::Array(Some(vec![entry(id, fields)]));
        let list = entries(&reply).unwrap();
        list[0]
            .record("event")
            .map(|f| (f.kind.into_owned(), f.timestamp))
    }

    #[test]
    fn each_kind_of_damage_is_named_with_the_entry_id() {
        assert_eq!(
            verdict("5-1", &[b"data", br#"{"kind":"event","timestamp":2}"#]).unwrap(),
            ("event".into(), 2.0)
        );
        let cases: &[(&[&[u8]], AnomalyKind, &str)] = &[
            (
                &[b"other", b"x"],
                AnomalyKind::InvalidRecord,
                "no `data` field (fields: other)",
            ),
            (
                &[b"data", b"{not json"],
                AnomalyKind::CorruptedRecord,
                "invalid JSON",
            ),
            (
                &[b"data", b"[1,2]"],
                AnomalyKind::InvalidRecord,
                "not a JSON object",
            ),
            (
                &[b"data", b"{\"kind\":\"event\"}"],
                AnomalyKind::InvalidRecord,
                "timestamp",
            ),
            (
                &[b"data", b"{\"kind\":\"ev\xffent\",\"timestamp\":1}"],
                AnomalyKind::CorruptedRecord,
                "UTF-8",
            ),
            (
                &[b"data", b"{\"kind\":\"audit\",\"timestamp\":1}"],
                AnomalyKind::InvalidRecord,
                "in the stream for `event`",
            ),
            (
                &[b"data", b"{\"kind\":\"event\",\n\"timestamp\":1}"],
                AnomalyKind::InvalidRecord,
                "spans lines",
            ),
        ];
        for (fields, kind, words) in cases {
            let (k, detail) = verdict("5-1", fields).unwrap_err();
            assert_eq!(k, *kind, "{detail}");
            assert!(
                detail.starts_with("entry 5-1") && detail.contains(words),
                "{detail}"
            );
        }
        let (k, detail) = verdict("99999999999999999-0", &[b"data", b"{}"]).unwrap_err();
        assert_eq!(k, AnomalyKind::InvalidRecord);
        assert!(detail.contains("addresses ids up to"), "{detail}");
    }

    #[test]
    fn a_malformed_listing_is_an_error() {
        let bad = Reply::Array(Some(vec![Reply::Integer(3)]));
        assert!(entries(&bad).is_err());
        assert!(entries(&Reply::Integer(1)).is_err());
        assert!(entries(&Reply::Array(None)).unwrap().is_empty());
    }
}
