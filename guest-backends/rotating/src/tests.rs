//! The store as the host drives it, natively, on a temporary directory.

use std::fs;
use std::path::Path;

use quire_guest::backend::{OpenConfig, Receipt, ReceiptFilter, ReceiptKind};
use quire_guest::batch::{self, Envelope};
use quire_guest::types::{AnomalyKind, PluginError, ReadFilter, ReadOrder, SyncLevel};

use crate::manifest::{Loaded, Manifest};
use crate::store::RotatingStore;

fn config(root: &Path, read_only: bool, options: &[(&str, &str)]) -> OpenConfig {
    OpenConfig {
        root: root.display().to_string(),
        target: String::new(),
        read_only,
        options: options
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    }
}

fn open(root: &Path, options: &[(&str, &str)]) -> RotatingStore {
    RotatingStore::open(config(root, false, options)).unwrap()
}

fn open_ro(root: &Path) -> RotatingStore {
    RotatingStore::open(config(root, true, &[])).unwrap()
}

fn record(kind: &str, ts: f64) -> Envelope {
    Envelope {
        kind: kind.into(),
        store: "local".into(),
        timestamp: ts,
        json: format!(r#"{{"kind": "{kind}", "system_id": "local", "timestamp": {ts}}}"#),
    }
}

fn events(range: std::ops::Range<u32>) -> Vec<Envelope> {
    range.map(|i| record("event", f64::from(i))).collect()
}

fn all() -> ReadFilter {
    ReadFilter {
        kinds: vec![],
        stores: vec![],
        since: None,
        until: None,
    }
}

/// Every record of every unit, in unit order.
fn read_all(store: &RotatingStore) -> Vec<f64> {
    let mut out = Vec::new();
    for unit in store.units().unwrap() {
        let cursor = store.read(unit.id, all(), ReadOrder::OldestFirst).unwrap();
        loop {
            let batch = cursor.next_owned(7).unwrap();
            if batch.is_empty() {
                break;
            }
            out.extend(batch.iter().map(|r| r.envelope.timestamp));
        }
    }
    out
}

/// Scans like the host: check-layout, then every unit in small chunks.
fn scan(store: &RotatingStore) -> (u64, Vec<(AnomalyKind, String, Option<u64>)>) {
    let mut found: Vec<_> = store
        .check_layout()
        .unwrap()
        .into_iter()
        .map(|a| (a.kind, a.unit, a.line))
        .collect();
    let mut records = 0;
    for unit in store.units().unwrap() {
        let mut offset = 0;
        loop {
            let chunk = store.validate(unit.id.clone(), offset, 100).unwrap();
            records += chunk.records;
            found.extend(
                chunk
                    .anomalies
                    .into_iter()
                    .map(|a| (a.kind, a.unit, a.line)),
            );
            assert!(
                chunk.done || chunk.next_offset > offset,
                "validate makes progress"
            );
            offset = chunk.next_offset;
            if chunk.done {
                break;
            }
        }
    }
    (records, found)
}

fn names(root: &Path, category: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root.join(category))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn manifest(root: &Path, category: &str) -> Manifest {
    match Manifest::load(&root.join(category), "m").unwrap() {
        Loaded::Found(m) => m,
        other => panic!("manifest of {category}: {other:?}"),
    }
}

#[test]
fn routes_kinds_to_papyra_directories_and_rotates_by_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "3")]);
    let mut batch = events(0..7);
    batch.push(record("audit", 7.0));
    batch.push(record("dead_letter", 8.0));
    batch.push(record("metric", 9.0));
    let bytes = store.append(batch.clone(), SyncLevel::Durable).unwrap();
    assert_eq!(
        bytes,
        batch.iter().map(|e| e.json.len() as u64 + 1).sum::<u64>()
    );
    assert_eq!(
        names(dir.path(), "events"),
        [
            "MANIFEST.json",
            "events-0001.ndjson",
            "events-0001.ndjson.sums",
            "events-0002.ndjson",
            "events-0002.ndjson.sums",
            "events-0003.ndjson"
        ]
    );
    assert!(dir.path().join("audits/audits-0001.ndjson").exists());
    assert!(
        dir.path()
            .join("dead_letters/dead_letters-0001.ndjson")
            .exists()
    );
    assert!(dir.path().join("metric/metric-0001.ndjson").exists());
    let text = fs::read_to_string(dir.path().join("events/events-0001.ndjson")).unwrap();
    assert_eq!(
        text,
        batch[..3]
            .iter()
            .map(|e| format!("{}\n", e.json))
            .collect::<String>()
    );
    let units = store.units().unwrap();
    let ids: Vec<_> = units.iter().map(|u| (u.id.as_str(), u.sealed)).collect();
    assert_eq!(
        ids,
        [
            ("audits/audits-0001.ndjson", false),
            ("dead_letters/dead_letters-0001.ndjson", false),
            ("events/events-0001.ndjson", true),
            ("events/events-0002.ndjson", true),
            ("events/events-0003.ndjson", false),
            ("metric/metric-0001.ndjson", false),
        ]
    );
    assert_eq!(units[2].records, Some(3));
    assert_eq!(
        (units[3].min_timestamp, units[3].max_timestamp),
        (Some(3.0), Some(5.0))
    );
    assert_eq!(
        units[4].records,
        Some(1),
        "live file stats are known while writing"
    );
    let durability = store.durability().unwrap();
    let events = durability.iter().find(|d| d.store == "events").unwrap();
    assert_eq!((events.accepted, events.unsynced), (7, 0));
    assert_eq!(
        events.live_unit.as_deref(),
        Some("events/events-0003.ndjson")
    );
}

#[test]
fn rejects_the_whole_batch_for_one_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[]);
    let mut batch = events(0..3);
    batch.push(record("../escape", 3.0));
    match store.append(batch, SyncLevel::Written) {
        Err(PluginError::InvalidRecord(r)) => assert_eq!(r.index, 3),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let mut batch = events(0..2);
    batch[1].json = "not an object".into();
    assert!(matches!(
        store.append(batch, SyncLevel::Written),
        Err(PluginError::InvalidRecord(_))
    ));
    // Columns that differ in length, the kinds missing altogether: refused,
    // not taken for an empty batch.
    let mut columns = batch::from_envelopes(&events(0..2));
    columns.kinds.clear();
    match store.append_batch(&columns, SyncLevel::Written) {
        Err(PluginError::InvalidRecord(r)) => assert_eq!(r.index, 0),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(store.units().unwrap().is_empty(), "nothing was written");
}

#[test]
fn size_rotation_never_stalls_and_oversized_records_go_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-bytes", "200")]);
    let line = record("event", 1.0).json.len() as u64 + 1;
    for chunk in 0..10 {
        store
            .append(events(chunk * 10..chunk * 10 + 10), SyncLevel::Written)
            .unwrap();
    }
    let mut big = record("event", 100.0);
    big.json = format!(
        r#"{{"kind":"event","timestamp":100,"pad":"{}"}}"#,
        "x".repeat(500)
    );
    store.append(vec![big], SyncLevel::Written).unwrap();
    store.append(events(101..102), SyncLevel::Written).unwrap();
    let units = store.units().unwrap();
    let per_file = 200 / line;
    assert_eq!(units.len() as u64, 100_u64.div_ceil(per_file) + 2);
    for unit in &units {
        assert!(unit.bytes <= 200 || unit.records == Some(1), "{unit:?}");
    }
    let mut want: Vec<f64> = (0..100).map(f64::from).collect();
    want.extend([100.0, 101.0]);
    assert_eq!(read_all(&store), want);
}

#[test]
fn sequence_numbers_are_never_reused_even_after_everything_was_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "2")]);
    store.append(events(0..4), SyncLevel::Written).unwrap();
    store.seal().unwrap();
    for unit in store.units().unwrap() {
        let receipt = Receipt {
            kind: ReceiptKind::Purged,
            unit: unit.id.clone(),
            store: None,
            at: 5.0,
            json: "{}".into(),
        };
        store.drop_unit(unit.id, Some(receipt)).unwrap();
    }
    assert!(store.units().unwrap().is_empty());
    drop(store);
    let store = open(dir.path(), &[("max-records", "2")]);
    store.append(events(4..5), SyncLevel::Written).unwrap();
    assert_eq!(
        store.units().unwrap()[0].id,
        "events/events-0003.ndjson",
        "1 and 2 were given out before"
    );
    // Even the whole category directory gone: the receipts remember.
    store.seal().unwrap();
    let receipt = Receipt {
        kind: ReceiptKind::Purged,
        unit: "events/events-0003.ndjson".into(),
        store: None,
        at: 6.0,
        json: "{}".into(),
    };
    store
        .drop_unit(receipt.unit.clone(), Some(receipt))
        .unwrap();
    drop(store);
    fs::remove_dir_all(dir.path().join("events")).unwrap();
    let store = open(dir.path(), &[]);
    store.append(events(5..6), SyncLevel::Written).unwrap();
    assert_eq!(store.units().unwrap()[0].id, "events/events-0004.ndjson");
    assert_eq!(
        store
            .receipts(ReceiptFilter {
                stores: vec![],
                kinds: vec![ReceiptKind::Purged],
                since: None,
                until: None,
                limit: None,
            })
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn reopening_resumes_the_live_file() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), &[])
        .append(events(0..3), SyncLevel::Written)
        .unwrap();
    let store = open(dir.path(), &[]);
    assert!(store.open_report().is_empty());
    store.append(events(3..5), SyncLevel::Written).unwrap();
    let units = store.units().unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].records, Some(5));
    assert_eq!(read_all(&store), [0.0, 1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn a_torn_live_file_is_sealed_as_is_and_scan_still_flags_it() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), &[])
        .append(events(0..3), SyncLevel::Written)
        .unwrap();
    let live = dir.path().join("events/events-0001.ndjson");
    let mut text = fs::read(&live).unwrap();
    text.extend_from_slice(br#"{"kind": "event", "tim"#);
    fs::write(&live, &text).unwrap();
    let store = open(dir.path(), &[]);
    let report = store.open_report();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].kind, AnomalyKind::TruncatedTail);
    assert_eq!(report[0].unit, "events/events-0001.ndjson");
    store.append(events(3..4), SyncLevel::Written).unwrap();
    let units = store.units().unwrap();
    assert_eq!(units.len(), 2);
    assert!(units[0].sealed && !units[1].sealed);
    assert_eq!(units[0].records, Some(3));
    let (records, found) = scan(&store);
    assert_eq!(records, 4);
    assert_eq!(
        found,
        [(
            AnomalyKind::TruncatedTail,
            "events/events-0001.ndjson".into(),
            Some(4)
        )]
    );
    // Repair the way the host does: rewrite with the valid records.
    let cursor = store
        .read(units[0].id.clone(), all(), ReadOrder::OldestFirst)
        .unwrap();
    let valid = cursor.next_owned(100).unwrap();
    let rewriter = store.rewrite(units[0].id.clone()).unwrap();
    rewriter
        .write(&batch::from_envelopes(valid.iter().map(|r| &r.envelope)))
        .unwrap();
    rewriter.commit().unwrap();
    assert_eq!(scan(&store), (4, vec![]));
    let entry = manifest(dir.path(), "events").files[0].clone();
    assert!(entry.clean && entry.rewritten_at.is_some());
    assert_eq!(read_all(&store), [0.0, 1.0, 2.0, 3.0]);
}

/// Bytes of line `index` (0-based, newline included) of the file at `path`.
fn text_len_of_line(path: &Path, index: usize) -> u64 {
    fs::read(path)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .nth(index)
        .unwrap()
        .len() as u64
}

#[test]
fn damaged_line_checksums_are_reported_and_never_cost_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "4")]);
    store.append(events(0..10), SyncLevel::Written).unwrap();
    let sums = dir.path().join("events/events-0001.ndjson.sums");
    let mut bytes = fs::read(&sums).unwrap();
    bytes[30] ^= 4;
    fs::write(&sums, &bytes).unwrap();
    let chunk = store
        .validate("events/events-0001.ndjson".into(), 0, 1 << 20)
        .unwrap();
    // The data still matches its manifest checksum: nothing in it is disowned.
    assert_eq!(chunk.records, 4);
    assert_eq!(chunk.anomalies.len(), 1);
    assert_eq!(chunk.anomalies[0].kind, AnomalyKind::ManifestMismatch);
    assert_eq!(chunk.anomalies[0].length, 0);
    assert!(chunk.anomalies[0].detail.contains("fails its own checksum"));

    // Gone as well as damaged, and the data changed: the whole file is unverified.
    fs::remove_file(&sums).unwrap();
    let path = dir.path().join("events/events-0001.ndjson");
    let text = fs::read_to_string(&path).unwrap().replacen("1}", "3}", 1);
    fs::write(&path, text).unwrap();
    let chunk = store
        .validate("events/events-0001.ndjson".into(), 0, 1 << 20)
        .unwrap();
    let size = fs::metadata(&path).unwrap().len();
    assert_eq!(
        chunk
            .anomalies
            .iter()
            .map(|a| (a.kind, a.offset, a.length))
            .collect::<Vec<_>>(),
        [(AnomalyKind::ChecksumMismatch, 0, size)]
    );
}

#[test]
fn a_rewrite_cut_short_before_its_manifest_is_told_apart_from_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "4")]);
    store.append(events(0..10), SyncLevel::Written).unwrap();
    // As if a rewrite kept records 0 and 2, wrote their checksums, and
    // stopped before the manifest.
    let path = dir.path().join("events/events-0001.ndjson");
    let text = fs::read_to_string(&path).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, l)| l)
        .collect();
    fs::write(&path, &kept).unwrap();
    crate::stats::FileStats::of_file(&path, "f")
        .unwrap()
        .sums()
        .save(&path)
        .unwrap();
    let chunk = store
        .validate("events/events-0001.ndjson".into(), 0, 1 << 20)
        .unwrap();
    assert_eq!(chunk.records, 2);
    assert_eq!(
        chunk
            .anomalies
            .iter()
            .map(|a| (a.kind, a.length))
            .collect::<Vec<_>>(),
        [(AnomalyKind::ManifestMismatch, 0)],
        "{:?}",
        chunk.anomalies
    );
}

#[test]
fn a_rewrite_cut_short_between_data_and_checksums_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "4")]);
    store.append(events(0..10), SyncLevel::Written).unwrap();
    // As if a rewrite kept records 1 and 3, replaced the data, and stopped
    // with its line checksums still under their temporary name.
    let path = dir.path().join("events/events-0001.ndjson");
    let kept: String = fs::read_to_string(&path)
        .unwrap()
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, l)| l)
        .collect();
    fs::write(&path, &kept).unwrap();
    let stats = crate::stats::FileStats::of_file(&path, "f").unwrap();
    let sums = crate::sums::path_for(&path);
    let mut pending = stats.prepare_sums(&path).unwrap();
    // Leave the temporary file behind, as a crash would.
    let temp = quire_guest::atomic::temp_path(&sums);
    let copy = fs::read(&temp).unwrap();
    pending.abort().unwrap();
    fs::write(&temp, copy).unwrap();
    let chunk = store
        .validate("events/events-0001.ndjson".into(), 0, 1 << 20)
        .unwrap();
    assert_eq!(chunk.records, 2);
    assert!(
        chunk
            .anomalies
            .iter()
            .all(|a| a.kind == AnomalyKind::ManifestMismatch && a.length == 0),
        "{:?}",
        chunk.anomalies
    );
}

#[test]
fn a_live_file_keeps_no_checksums_a_failed_seal_left() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), &[])
        .append(events(0..3), SyncLevel::Written)
        .unwrap();
    let path = dir.path().join("events/events-0001.ndjson");
    crate::stats::FileStats::of_file(&path, "f")
        .unwrap()
        .save_sums(&path)
        .unwrap();
    let store = open(dir.path(), &[]);
    assert!(!crate::sums::path_for(&path).exists());
    store.append(events(3..5), SyncLevel::Written).unwrap();
    assert_eq!(scan(&store), (5, vec![]));
}

#[test]
fn healthy_sealed_files_are_trusted_and_changed_ones_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "4")]);
    store.append(events(0..10), SyncLevel::Written).unwrap();
    // A sealed file validates in one step at offset 0, whatever the budget.
    let chunk = store
        .validate("events/events-0001.ndjson".into(), 0, 1)
        .unwrap();
    assert!(chunk.done && chunk.records == 4);
    assert_eq!(scan(&store), (10, vec![]));

    // A digit changed in place: every line still parses, only the checksum knows.
    let path = dir.path().join("events/events-0001.ndjson");
    let text =
        fs::read_to_string(&path)
            .unwrap()
            .replacen("\"timestamp\": 1}", "\"timestamp\": 7}", 1);
    fs::write(&path, text).unwrap();
    let (_, found) = scan(&store);
    assert_eq!(
        found,
        [(
            AnomalyKind::ChecksumMismatch,
            "events/events-0001.ndjson".into(),
            None
        )]
    );

    // Located: the changed line, no more.
    let chunk = store
        .validate("events/events-0001.ndjson".into(), 0, 1 << 20)
        .unwrap();
    let first_line = text_len_of_line(&dir.path().join("events/events-0001.ndjson"), 0);
    assert_eq!(
        (chunk.anomalies[0].offset, chunk.anomalies[0].length),
        (
            first_line,
            text_len_of_line(&dir.path().join("events/events-0001.ndjson"), 1)
        )
    );

    // A line turned into garbage: found on its line, and as a line that
    // matches no sealed line.
    let path = dir.path().join("events/events-0002.ndjson");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "#garbage#";
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (records, found) = scan(&store);
    assert_eq!(records, 9);
    assert!(found.contains(&(
        AnomalyKind::CorruptedRecord,
        "events/events-0002.ndjson".into(),
        Some(3)
    )));
    assert!(found.contains(&(
        AnomalyKind::ChecksumMismatch,
        "events/events-0002.ndjson".into(),
        None
    )));
}

#[test]
fn orphans_temporaries_and_missing_files_show_in_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "2")]);
    store.append(events(0..6), SyncLevel::Written).unwrap();
    drop(store);
    let events_dir = dir.path().join("events");
    // A file the manifest never heard of, below the live one.
    let mut m = manifest(dir.path(), "events");
    m.files.retain(|f| f.sequence != 2);
    m.save(&events_dir).unwrap();
    fs::write(events_dir.join("events-0001.ndjson.quire-tmp"), "partial").unwrap();
    fs::write(events_dir.join("events-0009.ndjson"), "").unwrap();
    fs::remove_file(events_dir.join("events-0009.ndjson")).unwrap();

    let ro = open_ro(dir.path());
    let layout: Vec<_> = ro
        .check_layout()
        .unwrap()
        .into_iter()
        .map(|a| (a.kind, a.unit))
        .collect();
    assert_eq!(
        layout,
        [
            (
                AnomalyKind::OrphanedUnit,
                "events/events-0002.ndjson".into()
            ),
            (
                AnomalyKind::OrphanedUnit,
                "events/events-0001.ndjson.quire-tmp".into()
            ),
        ]
    );
    assert!(matches!(
        ro.drop_unit("events/events-0001.ndjson.quire-tmp".into(), None),
        Err(PluginError::InvalidState(_))
    ));

    let store = open(dir.path(), &[]);
    let report = store.open_report();
    assert_eq!(report.len(), 1);
    assert_eq!(
        (report[0].kind, report[0].unit.as_str()),
        (AnomalyKind::OrphanedUnit, "events/events-0002.ndjson")
    );
    assert_eq!(manifest(dir.path(), "events").entry(2).unwrap().records, 2);
    // The leftover is dropped by the id check-layout gave.
    store
        .drop_unit("events/events-0001.ndjson.quire-tmp".into(), None)
        .unwrap();
    assert_eq!(scan(&store), (6, vec![]));

    // A sealed file deleted behind the store's back is reported, and
    // recovery's rewrite (of nothing) settles it.
    fs::remove_file(events_dir.join("events-0001.ndjson")).unwrap();
    let (_, found) = scan(&store);
    assert_eq!(
        found,
        [(
            AnomalyKind::ManifestMismatch,
            "events/events-0001.ndjson".into(),
            None
        )]
    );
    let cursor = store
        .read(
            "events/events-0001.ndjson".into(),
            all(),
            ReadOrder::OldestFirst,
        )
        .unwrap();
    assert!(cursor.next_owned(10).unwrap().is_empty());
    store
        .rewrite("events/events-0001.ndjson".into())
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(scan(&store), (4, vec![]));
}

#[test]
fn a_crash_after_the_receipt_is_finished_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "2")]);
    store.append(events(0..5), SyncLevel::Written).unwrap();
    // The receipt was stored, then the process died before the removal.
    store
        .put_receipt(Receipt {
            kind: ReceiptKind::Purged,
            unit: "events/events-0001.ndjson".into(),
            store: None,
            at: 1.0,
            json: r#"{"records":2}"#.into(),
        })
        .unwrap();
    drop(store);
    let ro = open_ro(dir.path());
    assert!(
        ro.check_layout().unwrap().is_empty(),
        "a listed file is not an orphan"
    );
    let store = open(dir.path(), &[]);
    let report = store.open_report();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].unit, "events/events-0001.ndjson");
    assert!(!dir.path().join("events/events-0001.ndjson").exists());
    assert!(manifest(dir.path(), "events").entry(1).is_none());
    assert_eq!(read_all(&store), [2.0, 3.0, 4.0]);
}

#[test]
fn the_live_file_cannot_be_dropped_but_can_be_rewritten_and_appended_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[]);
    store.append(events(0..4), SyncLevel::Written).unwrap();
    let live = "events/events-0001.ndjson".to_string();
    assert!(matches!(
        store.drop_unit(live.clone(), None),
        Err(PluginError::InvalidState(_))
    ));
    let rewriter = store.rewrite(live.clone()).unwrap();
    rewriter
        .write(&batch::from_envelopes(&events(1..3)))
        .unwrap();
    rewriter.commit().unwrap();
    store.append(events(9..10), SyncLevel::Durable).unwrap();
    assert_eq!(read_all(&store), [1.0, 2.0, 9.0]);
    assert_eq!(store.units().unwrap()[0].records, Some(3));
    store.seal().unwrap();
    assert_eq!(manifest(dir.path(), "events").files[0].records, 3);
    assert_eq!(scan(&store), (3, vec![]));
    store.append(events(10..11), SyncLevel::Written).unwrap();
    assert_eq!(store.units().unwrap()[1].id, "events/events-0002.ndjson");
}

#[test]
fn read_only_changes_nothing_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    assert!(RotatingStore::open(config(&dir.path().join("nope"), true, &[])).is_err());
    open(dir.path(), &[])
        .append(events(0..2), SyncLevel::Written)
        .unwrap();
    let live = dir.path().join("events/events-0001.ndjson");
    fs::write(&live, "{\"kind\":\"event\",\"timestamp\":1}\n{\"kin").unwrap();
    let before = names(dir.path(), "events");
    let ro = open_ro(dir.path());
    assert!(ro.open_report().is_empty());
    assert!(matches!(
        ro.append(events(0..1), SyncLevel::Written),
        Err(PluginError::InvalidState(_))
    ));
    assert!(matches!(ro.seal(), Err(PluginError::InvalidState(_))));
    assert_eq!(read_all(&ro), [1.0]);
    assert_eq!(names(dir.path(), "events"), before);
    assert!(matches!(
        ro.read(
            "events/events-0001.ndjson".into(),
            all(),
            ReadOrder::NewestFirst
        ),
        Err(PluginError::Unsupported(_))
    ));
}

#[test]
fn quarantine_copies_and_stats_summarise() {
    let dir = tempfile::tempdir().unwrap();
    let q = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "2")]);
    store.append(events(0..3), SyncLevel::Written).unwrap();
    let copied = store
        .quarantine(
            "events/events-0001.ndjson".into(),
            q.path().display().to_string(),
            "events-0001.ndjson.quarantine.1".into(),
        )
        .unwrap();
    assert_eq!(
        copied,
        fs::metadata(dir.path().join("events/events-0001.ndjson"))
            .unwrap()
            .len()
    );
    let stats = store.stats().unwrap();
    let get = |name: &str| {
        stats
            .details
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("events.files").as_deref(), Some("2"));
    assert_eq!(get("events.sealed").as_deref(), Some("1"));
    assert_eq!(get("events.records").as_deref(), Some("3"));
    assert_eq!(
        get("events.live").as_deref(),
        Some("events/events-0002.ndjson")
    );
    assert_eq!(get("receipts").as_deref(), Some("0"));
    assert_eq!(
        stats.total_bytes,
        stats.units.iter().map(|u| u.bytes).sum::<u64>()
    );
}

#[test]
fn targets_may_not_leave_the_grant_and_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config(dir.path(), false, &[]);
    bad.target = "../elsewhere".into();
    assert!(matches!(
        RotatingStore::open(bad),
        Err(PluginError::InvalidConfig(_))
    ));
    assert!(matches!(
        RotatingStore::open(config(dir.path(), false, &[("codec", "x")])),
        Err(PluginError::InvalidConfig(_))
    ));
    let mut sub = config(dir.path(), false, &[]);
    sub.target = "a/b".into();
    RotatingStore::open(sub)
        .unwrap()
        .append(events(0..1), SyncLevel::Written)
        .unwrap();
    assert!(dir.path().join("a/b/events/events-0001.ndjson").exists());
}

#[test]
fn a_sealed_file_with_no_data_left_quarantines_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let q = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "1")]);
    store.append(events(0..2), SyncLevel::Written).unwrap();
    fs::remove_file(dir.path().join("events/events-0001.ndjson")).unwrap();
    let dest = q.path().join("gone");
    let copied = store
        .quarantine(
            "events/events-0001.ndjson".into(),
            q.path().display().to_string(),
            "gone".into(),
        )
        .unwrap();
    assert_eq!((copied, fs::metadata(&dest).unwrap().len()), (0, 0));
    assert!(matches!(
        store.quarantine(
            "events/events-0007.ndjson".into(),
            q.path().display().to_string(),
            "x".into()
        ),
        Err(PluginError::NoSuchUnit(_))
    ));
    // Dropping it removes the dangling entry.
    store
        .drop_unit("events/events-0001.ndjson".into(), None)
        .unwrap();
    assert_eq!(scan(&store), (1, vec![]));
}

#[test]
fn an_unreadable_manifest_is_reported_read_only_and_rebuilt_read_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "2")]);
    store.append(events(0..3), SyncLevel::Written).unwrap();
    drop(store);
    fs::write(dir.path().join("events/MANIFEST.json"), b"\0\0\0").unwrap();
    let (_, found) = scan(&open_ro(dir.path()));
    assert_eq!(
        found[0],
        (
            AnomalyKind::ManifestMismatch,
            "events/MANIFEST.json".into(),
            None
        )
    );
    let store = open(dir.path(), &[]);
    let report = store.open_report();
    assert_eq!(report[0].kind, AnomalyKind::ManifestMismatch);
    // The sealed file is taken back in, vouched for by its line checksums;
    // the highest file, with none, is the live one and goes on.
    assert_eq!(manifest(dir.path(), "events").files.len(), 1);
    store.append(events(3..4), SyncLevel::Written).unwrap();
    let units = store.units().unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(units[1].id, "events/events-0002.ndjson");
    assert_eq!(scan(&store), (4, vec![]));
}

#[test]
fn validation_of_a_damaged_sealed_file_numbers_lines_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &[("max-records", "40")]);
    store.append(events(0..40), SyncLevel::Written).unwrap();
    store.seal().unwrap();
    let path = dir.path().join("events/events-0001.ndjson");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push('\n');
    fs::write(&path, text).unwrap();
    let (records, found) = scan(&store);
    assert_eq!(records, 40);
    assert_eq!(
        found,
        [
            (
                AnomalyKind::BlankLine,
                "events/events-0001.ndjson".into(),
                Some(41)
            ),
            // The inserted newline matches no sealed line.
            (
                AnomalyKind::ChecksumMismatch,
                "events/events-0001.ndjson".into(),
                None
            )
        ]
    );
}

#[test]
fn numbers_widen_past_9999_and_still_sort_numerically() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), &[])
        .append(events(0..1), SyncLevel::Written)
        .unwrap();
    let mut m = manifest(dir.path(), "events");
    m.next_sequence = 9999;
    m.save(&dir.path().join("events")).unwrap();
    fs::rename(
        dir.path().join("events/events-0001.ndjson"),
        dir.path().join("events/events-9999.ndjson"),
    )
    .unwrap();
    let store = open(dir.path(), &[("max-records", "1")]);
    store.append(events(1..3), SyncLevel::Written).unwrap();
    let ids: Vec<String> = store.units().unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(
        ids,
        [
            "events/events-9999.ndjson",
            "events/events-10000.ndjson",
            "events/events-10001.ndjson"
        ]
    );
    assert_eq!(read_all(&store), [0.0, 1.0, 2.0]);
}
