//! Host-side bindings generated from the WIT package, one module per version.

/// Bindings for `quire:persistence@0.2.0`, the version this host is written against.
#[allow(missing_docs)]
pub mod v0_2 {
    /// The `backend-plugin` world.
    pub mod backend {
        wasmtime::component::bindgen!({
            path: "../wit/v0.2",
            world: "backend-plugin",
            exports: { default: async },
        });
    }
    /// The `retention-policy` world.
    pub mod policy {
        wasmtime::component::bindgen!({
            path: "../wit/v0.2",
            world: "retention-policy",
            exports: { default: async },
            with: { "quire:persistence/types": super::backend::quire::persistence::types },
        });
    }
}

/// Bindings for `quire:persistence@0.1.0`. Its `types` interface is the same
/// as 0.2's, so both versions share one set of Rust types; what differs is
/// adapted in `versions.rs`.
#[allow(missing_docs)]
pub mod v0_1 {
    /// The `backend-plugin` world.
    pub mod backend {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1",
            world: "backend-plugin",
            exports: { default: async },
            with: { "quire:persistence/types": crate::bindings::v0_2::backend::quire::persistence::types },
        });
    }
    /// The `retention-policy` world.
    pub mod policy {
        wasmtime::component::bindgen!({
            path: "../wit/v0.1",
            world: "retention-policy",
            exports: { default: async },
            with: { "quire:persistence/types": crate::bindings::v0_2::backend::quire::persistence::types },
        });
    }
}

pub use v0_2::backend::exports::quire::persistence::backend::{
    BackendInfo, OpenConfig, Receipt, ReceiptFilter, ReceiptKind, StoreDurability,
};
pub use v0_2::backend::quire::persistence::types::{
    Anomaly, AnomalyKind, Envelope, PluginError, ReadFilter, ReadOrder, ScanChunk, StorageStats,
    StoredRecord, SyncLevel, UnitInfo,
};
pub use v0_2::policy::exports::quire::persistence::policy::{PolicyError, RecordMeta, UnitVerdict};

/// The WIT package this host speaks.
pub const WIT_PACKAGE: &str = "quire:persistence";
/// The newest version it speaks; plugins are written against this one.
pub const WIT_VERSION: &str = "0.2.0";
/// Every version it loads, newest first. Older plugins are adapted.
pub const WIT_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// A plugin error in words, naming operation and target where it has them.
pub fn describe(e: &PluginError) -> String {
    {
        match e {
            PluginError::Io(io) => format!("{} {}: {}", io.operation, io.target, io.message),
            PluginError::InvalidConfig(m) => format!("invalid configuration: {m}"),
            PluginError::InvalidRecord(r) => {
                format!("record {} of the batch refused: {}", r.index, r.reason)
            }
            PluginError::Unsupported(m) => format!("not supported: {m}"),
            PluginError::NoSuchUnit(u) => format!("no such unit `{u}`"),
            PluginError::Corrupt(a) => format!(
                "damaged data in {} at byte {}: {}",
                a.unit, a.offset, a.detail
            ),
            PluginError::InvalidState(m) => m.clone(),
        }
    }
}

/// A policy error in words.
pub fn describe_policy(e: &PolicyError) -> String {
    {
        use PolicyError as E;
        match e {
            E::InvalidConfig(m) => format!("invalid configuration: {m}"),
            E::InvalidState(m) => m.clone(),
        }
    }
}

impl AnomalyKind {
    /// The name reports use (Papyra's style, upper snake case).
    pub fn label(self) -> &'static str {
        match self {
            AnomalyKind::TruncatedTail => "TRUNCATED_LINE",
            AnomalyKind::CorruptedRecord => "CORRUPTED_LINE",
            AnomalyKind::ChecksumMismatch => "CHECKSUM_MISMATCH",
            AnomalyKind::InvalidRecord => "INVALID_RECORD",
            AnomalyKind::BlankLine => "BLANK_LINE",
            AnomalyKind::OrphanedUnit => "ORPHANED_FILE",
            AnomalyKind::ManifestMismatch => "MANIFEST_MISMATCH",
            AnomalyKind::PartialWrite => "PARTIAL_WRITE",
        }
    }
}

impl ReceiptKind {
    /// The name receipts use.
    pub fn label(self) -> &'static str {
        match self {
            ReceiptKind::Purged => "purged",
            ReceiptKind::Quarantined => "quarantined",
        }
    }
}
