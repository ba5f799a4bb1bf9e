//! The writer thread: appends of every task, grouped into one store batch
//! and one sync.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use futures::channel::oneshot;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::store::Store;

/// Records one group may hold before it is appended (later arrivals wait
/// for the next group).
const GROUP_RECORDS: usize = 64 * 1024;

/// One caller's append, waiting for the writer.
struct Pending {
    records: Vec<Record>,
    done: oneshot::Sender<Result<()>>,
}

/// The writer thread and its queue.
pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the thread.
    pub fn start(store: Arc<Store>) -> Self {
        let (queue, arrivals) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("quire-async-writer".into())
            .spawn(move || run(&store, &arrivals))
            .expect("quire could not start its async writer thread");
        Self {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Queues `records`; resolves when they are appended (or failed).
    pub async fn append(&self, records: Vec<Record>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let sent = match &*self.queue.lock().expect("queue lock") {
            Some(queue) => queue.send(Pending { records, done }).is_ok(),
            None => false,
        };
        if !sent {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued and stop.
        self.queue.lock().expect("queue lock").take();
        if let Some(thread) = self.thread.lock().expect("thread lock").take() {
            let _ = thread.join();
        }
    }
}

fn stopped() -> Error {
    Error::Usage("the store's async writer has stopped (a panic while appending)".into())
}

/// Takes what has queued up, appends it as one batch, answers everyone.
fn run(store: &Store, arrivals: &mpsc::Receiver<Pending>) {
    while let Ok(first) = arrivals.recv() {
        let mut group = vec![first];
        let mut records = group[0].records.len();
        while records < GROUP_RECORDS {
            match arrivals.try_recv() {
                Ok(next) => {
                    records += next.records.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        // Callers who gave up before their turn are not written.
        group.retain(|p| !p.done.is_canceled());
        append_group(store, group);
    }
}

fn append_group(store: &Store, group: Vec<Pending>) {
    if group.len() == 1 {
        let Pending { records, done } = group.into_iter().next().expect("one");
        let _ = done.send(store.append(records));
        return;
    }
    let mut batch = Batch::new();
    for pending in &group {
        for record in &pending.records {
            batch.push(record);
        }
    }
    match store.append_batch(batch) {
        Ok(()) => {
            for pending in group {
                let _ = pending.done.send(Ok(()));
            }
        }
        // All or nothing failed: each caller's records alone, so only the
        // batch at fault fails (a full disk fails them all, one by one).
        Err(_) => {
            for Pending { records, done } in group {
                let _ = done.send(store.append(records));
            }
        }
    }
}
