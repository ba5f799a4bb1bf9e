//! Typed calls into a backend session, one per WIT function, with the
//! checks the host makes on what comes back.

use wasmtime::component::ResourceAny;

use crate::read_batch::ReadBatch;
use crate::wit::{
    Anomaly, ReadFilter, ReadOrder, Receipt, ReceiptFilter, RecordBatch, RecordPlace, ScanChunk,
    StorageStats, StoreDurability, SyncLevel, UnitInfo,
};

/// Most JSON a cursor batch carries (one longer record still comes alone):
/// memory stays flat whatever the records' size.
pub const CURSOR_BYTES: u32 = 1 << 20;
use crate::error::Result;
use crate::returns;
use crate::session::Session;

/// An open cursor in the plugin, with what it was opened for (its
/// records are checked against both).
pub struct CursorHandle {
    resource: ResourceAny,
    /// The instance that made it.
    generation: u64,
    unit: String,
    filter: ReadFilter,
}
/// An open rewriter in the plugin.
pub struct RewriterHandle {
    resource: ResourceAny,
    /// The instance that made it.
    generation: u64,
}

impl Session {
    /// Appends a batch.
    pub fn append(&mut self, batch: &RecordBatch, level: SyncLevel) -> Result<u64> {
        self.call("append", async |l| {
            let h = l.handle;
            l.plugin.append(&mut l.store, h, batch, level).await
        })
    }

    /// Pushes buffered appends to `level`.
    pub fn sync(&mut self, level: SyncLevel) -> Result<()> {
        self.call("sync", async |l| {
            let h = l.handle;
            l.plugin.sync(&mut l.store, h, level).await
        })
    }

    /// Storage units, oldest first.
    pub fn units(&mut self) -> Result<Vec<UnitInfo>> {
        let units = self.call("units", async |l| {
            let h = l.handle;
            l.plugin.units(&mut l.store, h).await
        })?;
        self.checked(
            "units",
            units.iter().try_for_each(|u| returns::unit_id(&u.id)),
        )?;
        Ok(units)
    }

    /// A cursor or rewriter made by instance `generation` is usable only on
    /// that instance; one discarded after a fault took it along.
    fn same_instance(&self, generation: u64, operation: &str) -> Result<()> {
        if self.generation() == Some(generation) {
            Ok(())
        } else {
            Err(self.stale(operation))
        }
    }

    /// Turns a failed check of a return value into a fault.
    fn checked(&mut self, operation: &str, check: std::result::Result<(), String>) -> Result<()> {
        check.map_err(|cause| self.bad_return(operation, cause))
    }

    /// Layout anomalies.
    pub fn check_layout(&mut self) -> Result<Vec<Anomaly>> {
        let anomalies = self.call("check-layout", async |l| {
            let h = l.handle;
            l.plugin.check_layout(&mut l.store, h).await
        })?;
        self.checked("check-layout", returns::anomalies(&anomalies))?;
        Ok(anomalies)
    }

    /// Validates part of a unit of `unit_bytes` bytes; the plugin must make
    /// progress and stay inside the unit.
    pub fn validate(
        &mut self,
        unit: &str,
        unit_bytes: u64,
        offset: u64,
        budget: u64,
    ) -> Result<ScanChunk> {
        let chunk = self.call("validate", async |l| {
            let h = l.handle;
            l.plugin
                .validate(&mut l.store, h, unit, offset, budget)
                .await
        })?;
        // Addresses are not bounded by a unit's size; progress still is checked.
        let bound = if self.places_are_addresses() {
            u64::MAX
        } else {
            unit_bytes
        };
        let check = returns::anomalies(&chunk.anomalies).and_then(|()| {
            returns::scan_step(
                unit,
                bound,
                offset,
                chunk.next_offset,
                chunk.done,
                &chunk.anomalies,
            )
        });
        self.checked("validate", check)?;
        Ok(chunk)
    }

    /// Opens a cursor over one unit.
    pub fn open_cursor(
        &mut self,
        unit: &str,
        filter: &ReadFilter,
        order: ReadOrder,
    ) -> Result<CursorHandle> {
        let resource = self.call("read", async |l| {
            let h = l.handle;
            l.plugin.read(&mut l.store, h, unit, filter, order).await
        })?;
        Ok(CursorHandle {
            resource,
            generation: self.generation().expect("a call just succeeded"),
            unit: unit.to_string(),
            filter: filter.clone(),
        })
    }

    /// Next batch from a cursor: at most `max` records and about
    /// [`CURSOR_BYTES`] of JSON, checked.
    pub(crate) fn next_batch(&mut self, cursor: &CursorHandle, max: u32) -> Result<ReadBatch> {
        self.same_instance(cursor.generation, "read")?;
        let batch = self.call("read", async |l| {
            l.plugin
                .next(
                    &mut l.store,
                    cursor.resource,
                    &cursor.unit,
                    max,
                    CURSOR_BYTES,
                )
                .await
        })?;
        let batch = match ReadBatch::check(batch, &cursor.unit) {
            Ok(batch) => batch,
            Err(cause) => {
                return Err(self.bad_return("read", format!("returned a malformed batch: {cause}")));
            }
        };
        if batch.len() > max as usize {
            return Err(self.bad_return(
                "read",
                format!(
                    "returned {} records for a batch of at most {max}",
                    batch.len()
                ),
            ));
        }
        if !returns::passes_all(&cursor.filter) {
            let check =
                (0..batch.len()).try_for_each(|i| returns::record(&batch.get(i), &cursor.filter));
            self.checked("read", check)?;
        }
        Ok(batch)
    }

    /// Closes a cursor.
    pub fn close_cursor(&mut self, cursor: CursorHandle) {
        self.drop_resource(cursor.resource, cursor.generation);
    }

    /// Starts a replacement of a unit.
    pub fn begin_rewrite(&mut self, unit: &str) -> Result<RewriterHandle> {
        let resource = self.call("rewrite", async |l| {
            let h = l.handle;
            l.plugin.rewrite(&mut l.store, h, unit).await
        })?;
        Ok(RewriterHandle {
            resource,
            generation: self.generation().expect("a call just succeeded"),
        })
    }

    /// Adds records to a replacement.
    pub fn rewrite_write(&mut self, rewriter: &RewriterHandle, batch: &RecordBatch) -> Result<()> {
        self.same_instance(rewriter.generation, "rewrite")?;
        self.call("rewrite", async |l| {
            l.plugin
                .rewrite_write(&mut l.store, rewriter.resource, batch)
                .await
        })
    }

    /// Adds the stored bytes at `places` of the unit being replaced.
    pub fn rewrite_copy(
        &mut self,
        rewriter: &RewriterHandle,
        places: &[RecordPlace],
    ) -> Result<()> {
        self.same_instance(rewriter.generation, "rewrite")?;
        self.call("rewrite copy", async |l| {
            l.plugin
                .rewrite_copy(&mut l.store, rewriter.resource, places)
                .await
        })
    }

    /// Swaps the replacement in; returns the unit's new size.
    pub fn rewrite_commit(&mut self, rewriter: RewriterHandle) -> Result<u64> {
        self.same_instance(rewriter.generation, "rewrite commit")?;
        let result = self.call("rewrite commit", async |l| {
            l.plugin
                .rewrite_commit(&mut l.store, rewriter.resource)
                .await
        });
        self.drop_resource(rewriter.resource, rewriter.generation);
        result
    }

    /// Discards a replacement. One whose instance is gone is discarded
    /// already (its temporary file is an orphan the next open or recovery
    /// removes).
    pub fn rewrite_abort(&mut self, rewriter: RewriterHandle) -> Result<()> {
        if self.generation() != Some(rewriter.generation) {
            return Ok(());
        }
        let result = self.call("rewrite abort", async |l| {
            l.plugin
                .rewrite_abort(&mut l.store, rewriter.resource)
                .await
        });
        self.drop_resource(rewriter.resource, rewriter.generation);
        result
    }

    /// Removes a whole unit, leaving `receipt` behind when given.
    pub fn drop_unit(&mut self, unit: &str, receipt: Option<&Receipt>) -> Result<()> {
        self.call("drop-unit", async |l| {
            let h = l.handle;
            l.plugin.drop_unit(&mut l.store, h, unit, receipt).await
        })
    }

    /// Stores a receipt with the backend.
    pub fn put_receipt(&mut self, receipt: &Receipt) -> Result<()> {
        self.call("put-receipt", async |l| {
            let h = l.handle;
            l.plugin.put_receipt(&mut l.store, h, receipt).await
        })
    }

    /// Receipts the backend keeps.
    pub fn receipts(&mut self, filter: &ReceiptFilter) -> Result<Vec<Receipt>> {
        let receipts = self.call("receipts", async |l| {
            let h = l.handle;
            l.plugin.receipts(&mut l.store, h, filter).await
        })?;
        let check = receipts.iter().try_for_each(|r| returns::unit_id(&r.unit));
        self.checked("receipts", check)?;
        Ok(receipts)
    }

    /// What the read-write open repaired.
    pub fn open_report(&mut self) -> Result<Vec<Anomaly>> {
        let anomalies = self.call("open-report", async |l| {
            let h = l.handle;
            l.plugin.open_report(&mut l.store, h).await.map(Ok)
        })?;
        self.checked("open-report", returns::anomalies(&anomalies))?;
        Ok(anomalies)
    }

    /// Seals every live unit.
    pub fn seal(&mut self) -> Result<()> {
        self.call("seal", async |l| {
            let h = l.handle;
            l.plugin.seal(&mut l.store, h).await
        })
    }

    /// The backend's durability snapshot.
    pub fn durability(&mut self) -> Result<Vec<StoreDurability>> {
        self.call("durability", async |l| {
            let h = l.handle;
            l.plugin.durability(&mut l.store, h).await
        })
    }

    /// Copies a unit into the granted quarantine directory.
    pub fn quarantine(&mut self, unit: &str, name: &str) -> Result<u64> {
        self.call("quarantine", async |l| {
            let h = l.handle;
            l.plugin
                .quarantine(&mut l.store, h, unit, crate::sandbox::QUARANTINE_DIR, name)
                .await
        })
    }

    /// Storage statistics.
    pub fn stats(&mut self) -> Result<StorageStats> {
        let stats = self.call("stats", async |l| {
            let h = l.handle;
            l.plugin.stats(&mut l.store, h).await
        })?;
        let check = stats.units.iter().try_for_each(|u| returns::unit_id(&u.id));
        self.checked("stats", check)?;
        Ok(stats)
    }
}
