//! What a plugin returns is untrusted: its words reach no terminal raw, its
//! unit ids stay inside its root, its records pass the filter they were read
//! with, its batches add up, and its scan offsets move forward inside the
//! unit.

use super::*;
use quire_tests::cli::{stderr, stdout};

/// Bytes that drive a terminal: ESC, BEL, CR, and the bidi override.
fn assert_inert(what: &str, text: &str) {
    for bad in ['\x1b', '\x07', '\r', '\u{202e}', '\u{9b}'] {
        assert!(!text.contains(bad), "{what} carries {bad:?} raw: {text:?}");
    }
}

/// `quire VERB --option attack=evil-text ARGS...` against the hostile plugin.
fn hostile_cli(fixture: &Fixture, args: &[&str], stdin: &str) -> std::process::Output {
    let mut rest = vec!["--option", "attack=evil-text"];
    rest.extend_from_slice(&args[1..]);
    fixture.cli(args[0], &rest, stdin)
}

#[test]
fn plugin_text_reaches_the_terminal_escaped() {
    let fixture = Fixture::new();
    // Stats details (keys and values) in inspect.
    let out = hostile_cli(&fixture, &["inspect"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_inert("inspect stdout", &stdout(&out));
    assert!(stdout(&out).contains("\\u{1b}[2J"), "{}", stdout(&out));
    // An anomaly's detail in scan (exit 2: it found damage).
    let out = hostile_cli(&fixture, &["scan"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_inert("scan stdout", &stdout(&out));
    assert!(stdout(&out).contains("damaged \\u{1b}"), "{}", stdout(&out));
    // The plugin's own error, on stderr.
    let out = hostile_cli(
        &fixture,
        &["append"],
        "{\"kind\":\"attack\",\"timestamp\":1}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_inert("append error", &stderr(&out));
    assert!(
        stderr(&out).contains("refused: \\u{1b}"),
        "{}",
        stderr(&out)
    );
    // A panic message, through the fault and the warning logged for it.
    let out = hostile_cli(
        &fixture,
        &["append"],
        "{\"kind\":\"panic\",\"timestamp\":1}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_inert("panic", &err);
    // (The panic message itself goes to the guest's stderr, which no plugin is given.)
    assert!(err.contains("WARN"), "the fault was not logged: {err}");
}

#[test]
fn json_reports_escape_control_characters_too() {
    let fixture = Fixture::new();
    let out = hostile_cli(&fixture, &["scan", "--json"], "");
    let text = stdout(&out);
    assert_inert("scan --json", &text);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        report["anomalies"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("damaged")
    );
}

#[test]
fn unit_ids_outside_the_root_are_faults() {
    for (attack, words) in [
        ("unit-escape", "outside its root"),
        ("unit-absolute", "absolute unit"),
    ] {
        let fixture = Fixture::new();
        let store = fixture.open(attack);
        let err = store.scan(&Silent).unwrap_err();
        let message = err.to_string();
        let (plugin, operation, cause) = fault_parts(err);
        assert!(plugin.contains(HOSTILE_PLUGIN));
        assert_eq!(operation, "units", "{message}");
        assert!(cause.contains(words), "{message}");
        // Through the CLI: no report prints a host path outside the data directory.
        let out = fixture.cli("scan", &["--option", &format!("attack={attack}")], "");
        assert_eq!(out.status.code(), Some(1), "{attack}");
        assert!(!stdout(&out).contains("/etc/passwd"), "{}", stdout(&out));
    }
}

#[test]
fn records_outside_the_read_filter_are_faults() {
    let fixture = Fixture::new();
    let store = fixture.open("lying-cursor");
    let batch = || {
        vec![
            record("event", 1.0),
            record("audit", 2.0),
            record("event", 30.0),
        ]
    };
    store.append(batch()).unwrap();
    // Unfiltered reads are honest even for this plugin.
    assert_eq!(timestamps(&store), [1.0, 2.0, 30.0]);
    for query in [
        ReadQuery {
            kinds: vec!["event".into()],
            ..ReadQuery::default()
        },
        ReadQuery {
            until: Some(10.0),
            ..ReadQuery::default()
        },
        ReadQuery {
            stores: vec!["other".into()],
            ..ReadQuery::default()
        },
    ] {
        let err = store.read_all(&query).unwrap_err();
        let (_, operation, cause) = fault_parts(err);
        assert_eq!(operation, "read");
        assert!(cause.contains("read filter"), "{cause}");
        // The fault discarded the instance and its in-memory records: refill.
        assert_eq!(timestamps(&store), [] as [f64; 0]);
        store.append(batch()).unwrap();
    }
}

#[test]
fn a_batch_whose_lengths_do_not_add_up_is_a_fault() {
    let fixture = Fixture::new();
    let store = fixture.open("bad-batch");
    store
        .append(vec![record("event", 1.0), record("event", 2.0)])
        .unwrap();
    let err = store.read_all(&ReadQuery::default()).unwrap_err();
    let (_, operation, cause) = fault_parts(err);
    assert_eq!(operation, "read");
    assert!(
        cause.contains("malformed batch") && cause.contains("record 0"),
        "{cause}"
    );
    // The instance was discarded; the next call gets a fresh one.
    store.append(vec![record("event", 3.0)]).unwrap();
}

#[test]
fn checksums_of_overlapping_spans_past_the_limit_are_a_fault() {
    let fixture = Fixture::new();
    let store = fixture.open("checksum-overlap");
    store.append(vec![record("event", 1.0)]).unwrap();
    let started = Instant::now();
    let err = store.append(vec![record("attack", 2.0)]).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, operation, cause) = fault_parts(err);
    assert_eq!(operation, "append");
    assert!(
        cause.contains("checksum.crc32-spans: spans of 20480000 bytes in all; at most 16777216"),
        "{cause}"
    );
    store.append(vec![record("event", 3.0)]).unwrap();
}

#[test]
fn scans_that_move_backwards_or_past_the_end_are_faults() {
    for (attack, words) in [
        ("scan-beyond", "which has"),
        ("scan-backwards", "no progress"),
    ] {
        let fixture = Fixture::new();
        let store = fixture.open(attack);
        store
            .append(vec![record("event", 1.0), record("event", 2.0)])
            .unwrap();
        let started = Instant::now();
        let err = store.scan(&Silent).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        let message = err.to_string();
        let (_, operation, cause) = fault_parts(err);
        assert_eq!(operation, "validate", "{message}");
        assert!(cause.contains(words), "{attack}: {message}");
    }
}

#[test]
fn a_checksum_of_memory_the_plugin_does_not_have_is_a_fault() {
    let fixture = Fixture::new();
    let store = fixture.open("checksum-out-of-bounds");
    store.append(vec![record("event", 1.0)]).unwrap();
    let err = store.append(vec![record("attack", 2.0)]).unwrap_err();
    let (_, operation, cause) = fault_parts(err);
    assert_eq!(operation, "append");
    assert!(cause.contains("out of bounds of memory"), "{cause}");
    // The instance was discarded; the next call gets a fresh one.
    store.append(vec![record("event", 3.0)]).unwrap();
}
