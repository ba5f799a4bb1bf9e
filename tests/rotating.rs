//! The rotating backend through the CLI: Papyra's layout on disk, rotation
//! by size and by count, sequence numbers that are never reused, sealed files
//! that never change, deterministic replay, scans that point at each damaged
//! line, compaction, and recovery that leaves nothing for the next scan.
//!
//! Randomised inputs print their seed; `QUIRE_CRASH_SEED=N` replays one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use quire_tests::Rng;
use quire_tests::cli::{
    expect_code, field, input, json, option_args, quire_backend, stdout, stdout_lines,
};
use serde_json::Value;

/// Papyra's kinds and the directories they rotate in.
const CATEGORIES: [(&str, &str); 3] = [
    ("event", "events"),
    ("audit", "audits"),
    ("dead_letter", "dead_letters"),
];

/// Where every test keeps its store, relative to its temporary directory.
const DATA: &str = "data";

fn now() -> f64 {
    quire::now()
}

/// One NDJSON record line (no newline), padded with `pad` bytes of payload.
fn line(kind: &str, n: u64, timestamp: f64, pad: usize) -> String {
    format!(
        r#"{{"kind":"{kind}","system_id":"rot","n":{n},"pad":"{}","timestamp":{timestamp}}}"#,
        "x".repeat(pad)
    )
}

/// `n` event lines a second apart, each with `pad` bytes of payload.
fn events(n: u64, pad: usize) -> Vec<String> {
    (0..n)
        .map(|i| line("event", i, 1_700_000_000.0 + i as f64, pad))
        .collect()
}

/// The rotated events file with this sequence number.
fn events_file(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(DATA)
        .join("events")
        .join(format!("events-{sequence:04}.ndjson"))
}

/// `quire SUB --backend rotating --path data ARGS...` in `dir`.
fn rot(dir: &Path, sub: &str, args: &[&str], stdin: &str) -> Output {
    quire_backend(dir, "rotating", DATA, sub, args, stdin)
}

/// Like [`rot`], and the command must exit with `code`.
fn rot_expect(dir: &Path, code: i32, sub: &str, args: &[&str], stdin: &str) -> Output {
    expect_code(
        rot(dir, sub, args, stdin),
        code,
        &format!("quire {sub} {args:?}"),
    )
}

/// Appends `lines` in one `quire append` process with backend `options`.
fn append(dir: &Path, lines: &[String], options: &[&str]) {
    rot_expect(dir, 0, "append", &option_args(options), &input(lines));
}

/// The rotated files of `category`, by sequence number, parsed from the
/// names on disk (only the canonical `{category}-NNNN.ndjson` spelling).
fn rotated(dir: &Path, category: &str) -> Vec<(u64, PathBuf)> {
    let cat_dir = dir.join(DATA).join(category);
    let Ok(entries) = std::fs::read_dir(&cat_dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let digits = name
                .strip_prefix(&format!("{category}-"))?
                .strip_suffix(".ndjson")?;
            (digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| (digits.parse().unwrap(), p.clone()))
        })
        .collect();
    files.sort();
    files
}

fn manifest(dir: &Path, category: &str) -> Value {
    let path = dir.join(DATA).join(category).join("MANIFEST.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Manifest entries of `category` by file name.
fn sealed_entries(dir: &Path, category: &str) -> BTreeMap<String, Value> {
    manifest(dir, category)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_string()
}

/// Lines of a file, without their newlines.
fn file_lines(path: &Path) -> Vec<String> {
    let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
    text.lines().map(str::to_string).collect()
}

/// Every record `quire read` returns, as raw lines.
fn read_lines(dir: &Path, args: &[&str]) -> Vec<String> {
    stdout_lines(&rot_expect(dir, 0, "read", args, ""))
}

/// (kind, unit, offset, length, line) of every anomaly in a scan report.
fn anomalies(report: &Value) -> Vec<(String, String, u64, u64, Option<u64>)> {
    report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["unit"].as_str().unwrap().to_string(),
                a["offset"].as_u64().unwrap(),
                a["length"].as_u64().unwrap(),
                a["line"].as_u64(),
            )
        })
        .collect()
}

/// Byte offset where 1-based line `n` starts in `bytes`.
fn line_offset(bytes: &[u8], n: usize) -> u64 {
    let mut offset = 0;
    for _ in 1..n {
        offset += bytes[offset..].iter().position(|&b| b == b'\n').unwrap() + 1;
    }
    offset as u64
}

/// Checks a sealed file against its manifest entry: size, records,
/// checksum and time range are facts about the bytes on disk.
fn assert_entry_true(path: &Path, entry: &Value) {
    let bytes = std::fs::read(path).unwrap();
    let lines = file_lines(path);
    let ts: Vec<f64> = lines
        .iter()
        .map(|l| field(l, "timestamp").as_f64().unwrap())
        .collect();
    let name = file_name(path);
    assert_eq!(entry["bytes"].as_u64(), Some(bytes.len() as u64), "{name}");
    assert_eq!(
        entry["records"].as_u64(),
        Some(lines.len() as u64),
        "{name}"
    );
    assert_eq!(
        entry["crc32"].as_u64(),
        Some(u64::from(crc32fast::hash(&bytes))),
        "{name}"
    );
    let min = ts.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(entry["min_timestamp"].as_f64(), Some(min), "{name}");
    assert_eq!(entry["max_timestamp"].as_f64(), Some(max), "{name}");
}

/// 1..=n records of random kinds with strictly increasing timestamps.
fn mixed_history(rng: &mut Rng, n: u64, start: f64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (kind, _) = CATEGORIES[rng.below(3) as usize];
            line(kind, i, start + i as f64, rng.below(40) as usize)
        })
        .collect()
}

/// The input lines of `kind`, in input order.
fn of_kind<'a>(lines: &'a [String], kind: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| field(l, "kind") == kind).collect()
}

// ---------------------------------------------------------------------------

#[test]
fn layout_is_a_directory_per_category_of_numbered_files_holding_the_records_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seeded("layout");
    let count = 60 + rng.below(40);
    let lines = mixed_history(&mut rng, count, 1_700_000_000.0);
    // Three processes: rotation continues across reopens.
    let cut1 = rng.below(lines.len() as u64) as usize;
    let cut2 = cut1 + rng.below((lines.len() - cut1) as u64) as usize;
    for part in [&lines[..cut1], &lines[cut1..cut2], &lines[cut2..]] {
        append(dir.path(), part, &["max-records=5"]);
    }
    let mut top: Vec<String> = std::fs::read_dir(dir.path().join(DATA))
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    top.sort();
    assert_eq!(top, ["audits", "dead_letters", "events"]);
    for (kind, category) in CATEGORIES {
        let files = rotated(dir.path(), category);
        let numbers: Vec<u64> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            numbers,
            (1..=files.len() as u64).collect::<Vec<_>>(),
            "{category}"
        );
        assert!(
            files
                .iter()
                .all(|(n, p)| file_name(p) == format!("{category}-{n:04}.ndjson")),
            "{files:?}"
        );
        // Every record of the kind, byte for byte, in order, across the files.
        let stored: Vec<String> = files.iter().flat_map(|(_, p)| file_lines(p)).collect();
        let want: Vec<String> = of_kind(&lines, kind).into_iter().cloned().collect();
        assert_eq!(stored, want, "{category}");
        // Every file but the live (last) one is sealed in the manifest, truthfully.
        let entries = sealed_entries(dir.path(), category);
        let sealed: Vec<String> = files[..files.len() - 1]
            .iter()
            .map(|(_, p)| file_name(p))
            .collect();
        assert_eq!(entries.keys().cloned().collect::<Vec<_>>(), sealed);
        for (_, path) in &files[..files.len() - 1] {
            assert_entry_true(path, &entries[&file_name(path)]);
            assert_eq!(entries[&file_name(path)]["clean"], true);
        }
    }
}

#[test]
fn rotation_by_max_records_fills_each_file_to_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seeded("max-records");
    let per_file = 2 + rng.below(5);
    let total = 3 * per_file + 1 + rng.below(per_file * 2);
    let lines: Vec<String> = (0..total)
        .map(|i| {
            line(
                "event",
                i,
                1_700_000_000.0 + i as f64,
                rng.below(30) as usize,
            )
        })
        .collect();
    // One record per process, then the rest at once: both paths rotate.
    for l in &lines[..per_file as usize + 1] {
        append(
            dir.path(),
            std::slice::from_ref(l),
            &[&format!("max-records={per_file}")],
        );
    }
    append(
        dir.path(),
        &lines[per_file as usize + 1..],
        &[&format!("max-records={per_file}")],
    );
    let files = rotated(dir.path(), "events");
    let counts: Vec<u64> = files
        .iter()
        .map(|(_, p)| file_lines(p).len() as u64)
        .collect();
    let mut want = vec![per_file; (total / per_file) as usize];
    if !total.is_multiple_of(per_file) {
        want.push(total % per_file);
    }
    assert_eq!(counts, want, "per_file {per_file}, total {total}");
    assert_eq!(rotated(dir.path(), "audits"), vec![]);
}

#[test]
fn rotation_by_max_bytes_never_grows_a_file_past_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seeded("max-bytes");
    let max_bytes = 400 + rng.below(400);
    let lines: Vec<String> = (0..120)
        .map(|i| {
            line(
                "audit",
                i,
                1_700_000_000.0 + i as f64,
                rng.below(120) as usize,
            )
        })
        .collect();
    for chunk in lines.chunks(1 + rng.below(40) as usize) {
        append(dir.path(), chunk, &[&format!("max-bytes={max_bytes}")]);
    }
    let files = rotated(dir.path(), "audits");
    assert!(files.len() > 3, "{} files", files.len());
    for (i, (_, path)) in files.iter().enumerate() {
        let size = std::fs::metadata(path).unwrap().len();
        assert!(
            size <= max_bytes,
            "{} is {size} bytes > {max_bytes}",
            path.display()
        );
        // Rotated only when the next record did not fit.
        if let Some((_, next)) = files.get(i + 1) {
            let first_next = file_lines(next)[0].len() as u64 + 1;
            assert!(
                size + first_next > max_bytes,
                "{} ({size} bytes) was sealed though the next record ({first_next} bytes) fit",
                path.display()
            );
        }
    }
    let stored: Vec<String> = files.iter().flat_map(|(_, p)| file_lines(p)).collect();
    assert_eq!(stored, lines);
}

#[test]
fn sealed_files_are_never_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..40)
        .map(|i| {
            line(
                CATEGORIES[i % 3].0,
                i as u64,
                1_700_000_000.0 + i as f64,
                10,
            )
        })
        .collect();
    append(dir.path(), &lines[..20], &["max-records=3"]);
    let before: Vec<(PathBuf, Vec<u8>, Value)> = CATEGORIES
        .iter()
        .flat_map(|(_, category)| {
            let entries = sealed_entries(dir.path(), category);
            rotated(dir.path(), category)
                .into_iter()
                .filter(|(_, p)| entries.contains_key(&file_name(p)))
                .map(|(_, p)| {
                    let entry = entries[&file_name(&p)].clone();
                    (p.clone(), std::fs::read(&p).unwrap(), entry)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(before.len() >= 3, "{} sealed files", before.len());
    for chunk in lines[20..].chunks(4) {
        append(dir.path(), chunk, &["max-records=3"]);
    }
    rot_expect(dir.path(), 0, "checkpoint", &[], "");
    for (path, bytes, entry) in &before {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
        let category = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            &sealed_entries(dir.path(), category)[&file_name(path)],
            entry
        );
    }
    assert_eq!(read_lines(dir.path(), &[]), lines);
}

#[test]
fn sequence_numbers_are_not_reused_after_compaction_dropped_files() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..10)
        .map(|i| line("event", i, 1_700_000_000.0 + i as f64, 0))
        .collect();
    append(dir.path(), &lines, &["max-records=2"]);
    let highest = rotated(dir.path(), "events").last().unwrap().0;
    assert_eq!(highest, 5);
    // Keep the newest record only: events-0001..0004 go, 0005 keeps one.
    let report = json(&rot_expect(
        dir.path(),
        0,
        "compact",
        &["--max-records", "1", "--json"],
        "",
    ));
    let dropped: Vec<&str> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["action"] == "dropped")
        .map(|u| u["unit"].as_str().unwrap())
        .collect();
    assert_eq!(
        dropped,
        (1..=4)
            .map(|n| format!("events/events-{n:04}.ndjson"))
            .collect::<Vec<_>>()
    );
    let receipts = json(&rot_expect(dir.path(), 0, "receipts", &["--json"], ""));
    let receipted: Vec<&str> = receipts
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["unit"].as_str().unwrap())
        .collect();
    assert_eq!(receipted, dropped);
    let more: Vec<String> = (10..16)
        .map(|i| line("event", i, 1_700_000_000.0 + i as f64, 0))
        .collect();
    append(dir.path(), &more, &["max-records=2"]);
    let numbers: Vec<u64> = rotated(dir.path(), "events")
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(numbers[0], highest, "the live file stays: {numbers:?}");
    assert!(numbers[1..].iter().all(|n| *n > highest), "{numbers:?}");
    let mut want = vec![lines[9].clone()];
    want.extend(more);
    assert_eq!(read_lines(dir.path(), &[]), want);
}

#[test]
fn sequence_numbers_are_not_reused_after_everything_was_purged() {
    let dir = tempfile::tempdir().unwrap();
    // Old records: an age limit drops them all.
    let lines: Vec<String> = (0..12)
        .map(|i| line(CATEGORIES[i % 3].0, i as u64, 1_600_000_000.0 + i as f64, 0))
        .collect();
    append(dir.path(), &lines, &["max-records=2"]);
    let mut highest: BTreeMap<&str, u64> = CATEGORIES
        .iter()
        .map(|(_, c)| (*c, rotated(dir.path(), c).last().unwrap().0))
        .collect();
    // Round 0: the manifests remember the numbers. Round 1: the category
    // directories are removed too, and only the receipts remember.
    for round in 0..2u64 {
        rot_expect(dir.path(), 0, "checkpoint", &[], "");
        rot_expect(dir.path(), 0, "compact", &["--max-age", "3600"], "");
        for (_, category) in CATEGORIES {
            assert_eq!(
                rotated(dir.path(), category),
                vec![],
                "round {round} {category}"
            );
            if round == 1 {
                std::fs::remove_dir_all(dir.path().join(DATA).join(category)).unwrap();
            }
        }
        assert_eq!(read_lines(dir.path(), &[]), Vec::<String>::new());
        let again: Vec<String> = (0..3)
            .map(|i| {
                line(
                    CATEGORIES[i].0,
                    100 + i as u64,
                    1_600_000_100.0 + i as f64,
                    0,
                )
            })
            .collect();
        append(dir.path(), &again, &["max-records=2"]);
        for (_, category) in CATEGORIES {
            let numbers: Vec<u64> = rotated(dir.path(), category)
                .iter()
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(numbers.len(), 1, "round {round} {category}: {numbers:?}");
            assert!(
                numbers[0] > highest[category],
                "round {round} {category}: file {} reuses a number (highest before: {})",
                numbers[0],
                highest[category]
            );
            highest.insert(category, numbers[0]);
        }
        assert_eq!(read_lines(dir.path(), &[]), again);
    }
}

#[test]
fn replay_is_deterministic_and_merged_by_timestamp_across_categories() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seeded("replay");
    // Timestamps rise in steps with ties, so categories interleave and tie.
    let mut ts = 1_700_000_000.0;
    let lines: Vec<String> = (0..150)
        .map(|i| {
            if rng.below(3) > 0 {
                ts += (1 + rng.below(4)) as f64 * 0.25;
            }
            line(
                CATEGORIES[rng.below(3) as usize].0,
                i,
                ts,
                rng.below(20) as usize,
            )
        })
        .collect();
    for chunk in lines.chunks(1 + rng.below(50) as usize) {
        append(dir.path(), chunk, &["max-records=7"]);
    }
    let first = read_lines(dir.path(), &[]);
    let second = read_lines(dir.path(), &[]);
    assert_eq!(first, second, "two reads differ");
    let stamps: Vec<f64> = first
        .iter()
        .map(|l| field(l, "timestamp").as_f64().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "replay is not in timestamp order"
    );
    let mut got = first.clone();
    let mut want = lines.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "replay lost or invented records");
    // Within a category, records keep their append order.
    for (kind, _) in CATEGORIES {
        let in_replay: Vec<&String> = of_kind(&first, kind);
        assert_eq!(in_replay, of_kind(&lines, kind), "{kind}");
    }
    // Ties across categories go to the unit listed first (categories by
    // directory name), so the whole order is known in advance.
    let rank = |l: &String| {
        let kind = field(l, "kind");
        let dir = CATEGORIES.iter().find(|(k, _)| *k == kind).unwrap().1;
        let ts = field(l, "timestamp").as_f64().unwrap();
        (ts, dir)
    };
    let mut expected = lines.clone();
    expected.sort_by(|a, b| rank(a).partial_cmp(&rank(b)).unwrap());
    assert_eq!(
        first, expected,
        "ties across units go to the unit listed first"
    );
    // Newest first is exactly the reverse, and a reopen changes nothing.
    let mut reversed = read_lines(dir.path(), &["--newest-first"]);
    reversed.reverse();
    assert_eq!(reversed, first);
    rot_expect(dir.path(), 0, "checkpoint", &[], "");
    assert_eq!(read_lines(dir.path(), &[]), first);
}

/// A store whose sealed `events-0001.ndjson` holds a blank line, a record
/// that is not an object, a zero-filled line and a corrupted line, and whose
/// live `events-0003.ndjson` ends in a torn line. Returns the anomalies a
/// scan must report, (kind, unit, offset, length, line), and the records
/// that stay valid, in replay order.
#[allow(clippy::type_complexity)]
fn damaged_store(dir: &Path) -> (Vec<(String, String, u64, u64, Option<u64>)>, Vec<String>) {
    let lines: Vec<String> = (0..12)
        .map(|i| line("event", i, 1_700_000_000.0 + i as f64, 5))
        .collect();
    append(dir, &lines, &["max-records=5"]);
    let entries = sealed_entries(dir, "events");
    assert_eq!(entries["events-0001.ndjson"]["clean"], true);
    let sealed = dir.join(DATA).join("events").join("events-0001.ndjson");
    let live = dir.join(DATA).join("events").join("events-0003.ndjson");
    // Sealed file: line 1 ok, blank, [1,2] in place of record 1, zeros in
    // place of record 2, a cut record 3, record 4 intact.
    let cut = &lines[3][..25];
    let zeros = "\0".repeat(lines[2].len());
    let new_lines = [
        lines[0].as_str(),
        "",
        "[1,2]",
        zeros.as_str(),
        cut,
        lines[4].as_str(),
    ];
    let text: String = new_lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&sealed, &text).unwrap();
    let unit = "events/events-0001.ndjson".to_string();
    let bytes = text.as_bytes();
    let at = |n: usize| line_offset(bytes, n);
    let mut want = vec![
        ("BLANK_LINE".into(), unit.clone(), at(2), 1, Some(2)),
        ("INVALID_RECORD".into(), unit.clone(), at(3), 6, Some(3)),
        (
            "PARTIAL_WRITE".into(),
            unit.clone(),
            at(4),
            zeros.len() as u64 + 1,
            Some(4),
        ),
        (
            "CORRUPTED_LINE".into(),
            unit.clone(),
            at(5),
            cut.len() as u64 + 1,
            Some(5),
        ),
        // The line checksums sealed with the file: lines 2 to 5 match none,
        // and three sealed records are missing where line 6 goes on.
        (
            "CHECKSUM_MISMATCH".into(),
            unit.clone(),
            at(2),
            at(6) - at(2),
            None,
        ),
        ("MANIFEST_MISMATCH".into(), unit, at(6), 0, None),
    ];
    // Live file: a torn tail after its two records.
    let live_size = std::fs::metadata(&live).unwrap().len();
    let torn = r#"{"kind":"event","timest"#;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    std::io::Write::write_all(&mut f, torn.as_bytes()).unwrap();
    want.push((
        "TRUNCATED_LINE".into(),
        "events/events-0003.ndjson".into(),
        live_size,
        torn.len() as u64,
        Some(3),
    ));
    let mut valid = vec![lines[0].clone(), lines[4].clone()];
    valid.extend_from_slice(&lines[5..]);
    (want, valid)
}

#[test]
fn scan_reports_each_damaged_line_with_file_offset_and_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let (want, valid) = damaged_store(dir.path());
    let before = quire_tests::snapshot(&dir.path().join(DATA));
    let out = rot_expect(dir.path(), 2, "scan", &["--json"], "");
    let report = json(&out);
    assert_eq!(anomalies(&report), want);
    assert_eq!(report["records"].as_u64(), Some(valid.len() as u64));
    for a in report["anomalies"].as_array().unwrap() {
        let unit = a["unit"].as_str().unwrap();
        assert!(
            a["file"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{DATA}/{unit}")),
            "{a}"
        );
    }
    let text = stdout(&rot_expect(dir.path(), 2, "scan", &[], ""));
    assert!(
        text.contains(&format!(
            "events/events-0001.ndjson:2 (byte {}, 1 bytes): BLANK_LINE",
            want[0].2
        )),
        "{text}"
    );
    assert_eq!(
        quire_tests::snapshot(&dir.path().join(DATA)),
        before,
        "scan changed data"
    );
    // Read agrees with scan about what is a record.
    assert_eq!(read_lines(dir.path(), &[]), valid);
}

#[test]
fn a_flipped_byte_in_a_clean_sealed_file_is_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..9)
        .map(|i| line("event", i, 1_700_000_000.0 + i as f64, 3))
        .collect();
    append(dir.path(), &lines, &["max-records=3"]);
    let path = dir
        .path()
        .join(DATA)
        .join("events")
        .join("events-0002.ndjson");
    let entries = sealed_entries(dir.path(), "events");
    assert_eq!(entries["events-0002.ndjson"]["clean"], true);
    assert_entry_true(&path, &entries["events-0002.ndjson"]);
    rot_expect(dir.path(), 0, "scan", &[], "");
    let original = std::fs::read(&path).unwrap();

    // Same length, still valid JSON, still a record: the line checksums
    // sealed beside the file know, and say which line.
    let mut flipped = original.clone();
    let at = flipped.windows(5).position(|w| w == b"xxx\",").unwrap();
    flipped[at] = b'y';
    std::fs::write(&path, &flipped).unwrap();
    let report = json(&rot_expect(dir.path(), 2, "scan", &["--json"], ""));
    assert_eq!(
        anomalies(&report),
        vec![(
            "CHECKSUM_MISMATCH".into(),
            "events/events-0002.ndjson".into(),
            0,
            lines[3].len() as u64 + 1,
            None
        )]
    );

    // Same length, broken JSON on line 2: reported at its line and offset.
    let mut broken = original.clone();
    let line2 = line_offset(&original, 2) as usize;
    broken[line2] = b'#';
    std::fs::write(&path, &broken).unwrap();
    let report = json(&rot_expect(dir.path(), 2, "scan", &["--json"], ""));
    let found = anomalies(&report);
    assert!(
        found.contains(&(
            "CORRUPTED_LINE".into(),
            "events/events-0002.ndjson".into(),
            line2 as u64,
            lines[4].len() as u64 + 1,
            Some(2)
        )),
        "{found:?}"
    );
    assert!(
        found.iter().all(|a| a.1 == "events/events-0002.ndjson"),
        "{found:?}"
    );
}

/// The issue's case: 1,000 records, 400 a file, one digit changed in the
/// first sealed file. Scan finds it, repair drops that record (and sets its
/// line aside), the store is healthy again, and the altered record is not
/// read back. With `--keep-unverified` it is kept, and the report says so.
#[test]
fn an_altered_record_is_never_laundered_by_repair() {
    for keep in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let lines = events(1000, 8);
        append(dir.path(), &lines, &["max-records=400"]);
        rot_expect(dir.path(), 0, "checkpoint", &[], "");
        let path = events_file(dir.path(), 1);
        let original = std::fs::read(&path).unwrap();
        // Record 123's "n":123 becomes "n":723: valid JSON, a valid record.
        let at = original
            .windows(8)
            .position(|w| w == b"\"n\":123,")
            .unwrap();
        let mut altered = original.clone();
        altered[at + 4] = b'7';
        std::fs::write(&path, &altered).unwrap();
        let offset = line_offset(&original, 124);
        let length = lines[123].len() as u64 + 1;

        let report = json(&rot_expect(dir.path(), 2, "scan", &["--json"], ""));
        assert_eq!(
            anomalies(&report),
            [(
                "CHECKSUM_MISMATCH".to_string(),
                "events/events-0001.ndjson".to_string(),
                offset,
                length,
                None
            )]
        );

        let mut args = vec!["--mode", "repair", "--json"];
        if keep {
            args.push("--keep-unverified");
        }
        let report = json(&rot_expect(dir.path(), 0, "recover", &args, ""));
        let receipt = &report["receipts"][0];
        assert_eq!(receipt["unit"], "events/events-0001.ndjson", "{report}");
        let unverified = &receipt["unverified"];
        assert_eq!(unverified["records"], 1, "{report}");
        assert_eq!(unverified["kept"], keep, "{report}");
        assert_eq!(
            unverified["ranges"],
            serde_json::json!([{ "offset": offset, "length": length }])
        );
        rot_expect(dir.path(), 0, "scan", &[], "");
        let read = read_lines(dir.path(), &[]);
        let altered_line = lines[123].replace("\"n\":123,", "\"n\":723,");
        if keep {
            assert_eq!(read.len(), 1000);
            assert!(read.contains(&altered_line));
            assert!(unverified.get("set_aside").is_none());
        } else {
            // Every record read back is one that was written; only the altered one is gone.
            let mut expected = lines.clone();
            expected.remove(123);
            assert_eq!(read, expected);
            let aside = unverified["set_aside"].as_str().unwrap();
            assert_eq!(
                std::fs::read_to_string(aside).unwrap(),
                format!("{altered_line}\n")
            );
            // With the receipt that explains it beside it.
            let kept: serde_json::Value =
                serde_json::from_slice(&std::fs::read(format!("{aside}.receipt.json")).unwrap())
                    .unwrap();
            assert_eq!(kept["unverified"], *unverified);
        }
    }
}

#[test]
fn repair_output_names_the_dropped_records_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let lines = events(10, 8);
    append(dir.path(), &lines, &["max-records=5"]);
    let path = events_file(dir.path(), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"n\":2,", "\"n\":9,", 1)).unwrap();
    let out = stdout(&rot_expect(dir.path(), 0, "recover", &[], ""));
    let from = line_offset(text.as_bytes(), 3);
    let to = line_offset(text.as_bytes(), 4);
    assert!(
        out.contains(&format!(
            "1 record(s) no checksum vouches for (bytes {from}..{to}): dropped, their lines set aside in"
        )),
        "{out}"
    );
}

/// Compaction never seals an altered record under fresh checksums: a unit
/// whose checksums disown some of its bytes is left for recovery.
#[test]
fn compaction_leaves_a_unit_with_disowned_bytes_to_recovery() {
    let dir = tempfile::tempdir().unwrap();
    append(dir.path(), &events(10, 4), &["max-records=5"]);
    rot_expect(dir.path(), 0, "checkpoint", &[], "");
    let path = events_file(dir.path(), 1);
    let altered = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("\"n\":3,", "\"n\":8,", 1);
    std::fs::write(&path, &altered).unwrap();
    let report = json(&rot_expect(
        dir.path(),
        0,
        "compact",
        &["--max-records", "8", "--json"],
        "",
    ));
    let first = &report["units"][0];
    assert_eq!(first["unit"], "events/events-0001.ndjson", "{report}");
    assert!(
        first["action"]
            .as_str()
            .unwrap()
            .starts_with("skipped: 1 stretch"),
        "{report}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), altered);
    rot_expect(dir.path(), 2, "scan", &[], "");
}

#[test]
fn compaction_drops_expired_files_and_rewrites_partly_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    // Ages in seconds; the limit is 4000 s, far from every age.
    let ages = [
        9000, 8900, 8800, 8700, 6100, 6000, 900, 800, 700, 600, 500, 400, 300, 200,
    ];
    let lines: Vec<String> = ages
        .iter()
        .enumerate()
        .map(|(i, a)| line("event", i as u64, t - f64::from(*a), 4))
        .collect();
    append(dir.path(), &lines, &["max-records=4"]);
    let files = rotated(dir.path(), "events");
    assert_eq!(files.len(), 4);
    let untouched: Vec<(PathBuf, Vec<u8>)> = files[2..]
        .iter()
        .map(|(_, p)| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    let report = json(&rot_expect(
        dir.path(),
        0,
        "compact",
        &["--max-age", "4000", "--json"],
        "",
    ));
    let actions: Vec<(&str, &str)> = report["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["unit"].as_str().unwrap(), u["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("events/events-0001.ndjson", "dropped"),
            ("events/events-0002.ndjson", "rewritten"),
            ("events/events-0003.ndjson", "unchanged"),
            ("events/events-0004.ndjson", "unchanged"),
        ]
    );
    assert!(!files[0].1.exists(), "the expired file is still there");
    let rewritten = &files[1].1;
    assert_eq!(file_lines(rewritten), lines[6..8]);
    assert_entry_true(
        rewritten,
        &sealed_entries(dir.path(), "events")["events-0002.ndjson"],
    );
    for (path, bytes) in &untouched {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }
    let receipts = json(&rot_expect(dir.path(), 0, "receipts", &["--json"], ""));
    let receipts = receipts.as_array().unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["unit"], "events/events-0001.ndjson");
    assert_eq!(receipts[0]["details"]["records"], 4);
    rot_expect(dir.path(), 0, "scan", &[], "");
    assert_eq!(read_lines(dir.path(), &[]), lines[6..]);
}

#[test]
fn repair_leaves_nothing_for_the_next_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (_, valid) = damaged_store(dir.path());
    let report = json(&rot_expect(
        dir.path(),
        0,
        "recover",
        &["--mode", "repair", "--json"],
        "",
    ));
    assert_eq!(report["after"]["anomaly_count"], 0, "{report}");
    let units: Vec<&str> = report["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["unit"].as_str().unwrap())
        .collect();
    assert_eq!(
        units,
        ["events/events-0001.ndjson", "events/events-0003.ndjson"]
    );
    let scan = json(&rot_expect(dir.path(), 0, "scan", &["--json"], ""));
    assert_eq!(scan["anomaly_count"], 0);
    assert_eq!(read_lines(dir.path(), &[]), valid);
    // The repaired sealed file holds exactly the valid lines, and its
    // manifest entry says so.
    let sealed = dir
        .path()
        .join(DATA)
        .join("events")
        .join("events-0001.ndjson");
    assert_eq!(file_lines(&sealed), valid[..2]);
    assert_entry_true(
        &sealed,
        &sealed_entries(dir.path(), "events")["events-0001.ndjson"],
    );
    // Appends go on after the repair, and still scan clean.
    let more = vec![line("event", 99, 1_700_000_099.0, 0)];
    append(dir.path(), &more, &["max-records=5"]);
    rot_expect(dir.path(), 0, "scan", &[], "");
    assert_eq!(read_lines(dir.path(), &[]).last(), more.last());
}

#[test]
fn quarantine_keeps_each_damaged_original_with_a_receipt_and_leaves_nothing_to_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (_, valid) = damaged_store(dir.path());
    let originals: BTreeMap<String, Vec<u8>> = ["events-0001.ndjson", "events-0003.ndjson"]
        .iter()
        .map(|n| {
            let p = dir.path().join(DATA).join("events").join(n);
            (n.to_string(), std::fs::read(p).unwrap())
        })
        .collect();
    let report = json(&rot_expect(
        dir.path(),
        0,
        "recover",
        &["--mode", "quarantine", "--quarantine-dir", "q", "--json"],
        "",
    ));
    assert_eq!(report["after"]["anomaly_count"], 0, "{report}");
    let receipts = report["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 2, "{report}");
    for r in receipts {
        assert_eq!(r["action"], "quarantined");
        let copy = PathBuf::from(r["quarantined_to"].as_str().unwrap());
        let name = file_name(Path::new(r["unit"].as_str().unwrap()));
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            originals[&name],
            "{}",
            copy.display()
        );
        assert!(copy.starts_with(dir.path().join("q").canonicalize().unwrap()));
    }
    let receipt_files = std::fs::read_dir(dir.path().join("q"))
        .unwrap()
        .filter(|e| file_name(&e.as_ref().unwrap().path()).ends_with(".receipt.json"))
        .count();
    assert_eq!(receipt_files, 2);
    let listed = json(&rot_expect(
        dir.path(),
        0,
        "receipts",
        &["--kind", "quarantined", "--json"],
        "",
    ));
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["unit"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["events/events-0001.ndjson", "events/events-0003.ndjson"]
    );
    rot_expect(dir.path(), 0, "scan", &[], "");
    assert_eq!(read_lines(dir.path(), &[]), valid);
}

/// A unit with more disowned stretches than recovery acts on is left as it
/// is, said in its receipt, and the other units are still repaired.
#[test]
fn a_unit_with_too_many_disowned_stretches_is_skipped_and_the_rest_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let first = 1_100_000;
    let lines = events(first + 10, 1);
    append(
        dir.path(),
        &lines,
        &[&format!("max-records={first}"), "max-bytes=1000000000"],
    );
    rot_expect(dir.path(), 0, "checkpoint", &[], "");
    // Every other line of the first file changes in place (`"pad":"x"` ->
    // `"y"`): 550,000 separate stretches. One line of the second changes too.
    let big = events_file(dir.path(), 1);
    let mut bytes = std::fs::read(&big).unwrap();
    let mut line_no = 0;
    let mut at = 0;
    while let Some(end) = bytes[at..].iter().position(|&b| b == b'\n') {
        if line_no % 2 == 1 {
            let pad = bytes[at..at + end]
                .windows(7)
                .position(|w| w == b"\"pad\":\"")
                .unwrap();
            bytes[at + pad + 7] = b'y';
        }
        at += end + 1;
        line_no += 1;
    }
    std::fs::write(&big, &bytes).unwrap();
    let small = events_file(dir.path(), 2);
    let mut second = std::fs::read(&small).unwrap();
    let pad = second.windows(7).position(|w| w == b"\"pad\":\"").unwrap();
    second[pad + 7] = b'z';
    std::fs::write(&small, &second).unwrap();

    let report = json(&rot_expect(
        dir.path(),
        2,
        "recover",
        &["--mode", "repair", "--json"],
        "",
    ));
    let receipts = report["receipts"].as_array().unwrap();
    let skipped = receipts
        .iter()
        .find(|r| r["unit"] == "events/events-0001.ndjson")
        .expect("a receipt for the big file");
    assert!(
        skipped["action"]
            .as_str()
            .unwrap()
            .starts_with("skipped: more than 524288 separate stretches"),
        "{}",
        skipped["action"]
    );
    let repaired = receipts
        .iter()
        .find(|r| r["unit"] == "events/events-0002.ndjson")
        .expect("the second file is still repaired");
    assert_eq!(
        repaired["unverified"]["records"], 1,
        "{}",
        repaired["action"]
    );
    assert_eq!(
        std::fs::read(&big).unwrap(),
        bytes,
        "the skipped file is untouched"
    );
    let after = &report["after"]["anomalies"];
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["unit"] == "events/events-0001.ndjson"),
        "only the skipped file still has anomalies"
    );
}
