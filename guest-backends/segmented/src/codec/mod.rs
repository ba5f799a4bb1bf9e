//! Codecs: how records become frame bodies. A segment names its codec in its
//! header frame; configuration only picks the codec of new segments.

pub mod compact;

use quire_guest::batch::EnvelopeRef;
use quire_guest::frames;

use compact::{CompactDecoder, CompactEncoder};

/// The codecs a segment may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// One frame per record; the body is the record's JSON bytes exactly.
    JsonCrc32,
    /// Blocks of records as JSON lines in a deflate stream, one frame per
    /// block; lossless and resumable after a crash.
    Compact,
}

impl Codec {
    /// Every codec, for messages.
    pub const ALL: [Codec; 2] = [Codec::JsonCrc32, Codec::Compact];

    /// The name used in options, headers and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Codec::JsonCrc32 => "json-crc32",
            Codec::Compact => "compact",
        }
    }

    /// Parses a codec name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Guesses the codec of a data frame when the header is lost: JSON
    /// records start with `{`, compact blocks with a flags byte.
    pub fn infer(body: &[u8]) -> Option<Self> {
        match body.first()? {
            b'{' => Some(Codec::JsonCrc32),
            0 | 1 => Some(Codec::Compact),
            _ => None,
        }
    }
}

/// What a frame body of either codec (or a header) can start with; makes
/// resyncs in damaged data cheap.
pub fn plausible_body_start(b: u8) -> bool {
    b == b'{' || b <= 1
}

/// Settings that shape compact frames.
#[derive(Debug, Clone, Copy)]
pub struct CodecSettings {
    /// Records per compact block (one frame).
    pub block_records: u64,
    /// JSON bytes after which a new deflate stream starts.
    pub stream_bytes: u64,
    /// Deflate level of compact blocks, 1 (fastest) to 9 (smallest).
    pub compress_level: u8,
}

/// Turns records into frames, collected in `out` until the caller writes them.
pub struct FrameEncoder {
    codec: Codec,
    compact: Option<CompactEncoder>,
    out: Vec<u8>,
    out_records: u64,
}

impl FrameEncoder {
    /// An encoder whose first compact block starts a new deflate stream.
    pub fn new(codec: Codec, settings: CodecSettings) -> Self {
        Self {
            codec,
            compact: (codec == Codec::Compact).then(|| {
                CompactEncoder::new(
                    settings.block_records,
                    settings.stream_bytes,
                    settings.compress_level,
                )
            }),
            out: Vec::new(),
            out_records: 0,
        }
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Adds a frame with the given body (the segment header).
    pub fn raw_frame(&mut self, body: &[u8]) -> Result<(), String> {
        frames::encode(body, &mut self.out).map_err(|e| e.to_string())
    }

    /// Adds one record (its JSON, no newline). A compact encoder may hold it
    /// in its block until the block is full or flushed.
    pub fn push(&mut self, json: &[u8]) -> Result<(), String> {
        self.push_with_crc(json, None)
    }

    /// As [`FrameEncoder::push`], with the record's CRC-32 when it is known
    /// already (a `json-crc32` frame uses it; a compact block has its own).
    pub fn push_with_crc(&mut self, json: &[u8], crc: Option<u32>) -> Result<(), String> {
        match &mut self.compact {
            None => {
                match crc {
                    Some(crc) => frames::encode_with_crc(json, crc, &mut self.out),
                    None => frames::encode(json, &mut self.out),
                }
                .map_err(|e| e.to_string())?;
                self.out_records += 1;
            }
            Some(c) => {
                if c.push(json) {
                    self.out_records += c.flush(&mut self.out)?;
                }
            }
        }
        Ok(())
    }

    /// As [`FrameEncoder::push_with_crc`] for each record in turn, `crcs`
    /// index for index; frames of `json-crc32` go into `out` reserved once.
    pub fn push_run(
        &mut self,
        records: &[EnvelopeRef<'_>],
        crcs: Option<&[u32]>,
    ) -> Result<(), String> {
        if self.compact.is_none() {
            let bytes: u64 = records
                .iter()
                .map(|r| frames::frame_len(r.json.len()))
                .sum();
            self.out.reserve(bytes as usize);
        }
        for (k, record) in records.iter().enumerate() {
            self.push_with_crc(record.json.as_bytes(), crcs.map(|c| c[k]))?;
        }
        Ok(())
    }

    /// Bytes a record of `json_len` bytes adds to `out` when pushed: its
    /// frame for `json-crc32`; unknown for a compact block, which goes out
    /// whole when it fills.
    pub fn frame_bytes(&self, json_len: usize) -> Option<u64> {
        self.compact.is_none().then(|| frames::frame_len(json_len))
    }

    /// Moves a held compact block into a frame.
    pub fn flush_block(&mut self) -> Result<(), String> {
        if let Some(c) = &mut self.compact {
            self.out_records += c.flush(&mut self.out)?;
        }
        Ok(())
    }

    /// Records held in the compact block (not in any frame yet).
    pub fn buffered(&self) -> u64 {
        self.compact.as_ref().map_or(0, CompactEncoder::buffered)
    }

    /// The held records as JSON lines (empty for `json-crc32`).
    pub fn held(&self) -> &[u8] {
        self.compact.as_ref().map_or(&[], CompactEncoder::block)
    }

    /// Holds records taken from another encoder's [`FrameEncoder::held`].
    pub fn hold(&mut self, lines: &[u8], records: u64) {
        if let Some(c) = &mut self.compact {
            c.hold(lines, records);
        }
    }

    /// Encoded frames waiting to be written.
    pub fn out(&self) -> &[u8] {
        &self.out
    }

    /// Forgets the frames in `out` once written; returns how many records
    /// they held.
    pub fn clear_out(&mut self) -> u64 {
        self.out.clear();
        std::mem::take(&mut self.out_records)
    }
}

/// Turns frame bodies back into JSON lines.
pub enum FrameDecoder {
    /// The body is one record.
    Json,
    /// The body is a compact block.
    Compact(CompactDecoder),
}

impl FrameDecoder {
    /// A decoder for `codec`.
    pub fn new(codec: Codec) -> Self {
        match codec {
            Codec::JsonCrc32 => FrameDecoder::Json,
            Codec::Compact => FrameDecoder::Compact(CompactDecoder::new()),
        }
    }

    /// Notes damage before the next frame: a compact stream cannot continue
    /// across it.
    pub fn damaged(&mut self) {
        if let FrameDecoder::Compact(c) = self {
            c.invalidate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_inference() {
        for c in Codec::ALL {
            assert_eq!(Codec::parse(c.name()), Some(c));
        }
        assert_eq!(Codec::parse("json_crc32"), None);
        assert_eq!(Codec::infer(b"{\"kind\":1}"), Some(Codec::JsonCrc32));
        assert_eq!(Codec::infer(&[1, 2]), Some(Codec::Compact));
        assert_eq!(Codec::infer(b"x"), None);
    }
}
