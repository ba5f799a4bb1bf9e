//! Read and replay: per-record filters, a k-way merge by timestamp across
//! units, and `limit` as "the newest N" in memory bounded by N.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use crate::bindings::{ReadFilter, ReadOrder, StoredRecord};
use crate::calls::CursorHandle;
use crate::error::Result;
use crate::metrics;
use crate::session::Session;
use crate::store::Store;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct ReadQuery {
    /// Only these kinds (empty: all).
    pub kinds: Vec<String>,
    /// Only these stores (empty: all).
    pub stores: Vec<String>,
    /// `timestamp >= since`.
    pub since: Option<f64>,
    /// `timestamp < until`.
    pub until: Option<f64>,
    /// Only the newest N matching records (Papyra's `limit`).
    pub limit: Option<usize>,
    /// Deliver newest first.
    pub newest_first: bool,
}

/// One unit's cursor with its buffered head.
struct Source {
    cursor: CursorHandle,
    index: usize,
    buffer: VecDeque<StoredRecord>,
}

struct Head {
    timestamp: f64,
    index: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// Reversed: `BinaryHeap` is a max-heap and we want the oldest; ties go
    /// to the older unit so replay is deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .timestamp
            .total_cmp(&self.timestamp)
            .then(other.index.cmp(&self.index))
    }
}

fn refill(session: &mut Session, source: &mut Source) -> Result<bool> {
    if source.buffer.is_empty() {
        source
            .buffer
            .extend(session.next_batch(&source.cursor, super::BATCH)?);
    }
    Ok(!source.buffer.is_empty())
}

impl Store {
    /// Streams matching records, oldest first (or newest first), to `each`.
    /// Returns how many were delivered.
    pub fn read(
        &self,
        query: &ReadQuery,
        mut each: impl FnMut(StoredRecord) -> Result<()>,
    ) -> Result<u64> {
        let mut session = self.session();
        let filter = ReadFilter {
            kinds: query.kinds.clone(),
            stores: query.stores.clone(),
            since: query.since,
            until: query.until,
        };
        let units = session.units()?;
        let mut sources = Vec::with_capacity(units.len());
        for (index, unit) in units.iter().enumerate() {
            let cursor = session.open_cursor(&unit.id, &filter, ReadOrder::OldestFirst)?;
            sources.push(Source {
                cursor,
                index,
                buffer: VecDeque::new(),
            });
        }
        let mut delivered = 0u64;
        // Newest-first and limit need a window at the end of the stream.
        let window = query.limit.or(if query.newest_first {
            Some(usize::MAX)
        } else {
            None
        });
        let mut tail: VecDeque<StoredRecord> = VecDeque::new();
        let mut emit = |record: StoredRecord, tail: &mut VecDeque<StoredRecord>| -> Result<()> {
            match window {
                Some(0) => Ok(()),
                Some(n) => {
                    if tail.len() == n {
                        tail.pop_front();
                    }
                    tail.push_back(record);
                    Ok(())
                }
                None => {
                    delivered += 1;
                    each(record)
                }
            }
        };
        let result = (|| -> Result<()> {
            let mut heap = BinaryHeap::new();
            for source in sources.iter_mut() {
                if refill(&mut session, source)? {
                    heap.push(Head {
                        timestamp: source.buffer[0].envelope.timestamp,
                        index: source.index,
                    });
                }
            }
            while let Some(Head { index, .. }) = heap.pop() {
                let source = &mut sources[index];
                let record = source.buffer.pop_front().expect("heads have a record");
                if refill(&mut session, source)? {
                    heap.push(Head {
                        timestamp: source.buffer[0].envelope.timestamp,
                        index,
                    });
                }
                emit(record, &mut tail)?;
            }
            Ok(())
        })();
        for source in sources {
            session.close_cursor(source.cursor);
        }
        drop(session);
        result?;
        if window.is_some() {
            let records: Box<dyn Iterator<Item = StoredRecord>> = if query.newest_first {
                Box::new(tail.into_iter().rev())
            } else {
                Box::new(tail.into_iter())
            };
            for record in records {
                delivered += 1;
                each(record)?;
            }
        }
        metrics::add(&self.metrics.records_read, delivered);
        Ok(delivered)
    }

    /// Reads every matching record into memory (convenience for small stores and tests).
    pub fn read_all(&self, query: &ReadQuery) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        self.read(query, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }
}
