//! The memory backend: records in the component's memory, for tests and
//! ephemeral systems. Retention applies to it like to any other backend:
//! compaction rewrites the single unit `memory` through the host.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::path::Path;

use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestCursor, GuestRewriter, GuestStore, OpenConfig, Receipt,
    ReceiptFilter, Rewriter, Store, StoreDurability,
};
use quire_guest::batch;
use quire_guest::errors::IoContext;
use quire_guest::memlog::{self, MemCursor, MemRewrite, SharedLog};
use quire_guest::options::Options;
use quire_guest::types::{
    Anomaly, PluginError, ReadFilter, ReadOrder, RecordBatch, ScanChunk, StorageStats, StoredBatch,
    SyncLevel, UnitInfo,
};

const UNIT: &str = "memory";

struct Memory;

struct MemoryStore {
    log: SharedLog,
    max_bytes: u64,
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
            integrity: "none needed: records live in the plugin's memory only".into(),
            persistent: false,
        }
    }
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
        Ok(Store::new(MemoryStore {
            log: SharedLog::default(),
            max_bytes: options.u64_or("max-bytes", u64::MAX)?,
            read_only: config.read_only,
        }))
    }

    fn append(&self, batch: RecordBatch, _level: SyncLevel) -> Result<u64, PluginError> {
        let batch = batch::envelopes(&batch)?;
        if self.read_only {
            return Err(PluginError::InvalidState(
                "store was opened read-only".into(),
            ));
        }
        let added = memlog::check_batch(&batch)?;
        let mut log = self.log.borrow_mut();
        if log.bytes().saturating_add(added) > self.max_bytes {
            return Err(PluginError::InvalidState(format!(
                "memory store full: {} + {added} bytes exceeds max-bytes {}; compact it",
                log.bytes(),
                self.max_bytes
            )));
        }
        log.extend(batch);
        Ok(added)
    }

    fn sync(&self, _level: SyncLevel) -> Result<(), PluginError> {
        Ok(())
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        Ok(vec![self.log.borrow().unit_info(UNIT, "memory")])
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        Ok(Vec::new())
    }

    fn validate(&self, unit: String, _offset: u64, _budget: u64) -> Result<ScanChunk, PluginError> {
        check_unit(&unit)?;
        Ok(self.log.borrow().scan_chunk())
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        check_unit(&unit)?;
        Ok(Cursor::new(MemoryCursor(MemCursor::new(
            self.log.clone(),
            filter,
            order,
        ))))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        check_unit(&unit)?;
        Ok(Rewriter::new(MemoryRewriter(MemRewrite::new(
            self.log.clone(),
        ))))
    }

    fn drop_unit(&self, unit: String, _receipt: Option<Receipt>) -> Result<(), PluginError> {
        check_unit(&unit)?;
        Err(PluginError::InvalidState(
            "`memory` is the live unit and cannot be dropped".into(),
        ))
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        check_unit(&unit)?;
        let text = self.log.borrow().to_ndjson();
        std::fs::write(Path::new(&dir).join(&name), &text).ctx("write", &name)?;
        Ok(text.len() as u64)
    }

    fn seal(&self) -> Result<(), PluginError> {
        Err(PluginError::Unsupported(
            "seal: the memory backend has one live unit".into(),
        ))
    }

    fn open_report(&self) -> Vec<Anomaly> {
        Vec::new()
    }

    fn put_receipt(&self, _receipt: Receipt) -> Result<(), PluginError> {
        Err(quire_guest::receipts::not_kept())
    }

    fn receipts(&self, _filter: ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        Ok(Vec::new())
    }

    fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        Ok(vec![self.log.borrow().durability("memory", UNIT)])
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        let log = self.log.borrow();
        Ok(StorageStats {
            units: vec![log.unit_info(UNIT, "memory")],
            total_bytes: log.bytes(),
            details: vec![("records".into(), log.len().to_string())],
        })
    }
}

struct MemoryCursor(MemCursor);

impl GuestCursor for MemoryCursor {
    fn next(&self, max_records: u32, max_bytes: u32) -> Result<StoredBatch, PluginError> {
        Ok(self.0.next_batch(max_records, max_bytes))
    }
}

struct MemoryRewriter(MemRewrite);

impl GuestRewriter for MemoryRewriter {
    fn write(&self, batch: RecordBatch) -> Result<(), PluginError> {
        self.0.write(batch::envelopes(&batch)?)
    }

    fn copy(&self, _: Vec<quire_guest::types::RecordPlace>) -> Result<(), PluginError> {
        Err(quire_guest::errors::cannot_copy("memory"))
    }

    fn commit(&self) -> Result<u64, PluginError> {
        self.0.commit()
    }

    fn abort(&self) -> Result<(), PluginError> {
        self.0.abort();
        Ok(())
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_backend!(Memory);
