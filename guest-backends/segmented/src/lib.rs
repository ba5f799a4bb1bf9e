//! The segmented WAL backend: per store and time bucket, CRC-framed segment
//! files with manifests, resumed after a crash, with a lossless compact codec.
//!
//! Layout under the data root (`open-config.root` joined with `target`):
//! `wal/store={name}/date={bucket}/segment-000001.wal`, its
//! `.manifest.json` once sealed, `wal/store={name}/high-water` (segment
//! numbers never reused) and `wal/receipts/` for purge and quarantine
//! receipts. Unit ids are segment paths relative to the data root; the
//! orphans `check-layout` reports (temporary files, manifests without a
//! segment, pending manifests) are ids that `drop-unit` accepts.
//!
//! Options: `codec` and `codec.<store>` (`json-crc32`, default, or
//! `compact`), `max-bytes` (64 MiB), `bucket` (`day`, `hour`, `none`),
//! `block-records` (64: compact records a `buffered` append may hold in
//! memory), `stream-bytes` (1 MiB of JSON per deflate stream).
//!
//! Appends are all or nothing: a batch that fails part way (no space left,
//! an I/O error, a failed sync) is rolled back in every store it touched
//! (see [`undo`]), so the caller may retry without duplicating records.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

pub mod codec;
pub mod config;
pub mod decode;
pub mod engine;
pub mod fault;
pub mod fsutil;
pub mod header;
pub mod inventory;
pub mod layout;
pub mod live;
pub mod manifest;
#[cfg(test)]
mod ratio;
pub mod rewrite;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rollback;
pub mod undo;

use std::cell::RefCell;
use std::rc::Rc;

use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestCursor, GuestRewriter, GuestStore, OpenConfig, Receipt,
    ReceiptFilter, Rewriter, Store, StoreDurability,
};
use quire_guest::batch;
use quire_guest::types::{
    Anomaly, PluginError, ReadFilter, ReadOrder, RecordBatch, ScanChunk, StorageStats, StoredBatch,
    SyncLevel, UnitInfo,
};

use engine::{SegmentCursor, Wal};
use rewrite::RewriteJob;

struct Segmented;

/// The store resource: the WAL, shared with the rewriters it hands out.
struct SegmentedStore {
    wal: Rc<RefCell<Wal>>,
}

/// A cursor resource.
struct CursorResource {
    cursor: RefCell<SegmentCursor>,
}

/// A rewriter resource.
struct RewriterResource {
    wal: Rc<RefCell<Wal>>,
    job: RefCell<Option<RewriteJob>>,
}

impl Guest for Segmented {
    type Cursor = CursorResource;
    type Rewriter = RewriterResource;
    type Store = SegmentedStore;

    fn info() -> BackendInfo {
        BackendInfo {
            name: "segmented".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "per-store, time-bucketed WAL segments of CRC32 frames with manifests; codecs json-crc32 and compact".into(),
            path_is_file: false,
            integrity: "a CRC-32 on every frame (each record, or each compact block) and on \
                        every sealed segment: a changed record never reads back"
                .into(),
            persistent: true,
        }
    }
}

impl GuestStore for SegmentedStore {
    fn open(config: OpenConfig) -> Result<Store, PluginError> {
        Ok(Store::new(SegmentedStore {
            wal: Rc::new(RefCell::new(Wal::open(config)?)),
        }))
    }

    fn open_report(&self) -> Vec<Anomaly> {
        self.wal.borrow().open_report()
    }

    fn append(&self, batch: RecordBatch, level: SyncLevel) -> Result<u64, PluginError> {
        self.wal.borrow_mut().append_batch(&batch, level)
    }

    fn sync(&self, level: SyncLevel) -> Result<(), PluginError> {
        self.wal.borrow_mut().sync(level)
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        self.wal.borrow().units()
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        self.wal.borrow().check_layout()
    }

    fn validate(&self, unit: String, offset: u64, budget: u64) -> Result<ScanChunk, PluginError> {
        self.wal.borrow_mut().validate(&unit, offset, budget)
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        if order == ReadOrder::NewestFirst {
            return Err(PluginError::Unsupported(
                "newest-first reads (the host reverses)".into(),
            ));
        }
        let cursor = self.wal.borrow_mut().read(&unit, filter)?;
        Ok(Cursor::new(CursorResource {
            cursor: RefCell::new(cursor),
        }))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        let job = self.wal.borrow_mut().rewrite(&unit)?;
        Ok(Rewriter::new(RewriterResource {
            wal: self.wal.clone(),
            job: RefCell::new(Some(job)),
        }))
    }

    fn drop_unit(&self, unit: String, receipt: Option<Receipt>) -> Result<(), PluginError> {
        self.wal.borrow_mut().drop_unit(&unit, receipt)
    }

    fn put_receipt(&self, receipt: Receipt) -> Result<(), PluginError> {
        self.wal.borrow_mut().put_receipt(receipt)
    }

    fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        self.wal.borrow().receipts(&filter)
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        self.wal.borrow_mut().quarantine(&unit, &dir, &name)
    }

    fn seal(&self) -> Result<(), PluginError> {
        self.wal.borrow_mut().seal()
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        self.wal.borrow().stats()
    }

    fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        self.wal.borrow().durability()
    }
}

impl GuestCursor for CursorResource {
    fn next(&self, max_records: u32, max_bytes: u32) -> Result<StoredBatch, PluginError> {
        self.cursor.borrow_mut().next_batch(max_records, max_bytes)
    }
}

fn finished() -> PluginError {
    PluginError::InvalidState("the rewrite was already committed or aborted".into())
}

impl GuestRewriter for RewriterResource {
    fn write(&self, batch: RecordBatch) -> Result<(), PluginError> {
        let batch = batch::envelopes(&batch)?;
        self.job
            .borrow_mut()
            .as_mut()
            .ok_or_else(finished)?
            .write(&batch)
    }

    fn copy(&self, _: Vec<quire_guest::types::RecordPlace>) -> Result<(), PluginError> {
        Err(quire_guest::errors::cannot_copy("segmented"))
    }

    fn commit(&self) -> Result<u64, PluginError> {
        let mut job = self.job.borrow_mut().take().ok_or_else(finished)?;
        self.wal.borrow_mut().commit(&mut job)
    }

    fn abort(&self) -> Result<(), PluginError> {
        match self.job.borrow_mut().take() {
            Some(mut job) => job.abort(),
            None => Ok(()),
        }
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_backend!(Segmented);
