//! Record batches on the host's side of the boundary: built from records
//! for `append` and `rewriter.write`, checked and taken apart when a cursor
//! returns one (a plugin's batch is untrusted), and converted for plugins of
//! older versions.

use std::collections::HashMap;

use super::{
    BatchEntry, Envelope, MetaBatch, MetaEntry, RecordBatch, RecordPlace, StoredBatch, StoredRecord,
};

/// Builds a `record-batch` record by record.
#[derive(Default)]
pub struct BatchBuilder {
    text: Vec<u8>,
    names: Vec<String>,
    index: HashMap<String, u32>,
    entries: Vec<BatchEntry>,
    /// The two names looked up last.
    recent: [u32; 2],
}

impl BatchBuilder {
    /// A builder with room for `records` records of `bytes` bytes of JSON.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        BatchBuilder {
            text: Vec::with_capacity(bytes + records),
            entries: Vec::with_capacity(records),
            ..Default::default()
        }
    }

    fn name(&mut self, name: &str) -> u32 {
        // Neighbouring records mostly share their kind and store.
        for &i in &self.recent {
            if self.names.get(i as usize).is_some_and(|n| n == name) {
                return i;
            }
        }
        let i = self.lookup(name);
        self.recent = [self.recent[1], i];
        i
    }

    fn lookup(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    /// Adds one record.
    pub fn push(&mut self, kind: &str, store: &str, timestamp: f64, json: &str) {
        let (kind, store) = (self.name(kind), self.name(store));
        self.text.extend_from_slice(json.as_bytes());
        self.text.push(b'\n');
        self.entries.push(BatchEntry {
            json_len: json.len() as u32,
            kind,
            store,
            timestamp,
        });
    }

    /// Records so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds every record of `other`, after these.
    pub fn extend(&mut self, other: BatchBuilder) {
        if self.entries.is_empty() {
            *self = other;
            return;
        }
        let names: Vec<u32> = other.names.iter().map(|n| self.name(n)).collect();
        self.text.extend_from_slice(&other.text);
        self.entries
            .extend(other.entries.into_iter().map(|e| BatchEntry {
                kind: names[e.kind as usize],
                store: names[e.store as usize],
                ..e
            }));
    }

    /// The batch.
    pub fn finish(self) -> RecordBatch {
        RecordBatch {
            text: self.text,
            names: self.names,
            entries: self.entries,
        }
    }
}

/// One record of a checked batch, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Its kind.
    pub kind: &'a str,
    /// Its store.
    pub store: &'a str,
    /// Its timestamp.
    pub timestamp: f64,
    /// Its JSON, without the newline.
    pub json: &'a str,
}

/// Checks a batch's layout (every length, newline and name index in
/// place, the text UTF-8, timestamps finite) and returns its records.
pub fn records(batch: &RecordBatch) -> Result<Vec<RecordRef<'_>>, String> {
    let text =
        std::str::from_utf8(&batch.text).map_err(|e| format!("batch text is not UTF-8: {e}"))?;
    let name = |i: u32| {
        batch
            .names
            .get(i as usize)
            .map(String::as_str)
            .ok_or_else(|| format!("name index {i} of {} names", batch.names.len()))
    };
    let mut at = 0usize;
    let mut out = Vec::with_capacity(batch.entries.len());
    for (n, e) in batch.entries.iter().enumerate() {
        let end = at
            .checked_add(e.json_len as usize)
            .filter(|&end| end < text.len())
            .ok_or_else(|| format!("record {n} runs past the batch text ({} bytes)", text.len()))?;
        if batch.text[end] != b'\n' {
            return Err(format!("record {n} is not followed by a newline"));
        }
        let json = text
            .get(at..end)
            .ok_or_else(|| format!("record {n} splits a character"))?;
        if json.contains('\n') {
            return Err(format!("record {n} holds a newline"));
        }
        if !e.timestamp.is_finite() {
            return Err(format!(
                "record {n} has a timestamp that is not a finite number"
            ));
        }
        out.push(RecordRef {
            kind: name(e.kind)?,
            store: name(e.store)?,
            timestamp: e.timestamp,
            json,
        });
        at = end + 1;
    }
    if at != text.len() {
        return Err(format!(
            "{} bytes of batch text after the last record",
            text.len() - at
        ));
    }
    Ok(out)
}

/// A batch of records as 0.2 and 0.1 plugins take them (the host built it).
pub fn envelopes(batch: &RecordBatch) -> Vec<Envelope> {
    records(batch)
        .expect("the host builds well-formed batches")
        .into_iter()
        .map(|r| Envelope {
            kind: r.kind.to_string(),
            store: r.store.to_string(),
            timestamp: r.timestamp,
            json: r.json.to_string(),
        })
        .collect()
}

/// A 0.2 or 0.1 cursor's records as a batch.
pub fn stored_from_records(records: Vec<StoredRecord>) -> StoredBatch {
    let bytes = records.iter().map(|r| r.envelope.json.len()).sum();
    let mut builder = BatchBuilder::with_capacity(records.len(), bytes);
    let mut places = Vec::with_capacity(records.len());
    for r in &records {
        let e = &r.envelope;
        builder.push(&e.kind, &e.store, e.timestamp, &e.json);
        places.push(RecordPlace {
            offset: r.offset,
            stored_bytes: r.stored_bytes,
        });
    }
    StoredBatch {
        records: builder.finish(),
        places,
    }
}

/// Builds a `meta-batch` from (kind, store, timestamp, stored bytes).
pub fn meta_batch<'a>(metas: impl IntoIterator<Item = (&'a str, &'a str, f64, u64)>) -> MetaBatch {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<&'a str, u32> = HashMap::new();
    let mut name = |n: &'a str, names: &mut Vec<String>| {
        *index.entry(n).or_insert_with(|| {
            names.push(n.to_string());
            names.len() as u32 - 1
        })
    };
    let entries = metas
        .into_iter()
        .map(|(kind, store, timestamp, stored_bytes)| MetaEntry {
            kind: name(kind, &mut names),
            store: name(store, &mut names),
            timestamp,
            stored_bytes,
        })
        .collect();
    MetaBatch { names, entries }
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
        let back: Vec<_> = records(&batch)
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.store, r.timestamp, r.json))
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
        let got: Vec<_> = records(&batch)
            .unwrap()
            .into_iter()
            .map(|r| (r.kind, r.store, r.timestamp))
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
        b.entries[0].json_len += 1;
        assert!(records(&b).unwrap_err().contains("newline"));
        let mut b = sample();
        b.entries[2].json_len = 1000;
        assert!(records(&b).unwrap_err().contains("runs past"));
        let mut b = sample();
        b.entries[1].kind = 9;
        assert!(records(&b).unwrap_err().contains("name index 9"));
        let mut b = sample();
        b.text.extend_from_slice(b"extra\n");
        assert!(records(&b).unwrap_err().contains("after the last record"));
        let mut b = sample();
        b.entries[1].json_len -= 2; // ends inside `é`
        assert!(records(&b).is_err());
        let mut b = sample();
        b.entries[0].timestamp = f64::NAN;
        assert!(records(&b).unwrap_err().contains("finite"));
    }
}
