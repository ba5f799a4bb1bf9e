//! Plugins built against an older WIT version keep loading: the 0.1
//! components in `fixtures/plugins-v0.1` were built by quire's first
//! release, the 0.2 ones in `fixtures/plugins-v0.2` by the last release
//! before record batches (0.3), and the host adapts both.

use quire::{PluginSource, Policy, ReadQuery, Retention, Store, StoreConfig};
use quire_tests::cli::{fixture, quire_run, shared_cache, stdout};

fn v01(name: &str) -> std::path::PathBuf {
    fixture(&format!("plugins-v0.1/{name}"))
}

fn v02(name: &str) -> std::path::PathBuf {
    fixture(&format!("plugins-v0.2/{name}"))
}

/// Compacts `store` with the policy component at `policy`, configured by
/// `config` at time `now`.
fn compact_with(
    store: &Store,
    policy: &std::path::Path,
    config: &str,
    now: f64,
) -> quire::report::CompactionReport {
    let loaded = quire::plugin::load_policy(
        &PluginSource::File(policy.to_path_buf()),
        Some(&shared_cache()),
    )
    .unwrap();
    let policy = Policy::create(&loaded, config, now, quire::Limits::default()).unwrap();
    store
        .compact(
            &mut Retention::single(policy),
            false,
            &quire::progress::Silent,
        )
        .unwrap()
}

#[test]
fn a_0_2_backend_and_policy_take_batches_apart_and_put_them_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(
        PluginSource::File(v02("ndjson-0.2.wasm")),
        dir.path().join("log.ndjson"),
    );
    config.cache_dir = Some(shared_cache());
    let store = Store::open(config).unwrap();
    let records: Vec<_> = (0..2500)
        .map(|i| {
            quire_tests::record(
                if i % 3 == 0 { "audit" } else { "event" },
                1000.0 + i as f64,
            )
        })
        .collect();
    store.append(records.clone()).unwrap();
    // What the 0.2 plugin wrote is exactly the records, as lines.
    let text = std::fs::read_to_string(dir.path().join("log.ndjson")).unwrap();
    let want: String = records.iter().map(|r| format!("{}\n", r.json)).collect();
    assert_eq!(text, want);
    // Read back through several cursor batches, filtered per record.
    let all = store.read_all(&ReadQuery::default()).unwrap();
    assert_eq!(all.len(), 2500);
    assert!(
        all.iter()
            .zip(&records)
            .all(|(got, r)| got.envelope.json == r.json
                && got.envelope.kind == r.kind
                && got.envelope.timestamp == r.timestamp)
    );
    assert_eq!(all[1].offset, records[0].json.len() as u64 + 1);
    let audits = ReadQuery {
        kinds: vec!["audit".into()],
        ..ReadQuery::default()
    };
    assert_eq!(store.read_all(&audits).unwrap().len(), 834);
    assert!(store.durability().is_ok());
    // A 0.2 policy compacts through the adapter.
    let report = compact_with(
        &store,
        &v02("retention-standard-0.2.wasm"),
        r#"{"max_records": 100}"#,
        5000.0,
    );
    assert_eq!((report.records_before, report.records_after), (2500, 100));
    let kept = store.read_all(&ReadQuery::default()).unwrap();
    assert_eq!(kept.first().unwrap().envelope.timestamp, 3400.0);
}

#[test]
fn a_0_1_backend_appends_reads_scans_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(
        PluginSource::File(v01("ndjson-0.1.wasm")),
        dir.path().join("log.ndjson"),
    );
    config.cache_dir = Some(shared_cache());
    let store = Store::open(config).unwrap();
    assert!(store.open_report().is_empty());
    for i in 0..20 {
        store
            .append(vec![quire_tests::record("event", 1000.0 + i as f64)])
            .unwrap();
    }
    assert_eq!(store.read_all(&ReadQuery::default()).unwrap().len(), 20);
    assert!(store.scan(&quire::progress::Silent).unwrap().healthy());
    // 0.2 additions are adapted: no receipts, durability unsupported.
    assert!(
        store
            .receipts(&quire::ReceiptFilter {
                stores: vec![],
                kinds: vec![],
                since: None,
                until: None,
                limit: None
            })
            .unwrap()
            .is_empty()
    );
    let err = store.durability().unwrap_err().to_string();
    assert!(err.contains("quire:persistence@0.1.0"), "{err}");
    // A 0.1 retention policy drives a compaction of a 0.1 backend.
    let report = compact_with(
        &store,
        &v01("retention-standard-0.1.wasm"),
        r#"{"max_records": 5}"#,
        2000.0,
    );
    assert_eq!((report.records_before, report.records_after), (20, 5));
    let kept = store.read_all(&ReadQuery::default()).unwrap();
    assert_eq!(kept.first().unwrap().envelope.timestamp, 1015.0);
}

#[test]
fn plugin_check_names_the_version_a_plugin_speaks() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = v01("ndjson-0.1.wasm");
    let out = quire_run(
        dir.path(),
        &["plugin", "check", plugin.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("quire:persistence@0.1.0"),
        "{}",
        stdout(&out)
    );
    let plugin = v02("ndjson-0.2.wasm");
    let out = quire_run(
        dir.path(),
        &["plugin", "check", plugin.to_str().unwrap()],
        "",
    );
    assert!(
        stdout(&out).contains("quire:persistence@0.2.0"),
        "{}",
        stdout(&out)
    );
    let out = quire_run(dir.path(), &["plugin", "check", "ndjson"], "");
    assert!(
        stdout(&out).contains("quire:persistence@0.3.0"),
        "{}",
        stdout(&out)
    );
}
