//! The rotating-files backend: Papyra's rotating file layout, one directory
//! per record category (`events/`, `audits/`, `dead_letters/`, or the kind's
//! own name), each a series of NDJSON files `events-0001.ndjson`,
//! `events-0002.ndjson`, ... rotated by size or record count. Sealed files are
//! listed with size, record count, checksum and time range in the category's
//! `MANIFEST.json`, so a scan of a healthy history needs no parsing and
//! compaction can drop whole files.
//!
//! The logic lives in modules that run natively; this file only wraps it in
//! the WIT resources.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

mod category;
mod layout;
mod manifest;
mod naming;
mod recovery;
mod rewriter;
mod rotation;
mod sealed_check;
mod stats;
mod store;
mod sums;

#[cfg(test)]
mod tests;

use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestRewriter, GuestStore, OpenConfig, Receipt, ReceiptFilter,
    Rewriter, Store, StoreDurability,
};
use quire_guest::linefile::LineCursor;
use quire_guest::types::{
    Anomaly, PluginError, ReadFilter, ReadOrder, RecordBatch, ScanChunk, StorageStats, SyncLevel,
    UnitInfo,
};

use crate::rewriter::RotatingRewriter;
use crate::store::RotatingStore;

struct Rotating;

impl Guest for Rotating {
    type Cursor = LineCursor;
    type Rewriter = RotatingRewriter;
    type Store = RotatingStore;

    fn info() -> BackendInfo {
        BackendInfo {
            name: "rotating".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "NDJSON files per record category, rotated by size or count, sealed \
                          files listed in a checksummed manifest (Papyra's rotating layout)"
                .into(),
            path_is_file: false,
            integrity:
                "line checksums for every sealed file (sealed at rotation and at checkpoint): \
                        a changed, inserted or missing line is found to the byte; the live \
                        file is covered once it is sealed"
                    .into(),
            persistent: true,
        }
    }
}

impl GuestStore for RotatingStore {
    fn open(config: OpenConfig) -> Result<Store, PluginError> {
        Ok(Store::new(RotatingStore::open(config)?))
    }

    fn open_report(&self) -> Vec<Anomaly> {
        RotatingStore::open_report(self)
    }

    fn append(&self, batch: RecordBatch, level: SyncLevel) -> Result<u64, PluginError> {
        RotatingStore::append_batch(self, &batch, level)
    }

    fn sync(&self, level: SyncLevel) -> Result<(), PluginError> {
        RotatingStore::sync(self, level)
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        RotatingStore::units(self)
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        RotatingStore::check_layout(self)
    }

    fn validate(&self, unit: String, offset: u64, budget: u64) -> Result<ScanChunk, PluginError> {
        RotatingStore::validate(self, unit, offset, budget)
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        Ok(Cursor::new(RotatingStore::read(self, unit, filter, order)?))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        Ok(Rewriter::new(RotatingStore::rewrite(self, unit)?))
    }

    fn drop_unit(&self, unit: String, receipt: Option<Receipt>) -> Result<(), PluginError> {
        RotatingStore::drop_unit(self, unit, receipt)
    }

    fn put_receipt(&self, receipt: Receipt) -> Result<(), PluginError> {
        RotatingStore::put_receipt(self, receipt)
    }

    fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        RotatingStore::receipts(self, filter)
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        RotatingStore::quarantine(self, unit, dir, name)
    }

    fn seal(&self) -> Result<(), PluginError> {
        RotatingStore::seal(self)
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        RotatingStore::stats(self)
    }

    fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        RotatingStore::durability(self)
    }
}

impl GuestRewriter for RotatingRewriter {
    fn write(&self, batch: RecordBatch) -> Result<(), PluginError> {
        RotatingRewriter::write(self, &batch)
    }

    fn copy(&self, _: Vec<quire_guest::types::RecordPlace>) -> Result<(), PluginError> {
        Err(quire_guest::errors::cannot_copy("rotating"))
    }

    fn commit(&self) -> Result<u64, PluginError> {
        RotatingRewriter::commit(self)
    }

    fn abort(&self) -> Result<(), PluginError> {
        RotatingRewriter::abort(self)
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_backend!(Rotating);
