//! Reports of every operation: serializable for `--json`, printable for people.

use std::path::PathBuf;

use serde::Serialize;

use crate::wit::{Anomaly, UnitInfo};

/// One anomaly, located.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Kind, in Papyra's naming (`TRUNCATED_LINE`, `CORRUPTED_LINE`, ...).
    pub kind: String,
    /// Storage unit.
    pub unit: String,
    /// The file on the host, when the unit is one.
    pub file: Option<PathBuf>,
    /// Byte offset of the damage; for a store reached over the network,
    /// the backend's address of the damaged record instead (see `at_address`).
    pub offset: u64,
    /// Bytes damaged.
    pub length: u64,
    /// 1-based line, for line formats.
    pub line: Option<u64>,
    /// Detail from the backend.
    pub detail: String,
    /// `offset` is the backend's address of a record (Redis: the entry id
    /// packed as `ms << 20 | seq`; the detail names the id), not a byte.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_address: bool,
}

impl Finding {
    /// `at_address`: the store's places are addresses (see the field).
    pub(crate) fn new(a: &Anomaly, file: Option<PathBuf>, at_address: bool) -> Self {
        Finding {
            kind: a.kind.label().into(),
            unit: a.unit.clone(),
            file,
            offset: a.offset,
            length: a.length,
            line: a.line,
            // The plugin's words, escaped once for every terminal, log and JSON reader.
            detail: crate::text::clean(&a.detail).into_owned(),
            at_address,
        }
    }

    /// `file:line (byte N): KIND detail`.
    pub fn render(&self) -> String {
        let place = self
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| self.unit.clone());
        let line = self.line.map(|l| format!(":{l}")).unwrap_or_default();
        if self.at_address {
            return format!(
                "{}: {} {}",
                crate::text::clean(&place),
                self.kind,
                self.detail
            );
        }
        // The unit id and detail are the plugin's words: escaped for terminals and logs.
        format!(
            "{}{line} (byte {}, {} bytes): {} {}",
            crate::text::clean(&place),
            self.offset,
            self.length,
            self.kind,
            self.detail
        )
    }
}

/// Most findings a report keeps; the count goes on past it.
pub const MAX_FINDINGS: usize = 10_000;

/// Result of a scan.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScanReport {
    /// What the backend's checksums protect (its own words).
    pub integrity: String,
    /// Units looked at.
    pub units: usize,
    /// Bytes validated.
    pub bytes_scanned: u64,
    /// Valid records seen.
    pub records: u64,
    /// Anomalies found (all of them, even past `MAX_FINDINGS`).
    pub anomaly_count: u64,
    /// The first `MAX_FINDINGS` anomalies.
    pub anomalies: Vec<Finding>,
}

impl ScanReport {
    /// No anomalies.
    pub fn healthy(&self) -> bool {
        self.anomaly_count == 0
    }
}

/// What recovery did to one unit or file: the receipt.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// `rewritten`, `quarantined`, `removed`, or `skipped: REASON; left as
    /// it is` (nothing changed; a copy is kept in quarantine mode).
    pub action: String,
    /// The unit.
    pub unit: String,
    /// The file on the host, when the unit is one.
    pub file: Option<PathBuf>,
    /// Where the damaged original was copied, for quarantine.
    pub quarantined_to: Option<PathBuf>,
    /// Bytes before and after.
    pub bytes_before: u64,
    /// Bytes after (0 for removed).
    pub bytes_after: u64,
    /// Valid records kept (0 for `skipped`: nothing was rewritten).
    pub records_kept: u64,
    /// Anomalies the change removed.
    pub anomalies_removed: u64,
    /// Records no checksum vouches for any more: dropped (or kept, when
    /// asked), with where they were. Absent when every record verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<Unverified>,
    /// Unix time of the change.
    pub at: f64,
}

/// Records of a unit inside stretches its checksums disown: they may
/// parse, yet not be what was written.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Unverified {
    /// How many.
    pub records: u64,
    /// True when they were kept in the replacement (`--keep-unverified`),
    /// false when dropped from the live history.
    pub kept: bool,
    /// Where they were in the unit before the change.
    pub ranges: Vec<ByteRange>,
    /// The file holding their exact lines, when they were dropped and not
    /// already kept whole in quarantine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<PathBuf>,
}

/// A stretch of bytes in a unit.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Bytes.
    pub length: u64,
}

impl ByteRange {
    /// The byte after the last.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// Result of a recovery.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// `repair` or `quarantine`.
    pub mode: String,
    /// The scan that found the damage.
    pub before: ScanReport,
    /// One receipt per file rewritten, quarantined or removed.
    pub receipts: Vec<Receipt>,
    /// The validating re-scan.
    pub after: ScanReport,
}

/// What compaction did (or would do) to one unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitCompaction {
    /// The unit.
    pub unit: String,
    /// `kept`, `dropped`, `rewritten`, `unchanged`, or `skipped: ...` (a
    /// unit whose checksums disown some of its bytes is left to recovery).
    pub action: String,
    /// Records before, when counted.
    pub records_before: Option<u64>,
    /// Records after, when counted.
    pub records_after: Option<u64>,
    /// Bytes before.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
}

/// Result of a compaction.
#[derive(Debug, Clone, Serialize)]
pub struct CompactionReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The policy's own description.
    pub policy: String,
    /// Records counted before.
    pub records_before: u64,
    /// Records after.
    pub records_after: u64,
    /// Bytes before.
    pub bytes_before: u64,
    /// Bytes after.
    pub bytes_after: u64,
    /// `bytes_before - bytes_after`.
    pub bytes_reclaimed: u64,
    /// Per unit.
    pub units: Vec<UnitCompaction>,
}

/// Result of an inspection.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// Backend name.
    pub backend: String,
    /// Backend version.
    pub backend_version: String,
    /// Data path.
    pub path: PathBuf,
    /// Units.
    pub units: Vec<UnitSummary>,
    /// Total bytes.
    pub total_bytes: u64,
    /// Valid records.
    pub records: u64,
    /// Records per kind.
    pub kinds: std::collections::BTreeMap<String, u64>,
    /// Records per store.
    pub stores: std::collections::BTreeMap<String, u64>,
    /// Oldest timestamp.
    pub min_timestamp: Option<f64>,
    /// Newest timestamp.
    pub max_timestamp: Option<f64>,
    /// Backend-specific facts.
    pub details: Vec<(String, String)>,
    /// Receipts of purged and quarantined units (backends that keep them).
    pub receipts: Vec<ReceiptEntry>,
}

/// A receipt a backend keeps, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptEntry {
    /// `purged` or `quarantined`.
    pub kind: String,
    /// The unit.
    pub unit: String,
    /// Its store.
    pub store: Option<String>,
    /// When, in Unix seconds.
    pub at: f64,
    /// What the host recorded: manifest, policy, reason.
    pub details: serde_json::Value,
}

impl From<&crate::wit::Receipt> for ReceiptEntry {
    fn from(r: &crate::wit::Receipt) -> Self {
        ReceiptEntry {
            kind: r.kind.label().into(),
            unit: r.unit.clone(),
            store: r.store.clone(),
            at: r.at,
            details: serde_json::from_str(&r.json)
                .unwrap_or(serde_json::Value::String(r.json.clone())),
        }
    }
}

/// Where accepted records are: the durability snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct DurabilityReport {
    /// The store's durability policy.
    pub policy: String,
    /// Records handed to the store and not yet passed to the backend.
    pub pending_in_host: u64,
    /// Per store, from the backend.
    pub stores: Vec<StoreDurabilityEntry>,
}

/// One store's durability.
#[derive(Debug, Clone, Serialize)]
pub struct StoreDurabilityEntry {
    /// Store (`*` when the backend does not separate stores).
    pub store: String,
    /// Codec of the live unit.
    pub codec: String,
    /// The live unit.
    pub live_unit: Option<String>,
    /// Accepted since open.
    pub accepted: u64,
    /// In the plugin's memory only.
    pub buffered: u64,
    /// Written, not synced.
    pub unsynced: u64,
    /// `buffered`, `written` or `durable`: the weakest state any record is in.
    pub state: String,
}

impl From<&crate::wit::StoreDurability> for StoreDurabilityEntry {
    fn from(d: &crate::wit::StoreDurability) -> Self {
        let state = if d.buffered > 0 {
            "buffered"
        } else if d.unsynced > 0 {
            "written"
        } else {
            "durable"
        };
        StoreDurabilityEntry {
            store: d.store.clone(),
            codec: d.codec.clone(),
            live_unit: d.live_unit.clone(),
            accepted: d.accepted,
            buffered: d.buffered,
            unsynced: d.unsynced,
            state: state.into(),
        }
    }
}

/// A unit, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct UnitSummary {
    /// Unit id.
    pub id: String,
    /// Bytes.
    pub bytes: u64,
    /// Records, when known.
    pub records: Option<u64>,
    /// Sealed or live.
    pub sealed: bool,
    /// Codec.
    pub codec: String,
    /// Store, for per-store units.
    pub store: Option<String>,
    /// Oldest record, from the manifest.
    pub min_timestamp: Option<f64>,
    /// Newest record, from the manifest.
    pub max_timestamp: Option<f64>,
}

impl From<&UnitInfo> for UnitSummary {
    fn from(u: &UnitInfo) -> Self {
        UnitSummary {
            id: u.id.clone(),
            bytes: u.bytes,
            records: u.records,
            sealed: u.sealed,
            codec: u.codec.clone(),
            store: u.store.clone(),
            min_timestamp: u.min_timestamp,
            max_timestamp: u.max_timestamp,
        }
    }
}
