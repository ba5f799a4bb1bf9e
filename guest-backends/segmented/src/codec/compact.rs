//! The compact codec: records as JSON lines, a block at a time, in a raw
//! deflate stream that is sync-flushed at the end of every frame.
//!
//! Frame body: `[flags u8][deflate bytes]`; flags bit 0 means the frame
//! starts a new deflate stream. A frame's deflate bytes decompress, given
//! the stream so far, to whole JSON lines. The JSON is kept byte for byte,
//! so decoding is lossless. A stream starts at the first block of a segment,
//! after a resume (the compressor's state died with the process) and every
//! `stream_bytes` of input, so damage costs at most the rest of one stream.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use quire_guest::frames;

/// Flags bit: this frame starts a new deflate stream.
pub const NEW_STREAM: u8 = 1;
/// A block is closed at this many JSON bytes even when it has fewer records.
const BLOCK_BYTES: usize = 1 << 20;
/// A frame may decompress to at most this much (a damaged or hostile frame
/// must not make the reader allocate without bound).
pub const MAX_DECODED: usize = frames::MAX_BODY as usize;
/// The end of every sync flush: an empty stored block's length fields.
const SYNC_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Collects records into blocks and deflates each block into a frame.
pub struct CompactEncoder {
    /// Boxed: the stream's state is large and encoders move with their segment.
    deflater: Option<Box<Compress>>,
    /// Deflate level, 1 (fastest) to 9 (smallest).
    level: u8,
    /// JSON bytes fed into the current stream.
    stream_in: u64,
    stream_limit: u64,
    block: Vec<u8>,
    block_records: u64,
    block_limit: u64,
}

impl CompactEncoder {
    /// An encoder whose first block starts a new stream, deflating at
    /// `level` (1 fastest to 9 smallest; any level decodes the same way).
    pub fn new(block_limit: u64, stream_limit: u64, level: u8) -> Self {
        Self {
            deflater: None,
            level: level.clamp(1, 9),
            stream_in: 0,
            stream_limit: stream_limit.max(1),
            block: Vec::new(),
            block_records: 0,
            block_limit: block_limit.max(1),
        }
    }

    /// Adds a record; true when the block is full and should be flushed.
    pub fn push(&mut self, json: &[u8]) -> bool {
        self.block.extend_from_slice(json);
        self.block.push(b'\n');
        self.block_records += 1;
        self.block_records >= self.block_limit || self.block.len() >= BLOCK_BYTES
    }

    /// Records held in the block.
    pub fn buffered(&self) -> u64 {
        self.block_records
    }

    /// The block: the held records as JSON lines.
    pub fn block(&self) -> &[u8] {
        &self.block
    }

    /// Holds `records` records given as JSON lines (a block taken from
    /// another encoder) in the block again.
    pub fn hold(&mut self, lines: &[u8], records: u64) {
        self.block.extend_from_slice(lines);
        self.block_records += records;
    }

    /// Deflates the block into one frame appended to `out`; returns the
    /// records it holds (0 and nothing written when the block is empty).
    pub fn flush(&mut self, out: &mut Vec<u8>) -> Result<u64, String> {
        if self.block_records == 0 {
            return Ok(0);
        }
        let new_stream = self.deflater.is_none() || self.stream_in >= self.stream_limit;
        if new_stream {
            match &mut self.deflater {
                Some(d) => d.reset(),
                // Raw deflate: no zlib header, the frame has its own CRC.
                None => {
                    self.deflater = Some(Box::new(Compress::new(
                        Compression::new(u32::from(self.level)),
                        false,
                    )))
                }
            }
            self.stream_in = 0;
        }
        let deflater = self.deflater.as_mut().expect("set above");
        let mut body = Vec::with_capacity(self.block.len() / 3 + 64);
        body.push(if new_stream { NEW_STREAM } else { 0 });
        if let Err(e) = deflate_sync(deflater, &self.block, &mut body) {
            // The compressor's state is unknown now: start over next time.
            self.deflater = None;
            return Err(e);
        }
        if !body.ends_with(&SYNC_TAIL) {
            self.deflater = None;
            return Err("deflate output does not end with a sync flush".into());
        }
        body.truncate(body.len() - SYNC_TAIL.len());
        frames::encode(&body, out).map_err(|e| e.to_string())?;
        self.stream_in += self.block.len() as u64;
        self.block.clear();
        Ok(std::mem::take(&mut self.block_records))
    }
}

/// Deflates all of `input` and sync-flushes, appending to `out`.
fn deflate_sync(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut consumed = 0;
    loop {
        // Deflate never grows data by more than a few bytes per 16 KiB block.
        out.reserve(input.len() - consumed + (input.len() - consumed) / 8 + 64);
        let before = (c.total_in(), c.total_out());
        c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .map_err(|e| format!("deflate failed: {e}"))?;
        consumed += (c.total_in() - before.0) as usize;
        let progressed = (c.total_in(), c.total_out()) != before;
        // Done once the input is in and the flush fitted: room was left, or
        // a call with room made nothing more.
        if consumed == input.len() && (out.len() < out.capacity() || !progressed) {
            return Ok(());
        }
        if !progressed {
            return Err("deflate made no progress".into());
        }
    }
}

/// Inflates compact frames in order, keeping the stream between them.
pub struct CompactDecoder {
    inflater: Option<Decompress>,
    /// True while the current stream can be continued.
    stream_ok: bool,
}

impl Default for CompactDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl CompactDecoder {
    /// A decoder expecting a frame that starts a stream.
    pub fn new() -> Self {
        Self {
            inflater: None,
            stream_ok: false,
        }
    }

    /// Damage came between frames: frames that continue the current stream
    /// can no longer be decoded.
    pub fn invalidate(&mut self) {
        self.stream_ok = false;
    }

    /// Decodes one frame body into `out` (cleared first): whole JSON lines,
    /// each ending with a newline.
    pub fn decode(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let result = self.decode_inner(body, out);
        if result.is_err() {
            self.stream_ok = false;
        }
        result
    }

    fn decode_inner(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        let (&flags, data) = body
            .split_first()
            .ok_or_else(|| "empty compact frame".to_string())?;
        if flags & !NEW_STREAM != 0 {
            return Err(format!("unknown compact frame flags {flags:#04x}"));
        }
        if flags & NEW_STREAM != 0 {
            match &mut self.inflater {
                Some(state) => state.reset(false),
                None => self.inflater = Some(Decompress::new(false)),
            }
            self.stream_ok = true;
        } else if !self.stream_ok {
            return Err(
                "continues a deflate stream whose earlier frames are damaged or missing".into(),
            );
        }
        let state = self.inflater.as_mut().expect("a stream was started");
        let data = &[data, &SYNC_TAIL[..]].concat()[..];
        let mut consumed = 0;
        loop {
            // Output goes into spare capacity, so the bound is checked per call.
            out.reserve_exact((data.len() * 4).clamp(4096, 1 << 20));
            let before = (state.total_in(), out.len());
            let status = state
                .decompress_vec(&data[consumed..], out, FlushDecompress::None)
                .map_err(|e| format!("deflate data is invalid ({e})"))?;
            consumed += (state.total_in() - before.0) as usize;
            if status == Status::StreamEnd {
                // We never finish streams; one that ends cannot continue.
                self.stream_ok = false;
                if consumed < data.len() {
                    return Err("data after the end of a deflate stream".into());
                }
                break;
            }
            if out.len() > MAX_DECODED {
                return Err(format!(
                    "frame decompresses to more than {MAX_DECODED} bytes"
                ));
            }
            let progressed = (state.total_in(), out.len()) != before;
            // Done once the input is in and its output fitted: room was
            // left, or a call with room made nothing more.
            if consumed == data.len() && (out.len() < out.capacity() || !progressed) {
                break;
            }
            if !progressed {
                return Err("deflate data is invalid (no progress)".into());
            }
        }
        match out.last() {
            None => Err("compact frame holds no records".into()),
            Some(b'\n') => Ok(()),
            Some(_) => Err("compact frame does not end at a record boundary".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, from: usize) -> Vec<String> {
        (from..from + n)
            .map(|i| {
                format!(
                    r#"{{"kind":"metric","store":"gps","timestamp":{}.{:06},"i":{i}}}"#,
                    1_700_000_000 + i,
                    i * 7 % 1_000_000
                )
            })
            .collect()
    }

    fn frames_of(data: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            match frames::decode(&data[at..]) {
                frames::Decoded::Frame(body, len) => {
                    out.push(body);
                    at += len as usize;
                }
                other => panic!("bad frame at {at}: {other:?}"),
            }
        }
        out
    }

    #[test]
    fn a_frame_that_inflates_past_the_bound_is_refused_without_growing_past_it() {
        let mut deflater = Compress::new(Compression::new(9), false);
        let mut body = vec![NEW_STREAM];
        let lines = [b"{}\n".repeat(MAX_DECODED / 3), b"{}\n".to_vec()].concat();
        assert!(lines.len() > MAX_DECODED);
        deflate_sync(&mut deflater, &lines, &mut body).unwrap();
        body.truncate(body.len() - SYNC_TAIL.len());
        assert!(body.len() < 64 << 10, "a bomb: {} bytes", body.len());
        let mut out = Vec::new();
        let e = CompactDecoder::new().decode(&body, &mut out).unwrap_err();
        assert!(e.contains("decompresses to more than"), "{e}");
        assert!(
            out.capacity() <= MAX_DECODED + (1 << 20),
            "{}",
            out.capacity()
        );
    }

    /// A frame whose lines fill the decoder's first buffer exactly: the
    /// call after it has room and nothing to give, which is the end.
    #[test]
    fn a_frame_that_fills_the_output_exactly_decodes() {
        let lines = b"x\n".repeat(2048);
        let mut body = vec![NEW_STREAM];
        deflate_sync(
            &mut Compress::new(Compression::new(6), false),
            &lines,
            &mut body,
        )
        .unwrap();
        body.truncate(body.len() - SYNC_TAIL.len());
        assert!(
            (body.len() + SYNC_TAIL.len() - 1) * 4 <= 4096,
            "{}",
            body.len()
        );
        let mut out = Vec::new();
        CompactDecoder::new().decode(&body, &mut out).unwrap();
        assert_eq!(out, lines);
    }

    #[test]
    fn blocks_round_trip_byte_for_byte_across_streams() {
        for level in 1..=9 {
            round_trip_across_streams(level);
        }
    }

    fn round_trip_across_streams(level: u8) {
        let records = lines(1000, 0);
        let mut enc = CompactEncoder::new(7, 4096, level);
        let mut out = Vec::new();
        let mut flushed = 0;
        for r in &records {
            if enc.push(r.as_bytes()) {
                flushed += enc.flush(&mut out).unwrap();
            }
        }
        flushed += enc.flush(&mut out).unwrap();
        assert_eq!(flushed, 1000);
        let mut dec = CompactDecoder::new();
        let mut text = Vec::new();
        let mut buf = Vec::new();
        let bodies = frames_of(&out);
        assert!(bodies.iter().filter(|b| b[0] == NEW_STREAM).count() > 3);
        for body in bodies {
            dec.decode(body, &mut buf).unwrap();
            text.extend_from_slice(&buf);
        }
        let expected: String = records.iter().map(|r| format!("{r}\n")).collect();
        assert_eq!(String::from_utf8(text).unwrap(), expected, "level {level}");
    }

    #[test]
    fn a_lost_frame_breaks_only_the_rest_of_its_stream() {
        let mut enc = CompactEncoder::new(10, 2000, 1);
        let mut out = Vec::new();
        for r in lines(200, 0) {
            if enc.push(r.as_bytes()) {
                enc.flush(&mut out).unwrap();
            }
        }
        let bodies = frames_of(&out);
        let mut dec = CompactDecoder::new();
        let mut buf = Vec::new();
        dec.decode(bodies[0], &mut buf).unwrap();
        // Skip bodies[1]: what follows in the same stream cannot decode,
        // the next stream can.
        dec.invalidate();
        let mut ok = Vec::new();
        for body in &bodies[2..] {
            ok.push(dec.decode(body, &mut buf).is_ok());
        }
        let first_new = bodies[2..].iter().position(|b| b[0] == NEW_STREAM).unwrap();
        assert!(ok[..first_new].iter().all(|ok| !ok));
        assert!(ok[first_new..].iter().all(|ok| *ok));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut dec = CompactDecoder::new();
        let mut buf = Vec::new();
        assert!(dec.decode(&[], &mut buf).is_err());
        assert!(dec.decode(&[0, 1, 2, 3], &mut buf).is_err());
        assert!(dec.decode(&[1, 0xff, 0xff, 0xff], &mut buf).is_err());
        assert!(dec.decode(&[4, 0], &mut buf).is_err());
    }
}
