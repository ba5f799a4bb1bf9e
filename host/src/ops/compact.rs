//! Compaction: retention policies decide, the host applies, the backend
//! swaps units atomically and keeps a receipt for every unit it drops.
//!
//! Pass one shows the policy every record of the units it wants filtered,
//! merged in time order across them; pass two asks for a keep flag per
//! record, remembered as runs, and where the kept records are stored, as
//! merged places (memory grows with keep/drop alternations, not with
//! records); pass three rewrites the units that lose records: the backend
//! copies the kept places as they are stored, or, where its format cannot,
//! the host reads the unit again and writes the kept records. A dry run
//! stops after pass two.

use std::collections::HashSet;
use std::sync::Arc;

use super::merge::merge_units;
use crate::error::{Error, Result};
use crate::metrics;
use crate::policy::{Meta, Verdict};
use crate::progress::Progress;
use crate::read_batch::RecordView;
use crate::record::now;
use crate::report::{CompactionReport, UnitCompaction};
use crate::retention::Retention;
use crate::session::Session;
use crate::store::Store;
use crate::wit::{ReadFilter, Receipt, ReceiptKind, RecordPlace, UnitInfo};

/// What pass two decided for one unit.
#[derive(Default)]
struct Runs {
    /// Keep flags as runs of `(keep, count)`.
    flags: Vec<(bool, u64)>,
    /// Stored bytes of the kept records.
    kept_bytes: u64,
    /// Where the kept records are stored, neighbours merged into one place.
    places: Vec<RecordPlace>,
}

impl Runs {
    fn push(&mut self, keep: bool, offset: u64, stored_bytes: u64) {
        if keep {
            self.kept_bytes = self.kept_bytes.saturating_add(stored_bytes);
            // Offsets come from the plugin: no arithmetic on them may overflow.
            match self.places.last_mut() {
                Some(last) if last.offset.checked_add(last.stored_bytes) == Some(offset) => {
                    last.stored_bytes = last.stored_bytes.saturating_add(stored_bytes);
                }
                _ => self.places.push(RecordPlace {
                    offset,
                    stored_bytes,
                }),
            }
        }
        match self.flags.last_mut() {
            Some((k, n)) if *k == keep => *n += 1,
            _ => self.flags.push((keep, 1)),
        }
    }
    fn kept(&self) -> u64 {
        self.flags.iter().filter(|r| r.0).map(|r| r.1).sum()
    }
    fn total(&self) -> u64 {
        self.flags.iter().map(|r| r.1).sum()
    }
    /// Yields the flags back in order.
    fn replay(&self) -> impl Iterator<Item = bool> + '_ {
        self.flags
            .iter()
            .flat_map(|&(keep, n)| std::iter::repeat_n(keep, n as usize))
    }
}

/// Kinds and stores seen so far, shared by every `Meta` that names them
/// (at most [`Names::MAX`]: a store per record would otherwise make memory
/// grow with records; past that, each name is its own).
#[derive(Default)]
struct Names {
    known: HashSet<Arc<str>>,
    /// The last two names asked for: neighbouring records mostly share them.
    recent: [Option<Arc<str>>; 2],
}

impl Names {
    const MAX: usize = 1024;

    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(hit) = self.recent.iter().flatten().find(|n| ***n == *name) {
            return hit.clone();
        }
        let shared = match self.known.get(name) {
            Some(known) => known.clone(),
            None => {
                let new: Arc<str> = name.into();
                if self.known.len() < Self::MAX {
                    self.known.insert(new.clone());
                }
                new
            }
        };
        self.recent = [self.recent[1].take(), Some(shared.clone())];
        shared
    }

    fn meta(&mut self, r: &RecordView<'_>) -> Meta {
        Meta {
            kind: self.get(r.kind),
            store: self.get(r.store),
            timestamp: r.timestamp,
            stored_bytes: r.stored_bytes,
        }
    }
}

/// Streams every valid record of `units`, merged in time order, to `f` in
/// batches, each record with the index of its unit and its offset there.
/// Policies that keep "the newest N" see the newest last, however the
/// backend splits its units.
fn each_batch(
    session: &mut Session,
    units: &[UnitInfo],
    mut f: impl FnMut(&[(usize, u64)], &[Meta]) -> Result<()>,
) -> Result<()> {
    let all = ReadFilter {
        kinds: vec![],
        stores: vec![],
        since: None,
        until: None,
    };
    let (mut unit_of, mut metas) = (Vec::with_capacity(super::BATCH as usize), Vec::new());
    let mut names = Names::default();
    merge_units(session, units, &all, |unit, record| {
        unit_of.push((unit, record.offset));
        metas.push(names.meta(&record));
        if metas.len() == super::BATCH as usize {
            f(&unit_of, &metas)?;
            unit_of.clear();
            metas.clear();
        }
        Ok(())
    })?;
    if !metas.is_empty() {
        f(&unit_of, &metas)?;
    }
    Ok(())
}

impl Store {
    /// Applies `policy` physically. With `dry_run`, reports without changing anything.
    pub fn compact(
        &self,
        policy: &mut Retention,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<CompactionReport> {
        policy.count_faults_in(&self.metrics);
        let result = self.compact_inner(policy, dry_run, progress);
        if !dry_run {
            metrics::add(&self.metrics.compactions, 1);
        }
        if result.is_err() {
            metrics::add(&self.metrics.compaction_errors, 1);
        }
        result
    }

    fn compact_inner(
        &self,
        policy: &mut Retention,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<CompactionReport> {
        if self.config.read_only && !dry_run {
            return Err(Error::Usage(
                "compaction needs a store opened read-write".into(),
            ));
        }
        let mut session = self.session();
        let units = session.units()?;
        let verdicts = policy.plan_units(&units)?;
        let filtered: Vec<UnitInfo> = units
            .iter()
            .zip(&verdicts)
            .filter(|(u, v)| **v == Verdict::Filter || (!u.sealed && **v == Verdict::Drop))
            .map(|(u, _)| u.clone())
            .collect();
        let filtered_bytes = filtered.iter().map(|u| u.bytes).sum();

        progress.begin("compact: counting", filtered_bytes);
        each_batch(&mut session, &filtered, |_, metas| {
            progress.advance(metas.iter().map(|m| m.stored_bytes).sum());
            policy.observe(metas)
        })?;
        progress.finish();

        progress.begin("compact: deciding", filtered_bytes);
        let mut runs: Vec<Runs> = filtered.iter().map(|_| Runs::default()).collect();
        each_batch(&mut session, &filtered, |unit_of, metas| {
            progress.advance(metas.iter().map(|m| m.stored_bytes).sum());
            let keep = policy.decide(metas)?;
            for ((keep, &(unit, offset)), meta) in keep.into_iter().zip(unit_of).zip(metas) {
                runs[unit].push(keep, offset, meta.stored_bytes);
            }
            Ok(())
        })?;
        progress.finish();

        let mut report = CompactionReport {
            dry_run,
            policy: policy.description(),
            records_before: 0,
            records_after: 0,
            bytes_before: units.iter().map(|u| u.bytes).sum(),
            bytes_after: 0,
            bytes_reclaimed: 0,
            units: Vec::new(),
        };
        let mut filtered_runs = filtered.iter().map(|u| u.id.clone()).zip(runs);
        for (unit, verdict) in units.iter().zip(&verdicts) {
            let entry = match verdict {
                Verdict::Keep => UnitCompaction {
                    unit: unit.id.clone(),
                    action: "kept".into(),
                    records_before: unit.records,
                    records_after: unit.records,
                    bytes_before: unit.bytes,
                    bytes_after: unit.bytes,
                },
                Verdict::Drop if unit.sealed => {
                    let policy = policy.description_for(unit.store.as_deref());
                    drop_whole(&mut session, unit, unit.records, &policy, dry_run)?
                }
                _ => {
                    let (id, unit_runs) = filtered_runs
                        .next()
                        .expect("one run list per filtered unit");
                    debug_assert_eq!(id, unit.id);
                    let (before, after) = (unit_runs.total(), unit_runs.kept());
                    if unit.sealed && after == 0 && before > 0 {
                        // Nothing left: drop the unit, with a receipt, rather than keep an empty one.
                        let policy = policy.description_for(unit.store.as_deref());
                        drop_whole(&mut session, unit, Some(before), &policy, dry_run)?
                    } else {
                        let mut entry = UnitCompaction {
                            unit: unit.id.clone(),
                            action: if before == after {
                                "unchanged".into()
                            } else {
                                "rewritten".into()
                            },
                            records_before: Some(before),
                            records_after: Some(after),
                            bytes_before: unit.bytes,
                            bytes_after: unit.bytes,
                        };
                        // A rewrite seals what it keeps under fresh checksums:
                        // never over records an old checksum disowns. (Sealed
                        // units check at checksum speed when intact; a live
                        // unit carries no checksum of its own.)
                        let disowned = if unit.sealed && before != after && !dry_run {
                            super::unverified::disowned_ranges(&mut session, &unit.id, unit.bytes)?
                        } else {
                            Ok(Vec::new())
                        };
                        let disowned = match disowned {
                            Ok(ranges) if ranges.is_empty() => None,
                            Ok(ranges) => {
                                Some(format!("{} stretch(es) its checksums disown", ranges.len()))
                            }
                            Err(too_many) => Some(too_many),
                        };
                        if let Some(why) = disowned {
                            entry.action = format!("skipped: {why}; run recover first");
                            entry.records_after = Some(before);
                        } else if before != after {
                            entry.bytes_after = if dry_run {
                                unit_runs.kept_bytes
                            } else {
                                rewrite_kept(
                                    &mut session,
                                    &unit.id,
                                    unit.bytes,
                                    &unit_runs,
                                    progress,
                                )?
                            };
                        }
                        entry
                    }
                }
            };
            report.records_before += entry.records_before.unwrap_or(0);
            report.records_after += entry.records_after.unwrap_or(0);
            report.bytes_after += entry.bytes_after;
            report.units.push(entry);
        }
        report.bytes_reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
        Ok(report)
    }
}

/// Pass three for one unit: the backend copies the kept places as they
/// are stored or, where its format cannot, the host reads the unit again
/// and writes the kept records. Returns the unit's new size.
fn rewrite_kept(
    session: &mut Session,
    unit: &str,
    bytes: u64,
    runs: &Runs,
    progress: &dyn Progress,
) -> Result<u64> {
    progress.begin(&format!("compact: rewriting {unit}"), bytes);
    let bytes_after = match super::rewrite::copy_unit(session, unit, bytes, &runs.places, progress)?
    {
        Some(bytes_after) => bytes_after,
        None => {
            let mut flags = runs.replay();
            super::rewrite::rewrite_unit(session, unit, progress, |_| {
                flags.next().ok_or_else(|| {
                    Error::Usage(format!(
                        "`{unit}` changed during compaction; nothing was replaced"
                    ))
                })
            })?
            .bytes_after
        }
    };
    progress.finish();
    Ok(bytes_after)
}

/// Removes a sealed unit (unless `dry_run`), leaving a purge receipt.
fn drop_whole(
    session: &mut Session,
    unit: &UnitInfo,
    records_before: Option<u64>,
    policy: &str,
    dry_run: bool,
) -> Result<UnitCompaction> {
    if !dry_run {
        session.drop_unit(&unit.id, Some(&purge_receipt(unit, policy)))?;
    }
    Ok(UnitCompaction {
        unit: unit.id.clone(),
        action: "dropped".into(),
        records_before,
        records_after: Some(0),
        bytes_before: unit.bytes,
        bytes_after: 0,
    })
}

/// The note a backend keeps after retention removed `unit`.
fn purge_receipt(unit: &UnitInfo, policy: &str) -> Receipt {
    let details = serde_json::json!({
        "records": unit.records,
        "bytes": unit.bytes,
        "min_timestamp": unit.min_timestamp,
        "max_timestamp": unit.max_timestamp,
        "codec": unit.codec,
        "policy": policy,
        "reason": "the retention policy dropped the whole unit",
    });
    Receipt {
        kind: ReceiptKind::Purged,
        unit: unit.id.clone(),
        store: unit.store.clone(),
        at: now(),
        json: details.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shared_and_the_table_stays_bounded() {
        let mut names = Names::default();
        let (a, b) = (names.get("event"), names.get("gps"));
        for _ in 0..3 {
            assert!(Arc::ptr_eq(&a, &names.get("event")));
            assert!(Arc::ptr_eq(&b, &names.get("gps")));
        }
        for i in 0..3 * Names::MAX {
            assert_eq!(&*names.get(&format!("store-{i}")), format!("store-{i}"));
        }
        assert_eq!(names.known.len(), Names::MAX);
        assert!(
            Arc::ptr_eq(&a, &names.get("event")),
            "early names stay shared"
        );
    }
}
