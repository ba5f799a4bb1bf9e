//! Records read back, borrowed from the batch a cursor returned: the read
//! path hands them on without copying each into strings of its own.

use quire_records::layout;

use crate::record::Record;
use crate::wit::{Envelope, RecordBatch, StoredBatch, StoredRecord};

/// A record read back, borrowed from the batch it came in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordView<'a> {
    /// Its kind.
    pub kind: &'a str,
    /// Its store.
    pub store: &'a str,
    /// Unix seconds.
    pub timestamp: f64,
    /// The record, one JSON object without a newline, as stored.
    pub json: &'a str,
    /// The unit it was read from.
    pub unit: &'a str,
    /// Byte offset of its first byte in the unit.
    pub offset: u64,
    /// Bytes it occupies there, framing included.
    pub stored_bytes: u64,
}

impl RecordView<'_> {
    /// An owned copy.
    pub fn to_stored(&self) -> StoredRecord {
        StoredRecord {
            envelope: Envelope {
                kind: self.kind.to_string(),
                store: self.store.to_string(),
                timestamp: self.timestamp,
                json: self.json.to_string(),
            },
            unit: self.unit.to_string(),
            offset: self.offset,
            stored_bytes: self.stored_bytes,
        }
    }

    /// The record, ready to append elsewhere (its fields were checked when
    /// it was first appended).
    pub fn to_record(&self) -> Record {
        Record {
            kind: self.kind.to_string(),
            store: self.store.to_string(),
            timestamp: self.timestamp,
            json: self.json.to_string(),
        }
    }
}

impl StoredRecord {
    /// The record as a view.
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            kind: &self.envelope.kind,
            store: &self.envelope.store,
            timestamp: self.envelope.timestamp,
            json: &self.envelope.json,
            unit: &self.unit,
            offset: self.offset,
            stored_bytes: self.stored_bytes,
        }
    }
}

/// `bytes` as a string, checked with SIMD (a batch is ~170 KiB of mostly
/// ASCII; std's check goes a word at a time); std's error when they are not
/// UTF-8.
fn utf8_text(bytes: Vec<u8>) -> Result<String, String> {
    if simdutf8::basic::from_utf8(&bytes).is_ok() {
        // SAFETY: simdutf8 just checked that `bytes` are UTF-8.
        return Ok(unsafe { String::from_utf8_unchecked(bytes) });
    }
    String::from_utf8(bytes).map_err(|e| format!("batch text is not UTF-8: {}", e.utf8_error()))
}

/// A cursor's batch whose layout has been checked, with where each
/// record's JSON starts.
pub(crate) struct ReadBatch {
    unit: String,
    text: String,
    /// The batch's names and columns (its text moved to `text`, checked).
    records: RecordBatch,
    offsets: Vec<u64>,
    stored_bytes: Vec<u64>,
    starts: Vec<u32>,
}

impl ReadBatch {
    /// An empty batch (a finished cursor).
    pub fn empty() -> Self {
        ReadBatch {
            unit: String::new(),
            text: String::new(),
            records: RecordBatch {
                text: Vec::new(),
                names: Vec::new(),
                json_lens: Vec::new(),
                kinds: Vec::new(),
                stores: Vec::new(),
                timestamps: Vec::new(),
            },
            offsets: Vec::new(),
            stored_bytes: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Checks `batch` (it comes from a plugin): columns of one length,
    /// lengths, newlines, name indices, UTF-8, finite timestamps, an offset
    /// and a size per record.
    pub fn check(batch: StoredBatch, unit: &str) -> Result<Self, String> {
        let StoredBatch {
            mut records,
            offsets,
            stored_bytes,
        } = batch;
        let text = utf8_text(std::mem::take(&mut records.text))?;
        let RecordBatch {
            json_lens,
            kinds,
            stores,
            timestamps,
            ..
        } = &records;
        layout::columns(json_lens.len(), kinds.len(), stores.len(), timestamps.len())
            .map_err(|(_, reason)| reason)?;
        let bytes = text.as_bytes();
        let starts = layout::starts(bytes, json_lens.iter().copied())
            .map_err(|(n, reason)| format!("record {n}: {reason}"))?;
        let names = records.names.len();
        // Every record starts at the text's start or after a newline and ends
        // at one (the layout walk saw to it), so none splits a character.
        for n in 0..json_lens.len() {
            if let Some(i) = [kinds[n], stores[n]]
                .into_iter()
                .find(|&i| i as usize >= names)
            {
                return Err(format!("record {n}: name index {i} of {names} names"));
            }
            if !timestamps[n].is_finite() {
                return Err(format!("record {n}: timestamp is not a finite number"));
            }
        }
        // Each record ends with a newline, so any other is inside one.
        let newlines = memchr::memchr_iter(b'\n', bytes).count();
        if newlines != starts.len() {
            let n = starts
                .iter()
                .zip(json_lens)
                .position(|(&start, &len)| {
                    let start = start as usize;
                    bytes[start..start + len as usize].contains(&b'\n')
                })
                .unwrap_or(0);
            return Err(format!("record {n}: holds a newline"));
        }
        if offsets.len() != starts.len() || stored_bytes.len() != starts.len() {
            return Err(format!(
                "{} records but {} offsets and {} stored sizes",
                starts.len(),
                offsets.len(),
                stored_bytes.len()
            ));
        }
        Ok(ReadBatch {
            unit: unit.to_string(),
            text,
            records,
            offsets,
            stored_bytes,
            starts,
        })
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// The timestamp of record `i` (`i < len()`), without making its view
    /// (whose slicing is checked, so the compiler cannot drop it when only
    /// the timestamp is wanted).
    pub fn timestamp(&self, i: usize) -> f64 {
        self.records.timestamps[i]
    }

    /// Record `i` (`i < len()`).
    pub fn get(&self, i: usize) -> RecordView<'_> {
        let (r, start) = (&self.records, self.starts[i] as usize);
        RecordView {
            kind: &r.names[r.kinds[i] as usize],
            store: &r.names[r.stores[i] as usize],
            timestamp: r.timestamps[i],
            json: &self.text[start..start + r.json_lens[i] as usize],
            unit: &self.unit,
            offset: self.offsets[i],
            stored_bytes: self.stored_bytes[i],
        }
    }
}
