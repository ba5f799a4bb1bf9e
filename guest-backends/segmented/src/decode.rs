//! Reading a segment back: frames, then the header, then records through
//! the segment's own codec. Scan, read, resume and manifest computation all
//! use this one decoder, so they agree on what a record is.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, Read, Seek};

use quire_guest::batch::EnvelopeRef;
use quire_guest::frames::{FrameScanner, Item, ScanRules};
use quire_guest::record::{self, Verdict};
use quire_guest::types::AnomalyKind;

use crate::codec::{Codec, FrameDecoder, plausible_body_start};
use crate::header::SegmentHeader;

/// A valid record and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRecord {
    /// Offset of the frame holding it.
    pub offset: u64,
    /// Its share of that frame's bytes (the whole frame for json-crc32).
    pub stored_bytes: u64,
    /// Kind, store and timestamp as the shared classifier reads them.
    pub kind: String,
    pub store: String,
    pub timestamp: f64,
    /// The JSON, byte for byte.
    pub json: String,
}

/// Damage, located to the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Damaged {
    /// Anomaly kind.
    pub kind: AnomalyKind,
    /// First byte of the damaged region.
    pub offset: u64,
    /// Its length.
    pub length: u64,
    /// What is wrong.
    pub detail: String,
    /// True for frame damage with no valid frame after it (a torn tail).
    pub tail: bool,
}

/// One step of reading a segment.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The header frame at offset 0.
    Header(SegmentHeader),
    /// A valid record.
    Record(DecodedRecord),
    /// Something a scan reports.
    Damage(Damaged),
}

/// Reads one segment from its start, in memory bounded by one frame.
pub struct SegmentDecoder<R> {
    frames: FrameScanner<R>,
    codec: Option<Codec>,
    decoder: Option<FrameDecoder>,
    header: Option<SegmentHeader>,
    queue: VecDeque<Entry>,
    lines: Vec<u8>,
    valid_end: u64,
}

impl<R: Read + Seek> SegmentDecoder<R> {
    /// Decodes `reader` from offset 0 to `end`, reading `chunk` bytes at a time.
    pub fn new(reader: R, end: u64, chunk: usize) -> Self {
        let rules = ScanRules {
            body_start: Some(plausible_body_start),
        };
        Self {
            frames: FrameScanner::with_chunk(reader, 0, end, rules, chunk),
            codec: None,
            decoder: None,
            header: None,
            queue: VecDeque::new(),
            lines: Vec::new(),
            valid_end: 0,
        }
    }

    /// Offset of the next frame. Between frames (see [`Self::between_frames`])
    /// this is where a later pass can continue.
    pub fn offset(&self) -> u64 {
        self.frames.offset()
    }

    /// True when every entry of the frames read so far has been returned.
    pub fn between_frames(&self) -> bool {
        self.queue.is_empty()
    }

    /// Where decoding stops.
    pub fn end(&self) -> u64 {
        self.frames.end()
    }

    /// The segment's codec: from its header, else guessed from a data frame.
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    /// The header, when the first frame was one.
    pub fn header(&self) -> Option<&SegmentHeader> {
        self.header.as_ref()
    }

    /// End of the last frame whose checksum matched.
    pub fn valid_end(&self) -> u64 {
        self.valid_end
    }

    /// The next entry; `None` at the end.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        Ok(self.next_view()?.map(|view| match view {
            View::Record(r) => Entry::Record(r.into_owned()),
            View::Entry(e) => e,
        }))
    }

    /// The next entry, a `json-crc32` record borrowed from the frame that
    /// holds it; `None` at the end.
    pub fn next_view(&mut self) -> io::Result<Option<View<'_>>> {
        Ok(match self.next_frame()? {
            Next::End => None,
            Next::Entry(entry) => Some(View::Entry(entry)),
            Next::Json { offset, len } => Some(self.json_view(offset, len)),
        })
    }

    /// Hands `each` the views that follow, one by one, until it returns
    /// false or the segment ends. Replay reads this way: a view goes to
    /// `each` where it was made, not out of a return slot and into another
    /// (copying it was ~5% of a replay in wasm).
    #[inline]
    pub fn each_view(&mut self, mut each: impl FnMut(View<'_>) -> bool) -> io::Result<()> {
        loop {
            let more = match self.next_frame()? {
                Next::End => return Ok(()),
                Next::Entry(entry) => each(View::Entry(entry)),
                Next::Json { offset, len } => each(self.json_view(offset, len)),
            };
            if !more {
                return Ok(());
            }
        }
    }

    /// The next queued entry or frame.
    fn next_frame(&mut self) -> io::Result<Next> {
        // The common case, straight: a json-crc32 frame the scanner vouches
        // for, nothing queued before it (the header, at offset 0, has set
        // the decoder by then).
        if self.queue.is_empty()
            && matches!(self.decoder, Some(FrameDecoder::Json))
            && let Some((offset, len)) = self.frames.next_vouched()
        {
            self.valid_end = offset + len;
            return Ok(Next::Json { offset, len });
        }
        loop {
            if let Some(entry) = self.queue.pop_front() {
                return Ok(Next::Entry(entry));
            }
            match self.step()? {
                Step::End => return Ok(Next::End),
                Step::Entry(entry) => return Ok(Next::Entry(entry)),
                Step::Queued => {}
                Step::Json { offset, len } => return Ok(Next::Json { offset, len }),
            }
        }
    }

    /// The record of the `json-crc32` frame just read, where it lies.
    #[inline(always)]
    fn json_view(&self, offset: u64, len: u64) -> View<'_> {
        let body = self
            .frames
            .body_at(offset, len)
            .expect("the frame just read is in the window");
        match read_record(body, offset, len) {
            Ok(record) => View::Record(record),
            Err((kind, detail)) => View::Entry(frame_damage(kind, offset, len, detail)),
        }
    }

    /// Reads one frame: an entry to return, entries queued, or a
    /// `json-crc32` frame whose record [`Self::next_view`] reads in place.
    fn step(&mut self) -> io::Result<Step> {
        let Self {
            frames,
            codec,
            decoder,
            header,
            queue,
            lines,
            valid_end,
        } = self;
        let (offset, len, body) = match frames.next_item()? {
            None => return Ok(Step::End),
            Some(Item::Damage(d)) => {
                if let Some(decoder) = decoder {
                    decoder.damaged();
                }
                return Ok(Step::Entry(Entry::Damage(Damaged {
                    kind: d.kind.anomaly_kind(),
                    offset: d.offset,
                    length: d.length,
                    detail: d.detail,
                    tail: d.tail,
                })));
            }
            Some(Item::Frame { offset, len, body }) => (offset, len, body),
        };
        *valid_end = offset + len;
        let damage = |kind, detail: String| frame_damage(kind, offset, len, detail);
        if offset == 0 {
            if let Some(h) = SegmentHeader::parse(body) {
                *codec = Some(h.codec());
                *decoder = Some(FrameDecoder::new(h.codec()));
                *header = Some(h.clone());
                return Ok(Step::Entry(Entry::Header(h)));
            }
            queue.push_back(damage(
                AnomalyKind::CorruptedRecord,
                "the segment does not begin with a header frame".into(),
            ));
        }
        if decoder.is_none() {
            *codec = Codec::infer(body);
            *decoder = codec.map(FrameDecoder::new);
        }
        match decoder {
            None => queue.push_back(damage(
                AnomalyKind::CorruptedRecord,
                "frame of unknown codec (the segment header is missing)".into(),
            )),
            // Read in place, unless entries wait before it.
            Some(FrameDecoder::Json) if queue.is_empty() => return Ok(Step::Json { offset, len }),
            Some(FrameDecoder::Json) => queue.push_back(match read_record(body, offset, len) {
                Ok(record) => Entry::Record(record.into_owned()),
                Err((kind, detail)) => damage(kind, detail),
            }),
            Some(FrameDecoder::Compact(c)) => match c.decode(body, lines) {
                Err(detail) => queue.push_back(damage(AnomalyKind::CorruptedRecord, detail)),
                Ok(()) => split_block(lines, offset, len, queue),
            },
        }
        Ok(Step::Queued)
    }
}

/// What [`SegmentDecoder::step`] did with a frame.
enum Step {
    /// The segment is read.
    End,
    /// An entry to return now.
    Entry(Entry),
    /// Entries went into the queue.
    Queued,
    /// A `json-crc32` frame: its record is read where it lies.
    Json { offset: u64, len: u64 },
}

/// What follows in a segment: an entry, or a `json-crc32` frame to read in
/// place.
enum Next {
    End,
    Entry(Entry),
    Json { offset: u64, len: u64 },
}

/// One step of reading a segment, a record borrowed where it lies.
#[derive(Debug)]
pub enum View<'a> {
    /// A valid record, borrowed from its frame.
    Record(RecordView<'a>),
    /// Anything else (records of compact blocks among them).
    Entry(Entry),
}

/// A valid record as it lies in its frame.
#[derive(Debug)]
pub struct RecordView<'a> {
    /// Offset of the frame holding it.
    pub offset: u64,
    /// Its share of that frame's bytes.
    pub stored_bytes: u64,
    /// Kind and store as the shared classifier reads them.
    pub kind: Cow<'a, str>,
    pub store: Cow<'a, str>,
    /// Its timestamp.
    pub timestamp: f64,
    /// The JSON, byte for byte.
    pub json: &'a str,
}

impl DecodedRecord {
    /// The record, borrowed as it would lie in its frame.
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            offset: self.offset,
            stored_bytes: self.stored_bytes,
            kind: Cow::Borrowed(&self.kind),
            store: Cow::Borrowed(&self.store),
            timestamp: self.timestamp,
            json: &self.json,
        }
    }
}

impl RecordView<'_> {
    /// Kind, store, timestamp and JSON, as a batch takes them.
    pub fn envelope(&self) -> EnvelopeRef<'_> {
        EnvelopeRef {
            kind: &self.kind,
            store: &self.store,
            timestamp: self.timestamp,
            json: self.json,
        }
    }

    /// The record, owned.
    pub fn into_owned(self) -> DecodedRecord {
        DecodedRecord {
            offset: self.offset,
            stored_bytes: self.stored_bytes,
            kind: self.kind.into_owned(),
            store: self.store.into_owned(),
            timestamp: self.timestamp,
            json: self.json.to_string(),
        }
    }
}

/// Damage of `kind` to the `len`-byte frame at `offset`, which the scan
/// reads past.
fn frame_damage(kind: AnomalyKind, offset: u64, len: u64, detail: String) -> Entry {
    Entry::Damage(Damaged {
        kind,
        offset,
        length: len,
        detail,
        tail: false,
    })
}

/// The record `json` holds, as it lies at `offset` taking `stored_bytes`;
/// else the kind of damage and what is wrong.
fn read_record(
    json: &[u8],
    offset: u64,
    stored_bytes: u64,
) -> Result<RecordView<'_>, (AnomalyKind, String)> {
    match record::classify(json, true) {
        Verdict::Record {
            kind,
            store,
            timestamp,
            json,
        } => Ok(RecordView {
            offset,
            stored_bytes,
            kind,
            store,
            timestamp,
            json,
        }),
        Verdict::Damaged(kind, detail) => Err((kind, detail)),
    }
}

/// Turns a decoded compact block into entries. Each record gets a share of
/// the frame's bytes in proportion to its JSON, the shares summing to the
/// frame.
fn split_block(lines: &[u8], offset: u64, frame_len: u64, queue: &mut VecDeque<Entry>) {
    let total = lines.len() as u128;
    let share_end = |upto: usize| (u128::from(frame_len) * upto as u128 / total) as u64;
    let mut start = 0;
    let mut index = 0;
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let end = start + line.len();
        let stored_bytes = share_end(end) - share_end(start);
        index += 1;
        queue.push_back(
            match read_record(&line[..line.len() - 1], offset, stored_bytes) {
                Ok(record) => Entry::Record(record.into_owned()),
                Err((kind, detail)) => frame_damage(
                    kind,
                    offset,
                    frame_len,
                    format!("record {index} of the block: {detail}"),
                ),
            },
        );
        start = end;
    }
}

/// Reads every entry of a segment in memory (tests and small segments).
#[cfg(test)]
pub fn all_entries(data: &[u8]) -> Vec<Entry> {
    let mut d = SegmentDecoder::new(std::io::Cursor::new(data), data.len() as u64, 64);
    let mut out = Vec::new();
    while let Some(e) = d.next_entry().unwrap() {
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{CodecSettings, FrameEncoder};

    fn record(i: u32) -> String {
        format!(
            r#"{{"kind":"event","store":"s","timestamp":{}.5,"n":{i}}}"#,
            1_700_000_000 + i
        )
    }

    fn segment(codec: Codec, n: u32, block: u64) -> Vec<u8> {
        let mut enc = FrameEncoder::new(
            codec,
            CodecSettings {
                block_records: block,
                stream_bytes: 1 << 20,
                compress_level: 6,
            },
        );
        enc.raw_frame(&SegmentHeader::new(codec, "s", 1, 1.0).to_body())
            .unwrap();
        for i in 0..n {
            enc.push(record(i).as_bytes()).unwrap();
        }
        enc.flush_block().unwrap();
        enc.out().to_vec()
    }

    fn records(entries: &[Entry]) -> Vec<&DecodedRecord> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Record(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn both_codecs_read_back_every_record_exactly() {
        for (codec, block) in [
            (Codec::JsonCrc32, 1),
            (Codec::Compact, 1),
            (Codec::Compact, 10),
        ] {
            let data = segment(codec, 25, block);
            let entries = all_entries(&data);
            assert!(matches!(&entries[0], Entry::Header(h) if h.codec() == codec));
            let recs = records(&entries);
            assert_eq!(recs.len(), 25);
            for (i, r) in recs.iter().enumerate() {
                assert_eq!(r.json, record(i as u32));
                assert_eq!(r.kind, "event");
                assert_eq!(r.store, "s");
            }
            // Stored bytes add up to the data frames.
            let header_len = 8 + SegmentHeader::new(codec, "s", 1, 1.0).to_body().len() as u64;
            assert_eq!(
                recs.iter().map(|r| r.stored_bytes).sum::<u64>(),
                data.len() as u64 - header_len
            );
            assert!(entries.iter().all(|e| !matches!(e, Entry::Damage(_))));
        }
    }

    #[test]
    fn damage_in_a_compact_stream_is_reported_per_frame_and_skipped() {
        let mut data = segment(Codec::Compact, 40, 4);
        // Flip a byte in the second data frame's body.
        let entries = all_entries(&data);
        let second = records(&entries)
            .iter()
            .map(|r| r.offset)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .nth(1)
            .unwrap();
        data[second as usize + 6] ^= 0x40;
        let entries = all_entries(&data);
        let damage: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Damage(d) => Some(d),
                _ => None,
            })
            .collect();
        assert_eq!(damage[0].kind, AnomalyKind::ChecksumMismatch);
        assert_eq!(damage[0].offset, second);
        // The rest of the stream cannot be decoded: one anomaly per frame.
        assert!(
            damage[1..]
                .iter()
                .all(|d| d.kind == AnomalyKind::CorruptedRecord)
        );
        assert_eq!(records(&entries).len(), 4);
    }

    #[test]
    fn a_missing_header_is_reported_and_the_codec_guessed() {
        let data = segment(Codec::JsonCrc32, 3, 1);
        let header_len = 8 + SegmentHeader::new(Codec::JsonCrc32, "s", 1, 1.0)
            .to_body()
            .len();
        let mut broken = data.clone();
        broken[10] ^= 1;
        let entries = all_entries(&broken);
        assert!(
            matches!(&entries[0], Entry::Damage(d) if d.kind == AnomalyKind::ChecksumMismatch && d.offset == 0 && d.length == header_len as u64)
        );
        assert_eq!(records(&entries).len(), 3);
        let headless = &data[header_len..];
        let entries = all_entries(headless);
        assert!(
            matches!(&entries[0], Entry::Damage(d) if d.kind == AnomalyKind::CorruptedRecord && d.offset == 0)
        );
        assert_eq!(records(&entries).len(), 3);
    }
}
