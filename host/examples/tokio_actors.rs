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

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use quire::{AsyncStore, PluginSource, Record, RecoveryMode, StartupMode, Store, StoreConfig};

#[path = "shared/supervisor.rs"]
mod supervisor;

const ACTORS: usize = 16;

fn config(dir: &Path) -> StoreConfig {
    // Durable per write: an acknowledged append survives kill -9 and power loss.
    StoreConfig::new(
        PluginSource::Builtin("segmented".into()),
        dir.join("actors"),
    )
}

fn open(dir: &Path) -> quire::Result<Store> {
    Store::open(config(dir))
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

fn main() -> quire::Result<()> {
    supervisor::main(run, open)
}
