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
    /// `None` once exhausted and closed.
    cursor: Option<CursorHandle>,
    buffer: VecDeque<StoredRecord>,
}

struct Head {
    timestamp: f64,
    /// Position of the unit in `units()`: breaks ties deterministically.
    index: usize,
    /// Where its source is in the list of opened sources.
    slot: usize,
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

/// Whether a unit's manifest facts leave room for a record that passes `filter`.
fn may_match(unit: &crate::bindings::UnitInfo, filter: &ReadFilter) -> bool {
    let store_ok = match &unit.store {
        Some(store) => filter.stores.is_empty() || filter.stores.contains(store),
        None => true,
    };
    let since_ok = match (filter.since, unit.max_timestamp) {
        (Some(since), Some(max)) => max >= since,
        _ => true,
    };
    let until_ok = match (filter.until, unit.min_timestamp) {
        (Some(until), Some(min)) => min < until,
        _ => true,
    };
    store_ok && since_ok && until_ok
}

fn refill(session: &mut Session, source: &mut Source) -> Result<bool> {
    if source.buffer.is_empty() {
        if let Some(cursor) = &source.cursor {
            source
                .buffer
                .extend(session.next_batch(cursor, super::BATCH)?);
        }
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
        // Units that cannot hold a match are never opened; the rest are
        // opened when the merge reaches their oldest record, so only units
        // that overlap in time are open together and memory stays flat
        // however long the history.
        let mut pending: Vec<(f64, usize, String)> = session
            .units()?
            .into_iter()
            .enumerate()
            .filter(|(_, u)| may_match(u, &filter))
            .map(|(i, u)| (u.min_timestamp.unwrap_or(f64::NEG_INFINITY), i, u.id))
            .collect();
        // Popped from the end: latest first in the vector.
        pending.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut sources: Vec<Source> = Vec::new();
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
            let mut heap: BinaryHeap<Head> = BinaryHeap::new();
            loop {
                // Open every unit whose oldest record is not after the head.
                while let Some((min, _, _)) = pending.last() {
                    let due = heap.peek().is_none_or(|h| *min <= h.timestamp);
                    if !due {
                        break;
                    }
                    let (_, order, id) = pending.pop().expect("peeked");
                    let cursor = session.open_cursor(&id, &filter, ReadOrder::OldestFirst)?;
                    let slot = sources.len();
                    sources.push(Source {
                        cursor: Some(cursor),
                        buffer: VecDeque::new(),
                    });
                    if refill(&mut session, &mut sources[slot])? {
                        heap.push(Head {
                            timestamp: sources[slot].buffer[0].envelope.timestamp,
                            index: order,
                            slot,
                        });
                    }
                }
                let Some(Head { index, slot, .. }) = heap.pop() else {
                    if pending.is_empty() {
                        return Ok(());
                    }
                    continue;
                };
                let source = &mut sources[slot];
                let record = source.buffer.pop_front().expect("heads have a record");
                if refill(&mut session, source)? {
                    heap.push(Head {
                        timestamp: source.buffer[0].envelope.timestamp,
                        index,
                        slot,
                    });
                } else {
                    // Exhausted: give the cursor back now, not at the end.
                    if let Some(done) = source.cursor.take() {
                        session.close_cursor(done);
                    }
                }
                emit(record, &mut tail)?;
            }
        })();
        for source in sources {
            if let Some(cursor) = source.cursor {
                session.close_cursor(cursor);
            }
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
