//! Storage faults never cost a record: a write or sync that fails (no space
//! left, an I/O error) makes its append fail whole. Each file backend rolls
//! the batch back, so the store holds exactly the acknowledged records,
//! scans clean, and takes the next append. Faults come from the host's
//! fault-injection layer (the Nth write or sync of a plugin fails) and from
//! a real, small tmpfs that fills up.

use std::path::{Path, PathBuf};
use std::process::Command;

use quire::fault_injection::{Fault, FaultPlan, Target};
use quire::progress::Silent;
use quire::{Durability, Error, Record, Store, StoreConfig};
use quire_tests::{builtin_config, read_ids, snapshot};

/// Backends with options that make batches cross files and stores.
const BACKENDS: &[(&str, &[(&str, &str)])] = &[
    ("ndjson", &[]),
    ("rotating", &[("max-records", "5")]),
    ("segmented", &[("max-bytes", "1024"), ("bucket", "none")]),
    (
        "segmented",
        &[
            ("codec", "compact"),
            ("max-bytes", "512"),
            ("bucket", "none"),
        ],
    ),
];

fn record(id: u64) -> Record {
    let kind = ["event", "audit", "dead_letter"][(id % 3) as usize];
    let store = ["gps", "orders"][(id % 2) as usize];
    Record::from_json_line(
        &format!(
            r#"{{"kind":"{kind}","store":"{store}","id":{id},"payload":"{}","timestamp":{}}}"#,
            "x".repeat(20 + (id % 7) as usize * 9),
            1_700_000_000.0 + id as f64
        ),
        0.0,
    )
    .unwrap()
}

fn path_for(backend: &str, dir: &Path) -> PathBuf {
    if backend == "ndjson" {
        dir.join("log.ndjson")
    } else {
        dir.join("store")
    }
}

fn config(backend: &str, path: &Path, options: &[(&str, &str)]) -> StoreConfig {
    let mut c = builtin_config(backend, path, options);
    c.durability = Durability::PerWrite;
    c
}

fn ids(store: &Store) -> Vec<u64> {
    read_ids(store).into_iter().map(Option::unwrap).collect()
}

/// Opens a store, every open of this file but the faulted ones: a store
/// was just dropped on that path, or another one was elsewhere. Another
/// test of this binary may be forking (to mount a tmpfs) at that moment: a
/// forked child shares the lock's open file until it execs, so a `Locked`
/// clears within moments.
fn reopen(config: StoreConfig) -> Store {
    for _ in 0..100 {
        match Store::open(config.clone()) {
            Err(Error::Locked { .. }) => std::thread::sleep(std::time::Duration::from_millis(10)),
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked after it was dropped")
}

/// The store holds exactly `acknowledged`, scans clean, takes one more
/// batch, and says the same after a reopen without faults.
fn holds_exactly(
    backend: &str,
    path: &Path,
    options: &[(&str, &str)],
    store: Store,
    acknowledged: &mut Vec<u64>,
    what: &str,
) {
    assert_eq!(
        ids(&store),
        *acknowledged,
        "{what}: not exactly the acknowledged records"
    );
    let scan = store.scan(&Silent).unwrap();
    assert!(scan.healthy(), "{what}: scan after the fault: {scan:?}");
    let next = acknowledged.last().map_or(1000, |id| id + 1);
    let more: Vec<u64> = (next..next + 4).collect();
    store
        .append(more.iter().map(|&id| record(id)).collect())
        .unwrap_or_else(|e| panic!("{what}: append after the fault: {e}"));
    acknowledged.extend(more);
    drop(store);
    let reopened = reopen(config(backend, path, options));
    assert_eq!(ids(&reopened), *acknowledged, "{what}: after reopening");
    let scan = reopened.scan(&Silent).unwrap();
    assert!(scan.healthy(), "{what}: scan after reopening: {scan:?}");
}

/// For the 1st, 2nd, ... write or sync of a run of appends: that operation
/// fails with `fault`. Returns how many runs saw an append fail.
fn sweep(backend: &str, options: &[(&str, &str)], target: Target, fault: Fault, runs: u64) -> u64 {
    let mut failed_appends = 0;
    for nth in 1..=runs {
        let what = format!("{backend} {options:?}: {fault:?} at {target:?} #{nth}");
        let tmp = tempfile::tempdir().unwrap();
        let path = path_for(backend, tmp.path());
        let mut c = config(backend, &path, options);
        let plan = FaultPlan::fail_nth(nth, target, fault);
        c.faults = Some(plan.clone());
        let store = match Store::open(c) {
            Ok(store) => store,
            // The fault hit while the store was being set up: nothing was acknowledged.
            Err(_) => reopen(config(backend, &path, options)),
        };
        let mut acknowledged = Vec::new();
        for batch in 0..8u64 {
            let batch_ids: Vec<u64> = (batch * 7..batch * 7 + 7).collect();
            match store.append(batch_ids.iter().map(|&id| record(id)).collect()) {
                Ok(()) => acknowledged.extend(batch_ids),
                Err(e) => {
                    failed_appends += 1;
                    let message = e.to_string();
                    assert!(matches!(e, Error::Plugin { .. }), "{what}: {e:?}");
                    assert!(message.contains("append"), "{what}: {message}");
                    assert!(message.contains("rolled back"), "{what}: {message}");
                    if fault == Fault::NoSpace && target == Target::Writes {
                        assert!(
                            message.contains("No space left on device"),
                            "{what}: {message}"
                        );
                    }
                    break;
                }
            }
        }
        assert!(plan.fired() <= 1, "{what}");
        plan.disarm();
        holds_exactly(backend, &path, options, store, &mut acknowledged, &what);
    }
    failed_appends
}

#[test]
fn a_failed_write_leaves_nothing_of_its_batch_in_any_file_backend() {
    for (backend, options) in BACKENDS {
        for fault in [Fault::NoSpace, Fault::Io] {
            let failed = sweep(backend, options, Target::Writes, fault, 40);
            eprintln!("{backend} {options:?} {fault:?}: {failed} of 40 runs failed an append");
            // At least one write per batch, eight batches.
            assert!(failed >= 8, "{backend}: only {failed} runs hit an append");
        }
    }
}

#[test]
fn a_failed_sync_leaves_nothing_of_its_batch_in_any_file_backend() {
    for (backend, options) in BACKENDS {
        let failed = sweep(backend, options, Target::Syncs, Fault::Io, 30);
        eprintln!("{backend} {options:?}: {failed} of 30 runs failed an append at a sync");
        assert!(failed >= 8, "{backend}: only {failed} runs hit an append");
    }
}

/// A store of `backend` at `path` holding records 0..n, closed again; their ids.
fn filled(backend: &str, path: &Path, options: &[(&str, &str)], n: u64) -> Vec<u64> {
    let store = reopen(config(backend, path, options));
    let all: Vec<u64> = (0..n).collect();
    store
        .append(all.iter().map(|&id| record(id)).collect())
        .unwrap();
    all
}

/// Every file under `dir` but temporary ones a failed rewrite may leave.
fn snapshot_without_temp(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .filter(|(p, _)| !p.to_string_lossy().contains("quire-tmp"))
        .collect()
}

/// The standard policy keeping the newest ten records.
fn keep_newest_ten() -> quire::Retention {
    quire::Retention::single(quire_tests::standard_policy(
        r#"{"max_records":10}"#,
        quire::now(),
    ))
}

#[test]
fn compaction_and_recovery_on_a_failing_disk_leave_the_original_intact() {
    for (backend, options) in BACKENDS {
        let mut aborted = 0;
        for nth in [1, 2, 3, 5, 8] {
            let what = format!("{backend} {options:?}: write #{nth} fails");
            let tmp = tempfile::tempdir().unwrap();
            let path = path_for(backend, tmp.path());
            let all = filled(backend, &path, options, 60);
            let before = snapshot(tmp.path());
            let mut c = config(backend, &path, options);
            c.faults = Some(FaultPlan::fail_nth(nth, Target::Writes, Fault::NoSpace));
            let store = reopen(c);
            let compacted = store.compact(&mut keep_newest_ten(), false, &Silent);
            if compacted.is_ok() {
                // The fault came after the compaction's last write: it is done, whole.
                assert!(store.scan(&Silent).unwrap().healthy(), "{what}");
                continue;
            }
            aborted += 1;
            drop(store);
            // Each unit is either as it was or compacted: nothing torn, nothing twice.
            let reopened = reopen(config(backend, &path, options));
            let kept = ids(&reopened);
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "{what}: {kept:?}");
            assert!(
                kept.ends_with(&all[50..]),
                "{what}: lost a record the policy keeps: {kept:?}"
            );
            let scan = reopened.scan(&Silent).unwrap();
            assert!(scan.healthy(), "{what}: {:?}", scan.anomalies);
            if *backend == "ndjson" {
                // One unit: the file is exactly the original.
                let after = snapshot_without_temp(tmp.path());
                assert_eq!(
                    after, before,
                    "{what}: a failed compaction changed the file"
                );
            }
            // Retried on a healthy disk, it finishes the job.
            reopened
                .compact(&mut keep_newest_ten(), false, &Silent)
                .unwrap();
            assert_eq!(ids(&reopened), &all[50..], "{what}");
        }
        assert!(aborted >= 1, "{backend}: no compaction met the fault");
    }
}

/// Mounts a tmpfs of `kib` KiB at `dir`; `false` where this process may not.
fn mount_tmpfs(dir: &Path, kib: u64) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_real_full_disk_costs_no_acknowledged_record() {
    let outer = tempfile::tempdir().unwrap();
    for (i, (backend, options)) in BACKENDS.iter().enumerate() {
        let dir = outer.path().join(format!("disk-{i}"));
        std::fs::create_dir(&dir).unwrap();
        if !mount_tmpfs(&dir, 96) {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here (needs root); the fault-injection tests still ran"
            );
            return;
        }
        let _mounted = Mounted(dir.clone());
        let what = format!("{backend} {options:?} on a full tmpfs");
        let path = path_for(backend, &dir);
        let store = reopen(config(backend, &path, options));
        let mut acknowledged = Vec::new();
        let mut error = None;
        for batch in 0..10_000u64 {
            let batch_ids: Vec<u64> = (batch * 13..batch * 13 + 13).collect();
            match store.append(batch_ids.iter().map(|&id| record(id)).collect()) {
                Ok(()) => acknowledged.extend(batch_ids),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let message = error.unwrap_or_else(|| panic!("{what}: the disk never filled"));
        assert!(
            message.contains("No space left on device"),
            "{what}: {message}"
        );
        assert!(message.contains("rolled back"), "{what}: {message}");
        assert!(!acknowledged.is_empty(), "{what}");
        assert_eq!(
            ids(&store),
            acknowledged,
            "{what}: not exactly the acknowledged records"
        );
        assert!(store.scan(&Silent).unwrap().healthy(), "{what}");
        // Space comes back: the store goes on where it stopped.
        let grown = Command::new("mount")
            .args(["-o", "remount,size=4m"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(grown.success());
        holds_exactly(backend, &path, options, store, &mut acknowledged, &what);
    }
}

/// The live file of a store, where a torn line goes.
fn live_file(backend: &str, path: &Path) -> PathBuf {
    match backend {
        "ndjson" => path.to_path_buf(),
        _ => quire_tests::files_with_extension(path, &["ndjson"])
            .into_iter()
            .max()
            .expect("a rotated file"),
    }
}

#[test]
fn recovery_on_a_failing_disk_leaves_the_damaged_original_intact() {
    for (backend, options) in &BACKENDS[..2] {
        let mut aborted = 0;
        for nth in [1, 2, 3, 5] {
            let what = format!("{backend} {options:?}: write #{nth} of the repair fails");
            let tmp = tempfile::tempdir().unwrap();
            let path = path_for(backend, tmp.path());
            filled(backend, &path, options, 40);
            // A damaged line in the middle of the live file.
            let live = live_file(backend, &path);
            let mut bytes = std::fs::read(&live).unwrap();
            bytes.extend_from_slice(b"{\"kind\": \"event\", garbage\n");
            bytes.extend_from_slice(format!("{}\n", record(40).json).as_bytes());
            std::fs::write(&live, &bytes).unwrap();
            let before = snapshot(tmp.path());
            let mut c = config(backend, &path, options);
            c.faults = Some(FaultPlan::fail_nth(nth, Target::Writes, Fault::NoSpace));
            let store = reopen(c);
            if store.recover(quire::RecoveryMode::Repair, &Silent).is_ok() {
                continue;
            }
            aborted += 1;
            drop(store);
            let after = snapshot_without_temp(tmp.path());
            assert_eq!(after, before, "{what}: a failed repair changed the store");
            // Retried on a healthy disk, the repair keeps every valid record.
            let store = reopen(config(backend, &path, options));
            store.recover(quire::RecoveryMode::Repair, &Silent).unwrap();
            let expected: Vec<u64> = (0..41).collect();
            assert_eq!(ids(&store), expected, "{what}");
        }
        assert!(aborted >= 1, "{backend}: no repair met the fault");
    }
}
