//! Hostile bytes on disk: valid histories for the rotating and segmented
//! backends are damaged at random (bit flips, overwritten runs, random
//! garbage, truncation, zero fill, whole files of noise). Whatever the
//! damage, the plugins must neither trap nor loop, every anomaly must name
//! a unit and an offset inside it, and recovery must leave a clean store
//! that still holds every record outside the damaged unit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use quire::progress::Silent;
use quire::{Durability, Error, ReadQuery, Record, RecoveryMode, Store, StoreConfig};
use quire_tests::{Rng, builtin_config, files_with_extension, read_ids, record_id};

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

/// Data files of the layout (not manifests or receipts), sorted.
fn data_files(root: &Path) -> Vec<PathBuf> {
    files_with_extension(root, &["wal", "ndjson"])
}

fn damage(file: &Path, rng: &mut Rng) -> &'static str {
    let mut bytes = std::fs::read(file).unwrap();
    let len = bytes.len() as u64;
    let what = match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(len) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            "bit flips"
        }
        1 => {
            let at = rng.below(len) as usize;
            let n = (1 + rng.below(64)) as usize;
            for b in bytes.iter_mut().skip(at).take(n) {
                *b = rng.next_u64() as u8;
            }
            "overwritten run"
        }
        2 => {
            bytes.truncate(rng.below(len) as usize);
            "truncated"
        }
        3 => {
            bytes.extend((0..1 + rng.below(200)).map(|_| rng.next_u64() as u8));
            "garbage tail"
        }
        4 => {
            let at = rng.below(len) as usize;
            for b in bytes.iter_mut().skip(at) {
                *b = 0;
            }
            "zero fill"
        }
        _ => {
            bytes = (0..len).map(|_| rng.next_u64() as u8).collect();
            "all noise"
        }
    };
    std::fs::write(file, bytes).unwrap();
    what
}

fn ids(store: &Store) -> BTreeSet<u64> {
    // A flipped bit inside an NDJSON line can leave a valid record with another id (or none):
    // only checksums would tell, and the rotating backend's cover whole files.
    read_ids(store).into_iter().flatten().collect()
}

fn not_a_fault<T>(result: quire::Result<T>, context: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e @ Error::Fault { .. }) => panic!("the plugin faulted: {e}\n{context}"),
        Err(e) => panic!("{e}\n{context}"),
    }
}

fn rounds(backend: &str, options: &[(&str, &str)], n: u64) {
    let mut rng = Rng::seeded("garbage");
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
        store.checkpoint().unwrap();
        drop(store);
        let files = data_files(&data);
        let victim = files[rng.below(files.len() as u64) as usize].clone();
        let victim_unit = victim
            .strip_prefix(&data)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let elsewhere: BTreeSet<u64> = {
            let mut ro = config(backend, &data, options);
            ro.read_only = true;
            let all = Store::open(ro)
                .unwrap()
                .read_all(&ReadQuery::default())
                .unwrap();
            assert_eq!(all.len() as u64, count);
            all.iter()
                .filter(|r| r.unit != victim_unit)
                .map(|r| record_id(&r.envelope.json).unwrap())
                .collect()
        };
        let size = std::fs::metadata(&victim).unwrap().len();
        let what = damage(&victim, &mut rng);
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
        let survivors = ids(&reader);
        drop(reader);

        // Then recovery, in quarantine mode so the damaged bytes are kept.
        let mut rw = config(backend, &data, options);
        rw.quarantine_dir = Some(dir.path().join("quarantine"));
        let store = not_a_fault(Store::open(rw), &context);
        let report = not_a_fault(store.recover(RecoveryMode::Quarantine, &Silent), &context);
        assert!(
            report.after.healthy(),
            "left after recovery: {:?}\n{context}",
            report.after.anomalies
        );
        // Recovery keeps every record a reader could still read.
        let after = ids(&store);
        let lost: Vec<_> = survivors.difference(&after).collect();
        assert!(
            lost.is_empty(),
            "recovery lost readable records {lost:?}\n{context}"
        );
        // Only the damaged file lost anything.
        let gone: Vec<_> = elsewhere.difference(&after).collect();
        assert!(
            gone.is_empty(),
            "records outside {victim_unit} are gone: {gone:?}\n{context}"
        );
        // The store still takes appends and stays clean.
        store.append(vec![record(count + 1)]).unwrap();
        assert!(store.scan(&Silent).unwrap().healthy(), "{context}");
    }
}

#[test]
fn rotating_survives_random_damage() {
    rounds("rotating", &[("max-records", "64")], 30);
}

#[test]
fn segmented_json_survives_random_damage() {
    rounds(
        "segmented",
        &[("max-bytes", "4096"), ("bucket", "none")],
        30,
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
        30,
    );
}
