//! The segmented WAL as a plain Rust value: every primitive of the backend
//! contract, testable natively. `lib.rs` only wraps it in the bindings.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use quire_guest::atomic::{self, sync_dir};
use quire_guest::backend::{OpenConfig, Receipt, ReceiptFilter, ReceiptKind, StoreDurability};
use quire_guest::batch::{BatchBuilder, Envelope, EnvelopeRef};
use quire_guest::errors::{IoContext, rejected};
use quire_guest::frames;
use quire_guest::receipts::ReceiptBook;
use quire_guest::record;
use quire_guest::types::{
    Anomaly, AnomalyKind, PluginError, ReadFilter, RecordBatch, ScanChunk, StorageStats,
    StoredBatch, SyncLevel, UnitInfo,
};

use crate::codec::Codec;
use crate::config::Config;
use crate::decode::{Entry, SegmentDecoder, View};
use crate::fsutil::{ensure_dirs, now, remove_dir_if_empty, remove_if_exists};
use crate::header::SegmentHeader;
use crate::inventory::{Inventory, StoreFiles};
use crate::layout::{
    self, Bucket, HIGH_WATER_FILE, RECEIPTS_DIR, SegmentRef, StrayKind, UnitRef, WAL_DIR,
    check_store_name,
};
use crate::live::{LiveSegment, Resumed, anomaly, survey};
use crate::manifest;
use crate::rewrite::{RewriteJob, check_size};
use crate::undo::{self, Mark, Outcome, Rollback, Undo};
use quire_guest::checksum::file_crc32;

/// A store's records in a batch, with their CRC-32s when known already.
type StoreRecords<'a> = (&'a str, Cow<'a, [EnvelopeRef<'a>]>, Option<Cow<'a, [u32]>>);

/// Bytes a read cursor fetches at a time: a merge may hold many cursors.
const READ_CHUNK: usize = 64 << 10;
/// Encoded frames are written once this much has collected within a batch.
const WRITE_BATCH_BYTES: usize = 4 << 20;

/// Per store: the live segment and counters.
#[derive(Default)]
struct StoreState {
    live: Option<LiveSegment>,
    /// Number of the next segment: above every number ever used.
    next_number: u64,
    /// Records accepted since open.
    accepted: u64,
    /// A write failed: the live segment must be resumed from disk before
    /// the next append (its tail is unknown).
    resume: bool,
    /// A failed batch whose rollback did not finish (a removal, truncation
    /// or sync failed): it is finished before anything else is written.
    pending: Option<Undo>,
}

/// A validation pass over one unit, kept between `validate` calls so a
/// compact stream is not decoded again from the start for every chunk.
struct Validation {
    unit: String,
    decoder: SegmentDecoder<File>,
    /// True when this pass began at offset 0 (so counts cover the unit).
    whole: bool,
    records: u64,
    anomalies: u64,
    manifest: Option<manifest::Manifest>,
    /// Why the quick whole-file check against the manifest failed.
    mismatch: Option<String>,
}

/// An open segmented WAL.
pub struct Wal {
    root: PathBuf,
    read_only: bool,
    config: Config,
    stores: BTreeMap<String, StoreState>,
    report: Vec<Anomaly>,
    book: ReceiptBook,
    /// Highest segment number named in receipts, per store.
    receipt_high: BTreeMap<String, u64>,
    validation: Option<Validation>,
}

/// Checks `target` as a relative sub-path without `..`.
fn check_target(target: &str) -> Result<&str, PluginError> {
    let path = Path::new(target);
    if path.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(target.trim_end_matches('/'))
    } else {
        Err(PluginError::InvalidConfig(format!(
            "target must be a relative directory without `..`, got `{target}`"
        )))
    }
}

fn read_only_error() -> PluginError {
    PluginError::InvalidState("store was opened read-only".into())
}

/// Reads the header frame of a segment, if it has a valid one.
fn read_header(path: &Path) -> Option<SegmentHeader> {
    let mut file = File::open(path).ok()?;
    let mut prefix = [0u8; 4];
    file.read_exact(&mut prefix).ok()?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > 64 << 10 {
        return None;
    }
    let mut frame = prefix.to_vec();
    frame.resize(4 + len + 4, 0);
    file.read_exact(&mut frame[4..]).ok()?;
    match frames::decode(&frame) {
        frames::Decoded::Frame(body, _) => SegmentHeader::parse(body),
        _ => None,
    }
}

impl Wal {
    /// Opens the WAL under `root/target`. A read-write open repairs what a
    /// crash left (reported by [`Wal::open_report`]); a read-only open
    /// changes nothing.
    pub fn open(open: OpenConfig) -> Result<Self, PluginError> {
        let config = Config::parse(open.options)?;
        let target = check_target(&open.target)?;
        let root = Path::new(&open.root).join(target);
        let mut wal = Wal {
            book: ReceiptBook::new(root.join(WAL_DIR).join(RECEIPTS_DIR)),
            root,
            read_only: open.read_only,
            config,
            stores: BTreeMap::new(),
            report: Vec::new(),
            receipt_high: BTreeMap::new(),
            validation: None,
        };
        if wal.read_only {
            return Ok(wal);
        }
        ensure_dirs(Path::new(&open.root), &format!("{target}/{WAL_DIR}"))?;
        wal.repair()?;
        Ok(wal)
    }

    /// What the read-write open repaired.
    pub fn open_report(&self) -> Vec<Anomaly> {
        self.report.clone()
    }

    fn writable(&self) -> Result<(), PluginError> {
        if self.read_only {
            Err(read_only_error())
        } else {
            Ok(())
        }
    }

    fn purged_units(receipts: &[Receipt]) -> impl Iterator<Item = &Receipt> {
        receipts.iter().filter(|r| r.kind == ReceiptKind::Purged)
    }

    /// The repairs of a read-write open, in crash-recovery order.
    fn repair(&mut self) -> Result<(), PluginError> {
        let receipts = self.book.all()?;
        for r in &receipts {
            if let Some(UnitRef::Segment(seg)) = layout::parse_unit(&r.unit) {
                let high = self.receipt_high.entry(seg.store).or_default();
                *high = (*high).max(seg.number);
            }
        }
        let inv = Inventory::scan(&self.root)?;
        // A purge whose receipt was stored but whose removal did not finish.
        for r in Self::purged_units(&receipts) {
            let Some(UnitRef::Segment(seg)) = layout::parse_unit(&r.unit) else {
                continue;
            };
            if let Some(files) = inv.find(&seg) {
                self.remove_segment(&seg)?;
                self.report.push(anomaly(
                    AnomalyKind::OrphanedUnit,
                    &r.unit,
                    0,
                    files.bytes.unwrap_or(0),
                    format!(
                        "purged (receipt at {}) but still present after a crash: removal finished",
                        r.at
                    ),
                ));
            }
        }
        // A rewrite whose commit was cut between its renames.
        for files in inv.stores.values().flat_map(|s| s.segments.values()) {
            if files.pending {
                self.resolve_pending(&files.seg)?;
            }
        }
        let inv = Inventory::scan(&self.root)?;
        let now = now();
        for (name, store) in &inv.stores {
            let codec = self.config.codec_for(name);
            let live_id = store.live().map(|f| f.seg.unit_id());
            let mut state = StoreState {
                next_number: store
                    .highest_number()
                    .max(self.receipt_high.get(name).copied().unwrap_or(0))
                    + 1,
                ..StoreState::default()
            };
            for files in store.segments.values() {
                if files.bytes.is_none() {
                    continue;
                }
                let id = files.seg.unit_id();
                if Some(&id) == live_id.as_ref() {
                    match LiveSegment::resume(
                        &self.root,
                        files.seg.clone(),
                        codec,
                        self.config.settings,
                        now,
                    )? {
                        Resumed::Live(live, notes) => {
                            self.report.extend(notes);
                            state.live = Some(live);
                        }
                        Resumed::Sealed(_, notes) => self.report.extend(notes),
                    }
                    continue;
                }
                let path = self.root.join(&id);
                let problem = match manifest::read(&manifest::path_for(&path)) {
                    Ok(Some(_)) => continue,
                    Ok(None) => None,
                    Err(reason) => Some(reason),
                };
                let found = survey(&path, &id)?;
                let (_, crc) = file_crc32(&path, &id)?;
                let computed = found.manifest(&files.seg, crc, codec, now);
                manifest::write(&manifest::path_for(&path), &computed)?;
                let summary = format!(
                    "{} records, timestamps {} to {}",
                    computed.records, computed.min_timestamp, computed.max_timestamp
                );
                self.report.push(match problem {
                    None => anomaly(
                        AnomalyKind::OrphanedUnit,
                        &id,
                        0,
                        computed.bytes,
                        format!("segment was never sealed (a crash before rotation finished); manifest computed: {summary}"),
                    ),
                    Some(reason) => anomaly(
                        AnomalyKind::ManifestMismatch,
                        &id,
                        0,
                        computed.bytes,
                        format!("{reason}; manifest recomputed: {summary}"),
                    ),
                });
            }
            self.stores.insert(name.clone(), state);
        }
        Ok(())
    }

    /// Finishes or discards a rewrite's pending manifest: it is put in place
    /// only if the segment on disk is the one it describes.
    fn resolve_pending(&mut self, seg: &SegmentRef) -> Result<(), PluginError> {
        let id = seg.unit_id();
        let path = self.root.join(&id);
        let pending = manifest::pending_path_for(&path);
        let matches = match manifest::read(&pending) {
            Ok(Some(m)) => {
                matches!(file_crc32(&path, &id), Ok((len, crc)) if len == m.bytes && crc == m.crc32)
            }
            _ => false,
        };
        let detail = if matches {
            fs::rename(&pending, manifest::path_for(&path)).ctx("rename", &seg.pending_id())?;
            "a rewrite was committed but its manifest not yet put in place: finished"
        } else {
            remove_if_exists(&pending, &seg.pending_id())?;
            "a rewrite never committed: its pending manifest was discarded, the segment is unchanged"
        };
        sync_dir(atomic::parent(&path))?;
        self.report.push(anomaly(
            AnomalyKind::OrphanedUnit,
            &seg.pending_id(),
            0,
            0,
            detail.into(),
        ));
        Ok(())
    }

    /// Removes a segment, then its manifest (a crash in between leaves a
    /// manifest without data, which `check-layout` reports, never a
    /// segment that looks live), then an empty bucket directory.
    fn remove_segment(&self, seg: &SegmentRef) -> Result<(), PluginError> {
        let id = seg.unit_id();
        let path = self.root.join(&id);
        let dir = atomic::parent(&path).to_path_buf();
        if remove_if_exists(&path, &id)? {
            sync_dir(&dir)?;
        }
        remove_if_exists(&manifest::path_for(&path), &seg.manifest_id())?;
        remove_if_exists(&manifest::pending_path_for(&path), &seg.pending_id())?;
        sync_dir(&dir)?;
        remove_dir_if_empty(&dir)
    }

    /// Records that segment numbers up to `number` are used, before the
    /// evidence (the files) is removed.
    fn raise_high_water(&mut self, store: &str, number: u64) -> Result<(), PluginError> {
        let rel = format!("{}/{HIGH_WATER_FILE}", layout::store_dir(store));
        let path = self.root.join(&rel);
        let current: u64 = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if number > current {
            let mut file = atomic::AtomicFile::create(&path)?;
            file.write(format!("{number}\n").as_bytes())?;
            file.commit()?;
        }
        if let Some(state) = self.stores.get_mut(store) {
            state.next_number = state.next_number.max(number + 1);
        }
        Ok(())
    }

    /// The state of `store`, created on first use and resumed after a
    /// failed write.
    fn state(&mut self, store: &str) -> Result<&mut StoreState, PluginError> {
        if !self.stores.contains_key(store) {
            let on_disk = Inventory::scan(&self.root)?
                .stores
                .get(store)
                .map_or(0, |s| s.highest_number());
            let receipts = self.receipt_high.get(store).copied().unwrap_or(0);
            self.stores.insert(
                store.to_string(),
                StoreState {
                    next_number: on_disk.max(receipts) + 1,
                    ..StoreState::default()
                },
            );
        }
        self.settle(store)?;
        if self.stores[store].resume {
            let live = self.resume_live(store)?;
            let state = self.stores.get_mut(store).expect("inserted above");
            state.live = live;
            state.resume = false;
        }
        Ok(self.stores.get_mut(store).expect("inserted above"))
    }

    /// The live segment of `store` as it is on disk, resumed.
    fn resume_live(&mut self, store: &str) -> Result<Option<LiveSegment>, PluginError> {
        let inv = Inventory::scan(&self.root)?;
        let Some(seg) = inv.stores.get(store).and_then(|s| s.live()) else {
            return Ok(None);
        };
        match LiveSegment::resume(
            &self.root,
            seg.seg.clone(),
            self.config.codec_for(store),
            self.config.settings,
            now(),
        )? {
            Resumed::Live(live, notes) => {
                self.report.extend(notes);
                Ok(Some(live))
            }
            Resumed::Sealed(_, notes) => {
                self.report.extend(notes);
                Ok(None)
            }
        }
    }

    /// Finishes the rollback of an earlier failed batch of `store`, if one
    /// is pending: nothing may be written to the store before.
    fn settle(&mut self, store: &str) -> Result<(), PluginError> {
        let Some(state) = self.stores.get_mut(store) else {
            return Ok(());
        };
        let Some(undo) = &state.pending else {
            return Ok(());
        };
        match undo.apply(&self.root) {
            Outcome::Done => {
                state.pending = None;
                Ok(())
            }
            Outcome::Unsynced(e) | Outcome::Failed(e) => Err(undo::unfinished(undo, e)),
        }
    }

    /// After a failed write the live segment's tail is unknown: forget it
    /// and resume it from disk next time.
    fn poison(&mut self, store: &str) {
        if let Some(state) = self.stores.get_mut(store) {
            state.live = None;
            state.resume = true;
        }
    }

    /// Appends owned records (tests use it), laid out as the host hands a
    /// batch to [`Wal::append_batch`].
    pub fn append(&mut self, batch: Vec<Envelope>, level: SyncLevel) -> Result<u64, PluginError> {
        self.append_batch(&quire_guest::batch::from_envelopes(&batch), level)
    }

    /// Appends a batch as the host hands it: the records, and their CRC-32s
    /// from one host call over the batch's NDJSON text.
    pub fn append_batch(
        &mut self,
        batch: &RecordBatch,
        level: SyncLevel,
    ) -> Result<u64, PluginError> {
        self.writable()?;
        // Every record one line, an object, with a finite timestamp: checked
        // over the whole batch at once (one pass for line breaks). The first
        // record failing this is named before one failing a later check.
        let records = quire_guest::linefile::checked_records(batch)?;
        let config = &self.config;
        let framed_alone = config.codec == Codec::JsonCrc32
            || config.store_codecs.values().any(|&c| c == Codec::JsonCrc32);
        if !framed_alone {
            // Compact blocks carry their own CRC: no record needs one.
            return self.append_with_crcs(batch, &records, None, level);
        }
        let mut crcs = Vec::with_capacity(records.len());
        quire_guest::checksum::line_crc32s(&batch.text, &mut crcs);
        // Each line is a record and its newline: take the newline off.
        for crc in &mut crcs {
            *crc = quire_guest::checksum::crc32_without_last(*crc, b'\n');
        }
        // One line per record: `checked_records` refused any record holding
        // a line break, so each CRC is its record's.
        debug_assert_eq!(crcs.len(), records.len());
        let crcs = (crcs.len() == records.len()).then_some(&crcs[..]);
        self.append_with_crcs(batch, &records, crcs, level)
    }

    /// Appends a batch whose records [`Wal::append_batch`] has checked (the
    /// first record failing that check is the one named, before any record
    /// too big or with a bad store name); the rest is checked here before
    /// anything is written.
    fn append_with_crcs(
        &mut self,
        batch: &RecordBatch,
        records: &[EnvelopeRef<'_>],
        crcs: Option<&[u32]>,
        level: SyncLevel,
    ) -> Result<u64, PluginError> {
        self.writable()?;
        // Each store's name is checked once, at its first record, and its
        // records are found through the batch's name index (no string
        // compares: wasm's `memcmp` goes a byte at a time).
        let mut group_of_name = vec![usize::MAX; batch.names.len()];
        let mut stores: Vec<&str> = Vec::new();
        for (index, (&envelope, &store)) in records.iter().zip(&batch.stores).enumerate() {
            check_size(index, envelope)?;
            let slot = &mut group_of_name[store as usize];
            if *slot == usize::MAX {
                check_store_name(envelope.store).map_err(|reason| rejected(index, reason))?;
                *slot = stores.len();
                stores.push(envelope.store);
            }
        }
        // A batch for one store (the usual case) goes as it is; others are
        // split by store.
        let mut groups: Vec<StoreRecords<'_>> = if stores.len() == 1 {
            vec![(stores[0], Cow::Borrowed(records), crcs.map(Cow::Borrowed))]
        } else {
            let mut groups: Vec<StoreRecords<'_>> = stores
                .iter()
                .map(|&s| {
                    (
                        s,
                        Cow::Owned(Vec::new()),
                        crcs.map(|_| Cow::Owned(Vec::new())),
                    )
                })
                .collect();
            for (index, (&envelope, &store)) in records.iter().zip(&batch.stores).enumerate() {
                let (_, group, group_crcs) = &mut groups[group_of_name[store as usize]];
                group.to_mut().push(envelope);
                if let (Some(g), Some(c)) = (group_crcs, crcs) {
                    g.to_mut().push(c[index]);
                }
            }
            groups
        };
        // Stores in name order.
        groups.sort_by(|a, b| a.0.cmp(b.0));
        // All or nothing: each store is noted before the batch adds to it,
        // and a failure in any store rolls every one of them back.
        let mut marks = Vec::new();
        let mut written = 0;
        for (store, records, crcs) in &groups {
            match self.append_store(store, records, crcs.as_deref(), level, &mut marks) {
                Ok(n) => written += n,
                Err(e) => return Err(self.roll_back(store, marks, e)),
            }
        }
        Ok(written)
    }

    fn append_store(
        &mut self,
        store: &str,
        records: &[EnvelopeRef<'_>],
        crcs: Option<&[u32]>,
        level: SyncLevel,
        marks: &mut Vec<Mark>,
    ) -> Result<u64, PluginError> {
        let root = self.root.clone();
        let config = self.config.clone();
        let state = self.state(store)?;
        marks.push(Mark::new(
            store,
            state.live.as_ref(),
            state.next_number,
            state.accepted,
        ));
        let mut written = 0;
        let mut at = 0;
        while at < records.len() {
            let first = records[at];
            let admitted = state.live.as_ref().is_some_and(|live| {
                live.bucket.admits(config.bucket, first.timestamp)
                    && (live.records == 0 || live.projected_bytes() < config.max_bytes)
            });
            if !admitted {
                if let Some(live) = state.live.take() {
                    written += live.seal(now())?.1;
                }
                let bucket = Bucket::of(config.bucket, first.timestamp);
                let seg = SegmentRef {
                    store: store.to_string(),
                    bucket: bucket.label(),
                    number: state.next_number,
                };
                state.next_number += 1;
                let live = LiveSegment::create(
                    &root,
                    seg,
                    bucket,
                    config.codec_for(store),
                    config.settings,
                    now(),
                )?;
                written += live.bytes;
                state.live = Some(live);
            }
            let live = state.live.as_mut().expect("opened above");
            // The records after `first` that the segment takes as well go
            // with it: one reservation and no per-record checks above.
            let run = live.run_len(
                &records[at..],
                config.bucket,
                config.max_bytes,
                WRITE_BATCH_BYTES as u64,
            );
            live.push_run(&records[at..at + run], crcs.map(|c| &c[at..at + run]))?;
            if live.projected_bytes() - live.bytes >= WRITE_BATCH_BYTES as u64 {
                written += live.write_out()?;
            }
            at += run;
        }
        state.accepted += records.len() as u64;
        let live = state.live.as_mut().expect("records were appended");
        if level != SyncLevel::Buffered {
            live.flush_block()?;
        }
        written += live.write_out()?;
        if level == SyncLevel::Durable {
            live.sync()?;
        }
        Ok(written)
    }

    /// Puts every store in `marks` back as the batch found it, after
    /// `failure` in `failed`; returns `failure` telling how that went.
    fn roll_back(&mut self, failed: &str, marks: Vec<Mark>, failure: PluginError) -> PluginError {
        // A validation pass must not go on in a segment that was cut.
        self.validation = None;
        if marks.last().is_none_or(|m| m.undo.store != failed) {
            // It failed before the batch added anything to it.
            self.poison(failed);
        }
        let mut rollback = Rollback::default();
        for mark in marks.into_iter().rev() {
            self.roll_back_store(mark, &mut rollback);
        }
        rollback.explain(failure)
    }

    fn roll_back_store(&mut self, mark: Mark, rollback: &mut Rollback) {
        let Mark {
            undo,
            accepted,
            mut held,
        } = mark;
        let store = undo.store.clone();
        // The encoder cannot go on from where the failure left it (a compact
        // stream least of all): the live segment is closed, and resumed from
        // disk once its files are back.
        self.poison(&store);
        let outcome = undo.apply(&self.root);
        rollback.outcome(&undo, &outcome);
        let done = matches!(outcome, Outcome::Done);
        // Resumed now, so that what it held in memory is held again; if
        // that fails, the next append resumes it.
        let resumed = if done {
            self.resume_live(&store).ok()
        } else {
            None
        };
        let state = self.stores.get_mut(&store).expect("a marked store exists");
        state.accepted = accepted;
        if let Some(mut live) = resumed {
            if let (Some(l), Some(h)) = (live.as_mut(), held.as_ref()) {
                l.hold(h);
                held = None;
            }
            state.live = live;
            state.resume = false;
        }
        if done {
            // The numbers the batch took were never seen outside it.
            state.next_number = undo.next_number;
        } else {
            state.pending = Some(undo);
        }
        if let Some(h) = held {
            state.accepted -= h.records;
            rollback.lost(&store, h.records);
        }
    }

    /// Pushes held records to at least `level`, in every store.
    pub fn sync(&mut self, level: SyncLevel) -> Result<(), PluginError> {
        if self.read_only || level == SyncLevel::Buffered {
            return Ok(());
        }
        let names: Vec<String> = self.stores.keys().cloned().collect();
        for name in names {
            // What was written before a failed batch is synced by its
            // rollback: until that is finished it is not known to be.
            self.settle(&name)?;
            let state = self.stores.get_mut(&name).expect("listed");
            let Some(live) = state.live.as_mut() else {
                continue;
            };
            let result = (|| {
                live.flush_block()?;
                live.write_out()?;
                if level == SyncLevel::Durable {
                    live.sync()?;
                }
                Ok(())
            })();
            if let Err(e) = result {
                self.poison(&name);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Seals every live segment; the next append opens new ones.
    pub fn seal(&mut self) -> Result<(), PluginError> {
        self.writable()?;
        let names: Vec<String> = self.stores.keys().cloned().collect();
        for name in names {
            let state = self.stores.get_mut(&name).expect("listed");
            if let Some(live) = state.live.take()
                && let Err(e) = live.seal(now())
            {
                self.poison(&name);
                return Err(e);
            }
        }
        Ok(())
    }

    fn live_id(&self, store: &str) -> Option<&str> {
        self.stores
            .get(store)
            .and_then(|s| s.live.as_ref())
            .map(|l| l.id.as_str())
    }

    /// The live segment of store `name`, whose files are `files`.
    fn live_unit(&self, name: &str, files: &StoreFiles) -> Option<String> {
        // Read-only, or after a failed write until the next append resumes
        // it: the live segment is the one on disk.
        let from_disk = self.read_only || self.stores.get(name).is_some_and(|s| s.resume);
        if from_disk {
            files.live().map(|f| f.seg.unit_id())
        } else {
            self.live_id(name).map(str::to_string)
        }
    }

    /// Writes out the compact block of `unit` when it is a live segment, so
    /// that reads and scans see every accepted record.
    fn flush_live(&mut self, seg: &SegmentRef) -> Result<(), PluginError> {
        let id = seg.unit_id();
        let Some(live) = self
            .stores
            .get_mut(&seg.store)
            .and_then(|s| s.live.as_mut())
            .filter(|l| l.id == id)
        else {
            return Ok(());
        };
        let result = live.flush_block().and_then(|()| live.write_out());
        if result.is_err() {
            self.poison(&seg.store);
        }
        result.map(|_| ())
    }

    /// Parses `unit` as a segment that exists.
    fn segment(&self, unit: &str) -> Result<(SegmentRef, PathBuf), PluginError> {
        match layout::parse_unit(unit) {
            Some(UnitRef::Segment(seg)) => {
                let path = self.root.join(unit);
                if path.is_file() {
                    Ok((seg, path))
                } else {
                    Err(PluginError::NoSuchUnit(unit.to_string()))
                }
            }
            _ => Err(PluginError::NoSuchUnit(unit.to_string())),
        }
    }

    /// Every segment, stores by name, segments oldest first.
    pub fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        let inv = Inventory::scan(&self.root)?;
        let mut out = Vec::new();
        for (name, store) in &inv.stores {
            let live_id = self.live_unit(name, store);
            for files in store.segments.values() {
                let Some(bytes) = files.bytes else {
                    continue;
                };
                let id = files.seg.unit_id();
                let path = self.root.join(&id);
                let mut info = UnitInfo {
                    id: id.clone(),
                    store: Some(name.clone()),
                    bytes,
                    records: None,
                    min_timestamp: None,
                    max_timestamp: None,
                    sealed: true,
                    codec: String::new(),
                };
                if Some(&id) == live_id.as_ref() {
                    info.sealed = false;
                    match self.stores.get(name).and_then(|s| s.live.as_ref()) {
                        Some(live) if live.id == id => {
                            info.bytes = live.bytes;
                            info.records = Some(live.records);
                            info.min_timestamp = live.min_ts;
                            info.max_timestamp = live.max_ts;
                            info.codec = live.codec.name().into();
                        }
                        _ => {}
                    }
                } else if let Ok(Some(m)) = manifest::read(&manifest::path_for(&path)) {
                    info.records = Some(m.records);
                    info.min_timestamp = Some(m.min_timestamp);
                    info.max_timestamp = Some(m.max_timestamp);
                    info.codec = m.codec;
                }
                if info.codec.is_empty() {
                    info.codec = read_header(&path)
                        .map_or(self.config.codec_for(name), |h| h.codec())
                        .name()
                        .into();
                }
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Problems with the layout, and what a read-write open would repair.
    pub fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        let inv = Inventory::scan(&self.root)?;
        let receipts = self.book.all()?;
        let purged: BTreeMap<&str, f64> = Self::purged_units(&receipts)
            .map(|r| (r.unit.as_str(), r.at))
            .collect();
        let mut out = Vec::new();
        let size = |id: &str| fs::metadata(self.root.join(id)).map_or(0, |m| m.len());
        for (name, store) in &inv.stores {
            let live_id = self.live_unit(name, store);
            for files in store.segments.values() {
                let seg = &files.seg;
                let id = seg.unit_id();
                if files.pending {
                    out.push(anomaly(
                        AnomalyKind::OrphanedUnit,
                        &seg.pending_id(),
                        0,
                        size(&seg.pending_id()),
                        "manifest of a rewrite whose commit was interrupted; a read-write open finishes or discards it".into(),
                    ));
                }
                let Some(bytes) = files.bytes else {
                    if files.manifest {
                        out.push(anomaly(
                            AnomalyKind::OrphanedUnit,
                            &seg.manifest_id(),
                            0,
                            size(&seg.manifest_id()),
                            format!("manifest of segment {} whose file is gone", seg.number),
                        ));
                    }
                    continue;
                };
                if let Some(at) = purged.get(id.as_str()) {
                    out.push(anomaly(
                        AnomalyKind::OrphanedUnit,
                        &id,
                        0,
                        bytes,
                        format!(
                            "purged (receipt at {at}) but still present: the removal did not finish"
                        ),
                    ));
                    continue;
                }
                if Some(&id) == live_id.as_ref() {
                    continue;
                }
                // Located: bytes gone are marked where the segment now ends,
                // bytes added where they begin.
                let problem = match manifest::read(&manifest::path_for(&self.root.join(&id))) {
                    Ok(Some(m)) if m.bytes == bytes => None,
                    Ok(Some(m)) if m.bytes > bytes => Some((
                        (bytes, 0),
                        format!(
                            "manifest says {} bytes, the segment has {bytes}: its last {} \
                             bytes as sealed are missing",
                            m.bytes,
                            m.bytes - bytes
                        ),
                    )),
                    Ok(Some(m)) => Some((
                        (m.bytes, bytes - m.bytes),
                        format!(
                            "manifest says {} bytes, the segment has {bytes}: bytes past its \
                             sealed end",
                            m.bytes
                        ),
                    )),
                    Ok(None) => Some((
                        (0, bytes),
                        "sealed segment has no manifest (a read-write open computes one)".into(),
                    )),
                    Err(reason) => Some(((0, bytes), reason)),
                };
                if let Some(((offset, length), detail)) = problem {
                    out.push(anomaly(
                        AnomalyKind::ManifestMismatch,
                        &id,
                        offset,
                        length,
                        detail,
                    ));
                }
            }
            for (id, bytes) in &store.temps {
                out.push(anomaly(
                    AnomalyKind::OrphanedUnit,
                    id,
                    0,
                    *bytes,
                    "temporary file of an interrupted write (the original is intact)".into(),
                ));
            }
        }
        for (id, bytes) in &inv.receipt_temps {
            out.push(anomaly(
                AnomalyKind::OrphanedUnit,
                id,
                0,
                *bytes,
                "temporary file of an interrupted receipt write".into(),
            ));
        }
        Ok(out)
    }

    /// Validates `unit` from `offset`, looking at roughly `budget` bytes.
    pub fn validate(
        &mut self,
        unit: &str,
        offset: u64,
        budget: u64,
    ) -> Result<ScanChunk, PluginError> {
        let (seg, path) = self.segment(unit)?;
        self.flush_live(&seg)?;
        let continuing = matches!(&self.validation,
            Some(v) if v.unit == unit && v.decoder.offset() == offset && v.decoder.between_frames());
        if offset == 0 || !continuing {
            // A live segment has no manifest: it is always decoded.
            let manifest = manifest::read(&manifest::path_for(&path)).ok().flatten();
            let size = fs::metadata(&path).ctx("stat", unit)?.len();
            let mut mismatch = None;
            if let (Some(m), 0) = (&manifest, offset) {
                if m.damaged > 0 {
                    // Known damage: decode, so the scan shows where.
                } else if size == m.bytes {
                    let (len, crc) = file_crc32(&path, unit)?;
                    if len == m.bytes && crc == m.crc32 {
                        // The whole file is what was sealed: no need to decode it.
                        self.validation = None;
                        return Ok(ScanChunk {
                            anomalies: Vec::new(),
                            records: m.records,
                            next_offset: len,
                            done: true,
                        });
                    }
                    mismatch = Some(format!(
                        "the segment's crc32 {crc:08x} differs from the manifest's {:08x}",
                        m.crc32
                    ));
                } else {
                    mismatch = Some(format!(
                        "the segment has {size} bytes, the manifest says {}",
                        m.bytes
                    ));
                }
            }
            let file = File::open(&path).ctx("open", unit)?;
            let mut v = Validation {
                unit: unit.to_string(),
                decoder: SegmentDecoder::new(file, size, frames::DEFAULT_CHUNK),
                whole: offset == 0,
                records: 0,
                anomalies: 0,
                manifest,
                mismatch,
            };
            // Resuming someone else's pass: decode up to `offset` quietly
            // (a compact stream cannot be entered in the middle).
            while v.decoder.offset() < offset || !v.decoder.between_frames() {
                if v.decoder.next_entry().ctx("read", unit)?.is_none() {
                    break;
                }
            }
            self.validation = Some(v);
        }
        let v = self.validation.as_mut().expect("set above");
        let start = v.decoder.offset();
        let mut chunk = ScanChunk {
            anomalies: Vec::new(),
            records: 0,
            next_offset: start,
            done: false,
        };
        loop {
            if v.decoder.between_frames()
                && v.decoder.offset() > offset
                && v.decoder.offset() - start >= budget
            {
                chunk.next_offset = v.decoder.offset();
                v.records += chunk.records;
                v.anomalies += chunk.anomalies.len() as u64;
                return Ok(chunk);
            }
            match v.decoder.next_entry().ctx("read", unit)? {
                None => break,
                Some(Entry::Header(_)) => {}
                Some(Entry::Record(_)) => chunk.records += 1,
                Some(Entry::Damage(d)) => chunk
                    .anomalies
                    .push(anomaly(d.kind, unit, d.offset, d.length, d.detail)),
            }
        }
        let v = self.validation.take().expect("set above");
        let records = v.records + chunk.records;
        let anomalies = v.anomalies + chunk.anomalies.len() as u64;
        let end = v.decoder.end();
        if let (true, Some(m)) = (v.whole, &v.manifest) {
            if records != m.records {
                chunk.anomalies.push(anomaly(
                    AnomalyKind::ManifestMismatch,
                    unit,
                    0,
                    end,
                    format!(
                        "the manifest says {} records, the segment holds {records} valid records",
                        m.records
                    ),
                ));
            } else if let (0, Some(reason)) = (anomalies, v.mismatch) {
                chunk
                    .anomalies
                    .push(anomaly(AnomalyKind::ManifestMismatch, unit, 0, end, reason));
            }
        }
        chunk.next_offset = end.max(offset);
        chunk.done = true;
        Ok(chunk)
    }

    /// A cursor over the valid records of `unit` that pass `filter`.
    pub fn read(&mut self, unit: &str, filter: ReadFilter) -> Result<SegmentCursor, PluginError> {
        let (seg, path) = self.segment(unit)?;
        self.flush_live(&seg)?;
        let file = File::open(&path).ctx("open", unit)?;
        let end = file.metadata().ctx("stat", unit)?.len();
        Ok(SegmentCursor {
            unit: unit.to_string(),
            filter,
            decoder: SegmentDecoder::new(file, end, READ_CHUNK),
        })
    }

    /// Starts a replacement of `unit` (sealed or live).
    pub fn rewrite(&mut self, unit: &str) -> Result<RewriteJob, PluginError> {
        self.writable()?;
        let (seg, path) = self.segment(unit)?;
        // A rollback left pending must not cut a segment rewritten since.
        self.settle(&seg.store)?;
        self.flush_live(&seg)?;
        let live = self
            .stores
            .get(&seg.store)
            .and_then(|s| s.live.as_ref())
            .filter(|l| l.id == unit);
        let header = read_header(&path);
        let codec = match (live, &header) {
            (Some(live), _) => live.codec,
            (None, Some(h)) => h.codec(),
            (None, None) => manifest::read(&manifest::path_for(&path))
                .ok()
                .flatten()
                .and_then(|m| Codec::parse(&m.codec))
                .unwrap_or(self.config.codec_for(&seg.store)),
        };
        let created_at = header.map_or_else(now, |h| h.created_at);
        let live_records = live.map(|l| l.records);
        RewriteJob::begin(
            &self.root,
            seg,
            codec,
            self.config.settings,
            created_at,
            live_records,
        )
    }

    /// Swaps a finished replacement in: sync, rename over the segment, and
    /// for a sealed segment a fresh manifest (through a pending manifest, so
    /// a crash between the renames is finished at the next open).
    pub fn commit(&mut self, job: &mut RewriteJob) -> Result<u64, PluginError> {
        self.writable()?;
        // A validation pass must not continue on the replaced file.
        self.validation = None;
        let sealed = job.finish(now())?;
        let dir = atomic::parent(&job.path).to_path_buf();
        match job.live_records {
            Some(before) => {
                let store = job.seg.store.clone();
                let unchanged = self
                    .stores
                    .get(&store)
                    .and_then(|s| s.live.as_ref())
                    .is_some_and(|l| l.id == job.id && l.records == before);
                if !unchanged {
                    job.abort()?;
                    return Err(PluginError::InvalidState(format!(
                        "`{}` was appended to during its rewrite; the rewrite was discarded",
                        job.id
                    )));
                }
                if let Some(state) = self.stores.get_mut(&store) {
                    // Close the old file before it is replaced.
                    state.live = None;
                }
                fs::rename(&job.temp, &job.path).ctx("rename", &job.id)?;
                job.committed();
                sync_dir(&dir)?;
                let resumed = LiveSegment::resume(
                    &self.root,
                    job.seg.clone(),
                    self.config.codec_for(&store),
                    self.config.settings,
                    now(),
                );
                let state = self.stores.get_mut(&store).expect("the live store exists");
                match resumed {
                    Ok(Resumed::Live(live, _)) => state.live = Some(live),
                    Ok(Resumed::Sealed(..)) => {}
                    Err(e) => {
                        state.resume = true;
                        return Err(e);
                    }
                }
            }
            None => {
                let pending = manifest::pending_path_for(&job.path);
                manifest::write(&pending, &sealed)?;
                fs::rename(&job.temp, &job.path).ctx("rename", &job.id)?;
                job.committed();
                sync_dir(&dir)?;
                fs::rename(&pending, manifest::path_for(&job.path))
                    .ctx("rename", &job.seg.manifest_id())?;
                sync_dir(&dir)?;
            }
        }
        Ok(sealed.bytes)
    }

    /// Removes a unit: a sealed segment with its manifest, or a stray file
    /// named by `check-layout`. The receipt is stored first.
    pub fn drop_unit(&mut self, unit: &str, receipt: Option<Receipt>) -> Result<(), PluginError> {
        self.writable()?;
        self.validation = None;
        match layout::parse_unit(unit) {
            Some(UnitRef::Segment(seg)) => {
                if self.live_id(&seg.store) == Some(unit) {
                    return Err(PluginError::InvalidState(format!(
                        "`{unit}` is the live segment of store `{}` and cannot be dropped; seal it first",
                        seg.store
                    )));
                }
                let path = self.root.join(unit);
                if !path.exists() && !manifest::path_for(&path).exists() {
                    return Err(PluginError::NoSuchUnit(unit.to_string()));
                }
                if let Some(r) = &receipt {
                    self.book.put(r)?;
                }
                self.raise_high_water(&seg.store, seg.number)?;
                self.remove_segment(&seg)
            }
            Some(UnitRef::Stray {
                kind,
                id,
                store,
                number,
            }) => {
                let path = self.root.join(&id);
                if !path.is_file() {
                    return Err(PluginError::NoSuchUnit(unit.to_string()));
                }
                if kind == StrayKind::Manifest {
                    let segment = id.strip_suffix(layout::MANIFEST_SUFFIX).unwrap_or(&id);
                    if self.root.join(segment).exists() {
                        return Err(PluginError::InvalidState(format!(
                            "`{id}` is the manifest of an existing segment; drop the segment instead"
                        )));
                    }
                }
                if let Some(r) = &receipt {
                    self.book.put(r)?;
                }
                if let (Some(store), Some(number)) = (store, number) {
                    self.raise_high_water(&store, number)?;
                }
                fs::remove_file(&path).ctx("remove", &id)?;
                sync_dir(atomic::parent(&path))
            }
            None => Err(PluginError::NoSuchUnit(unit.to_string())),
        }
    }

    /// Stores a receipt durably.
    pub fn put_receipt(&mut self, receipt: Receipt) -> Result<(), PluginError> {
        self.writable()?;
        self.book.put(&receipt)?;
        Ok(())
    }

    /// Receipts that pass `filter`, oldest first.
    pub fn receipts(&self, filter: &ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        self.book.list(filter)
    }

    /// Copies `unit` byte for byte to `dir/name`, synced.
    pub fn quarantine(&mut self, unit: &str, dir: &str, name: &str) -> Result<u64, PluginError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(PluginError::InvalidConfig(format!(
                "quarantine name must be a plain file name, got `{name}`"
            )));
        }
        let source = match layout::parse_unit(unit) {
            Some(UnitRef::Segment(seg)) => {
                self.flush_live(&seg)?;
                self.root.join(unit)
            }
            Some(UnitRef::Stray { id, .. }) => self.root.join(id),
            None => return Err(PluginError::NoSuchUnit(unit.to_string())),
        };
        if !source.is_file() {
            return Err(PluginError::NoSuchUnit(unit.to_string()));
        }
        atomic::copy_synced(&source, &Path::new(dir).join(name), unit)
    }

    /// Units, sizes and per-store facts.
    pub fn stats(&self) -> Result<StorageStats, PluginError> {
        let units = self.units()?;
        let receipts = self.book.all()?;
        let total_bytes = units.iter().map(|u| u.bytes).sum();
        let mut details = vec![
            ("codec".to_string(), self.config.codec.name().to_string()),
            ("bucket".into(), self.config.bucket.name().into()),
            ("max-bytes".into(), self.config.max_bytes.to_string()),
            (
                "block-records".into(),
                self.config.settings.block_records.to_string(),
            ),
            ("receipts".into(), receipts.len().to_string()),
        ];
        let mut per_store: BTreeMap<&str, Vec<&UnitInfo>> = BTreeMap::new();
        for u in &units {
            per_store
                .entry(u.store.as_deref().unwrap_or(""))
                .or_default()
                .push(u);
        }
        details.push(("stores".into(), per_store.len().to_string()));
        for (store, list) in per_store {
            let live = list.iter().find(|u| !u.sealed);
            let key = |k: &str| format!("store.{store}.{k}");
            let receipt_count = receipts
                .iter()
                .filter(|r| r.store.as_deref() == Some(store))
                .count();
            details.extend([
                (key("segments"), list.len().to_string()),
                (
                    key("sealed"),
                    list.iter().filter(|u| u.sealed).count().to_string(),
                ),
                (key("live"), live.map_or("none".into(), |u| u.id.clone())),
                (
                    key("codec"),
                    live.map_or(self.config.codec_for(store).name().into(), |u| {
                        u.codec.clone()
                    }),
                ),
                (
                    key("records"),
                    list.iter()
                        .filter_map(|u| u.records)
                        .sum::<u64>()
                        .to_string(),
                ),
                (
                    key("bytes"),
                    list.iter().map(|u| u.bytes).sum::<u64>().to_string(),
                ),
                (
                    key("buffered"),
                    self.stores
                        .get(store)
                        .and_then(|s| s.live.as_ref())
                        .map_or(0, LiveSegment::buffered)
                        .to_string(),
                ),
                (key("receipts"), receipt_count.to_string()),
            ]);
        }
        Ok(StorageStats {
            units,
            total_bytes,
            details,
        })
    }

    /// Per store: where accepted records are.
    pub fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        if self.read_only {
            let inv = Inventory::scan(&self.root)?;
            return Ok(inv
                .stores
                .iter()
                .map(|(name, files)| StoreDurability {
                    store: name.clone(),
                    codec: files
                        .live()
                        .and_then(|f| read_header(&self.root.join(f.seg.unit_id())))
                        .map_or(self.config.codec_for(name), |h| h.codec())
                        .name()
                        .into(),
                    live_unit: files.live().map(|f| f.seg.unit_id()),
                    accepted: 0,
                    buffered: 0,
                    unsynced: 0,
                })
                .collect());
        }
        Ok(self
            .stores
            .iter()
            .map(|(name, state)| {
                let live = state.live.as_ref();
                StoreDurability {
                    store: name.clone(),
                    codec: live
                        .map_or(self.config.codec_for(name), |l| l.codec)
                        .name()
                        .into(),
                    live_unit: live.map(|l| l.id.clone()),
                    accepted: state.accepted,
                    buffered: live.map_or(0, LiveSegment::buffered),
                    // While a rollback is pending, what was unsynced before
                    // the failed batch is not known to be synced yet.
                    unsynced: live.map_or_else(
                        || state.pending.as_ref().map_or(0, |u| u.unsynced),
                        |l| l.unsynced,
                    ),
                }
            })
            .collect())
    }
}

impl Drop for Wal {
    /// Closing is not sealing: held records are written and synced, and the
    /// live segments stay live for the next open to resume. A rollback left
    /// pending is finished first, if it can be now.
    fn drop(&mut self) {
        let names: Vec<String> = self.stores.keys().cloned().collect();
        for name in names {
            let _ = self.settle(&name);
        }
        for state in self.stores.values_mut() {
            if let Some(live) = state.live.as_mut() {
                let _ = live
                    .flush_block()
                    .and_then(|()| live.write_out())
                    .and_then(|_| live.sync());
            }
        }
    }
}

/// Streams the valid records of one segment that pass a filter.
pub struct SegmentCursor {
    unit: String,
    filter: ReadFilter,
    decoder: SegmentDecoder<File>,
}

impl SegmentCursor {
    /// The next at most `max` records, owned (tests read them so).
    #[cfg(test)]
    pub fn next_owned(
        &mut self,
        max: u32,
    ) -> Result<Vec<quire_guest::batch::StoredRecord>, PluginError> {
        Ok(quire_guest::batch::owned(&self.next_batch(max, u32::MAX)?))
    }

    /// The next records: at most `max_records`, about `max_bytes` of JSON;
    /// empty at the end.
    pub fn next_batch(
        &mut self,
        max_records: u32,
        max_bytes: u32,
    ) -> Result<StoredBatch, PluginError> {
        let mut out = BatchBuilder::for_cursor(max_records, max_bytes);
        if out.full(max_records, max_bytes) {
            return Ok(out.finish_stored());
        }
        let filter = &self.filter;
        self.decoder
            .each_view(|view| {
                // A json-crc32 record is copied once, from its frame into the batch.
                let owned;
                let record = match &view {
                    View::Record(r) => r,
                    View::Entry(Entry::Record(r)) => {
                        owned = r.view();
                        &owned
                    }
                    View::Entry(_) => return true,
                };
                if record::matches(filter, &record.kind, &record.store, record.timestamp) {
                    out.push_stored(record.envelope(), record.offset, record.stored_bytes);
                }
                !out.full(max_records, max_bytes)
            })
            .ctx("read", &self.unit)?;
        Ok(out.finish_stored())
    }
}
