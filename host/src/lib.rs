//! quire: durable persistence, retention, compaction, scanning and recovery,
//! with every storage backend and retention policy a sandboxed WebAssembly
//! component.
//!
//! ```no_run
//! use quire::{PluginSource, Record, ReadQuery, Store, StoreConfig};
//! let store = Store::open(StoreConfig::new(PluginSource::Builtin("ndjson".into()), "events.ndjson"))?;
//! store.append(vec![Record::from_json_line(r#"{"kind":"event","timestamp":1.0}"#, 0.0)?])?;
//! let records = store.read_all(&ReadQuery::default())?;
//! # Ok::<(), quire::Error>(())
//! ```
#![deny(missing_docs)]

pub mod async_store;
mod batch;
pub mod builtin;
pub mod cache;
mod calls;
mod checksum;
mod deadline;
pub mod engine;
mod error;
#[cfg(feature = "test-support")]
pub mod fault_injection;
mod grant_paths;
mod instance;
pub mod limits;
mod location;
pub mod lock;
pub mod metrics;
mod ops;
pub mod plugin;
pub mod policy;
#[cfg(feature = "test-support")]
pub mod power_loss;
pub mod progress;
mod read_batch;
mod record;
pub mod report;
pub mod retention;
mod retention_spec;
mod returns;
pub mod sandbox;
mod session;
mod store;
pub mod text;
mod wasi_files;
mod wit;

pub use async_store::{AsyncStore, RecordStream};
pub use batch::Batch;
pub use error::{Error, Result};
pub use limits::Limits;
pub use ops::groups::{GroupDelivery, GroupPending, GroupPendingEntry};
pub use ops::migrate::{self, MigrateOptions, MigrationReport};
pub use ops::read::{self, ReadQuery};
pub use ops::recover::{self, RecoveryMode, RecoveryOptions};
pub use ops::startup::{StartupMode, StartupReport};
pub use plugin::PluginSource;
pub use policy::Policy;
pub use read_batch::RecordView;
pub use record::{Record, now};
pub use retention::Retention;
pub use retention_spec::{PolicySpec, RetentionSpec, duration_seconds};
pub use store::{Durability, Store, StoreConfig, backend_info};
pub use wit::{
    AnomalyKind, BackendInfo, Envelope, Receipt, ReceiptFilter, ReceiptKind, StoreDurability,
    StoredRecord, UnitInfo, WIT_PACKAGE, WIT_VERSION, WIT_VERSIONS,
};

#[cfg(feature = "cli")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod cli;

/// Runs the `quire` command line; returns the exit code.
#[cfg(feature = "cli")]
pub fn cli_main() -> i32 {
    cli::main()
}
