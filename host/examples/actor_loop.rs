//! quire embedded in a small multi-threaded actor system.
//!
//! `cargo run --release --example actor_loop` runs a supervisor that starts
//! the actor system as a child process, kills it with SIGKILL mid-flight,
//! restarts it, and checks that every message an actor saw acknowledged is
//! in the log. Run a child by hand with `actor_loop run DIR`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use quire::{PluginSource, ReadQuery, Record, StartupMode, Store, StoreConfig, progress::Silent};

const ACTORS: usize = 4;

fn open(dir: &Path) -> quire::Result<Store> {
    // Durable per write: an acknowledged append survives kill -9 and power loss.
    Store::open(StoreConfig::new(
        PluginSource::Builtin("ndjson".into()),
        dir.join("actors.ndjson"),
    ))
}

/// The actor system: each actor handles messages from its mailbox and
/// persists an event per message before acknowledging it (printing `ack`).
fn run(dir: &Path, life: u64) -> quire::Result<()> {
    let store = Arc::new(open(dir)?);
    // Recover from whatever the last crash left before taking traffic.
    let check = store.startup_check(StartupMode::Recover(quire::RecoveryMode::Repair), &Silent)?;
    assert!(check.ok, "startup check failed");
    let (acks, ack_rx) = mpsc::channel::<String>();
    let actors: Vec<_> = (0..ACTORS)
        .map(|actor| {
            let (mailbox, inbox) = mpsc::channel::<u64>();
            let store = store.clone();
            let acks = acks.clone();
            std::thread::spawn(move || {
                for seq in inbox {
                    let line = format!(
                        r#"{{"kind":"event","system_id":"demo","actor_address":"demo:{actor}","event_type":"Handled","payload":{{"life":{life},"seq":{seq}}},"timestamp":{}}}"#,
                        quire::now()
                    );
                    store.append(vec![Record::from_json_line(&line, 0.0).unwrap()]).unwrap();
                    acks.send(format!("ack {life} {actor} {seq}")).unwrap();
                }
            });
            mailbox
        })
        .collect();
    drop(acks);
    std::thread::spawn(move || {
        for seq in 0.. {
            for mailbox in &actors {
                if mailbox.send(seq).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let mut out = std::io::stdout().lock();
    for ack in ack_rx {
        writeln!(out, "{ack}").and_then(|_| out.flush()).ok();
    }
    Ok(())
}

/// Starts the child, kills it, and returns the acks it printed.
fn life(exe: &Path, dir: &Path, life: u64, run_for: Duration) -> Vec<(u64, usize, u64)> {
    let mut child = Command::new(exe)
        .args(["run", &dir.display().to_string(), &life.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the actor system");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                let mut p = l
                    .strip_prefix("ack ")?
                    .split(' ')
                    .map(|x| x.parse::<u64>().ok());
                Some((p.next()??, p.next()?? as usize, p.next()??))
            })
            .collect::<Vec<_>>()
    });
    std::thread::sleep(run_for);
    child.kill().expect("SIGKILL the actor system");
    child.wait().unwrap();
    reader.join().unwrap()
}

fn supervise(dir: PathBuf, lives: u64) -> quire::Result<()> {
    let exe = std::env::current_exe().expect("own path");
    let mut acknowledged = Vec::new();
    for n in 0..lives {
        let acks = life(&exe, &dir, n, Duration::from_millis(400 + 150 * n));
        println!("life {n}: killed after {} acknowledged appends", acks.len());
        acknowledged.extend(acks);
    }
    let store = open(&dir)?;
    let mut stored: HashMap<(u64, usize, u64), usize> = HashMap::new();
    for record in store.read_all(&ReadQuery::default())? {
        let v: serde_json::Value = serde_json::from_str(&record.envelope.json).unwrap();
        let actor: usize = v["actor_address"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        *stored
            .entry((
                v["payload"]["life"].as_u64().unwrap(),
                actor,
                v["payload"]["seq"].as_u64().unwrap(),
            ))
            .or_default() += 1;
    }
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|a| !stored.contains_key(a))
        .collect();
    let duplicated = stored.values().filter(|&&n| n > 1).count();
    println!(
        "restarted: {} acknowledged, {} stored, {} missing, {} duplicated",
        acknowledged.len(),
        stored.len(),
        missing.len(),
        duplicated
    );
    if !missing.is_empty() || duplicated > 0 || acknowledged.is_empty() {
        eprintln!("FAILED: first missing {:?}", missing.first());
        std::process::exit(1);
    }
    println!("every acknowledged record is there");
    Ok(())
}

fn main() -> quire::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("run") => run(Path::new(&args[2]), args[3].parse().unwrap()),
        Some(dir) => supervise(PathBuf::from(dir), 3),
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            supervise(dir.path().to_path_buf(), 3)
        }
    }
}
