//! Receipts kept as files: one small JSON file per purge or quarantine, in a
//! directory of their own, written atomically and never overwritten.
//!
//! File names start with the receipt's time in microseconds, so a directory
//! listing is already close to time order; the exact order comes from `at`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::atomic::sync_dir;
use crate::backend::{Receipt, ReceiptFilter, ReceiptKind};
use crate::errors::IoContext;
use crate::types::PluginError;

/// Suffix of every receipt file.
pub const RECEIPT_SUFFIX: &str = ".receipt.json";

/// A directory of receipts.
pub struct ReceiptBook {
    dir: PathBuf,
}

/// The name a kind has on disk.
pub fn kind_name(kind: ReceiptKind) -> &'static str {
    match kind {
        ReceiptKind::Purged => "purged",
        ReceiptKind::Quarantined => "quarantined",
    }
}

/// The receipt kind `kind_name` gave `name`.
pub fn kind_from(name: &str) -> Option<ReceiptKind> {
    match name {
        "purged" => Some(ReceiptKind::Purged),
        "quarantined" => Some(ReceiptKind::Quarantined),
        _ => None,
    }
}

/// Keeps the characters of a unit id that are safe in a file name.
fn file_safe(unit: &str) -> String {
    unit.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ReceiptBook {
    /// A book kept in `dir` (created on the first receipt).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `receipt` durably: written to a temporary file, synced, renamed
    /// to a name no other receipt has, directory synced. Returns its path.
    pub fn put(&self, receipt: &Receipt) -> Result<PathBuf, PluginError> {
        let details: Value = serde_json::from_str(&receipt.json).map_err(|e| {
            PluginError::InvalidConfig(format!("receipt for `{}` is not JSON: {e}", receipt.unit))
        })?;
        let body = json!({
            "kind": kind_name(receipt.kind),
            "unit": receipt.unit,
            "store": receipt.store,
            "at": receipt.at,
            "details": details,
        });
        let label = self.dir.display().to_string();
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir).ctx("create directory", &label)?;
            sync_dir(crate::atomic::parent(&self.dir))?;
        }
        let stem = format!(
            "{:020}-{}-{}",
            (receipt.at.max(0.0) * 1e6) as u64,
            kind_name(receipt.kind),
            file_safe(&receipt.unit)
        );
        let temp = self.dir.join(format!("{stem}.quire-tmp"));
        let temp_label = temp.display().to_string();
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)
                .ctx("create", &temp_label)?;
            file.write_all(body.to_string().as_bytes())
                .ctx("write", &temp_label)?;
            file.sync_all().ctx("sync", &temp_label)
        })();
        if let Err(e) = written {
            // Not stored (a full disk, say): no half-written receipt stays behind.
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        // Never overwrite: a second receipt for the same unit and instant gets a suffix.
        let mut n = 0u32;
        let path = loop {
            let name = match n {
                0 => format!("{stem}{RECEIPT_SUFFIX}"),
                n => format!("{stem}-{n}{RECEIPT_SUFFIX}"),
            };
            let candidate = self.dir.join(name);
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        fs::rename(&temp, &path).ctx("rename", &path.display().to_string())?;
        sync_dir(&self.dir)?;
        Ok(path)
    }

    /// Every readable receipt, oldest first. Unreadable files are skipped:
    /// a receipt is a note, and a torn one must not stop a listing.
    pub fn all(&self) -> Result<Vec<Receipt>, PluginError> {
        let label = self.dir.display().to_string();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(crate::errors::io("list", &label, e)),
        };
        let mut receipts = Vec::new();
        for entry in entries {
            let entry = entry.ctx("list", &label)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(RECEIPT_SUFFIX) {
                continue;
            }
            let Ok(text) = fs::read_to_string(entry.path()) else {
                continue;
            };
            if let Some(r) = parse(&text) {
                receipts.push(r);
            }
        }
        receipts.sort_by(|a, b| a.at.total_cmp(&b.at).then_with(|| a.unit.cmp(&b.unit)));
        Ok(receipts)
    }

    /// Receipts that pass `filter`, oldest first.
    pub fn list(&self, filter: &ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        let mut out: Vec<Receipt> = self
            .all()?
            .into_iter()
            .filter(|r| matches(r, filter))
            .collect();
        if let Some(limit) = filter.limit {
            out.truncate(limit as usize);
        }
        Ok(out)
    }

    /// Temporary files left by a receipt write that never finished.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".quire-tmp"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The answer to `put-receipt` from a backend that keeps no receipts.
pub fn not_kept() -> PluginError {
    PluginError::Unsupported("put-receipt: this backend keeps no receipts".into())
}

/// Whether `r` passes `filter`.
pub fn matches(r: &Receipt, filter: &ReceiptFilter) -> bool {
    (filter.stores.is_empty() || r.store.as_ref().is_some_and(|s| filter.stores.contains(s)))
        && (filter.kinds.is_empty() || filter.kinds.contains(&r.kind))
        && filter.since.is_none_or(|t| r.at >= t)
        && filter.until.is_none_or(|t| r.at <= t)
}

fn parse(text: &str) -> Option<Receipt> {
    let v: Map<String, Value> = serde_json::from_str(text).ok()?;
    Some(Receipt {
        kind: kind_from(v.get("kind")?.as_str()?)?,
        unit: v.get("unit")?.as_str()?.to_string(),
        store: v.get("store").and_then(Value::as_str).map(str::to_string),
        at: v.get("at")?.as_f64()?,
        json: v
            .get("details")
            .map(Value::to_string)
            .unwrap_or_else(|| "{}".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(unit: &str, store: &str, at: f64, kind: ReceiptKind) -> Receipt {
        Receipt {
            kind,
            unit: unit.into(),
            store: Some(store.into()),
            at,
            json: r#"{"records":3}"#.into(),
        }
    }

    #[test]
    fn put_list_filter_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let book = ReceiptBook::new(dir.path().join("receipts"));
        book.put(&receipt("a/seg-1", "gps", 20.0, ReceiptKind::Purged))
            .unwrap();
        book.put(&receipt("a/seg-1", "gps", 20.0, ReceiptKind::Purged))
            .unwrap();
        book.put(&receipt("b/seg-2", "crm", 10.0, ReceiptKind::Quarantined))
            .unwrap();
        let all = book.all().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].unit, "b/seg-2");
        assert_eq!(all[1].json, r#"{"records":3}"#);
        let gps = book
            .list(&ReceiptFilter {
                stores: vec!["gps".into()],
                kinds: vec![],
                since: Some(15.0),
                until: None,
                limit: Some(1),
            })
            .unwrap();
        assert_eq!(gps.len(), 1);
        assert_eq!(gps[0].store.as_deref(), Some("gps"));
        assert!(book.leftovers().is_empty());
    }

    #[test]
    fn refuses_receipts_that_are_not_json() {
        let dir = tempfile::tempdir().unwrap();
        let book = ReceiptBook::new(dir.path());
        let mut r = receipt("u", "s", 1.0, ReceiptKind::Purged);
        r.json = "not json".into();
        assert!(matches!(book.put(&r), Err(PluginError::InvalidConfig(_))));
    }
}
