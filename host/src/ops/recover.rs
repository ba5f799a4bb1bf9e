//! Recovery: repair or quarantine every damaged unit, leave a receipt for
//! each, then re-scan to prove the result clean.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::metrics;
use crate::progress::Progress;
use crate::record::now;
use crate::report::{Receipt, RecoveryReport, ScanReport};
use crate::session::Session;
use crate::store::Store;
use crate::wit::AnomalyKind;

/// How damaged units are dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Rewrite keeping every valid record.
    Repair,
    /// Copy the damaged original into the quarantine directory, then repair.
    Quarantine,
}

impl RecoveryMode {
    fn name(self) -> &'static str {
        match self {
            RecoveryMode::Repair => "repair",
            RecoveryMode::Quarantine => "quarantine",
        }
    }
}

/// How a recovery goes about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// Repair or quarantine.
    pub mode: RecoveryMode,
    /// Keep records whose checksums no longer vouch for them, reported as
    /// unverified, instead of dropping them from the live history.
    pub keep_unverified: bool,
}

impl From<RecoveryMode> for RecoveryOptions {
    fn from(mode: RecoveryMode) -> Self {
        Self {
            mode,
            keep_unverified: false,
        }
    }
}

impl Store {
    /// Recovers from what a scan finds. Quarantine needs the store to have
    /// been opened with a quarantine directory.
    pub fn recover(&self, mode: RecoveryMode, progress: &dyn Progress) -> Result<RecoveryReport> {
        self.recover_with(mode.into(), progress)
    }

    /// [`Store::recover`] with every option. Records inside stretches a
    /// backend's checksums disown are dropped from the live history (their
    /// exact lines set aside beside the unit, or the whole original kept in
    /// quarantine) and named in the receipt, unless `keep_unverified`.
    pub fn recover_with(
        &self,
        options: RecoveryOptions,
        progress: &dyn Progress,
    ) -> Result<RecoveryReport> {
        let result = self.recover_inner(options, progress);
        metrics::add(&self.metrics.recoveries, 1);
        if result.is_err() {
            metrics::add(&self.metrics.recovery_errors, 1);
        }
        result
    }

    fn recover_inner(
        &self,
        options: RecoveryOptions,
        progress: &dyn Progress,
    ) -> Result<RecoveryReport> {
        let mode = options.mode;
        if self.config.read_only {
            return Err(Error::Usage(
                "recovery needs a store opened read-write".into(),
            ));
        }
        let quarantine_dir = match (mode, &self.config.quarantine_dir) {
            (RecoveryMode::Quarantine, None) => {
                return Err(Error::Usage(
                    "quarantine mode needs a quarantine directory (--quarantine-dir DIR)".into(),
                ));
            }
            (_, dir) => dir.clone(),
        };
        let before = self.scan(progress)?;
        // Live units the open copied aside before cutting their torn tails
        // (handed back if this recovery fails, for the next one to report).
        let at_open = self.take_open_copies();
        let result = self.recover_units(options, quarantine_dir, before, at_open.clone(), progress);
        if result.is_err() {
            self.restore_open_copies(at_open);
        }
        result
    }

    fn recover_units(
        &self,
        options: RecoveryOptions,
        quarantine_dir: Option<PathBuf>,
        before: ScanReport,
        mut receipts: Vec<Receipt>,
        progress: &dyn Progress,
    ) -> Result<RecoveryReport> {
        let mode = options.mode;
        if !before.healthy() {
            let mut by_unit: BTreeMap<String, (u64, bool)> = BTreeMap::new();
            for finding in &before.anomalies {
                let entry = by_unit.entry(finding.unit.clone()).or_default();
                entry.0 += 1;
                entry.1 |= finding.kind == AnomalyKind::OrphanedUnit.label();
            }
            let mut session = self.session();
            let units = session.units()?;
            if before.anomaly_count as usize > before.anomalies.len() {
                // The report is full: one badly damaged unit must not hide
                // the others. The scan checked the layout, then went unit by
                // unit; it filled up in the unit its last finding names, so
                // only the units after that one can have damage it left out.
                let full_in = before.anomalies.last().map(|f| f.unit.as_str());
                let full_at = units.iter().position(|u| Some(u.id.as_str()) == full_in);
                for unit in units.iter().skip(full_at.map_or(0, |i| i + 1)) {
                    if by_unit.contains_key(&unit.id) {
                        continue;
                    }
                    let mut found = 0;
                    super::scan::validate_unit(&mut session, &unit.id, unit.bytes, |_, a| {
                        found += a.len() as u64
                    })?;
                    if found > 0 {
                        by_unit.insert(unit.id.clone(), (found, false));
                    }
                }
            }
            // Unit id -> (bytes, store).
            let mut sizes: BTreeMap<String, (u64, Option<String>)> = units
                .into_iter()
                .map(|u| (u.id, (u.bytes, u.store)))
                .collect();
            // Orphans are no unit; their anomaly spans the whole file.
            for f in before
                .anomalies
                .iter()
                .filter(|f| f.kind == AnomalyKind::OrphanedUnit.label())
            {
                sizes.entry(f.unit.clone()).or_insert((f.length, None));
            }
            // Orphans first: a rewrite reuses the temporary name a leftover may hold.
            let mut work: Vec<(String, (u64, bool))> = by_unit.into_iter().collect();
            work.sort_by_key(|(_, (_, orphan))| !orphan);
            for (unit, (anomalies, orphan)) in work {
                let (bytes_before, store) = sizes.get(&unit).cloned().unwrap_or_default();
                let disowned = if orphan {
                    Ok(Vec::new())
                } else {
                    super::unverified::disowned_ranges(&mut session, &unit, bytes_before)?
                };
                // Records about to be dropped are kept somewhere first: the
                // whole original in quarantine, or their lines beside it.
                let drops = matches!(&disowned, Ok(r) if !r.is_empty()) && !options.keep_unverified;
                let quarantine_now = mode == RecoveryMode::Quarantine || drops;
                let quarantined_to = match &quarantine_dir {
                    Some(dir) if quarantine_now => Some(copy_to_quarantine(
                        &mut session,
                        dir,
                        &unit,
                        store,
                        anomalies,
                        bytes_before,
                    )?),
                    _ => None,
                };
                let disowned = match disowned {
                    Ok(ranges) => ranges,
                    Err(too_many) => {
                        // Left as it is, said in its receipt (with the copy, in
                        // quarantine mode); the other units are still repaired
                        // and the re-scan reports this one.
                        tracing::warn!("{unit} left as it is: {too_many}");
                        receipts.push(Receipt {
                            action: format!("skipped: {too_many}; left as it is"),
                            unit: unit.clone(),
                            file: self.unit_path(&unit),
                            quarantined_to,
                            bytes_before,
                            bytes_after: bytes_before,
                            records_kept: 0,
                            anomalies_removed: 0,
                            unverified: None,
                            at: now(),
                        });
                        continue;
                    }
                };
                let aside = match (&quarantined_to, drops) {
                    (None, true) => match self.unit_path(&unit) {
                        Some(file) => {
                            let mut name = file.into_os_string();
                            name.push(format!(".unverified-{}", (now() * 1000.0) as u64));
                            Some(PathBuf::from(name))
                        }
                        None => {
                            return Err(Error::Usage(format!(
                                "{} record stretch(es) of `{unit}` no longer match their checksums \
                                 and this backend has no file to set them aside in: give \
                                 --quarantine-dir DIR to keep the original, or \
                                 --keep-unverified to keep them (reported as unverified)",
                                disowned.len()
                            )));
                        }
                    },
                    _ => None,
                };
                let sorter = std::cell::RefCell::new(super::unverified::Sorter::new(
                    disowned,
                    options.keep_unverified,
                    aside,
                ));
                let receipt = if orphan {
                    session.drop_unit(&unit, None)?;
                    Receipt {
                        action: "removed".into(),
                        unit: unit.clone(),
                        file: self.unit_path(&unit),
                        quarantined_to,
                        bytes_before,
                        bytes_after: 0,
                        records_kept: 0,
                        anomalies_removed: anomalies,
                        unverified: None,
                        at: now(),
                    }
                } else {
                    progress.begin(&format!("repair {unit}"), bytes_before);
                    // Set-aside lines are durable before the unit loses them.
                    let done = super::rewrite::rewrite_unit_then(
                        &mut session,
                        &unit,
                        progress,
                        |r| sorter.borrow_mut().keep(r),
                        || sorter.borrow_mut().make_durable(),
                    )?;
                    progress.finish();
                    let unverified = sorter.into_inner().finish()?;
                    Receipt {
                        action: if quarantined_to.is_some() {
                            "quarantined".into()
                        } else {
                            "rewritten".into()
                        },
                        unit: unit.clone(),
                        file: self.unit_path(&unit),
                        quarantined_to,
                        bytes_before,
                        bytes_after: done.bytes_after,
                        records_kept: done.kept,
                        anomalies_removed: anomalies,
                        unverified,
                        at: now(),
                    }
                };
                if let Some(path) = &receipt.quarantined_to {
                    write_receipt(path, &receipt)?;
                }
                // Lines set aside are kept with the receipt that explains them.
                if let Some(path) = receipt
                    .unverified
                    .as_ref()
                    .and_then(|u| u.set_aside.as_ref())
                {
                    write_receipt(path, &receipt)?;
                }
                receipts.push(receipt);
            }
        }
        let after = self.scan(progress)?;
        Ok(RecoveryReport {
            mode: mode.name().into(),
            before,
            receipts,
            after,
        })
    }
}

/// Copies `unit` into `dir` and notes it with the backend; returns the copy.
fn copy_to_quarantine(
    session: &mut Session,
    dir: &std::path::Path,
    unit: &str,
    store: Option<String>,
    anomalies: u64,
    bytes: u64,
) -> Result<PathBuf> {
    let copy = dir.join(quarantine_name(unit));
    let name = copy
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a plain UTF-8 name");
    session.quarantine(unit, name)?;
    keep_backend_receipt(
        session,
        &quarantine_receipt(unit, store, &copy, anomalies, bytes),
    )?;
    Ok(copy)
}

/// Gives the backend a receipt to keep; a backend that keeps none is fine.
pub(crate) fn keep_backend_receipt(
    session: &mut Session,
    receipt: &crate::wit::Receipt,
) -> Result<()> {
    match session.put_receipt(receipt) {
        Ok(()) | Err(Error::Unsupported { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A quarantine copy's file name: the unit id flattened (units of different
/// stores share base names), the time, and a per-process counter, so two
/// copies never collide.
pub(crate) fn quarantine_name(unit: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{}.quarantine.{}-{n}",
        unit.replace('/', "__"),
        (now() * 1000.0) as u64
    )
}

/// Keeps the receipt beside the quarantined bytes, as `NAME.receipt.json`.
pub(crate) fn write_receipt(quarantined: &std::path::Path, receipt: &Receipt) -> Result<()> {
    let mut path = PathBuf::from(quarantined).into_os_string();
    path.push(".receipt.json");
    let text = serde_json::to_string_pretty(receipt).map_err(anyhow::Error::from)?;
    // The quarantine directory is the plugin's too: a receipt never goes through a link.
    crate::grant_paths::write_new(std::path::Path::new(&path), text.as_bytes()).map_err(|e| {
        Error::Path {
            path: path.clone().into(),
            message: format!("cannot write receipt: {e}"),
        }
    })
}

/// The note a backend keeps about a unit copied into quarantine.
pub(crate) fn quarantine_receipt(
    unit: &str,
    store: Option<String>,
    copy: &std::path::Path,
    anomalies: u64,
    bytes: u64,
) -> crate::wit::Receipt {
    crate::wit::Receipt {
        kind: crate::wit::ReceiptKind::Quarantined,
        unit: unit.to_string(),
        store,
        at: now(),
        json: serde_json::json!({
            "bytes": bytes,
            "anomalies": anomalies,
            "copy": copy,
            "reason": "scan found damage; the original was copied aside, then repaired",
        })
        .to_string(),
    }
}
