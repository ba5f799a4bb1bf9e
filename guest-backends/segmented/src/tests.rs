//! The WAL's primitives end to end, natively, on temporary directories:
//! crashes are simulated by editing files between opens.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use quire_guest::backend::{OpenConfig, Receipt, ReceiptFilter, ReceiptKind};
use quire_guest::batch::Envelope;
use quire_guest::types::{AnomalyKind, PluginError, ReadFilter, SyncLevel};

use crate::engine::Wal;
use crate::manifest;
use quire_guest::checksum::file_crc32;

pub(crate) fn open_with(dir: &Path, read_only: bool, options: &[(&str, &str)]) -> Wal {
    Wal::open(OpenConfig {
        root: dir.display().to_string(),
        target: String::new(),
        read_only,
        options: options
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    })
    .unwrap()
}

fn open(dir: &Path) -> Wal {
    open_with(dir, false, &[])
}

/// 2026-11-21T00:00:00Z
pub(crate) const DAY: f64 = 1_795_219_200.0;

pub(crate) fn env(store: &str, ts: f64, n: u32) -> Envelope {
    Envelope {
        kind: if n.is_multiple_of(3) {
            "audit"
        } else {
            "event"
        }
        .into(),
        store: store.into(),
        timestamp: ts,
        json: format!(
            r#"{{"kind":"{}","store":"{store}","timestamp":{ts},"n":{n},"payload":"value {n} é"}}"#,
            if n.is_multiple_of(3) {
                "audit"
            } else {
                "event"
            }
        ),
    }
}

pub(crate) fn batch(store: &str, from: u32, n: u32, ts0: f64) -> Vec<Envelope> {
    (from..from + n)
        .map(|i| env(store, ts0 + f64::from(i) * 0.001_001, i))
        .collect()
}

pub(crate) fn all() -> ReadFilter {
    ReadFilter {
        kinds: vec![],
        stores: vec![],
        since: None,
        until: None,
    }
}

/// Every record of every unit, in unit order.
pub(crate) fn read_all(wal: &mut Wal) -> Vec<String> {
    let mut out = Vec::new();
    for u in wal.units().unwrap() {
        let mut c = wal.read(&u.id, all()).unwrap();
        loop {
            let b = c.next_owned(7).unwrap();
            if b.is_empty() {
                break;
            }
            out.extend(b.into_iter().map(|r| r.envelope.json));
        }
    }
    out
}

/// Layout anomalies and every unit validated in chunks of `budget`.
pub(crate) fn scan(wal: &mut Wal, budget: u64) -> (u64, Vec<(AnomalyKind, String, u64)>) {
    let mut found: Vec<_> = wal
        .check_layout()
        .unwrap()
        .into_iter()
        .map(|a| (a.kind, a.unit, a.offset))
        .collect();
    let mut records = 0;
    for u in wal.units().unwrap() {
        let mut offset = 0;
        loop {
            let chunk = wal.validate(&u.id, offset, budget).unwrap();
            records += chunk.records;
            found.extend(
                chunk
                    .anomalies
                    .into_iter()
                    .map(|a| (a.kind, a.unit, a.offset)),
            );
            if chunk.done {
                break;
            }
            assert!(chunk.next_offset > offset, "validate makes progress");
            offset = chunk.next_offset;
        }
    }
    (records, found)
}

pub(crate) fn jsons(batch: &[Envelope]) -> Vec<String> {
    batch.iter().map(|e| e.json.clone()).collect()
}

/// Every file under `dir` with its bytes.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn rewrite_keeping_valid(wal: &mut Wal, unit: &str) {
    let mut c = wal.read(unit, all()).unwrap();
    let mut job = wal.rewrite(unit).unwrap();
    loop {
        let b = c.next_owned(100).unwrap();
        if b.is_empty() {
            break;
        }
        job.write(&b.into_iter().map(|r| r.envelope).collect::<Vec<_>>())
            .unwrap();
    }
    wal.commit(&mut job).unwrap();
}

#[test]
fn appends_land_in_store_and_day_directories_and_read_back_exactly() {
    for codec in ["json-crc32", "compact"] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open_with(dir.path(), false, &[("codec", codec)]);
        let gps = batch("gps", 0, 50, DAY + 10.0);
        let crm = batch("crm", 0, 5, DAY + 20.0);
        wal.append([gps.clone(), crm.clone()].concat(), SyncLevel::Durable)
            .unwrap();
        let units = wal.units().unwrap();
        let ids: Vec<&str> = units.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "wal/store=crm/date=2026-11-21/segment-000001.wal",
                "wal/store=gps/date=2026-11-21/segment-000001.wal"
            ]
        );
        assert!(units.iter().all(|u| !u.sealed && u.codec == codec));
        assert_eq!(units[1].records, Some(50));
        assert_eq!(units[1].min_timestamp, Some(gps[0].timestamp));
        assert_eq!(read_all(&mut wal), [jsons(&crm), jsons(&gps)].concat());
        let (records, anomalies) = scan(&mut wal, 1 << 20);
        assert_eq!((records, anomalies), (55, vec![]));
    }
}

#[test]
fn a_later_bucket_seals_the_live_segment_and_earlier_records_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path());
    wal.append(batch("gps", 0, 3, DAY + 100.0), SyncLevel::Written)
        .unwrap();
    // A record from the day before stays in the live segment.
    wal.append(vec![env("gps", DAY - 50.0, 3)], SyncLevel::Written)
        .unwrap();
    // The next day opens a new segment in a new directory.
    wal.append(
        vec![env("gps", DAY + 86_400.0 + 1.0, 4)],
        SyncLevel::Written,
    )
    .unwrap();
    let units = wal.units().unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(
        units[0].id,
        "wal/store=gps/date=2026-11-21/segment-000001.wal"
    );
    assert!(units[0].sealed);
    assert_eq!(units[0].records, Some(4));
    assert_eq!(units[0].min_timestamp, Some(DAY - 50.0));
    assert_eq!(
        units[1].id,
        "wal/store=gps/date=2026-11-22/segment-000002.wal"
    );
    assert!(!units[1].sealed);
    let path = dir.path().join(&units[0].id);
    let m = manifest::read(&manifest::path_for(&path)).unwrap().unwrap();
    assert_eq!(file_crc32(&path, "x").unwrap(), (m.bytes, m.crc32));
    // Hour buckets.
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_with(dir.path(), false, &[("bucket", "hour")]);
    wal.append(
        vec![env("gps", DAY + 3_600.0 * 5.0 + 1.0, 1)],
        SyncLevel::Written,
    )
    .unwrap();
    assert_eq!(
        wal.units().unwrap()[0].id,
        "wal/store=gps/date=2026-11-21T05/segment-000001.wal"
    );
}

#[test]
fn a_batch_lands_where_its_records_would_one_by_one() {
    // Two stores, hour buckets crossed forwards and back, and segments
    // small enough to fill several times within one batch.
    let mut records = Vec::new();
    for i in 0..600u32 {
        let store = if i % 7 < 5 { "gps" } else { "audit" };
        let hour = match i {
            0..200 => 0.0,
            200..260 => 1.0,
            260..280 => 0.0,
            280..450 => 2.0,
            _ => 4.0,
        };
        records.push(env(store, DAY + hour * 3_600.0 + f64::from(i) * 0.5, i));
    }
    for codec in ["json-crc32", "compact"] {
        let options = [
            ("codec", codec),
            ("max-bytes", "2000"),
            ("bucket", "hour"),
            ("block-records", "4"),
        ];
        let whole = tempfile::tempdir().unwrap();
        let mut wal = open_with(whole.path(), false, &options);
        // Buffered: a compact block fills the same way across calls.
        wal.append(records.clone(), SyncLevel::Buffered).unwrap();
        let one_by_one = tempfile::tempdir().unwrap();
        let mut reference = open_with(one_by_one.path(), false, &options);
        for record in &records {
            reference
                .append(vec![record.clone()], SyncLevel::Buffered)
                .unwrap();
        }
        let placed = |wal: &Wal| {
            wal.units()
                .unwrap()
                .into_iter()
                // Not bytes: a header holds its creation time.
                .map(|u| (u.id, u.records, u.min_timestamp, u.max_timestamp))
                .collect::<Vec<_>>()
        };
        let units = placed(&wal);
        assert!(units.len() > 8, "{codec}: {} units", units.len());
        assert_eq!(units, placed(&reference), "{codec}");
        assert_eq!(read_all(&mut wal), read_all(&mut reference), "{codec}");
    }
}

#[test]
fn rotation_by_size_seals_with_true_counts_and_checksums() {
    for codec in ["json-crc32", "compact"] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open_with(
            dir.path(),
            false,
            &[
                ("codec", codec),
                ("max-bytes", "700"),
                ("bucket", "none"),
                ("block-records", "5"),
            ],
        );
        let records = batch("gps", 0, 300, DAY);
        for chunk in records.chunks(7) {
            wal.append(chunk.to_vec(), SyncLevel::Buffered).unwrap();
        }
        let units = wal.units().unwrap();
        assert!(units.len() > 3, "{codec}: {} units", units.len());
        let mut total = 0;
        for u in &units {
            total += u.records.unwrap();
            if u.sealed {
                let path = dir.path().join(&u.id);
                let m = manifest::read(&manifest::path_for(&path)).unwrap().unwrap();
                assert_eq!(file_crc32(&path, "x").unwrap(), (m.bytes, m.crc32));
                assert_eq!(m.codec, codec);
            }
        }
        assert_eq!(total, 300);
        assert_eq!(read_all(&mut wal), jsons(&records));
        assert_eq!(scan(&mut wal, 100).0, 300);
    }
}

#[test]
fn close_is_not_seal_and_a_reopen_resumes_the_live_segment() {
    let dir = tempfile::tempdir().unwrap();
    let first = batch("gps", 0, 10, DAY);
    let second = batch("gps", 10, 10, DAY);
    {
        let mut wal = open_with(dir.path(), false, &[("codec", "compact")]);
        // Buffered: held in the compact block; closing writes it out.
        wal.append(first.clone(), SyncLevel::Buffered).unwrap();
        let d = wal.durability().unwrap();
        assert_eq!((d[0].accepted, d[0].buffered), (10, 10));
    }
    let mut wal = open_with(dir.path(), false, &[("codec", "json-crc32")]);
    assert!(wal.open_report().is_empty());
    wal.append(second.clone(), SyncLevel::Durable).unwrap();
    let units = wal.units().unwrap();
    assert_eq!(units.len(), 1, "the live segment was resumed, not sealed");
    // The segment's own codec wins over the configuration.
    assert_eq!(units[0].codec, "compact");
    assert_eq!(read_all(&mut wal), [jsons(&first), jsons(&second)].concat());
    assert_eq!(scan(&mut wal, 64).0, 20);
}

#[test]
fn a_torn_tail_is_cut_at_open_and_appends_continue() {
    for codec in ["json-crc32", "compact"] {
        let dir = tempfile::tempdir().unwrap();
        let first = batch("gps", 0, 20, DAY);
        let unit;
        let good;
        {
            let mut wal = open_with(
                dir.path(),
                false,
                &[("codec", codec), ("block-records", "3")],
            );
            wal.append(first.clone(), SyncLevel::Durable).unwrap();
            unit = wal.units().unwrap()[0].id.clone();
            good = fs::metadata(dir.path().join(&unit)).unwrap().len();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(&unit))
            .unwrap();
        f.write_all(&[0, 0, 0, 40, b'{', b'"']).unwrap();
        drop(f);
        // A read-only scan reports the tail and changes nothing.
        let before = snapshot(dir.path());
        let mut ro = open_with(dir.path(), true, &[]);
        let (records, anomalies) = scan(&mut ro, 1 << 20);
        assert_eq!(records, 20);
        assert_eq!(
            anomalies,
            [(AnomalyKind::TruncatedTail, unit.clone(), good)]
        );
        drop(ro);
        assert_eq!(snapshot(dir.path()), before);
        let mut wal = open_with(
            dir.path(),
            false,
            &[("codec", codec), ("block-records", "3")],
        );
        let report = wal.open_report();
        assert_eq!(report.len(), 1);
        assert_eq!(
            (report[0].kind, report[0].offset, report[0].length),
            (AnomalyKind::TruncatedTail, good, 6)
        );
        let second = batch("gps", 20, 5, DAY);
        wal.append(second.clone(), SyncLevel::Durable).unwrap();
        assert_eq!(wal.units().unwrap().len(), 1);
        assert_eq!(read_all(&mut wal), [jsons(&first), jsons(&second)].concat());
        assert_eq!(scan(&mut wal, 1 << 20), (25, vec![]));
    }
}

#[test]
fn a_live_segment_damaged_in_the_middle_is_sealed_as_is_and_recover_repairs_it() {
    for codec in ["json-crc32", "compact"] {
        let dir = tempfile::tempdir().unwrap();
        let unit;
        let records = batch("gps", 0, 40, DAY);
        {
            let mut wal = open_with(
                dir.path(),
                false,
                &[("codec", codec), ("block-records", "4")],
            );
            for chunk in records.chunks(4) {
                wal.append(chunk.to_vec(), SyncLevel::Written).unwrap();
            }
            unit = wal.units().unwrap()[0].id.clone();
        }
        let path = dir.path().join(&unit);
        let mut data = fs::read(&path).unwrap();
        let at = data.len() / 2;
        data[at] ^= 0x10;
        fs::write(&path, &data).unwrap();
        let mut wal = open_with(
            dir.path(),
            false,
            &[("codec", codec), ("block-records", "4")],
        );
        let report = wal.open_report();
        assert_eq!(report.len(), 1, "{codec}: {report:?}");
        assert!(matches!(
            report[0].kind,
            AnomalyKind::ChecksumMismatch | AnomalyKind::CorruptedRecord
        ));
        assert!(report[0].offset <= at as u64 && at as u64 <= report[0].offset + report[0].length);
        let units = wal.units().unwrap();
        assert!(units[0].sealed);
        let valid = units[0].records.unwrap();
        assert!(valid < 40 && valid > 0);
        // Appends go to a new segment.
        wal.append(batch("gps", 40, 2, DAY), SyncLevel::Durable)
            .unwrap();
        assert_eq!(wal.units().unwrap().len(), 2);
        // Scan flags the damage (and nothing about the manifest: it counts valid records).
        let (_, anomalies) = scan(&mut wal, 256);
        assert!(!anomalies.is_empty());
        assert!(
            anomalies
                .iter()
                .all(|(k, u, _)| u == &unit && *k != AnomalyKind::ManifestMismatch),
            "{anomalies:?}"
        );
        rewrite_keeping_valid(&mut wal, &unit);
        let (records_after, anomalies) = scan(&mut wal, 1 << 20);
        assert_eq!(anomalies, vec![]);
        assert_eq!(records_after, valid + 2);
        assert!(wal.units().unwrap()[0].sealed, "a sealed unit stays sealed");
    }
}

#[test]
fn orphans_get_complete_manifests_and_read_only_opens_only_report() {
    let dir = tempfile::tempdir().unwrap();
    let units;
    {
        let mut wal = open_with(
            dir.path(),
            false,
            &[("max-bytes", "500"), ("bucket", "none")],
        );
        wal.append(batch("gps", 0, 30, DAY), SyncLevel::Durable)
            .unwrap();
        units = wal.units().unwrap();
    }
    assert!(units.len() >= 3);
    // A crash between sealing and writing the manifest, for the first segment.
    let orphan = &units[0].id;
    fs::remove_file(manifest::path_for(&dir.path().join(orphan))).unwrap();
    // A leftover temporary file and a manifest whose segment is gone.
    let temp = format!("{}.quire-tmp", units[1].id);
    fs::write(dir.path().join(&temp), b"partial").unwrap();
    let gone = "wal/store=gps/date=flat/segment-000099.wal.manifest.json";
    fs::write(dir.path().join(gone), b"{}").unwrap();

    let before = snapshot(dir.path());
    let ro = open_with(dir.path(), true, &[]);
    let layout = ro.check_layout().unwrap();
    let kinds: Vec<(AnomalyKind, &str)> =
        layout.iter().map(|a| (a.kind, a.unit.as_str())).collect();
    assert!(
        kinds.contains(&(AnomalyKind::ManifestMismatch, orphan.as_str())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&(AnomalyKind::OrphanedUnit, temp.as_str())));
    assert!(kinds.contains(&(AnomalyKind::OrphanedUnit, gone)));
    assert!(ro.units().unwrap()[0].records.is_none());
    drop(ro);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a read-only open changes nothing"
    );

    let mut wal = open(dir.path());
    let report = wal.open_report();
    // The stray manifest names a segment above the live one, so that one is
    // no longer live either: both get manifests.
    assert_eq!(report.len(), 2);
    assert_eq!(
        (report[0].kind, report[0].unit.as_str()),
        (AnomalyKind::OrphanedUnit, orphan.as_str())
    );
    assert_eq!(report[1].unit, units.last().unwrap().id);
    let m = manifest::read(&manifest::path_for(&dir.path().join(orphan)))
        .unwrap()
        .unwrap();
    assert_eq!(Some(m.records), units[0].records);
    assert_eq!(Some(m.min_timestamp), units[0].min_timestamp);
    assert_eq!(Some(m.max_timestamp), units[0].max_timestamp);
    // The temp file and the stray manifest are dropped by their ids.
    let layout = wal.check_layout().unwrap();
    assert_eq!(layout.len(), 2);
    for a in layout {
        wal.drop_unit(&a.unit, None).unwrap();
    }
    assert!(wal.check_layout().unwrap().is_empty());
    assert_eq!(scan(&mut wal, 1 << 20).1, vec![]);
    // The dropped manifest named segment 99: numbers continue above it.
    wal.seal().unwrap();
    wal.append(batch("gps", 30, 1, DAY), SyncLevel::Written)
        .unwrap();
    assert!(
        wal.units()
            .unwrap()
            .last()
            .unwrap()
            .id
            .ends_with("segment-000100.wal")
    );
}

fn purge_receipt(unit: &str, at: f64) -> Receipt {
    Receipt {
        kind: ReceiptKind::Purged,
        unit: unit.into(),
        store: Some("gps".into()),
        at,
        json: r#"{"rule":"max_age"}"#.into(),
    }
}

#[test]
fn dropped_segments_leave_receipts_and_numbers_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path());
    wal.append(batch("gps", 0, 3, DAY), SyncLevel::Durable)
        .unwrap();
    let live = wal.units().unwrap()[0].id.clone();
    assert!(matches!(
        wal.drop_unit(&live, None),
        Err(PluginError::InvalidState(_))
    ));
    wal.seal().unwrap();
    wal.append(batch("gps", 3, 3, DAY), SyncLevel::Durable)
        .unwrap();
    wal.seal().unwrap();
    for (i, u) in wal.units().unwrap().iter().enumerate() {
        wal.drop_unit(&u.id, Some(purge_receipt(&u.id, 100.0 + i as f64)))
            .unwrap();
    }
    assert!(wal.units().unwrap().is_empty());
    assert!(
        !dir.path().join("wal/store=gps/date=2026-11-21").exists(),
        "empty bucket directory removed"
    );
    let receipts = wal
        .receipts(&ReceiptFilter {
            stores: vec!["gps".into()],
            kinds: vec![],
            since: None,
            until: None,
            limit: None,
        })
        .unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0].json, r#"{"rule":"max_age"}"#);
    drop(wal);
    let mut wal = open(dir.path());
    wal.append(batch("gps", 6, 1, DAY), SyncLevel::Durable)
        .unwrap();
    assert!(wal.units().unwrap()[0].id.ends_with("segment-000003.wal"));
    // Even without the high-water file, receipts keep the numbers.
    drop(wal);
    fs::remove_file(dir.path().join("wal/store=gps/high-water")).unwrap();
    let mut wal = open(dir.path());
    wal.seal().unwrap();
    wal.append(batch("gps", 7, 1, DAY), SyncLevel::Durable)
        .unwrap();
    assert!(wal.units().unwrap()[1].id.ends_with("segment-000004.wal"));
}

#[test]
fn a_purge_cut_short_by_a_crash_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let unit;
    {
        let mut wal = open(dir.path());
        wal.append(batch("gps", 0, 3, DAY), SyncLevel::Durable)
            .unwrap();
        wal.seal().unwrap();
        unit = wal.units().unwrap()[0].id.clone();
        // The receipt was stored; the crash came before the removal.
        wal.put_receipt(purge_receipt(&unit, 5.0)).unwrap();
    }
    let ro = open_with(dir.path(), true, &[]);
    let layout = ro.check_layout().unwrap();
    assert_eq!(
        (layout[0].kind, layout[0].unit.as_str()),
        (AnomalyKind::OrphanedUnit, unit.as_str())
    );
    drop(ro);
    let wal = open(dir.path());
    let report = wal.open_report();
    assert_eq!(
        (report[0].kind, report[0].unit.as_str()),
        (AnomalyKind::OrphanedUnit, unit.as_str())
    );
    assert!(wal.units().unwrap().is_empty());
    assert!(wal.check_layout().unwrap().is_empty());
}

#[test]
fn rewrites_commit_atomically_and_a_cut_commit_is_finished_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let records = batch("gps", 0, 10, DAY);
    let unit;
    {
        let mut wal = open_with(dir.path(), false, &[("codec", "compact")]);
        wal.append(records.clone(), SyncLevel::Durable).unwrap();
        wal.seal().unwrap();
        unit = wal.units().unwrap()[0].id.clone();
        // Keep every other record.
        let mut job = wal.rewrite(&unit).unwrap();
        job.write(&records.iter().step_by(2).cloned().collect::<Vec<_>>())
            .unwrap();
        let size = wal.commit(&mut job).unwrap();
        let u = &wal.units().unwrap()[0];
        assert_eq!(
            (u.bytes, u.records, u.sealed, u.codec.as_str()),
            (size, Some(5), true, "compact")
        );
        assert_eq!(
            read_all(&mut wal),
            jsons(&records.iter().step_by(2).cloned().collect::<Vec<_>>())
        );
        assert_eq!(scan(&mut wal, 1 << 20), (5, vec![]));
        // An aborted rewrite leaves nothing behind.
        let mut job = wal.rewrite(&unit).unwrap();
        job.write(&records[..1]).unwrap();
        drop(job);
        assert!(wal.check_layout().unwrap().is_empty());
    }
    let path = dir.path().join(&unit);
    let m = manifest::read(&manifest::path_for(&path)).unwrap().unwrap();
    // Crash after the segment was renamed, before the manifest was: the
    // pending manifest matches the segment and is put in place.
    let mut stale = m.clone();
    stale.records = 999;
    stale.crc32 ^= 1;
    manifest::write(&manifest::path_for(&path), &stale).unwrap();
    manifest::write(&manifest::pending_path_for(&path), &m).unwrap();
    let mut wal = open(dir.path());
    assert_eq!(wal.open_report().len(), 1);
    assert_eq!(
        manifest::read(&manifest::path_for(&path)).unwrap().unwrap(),
        m
    );
    assert_eq!(scan(&mut wal, 1 << 20), (5, vec![]));
    drop(wal);
    // Crash before the rename: the pending manifest describes a file that
    // is not there; it is discarded and the original stays.
    let mut other = m.clone();
    other.crc32 ^= 1;
    manifest::write(&manifest::pending_path_for(&path), &other).unwrap();
    let mut wal = open(dir.path());
    assert_eq!(wal.open_report().len(), 1);
    assert!(!manifest::pending_path_for(&path).exists());
    assert_eq!(
        manifest::read(&manifest::path_for(&path)).unwrap().unwrap(),
        m
    );
    assert_eq!(scan(&mut wal, 1 << 20), (5, vec![]));
}

#[test]
fn the_live_segment_can_be_rewritten_and_appends_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_with(dir.path(), false, &[("codec", "compact")]);
    let records = batch("gps", 0, 12, DAY);
    wal.append(records.clone(), SyncLevel::Buffered).unwrap();
    let unit = wal.units().unwrap()[0].id.clone();
    let mut c = wal.read(&unit, all()).unwrap();
    let kept: Vec<Envelope> = c
        .next_owned(100)
        .unwrap()
        .into_iter()
        .map(|r| r.envelope)
        .filter(|e| e.kind == "event")
        .collect();
    let mut job = wal.rewrite(&unit).unwrap();
    job.write(&kept).unwrap();
    wal.commit(&mut job).unwrap();
    let more = batch("gps", 12, 4, DAY);
    wal.append(more.clone(), SyncLevel::Durable).unwrap();
    let units = wal.units().unwrap();
    assert_eq!(units.len(), 1);
    assert!(!units[0].sealed);
    assert_eq!(units[0].records, Some(kept.len() as u64 + 4));
    assert_eq!(read_all(&mut wal), [jsons(&kept), jsons(&more)].concat());
    // Appends between the start of a rewrite and its commit are not lost.
    let mut job = wal.rewrite(&unit).unwrap();
    wal.append(batch("gps", 16, 1, DAY), SyncLevel::Written)
        .unwrap();
    assert!(matches!(
        wal.commit(&mut job),
        Err(PluginError::InvalidState(_))
    ));
    assert_eq!(read_all(&mut wal).len(), kept.len() + 5);
    assert!(wal.check_layout().unwrap().is_empty());
}

#[test]
fn validate_is_fast_on_healthy_history_and_exact_on_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_with(
        dir.path(),
        false,
        &[("max-bytes", "1500"), ("bucket", "none")],
    );
    wal.append(batch("gps", 0, 40, DAY), SyncLevel::Durable)
        .unwrap();
    let units = wal.units().unwrap();
    let sealed = &units[0];
    let chunk = wal.validate(&sealed.id, 0, 1).unwrap();
    assert!(chunk.done && chunk.anomalies.is_empty());
    assert_eq!(chunk.records, sealed.records.unwrap());
    assert_eq!(chunk.next_offset, sealed.bytes);
    // A flipped bit: the checksum mismatch is located to its frame.
    let path = dir.path().join(&sealed.id);
    let mut data = fs::read(&path).unwrap();
    let at = data.len() - 30;
    data[at] ^= 1;
    fs::write(&path, &data).unwrap();
    let (_, anomalies) = scan(&mut wal, 64);
    let mine: Vec<_> = anomalies
        .iter()
        .filter(|(_, u, _)| u == &sealed.id)
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0].0, AnomalyKind::ChecksumMismatch);
    assert!(mine[0].2 <= at as u64 && at as u64 - mine[0].2 < 200);
    // One record fewer than the manifest says.
    assert_eq!(mine[1].0, AnomalyKind::ManifestMismatch);
    // A manifest that disagrees with a healthy file.
    let other = &units[1];
    let mpath = manifest::path_for(&dir.path().join(&other.id));
    let mut m = manifest::read(&mpath).unwrap().unwrap();
    m.records += 1;
    m.crc32 ^= 1;
    manifest::write(&mpath, &m).unwrap();
    let chunk = wal.validate(&other.id, 0, 1 << 20).unwrap();
    assert_eq!(chunk.anomalies.len(), 1);
    assert_eq!(chunk.anomalies[0].kind, AnomalyKind::ManifestMismatch);
    rewrite_keeping_valid(&mut wal, &other.id);
    rewrite_keeping_valid(&mut wal, &sealed.id);
    assert_eq!(scan(&mut wal, 1 << 20), (39, vec![]));
}

#[test]
fn chunked_validation_of_compact_segments_matches_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_with(
        dir.path(),
        false,
        &[
            ("codec", "compact"),
            ("block-records", "3"),
            ("stream-bytes", "2000"),
        ],
    );
    wal.append(batch("gps", 0, 200, DAY), SyncLevel::Durable)
        .unwrap();
    let unit = wal.units().unwrap()[0].id.clone();
    let path = dir.path().join(&unit);
    let mut data = fs::read(&path).unwrap();
    let at = data.len() / 3;
    data[at] ^= 4;
    fs::write(&path, &data).unwrap();
    let whole = scan(&mut wal, u64::MAX);
    for budget in [1, 50, 333] {
        assert_eq!(scan(&mut wal, budget), whole, "budget {budget}");
    }
    // A pass resumed at an offset the store did not hand out decodes quietly up to it.
    let first = wal.validate(&unit, 0, 500).unwrap();
    let _ = wal.validate(&unit, 0, 100).unwrap();
    let rest = wal.validate(&unit, first.next_offset, u64::MAX).unwrap();
    assert!(rest.done);
    assert!(whole.0 > 150 && whole.0 < 200, "{}", whole.0);
    // Read skips what scan flags: same count.
    assert_eq!(read_all(&mut wal).len() as u64, whole.0);
}

#[test]
fn reads_filter_per_record_and_stored_bytes_sum_to_the_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_with(
        dir.path(),
        false,
        &[("codec", "compact"), ("block-records", "8")],
    );
    let records = batch("gps", 0, 40, DAY);
    wal.append(records.clone(), SyncLevel::Durable).unwrap();
    let unit = wal.units().unwrap()[0].clone();
    let since = records[10].timestamp;
    let until = records[30].timestamp;
    let mut c = wal
        .read(
            &unit.id,
            ReadFilter {
                kinds: vec!["event".into()],
                stores: vec![],
                since: Some(since),
                until: Some(until),
            },
        )
        .unwrap();
    let got = c.next_owned(1000).unwrap();
    let expected: Vec<_> = records[10..30]
        .iter()
        .filter(|e| e.kind == "event")
        .map(|e| e.json.clone())
        .collect();
    assert_eq!(
        got.iter()
            .map(|r| r.envelope.json.clone())
            .collect::<Vec<_>>(),
        expected
    );
    let mut c = wal.read(&unit.id, all()).unwrap();
    let every = c.next_owned(1000).unwrap();
    let header = {
        let data = fs::read(dir.path().join(&unit.id)).unwrap();
        u64::from(u32::from_be_bytes(data[..4].try_into().unwrap())) + 8
    };
    assert_eq!(
        every.iter().map(|r| r.stored_bytes).sum::<u64>() + header,
        unit.bytes
    );
    assert!(every.windows(2).all(|w| w[0].offset <= w[1].offset));
    let mut c = wal
        .read(
            &unit.id,
            ReadFilter {
                kinds: vec![],
                stores: vec!["crm".into()],
                since: None,
                until: None,
            },
        )
        .unwrap();
    assert!(c.next_owned(10).unwrap().is_empty());
}

#[test]
fn appends_are_checked_whole_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path());
    for (bad_store, bad_json) in [
        ("../x", None),
        ("", None),
        ("a/b", None),
        ("ok", Some("[1]")),
        ("ok", Some("{\"a\":\n1}")),
    ] {
        let mut b = batch("gps", 0, 3, DAY);
        let mut e = env(bad_store, DAY, 9);
        if let Some(j) = bad_json {
            e.json = j.into();
        }
        b.push(e);
        match wal.append(b, SyncLevel::Durable) {
            Err(PluginError::InvalidRecord(r)) => assert_eq!(r.index, 3),
            other => panic!("{bad_store:?}: {other:?}"),
        }
    }
    assert!(wal.units().unwrap().is_empty());
}

#[test]
fn durability_counts_buffered_written_and_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open_with(
        dir.path(),
        false,
        &[("codec.gps", "compact"), ("block-records", "64")],
    );
    wal.append(batch("gps", 0, 10, DAY), SyncLevel::Buffered)
        .unwrap();
    wal.append(batch("crm", 0, 4, DAY), SyncLevel::Buffered)
        .unwrap();
    let d = wal.durability().unwrap();
    let by: BTreeMap<_, _> = d
        .iter()
        .map(|s| {
            (
                s.store.as_str(),
                (s.codec.as_str(), s.accepted, s.buffered, s.unsynced),
            )
        })
        .collect();
    assert_eq!(by["gps"], ("compact", 10, 10, 0));
    assert_eq!(by["crm"], ("json-crc32", 4, 0, 4));
    wal.sync(SyncLevel::Written).unwrap();
    assert_eq!(
        (
            wal.durability().unwrap()[1].buffered,
            wal.durability().unwrap()[1].unsynced
        ),
        (0, 10)
    );
    wal.sync(SyncLevel::Durable).unwrap();
    assert!(
        wal.durability()
            .unwrap()
            .iter()
            .all(|s| s.buffered == 0 && s.unsynced == 0)
    );
    let stats = wal.stats().unwrap();
    let details: BTreeMap<_, _> = stats.details.into_iter().collect();
    assert_eq!(details["store.gps.codec"], "compact");
    assert_eq!(details["store.gps.records"], "10");
    assert_eq!(details["store.crm.segments"], "1");
    assert_eq!(
        stats.total_bytes,
        stats.units.iter().map(|u| u.bytes).sum::<u64>()
    );
}

#[test]
fn quarantine_copies_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let q = tempfile::tempdir().unwrap();
    let mut wal = open_with(dir.path(), false, &[("codec", "compact")]);
    wal.append(batch("gps", 0, 5, DAY), SyncLevel::Buffered)
        .unwrap();
    let unit = wal.units().unwrap()[0].id.clone();
    let n = wal
        .quarantine(&unit, &q.path().display().to_string(), "seg.q")
        .unwrap();
    let copy = fs::read(q.path().join("seg.q")).unwrap();
    assert_eq!(copy, fs::read(dir.path().join(&unit)).unwrap());
    assert_eq!(n, copy.len() as u64);
    assert!(
        wal.quarantine(&unit, &q.path().display().to_string(), "../x")
            .is_err()
    );
    assert!(matches!(
        wal.quarantine("wal/nope", "/q", "x"),
        Err(PluginError::NoSuchUnit(_))
    ));
}

#[test]
fn options_and_targets_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for (target, options) in [
        ("", vec![("colour", "red")]),
        ("../up", vec![]),
        ("/abs", vec![]),
    ] {
        let r = Wal::open(OpenConfig {
            root: dir.path().display().to_string(),
            target: target.into(),
            read_only: false,
            options: options
                .into_iter()
                .map(|(a, b): (&str, &str)| (a.to_string(), b.to_string()))
                .collect(),
        });
        assert!(matches!(r, Err(PluginError::InvalidConfig(_))), "{target}");
    }
    // A sub-directory target is created and used.
    let mut wal = Wal::open(OpenConfig {
        root: dir.path().display().to_string(),
        target: "sub/dir".into(),
        read_only: false,
        options: vec![],
    })
    .unwrap();
    wal.append(batch("gps", 0, 1, DAY), SyncLevel::Durable)
        .unwrap();
    assert!(dir.path().join("sub/dir/wal/store=gps").is_dir());
}

/// Copies a directory tree (a crash image to mutate).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in snapshot(from) {
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, bytes).unwrap();
    }
}

#[test]
fn a_crash_at_any_byte_of_the_live_segment_keeps_every_whole_frame() {
    for codec in ["json-crc32", "compact"] {
        let opts = [("codec", codec), ("block-records", "4")];
        let origin = tempfile::tempdir().unwrap();
        let records = batch("gps", 0, 60, DAY);
        // (file size after the batch, records acknowledged so far)
        let mut acked = Vec::new();
        let unit;
        {
            let mut wal = open_with(origin.path(), false, &opts);
            let mut n = 0;
            for chunk in records.chunks(5) {
                wal.append(chunk.to_vec(), SyncLevel::Durable).unwrap();
                n += chunk.len();
                let id = wal.units().unwrap()[0].id.clone();
                acked.push((fs::metadata(origin.path().join(&id)).unwrap().len(), n));
            }
            unit = wal.units().unwrap()[0].id.clone();
        }
        let full = fs::metadata(origin.path().join(&unit)).unwrap().len();
        let mut seed = 7u64;
        for round in 0..40 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let cut = (seed >> 33) % full;
            let image = tempfile::tempdir().unwrap();
            copy_tree(origin.path(), image.path());
            let path = image.path().join(&unit);
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(cut).unwrap();
            if round % 3 == 0 {
                // A torn write that left zeros past the cut.
                f.set_len(cut + 37).unwrap();
            }
            drop(f);
            let mut wal = open_with(image.path(), false, &opts);
            let got = read_all(&mut wal);
            let must_have = acked
                .iter()
                .filter(|(size, _)| *size <= cut)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0);
            assert!(
                got.len() >= must_have,
                "{codec} cut {cut}: {} < {must_have}",
                got.len()
            );
            assert_eq!(
                got,
                jsons(&records[..got.len()]),
                "{codec} cut {cut}: a prefix survives"
            );
            let more = batch("gps", 100, 3, DAY);
            wal.append(more.clone(), SyncLevel::Durable).unwrap();
            let after = read_all(&mut wal);
            assert_eq!(after, [got.clone(), jsons(&more)].concat());
            assert_eq!(
                scan(&mut wal, 1 << 20),
                (after.len() as u64, vec![]),
                "{codec} cut {cut}"
            );
        }
    }
}
