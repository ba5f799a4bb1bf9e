//! Running the CLI under test.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The CLI binary: the example `quire-cli-under-test` (`support/quire_cli.rs`),
/// which `cargo test` builds beside the test executables.
pub fn quire_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile directory");
    let binary = dir.join("examples").join("quire-cli-under-test");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test --release` (which builds examples) or \
         build it with `cargo build --release -p quire-tests --example quire-cli-under-test`",
        binary.display()
    );
    binary
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
pub fn run(cmd: Command, stdin: &str) -> Output {
    run_bytes(cmd, stdin.as_bytes())
}

/// Runs and captures, with stdin of any bytes.
pub fn run_bytes(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn quire");
    let fed = child.stdin.take().unwrap().write_all(stdin);
    // A command that fails before reading its input (a usage error) closes it.
    if let Err(e) = fed {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "feeding stdin: {e}"
        );
    }
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

/// `quire SUB --backend BACKEND --path PATH ARGS...` in `dir`, with `stdin`.
pub fn quire_backend(
    dir: &Path,
    backend: &str,
    path: &str,
    sub: &str,
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut all = vec![sub, "--backend", backend, "--path", path];
    all.extend_from_slice(args);
    quire_run(dir, &all, stdin)
}

/// `out`, after asserting that it exited with `code`; otherwise fails with
/// `what` and both streams.
pub fn expect_code(out: Output, code: i32, what: &str) -> Output {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// `--option O` for each of `options`.
pub fn option_args<'a>(options: &[&'a str]) -> Vec<&'a str> {
    options.iter().flat_map(|o| ["--option", *o]).collect()
}

/// `lines` as input for `quire append`: each followed by a newline.
pub fn input(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// stdout as JSON; fails showing stdout when it is not.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// stdout as lines, without their newlines.
pub fn stdout_lines(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_string).collect()
}

/// Field `name` of a JSON record line.
pub fn field(line: &str, name: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(line).unwrap()[name].clone()
}

/// Starts `cmd` with its output discarded and SIGKILLs it after `delay`;
/// true when it had already finished by then.
pub fn kill_after(mut cmd: Command, delay: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    child.wait().unwrap();
    finished
}

/// When a kill's delay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// At the start of the process: the kill may come before it has
    /// acknowledged anything (while it loads, opens or writes its first
    /// batch).
    Spawn,
    /// At its first acknowledgement, so the round acknowledges something
    /// whatever the machine's speed; at once if it acknowledges nothing
    /// within a minute or stops first.
    FirstAck,
}

impl Since {
    /// Round `round`'s kill timing: one round in `spawn_every` from the
    /// spawn, `from_spawn` plus up to `spread`; the rest up to `spread`
    /// after the first acknowledgement.
    pub fn dealt(
        round: u64,
        spawn_every: u64,
        from_spawn: Duration,
        spread: Duration,
        rng: &mut crate::Rng,
    ) -> (Since, Duration) {
        let jitter = Duration::from_millis(rng.below(spread.as_millis() as u64));
        if round.is_multiple_of(spawn_every) {
            (Since::Spawn, from_spawn + jitter)
        } else {
            (Since::FirstAck, jitter)
        }
    }
}

/// Starts `cmd` (a `quire append --ack ...`), feeds it `lines` (each with its
/// newline) until they run out or it stops reading, and SIGKILLs it `delay`
/// after `since`. Returns the last count it acknowledged (`ack N` on stdout).
pub fn killed_append(
    cmd: Command,
    lines: impl Iterator<Item = String> + Send + 'static,
    since: Since,
    delay: Duration,
) -> u64 {
    append_until(cmd, lines, since, delay, |child| child.kill().unwrap()).0
}

/// Starts `cmd` (a `quire append --ack ...`), feeds it `lines`, and `delay`
/// after `since` calls `stop` (kill the process, or something it depends
/// on), then waits for it. Returns the last count it acknowledged and how it
/// ended.
pub fn append_until(
    mut cmd: Command,
    lines: impl Iterator<Item = String> + Send + 'static,
    since: Since,
    delay: Duration,
    stop: impl FnOnce(&mut std::process::Child),
) -> (u64, std::process::ExitStatus) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for line in lines {
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    let out = child.stdout.take().unwrap();
    let (first_ack, acked_once) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut last = 0u64;
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if let Some(n) = l.strip_prefix("ack ") {
                last = n.parse().unwrap();
                let _ = first_ack.send(());
            }
        }
        last
    });
    if since == Since::FirstAck {
        // Returns early too when the reader ends (the sender is dropped).
        let _ = acked_once.recv_timeout(Duration::from_secs(60));
    }
    std::thread::sleep(delay);
    stop(&mut child);
    let status = child.wait().unwrap();
    let acked = reader.join().unwrap();
    feeder.join().unwrap();
    (acked, status)
}
