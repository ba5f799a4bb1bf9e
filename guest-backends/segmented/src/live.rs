//! The live segment of a store: created with a synced header, appended to,
//! resumed after a crash (torn tail cut, appends continue) and sealed with
//! a manifest.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use quire_guest::atomic::{parent, sync_dir};
use quire_guest::batch::EnvelopeRef;
use quire_guest::errors::IoContext;
use quire_guest::types::{Anomaly, AnomalyKind, PluginError};

use crate::codec::{Codec, CodecSettings, FrameEncoder};
use crate::decode::{Damaged, Entry, SegmentDecoder};
use crate::fault;
use crate::fsutil::ensure_dirs;
use crate::header::SegmentHeader;
use crate::layout::{Bucket, BucketMode, SegmentRef};
use crate::manifest::{self, Manifest, SCHEMA};
use quire_guest::checksum::{Crc32, file_crc32};

/// What a full read of a segment found.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// File size when read.
    pub bytes: u64,
    /// The header, if the first frame is one.
    pub header: Option<SegmentHeader>,
    /// Codec from the header, else guessed.
    pub codec: Option<Codec>,
    /// Valid records.
    pub records: u64,
    /// Their oldest and newest timestamps.
    pub min_ts: Option<f64>,
    pub max_ts: Option<f64>,
    /// Everything a scan would report.
    pub damage: Vec<Damaged>,
    /// End of the last frame whose checksum matched.
    pub valid_end: u64,
}

impl Survey {
    /// Damage that is not a torn tail: cutting the file would lose data.
    pub fn middle_damage(&self) -> Option<&Damaged> {
        self.damage.iter().find(|d| !d.tail)
    }

    /// A manifest describing the segment as it is.
    pub fn manifest(&self, seg: &SegmentRef, crc32: u32, fallback: Codec, now: f64) -> Manifest {
        // A segment without records still gets real timestamps, so that
        // retention by age can remove it.
        let created = self.header.as_ref().map_or(now, |h| h.created_at);
        Manifest {
            schema: SCHEMA,
            segment: seg.number,
            store: seg.store.clone(),
            codec: self.codec.unwrap_or(fallback).name().into(),
            bucket: seg.bucket.clone(),
            records: self.records,
            bytes: self.bytes,
            min_timestamp: self.min_ts.unwrap_or(created),
            max_timestamp: self.max_ts.unwrap_or(created),
            crc32,
            sealed_at: now,
            damaged: self.damage.len() as u64,
        }
    }
}

/// Reads a whole segment.
pub fn survey(path: &Path, label: &str) -> Result<Survey, PluginError> {
    let file = File::open(path).ctx("open", label)?;
    let bytes = file.metadata().ctx("stat", label)?.len();
    let mut decoder = SegmentDecoder::new(file, bytes, quire_guest::frames::DEFAULT_CHUNK);
    let mut survey = Survey {
        bytes,
        ..Survey::default()
    };
    while let Some(entry) = decoder.next_entry().ctx("read", label)? {
        match entry {
            Entry::Header(_) => {}
            Entry::Record(r) => {
                survey.records += 1;
                survey.min_ts = Some(survey.min_ts.map_or(r.timestamp, |m| m.min(r.timestamp)));
                survey.max_ts = Some(survey.max_ts.map_or(r.timestamp, |m| m.max(r.timestamp)));
            }
            Entry::Damage(d) => survey.damage.push(d),
        }
    }
    survey.header = decoder.header().cloned();
    survey.codec = decoder.codec();
    survey.valid_end = decoder.valid_end();
    Ok(survey)
}

/// An anomaly for the open report or a scan.
pub use quire_guest::anomalies::at as anomaly;

/// The segment a store appends to.
pub struct LiveSegment {
    /// Where it is.
    pub seg: SegmentRef,
    /// Its unit id.
    pub id: String,
    path: PathBuf,
    /// Its bucket.
    pub bucket: Bucket,
    /// Its codec (from its header).
    pub codec: Codec,
    created_at: f64,
    file: File,
    /// Bytes in the file.
    pub bytes: u64,
    crc: Crc32,
    /// Records in the file and in the compact block.
    pub records: u64,
    /// Oldest and newest timestamps of those records.
    pub min_ts: Option<f64>,
    pub max_ts: Option<f64>,
    encoder: FrameEncoder,
    /// Records written to the OS since the last sync.
    pub unsynced: u64,
    dirty: bool,
}

/// Records a live segment held in memory, copied so that they can be held
/// again after the segment is resumed from disk.
pub struct Held {
    lines: Vec<u8>,
    /// How many.
    pub records: u64,
    /// Oldest and newest timestamps of the whole segment when copied.
    min_ts: Option<f64>,
    max_ts: Option<f64>,
}

/// The outcome of resuming a live segment at open.
pub enum Resumed {
    /// Appends continue in it.
    Live(LiveSegment, Vec<Anomaly>),
    /// It was damaged in the middle and was sealed as it is.
    Sealed(Manifest, Vec<Anomaly>),
}

impl LiveSegment {
    /// Creates segment `seg`: header frame written, file and directory synced.
    pub fn create(
        data_root: &Path,
        seg: SegmentRef,
        bucket: Bucket,
        codec: Codec,
        settings: CodecSettings,
        now: f64,
    ) -> Result<Self, PluginError> {
        ensure_dirs(data_root, &seg.dir())?;
        let id = seg.unit_id();
        let path = data_root.join(&id);
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .ctx("create", &id)?;
        let header = SegmentHeader::new(codec, &seg.store, seg.number, now);
        let mut encoder = FrameEncoder::new(codec, settings);
        encoder
            .raw_frame(&header.to_body())
            .map_err(PluginError::InvalidState)?;
        fault::write_all(&mut file, encoder.out()).ctx("write", &id)?;
        fault::sync_all(&file).ctx("sync", &id)?;
        sync_dir(parent(&path))?;
        let mut crc = Crc32::new();
        crc.update(encoder.out());
        let bytes = encoder.out().len() as u64;
        encoder.clear_out();
        Ok(Self {
            seg,
            id,
            path,
            bucket,
            codec,
            created_at: now,
            file,
            bytes,
            crc,
            records: 0,
            min_ts: None,
            max_ts: None,
            encoder,
            unsynced: 0,
            dirty: false,
        })
    }

    /// Resumes segment `seg` after a restart: a torn tail is cut (and
    /// reported) and appends continue behind the last valid frame; a
    /// segment damaged in the middle is sealed as it is instead.
    pub fn resume(
        data_root: &Path,
        seg: SegmentRef,
        default_codec: Codec,
        settings: CodecSettings,
        now: f64,
    ) -> Result<Resumed, PluginError> {
        let id = seg.unit_id();
        let path = data_root.join(&id);
        let found = survey(&path, &id)?;
        if let Some(d) = found.middle_damage() {
            let (_, crc) = file_crc32(&path, &id)?;
            let sealed = found.manifest(&seg, crc, default_codec, now);
            manifest::write(&manifest::path_for(&path), &sealed)?;
            let note = anomaly(
                d.kind,
                &id,
                d.offset,
                d.length,
                format!(
                    "live segment is damaged before its end ({}); sealed as it is with {} valid records, appends go to a new segment",
                    d.detail, found.records
                ),
            );
            return Ok(Resumed::Sealed(sealed, vec![note]));
        }
        let mut report: Vec<Anomaly> = found
            .damage
            .iter()
            .map(|d| {
                anomaly(
                    d.kind,
                    &id,
                    d.offset,
                    d.length,
                    format!("cut from the live segment before resuming it: {}", d.detail),
                )
            })
            .collect();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .ctx("open", &id)?;
        if found.valid_end < found.bytes {
            file.set_len(found.valid_end).ctx("truncate", &id)?;
            fault::sync_all(&file).ctx("sync", &id)?;
        }
        let (codec, created_at) = match &found.header {
            Some(h) => (h.codec(), h.created_at),
            None => {
                // Nothing valid at all (created, then the header write was
                // lost): begin again with a header.
                let header = SegmentHeader::new(default_codec, &seg.store, seg.number, now);
                let mut frame = Vec::new();
                quire_guest::frames::encode(&header.to_body(), &mut frame)
                    .map_err(|e| PluginError::InvalidState(e.to_string()))?;
                fault::write_all(&mut file, &frame).ctx("write", &id)?;
                fault::sync_all(&file).ctx("sync", &id)?;
                if found.bytes == 0 {
                    report.push(anomaly(
                        AnomalyKind::TruncatedTail,
                        &id,
                        0,
                        0,
                        "live segment was empty (created, header never written); header written"
                            .into(),
                    ));
                }
                (default_codec, now)
            }
        };
        let (bytes, crc_value) = file_crc32(&path, &id)?;
        // Resume the running checksum from the value of the kept prefix.
        let crc = Crc32::resume(crc_value);
        let bucket = Bucket::parse(&seg.bucket).ok_or_else(|| {
            PluginError::InvalidState(format!("`{id}` is in a directory that names no bucket"))
        })?;
        Ok(Resumed::Live(
            Self {
                seg,
                id,
                path,
                bucket,
                codec,
                created_at,
                file,
                bytes,
                crc,
                records: found.records,
                min_ts: found.min_ts,
                max_ts: found.max_ts,
                // A fresh encoder: a compact segment continues in a new
                // deflate stream, the old compressor state died with the process.
                encoder: FrameEncoder::new(codec, settings),
                unsynced: 0,
                dirty: false,
            },
            report,
        ))
    }

    /// Adds a record (its JSON and timestamp); tests build segments so.
    #[cfg(test)]
    pub fn push(&mut self, json: &str, timestamp: f64) -> Result<(), PluginError> {
        let record = EnvelopeRef {
            kind: "",
            store: "",
            timestamp,
            json,
        };
        self.push_run(&[record], None)
    }

    /// Adds records (with finite timestamps) in order, with their CRC-32s
    /// index for index when known.
    pub fn push_run(
        &mut self,
        records: &[EnvelopeRef<'_>],
        crcs: Option<&[u32]>,
    ) -> Result<(), PluginError> {
        self.encoder
            .push_run(records, crcs)
            .map_err(|e| PluginError::InvalidState(format!("encode for `{}`: {e}", self.id)))?;
        self.records += records.len() as u64;
        // Comparisons: wasm's `f64::min` is a call into the C library.
        let mut min = self.min_ts.unwrap_or(f64::INFINITY);
        let mut max = self.max_ts.unwrap_or(f64::NEG_INFINITY);
        for ts in records.iter().map(|r| r.timestamp) {
            if ts < min {
                min = ts;
            }
            if ts > max {
                max = ts;
            }
        }
        if !records.is_empty() {
            self.min_ts = Some(min);
            self.max_ts = Some(max);
        }
        Ok(())
    }

    /// How many of `records` (the first one admitted already) the segment
    /// takes in one run: each later record admitted by the bucket, none
    /// pushed once the segment holds `max_bytes`, and none once
    /// `write_bytes` wait to be written. One for a compact block, whose
    /// size is not known ahead.
    pub fn run_len(
        &self,
        records: &[EnvelopeRef<'_>],
        mode: BucketMode,
        max_bytes: u64,
        write_bytes: u64,
    ) -> usize {
        let mut projected = self.projected_bytes();
        for (k, record) in records.iter().enumerate() {
            if k > 0
                && (projected >= max_bytes
                    || projected - self.bytes >= write_bytes
                    || !self.bucket.admits(mode, record.timestamp))
            {
                return k;
            }
            let Some(frame) = self.encoder.frame_bytes(record.json.len()) else {
                return 1;
            };
            projected += frame;
        }
        records.len()
    }

    /// Moves the compact block (if any) into a frame.
    pub fn flush_block(&mut self) -> Result<(), PluginError> {
        self.encoder
            .flush_block()
            .map_err(|e| PluginError::InvalidState(format!("encode for `{}`: {e}", self.id)))
    }

    /// Bytes the segment will have once what is encoded is written.
    pub fn projected_bytes(&self) -> u64 {
        self.bytes + self.encoder.out().len() as u64
    }

    /// Records held in memory (the compact block).
    pub fn buffered(&self) -> u64 {
        self.encoder.buffered()
    }

    /// A copy of the records held in memory, to hold again after the
    /// segment is resumed from disk; `None` when there are none.
    pub fn held(&self) -> Option<Held> {
        let records = self.encoder.buffered();
        (records > 0).then(|| Held {
            lines: self.encoder.held().to_vec(),
            records,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
        })
    }

    /// Holds records again that an earlier [`LiveSegment::held`] of this
    /// segment copied, in memory as they were.
    pub fn hold(&mut self, held: &Held) {
        self.encoder.hold(&held.lines, held.records);
        self.records += held.records;
        // Taken before: the held records' timestamps are within these.
        self.min_ts = held.min_ts;
        self.max_ts = held.max_ts;
    }

    /// Writes encoded frames to the file. Returns the bytes written.
    pub fn write_out(&mut self) -> Result<u64, PluginError> {
        let out = self.encoder.out();
        if out.is_empty() {
            return Ok(0);
        }
        fault::write_all(&mut self.file, out).ctx("write", &self.id)?;
        self.crc.update(out);
        let n = out.len() as u64;
        self.bytes += n;
        self.unsynced += self.encoder.clear_out();
        self.dirty = true;
        Ok(n)
    }

    /// `fdatasync`s what was written.
    pub fn sync(&mut self) -> Result<(), PluginError> {
        if self.dirty {
            fault::sync_data(&self.file).ctx("sync", &self.id)?;
            self.dirty = false;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Seals: block flushed, frames written, file synced, manifest written
    /// atomically (its directory synced). Returns the manifest and the bytes
    /// written to the segment on the way.
    pub fn seal(mut self, now: f64) -> Result<(Manifest, u64), PluginError> {
        self.flush_block()?;
        let written = self.write_out()?;
        fault::sync_data(&self.file).ctx("sync", &self.id)?;
        let sealed = Manifest {
            schema: SCHEMA,
            segment: self.seg.number,
            store: self.seg.store.clone(),
            codec: self.codec.name().into(),
            bucket: self.seg.bucket.clone(),
            records: self.records,
            bytes: self.bytes,
            min_timestamp: self.min_ts.unwrap_or(self.created_at),
            max_timestamp: self.max_ts.unwrap_or(self.created_at),
            crc32: self.crc.value(),
            sealed_at: now,
            damaged: 0,
        };
        manifest::write(&manifest::path_for(&self.path), &sealed)?;
        Ok((sealed, written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::BucketMode;
    use std::io::Write;

    fn settings() -> CodecSettings {
        CodecSettings {
            block_records: 4,
            stream_bytes: 1 << 20,
            compress_level: 6,
        }
    }

    fn seg() -> SegmentRef {
        SegmentRef {
            store: "gps".into(),
            bucket: "flat".into(),
            number: 1,
        }
    }

    fn rec(i: u32) -> String {
        format!(r#"{{"kind":"metric","store":"gps","timestamp":{i}.25}}"#)
    }

    fn open(root: &Path) -> (LiveSegment, Vec<Anomaly>) {
        match LiveSegment::resume(root, seg(), Codec::JsonCrc32, settings(), 5.0).unwrap() {
            Resumed::Live(l, r) => (l, r),
            Resumed::Sealed(..) => panic!("sealed"),
        }
    }

    #[test]
    fn resume_cuts_a_torn_tail_and_keeps_appending_in_the_segments_codec() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let bucket = Bucket::of(BucketMode::Flat, 0.0);
        let mut live =
            LiveSegment::create(root, seg(), bucket, Codec::Compact, settings(), 1.0).unwrap();
        for i in 0..10 {
            live.push(&rec(i), f64::from(i) + 0.25).unwrap();
        }
        live.flush_block().unwrap();
        live.write_out().unwrap();
        live.sync().unwrap();
        let good = live.bytes;
        drop(live);
        let path = root.join(seg().unit_id());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 1, 0, 1, 2, 3]).unwrap();
        drop(f);
        // Configuration says json-crc32; the segment says compact.
        let (mut live, report) = open(root);
        assert_eq!(live.codec, Codec::Compact);
        assert_eq!(live.records, 10);
        assert_eq!(live.bytes, good);
        assert_eq!(report.len(), 1);
        assert_eq!(
            (report[0].kind, report[0].offset, report[0].length),
            (AnomalyKind::TruncatedTail, good, 7)
        );
        for i in 10..13 {
            live.push(&rec(i), f64::from(i) + 0.25).unwrap();
        }
        let (m, _) = live.seal(9.0).unwrap();
        let s = survey(&path, "x").unwrap();
        assert_eq!((s.records, m.records), (13, 13));
        assert!(s.damage.is_empty());
        assert_eq!(file_crc32(&path, "x").unwrap(), (m.bytes, m.crc32));
        assert_eq!((m.min_timestamp, m.max_timestamp), (0.25, 12.25));
    }

    #[test]
    fn middle_damage_seals_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let bucket = Bucket::of(BucketMode::Flat, 0.0);
        let mut live =
            LiveSegment::create(root, seg(), bucket, Codec::JsonCrc32, settings(), 1.0).unwrap();
        for i in 0..5 {
            live.push(&rec(i), f64::from(i) + 0.25).unwrap();
        }
        live.write_out().unwrap();
        let header_end = live.bytes - 5 * (rec(0).len() as u64 + 8);
        drop(live);
        let path = root.join(seg().unit_id());
        let mut data = std::fs::read(&path).unwrap();
        data[header_end as usize + 10] ^= 1;
        std::fs::write(&path, &data).unwrap();
        match LiveSegment::resume(root, seg(), Codec::JsonCrc32, settings(), 5.0).unwrap() {
            Resumed::Sealed(m, report) => {
                assert_eq!(m.records, 4);
                assert_eq!(m.bytes, data.len() as u64);
                assert_eq!(report[0].kind, AnomalyKind::ChecksumMismatch);
                assert_eq!(report[0].offset, header_end);
            }
            Resumed::Live(..) => panic!("must not resume a segment damaged in the middle"),
        }
        assert!(
            manifest::read(&manifest::path_for(&path))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn an_empty_live_segment_gets_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        ensure_dirs(root, &seg().dir()).unwrap();
        std::fs::write(root.join(seg().unit_id()), b"").unwrap();
        let (live, report) = open(root);
        assert_eq!(live.records, 0);
        assert!(live.bytes > 0);
        assert_eq!(report.len(), 1);
        let s = survey(&root.join(seg().unit_id()), "x").unwrap();
        assert!(s.header.is_some() && s.damage.is_empty());
    }
}
