//! Hostile bytes on disk: valid, sealed histories for the rotating and
//! segmented backends are damaged at random (bit flips, overwritten runs,
//! inserted garbage, truncation, zero fill, whole files of noise) in any of
//! their files: data, manifests, line checksums. Each kind of damage comes
//! round by round in turn, one of them a changed digit in a unit's records
//! (still a valid record, so only a checksum can tell). Whatever the damage, the
//! plugins must neither trap nor loop, every anomaly must name a unit and
//! an offset inside it, and recovery must leave a clean store in which
//! every record read back is byte for byte one that was appended, and every
//! appended record not read back is named in the recovery report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quire::progress::Silent;
use quire::report::RecoveryReport;
use quire::{Durability, Error, ReadQuery, Record, RecoveryMode, Store, StoreConfig};
use quire_tests::{Rng, builtin_config, record_id};

fn config(backend: &str, path: &Path, options: &[(&str, &str)]) -> StoreConfig {
    let mut c = builtin_config(backend, path, options);
    c.durability = Durability::Batch;
    c
}

fn record(id: u64) -> Record {
    let (kind, store) = [
        ("event", "gps"),
        ("audit", "orders"),
        ("dead_letter", "gps"),
    ][(id % 3) as usize];
    Record::from_json_line(
        &format!(
            r#"{{"kind":"{kind}","store":"{store}","id":{id},"note":"n{id}","timestamp":{}}}"#,
            1_700_000_000.0 + id as f64
        ),
        0.0,
    )
    .unwrap()
}

/// Every file of the layout but the host's lock, sorted.
fn layout_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n != ".quire-lock")
                && path.metadata().unwrap().len() > 0
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The kinds of damage, taken in turn round by round so that every run
/// deals each of them out; where they land is random.
const DAMAGE_KINDS: u64 = 8;

/// A position in `0..len` that moves little when `len` does: a sealed
/// manifest holds the clock (`sealed_at`), so its length differs by a byte
/// or two between runs, and a replayed seed should still hit the same spot.
fn spot(rng: &mut Rng, len: u64) -> usize {
    ((rng.next_u64() as u128 * len as u128) >> 64) as usize
}

/// The kind of damage that changes a digit: aimed at a unit's records
/// rather than at any file of the layout.
const CHANGED_DIGIT: u64 = 5;

fn damage(file: &Path, kind: u64, rng: &mut Rng) -> &'static str {
    let mut bytes = std::fs::read(file).unwrap();
    let len = bytes.len() as u64;
    let what = match kind {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let at = spot(rng, len);
                bytes[at] ^= 1 << rng.below(8);
            }
            "bit flips"
        }
        1 => {
            let at = spot(rng, len);
            let n = (1 + rng.below(64)) as usize;
            for b in bytes.iter_mut().skip(at).take(n) {
                *b = rng.next_u64() as u8;
            }
            "overwritten run"
        }
        2 => {
            bytes.truncate(spot(rng, len));
            "truncated"
        }
        3 => {
            bytes.extend((0..1 + rng.below(200)).map(|_| rng.next_u64() as u8));
            "garbage tail"
        }
        4 => {
            let at = spot(rng, len);
            for b in bytes.iter_mut().skip(at) {
                *b = 0;
            }
            "zero fill"
        }
        CHANGED_DIGIT => {
            // Damage that leaves the text a valid record: one digit becomes
            // another (never a leading zero), so only a checksum can tell.
            let digits: Vec<usize> = (0..bytes.len())
                .filter(|&i| bytes[i].is_ascii_digit())
                .collect();
            if let Some(&at) = digits.get(spot(rng, digits.len() as u64)) {
                let others: Vec<u8> = (b'1'..=b'9').filter(|&d| d != bytes[at]).collect();
                bytes[at] = others[spot(rng, others.len() as u64)];
            }
            "changed digit"
        }
        6 => {
            let at = spot(rng, len + 1);
            let garbage: Vec<u8> = (0..1 + rng.below(120))
                .map(|_| match rng.below(4) {
                    0 => b'\n',
                    1 => b'{',
                    _ => rng.next_u64() as u8,
                })
                .collect();
            bytes.splice(at..at, garbage);
            "inserted garbage"
        }
        _ => {
            bytes = (0..len).map(|_| rng.next_u64() as u8).collect();
            "all noise"
        }
    };
    std::fs::write(file, bytes).unwrap();
    what
}

fn not_a_fault<T>(result: quire::Result<T>, context: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e @ Error::Fault { .. }) => panic!("the plugin faulted: {e}\n{context}"),
        Err(e) => panic!("{e}\n{context}"),
    }
}

/// Where an appended record was before the damage.
struct Place {
    unit: String,
    offset: u64,
    stored_bytes: u64,
}

/// Whether the report names the bytes of `place`: an anomaly of its unit
/// over them (or marking lines missing from there on), or a receipt that
/// dropped them as unverified.
fn named(report: &RecoveryReport, place: &Place) -> bool {
    let end = place.offset + place.stored_bytes.max(1);
    let overlaps = |offset: u64, length: u64| {
        (offset < end && offset + length > place.offset) || (length == 0 && offset <= place.offset)
    };
    report
        .before
        .anomalies
        .iter()
        .any(|a| a.unit == place.unit && overlaps(a.offset, a.length))
        || report.receipts.iter().any(|r| {
            r.unit == place.unit
                && r.unverified
                    .iter()
                    .flat_map(|u| &u.ranges)
                    .any(|b| overlaps(b.offset, b.length))
        })
}

/// Runs `n` rounds; returns, for each round of changed digits, how many
/// records recovery dropped as unverified, and what the round did.
fn rounds(backend: &str, options: &[(&str, &str)], n: u64) -> Vec<(u64, String)> {
    let mut rng = Rng::seeded("garbage");
    let mut dropped_for_digits = Vec::new();
    for round in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(config(backend, &data, options)).unwrap();
        let count = 200 + rng.below(400);
        for chunk in (0..count).collect::<Vec<_>>().chunks(50) {
            store
                .append(chunk.iter().map(|&i| record(i)).collect())
                .unwrap();
        }
        // Sealed: every record is under a checksum from here on.
        store.checkpoint().unwrap();
        drop(store);
        // Every record as appended, and where it was.
        let written: BTreeMap<String, Place> = {
            let mut ro = config(backend, &data, options);
            ro.read_only = true;
            let all = Store::open(ro)
                .unwrap()
                .read_all(&ReadQuery::default())
                .unwrap();
            assert_eq!(all.len() as u64, count);
            all.into_iter()
                .map(|r| {
                    assert_eq!(
                        r.envelope.json,
                        record(record_id(&r.envelope.json).unwrap()).json
                    );
                    let place = Place {
                        unit: r.unit,
                        offset: r.offset,
                        stored_bytes: r.stored_bytes,
                    };
                    (r.envelope.json, place)
                })
                .collect()
        };
        let kind = round % DAMAGE_KINDS;
        let files: Vec<PathBuf> = layout_files(&data)
            .into_iter()
            .filter(|f| kind != CHANGED_DIGIT || written.values().any(|p| data.join(&p.unit) == *f))
            .collect();
        let victim = files[rng.below(files.len() as u64) as usize].clone();
        let victim_unit = victim
            .strip_prefix(&data)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let size = std::fs::metadata(&victim).unwrap().len();
        let what = damage(&victim, kind, &mut rng);
        let context = format!(
            "{backend} round {round}: {what} in {} ({size} bytes)",
            victim.display()
        );

        // Read-only first: scan must locate the damage without changing anything.
        let mut ro = config(backend, &data, options);
        ro.read_only = true;
        let reader = not_a_fault(Store::open(ro), &context);
        let scan = not_a_fault(reader.scan(&Silent), &context);
        for a in &scan.anomalies {
            let file = data.join(&a.unit);
            let unit_len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(
                a.offset <= unit_len.max(size),
                "anomaly past the end: {a:?}\n{context}"
            );
        }
        drop(reader);

        // Then recovery, in plain repair mode: what it drops it must set aside.
        let store = not_a_fault(Store::open(config(backend, &data, options)), &context);
        let report = not_a_fault(store.recover(RecoveryMode::Repair, &Silent), &context);
        assert!(
            report.after.healthy(),
            "left after recovery: {:?}\n{context}",
            report.after.anomalies
        );
        // Every record read back is one that was appended, byte for byte, once.
        let after = store.read_all(&ReadQuery::default()).unwrap();
        let mut seen = BTreeSet::new();
        for r in &after {
            assert!(
                written.contains_key(&r.envelope.json),
                "a record that was never appended came back: {}\n{context}",
                r.envelope.json
            );
            assert!(
                seen.insert(r.envelope.json.clone()),
                "a record came back twice: {}\n{context}",
                r.envelope.json
            );
        }
        // Every record not read back is named, and only the damaged unit lost any.
        for (json, place) in written.iter().filter(|(j, _)| !seen.contains(*j)) {
            assert_eq!(
                place.unit, victim_unit,
                "a record outside the damaged file is gone: {json}\n{context}"
            );
            assert!(
                named(&report, place),
                "a record was lost without the report naming it: {json} at {}+{}\n{context}\n{:#?}\n{:#?}",
                place.offset,
                place.stored_bytes,
                report.before.anomalies,
                report.receipts
            );
        }
        // Dropped records were set aside, line for line.
        let mut dropped = 0;
        for u in report.receipts.iter().filter_map(|r| r.unverified.as_ref()) {
            dropped += u.records;
            let aside = std::fs::read_to_string(u.set_aside.as_ref().expect("set aside")).unwrap();
            assert_eq!(aside.lines().count() as u64, u.records, "{context}");
        }
        // The store still takes appends and stays clean.
        store.append(vec![record(count + 1)]).unwrap();
        assert!(store.scan(&Silent).unwrap().healthy(), "{context}");
        if kind == CHANGED_DIGIT {
            dropped_for_digits.push((dropped, context));
        }
    }
    dropped_for_digits
}

#[test]
fn rotating_survives_random_damage() {
    let digit_rounds = rounds("rotating", &[("max-records", "64")], 150);
    // A changed digit leaves a sealed file's line a valid record: only its
    // line checksum can tell, and repair drops (and sets aside) what that
    // checksum disowns, in every such round.
    assert!(!digit_rounds.is_empty());
    for (dropped, context) in digit_rounds {
        assert_eq!(dropped, 1, "{context}");
    }
}

#[test]
fn segmented_json_survives_random_damage() {
    rounds(
        "segmented",
        &[("max-bytes", "4096"), ("bucket", "none")],
        120,
    );
}

#[test]
fn segmented_compact_survives_random_damage() {
    rounds(
        "segmented",
        &[
            ("max-bytes", "2048"),
            ("bucket", "none"),
            ("codec", "compact"),
        ],
        120,
    );
}
