//! Host-side bindings generated from the WIT package.

/// The `backend-plugin` world.
#[allow(missing_docs)]
pub mod backend {
    wasmtime::component::bindgen!({ path: "../wit/v0.1", world: "backend-plugin" });
}

/// The `retention-policy` world.
#[allow(missing_docs)]
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "retention-policy",
        with: { "quire:persistence/types": super::backend::quire::persistence::types },
    });
}

pub use backend::exports::quire::persistence::backend::{BackendInfo, OpenConfig};
pub use backend::quire::persistence::types::{
    Anomaly, AnomalyKind, Envelope, PluginError, ReadFilter, ReadOrder, ScanChunk, StorageStats,
    StoredRecord, SyncLevel, UnitInfo,
};

/// The WIT package version this host speaks.
pub const WIT_PACKAGE: &str = "quire:persistence";
/// Its version.
pub const WIT_VERSION: &str = "0.1.0";

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
            PluginError::InvalidState(m) => format!("{m}"),
        }
    }
}

/// A policy error in words.
pub fn describe_policy(e: &policy::exports::quire::persistence::policy::PolicyError) -> String {
    {
        use policy::exports::quire::persistence::policy::PolicyError as E;
        match e {
            E::InvalidConfig(m) => format!("invalid configuration: {m}"),
            E::InvalidState(m) => format!("{m}"),
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
