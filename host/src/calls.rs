//! Typed calls into a backend session, one per WIT function, with the
//! checks the host makes on what comes back.

use wasmtime::component::ResourceAny;

use crate::bindings::{
    Anomaly, Envelope, ReadFilter, ReadOrder, Receipt, ReceiptFilter, ScanChunk, StorageStats,
    StoreDurability, StoredRecord, SyncLevel, UnitInfo,
};
use crate::error::Result;
use crate::session::Session;

/// An open cursor in the plugin.
pub struct CursorHandle(pub(crate) ResourceAny);
/// An open rewriter in the plugin.
pub struct RewriterHandle(pub(crate) ResourceAny);

impl Session {
    /// Appends a batch.
    pub fn append(&mut self, batch: &[Envelope], level: SyncLevel) -> Result<u64> {
        self.call("append", |l| {
            let h = l.handle;
            l.plugin.append(&mut l.store, h, batch, level)
        })
    }

    /// Pushes buffered appends to `level`.
    pub fn sync(&mut self, level: SyncLevel) -> Result<()> {
        self.call("sync", |l| {
            let h = l.handle;
            l.plugin.sync(&mut l.store, h, level)
        })
    }

    /// Storage units, oldest first.
    pub fn units(&mut self) -> Result<Vec<UnitInfo>> {
        self.call("units", |l| {
            let h = l.handle;
            l.plugin.units(&mut l.store, h)
        })
    }

    /// Layout anomalies.
    pub fn check_layout(&mut self) -> Result<Vec<Anomaly>> {
        self.call("check-layout", |l| {
            let h = l.handle;
            l.plugin.check_layout(&mut l.store, h)
        })
    }

    /// Validates part of a unit; the plugin must make progress.
    pub fn validate(&mut self, unit: &str, offset: u64, budget: u64) -> Result<ScanChunk> {
        let chunk = self.call("validate", |l| {
            let h = l.handle;
            l.plugin.validate(&mut l.store, h, unit, offset, budget)
        })?;
        if !chunk.done && chunk.next_offset <= offset {
            return Err(self.fault(
                "validate",
                format!(
                    "returned no progress at offset {offset} of `{unit}` (next-offset {})",
                    chunk.next_offset
                ),
            ));
        }
        Ok(chunk)
    }

    /// Opens a cursor over one unit.
    pub fn open_cursor(
        &mut self,
        unit: &str,
        filter: &ReadFilter,
        order: ReadOrder,
    ) -> Result<CursorHandle> {
        self.call("read", |l| {
            let h = l.handle;
            l.plugin.read(&mut l.store, h, unit, filter, order)
        })
        .map(CursorHandle)
    }

    /// Next batch from a cursor, at most `max` records.
    pub fn next_batch(&mut self, cursor: &CursorHandle, max: u32) -> Result<Vec<StoredRecord>> {
        let batch = self.call("read", |l| l.plugin.next(&mut l.store, cursor.0, max))?;
        if batch.len() > max as usize {
            return Err(self.fault(
                "read",
                format!(
                    "returned {} records for a batch of at most {max}",
                    batch.len()
                ),
            ));
        }
        Ok(batch)
    }

    /// Closes a cursor.
    pub fn close_cursor(&mut self, cursor: CursorHandle) {
        self.drop_resource(cursor.0);
    }

    /// Starts a replacement of a unit.
    pub fn begin_rewrite(&mut self, unit: &str) -> Result<RewriterHandle> {
        self.call("rewrite", |l| {
            let h = l.handle;
            l.plugin.rewrite(&mut l.store, h, unit)
        })
        .map(RewriterHandle)
    }

    /// Adds records to a replacement.
    pub fn rewrite_write(&mut self, rewriter: &RewriterHandle, batch: &[Envelope]) -> Result<()> {
        self.call("rewrite", |l| {
            l.plugin.rewrite_write(&mut l.store, rewriter.0, batch)
        })
    }

    /// Swaps the replacement in; returns the unit's new size.
    pub fn rewrite_commit(&mut self, rewriter: RewriterHandle) -> Result<u64> {
        let result = self.call("rewrite commit", |l| {
            l.plugin.rewrite_commit(&mut l.store, rewriter.0)
        });
        self.drop_resource(rewriter.0);
        result
    }

    /// Discards a replacement.
    pub fn rewrite_abort(&mut self, rewriter: RewriterHandle) -> Result<()> {
        let result = self.call("rewrite abort", |l| {
            l.plugin.rewrite_abort(&mut l.store, rewriter.0)
        });
        self.drop_resource(rewriter.0);
        result
    }

    /// Removes a whole unit, leaving `receipt` behind when given.
    pub fn drop_unit(&mut self, unit: &str, receipt: Option<&Receipt>) -> Result<()> {
        self.call("drop-unit", |l| {
            let h = l.handle;
            l.plugin.drop_unit(&mut l.store, h, unit, receipt)
        })
    }

    /// Stores a receipt with the backend.
    pub fn put_receipt(&mut self, receipt: &Receipt) -> Result<()> {
        self.call("put-receipt", |l| {
            let h = l.handle;
            l.plugin.put_receipt(&mut l.store, h, receipt)
        })
    }

    /// Receipts the backend keeps.
    pub fn receipts(&mut self, filter: &ReceiptFilter) -> Result<Vec<Receipt>> {
        self.call("receipts", |l| {
            let h = l.handle;
            l.plugin.receipts(&mut l.store, h, filter)
        })
    }

    /// What the read-write open repaired.
    pub fn open_report(&mut self) -> Result<Vec<Anomaly>> {
        self.call("open-report", |l| {
            let h = l.handle;
            l.plugin.open_report(&mut l.store, h).map(Ok)
        })
    }

    /// Seals every live unit.
    pub fn seal(&mut self) -> Result<()> {
        self.call("seal", |l| {
            let h = l.handle;
            l.plugin.seal(&mut l.store, h)
        })
    }

    /// The backend's durability snapshot.
    pub fn durability(&mut self) -> Result<Vec<StoreDurability>> {
        self.call("durability", |l| {
            let h = l.handle;
            l.plugin.durability(&mut l.store, h)
        })
    }

    /// Copies a unit into the granted quarantine directory.
    pub fn quarantine(&mut self, unit: &str, name: &str) -> Result<u64> {
        self.call("quarantine", |l| {
            let h = l.handle;
            l.plugin
                .quarantine(&mut l.store, h, unit, crate::sandbox::QUARANTINE_DIR, name)
        })
    }

    /// Storage statistics.
    pub fn stats(&mut self) -> Result<StorageStats> {
        self.call("stats", |l| {
            let h = l.handle;
            l.plugin.stats(&mut l.store, h)
        })
    }
}
