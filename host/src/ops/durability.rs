//! Units, checkpoints, the durability snapshot and receipts.

use crate::error::{Error, Result};
use crate::report::{DurabilityReport, StoreDurabilityEntry};
use crate::store::Store;
use crate::wit::{Receipt, ReceiptFilter, UnitInfo};

impl Store {
    /// Seals every live unit after making it durable: a checkpoint. The next
    /// append opens fresh units.
    pub fn checkpoint(&self) -> Result<()> {
        if self.config.read_only {
            return Err(Error::Usage(
                "a checkpoint needs a store opened read-write".into(),
            ));
        }
        self.flush()?;
        self.session().seal()
    }

    /// Where accepted records are, per store: in memory, written, synced.
    pub fn durability(&self) -> Result<DurabilityReport> {
        let pending_in_host = self.pending_records();
        let stores = self.session().durability()?;
        Ok(DurabilityReport {
            policy: self.config.durability.to_string(),
            pending_in_host,
            stores: stores.iter().map(StoreDurabilityEntry::from).collect(),
        })
    }

    /// The backend's storage units, oldest first.
    pub fn units(&self) -> Result<Vec<UnitInfo>> {
        self.session().units()
    }

    /// Receipts of purged and quarantined units, oldest first. Backends that
    /// keep none (NDJSON, memory, 0.1 plugins) give an empty list.
    pub fn receipts(&self, filter: &ReceiptFilter) -> Result<Vec<Receipt>> {
        match self.session().receipts(filter) {
            Err(Error::Unsupported { .. }) => Ok(Vec::new()),
            other => other,
        }
    }
}
