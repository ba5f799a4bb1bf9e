//! What `quire_bench` and `backends_bench` share: where the data lives, the
//! record template and native baselines, timing loops, child processes that
//! report their peak memory, number formatting and the Markdown table.
//!
//! Each bench declares it with `mod common;` (`benches/common/` is a module
//! directory, not a bench of its own).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quire::plugin::{load_backend, load_policy};
use quire::progress::Silent;
use quire::{
    Batch, Durability, Limits, PluginSource, Policy, Record, Retention, Store, StoreConfig,
};
use serde::Deserialize;

// ---------------------------------------------------------------- setup

/// The cargo target directory (`CARGO_TARGET_DIR`, else the one this bench
/// was built in: `target/release/deps/NAME-HASH`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|t| t.join("CACHEDIR.TAG").exists() || t.file_name().is_some_and(|n| n == "target"))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Whether figure `n` runs: `QUIRE_BENCH_ONLY=1,3` runs only those; unset or
/// empty, every figure runs.
pub fn wanted_figures() -> impl Fn(&str) -> bool {
    let only = std::env::var("QUIRE_BENCH_ONLY").unwrap_or_default();
    move |n: &str| only.is_empty() || only.split(',').any(|w| w.trim() == n)
}

/// The size of the big file or history of the memory figure, in GiB
/// (`QUIRE_BENCH_GIB`, default 1).
pub fn bench_gib() -> f64 {
    std::env::var("QUIRE_BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

/// Compiles (or finds in `cache`) the built-in `backends` and `policies`, so
/// that no figure pays for a compilation.
pub fn warm_cache(cache: &Path, backends: &[&str], policies: &[&str]) {
    for name in backends {
        load_backend(&PluginSource::Builtin((*name).into()), Some(cache)).expect("loading backend");
    }
    for name in policies {
        load_policy(&PluginSource::Builtin((*name).into()), Some(cache)).expect("loading policy");
    }
}

/// A config for the built-in `plugin` at `path`, compile cache in `cache`.
pub fn store_config(
    plugin: &str,
    path: &Path,
    durability: Durability,
    cache: &Path,
) -> StoreConfig {
    // `QUIRE_BENCH_GUESTS=DIR` loads `DIR/quire_NAME.wasm` instead of the
    // built-in: an unstripped build there, with `QUIRE_PERF_MAP=1`, names
    // guest functions in `perf report` (the cache is off for them).
    let (source, cache) = match std::env::var_os("QUIRE_BENCH_GUESTS") {
        Some(dir) => {
            let file = Path::new(&dir).join(format!("quire_{}.wasm", plugin.replace('-', "_")));
            (PluginSource::File(file), None)
        }
        None => (
            PluginSource::Builtin(plugin.into()),
            Some(cache.to_path_buf()),
        ),
    };
    let mut config = StoreConfig::new(source, path);
    config.durability = durability;
    config.cache_dir = cache;
    config
}

/// The built-in policy `name` with its JSON `config`, created at `now`.
pub fn policy(name: &str, config: &str, now: f64, cache: &Path) -> Policy {
    let loaded =
        load_policy(&PluginSource::Builtin(name.into()), Some(cache)).expect("loading policy");
    Policy::create(&loaded, config, now, Limits::default()).expect("creating policy")
}

/// The built-in `standard` policy keeping the newest `keep` records.
pub fn keep_newest(keep: u64, cache: &Path) -> Policy {
    policy(
        "standard",
        &format!(r#"{{"max_records": {keep}}}"#),
        quire::now(),
        cache,
    )
}

/// Compacts `store` under `retention`; returns the counts as a child reports
/// them (`records_before=N records_after=M`).
pub fn compact(store: &Store, mut retention: Retention) -> String {
    let report = store
        .compact(&mut retention, false, &Silent)
        .expect("compaction");
    format!(
        "records_before={} records_after={}",
        report.records_before, report.records_after
    )
}

/// Progress on stderr, stamped with the seconds since the run started.
pub struct Clock(pub Instant);

impl Clock {
    pub fn start() -> Self {
        Clock(Instant::now())
    }

    pub fn say(&self, what: &str) {
        eprintln!("[{:7.1}s] {what}", self.0.elapsed().as_secs_f64());
    }
}

// ---------------------------------------------------------------- data

/// JSON bytes of an actor event from [`event_line`] (the newline comes on top).
pub const LINE_LEN: usize = 168;

/// Papyra-style actor event `i` at `ts`: exactly [`LINE_LEN`] bytes.
pub fn event_line(i: u64, ts: f64) -> String {
    let head = format!(
        r#"{{"kind": "event", "system_id": "local", "actor_address": "local:worker-{}", "event_type": "Tick", "payload": {{"n": {}, "note": ""#,
        i % 32,
        i % 1_000_000
    );
    let tail = format!(r#""}}, "timestamp": {ts:.3}}}"#);
    const NOTE: &[u8] = b"mailbox drained, next tick scheduled, supervisor ok ";
    let pad = LINE_LEN
        .checked_sub(head.len() + tail.len())
        .expect("LINE_LEN fits the template");
    let mut s = String::with_capacity(LINE_LEN);
    s.push_str(&head);
    s.extend((0..pad).map(|k| NOTE[(k + i as usize) % NOTE.len()] as char));
    s.push_str(&tail);
    debug_assert_eq!(s.len(), LINE_LEN);
    s
}

/// Writes lines `line(0..records)` to `path` (through a temporary file,
/// synced, then renamed).
pub fn write_ndjson(path: &Path, records: u64, mut line: impl FnMut(u64) -> String) {
    let temp = path.with_extension("partial");
    let mut out =
        BufWriter::with_capacity(4 << 20, File::create(&temp).expect("creating data file"));
    for i in 0..records {
        out.write_all(line(i).as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();
    fs::rename(&temp, path).unwrap();
}

pub fn records_of(lines: &[String]) -> Vec<Record> {
    lines
        .iter()
        .map(|l| Record::from_json_line(l, 0.0).expect("valid record"))
        .collect()
}

/// `lines` into `buf`, each followed by a newline.
pub fn concat(lines: &[String], buf: &mut Vec<u8>) {
    buf.clear();
    for l in lines {
        buf.extend_from_slice(l.as_bytes());
        buf.push(b'\n');
    }
}

/// The fields every backend lifts from a line, deserialized the same way.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    timestamp: Option<f64>,
    #[serde(borrow)]
    store: Option<Cow<'a, str>>,
    #[serde(borrow)]
    system_id: Option<Cow<'a, str>>,
}

/// Native baseline for scan and replay: every line of an NDJSON file parsed
/// with serde_json; `each(line index, text)` for every valid record.
/// Returns (bytes, valid records).
pub fn native_parse(path: &Path, each: impl FnMut(u64, &str)) -> (u64, u64) {
    native_parse_by(path, is_record, each)
}

/// [`native_parse`] with another check of each line (the same reading).
pub fn native_parse_by(
    path: &Path,
    is_record: impl Fn(&str) -> bool,
    each: impl FnMut(u64, &str),
) -> (u64, u64) {
    let file = File::open(path).expect("opening data file");
    native_parse_from(BufReader::with_capacity(4 << 20, file), is_record, each)
}

/// [`native_parse_by`] over any reader (stdin for the CLI baselines).
pub fn native_parse_from(
    mut reader: impl BufRead,
    is_record: impl Fn(&str) -> bool,
    mut each: impl FnMut(u64, &str),
) -> (u64, u64) {
    let mut buf = String::new();
    let (mut bytes, mut records, mut index) = (0u64, 0u64, 0u64);
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).expect("reading data");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        let text = buf.trim_end_matches(['\n', '\r']);
        if is_record(text) {
            records += 1;
            each(index, text);
        }
        index += 1;
    }
    (bytes, records)
}

/// Whether `text` is a record: an object with a string `kind` and a finite
/// numeric `timestamp` (its store lifted too, as every backend does).
pub fn is_record(text: &str) -> bool {
    let Ok(head) = serde_json::from_str::<Head>(text) else {
        return false;
    };
    let store = head
        .store
        .or(head.system_id)
        .unwrap_or(Cow::Borrowed("default"));
    std::hint::black_box(&store);
    head.kind.is_some() && head.timestamp.is_some_and(f64::is_finite)
}

// ---------------------------------------------------------------- timed loops

/// Appends every batch of `template` (a copy) to `store`, then flushes and
/// closes it. Returns the seconds the appends took (flush not included).
/// Appends every batch of `template` with [`Store::append_batch`], each
/// built from the borrowed records inside the timing (as the native
/// baseline concatenates its lines inside it). Returns the seconds.
pub fn timed_batch_appends(store: Store, template: &[Vec<Record>]) -> f64 {
    let start = Instant::now();
    for batch in template {
        store
            .append_batch(Batch::from(batch.as_slice()))
            .expect("append");
    }
    let secs = start.elapsed().as_secs_f64();
    store.flush().expect("flush");
    secs
}

/// `threads` threads each appending `template` to `store` until `slice` is
/// over, as `append_batch` of borrowed records (as figure 1: the baseline
/// writes prepared lines, so cloning records is not timed on either side).
/// Returns (records appended, seconds).
pub fn durable_appends(
    store: &Store,
    template: &[Record],
    threads: usize,
    slice: Duration,
) -> (u64, f64) {
    let start = Instant::now();
    let appended: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0u64;
                    while start.elapsed() < slice {
                        store.append_batch(Batch::from(template)).expect("append");
                        n += template.len() as u64;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    (appended, start.elapsed().as_secs_f64())
}

/// The durable baseline: `lines` written to `path` with `write_all` +
/// `sync_data` per batch, one thread, for `slice`. Returns records/s; the
/// file is removed.
pub fn native_durable_rate(path: &Path, lines: &[String], slice: Duration) -> f64 {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut buf = Vec::new();
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed() < slice {
        concat(lines, &mut buf);
        file.write_all(&buf).unwrap();
        file.sync_data().unwrap();
        n += lines.len() as u64;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(file);
    let _ = fs::remove_file(path);
    rate
}

// ---------------------------------------------------------------- children

/// The prefix of the result line a child prints on stdout.
const CHILD_TAG: &str = "QUIRE_BENCH_CHILD";

/// The arguments after `--child`, when this process is a child.
pub fn child_args() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let at = args.iter().position(|a| a == "--child")?;
    Some(args[at + 1..].to_vec())
}

/// Ends a child: prints its peak RSS, the seconds since `start` and
/// `detail` (`key=value` words), and exits.
pub fn child_done(start: Instant, detail: &str) -> ! {
    println!(
        "{CHILD_TAG} peak_kib={} secs={:.3} {detail}",
        peak_rss_kib(),
        start.elapsed().as_secs_f64()
    );
    std::process::exit(0)
}

/// What a child reported.
pub struct ChildResult {
    pub peak_kib: u64,
    pub secs: f64,
    fields: BTreeMap<String, String>,
}

impl ChildResult {
    /// A number the child reported as `key=N`.
    pub fn get(&self, key: &str) -> u64 {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("the child reported no `{key}`: {:?}", self.fields))
            .parse()
            .unwrap()
    }
}

/// Runs this bench again as `--child ARGS...` and reads its report.
pub fn run_child(args: &[&str]) -> ChildResult {
    let exe = std::env::current_exe().expect("own path");
    let output = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("running child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(CHILD_TAG)) else {
        panic!("child {args:?} failed ({}): {stdout}", output.status);
    };
    let fields: BTreeMap<String, String> = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ChildResult {
        peak_kib: fields["peak_kib"].parse().unwrap(),
        secs: fields["secs"].parse().unwrap(),
        fields,
    }
}

/// This process's peak resident set (`VmHWM`), in KiB; 0 where unknown.
pub fn peak_rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- figures

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `x` rounded, with thousands separators: 1,234,567.
pub fn group(x: f64) -> String {
    let s = (x.round() as u64).to_string();
    let mut out = String::new();
    for (k, c) in s.chars().enumerate() {
        if k > 0 && (s.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// One row of the result table.
pub struct Row {
    pub figure: String,
    /// The backend measured; empty in a table without a backend column.
    pub backend: String,
    pub quire: String,
    pub baseline: String,
    pub ratio: String,
    pub goal: String,
    /// Whether the goal was met; `None` where the figure has no pass mark.
    pub met: Option<bool>,
}

#[allow(clippy::too_many_arguments)]
pub fn row(
    figure: &str,
    backend: &str,
    quire: String,
    baseline: String,
    ratio: String,
    goal: &str,
    met: Option<bool>,
) -> Row {
    Row {
        figure: figure.into(),
        backend: backend.into(),
        quire,
        baseline,
        ratio,
        goal: goal.into(),
        met,
    }
}

/// How a bench prints its rows as a Markdown table on stdout.
pub struct Table {
    /// Column titles, in the order of [`Row`]'s fields.
    pub columns: &'static [&'static str],
    /// Whether the table has the backend column ([`Row::backend`]).
    pub backend_column: bool,
    /// A figure's title only on the first of its consecutive rows.
    pub merge_figures: bool,
    /// The last column of a row whose figure has no pass mark.
    pub no_mark: &'static str,
}

impl Table {
    pub fn print(&self, rows: &[Row]) {
        println!("| {} |", self.columns.join(" | "));
        println!("|{}", "---|".repeat(self.columns.len()));
        let mut previous = "";
        for r in rows {
            let figure = if self.merge_figures && r.figure == previous {
                ""
            } else {
                r.figure.as_str()
            };
            previous = &r.figure;
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => self.no_mark,
            };
            let mut cells = vec![figure];
            if self.backend_column {
                cells.push(&r.backend);
            }
            cells.extend([&r.quire, &r.baseline, &r.ratio, &r.goal].map(String::as_str));
            cells.push(met);
            println!("| {} |", cells.join(" | "));
        }
    }
}
