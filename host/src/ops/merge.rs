//! The k-way merge by timestamp across units that read, replay and
//! compaction share.
//!
//! Units are opened when the merge reaches their oldest record (from the
//! manifest), so only units that overlap in time are open together and
//! memory stays flat however long the history. Ties go to the unit listed
//! first, so the order is deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::calls::CursorHandle;
use crate::error::Result;
use crate::read_batch::{ReadBatch, RecordView};
use crate::session::Session;
use crate::wit::{ReadFilter, ReadOrder, UnitInfo};

/// One unit's cursor with its current batch.
struct Source {
    /// `None` once exhausted and closed.
    cursor: Option<CursorHandle>,
    batch: ReadBatch,
    /// The batch's next record.
    next: usize,
}

impl Source {
    fn head(&self) -> RecordView<'_> {
        self.batch.get(self.next)
    }

    /// The next record's timestamp: what the heap orders by.
    fn head_timestamp(&self) -> f64 {
        self.batch.timestamp(self.next)
    }
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

/// Moves to a fresh batch when the current one is used up; false at the end.
fn refill(session: &mut Session, source: &mut Source) -> Result<bool> {
    if let (true, Some(cursor)) = (source.next >= source.batch.len(), &source.cursor) {
        source.batch = session.next_batch(cursor, super::BATCH)?;
        source.next = 0;
    }
    Ok(source.next < source.batch.len())
}

/// Streams the records of `units` that pass `filter`, oldest first, to
/// `each` with the index of the unit they come from.
pub(crate) fn merge_units(
    session: &mut Session,
    units: &[UnitInfo],
    filter: &ReadFilter,
    mut each: impl FnMut(usize, RecordView<'_>) -> Result<()>,
) -> Result<()> {
    if let [unit] = units {
        return stream_one(session, unit, filter, |record| each(0, record));
    }
    let mut pending: Vec<(f64, usize)> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.min_timestamp.unwrap_or(f64::NEG_INFINITY), i))
        .collect();
    // Popped from the end: latest first in the vector.
    pending.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut sources: Vec<Source> = Vec::new();
    let result = (|| -> Result<()> {
        let mut heap: BinaryHeap<Head> = BinaryHeap::new();
        loop {
            // Open every unit whose oldest record is not after the head.
            while let Some((min, _)) = pending.last() {
                if heap.peek().is_some_and(|h| *min > h.timestamp) {
                    break;
                }
                let (_, index) = pending.pop().expect("peeked");
                let cursor =
                    session.open_cursor(&units[index].id, filter, ReadOrder::OldestFirst)?;
                let slot = sources.len();
                sources.push(Source {
                    cursor: Some(cursor),
                    batch: ReadBatch::empty(),
                    next: 0,
                });
                if refill(session, &mut sources[slot])? {
                    heap.push(Head {
                        timestamp: sources[slot].head_timestamp(),
                        index,
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
            // The source's records go out in a run while they stay first:
            // before the heap's head and before the oldest unopened unit,
            // so units that do not overlap cost no heap work per record.
            loop {
                // Handed on before the next cursor call: the view borrows the batch.
                each(index, source.head())?;
                source.next += 1;
                if !refill(session, source)? {
                    if let Some(done) = source.cursor.take() {
                        // Exhausted: give the cursor back now, not at the end.
                        session.close_cursor(done);
                    }
                    break;
                }
                let head = Head {
                    timestamp: source.head_timestamp(),
                    index,
                    slot,
                };
                let before_heap = heap.peek().is_none_or(|top| head > *top);
                let before_pending = pending.last().is_none_or(|(min, _)| *min > head.timestamp);
                if !(before_heap && before_pending) {
                    heap.push(head);
                    break;
                }
            }
        }
    })();
    for source in sources {
        if let Some(cursor) = source.cursor {
            session.close_cursor(cursor);
        }
    }
    result
}

/// One unit needs no merge: its records in order, batch by batch.
fn stream_one(
    session: &mut Session,
    unit: &UnitInfo,
    filter: &ReadFilter,
    mut each: impl FnMut(RecordView<'_>) -> Result<()>,
) -> Result<()> {
    let cursor = session.open_cursor(&unit.id, filter, ReadOrder::OldestFirst)?;
    let result = (|| loop {
        let batch = session.next_batch(&cursor, super::BATCH)?;
        if batch.len() == 0 {
            return Ok(());
        }
        for i in 0..batch.len() {
            each(batch.get(i))?;
        }
    })();
    session.close_cursor(cursor);
    result
}

/// Streams the records of `units` that pass `filter`, newest first (by
/// timestamp across units; within a unit, the backend's newest-first
/// order; ties to the unit listed last, so it is the oldest-first merge
/// reversed), to `each` until it returns `false`. Every unit's cursor is
/// opened up front, newest first: a backend that cannot read backwards
/// answers `unsupported` before any record is handed on.
pub(crate) fn merge_units_newest_first(
    session: &mut Session,
    units: &[UnitInfo],
    filter: &ReadFilter,
    mut each: impl FnMut(usize, RecordView<'_>) -> Result<bool>,
) -> Result<()> {
    let mut sources: Vec<Source> = Vec::with_capacity(units.len());
    let result = (|| -> Result<()> {
        for unit in units {
            let cursor = session.open_cursor(&unit.id, filter, ReadOrder::NewestFirst)?;
            sources.push(Source {
                cursor: Some(cursor),
                batch: ReadBatch::empty(),
                next: 0,
            });
        }
        // (timestamp, index) as the max-heap key: newest first, ties to the later unit.
        let mut heap: BinaryHeap<(Newest, usize)> = BinaryHeap::new();
        for (index, source) in sources.iter_mut().enumerate() {
            if refill(session, source)? {
                heap.push((Newest(source.head_timestamp()), index));
            }
        }
        while let Some((_, index)) = heap.pop() {
            let source = &mut sources[index];
            if !each(index, source.head())? {
                return Ok(());
            }
            source.next += 1;
            if refill(session, source)? {
                heap.push((Newest(source.head_timestamp()), index));
            } else if let Some(done) = source.cursor.take() {
                session.close_cursor(done);
            }
        }
        Ok(())
    })();
    for source in sources {
        if let Some(cursor) = source.cursor {
            session.close_cursor(cursor);
        }
    }
    result
}

/// A timestamp ordered totally, for the newest-first heap.
#[derive(PartialEq)]
struct Newest(f64);
impl Eq for Newest {}
impl PartialOrd for Newest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Newest {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
