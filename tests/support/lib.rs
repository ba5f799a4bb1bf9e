//! Shared helpers for quire's integration tests.

pub mod cli;

use std::path::{Path, PathBuf};
use std::time::Duration;

use quire::{Limits, PluginSource, Record, StoreConfig};

/// The hostile test plugin (`tests/plugins/hostile`), built by `build.rs`.
pub const HOSTILE_PLUGIN: &str = env!("HOSTILE_PLUGIN_WASM");

/// Tight limits so that attacks are stopped quickly: 64 MiB, 500 ms per call.
pub fn tight_limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        call_deadline: Duration::from_millis(500),
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
