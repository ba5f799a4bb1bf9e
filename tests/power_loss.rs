//! Simulated power loss: a file layer notes every sync a backend makes;
//! at a random point the power "goes" — files are cut back to what was
//! synced (or keep a torn or zeroed tail) and directory entries no
//! directory sync covered disappear. Reopened, every record acknowledged as
//! durable must be there, in order, and scan must be clean or repairable.

use std::path::Path;

use quire::power_loss::SyncTracker;
use quire::progress::Silent;
use quire::{Durability, Record, RecoveryMode, Store, StoreConfig};
use quire_tests::{Rng, builtin_config, read_ids};

fn record(id: u64) -> Record {
    let store = ["gps", "orders", "audit"][(id % 3) as usize];
    Record::from_json_line(
        &format!(
            r#"{{"kind":"event","store":"{store}","id":{id},"lat":{:.6},"timestamp":{}}}"#,
            45.0 + id as f64 * 1e-4,
            1_700_000_000.0 + id as f64 * 0.25
        ),
        0.0,
    )
    .unwrap()
}

fn ids(store: &Store) -> Vec<u64> {
    read_ids(store).into_iter().map(Option::unwrap).collect()
}

fn config(backend: &str, path: &Path, options: &[(&str, &str)]) -> StoreConfig {
    let mut c = builtin_config(backend, path, options);
    c.durability = Durability::PerWrite;
    c
}

/// What one cut did: whether it lost anything, and how many sealed units the
/// store had at the crash point (any: it rotated or checkpointed).
struct Cut {
    lost_something: bool,
    sealed: usize,
}

/// One power cut: durable appends (and, per backend, checkpoints), the cut,
/// then appends that were never synced; reopen and check.
fn one_cut(backend: &str, file_name: Option<&str>, options: &[(&str, &str)], seed: u64) -> Cut {
    let dir = tempfile::tempdir().unwrap();
    let path = match file_name {
        Some(name) => dir.path().join(name),
        None => dir.path().join("data"),
    };
    let mut rng = Rng::new(seed);
    let tracker = SyncTracker::new(dir.path()).unwrap();
    let mut c = config(backend, &path, options);
    c.sync_tracker = Some(tracker.clone());
    let store = Store::open(c).unwrap();
    let mut next_id = 0u64;
    let mut acked = Vec::new();
    for _ in 0..1 + rng.below(25) {
        let n = 1 + rng.below(30);
        let batch: Vec<Record> = (next_id..next_id + n).map(record).collect();
        store.append(batch).unwrap();
        acked.extend(next_id..next_id + n);
        next_id += n;
        if rng.below(8) == 0 {
            let _ = store.checkpoint();
        }
    }
    let sealed = store.units().unwrap().iter().filter(|u| u.sealed).count();
    // The crash point: from here on nothing more becomes durable.
    tracker.freeze();
    for _ in 0..rng.below(4) {
        let n = 1 + rng.below(30);
        let _ = store.append((next_id..next_id + n).map(record).collect());
        next_id += n;
    }
    drop(store);
    let loss = tracker.lose_power(dir.path(), seed).unwrap();
    assert!(loss.syncs > 0, "the file layer saw no sync from {backend}");
    let lost_something =
        !loss.removed.is_empty() || !loss.truncated.is_empty() || !loss.zeroed.is_empty();

    let context = format!("{backend} seed {seed}: {loss:?}");
    let store = Store::open(config(backend, &path, options))
        .unwrap_or_else(|e| panic!("reopen: {e}\n{context}"));
    let scan = store.scan(&Silent).unwrap();
    if !scan.healthy() {
        let report = store.recover(RecoveryMode::Repair, &Silent).unwrap();
        assert!(
            report.after.healthy(),
            "recovery left anomalies: {:?}\n{context}",
            report.after.anomalies
        );
    }
    let got = ids(&store);
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "order broken: {got:?}\n{context}"
    );
    assert_eq!(
        &got[..acked.len().min(got.len())],
        &acked[..acked.len().min(got.len())],
        "{context}"
    );
    assert!(
        got.len() >= acked.len(),
        "lost acknowledged records: {} of {}\n{context}",
        got.len(),
        acked.len()
    );
    // The store goes on working after the cut.
    store.append(vec![record(next_id + 1000)]).unwrap();
    assert_eq!(ids(&store).last(), Some(&(next_id + 1000)), "{context}");
    assert!(store.scan(&Silent).unwrap().healthy(), "{context}");
    Cut {
        lost_something,
        sealed,
    }
}

/// `rounds` cuts; returns how many of them hit a store with sealed units.
fn cuts(backend: &str, file_name: Option<&str>, options: &[(&str, &str)], rounds: u64) -> u64 {
    let seed = quire_tests::rng::seed("power-loss");
    let mut cuts_that_lost_data = 0;
    let mut cuts_with_sealed = 0;
    for round in 0..rounds {
        let cut = one_cut(backend, file_name, options, seed.wrapping_add(round * 7919));
        cuts_that_lost_data += cut.lost_something as u32;
        cuts_with_sealed += (cut.sealed > 0) as u64;
    }
    // Unsynced appends follow most crash points: the cut must have bitten.
    assert!(
        cuts_that_lost_data > rounds as u32 / 4,
        "only {cuts_that_lost_data} of {rounds} cuts lost anything"
    );
    cuts_with_sealed
}

/// For directory backends: most cuts must find sealed units beside the live
/// ones, or the test never crossed a rotation or checkpoint.
fn cuts_across_rotations(backend: &str, options: &[(&str, &str)], rounds: u64) {
    let rotated = cuts(backend, None, options, rounds);
    eprintln!("{backend} {options:?}: {rotated} of {rounds} cuts found sealed units");
    assert!(
        rotated > rounds / 2,
        "only {rotated} of {rounds} cuts found sealed units"
    );
}

#[test]
fn ndjson_keeps_every_durable_record_through_power_loss() {
    cuts("ndjson", Some("log.ndjson"), &[], 40);
}

#[test]
fn rotating_keeps_every_durable_record_through_power_loss() {
    // Few records per file: appends rotate constantly, and checkpoints seal.
    cuts_across_rotations("rotating", &[("max-records", "7")], 40);
}

#[test]
fn segmented_json_crc32_keeps_every_durable_record_through_power_loss() {
    cuts_across_rotations(
        "segmented",
        &[("max-bytes", "1024"), ("bucket", "none")],
        40,
    );
}

#[test]
fn segmented_compact_keeps_every_durable_record_through_power_loss() {
    // block-records stays at its default: per-write appends must not wait for a full block.
    cuts_across_rotations(
        "segmented",
        &[
            ("codec", "compact"),
            ("max-bytes", "512"),
            ("bucket", "none"),
        ],
        40,
    );
}
