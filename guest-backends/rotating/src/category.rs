//! One category of a store opened for writing: its manifest, its live file,
//! and the steps that change them (start a file, append, seal). Every step
//! that changes the manifest writes it atomically before returning.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use quire_guest::atomic::sync_dir;
#[cfg(test)]
use quire_guest::batch::EnvelopeRef;
use quire_guest::errors::IoContext;
#[cfg(test)]
use quire_guest::linefile;
use quire_guest::types::PluginError;

use crate::manifest::{Manifest, SealedFile};
use crate::naming;
use crate::rotation::Fill;
use crate::stats::{FileStats, StatsMark};
use crate::sums::LineSums;

/// The file appends go to.
pub struct LiveFile {
    /// Its sequence number.
    pub sequence: u64,
    /// Append handle, opened when first needed and again after a rewrite
    /// replaced the file.
    handle: Option<File>,
    /// Its contents; `None` until read back (a resumed file) or after a
    /// write failed part way.
    stats: Option<FileStats>,
}

impl LiveFile {
    /// A file found on disk, to be read back before it is appended to.
    pub fn resumed(sequence: u64) -> Self {
        Self {
            sequence,
            handle: None,
            stats: None,
        }
    }

    /// Contents, when known without reading.
    pub fn known_stats(&self) -> Option<&FileStats> {
        self.stats.as_ref()
    }

    /// The file now holds what a rewrite wrote; the old handle points at
    /// the replaced file.
    pub fn replaced(&mut self, stats: FileStats) {
        self.handle = None;
        self.stats = Some(stats);
    }
}

/// A category as it was before a batch (see [`Category::checkpoint`]).
pub struct Checkpoint {
    manifest: Manifest,
    /// The live file's number and contents (known after `live_fill`).
    live: Option<(u64, Option<StatsMark>)>,
    /// Files numbered from here on were created by the batch.
    first_new: u64,
    accepted: u64,
    unsynced: u64,
    manifest_saves: u64,
}

/// A category being written.
pub struct Category {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The manifest as on disk (once `on_disk`).
    pub manifest: Manifest,
    /// Whether the directory and the manifest exist yet.
    on_disk: bool,
    /// The live file, if any.
    pub live: Option<LiveFile>,
    /// Records accepted since open.
    pub accepted: u64,
    /// Of those, not yet `fdatasync`ed.
    pub unsynced: u64,
    /// Manifest writes so far: tells a rollback whether the one on disk changed.
    manifest_saves: u64,
}

impl Category {
    /// A category as found at open.
    pub fn existing(
        name: String,
        dir: PathBuf,
        manifest: Manifest,
        live: Option<LiveFile>,
    ) -> Self {
        Self {
            name,
            dir,
            manifest,
            on_disk: true,
            live,
            accepted: 0,
            unsynced: 0,
            manifest_saves: 0,
        }
    }

    /// A category with nothing on disk yet; numbering starts at
    /// `next_sequence` (above any number a receipt still remembers).
    pub fn new(root: &Path, name: &str, next_sequence: u64) -> Self {
        let mut manifest = Manifest::empty(name);
        manifest.next_sequence = next_sequence.max(1);
        Self {
            name: name.to_string(),
            dir: root.join(name),
            manifest,
            on_disk: false,
            live: None,
            accepted: 0,
            unsynced: 0,
            manifest_saves: 0,
        }
    }

    /// Path of the file with this sequence number.
    pub fn path(&self, sequence: u64) -> PathBuf {
        self.dir.join(naming::file_name(&self.name, sequence))
    }

    /// Unit id of the file with this sequence number.
    pub fn unit(&self, sequence: u64) -> String {
        naming::unit_id(&self.name, sequence)
    }

    /// Writes the manifest atomically.
    pub fn save_manifest(&mut self) -> Result<(), PluginError> {
        self.manifest.save(&self.dir)?;
        self.manifest_saves += 1;
        Ok(())
    }

    /// Creates the directory and its manifest before the first file, so a
    /// directory with files and no manifest always means damage.
    fn ensure_on_disk(&mut self) -> Result<(), PluginError> {
        if self.on_disk {
            return Ok(());
        }
        if !self.dir.exists() {
            fs::create_dir(&self.dir).ctx("create directory", &self.name)?;
            sync_dir(quire_guest::atomic::parent(&self.dir))?;
        }
        self.save_manifest()?;
        self.on_disk = true;
        Ok(())
    }

    /// How full the live file is, reading it back first if needed; `None`
    /// when there is no live file to append to. A live file that turns out
    /// to end mid-line (a write that failed part way) is sealed as it is:
    /// nothing is ever appended after garbage.
    pub fn live_fill(&mut self, now: f64) -> Result<Option<Fill>, PluginError> {
        let Some(live) = self.live.as_mut() else {
            return Ok(None);
        };
        if live.stats.is_none() {
            let unit = naming::unit_id(&self.name, live.sequence);
            let path = self.dir.join(naming::file_name(&self.name, live.sequence));
            live.stats = Some(FileStats::of_file(&path, &unit)?);
        }
        let stats = live.stats.as_ref().expect("just read");
        if stats.torn_tail.is_some() {
            self.seal_live(now)?;
            return Ok(None);
        }
        Ok(Some(Fill {
            bytes: stats.bytes,
            records: stats.records,
        }))
    }

    /// Seals the live file: `fdatasync` it, write its line checksums beside
    /// it, then record it in the manifest (written atomically, which syncs
    /// the directory). It is never written again.
    pub fn seal_live(&mut self, now: f64) -> Result<(), PluginError> {
        let Some(mut live) = self.live.take() else {
            return Ok(());
        };
        let unit = self.unit(live.sequence);
        let path = self.path(live.sequence);
        let sealed = (|| {
            let handle = match live.handle.take() {
                Some(handle) => handle,
                None => OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .ctx("open", &unit)?,
            };
            quire_guest::sync::sync_data(&handle).ctx("sync", &unit)?;
            let stats = match live.stats.take() {
                Some(stats) => stats,
                None => FileStats::of_file(&path, &unit)?,
            };
            // Before the manifest: a crash in between leaves the file live,
            // and a live file's leftover checksums are never read.
            stats.save_sums(&path)?;
            self.manifest.add(SealedFile::new(
                naming::file_name(&self.name, live.sequence),
                live.sequence,
                &stats,
                now,
            ));
            self.save_manifest()
        })();
        match sealed {
            Ok(()) => {
                self.unsynced = 0;
                Ok(())
            }
            Err(e) => {
                // Not sealed after all: the file stays live and is read back,
                // and checksums written for the seal go.
                let _ = LineSums::remove(&path, &unit);
                self.manifest.remove(live.sequence);
                self.live = Some(LiveFile::resumed(live.sequence));
                Err(e)
            }
        }
    }

    /// Creates the next file and makes it live (after syncing its directory,
    /// so the new name survives a power loss).
    pub fn start_file(&mut self) -> Result<(), PluginError> {
        debug_assert!(self.live.is_none(), "seal the live file first");
        self.ensure_on_disk()?;
        let sequence = self.manifest.next_sequence;
        let unit = self.unit(sequence);
        let handle = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(self.path(sequence))
            .ctx("create", &unit)?;
        sync_dir(&self.dir)?;
        // The manifest's next number moves past this file when it is sealed:
        // until then a file numbered at or above it is the live one.
        self.live = Some(LiveFile {
            sequence,
            handle: Some(handle),
            stats: Some(FileStats::default()),
        });
        Ok(())
    }

    /// Appends records, encoded as lines (tests; the store appends lines).
    #[cfg(test)]
    pub fn append<'a, R>(&mut self, records: &[R], buf: &mut Vec<u8>) -> Result<u64, PluginError>
    where
        R: Copy + Into<EnvelopeRef<'a>>,
    {
        buf.clear();
        linefile::encode_into(records.iter().map(|&e| e.into()), buf);
        let lines = records.iter().map(|&r| crate::stats::line_of(r.into()));
        self.append_lines(buf, lines)
    }

    /// Appends checked NDJSON lines to the live file, each given as its
    /// record's timestamp and its length with the newline.
    pub fn append_lines(
        &mut self,
        text: &[u8],
        lines: impl IntoIterator<Item = (f64, u32)>,
    ) -> Result<u64, PluginError> {
        let live = self.live.as_mut().ok_or_else(|| {
            PluginError::InvalidState(format!("`{}` has no live file", self.name))
        })?;
        let unit = naming::unit_id(&self.name, live.sequence);
        if live.handle.is_none() {
            let path = self.dir.join(naming::file_name(&self.name, live.sequence));
            live.handle = Some(
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .ctx("open", &unit)?,
            );
        }
        let handle = live.handle.as_mut().expect("just opened");
        if let Err(e) = handle.write_all(text) {
            // Part of it may be on disk: read the file back before going on.
            live.stats = None;
            live.handle = None;
            return Err(quire_guest::errors::io("write", &unit, e));
        }
        let stats = live.stats.as_mut().expect("known before appending");
        let records = stats.add_records(text, lines);
        self.accepted += records;
        self.unsynced += records;
        Ok(text.len() as u64)
    }

    /// Where a batch begins: what [`Category::roll_back`] restores if the
    /// batch fails. Call after [`Category::live_fill`] (the live file's
    /// contents are known then).
    pub fn checkpoint(&self) -> Checkpoint {
        let live = self
            .live
            .as_ref()
            .map(|l| (l.sequence, l.stats.as_ref().map(FileStats::mark)));
        let first_new = match &live {
            Some((sequence, _)) => (sequence + 1).max(self.manifest.next_sequence),
            None => self.manifest.next_sequence,
        };
        Checkpoint {
            manifest: self.manifest.clone(),
            live,
            first_new,
            accepted: self.accepted,
            unsynced: self.unsynced,
            manifest_saves: self.manifest_saves,
        }
    }

    /// Undoes everything since `to`: files the batch created are removed,
    /// a seal it made is taken back, and the live file is cut back to its
    /// length then. The order keeps every acknowledged record safe if this
    /// is interrupted: newer files go first (at worst the manifest then
    /// names a file that is gone), then the manifest, then the cut.
    pub fn roll_back(&mut self, to: Checkpoint) -> Result<(), PluginError> {
        let mut last = match &self.live {
            Some(live) => live.sequence,
            None => self.manifest.next_sequence.saturating_sub(1),
        };
        // A file created just before a failure (its directory sync, say) is
        // not live yet: it counts as the batch's too.
        while fs::symlink_metadata(self.path(last + 1)).is_ok() {
            last += 1;
        }
        if let Some(live) = self.live.as_mut() {
            live.handle = None;
        }
        for sequence in (to.first_new..=last).rev() {
            LineSums::remove(&self.path(sequence), &self.unit(sequence))?;
            match fs::remove_file(self.path(sequence)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(quire_guest::errors::io("remove", &self.unit(sequence), e)),
            }
        }
        if last >= to.first_new {
            sync_dir(&self.dir)?;
        }
        // Seals the batch made are taken back: their line checksums go too.
        for file in &self.manifest.files {
            if to.manifest.entry(file.sequence).is_none() {
                LineSums::remove(&self.path(file.sequence), &self.unit(file.sequence))?;
            }
        }
        let manifest_changed = self.manifest_saves != to.manifest_saves;
        self.manifest = to.manifest;
        if manifest_changed && let Err(e) = self.save_manifest() {
            // A full disk: cutting the live file back frees the room the
            // manifest needs (interrupted here, scan reports the sealed
            // file's size mismatch; no acknowledged record is lost).
            self.cut_back(&to.live)?;
            self.save_manifest().map_err(|_| e)?;
        }
        self.cut_back(&to.live)?;
        let current = self.live.take();
        self.live = match to.live {
            Some((sequence, Some(mark))) => {
                // The same file, still counted: wind its counts back. (One
                // the batch sealed is read back.)
                let mut stats = current
                    .filter(|l| l.sequence == sequence)
                    .and_then(|l| l.stats);
                let rewound = stats.as_mut().is_some_and(|s| s.rewind(&mark));
                let stats = match rewound {
                    true => stats,
                    false => FileStats::of_file(&self.path(sequence), &self.unit(sequence)).ok(),
                };
                Some(LiveFile {
                    sequence,
                    handle: None,
                    stats,
                })
            }
            // Contents unknown: nothing to cut back to; it is read back again.
            Some((sequence, None)) => Some(LiveFile::resumed(sequence)),
            None => None,
        };
        self.accepted = to.accepted;
        self.unsynced = to.unsynced;
        Ok(())
    }

    /// Cuts the live file of a checkpoint back to its length then, and syncs it.
    fn cut_back(&self, live: &Option<(u64, Option<StatsMark>)>) -> Result<(), PluginError> {
        let Some((sequence, Some(mark))) = live else {
            return Ok(());
        };
        let unit = self.unit(*sequence);
        let file = OpenOptions::new()
            .write(true)
            .open(self.path(*sequence))
            .ctx("open", &unit)?;
        file.set_len(mark.bytes()).ctx("truncate", &unit)?;
        quire_guest::sync::sync_data(&file).ctx("sync", &unit)
    }

    /// `fdatasync`s the live file if it holds unsynced records.
    pub fn sync(&mut self) -> Result<(), PluginError> {
        if self.unsynced == 0 {
            return Ok(());
        }
        if let Some(live) = self.live.as_mut() {
            let unit = naming::unit_id(&self.name, live.sequence);
            if live.handle.is_none() {
                let path = self.dir.join(naming::file_name(&self.name, live.sequence));
                live.handle = Some(
                    OpenOptions::new()
                        .append(true)
                        .open(&path)
                        .ctx("open", &unit)?,
                );
            }
            quire_guest::sync::sync_data(live.handle.as_ref().expect("just opened"))
                .ctx("sync", &unit)?;
        }
        self.unsynced = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_guest::batch::Envelope;

    fn envelope(ts: f64) -> Envelope {
        Envelope {
            kind: "event".into(),
            store: "s".into(),
            timestamp: ts,
            json: format!("{{\"kind\":\"event\",\"timestamp\":{ts}}}"),
        }
    }

    #[test]
    fn first_file_creates_directory_and_manifest_then_seals_with_true_stats() {
        let root = tempfile::tempdir().unwrap();
        let mut cat = Category::new(root.path(), "events", 1);
        cat.start_file().unwrap();
        assert!(root.path().join("events/MANIFEST.json").exists());
        let (a, b) = (envelope(2.0), envelope(1.0));
        let mut buf = Vec::new();
        let bytes = cat.append(&[&a, &b], &mut buf).unwrap();
        assert_eq!(cat.live_fill(0.0).unwrap().unwrap().records, 2);
        cat.seal_live(9.0).unwrap();
        let entry = cat.manifest.entry(1).unwrap().clone();
        let read = FileStats::of_file(&cat.path(1), "f").unwrap();
        assert_eq!(
            (entry.bytes, entry.records, entry.crc32),
            (bytes, 2, read.crc32())
        );
        assert_eq!(
            (entry.min_timestamp, entry.max_timestamp),
            (Some(1.0), Some(2.0))
        );
        assert!(entry.clean);
        assert_eq!(cat.manifest.next_sequence, 2);
        let on_disk = Manifest::load(&cat.dir, "m").unwrap();
        assert_eq!(
            on_disk,
            crate::manifest::Loaded::Found(cat.manifest.clone())
        );
        cat.start_file().unwrap();
        assert_eq!(cat.live.as_ref().unwrap().sequence, 2);
    }

    #[test]
    fn a_live_file_found_torn_is_sealed_not_appended_to() {
        let root = tempfile::tempdir().unwrap();
        let mut cat = Category::new(root.path(), "events", 1);
        cat.start_file().unwrap();
        fs::write(cat.path(1), "{\"kind\":\"event\",\"timestamp\":1}\n{\"kin").unwrap();
        cat.live = Some(LiveFile::resumed(1));
        let mut file = File::open(cat.path(1)).unwrap();
        assert!(linefile::ends_mid_line(&mut file, "f").unwrap());
        assert_eq!(cat.live_fill(5.0).unwrap(), None);
        let entry = cat.manifest.entry(1).unwrap();
        assert_eq!(entry.records, 1);
        assert!(!entry.clean);
        assert!(cat.live.is_none());
    }

    /// Every file under `dir` with its bytes, sorted.
    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push((path.clone(), fs::read(&path).unwrap()));
        }
        out.sort();
        out
    }

    #[test]
    fn a_batch_that_sealed_and_started_files_rolls_back_to_the_bytes_before_it() {
        let root = tempfile::tempdir().unwrap();
        let mut cat = Category::new(root.path(), "events", 1);
        cat.start_file().unwrap();
        let mut buf = Vec::new();
        let acknowledged: Vec<Envelope> = (0..3).map(|i| envelope(i as f64)).collect();
        cat.append(&acknowledged.iter().collect::<Vec<_>>(), &mut buf)
            .unwrap();
        cat.sync().unwrap();
        cat.live_fill(0.0).unwrap();
        let before = tree(&cat.dir);
        let checkpoint = cat.checkpoint();
        // The batch: more records in file 1, sealed; files 2 and 3 started and written.
        let batch: Vec<Envelope> = (10..16).map(|i| envelope(i as f64)).collect();
        cat.append(&[&batch[0], &batch[1]], &mut buf).unwrap();
        cat.seal_live(1.0).unwrap();
        cat.start_file().unwrap();
        cat.append(&[&batch[2], &batch[3]], &mut buf).unwrap();
        cat.seal_live(2.0).unwrap();
        cat.start_file().unwrap();
        cat.append(&[&batch[4]], &mut buf).unwrap();
        assert_ne!(tree(&cat.dir), before);

        cat.roll_back(checkpoint).unwrap();
        assert_eq!(
            tree(&cat.dir),
            before,
            "the directory is not as it was before the batch"
        );
        assert_eq!(cat.live.as_ref().unwrap().sequence, 1);
        assert_eq!(cat.manifest.next_sequence, 1);
        // Appending goes on in file 1, and the numbers of the undone files are given again.
        cat.append(&[&batch[5]], &mut buf).unwrap();
        let stats = FileStats::of_file(&cat.path(1), "f").unwrap();
        assert_eq!(stats.records, 4);
        cat.seal_live(3.0).unwrap();
        cat.start_file().unwrap();
        assert_eq!(cat.live.as_ref().unwrap().sequence, 2);
    }

    #[test]
    fn a_first_batch_rolls_back_to_an_empty_category() {
        let root = tempfile::tempdir().unwrap();
        let mut cat = Category::new(root.path(), "events", 7);
        cat.live_fill(0.0).unwrap();
        let checkpoint = cat.checkpoint();
        cat.start_file().unwrap();
        let mut buf = Vec::new();
        cat.append(&[&envelope(1.0)], &mut buf).unwrap();
        cat.roll_back(checkpoint).unwrap();
        assert!(cat.live.is_none());
        let names: Vec<_> = tree(&cat.dir).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, [cat.dir.join("MANIFEST.json")]);
        cat.start_file().unwrap();
        assert_eq!(cat.live.as_ref().unwrap().sequence, 7);
    }
}
