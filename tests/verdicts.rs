//! The record check as it really runs — the guest helper compiled to wasm
//! with SIMD, inside the ndjson plugin — against serde_json run natively.
//! Every single edit of a few seed lines (each after its seed, so the
//! guest's remembered line shapes are exercised), and lines of every length
//! around the SIMD block sizes, go through a real store: the records read
//! back must be exactly the lines serde_json calls records, in order, with
//! the same kind, store, timestamp and text.

use quire::{ReadQuery, Store};
use quire_tests::builtin_config;
use serde::Deserialize;

/// What a record must have, read as the guest helper's slow path reads it.
#[derive(Deserialize)]
struct Head {
    kind: Option<String>,
    timestamp: Option<f64>,
    store: Option<String>,
    system_id: Option<String>,
}

/// serde_json's verdict on one line: its kind, store, timestamp and text
/// when it is a record.
fn expected(line: &[u8]) -> Option<(String, String, u64, String)> {
    let text = std::str::from_utf8(line).ok()?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    if !text.trim_start().starts_with('{') {
        return None; // serde reads a struct from an array too
    }
    let head: Head = serde_json::from_str(text).ok()?;
    let timestamp = head.timestamp.filter(|t| t.is_finite())?;
    let store = head.store.or(head.system_id).unwrap_or("default".into());
    Some((head.kind?, store, timestamp.to_bits(), text.to_string()))
}

const SEEDS: &[&str] = &[
    r#"{"kind": "event", "system_id": "local", "actor_address": "local:worker-3", "event_type": "Tick", "payload": {"n": 12, "note": "mailbox drained"}, "timestamp": 1700000000.125}"#,
    r#"{"timestamp":-12.5e-3,"store":"s","kind":"audit","x":[true,false,null,{"a":[]},-0.0E+1]}"#,
    r#"{"kind":"dead_letter","store":"q","system_id":"p","message":"é \"quoted\" \\ \u00e9","timestamp":17}"#,
    r#"  {"kind" : "event" , "store" : "a b" , "timestamp" : 5 , "deep" : [[[{"k": [1, 2.5]}]]]}  "#,
];

const ALPHABET: &[u8] = b"{}[]:,\" 0123456789.-+eEtrufalsnkidmpy\\\x01\t\r\xc3\xa9\xff";

fn lines() -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for seed in SEEDS {
        for edit in quire_records::edits::single_edits(seed.as_bytes(), ALPHABET) {
            if !edit.contains(&b'\n') {
                lines.push(seed.as_bytes().to_vec());
                lines.push(edit);
            }
        }
    }
    // Every length across the 16- and 64-byte blocks, quotes and brackets
    // inside strings at every alignment, and lines far past the stack size.
    for len in (0..300).chain([1023, 1024, 1025, 5000, 70_000]) {
        let filler = "x".repeat(len);
        let tricky = "{[:,\" ]}".repeat(len % 17).replace('"', "'");
        lines.push(
            format!(r#"{{"kind":"k{len}","note":"{filler}","t":"{tricky}","timestamp":{len}.5}}"#)
                .into_bytes(),
        );
        lines.push(format!(r#"{{"kind":"k","timestamp":1,"x":{filler}}}"#).into_bytes());
    }
    lines
}

#[test]
fn the_wasm_record_check_agrees_with_serde_json_on_every_single_edit() {
    let lines = lines();
    let want: Vec<_> = lines.iter().filter_map(|l| expected(l)).collect();
    assert!(want.len() > 20_000, "only {} records", want.len());
    assert!(want.len() < lines.len() - 5_000, "too few damaged lines");

    let dir = tempfile::tempdir().unwrap();
    let mut file = Vec::new();
    for line in &lines {
        file.extend_from_slice(line);
        file.push(b'\n');
    }
    std::fs::write(dir.path().join("events.ndjson"), &file).unwrap();
    let config = builtin_config("ndjson", dir.path().join("events.ndjson"), &[]);
    let store = Store::open(config).unwrap();

    let got: Vec<_> = store
        .read_all(&ReadQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.envelope)
        .map(|e| (e.kind, e.store, e.timestamp.to_bits(), e.json))
        .collect();
    if got != want {
        let at = got.iter().zip(&want).position(|(g, w)| g != w);
        let at = at.unwrap_or(got.len().min(want.len()));
        panic!(
            "records differ from serde_json's from record {at}:\n  guest: {:?}\n  serde: {:?}",
            got.get(at),
            want.get(at)
        );
    }
    let report = store.scan(&quire::progress::Silent).unwrap();
    assert_eq!(report.records, want.len() as u64);
    assert_eq!(report.anomaly_count, (lines.len() - want.len()) as u64);
}

/// The append check as it runs in wasm: a record holding a line break
/// (a newline between its tokens, or a carriage return) anywhere across
/// the 16- and 64-byte blocks of the batch's text is refused, and nothing
/// of its batch is written; batches of clean records of every length pass
/// and read back byte for byte.
#[test]
fn the_wasm_append_check_finds_every_line_break() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let store = Store::open(builtin_config("ndjson", &path, &[])).unwrap();
    let record = |pad: usize, brk: &str| {
        let json = format!(
            r#"{{"kind":"a","timestamp":1,"pad":"{}"{brk}}}"#,
            "x".repeat(pad)
        );
        quire::Record::from_json_line(&json, 0.0).unwrap()
    };
    let mut want = Vec::new();
    for pad in 0..140 {
        let clean = record(pad, "");
        for brk in ["\n", "\r", " \r\n "] {
            let batch = vec![clean.clone(), record(pad, brk), clean.clone()];
            let refused = store.append(batch).unwrap_err().to_string();
            assert!(
                refused.contains("record 1 of the batch refused") && refused.contains("line break"),
                "{pad} {brk:?}: {refused}"
            );
        }
        store.append(vec![clean.clone(); 1 + pad % 3]).unwrap();
        want.extend(std::iter::repeat_n(clean.json.clone(), 1 + pad % 3));
    }
    // Batches long enough for the SIMD counters to be emptied many times.
    let clean = record(40, "");
    let mut long = vec![clean.clone(); 300];
    store.append(long.clone()).unwrap();
    want.extend(std::iter::repeat_n(clean.json.clone(), 300));
    long[299] = record(40, "\n");
    let refused = store.append(long).unwrap_err().to_string();
    assert!(
        refused.contains("record 299 of the batch refused"),
        "{refused}"
    );
    // A record whose whitespace is 4,096 newlines (a multiple of 256 in
    // every byte lane), starting at span-sized offsets of the batch's text:
    // byte counters that wrapped would count none of them and take the
    // batch for one line per record.
    for start in [4080, 4096, 8160, 8192] {
        let head = r#"{"kind":"a","timestamp":1,"p":""#;
        let pad = start - (clean.json.len() + 1) - head.len() - r#"","x":["#.len();
        let json = format!(
            r#"{head}{}","x":[{}]}}"#,
            "x".repeat(pad),
            "\n".repeat(4096)
        );
        let record = quire::Record::from_json_line(&json, 0.0).unwrap();
        let run = clean.json.len() + 1 + record.json.find('\n').unwrap();
        assert_eq!(run, start, "the newlines start where planned");
        let refused = store
            .append(vec![clean.clone(), record])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("record 1 of the batch refused"),
            "{start}: {refused}"
        );
    }
    store.flush().unwrap();
    let mut file = want.join("\n");
    file.push('\n');
    assert_eq!(std::fs::read_to_string(&path).unwrap(), file);
}
