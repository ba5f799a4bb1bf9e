//! Figure 6: the `quire` command line against a small native program doing
//! the same work, each a process of its own, timed from outside.
//!
//! The native program (this bench re-executed with `--native-cli VERB`)
//! checks every line is a record with serde_json (an object with a string
//! `kind` and a numeric `timestamp`) and
//! - `append OUT`: writes it to OUT through a 1 MiB `BufWriter` and
//!   `fdatasync`s once at the end (as `quire append --durability batch`);
//! - `scan FILE`: only checks;
//! - `read FILE`: writes it to stdout (as `quire read`).

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::common::{Clock, Row, is_record, mib, native_parse, native_parse_from, row};
use crate::experiments;

/// Runs of each job (best reported: the disk and the machine are noisy).
const REPS: usize = 5;

/// `--native-cli VERB ARGS`: the native program, when this process is one.
pub fn native_cli_args() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let at = args.iter().position(|a| a == "--native-cli")?;
    Some(args[at + 1..].to_vec())
}

/// The native program: does the job and exits.
pub fn native_cli(args: &[String]) -> ! {
    match args[0].as_str() {
        "append" => {
            let out = File::create(&args[1]).expect("creating output");
            let mut writer = BufWriter::with_capacity(1 << 20, out);
            let stdin = std::io::stdin().lock();
            native_parse_from(
                BufReader::with_capacity(1 << 20, stdin),
                is_record,
                |_, text| {
                    writer.write_all(text.as_bytes()).unwrap();
                    writer.write_all(b"\n").unwrap();
                },
            );
            writer.into_inner().unwrap().sync_data().unwrap();
        }
        "scan" => {
            std::hint::black_box(native_parse(Path::new(&args[1]), |_, _| {}));
        }
        "read" => {
            let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            native_parse(Path::new(&args[1]), |_, text| {
                out.write_all(text.as_bytes()).unwrap();
                out.write_all(b"\n").unwrap();
            });
            out.flush().unwrap();
        }
        other => panic!("unknown native job `{other}`"),
    }
    std::process::exit(0)
}

/// Seconds `command` takes, with stdin from `input` (or nothing) and stdout
/// to `output` (or /dev/null). Panics when it fails.
fn timed(mut command: Command, input: Option<&Path>, output: Option<&Path>) -> f64 {
    command.stdin(match input {
        Some(path) => Stdio::from(File::open(path).expect("opening input")),
        None => Stdio::null(),
    });
    command.stdout(match output {
        Some(path) => Stdio::from(File::create(path).expect("creating output")),
        None => Stdio::null(),
    });
    let start = Instant::now();
    let status = command.status().expect("running");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "{command:?} failed: {status}");
    secs
}

fn quire(verb: &str, path: &Path, cache: &Path) -> Command {
    quire_with(verb, path, cache, None)
}

/// `quire VERB` with the built-in ndjson backend, or the plugin `backend`.
fn quire_with(verb: &str, path: &Path, cache: &Path, backend: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quire"));
    if let Some(backend) = backend {
        command.arg(verb).arg("--backend").arg(backend);
    } else {
        command.arg(verb);
    }
    command
        .arg("--path")
        .arg(path)
        .arg("--cache-dir")
        .arg(cache);
    command
}

fn native(verb: &str, path: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command.arg("--native-cli").arg(verb).arg(path);
    command
}

/// 6. `quire append`, `scan` and `read` of the scan file vs the native program.
pub fn fig_cli(file: &Path, dir: &Path, cache: &Path, clock: &Clock, rows: &mut Vec<Row>) {
    let size = fs::metadata(file).expect("the scan file").len();
    let appended = dir.join("cli-append.ndjson");
    let native_out = dir.join("cli-append-native.ndjson");
    let read_out = dir.join("cli-read.ndjson");

    // What each command writes is checked once, outside the timings.
    clock.say("6. CLI: checking what append and read write");
    let _ = fs::remove_file(&appended);
    let mut append = quire("append", &appended, cache);
    append.args(["--durability", "batch"]);
    timed(append, Some(file), None);
    assert!(
        fs::read(&appended).unwrap() == fs::read(file).unwrap(),
        "append copies the file"
    );
    timed(quire("read", &appended, cache), None, Some(&read_out));
    assert!(
        fs::read(&read_out).unwrap() == fs::read(file).unwrap(),
        "read gives the file back"
    );
    let _ = fs::remove_file(&read_out);
    timed(native("append", &native_out), Some(file), None);
    assert_eq!(fs::metadata(&native_out).unwrap().len(), size);

    clock.say("6. CLI: building the experimental plugins");
    let variants = experiments::Variants::of("quire-ndjson");
    // (verb, plugin, what the row says)
    let jobs: [(&str, Option<&Path>, &str); 7] = [
        ("append", None, "`quire append --durability batch`"),
        ("scan", None, "`quire scan`"),
        ("read", None, "`quire read > /dev/null`"),
        (
            "scan",
            Some(&variants.serde_check),
            "experiment: `quire scan`, plugin checking with serde_json only, as the native program does (the same work in the sandbox)",
        ),
        (
            "read",
            Some(&variants.serde_check),
            "experiment: `quire read`, plugin checking with serde_json only",
        ),
        (
            "scan",
            Some(&variants.no_check),
            "experiment: `quire scan`, plugin checking nothing (what the sandbox itself costs: the floor)",
        ),
        (
            "read",
            Some(&variants.no_check),
            "experiment: `quire read`, plugin checking nothing (the floor)",
        ),
    ];
    // Each rep runs quire and the native program back to back; the ratio
    // reported is the median of the reps' ratios (this machine's speed
    // drifts between runs, so pairs are compared, not best against best).
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); jobs.len()];
    for rep in 0..REPS {
        for (j, (verb, plugin, _)) in jobs.iter().enumerate() {
            clock.say(&format!("6. CLI {verb} {j}, rep {rep}"));
            let (q, n) = match *verb {
                "append" => {
                    let _ = fs::remove_file(&appended);
                    let _ = fs::remove_file(&native_out);
                    let mut append = quire("append", &appended, cache);
                    append.args(["--durability", "batch"]);
                    let q = timed(append, Some(file), None);
                    let n = timed(native("append", &native_out), Some(file), None);
                    (q, n)
                }
                verb => (
                    timed(quire_with(verb, &appended, cache, *plugin), None, None),
                    timed(native(verb, &appended), None, None),
                ),
            };
            eprintln!("  quire {q:.3}s, native {n:.3}s");
            runs[j].push((q, n));
        }
    }
    let _ = fs::remove_file(&appended);
    let _ = fs::remove_file(&native_out);
    let mbs = |secs: f64| size as f64 / secs / 1e6;
    for (j, (_, plugin, what)) in jobs.iter().enumerate() {
        let q = runs[j].iter().map(|r| r.0).fold(f64::MAX, f64::min);
        let n = runs[j].iter().map(|r| r.1).fold(f64::MAX, f64::min);
        let mut ratios: Vec<f64> = runs[j].iter().map(|(q, n)| n / q).collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let goal = plugin.is_none();
        rows.push(row(
            &format!(
                "6. {what}, {} file, best times of {REPS}, median ratio of the {REPS} paired runs (vs native program, same work)",
                mib(size)
            ),
            "",
            format!("{:.0} MB/s ({q:.2} s)", mbs(q)),
            format!("{:.0} MB/s ({n:.2} s)", mbs(n)),
            format!("{ratio:.2}"),
            if goal { ">= 0.7" } else { "info" },
            goal.then_some(ratio >= 0.7),
        ));
    }
}
