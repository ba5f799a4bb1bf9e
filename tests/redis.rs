//! The Redis Streams backend against a real `redis-server`: Papyra's
//! layout, whole-stream reads and scans, idempotent retried appends,
//! durability as the server can keep it, and the faults a network brings
//! (refused, silent, restarted and SIGKILLed servers).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use quire::{Durability, ReadQuery, Store, StoreConfig};
use quire_tests::cli::{Since, append_until, quire};
use quire_tests::redis::{RedisServer, Reply};
use quire_tests::{builtin_config, parse_records};

fn config(url: &str, options: &[(&str, &str)]) -> StoreConfig {
    let mut config = builtin_config("redis", url, options);
    config.durability = Durability::PerWrite;
    config
}

fn open(server: &RedisServer) -> Store {
    Store::open(config(&server.url(), &[])).unwrap()
}

fn event(store: &str, id: u64) -> String {
    format!(
        r#"{{"kind":"event","system_id":"{store}","timestamp":{},"id":{id},"actor":"a-{id}"}}"#,
        1_700_000_000 + id
    )
}

fn jsons(store: &Store, query: &ReadQuery) -> Vec<String> {
    store
        .read_all(query)
        .unwrap()
        .into_iter()
        .map(|r| r.envelope.json)
        .collect()
}

#[test]
fn records_land_in_papyras_streams_one_data_field_each_and_read_back_byte_for_byte() {
    let server = RedisServer::start();
    let store = open(&server);
    let lines = vec![
        event("local", 1),
        r#"{"kind":"audit","system_id":"local","timestamp":1700000002.25,"note":"é ✓"}"#
            .to_string(),
        r#"{"kind":"dead_letter","system_id":"local","timestamp":1700000003,"target":"x"}"#
            .to_string(),
        event("other", 4),
        r#"{"kind":"metric","store":"other","timestamp":1700000005,"v":1.5}"#.to_string(),
        event("local", 6),
    ];
    store.append(parse_records(&lines)).unwrap();
    let expect = |key: &str, want: &[&String]| {
        let entries = server.entries(key);
        let got: Vec<String> = entries
            .iter()
            .map(|(_, fields)| {
                assert_eq!(fields.len(), 1, "{key}: one field per entry");
                assert_eq!(fields[0].0, "data");
                String::from_utf8(fields[0].1.clone()).unwrap()
            })
            .collect();
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{key}");
    };
    expect("papyra:local:events", &[&lines[0], &lines[5]]);
    expect("papyra:local:audits", &[&lines[1]]);
    expect("papyra:local:dead_letters", &[&lines[2]]);
    expect("papyra:other:events", &[&lines[3]]);
    expect("papyra:other:kind:metric", &[&lines[4]]);
    // Read back: every record, byte for byte, in timestamp order across streams.
    assert_eq!(jsons(&store, &ReadQuery::default()), lines);
    // Per-record filters.
    let only = ReadQuery {
        stores: vec!["local".into()],
        kinds: vec!["event".into()],
        ..ReadQuery::default()
    };
    assert_eq!(
        jsons(&store, &only),
        vec![lines[0].clone(), lines[5].clone()]
    );
    // Another prefix is another set of streams.
    let other = Store::open(config(&server.url(), &[("prefix", "elsewhere")])).unwrap();
    assert!(jsons(&other, &ReadQuery::default()).is_empty());
    other.append(parse_records(&lines[..1])).unwrap();
    assert_eq!(server.entries("elsewhere:local:events").len(), 1);
}

#[test]
fn newest_n_reads_the_newest_of_a_long_stream_and_scan_sees_every_entry() {
    let server = RedisServer::start();
    // Damage at the oldest end: Papyra's scan samples the newest 1,000 and never sees it.
    let bad_json = server.xadd("papyra:local:events", &[("data", b"{\"kind\":\"event\",")]);
    let no_data = server.xadd("papyra:local:events", &[("payload", b"{}")]);
    let not_utf8 = server.xadd(
        "papyra:local:events",
        &[("data", b"{\"kind\":\"ev\xffnt\",\"timestamp\":1}")],
    );
    let wrong_kind = server.xadd(
        "papyra:local:events",
        &[("data", br#"{"kind":"audit","timestamp":1}"#)],
    );
    let not_record = server.xadd("papyra:local:events", &[("data", b"[1,2,3]")]);
    let store = open(&server);
    let lines: Vec<String> = (0..2_600).map(|i| event("local", i)).collect();
    for chunk in lines.chunks(500) {
        store.append(parse_records(chunk)).unwrap();
    }
    let newest = ReadQuery {
        limit: Some(3),
        ..ReadQuery::default()
    };
    server.cmd(&["CONFIG", "RESETSTAT"]);
    assert_eq!(jsons(&store, &newest), lines[2_597..].to_vec());
    // From the end: one cursor batch of XREVRANGE pages, no walk from the oldest entry.
    let stats = server.cmd(&["INFO", "commandstats"]);
    let stats = String::from_utf8_lossy(stats.bytes().unwrap()).into_owned();
    assert!(
        stats.contains("cmdstat_xrevrange:calls=1,")
            || stats.contains("cmdstat_xrevrange:calls=2,"),
        "{stats}"
    );
    assert!(!stats.contains("cmdstat_xrange:"), "{stats}");
    let since = ReadQuery {
        since: Some(1_700_000_000.0 + 2_590.0),
        newest_first: true,
        ..ReadQuery::default()
    };
    let mut tail: Vec<String> = lines[2_590..].to_vec();
    tail.reverse();
    assert_eq!(jsons(&store, &since), tail);
    assert_eq!(
        jsons(&store, &ReadQuery::default()),
        lines,
        "a read skips what scan flags"
    );

    let report = store.scan(&quire::progress::Silent).unwrap();
    assert_eq!(report.records, 2_600);
    let found: Vec<(String, String)> = report
        .anomalies
        .iter()
        .map(|f| (f.kind.clone(), f.detail.clone()))
        .collect();
    assert_eq!(found.len(), 5, "{found:#?}");
    for ((kind, detail), (id, want_kind, words)) in found.iter().zip([
        (&bad_json, "CORRUPTED_LINE", "invalid JSON"),
        (&no_data, "INVALID_RECORD", "no `data` field"),
        (&not_utf8, "CORRUPTED_LINE", "UTF-8"),
        (
            &wrong_kind,
            "INVALID_RECORD",
            "a `audit` record in the stream for `event`",
        ),
        (&not_record, "INVALID_RECORD", "not a JSON object"),
    ]) {
        assert_eq!(kind, want_kind, "{detail}");
        assert!(
            detail.starts_with(&format!("entry {id}")) && detail.contains(words),
            "{detail}"
        );
    }
    assert!(
        report
            .anomalies
            .iter()
            .all(|f| f.unit == "papyra:local:events" && f.at_address)
    );
}

/// Forwards to `server`; on the first connection that carries an append
/// script call, the request reaches the server and its reply is thrown
/// away and the connection cut, as a network failure would.
fn reply_dropping_proxy(server: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let drops = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let mut upstream = TcpStream::connect(server).unwrap();
            let drops = drops.clone();
            // Set before the script call is forwarded, so its reply cannot pass.
            let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut back_client = client.try_clone().unwrap();
            let mut back_upstream = upstream.try_clone().unwrap();
            let cutting = cut.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = match back_upstream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cutting.load(Ordering::SeqCst) {
                        let _ = back_client.shutdown(std::net::Shutdown::Both);
                        let _ = back_upstream.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                    if back_client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            std::thread::spawn(move || {
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let script = buf[..n].windows(7).any(|w| w == b"EVALSHA");
                    if script && drops.fetch_add(1, Ordering::SeqCst) == 0 {
                        cut.store(true, Ordering::SeqCst);
                    }
                    if upstream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, dropped)
}

#[test]
fn a_batch_whose_reply_was_lost_is_retried_and_stored_once() {
    let server = RedisServer::start();
    let (proxy, dropped) = reply_dropping_proxy(server.addr);
    server.cmd(&["CONFIG", "RESETSTAT"]);
    let store = Store::open(config(&format!("redis://{proxy}"), &[])).unwrap();
    let lines: Vec<String> = (0..300).map(|i| event("local", i)).collect();
    store.append(parse_records(&lines)).unwrap();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "one call's reply was cut, then a retry"
    );
    // Both attempts ran on the server: the second found the batch stored.
    let stats = server.cmd(&["INFO", "commandstats"]);
    let stats = String::from_utf8_lossy(stats.bytes().unwrap()).into_owned();
    assert!(stats.contains("cmdstat_evalsha:calls=2,"), "{stats}");
    let stored: Vec<Vec<u8>> = server
        .entries("papyra:local:events")
        .into_iter()
        .map(|(_, f)| f[0].1.clone())
        .collect();
    assert_eq!(stored.len(), 300, "stored once, not twice");
    assert_eq!(
        stored,
        lines
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect::<Vec<_>>()
    );
}

#[test]
fn another_writer_ahead_of_the_planned_ids_does_not_lose_or_split_a_batch() {
    let server = RedisServer::start();
    let store = open(&server);
    store.append(parse_records(&[event("local", 0)])).unwrap();
    // A writer with explicit ids far in the future (an id quire would have chosen).
    let future = "9999999999999-0";
    let reply = server.cmd(&[
        "XADD",
        "papyra:local:events",
        future,
        "data",
        &event("local", 1),
    ]);
    assert_eq!(reply.bytes(), Some(future.as_bytes()));
    store
        .append(parse_records(&[event("local", 2), event("local", 3)]))
        .unwrap();
    let ids: Vec<String> = server
        .entries("papyra:local:events")
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[1], future);
    assert_eq!(
        ids[2], "9999999999999-1",
        "planned again above the other writer"
    );
}

#[test]
fn durable_is_refused_or_reported_where_the_server_cannot_keep_it() {
    let server = RedisServer::start_with(&["--appendonly", "no"]);
    let store = open(&server);
    let err = store
        .append(parse_records(&[event("local", 1)]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("appendonly is off") && err.contains(&server.addr.to_string()),
        "{err}"
    );
    assert_eq!(
        server.cmd(&["EXISTS", "papyra:local:events"]),
        Reply::Integer(0),
        "nothing written"
    );
    // Written on append, synced on flush: the flush says what it could not do.
    let mut batch = config(&server.url(), &[]);
    batch.durability = Durability::Batch;
    let store = Store::open(batch).unwrap();
    store.append(parse_records(&[event("local", 1)])).unwrap();
    let err = store.flush().unwrap_err().to_string();
    assert!(
        err.contains("1 record(s) the server acknowledged are not synced")
            && err.contains("accept-unsynced=true"),
        "{err}"
    );
    drop(store);
    server.cmd(&["DEL", "papyra:local:events"]);
    // The documented downgrade: answered once the server has them, reported unsynced.
    let store = Store::open(config(&server.url(), &[("accept-unsynced", "true")])).unwrap();
    store
        .append(parse_records(&[event("local", 1), event("local", 2)]))
        .unwrap();
    let report = store.durability().unwrap();
    let local = report.stores.iter().find(|s| s.store == "local").unwrap();
    assert_eq!((local.accepted, local.unsynced), (2, 2));
    assert!(
        local.codec.contains("answered as written"),
        "{}",
        local.codec
    );
    // Where the server syncs before replying, durable costs nothing extra and nothing is unsynced.
    let synced = RedisServer::start();
    let store = open(&synced);
    store.append(parse_records(&[event("local", 1)])).unwrap();
    let report = store.durability().unwrap();
    assert_eq!(report.stores[0].unsynced, 0);
    assert!(
        report.stores[0].codec.contains("before every reply"),
        "{}",
        report.stores[0].codec
    );
}

#[test]
fn refused_and_silent_servers_are_clear_errors_naming_the_address_within_the_timeout() {
    // Nothing listens here.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = Store::open(config(&format!("redis://{closed}"), &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&closed.to_string()) && err.contains("cannot reach the server"),
        "{err}"
    );
    // Accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let err = Store::open(config(
        &format!("redis://{addr}"),
        &[("io-timeout-ms", "400")],
    ))
    .err()
    .unwrap()
    .to_string();
    let took = started.elapsed();
    assert!(
        err.contains(&addr.to_string()) && err.contains("no reply within"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Without the option, the host's per-call timeout still ends the wait.
    let mut tight = config(&format!("redis://{addr}"), &[]);
    tight.limits.timeout = Duration::from_millis(700);
    let started = Instant::now();
    let err = Store::open(tight).err().unwrap().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(err.contains("redis"), "{err}");
    drop(silent);
    // A path that is no address is refused, and the open leaves nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let oops = dir.path().join("oops");
    let err = Store::open(config(oops.to_str().unwrap(), &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--path redis://IP:PORT"), "{err}");
    assert!(!oops.exists(), "the directory the open made is gone again");
    // A URL with a host name is refused before anything is granted.
    let err = Store::open(config("redis://localhost:6379", &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("IP literal"), "{err}");
}

#[test]
fn a_server_restarted_between_calls_is_reached_again() {
    let mut server = RedisServer::start();
    let store = open(&server);
    let lines: Vec<String> = (0..20).map(|i| event("local", i)).collect();
    store.append(parse_records(&lines[..10])).unwrap();
    server.kill();
    server.restart();
    store.append(parse_records(&lines[10..])).unwrap();
    assert_eq!(jsons(&store, &ReadQuery::default()), lines);
}

#[test]
fn sigkilled_server_mid_append_keeps_every_acknowledged_record_once() {
    let mut server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut rounds_acked = Vec::new();
    for (round, delay_ms) in [(0u64, 150u64), (1, 400), (2, 700)] {
        let mut cmd = quire(dir.path());
        cmd.args(["append", "-b", "redis", "-p", &server.url(), "--ack"])
            .args(["--batch-size", "50", "--durability", "per-write"]);
        let lines = (0..200_000u64).map(move |id| {
            format!(
                "{{\"kind\":\"event\",\"system_id\":\"crash\",\"round\":{round},\"id\":{id},\"timestamp\":{id}}}\n"
            )
        });
        // The server dies, not the writer: the append must fail, losing nothing it acknowledged.
        let delay = Duration::from_millis(delay_ms);
        let (acked, status) = append_until(cmd, lines, Since::Spawn, delay, |_| server.kill());
        assert!(
            !status.success(),
            "the append must fail when its server dies"
        );
        assert!(
            acked > 0,
            "round {round}: nothing acknowledged before the kill"
        );
        rounds_acked.push(acked);
        server.restart();
    }
    let store = open(&server);
    let mut per_round = vec![Vec::new(); 3];
    for r in store.read_all(&ReadQuery::default()).unwrap() {
        let v: serde_json::Value = serde_json::from_str(&r.envelope.json).unwrap();
        per_round[v["round"].as_u64().unwrap() as usize].push(v["id"].as_u64().unwrap());
    }
    for (round, acked) in rounds_acked.iter().enumerate() {
        let ids = &per_round[round];
        // In order, each once, no gaps: a prefix of what was sent, at least what was acknowledged.
        assert!(
            ids.iter().enumerate().all(|(i, id)| i as u64 == *id),
            "round {round}: {:?}",
            &ids[..ids.len().min(20)]
        );
        assert!(
            ids.len() as u64 >= *acked,
            "round {round}: {} stored, {acked} acknowledged",
            ids.len()
        );
    }
    assert!(store.scan(&quire::progress::Silent).unwrap().healthy());
}

fn silent() -> &'static quire::progress::Silent {
    &quire::progress::Silent
}

fn ids_of(server: &RedisServer, key: &str) -> Vec<String> {
    server.entries(key).into_iter().map(|e| e.0).collect()
}

/// Appends `lines` to `papyra:local:events` with an entry that is no record
/// (`data` is `{broken`) planted after the first `split`; returns its id.
fn append_around_broken(
    server: &RedisServer,
    store: &Store,
    lines: &[String],
    split: usize,
) -> String {
    store.append(parse_records(&lines[..split])).unwrap();
    let broken = server.xadd("papyra:local:events", &[("data", b"{broken")]);
    store.append(parse_records(&lines[split..])).unwrap();
    broken
}

#[test]
fn compaction_trims_exactly_and_keeps_what_other_streams_hold() {
    let server = RedisServer::start();
    let store = open(&server);
    let lines: Vec<String> = (0..150).map(|i| event("local", i)).collect();
    store.append(parse_records(&lines)).unwrap();
    let audits: Vec<String> = (0..5)
        .map(|i| {
            format!(
                r#"{{"kind":"audit","system_id":"local","timestamp":{}}}"#,
                1_700_000_200 + i
            )
        })
        .collect();
    store.append(parse_records(&audits)).unwrap();
    let before = ids_of(&server, "papyra:local:events");
    // Papyra's approximate trim of 150 to 100 removed nothing; this is exact.
    let policy = quire_tests::standard_policy(r#"{"max_records": 100}"#, 1_800_000_000.0);
    let report = store
        .compact(&mut quire::Retention::single(policy), false, silent())
        .unwrap();
    assert_eq!((report.records_before, report.records_after), (155, 100));
    assert_eq!(
        ids_of(&server, "papyra:local:events"),
        before[55..].to_vec()
    );
    assert_eq!(server.entries("papyra:local:audits").len(), 5);
    let read = jsons(&store, &ReadQuery::default());
    assert_eq!(read[..95].to_vec(), lines[55..].to_vec());
    // By age: MINID-exact, whatever the stream's node layout.
    let policy = quire_tests::standard_policy(r#"{"max_age_seconds": 10}"#, 1_700_000_149.5);
    store
        .compact(&mut quire::Retention::single(policy), false, silent())
        .unwrap();
    assert_eq!(
        ids_of(&server, "papyra:local:events"),
        before[140..].to_vec()
    );
    assert!(
        server
            .cmd(&["KEYS", "papyra:quire:rewrite:*"])
            .items()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn repair_removes_exactly_the_damaged_entries_by_id_wherever_they_are() {
    let server = RedisServer::start();
    let store = open(&server);
    let lines: Vec<String> = (0..3_000).map(|i| event("local", i)).collect();
    let middle = append_around_broken(&server, &store, &lines, 1_000);
    let end = server.xadd("papyra:local:events", &[("other", b"x")]);
    let before = ids_of(&server, "papyra:local:events");
    let report = store
        .recover(quire::RecoveryMode::Repair, silent())
        .unwrap();
    assert_eq!(report.before.anomaly_count, 2);
    assert!(report.after.healthy(), "{:?}", report.after.anomalies);
    assert_eq!(report.receipts.len(), 1);
    assert_eq!(report.receipts[0].records_kept, 3_000);
    let want: Vec<String> = before
        .into_iter()
        .filter(|id| *id != middle && *id != end)
        .collect();
    assert_eq!(ids_of(&server, "papyra:local:events"), want);
    assert_eq!(jsons(&store, &ReadQuery::default()), lines);
}

#[test]
fn quarantine_moves_each_damaged_entry_with_its_id_and_fields_and_keeps_a_copy() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server.url(), &[]);
    config.quarantine_dir = Some(dir.path().join("q"));
    let store = Store::open(config).unwrap();
    store.append(parse_records(&[event("local", 1)])).unwrap();
    let bad = server.xadd(
        "papyra:local:events",
        &[("data", b"{broken"), ("extra", b"\xff\x00")],
    );
    store.append(parse_records(&[event("local", 2)])).unwrap();
    let report = store
        .recover(quire::RecoveryMode::Quarantine, silent())
        .unwrap();
    assert!(report.after.healthy());
    let moved = server.entries("papyra:local:quarantine:papyra_local_events");
    assert_eq!(moved.len(), 1);
    assert_eq!(
        moved[0].1,
        vec![
            ("original_id".to_string(), bad.as_bytes().to_vec()),
            ("source".to_string(), b"papyra:local:events".to_vec()),
            ("data".to_string(), b"{broken".to_vec()),
            ("extra".to_string(), b"\xff\x00".to_vec()),
        ]
    );
    assert_eq!(server.entries("papyra:local:events").len(), 2);
    // The copy beside the receipt holds every entry as it was.
    let copy = report.receipts[0].quarantined_to.clone().unwrap();
    let text = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(text.lines().count(), 3);
    let line: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(line["id"], bad.as_str());
    assert_eq!(line["fields"][1][1], serde_json::json!([255, 0]));
    assert!(std::path::Path::new(&format!("{}.receipt.json", copy.display())).is_file());
}

#[test]
fn a_committed_rewrite_a_crash_left_is_finished_and_a_staged_one_left_alone() {
    let server = RedisServer::start();
    let store = open(&server);
    store
        .append(parse_records(
            &(0..10).map(|i| event("local", i)).collect::<Vec<_>>(),
        ))
        .unwrap();
    let ids = ids_of(&server, "papyra:local:events");
    drop(store);
    // A crash after the commit: its removals are finished by the next open.
    let committed = "papyra:quire:rewrite:papyra:local:events:commit:t1";
    server.cmd(&["RPUSH", committed, &ids[2], &ids[5]]);
    // Staged removals (a crash before the commit, or another rewrite still at
    // work): never carried out by anyone else; they expire.
    let staged = "papyra:quire:rewrite:papyra:local:events:staged:t2";
    server.cmd(&["RPUSH", staged, &ids[7]]);
    // A record stream whose name looks like bookkeeping is not touched either.
    let store = open(&server);
    let notes: Vec<String> = store
        .open_report()
        .iter()
        .map(|f| f.detail.clone())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("finished (2 entries removed)"),
        "{notes:?}"
    );
    let want: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2 && *i != 5)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(ids_of(&server, "papyra:local:events"), want);
    assert_eq!(server.cmd(&["EXISTS", committed]), Reply::Integer(0));
    assert_eq!(
        server.cmd(&["LLEN", staged]),
        Reply::Integer(1),
        "left to expire"
    );
    // Names that would read back as another stream, or as quire's own keys, are refused.
    let err = store
        .append(parse_records(&[
            r#"{"kind":"staged","store":"quire:rewrite:x","timestamp":1}"#,
        ]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("reads back as another store or kind"), "{err}");
    let err = store
        .append(parse_records(&[
            r#"{"kind":"events","store":"s","timestamp":1}"#,
        ]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("reads back as another store or kind"), "{err}");
}

#[test]
fn migrate_moves_every_record_to_redis_and_back() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    let lines: Vec<String> = (0..500)
        .map(|i| event(if i % 3 == 0 { "a" } else { "b" }, i))
        .collect();
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let url = server.url();
    let run = |args: &[&str]| {
        let out = quire(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "migrate",
        "--from-backend",
        "ndjson",
        "--from-path",
        "events.ndjson",
        "--to-backend",
        "redis",
        "--to-path",
        &url,
    ]);
    assert_eq!(server.entries("papyra:a:events").len(), 167);
    assert_eq!(server.entries("papyra:b:events").len(), 333);
    run(&[
        "migrate",
        "--from-backend",
        "redis",
        "--from-path",
        &url,
        "--to-backend",
        "ndjson",
        "--to-path",
        "back.ndjson",
    ]);
    let back = std::fs::read_to_string(dir.path().join("back.ndjson")).unwrap();
    assert_eq!(back.lines().map(str::to_string).collect::<Vec<_>>(), lines);
}

#[test]
fn consumer_groups_share_entries_name_undecodable_ones_and_hand_over_idle_ones() {
    let server = RedisServer::start();
    let store = open(&server);
    let lines: Vec<String> = (0..10).map(|i| event("local", i)).collect();
    let bad = append_around_broken(&server, &store, &lines, 6);
    let made = store.group_create("shippers", &[], "0").unwrap();
    assert_eq!(made, vec!["papyra:local:events".to_string()]);
    assert!(
        store.group_create("shippers", &[], "0").unwrap().is_empty(),
        "exists: left as it is"
    );

    let first = store
        .group_read("shippers", "c1", &[], 4, Duration::ZERO)
        .unwrap();
    let second = store
        .group_read("shippers", "c2", &[], 100, Duration::ZERO)
        .unwrap();
    assert_eq!(
        (first.len(), second.len()),
        (4, 7),
        "each entry to one consumer"
    );
    let records: Vec<String> = first
        .iter()
        .chain(&second)
        .filter_map(|d| d.json.clone())
        .collect();
    assert_eq!(records, lines, "every record once, in order");
    let problem: Vec<_> = second.iter().filter(|d| d.problem.is_some()).collect();
    assert_eq!(problem.len(), 1);
    assert_eq!(problem[0].id, bad);
    assert!(
        problem[0]
            .problem
            .as_ref()
            .unwrap()
            .contains("invalid JSON"),
        "{problem:?}"
    );

    let pending = store.group_pending("shippers", &[], 100).unwrap();
    assert_eq!(pending[0].pending, 11);
    assert_eq!(
        pending[0]
            .entries
            .iter()
            .filter(|e| e.consumer == "c1")
            .count(),
        4
    );

    // c1 dies holding four entries: c3 takes them over once they have been idle.
    std::thread::sleep(Duration::from_millis(150));
    let c2_ids: Vec<String> = second.iter().map(|d| d.id.clone()).collect();
    let unit = "papyra:local:events".to_string();
    assert_eq!(store.group_ack("shippers", &unit, &c2_ids).unwrap(), 7);
    let claimed = store
        .group_claim("shippers", "c3", &[], Duration::from_millis(100), 100)
        .unwrap();
    assert_eq!(
        claimed.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        first.iter().map(|d| d.id.clone()).collect::<Vec<_>>()
    );
    assert!(claimed.iter().all(|d| d.deliveries == 2));
    let pending = store.group_pending("shippers", &[], 100).unwrap();
    assert!(pending[0].entries.iter().all(|e| e.consumer == "c3"));
    let ids: Vec<String> = claimed.iter().map(|d| d.id.clone()).collect();
    assert_eq!(store.group_ack("shippers", &unit, &ids).unwrap(), 4);
    assert_eq!(
        store.group_pending("shippers", &[], 10).unwrap()[0].pending,
        0
    );

    // A blocking read waits for new entries, inside the call's deadline.
    let started = Instant::now();
    assert!(
        store
            .group_read("shippers", "c1", &[], 10, Duration::from_millis(300))
            .unwrap()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let err = store
        .group_read("shippers", "c1", &[], 10, Duration::from_secs(30))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outlast the plugin timeout"), "{err}");
    let err = store
        .group_create("g", &["elsewhere:x:events".into()], "0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a record stream"), "{err}");
}

#[test]
fn backends_without_groups_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(builtin_config("ndjson", dir.path().join("e.ndjson"), &[])).unwrap();
    let err = store.group_create("g", &[], "0").unwrap_err();
    assert!(matches!(err, quire::Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("no consumer groups"), "{err}");
}

#[test]
fn the_cli_reads_as_a_consumer_acks_records_and_exits_2_on_entries_that_are_not() {
    let server = RedisServer::start();
    let store = open(&server);
    store
        .append(parse_records(&[event("local", 1), event("local", 2)]))
        .unwrap();
    let bad = server.xadd("papyra:local:events", &[("other", b"x")]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let run = |args: &[&str]| {
        quire(dir.path())
            .args(["group"])
            .args(args)
            .args(["-b", "redis", "-p", &url])
            .output()
            .unwrap()
    };
    let out = run(&["create", "--group", "g"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["read", "--group", "g", "--consumer", "c", "--ack"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["record"]["id"], 1);
    assert_eq!(lines[2]["id"], bad.as_str());
    assert!(
        lines[2]["problem"]
            .as_str()
            .unwrap()
            .contains("no `data` field")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&bad));
    // Records were acknowledged; the entry that is not one stays pending, named.
    let out = run(&["pending", "--group", "g", "--json"]);
    let pending: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pending[0]["pending"], 1);
    assert_eq!(pending[0]["entries"][0]["id"], bad.as_str());
    let out = run(&["ack", "--group", "g", "--unit", "papyra:local:events", &bad]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("acknowledged 1 of 1"));
}

#[test]
fn a_server_with_a_password_needs_the_password_option_and_a_database_is_selected() {
    let server = RedisServer::start_with(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--requirepass",
        "s3cret",
    ]);
    let err = Store::open(config(&server.url(), &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("NOAUTH") || err.contains("uthentication"),
        "{err}"
    );
    let err = Store::open(config(&server.url(), &[("password", "wrong")]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("authenticate"), "{err}");
    let store = Store::open(config(
        &format!("{}/3", server.url()),
        &[("password", "s3cret")],
    ))
    .unwrap();
    store.append(parse_records(&[event("local", 1)])).unwrap();
    assert_eq!(
        jsons(&store, &ReadQuery::default()),
        vec![event("local", 1)]
    );
    // The records are in database 3, not 0.
    let db0 = Store::open(config(&server.url(), &[("password", "s3cret")])).unwrap();
    assert!(jsons(&db0, &ReadQuery::default()).is_empty());
}

#[test]
fn compaction_leaves_entries_that_are_not_records_for_recover() {
    let server = RedisServer::start();
    let store = open(&server);
    let lines: Vec<String> = (0..10).map(|i| event("local", i)).collect();
    let bad = append_around_broken(&server, &store, &lines, 5);
    let policy = quire_tests::standard_policy(r#"{"max_records": 3}"#, 1_800_000_000.0);
    store
        .compact(&mut quire::Retention::single(policy), false, silent())
        .unwrap();
    let left = server.entries("papyra:local:events");
    assert_eq!(
        left.len(),
        4,
        "three records kept and the damaged entry left: {left:?}"
    );
    assert!(left.iter().any(|(id, _)| *id == bad));
    assert_eq!(jsons(&store, &ReadQuery::default()), lines[7..].to_vec());
    // Recover is what removes it.
    let report = store
        .recover(quire::RecoveryMode::Repair, silent())
        .unwrap();
    assert!(report.after.healthy());
    assert_eq!(server.entries("papyra:local:events").len(), 3);
}
