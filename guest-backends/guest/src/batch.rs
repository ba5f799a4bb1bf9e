//! Record batches on the plugin's side of the boundary. Records cross in
//! bulk (`record-batch`: NDJSON text, names once, a column per field);
//! this module reads them as borrowed records and builds the batches
//! cursors return, so that a backend never handles the layout itself.

use quire_records::columns::BatchColumns;
use quire_records::layout;

use crate::errors::rejected;
use crate::types::{PluginError, RecordBatch, RecordPlace, StoredBatch};

/// One record, owned: for backends that keep records in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Record kind: `event`, `audit`, `dead_letter`, ...
    pub kind: String,
    /// Store or stream it belongs to.
    pub store: String,
    /// Unix seconds.
    pub timestamp: f64,
    /// The record, one JSON object without a newline.
    pub json: String,
}

/// One record of a batch, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvelopeRef<'a> {
    /// Its kind.
    pub kind: &'a str,
    /// Its store.
    pub store: &'a str,
    /// Unix seconds.
    pub timestamp: f64,
    /// Its JSON, one object without a newline.
    pub json: &'a str,
}

impl EnvelopeRef<'_> {
    /// An owned copy, for backends that keep records in memory.
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            kind: self.kind.to_string(),
            store: self.store.to_string(),
            timestamp: self.timestamp,
            json: self.json.to_string(),
        }
    }
}

impl<'a> From<&'a Envelope> for EnvelopeRef<'a> {
    fn from(e: &'a Envelope) -> Self {
        EnvelopeRef {
            kind: &e.kind,
            store: &e.store,
            timestamp: e.timestamp,
            json: &e.json,
        }
    }
}

/// Records in a batch whose columns agree (see [`check_columns`]).
pub fn len(batch: &RecordBatch) -> usize {
    batch.json_lens.len()
}

/// Refuses a batch whose columns (lengths, kinds, stores, timestamps)
/// differ in length, naming the first record one of them lacks.
pub fn check_columns(batch: &RecordBatch) -> Result<(), PluginError> {
    layout::columns(
        batch.json_lens.len(),
        batch.kinds.len(),
        batch.stores.len(),
        batch.timestamps.len(),
    )
    .map_err(|(n, reason)| rejected(n, reason))
}

/// The records of a batch, in order, after checking its layout (columns,
/// lengths, newlines, name indices, UTF-8). A batch that does not add up is
/// refused naming the first record that does not fit.
pub fn records(batch: &RecordBatch) -> Result<Vec<EnvelopeRef<'_>>, PluginError> {
    check_columns(batch)?;
    let text = simdutf8::basic::from_utf8(&batch.text).map_err(|_| {
        let e = std::str::from_utf8(&batch.text).expect_err("both validators agree");
        rejected(0, format!("batch text is not UTF-8: {e}"))
    })?;
    let names = &batch.names;
    let name = |i: u32| {
        names
            .get(i as usize)
            .map(String::as_str)
            .ok_or_else(|| format!("name index {i} of {} names", names.len()))
    };
    let mut records = Vec::with_capacity(len(batch));
    let lengths = batch.json_lens.iter().copied();
    // One walk: each record placed and its names looked up in turn, so the
    // first record that does not fit is the one named.
    layout::walk(&batch.text, lengths, |index, start, json| {
        // Each record sits between newlines (the walk saw to it), so it
        // never splits a character of the UTF-8 text.
        let start = start as usize;
        records.push(EnvelopeRef {
            kind: name(batch.kinds[index])?,
            store: name(batch.stores[index])?,
            timestamp: batch.timestamps[index],
            json: &text[start..start + json.len()],
        });
        Ok(())
    })
    .map_err(|(n, reason)| rejected(n, reason))?;
    Ok(records)
}

/// The records of a batch as owned envelopes.
pub fn envelopes(batch: &RecordBatch) -> Result<Vec<Envelope>, PluginError> {
    Ok(records(batch)?
        .iter()
        .map(EnvelopeRef::to_envelope)
        .collect())
}

/// Builds record batches (and, with places, cursor batches).
#[derive(Default)]
pub struct BatchBuilder {
    columns: BatchColumns,
    offsets: Vec<u64>,
    stored_bytes: Vec<u64>,
}

impl BatchBuilder {
    /// A builder for a cursor batch asked for as `max_records` and
    /// `max_bytes`: room for a typical batch up front (it still grows).
    pub fn for_cursor(max_records: u32, max_bytes: u32) -> Self {
        let records = (max_records as usize).min(1024);
        BatchBuilder {
            columns: BatchColumns::with_capacity(records, (max_bytes as usize).min(256 << 10)),
            offsets: Vec::with_capacity(records),
            stored_bytes: Vec::with_capacity(records),
        }
    }

    /// Adds a record.
    pub fn push(&mut self, e: EnvelopeRef<'_>) {
        self.columns.push(e.kind, e.store, e.timestamp, e.json);
    }

    /// Adds a record read back from `offset`, taking `stored_bytes`.
    pub fn push_stored(&mut self, e: EnvelopeRef<'_>, offset: u64, stored_bytes: u64) {
        self.push(e);
        self.offsets.push(offset);
        self.stored_bytes.push(stored_bytes);
    }

    /// Records so far.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Whether a cursor batch asked for as `max_records` and `max_bytes`
    /// is complete.
    pub fn full(&self, max_records: u32, max_bytes: u32) -> bool {
        self.len() >= max_records as usize || self.columns.text.len() >= max_bytes as usize
    }

    /// The record batch.
    pub fn finish(self) -> RecordBatch {
        let BatchColumns {
            text,
            names,
            json_lens,
            kinds,
            stores,
            timestamps,
        } = self.columns;
        RecordBatch {
            text,
            names: names.into_names(),
            json_lens,
            kinds,
            stores,
            timestamps,
        }
    }

    /// The cursor batch (every record added with [`BatchBuilder::push_stored`]).
    pub fn finish_stored(mut self) -> StoredBatch {
        let offsets = std::mem::take(&mut self.offsets);
        let stored_bytes = std::mem::take(&mut self.stored_bytes);
        StoredBatch {
            records: self.finish(),
            offsets,
            stored_bytes,
        }
    }
}

/// A batch of `envelopes` (tests and native harnesses build them so).
pub fn from_envelopes<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> RecordBatch {
    let mut b = BatchBuilder::default();
    for e in envelopes {
        b.push(e.into());
    }
    b.finish()
}

/// A record read back, owned, with where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// The record.
    pub envelope: Envelope,
    /// Byte offset of its first byte in its unit.
    pub offset: u64,
    /// Bytes it occupies, framing included.
    pub stored_bytes: u64,
}

/// A cursor batch as owned records (tests and native harnesses read them so).
pub fn owned(batch: &StoredBatch) -> Vec<StoredRecord> {
    stored(batch)
        .into_iter()
        .map(|(e, place)| StoredRecord {
            envelope: e.to_envelope(),
            offset: place.offset,
            stored_bytes: place.stored_bytes,
        })
        .collect()
}

/// The records of a cursor batch with their places (tests read them so).
pub fn stored(batch: &StoredBatch) -> Vec<(EnvelopeRef<'_>, RecordPlace)> {
    records(&batch.records)
        .expect("a batch this crate built")
        .into_iter()
        .zip(batch.offsets.iter().zip(&batch.stored_bytes))
        .map(|(e, (&offset, &stored_bytes))| {
            (
                e,
                RecordPlace {
                    offset,
                    stored_bytes,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(kind: &str, json: &str) -> Envelope {
        Envelope {
            kind: kind.into(),
            store: "s".into(),
            timestamp: 1.5,
            json: json.into(),
        }
    }

    #[test]
    fn batches_round_trip_and_bad_layouts_name_the_record() {
        let batch = from_envelopes(&[env("event", "{\"a\":1}"), env("audit", "{\"é\":2}")]);
        assert_eq!(batch.text, "{\"a\":1}\n{\"é\":2}\n".as_bytes());
        assert_eq!(batch.names, ["event", "s", "audit"]);
        let back = envelopes(&batch).unwrap();
        assert_eq!(back[1], env("audit", "{\"é\":2}"));

        let mut bad = batch.clone();
        bad.json_lens[1] += 1;
        match records(&bad) {
            Err(PluginError::InvalidRecord(r)) => assert_eq!(r.index, 1),
            other => panic!("{other:?}"),
        }
        let refused = |bad: &RecordBatch| match records(bad) {
            Err(PluginError::InvalidRecord(r)) => (r.index, r.reason),
            other => panic!("{other:?}"),
        };
        // Columns that differ in length: the first record one lacks.
        let mut bad = batch.clone();
        bad.timestamps.pop();
        assert_eq!(
            refused(&bad),
            (
                1,
                "the batch's columns differ: 2 lengths, 2 kinds, 2 stores, 1 timestamps".into()
            )
        );
        let mut bad = batch.clone();
        bad.kinds.push(0);
        assert_eq!(refused(&bad).0, 2);
        let mut bad = batch.clone();
        bad.stores[1] = 7;
        assert_eq!(refused(&bad), (1, "name index 7 of 3 names".into()));
        // The first record that does not fit is named, whatever is wrong.
        let mut bad = batch.clone();
        bad.kinds[0] = 3;
        bad.json_lens[1] += 1;
        assert_eq!(refused(&bad).0, 0);
        let mut bad = batch.clone();
        bad.json_lens[0] += 1;
        bad.kinds[1] = 3;
        assert_eq!(refused(&bad).0, 0);
        let mut bad = batch;
        bad.text.push(b'x');
        assert!(records(&bad).is_err());
    }

    #[test]
    fn cursor_batches_carry_places_and_know_when_they_are_full() {
        let mut b = BatchBuilder::default();
        let e = env("event", "{\"a\":1}");
        b.push_stored((&e).into(), 0, 8);
        assert!(!b.full(2, 100));
        b.push_stored((&e).into(), 8, 8);
        assert!(b.full(2, 100) && b.full(10, 16) && !b.full(10, 17));
        let batch = b.finish_stored();
        let got = stored(&batch);
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].1.offset, got[1].1.stored_bytes), (8, 8));
    }
}
