//! Replacing one rotated file: the new contents go to a temporary file that
//! is synced and renamed over the original; then the manifest entry (for a
//! sealed file, which stays sealed) or the live file's state is updated.

use std::cell::RefCell;
use std::rc::Rc;

use quire_guest::atomic::AtomicFile;
use quire_guest::linefile;
use quire_guest::types::{PluginError, RecordBatch};

use crate::stats::FileStats;
use crate::store::{Shared, now};

/// A replacement being built.
pub struct RotatingRewriter {
    file: RefCell<AtomicFile>,
    stats: RefCell<FileStats>,
    shared: Rc<Shared>,
    category: String,
    sequence: u64,
}

impl RotatingRewriter {
    /// A replacement of `category`'s file `sequence`, written to `file`.
    pub fn new(file: AtomicFile, shared: Rc<Shared>, category: String, sequence: u64) -> Self {
        Self {
            file: RefCell::new(file),
            stats: RefCell::default(),
            shared,
            category,
            sequence,
        }
    }

    /// Adds records, in order, verbatim: the batch's text is its lines.
    pub fn write(&self, batch: &RecordBatch) -> Result<(), PluginError> {
        let text = linefile::checked_text(batch)?;
        self.file.borrow_mut().write(text)?;
        let lines = crate::stats::lines_of(&batch.timestamps, &batch.json_lens);
        self.stats.borrow_mut().add_records(text, lines);
        Ok(())
    }

    /// Swaps the replacement in and records what it holds. Returns its size.
    pub fn commit(&self) -> Result<u64, PluginError> {
        let mut categories = self.shared.categories.borrow_mut();
        let unit = crate::naming::unit_id(&self.category, self.sequence);
        let Some(category) = categories.get_mut(&self.category) else {
            return Err(PluginError::NoSuchUnit(unit));
        };
        let sealed = category.manifest.entry(self.sequence).is_some();
        let live = category
            .live
            .as_ref()
            .is_some_and(|l| l.sequence == self.sequence);
        if !sealed && !live {
            self.file.borrow_mut().abort()?;
            return Err(PluginError::InvalidState(format!(
                "`{unit}` was dropped while it was being rewritten; the replacement is discarded"
            )));
        }
        // Taken, not copied: every line's checksum is in it.
        let stats = std::mem::take(&mut *self.stats.borrow_mut());
        let path = category.path(self.sequence);
        // A sealed file's line checksums are durable before its data is
        // replaced, and put in place after: a crash between any two steps
        // leaves checksums (in place or under their temporary name) that
        // describe the bytes on disk, which a scan tells from damage.
        let mut sums = if sealed {
            Some(stats.prepare_sums(&path)?)
        } else {
            None
        };
        let size = self.file.borrow_mut().commit()?;
        if let Some(entry) = category.manifest.entry_mut(self.sequence) {
            if let Some(sums) = sums.as_mut() {
                sums.commit()?;
            }
            entry.replace_contents(&stats, now());
            category.save_manifest()?;
        } else if let Some(live) = category.live.as_mut() {
            live.replaced(stats);
        }
        Ok(size)
    }

    /// Discards the replacement.
    pub fn abort(&self) -> Result<(), PluginError> {
        self.file.borrow_mut().abort()
    }
}
