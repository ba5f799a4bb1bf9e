//! The one copy loop behind repair and compaction: stream a unit's valid
//! records through the host into the backend's atomic rewriter.

use crate::error::Result;
use crate::progress::Progress;
use crate::read_batch::RecordView;
use crate::session::Session;
use crate::wit::batch::BatchBuilder;
use crate::wit::{ReadFilter, ReadOrder};

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
    mut keep: impl FnMut(&RecordView<'_>) -> Result<bool>,
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
    let copied = (|| -> Result<()> {
        loop {
            let batch = session.next_batch(&cursor, super::BATCH)?;
            if batch.len() == 0 {
                return Ok(());
            }
            let mut out = BatchBuilder::default();
            for i in 0..batch.len() {
                let record = batch.get(i);
                progress.advance(record.stored_bytes);
                if keep(&record)? {
                    out.push(record.kind, record.store, record.timestamp, record.json);
                }
            }
            kept += out.len() as u64;
            session.rewrite_write(&rewriter, &out.finish())?;
        }
    })();
    session.close_cursor(cursor);
    match copied {
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
