//! Records kept in the plugin's memory as one unit: the log, its cursor and
//! its replacement. The memory backend is built on it; so are test plugins.

use std::cell::RefCell;
use std::rc::Rc;

use crate::backend::StoreDurability;
use crate::batch::{BatchBuilder, Envelope};
use crate::record;
use crate::types::{PluginError, ReadFilter, ReadOrder, ScanChunk, StoredBatch, UnitInfo};

/// Records, each with its offset in the NDJSON stream they would form.
#[derive(Default)]
pub struct MemLog {
    records: Vec<(u64, Envelope)>,
    bytes: u64,
}

/// A log shared by a store and the cursors and rewriters it hands out.
pub type SharedLog = Rc<RefCell<MemLog>>;

fn stored_len(envelope: &Envelope) -> u64 {
    envelope.json.len() as u64 + 1
}

/// Checks a batch for a line format; returns the bytes it would take.
pub fn check_batch(batch: &[Envelope]) -> Result<u64, PluginError> {
    let mut bytes = 0;
    for (index, envelope) in batch.iter().enumerate() {
        record::check_appendable(envelope.into())
            .map_err(|reason| crate::errors::rejected(index, reason))?;
        bytes += stored_len(envelope);
    }
    Ok(bytes)
}

impl MemLog {
    /// Appends a checked batch.
    pub fn extend(&mut self, batch: Vec<Envelope>) {
        for envelope in batch {
            let offset = self.bytes;
            self.bytes += stored_len(&envelope);
            self.records.push((offset, envelope));
        }
    }

    /// Bytes the records would take as NDJSON.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The log as the live unit `id`.
    pub fn unit_info(&self, id: &str, codec: &str) -> UnitInfo {
        let stamps = self.records.iter().map(|(_, e)| e.timestamp);
        UnitInfo {
            id: id.into(),
            store: None,
            bytes: self.bytes,
            records: Some(self.records.len() as u64),
            min_timestamp: stamps.clone().reduce(f64::min),
            max_timestamp: stamps.reduce(f64::max),
            sealed: false,
            codec: codec.into(),
        }
    }

    /// The durability snapshot of the log as the live unit `unit`.
    pub fn durability(&self, codec: &str, unit: &str) -> StoreDurability {
        // Everything here dies with the process.
        StoreDurability {
            store: "*".into(),
            codec: codec.into(),
            live_unit: Some(unit.into()),
            accepted: self.len() as u64,
            buffered: self.len() as u64,
            unsynced: 0,
        }
    }

    /// A memory log cannot be damaged: one chunk covering everything.
    pub fn scan_chunk(&self) -> ScanChunk {
        ScanChunk {
            anomalies: Vec::new(),
            records: self.records.len() as u64,
            next_offset: self.bytes,
            done: true,
        }
    }

    /// The records as NDJSON text (for quarantine copies).
    pub fn to_ndjson(&self) -> String {
        self.records
            .iter()
            .map(|(_, e)| format!("{}\n", e.json))
            .collect()
    }
}

/// A cursor over a snapshot of a log: records appended after it opened are
/// not part of it.
pub struct MemCursor {
    log: SharedLog,
    filter: ReadFilter,
    order: ReadOrder,
    /// Next index (oldest-first) or one past it (newest-first).
    next: RefCell<usize>,
    end: usize,
}

impl MemCursor {
    /// Opens a cursor over `log`, naming its records' unit `unit`.
    pub fn new(log: SharedLog, filter: ReadFilter, order: ReadOrder) -> Self {
        let end = log.borrow().records.len();
        let next = if order == ReadOrder::OldestFirst {
            0
        } else {
            end
        };
        MemCursor {
            log,
            filter,
            order,
            next: RefCell::new(next),
            end,
        }
    }

    /// The next matching records: at most `max_records`, about `max_bytes`
    /// of JSON.
    pub fn next_batch(&self, max_records: u32, max_bytes: u32) -> StoredBatch {
        let log = self.log.borrow();
        let mut next = self.next.borrow_mut();
        let end = self.end.min(log.records.len());
        let mut out = BatchBuilder::for_cursor(max_records, max_bytes);
        while !out.full(max_records, max_bytes) {
            let index = match self.order {
                ReadOrder::OldestFirst if *next < end => {
                    *next += 1;
                    *next - 1
                }
                ReadOrder::NewestFirst if *next > 0 => {
                    *next -= 1;
                    *next
                }
                _ => break,
            };
            let Some((offset, e)) = log.records.get(index) else {
                break;
            };
            if record::matches(&self.filter, &e.kind, &e.store, e.timestamp) {
                out.push_stored(e.into(), *offset, stored_len(e));
            }
        }
        out.finish_stored()
    }
}

/// A replacement log, swapped in whole by `commit`.
pub struct MemRewrite {
    log: SharedLog,
    fresh: RefCell<Option<MemLog>>,
}

fn finished() -> PluginError {
    PluginError::InvalidState("rewrite already finished".into())
}

impl MemRewrite {
    /// Starts a replacement of `log`.
    pub fn new(log: SharedLog) -> Self {
        MemRewrite {
            log,
            fresh: RefCell::new(Some(MemLog::default())),
        }
    }

    /// Adds records, in order.
    pub fn write(&self, batch: Vec<Envelope>) -> Result<(), PluginError> {
        check_batch(&batch)?;
        self.fresh
            .borrow_mut()
            .as_mut()
            .ok_or_else(finished)?
            .extend(batch);
        Ok(())
    }

    /// Replaces the log; returns its new size.
    pub fn commit(&self) -> Result<u64, PluginError> {
        let fresh = self.fresh.borrow_mut().take().ok_or_else(finished)?;
        let bytes = fresh.bytes;
        *self.log.borrow_mut() = fresh;
        Ok(bytes)
    }

    /// Discards the replacement.
    pub fn abort(&self) {
        self.fresh.borrow_mut().take();
    }
}
