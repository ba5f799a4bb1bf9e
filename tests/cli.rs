//! The operator surface, end to end through the CLI, on Papyra's files.

use quire_tests::cli::{fixture, quire, quire_run, records, run, run_bytes, stderr, stdout};
use serde_json::Value;

fn damaged_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    std::fs::copy(fixture("papyra/damaged.ndjson"), &path).unwrap();
    (dir, path)
}

fn expected_damage() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("papyra/damaged.expected.json")).unwrap())
        .unwrap()
}

#[test]
fn scan_finds_each_anomaly_at_its_line_and_offset_and_exits_2() {
    let (dir, path) = damaged_copy();
    let before = std::fs::read(&path).unwrap();
    let out = quire_run(
        dir.path(),
        &["scan", "--path", "events.ndjson", "--json"],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(u64, u64, String)> = report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["line"].as_u64().unwrap(),
                a["offset"].as_u64().unwrap(),
                a["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kind_names = |k: &str| match k {
        "corrupted" => "CORRUPTED_LINE",
        "blank" => "BLANK_LINE",
        "not-object" => "INVALID_RECORD",
        "truncated-tail" => "TRUNCATED_LINE",
        other => panic!("unknown kind {other}"),
    };
    let want: Vec<(u64, u64, String)> = expected_damage()["damaged_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["offset"].as_u64().unwrap(),
                kind_names(d["kind"].as_str().unwrap()).to_string(),
            )
        })
        .collect();
    assert_eq!(found, want);
    assert_eq!(report["records"], expected_damage()["valid_records"]);
    // Said plainly: this format has no checksums to catch a changed record.
    assert!(
        report["integrity"]
            .as_str()
            .unwrap()
            .starts_with("none: Papyra's NDJSON has no checksums"),
        "{report}"
    );
    assert!(
        report["anomalies"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("events.ndjson")
    );
    // Text output names file, line and byte offset.
    let text = quire_run(dir.path(), &["scan", "--path", "events.ndjson"], "");
    assert!(
        stdout(&text).contains("events.ndjson:21 (byte 7634"),
        "{}",
        stdout(&text)
    );
    assert!(
        stdout(&text).contains("\nchecksums: none: "),
        "{}",
        stdout(&text)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "scan must not change data"
    );
    let clean = run(
        {
            let mut c = quire(dir.path());
            c.arg("scan")
                .arg("--path")
                .arg(fixture("papyra/clean.ndjson"));
            c
        },
        "",
    );
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn repair_keeps_exactly_the_valid_records_in_order() {
    let (dir, path) = damaged_copy();
    let valid_before = records(&path)
        .into_iter()
        .filter(|v| v.get("kind").is_some() && v.get("timestamp").is_some())
        .collect::<Vec<_>>();
    let out = quire_run(
        dir.path(),
        &[
            "recover",
            "--path",
            "events.ndjson",
            "--mode",
            "repair",
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["receipts"].as_array().unwrap().len(), 1);
    assert_eq!(report["receipts"][0]["action"], "rewritten");
    assert_eq!(report["receipts"][0]["records_kept"], 60);
    assert_eq!(report["after"]["anomaly_count"], 0);
    // The truncated tail was valid JSON cut short? It is dropped either way; every complete valid line stays.
    let after = records(&path);
    assert_eq!(after.len(), 60);
    assert_eq!(after, valid_before.into_iter().take(60).collect::<Vec<_>>());
    // The clean lines are byte-identical to Papyra's originals.
    let original = std::fs::read_to_string(fixture("papyra/clean.ndjson")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    let rescan = quire_run(dir.path(), &["scan", "--path", "events.ndjson"], "");
    assert_eq!(rescan.status.code(), Some(0));
}

#[test]
fn quarantine_needs_a_directory_and_keeps_the_damaged_bytes_with_a_receipt() {
    let (dir, path) = damaged_copy();
    let damaged = std::fs::read(&path).unwrap();
    let refused = quire_run(
        dir.path(),
        &["recover", "--path", "events.ndjson", "--mode", "quarantine"],
        "",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--quarantine-dir"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        damaged,
        "a refused recovery changes nothing"
    );

    let out = quire_run(
        dir.path(),
        &[
            "recover",
            "--path",
            "events.ndjson",
            "--mode",
            "quarantine",
            "--quarantine-dir",
            "q",
            "--json",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let moved = report["receipts"][0]["quarantined_to"].as_str().unwrap();
    assert_eq!(
        std::fs::read(moved).unwrap(),
        damaged,
        "quarantine keeps the damaged original byte for byte"
    );
    let receipt: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{moved}.receipt.json")).unwrap())
            .unwrap();
    assert_eq!(receipt["action"], "quarantined");
    assert_eq!(receipt["anomalies_removed"], 4);
    assert_eq!(records(&path).len(), 60);
    // Quarantined files live outside the data file's units: the next scan is clean (Papyra's defect 4).
    let rescan = quire_run(dir.path(), &["scan", "--path", "events.ndjson"], "");
    assert_eq!(rescan.status.code(), Some(0), "{}", stdout(&rescan));
}

fn append_lines(dir: &std::path::Path, lines: &[String]) {
    let out = quire_run(
        dir,
        &["append", "--path", "log.ndjson"],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn compaction_applies_each_retention_rule_and_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let now = quire::now();
    // 30 events: 10 a day old, 20 fresh; each line is the same length.
    let lines: Vec<String> = (0..30)
        .map(|i| {
            let ts = if i < 10 { now - 86_400.0 } else { now - 10.0 };
            let kind = if i % 3 == 0 { "audit" } else { "event" };
            format!(
                r#"{{"kind":"{kind}","system_id":"s","n":{},"timestamp":{ts}}}"#,
                100 + i
            )
        })
        .collect();
    append_lines(dir.path(), &lines);
    let path = dir.path().join("log.ndjson");
    let line_len = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .len() as u64
        + 1;
    let ns = |p: &std::path::Path| {
        records(p)
            .iter()
            .map(|v| v["n"].as_u64().unwrap() - 100)
            .collect::<Vec<_>>()
    };
    let compact = |args: &[&str]| {
        let mut c = quire(dir.path());
        c.args(["compact", "--path", "log.ndjson", "--json"])
            .args(args);
        let out = run(c, "");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };

    let before = std::fs::read(&path).unwrap();
    let dry = compact(&["--max-age", "3600", "--dry-run"]);
    assert_eq!(
        (
            dry["records_before"].as_u64(),
            dry["records_after"].as_u64()
        ),
        (Some(30), Some(20))
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "dry run must not change data"
    );

    let report = compact(&["--max-age", "3600"]);
    assert_eq!(report["records_after"], 20);
    assert_eq!(ns(&path), (10..30).collect::<Vec<_>>());
    assert_eq!(report["bytes_after"].as_u64(), Some(20 * line_len));

    compact(&[
        "--retention-config",
        r#"{"per_kind": {"audit": {"max_records": 2}}}"#,
    ]);
    let audits: Vec<u64> = records(&path)
        .iter()
        .filter(|v| v["kind"] == "audit")
        .map(|v| v["n"].as_u64().unwrap() - 100)
        .collect();
    assert_eq!(audits, vec![24, 27], "newest two audits");
    assert_eq!(
        records(&path)
            .iter()
            .filter(|v| v["kind"] == "event")
            .count(),
        14,
        "events untouched by the audit override"
    );

    compact(&["--max-records", "10"]);
    assert_eq!(ns(&path).len(), 10);
    assert_eq!(*ns(&path).last().unwrap(), 29);

    let report = compact(&["--max-bytes", &(4 * line_len + 5).to_string()]);
    assert_eq!(
        ns(&path),
        vec![26, 27, 28, 29],
        "newest records that fit in the byte budget"
    );
    assert_eq!(report["bytes_after"].as_u64(), Some(4 * line_len));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        4 * line_len,
        "size counts bytes on disk"
    );
}

/// The ndjson backend copies the kept records' stored bytes itself: what
/// survives compaction is exactly the kept lines as they were on disk
/// (a `\r\n` ending included), with damaged lines between them gone.
#[test]
fn compaction_copies_the_kept_lines_byte_for_byte_around_damage() {
    let dir = tempfile::tempdir().unwrap();
    let now = quire::now();
    let mut lines: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let end = if i == 33 { "\r\n" } else { "\n" };
            format!(
                r#"{{"kind":"event","n":{i},"timestamp":{}}}{end}"#,
                now - 40.0 + i as f64
            )
            .into_bytes()
        })
        .collect();
    lines.insert(25, b"not json at all {\n".to_vec());
    lines.insert(31, vec![0, 0, 0, b'\n']);
    let path = dir.path().join("log.ndjson");
    std::fs::write(&path, lines.concat()).unwrap();

    let mut c = quire(dir.path());
    c.args([
        "compact",
        "--path",
        "log.ndjson",
        "--json",
        "--max-records",
        "20",
    ]);
    let out = run(c, "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records_after"], 20);

    let kept: Vec<u8> = lines
        .iter()
        .filter(|l| l.starts_with(b"{"))
        .skip(20)
        .flatten()
        .copied()
        .collect();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        kept,
        "the newest 20 lines, as stored"
    );
    assert_eq!(report["bytes_after"].as_u64(), Some(kept.len() as u64));
}

#[test]
fn append_skips_lines_that_are_not_records_and_keeps_the_rest_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let good = [
        r#"{"kind": "event", "system_id": "a", "timestamp": 1.5}"#,
        r#"{"kind":"audit","note":"caf\u00e9 \"q\"","timestamp":2}"#,
        r#"{"kind":"event","timestamp":3,"nested":{"deep":[1,2,{"x":null}]}}"#,
    ];
    let mut input = Vec::new();
    input.extend_from_slice(format!("{}\n", good[0]).as_bytes());
    input.extend_from_slice(b"{\"kind\":\"event\",\"timestamp\":1,\"x\":\"\xff\"}\n"); // line 2: not UTF-8
    input.extend_from_slice(format!("  {}  \r\n", good[1]).as_bytes());
    input.extend_from_slice(b"{\"kind\":\"event\",\"timestamp\":\"soon\"}\n"); // line 4
    input.extend_from_slice(b"\n[1,2]\n"); // a blank line, then line 6: not an object
    input.extend_from_slice(good[2].as_bytes()); // last line, no newline
    let mut cmd = quire(dir.path());
    cmd.args(["append", "--path", "log.ndjson", "--batch-size", "2"]);
    let out = run_bytes(cmd, &input);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for (line, words) in [(2, "not UTF-8"), (4, "timestamp"), (6, "not a JSON object")] {
        assert!(
            err.contains(&format!("stdin line {line}:")) && err.contains(words),
            "line {line}: {err}"
        );
    }
    assert!(
        stdout(&out).contains("appended 3 records, rejected 3"),
        "{}",
        stdout(&out)
    );
    let want: String = good.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log.ndjson")).unwrap(),
        want
    );
}

#[test]
fn append_and_read_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"kind":"{}","system_id":"sys{}","i":{i},"timestamp":{}}}"#,
                ["event", "audit"][i % 2],
                i % 3,
                1000 + i
            )
        })
        .collect();
    append_lines(dir.path(), &lines);
    let read = |args: &[&str]| {
        let mut c = quire(dir.path());
        c.args(["read", "--path", "log.ndjson"]).args(args);
        let out = run(c, "");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["i"]
                    .as_u64()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&[]), (0..50).collect::<Vec<_>>());
    assert_eq!(read(&["--kind", "audit", "--limit", "3"]), vec![45, 47, 49]);
    assert_eq!(
        read(&["--kind", "audit", "--limit", "3", "--newest-first"]),
        vec![49, 47, 45]
    );
    assert_eq!(
        read(&["--since", "1010", "--until", "1014"]),
        vec![10, 11, 12, 13]
    );
    assert_eq!(
        read(&["--store-name", "sys2", "--kind", "event"]),
        vec![2, 8, 14, 20, 26, 32, 38, 44]
    );
    // Bad input lines are reported by number, the rest are kept, exit 1.
    let out = quire_run(
        dir.path(),
        &["append", "--path", "log.ndjson"],
        "{\"kind\":\"event\",\"timestamp\":1,\"i\":50}\nnot json\n[1]\n{\"kind\":\"event\",\"timestamp\":2,\"i\":51}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("stdin line 2") && stderr(&out).contains("stdin line 3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&["--limit", "2"]), vec![50, 51]);
}

#[test]
fn startup_check_doctor_and_errors_for_people() {
    let (dir, _path) = damaged_copy();
    let code = |args: &[&str]| quire_run(dir.path(), args, "");
    assert_eq!(
        code(&[
            "startup-check",
            "--path",
            "events.ndjson",
            "--mode",
            "scan-only"
        ])
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        code(&[
            "startup-check",
            "--path",
            "events.ndjson",
            "--mode",
            "fail-on-anomaly"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        code(&[
            "startup-check",
            "--path",
            "events.ndjson",
            "--mode",
            "ignore"
        ])
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        code(&["doctor", "--path", "events.ndjson"]).status.code(),
        Some(2)
    );
    let recovered = code(&[
        "startup-check",
        "--path",
        "events.ndjson",
        "--mode",
        "recover",
    ]);
    assert_eq!(recovered.status.code(), Some(0), "{}", stdout(&recovered));
    assert_eq!(
        code(&["doctor", "--path", "events.ndjson"]).status.code(),
        Some(0)
    );
    assert_eq!(
        code(&[
            "startup-check",
            "--path",
            "events.ndjson",
            "--mode",
            "fail-on-anomaly"
        ])
        .status
        .code(),
        Some(0)
    );

    let missing = code(&["scan", "--path", "nope.ndjson"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("nope.ndjson") && stderr(&missing).contains("does not exist"),
        "{}",
        stderr(&missing)
    );
    let bad_backend = code(&["scan", "--path", "events.ndjson", "--backend", "nosuch"]);
    assert_eq!(bad_backend.status.code(), Some(1));
    assert!(
        stderr(&bad_backend).contains("built-ins are: ndjson, memory"),
        "{}",
        stderr(&bad_backend)
    );
    let usage = code(&["scan", "--bogus"]);
    assert_eq!(
        usage.status.code(),
        Some(1),
        "usage errors are 1, not 2 (2 means anomalies)"
    );
    assert!(!stderr(&usage).contains("panicked"));
}

#[test]
fn metrics_and_plugin_check() {
    let (dir, _path) = damaged_copy();
    let out = quire_run(
        dir.path(),
        &["metrics", "--path", "events.ndjson", "--prometheus"],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("quire_scans_total 1\n")
            && text.contains("quire_anomalies_detected_total 4\n"),
        "{text}"
    );
    assert!(text.contains("quire_stored_records 60\n"), "{text}");
    let check = quire_run(dir.path(), &["plugin", "check", "standard", "--json"], "");
    let described: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(described["role"], "retention policy");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let out = run(
        {
            let mut c = quire(dir.path());
            c.arg("plugin").arg("check").arg(&junk);
            c
        },
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a WebAssembly file"),
        "{}",
        stderr(&out)
    );
}
