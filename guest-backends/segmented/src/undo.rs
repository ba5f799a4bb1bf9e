//! Rolling back a failed append, so that a retry duplicates nothing: every
//! store the batch touched is put back on disk as the batch found it.
//!
//! A batch only ever adds to a store: it appends to the live segment, may
//! seal it (writing its manifest), and may create, fill and seal segments
//! numbered from the store's next number on. So an [`Undo`] needs only the
//! live segment, its length and the next number, noted when the batch began.

use std::fs::OpenOptions;
use std::path::Path;

use quire_guest::atomic::{TEMP_SUFFIX, parent, sync_dir, temp_path};
use quire_guest::errors::{self, IoContext, describe, with_note};
use quire_guest::types::PluginError;

use crate::fault::{self, Op};
use crate::fsutil::{remove_dir_if_empty, remove_if_exists};
use crate::inventory::Inventory;
use crate::layout::{self, SegmentRef};
use crate::live::{Held, LiveSegment};
use crate::manifest;

/// A store as a batch found it: what a failure rolls it back to.
pub struct Mark {
    /// The files.
    pub undo: Undo,
    /// Records accepted since open, before the batch.
    pub accepted: u64,
    /// Records the live segment held in memory (never written), to hold
    /// again once it is resumed.
    pub held: Option<Held>,
}

impl Mark {
    /// Notes `store` before a batch adds to it.
    pub fn new(store: &str, live: Option<&LiveSegment>, next_number: u64, accepted: u64) -> Self {
        Mark {
            undo: Undo {
                store: store.to_string(),
                live: live.map(|l| (l.seg.clone(), l.bytes)),
                next_number,
                unsynced: live.map_or(0, |l| l.unsynced),
            },
            accepted,
            held: live.and_then(LiveSegment::held),
        }
    }
}

/// How to put one store's files back as a batch found them.
pub struct Undo {
    /// The store.
    pub store: String,
    /// The live segment and its size when the batch began.
    live: Option<(SegmentRef, u64)>,
    /// The store's next segment number then: every segment from it on is
    /// the batch's.
    pub next_number: u64,
    /// Records in the live segment written but not synced then.
    pub unsynced: u64,
}

/// How far a rollback got.
pub enum Outcome {
    /// The files are as the batch found them, and synced.
    Done,
    /// As the batch found them, but a sync failed: after a power loss part
    /// of the batch may be back.
    Unsynced(PluginError),
    /// A removal or truncation failed: part of the batch is still there.
    Failed(PluginError),
}

impl Undo {
    /// Puts the files back. Safe to repeat: what is undone already is
    /// skipped, and a file someone else removed since is left alone.
    pub fn apply(&self, root: &Path) -> Outcome {
        let mut unsynced = None;
        match self.steps(root, &mut unsynced) {
            Err(e) => Outcome::Failed(e),
            Ok(()) => unsynced.map_or(Outcome::Done, Outcome::Unsynced),
        }
    }

    /// Newest segment first, the original live segment last, each step
    /// synced before the next: after every step the layout is one a crash
    /// during an append could leave (the highest segment is live, or sealed
    /// with its manifest), so a crash in the middle of a rollback leaves a
    /// store that opens and scans clean, if with part of the batch in it.
    /// Unsealing the original live segment first instead would leave it
    /// unsealed below newer segments, which an open seals again as an orphan.
    fn steps(&self, root: &Path, unsynced: &mut Option<PluginError>) -> Result<(), PluginError> {
        let mut note = |r: Result<(), PluginError>| {
            if let Err(e) = r {
                unsynced.get_or_insert(e);
            }
        };
        let inv = Inventory::scan(root)?;
        let created: Vec<SegmentRef> = inv
            .stores
            .get(&self.store)
            .into_iter()
            .flat_map(|s| s.segments.values().rev())
            .filter(|f| f.seg.number >= self.next_number)
            .map(|f| f.seg.clone())
            .collect();
        for seg in &created {
            let path = root.join(seg.unit_id());
            // The manifest before the segment: in between, the segment is
            // the highest and unsealed, so live, never a stray manifest.
            if unseal(root, seg)? {
                note(sync_dir(parent(&path)));
            }
            cut(&path, &seg.unit_id())?;
            note(sync_dir(parent(&path)));
            note(remove_dir_if_empty(parent(&path)));
        }
        if let Some((seg, bytes)) = &self.live {
            let id = seg.unit_id();
            let path = root.join(&id);
            unseal(root, seg)?;
            // Also when there was nothing to remove: a repeated rollback
            // syncs what an earlier one could not.
            note(sync_dir(parent(&path)));
            fault::check(Op::Cut).ctx("truncate", &id)?;
            match OpenOptions::new().write(true).open(&path) {
                Ok(file) => {
                    if file.metadata().ctx("stat", &id)?.len() > *bytes {
                        file.set_len(*bytes).ctx("truncate", &id)?;
                    }
                    note(fault::sync_data(&file).ctx("sync", &id));
                }
                // Dropped since (a repeated rollback): nothing to cut.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(errors::io("open", &id, e)),
            }
        }
        let store_dir = root.join(layout::store_dir(&self.store));
        if store_dir.is_dir() {
            // Bucket directories removed in it.
            note(sync_dir(&store_dir));
        }
        // A store the batch created has an empty directory now.
        note(remove_dir_if_empty(&store_dir));
        Ok(())
    }

    /// Where part of the batch may be while this is not done.
    fn leftovers(&self) -> String {
        let newer = format!("segments numbered {} and up", self.next_number);
        match &self.live {
            Some((seg, bytes)) => format!("`{}` past byte {bytes}, {newer}", seg.unit_id()),
            None => newer,
        }
    }
}

/// Removes the manifest of `seg` (and a temporary one a failed write may
/// have left); true when there was one.
fn unseal(root: &Path, seg: &SegmentRef) -> Result<bool, PluginError> {
    let path = manifest::path_for(&root.join(seg.unit_id()));
    let id = seg.manifest_id();
    cut(&temp_path(&path), &format!("{id}{TEMP_SUFFIX}"))?;
    cut(&path, &id)
}

fn cut(path: &Path, id: &str) -> Result<bool, PluginError> {
    fault::check(Op::Cut).ctx("remove", id)?;
    remove_if_exists(path, id)
}

/// What rolling a batch back did, store by store: told with the error.
#[derive(Default)]
pub struct Rollback {
    done: Vec<String>,
    trouble: Vec<String>,
    lost: Vec<String>,
}

impl Rollback {
    /// Notes how the rollback of `undo` went.
    pub fn outcome(&mut self, undo: &Undo, outcome: &Outcome) {
        let store = &undo.store;
        match outcome {
            Outcome::Done => self.done.push(format!("`{store}`")),
            Outcome::Unsynced(e) => self.trouble.push(format!(
                "in store `{store}` the batch was rolled back but syncing that failed ({}): \
                 a power loss before the next append to `{store}` (or sync, or closing the \
                 store) syncs it could bring part of the batch back ({})",
                describe(e),
                undo.leftovers()
            )),
            Outcome::Failed(e) => self.trouble.push(format!(
                "rolling the batch back failed in store `{store}` ({}): part of it may still be \
                 in {}; every later append to `{store}` (and closing the store) first tries to \
                 finish the rollback, and nothing is appended to `{store}` until that succeeds; \
                 if the store is opened again before that, those records stay and read back as stored",
                describe(e),
                undo.leftovers()
            )),
        }
    }

    /// Notes records held in memory by earlier `buffered` appends that
    /// were dropped with the batch (the segment could not be resumed).
    pub fn lost(&mut self, store: &str, records: u64) {
        self.lost.push(format!(
            "{records} records that earlier `buffered` appends to `{store}` held in memory were lost with it"
        ));
    }

    /// `failure`, with what became of the batch.
    pub fn explain(mut self, failure: PluginError) -> PluginError {
        self.done.sort();
        let mut note = String::new();
        match self.done.len() {
            0 if self.trouble.is_empty() => note.push_str("; nothing of the batch was written"),
            0 => {}
            1 => note.push_str(&format!(
                "; the batch was rolled back (store {} is as it was before it)",
                self.done[0]
            )),
            _ => note.push_str(&format!(
                "; the batch was rolled back (stores {} are as they were before it)",
                self.done.join(", ")
            )),
        }
        for part in self.trouble.iter().chain(&self.lost) {
            note.push_str("; ");
            note.push_str(part);
        }
        with_note(failure, &note)
    }
}

/// The error to give while an earlier batch of `undo.store` is not rolled
/// back yet and finishing that failed again with `e`.
pub fn unfinished(undo: &Undo, e: PluginError) -> PluginError {
    let note = format!(
        "; an earlier failed batch of store `{}` is not rolled back yet (part of it may be in \
         {}), so nothing is appended to it until that succeeds",
        undo.store,
        undo.leftovers()
    );
    with_note(e, &note)
}
