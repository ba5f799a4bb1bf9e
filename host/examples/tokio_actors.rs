//! quire embedded in an async actor system on tokio, through `AsyncStore`.
//!
//! `cargo run --release --example tokio_actors` runs a supervisor that
//! starts the actor system as a child process, kills it with SIGKILL
//! mid-flight, restarts it, and checks that every message an actor saw
//! acknowledged is in the log, once. Run a child by hand with
//! `tokio_actors run DIR LIFE`.
//!
//! Actors are tokio tasks with a mailbox each; an actor persists an event
//! per message (awaiting the append, which never blocks a worker thread)
//! before it acknowledges the message. Appends of all actors share syncs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use quire::{
    AsyncStore, PluginSource, ReadQuery, Record, RecoveryMode, StartupMode, Store, StoreConfig,
};

const ACTORS: usize = 16;

fn config(dir: &Path) -> StoreConfig {
    // Durable per write: an acknowledged append survives kill -9 and power loss.
    StoreConfig::new(
        PluginSource::Builtin("segmented".into()),
        dir.join("actors"),
    )
}

/// One actor: handles its mailbox in order, persisting before acknowledging.
async fn actor(
    store: AsyncStore,
    id: usize,
    life: u64,
    mut inbox: mpsc::Receiver<u64>,
    mut acks: mpsc::UnboundedSender<String>,
) {
    while let Some(seq) = inbox.next().await {
        let line = format!(
            r#"{{"kind":"event","system_id":"demo","actor_address":"demo:{id}","event_type":"Handled","payload":{{"life":{life},"seq":{seq}}},"timestamp":{}}}"#,
            quire::now()
        );
        let record = Record::from_json_line(&line, 0.0).expect("a record");
        store.append(vec![record]).await.expect("persisted");
        if acks.send(format!("ack {life} {id} {seq}")).await.is_err() {
            return;
        }
    }
}

/// The actor system, until it is killed.
fn run(dir: &Path, life: u64) -> quire::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let store = AsyncStore::open(config(dir)).await?;
        // Recover from whatever the last crash left before taking traffic.
        let check = store
            .startup_check(StartupMode::Recover(RecoveryMode::Repair))
            .await?;
        assert!(check.ok, "startup check failed");
        let (acks, mut ack_rx) = mpsc::unbounded::<String>();
        let mut mailboxes = Vec::new();
        for id in 0..ACTORS {
            let (mailbox, inbox) = mpsc::channel::<u64>(64);
            tokio::spawn(actor(store.clone(), id, life, inbox, acks.clone()));
            mailboxes.push(mailbox);
        }
        drop(acks);
        tokio::spawn(async move {
            for seq in 0.. {
                for mailbox in &mut mailboxes {
                    if mailbox.send(seq).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        });
        let mut out = std::io::stdout().lock();
        while let Some(ack) = ack_rx.next().await {
            writeln!(out, "{ack}").and_then(|_| out.flush()).ok();
        }
        Ok(())
    })
}

/// Starts the child, kills it, and returns the acks it printed.
fn life(exe: &Path, dir: &Path, life: u64, run_for: Duration) -> Vec<(u64, usize, u64)> {
    let mut child = Command::new(exe)
        .args(["run", &dir.display().to_string(), &life.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the actor system");
    let stdout = child.stdout.take().unwrap();
    let (first_ack, started) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut p = line
                .strip_prefix("ack ")
                .into_iter()
                .flat_map(|rest| rest.split(' '))
                .map(|x| x.parse::<u64>().ok());
            if let (Some(Some(life)), Some(Some(actor)), Some(Some(seq))) =
                (p.next(), p.next(), p.next())
            {
                if acks.is_empty() {
                    let _ = first_ack.send(());
                }
                acks.push((life, actor as usize, seq));
            }
        }
        acks
    });
    // The clock starts at the first acknowledgement (opening may compile the plugin).
    let _ = started.recv_timeout(Duration::from_secs(120));
    std::thread::sleep(run_for);
    child.kill().expect("SIGKILL the actor system");
    child.wait().unwrap();
    reader.join().unwrap()
}

fn supervise(dir: PathBuf, lives: u64) -> quire::Result<()> {
    let exe = std::env::current_exe().expect("own path");
    let mut acknowledged = Vec::new();
    for n in 0..lives {
        let acks = life(&exe, &dir, n, Duration::from_millis(300 + 150 * n));
        println!("life {n}: killed after {} acknowledged appends", acks.len());
        acknowledged.extend(acks);
    }
    let store = Store::open(config(&dir))?;
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
