//! The NDJSON backend: one record per line, in Papyra's JSON file format.
//!
//! A single file is the single storage unit. Appends add whole lines in one
//! write; rewrites go through a temporary file and an atomic rename.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use quire_guest::append;
use quire_guest::atomic::{self, AtomicFile, TEMP_SUFFIX};
use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestRewriter, GuestStore, OpenConfig, Receipt, ReceiptFilter,
    Rewriter, Store, StoreDurability,
};
use quire_guest::errors::IoContext;
use quire_guest::linefile::{self, LineCursor, Validator};
use quire_guest::options::Options;
use quire_guest::types::{
    Anomaly, AnomalyKind, PluginError, ReadFilter, ReadOrder, RecordBatch, RecordPlace, ScanChunk,
    StorageStats, SyncLevel, UnitInfo,
};

struct Ndjson;

/// State shared by a store and the cursors and rewriters it hands out.
struct Shared {
    /// The data file, as the plugin sees it.
    path: PathBuf,
    /// Unit name (the file name).
    unit: String,
    /// Bumped by every committed rewrite: the append handle must be reopened.
    generation: Cell<u64>,
}

/// The append handle, the rewrite generation it was opened at, and whether
/// the file is known to end with a newline (checked once per handle: the
/// host's writer lock means nobody else appends).
struct Appender {
    generation: u64,
    file: File,
    ends_clean: bool,
    /// The file's length: where the next batch begins (one writer holds the lock).
    len: u64,
}

struct NdjsonStore {
    shared: Rc<Shared>,
    read_only: bool,
    appender: RefCell<Option<Appender>>,
    /// Records accepted since open, and how many of them are not yet synced.
    accepted: Cell<u64>,
    unsynced: Cell<u64>,
    /// Where a chunked scan stands, so line numbers run on across chunks.
    validator: Validator,
}

impl Guest for Ndjson {
    type Cursor = LineCursor;
    type Rewriter = FileRewriter;
    type Store = NdjsonStore;

    fn info() -> BackendInfo {
        BackendInfo {
            name: "ndjson".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "one JSON object per line in a single file (Papyra's JSON format)".into(),
            path_is_file: true,
            integrity: "none: Papyra's NDJSON has no checksums, so a changed record that still \
                        parses cannot be told from the original (rotating or segmented can)"
                .into(),
            persistent: true,
        }
    }
}

impl NdjsonStore {
    fn check_unit(&self, unit: &str) -> Result<(), PluginError> {
        if unit == self.shared.unit {
            Ok(())
        } else {
            Err(PluginError::NoSuchUnit(unit.to_string()))
        }
    }

    fn label(&self) -> String {
        self.shared.unit.clone()
    }

    fn temp_unit(&self) -> String {
        format!("{}{TEMP_SUFFIX}", self.shared.unit)
    }

    /// The append handle, reopened after a rewrite replaced the file.
    fn with_appender<T>(
        &self,
        f: impl FnOnce(&mut Appender) -> Result<T, PluginError>,
    ) -> Result<T, PluginError> {
        let mut slot = self.appender.borrow_mut();
        let generation = self.shared.generation.get();
        if slot.as_ref().is_none_or(|a| a.generation != generation) {
            let file = OpenOptions::new()
                .append(true)
                .read(true)
                .open(&self.shared.path)
                .ctx("open", &self.label())?;
            let len = file.metadata().ctx("stat", &self.label())?.len();
            *slot = Some(Appender {
                generation,
                file,
                ends_clean: false,
                len,
            });
        }
        f(slot.as_mut().expect("just opened"))
    }
}

impl GuestStore for NdjsonStore {
    fn open(config: OpenConfig) -> Result<Store, PluginError> {
        Options::new(config.options, &[])?;
        if config.target.is_empty() || config.target.contains('/') {
            return Err(PluginError::InvalidConfig(format!(
                "target must be a file name inside the granted directory, got `{}`",
                config.target
            )));
        }
        let path = Path::new(&config.root).join(&config.target);
        if !config.read_only && !path.exists() {
            File::create(&path)
                .ctx("create", &config.target)?
                .sync_all()
                .ctx("sync", &config.target)?;
            atomic::sync_dir(Path::new(&config.root))?;
        } else if config.read_only && !path.exists() {
            return Err(quire_guest::errors::io(
                "open",
                &config.target,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let shared = Rc::new(Shared {
            path,
            unit: config.target,
            generation: Cell::new(0),
        });
        Ok(Store::new(NdjsonStore {
            shared,
            read_only: config.read_only,
            appender: RefCell::new(None),
            accepted: Cell::new(0),
            unsynced: Cell::new(0),
            validator: Validator::new(),
        }))
    }

    fn append(&self, batch: RecordBatch, level: SyncLevel) -> Result<u64, PluginError> {
        if self.read_only {
            return Err(PluginError::InvalidState(
                "store was opened read-only".into(),
            ));
        }
        // The batch arrives as NDJSON lines: checked, it is written as it is.
        let text = linefile::checked_text(&batch)?;
        let records = quire_guest::batch::len(&batch) as u64;
        let label = self.label();
        let appended = self.with_appender(|appender| {
            let torn = !appender.ends_clean && linefile::ends_mid_line(&mut appender.file, &label)?;
            let buf: Cow<'_, [u8]> = if torn {
                Cow::Owned([b"\n", text].concat())
            } else {
                Cow::Borrowed(text)
            };
            // All or nothing: a failed write or sync cuts the file back to
            // where the batch began, so a retry duplicates nothing.
            let durable = level == SyncLevel::Durable;
            append::append_or_roll_back(&mut appender.file, appender.len, &buf, durable, &label)?;
            appender.len += buf.len() as u64;
            appender.ends_clean = true;
            self.accepted.set(self.accepted.get() + records);
            if durable {
                self.unsynced.set(0);
            } else {
                self.unsynced.set(self.unsynced.get() + records);
            }
            Ok(buf.len() as u64)
        });
        if appended.is_err() {
            // A failed write closes the file's stream: the next append reopens.
            self.appender.borrow_mut().take();
        }
        appended
    }

    fn sync(&self, level: SyncLevel) -> Result<(), PluginError> {
        if self.read_only || level != SyncLevel::Durable {
            return Ok(());
        }
        let label = self.label();
        self.with_appender(|appender| {
            quire_guest::sync::sync_data(&appender.file).ctx("sync", &label)
        })?;
        self.unsynced.set(0);
        Ok(())
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        let bytes = fs::metadata(&self.shared.path)
            .ctx("stat", &self.label())?
            .len();
        Ok(vec![UnitInfo {
            id: self.shared.unit.clone(),
            store: None,
            bytes,
            records: None,
            min_timestamp: None,
            max_timestamp: None,
            sealed: false,
            codec: "ndjson".into(),
        }])
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        let temp = atomic::temp_path(&self.shared.path);
        match fs::metadata(&temp) {
            Ok(meta) => Ok(vec![Anomaly {
                kind: AnomalyKind::OrphanedUnit,
                unit: self.temp_unit(),
                offset: 0,
                length: meta.len(),
                line: None,
                detail: "temporary file of a rewrite that never committed (the original is intact)"
                    .into(),
            }]),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(quire_guest::errors::io("stat", &self.temp_unit(), e)),
        }
    }

    fn validate(&self, unit: String, offset: u64, budget: u64) -> Result<ScanChunk, PluginError> {
        self.check_unit(&unit)?;
        let (chunk, _) = self
            .validator
            .validate(&self.shared.path, &unit, offset, budget)?;
        Ok(chunk)
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        self.check_unit(&unit)?;
        if order == ReadOrder::NewestFirst {
            return Err(PluginError::Unsupported(
                "newest-first reads (the host reverses)".into(),
            ));
        }
        Ok(Cursor::new(LineCursor::open(
            &self.shared.path,
            unit,
            filter,
            linefile::SCAN_CHUNK,
        )?))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        self.check_unit(&unit)?;
        if self.read_only {
            return Err(PluginError::InvalidState(
                "store was opened read-only".into(),
            ));
        }
        let file = AtomicFile::create(&self.shared.path)?;
        Ok(Rewriter::new(FileRewriter {
            file: RefCell::new(file),
            shared: self.shared.clone(),
        }))
    }

    fn drop_unit(&self, unit: String, _receipt: Option<Receipt>) -> Result<(), PluginError> {
        if unit == self.shared.unit {
            return Err(PluginError::InvalidState(format!(
                "`{unit}` is the live file and cannot be dropped"
            )));
        }
        if unit != self.temp_unit() {
            return Err(PluginError::NoSuchUnit(unit));
        }
        fs::remove_file(atomic::temp_path(&self.shared.path)).ctx("remove", &unit)?;
        atomic::sync_dir(atomic::parent(&self.shared.path))
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        let source = if unit == self.temp_unit() {
            atomic::temp_path(&self.shared.path)
        } else {
            self.check_unit(&unit)?;
            self.shared.path.clone()
        };
        quire_guest::atomic::copy_synced(&source, &Path::new(&dir).join(&name), &unit)
    }

    fn seal(&self) -> Result<(), PluginError> {
        Err(PluginError::Unsupported(
            "seal: a single NDJSON file is always live".into(),
        ))
    }

    fn open_report(&self) -> Vec<Anomaly> {
        Vec::new()
    }

    fn put_receipt(&self, _receipt: Receipt) -> Result<(), PluginError> {
        Err(quire_guest::receipts::not_kept())
    }

    fn receipts(&self, _filter: ReceiptFilter) -> Result<Vec<Receipt>, PluginError> {
        Ok(Vec::new())
    }

    fn durability(&self) -> Result<Vec<StoreDurability>, PluginError> {
        Ok(vec![self.durability_snapshot()])
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        let units = self.units()?;
        let total_bytes = units.iter().map(|u| u.bytes).sum();
        let mut details = Vec::new();
        if let Ok(mut file) = File::open(&self.shared.path) {
            details.push((
                "torn-tail".into(),
                linefile::ends_mid_line(&mut file, &self.label())?.to_string(),
            ));
        }
        Ok(StorageStats {
            units,
            total_bytes,
            details,
        })
    }
}

impl NdjsonStore {
    /// One file holds every store.
    fn durability_snapshot(&self) -> StoreDurability {
        StoreDurability {
            store: "*".into(),
            codec: "ndjson".into(),
            live_unit: Some(self.shared.unit.clone()),
            accepted: self.accepted.get(),
            buffered: 0,
            unsynced: self.unsynced.get(),
        }
    }
}

struct FileRewriter {
    file: RefCell<AtomicFile>,
    shared: Rc<Shared>,
}

impl GuestRewriter for FileRewriter {
    fn write(&self, batch: RecordBatch) -> Result<(), PluginError> {
        let text = linefile::checked_text(&batch)?;
        self.file.borrow_mut().write(text)
    }

    fn copy(&self, places: Vec<RecordPlace>) -> Result<(), PluginError> {
        let mut file = self.file.borrow_mut();
        linefile::copy_places(&self.shared.path, &self.shared.unit, &places, |bytes| {
            file.write(bytes)
        })
    }

    fn commit(&self) -> Result<u64, PluginError> {
        let size = self.file.borrow_mut().commit()?;
        self.shared.generation.set(self.shared.generation.get() + 1);
        Ok(size)
    }

    fn abort(&self) -> Result<(), PluginError> {
        self.file.borrow_mut().abort()
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_backend!(Ndjson);
