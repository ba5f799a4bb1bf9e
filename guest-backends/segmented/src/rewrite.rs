//! Building a replacement segment beside the original: same number, same
//! codec, a header frame, then the records given, in a temporary file that
//! the store swaps in on commit.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use quire_guest::atomic::temp_path;
use quire_guest::batch::{Envelope, EnvelopeRef};
use quire_guest::checksum::Crc32;
use quire_guest::errors::{self, IoContext, rejected};
use quire_guest::record;
use quire_guest::types::PluginError;

use crate::codec::{Codec, CodecSettings, FrameEncoder};
use crate::header::SegmentHeader;
use crate::layout::SegmentRef;
use crate::manifest::{Manifest, SCHEMA};

/// Largest record JSON accepted: a compact block holding it still fits a frame.
pub const MAX_RECORD: usize = 32 << 20;

/// Checks one envelope for appending or rewriting.
pub fn check_record(index: usize, envelope: EnvelopeRef<'_>) -> Result<(), PluginError> {
    record::check_appendable(envelope).map_err(|reason| rejected(index, reason))?;
    check_size(index, envelope)
}

/// Checks that a record fits a frame (the rest of [`check_record`], for
/// batches whose lines were checked as a whole).
pub fn check_size(index: usize, envelope: EnvelopeRef<'_>) -> Result<(), PluginError> {
    if envelope.json.len() > MAX_RECORD {
        return Err(rejected(
            index,
            format!(
                "record is {} bytes; at most {MAX_RECORD} fit in a segment frame",
                envelope.json.len()
            ),
        ));
    }
    Ok(())
}

/// A replacement being written.
pub struct RewriteJob {
    /// The segment being replaced.
    pub seg: SegmentRef,
    /// Its unit id.
    pub id: String,
    /// Its path.
    pub path: PathBuf,
    /// The temporary file's path.
    pub temp: PathBuf,
    file: Option<BufWriter<File>>,
    encoder: FrameEncoder,
    crc: Crc32,
    bytes: u64,
    records: u64,
    min_ts: Option<f64>,
    max_ts: Option<f64>,
    created_at: f64,
    /// For the live segment: its record count when the rewrite began, so
    /// that appends in between are noticed instead of lost.
    pub live_records: Option<u64>,
}

impl RewriteJob {
    /// Creates the temporary file and its header frame.
    pub fn begin(
        data_root: &Path,
        seg: SegmentRef,
        codec: Codec,
        settings: CodecSettings,
        created_at: f64,
        live_records: Option<u64>,
    ) -> Result<Self, PluginError> {
        let id = seg.unit_id();
        let path = data_root.join(&id);
        let temp = temp_path(&path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .ctx(
                "create",
                &format!("{id}{}", quire_guest::atomic::TEMP_SUFFIX),
            )?;
        let mut encoder = FrameEncoder::new(codec, settings);
        let header = SegmentHeader::new(codec, &seg.store, seg.number, created_at);
        encoder
            .raw_frame(&header.to_body())
            .map_err(PluginError::InvalidState)?;
        let mut job = Self {
            seg,
            id,
            path,
            temp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            encoder,
            crc: Crc32::new(),
            bytes: 0,
            records: 0,
            min_ts: None,
            max_ts: None,
            created_at,
            live_records,
        };
        job.write_out()?;
        Ok(job)
    }

    fn temp_label(&self) -> String {
        self.temp.display().to_string()
    }

    fn write_out(&mut self) -> Result<(), PluginError> {
        let label = self.temp_label();
        let file = self.file.as_mut().ok_or_else(closed)?;
        let out = self.encoder.out();
        file.write_all(out).ctx("write", &label)?;
        self.crc.update(out);
        self.bytes += out.len() as u64;
        self.encoder.clear_out();
        Ok(())
    }

    /// Adds records, in order, verbatim.
    pub fn write(&mut self, batch: &[Envelope]) -> Result<(), PluginError> {
        if self.file.is_none() {
            return Err(closed());
        }
        for (index, envelope) in batch.iter().enumerate() {
            check_record(index, envelope.into())?;
        }
        for envelope in batch {
            self.encoder
                .push(envelope.json.as_bytes())
                .map_err(PluginError::InvalidState)?;
            self.records += 1;
            let ts = envelope.timestamp;
            self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
            self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        }
        self.write_out()
    }

    /// Writes everything and syncs the temporary file. Returns the manifest
    /// of the replacement.
    pub fn finish(&mut self, now: f64) -> Result<Manifest, PluginError> {
        self.encoder
            .flush_block()
            .map_err(PluginError::InvalidState)?;
        self.write_out()?;
        let label = self.temp_label();
        let file = self.file.take().ok_or_else(closed)?;
        let file = file
            .into_inner()
            .map_err(|e| errors::io("write", &label, e.into_error()))?;
        file.sync_all().ctx("sync", &label)?;
        Ok(Manifest {
            schema: SCHEMA,
            segment: self.seg.number,
            store: self.seg.store.clone(),
            codec: self.encoder.codec().name().into(),
            bucket: self.seg.bucket.clone(),
            records: self.records,
            bytes: self.bytes,
            min_timestamp: self.min_ts.unwrap_or(self.created_at),
            max_timestamp: self.max_ts.unwrap_or(self.created_at),
            crc32: self.crc.value(),
            sealed_at: now,
            damaged: 0,
        })
    }

    /// Removes the temporary file; the original stays as it was.
    pub fn abort(&mut self) -> Result<(), PluginError> {
        self.file = None;
        match fs::remove_file(&self.temp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(errors::io("remove", &self.temp_label(), e)),
        }
    }

    /// Marks the job as done after its temporary file was renamed into place.
    pub fn committed(&mut self) {
        self.file = None;
        self.temp = PathBuf::new();
    }
}

impl Drop for RewriteJob {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = self.abort();
        }
    }
}

fn closed() -> PluginError {
    PluginError::InvalidState("the rewrite was already committed or aborted".into())
}
