//! The wall-clock timeout holds however a plugin spends its time: computing,
//! sleeping, or waiting on a pollable, in `open`, in any call, and in a
//! retention policy's calls alike.

use super::*;

/// Runs `f`, which must fail within the 500 ms timeout of `tight_limits`
/// (not before it, not long after it), and returns its fault.
fn times_out<T>(what: &str, f: impl FnOnce() -> quire::Result<T>) -> (String, String, String) {
    let started = Instant::now();
    let Err(err) = f() else {
        panic!("{what}: did not fail");
    };
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(
        elapsed >= Duration::from_millis(450),
        "{what}: stopped before the timeout: {elapsed:?}: {message}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "{what}: took {elapsed:?} to stop: {message}"
    );
    assert!(message.contains("timeout of 500ms"), "{what}: {message}");
    fault_parts(err)
}

#[test]
fn a_sleep_in_append_ends_at_the_timeout() {
    for attack in ["sleep", "sleep-loop"] {
        let fixture = Fixture::new();
        let store = fixture.open(attack);
        store.append(vec![record("event", 1.0)]).unwrap();
        let before = snapshot(&fixture.data());
        let (plugin, operation, _) = times_out(attack, || {
            store.append(vec![record("event", 2.0), record("attack", 3.0)])
        });
        assert!(plugin.contains(HOSTILE_PLUGIN), "{plugin}");
        assert_eq!(operation, "append");
        assert_eq!(store.metrics().plugin_faults, 1);
        assert_eq!(snapshot(&fixture.data()), before, "{attack}: data changed");
        // The instance was discarded (its in-memory records went with it); the next one works.
        store.append(vec![record("event", 4.0)]).unwrap();
        assert_eq!(timestamps(&store), [4.0], "{attack}");
    }
}

#[test]
fn a_sleep_in_open_ends_at_the_timeout() {
    let fixture = Fixture::new();
    let (plugin, operation, cause) =
        times_out("open", || Store::open(fixture.config("sleep-open")));
    assert!(plugin.contains(HOSTILE_PLUGIN), "{plugin}");
    assert_eq!(operation, "open", "{cause}");
    // Nothing but the (empty) lock file was made.
    assert_eq!(
        snapshot(&fixture.data()),
        [(PathBuf::from(".quire-lock"), vec![])]
    );
    // The lock was released with the failed open: a well-behaved open works at once.
    let store = fixture.open("none");
    store.append(vec![record("event", 1.0)]).unwrap();
}

#[test]
fn the_cli_timeout_stops_a_sleeping_plugin() {
    let fixture = Fixture::new();
    let started = Instant::now();
    let out = fixture.cli(
        "scan",
        &["--plugin-timeout", "1", "--option", "attack=sleep-open"],
        "",
    );
    let elapsed = started.elapsed();
    let err = quire_tests::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    for part in ["open", "timeout of 1s", "quire_hostile_plugin.wasm"] {
        assert!(err.contains(part), "`{err}` does not mention `{part}`");
    }
}

/// A store with records over two sealed-free ndjson units is enough: the
/// policy sees every record in `observe` and `decide`.
fn ndjson_with_records(dir: &Path) -> (Store, Vec<(PathBuf, Vec<u8>)>) {
    let path = dir.join("events.ndjson");
    let mut config = quire_tests::builtin_config("ndjson", &path, &[]);
    config.limits = quire_tests::tight_limits();
    let store = Store::open(config).unwrap();
    store
        .append((0..100).map(|i| record("event", i as f64)).collect())
        .unwrap();
    store.flush().unwrap();
    (store, snapshot(dir))
}

fn hostile_policy(attack: &str) -> quire::Result<quire::Policy> {
    let loaded = quire::plugin::load_policy(
        &PluginSource::File(PathBuf::from(quire_tests::HOSTILE_POLICY)),
        Some(&quire_tests::cli::shared_cache()),
    )?;
    quire::Policy::create(&loaded, attack, quire::now(), quire_tests::tight_limits())
}

#[test]
fn a_policy_sleeping_or_spinning_in_any_call_ends_at_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, before) = ndjson_with_records(tmp.path());
    let (plugin, operation, _) = times_out("create", || hostile_policy("sleep-create"));
    assert!(plugin.contains("quire_hostile_policy.wasm"), "{plugin}");
    assert_eq!(operation, "open");
    for (attack, call) in [
        ("sleep-observe", "observe"),
        ("sleep-decide", "decide"),
        ("loop-decide", "decide"),
    ] {
        let mut retention = quire::Retention::single(hostile_policy(attack).unwrap());
        let faults = store.metrics().plugin_faults;
        let (plugin, operation, _) =
            times_out(attack, || store.compact(&mut retention, false, &Silent));
        assert!(plugin.contains("quire_hostile_policy.wasm"), "{plugin}");
        assert_eq!(operation, call, "{attack}");
        assert_eq!(
            store.metrics().plugin_faults,
            faults + 1,
            "{attack}: fault not counted"
        );
        assert_eq!(
            snapshot(tmp.path()),
            before,
            "{attack}: compaction changed data"
        );
    }
    // A policy that behaves compacts the same store afterwards.
    let mut retention = quire::Retention::single(hostile_policy("none").unwrap());
    let report = store.compact(&mut retention, false, &Silent).unwrap();
    assert_eq!(report.records_after, 100, "{report:?}");
    assert_eq!(store.read_all(&ReadQuery::default()).unwrap().len(), 100);
}

#[test]
fn a_policy_that_returns_too_few_decisions_is_a_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, before) = ndjson_with_records(tmp.path());
    let mut retention = quire::Retention::single(hostile_policy("short-decide").unwrap());
    let err = store.compact(&mut retention, false, &Silent).unwrap_err();
    let (_, operation, cause) = fault_parts(err);
    assert_eq!(operation, "decide");
    assert!(cause.contains("decisions for"), "{cause}");
    assert_eq!(snapshot(tmp.path()), before);
}
