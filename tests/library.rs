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
