//! The embedding API: open a store, append from many threads with group
//! commit, and run every operation through one locked plugin session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::lock::{self, WriterLock};
use crate::metrics::{self, Metrics, MetricsSnapshot};
use crate::plugin::{self, PluginSource};
use crate::record::Record;
use crate::sandbox::{DATA_DIR, Grants};
use crate::session::Session;
use crate::wit::batch::BatchBuilder;
use crate::wit::{BackendInfo, OpenConfig, RecordBatch, SyncLevel};

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every acknowledged append is `fdatasync`ed; concurrent appends share one sync.
    PerWrite,
    /// A sync after every N records; acknowledgements in between are written
    /// to the operating system only.
    EveryN(u64),
    /// Written to the operating system on append; synced by `flush` and on drop.
    Batch,
    /// Handed to the backend, which may hold records in memory (a compact
    /// codec's block) until `flush`, its own block size, or drop. The
    /// records held are lost if the process dies: `durability()` counts them.
    Buffered,
}

impl std::fmt::Display for Durability {
    /// The name `FromStr` parses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Durability::PerWrite => f.write_str("per-write"),
            Durability::EveryN(n) => write!(f, "every-n:{n}"),
            Durability::Batch => f.write_str("batch"),
            Durability::Buffered => f.write_str("buffered"),
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "per-write" => Ok(Durability::PerWrite),
            "batch" => Ok(Durability::Batch),
            "buffered" => Ok(Durability::Buffered),
            _ => text
                .strip_prefix("every-n:")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .map(Durability::EveryN)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "unknown durability `{text}`: use per-write, every-n:N, batch or buffered"
                    ))
                }),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The backend plugin.
    pub backend: PluginSource,
    /// The data: a file for single-file backends, a directory otherwise.
    /// Ignored by backends that keep nothing on disk.
    pub path: PathBuf,
    /// Open without write access (scan, read, inspect). No lock is taken.
    pub read_only: bool,
    /// Grant a quarantine directory (needed by quarantine recovery).
    pub quarantine_dir: Option<PathBuf>,
    /// The one server address a network backend may connect to.
    pub network: Option<std::net::SocketAddr>,
    /// Durability of appends.
    pub durability: Durability,
    /// Plugin memory and CPU limits.
    pub limits: Limits,
    /// Compiled-component cache directory (`None` disables the cache).
    pub cache_dir: Option<PathBuf>,
    /// Backend-specific options.
    pub options: Vec<(String, String)>,
    /// Crash tests only (feature `test-support`): a file layer noting every
    /// sync, for simulated power loss.
    #[cfg(feature = "test-support")]
    pub sync_tracker: Option<Arc<crate::power_loss::SyncTracker>>,
    /// Storage-fault tests only (feature `test-support`): fails the
    /// plugin's Nth write or sync.
    #[cfg(feature = "test-support")]
    pub faults: Option<Arc<crate::fault_injection::FaultPlan>>,
}

impl StoreConfig {
    /// A read-write store at `path` with `backend`, durable per write.
    pub fn new(backend: PluginSource, path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            backend,
            path: path.into(),
            read_only: false,
            quarantine_dir: None,
            network: None,
            durability: Durability::PerWrite,
            limits: Limits::default(),
            cache_dir: crate::cache::default_dir(),
            options: Vec::new(),
            #[cfg(feature = "test-support")]
            sync_tracker: None,
            #[cfg(feature = "test-support")]
            faults: None,
        }
    }
}

/// Records waiting for the group-commit leader.
#[derive(Default)]
struct CommitQueue {
    pending: BatchBuilder,
    /// Id of the batch `pending` will become.
    open_batch: u64,
    leader_active: bool,
    /// Outcome of finished batches, with how many appenders still want it.
    finished: BTreeMap<u64, (usize, Result<()>)>,
    waiting: BTreeMap<u64, usize>,
    unsynced_records: u64,
}

/// An open store.
pub struct Store {
    pub(crate) session: Mutex<Session>,
    queue: Mutex<CommitQueue>,
    committed: Condvar,
    pub(crate) config: StoreConfig,
    pub(crate) info: BackendInfo,
    /// The directory the plugin sees as its root, on the host.
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) metrics: Arc<Metrics>,
    _lock: Option<WriterLock>,
    /// What the read-write open repaired.
    opened: Vec<crate::report::Finding>,
    /// Receipts of live units copied to quarantine before the open cut
    /// their torn tails; the next recovery reports them.
    pub(crate) quarantined_at_open: Mutex<Vec<crate::report::Receipt>>,
}

/// The backend's self-description, from a throwaway instance with no grants.
pub fn backend_info(loaded: &plugin::LoadedBackend, limits: Limits) -> Result<BackendInfo> {
    let caller = crate::instance::Caller {
        label: loaded.label.clone(),
        limits,
        metrics: Arc::default(),
    };
    caller.once(&Grants::default(), "info", async |store| {
        let plugin = loaded.pre.instantiate(store).await?;
        plugin.info(store).await
    })
}

impl Store {
    /// Loads the backend, grants it the data directory and opens the storage.
    pub fn open(config: StoreConfig) -> Result<Self> {
        let loaded = plugin::load_backend(&config.backend, config.cache_dir.as_deref())?;
        let info = backend_info(&loaded, config.limits)?;
        let location = crate::location::resolve(&config, &info)?;
        let lock_file = match (&location.data_dir, config.read_only) {
            (Some(_), false) => Some(lock::lock_path(&config.path, info.path_is_file)),
            _ => None,
        };
        let mut lock = match &lock_file {
            // Another writer holds it: nothing of this open is undone.
            Some(path) => Some(lock::acquire(path)?),
            None => None,
        };
        let opened = Self::open_at(config, loaded, info, &location, &mut lock);
        if opened.is_err() {
            // Still holding the lock, so no other writer is using what goes.
            location.undo(lock.as_ref().and(lock_file.as_deref()));
        }
        opened
    }

    /// Opens with the lock taken (the store takes it on success; on failure
    /// the caller still holds it while it undoes what it created).
    fn open_at(
        config: StoreConfig,
        loaded: plugin::LoadedBackend,
        info: BackendInfo,
        location: &crate::location::Location,
        lock: &mut Option<WriterLock>,
    ) -> Result<Self> {
        let data_dir = location.data_dir.clone();
        let network = location.network;
        let target = location.target.clone();
        let mut config = config;
        if let Some(dir) = &config.quarantine_dir {
            let failed = |e: std::io::Error| Error::Path {
                path: dir.clone(),
                message: format!("cannot create quarantine directory: {e}"),
            };
            // It may lie inside the data directory, where the plugin can plant links.
            crate::location::create_dir_durably(dir, data_dir.as_deref(), &config)
                .map_err(failed)?;
            // Receipts name it absolutely, whatever the caller's working directory.
            config.quarantine_dir = Some(dir.canonicalize().map_err(failed)?);
        }
        let grants = Grants {
            data: data_dir.clone().map(|d| (d, !config.read_only)),
            quarantine: config.quarantine_dir.clone(),
            network,
            #[cfg(feature = "test-support")]
            sync_tracker: config.sync_tracker.clone(),
            #[cfg(feature = "test-support")]
            faults: config.faults.clone(),
        };
        let open = OpenConfig {
            root: DATA_DIR.into(),
            target,
            read_only: config.read_only,
            options: config.options.clone(),
        };
        // Nothing stored yet (a first start): nothing torn to copy.
        let tails = match (&config.quarantine_dir, config.read_only) {
            (Some(dir), false) if config.path.exists() => {
                crate::ops::open_quarantine::quarantine_torn_tails(
                    &loaded,
                    &grants,
                    config.limits,
                    &open,
                    dir,
                    data_dir.as_deref(),
                )?
            }
            _ => Vec::new(),
        };
        let metrics = Arc::<Metrics>::default();
        let mut session = match Session::open(loaded, grants, config.limits, open, metrics.clone())
        {
            Ok(session) => session,
            Err(e) => {
                // Nothing was cut: the copies are not needed.
                tails.iter().for_each(|t| t.discard());
                return Err(e);
            }
        };
        let at_address = session.places_are_addresses();
        let opened: Vec<_> = session
            .open_report()?
            .iter()
            .map(|a| {
                let file = data_dir.as_ref().map(|d| d.join(&a.unit));
                crate::report::Finding::new(a, file, at_address)
            })
            .collect();
        for finding in &opened {
            tracing::warn!("repaired on open: {}", finding.render());
        }
        let copied_at_open = crate::ops::open_quarantine::keep_where_cut(&mut session, tails)?;
        Ok(Store {
            opened,
            quarantined_at_open: Mutex::new(copied_at_open),
            session: Mutex::new(session),
            queue: Mutex::default(),
            committed: Condvar::new(),
            config,
            info,
            data_dir,
            metrics,
            _lock: lock.take(),
        })
    }

    /// The backend's description.
    pub fn backend(&self) -> &BackendInfo {
        &self.info
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Counter snapshot.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// The live counters (for sharing with an exporter).
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub(crate) fn session(&self) -> MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The host path of a unit, for reports.
    pub(crate) fn unit_path(&self, unit: &str) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join(unit))
    }

    /// Appends records and returns once they are as durable as the store's
    /// policy promises. Callable from many threads: appends that arrive while
    /// a batch is being written are committed together, with one sync.
    pub fn append(&self, records: Vec<Record>) -> Result<()> {
        self.append_batch(Batch::from(records.as_slice()))
    }

    /// [`Store::append`] for a [`Batch`]: records built from NDJSON lines
    /// without a `Record` each (what `quire append` does).
    pub fn append_batch(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let my_batch = queue.open_batch;
        queue.pending.extend(batch.builder);
        *queue.waiting.entry(my_batch).or_default() += 1;
        if !queue.leader_active {
            queue.leader_active = true;
            while queue.pending.len() > 0 {
                let batch = std::mem::take(&mut queue.pending).finish();
                let id = queue.open_batch;
                queue.open_batch += 1;
                let sync_now = match self.config.durability {
                    Durability::PerWrite => true,
                    Durability::EveryN(n) => {
                        queue.unsynced_records + batch.json_lens.len() as u64 >= n
                    }
                    Durability::Batch | Durability::Buffered => false,
                };
                drop(queue);
                let outcome = self.write_batch(&batch, sync_now);
                queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                queue.unsynced_records = if sync_now {
                    0
                } else {
                    queue.unsynced_records + batch.json_lens.len() as u64
                };
                let waiters = queue.waiting.remove(&id).unwrap_or(0);
                queue.finished.insert(id, (waiters, outcome));
                self.committed.notify_all();
            }
            queue.leader_active = false;
        }
        while !queue.finished.contains_key(&my_batch) {
            queue = self
                .committed
                .wait(queue)
                .unwrap_or_else(|p| p.into_inner());
        }
        let entry = queue.finished.get_mut(&my_batch).expect("checked above");
        entry.0 -= 1;
        let outcome = entry.1.as_ref().map(|_| ()).map_err(copy_error);
        if entry.0 == 0 {
            queue.finished.remove(&my_batch);
        }
        outcome
    }

    fn write_batch(&self, batch: &RecordBatch, sync: bool) -> Result<()> {
        let level = match (sync, self.config.durability) {
            (true, _) => SyncLevel::Durable,
            (false, Durability::Buffered) => SyncLevel::Buffered,
            (false, _) => SyncLevel::Written,
        };
        let result = self.session().append(batch, level);
        match &result {
            Ok(bytes) => {
                metrics::add(&self.metrics.records_written, batch.json_lens.len() as u64);
                metrics::add(&self.metrics.bytes_written, *bytes);
                if sync {
                    metrics::add(&self.metrics.syncs, 1);
                }
            }
            Err(_) => metrics::add(&self.metrics.write_errors, 1),
        }
        result.map(|_| ())
    }

    /// Records handed to `append` that the backend has not received yet.
    pub(crate) fn pending_records(&self) -> u64 {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .len() as u64
    }

    /// What opening read-write repaired (torn tails cut, manifests
    /// computed), as the backend reported it.
    pub fn open_report(&self) -> &[crate::report::Finding] {
        &self.opened
    }

    /// Makes every acknowledged append durable.
    pub fn flush(&self) -> Result<()> {
        let _queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.session().sync(SyncLevel::Durable)?;
        metrics::add(&self.metrics.syncs, 1);
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if !self.config.read_only && self.config.durability != Durability::PerWrite {
            let _ = self.session().sync(SyncLevel::Durable);
        }
    }
}

/// The error of a batch, for each appender that shared it: the same variant
/// (a fault stays a fault), not the text wrapped in another error.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Plugin {
            plugin,
            operation,
            message,
        } => Error::Plugin {
            plugin: plugin.clone(),
            operation: operation.clone(),
            message: message.clone(),
        },
        Error::Fault {
            plugin,
            operation,
            cause,
        } => Error::Fault {
            plugin: plugin.clone(),
            operation: operation.clone(),
            cause: cause.clone(),
        },
        Error::Unsupported {
            plugin,
            operation,
            message,
        } => Error::Unsupported {
            plugin: plugin.clone(),
            operation: operation.clone(),
            message: message.clone(),
        },
        Error::InvalidRecord(m) => Error::InvalidRecord(m.clone()),
        other => Error::Other(anyhow::anyhow!("{other}")),
    }
}
