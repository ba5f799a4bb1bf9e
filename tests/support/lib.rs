//! Shared helpers for quire's integration tests.

pub mod cli;
pub mod redis;
pub mod rng;

pub use rng::Rng;

use std::path::{Path, PathBuf};
use std::time::Duration;

use quire::{Limits, PluginSource, ReadQuery, Record, Store, StoreConfig};

/// The hostile test plugin (`tests/plugins/hostile`), built by `build.rs`.
pub const HOSTILE_PLUGIN: &str = env!("HOSTILE_PLUGIN_WASM");
/// The hostile retention policy (`tests/plugins/hostile-policy`), built by `build.rs`.
pub const HOSTILE_POLICY: &str = env!("HOSTILE_POLICY_WASM");

/// Tight limits so that attacks are stopped quickly: 64 MiB, 500 ms per
/// call, 64 handles.
pub fn tight_limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_millis(500),
        open_handles: 64,
    }
}

/// A store config for the hostile plugin over `data_dir`, with `attack`,
/// tight limits and the compile cache in `cache_dir`.
pub fn hostile_config(data_dir: &Path, cache_dir: &Path, attack: &str) -> StoreConfig {
    let mut config = StoreConfig::new(PluginSource::File(PathBuf::from(HOSTILE_PLUGIN)), data_dir);
    config.options = vec![("attack".into(), attack.into())];
    config.limits = tight_limits();
    config.cache_dir = Some(cache_dir.to_path_buf());
    config
}

/// A store config for the built-in `backend` at `path`, with backend
/// `options` and the test run's shared compile cache; everything else is
/// `StoreConfig`'s default.
pub fn builtin_config(
    backend: &str,
    path: impl AsRef<Path>,
    options: &[(&str, &str)],
) -> StoreConfig {
    let mut config = StoreConfig::new(PluginSource::Builtin(backend.into()), path.as_ref());
    config.cache_dir = Some(cli::shared_cache());
    config.options = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config
}

/// The numeric `id` field of a stored record's JSON, if it has one.
pub fn record_id(json: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(json).unwrap()["id"].as_u64()
}

/// The `id` of every record `store` reads back, in read order (`None` for a
/// record without one).
pub fn read_ids(store: &Store) -> Vec<Option<u64>> {
    store
        .read_all(&ReadQuery::default())
        .unwrap()
        .iter()
        .map(|r| record_id(&r.envelope.json))
        .collect()
}

/// Every file under `dir` whose extension is one of `extensions`, sorted.
pub fn files_with_extension(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Each of `lines` (JSON record lines, no newlines) as a record.
pub fn parse_records<S: AsRef<str>>(lines: &[S]) -> Vec<Record> {
    lines
        .iter()
        .map(|l| Record::from_json_line(l.as_ref(), 0.0).unwrap())
        .collect()
}

/// The built-in `standard` retention policy with `config` (JSON) at `now`.
pub fn standard_policy(config: &str, now: f64) -> quire::Policy {
    let loaded = quire::plugin::load_policy(
        &PluginSource::Builtin("standard".into()),
        Some(&cli::shared_cache()),
    )
    .expect("the built-in standard policy loads");
    quire::Policy::create(&loaded, config, now, Limits::default()).expect("a valid configuration")
}

/// A record of `kind` at `timestamp`.
pub fn record(kind: &str, timestamp: f64) -> Record {
    Record::from_json_line(
        &format!(r#"{{"kind":"{kind}","timestamp":{timestamp}}}"#),
        0.0,
    )
    .expect("a valid record")
}

/// Every file under `dir` (relative path, contents), sorted; symlinks are
/// listed by their target, not followed.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("listing a test directory") {
            let entry = entry.expect("reading a directory entry");
            let path = entry.path();
            let relative = path.strip_prefix(base).unwrap().to_path_buf();
            let kind = entry.file_type().expect("file type");
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).expect("reading a symlink");
                out.push((relative, target.to_string_lossy().into_owned().into_bytes()));
            } else if kind.is_dir() {
                out.push((relative, b"<dir>".to_vec()));
                walk(base, &path, out);
            } else {
                out.push((relative, std::fs::read(&path).expect("reading a test file")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A name no other test run uses, for files that must not appear.
pub fn unique_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("quire-hostile-{tag}-{}-{nanos}.txt", std::process::id())
}
