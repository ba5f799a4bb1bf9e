//! The backends side by side: ndjson, rotating, segmented (json-crc32) and
//! segmented (compact), each figure next to a native baseline measured in the
//! same run. It prints a Markdown table on stdout (progress goes to stderr)
//! and never asserts timings; it does check that every run stored and read
//! back the records it should.
//!
//! ```text
//! cargo bench --bench backends_bench                       # 1 GiB histories for figure 4
//! QUIRE_BENCH_GIB=0.05 cargo bench --bench backends_bench  # quick run
//! QUIRE_BENCH_ONLY=1,3 cargo bench --bench backends_bench  # only those figures
//! ```
//!
//! Figures:
//! 1. appends/s and bytes per record, Durability::Batch, batches of 1024, on
//!    Papyra-style actor events and on a GPS stream (vs a BufWriter loop),
//!    with compact also at `compress-level=6` next to its default 1;
//! 2. durable appends, Durability::PerWrite, 4 threads (vs write + fdatasync);
//! 3. replay records/s and scan MB/s (vs native serde_json parsing), with
//!    the segmented replay's experiments: the plugin built to check nothing
//!    and built to check with serde_json only, and the native program with
//!    quire's check and with none;
//! 4. peak memory (VmHWM of a child process) of replay and compaction over a
//!    big history for rotating and segmented.
//!
//! Data lives in `target/bench-data/backends/`. Histories built through a
//! backend are reused between runs; their names carry a hash of the backend
//! component and its options, so a changed backend gets a fresh history.

mod common;
mod experiments;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    Clock, Row, Table, bench_gib, child_args, child_done, compact, durable_appends, event_line,
    group, keep_newest, median, mib, native_durable_rate, native_parse, policy, records_of, row,
    run_child, store_config, target_dir, timed_batch_appends, wanted_figures, warm_cache,
    write_ndjson,
};
use quire::progress::Silent;
use quire::{Durability, ReadQuery, Record, Retention, Store, StoreConfig};

/// Records per append call (figure 1).
const APPEND_BATCH: usize = 1024;
/// Batches per run in figure 1 (~200k records).
const APPEND_BATCHES: usize = 200;
/// Repetitions of figure 1 (median reported).
const APPEND_REPS: usize = 5;
/// Batch sizes of figure 2.
const DURABLE_BATCHES: [usize; 2] = [64, 512];
/// Wall time of one durable-append slice (figure 2).
const DURABLE_SECONDS: f64 = 1.0;
/// Rounds of figure 2; each runs every configuration for one slice.
const DURABLE_ROUNDS: usize = 3;
/// Threads appending concurrently in figure 2.
const DURABLE_THREADS: usize = 4;
/// Records in the replay/scan histories of figure 3 (~170 MB of NDJSON).
const REPLAY_RECORDS: u64 = 1_000_000;
/// Repetitions of figure 3 (median reported): its rows sit near their
/// goals and the machine drifts by ±15%.
const REPLAY_REPS: usize = 9;
/// Goal for peak memory in figure 4.
const MEMORY_GOAL_MIB: u64 = 64;
/// 2023-11-15 01:00:00 UTC: every data set stays inside one UTC day, so the
/// segmented backend's day buckets do not split it.
const BASE_TS: f64 = 1_700_010_000.0;
/// Bumped when the generated data changes, so reused histories are rebuilt.
const DATA_VERSION: u32 = 1;

// ---------------------------------------------------------------- data

/// A GPS/sensor stream: one truck driving a random walk at 10 Hz.
struct Gps {
    rng: u64,
    lat: f64,
    lon: f64,
    speed: f64,
    heading: f64,
}

impl Gps {
    fn new() -> Self {
        Gps {
            rng: 0x005E_ED0F_6E55,
            lat: 52.520008,
            lon: 13.404954,
            speed: 13.9,
            heading: 90.0,
        }
    }

    /// splitmix64, as a float in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self, ts: f64) -> String {
        self.heading = (self.heading + (self.uniform() - 0.5) * 8.0).rem_euclid(360.0);
        self.speed = (self.speed + (self.uniform() - 0.5) * 1.2).clamp(0.0, 33.0);
        let metres = self.speed * 0.1;
        let rad = self.heading.to_radians();
        self.lat += metres * rad.cos() / 111_320.0;
        self.lon += metres * rad.sin() / (111_320.0 * self.lat.to_radians().cos());
        format!(
            r#"{{"kind":"metric","store":"gps","timestamp":{ts:.3},"device":"truck-17","lat":{:.6},"lon":{:.6},"speed":{:.2},"heading":{:.1}}}"#,
            self.lat, self.lon, self.speed, self.heading
        )
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dataset {
    /// Papyra-style actor events, 1 kHz.
    Events,
    /// GPS records, 10 Hz.
    Gps,
}

impl Dataset {
    fn name(self) -> &'static str {
        match self {
            Dataset::Events => "actor events",
            Dataset::Gps => "GPS stream",
        }
    }

    fn lines(self, n: u64) -> Vec<String> {
        match self {
            Dataset::Events => (0..n)
                .map(|i| event_line(i, BASE_TS + i as f64 * 0.001))
                .collect(),
            Dataset::Gps => {
                let mut gps = Gps::new();
                (0..n).map(|i| gps.next(BASE_TS + i as f64 * 0.1)).collect()
            }
        }
    }
}

/// The mixed history of figure 4: actor events (store `local`) and GPS
/// records (store `gps`) alternating, 1 ms apart.
struct Mixed {
    k: u64,
    gps: Gps,
}

impl Mixed {
    fn new() -> Self {
        Mixed {
            k: 0,
            gps: Gps::new(),
        }
    }

    fn ts(k: u64) -> f64 {
        BASE_TS + k as f64 * 0.001
    }

    fn next(&mut self) -> String {
        let (k, ts) = (self.k, Self::ts(self.k));
        self.k += 1;
        if k % 2 == 0 {
            event_line(k / 2, ts)
        } else {
            self.gps.next(ts)
        }
    }
}

// ---------------------------------------------------------------- backends

#[derive(Clone, Copy, PartialEq, Debug)]
enum Backend {
    Ndjson,
    Rotating,
    SegJson,
    SegCompact,
    /// Compact at zlib's default level, for the size-for-speed trade.
    SegCompact6,
}

impl Backend {
    const ALL: [Backend; 4] = [
        Backend::Ndjson,
        Backend::Rotating,
        Backend::SegJson,
        Backend::SegCompact,
    ];
    /// Figure 1 also shows compact at level 6 (not worth a history of its
    /// own in the other figures: any level decodes the same way).
    const APPENDS: [Backend; 5] = [
        Backend::Ndjson,
        Backend::Rotating,
        Backend::SegJson,
        Backend::SegCompact,
        Backend::SegCompact6,
    ];

    fn name(self) -> &'static str {
        match self {
            Backend::Ndjson => "ndjson",
            Backend::Rotating => "rotating",
            Backend::SegJson => "segmented json-crc32",
            Backend::SegCompact => "segmented compact",
            Backend::SegCompact6 => "segmented compact, level 6",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Backend::Ndjson => "ndjson",
            Backend::Rotating => "rotating",
            Backend::SegJson => "seg-json",
            Backend::SegCompact => "seg-compact",
            Backend::SegCompact6 => "seg-compact-6",
        }
    }

    fn from_slug(slug: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|b| b.slug() == slug)
            .unwrap_or_else(|| panic!("unknown backend `{slug}`"))
    }

    fn plugin(self) -> &'static str {
        match self {
            Backend::Ndjson => "ndjson",
            Backend::Rotating => "rotating",
            Backend::SegJson | Backend::SegCompact | Backend::SegCompact6 => "segmented",
        }
    }

    fn options(self) -> Vec<(String, String)> {
        match self {
            Backend::Ndjson | Backend::Rotating => vec![],
            Backend::SegJson => vec![("codec".into(), "json-crc32".into())],
            // The default level, as a user gets it.
            Backend::SegCompact => vec![("codec".into(), "compact".into())],
            Backend::SegCompact6 => vec![
                ("codec".into(), "compact".into()),
                ("compress-level".into(), "6".into()),
            ],
        }
    }

    /// The deflate level a compact backend writes at (the plugin's default
    /// for `SegCompact`), for its native baseline.
    fn compress_level(self) -> Option<u8> {
        match self {
            Backend::SegCompact => Some(1),
            Backend::SegCompact6 => Some(6),
            _ => None,
        }
    }

    /// The store path inside `home`, a directory holding nothing else.
    fn path(self, home: &Path) -> PathBuf {
        match self {
            Backend::Ndjson => home.join("events.ndjson"),
            _ => home.join("data"),
        }
    }

    fn config(self, home: &Path, durability: Durability, cache: &Path) -> StoreConfig {
        let mut config = store_config(self.plugin(), &self.path(home), durability, cache);
        config.options = self.options();
        config
    }

    fn open(self, home: &Path, durability: Durability, cache: &Path) -> Store {
        fs::create_dir_all(home).unwrap();
        Store::open(self.config(home, durability, cache))
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.name()))
    }

    fn open_read_only(self, home: &Path, cache: &Path) -> Store {
        let mut config = self.config(home, Durability::Batch, cache);
        config.read_only = true;
        Store::open(config).unwrap_or_else(|e| panic!("opening {} read-only: {e}", self.name()))
    }

    /// Identifies the component and options, for naming reusable histories.
    fn fingerprint(self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        quire::builtin::component(self.plugin())
            .expect("built-in backend")
            .hash(&mut h);
        self.options().hash(&mut h);
        DATA_VERSION.hash(&mut h);
        format!("{:012x}", h.finish() & 0xFFFF_FFFF_FFFF)
    }
}

// ---------------------------------------------------------------- helpers

/// 1.23M, 456k, 789.
fn short(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else {
        group(x)
    }
}

/// (allocated bytes as `du` counts them, apparent bytes) of everything under `path`.
fn du(path: &Path) -> (u64, u64) {
    let meta = fs::symlink_metadata(path).expect("stat");
    if meta.is_dir() {
        fs::read_dir(path)
            .expect("listing")
            .map(|e| du(&e.unwrap().path()))
            .fold((meta.blocks() * 512, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    } else {
        (meta.blocks() * 512, meta.len())
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Reads every file under `path` once, so timed runs start from the page cache.
fn warm(path: &Path) {
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            warm(&entry.unwrap().path());
        }
    } else {
        let mut buf = vec![0u8; 1 << 20];
        let mut file = File::open(path).unwrap();
        while file.read(&mut buf).unwrap() > 0 {}
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn remove(path: &Path) {
    if path.is_dir() {
        let _ = fs::remove_dir_all(path);
    } else {
        let _ = fs::remove_file(path);
    }
}

/// Counts the records a store reads back (a check, not a figure).
fn count(backend: Backend, home: &Path, cache: &Path) -> u64 {
    backend
        .open_read_only(home, cache)
        .read(&ReadQuery::default(), |_| Ok(()))
        .expect("reading back")
}

// ---------------------------------------------------------------- children

/// `--child WHAT BACKEND HOME CACHE [ARGS]`: runs one operation in a fresh
/// process and prints its peak RSS.
fn child(args: &[String]) -> ! {
    let what = args[0].as_str();
    let backend = Backend::from_slug(&args[1]);
    let home = PathBuf::from(&args[2]);
    let cache = PathBuf::from(&args[3]);
    let start = Instant::now();
    let open = || backend.open(&home, Durability::Batch, &cache);
    let detail = match what {
        "replay" => {
            let store = backend.open_read_only(&home, &cache);
            let n = store
                .read(&ReadQuery::default(), |r| {
                    std::hint::black_box(&r);
                    Ok(())
                })
                .expect("replay");
            format!("records={n}")
        }
        "compact-half" => {
            let keep: u64 = args[4].parse().unwrap();
            compact(&open(), Retention::single(keep_newest(keep, &cache)))
        }
        "compact-window" => {
            let (store, window, now): (&str, f64, f64) =
                (&args[4], args[5].parse().unwrap(), args[6].parse().unwrap());
            let rolling = policy(
                "rolling-window",
                &format!(r#"{{"window_seconds": {window}, "exact": false}}"#),
                now,
                &cache,
            );
            compact(
                &open(),
                Retention::per_store(None, BTreeMap::from([(store.to_string(), rolling)])),
            )
        }
        other => panic!("unknown child `{other}`"),
    };
    child_done(start, &detail)
}

// ---------------------------------------------------------------- figure 1

/// Figure 1: appends/s and bytes/record, Durability::Batch, 1024 records per append.
fn fig_append(scratch: &Path, cache: &Path, clock: &Clock, rows: &mut Vec<Row>) {
    for dataset in [Dataset::Events, Dataset::Gps] {
        clock.say(&format!(
            "1. appends, {}, Durability::Batch, {APPEND_BATCH}/append",
            dataset.name()
        ));
        let n = (APPEND_BATCH * APPEND_BATCHES) as u64;
        let lines = dataset.lines(n);
        let batches: Vec<&[String]> = lines.chunks(APPEND_BATCH).collect();
        let template: Vec<Vec<Record>> = batches.iter().map(|b| records_of(b)).collect();
        let ndjson_bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();

        let mut native_rates = Vec::new();
        // Native deflate at each compact backend's level, by its index.
        let mut deflate_rates: Vec<Vec<f64>> = vec![Vec::new(); Backend::APPENDS.len()];
        let mut native_disk = 0;
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Backend::APPENDS.len()];
        let mut disk = [0u64; Backend::APPENDS.len()];
        for rep in 0..APPEND_REPS {
            // The baseline: NDJSON lines through a BufWriter, batch by batch.
            let home = scratch.join("append-native");
            remove(&home);
            fs::create_dir_all(&home).unwrap();
            let path = home.join("events.ndjson");
            let start = Instant::now();
            let mut out = BufWriter::new(File::create(&path).unwrap());
            for batch in &batches {
                for line in batch.iter() {
                    out.write_all(line.as_bytes()).unwrap();
                    out.write_all(b"\n").unwrap();
                }
            }
            let file = out.into_inner().unwrap();
            let secs = start.elapsed().as_secs_f64();
            file.sync_data().unwrap();
            drop(file);
            native_rates.push(n as f64 / secs);
            native_disk = du(&home).0;
            assert_eq!(fs::metadata(&path).unwrap().len(), ndjson_bytes);
            remove(&home);
            let mut said = format!("  rep {rep}: native {}", short(n as f64 / secs));
            for (b, backend) in Backend::APPENDS.into_iter().enumerate() {
                let Some(level) = backend.compress_level() else {
                    continue;
                };
                let deflate_secs = native_compact_secs(&home, &batches, level);
                deflate_rates[b].push(n as f64 / deflate_secs);
                remove(&home);
                said += &format!(
                    ", native deflate {level} {}",
                    short(n as f64 / deflate_secs)
                );
            }

            for (b, backend) in Backend::APPENDS.into_iter().enumerate() {
                let home = scratch.join(format!("append-{}", backend.slug()));
                remove(&home);
                let secs =
                    timed_batch_appends(backend.open(&home, Durability::Batch, cache), &template);
                rates[b].push(n as f64 / secs);
                disk[b] = du(&home).0;
                if rep == 0 {
                    assert_eq!(
                        count(backend, &home, cache),
                        n,
                        "{} reads back",
                        backend.name()
                    );
                    if backend == Backend::Ndjson {
                        assert_eq!(
                            du(&home).1,
                            ndjson_bytes,
                            "ndjson stores the lines as given"
                        );
                    }
                }
                remove(&home);
                said += &format!(", {} {}", backend.slug(), short(n as f64 / secs));
            }
            eprintln!("{said} rec/s");
        }
        let native = median(native_rates);
        let per = |bytes: u64| bytes as f64 / n as f64;
        let figure = format!(
            "1. appends, {}: {} records, batch {APPEND_BATCH}, Durability::Batch, median of {APPEND_REPS}; bytes/record = du / records",
            dataset.name(),
            group(n as f64)
        );
        for (b, backend) in Backend::APPENDS.into_iter().enumerate() {
            let rate = median(rates[b].clone());
            rows.push(row(
                &figure,
                backend.name(),
                format!("{} rec/s, {:.1} B/rec", short(rate), per(disk[b])),
                format!(
                    "BufWriter of the NDJSON lines: {} rec/s, {:.1} B/rec",
                    short(native),
                    per(native_disk)
                ),
                format!(
                    "{:.2}, size {:.2}x",
                    rate / native,
                    disk[b] as f64 / native_disk as f64
                ),
                "info",
                None,
            ));
        }
        for (b, backend) in Backend::APPENDS.into_iter().enumerate() {
            let Some(level) = backend.compress_level() else {
                continue;
            };
            let deflate = median(deflate_rates[b].clone());
            let quire = median(rates[b].clone());
            rows.push(row(
                &format!(
                    "1e. experiment: the compact codec's own work natively, {}: deflate (zlib-rs through flate2, as the plugin, blocks of 64 records sync-flushed, a new stream every MiB) through a BufWriter",
                    dataset.name()
                ),
                backend.name(),
                format!(
                    "quire {} rec/s: {:.2} of native deflate",
                    short(quire),
                    quire / deflate
                ),
                format!("native deflate, level {level}: {} rec/s", short(deflate)),
                format!("native deflate / BufWriter {:.2}", deflate / native),
                "info",
                None,
            ));
        }
        let (json, compact) = (disk[2], disk[3]);
        rows.push(row(
            &format!(
                "1b. size on disk, compact vs json-crc32, {}",
                dataset.name()
            ),
            "segmented",
            format!("compact {}", mib(compact)),
            format!("json-crc32 {}", mib(json)),
            format!("{:.3}", compact as f64 / json as f64),
            "info",
            None,
        ));
    }
}

/// The compact codec's work done natively, as the segmented backend does it
/// by default: records gathered into blocks of 64, each block deflated at
/// `level` with a sync flush, a new raw stream every MiB of input, the
/// output written through a `BufWriter` to a file in `home`. Returns the
/// seconds (the sync after is not timed, as for the other baselines).
fn native_compact_secs(home: &Path, batches: &[&[String]], level: u8) -> f64 {
    use flate2::{Compress, Compression, FlushCompress};
    const BLOCK_RECORDS: usize = 64;
    const STREAM_BYTES: usize = 1 << 20;
    fs::create_dir_all(home).unwrap();
    let path = home.join("compact.deflate");
    let lines: Vec<&String> = batches.iter().flat_map(|b| b.iter()).collect();
    let start = Instant::now();
    let mut out = BufWriter::new(File::create(&path).unwrap());
    let mut deflater = Compress::new(Compression::new(level.into()), false);
    let (mut block, mut body) = (Vec::new(), Vec::with_capacity(256 << 10));
    let mut stream_in = 0;
    for records in lines.chunks(BLOCK_RECORDS) {
        block.clear();
        for line in records {
            block.extend_from_slice(line.as_bytes());
            block.push(b'\n');
        }
        if stream_in >= STREAM_BYTES {
            deflater.reset();
            stream_in = 0;
        }
        // A block of 64 lines deflates to far less than the buffer holds.
        body.clear();
        let before = deflater.total_in();
        deflater
            .compress_vec(&block, &mut body, FlushCompress::Sync)
            .unwrap();
        assert_eq!(deflater.total_in() - before, block.len() as u64);
        out.write_all(&body).unwrap();
        stream_in += block.len();
    }
    let file = out.into_inner().unwrap();
    let secs = start.elapsed().as_secs_f64();
    file.sync_data().unwrap();
    secs
}

// ---------------------------------------------------------------- figure 2

/// Figure 2: durable appends, PerWrite, 4 threads sharing syncs, vs write +
/// fdatasync. The machine's disk is shared, so sync latency drifts: each
/// round runs the baseline and every backend for a short slice, back to
/// back, and the table shows the median of the rounds.
fn fig_durable(scratch: &Path, cache: &Path, clock: &Clock, rows: &mut Vec<Row>) {
    let slice = Duration::from_secs_f64(DURABLE_SECONDS);
    for batch in DURABLE_BATCHES {
        let lines = Dataset::Events.lines(batch as u64);
        let template = records_of(&lines);
        clock.say(&format!(
            "2. durable appends, batch {batch}: {DURABLE_ROUNDS} rounds of {DURABLE_SECONDS} s each \
             (native write + fdatasync, then each backend with PerWrite, {DURABLE_THREADS} threads)"
        ));
        let mut native = Vec::new();
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Backend::ALL.len()];
        let mut per_sync: Vec<Vec<f64>> = vec![Vec::new(); Backend::ALL.len()];
        for round in 0..DURABLE_ROUNDS {
            let path = scratch.join(format!("durable-native-{batch}.ndjson"));
            native.push(native_durable_rate(&path, &lines, slice));
            let mut said = format!(
                "  round {round}: native {} rec/s ({:.2} ms per write+sync)",
                short(native[round]),
                1e3 * batch as f64 / native[round]
            );

            for (b, backend) in Backend::ALL.into_iter().enumerate() {
                let home = scratch.join(format!("durable-{}", backend.slug()));
                remove(&home);
                let store = backend.open(&home, Durability::PerWrite, cache);
                let (appended, secs) = durable_appends(&store, &template, DURABLE_THREADS, slice);
                let syncs = store.metrics().syncs.max(1);
                drop(store);
                if round == 0 {
                    assert_eq!(
                        count(backend, &home, cache),
                        appended,
                        "{} reads back",
                        backend.name()
                    );
                }
                remove(&home);
                rates[b].push(appended as f64 / secs);
                per_sync[b].push(appended as f64 / syncs as f64);
                said += &format!(", {} {}", backend.slug(), short(appended as f64 / secs));
            }
            eprintln!("{said}");
        }
        let native = median(native);
        for (b, backend) in Backend::ALL.into_iter().enumerate() {
            let rate = median(rates[b].clone());
            rows.push(row(
                &format!(
                    "2. durable appends, Durability::PerWrite, batch {batch}, {DURABLE_THREADS} threads (group commit), median of {DURABLE_ROUNDS} interleaved {DURABLE_SECONDS} s rounds"
                ),
                backend.name(),
                format!(
                    "{} rec/s ({:.0} rec/sync)",
                    short(rate),
                    median(per_sync[b].clone())
                ),
                format!(
                    "write_all + fdatasync loop, batch {batch}, 1 thread: {} rec/s",
                    short(native)
                ),
                format!("{:.2}", rate / native),
                "info",
                None,
            ));
        }
    }
}

// ---------------------------------------------------------------- figure 3

/// Builds (or reuses) `records` lines from `next` in `backend`'s store under
/// `root`; returns the store's home. Shows progress on stderr.
fn history(
    root: &Path,
    what: &str,
    backend: Backend,
    records: u64,
    cache: &Path,
    clock: &Clock,
    mut next: impl FnMut() -> String,
) -> PathBuf {
    // Other sizes stay (a quick run must not cost the next full run its
    // history); the same size built by another backend version goes.
    let prefix = format!("{what}-{}-{records}-", backend.slug());
    let name = format!("{prefix}{}", backend.fingerprint());
    let home = root.join(&name);
    let marker = root.join(format!("{name}.complete"));
    if marker.exists() && home.exists() {
        clock.say(&format!(
            "  reusing {} ({})",
            home.display(),
            mib(du(&home).1)
        ));
        return home;
    }
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            remove(&entry.path());
        }
    }
    clock.say(&format!(
        "  building {} through {} ({} records)",
        home.display(),
        backend.name(),
        group(records as f64)
    ));
    let store = backend.open(&home, Durability::Batch, cache);
    let (start, mut done, mut shown) = (Instant::now(), 0u64, 0u64);
    while done < records {
        let take = (records - done).min(APPEND_BATCH as u64);
        let lines: Vec<String> = (0..take).map(|_| next()).collect();
        store.append(records_of(&lines)).expect("append");
        done += take;
        if done * 20 / records > shown {
            shown = done * 20 / records;
            eprintln!(
                "    {:3}% {} records, {:.0} s, {} rec/s",
                shown * 5,
                group(done as f64),
                start.elapsed().as_secs_f64(),
                short(done as f64 / start.elapsed().as_secs_f64())
            );
        }
    }
    store.flush().expect("flush");
    drop(store);
    fs::write(&marker, format!("{records}\n")).unwrap();
    home
}

/// Figure 3: replay records/s and scan MB/s vs native serde_json over the same NDJSON.
fn fig_replay(data: &Path, cache: &Path, clock: &Clock, rows: &mut Vec<Row>) {
    clock.say(&format!(
        "3. replay and scan, {} actor events per backend",
        group(REPLAY_RECORDS as f64)
    ));
    let native_path = data.join(format!(
        "replay-native-{REPLAY_RECORDS}-v{DATA_VERSION}.ndjson"
    ));
    if !native_path.exists() {
        write_ndjson(&native_path, REPLAY_RECORDS, |i| {
            event_line(i, BASE_TS + i as f64 * 0.001)
        });
    }
    let native_size = fs::metadata(&native_path).unwrap().len();
    let homes: Vec<PathBuf> = Backend::ALL
        .into_iter()
        .map(|backend| {
            let mut i = 0u64;
            history(
                data,
                "replay",
                backend,
                REPLAY_RECORDS,
                cache,
                clock,
                || {
                    let line = event_line(i, BASE_TS + i as f64 * 0.001);
                    i += 1;
                    line
                },
            )
        })
        .collect();
    warm(&native_path);
    homes.iter().for_each(|h| warm(h));

    let native_secs = || {
        let start = Instant::now();
        assert_eq!(
            native_parse(&native_path, |_, _| {}),
            (native_size, REPLAY_RECORDS)
        );
        start.elapsed().as_secs_f64()
    };
    let mut native = Vec::new();
    let mut scan: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut replay: Vec<Vec<f64>> = vec![Vec::new(); 4];
    // Each replay over the native run just before it: the machine's speed
    // drifts within seconds, so pairs are compared, not medians of each.
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut units = [0usize; 4];
    for rep in 0..REPLAY_REPS {
        native.push(native_secs());
        let mut said = format!("  rep {rep}: native {:.2}s", native[rep]);
        for (b, backend) in Backend::ALL.into_iter().enumerate() {
            let store = backend.open_read_only(&homes[b], cache);
            let start = Instant::now();
            let report = store.scan(&Silent).expect("scan");
            scan[b].push(start.elapsed().as_secs_f64());
            assert_eq!(
                (report.records, report.anomaly_count),
                (REPLAY_RECORDS, 0),
                "{} scan",
                backend.name()
            );
            units[b] = report.units;
            let paired = native_secs();
            replay[b].push(timed_replay(&store, backend.name()));
            ratios[b].push(paired / replay[b][rep]);
            said += &format!(
                ", {} scan {:.2}s replay {:.2}s (native {paired:.2}s)",
                backend.slug(),
                scan[b][rep],
                replay[b][rep]
            );
        }
        eprintln!("{said}");
    }
    let native = median(native);
    let native_rps = REPLAY_RECORDS as f64 / native;
    for (b, backend) in Backend::ALL.into_iter().enumerate() {
        let secs = median(replay[b].clone());
        rows.push(row(
            &format!(
                "3. replay, Store::read of {} actor events oldest first, no-op callback, median of {REPLAY_REPS}; ratio: the median over reps of a native run over the replay right after it",
                group(REPLAY_RECORDS as f64),
            ),
            backend.name(),
            format!("{} rec/s", short(REPLAY_RECORDS as f64 / secs)),
            format!("serde_json per line of the {} NDJSON file: {} rec/s", mib(native_size), short(native_rps)),
            format!("{:.2}", median(ratios[b].clone())),
            "info",
            None,
        ));
    }
    let seg_json = Backend::ALL
        .iter()
        .position(|&b| b == Backend::SegJson)
        .unwrap();
    replay_experiments(
        &homes[seg_json],
        &native_path,
        cache,
        clock,
        native_secs,
        rows,
    );
    for (b, backend) in Backend::ALL.into_iter().enumerate() {
        let secs = median(scan[b].clone());
        let stored = du(&homes[b]).1;
        rows.push(row(
            "3b. scan (Store::scan), same histories: MB/s of NDJSON-equivalent bytes; stored bytes and units in brackets",
            backend.name(),
            format!(
                "{:.0} MB/s, {} rec/s ({} stored at {:.0} MB/s, {} units)",
                native_size as f64 / secs / 1e6,
                short(REPLAY_RECORDS as f64 / secs),
                mib(stored),
                stored as f64 / secs / 1e6,
                units[b],
            ),
            format!("serde_json per line: {:.0} MB/s", native_size as f64 / native / 1e6),
            format!("{:.2}", native / secs),
            "info",
            None,
        ));
    }
}

/// [`common::is_record`] as the backends decide it: quire's one-pass lift,
/// and serde_json for what it leaves undecided.
fn is_record_lifted(text: &str) -> bool {
    match quire_records::head::lift(text) {
        Some(head) => {
            std::hint::black_box(head.store.or(head.system_id).unwrap_or("default"));
            true
        }
        None => common::is_record(text),
    }
}

/// The records a rolling window (not exact) over `store`, cutting at
/// `cutoff`, removes when `store`'s records lie in units of their own: those
/// of every sealed unit of it whose newest record is older (a unit
/// straddling the cutoff is kept whole). `None` when units are not per
/// store: then the window reads every record and cuts exactly.
fn window_drops(units: &[quire::UnitInfo], store: &str, cutoff: f64) -> Option<u64> {
    if units.iter().any(|u| u.store.is_none()) {
        return None;
    }
    let dropped = units
        .iter()
        .filter(|u| u.store.as_deref() == Some(store) && u.sealed)
        .filter(|u| u.max_timestamp.is_some_and(|t| t < cutoff))
        .map(|u| {
            u.records
                .expect("a sealed unit's manifest counts its records")
        })
        .sum();
    Some(dropped)
}

/// Seconds of one replay of everything in `store` (whose records are
/// counted).
fn timed_replay(store: &Store, what: &str) -> f64 {
    let start = Instant::now();
    let n = store
        .read(&ReadQuery::default(), |r| {
            std::hint::black_box(&r);
            Ok(())
        })
        .expect("replay");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(n, REPLAY_RECORDS, "{what} replay");
    secs
}

/// `run` (which returns its seconds) [`REPLAY_REPS`] times, each right
/// after a native run: the median seconds, and the median of the native
/// run's time over `run`'s.
fn paired_reps(native_secs: &impl Fn() -> f64, mut run: impl FnMut() -> f64) -> (f64, f64) {
    let (mut secs, mut ratios) = (Vec::new(), Vec::new());
    for _ in 0..REPLAY_REPS {
        let paired = native_secs();
        secs.push(run());
        ratios.push(paired / secs[secs.len() - 1]);
    }
    (median(secs), median(ratios))
}

/// A native program's check of one line.
type LineCheck = fn(&str) -> bool;

/// Figure 3's experiments: the segmented (json-crc32) replay through the
/// plugin built to check nothing (the floor: the sandbox, the format's
/// CRCs, the batches and the merge) and built to check each record with
/// serde_json only (the native program's own check, compiled to wasm),
/// each over the native run right before it; and the native program with
/// quire's check, and with none.
fn replay_experiments(
    home: &Path,
    native_path: &Path,
    cache: &Path,
    clock: &Clock,
    native_secs: impl Fn() -> f64,
    rows: &mut Vec<Row>,
) {
    clock.say("  building the segmented plugin's experimental variants");
    let variants = experiments::Variants::of("quire-segmented");
    let runs = [
        (
            "3c. experiment: the same segmented replay through the plugin built to check nothing (the floor: what the sandbox, the format's CRCs, the batches and the merge cost)",
            &variants.no_check,
        ),
        (
            "3d. experiment: the same segmented replay through the plugin built to check each record with serde_json only (the native program's own check, compiled to wasm)",
            &variants.serde_check,
        ),
    ];
    // The native program with quire's lift in place of serde_json, and
    // with no check at all (reading lines only: the native floor).
    let native_checks: [(&str, LineCheck); 2] = [
        (
            "3e. experiment: the native program with quire's own check (quire_records::head::lift per line, compiled natively) in place of serde_json: what the check costs outside the sandbox",
            is_record_lifted,
        ),
        (
            "3f. experiment: the native program checking nothing (reading its lines only: the native floor)",
            |_| true,
        ),
    ];
    for (figure, check) in native_checks {
        let measured = paired_reps(&native_secs, || {
            let start = Instant::now();
            let (_, n) = common::native_parse_by(native_path, check, |_, _| {});
            assert_eq!(n, REPLAY_RECORDS, "{figure}");
            start.elapsed().as_secs_f64()
        });
        rows.push(experiment_row(figure, "native", measured));
    }
    for (figure, plugin) in runs {
        let mut config = Backend::SegJson.config(home, Durability::Batch, cache);
        config.backend = quire::PluginSource::File(plugin.clone());
        config.read_only = true;
        let store = Store::open(config).expect("opening the experimental plugin");
        let measured = paired_reps(&native_secs, || timed_replay(&store, "experimental"));
        rows.push(experiment_row(figure, Backend::SegJson.name(), measured));
    }
}

/// A row of figure 3's experiments from [`paired_reps`]' (seconds, ratio).
fn experiment_row(figure: &str, who: &str, (secs, ratio): (f64, f64)) -> Row {
    row(
        figure,
        who,
        format!("{} rec/s", short(REPLAY_RECORDS as f64 / secs)),
        "serde_json per line, as in 3".to_string(),
        format!("{ratio:.2}"),
        "info",
        None,
    )
}

// ---------------------------------------------------------------- figure 4

/// Figure 4: peak memory of replay and compaction over a big mixed history,
/// each in a child process.
fn fig_memory(data: &Path, scratch: &Path, cache: &Path, clock: &Clock, rows: &mut Vec<Row>) {
    let gib = bench_gib();
    let target = (gib * (1u64 << 30) as f64) as u64;
    // Records whose NDJSON adds up to the target: one pass of the generator.
    let (mut records, mut bytes, mut gps_records) = (0u64, 0u64, 0u64);
    let mut mixed = Mixed::new();
    while bytes < target {
        bytes += mixed.next().len() as u64 + 1;
        gps_records += records % 2;
        records += 1;
    }
    let (first, last) = (Mixed::ts(0), Mixed::ts(records - 1));
    // Keep the gps records of the newer half of the time span.
    let window = (last - first) / 2.0;
    let cutoff = last - window;
    let gps_older = (0..records)
        .filter(|k| k % 2 == 1)
        .filter(|&k| format!("{:.3}", Mixed::ts(k)).parse::<f64>().unwrap() < cutoff)
        .count() as u64;
    clock.say(&format!(
        "4. peak memory over a {gib} GiB history (QUIRE_BENCH_GIB): {} records ({} gps), {} as NDJSON",
        group(records as f64),
        group(gps_records as f64),
        mib(bytes)
    ));
    let cache_s = cache.to_str().unwrap();
    let whats = [
        "replay (Store::read of everything, oldest first)".to_string(),
        "compaction, standard policy max_records = half".to_string(),
        format!(
            "compaction, --retain gps=rolling-window:{window:.0}s (half the span, not exact; other stores kept)"
        ),
    ];
    // (what, backend, result, detail), grouped by what for the table.
    let mut results = Vec::new();
    for backend in [Backend::Rotating, Backend::SegJson] {
        let mut mixed = Mixed::new();
        let home = history(data, "big", backend, records, cache, clock, || mixed.next());
        let stored = du(&home).1;

        clock.say(&format!("4. child: replay, {}", backend.name()));
        let replay = run_child(&["replay", backend.slug(), home.to_str().unwrap(), cache_s]);
        assert_eq!(replay.get("records"), records, "{} replay", backend.name());

        let work = scratch.join(format!("compact-{}", backend.slug()));
        remove(&work);
        clock.say(&format!(
            "4. child: compaction keeping half, {} (on a copy)",
            backend.name()
        ));
        copy_dir(&home, &work);
        let keep = records / 2;
        let half = run_child(&[
            "compact-half",
            backend.slug(),
            work.to_str().unwrap(),
            cache_s,
            &keep.to_string(),
        ]);
        assert_eq!(
            (half.get("records_before"), half.get("records_after")),
            (records, keep),
            "{} compaction keeping half",
            backend.name()
        );
        assert_eq!(
            count(backend, &work, cache),
            keep,
            "{} after compaction",
            backend.name()
        );
        let half_stored = du(&work).1;
        remove(&work);

        clock.say(&format!(
            "4. child: compaction, --retain gps=rolling-window ({window:.0} s of {:.0} s), {} (on a copy)",
            last - first,
            backend.name()
        ));
        copy_dir(&home, &work);
        let units = backend
            .open_read_only(&work, cache)
            .units()
            .expect("listing units");
        let expected = records - window_drops(&units, "gps", cutoff).unwrap_or(gps_older);
        let rolling = run_child(&[
            "compact-window",
            backend.slug(),
            work.to_str().unwrap(),
            cache_s,
            "gps",
            &window.to_string(),
            &last.to_string(),
        ]);
        let after = rolling.get("records_after");
        assert_eq!(rolling.get("records_before"), records);
        assert_eq!(
            after,
            expected,
            "{}: rolling window kept {after} of {records}, where a cut by whole units keeps {expected} ({} are inside the window)",
            backend.name(),
            records - gps_older
        );
        assert_eq!(
            count(backend, &work, cache),
            after,
            "{} after the window",
            backend.name()
        );
        let window_stored = du(&work).1;
        remove(&work);

        for (what, r, detail) in [
            (0, replay, format!("{} stored", mib(stored))),
            (
                1,
                half,
                format!("{} of {} left", mib(half_stored), mib(stored)),
            ),
            (
                2,
                rolling,
                format!(
                    "kept {} of {} (an exact cut keeps {}), {} left",
                    short(after as f64),
                    short(records as f64),
                    short((records - gps_older) as f64),
                    mib(window_stored)
                ),
            ),
        ] {
            eprintln!(
                "  {} {}: peak {} in {:.1}s",
                backend.name(),
                whats[what],
                mib(r.peak_kib << 10),
                r.secs
            );
            results.push((what, backend, r, detail));
        }
    }
    results.sort_by_key(|r| r.0);
    for (what, backend, r, detail) in results {
        rows.push(row(
            &format!(
                "4. peak memory (child VmHWM), {gib} GiB history ({} records, events + gps): {}",
                short(records as f64),
                whats[what]
            ),
            backend.name(),
            format!("{} ({:.1} s; {detail})", mib(r.peak_kib << 10), r.secs),
            "—".into(),
            "—".into(),
            &format!("< {MEMORY_GOAL_MIB} MiB"),
            Some(r.peak_kib < MEMORY_GOAL_MIB << 10),
        ));
    }
}

// ---------------------------------------------------------------- main

fn main() {
    if let Some(args) = child_args() {
        child(&args);
    }
    let clock = Clock::start();
    let load_start = loadavg();
    let root = target_dir().join("bench-data");
    let data = root.join("backends");
    fs::create_dir_all(&data).unwrap();
    let cache = root.join("cache");
    let scratch = tempfile::tempdir_in(&data).unwrap();
    clock.say(&format!(
        "data in {}; load average {load_start}; warming the component cache",
        data.display()
    ));
    warm_cache(
        &cache,
        &["ndjson", "rotating", "segmented"],
        &["standard", "rolling-window"],
    );

    let wanted = wanted_figures();
    let mut rows = Vec::new();
    if wanted("1") {
        fig_append(scratch.path(), &cache, &clock, &mut rows);
    }
    if wanted("2") {
        fig_durable(scratch.path(), &cache, &clock, &mut rows);
    }
    if wanted("3") {
        fig_replay(&data, &cache, &clock, &mut rows);
    }
    if wanted("4") {
        fig_memory(&data, scratch.path(), &cache, &clock, &mut rows);
    }
    let load_end = loadavg();
    clock.say("done");

    println!();
    Table {
        columns: &[
            "figure",
            "backend",
            "quire",
            "baseline (same run)",
            "ratio",
            "goal",
            "met",
        ],
        backend_column: true,
        // A figure's title once, on its first row.
        merge_figures: true,
        no_mark: "",
    }
    .print(&rows);
    println!();
    println!(
        "Ratios are backend / baseline throughput (figure 1 also: size on disk, du / du). In figure 2 \
         the 4 appending threads share syncs, so a ratio above 1 is possible. Actor events are \
         168-byte Papyra-style lines, GPS records ~{} bytes. {} cores; load average {} at the \
         start, {} at the end (other work shares the machine). Total {:.0} s.",
        Dataset::Gps.lines(1)[0].len(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        load_start,
        load_end,
        clock.0.elapsed().as_secs_f64()
    );
}
