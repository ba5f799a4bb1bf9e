//! Read and replay: per-record filters, units pruned by their manifests, a
//! k-way merge by timestamp across units, and `limit` as "the newest N" in
//! memory bounded by N.

use std::collections::VecDeque;

use super::merge::merge_units;
use crate::error::{Error, Result};
use crate::metrics;
use crate::read_batch::RecordView;
use crate::store::Store;
use crate::wit::{ReadFilter, StoredRecord, UnitInfo};

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

/// Whether a unit's manifest facts leave room for a record that passes `filter`.
fn may_match(unit: &UnitInfo, filter: &ReadFilter) -> bool {
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

impl Store {
    /// Streams matching records, oldest first (or newest first), to `each`,
    /// borrowed from the batches they arrive in (`to_stored` or
    /// `to_record` keeps one). Returns how many were delivered.
    pub fn read(
        &self,
        query: &ReadQuery,
        mut each: impl FnMut(RecordView<'_>) -> Result<()>,
    ) -> Result<u64> {
        let mut session = self.session();
        let filter = ReadFilter {
            kinds: query.kinds.clone(),
            stores: query.stores.clone(),
            since: query.since,
            until: query.until,
        };
        let units: Vec<UnitInfo> = session
            .units()?
            .into_iter()
            .filter(|u| may_match(u, &filter))
            .collect();
        // The newest N, or everything newest first: read from the end where
        // the backend can (Redis: XREVRANGE), stopping after N.
        if query.limit.is_some() || query.newest_first {
            match read_from_the_end(&mut session, &units, &filter, query, &mut each) {
                Err(Error::Unsupported { .. }) => {}
                Ok(delivered) => {
                    metrics::add(&self.metrics.records_read, delivered);
                    return Ok(delivered);
                }
                Err(e) => return Err(e),
            }
        }
        let mut delivered = 0u64;
        // Newest-first and limit need a window at the end of the stream.
        let window = query.limit.or(if query.newest_first {
            Some(usize::MAX)
        } else {
            None
        });
        let mut tail: VecDeque<StoredRecord> = VecDeque::new();
        let mut emit = |record: RecordView<'_>, tail: &mut VecDeque<StoredRecord>| -> Result<()> {
            match window {
                Some(0) => Ok(()),
                Some(n) => {
                    if tail.len() == n {
                        tail.pop_front();
                    }
                    tail.push_back(record.to_stored());
                    Ok(())
                }
                None => {
                    delivered += 1;
                    each(record)
                }
            }
        };
        let result = merge_units(&mut session, &units, &filter, |_, record| {
            emit(record, &mut tail)
        });
        drop(session);
        result?;
        if window.is_some() {
            let records: Box<dyn Iterator<Item = &StoredRecord>> = if query.newest_first {
                Box::new(tail.iter().rev())
            } else {
                Box::new(tail.iter())
            };
            for record in records {
                delivered += 1;
                each(record.view())?;
            }
        }
        metrics::add(&self.metrics.records_read, delivered);
        Ok(delivered)
    }

    /// Reads every matching record into memory (convenience for small stores and tests).
    pub fn read_all(&self, query: &ReadQuery) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        self.read(query, |r| {
            out.push(r.to_stored());
            Ok(())
        })?;
        Ok(out)
    }
}

/// [`Store::read`] with a limit or newest first, through newest-first
/// cursors: `unsupported` (before any record is handed on) where the
/// backend cannot read backwards.
fn read_from_the_end(
    session: &mut crate::session::Session,
    units: &[UnitInfo],
    filter: &ReadFilter,
    query: &ReadQuery,
    each: &mut impl FnMut(RecordView<'_>) -> Result<()>,
) -> Result<u64> {
    let limit = query.limit.unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(0);
    }
    let mut delivered = 0u64;
    let mut newest: Vec<StoredRecord> = Vec::new();
    super::merge::merge_units_newest_first(session, units, filter, |_, record| {
        if query.newest_first {
            delivered += 1;
            each(record)?;
        } else {
            newest.push(record.to_stored());
        }
        Ok(delivered < limit as u64 && newest.len() < limit)
    })?;
    // Oldest first: the newest N, turned around.
    for record in newest.iter().rev() {
        delivered += 1;
        each(record.view())?;
    }
    Ok(delivered)
}
