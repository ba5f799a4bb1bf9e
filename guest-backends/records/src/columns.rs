//! A record batch as both sides build it: the records' NDJSON text, each
//! kind and store named once, and a column per field. The host's and the
//! guest helper's builders wrap it and hand it on as their own generated
//! `record-batch` type.

use crate::names::NameTable;

/// The parts of a `record-batch`, built record by record.
#[derive(Debug, Default, Clone)]
pub struct BatchColumns {
    /// Every record's JSON followed by one newline.
    pub text: Vec<u8>,
    /// The kinds and stores, each once.
    pub names: NameTable,
    /// Bytes of each record's JSON (its newline not counted).
    pub json_lens: Vec<u32>,
    /// Index of each record's kind in `names`.
    pub kinds: Vec<u32>,
    /// Index of each record's store in `names`.
    pub stores: Vec<u32>,
    /// Each record's timestamp.
    pub timestamps: Vec<f64>,
}

impl BatchColumns {
    /// Room for `records` records of `bytes` bytes of JSON in all.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        BatchColumns {
            text: Vec::with_capacity(bytes + records),
            json_lens: Vec::with_capacity(records),
            kinds: Vec::with_capacity(records),
            stores: Vec::with_capacity(records),
            timestamps: Vec::with_capacity(records),
            ..Default::default()
        }
    }

    /// Adds one record.
    #[inline]
    pub fn push(&mut self, kind: &str, store: &str, timestamp: f64, json: &str) {
        let (kind, store) = (self.names.index(kind), self.names.index(store));
        self.text.extend_from_slice(json.as_bytes());
        self.text.push(b'\n');
        self.json_lens.push(json.len() as u32);
        self.kinds.push(kind);
        self.stores.push(store);
        self.timestamps.push(timestamp);
    }

    /// Records so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.json_lens.len()
    }

    /// Whether no record was added.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.json_lens.is_empty()
    }

    /// Adds every record of `other`, after these (its names renumbered).
    pub fn extend(&mut self, other: BatchColumns) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let names: Vec<u32> = other
            .names
            .names()
            .iter()
            .map(|n| self.names.index(n))
            .collect();
        self.text.extend_from_slice(&other.text);
        self.json_lens.extend_from_slice(&other.json_lens);
        self.kinds
            .extend(other.kinds.iter().map(|&k| names[k as usize]));
        self.stores
            .extend(other.stores.iter().map(|&s| names[s as usize]));
        self.timestamps.extend_from_slice(&other.timestamps);
    }
}
