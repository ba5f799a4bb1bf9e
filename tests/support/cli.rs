//! Running the CLI under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The CLI binary (built beside the test executables, from `support/quire_cli.rs`).
pub fn quire_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile directory");
    dir.join("quire-cli-under-test")
}

/// A `quire` command with a private compile cache under `dir`.
pub fn quire(dir: &Path) -> Command {
    let mut cmd = Command::new(quire_binary());
    cmd.env("QUIRE_CACHE_DIR", shared_cache())
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

/// One cache for the whole test run, so each test does not recompile.
pub fn shared_cache() -> PathBuf {
    std::env::temp_dir().join(format!("quire-test-cache-{}", env!("CARGO_PKG_VERSION")))
}

/// Runs and captures, with stdin.
pub fn run(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn quire");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Lines of a file that parse as JSON objects, as values.
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&std::fs::read(path).unwrap())
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// Runs `quire ARGS` in `dir` with `stdin` and captures its output.
pub fn quire_run(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = quire(dir);
    cmd.args(args);
    run(cmd, stdin)
}
