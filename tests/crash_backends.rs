//! SIGKILL at random points for the directory backends: rotating (tiny files,
//! so it rotates constantly), segmented json-crc32 and segmented compact.
//!
//! For each backend, one test per operation:
//! - append (with rotations) and checkpoint: every acknowledged record is
//!   there, in order per store, and scan is clean or recover makes it clean;
//! - compaction with a policy that rewrites and drops, and purge with one
//!   that only drops whole units: after the kill and a read-write open each
//!   unit is as before or as after compaction, receipts match the units that
//!   are gone, and finishing the job gives exactly an uninterrupted run's
//!   result;
//! - recovery of a damaged sealed unit: the next recover finishes the job,
//!   exactly as an uninterrupted one, and every valid record remains.
//!
//! `QUIRE_CRASH_ROUNDS` scales the kills per test (default 50) and
//! `QUIRE_CRASH_SEED` replays a run (each test prints its seed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use quire_tests::Rng;
use quire_tests::cli::{Since, expect_code, kill_after, option_args, quire, stderr, stdout};
use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// Kill rounds per test.
fn rounds() -> u64 {
    std::env::var("QUIRE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

/// A backend under test: its name and the options that make it small.
struct Backend {
    name: &'static str,
    options: &'static [&'static str],
}

const ROTATING: Backend = Backend {
    name: "rotating",
    options: &["max-bytes=4096"],
};
const SEGMENTED: Backend = Backend {
    name: "segmented",
    options: &["max-bytes=4096", "bucket=none"],
};
const COMPACT: Backend = Backend {
    name: "segmented",
    options: &["codec=compact", "max-bytes=2048", "bucket=none"],
};

/// Three stores, each with its own kind (so rotating keeps each in its own
/// category directory, as segmented keeps each in its own store directory).
const STORES: [(&str, &str); 3] = [
    ("gps", "event"),
    ("orders", "audit"),
    ("ticks", "dead_letter"),
];

/// `quire SUBCOMMAND --backend B --path DATA -o ... EXTRA...`, run in `root`.
fn command(root: &Path, be: &Backend, sub: &str, data: &str, extra: &[&str]) -> Command {
    let mut cmd = quire(root);
    cmd.args([sub, "--backend", be.name, "--path", data]);
    cmd.args(option_args(be.options));
    cmd.args(extra);
    cmd
}

/// Runs a command with `stdin` to completion.
fn run(root: &Path, be: &Backend, sub: &str, data: &str, extra: &[&str], stdin: &str) -> Output {
    quire_tests::cli::run(command(root, be, sub, data, extra), stdin)
}

/// Runs a command that must succeed.
fn run_ok(root: &Path, be: &Backend, sub: &str, data: &str, extra: &[&str], stdin: &str) -> Output {
    expect_code(
        run(root, be, sub, data, extra, stdin),
        0,
        &format!("quire {sub} {data} {extra:?} failed"),
    )
}

/// Runs `cmd` to completion (it must succeed) and returns how long it took.
fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    took
}

/// A 32-hex-digit pad that deflate cannot shrink much (splitmix64 of `id`).
fn pad(id: u64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    format!("{:016x}{:016x}", mix(id), mix(!id))
}

/// Record `id` of `round`: store `id % 3`, at `timestamp`.
fn line(round: u64, id: u64, timestamp: f64) -> String {
    let (store, kind) = STORES[(id % 3) as usize];
    format!(
        "{{\"kind\":\"{kind}\",\"store\":\"{store}\",\"round\":{round},\"id\":{id},\"pad\":\"{}\",\"timestamp\":{timestamp}}}\n",
        pad(id)
    )
}

/// A record read back with where it is stored.
#[derive(Debug, Clone)]
struct Located {
    unit: String,
    offset: u64,
    store: String,
    round: u64,
    id: u64,
}

impl Located {
    fn key(&self) -> (u64, u64) {
        (self.round, self.id)
    }
}

/// Every record, in read order, with its unit and offset.
fn read(root: &Path, be: &Backend, data: &str) -> Vec<Located> {
    let out = run_ok(root, be, "read", data, &["--with-location"], "");
    stdout(&out)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let r = &v["record"];
            Located {
                unit: v["unit"].as_str().unwrap().to_string(),
                offset: v["offset"].as_u64().unwrap(),
                store: r["store"].as_str().unwrap().to_string(),
                round: r["round"].as_u64().unwrap(),
                id: r["id"].as_u64().unwrap(),
            }
        })
        .collect()
}

/// Record keys per unit.
fn by_unit(records: &[Located]) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut units: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for r in records {
        units.entry(r.unit.clone()).or_default().push(r.key());
    }
    for keys in units.values_mut() {
        keys.sort();
    }
    units
}

/// Units as `inspect` lists them: id → sealed.
fn units(root: &Path, be: &Backend, data: &str) -> BTreeMap<String, bool> {
    let out = run_ok(root, be, "inspect", data, &["--json"], "");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["sealed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Receipts as (kind, unit), sorted.
fn receipts(root: &Path, be: &Backend, data: &str) -> Vec<(String, String)> {
    let out = run_ok(root, be, "receipts", data, &["--json"], "");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["unit"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Quarantine receipts as (unit, copy), in the order they were written.
fn quarantine_copies(root: &Path, be: &Backend, data: &str) -> Vec<(String, PathBuf)> {
    let out = run_ok(
        root,
        be,
        "receipts",
        data,
        &["--json", "--kind", "quarantined"],
        "",
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let copy = r["details"]["copy"]
                .as_str()
                .unwrap_or_else(|| panic!("a copy: {r}"));
            (r["unit"].as_str().unwrap().to_string(), PathBuf::from(copy))
        })
        .collect()
}

/// `scan --json`: exit code and the anomalies, as JSON text.
fn scan(root: &Path, be: &Backend, data: &str) -> (i32, Vec<String>) {
    let out = run(root, be, "scan", data, &["--json"], "");
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 2, "scan failed: {}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let anomalies = report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    (code, anomalies)
}

/// Scan; when it is not clean, `recover` must exit 0, leave a clean scan and
/// keep every record that was readable. Returns whether recovery was needed.
fn clean_or_repairable(root: &Path, be: &Backend, data: &str, context: &str) -> bool {
    let (code, anomalies) = scan(root, be, data);
    if code == 0 {
        return false;
    }
    let before: BTreeSet<(u64, u64)> = read(root, be, data).iter().map(Located::key).collect();
    let fixed = run(root, be, "recover", data, &[], "");
    assert_eq!(
        fixed.status.code(),
        Some(0),
        "{context}: recover after {anomalies:?}: {}{}",
        stdout(&fixed),
        stderr(&fixed)
    );
    let (code, left) = scan(root, be, data);
    assert_eq!(code, 0, "{context}: anomalies left after recover: {left:?}");
    let after: BTreeSet<(u64, u64)> = read(root, be, data).iter().map(Located::key).collect();
    assert_eq!(
        after, before,
        "{context}: recover changed the readable records (it found {anomalies:?})"
    );
    true
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Drops every `*_at` key (times of sealing, rewriting, writing).
fn without_times(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.ends_with("_at"));
            map.values_mut().for_each(without_times);
        }
        Value::Array(items) => items.iter_mut().for_each(without_times),
        _ => {}
    }
}

/// The data directory as bytes: every file but the writer lock, receipts
/// (compared through `receipts`) and segmented's `high-water` marks (a run
/// that finishes a killed one may raise one when it drops the leftovers; a
/// killed write of one leaves `high-water.quire-tmp`, which nothing cleans
/// up: see `segmented_leftover_high_water_temp_is_an_orphan`), JSON files
/// without their times.
fn data_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    quire_tests::snapshot(dir)
        .into_iter()
        .filter(|(path, _)| {
            let name = path.file_name().unwrap().to_string_lossy();
            !path.components().any(|c| c.as_os_str() == "receipts")
                && !name.ends_with("quire-lock")
                && name != "high-water"
                && name != "high-water.quire-tmp"
        })
        .map(|(path, bytes)| {
            let bytes = if path.extension().is_some_and(|e| e == "json") {
                let mut v: Value = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                without_times(&mut v);
                v.to_string().into_bytes()
            } else {
                bytes
            };
            (path, bytes)
        })
        .collect()
}

/// Asserts that `a` and `b` hold the same data files, naming the differences.
fn assert_same_files(a: &Path, b: &Path, context: &str) {
    let (fa, fb) = (data_files(a), data_files(b));
    let only = |x: &BTreeMap<PathBuf, Vec<u8>>, y: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<PathBuf> {
        x.keys().filter(|k| !y.contains_key(*k)).cloned().collect()
    };
    let differ: Vec<&PathBuf> = fa
        .iter()
        .filter(|(p, b)| fb.get(*p).is_some_and(|o| o != *b))
        .map(|(p, _)| p)
        .collect();
    assert!(
        only(&fa, &fb).is_empty() && only(&fb, &fa).is_empty() && differ.is_empty(),
        "{context}: only in {}: {:?}; only in {}: {:?}; different: {differ:?}",
        a.display(),
        only(&fa, &fb),
        b.display(),
        only(&fb, &fa)
    );
}

/// Everything a finished operation leaves, to compare runs by.
#[derive(Debug, PartialEq)]
struct State {
    units: BTreeMap<String, bool>,
    records: BTreeMap<String, Vec<(u64, u64)>>,
    receipts: Vec<(String, String)>,
}

impl State {
    /// The records of `unit`, if it exists (a unit may exist and hold none).
    fn records_of(&self, unit: &str) -> Option<&[(u64, u64)]> {
        self.units
            .contains_key(unit)
            .then(|| self.records.get(unit).map_or(&[][..], |r| &r[..]))
    }
}

/// Asserts `got == want`, naming the units and receipts that differ.
fn assert_same_state(got: &State, want: &State, context: &str) {
    let keys: BTreeSet<&String> = got.units.keys().chain(want.units.keys()).collect();
    let units: Vec<String> = keys
        .iter()
        .filter(|u| {
            got.units.get(**u) != want.units.get(**u)
                || got.records.get(**u) != want.records.get(**u)
        })
        .map(|u| {
            let n = |s: &State| s.records.get(*u).map_or(0, Vec::len);
            format!(
                "{u}: sealed {:?} vs {:?}, {} vs {} records",
                got.units.get(*u),
                want.units.get(*u),
                n(got),
                n(want)
            )
        })
        .collect();
    let extra: Vec<_> = got
        .receipts
        .iter()
        .filter(|r| !want.receipts.contains(r))
        .collect();
    let missing: Vec<_> = want
        .receipts
        .iter()
        .filter(|r| !got.receipts.contains(r))
        .collect();
    assert!(
        got == want,
        "{context}: units differ: {units:?}; receipts: {} vs {}, extra {extra:?}, missing {missing:?}",
        got.receipts.len(),
        want.receipts.len()
    );
}

/// Units (`inspect`), records per unit (`read`) and receipts of `data`.
fn state(root: &Path, be: &Backend, data: &str) -> State {
    State {
        units: units(root, be, data),
        records: by_unit(&read(root, be, data)),
        receipts: receipts(root, be, data),
    }
}

// ---------------------------------------------------------------- append and checkpoint

/// Appends an endless stream of `round`'s records, SIGKILLed after `delay`;
/// returns the last acknowledged count.
fn killed_append(
    root: &Path,
    be: &Backend,
    round: u64,
    batch: u64,
    since: Since,
    delay: Duration,
) -> u64 {
    let cmd = command(
        root,
        be,
        "append",
        "data",
        &["--ack", "--batch-size", &batch.to_string()],
    );
    let lines = (0..).map(move |id| {
        let timestamp = 1_600_000_000.0 + (round * 1_000_000 + id) as f64;
        line(round, id, timestamp)
    });
    quire_tests::cli::killed_append(cmd, lines, since, delay)
}

/// Every acknowledged record of every round is there; per round and store the
/// records are a gap-free prefix; per store, read order is append order.
fn check_acked(records: &[Located], acked: &[u64], context: &str) {
    let mut seen = BTreeSet::new();
    let mut last_per_store: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut per_round_store: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    for r in records {
        assert!(
            seen.insert(r.key()),
            "{context}: record {:?} twice",
            r.key()
        );
        if let Some(last) = last_per_store.insert(&r.store, r.key()) {
            assert!(
                last < r.key(),
                "{context}: store {} reads {last:?} before {:?}",
                r.store,
                r.key()
            );
        }
        assert_eq!(r.store, STORES[(r.id % 3) as usize].0, "{context}: {r:?}");
        per_round_store
            .entry((r.round, r.id % 3))
            .or_default()
            .push(r.id);
    }
    for (round, &acked) in acked.iter().enumerate() {
        for store in 0..3u64 {
            let got = per_round_store
                .remove(&(round as u64, store))
                .unwrap_or_default();
            let prefix: Vec<u64> = (0..got.len() as u64).map(|i| store + 3 * i).collect();
            assert_eq!(
                got, prefix,
                "{context}: round {round} store {store}: not a prefix of what was sent"
            );
            let want = (acked + 2 - store) / 3; // ids below `acked` in this store
            assert!(
                got.len() as u64 >= want,
                "{context}: round {round} store {store}: {want} acknowledged, {} found",
                got.len()
            );
        }
    }
    assert!(
        per_round_store.is_empty(),
        "{context}: records of unknown rounds: {per_round_store:?}"
    );
}

fn append_and_checkpoint_kills(label: &str, be: &Backend) {
    let mut rng = Rng::seeded(label);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut acked = Vec::new();
    let (mut repaired, mut checkpoint_kills, mut checkpoints_finished) = (0, 0, 0);
    let mut checkpoint_time = None;
    // Create the store once, unkilled: a kill before the first open would
    // leave no data directory to read (and, on a cold compile cache, the
    // first rounds would only ever kill the compiler).
    run_ok(root, be, "append", "data", &[], "");
    for round in 0..rounds() {
        let batch = 1 + rng.below(24);
        // A quarter of the kills may land before anything is acknowledged;
        // the rest come after the first acknowledgement, however fast the
        // machine is.
        let (since, delay) = Since::dealt(
            round,
            4,
            Duration::from_millis(15),
            Duration::from_millis(120),
            &mut rng,
        );
        acked.push(killed_append(root, be, round, batch, since, delay));
        let context = format!("{label} round {round} (append killed, batch {batch})");
        check_acked(&read(root, be, "data"), &acked, &context);
        repaired += clean_or_repairable(root, be, "data", &context) as u32;
        check_acked(&read(root, be, "data"), &acked, &context);

        // A checkpoint, killed at a random point of its measured duration.
        if round % 2 == 1 {
            let Some(whole) = checkpoint_time else {
                checkpoint_time = Some(timed(command(root, be, "checkpoint", "data", &[])));
                continue;
            };
            let delay = rng.fraction_of(whole);
            checkpoints_finished +=
                kill_after(command(root, be, "checkpoint", "data", &[]), delay) as u32;
            checkpoint_kills += 1;
            let context =
                format!("{label} round {round} (checkpoint killed after {delay:?} of {whole:?})");
            check_acked(&read(root, be, "data"), &acked, &context);
            repaired += clean_or_repairable(root, be, "data", &context) as u32;
            check_acked(&read(root, be, "data"), &acked, &context);
        }
    }
    let sealed = units(root, be, "data").values().filter(|s| **s).count();
    let total: usize = read(root, be, "data").len();
    eprintln!(
        "{label}: {} append kills ({} acknowledged, {total} records in {sealed} sealed units), \
         {checkpoint_kills} checkpoint kills ({checkpoints_finished} finished first), {repaired} needed recover",
        acked.len(),
        acked.iter().sum::<u64>()
    );
    assert!(
        acked.iter().filter(|&&a| a > 0).count() as u64 > rounds() / 2,
        "most rounds acknowledged something: {acked:?}"
    );
    assert!(
        sealed as u64 > rounds() / 5,
        "the appends crossed many rotations: {sealed} sealed units"
    );
}

#[test]
fn rotating_killed_appends_and_checkpoints_keep_every_acked_record() {
    append_and_checkpoint_kills("rotating append", &ROTATING);
}

#[test]
fn segmented_killed_appends_and_checkpoints_keep_every_acked_record() {
    append_and_checkpoint_kills("segmented append", &SEGMENTED);
}

#[test]
fn compact_killed_appends_and_checkpoints_keep_every_acked_record() {
    append_and_checkpoint_kills("compact append", &COMPACT);
}

// ---------------------------------------------------------------- compaction and purge

const DAY: f64 = 86_400.0;

/// A template directory `template` under `root`: `n` old records (20 to 10
/// days ago), a checkpoint, then `n` young ones (the last two days), so no
/// unit straddles a 7-day cutoff.
fn write_template(root: &Path, be: &Backend, n: u64) {
    let now = quire::now();
    let old: String = (0..n)
        .map(|id| {
            line(
                0,
                id,
                now - 20.0 * DAY + id as f64 * (10.0 * DAY / n as f64),
            )
        })
        .collect();
    let young: String = (0..n)
        .map(|id| line(1, id, now - 2.0 * DAY + id as f64 * (DAY / n as f64)))
        .collect();
    run_ok(
        root,
        be,
        "append",
        "template",
        &["--batch-size", "64"],
        &old,
    );
    run_ok(root, be, "checkpoint", "template", &[], "");
    run_ok(
        root,
        be,
        "append",
        "template",
        &["--batch-size", "64"],
        &young,
    );
}

/// After a killed compaction and a read-write open: each unit holds what
/// it held before or what the uninterrupted run left; receipts name exactly
/// the units that are gone.
fn check_interrupted(before: &State, after: &State, now: &State, context: &str) {
    let mut seen = BTreeSet::new();
    for unit in now.records.keys() {
        assert!(
            now.units.contains_key(unit),
            "{context}: records in {unit}, which is no unit"
        );
    }
    for keys in now.records.values() {
        for key in keys {
            assert!(seen.insert(*key), "{context}: record {key:?} twice");
        }
    }
    for keys in after.records.values() {
        for key in keys {
            assert!(
                seen.contains(key),
                "{context}: record {key:?}, which compaction keeps, is gone"
            );
        }
    }
    for unit in now.units.keys() {
        let got = now.records_of(unit);
        let (old, new) = (before.records_of(unit), after.records_of(unit));
        assert!(
            old.is_some() || new.is_some(),
            "{context}: unit {unit} is new"
        );
        assert!(
            got == old || got == new,
            "{context}: unit {unit} holds {:?} records, neither the {:?} before nor the {:?} after compaction",
            got.map(|r| r.len()),
            old.map(|r| r.len()),
            new.map(|r| r.len())
        );
    }
    let receipted: BTreeSet<&String> = now
        .receipts
        .iter()
        .filter(|(k, _)| k == "purged")
        .map(|(_, u)| u)
        .collect();
    for unit in before.units.keys() {
        if !now.units.contains_key(unit) {
            assert!(
                receipted.contains(unit),
                "{context}: unit {unit} is gone without a purge receipt"
            );
            assert!(
                !after.units.contains_key(unit),
                "{context}: unit {unit} is gone but compaction keeps it"
            );
        }
    }
    for unit in &receipted {
        assert!(
            !now.units.contains_key(*unit),
            "{context}: unit {unit} has a purge receipt but is still there after a read-write open"
        );
    }
}

/// What a policy keeps of one store of the template.
enum Keeps {
    /// The young records (the last two days), none of the old.
    Young,
    /// The newest N records.
    Newest(usize),
}

/// The records of the template (`n` per round) that `rules` say a policy
/// keeps, checked against what the uninterrupted run kept.
fn check_policy(n: u64, kept: &State, rules: &[(&str, Keeps)], label: &str) {
    for (store, rule) in rules {
        let s = STORES.iter().position(|(name, _)| name == store).unwrap() as u64;
        let got: BTreeSet<(u64, u64)> = kept
            .records
            .values()
            .flatten()
            .filter(|(_, id)| id % 3 == s)
            .copied()
            .collect();
        let young: Vec<(u64, u64)> = (0..n).filter(|id| id % 3 == s).map(|id| (1, id)).collect();
        let want: BTreeSet<(u64, u64)> = match rule {
            Keeps::Young => young.into_iter().collect(),
            Keeps::Newest(k) => young[young.len() - k..].iter().copied().collect(),
        };
        assert_eq!(got, want, "{label}: what the policy keeps of store {store}");
    }
}

/// Kills `compact POLICY` at uniformly random points of its measured
/// duration, `rounds()` times, each on a fresh copy of the template.
fn compaction_kills(
    label: &str,
    be: &Backend,
    records: u64,
    policy: &[&str],
    keeps: &[(&str, Keeps)],
    only_drops: bool,
) {
    let mut rng = Rng::seeded(label);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_template(root, be, records);
    let before = state(root, be, "template");

    // The uninterrupted run, timed.
    copy_dir(&root.join("template"), &root.join("reference"));
    // A dry run first compiles the policy components into the cache, so the
    // timing below is the compaction's, not the compiler's.
    let mut dry_run = policy.to_vec();
    dry_run.push("--dry-run");
    run_ok(root, be, "compact", "reference", &dry_run, "");
    let mut whole = timed(command(root, be, "compact", "reference", policy));
    let after = state(root, be, "reference");
    check_policy(records, &after, keeps, label);
    let dropped = before
        .units
        .keys()
        .filter(|u| !after.units.contains_key(*u))
        .count();
    let rewritten = before
        .records
        .iter()
        .filter(|(u, keys)| after.records.get(*u).is_some_and(|k| k != *keys))
        .count();
    assert!(
        dropped > 1,
        "{label}: the policy drops units ({dropped} dropped)"
    );
    if only_drops {
        assert_eq!(rewritten, 0, "{label}: a purge policy rewrites no unit");
    } else {
        assert!(rewritten > 0, "{label}: the policy rewrites units");
    }
    assert_eq!(
        after.receipts.iter().filter(|(k, _)| k == "purged").count(),
        dropped,
        "{label}: one purge receipt per dropped unit"
    );

    let (mut interrupted, mut repaired) = (0, 0);
    for round in 0..rounds() {
        copy_dir(&root.join("template"), &root.join("work"));
        let delay = rng.fraction_of(whole);
        let context = format!("{label} round {round} (killed after {delay:?} of {whole:?})");
        let finished = kill_after(command(root, be, "compact", "work", policy), delay);
        interrupted += !finished as u32;
        if finished {
            // The timed run was slow (a stalled sync, a busy machine): a
            // compaction takes no longer than this one did, so later kills
            // are drawn from that instead.
            whole = whole.min(delay);
        }

        // A read-write open finishes what the open is meant to finish.
        run_ok(root, be, "append", "work", &[], "");
        repaired += clean_or_repairable(root, be, "work", &context) as u32;
        check_interrupted(&before, &after, &state(root, be, "work"), &context);

        // Finishing the job gives exactly the uninterrupted result.
        run_ok(root, be, "compact", "work", policy, "");
        let (code, left) = scan(root, be, "work");
        assert_eq!(
            code, 0,
            "{context}: anomalies after the second compaction: {left:?}"
        );
        assert_same_state(
            &state(root, be, "work"),
            &after,
            &format!("{context}: finished compaction differs"),
        );
        assert_same_files(&root.join("work"), &root.join("reference"), &context);
    }
    eprintln!(
        "{label}: {} kills over {whole:?} ({interrupted} interrupted it, {repaired} needed recover); \
         the policy drops {dropped} of {} units and rewrites {rewritten}",
        rounds(),
        before.units.len()
    );
    assert!(
        interrupted as u64 > rounds() / 4,
        "{label}: only {interrupted} kills interrupted compaction"
    );
}

/// Rewrites and drops: the newest few `orders`, `gps` ephemeral (sealed
/// units but the newest dropped) and `ticks` a 7-day window.
const REWRITE_AND_DROP: &[&str] = &[
    "--max-records",
    "250",
    "--retain",
    "gps=ephemeral",
    "--retain",
    "ticks=rolling-window:7d",
];
const REWRITE_AND_DROP_KEEPS: &[(&str, Keeps)] =
    &[("orders", Keeps::Newest(250)), ("ticks", Keeps::Young)];

#[test]
fn rotating_killed_compactions_leave_each_unit_before_or_after() {
    compaction_kills(
        "rotating compact",
        &ROTATING,
        1000,
        REWRITE_AND_DROP,
        REWRITE_AND_DROP_KEEPS,
        false,
    );
}

#[test]
fn segmented_killed_compactions_leave_each_unit_before_or_after() {
    compaction_kills(
        "segmented compact",
        &SEGMENTED,
        1000,
        REWRITE_AND_DROP,
        REWRITE_AND_DROP_KEEPS,
        false,
    );
}

#[test]
fn compact_killed_compactions_leave_each_unit_before_or_after() {
    compaction_kills(
        "compact compact",
        &COMPACT,
        1000,
        REWRITE_AND_DROP,
        REWRITE_AND_DROP_KEEPS,
        false,
    );
}

/// Drops whole units only: ephemeral and rolling-window per store. Rotating
/// units hold no single store (the host then filters them record by
/// record), so rotating purges through the standard age limit, which drops
/// sealed units wholly older than the cutoff.
const PURGE_PER_STORE: &[&str] = &[
    "--retain",
    "gps=ephemeral:2",
    "--retain",
    "orders=rolling-window:7d",
    "--retain",
    "ticks=rolling-window:7d",
];
const PURGE_PER_STORE_KEEPS: &[(&str, Keeps)] =
    &[("orders", Keeps::Young), ("ticks", Keeps::Young)];
const PURGE_BY_AGE: &[&str] = &["--max-age", "604800"];
const PURGE_BY_AGE_KEEPS: &[(&str, Keeps)] = &[
    ("gps", Keeps::Young),
    ("orders", Keeps::Young),
    ("ticks", Keeps::Young),
];

#[test]
fn rotating_killed_purges_keep_units_and_receipts_consistent() {
    compaction_kills(
        "rotating purge",
        &ROTATING,
        1000,
        PURGE_BY_AGE,
        PURGE_BY_AGE_KEEPS,
        true,
    );
}

#[test]
fn segmented_killed_purges_keep_units_and_receipts_consistent() {
    compaction_kills(
        "segmented purge",
        &SEGMENTED,
        1000,
        PURGE_PER_STORE,
        PURGE_PER_STORE_KEEPS,
        true,
    );
}

#[test]
fn compact_killed_purges_keep_units_and_receipts_consistent() {
    compaction_kills(
        "compact purge",
        &COMPACT,
        1000,
        PURGE_PER_STORE,
        PURGE_PER_STORE_KEEPS,
        true,
    );
}

// ---------------------------------------------------------------- recovery

/// Damage to one sealed unit's file.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Every bit of the byte at this offset inverted.
    Flip(u64),
    /// Cut at this length.
    Truncate(u64),
    /// Garbage appended after the last record.
    Garbage,
}

/// Applies `damage` to the file of `unit` under `data`.
fn damage(data: &Path, unit: &str, damage: Damage) {
    let path = data.join(unit);
    let mut bytes = std::fs::read(&path).unwrap();
    match damage {
        Damage::Flip(at) => bytes[at as usize] ^= 0xff,
        Damage::Truncate(len) => bytes.truncate(len as usize),
        Damage::Garbage => bytes.extend_from_slice(b"\xff\xfe{\"kind\":garbage\x00\x01\x02"),
    }
    std::fs::write(&path, bytes).unwrap();
}

/// The records of `unit` (a file of `len` bytes, records at `offsets`,
/// one or more per frame or line) that no damage touched, and so must survive
/// a repair. After a flipped byte, the frames behind it survive too, except
/// in compact segments, where the rest of the deflate stream depends on the
/// damaged frame; in NDJSON a flipped newline also spoils the next line.
fn untouched(
    records: &[Located],
    len: u64,
    damage: Damage,
    compact: bool,
    lines: bool,
) -> BTreeSet<(u64, u64)> {
    let starts: BTreeSet<u64> = records.iter().map(|r| r.offset).collect();
    let end_of = |start: u64| starts.range(start + 1..).next().copied().unwrap_or(len);
    records
        .iter()
        .filter(|r| {
            let (start, end) = (r.offset, end_of(r.offset));
            match damage {
                Damage::Garbage => true,
                Damage::Truncate(cut) => end <= cut,
                Damage::Flip(at) => {
                    let spoiled_newline = lines && start > 0 && at == start - 1;
                    end <= at || (!compact && start > at && !spoiled_newline)
                }
            }
        })
        .map(Located::key)
        .collect()
}

fn recover_args(quarantine: Option<&str>) -> Vec<&str> {
    match quarantine {
        Some(dir) => vec!["--mode", "quarantine", "--quarantine-dir", dir],
        None => vec!["--mode", "repair"],
    }
}

/// Every quarantine receipt names a copy that exists, and one copy of
/// `target` holds exactly its damaged bytes. (A run that finishes a killed
/// one may copy `target` again: as it finds it, perhaps already repaired but
/// not yet recorded as such.)
fn check_copies(
    root: &Path,
    be: &Backend,
    data: &str,
    target: &str,
    damaged: &[u8],
    context: &str,
) {
    let mut originals = 0;
    let mut copies = 0;
    for (unit, copy) in quarantine_copies(root, be, data) {
        let bytes = std::fs::read(&copy)
            .unwrap_or_else(|e| panic!("{context}: copy {}: {e}", copy.display()));
        if unit == target {
            copies += 1;
            originals += (bytes == damaged) as u32;
        }
    }
    assert!(
        copies == 0 || originals > 0,
        "{context}: no copy of {target} is the damaged original"
    );
}

fn recovery_kills(label: &str, be: &Backend, records: u64) {
    let mut rng = Rng::seeded(label);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_template(root, be, records);
    let template = read(root, be, "template");
    let before = state(root, be, "template");
    let sealed: Vec<&String> = before
        .units
        .iter()
        .filter(|(_, s)| **s)
        .map(|(u, _)| u)
        .collect();
    assert!(
        sealed.len() > 4,
        "{label}: sealed units to damage: {sealed:?}"
    );
    let compact = be.options.contains(&"codec=compact");
    let lines = be.name == "rotating";

    let (mut interrupted, mut lost_records, mut extra_receipts) = (0, 0, 0);
    for round in 0..rounds() {
        // Damage one sealed unit, somewhere among its records.
        let target = sealed[rng.below(sealed.len() as u64) as usize].clone();
        let in_unit: Vec<Located> = template
            .iter()
            .filter(|r| r.unit == target)
            .cloned()
            .collect();
        let first = in_unit.iter().map(|r| r.offset).min().unwrap();
        let len = std::fs::metadata(root.join("template").join(&target))
            .unwrap()
            .len();
        let hurt = match rng.below(3) {
            0 => Damage::Flip(first + rng.below(len - first)),
            1 => Damage::Truncate(first + 1 + rng.below(len - first - 1)),
            _ => Damage::Garbage,
        };
        copy_dir(&root.join("template"), &root.join("damaged"));
        damage(&root.join("damaged"), &target, hurt);
        let damaged_bytes = std::fs::read(root.join("damaged").join(&target)).unwrap();
        let quarantine = rng.below(2) == 0;
        let context = format!(
            "{label} round {round}: {target} {hurt:?} ({len} bytes), {}",
            if quarantine { "quarantine" } else { "repair" }
        );
        let (code, _) = scan(root, be, "damaged");
        assert_eq!(code, 2, "{context}: scan finds the damage");

        // The uninterrupted recovery, timed; it keeps every untouched record.
        copy_dir(&root.join("damaged"), &root.join("reference"));
        let _ = std::fs::remove_dir_all(root.join("q-reference"));
        let args = recover_args(quarantine.then_some("q-reference"));
        let whole = timed(command(root, be, "recover", "reference", &args));
        let (code, left) = scan(root, be, "reference");
        assert_eq!(code, 0, "{context}: anomalies after recover: {left:?}");
        let after = state(root, be, "reference");
        for (u, keys) in &before.records {
            let kept: BTreeSet<(u64, u64)> = after
                .records
                .get(u)
                .into_iter()
                .flatten()
                .copied()
                .collect();
            if *u == target {
                let must = untouched(&in_unit, len, hurt, compact, lines);
                assert!(
                    must.is_subset(&kept),
                    "{context}: lost {:?}",
                    must.difference(&kept).collect::<Vec<_>>()
                );
                let all: BTreeSet<(u64, u64)> = keys.iter().copied().collect();
                assert!(
                    kept.is_subset(&all),
                    "{context}: records that were never written"
                );
                lost_records += all.len() - kept.len();
            } else {
                assert_eq!(
                    kept,
                    keys.iter().copied().collect(),
                    "{context}: undamaged unit {u} changed"
                );
            }
        }
        let want: Vec<(String, String)> = match quarantine {
            true => vec![("quarantined".into(), target.clone())],
            false => vec![],
        };
        assert_eq!(
            after.receipts, want,
            "{context}: receipts of the uninterrupted run"
        );
        check_copies(root, be, "reference", &target, &damaged_bytes, &context);
        let readable: BTreeSet<(u64, u64)> = after.records.values().flatten().copied().collect();

        // Killed at a random point: every valid record stays readable.
        copy_dir(&root.join("damaged"), &root.join("work"));
        let _ = std::fs::remove_dir_all(root.join("q-work"));
        let args = recover_args(quarantine.then_some("q-work"));
        let delay = rng.fraction_of(whole);
        let context = format!("{context}, killed after {delay:?} of {whole:?}");
        interrupted += !kill_after(command(root, be, "recover", "work", &args), delay) as u32;
        let now: Vec<(u64, u64)> = read(root, be, "work").iter().map(Located::key).collect();
        let now_set: BTreeSet<(u64, u64)> = now.iter().copied().collect();
        assert_eq!(now.len(), now_set.len(), "{context}: records twice");
        assert!(
            readable.is_subset(&now_set),
            "{context}: unreadable after the kill: {:?}",
            readable.difference(&now_set).collect::<Vec<_>>()
        );

        // The next recover finishes the job: the data exactly as the
        // uninterrupted run left it, every receipt that run wrote.
        run_ok(root, be, "recover", "work", &args, "");
        let (code, left) = scan(root, be, "work");
        assert_eq!(
            code, 0,
            "{context}: anomalies after the second recover: {left:?}"
        );
        let mut now = state(root, be, "work");
        assert_same_files(&root.join("work"), &root.join("reference"), &context);
        for receipt in &after.receipts {
            let at = now.receipts.iter().position(|r| r == receipt);
            let at = at.unwrap_or_else(|| panic!("{context}: receipt {receipt:?} missing"));
            now.receipts.remove(at);
        }
        // A killed quarantine run may already have copied the unit aside, or
        // left temporary files; the next run quarantines them (again), each
        // with a receipt whose copy is there, whole.
        for (kind, unit) in now.receipts.drain(..) {
            assert!(
                quarantine
                    && kind == "quarantined"
                    && (unit == target || unit.ends_with(".quire-tmp")),
                "{context}: unexpected receipt {kind} {unit}"
            );
            extra_receipts += 1;
        }
        check_copies(root, be, "work", &target, &damaged_bytes, &context);
        now.receipts = after.receipts.clone();
        assert_same_state(
            &now,
            &after,
            &format!("{context}: finished recovery differs"),
        );
    }
    eprintln!(
        "{label}: {} kills ({interrupted} interrupted recover, {extra_receipts} extra quarantine receipts); \
         the damage cost {lost_records} records in all",
        rounds()
    );
    assert!(
        interrupted as u64 > rounds() / 4,
        "{label}: only {interrupted} kills interrupted recovery"
    );
}

#[test]
fn rotating_killed_recoveries_finish_on_the_next_run() {
    recovery_kills("rotating recover", &ROTATING, 600);
}

#[test]
fn segmented_killed_recoveries_finish_on_the_next_run() {
    recovery_kills("segmented recover", &SEGMENTED, 600);
}

#[test]
fn compact_killed_recoveries_finish_on_the_next_run() {
    recovery_kills("compact recover", &COMPACT, 600);
}

// ---------------------------------------------------------------- found by the kills above

/// A compaction or recovery killed while it raises a store's `high-water`
/// mark (an atomic write: temp file, fsync, rename) leaves
/// `wal/store=S/high-water.quire-tmp`. Like every other leftover temporary
/// file it should be an ORPHANED_FILE that recover removes; scan calls the
/// directory healthy instead and the file stays forever.
#[test]
fn segmented_leftover_high_water_temp_is_an_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let records: String = (0..30)
        .map(|id| line(0, id, 1_700_000_000.0 + id as f64))
        .collect();
    run_ok(root, &SEGMENTED, "append", "data", &[], &records);
    let leftover = root.join("data/wal/store=gps/high-water.quire-tmp");
    std::fs::write(&leftover, b"1").unwrap();

    let out = run(root, &SEGMENTED, "scan", "data", &["--json"], "");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "scan reports the leftover: {report}"
    );
    let anomalies = report["anomalies"].as_array().unwrap();
    assert!(
        anomalies.iter().any(|a| a["kind"] == "ORPHANED_FILE"
            && a["unit"]
                .as_str()
                .is_some_and(|u| u.ends_with("high-water.quire-tmp"))),
        "{report}"
    );
    run_ok(root, &SEGMENTED, "recover", "data", &[], "");
    assert!(!leftover.exists(), "recover removes the leftover");
    assert_eq!(read(root, &SEGMENTED, "data").len(), 30);
}
