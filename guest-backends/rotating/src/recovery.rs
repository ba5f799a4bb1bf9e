//! What a read-write open repairs before anything is appended: removals a
//! crash interrupted, rotated files missing from their manifest, a live file
//! that ends in a torn line, an unreadable manifest. Each repair is reported
//! as one anomaly.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::Path;

use quire_guest::atomic::{TEMP_SUFFIX, sync_dir};
use quire_guest::backend::{Receipt, ReceiptKind};
use quire_guest::errors::IoContext;
use quire_guest::linefile;
use quire_guest::types::{Anomaly, AnomalyKind, PluginError};

use crate::category::{Category, LiveFile};
use crate::layout::CategoryDir;
use crate::manifest::{Loaded, Manifest, SealedFile};
use crate::naming::{self, MANIFEST_NAME, UnitName};
use crate::stats::FileStats;
use crate::sums::LineSums;

/// What receipts say, per category: files purged, and the highest
/// sequence number any receipt names.
#[derive(Default)]
pub struct ReceiptFacts {
    /// Purged rotated files by category.
    pub purged: BTreeMap<String, BTreeSet<u64>>,
    /// Purged temporary files: (directory, file name).
    pub purged_temps: Vec<(String, String)>,
    /// Highest sequence number named per category.
    pub highest: BTreeMap<String, u64>,
}

impl ReceiptFacts {
    /// Sorts receipts by what they name.
    pub fn of(receipts: &[Receipt]) -> Self {
        let mut facts = Self::default();
        for receipt in receipts {
            match naming::parse_unit(&receipt.unit) {
                Some(UnitName::Rotated { category, sequence }) => {
                    let high = facts.highest.entry(category.clone()).or_default();
                    *high = (*high).max(sequence);
                    if receipt.kind == ReceiptKind::Purged {
                        facts.purged.entry(category).or_default().insert(sequence);
                    }
                }
                Some(UnitName::Temporary { dir, file }) if receipt.kind == ReceiptKind::Purged => {
                    facts.purged_temps.push((dir, file));
                }
                _ => {}
            }
        }
        facts
    }
}

fn note(
    report: &mut Vec<Anomaly>,
    kind: AnomalyKind,
    unit: String,
    span: (u64, u64),
    detail: String,
) {
    report.push(Anomaly {
        kind,
        unit,
        offset: span.0,
        length: span.1,
        line: None,
        detail,
    });
}

/// Repairs one category directory and returns it ready for appends.
pub fn open_category(
    found: CategoryDir,
    facts: &ReceiptFacts,
    now: f64,
    report: &mut Vec<Anomaly>,
) -> Result<Category, PluginError> {
    let name = found.name.clone();
    let unit = |seq: u64| naming::unit_id(&name, seq);
    let mut changed = false;
    let mut manifest = match &found.manifest {
        Loaded::Found(m) => m.clone(),
        Loaded::Missing => {
            // Written now, so that files created later always have one.
            changed = true;
            Manifest::empty(&name)
        }
        Loaded::Unreadable(reason) => {
            let size = fs::metadata(found.dir.join(MANIFEST_NAME)).map_or(0, |m| m.len());
            note(
                report,
                AnomalyKind::ManifestMismatch,
                format!("{name}/{MANIFEST_NAME}"),
                (0, size),
                format!("{reason}; rebuilt from the data, every file sealed"),
            );
            changed = true;
            Manifest::empty(&name)
        }
    };
    roll_back_manifest_write(&found, report)?;
    let remembered = facts.highest.get(&name).copied().unwrap_or(0);
    // Without a trustworthy manifest, the live file is the highest one if
    // it has no line checksums (a seal writes them before the manifest);
    // nor is a number a receipt already names live.
    let live = match &found.manifest {
        Loaded::Found(_) => found.live(),
        _ => (found.files.keys().next_back().copied()).filter(|seq| !found.sums.contains_key(seq)),
    }
    .filter(|&seq| seq > remembered);
    let mut files = found.files.clone();

    // Removals a crash interrupted: the receipt was stored first.
    for &seq in facts.purged.get(&name).into_iter().flatten() {
        let had_file = files.remove(&seq).is_some();
        let path = found.dir.join(naming::file_name(&name, seq));
        if had_file {
            fs::remove_file(&path).ctx("remove", &unit(seq))?;
        }
        LineSums::remove(&path, &unit(seq))?;
        if manifest.remove(seq).is_some() || had_file {
            changed = true;
            note(
                report,
                AnomalyKind::OrphanedUnit,
                unit(seq),
                (0, 0),
                "purged by a receipt but still present: removal finished".into(),
            );
        }
    }

    let live = live.filter(|seq| files.contains_key(seq));
    remove_stray_sums(&found, &files, report)?;

    // Files nobody recorded are taken in, vouched for only by the line
    // checksums sealed beside them: never by checksums computed now.
    for (&seq, _) in files.iter() {
        if manifest.entry(seq).is_some() || live == Some(seq) {
            continue;
        }
        let (entry, how) = adopt(&found.dir, &name, seq, now)?;
        note(
            report,
            AnomalyKind::OrphanedUnit,
            unit(seq),
            (0, entry.bytes),
            format!(
                "not in the manifest: sealed again ({} records); {how}",
                entry.records
            ),
        );
        manifest.add(entry);
        changed = true;
    }

    // A live file ending mid-line is sealed as it is; appends go to a new file.
    let mut live_file = None;
    if let Some(seq) = live {
        let path = found.dir.join(naming::file_name(&name, seq));
        let label = unit(seq);
        if linefile::ends_mid_line(&mut File::open(&path).ctx("open", &label)?, &label)? {
            let stats = FileStats::of_file(&path, &unit(seq))?;
            // A live file had no checksums yet: these cover it from now on.
            stats.save_sums(&path)?;
            let torn = stats.torn_tail.unwrap_or((stats.bytes, 0));
            note(
                report,
                AnomalyKind::TruncatedTail,
                unit(seq),
                torn,
                format!(
                    "live file ends in a torn line of {} bytes: sealed as it is ({} valid records), \
                     appends continue in a new file",
                    torn.1, stats.records
                ),
            );
            manifest.add(SealedFile::new(
                naming::file_name(&name, seq),
                seq,
                &stats,
                now,
            ));
            changed = true;
        } else {
            // Checksums a seal wrote before it failed describe a file that
            // stayed live: they would disown what is appended next.
            LineSums::remove(&path, &label)?;
            live_file = Some(LiveFile::resumed(seq));
        }
    }

    // Numbers are never reused: not those of files, listed or not, nor
    // those only a receipt remembers. (A live file keeps the next number
    // in the manifest at or below its own until it is sealed.)
    if live_file.is_none() {
        let floor = found.highest_sequence().max(remembered) + 1;
        if manifest.next_sequence < floor {
            manifest.next_sequence = floor;
            changed = true;
        }
    }
    // The directory's name is the category, whatever a copied manifest says.
    if manifest.category != name {
        manifest.category = name.clone();
        changed = true;
    }
    let mut category = Category::existing(name, found.dir, manifest, live_file);
    if changed {
        category.save_manifest()?;
    }
    Ok(category)
}

/// Removes line checksums whose data file is gone (a removal interrupted
/// between the two): they describe nothing, and a number is never reused.
fn remove_stray_sums(
    found: &CategoryDir,
    files: &BTreeMap<u64, u64>,
    report: &mut Vec<Anomaly>,
) -> Result<(), PluginError> {
    let mut removed = false;
    for (&seq, &size) in found
        .sums
        .iter()
        .filter(|(seq, _)| !files.contains_key(seq))
    {
        let data = found.dir.join(naming::file_name(&found.name, seq));
        let unit = format!(
            "{}{}",
            naming::unit_id(&found.name, seq),
            crate::sums::SUFFIX
        );
        match fs::remove_file(crate::sums::path_for(&data)) {
            Ok(()) => {}
            // Gone with a purge finished just before.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(quire_guest::errors::io("remove", &unit, e)),
        }
        removed = true;
        note(
            report,
            AnomalyKind::OrphanedUnit,
            unit,
            (0, size),
            "line checksums of a file that is gone (a removal cut short): removed".into(),
        );
    }
    if removed {
        sync_dir(&found.dir)?;
    }
    Ok(())
}

/// The manifest entry of a file found outside the manifest, and how its
/// bytes were vouched for.
fn adopt(
    dir: &Path,
    category: &str,
    sequence: u64,
    now: f64,
) -> Result<(SealedFile, String), PluginError> {
    let path = dir.join(naming::file_name(category, sequence));
    let label = naming::unit_id(category, sequence);
    let stats = FileStats::of_file(&path, &label)?;
    let mut entry = SealedFile::new(naming::file_name(category, sequence), sequence, &stats, now);
    let how = match LineSums::load(&path, &label)? {
        Some(Ok(sums)) if sums.data_bytes == stats.bytes && sums.data_crc32 == stats.crc32() => {
            "its line checksums vouch for every byte".to_string()
        }
        Some(Ok(sums)) => {
            // The data changed since its checksums were sealed: the entry
            // keeps what was sealed, so a scan finds the changed lines.
            entry.bytes = sums.data_bytes;
            entry.crc32 = sums.data_crc32;
            entry.clean = false;
            "its data differs from the line checksums sealed beside it: a scan locates the change"
                .to_string()
        }
        found => {
            let why = match found {
                Some(Err(reason)) => reason,
                _ => "no line checksums beside it".into(),
            };
            entry.verified = false;
            entry.line_sums = false;
            format!("{why}: its records are unverified until recovered")
        }
    };
    Ok((entry, how))
}

/// Removes the temporary file of a manifest write that never committed: the
/// manifest it was to replace is intact. (Temporary files of rewritten data
/// files are left to check-layout and the host, who may quarantine them.)
fn roll_back_manifest_write(
    found: &CategoryDir,
    report: &mut Vec<Anomaly>,
) -> Result<(), PluginError> {
    let temp = format!("{MANIFEST_NAME}{TEMP_SUFFIX}");
    let Some(&size) = found.temps.get(&temp) else {
        return Ok(());
    };
    let unit = format!("{}/{temp}", found.name);
    fs::remove_file(found.dir.join(&temp)).ctx("remove", &unit)?;
    sync_dir(&found.dir)?;
    note(
        report,
        AnomalyKind::OrphanedUnit,
        unit,
        (0, size),
        "manifest write interrupted by a crash: rolled back (the manifest is intact)".into(),
    );
    Ok(())
}

/// Finishes removals of temporary files whose purge receipt was stored.
pub fn finish_temp_purges(
    root: &Path,
    facts: &ReceiptFacts,
    report: &mut Vec<Anomaly>,
) -> Result<(), PluginError> {
    for (dir, file) in &facts.purged_temps {
        let path = root.join(dir).join(file);
        if path.exists() {
            let unit = format!("{dir}/{file}");
            fs::remove_file(&path).ctx("remove", &unit)?;
            sync_dir(&root.join(dir))?;
            note(
                report,
                AnomalyKind::OrphanedUnit,
                unit,
                (0, 0),
                "purged by a receipt but still present: removal finished".into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = "{\"kind\":\"event\",\"timestamp\":1}\n";

    fn receipt(unit: &str, kind: ReceiptKind) -> Receipt {
        Receipt {
            kind,
            unit: unit.into(),
            store: None,
            at: 1.0,
            json: "{}".into(),
        }
    }

    /// A category directory with these files and a manifest sealing `sealed`.
    fn setup(files: &[(u64, &str)], sealed: &[u64], next: u64) -> (tempfile::TempDir, CategoryDir) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("events");
        fs::create_dir(&dir).unwrap();
        let mut m = Manifest::empty("events");
        for &(seq, text) in files {
            let path = dir.join(naming::file_name("events", seq));
            fs::write(&path, text).unwrap();
            if sealed.contains(&seq) {
                let stats = FileStats::of_file(&path, "f").unwrap();
                stats.save_sums(&path).unwrap();
                m.add(SealedFile::new(
                    naming::file_name("events", seq),
                    seq,
                    &stats,
                    1.0,
                ));
            }
        }
        m.next_sequence = next;
        m.save(&dir).unwrap();
        let found = CategoryDir::read(root.path(), "events").unwrap();
        (root, found)
    }

    #[test]
    fn a_clean_live_file_is_resumed_and_nothing_is_reported() {
        let (_root, found) = setup(&[(1, REC), (2, REC)], &[1], 2);
        let mut report = Vec::new();
        let cat = open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert!(report.is_empty());
        assert_eq!(cat.live.as_ref().map(|l| l.sequence), Some(2));
        assert_eq!(cat.manifest.next_sequence, 2);
    }

    #[test]
    fn a_torn_live_file_is_sealed_and_the_next_number_is_above_it() {
        let torn = format!("{REC}{{\"kind\":");
        let (_root, found) = setup(&[(1, REC), (2, &torn)], &[1], 2);
        let mut report = Vec::new();
        let cat = open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert!(cat.live.is_none());
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].kind, AnomalyKind::TruncatedTail);
        assert_eq!((report[0].offset, report[0].length), (REC.len() as u64, 8));
        let entry = cat.manifest.entry(2).unwrap();
        assert_eq!((entry.records, entry.clean), (1, false));
        assert_eq!(cat.manifest.next_sequence, 3);
    }

    #[test]
    fn orphans_get_entries_from_their_data() {
        let (_root, found) = setup(&[(1, REC), (2, &REC.repeat(3)), (3, REC)], &[], 1);
        let mut report = Vec::new();
        let cat = open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert_eq!(cat.live.as_ref().map(|l| l.sequence), Some(3));
        assert_eq!(cat.manifest.entry(2).unwrap().records, 3);
        assert_eq!(
            report
                .iter()
                .map(|a| (a.kind, a.unit.as_str()))
                .collect::<Vec<_>>(),
            [
                (AnomalyKind::OrphanedUnit, "events/events-0001.ndjson"),
                (AnomalyKind::OrphanedUnit, "events/events-0002.ndjson")
            ]
        );
        let on_disk = Manifest::load(&cat.dir, "m").unwrap();
        assert_eq!(on_disk, Loaded::Found(cat.manifest.clone()));
    }

    #[test]
    fn files_outside_the_manifest_are_vouched_for_only_by_their_own_line_checksums() {
        let three = REC.repeat(3);
        let (root, found) = setup(&[(1, REC), (2, &three), (3, &three), (4, REC)], &[], 1);
        let dir = root.path().join("events");
        let path = |seq| dir.join(naming::file_name("events", seq));
        // 1: checksums match; 2: changed since its checksums were sealed;
        // 3: none at all; 4: the live file.
        for seq in [1, 2] {
            FileStats::of_file(&path(seq), "f")
                .unwrap()
                .save_sums(&path(seq))
                .unwrap();
        }
        fs::write(
            path(2),
            three.replacen("\"timestamp\":1", "\"timestamp\":7", 1),
        )
        .unwrap();
        let mut report = Vec::new();
        let cat = open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert_eq!(cat.live.as_ref().map(|l| l.sequence), Some(4));
        let entry = |seq| cat.manifest.entry(seq).unwrap().clone();
        assert!(entry(1).verified && entry(1).clean && entry(1).line_sums);
        // The changed file keeps what was sealed, so a scan finds the change.
        let sealed = crate::sums::LineSums::load(&path(2), "f")
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((entry(2).crc32, entry(2).clean), (sealed.data_crc32, false));
        assert!(entry(2).verified);
        // Nothing vouches for the third: unverified until recovered.
        assert!(!entry(3).verified && !entry(3).line_sums);
        let details: Vec<&str> = report.iter().map(|a| a.detail.as_str()).collect();
        assert!(details[0].contains("vouch for every byte"), "{details:?}");
        assert!(
            details[1].contains("differs from the line checksums"),
            "{details:?}"
        );
        assert!(details[2].contains("unverified"), "{details:?}");
    }

    #[test]
    fn line_checksums_left_without_their_file_are_removed() {
        let (root, _) = setup(&[(1, REC)], &[], 1);
        let stray = root.path().join("events/events-0009.ndjson.sums");
        fs::write(&stray, b"anything").unwrap();
        let found = CategoryDir::read(root.path(), "events").unwrap();
        let mut report = Vec::new();
        open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert!(!stray.exists());
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].unit, "events/events-0009.ndjson.sums");
    }

    #[test]
    fn purges_a_crash_interrupted_are_finished() {
        let (root, found) = setup(&[(1, REC), (2, REC), (3, REC)], &[1, 2], 3);
        let facts = ReceiptFacts::of(&[
            receipt("events/events-0001.ndjson", ReceiptKind::Purged),
            receipt("events/events-0002.ndjson", ReceiptKind::Quarantined),
        ]);
        let mut report = Vec::new();
        let cat = open_category(found, &facts, 5.0, &mut report).unwrap();
        assert!(!root.path().join("events/events-0001.ndjson").exists());
        assert!(cat.manifest.entry(1).is_none());
        assert!(cat.manifest.entry(2).is_some());
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].unit, "events/events-0001.ndjson");
    }

    #[test]
    fn numbering_stays_above_what_receipts_remember() {
        let (_root, found) = setup(&[], &[], 1);
        let facts = ReceiptFacts::of(&[receipt("events/events-0041.ndjson", ReceiptKind::Purged)]);
        let mut report = Vec::new();
        let cat = open_category(found, &facts, 5.0, &mut report).unwrap();
        assert_eq!(cat.manifest.next_sequence, 42);
        assert!(report.is_empty());
    }

    #[test]
    fn an_unreadable_manifest_is_rebuilt_with_every_file_sealed() {
        let (root, _) = setup(&[(1, REC), (2, REC)], &[1, 2], 3);
        fs::write(root.path().join("events/MANIFEST.json"), "{oops").unwrap();
        let found = CategoryDir::read(root.path(), "events").unwrap();
        let mut report = Vec::new();
        let cat = open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert!(cat.live.is_none());
        assert_eq!(cat.manifest.files.len(), 2);
        assert_eq!(cat.manifest.next_sequence, 3);
        assert_eq!(report[0].kind, AnomalyKind::ManifestMismatch);
        assert_eq!(report.len(), 3);
    }

    #[test]
    fn an_interrupted_manifest_write_is_rolled_back() {
        let (root, _) = setup(&[(1, REC)], &[], 1);
        fs::write(
            root.path().join("events/MANIFEST.json.quire-tmp"),
            "{\"half",
        )
        .unwrap();
        let found = CategoryDir::read(root.path(), "events").unwrap();
        let mut report = Vec::new();
        let cat = open_category(found, &ReceiptFacts::default(), 5.0, &mut report).unwrap();
        assert!(!root.path().join("events/MANIFEST.json.quire-tmp").exists());
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].unit, "events/MANIFEST.json.quire-tmp");
        assert_eq!(cat.live.as_ref().map(|l| l.sequence), Some(1));
    }
}
