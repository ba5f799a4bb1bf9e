//! A hostile backend, for the tests that show the host contains it.
//!
//! Otherwise a tiny real directory backend: records live in the instance's
//! memory, in one unit `hostile`. The open-config option `attack` picks what
//! it tries:
//!
//! - `escape-parent`, `absolute`, `symlink` (in `open`): file-system escapes.
//!   The plugin does not trap; every attempt and its outcome is recorded. If
//!   all were refused, `open` succeeds and `stats().details` lists them as
//!   `escape: WHAT` = `refused: ERROR`, plus `control: ...` = `ok: ...` for a
//!   read inside `/data` that must work; if any escape succeeded, `open`
//!   fails with `invalid-config("attack results: ...")`.
//! - `loop`, `alloc`, `trap-mid-append` (in `append`, only for a batch that
//!   holds a record of kind `attack`): spin forever, allocate without bound,
//!   write half the batch to `/data/half-written.ndjson` and panic.
//! - `huge-batch` (cursor `next`, only when the filter asks for kind
//!   `attack`): return `max + 100000` records.
//! - `no-progress` (`validate`): `done: false` with `next-offset == offset`.
//!
//! - `sleep-open` (in `open`), `sleep`, `sleep-loop` (in `append`, armed by
//!   kind `attack`): sleep for an hour; sleep a millisecond at a time, forever.
//! - `hoard-handles` (in `append`, armed): open the data directory again and
//!   again, keeping every handle, until refused; then report how many.
//! - `evil-text`: escape sequences, a carriage-return overwrite and a bidi
//!   override in `stats` details, scan anomaly details, an armed append's
//!   error, and a panic message (armed `append` with kind `panic`).
//! - `unit-escape`, `unit-absolute` (`units`): name a unit
//!   `../../../../etc/passwd` or `/etc/passwd`.
//! - `lying-cursor` (cursor `next`): ignore the read filter.
//! - `bad-batch` (cursor `next`): return a batch whose lengths run past its
//!   text.
//! - `scan-beyond`, `scan-backwards` (`validate`): report an offset past the
//!   unit's end; move backwards after the first step.
//! - `plant-lock-link` (read-write `open`): replace `/data/.quire-lock` with
//!   a link to `../planted-lock`.
//! - `plant-receipt-link` (`quarantine`): plant `NAME.receipt.json` in the
//!   quarantine directory as a link to `../planted-receipt`.
//!
//! - `checksum-out-of-bounds` (armed `append`): ask the host's `checksum`
//!   interface for the CRC of a list that lies past the end of this
//!   plugin's memory.
//! - `checksum-overlap` (armed `append`): ask the host's `checksum` for
//!   the CRCs of 20,000 overlapping spans of a 1 KiB list (20 MB of work
//!   for 4 bytes of list each).
//! - `tcp-silent` (armed `append`): connect to the option `server` and wait
//!   for a byte that never comes.
//! - `tcp-elsewhere` (armed `append`): try to connect to the option `other`;
//!   the error (`connect ADDR: ...` or `CONNECTED ...`) tells what happened.
//!
//! `escape-name` names the file the escapes try to create outside the data
//! directory, so that tests can use a unique name.
// Natively (tests) nothing is exported, so the plugin types look unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use std::path::Path;

use quire_guest::backend::{
    BackendInfo, Cursor, Guest, GuestCursor, GuestRewriter, GuestStore, OpenConfig, Receipt,
    ReceiptFilter, Rewriter, Store, StoreDurability,
};
use quire_guest::batch::{self, BatchBuilder, Envelope, EnvelopeRef};
use quire_guest::errors::IoContext;
use quire_guest::memlog::{self, MemCursor, MemRewrite, SharedLog};
use quire_guest::options::Options;
use quire_guest::types::{
    Anomaly, PluginError, ReadFilter, ReadOrder, RecordBatch, ScanChunk, StorageStats, StoredBatch,
    SyncLevel, UnitInfo,
};

const UNIT: &str = "hostile";
/// The kind that arms the append and read attacks.
const ATTACK_KIND: &str = "attack";
/// The file `trap-mid-append` half-writes before it panics.
const HALF_WRITTEN: &str = "/data/half-written.ndjson";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Attack {
    None,
    EscapeParent,
    Absolute,
    Symlink,
    Loop,
    Alloc,
    TrapMidAppend,
    HugeBatch,
    NoProgress,
    SleepOpen,
    Sleep,
    SleepLoop,
    HoardHandles,
    EvilText,
    UnitEscape,
    UnitAbsolute,
    LyingCursor,
    BadBatch,
    ScanBeyond,
    ScanBackwards,
    PlantLockLink,
    PlantReceiptLink,
    TcpSilent,
    TcpElsewhere,
    ChecksumOutOfBounds,
    ChecksumOverlap,
}

/// Terminal control an attacker would like to reach the operator's screen:
/// clear screen, retitle the window, overwrite the line, reverse the text.
const EVIL: &str = "\x1b[2J\x1b]0;pwned\x07\rALL HEALTHY\u{202e}gnp.exe";

fn sleep_an_hour() {
    std::thread::sleep(std::time::Duration::from_secs(3600));
}

unsafe extern "C" {
    /// wasi-libc's `symlink`, resolved against the preopened directories.
    fn symlink(target: *const std::ffi::c_char, link: *const std::ffi::c_char) -> i32;
}

/// `checksum-out-of-bounds`: the raw import, with a list the plugin does
/// not have (wit-bindgen would only ever pass a real slice).
fn checksum_out_of_bounds() -> ! {
    #[cfg(target_family = "wasm")]
    {
        #[link(wasm_import_module = "quire:persistence/checksum@0.3.0")]
        unsafe extern "C" {
            #[link_name = "crc32"]
            fn crc32(initial: i32, ptr: i32, len: i32) -> i32;
        }
        // SAFETY: the plugin touches nothing; the host is asked to read
        // 1 MiB from 16 bytes before the end of a 2 GiB address space.
        let crc = unsafe { crc32(0, i32::MAX - 16, 1 << 20) };
        panic!("the host checksummed memory this plugin does not have: {crc:#x}");
    }
    #[cfg(not(target_family = "wasm"))]
    unreachable!("only the component attacks its host")
}

/// `checksum-overlap`: spans the host would checksum over and over.
fn checksum_overlap() -> ! {
    #[cfg(target_family = "wasm")]
    {
        let bytes = vec![7u8; 1024];
        let starts = vec![0u32; 20_000];
        let lengths = vec![1024u32; 20_000];
        let crcs = quire_guest::backend_bindings::quire::persistence::checksum::crc32_spans(
            &bytes, &starts, &lengths,
        );
        panic!("the host checksummed {} overlapping spans", crcs.len());
    }
    #[cfg(not(target_family = "wasm"))]
    unreachable!("only the component attacks its host")
}

/// Replaces `link` with a symbolic link to `target`.
fn plant_link(target: &str, link: &str) -> Result<(), PluginError> {
    let _ = std::fs::remove_file(link);
    let (t, l) = (
        std::ffi::CString::new(target).unwrap(),
        std::ffi::CString::new(link).unwrap(),
    );
    if unsafe { symlink(t.as_ptr(), l.as_ptr()) } != 0 {
        return Err(PluginError::InvalidState(format!(
            "could not plant {link} -> {target}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

impl Attack {
    fn parse(name: Option<&str>) -> Result<Self, PluginError> {
        Ok(match name {
            None | Some("none") => Attack::None,
            Some("escape-parent") => Attack::EscapeParent,
            Some("absolute") => Attack::Absolute,
            Some("symlink") => Attack::Symlink,
            Some("loop") => Attack::Loop,
            Some("alloc") => Attack::Alloc,
            Some("trap-mid-append") => Attack::TrapMidAppend,
            Some("huge-batch") => Attack::HugeBatch,
            Some("no-progress") => Attack::NoProgress,
            Some("sleep-open") => Attack::SleepOpen,
            Some("sleep") => Attack::Sleep,
            Some("sleep-loop") => Attack::SleepLoop,
            Some("hoard-handles") => Attack::HoardHandles,
            Some("evil-text") => Attack::EvilText,
            Some("unit-escape") => Attack::UnitEscape,
            Some("unit-absolute") => Attack::UnitAbsolute,
            Some("lying-cursor") => Attack::LyingCursor,
            Some("bad-batch") => Attack::BadBatch,
            Some("scan-beyond") => Attack::ScanBeyond,
            Some("scan-backwards") => Attack::ScanBackwards,
            Some("plant-lock-link") => Attack::PlantLockLink,
            Some("plant-receipt-link") => Attack::PlantReceiptLink,
            Some("tcp-silent") => Attack::TcpSilent,
            Some("checksum-out-of-bounds") => Attack::ChecksumOutOfBounds,
            Some("checksum-overlap") => Attack::ChecksumOverlap,
            Some("tcp-elsewhere") => Attack::TcpElsewhere,
            Some(other) => {
                return Err(PluginError::InvalidConfig(format!(
                    "unknown attack `{other}`"
                )));
            }
        })
    }
}

struct Hostile;

struct HostileStore {
    log: SharedLog,
    /// The address the TCP attacks connect to.
    peer: Option<String>,
    attack: Attack,
    read_only: bool,
    /// Escape attempts and their outcomes, for `stats().details`.
    escapes: Vec<(String, String)>,
}

impl Guest for Hostile {
    type Cursor = HostileCursor;
    type Rewriter = HostileRewriter;
    type Store = HostileStore;

    fn info() -> BackendInfo {
        BackendInfo {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a test backend that attacks its host when asked to".into(),
            path_is_file: false,
            persistent: true,
            integrity: "none: it lies when asked to".into(),
        }
    }
}

/// Tries one escape and records whether it was refused.
fn attempt(
    results: &mut Vec<(String, String)>,
    what: String,
    f: impl FnOnce() -> std::io::Result<String>,
) {
    let outcome = match f() {
        Ok(got) => format!("SUCCEEDED: {got}"),
        Err(e) => format!("refused: {e}"),
    };
    results.push((format!("escape: {what}"), outcome));
}

fn read(results: &mut Vec<(String, String)>, path: &str) {
    attempt(results, format!("read {path}"), || {
        std::fs::read(path).map(|bytes| {
            format!(
                "read {} bytes: {:?}",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            )
        })
    });
}

fn create(results: &mut Vec<(String, String)>, path: &str) {
    attempt(results, format!("create {path}"), || {
        std::fs::write(path, b"escaped from the sandbox\n").map(|()| "wrote the file".to_string())
    });
}

fn write_through(results: &mut Vec<(String, String)>, path: &str) {
    attempt(results, format!("write through {path}"), || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        file.write_all(b"overwritten by the plugin\n")?;
        Ok("appended to the target".to_string())
    });
}

fn escapes(attack: Attack, name: &str) -> Vec<(String, String)> {
    let mut results = Vec::new();
    match attack {
        Attack::EscapeParent => {
            read(&mut results, "/data/../secret.txt");
            read(&mut results, "../secret.txt");
            read(&mut results, "/data/../../../../secret.txt");
            create(&mut results, &format!("/data/../{name}"));
            create(&mut results, &format!("../{name}"));
        }
        Attack::Absolute => {
            read(&mut results, "/etc/passwd");
            read(&mut results, "/secret.txt");
            create(&mut results, &format!("/tmp/{name}"));
            create(&mut results, &format!("/{name}"));
        }
        Attack::Symlink => {
            read(&mut results, "/data/link");
            read(&mut results, "/data/rel-link");
            write_through(&mut results, "/data/link");
            create(&mut results, "/data/link");
            write_through(&mut results, "/data/rel-link");
            read(&mut results, "/data/linkdir/secret.txt");
            create(&mut results, &format!("/data/linkdir/{name}"));
        }
        _ => return results,
    }
    // The control: the grant itself works, so refusals are the sandbox's.
    let control = match std::fs::read("/data/.quire-lock") {
        Ok(bytes) => format!("ok: read {} bytes", bytes.len()),
        Err(e) => format!("failed: {e}"),
    };
    results.push(("control: read /data/.quire-lock".into(), control));
    results
}

fn check_unit(unit: &str) -> Result<(), PluginError> {
    if unit == UNIT {
        Ok(())
    } else {
        Err(PluginError::NoSuchUnit(unit.into()))
    }
}

fn spin_forever() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hoard_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 64 << 20];
        for i in (0..block.len()).step_by(4096) {
            block[i] = (i >> 12) as u8 | 1;
        }
        hoard.push(std::hint::black_box(block));
    }
}

fn trap_mid_append(batch: &[Envelope]) -> ! {
    let half = &batch[..batch.len() / 2];
    let text: String = half.iter().map(|e| format!("{}\n", e.json)).collect();
    std::fs::write(HALF_WRITTEN, text).expect("writing the first half of the batch");
    panic!(
        "hostile plugin: trapping halfway through an append of {} records",
        batch.len()
    );
}

impl GuestStore for HostileStore {
    fn open(config: OpenConfig) -> Result<Store, PluginError> {
        let options = Options::new(
            config.options,
            &["attack", "escape-name", "server", "other"],
        )?;
        let attack = Attack::parse(options.get("attack"))?;
        let name = options
            .get("escape-name")
            .unwrap_or("quire-hostile-escaped.txt");
        if attack == Attack::SleepOpen {
            sleep_an_hour();
        }
        if attack == Attack::PlantLockLink && !config.read_only {
            plant_link("../planted-lock", "/data/.quire-lock")?;
        }
        let escapes = escapes(attack, name);
        if escapes
            .iter()
            .any(|(what, outcome)| what.starts_with("escape: ") && !outcome.starts_with("refused"))
        {
            let list: Vec<String> = escapes
                .iter()
                .map(|(what, outcome)| format!("{what} -> {outcome}"))
                .collect();
            return Err(PluginError::InvalidConfig(format!(
                "attack results: {}",
                list.join("; ")
            )));
        }
        let peer = match attack {
            Attack::TcpSilent => options.get("server"),
            Attack::TcpElsewhere => options.get("other"),
            _ => None,
        }
        .map(str::to_string);
        Ok(Store::new(HostileStore {
            log: SharedLog::default(),
            peer,
            attack,
            read_only: config.read_only,
            escapes,
        }))
    }

    fn append(&self, batch: RecordBatch, _level: SyncLevel) -> Result<u64, PluginError> {
        let batch = batch::envelopes(&batch)?;
        if self.read_only {
            return Err(PluginError::InvalidState(
                "store was opened read-only".into(),
            ));
        }
        if batch.iter().any(|e| e.kind == ATTACK_KIND) {
            match self.attack {
                Attack::Loop => spin_forever(),
                Attack::Alloc => hoard_memory(),
                Attack::TrapMidAppend => trap_mid_append(&batch),
                Attack::Sleep => sleep_an_hour(),
                Attack::SleepLoop => loop {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                },
                Attack::HoardHandles => {
                    let mut hoard = Vec::new();
                    while let Ok(dir) = std::fs::File::open("/data") {
                        hoard.push(dir);
                    }
                    return Err(PluginError::InvalidState(format!(
                        "hoarded {} handles before being refused",
                        hoard.len()
                    )));
                }
                Attack::EvilText => {
                    return Err(PluginError::InvalidState(format!("refused: {EVIL}")));
                }
                Attack::ChecksumOutOfBounds => checksum_out_of_bounds(),
                Attack::ChecksumOverlap => checksum_overlap(),
                Attack::TcpSilent | Attack::TcpElsewhere => {
                    use std::io::Read;
                    let peer = self.peer.clone().unwrap_or_default();
                    let mut stream = std::net::TcpStream::connect(peer.as_str())
                        .map_err(|e| PluginError::InvalidState(format!("connect {peer}: {e}")))?;
                    if self.attack == Attack::TcpElsewhere {
                        return Err(PluginError::InvalidState(format!("CONNECTED to {peer}")));
                    }
                    let mut byte = [0u8; 1];
                    let _ = stream.read_exact(&mut byte);
                }
                _ => {}
            }
        }
        if self.attack == Attack::EvilText && batch.iter().any(|e| e.kind == "panic") {
            panic!("hostile panic {EVIL}");
        }
        let added = memlog::check_batch(&batch)?;
        self.log.borrow_mut().extend(batch);
        Ok(added)
    }

    fn sync(&self, _level: SyncLevel) -> Result<(), PluginError> {
        Ok(())
    }

    fn units(&self) -> Result<Vec<UnitInfo>, PluginError> {
        let id = match self.attack {
            Attack::UnitEscape => "../../../../etc/passwd",
            Attack::UnitAbsolute => "/etc/passwd",
            _ => UNIT,
        };
        Ok(vec![self.log.borrow().unit_info(id, "memory")])
    }

    fn check_layout(&self) -> Result<Vec<Anomaly>, PluginError> {
        Ok(Vec::new())
    }

    fn validate(&self, unit: String, offset: u64, _budget: u64) -> Result<ScanChunk, PluginError> {
        check_unit(&unit)?;
        let log = self.log.borrow();
        let (next_offset, done) = match self.attack {
            Attack::NoProgress => (offset, false),
            Attack::ScanBeyond => (log.bytes() + 1000, true),
            Attack::ScanBackwards if offset == 0 => (1.min(log.bytes()), false),
            Attack::ScanBackwards => (0, false),
            _ => return Ok(self.scan_chunk_with_text(&log)),
        };
        Ok(ScanChunk {
            anomalies: Vec::new(),
            records: 0,
            next_offset,
            done,
        })
    }

    fn read(
        &self,
        unit: String,
        filter: ReadFilter,
        order: ReadOrder,
    ) -> Result<Cursor, PluginError> {
        check_unit(&unit)?;
        let flood =
            self.attack == Attack::HugeBatch && filter.kinds.iter().any(|k| k == ATTACK_KIND);
        // `lying-cursor` reads everything, whatever the filter asked.
        let filter = if self.attack == Attack::LyingCursor {
            ReadFilter {
                kinds: Vec::new(),
                stores: Vec::new(),
                since: None,
                until: None,
            }
        } else {
            filter
        };
        Ok(Cursor::new(HostileCursor {
            inner: MemCursor::new(self.log.clone(), filter, order),
            flood,
            bad: self.attack == Attack::BadBatch,
        }))
    }

    fn rewrite(&self, unit: String) -> Result<Rewriter, PluginError> {
        check_unit(&unit)?;
        Ok(Rewriter::new(HostileRewriter(MemRewrite::new(
            self.log.clone(),
        ))))
    }

    fn drop_unit(&self, unit: String, _receipt: Option<Receipt>) -> Result<(), PluginError> {
        check_unit(&unit)?;
        Err(PluginError::InvalidState(
            "`hostile` is the live unit and cannot be dropped".into(),
        ))
    }

    fn quarantine(&self, unit: String, dir: String, name: String) -> Result<u64, PluginError> {
        check_unit(&unit)?;
        let text = self.log.borrow().to_ndjson();
        std::fs::write(Path::new(&dir).join(&name), &text).ctx("write", &name)?;
        if self.attack == Attack::PlantReceiptLink {
            let link = format!("{dir}/{name}.receipt.json");
            plant_link("../planted-receipt", &link)?;
        }
        Ok(text.len() as u64)
    }

    fn seal(&self) -> Result<(), PluginError> {
        Err(PluginError::Unsupported(
            "seal: the hostile backend has one live unit".into(),
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
        Ok(vec![self.log.borrow().durability("hostile", UNIT)])
    }

    fn stats(&self) -> Result<StorageStats, PluginError> {
        let units = self.units()?;
        let log = self.log.borrow();
        let mut details = vec![("records".to_string(), log.len().to_string())];
        details.extend(self.escapes.iter().cloned());
        if self.attack == Attack::EvilText {
            details.push((format!("key{EVIL}"), format!("value{EVIL}")));
        }
        Ok(StorageStats {
            total_bytes: log.bytes(),
            units,
            details,
        })
    }
}

impl HostileStore {
    /// The usual scan, plus (for `evil-text` and `plant-receipt-link`) one
    /// anomaly, whose detail is an escape sequence.
    fn scan_chunk_with_text(&self, log: &memlog::MemLog) -> ScanChunk {
        let mut chunk = log.scan_chunk();
        if matches!(self.attack, Attack::EvilText | Attack::PlantReceiptLink) {
            chunk.anomalies.push(Anomaly {
                kind: quire_guest::types::AnomalyKind::CorruptedRecord,
                unit: UNIT.into(),
                offset: 0,
                length: log.bytes().min(1),
                line: Some(1),
                detail: format!("damaged {EVIL}"),
            });
        }
        chunk
    }
}

struct HostileCursor {
    inner: MemCursor,
    /// `huge-batch`: answer every `next` with far more than was asked for.
    flood: bool,
    /// `bad-batch`: lengths that do not add up.
    bad: bool,
}

impl GuestCursor for HostileCursor {
    fn next(&self, max_records: u32, max_bytes: u32) -> Result<StoredBatch, PluginError> {
        if self.flood {
            let mut out = BatchBuilder::default();
            for i in 0..max_records as u64 + 100_000 {
                let json = format!("{{\"kind\":\"attack\",\"timestamp\":{i}}}");
                let record = EnvelopeRef {
                    kind: ATTACK_KIND,
                    store: "default",
                    timestamp: i as f64,
                    json: &json,
                };
                out.push_stored(record, i * 40, 40);
            }
            return Ok(out.finish_stored());
        }
        let mut batch = self.inner.next_batch(max_records, max_bytes);
        if self.bad && !batch.records.json_lens.is_empty() {
            batch.records.json_lens[0] += 1_000_000;
        }
        Ok(batch)
    }
}

struct HostileRewriter(MemRewrite);

impl GuestRewriter for HostileRewriter {
    fn write(&self, batch: RecordBatch) -> Result<(), PluginError> {
        self.0.write(batch::envelopes(&batch)?)
    }

    fn copy(&self, _: Vec<quire_guest::types::RecordPlace>) -> Result<(), PluginError> {
        Err(quire_guest::errors::cannot_copy("hostile test plugin"))
    }

    fn commit(&self) -> Result<u64, PluginError> {
        self.0.commit()
    }

    fn abort(&self) -> Result<(), PluginError> {
        self.0.abort();
        Ok(())
    }
}

// Exported only in the component: a native build (tests) has no wasm exports to link.
#[cfg(target_family = "wasm")]
quire_guest::export_backend!(Hostile);
