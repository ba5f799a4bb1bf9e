//! `quire migrate` between every pair of file backends (ndjson, rotating,
//! segmented with json-crc32 and with compact), record for record and in
//! order, with the counts it reports; the library call both ways with the
//! memory backend; and damaged sources refused unless `--skip-damaged`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use quire::progress::Silent;
use quire::{MigrateOptions, ReadQuery, Store};
use quire_tests::cli::{
    expect_code, field, input, json, option_args, quire_run, stderr, stdout, stdout_lines,
};
use quire_tests::{builtin_config, files_with_extension, parse_records};
use serde_json::Value;

/// A backend, where its data lives and the options it is opened with.
#[derive(Clone, Copy)]
struct Backend {
    label: &'static str,
    name: &'static str,
    path: &'static str,
    options: &'static [&'static str],
}

const NDJSON: Backend = Backend {
    label: "ndjson",
    name: "ndjson",
    path: "log.ndjson",
    options: &[],
};
const ROTATING: Backend = Backend {
    label: "rotating",
    name: "rotating",
    path: "rotating",
    options: &["max-records=7"],
};
const SEGMENTED: Backend = Backend {
    label: "segmented-json",
    name: "segmented",
    path: "segmented-json",
    options: &["codec=json-crc32", "bucket=hour", "max-bytes=900"],
};
const COMPACT: Backend = Backend {
    label: "segmented-compact",
    name: "segmented",
    path: "segmented-compact",
    options: &["codec=compact", "bucket=hour", "block-records=5"],
};
const ALL: [Backend; 4] = [NDJSON, ROTATING, SEGMENTED, COMPACT];

impl Backend {
    /// `--backend B --path P [--option O]...` for the plain commands.
    fn args(&self) -> Vec<&'static str> {
        let mut args = vec!["--backend", self.name, "--path", self.path];
        args.extend(option_args(self.options));
        args
    }

    /// The same for one side of `migrate` (`from` or `to`).
    fn side(&self, side: &str) -> Vec<String> {
        let mut args = vec![
            format!("--{side}-backend"),
            self.name.into(),
            format!("--{side}-path"),
            self.path.into(),
        ];
        for o in self.options {
            args.extend([format!("--{side}-option"), o.to_string()]);
        }
        args
    }
}

fn append(dir: &Path, backend: Backend, lines: &[String]) {
    let mut args = vec!["append"];
    args.extend(backend.args());
    expect_code(
        quire_run(dir, &args, &input(lines)),
        0,
        &format!("append to {}", backend.label),
    );
}

/// What `quire read` returns from `backend` in `dir`, as raw lines.
fn read(dir: &Path, backend: Backend) -> Vec<String> {
    let mut args = vec!["read"];
    args.extend(backend.args());
    stdout_lines(&expect_code(
        quire_run(dir, &args, ""),
        0,
        &format!("read {}", backend.label),
    ))
}

/// Runs `quire migrate --json` from one backend to another.
fn migrate(dir: &Path, from: Backend, to: Backend, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["migrate".into(), "--json".into()];
    args.extend(from.side("from"));
    args.extend(to.side("to"));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    quire_run(dir, &args, "")
}

/// Records of three kinds and two stores, timestamps rising across several
/// hours, spelled in ways a re-encoding would change.
fn history(n: u64) -> Vec<String> {
    let kinds = ["event", "audit", "dead_letter"];
    (0..n)
        .map(|i| {
            let kind = kinds[(i % 3) as usize];
            let system = if i % 4 == 0 { "billing" } else { "local" };
            let ts = 1_700_000_000.0 + i as f64 * 613.25;
            match i % 3 {
                0 => format!(
                    r#"{{"kind": "{kind}", "system_id": "{system}", "n": {i}, "payload": {{"amount": 1.50, "note": "caf\u00e9 é"}}, "timestamp": {ts}}}"#
                ),
                1 => format!(r#"{{"timestamp":{ts},"n":{i},"system_id":"{system}","kind":"{kind}"}}"#),
                _ => format!(
                    r#"{{ "kind":"{kind}" , "system_id":"{system}","n":{i},"big":1e300,"timestamp":{ts} }}"#
                ),
            }
        })
        .collect()
}

fn counts(lines: &[String], key: &str) -> Value {
    let mut map: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines {
        *map.entry(field(l, key).as_str().unwrap().to_string())
            .or_default() += 1;
    }
    serde_json::to_value(map).unwrap()
}

fn check_report(report: &Value, from: Backend, to: Backend, copied: &[String], before: u64) {
    let n = copied.len() as u64;
    let what = format!("{} -> {}: {report}", from.label, to.label);
    assert_eq!(report["from_backend"], from.name, "{what}");
    assert_eq!(report["to_backend"], to.name, "{what}");
    assert_eq!(report["records_read"].as_u64(), Some(n), "{what}");
    assert_eq!(report["records_written"].as_u64(), Some(n), "{what}");
    assert_eq!(
        report["target_records_before"].as_u64(),
        Some(before),
        "{what}"
    );
    assert_eq!(
        report["target_records_after"].as_u64(),
        Some(before + n),
        "{what}"
    );
    assert_eq!(report["kinds"], counts(copied, "kind"), "{what}");
    assert_eq!(report["stores"], counts(copied, "system_id"), "{what}");
}

// -----------------------------------------------------------------------------

#[test]
fn cli_migrates_between_every_pair_of_backends_record_for_record_in_order() {
    let lines = history(60);
    for from in ALL {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), from, &lines);
        assert_eq!(read(dir.path(), from), lines, "source {}", from.label);
        for to in ALL {
            if to.path == from.path {
                continue;
            }
            let out = expect_code(
                migrate(dir.path(), from, to, &[]),
                0,
                &format!("migrate {} -> {}", from.label, to.label),
            );
            let report = json(&out);
            check_report(&report, from, to, &lines, 0);
            assert_eq!(report["source_anomalies"], 0);
            assert_eq!(
                read(dir.path(), to),
                lines,
                "{} -> {}",
                from.label,
                to.label
            );
            let mut scan = vec!["scan"];
            scan.extend(to.args());
            expect_code(
                quire_run(dir.path(), &scan, ""),
                0,
                &format!("scan {}", to.label),
            );
        }
        // The source is only read.
        assert_eq!(read(dir.path(), from), lines, "source {} after", from.label);
    }
}

#[test]
fn migrating_into_a_store_that_has_records_adds_after_them_and_counts_both() {
    let dir = tempfile::tempdir().unwrap();
    let first = history(20);
    let later: Vec<String> = history(40)[20..].to_vec();
    append(dir.path(), NDJSON, &later);
    append(dir.path(), COMPACT, &first);
    let report = json(&expect_code(
        migrate(dir.path(), NDJSON, COMPACT, &[]),
        0,
        "migrate",
    ));
    check_report(&report, NDJSON, COMPACT, &later, 20);
    let mut all = first;
    all.extend(later);
    assert_eq!(read(dir.path(), COMPACT), all);
    // The text report says the same.
    let dir2 = tempfile::tempdir().unwrap();
    append(dir2.path(), ROTATING, &all);
    let mut args = vec!["migrate"];
    let from = ROTATING.side("from");
    let to = NDJSON.side("to");
    args.extend(from.iter().map(String::as_str));
    args.extend(to.iter().map(String::as_str));
    let out = expect_code(quire_run(dir2.path(), &args, ""), 0, "migrate (text)");
    assert!(
        stdout(&out).contains(
            "migrated 40 records from rotating to ndjson (0 in the target before, 40 after)"
        ),
        "{}",
        stdout(&out)
    );
}

fn library_store(backend: &str, path: &Path, options: &[&str]) -> Store {
    let options: Vec<(&str, &str)> = options.iter().map(|o| o.split_once('=').unwrap()).collect();
    Store::open(builtin_config(backend, path, &options)).unwrap()
}

fn library_lines(store: &Store) -> Vec<String> {
    store
        .read_all(&ReadQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.envelope.json)
        .collect()
}

#[test]
fn library_migrates_to_and_from_the_memory_backend() {
    let dir = tempfile::tempdir().unwrap();
    let lines = history(50);
    // A file backend into memory.
    let source = library_store("segmented", &dir.path().join("seg"), COMPACT.options);
    source.append(parse_records(&lines)).unwrap();
    let memory = library_store("memory", &dir.path().join("unused"), &[]);
    let report =
        quire::migrate::migrate(&source, &memory, MigrateOptions::default(), &Silent).unwrap();
    check_report(
        &serde_json::to_value(&report).unwrap(),
        COMPACT,
        Backend {
            label: "memory",
            name: "memory",
            ..NDJSON
        },
        &lines,
        0,
    );
    assert_eq!(library_lines(&memory), lines);
    // And out of memory into a file backend.
    let target = library_store("rotating", &dir.path().join("rot"), ROTATING.options);
    let report =
        quire::migrate::migrate(&memory, &target, MigrateOptions::default(), &Silent).unwrap();
    assert_eq!((report.records_read, report.records_written), (50, 50));
    assert_eq!(
        (report.target_records_before, report.target_records_after),
        (0, 50)
    );
    assert_eq!(report.from_backend, "memory");
    assert_eq!(library_lines(&target), lines);
    drop(target);
    drop(source);
    assert_eq!(
        read(
            dir.path(),
            Backend {
                path: "rot",
                ..ROTATING
            }
        ),
        lines
    );
    // A read-only target is refused.
    let mut config = builtin_config("ndjson", dir.path().join("ro.ndjson"), &[]);
    std::fs::write(dir.path().join("ro.ndjson"), "").unwrap();
    config.read_only = true;
    let read_only = Store::open(config).unwrap();
    assert!(
        quire::migrate::migrate(&memory, &read_only, MigrateOptions::default(), &Silent).is_err()
    );
}

/// Damages the source so that exactly one record stops being valid;
/// returns its index in `lines`.
fn damage(dir: &Path, backend: Backend, lines: &[String]) -> Vec<usize> {
    let root = dir.join(backend.path);
    match backend.label {
        "ndjson" => {
            // Line 11 (record 10) loses its closing brace.
            let text = std::fs::read_to_string(&root).unwrap();
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines[10].pop();
            std::fs::write(&root, lines.join("\n") + "\n").unwrap();
            vec![10]
        }
        "rotating" => {
            // The second line of the first sealed events file: record 3.
            let path = root.join("events").join("events-0001.ndjson");
            let mut bytes = std::fs::read(&path).unwrap();
            let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
            bytes[second] = b'#';
            std::fs::write(&path, bytes).unwrap();
            vec![3]
        }
        _ => {
            // A flipped byte in the body of the second record frame of the
            // first segment that has one: its CRC fails.
            for path in files_with_extension(&root.join("wal"), &["wal"]) {
                let mut bytes = std::fs::read(&path).unwrap();
                let mut frames = Vec::new();
                let mut at = 0usize;
                while at + 8 <= bytes.len() {
                    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                    frames.push((at, len));
                    at += len + 8;
                }
                let Some(&(offset, len)) = frames.get(2) else {
                    continue;
                };
                let body = bytes[offset + 4..offset + 4 + len].to_vec();
                let index = lines
                    .iter()
                    .position(|l| l.as_bytes() == body.as_slice())
                    .expect("a json-crc32 frame body is a record");
                bytes[offset + 4 + len / 2] ^= 0x01;
                std::fs::write(&path, bytes).unwrap();
                return vec![index];
            }
            panic!("no segment with two records");
        }
    }
}

#[test]
fn a_damaged_source_is_refused_unless_skip_damaged_and_then_every_valid_record_is_copied() {
    let lines = history(30);
    for from in [NDJSON, ROTATING, SEGMENTED] {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), from, &lines);
        if from.name == "segmented" {
            // Hour buckets: the first segment holds the first records.
            let mut args = vec!["checkpoint"];
            args.extend(from.args());
            expect_code(quire_run(dir.path(), &args, ""), 0, "checkpoint");
        }
        let lost = damage(dir.path(), from, &lines);
        let valid: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !lost.contains(i))
            .map(|(_, l)| l.clone())
            .collect();
        assert_eq!(
            read(dir.path(), from),
            valid,
            "{}: the damage is not what the test meant",
            from.label
        );
        let to = if from.label == "ndjson" {
            COMPACT
        } else {
            NDJSON
        };

        let out = expect_code(
            migrate(dir.path(), from, to, &[]),
            1,
            &format!("damaged {}", from.label),
        );
        let err = stderr(&out);
        assert!(
            err.contains("anomal") && err.contains("--skip-damaged"),
            "{err}"
        );
        let target_exists = dir.path().join(to.path).exists();
        if target_exists {
            assert_eq!(
                read(dir.path(), to),
                Vec::<String>::new(),
                "{}: a refused migration wrote",
                from.label
            );
        }

        let report = json(&expect_code(
            migrate(dir.path(), from, to, &["--skip-damaged"]),
            0,
            &format!("damaged {} with --skip-damaged", from.label),
        ));
        assert!(
            report["source_anomalies"].as_u64().unwrap() >= 1,
            "{report}"
        );
        check_report(&report, from, to, &valid, 0);
        assert_eq!(read(dir.path(), to), valid, "{}", from.label);
    }
}

#[test]
fn the_library_refuses_a_damaged_source_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let lines = history(10);
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 4 {
                "{\"kind\":\"event\",\"timest\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dir.path().join("src.ndjson"), text).unwrap();
    let source = library_store("ndjson", &dir.path().join("src.ndjson"), &[]);
    let memory = library_store("memory", &dir.path().join("unused"), &[]);
    let refused = quire::migrate::migrate(&source, &memory, MigrateOptions::default(), &Silent);
    let err = refused
        .expect_err("a damaged source was migrated")
        .to_string();
    assert!(err.contains("skip-damaged"), "{err}");
    assert_eq!(library_lines(&memory), Vec::<String>::new());
    let report = quire::migrate::migrate(
        &source,
        &memory,
        MigrateOptions { skip_damaged: true },
        &Silent,
    )
    .unwrap();
    assert_eq!(report.source_anomalies, 1);
    assert_eq!(report.records_written, 9);
    let mut want = lines.clone();
    want.remove(4);
    assert_eq!(library_lines(&memory), want);
}

/// Skipping damage leaves behind records a checksum disowns too, even
/// though they parse: a migration never gives an altered record fresh
/// checksums in the target.
#[test]
fn skip_damaged_leaves_records_a_checksum_disowns_behind() {
    let dir = tempfile::tempdir().unwrap();
    let lines = history(20);
    let source_path = dir.path().join("rotating");
    let source = library_store("rotating", &source_path, &["max-records=7"]);
    source.append(quire_tests::parse_records(&lines)).unwrap();
    source.checkpoint().unwrap();
    drop(source);
    // Change one character of the second record inside the first sealed file.
    let file = source_path.join("events").join("events-0001.ndjson");
    let text = std::fs::read_to_string(&file).unwrap();
    let second = text.lines().nth(1).unwrap().to_string();
    let at = second.rfind(|c: char| c.is_ascii_digit()).unwrap();
    let digit = second.as_bytes()[at];
    let mut altered = second.clone();
    altered.replace_range(at..=at, if digit == b'1' { "2" } else { "1" });
    std::fs::write(&file, text.replacen(&second, &altered, 1)).unwrap();

    let source = library_store("rotating", &source_path, &["max-records=7"]);
    let memory = library_store("memory", &dir.path().join("unused"), &[]);
    let report = quire::migrate::migrate(
        &source,
        &memory,
        MigrateOptions { skip_damaged: true },
        &Silent,
    )
    .unwrap();
    assert_eq!(report.records_unverified_skipped, 1);
    assert_eq!(report.records_written, 19);
    let copied = library_lines(&memory);
    assert!(!copied.contains(&altered), "the altered record was copied");
    assert!(copied.iter().all(|l| lines.contains(l)));
}
