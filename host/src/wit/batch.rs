//! Record batches on the host's side of the boundary: built from records
//! for `append` and `rewriter.write`, meta-batches for policies, and the
//! conversions for plugins of older versions. (A batch a cursor returns is
//! untrusted: `read_batch.rs` checks it.)

use quire_records::columns::BatchColumns;
use quire_records::layout;
use quire_records::names::NameTable;

use super::{Envelope, MetaBatch, MetaEntry, RecordBatch, StoredBatch, StoredRecord};

/// Builds a `record-batch` record by record.
#[derive(Default)]
pub struct BatchBuilder(BatchColumns);

impl BatchBuilder {
    /// A builder with room for `records` records of `bytes` bytes of JSON.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        BatchBuilder(BatchColumns::with_capacity(records, bytes))
    }

    /// Adds one record.
    pub fn push(&mut self, kind: &str, store: &str, timestamp: f64, json: &str) {
        self.0.push(kind, store, timestamp, json);
    }

    /// Records so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds every record of `other`, after these.
    pub fn extend(&mut self, other: BatchBuilder) {
        self.0.extend(other.0);
    }

    /// The batch.
    pub fn finish(self) -> RecordBatch {
        let BatchColumns {
            text,
            names,
            json_lens,
            kinds,
            stores,
            timestamps,
        } = self.0;
        RecordBatch {
            text,
            names: names.into_names(),
            json_lens,
            kinds,
            stores,
            timestamps,
        }
    }
}

/// A batch of records as 0.2 and 0.1 plugins take them (the host built it).
pub fn envelopes(batch: &RecordBatch) -> Vec<Envelope> {
    let lengths = batch.json_lens.iter().copied();
    let starts = layout::starts(&batch.text, lengths).expect("the host builds well-formed batches");
    starts
        .into_iter()
        .enumerate()
        .map(|(i, start)| {
            let json = &batch.text[start as usize..][..batch.json_lens[i] as usize];
            Envelope {
                kind: batch.names[batch.kinds[i] as usize].clone(),
                store: batch.names[batch.stores[i] as usize].clone(),
                timestamp: batch.timestamps[i],
                json: String::from_utf8(json.to_vec()).expect("the host builds UTF-8 batches"),
            }
        })
        .collect()
}

/// A 0.2 or 0.1 cursor's records as a batch.
pub fn stored_from_records(records: Vec<StoredRecord>) -> StoredBatch {
    let bytes = records.iter().map(|r| r.envelope.json.len()).sum();
    let mut builder = BatchBuilder::with_capacity(records.len(), bytes);
    let mut offsets = Vec::with_capacity(records.len());
    let mut stored_bytes = Vec::with_capacity(records.len());
    for r in &records {
        let e = &r.envelope;
        builder.push(&e.kind, &e.store, e.timestamp, &e.json);
        offsets.push(r.offset);
        stored_bytes.push(r.stored_bytes);
    }
    StoredBatch {
        records: builder.finish(),
        offsets,
        stored_bytes,
    }
}

/// Builds a `meta-batch` from (kind, store, timestamp, stored bytes).
pub fn meta_batch<'a>(metas: impl IntoIterator<Item = (&'a str, &'a str, f64, u64)>) -> MetaBatch {
    let mut names = NameTable::default();
    let entries = metas
        .into_iter()
        .map(|(kind, store, timestamp, stored_bytes)| MetaEntry {
            kind: names.index(kind),
            store: names.index(store),
            timestamp,
            stored_bytes,
        })
        .collect();
    MetaBatch {
        names: names.into_names(),
        entries,
    }
}

/// The records of a `meta-batch` (the host built it).
pub fn metas(batch: &MetaBatch) -> impl Iterator<Item = (&str, &str, f64, u64)> {
    batch.entries.iter().map(|e| {
        (
            batch.names[e.kind as usize].as_str(),
            batch.names[e.store as usize].as_str(),
            e.timestamp,
            e.stored_bytes,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_batch::ReadBatch;

    /// The records of `batch` as the host reads a cursor's batch (checked).
    fn records(batch: &RecordBatch) -> Result<Vec<(String, String, f64, String)>, String> {
        let stored = StoredBatch {
            records: batch.clone(),
            offsets: vec![0; batch.json_lens.len()],
            stored_bytes: vec![0; batch.json_lens.len()],
        };
        let checked = ReadBatch::check(stored, "u")?;
        Ok((0..checked.len())
            .map(|i| {
                let r = checked.get(i);
                (
                    r.kind.to_string(),
                    r.store.to_string(),
                    r.timestamp,
                    r.json.to_string(),
                )
            })
            .collect())
    }

    fn sample() -> RecordBatch {
        let mut b = BatchBuilder::default();
        b.push("event", "a", 1.0, r#"{"kind":"event","timestamp":1}"#);
        b.push(
            "audit",
            "a",
            2.5,
            r#"{"kind":"audit","timestamp":2.5,"x":"é"}"#,
        );
        b.push("event", "b", 3.0, r#"{"kind":"event","timestamp":3}"#);
        b.finish()
    }

    #[test]
    fn a_built_batch_reads_back_and_names_each_kind_and_store_once() {
        let batch = sample();
        assert_eq!(batch.names, ["event", "a", "audit", "b"]);
        let back = records(&batch).unwrap();
        let back: Vec<_> = back
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str(), r.2, r.3.as_str()))
            .collect();
        assert_eq!(
            back[1],
            (
                "audit",
                "a",
                2.5,
                r#"{"kind":"audit","timestamp":2.5,"x":"é"}"#
            )
        );
        assert_eq!(back.len(), 3);
        assert_eq!(envelopes(&batch)[2].store, "b");
    }

    #[test]
    fn batches_extend_with_their_names_mapped() {
        let mut a = BatchBuilder::default();
        a.push("audit", "z", 0.5, r#"{"kind":"audit","timestamp":0.5}"#);
        let mut b = BatchBuilder::default();
        for (kind, store, ts) in [
            ("event", "a", 1.0),
            ("audit", "a", 2.5),
            ("event", "b", 3.0),
        ] {
            b.push(
                kind,
                store,
                ts,
                &format!(r#"{{"kind":"{kind}","timestamp":{ts}}}"#),
            );
        }
        a.extend(b);
        let batch = a.finish();
        let got = records(&batch).unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str(), r.2))
            .collect();
        assert_eq!(
            got,
            [
                ("audit", "z", 0.5),
                ("event", "a", 1.0),
                ("audit", "a", 2.5),
                ("event", "b", 3.0)
            ]
        );
        assert_eq!(batch.names.len(), 5);
    }

    #[test]
    fn a_malformed_batch_is_refused() {
        let mut b = sample();
        b.json_lens[0] += 1;
        assert!(records(&b).unwrap_err().contains("newline"));
        let mut b = sample();
        b.json_lens[2] = 1000;
        assert!(records(&b).unwrap_err().contains("runs past"));
        let mut b = sample();
        b.kinds[1] = 9;
        assert!(records(&b).unwrap_err().contains("name index 9"));
        let mut b = sample();
        b.text.extend_from_slice(b"extra\n");
        assert!(records(&b).unwrap_err().contains("after the last record"));
        let mut b = sample();
        b.json_lens[1] -= 2; // ends inside `é`
        assert!(records(&b).is_err());
        let mut b = sample();
        b.timestamps[0] = f64::NAN;
        assert!(records(&b).unwrap_err().contains("finite"));
        // A plugin's columns that differ in length.
        let mut b = sample();
        b.stores.pop();
        assert_eq!(
            records(&b).unwrap_err(),
            "the batch's columns differ: 3 lengths, 3 kinds, 2 stores, 3 timestamps"
        );
        let mut b = sample();
        b.timestamps.push(1.0);
        assert!(records(&b).unwrap_err().contains("4 timestamps"));
    }

    #[test]
    fn batch_text_that_is_not_utf8_is_refused_where_it_breaks() {
        // Many records, so the bad byte lies deep in the SIMD check's blocks.
        let mut b = BatchBuilder::default();
        for i in 0..300 {
            b.push(
                "audit",
                "a",
                1.0,
                &format!(r#"{{"kind":"audit","timestamp":1,"x":"é{i}"}}"#),
            );
        }
        let good = b.finish();
        assert_eq!(records(&good).unwrap().len(), 300);
        let accents: Vec<usize> = (0..good.text.len() - 1)
            .filter(|&i| good.text[i..i + 2] == *"é".as_bytes())
            .collect();
        for at in [accents[0], accents[150], accents[299]] {
            let mut bad = good.clone();
            bad.text[at] = 0xff;
            assert_eq!(
                records(&bad).unwrap_err(),
                format!(
                    "batch text is not UTF-8: invalid utf-8 sequence of 1 bytes from index {at}"
                )
            );
            let mut cut = good.clone();
            cut.text[at + 1] = b'x'; // a lead byte without its continuation
            assert!(records(&cut).unwrap_err().contains(&format!("index {at}")));
        }
    }

    #[test]
    fn a_cursor_batch_needs_an_offset_and_a_size_per_record() {
        let b = sample();
        let n = b.json_lens.len();
        for (offsets, sizes) in [(n - 1, n), (n, n + 1), (0, 0)] {
            let stored = StoredBatch {
                records: b.clone(),
                offsets: vec![7; offsets],
                stored_bytes: vec![9; sizes],
            };
            let err = ReadBatch::check(stored, "u").err().expect("refused");
            assert_eq!(
                err,
                format!("{n} records but {offsets} offsets and {sizes} stored sizes")
            );
        }
        let stored = StoredBatch {
            records: b.clone(),
            offsets: (0..n as u64).map(|i| i * 100).collect(),
            stored_bytes: (0..n as u64).map(|i| i + 1).collect(),
        };
        let checked = ReadBatch::check(stored, "u").unwrap();
        let last = checked.get(n - 1);
        assert_eq!(
            (last.offset, last.stored_bytes),
            ((n as u64 - 1) * 100, n as u64)
        );
    }
}
