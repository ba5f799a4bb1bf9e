//! A hostile plugin (`tests/plugins/hostile`) against the host: every attack
//! must be refused or stopped, reported as an error that says what happened,
//! and leave the host able to carry on with a fresh instance.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quire::progress::Silent;
use quire::{Error, PluginSource, ReadQuery, Store, StoreConfig};
use quire_tests::{HOSTILE_PLUGIN, Rng, hostile_config, record, snapshot, unique_name};

#[path = "hostile/deadline.rs"]
mod deadline;
#[path = "hostile/hoarding.rs"]
mod hoarding;
#[path = "hostile/links.rs"]
mod links;
#[path = "hostile/network.rs"]
mod network;
#[path = "hostile/plugin_check.rs"]
mod plugin_check;
#[path = "hostile/untrusted.rs"]
mod untrusted;

const SECRET: &str = "the host's secret\n";

/// A temporary directory with `data/` (the store), `secret.txt` beside it
/// and `cache/` for compiled components.
struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("data")).unwrap();
        std::fs::write(tmp.path().join("secret.txt"), SECRET).unwrap();
        Fixture { tmp }
    }
    fn root(&self) -> &Path {
        self.tmp.path()
    }
    fn data(&self) -> PathBuf {
        self.root().join("data")
    }
    fn config(&self, attack: &str) -> StoreConfig {
        hostile_config(&self.data(), &self.root().join("cache"), attack)
    }
    fn open(&self, attack: &str) -> Store {
        Store::open(self.config(attack))
            .unwrap_or_else(|e| panic!("opening the hostile store ({attack}): {e}"))
    }
    /// `quire VERB --backend HOSTILE --path data ARGS...` in the fixture.
    fn cli(&self, verb: &str, args: &[&str], stdin: &str) -> std::process::Output {
        let mut all = vec![verb, "--backend", HOSTILE_PLUGIN, "--path", "data"];
        all.extend_from_slice(args);
        quire_tests::cli::quire_run(self.root(), &all, stdin)
    }
    fn secret_is_intact(&self) {
        assert_eq!(
            std::fs::read_to_string(self.root().join("secret.txt")).unwrap(),
            SECRET,
            "secret.txt was changed"
        );
    }
}

/// Runs an escape attack and returns the plugin's account of each attempt.
/// `open` fails (with every outcome listed) if any attempt succeeded.
fn escape(fixture: &Fixture, attack: &str, name: &str) -> Vec<(String, String)> {
    let mut config = fixture.config(attack);
    config.options.push(("escape-name".into(), name.into()));
    let store = Store::open(config).unwrap_or_else(|e| panic!("an escape got through: {e}"));
    let report = store
        .inspect(&Silent)
        .expect("inspect after the escape attempts");
    eprintln!("{attack}: {:#?}", report.details);
    let control = report
        .details
        .iter()
        .find(|(what, _)| what.starts_with("control: "))
        .expect("the control attempt");
    assert!(
        control.1.starts_with("ok: "),
        "the plugin cannot use its own grant, so refusals prove nothing: {control:?}"
    );
    report
        .details
        .into_iter()
        .filter(|(what, _)| what.starts_with("escape: "))
        .collect()
}

fn assert_all_refused(attempts: &[(String, String)], expected: usize) {
    assert_eq!(
        attempts.len(),
        expected,
        "the plugin did not make every attempt: {attempts:#?}"
    );
    for (what, outcome) in attempts {
        assert!(
            outcome.starts_with("refused: "),
            "{what} was not refused: {outcome}"
        );
    }
}

fn assert_not_created(paths: &[PathBuf]) {
    for path in paths {
        assert!(
            !path.exists(),
            "{} was created by the plugin",
            path.display()
        );
    }
}

fn fault_parts(err: Error) -> (String, String, String) {
    match err {
        Error::Fault {
            plugin,
            operation,
            cause,
        } => (plugin, operation, cause),
        other => panic!("expected a plugin fault, got {other:?}: {other}"),
    }
}

fn timestamps(store: &Store) -> Vec<f64> {
    store
        .read_all(&ReadQuery::default())
        .expect("reading after the fault")
        .iter()
        .map(|r| r.envelope.timestamp)
        .collect()
}

#[test]
fn escaping_through_the_parent_directory_is_refused() {
    let fixture = Fixture::new();
    let name = unique_name("parent");
    let attempts = escape(&fixture, "escape-parent", &name);
    assert_all_refused(&attempts, 5);
    fixture.secret_is_intact();
    assert_not_created(&[fixture.root().join(&name), PathBuf::from("/").join(&name)]);
    let data: Vec<PathBuf> = snapshot(&fixture.data())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        data,
        [PathBuf::from(".quire-lock")],
        "only the host's lock file is in the data directory"
    );
}

#[test]
fn absolute_paths_outside_the_grant_are_refused() {
    let fixture = Fixture::new();
    let name = unique_name("absolute");
    let attempts = escape(&fixture, "absolute", &name);
    assert_all_refused(&attempts, 4);
    let passwd = attempts
        .iter()
        .find(|(what, _)| what == "escape: read /etc/passwd")
        .expect("tried /etc/passwd");
    assert!(!passwd.1.contains("root:"), "{passwd:?}");
    fixture.secret_is_intact();
    assert_not_created(&[
        PathBuf::from("/tmp").join(&name),
        PathBuf::from("/").join(&name),
    ]);
}

#[test]
fn symlinks_out_of_the_data_directory_are_not_followed() {
    let fixture = Fixture::new();
    let name = unique_name("symlink");
    let data = fixture.data();
    std::os::unix::fs::symlink(fixture.root().join("secret.txt"), data.join("link")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", data.join("rel-link")).unwrap();
    std::os::unix::fs::symlink(fixture.root(), data.join("linkdir")).unwrap();
    let before = snapshot(&data);
    let attempts = escape(&fixture, "symlink", &name);
    assert_all_refused(&attempts, 7);
    fixture.secret_is_intact();
    assert_not_created(&[fixture.root().join(&name)]);
    let after: Vec<_> = snapshot(&data)
        .into_iter()
        .filter(|(p, _)| p != Path::new(".quire-lock"))
        .collect();
    assert_eq!(
        after, before,
        "the symlinks were replaced or written through"
    );
}

#[test]
fn an_endless_loop_in_append_hits_the_timeout() {
    let fixture = Fixture::new();
    let store = fixture.open("loop");
    store.append(vec![record("event", 1.0)]).unwrap();

    let started = Instant::now();
    let err = store
        .append(vec![record("event", 2.0), record("attack", 3.0)])
        .unwrap_err();
    let elapsed = started.elapsed();
    let message = err.to_string();
    assert!(
        elapsed >= Duration::from_millis(450),
        "stopped before the deadline: {elapsed:?}: {message}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?} to stop the loop: {message}"
    );
    for part in [HOSTILE_PLUGIN, "append", "timeout of 500ms"] {
        assert!(
            message.contains(part),
            "`{message}` does not mention `{part}`"
        );
    }
    let (plugin, operation, cause) = fault_parts(err);
    assert!(plugin.contains(HOSTILE_PLUGIN), "{plugin}");
    assert_eq!(operation, "append");
    assert!(cause.contains("timeout"), "{cause}");
    assert_eq!(store.metrics().plugin_faults, 1);

    // A fresh instance serves the next calls. It keeps records in memory, so
    // only what was appended after the fault is there: proof of the restart.
    store.append(vec![record("event", 4.0)]).unwrap();
    assert_eq!(timestamps(&store), [4.0]);
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let fixture = Fixture::new();
    let store = fixture.open("alloc");
    let started = Instant::now();
    let err = store.append(vec![record("attack", 1.0)]).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let message = err.to_string();
    let (plugin, operation, cause) = fault_parts(err);
    assert!(plugin.contains(HOSTILE_PLUGIN), "{message}");
    assert_eq!(operation, "append", "{message}");
    assert!(cause.contains("memory limit of 64 MiB"), "{message}");

    store.append(vec![record("event", 2.0)]).unwrap();
    assert_eq!(timestamps(&store), [2.0]);
}

#[test]
fn a_trap_halfway_through_append_is_contained() {
    let fixture = Fixture::new();
    let store = fixture.open("trap-mid-append");
    let data = fixture.data();
    let before = snapshot(&data);

    let batch = vec![
        record("event", 1.0),
        record("event", 2.0),
        record("attack", 3.0),
        record("event", 4.0),
    ];
    let err = store.append(batch.clone()).unwrap_err();
    let message = err.to_string();
    let (plugin, operation, cause) = fault_parts(err);
    assert!(plugin.contains(HOSTILE_PLUGIN), "{message}");
    assert_eq!(operation, "append", "{message}");
    assert!(cause.starts_with("trapped"), "{message}");

    // What the plugin wrote before trapping is the only change on disk.
    let after = snapshot(&data);
    let added: Vec<_> = after
        .iter()
        .filter(|entry| !before.contains(entry))
        .collect();
    let half: String = batch[..2].iter().map(|r| format!("{}\n", r.json)).collect();
    assert_eq!(
        added,
        [&(PathBuf::from("half-written.ndjson"), half.into_bytes())]
    );
    assert!(
        before.iter().all(|entry| after.contains(entry)),
        "files were changed or removed: {before:?} -> {after:?}"
    );

    store.append(vec![record("event", 5.0)]).unwrap();
    assert_eq!(timestamps(&store), [5.0]);
}

#[test]
fn a_cursor_batch_larger_than_asked_for_is_refused() {
    let fixture = Fixture::new();
    let store = fixture.open("huge-batch");
    store.append(vec![record("event", 1.0)]).unwrap();

    let attack = ReadQuery {
        kinds: vec!["attack".into()],
        ..ReadQuery::default()
    };
    let err = store.read_all(&attack).unwrap_err();
    let message = err.to_string();
    let (plugin, operation, cause) = fault_parts(err);
    assert!(plugin.contains(HOSTILE_PLUGIN), "{message}");
    assert_eq!(operation, "read", "{message}");
    assert!(
        cause.contains("records for a batch of at most"),
        "{message}"
    );

    // The instance was rebuilt (its in-memory records are gone) and reads again.
    assert_eq!(timestamps(&store), [] as [f64; 0]);
    store.append(vec![record("event", 2.0)]).unwrap();
    assert_eq!(timestamps(&store), [2.0]);
}

#[test]
fn validate_without_progress_is_refused() {
    let fixture = Fixture::new();
    let store = fixture.open("no-progress");
    store.append(vec![record("event", 1.0)]).unwrap();
    let started = Instant::now();
    let err = store.scan(&Silent).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let message = err.to_string();
    let (plugin, operation, cause) = fault_parts(err);
    assert!(plugin.contains(HOSTILE_PLUGIN), "{message}");
    assert_eq!(operation, "validate", "{message}");
    assert!(cause.contains("no progress"), "{message}");
    assert!(
        message.contains("validate") && message.contains("no progress"),
        "{message}"
    );

    store.append(vec![record("event", 2.0)]).unwrap();
    assert_eq!(timestamps(&store), [2.0]);
}

fn load_error(result: quire::Result<impl Sized>) -> (String, String) {
    match result {
        Err(Error::Load { plugin, message }) => (plugin, message),
        Err(other) => panic!("expected a load error, got {other:?}: {other}"),
        Ok(_) => panic!("a foreign file was loaded"),
    }
}

#[test]
fn foreign_files_and_components_are_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();

    let noise = tmp.path().join("noise.wasm");
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let bytes: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    assert!(!bytes.starts_with(b"\0asm"));
    std::fs::write(&noise, &bytes).unwrap();
    let (plugin, message) = load_error(quire::plugin::load_backend(
        &PluginSource::File(noise.clone()),
        None,
    ));
    assert!(plugin.contains(&noise.display().to_string()), "{plugin}");
    assert!(message.contains("not a WebAssembly file"), "{message}");

    let module = tmp.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let (_, message) = load_error(quire::plugin::load_backend(
        &PluginSource::File(module),
        None,
    ));
    assert!(
        message.contains("not a valid WebAssembly component"),
        "{message}"
    );

    let policy = tmp.path().join("retention-standard.wasm");
    std::fs::write(
        &policy,
        quire::builtin::component("standard").expect("the built-in policy"),
    )
    .unwrap();
    let (plugin, message) = load_error(quire::plugin::load_backend(
        &PluginSource::File(policy.clone()),
        None,
    ));
    assert!(plugin.contains(&policy.display().to_string()), "{plugin}");
    for part in [
        "another kind",
        "quire:persistence/policy@0.3.0",
        "backend-plugin",
        "quire:persistence/backend@0.3.0",
    ] {
        assert!(
            message.contains(part),
            "`{message}` does not mention `{part}`"
        );
    }
    let data = tmp.path().join("data");
    let mut config = StoreConfig::new(PluginSource::File(policy), &data);
    config.cache_dir = None;
    let (_, message) = load_error(Store::open(config));
    assert!(message.contains("another kind"), "{message}");
    assert!(
        !data.exists(),
        "a store was set up for a plugin that failed to load"
    );

    let hostile = PathBuf::from(HOSTILE_PLUGIN);
    let (plugin, message) = load_error(quire::plugin::load_policy(
        &PluginSource::File(hostile.clone()),
        None,
    ));
    assert!(plugin.contains(&hostile.display().to_string()), "{plugin}");
    for part in [
        "another kind",
        "quire:persistence/backend@0.3.0",
        "retention-policy",
        "quire:persistence/policy@0.3.0",
    ] {
        assert!(
            message.contains(part),
            "`{message}` does not mention `{part}`"
        );
    }
}
