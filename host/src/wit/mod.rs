//! The WIT contract as the host sees it, Zed style: one module per version
//! (`v0_3` is the newest and its types are the host's own; `v0_2` and `v0_1`
//! convert into them), one dispatch enum per world (`backends`, `policies`),
//! and the host's side of the bulk layouts (`batch`).

/// The conversions 0.1 and 0.2 share (their backend records and policy
/// types are generated per version but have the same shape): expanded in
/// each version's module, where `b` and `p` name its backend and policy
/// interfaces.
macro_rules! per_record_conversions {
    () => {
        pub fn info(i: b::BackendInfo) -> crate::wit::BackendInfo {
            crate::wit::BackendInfo {
                name: i.name,
                version: i.version,
                description: i.description,
                path_is_file: i.path_is_file,
                persistent: i.persistent,
                integrity: "not stated (a plugin of an earlier WIT version)".into(),
            }
        }

        pub fn open_config(c: &crate::wit::OpenConfig) -> b::OpenConfig {
            b::OpenConfig {
                root: c.root.clone(),
                target: c.target.clone(),
                read_only: c.read_only,
                options: c.options.clone(),
            }
        }

        pub fn metas(batch: &crate::wit::MetaBatch) -> Vec<p::RecordMeta> {
            crate::wit::batch::metas(batch)
                .map(|(kind, store, timestamp, stored_bytes)| p::RecordMeta {
                    kind: kind.to_string(),
                    store: store.to_string(),
                    timestamp,
                    stored_bytes,
                })
                .collect()
        }

        pub fn policy_error(e: p::PolicyError) -> crate::wit::PolicyError {
            match e {
                p::PolicyError::InvalidConfig(m) => crate::wit::PolicyError::InvalidConfig(m),
                p::PolicyError::InvalidState(m) => crate::wit::PolicyError::InvalidState(m),
            }
        }

        pub fn verdict(v: p::UnitVerdict) -> crate::wit::UnitVerdict {
            match v {
                p::UnitVerdict::Keep => crate::wit::UnitVerdict::Keep,
                p::UnitVerdict::Drop => crate::wit::UnitVerdict::Drop,
                p::UnitVerdict::Filter => crate::wit::UnitVerdict::Filter,
            }
        }
    };
}
pub(crate) use per_record_conversions;

pub mod backends;
pub mod batch;
pub mod groups;
pub mod policies;
pub mod v0_1;
pub mod v0_2;
pub mod v0_3;

pub use v0_3::backend::exports::quire::persistence::backend::{
    BackendInfo, OpenConfig, Receipt, ReceiptFilter, ReceiptKind, StoreDurability,
};
pub use v0_3::backend::quire::persistence::types::{
    Anomaly, AnomalyKind, Envelope, PluginError, ReadFilter, ReadOrder, RecordBatch, RecordPlace,
    ScanChunk, StorageStats, StoredBatch, StoredRecord, SyncLevel, UnitInfo,
};
pub use v0_3::policy::exports::quire::persistence::policy::{
    MetaBatch, MetaEntry, PolicyError, UnitVerdict,
};

/// The WIT package this host speaks.
pub const WIT_PACKAGE: &str = "quire:persistence";
/// The newest version it speaks; plugins are written against this one.
pub const WIT_VERSION: &str = v0_3::VERSION;
/// Every version it loads, newest first. Older plugins are adapted.
pub const WIT_VERSIONS: &[&str] = &[v0_3::VERSION, v0_2::VERSION, v0_1::VERSION];

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
