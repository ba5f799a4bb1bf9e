//! quire embedded in a small multi-threaded actor system.
//!
//! `cargo run --release --example actor_loop` runs a supervisor that starts
//! the actor system as a child process, kills it with SIGKILL mid-flight,
//! restarts it, and checks that every message an actor saw acknowledged is
//! in the log. Run a child by hand with `actor_loop run DIR`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use quire::{PluginSource, Record, StartupMode, Store, StoreConfig, progress::Silent};

#[path = "shared/supervisor.rs"]
mod supervisor;

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

fn main() -> quire::Result<()> {
    supervisor::main(run, open)
}
