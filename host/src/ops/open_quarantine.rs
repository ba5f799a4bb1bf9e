//! A read-write open cuts a live unit's torn tail before any recovery can
//! run. When the store is opened with a quarantine directory, the damaged
//! original is copied there first: quarantine keeps every byte it was shown.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, MutexGuard};

use crate::error::Result;
use crate::limits::Limits;
use crate::plugin::LoadedBackend;
use crate::record::now;
use crate::report::Receipt;
use crate::sandbox::Grants;
use crate::session::Session;
use crate::store::Store;
use crate::wit::{AnomalyKind, OpenConfig};

/// A live unit copied into quarantine before the open cut its tail.
pub(crate) struct TailQuarantined {
    /// The recovery receipt the next `recover` reports.
    pub receipt: Receipt,
    /// The note the backend keeps (where it keeps receipts).
    pub backend_receipt: crate::wit::Receipt,
}

impl TailQuarantined {
    /// Removes the copy and its receipt: the open kept the tail after all
    /// (a backend that starts a new line after a torn one), so recovery
    /// quarantines the unit itself.
    pub fn discard(&self) {
        if let Some(copy) = &self.receipt.quarantined_to {
            let mut note = copy.clone().into_os_string();
            note.push(".receipt.json");
            for path in [copy.clone(), note.into()] {
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!("could not remove {}: {e}", path.display());
                }
            }
        }
    }
}

/// Validates every live unit through a read-only session and copies each
/// one with a torn tail (what an open cuts) into `dir`. Runs under the
/// writer lock, so no other writer's append in flight passes for a tear.
pub(crate) fn quarantine_torn_tails(
    loaded: &LoadedBackend,
    grants: &Grants,
    limits: Limits,
    open: &OpenConfig,
    dir: &Path,
    data_dir: Option<&Path>,
) -> Result<Vec<TailQuarantined>> {
    let mut grants = grants.clone();
    if let Some((_, writable)) = &mut grants.data {
        *writable = false;
    }
    let open = OpenConfig {
        read_only: true,
        ..open.clone()
    };
    let mut session = Session::open(loaded.clone(), grants, limits, open, Arc::default())?;
    let mut copied = Vec::new();
    for unit in session.units()?.into_iter().filter(|u| !u.sealed) {
        let (mut records, mut anomalies, mut cut_at) = (0, 0, None);
        super::scan::validate_unit(&mut session, &unit.id, unit.bytes, |step, found| {
            records += step.records;
            for anomaly in found {
                anomalies += 1;
                if matches!(
                    anomaly.kind,
                    AnomalyKind::TruncatedTail | AnomalyKind::PartialWrite
                ) {
                    cut_at.get_or_insert(anomaly.offset);
                }
            }
        })?;
        let Some(cut_at) = cut_at else { continue };
        let name = super::recover::quarantine_name(&unit.id);
        session.quarantine(&unit.id, &name)?;
        let copy = dir.join(&name);
        let receipt = Receipt {
            action: "quarantined".into(),
            unit: unit.id.clone(),
            file: data_dir.map(|d| d.join(&unit.id)),
            quarantined_to: Some(copy.clone()),
            bytes_before: unit.bytes,
            bytes_after: cut_at,
            records_kept: records,
            anomalies_removed: anomalies,
            unverified: None,
            at: now(),
        };
        super::recover::write_receipt(&copy, &receipt)?;
        tracing::warn!(
            "{} has a torn tail: copied to {} before the open cuts it",
            unit.id,
            copy.display()
        );
        copied.push(TailQuarantined {
            backend_receipt: super::recover::quarantine_receipt(
                &unit.id,
                unit.store.clone(),
                &copy,
                anomalies,
                unit.bytes,
            ),
            receipt,
        });
    }
    Ok(copied)
}

/// After the read-write open: keeps the copies of units the open really
/// cut (smaller now, or gone) and notes them with the backend; the others
/// are discarded, since recovery quarantines a unit left whole itself.
/// Returns the receipts the next recovery reports.
pub(crate) fn keep_where_cut(
    session: &mut Session,
    copied: Vec<TailQuarantined>,
) -> Result<Vec<Receipt>> {
    if copied.is_empty() {
        return Ok(Vec::new());
    }
    let sizes: BTreeMap<String, u64> = session
        .units()?
        .into_iter()
        .map(|u| (u.id, u.bytes))
        .collect();
    let (kept, needless): (Vec<_>, Vec<_>) = copied.into_iter().partition(|t| {
        sizes
            .get(&t.receipt.unit)
            .is_none_or(|&bytes| bytes < t.receipt.bytes_before)
    });
    needless.iter().for_each(TailQuarantined::discard);
    for tail in &kept {
        super::recover::keep_backend_receipt(session, &tail.backend_receipt)?;
    }
    Ok(kept.into_iter().map(|t| t.receipt).collect())
}

impl Store {
    fn open_copies(&self) -> MutexGuard<'_, Vec<Receipt>> {
        self.quarantined_at_open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the open copied units aside that no recovery has reported yet.
    pub(crate) fn has_open_copies(&self) -> bool {
        !self.open_copies().is_empty()
    }

    /// The receipts of the open's copies, for a recovery to report.
    pub(crate) fn take_open_copies(&self) -> Vec<Receipt> {
        std::mem::take(&mut *self.open_copies())
    }

    /// Hands receipts back when the recovery that took them failed.
    pub(crate) fn restore_open_copies(&self, receipts: Vec<Receipt>) {
        self.open_copies().splice(0..0, receipts);
    }
}
