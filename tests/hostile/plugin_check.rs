//! `quire plugin check` tells the truth: a component that cannot start
//! fails the check, and the compile cache is reported as it was used.

use super::*;
use quire_tests::cli::{quire_run, stderr, stdout};

fn check(dir: &Path, plugin: &str, cache: &Path) -> std::process::Output {
    quire_run(
        dir,
        &[
            "plugin",
            "check",
            plugin,
            "--cache-dir",
            &cache.display().to_string(),
        ],
        "",
    )
}

#[test]
fn a_plugin_that_cannot_start_fails_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    // The hostile policy traps in `create` when given no configuration.
    let out = check(
        tmp.path(),
        quire_tests::HOSTILE_POLICY,
        &tmp.path().join("cache"),
    );
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        stdout(&out)
    );
    assert!(
        err.contains("faulted during open") && err.contains("trapped"),
        "{err}"
    );
}

#[test]
fn the_compile_cache_is_reported_as_used() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for (plugin, first) in [(HOSTILE_PLUGIN, "Stored"), ("standard", "Stored")] {
        let out = check(tmp.path(), plugin, &cache);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("compile cache: {first}")),
            "{}",
            stdout(&out)
        );
        let out = check(tmp.path(), plugin, &cache);
        assert!(
            stdout(&out).contains("compile cache: Hit"),
            "{}",
            stdout(&out)
        );
    }
}
