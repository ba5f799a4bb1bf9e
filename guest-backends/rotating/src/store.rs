//! The rotating store: every backend operation, on plain Rust types so it
//! runs (and is tested) natively. `lib.rs` wraps it in the WIT resources.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use quire_guest::atomic::{self, AtomicFile};
use quire_guest::backend::{OpenConfig, Receipt, ReceiptFilter, StoreDurability};
#[cfg(test)]
use quire_guest::batch::Envelope;
use quire_guest::batch::EnvelopeRef;
use quire_guest::errors::{IoContext, rejected};
use quire_guest::linefile::{self, CURSOR_CHUNK, LineCursor, Validator};
use quire_guest::options::Options;
use quire_guest::receipts::ReceiptBook;
use quire_guest::types::{
    Anomaly, AnomalyKind, PluginError, ReadFilter, ReadOrder, RecordBatch, ScanChunk, StorageStats,
    SyncLevel, UnitInfo,
};

use crate::category::Category;
use crate::layout::{self, CategoryDir, Role};
use crate::manifest::{Loaded, SealedFile};
use crate::naming::{self, MANIFEST_NAME, RECEIPTS_DIR, UnitName};
use crate::recovery::{self, ReceiptFacts};
use crate::rewriter::RotatingRewriter;
use crate::rotation::{self, Limits, OPTION_NAMES};
use crate::sealed_check::{self, SealedCheck, Start};
use crate::sums::LineSums;

/// Codec name of every unit.
pub const CODEC: &str = "ndjson";

/// Unix time now, in seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// State shared by the store and the rewriters it hands out.
pub struct Shared {
    /// The data root: `{root}/{target}`.
    pub root: PathBuf,
    /// Opened read-only: nothing may be created, changed or removed.
    pub read_only: bool,
    /// Rotation thresholds.
    pub limits: Limits,
    /// Receipts of removed and quarantined files.
    pub book: ReceiptBook,
    /// Read-write only: the categories being written.
    pub categories: RefCell<BTreeMap<String, Category>>,
    /// Read-write only: the highest sequence number receipts name per
    /// category, so a category created again never reuses one.
    remembered: BTreeMap<String, u64>,
}

/// An open rotating store.
pub struct RotatingStore {
    shared: Rc<Shared>,
    report: Vec<Anomaly>,
    validator: Validator,
    /// Read-only: manifests as last read, refreshed by `units` and `check-layout`.
    manifests: RefCell<BTreeMap<String, Loaded>>,
    /// The sealed file being validated, while its bytes are compared with
    /// what was sealed.
    check: RefCell<Option<Box<SealedCheck>>>,
}

/// Where one category's lines of a batch come from.
enum Lines<'a> {
    /// A whole batch of one kind, already NDJSON lines: record `i` spans
    /// `starts[i]..starts[i + 1]` of `text`, its newline included.
    Text {
        text: &'a [u8],
        starts: Vec<usize>,
        json_lens: &'a [u32],
        timestamps: &'a [f64],
    },
    /// Some records of a mixed batch, encoded as they are written.
    Records {
        records: &'a [EnvelopeRef<'a>],
        indexes: Vec<usize>,
    },
}

impl Lines<'_> {
    /// Each record's bytes on disk, newline included.
    fn sizes(&self) -> Vec<u64> {
        match self {
            Lines::Text { json_lens, .. } => {
                json_lens.iter().map(|&len| u64::from(len) + 1).collect()
            }
            Lines::Records { records, indexes } => indexes
                .iter()
                .map(|&i| records[i].json.len() as u64 + 1)
                .collect(),
        }
    }

    /// Writes the records of `run` (indexes into this category's records).
    fn write(
        &self,
        category: &mut Category,
        run: std::ops::Range<usize>,
        buf: &mut Vec<u8>,
    ) -> Result<u64, PluginError> {
        match self {
            Lines::Text {
                text,
                starts,
                json_lens,
                timestamps,
            } => category.append_lines(
                &text[starts[run.start]..starts[run.end]],
                crate::stats::lines_of(&timestamps[run.clone()], &json_lens[run]),
            ),
            Lines::Records { records, indexes } => {
                let run = &indexes[run];
                buf.clear();
                linefile::encode_into(run.iter().map(|&i| records[i]), buf);
                let lines = run.iter().map(|&i| crate::stats::line_of(records[i]));
                category.append_lines(buf, lines)
            }
        }
    }
}

fn read_only_error() -> PluginError {
    PluginError::InvalidState("store was opened read-only".into())
}

/// Creates `dest` empty and synced, refusing to overwrite: the copy of a
/// unit whose data is gone.
fn copy_nothing(dest: &Path) -> Result<u64, PluginError> {
    let label = dest.display().to_string();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .ctx("create", &label)?
        .sync_all()
        .ctx("sync", &label)?;
    atomic::sync_dir(atomic::parent(dest))?;
    Ok(0)
}

/// The data root inside the grant; the target may not leave it.
fn data_root(config: &OpenConfig) -> Result<PathBuf, PluginError> {
    let target = Path::new(&config.target);
    if !target
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(PluginError::InvalidConfig(format!(
            "target must be a relative path inside the granted directory, got `{}`",
            config.target
        )));
    }
    Ok(Path::new(&config.root).join(target))
}

impl RotatingStore {
    /// Opens the store; read-write also repairs what a crash left behind
    /// (see [`RotatingStore::open_report`]).
    pub fn open(config: OpenConfig) -> Result<Self, PluginError> {
        let options = Options::new(config.options.clone(), OPTION_NAMES)?;
        let limits = Limits::from_options(&options)?;
        let root = data_root(&config)?;
        let label = if config.target.is_empty() {
            config.root.clone()
        } else {
            config.target.clone()
        };
        if !root.is_dir() {
            if config.read_only {
                return Err(quire_guest::errors::io(
                    "open directory",
                    &label,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            fs::create_dir_all(&root).ctx("create directory", &label)?;
            atomic::sync_dir(atomic::parent(&root))?;
        }
        let book = ReceiptBook::new(root.join(RECEIPTS_DIR));
        let mut report = Vec::new();
        let mut categories = BTreeMap::new();
        let mut remembered = BTreeMap::new();
        if !config.read_only {
            let facts = ReceiptFacts::of(&book.all()?);
            recovery::finish_temp_purges(&root, &facts, &mut report)?;
            let now = now();
            for found in layout::read_all(&root)? {
                let category = recovery::open_category(found, &facts, now, &mut report)?;
                categories.insert(category.name.clone(), category);
            }
            remembered = facts.highest;
        }
        Ok(Self {
            shared: Rc::new(Shared {
                root,
                read_only: config.read_only,
                limits,
                book,
                categories: RefCell::new(categories),
                remembered,
            }),
            report,
            validator: Validator::new(),
            manifests: RefCell::default(),
            check: RefCell::default(),
        })
    }

    /// What the read-write open repaired.
    pub fn open_report(&self) -> Vec<Anomaly> {
        self.report.clone()
    }

    fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Appends owned records (tests use it; the plugin appends the batch
    /// it is handed with [`RotatingStore::append_batch`]).
    #[cfg(test)]
    pub fn append(&self, batch: Vec<Envelope>, level: SyncLevel) -> Result<u64, PluginError> {
        self.append_batch(&quire_guest::batch::from_envelopes(&batch), level)
    }

    /// Appends a batch, routed by kind, rotating as the limits say. Every
    /// record is checked before anything is written. A batch of one kind
    /// (an actor system's events, say) is written as the NDJSON text it
    /// arrives as; a mixed one is encoded category by category.
    pub fn append_batch(&self, batch: &RecordBatch, level: SyncLevel) -> Result<u64, PluginError> {
        if self.shared.read_only {
            return Err(read_only_error());
        }
        // Before the kinds are looked at: a batch missing its kinds column
        // is refused, not taken for an empty batch.
        quire_guest::batch::check_columns(batch)?;
        let Some(&first) = batch.kinds.first() else {
            return Ok(0);
        };
        if batch.kinds.iter().any(|&kind| kind != first) {
            let records = linefile::checked_records(batch)?;
            let mut routes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (index, envelope) in records.iter().enumerate() {
                let category = naming::category_for_kind(envelope.kind)
                    .map_err(|reason| rejected(index, reason))?;
                routes.entry(category).or_default().push(index);
            }
            let routes = routes
                .into_iter()
                .map(|(category, indexes)| {
                    let lines = Lines::Records {
                        records: &records,
                        indexes,
                    };
                    (category, lines)
                })
                .collect();
            return self.append_routed(routes, level);
        }
        let text = linefile::checked_text(batch)?;
        let kind = batch.names.get(first as usize).ok_or_else(|| {
            rejected(
                0,
                format!("name index {first} of {} names", batch.names.len()),
            )
        })?;
        let category = naming::category_for_kind(kind).map_err(|reason| rejected(0, reason))?;
        let mut starts = Vec::with_capacity(batch.json_lens.len() + 1);
        starts.push(0);
        for &len in &batch.json_lens {
            starts.push(starts[starts.len() - 1] + len as usize + 1);
        }
        let lines = Lines::Text {
            text,
            starts,
            json_lens: &batch.json_lens,
            timestamps: &batch.timestamps,
        };
        self.append_routed(vec![(category, lines)], level)
    }

    /// Writes each category's lines, rotating as the limits say; all or
    /// nothing across categories.
    fn append_routed(
        &self,
        routes: Vec<(&str, Lines<'_>)>,
        level: SyncLevel,
    ) -> Result<u64, PluginError> {
        let now = now();
        let mut categories = self.shared.categories.borrow_mut();
        let mut written = 0;
        let mut buf = Vec::new();
        // All or nothing across categories: each one's state before the
        // batch, to roll back to if any part fails.
        let mut checkpoints = Vec::new();
        let mut outcome = Ok(());
        for (name, lines) in routes {
            let category = categories.entry(name.to_string()).or_insert_with(|| {
                let remembered = self.shared.remembered.get(name).copied().unwrap_or(0);
                Category::new(self.root(), name, remembered + 1)
            });
            // Sealing a torn live file here is not part of the batch.
            let fill = match category.live_fill(now) {
                Ok(fill) => fill,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            checkpoints.push((name, category.checkpoint()));
            outcome = (|| {
                for piece in rotation::plan(fill, &lines.sizes(), self.shared.limits) {
                    if piece.new_file {
                        category.seal_live(now)?;
                        category.start_file()?;
                    }
                    written += lines.write(category, piece.records, &mut buf)?;
                }
                if level == SyncLevel::Durable {
                    category.sync()?;
                }
                Ok(())
            })();
            if outcome.is_err() {
                break;
            }
        }
        let Err(failure) = outcome else {
            return Ok(written);
        };
        let mut undone = Ok(());
        for (name, checkpoint) in checkpoints.into_iter().rev() {
            let category = categories.get_mut(name).expect("checkpointed above");
            if let Err(e) = category.roll_back(checkpoint) {
                undone = Err(e);
            }
        }
        Err(rollback_note(failure, undone))
    }

    /// Appends are written straight to the files; only `durable` has work.
    pub fn sync(&self, level: SyncLevel) -> Result<(), PluginError> {
        if self.shared.read_only || level != SyncLevel::Durable {
            return Ok(());
        }
        for category in self.shared.categories.borrow_mut().values_mut() {
            category.sync()?;
        }
        Ok(())
    }

    /// Category directories as on disk now; read-only stores also refresh
    /// the manifests they validate against.
    fn snapshot(&self) -> Result<Vec<CategoryDir>, PluginError> {
        let dirs = layout::read_all(self.root())?;
        if self.shared.read_only {
            *self.manifests.borrow_mut() = dirs
                .iter()
                .map(|d| (d.name.clone(), d.manifest.clone()))
                .collect();
        }
        Ok(dirs)
    }

    /// Every rotated file, by category, then sequence number.
    pub fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        let dirs = self.snapshot()?;
        let categories = self.shared.categories.borrow();
        let mut units = Vec::new();
        for dir in &dirs {
            let live = dir.live();
            for (&seq, &bytes) in &dir.files {
                let mut unit = UnitInfo {
                    id: naming::unit_id(&dir.name, seq),
                    store: None,
                    bytes,
                    records: None,
                    min_timestamp: None,
                    max_timestamp: None,
                    sealed: true,
                    codec: CODEC.into(),
                };
                match dir.role(seq, live) {
                    Role::Sealed => {
                        let entry = dir.found().and_then(|m| m.entry(seq)).expect("sealed");
                        unit.records = Some(entry.records);
                        unit.min_timestamp = entry.min_timestamp;
                        unit.max_timestamp = entry.max_timestamp;
                    }
                    Role::Live => {
                        unit.sealed = false;
                        let known = categories
                            .get(&dir.name)
                            .and_then(|c| c.live.as_ref())
                            .filter(|l| l.sequence == seq)
                            .and_then(|l| l.known_stats());
                        if let Some(stats) = known.filter(|s| s.bytes == bytes) {
                            unit.records = Some(stats.records);
                            unit.min_timestamp = stats.min_timestamp;
                            unit.max_timestamp = stats.max_timestamp;
                        }
                    }
                    Role::Orphan => {}
                }
                units.push(unit);
            }
        }
        Ok(units)
    }

    /// Layout problems: unreadable manifests, files missing from their
    /// manifest or listed without data, leftover temporary files, and
    /// (read-only) removals a read-write open would finish.
    pub fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        let dirs = self.snapshot()?;
        let mut found = Vec::new();
        let mut note = |kind, unit: String, length, detail: String| {
            found.push(Anomaly {
                kind,
                unit,
                offset: 0,
                length,
                line: None,
                detail,
            })
        };
        let purged = if self.shared.read_only {
            ReceiptFacts::of(&self.shared.book.all()?).purged
        } else {
            BTreeMap::new()
        };
        for dir in &dirs {
            if let Loaded::Unreadable(reason) = &dir.manifest {
                let size = fs::metadata(dir.dir.join(MANIFEST_NAME)).map_or(0, |m| m.len());
                note(
                    AnomalyKind::ManifestMismatch,
                    format!("{}/{MANIFEST_NAME}", dir.name),
                    size,
                    format!("{reason}; a read-write open rebuilds it from the data"),
                );
            }
            let purged = purged.get(&dir.name);
            for seq in dir.orphans() {
                let why = if purged.is_some_and(|p| p.contains(&seq)) {
                    "purged by a receipt but still present; a read-write open removes it"
                } else {
                    "rotated file not in the manifest; a read-write open seals it with an entry \
                     computed from its data"
                };
                note(
                    AnomalyKind::OrphanedUnit,
                    naming::unit_id(&dir.name, seq),
                    dir.files[&seq],
                    why.into(),
                );
            }
            for seq in dir.missing() {
                let records = dir
                    .found()
                    .and_then(|m| m.entry(seq))
                    .map_or(0, |e| e.records);
                let why = if purged.is_some_and(|p| p.contains(&seq)) {
                    "purged by a receipt; a read-write open removes the manifest entry".to_string()
                } else {
                    format!("sealed file in the manifest ({records} records) is missing")
                };
                note(
                    AnomalyKind::ManifestMismatch,
                    naming::unit_id(&dir.name, seq),
                    0,
                    why,
                );
            }
            for (name, &size) in &dir.temps {
                note(
                    AnomalyKind::OrphanedUnit,
                    format!("{}/{name}", dir.name),
                    size,
                    "temporary file of an atomic write that never committed (the original is intact)"
                        .into(),
                );
            }
        }
        for path in self.shared.book.leftovers() {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let size = fs::metadata(&path).map_or(0, |m| m.len());
            note(
                AnomalyKind::OrphanedUnit,
                format!("{RECEIPTS_DIR}/{name}"),
                size,
                "temporary file of a receipt that was never stored".into(),
            );
        }
        Ok(found)
    }

    /// The manifest entry of a sealed file, if it is one.
    fn sealed_entry(
        &self,
        category: &str,
        sequence: u64,
    ) -> Result<Option<SealedFile>, PluginError> {
        if !self.shared.read_only {
            let categories = self.shared.categories.borrow();
            return Ok(categories
                .get(category)
                .and_then(|c| c.manifest.entry(sequence))
                .cloned());
        }
        let mut manifests = self.manifests.borrow_mut();
        if !manifests.contains_key(category) {
            let dir = self.root().join(category);
            let loaded =
                crate::manifest::Manifest::load(&dir, &format!("{category}/{MANIFEST_NAME}"))?;
            manifests.insert(category.to_string(), loaded);
        }
        Ok(match &manifests[category] {
            Loaded::Found(m) => m.entry(sequence).cloned(),
            _ => None,
        })
    }

    /// Category, sequence number and path of a rotated file's unit id.
    fn rotated(&self, unit: &str) -> Result<(String, u64, PathBuf), PluginError> {
        match naming::parse_unit(unit) {
            Some(UnitName::Rotated { category, sequence }) => {
                let path = self
                    .root()
                    .join(&category)
                    .join(naming::file_name(&category, sequence));
                Ok((category, sequence, path))
            }
            _ => Err(PluginError::NoSuchUnit(unit.to_string())),
        }
    }

    /// Validates a rotated file. A sealed file whose size and checksum
    /// match its clean manifest entry is done at once, unread line by line.
    pub fn validate(
        &self,
        unit: String,
        offset: u64,
        budget: u64,
    ) -> Result<ScanChunk, PluginError> {
        let (category, sequence, path) = self.rotated(&unit)?;
        let size = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PluginError::NoSuchUnit(unit));
            }
            Err(e) => return Err(quire_guest::errors::io("stat", &unit, e)),
        };
        let known = matches!(self.check.borrow().as_ref(), Some(c) if c.unit == unit);
        // A whole pass compares the bytes with what was sealed; one resumed
        // elsewhere (lines match only from the start) just reads the lines.
        if offset == 0 {
            *self.check.borrow_mut() = None;
            if let Some(entry) = self.sealed_entry(&category, sequence)? {
                let (crc_len, crc) = quire_guest::checksum::file_crc32(&path, &unit)?;
                match sealed_check::start(&path, &unit, &entry, crc_len, crc)? {
                    Start::Intact => {
                        return Ok(ScanChunk {
                            anomalies: Vec::new(),
                            records: entry.records,
                            next_offset: crc_len,
                            done: true,
                        });
                    }
                    Start::Check(check) => *self.check.borrow_mut() = Some(check),
                }
            }
        } else if !known {
            *self.check.borrow_mut() = None;
        }
        let (mut chunk, _) = self.validator.validate(&path, &unit, offset, budget)?;
        let mut check = self.check.borrow_mut();
        if let Some(c) = check.as_mut().filter(|c| c.unit == unit) {
            c.after_chunk(&mut chunk, size)?;
            if chunk.done {
                *check = None;
            }
        }
        Ok(chunk)
    }

    /// A cursor over the valid records of a rotated file that pass `filter`.
    /// A sealed file whose data is gone reads as empty, so recovery can
    /// rewrite it.
    pub fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<LineCursor, PluginError> {
        if order == ReadOrder::NewestFirst {
            return Err(PluginError::Unsupported(
                "newest-first reads (the host reverses)".into(),
            ));
        }
        let (category, sequence, path) = self.rotated(&unit)?;
        if path.exists() {
            LineCursor::open(&path, unit, filter, CURSOR_CHUNK)
        } else if self.sealed_entry(&category, sequence)?.is_some() {
            Ok(LineCursor::empty(unit, filter))
        } else {
            Err(PluginError::NoSuchUnit(unit))
        }
    }

    /// Starts a replacement of a sealed or the live file.
    pub fn rewrite(&self, unit: String) -> Result<RotatingRewriter, PluginError> {
        if self.shared.read_only {
            return Err(read_only_error());
        }
        let (category, sequence, path) = self.rotated(&unit)?;
        {
            let categories = self.shared.categories.borrow();
            let known = categories.get(&category).is_some_and(|c| {
                c.manifest.entry(sequence).is_some()
                    || c.live.as_ref().is_some_and(|l| l.sequence == sequence)
            });
            if !known {
                return Err(PluginError::NoSuchUnit(unit));
            }
        }
        let file = AtomicFile::create(&path)?;
        Ok(RotatingRewriter::new(
            file,
            self.shared.clone(),
            category,
            sequence,
        ))
    }

    /// Removes a sealed file (or a leftover temporary file): the receipt
    /// first, then the file, then its manifest entry (whose atomic write
    /// syncs the directory).
    pub fn drop_unit(&self, unit: String, receipt: Option<Receipt>) -> Result<(), PluginError> {
        if self.shared.read_only {
            return Err(read_only_error());
        }
        match naming::parse_unit(&unit) {
            Some(UnitName::Temporary { dir, file }) => {
                let dir = self.root().join(dir);
                let path = dir.join(file);
                if !path.is_file() {
                    return Err(PluginError::NoSuchUnit(unit));
                }
                if let Some(receipt) = &receipt {
                    self.shared.book.put(receipt)?;
                }
                fs::remove_file(&path).ctx("remove", &unit)?;
                atomic::sync_dir(&dir)
            }
            Some(UnitName::Rotated { category, sequence }) => {
                let mut categories = self.shared.categories.borrow_mut();
                let Some(cat) = categories.get_mut(&category) else {
                    return Err(PluginError::NoSuchUnit(unit));
                };
                if cat.live.as_ref().is_some_and(|l| l.sequence == sequence) {
                    return Err(PluginError::InvalidState(format!(
                        "`{unit}` is the live file and cannot be dropped; seal it first"
                    )));
                }
                let path = cat.path(sequence);
                let listed = cat.manifest.entry(sequence).is_some();
                let exists = path.is_file();
                if !listed && !exists {
                    return Err(PluginError::NoSuchUnit(unit));
                }
                if let Some(receipt) = &receipt {
                    self.shared.book.put(receipt)?;
                }
                if exists {
                    fs::remove_file(&path).ctx("remove", &unit)?;
                }
                LineSums::remove(&path, &unit)?;
                if listed {
                    cat.manifest.remove(sequence);
                    cat.save_manifest()
                } else {
                    atomic::sync_dir(&cat.dir)
                }
            }
            None => Err(PluginError::NoSuchUnit(unit)),
        }
    }

    /// Stores a receipt durably.
    pub fn put_receipt(&self, receipt: Receipt) -> Result<(), PluginError> {
        if self.shared.read_only {
            return Err(read_only_error());
        }
        self.shared.book.put(&receipt).map(|_| ())
    }

    /// Receipts that pass `filter`, oldest first.
    pub fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        self.shared.book.list(&filter)
    }

    /// Copies a rotated or temporary file into the quarantine directory. A
    /// sealed file whose data is gone is quarantined as the empty file it is.
    pub fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        let dest = Path::new(&dir).join(&name);
        let path = match naming::parse_unit(&unit) {
            Some(UnitName::Rotated { category, sequence }) => {
                let path = self
                    .root()
                    .join(&category)
                    .join(naming::file_name(&category, sequence));
                if !path.exists() && self.sealed_entry(&category, sequence)?.is_some() {
                    return copy_nothing(&dest);
                }
                path
            }
            Some(UnitName::Temporary { dir, file }) => self.root().join(dir).join(file),
            None => return Err(PluginError::NoSuchUnit(unit)),
        };
        if !path.is_file() {
            return Err(PluginError::NoSuchUnit(unit));
        }
        atomic::copy_synced(&path, &dest, &unit)
    }

    /// Seals every category's live file; the next append starts new ones.
    pub fn seal(&self) -> Result<(), PluginError> {
        if self.shared.read_only {
            return Err(read_only_error());
        }
        let now = now();
        for category in self.shared.categories.borrow_mut().values_mut() {
            category.seal_live(now)?;
        }
        Ok(())
    }

    /// Units, total bytes, and per category: files, sealed files, records,
    /// bytes and live file; receipts.
    pub fn stats(&self) -> Result<StorageStats, PluginError> {
        let units = self.units()?;
        let total_bytes = units.iter().map(|u| u.bytes).sum();
        let mut per_category: BTreeMap<&str, (u64, u64, u64, u64, Option<&str>)> = BTreeMap::new();
        for unit in &units {
            let category = unit.id.split('/').next().unwrap_or_default();
            let entry = per_category.entry(category).or_default();
            entry.0 += 1;
            entry.1 += u64::from(unit.sealed);
            entry.2 += unit.records.unwrap_or(0);
            entry.3 += unit.bytes;
            if !unit.sealed {
                entry.4 = Some(&unit.id);
            }
        }
        let mut details = Vec::new();
        for (category, (files, sealed, records, bytes, live)) in per_category {
            details.push((format!("{category}.files"), files.to_string()));
            details.push((format!("{category}.sealed"), sealed.to_string()));
            details.push((format!("{category}.records"), records.to_string()));
            details.push((format!("{category}.bytes"), bytes.to_string()));
            details.push((
                format!("{category}.live"),
                live.unwrap_or("none").to_string(),
            ));
        }
        details.push(("receipts".into(), self.shared.book.all()?.len().to_string()));
        Ok(StorageStats {
            units,
            total_bytes,
            details,
        })
    }

    /// One entry per category: its live file and what was accepted since
    /// open and not yet synced.
    pub fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        let entry = |name: &str, live: Option<u64>, accepted, unsynced| StoreDurability {
            store: name.to_string(),
            codec: CODEC.into(),
            live_unit: live.map(|seq| naming::unit_id(name, seq)),
            accepted,
            buffered: 0,
            unsynced,
        };
        if self.shared.read_only {
            return Ok(layout::read_all(self.root())?
                .iter()
                .map(|d| entry(&d.name, d.live(), 0, 0))
                .collect());
        }
        Ok(self
            .shared
            .categories
            .borrow()
            .values()
            .map(|c| {
                entry(
                    &c.name,
                    c.live.as_ref().map(|l| l.sequence),
                    c.accepted,
                    c.unsynced,
                )
            })
            .collect())
    }
}

/// The error of a failed batch, saying whether it was rolled back.
fn rollback_note(failure: PluginError, undone: Result<(), PluginError>) -> PluginError {
    let note = match undone {
        Ok(()) => "; the batch was rolled back: nothing of it was kept".to_string(),
        Err(e) => format!(
            "; rolling the batch back failed too ({}): the live file may end in part of it, \
             which the next open or `quire recover` deals with",
            quire_guest::errors::describe(&e)
        ),
    };
    quire_guest::errors::with_note(failure, &note)
}
