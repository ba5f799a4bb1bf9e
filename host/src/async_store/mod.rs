//! The async face of a [`Store`], for async Rust on any executor (tokio,
//! async-std, smol, a hand-rolled one): no call blocks an executor thread.
//!
//! - Appends from every task go to one writer thread, which appends
//!   whatever has queued up as one batch with one sync: group commit across
//!   tasks. If that batch fails, each caller's records are appended alone,
//!   so a bad batch fails only its own caller.
//! - Reads are a [`RecordStream`] fed by a thread of its own, a bounded
//!   number of records ahead (memory stays flat whatever the store holds).
//! - Everything else runs on a thread of its own and is awaited.
//!
//! Cancellation: dropping a future never loses an acknowledged record (one
//! is acknowledged only when its future returned `Ok`) and never tears a
//! batch (a caller's records go in one store batch, which is all or
//! nothing). An append dropped before the writer took it is not written; one
//! dropped after is written, unacknowledged. A dropped scan, recovery or
//! compaction still runs to its end: none is ever left half done.

mod off_thread;
mod stream;
mod writer;

use std::sync::Arc;

use crate::error::Result;
use crate::metrics::MetricsSnapshot;
use crate::ops::recover::RecoveryOptions;
use crate::ops::startup::{StartupMode, StartupReport};
use crate::progress::Silent;
use crate::read::ReadQuery;
use crate::record::Record;
use crate::report::{
    CompactionReport, DurabilityReport, InspectReport, RecoveryReport, ScanReport,
};
use crate::retention::Retention;
use crate::store::{Store, StoreConfig};

pub use off_thread::off_thread;
pub use stream::RecordStream;
use writer::Writer;

/// A [`Store`] for async code. Cheap to clone: clones share the store and
/// its writer thread, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct AsyncStore {
    store: Arc<Store>,
    writer: Arc<Writer>,
}

impl AsyncStore {
    /// Opens a store (loading and compiling the plugin off the executor).
    pub async fn open(config: StoreConfig) -> Result<Self> {
        let store = off_thread(move || Store::open(config)).await?;
        Ok(Self::new(store))
    }

    /// The async face of an open store.
    pub fn new(store: Store) -> Self {
        let store = Arc::new(store);
        Self {
            writer: Arc::new(Writer::start(store.clone())),
            store,
        }
    }

    /// The blocking face, for code that runs on a thread of its own.
    pub fn blocking(&self) -> &Arc<Store> {
        &self.store
    }

    /// Appends `records` as one batch; returns once they are as durable as
    /// the store's policy promises. Appends of concurrent tasks share a
    /// batch and its sync.
    pub async fn append(&self, records: Vec<Record>) -> Result<()> {
        self.writer.append(records).await
    }

    /// Matching records, as a stream (see [`ReadQuery`] for order, filters
    /// and newest-N).
    pub fn read(&self, query: ReadQuery) -> RecordStream {
        RecordStream::start(self.store.clone(), query)
    }

    /// Validates every unit without changing anything.
    pub async fn scan(&self) -> Result<ScanReport> {
        let store = self.store.clone();
        off_thread(move || store.scan(&Silent)).await
    }

    /// Recovers from what a scan finds (see [`Store::recover_with`]).
    pub async fn recover(&self, options: RecoveryOptions) -> Result<RecoveryReport> {
        let store = self.store.clone();
        off_thread(move || store.recover_with(options, &Silent)).await
    }

    /// Applies retention; the policy comes back with the report, to be used
    /// again.
    pub async fn compact(
        &self,
        mut policy: Retention,
        dry_run: bool,
    ) -> (Retention, Result<CompactionReport>) {
        let store = self.store.clone();
        off_thread(move || {
            let report = store.compact(&mut policy, dry_run, &Silent);
            (policy, report)
        })
        .await
    }

    /// Seals every live unit and syncs it.
    pub async fn checkpoint(&self) -> Result<()> {
        let store = self.store.clone();
        off_thread(move || store.checkpoint()).await
    }

    /// Where accepted records are: in memory, written, synced.
    pub async fn durability(&self) -> Result<DurabilityReport> {
        let store = self.store.clone();
        off_thread(move || store.durability()).await
    }

    /// Units, sizes, counts and metrics.
    pub async fn inspect(&self) -> Result<InspectReport> {
        let store = self.store.clone();
        off_thread(move || store.inspect(&Silent)).await
    }

    /// The startup check (scan, and recovery or refusal, as `mode` says).
    pub async fn startup_check(&self, mode: StartupMode) -> Result<StartupReport> {
        let store = self.store.clone();
        off_thread(move || store.startup_check(mode, &Silent)).await
    }

    /// The counters, as they are now (no I/O).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.store.metrics()
    }

    /// Finishes the queued appends, flushes, and (if this is the last
    /// clone) closes the store and releases its writer lock, all off the
    /// executor. Dropping the last clone does the same on the dropping
    /// thread.
    pub async fn close(self) -> Result<()> {
        let Self { store, writer } = self;
        off_thread(move || {
            drop(writer);
            let flushed = store.flush();
            drop(store);
            flushed
        })
        .await
    }
}
