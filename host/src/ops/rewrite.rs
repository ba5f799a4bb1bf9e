//! The copy loops behind repair and compaction: stream a unit's valid
//! records through the host into the backend's atomic rewriter, or have
//! the backend copy places it already holds.

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::read_batch::RecordView;
use crate::session::Session;
use crate::wit::batch::BatchBuilder;
use crate::wit::{ReadFilter, ReadOrder, RecordPlace};

/// Outcome of a unit rewrite.
pub struct Rewritten {
    /// Records written to the replacement.
    pub kept: u64,
    /// Size of the unit after commit.
    pub bytes_after: u64,
}

/// Rewrites `unit` with the valid records `keep` accepts, in order. The
/// replacement is swapped in only if every step succeeded.
pub fn rewrite_unit(
    session: &mut Session,
    unit: &str,
    progress: &dyn Progress,
    keep: impl FnMut(&RecordView<'_>) -> Result<bool>,
) -> Result<Rewritten> {
    rewrite_unit_then(session, unit, progress, keep, || Ok(()))
}

/// [`rewrite_unit`], with `before_commit` run once every record is written
/// and before the replacement is swapped in (what must be durable first:
/// the records a repair sets aside).
pub fn rewrite_unit_then(
    session: &mut Session,
    unit: &str,
    progress: &dyn Progress,
    mut keep: impl FnMut(&RecordView<'_>) -> Result<bool>,
    before_commit: impl FnOnce() -> Result<()>,
) -> Result<Rewritten> {
    let cursor = session.open_cursor(
        unit,
        &ReadFilter {
            kinds: vec![],
            stores: vec![],
            since: None,
            until: None,
        },
        ReadOrder::OldestFirst,
    )?;
    let rewriter = match session.begin_rewrite(unit) {
        Ok(r) => r,
        Err(e) => {
            session.close_cursor(cursor);
            return Err(e);
        }
    };
    let mut kept = 0;
    // Where places are addresses (a stream's entry ids), records cannot be
    // written back into the middle of a unit: the backend keeps the places
    // given and removes the rest.
    let by_place = session.places_are_addresses();
    let copied = (|| -> Result<()> {
        loop {
            let batch = session.next_batch(&cursor, super::BATCH)?;
            if batch.len() == 0 {
                return Ok(());
            }
            let mut out = BatchBuilder::default();
            let mut places = Vec::new();
            for i in 0..batch.len() {
                let record = batch.get(i);
                progress.advance(record.stored_bytes);
                if keep(&record)? {
                    if by_place {
                        places.push(RecordPlace {
                            offset: record.offset,
                            stored_bytes: record.stored_bytes,
                        });
                    } else {
                        out.push(record.kind, record.store, record.timestamp, record.json);
                    }
                }
            }
            if by_place {
                kept += places.len() as u64;
                session.rewrite_copy(&rewriter, &places)?;
            } else {
                kept += out.len() as u64;
                session.rewrite_write(&rewriter, &out.finish())?;
            }
        }
    })();
    session.close_cursor(cursor);
    match copied.and_then(|()| before_commit()) {
        Ok(()) => Ok(Rewritten {
            kept,
            bytes_after: session.rewrite_commit(rewriter)?,
        }),
        Err(e) => {
            let _ = session.rewrite_abort(rewriter);
            Err(e)
        }
    }
}

/// Places handed to the backend per call (memory on both sides stays flat).
const PLACES_PER_CALL: usize = 4096;

/// Rewrites `unit` with the stored bytes at `places` (valid records read
/// from it earlier, in order), copied by the backend itself; the unit's new
/// size. `None` when the backend's format cannot copy (nothing was
/// replaced: write the records instead). `bytes` is the unit's size when
/// the places were read: a unit that has changed since (another writer
/// that ignores quire's lock) is not replaced, as a copy would drop what
/// was added.
pub fn copy_unit(
    session: &mut Session,
    unit: &str,
    bytes: u64,
    places: &[RecordPlace],
    progress: &dyn Progress,
) -> Result<Option<u64>> {
    let rewriter = session.begin_rewrite(unit)?;
    let copied = (|| -> Result<()> {
        // At least one call, so a backend that cannot copy says so even
        // when nothing is kept.
        for chunk in places
            .chunks(PLACES_PER_CALL)
            .chain(places.is_empty().then_some(&[][..]))
        {
            session.rewrite_copy(&rewriter, chunk)?;
            progress.advance(chunk.iter().map(|p| p.stored_bytes).sum());
        }
        // Where places are addresses (Redis), the backend removes nothing
        // after the last entry the host read, so a stream that grew meanwhile
        // is safe to replace (and its size is the server's estimate, which
        // moves with any write).
        let now = session.units()?.into_iter().find(|u| u.id == unit);
        if !session.places_are_addresses() && now.map(|u| u.bytes) != Some(bytes) {
            return Err(Error::Usage(format!(
                "`{unit}` changed during compaction; nothing was replaced"
            )));
        }
        Ok(())
    })();
    match copied {
        Ok(()) => Ok(Some(session.rewrite_commit(rewriter)?)),
        Err(e) => {
            let _ = session.rewrite_abort(rewriter);
            match e {
                Error::Unsupported { .. } => Ok(None),
                e => Err(e),
            }
        }
    }
}
