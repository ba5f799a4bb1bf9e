//! Units made of NDJSON lines, as the file backends share them: encoding a
//! batch into lines, validating a unit in budgeted chunks, and a cursor over
//! the valid records of one file.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::batch::{BatchBuilder, EnvelopeRef};
use crate::errors::{IoContext, rejected};
use crate::lines::LineReader;
use crate::record::{self, Verdict};
use crate::types::{
    Anomaly, PluginError, ReadFilter, RecordBatch, RecordPlace, ScanChunk, StoredBatch,
};
use quire_records::layout;

/// Read size for validation: large sequential reads.
pub const SCAN_CHUNK: usize = 1 << 20;

/// Read size for cursors. Smaller than [`SCAN_CHUNK`] because a host merging
/// many units keeps one cursor per unit open at the same time.
pub const CURSOR_CHUNK: usize = 64 << 10;

/// Checks every record of a batch for a line format; nothing is encoded
/// unless all pass. The rejection names the record's index in the batch.
pub fn check_batch<'a>(
    batch: impl IntoIterator<Item = EnvelopeRef<'a>>,
) -> Result<(), PluginError> {
    for (index, envelope) in batch.into_iter().enumerate() {
        record::check_appendable(envelope).map_err(|reason| rejected(index, reason))?;
    }
    Ok(())
}

/// Appends each record's JSON and a newline to `buf`. The records must
/// have passed [`check_batch`].
pub fn encode_into<'a>(envelopes: impl IntoIterator<Item = EnvelopeRef<'a>>, buf: &mut Vec<u8>) {
    for envelope in envelopes {
        buf.extend_from_slice(envelope.json.as_bytes());
        buf.push(b'\n');
    }
}

/// A batch's text, once every record in it is checked for a line format:
/// the batch is already laid out as NDJSON lines. Checked on bytes, in one
/// SIMD pass for line breaks plus a constant per record: each record ends
/// where its length says with the one newline it may hold, is an object,
/// and has a finite timestamp. (The text is not re-validated as UTF-8: the
/// host builds it from strings, and a line backend writes it as given.)
pub fn checked_text(batch: &RecordBatch) -> Result<&[u8], PluginError> {
    let text = &batch.text[..];
    if cfg!(feature = "bench-no-check") {
        return Ok(text);
    }
    crate::batch::check_columns(batch)?;
    let mut objects = true;
    let lengths = batch.json_lens.iter().copied();
    layout::walk(text, lengths, |n, _, json| {
        objects &= record::check_object(json, batch.timestamps[n]).is_ok();
        Ok(())
    })
    .map_err(|(n, reason)| rejected(n, reason))?;
    if !(objects && one_line_each(batch)) {
        return Err(first_refusal(&crate::batch::records(batch)?));
    }
    Ok(text)
}

/// The records of a batch (see [`crate::batch::records`]), once every one
/// is checked for a line format as [`checked_text`] checks them: for line
/// backends that handle records one by one.
pub fn checked_records(batch: &RecordBatch) -> Result<Vec<EnvelopeRef<'_>>, PluginError> {
    let records = crate::batch::records(batch)?;
    let objects = records
        .iter()
        .all(|r| record::check_object(r.json.as_bytes(), r.timestamp).is_ok());
    if !(objects && one_line_each(batch)) {
        return Err(first_refusal(&records));
    }
    Ok(records)
}

/// Whether the batch's text has exactly one line break per record (each
/// record's own newline), and no carriage return: one SIMD pass.
fn one_line_each(batch: &RecordBatch) -> bool {
    let breaks = layout::line_breaks(&batch.text);
    !breaks.carriage_return && breaks.newlines == crate::batch::len(batch)
}

/// The refusal naming the first record that fails [`check_batch`], once the
/// whole-batch checks above said one does (they do not say which).
fn first_refusal(records: &[EnvelopeRef<'_>]) -> PluginError {
    match check_batch(records.iter().copied()) {
        Err(e) => e,
        Ok(()) => rejected(0, "record JSON contains a line break"),
    }
}

/// True when the file is non-empty and its last byte is not a newline: a
/// torn append. New records must then start on a fresh line.
pub fn ends_mid_line(file: &mut File, label: &str) -> Result<bool, PluginError> {
    let len = file.metadata().ctx("stat", label)?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1)).ctx("seek", label)?;
    file.read_exact(&mut last).ctx("read", label)?;
    Ok(last[0] != b'\n')
}

/// Opens `path` positioned at `offset`, reading `chunk` bytes at a time;
/// lines are numbered from `first_line`.
pub fn open_lines(
    path: &Path,
    unit: &str,
    offset: u64,
    first_line: u64,
    chunk: usize,
) -> Result<LineReader<File>, PluginError> {
    let mut file = File::open(path).ctx("open", unit)?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset)).ctx("seek", unit)?;
    }
    Ok(LineReader::with_chunk(file, offset, first_line, chunk))
}

/// Totals of a unit's validation from its start up to `offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Where the next chunk starts.
    pub offset: u64,
    /// Number of the line that starts there (1-based).
    pub line: u64,
    /// Valid records before `offset`.
    pub records: u64,
    /// Anomalies before `offset`.
    pub anomalies: u64,
}

impl Tally {
    fn start() -> Self {
        Self {
            offset: 0,
            line: 1,
            records: 0,
            anomalies: 0,
        }
    }
}

/// Validates units chunk by chunk. The host resumes a unit at the offset the
/// previous chunk returned; the validator remembers how many lines, records
/// and anomalies came before it, so line numbers stay exact across chunks.
#[derive(Default)]
pub struct Validator {
    resume: RefCell<Option<(String, Tally)>>,
}

impl Validator {
    /// A validator that remembers nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the lines of `path` (named `unit` in anomalies) from
    /// `offset`, stopping at the first line boundary at least `budget` bytes
    /// on. Returns the chunk and the unit's totals up to its end.
    pub fn validate(
        &self,
        path: &Path,
        unit: &str,
        offset: u64,
        budget: u64,
    ) -> Result<(ScanChunk, Tally), PluginError> {
        let before = self.tally_before(path, unit, offset)?;
        let mut lines = open_lines(path, unit, offset, before.line, SCAN_CHUNK)?;
        let (chunk, after) = validate_lines(&mut lines, unit, budget.max(1), before)?;
        *self.resume.borrow_mut() = Some((unit.to_string(), after));
        Ok((chunk, after))
    }

    /// Totals at `offset`: remembered from the previous chunk, or counted
    /// again from the start when the host skipped ahead.
    fn tally_before(&self, path: &Path, unit: &str, offset: u64) -> Result<Tally, PluginError> {
        if offset == 0 {
            return Ok(Tally::start());
        }
        if let Some((remembered, tally)) = self.resume.borrow().as_ref()
            && remembered == unit
            && tally.offset == offset
        {
            return Ok(*tally);
        }
        let mut lines = open_lines(path, unit, 0, 1, SCAN_CHUNK)?;
        let (_, mut tally) = validate_lines(&mut lines, unit, offset, Tally::start())?;
        // An offset inside a line: continue there, numbered as that line.
        if tally.offset > offset {
            tally.line = tally.line.saturating_sub(1).max(1);
        }
        tally.offset = offset;
        Ok(tally)
    }
}

/// Classifies lines until `budget` bytes are behind or the data ends.
pub fn validate_lines(
    lines: &mut LineReader<File>,
    unit: &str,
    budget: u64,
    before: Tally,
) -> Result<(ScanChunk, Tally), PluginError> {
    let start = lines.offset();
    let mut anomalies = Vec::new();
    let mut records = 0;
    let done = loop {
        if lines.offset() - start >= budget {
            break false;
        }
        let Some(line) = lines.next_line().ctx("read", unit)? else {
            break true;
        };
        match record::classify_line(&line) {
            Verdict::Record { .. } => records += 1,
            Verdict::Damaged(kind, detail) => anomalies.push(Anomaly {
                kind,
                unit: unit.to_string(),
                offset: line.offset,
                length: line.stored_len(),
                line: Some(line.number),
                detail,
            }),
        }
    };
    let after = Tally {
        offset: lines.offset(),
        line: lines.line_number(),
        records: before.records + records,
        anomalies: before.anomalies + anomalies.len() as u64,
    };
    let chunk = ScanChunk {
        anomalies,
        records,
        next_offset: lines.offset(),
        done,
    };
    Ok((chunk, after))
}

/// Valid records of one file that pass a filter, in file order. Lines a
/// scan would flag are skipped, so read and scan agree.
pub struct LineCursor {
    unit: String,
    filter: ReadFilter,
    /// `None` for a unit with no data (nothing to read).
    lines: RefCell<Option<LineReader<File>>>,
}

impl LineCursor {
    /// A cursor over `path` from its start, reporting records under `unit`.
    pub fn open(
        path: &Path,
        unit: String,
        filter: ReadFilter,
        chunk: usize,
    ) -> Result<Self, PluginError> {
        let lines = open_lines(path, &unit, 0, 1, chunk)?;
        Ok(Self {
            unit,
            filter,
            lines: RefCell::new(Some(lines)),
        })
    }

    /// A cursor that yields nothing: the unit's data is gone.
    pub fn empty(unit: String, filter: ReadFilter) -> Self {
        Self {
            unit,
            filter,
            lines: RefCell::new(None),
        }
    }

    /// The next batch: at most `max_records` records and about `max_bytes`
    /// of JSON; an empty batch at the end.
    pub fn next_records(
        &self,
        max_records: u32,
        max_bytes: u32,
    ) -> Result<StoredBatch, PluginError> {
        let mut out = BatchBuilder::for_cursor(max_records, max_bytes);
        let mut slot = self.lines.borrow_mut();
        let Some(lines) = slot.as_mut() else {
            return Ok(out.finish_stored());
        };
        while !out.full(max_records, max_bytes) {
            let Some(line) = lines.next_line().ctx("read", &self.unit)? else {
                break;
            };
            let Verdict::Record {
                kind,
                store,
                timestamp,
                json,
            } = record::classify_line(&line)
            else {
                continue;
            };
            if record::matches(&self.filter, &kind, &store, timestamp) {
                let record = EnvelopeRef {
                    kind: &kind,
                    store: &store,
                    timestamp,
                    json,
                };
                out.push_stored(record, line.offset, line.stored_len());
            }
        }
        Ok(out.finish_stored())
    }
}

impl LineCursor {
    /// The next at most `max` records, owned (tests read them so).
    pub fn next_owned(&self, max: u32) -> Result<Vec<crate::batch::StoredRecord>, PluginError> {
        Ok(crate::batch::owned(&self.next_records(max, u32::MAX)?))
    }
}

impl crate::backend::GuestCursor for LineCursor {
    fn next(&self, max_records: u32, max_bytes: u32) -> Result<StoredBatch, PluginError> {
        self.next_records(max_records, max_bytes)
    }
}

/// Copies the stored bytes at `places` of the line file `path` (the unit
/// `unit`), in order, to `out`, a megabyte at a time: a compaction keeping
/// records verbatim. Each place must lie inside the file and end a line.
pub fn copy_places(
    path: &Path,
    unit: &str,
    places: &[RecordPlace],
    mut out: impl FnMut(&[u8]) -> Result<(), PluginError>,
) -> Result<(), PluginError> {
    const PIECE: u64 = 1 << 20;
    let mut file = File::open(path).ctx("open", unit)?;
    let len = file.metadata().ctx("stat", unit)?.len();
    let mut buf = Vec::new();
    for place in places {
        let end = place.offset.checked_add(place.stored_bytes);
        if end.is_none_or(|end| end > len) {
            return Err(PluginError::InvalidState(format!(
                "cannot copy {} bytes at offset {} of `{unit}`: it holds {len} bytes",
                place.stored_bytes, place.offset
            )));
        }
        file.seek(SeekFrom::Start(place.offset)).ctx("seek", unit)?;
        let mut left = place.stored_bytes;
        while left > 0 {
            let n = left.min(PIECE) as usize;
            buf.resize(n, 0);
            file.read_exact(&mut buf).ctx("read", unit)?;
            left -= n as u64;
            if left == 0 && buf.last() != Some(&b'\n') {
                return Err(PluginError::InvalidState(format!(
                    "the {} bytes at offset {} of `{unit}` do not end a line",
                    place.stored_bytes, place.offset
                )));
            }
            out(&buf)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Envelope;
    use crate::types::AnomalyKind;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("unit.ndjson");
        std::fs::write(&path, text).unwrap();
        path
    }

    const REC: &str = r#"{"kind":"event","timestamp":1}"#;

    #[test]
    fn line_numbers_stay_exact_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{REC}\n{REC}\ngarbage\n{REC}\n\n{REC}\n{{\"kind\":\"ev");
        let path = write(dir.path(), &text);
        let validator = Validator::new();
        let mut offset = 0;
        let mut found = Vec::new();
        let mut records = 0;
        loop {
            let (chunk, _) = validator.validate(&path, "u", offset, 1).unwrap();
            records += chunk.records;
            found.extend(chunk.anomalies.iter().map(|a| (a.kind, a.line, a.offset)));
            offset = chunk.next_offset;
            if chunk.done {
                break;
            }
        }
        assert_eq!(records, 4);
        let line = |n: usize| (REC.len() as u64 + 1) * n as u64;
        assert_eq!(
            found,
            vec![
                (AnomalyKind::CorruptedRecord, Some(3), line(2)),
                (AnomalyKind::BlankLine, Some(5), line(3) + 8),
                (AnomalyKind::TruncatedTail, Some(7), line(4) + 9),
            ]
        );
    }

    #[test]
    fn a_resume_the_validator_did_not_see_counts_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &format!("{REC}\n\n{REC}\nx\n"));
        let offset = REC.len() as u64 + 2;
        let (chunk, tally) = Validator::new()
            .validate(&path, "u", offset, u64::MAX)
            .unwrap();
        assert!(chunk.done);
        assert_eq!(chunk.anomalies[0].line, Some(4));
        assert_eq!(tally.records, 2);
        assert_eq!(tally.anomalies, 2);
    }

    #[test]
    fn cursor_skips_what_scan_flags_and_filters_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{REC}\n[1,2]\n{{\"kind\":\"audit\",\"timestamp\":2}}\n{{\"kind\":\"event\",\"timestamp\":3}}"
        );
        let path = write(dir.path(), &text);
        let filter = ReadFilter {
            kinds: vec!["event".into()],
            stores: vec![],
            since: None,
            until: None,
        };
        let cursor = LineCursor::open(&path, "u".into(), filter, 3).unwrap();
        let batch = cursor.next_records(10, u32::MAX).unwrap();
        let got = crate::batch::stored(&batch);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.stored_bytes, REC.len() as u64 + 1);
        assert!(
            cursor
                .next_records(10, u32::MAX)
                .unwrap()
                .offsets
                .is_empty()
        );
    }

    #[test]
    fn batches_are_checked_whole_before_encoding() {
        let ok = Envelope {
            kind: "event".into(),
            store: "s".into(),
            timestamp: 1.0,
            json: REC.into(),
        };
        let bad = Envelope {
            json: "{\"a\":1".into(),
            ..ok.clone()
        };
        let batch = crate::batch::from_envelopes([&ok]);
        assert_eq!(checked_text(&batch).unwrap(), format!("{REC}\n").as_bytes());
        match checked_text(&crate::batch::from_envelopes([&ok, &bad])) {
            Err(PluginError::InvalidRecord(r)) => assert_eq!(r.index, 1),
            _ => panic!("expected a rejection"),
        }
        for broken in ["{\"a\":\n1}", "{\"a\":\r1}"] {
            let bad = Envelope {
                json: broken.into(),
                ..ok.clone()
            };
            match checked_text(&crate::batch::from_envelopes([&ok, &ok, &bad])) {
                Err(PluginError::InvalidRecord(r)) => {
                    assert_eq!(r.index, 2, "{broken:?}");
                    assert!(r.reason.contains("line break"), "{}", r.reason);
                }
                _ => panic!("expected a rejection of {broken:?}"),
            }
        }
    }
}
