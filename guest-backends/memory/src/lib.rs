//! The memory backend: records in the component's memory, for tests and
//! ephemeral systems. Retention applies to it like to any other backend:
//! compaction rewrites the single unit `memory` through the host.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestCursor, GuestRewriter, GuestStore, OpenConfig, Rewriter, Store,
};
use quire_guest::errors::IoContext;
use quire_guest::options::Options;
use quire_guest::record;
use quire_guest::types::{
    Anomaly, Envelope, PluginError, ReadFilter, ReadOrder, RecordRejection, ScanChunk,
    StorageStats, StoredRecord, SyncLevel, UnitInfo,
};

const UNIT: &str = "memory";

struct Memory;

/// Records with their offset in the notional NDJSON stream they would form.
#[derive(Default)]
struct Log {
    records: Vec<(u64, Envelope)>,
    bytes: u64,
    max_bytes: u64,
}

impl Log {
    fn push(&mut self, envelope: Envelope) {
        let offset = self.bytes;
        self.bytes += envelope.json.len() as u64 + 1;
        self.records.push((offset, envelope));
    }
}

struct MemoryStore {
    log: Rc<RefCell<Log>>,
    read_only: bool,
}

impl Guest for Memory {
    type Cursor = MemoryCursor;
    type Rewriter = MemoryRewriter;
    type Store = MemoryStore;

    fn info() -> BackendInfo {
        BackendInfo {
            name: "memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "records held in the plugin's memory; gone when the plugin instance is"
                .into(),
            path_is_file: false,
            persistent: false,
        }
    }
}

fn rejected(index: usize, reason: String) -> PluginError {
    PluginError::InvalidRecord(RecordRejection {
        index: index as u32,
        reason,
    })
}

fn check_unit(unit: &str) -> Result<(), PluginError> {
    if unit == UNIT {
        Ok(())
    } else {
        Err(PluginError::NoSuchUnit(unit.into()))
    }
}

impl GuestStore for MemoryStore {
    fn open(config: OpenConfig) -> Result<Store, PluginError> {
        let options = Options::new(config.options, &["max-bytes"])?;
        let log = Log {
            max_bytes: options.u64_or("max-bytes", u64::MAX)?,
            ..Log::default()
        };
        Ok(Store::new(MemoryStore {
            log: Rc::new(RefCell::new(log)),
            read_only: config.read_only,
        }))
    }

    fn append(&self, batch: Vec<Envelope>, _level: SyncLevel) -> Result<u64, PluginError> {
        if self.read_only {
            return Err(PluginError::InvalidState(
                "store was opened read-only".into(),
            ));
        }
        let mut log = self.log.borrow_mut();
        let mut added = 0u64;
        for (index, envelope) in batch.iter().enumerate() {
            record::check_appendable(envelope).map_err(|reason| rejected(index, reason))?;
            added += envelope.json.len() as u64 + 1;
        }
        if log.bytes.saturating_add(added) > log.max_bytes {
            return Err(PluginError::InvalidState(format!(
                "memory store full: {} + {added} bytes exceeds max-bytes {}; compact it",
                log.bytes, log.max_bytes
            )));
        }
        batch.into_iter().for_each(|e| log.push(e));
        Ok(added)
    }

    fn sync(&self, _level: SyncLevel) -> Result<(), PluginError> {
        Ok(())
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        let log = self.log.borrow();
        let stamps = log.records.iter().map(|(_, e)| e.timestamp);
        Ok(vec![UnitInfo {
            id: UNIT.into(),
            store: None,
            bytes: log.bytes,
            records: Some(log.records.len() as u64),
            min_timestamp: stamps.clone().reduce(f64::min),
            max_timestamp: stamps.reduce(f64::max),
            sealed: false,
            codec: "memory".into(),
        }])
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        Ok(Vec::new())
    }

    fn validate(&self, unit: String, _offset: u64, _budget: u64) -> Result<ScanChunk, PluginError> {
        check_unit(&unit)?;
        let log = self.log.borrow();
        Ok(ScanChunk {
            anomalies: Vec::new(),
            records: log.records.len() as u64,
            next_offset: log.bytes,
            done: true,
        })
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        check_unit(&unit)?;
        let len = self.log.borrow().records.len();
        let next = if order == ReadOrder::OldestFirst {
            0
        } else {
            len
        };
        Ok(Cursor::new(MemoryCursor {
            log: self.log.clone(),
            filter,
            order,
            next: RefCell::new(next),
            end: len,
        }))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        check_unit(&unit)?;
        Ok(Rewriter::new(MemoryRewriter {
            log: self.log.clone(),
            fresh: RefCell::new(Some(Log::default())),
        }))
    }

    fn drop_unit(&self, unit: String) -> Result<(), PluginError> {
        check_unit(&unit)?;
        Err(PluginError::InvalidState(
            "`memory` is the live unit and cannot be dropped".into(),
        ))
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        check_unit(&unit)?;
        let path = Path::new(&dir).join(&name);
        let mut text = String::new();
        for (_, e) in &self.log.borrow().records {
            text.push_str(&e.json);
            text.push('\n');
        }
        std::fs::write(&path, &text).ctx("write", &name)?;
        Ok(text.len() as u64)
    }

    fn seal(&self) -> Result<(), PluginError> {
        Err(PluginError::Unsupported(
            "seal: the memory backend has one live unit".into(),
        ))
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        let units = self.units()?;
        let log = self.log.borrow();
        let details = vec![("records".into(), log.records.len().to_string())];
        Ok(StorageStats {
            total_bytes: log.bytes,
            units,
            details,
        })
    }
}

struct MemoryCursor {
    log: Rc<RefCell<Log>>,
    filter: ReadFilter,
    order: ReadOrder,
    /// Next index (oldest-first) or one past it (newest-first).
    next: RefCell<usize>,
    /// Records appended after the cursor opened are not part of its snapshot.
    end: usize,
}

impl GuestCursor for MemoryCursor {
    fn next(&self, max: u32) -> Result<Vec<StoredRecord>, PluginError> {
        let log = self.log.borrow();
        let mut next = self.next.borrow_mut();
        let end = self.end.min(log.records.len());
        let mut out = Vec::new();
        while out.len() < max as usize {
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
                out.push(StoredRecord {
                    envelope: e.clone(),
                    unit: UNIT.into(),
                    offset: *offset,
                    stored_bytes: e.json.len() as u64 + 1,
                });
            }
        }
        Ok(out)
    }
}

struct MemoryRewriter {
    log: Rc<RefCell<Log>>,
    fresh: RefCell<Option<Log>>,
}

impl GuestRewriter for MemoryRewriter {
    fn write(&self, batch: Vec<Envelope>) -> Result<(), PluginError> {
        let mut fresh = self.fresh.borrow_mut();
        let fresh = fresh
            .as_mut()
            .ok_or_else(|| PluginError::InvalidState("rewrite already finished".into()))?;
        for (index, e) in batch.into_iter().enumerate() {
            record::check_appendable(&e).map_err(|reason| rejected(index, reason))?;
            fresh.push(e);
        }
        Ok(())
    }

    fn commit(&self) -> Result<u64, PluginError> {
        let mut fresh = self
            .fresh
            .borrow_mut()
            .take()
            .ok_or_else(|| PluginError::InvalidState("rewrite already finished".into()))?;
        let mut log = self.log.borrow_mut();
        fresh.max_bytes = log.max_bytes;
        *log = fresh;
        Ok(log.bytes)
    }

    fn abort(&self) -> Result<(), PluginError> {
        self.fresh.borrow_mut().take();
        Ok(())
    }
}

quire_guest::export_backend!(Memory);
