//! Reads as a stream: a thread runs the blocking read and hands records
//! over a bounded channel, so it is never more than a few batches ahead.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{SinkExt, Stream};

use crate::error::{Error, Result};
use crate::read::ReadQuery;
use crate::store::Store;
use crate::wit::StoredRecord;

/// Records handed over at a time.
const CHUNK: usize = 256;
/// Chunks the reading thread may be ahead.
const AHEAD: usize = 4;

/// Matching records of a store, in the query's order. Dropping it stops
/// the read at the next chunk. Until then the read holds the store's
/// session: other calls on the store wait for it.
pub struct RecordStream {
    chunks: mpsc::Receiver<Result<Vec<StoredRecord>>>,
    current: std::vec::IntoIter<StoredRecord>,
}

impl RecordStream {
    /// Starts reading `query` on a thread of its own.
    pub fn start(store: Arc<Store>, query: ReadQuery) -> Self {
        let (mut sender, chunks) = mpsc::channel(AHEAD);
        std::thread::Builder::new()
            .name("quire-read".into())
            .spawn(move || {
                let mut chunk = Vec::with_capacity(CHUNK);
                let read = store.read(&query, |record| {
                    chunk.push(record.to_stored());
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        // Blocks this thread, not an executor's, until there is room.
                        futures::executor::block_on(sender.send(Ok(full)))
                            .map_err(|_| Error::Usage("the reader dropped the stream".into()))?;
                    }
                    Ok(())
                });
                let last = match read {
                    Ok(_) if chunk.is_empty() => return,
                    Ok(_) => Ok(chunk),
                    Err(e) => Err(e),
                };
                let _ = futures::executor::block_on(sender.send(last));
            })
            .expect("quire could not start a reading thread");
        Self {
            chunks,
            current: Vec::new().into_iter(),
        }
    }
}

impl Stream for RecordStream {
    type Item = Result<StoredRecord>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(record) = self.current.next() {
                return Poll::Ready(Some(Ok(record)));
            }
            match Pin::new(&mut self.chunks).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.current = chunk.into_iter(),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
