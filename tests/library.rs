//! The embedding API: many threads, group commit, the memory backend
//! honouring retention, durability settings.

use std::sync::Arc;

use quire::{Durability, Limits, PluginSource, Policy, ReadQuery, Record, Store, StoreConfig};

fn config(backend: &str, path: &std::path::Path) -> StoreConfig {
    quire_tests::builtin_config(backend, path, &[])
}

fn event(thread: usize, i: usize, ts: f64) -> Record {
    Record::from_json_line(
        &format!(r#"{{"kind":"event","system_id":"t{thread}","i":{i},"timestamp":{ts}}}"#),
        0.0,
    )
    .unwrap()
}

#[test]
fn concurrent_appends_are_all_there_in_per_thread_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(config("ndjson", &dir.path().join("log.ndjson"))).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    store.append(vec![event(t, i, i as f64)]).unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let metrics = store.metrics();
    assert_eq!(metrics.records_written, 400);
    assert!(metrics.syncs <= 400 && metrics.syncs >= 1);
    for t in 0..4 {
        let got: Vec<u64> = store
            .read_all(&ReadQuery {
                stores: vec![format!("t{t}")],
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|r| {
                serde_json::from_str::<serde_json::Value>(&r.envelope.json).unwrap()["i"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "thread {t}");
    }
    assert!(store.scan(&quire::progress::Silent).unwrap().healthy());
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ndjson");
    let first = Store::open(config("ndjson", &path)).unwrap();
    let second = Store::open(config("ndjson", &path));
    assert!(
        matches!(second, Err(quire::Error::Locked { .. })),
        "{:?}",
        second.err()
    );
    let mut ro = config("ndjson", &path);
    ro.read_only = true;
    Store::open(ro).expect("readers need no lock");
    drop(first);
    Store::open(config("ndjson", &path)).expect("lock released on drop");
}

#[test]
fn memory_backend_honours_retention() {
    let mut c = config("memory", std::path::Path::new(""));
    c.durability = Durability::Batch;
    let store = Store::open(c).unwrap();
    store
        .append((0..100).map(|i| event(0, i, 1000.0 + i as f64)).collect())
        .unwrap();
    let loaded = quire::plugin::load_policy(
        &PluginSource::Builtin("standard".into()),
        Some(&quire_tests::cli::shared_cache()),
    )
    .unwrap();
    let policy =
        Policy::create(&loaded, r#"{"max_records": 30}"#, 2000.0, Limits::default()).unwrap();
    let report = store
        .compact(
            &mut quire::Retention::single(policy),
            false,
            &quire::progress::Silent,
        )
        .unwrap();
    assert_eq!((report.records_before, report.records_after), (100, 30));
    let kept = store.read_all(&ReadQuery::default()).unwrap();
    assert_eq!(kept.len(), 30);
    assert_eq!(kept[0].envelope.timestamp, 1070.0);
    let by_age = Policy::create(
        &loaded,
        r#"{"max_age_seconds": 10}"#,
        1100.0,
        Limits::default(),
    )
    .unwrap();
    store
        .compact(
            &mut quire::Retention::single(by_age),
            false,
            &quire::progress::Silent,
        )
        .unwrap();
    assert_eq!(store.read_all(&ReadQuery::default()).unwrap().len(), 10);
    assert!(
        Policy::create(&loaded, r#"{"max_recs": 1}"#, 0.0, Limits::default()).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn durability_settings_parse_and_every_n_syncs_on_schedule() {
    assert_eq!(
        "every-n:3".parse::<Durability>().unwrap(),
        Durability::EveryN(3)
    );
    assert!("every-n:0".parse::<Durability>().is_err());
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("ndjson", &dir.path().join("log.ndjson"));
    c.durability = Durability::EveryN(3);
    let store = Store::open(c).unwrap();
    for i in 0..7 {
        store.append(vec![event(0, i, 1.0)]).unwrap();
    }
    assert_eq!(store.metrics().syncs, 2, "synced after records 3 and 6");
}

#[test]
fn buffered_durability_is_counted_until_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("segmented", &dir.path().join("wal"));
    c.durability = Durability::Buffered;
    c.options = vec![("codec".into(), "compact".into())];
    let store = Store::open(c).unwrap();
    store
        .append((0..10).map(|i| event(0, i, 1000.0 + i as f64)).collect())
        .unwrap();
    let snapshot = store.durability().unwrap();
    assert_eq!(snapshot.policy, "buffered");
    let t0 = snapshot
        .stores
        .iter()
        .find(|s| s.store == "t0")
        .expect("store t0");
    assert_eq!(
        (
            t0.codec.as_str(),
            t0.accepted,
            t0.buffered,
            t0.state.as_str()
        ),
        ("compact", 10, 10, "buffered")
    );
    store.flush().unwrap();
    let t0 = store
        .durability()
        .unwrap()
        .stores
        .into_iter()
        .find(|s| s.store == "t0")
        .unwrap();
    assert_eq!(
        (t0.buffered, t0.unsynced, t0.state.as_str()),
        (0, 0, "durable")
    );
    assert_eq!(store.read_all(&ReadQuery::default()).unwrap().len(), 10);
}

/// Appends a line to the data file, as a writer that ignores quire's lock
/// would, when compaction starts rewriting.
struct AppendWhenRewriting(std::path::PathBuf);

impl quire::progress::Progress for AppendWhenRewriting {
    fn begin(&self, phase: &str, _: u64) {
        if phase.starts_with("compact: rewriting") {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.0)
                .unwrap();
            file.write_all(b"{\"kind\":\"event\",\"late\":true,\"timestamp\":5000}\n")
                .unwrap();
        }
    }
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

#[test]
fn a_unit_that_grows_during_compaction_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ndjson");
    let store = Store::open(config("ndjson", &path)).unwrap();
    store
        .append((0..100).map(|i| event(0, i, 1000.0 + i as f64)).collect())
        .unwrap();
    store.flush().unwrap();
    let policy = quire_tests::standard_policy(r#"{"max_records": 30}"#, 2000.0);
    let err = store
        .compact(
            &mut quire::Retention::single(policy),
            false,
            &AppendWhenRewriting(path.clone()),
        )
        .expect_err("the unit changed under the compaction");
    assert!(
        err.to_string().contains("changed during compaction"),
        "{err}"
    );
    let kept = store.read_all(&ReadQuery::default()).unwrap();
    assert_eq!(kept.len(), 101, "every record, the late one included");
    assert!(kept[100].envelope.json.contains("\"late\":true"));
}

/// The async face under tokio: 64 tasks append at once; every acknowledged
/// record is there, each task's in its order, and tasks shared syncs.
#[test]
fn async_appends_from_many_tasks_share_syncs_under_tokio() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let path = dir.path().join("log.ndjson");
    runtime.block_on(async {
        let mut c = config("ndjson", &path);
        c.durability = Durability::PerWrite;
        let store = quire::AsyncStore::open(c).await.unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        store.append(vec![event(t, i, i as f64)]).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let metrics = store.metrics();
        assert_eq!(metrics.records_written, 64 * 50);
        assert!(
            metrics.syncs < 64 * 50 / 2,
            "{} syncs for {} appends: tasks did not share them",
            metrics.syncs,
            64 * 50
        );
        // Read back as a stream.
        use futures::StreamExt;
        let records: Vec<_> = store
            .read(ReadQuery::default())
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(records.len(), 64 * 50);
        for t in 0..64 {
            let mine: Vec<u64> = records
                .iter()
                .filter(|r| r.envelope.store == format!("t{t}"))
                .map(|r| {
                    serde_json::from_str::<serde_json::Value>(&r.envelope.json).unwrap()["i"]
                        .as_u64()
                        .unwrap()
                })
                .collect();
            assert_eq!(mine, (0..50).collect::<Vec<u64>>(), "task {t}");
        }
    });
}

/// Any executor: the same calls under `futures`' own `block_on`, and a
/// bad batch among good ones fails only itself.
#[test]
fn async_store_works_without_tokio_and_a_bad_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = futures::executor::block_on(async {
        let store = quire::AsyncStore::open(quire_tests::builtin_config(
            "rotating",
            dir.path().join("data"),
            &[],
        ))
        .await
        .unwrap();
        let bad = Record::from_json_line(r#"{"kind":"no/such dir","timestamp":1}"#, 0.0).unwrap();
        let appends = futures::future::join_all((0..8).map(|t| {
            let store = store.clone();
            let records = if t == 3 {
                vec![event(t, 0, 1.0), bad.clone()]
            } else {
                vec![event(t, 0, 1.0), event(t, 1, 2.0)]
            };
            async move { store.append(records).await }
        }))
        .await;
        for (t, result) in appends.iter().enumerate() {
            assert_eq!(result.is_err(), t == 3, "append {t}: {result:?}");
        }
        use futures::StreamExt;
        let newest: Vec<_> = store
            .read(ReadQuery {
                limit: Some(3),
                newest_first: true,
                ..ReadQuery::default()
            })
            .collect()
            .await;
        assert_eq!(newest.len(), 3);
        assert!(store.scan().await.unwrap().healthy());
        store.checkpoint().await.unwrap();
        let blocking = store.blocking().clone();
        // Closing is not final while another handle holds the store.
        store.close().await.unwrap();
        blocking
    });
    // The blocking face, outside any executor.
    let all = store.read_all(&ReadQuery::default()).unwrap();
    drop(store);
    // The lock went with the last handle: the store opens again.
    Store::open(quire_tests::builtin_config(
        "rotating",
        dir.path().join("data"),
        &[],
    ))
    .unwrap();
    // Seven good batches of two; nothing of the bad one (its good record included).
    assert_eq!(all.len(), 14);
    assert!(all.iter().all(|r| r.envelope.store != "t3"));
}

/// Futures dropped at every point: an append acknowledged is there, and a
/// batch is there whole or not at all.
#[test]
fn dropped_append_futures_lose_nothing_acknowledged_and_tear_no_batch() {
    use futures::future::Either;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ndjson");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let acknowledged = runtime.block_on(async {
        let store = quire::AsyncStore::open(config("ndjson", &path))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0..40 {
                        let batch: Vec<Record> =
                            (0..10).map(|k| event(t, i * 10 + k, 1.0)).collect();
                        // Give up on some appends after a moment.
                        let patience =
                            std::time::Duration::from_micros(((t * 7 + i * 13) % 50) as u64);
                        let append = Box::pin(store.append(batch));
                        let timer = Box::pin(tokio::time::sleep(patience));
                        if let Either::Left((done, _)) =
                            futures::future::select(append, timer).await
                        {
                            done.unwrap();
                            acked.push(i);
                        }
                    }
                    (t, acked)
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.push(task.await.unwrap());
        }
        acknowledged
    });
    drop(runtime);
    let store = Store::open(config("ndjson", &path)).unwrap();
    let all = store.read_all(&ReadQuery::default()).unwrap();
    let mut batches: std::collections::BTreeMap<(String, u64), usize> = Default::default();
    for r in &all {
        let i = serde_json::from_str::<serde_json::Value>(&r.envelope.json).unwrap()["i"]
            .as_u64()
            .unwrap();
        *batches
            .entry((r.envelope.store.clone(), i / 10))
            .or_default() += 1;
    }
    assert!(
        batches.values().all(|&n| n == 10),
        "a torn batch: {batches:?}"
    );
    let mut given_up = 0;
    for (t, acked) in acknowledged {
        for i in &acked {
            assert!(
                batches.contains_key(&(format!("t{t}"), *i as u64)),
                "task {t} batch {i} lost"
            );
        }
        given_up += 40 - acked.len();
    }
    assert!(
        given_up > 0,
        "no append was given up on: the test proves nothing"
    );
}

/// The live segment's torn tail as it was: a read-write open cuts it, so a
/// store opened for quarantine copies the original aside first.
#[test]
fn quarantine_keeps_a_torn_tail_the_open_would_cut() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("wal");
    let quarantine = dir.path().join("q");
    let store = Store::open(config("segmented", &data)).unwrap();
    store
        .append((0..20).map(|i| event(0, i, 1.0 + i as f64)).collect())
        .unwrap();
    drop(store);
    let segment = walk_files(&data)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment");
    let mut torn = std::fs::read(&segment).unwrap();
    torn.extend_from_slice(b"\x00\x00\x01\x00{\"kind\":\"ev");
    std::fs::write(&segment, &torn).unwrap();

    let mut cfg = config("segmented", &data);
    cfg.quarantine_dir = Some(quarantine.clone());
    let store = Store::open(cfg).unwrap();
    assert_eq!(store.open_report().len(), 1, "the open cut the tail");
    let report = store
        .recover(quire::RecoveryMode::Quarantine, &quire::progress::Silent)
        .unwrap();
    let [receipt] = &report.receipts[..] else {
        panic!("one receipt expected: {:?}", report.receipts)
    };
    assert_eq!(receipt.action, "quarantined");
    assert_eq!(receipt.bytes_before, torn.len() as u64);
    let copy = receipt.quarantined_to.as_ref().unwrap();
    assert_eq!(
        std::fs::read(copy).unwrap(),
        torn,
        "the copy is the damaged original"
    );
    assert!(report.after.healthy());
    assert_eq!(store.read_all(&ReadQuery::default()).unwrap().len(), 20);

    // A backend whose open leaves the tail (ndjson starts a new line after
    // it) is quarantined once, by the recovery itself.
    let file = dir.path().join("e.ndjson");
    let store = Store::open(config("ndjson", &file)).unwrap();
    store
        .append((0..3).map(|i| event(0, i, 1.0)).collect())
        .unwrap();
    drop(store);
    let mut torn = std::fs::read(&file).unwrap();
    torn.extend_from_slice(b"{\"kind\":\"ev");
    std::fs::write(&file, &torn).unwrap();
    let quarantine = dir.path().join("q2");
    let mut cfg = config("ndjson", &file);
    cfg.quarantine_dir = Some(quarantine.clone());
    let store = Store::open(cfg).unwrap();
    let report = store
        .recover(quire::RecoveryMode::Quarantine, &quire::progress::Silent)
        .unwrap();
    assert_eq!(report.receipts.len(), 1);
    assert_eq!(
        std::fs::read(report.receipts[0].quarantined_to.as_ref().unwrap()).unwrap(),
        torn
    );
    let mut names: Vec<_> = std::fs::read_dir(&quarantine)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "one copy and its receipt: {names:?}");

    // Rotating seals a torn live file as it is: one copy too.
    let rotating = dir.path().join("rot");
    let store = Store::open(config("rotating", &rotating)).unwrap();
    store
        .append((0..3).map(|i| event(0, i, 1.0)).collect())
        .unwrap();
    drop(store);
    let live = walk_files(&rotating)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .unwrap();
    let mut torn = std::fs::read(&live).unwrap();
    torn.extend_from_slice(b"{\"kind\":\"ev");
    std::fs::write(&live, &torn).unwrap();
    let quarantine = dir.path().join("q3");
    let mut cfg = config("rotating", &rotating);
    cfg.quarantine_dir = Some(quarantine.clone());
    let report = Store::open(cfg)
        .unwrap()
        .recover(quire::RecoveryMode::Quarantine, &quire::progress::Silent)
        .unwrap();
    assert_eq!(report.receipts.len(), 1, "{:?}", report.receipts);
    assert_eq!(
        std::fs::read(report.receipts[0].quarantined_to.as_ref().unwrap()).unwrap(),
        torn
    );
    assert_eq!(std::fs::read_dir(&quarantine).unwrap().count(), 2);

    // Two stores' live segments share a file name: their copies do not collide.
    let two = dir.path().join("two");
    let store = Store::open(config("segmented", &two)).unwrap();
    store
        .append((0..4).map(|i| event(i % 2, i, 1.0)).collect())
        .unwrap();
    drop(store);
    let mut torn = std::collections::BTreeMap::new();
    for segment in walk_files(&two)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
    {
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes.extend_from_slice(b"\x00\x00\x01\x00{");
        std::fs::write(&segment, &bytes).unwrap();
        torn.insert(bytes, segment);
    }
    assert_eq!(torn.len(), 2, "one live segment per store");
    let mut cfg = config("segmented", &two);
    cfg.quarantine_dir = Some(dir.path().join("q4"));
    let report = Store::open(cfg)
        .unwrap()
        .recover(quire::RecoveryMode::Quarantine, &quire::progress::Silent)
        .unwrap();
    let copies: std::collections::BTreeSet<Vec<u8>> = report
        .receipts
        .iter()
        .map(|r| std::fs::read(r.quarantined_to.as_ref().unwrap()).unwrap())
        .collect();
    assert_eq!(copies, torn.keys().cloned().collect());

    // A first start with a quarantine directory: nothing to copy, no error.
    let mut cfg = config("ndjson", &dir.path().join("new.ndjson"));
    cfg.quarantine_dir = Some(dir.path().join("q5"));
    Store::open(cfg).unwrap();
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
