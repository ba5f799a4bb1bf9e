//! Papyra 0.3.0 interop, both ways, with fixtures papyra itself wrote
//! (`fixtures/papyra/generate.py`).

use quire::{ReadQuery, Record, Store};
use quire_tests::cli::fixture;
use serde_json::Value;

/// Papyra's reader drops `kind`; group quire's records the same way.
fn grouped(records: &[Value]) -> Value {
    let mut out = serde_json::json!({"events": [], "audits": [], "dead_letters": []});
    for r in records {
        let mut r = r.as_object().unwrap().clone();
        let group = match r.remove("kind").unwrap().as_str().unwrap() {
            "event" => "events",
            "audit" => "audits",
            "dead_letter" => "dead_letters",
            other => panic!("unexpected kind {other}"),
        };
        out[group].as_array_mut().unwrap().push(Value::Object(r));
    }
    out
}

fn open(path: &std::path::Path, read_only: bool) -> Store {
    let mut config = quire_tests::builtin_config("ndjson", path, &[]);
    config.read_only = read_only;
    Store::open(config).unwrap()
}

#[test]
fn files_written_by_papyra_read_back_record_for_record() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("papyra/expected.json")).unwrap())
            .unwrap();
    for name in ["papyra/clean.ndjson", "papyra/damaged.ndjson"] {
        let store = open(&fixture(name), true);
        let records: Vec<Value> = store
            .read_all(&ReadQuery::default())
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(&r.envelope.json).unwrap())
            .collect();
        assert_eq!(records.len(), 60, "{name}");
        assert_eq!(
            grouped(&records),
            expected,
            "{name}: every field of every record, in order"
        );
    }
}

#[test]
fn files_written_by_quire_are_read_by_papyra() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_papyra = std::process::Command::new(&python)
        .args(["-c", "import papyra"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_papyra {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install papyra==0.3.0 (see .ci/run)"
        );
        eprintln!(
            "SKIPPED: papyra is not installed here (pip install papyra==0.3.0); CI runs this test"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written-by-quire.ndjson");
    let store = open(&path, false);
    // Compact separators and other field orders, unicode, nested payloads: what quire writes.
    let lines = [
        r#"{"timestamp":1700000000.5,"kind":"event","system_id":"s1","actor_address":"s1:a","event_type":"Started","payload":{"n":1,"tags":["é","日本"]}}"#,
        r#"{"kind":"audit","system_id":"s1","timestamp":1700000001.25,"total_actors":3,"alive_actors":2,"stopping_actors":1,"restarting_actors":0,"registry_size":3,"registry_orphans":[],"registry_dead":["x"],"dead_letters_count":1}"#,
        r#"{"kind":"dead_letter","system_id":"s2","target":"s2:b","message_type":"Ping","payload":{"q":"\"quoted\" \\ back"},"timestamp":1700000002.125}"#,
    ];
    store.append(quire_tests::parse_records(&lines)).unwrap();
    let mut built = serde_json::Map::new();
    built.insert("system_id".into(), "s3".into());
    built.insert("actor_address".into(), "s3:c".into());
    built.insert("event_type".into(), "Built".into());
    built.insert("payload".into(), serde_json::json!({"k": 0.1}));
    store
        .append(vec![Record::new("event", 1700000003.0, built).unwrap()])
        .unwrap();
    drop(store);

    let out = std::process::Command::new(&python)
        .arg(fixture("papyra/read_with_papyra.py"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "papyra failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let papyra: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(papyra["events"].as_array().unwrap().len(), 2);
    assert_eq!(papyra["audits"].as_array().unwrap().len(), 1);
    assert_eq!(papyra["dead_letters"].as_array().unwrap().len(), 1);
    assert_eq!(papyra["events"][0]["payload"]["tags"][1], "日本");
    assert_eq!(papyra["events"][0]["timestamp"], 1700000000.5);
    assert_eq!(
        papyra["dead_letters"][0]["payload"]["q"],
        "\"quoted\" \\ back"
    );
    assert_eq!(papyra["audits"][0]["registry_dead"][0], "x");
    assert_eq!(papyra["events"][1]["event_type"], "Built");
}
