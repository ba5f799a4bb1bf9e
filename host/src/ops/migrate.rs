//! Migration: every record of one store, in replay order, appended to
//! another, whatever the two backends are.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::read::ReadQuery;
use crate::store::Store;

/// Records per append into the target.
const MIGRATE_BATCH: usize = 4096;

/// What a migration copied.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MigrationReport {
    /// Source backend name.
    pub from_backend: String,
    /// Target backend name.
    pub to_backend: String,
    /// Anomalies a scan of the source found before copying (their records are
    /// not copied; copying needs `skip_damaged` when there are any).
    pub source_anomalies: u64,
    /// Records read from the source.
    pub records_read: u64,
    /// Records appended to the target.
    pub records_written: u64,
    /// Records in the target before and after, counted by reading it.
    pub target_records_before: u64,
    /// See `target_records_before`.
    pub target_records_after: u64,
    /// Records copied per store.
    pub stores: BTreeMap<String, u64>,
    /// Records copied per kind.
    pub kinds: BTreeMap<String, u64>,
    /// Records left behind although they parse: they sit where the source's
    /// checksums disown the bytes (with `skip_damaged`).
    pub records_unverified_skipped: u64,
}

/// How to migrate.
#[derive(Debug, Clone, Copy, Default)]
pub struct MigrateOptions {
    /// Copy even when the source has anomalies (damaged records are left out).
    pub skip_damaged: bool,
}

fn count(store: &Store) -> Result<u64> {
    store.read(&ReadQuery::default(), |_| Ok(()))
}

/// Copies every valid record of `from` into `to`, oldest first (the order
/// `read` replays), then syncs `to` and checks its count.
pub fn migrate(
    from: &Store,
    to: &Store,
    options: MigrateOptions,
    progress: &dyn Progress,
) -> Result<MigrationReport> {
    if to.config().read_only {
        return Err(Error::Usage(
            "the migration target must be opened read-write".into(),
        ));
    }
    let scan = from.scan(progress)?;
    if !scan.healthy() && !options.skip_damaged {
        return Err(Error::Usage(format!(
            "the source has {} anomalies (first: {}); run `quire recover` on it first, or pass \
             --skip-damaged to copy every valid record and leave the damaged ones behind",
            scan.anomaly_count,
            scan.anomalies
                .first()
                .map(|f| f.render())
                .unwrap_or_default()
        )));
    }
    let mut report = MigrationReport {
        from_backend: from.backend().name.clone(),
        to_backend: to.backend().name.clone(),
        source_anomalies: scan.anomaly_count,
        target_records_before: count(to)?,
        ..MigrationReport::default()
    };
    // Records a checksum disowns are damaged even when they parse: they stay
    // behind like the rest, never copied into a store that would vouch for them.
    if scan.anomaly_count > scan.anomalies.len() as u64 {
        return Err(Error::Usage(format!(
            "the source has {} anomalies, more than a report holds, so the damaged records \
             cannot be left out exactly; run `quire recover` on it first",
            scan.anomaly_count
        )));
    }
    let disowned = super::unverified::Disowned::of(&scan.anomalies);
    progress.begin("migrate", scan.bytes_scanned);
    let mut batch = Vec::with_capacity(MIGRATE_BATCH);
    from.read(&ReadQuery::default(), |stored| {
        progress.advance(stored.stored_bytes);
        report.records_read += 1;
        if disowned.covers(stored.unit, stored.offset, stored.stored_bytes) {
            report.records_unverified_skipped += 1;
            return Ok(());
        }
        if let Some(n) = report.stores.get_mut(stored.store) {
            *n += 1;
        } else {
            report.stores.insert(stored.store.to_string(), 1);
        }
        if let Some(n) = report.kinds.get_mut(stored.kind) {
            *n += 1;
        } else {
            report.kinds.insert(stored.kind.to_string(), 1);
        }
        batch.push(stored.to_record());
        if batch.len() == MIGRATE_BATCH {
            report.records_written += batch.len() as u64;
            to.append(std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;
    report.records_written += batch.len() as u64;
    to.append(batch)?;
    to.flush()?;
    progress.finish();
    report.target_records_after = count(to)?;
    let expected = report.target_records_before + report.records_written;
    if report.target_records_after != expected {
        return Err(Error::Other(anyhow::anyhow!(
            "the target holds {} records after the migration, expected {expected} \
             ({} before + {} written)",
            report.target_records_after,
            report.target_records_before,
            report.records_written
        )));
    }
    Ok(report)
}
