//! Checksummed frames, `[u32 BE body length][body][u32 BE CRC32 of body]`,
//! and a scanner that walks a file of them and tells kinds of damage apart.
//!
//! The scanner never trusts a length it has not confirmed: after damage it
//! searches forward for the next frame whose checksum matches, so damage in
//! the middle of a file is reported as a region and reading resumes behind
//! it. Damage with no valid frame after it is the file's tail: a writer that
//! died mid-append, or zeros and garbage left by a torn write.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

use crate::types::AnomalyKind;

/// Bytes before a body: the length.
pub const PREFIX_BYTES: u64 = 4;
/// Bytes of framing around a body: length and checksum.
pub const OVERHEAD: u64 = 8;
/// Largest body a frame may carry. A length above it is damage, so a garbage
/// length can never make a reader allocate more than this.
pub const MAX_BODY: u32 = 64 << 20;

/// Bytes read from the source at a time, unless told otherwise.
pub const DEFAULT_CHUNK: usize = 1 << 20;
/// Checksum work a resync may spend on candidates that fail the cheap tests
/// (a candidate frame followed by garbage): bounds the search in garbage.
const RESYNC_SLOW_BUDGET: u64 = 64 << 20;

/// Total size of a frame carrying `body_len` bytes.
pub fn frame_len(body_len: usize) -> u64 {
    body_len as u64 + OVERHEAD
}

/// Why a body cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// Bodies are never empty: eight zero bytes would otherwise be a valid frame.
    Empty,
    /// Longer than [`MAX_BODY`].
    TooLarge(usize),
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::Empty => write!(f, "a frame body cannot be empty"),
            EncodeError::TooLarge(n) => {
                write!(
                    f,
                    "a frame body of {n} bytes exceeds the limit of {MAX_BODY}"
                )
            }
        }
    }
}

/// Appends the frame for `body` to `out`.
pub fn encode(body: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_with_crc(body, crate::checksum::crc32(body), out)
}

/// As [`encode`], with the body's CRC-32 already known (computed for a
/// whole batch at once, say). `crc` must be the CRC-32 of `body`.
pub fn encode_with_crc(body: &[u8], crc: u32, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if body.is_empty() {
        return Err(EncodeError::Empty);
    }
    if body.len() > MAX_BODY as usize {
        return Err(EncodeError::TooLarge(body.len()));
    }
    out.reserve(body.len() + OVERHEAD as usize);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// What the bytes at the start of a buffer are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame: its body and its total length.
    Frame(&'a [u8], u64),
    /// Fewer bytes than the frame needs.
    Incomplete,
    /// A length of zero or above [`MAX_BODY`].
    BadLength(u32),
    /// A whole frame whose checksum disagrees with its body.
    BadChecksum {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum of the body as found.
        actual: u32,
        /// Total frame length.
        len: u64,
    },
}

/// Decodes the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    let Some(prefix) = buf.get(..4) else {
        return Decoded::Incomplete;
    };
    let body_len = u32::from_be_bytes(prefix.try_into().expect("4 bytes"));
    if !plausible(body_len) {
        return Decoded::BadLength(body_len);
    }
    let len = frame_len(body_len as usize);
    let Some(frame) = buf.get(..len as usize) else {
        return Decoded::Incomplete;
    };
    let body = &frame[4..len as usize - 4];
    let stored = u32::from_be_bytes(frame[len as usize - 4..].try_into().expect("4 bytes"));
    let actual = crate::checksum::crc32(body);
    if stored == actual {
        Decoded::Frame(body, len)
    } else {
        Decoded::BadChecksum {
            stored,
            actual,
            len,
        }
    }
}

fn plausible(body_len: u32) -> bool {
    (1..=MAX_BODY).contains(&body_len)
}

/// What is wrong with the bytes at a position (no valid frame there).
enum Check {
    Incomplete,
    BadLength(u32),
    BadChecksum { stored: u32, actual: u32, len: u64 },
}

/// Kinds of damage, in the scanner's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The last frame is cut short: its length, body or checksum ends at
    /// the end of the file.
    TruncatedTail,
    /// Zeros or garbage after the last valid frame.
    PartialWrite,
    /// A whole frame whose checksum does not match its body.
    ChecksumMismatch,
    /// Bytes between two valid frames that are no frame (a damaged length,
    /// zeros, garbage).
    CorruptedFrame,
}

impl DamageKind {
    /// The anomaly a scan reports for this damage.
    pub fn anomaly_kind(self) -> AnomalyKind {
        match self {
            DamageKind::TruncatedTail => AnomalyKind::TruncatedTail,
            DamageKind::PartialWrite => AnomalyKind::PartialWrite,
            DamageKind::ChecksumMismatch => AnomalyKind::ChecksumMismatch,
            DamageKind::CorruptedFrame => AnomalyKind::CorruptedRecord,
        }
    }
}

/// A damaged region, located to the byte.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    /// What kind.
    pub kind: DamageKind,
    /// First byte of the region.
    pub offset: u64,
    /// Length of the region.
    pub length: u64,
    /// True when no valid frame follows: cutting the file at `offset` loses
    /// nothing that could be read.
    pub tail: bool,
    /// What was found, for the report.
    pub detail: String,
}

/// One step of a scan.
#[derive(Debug, PartialEq)]
pub enum Item<'a> {
    /// A valid frame at `offset` of `len` bytes.
    Frame {
        /// Offset of its length prefix.
        offset: u64,
        /// Total length, framing included.
        len: u64,
        /// The body.
        body: &'a [u8],
    },
    /// A damaged region; the scan continues behind it.
    Damage(Damage),
}

/// Settings of a scan.
#[derive(Clone, Copy, Default)]
pub struct ScanRules {
    /// A test a body's first byte must pass for a resync to consider a
    /// candidate frame (formats whose bodies start with a known byte make
    /// searches in damaged data much cheaper). `None` accepts any byte.
    pub body_start: Option<fn(u8) -> bool>,
}

/// Walks the frames of `reader` between `start` and `end` (the file length
/// when the scan began), in memory bounded by the largest frame.
pub struct FrameScanner<R> {
    reader: R,
    end: u64,
    pos: u64,
    rules: ScanRules,
    window: Vec<u8>,
    window_start: u64,
    /// Set once a resync found no valid frame: everything after is tail.
    in_tail: bool,
    /// Bytes read at a time (the window grows past it only for a larger frame).
    chunk: usize,
    /// The frames ahead in the window, by offset, with their body lengths
    /// and body CRCs taken in one host call (a call per short frame would
    /// cost more).
    ahead: VecDeque<(u64, u32, u32)>,
    /// Scratch for that call: body starts and lengths in the window.
    starts: Vec<u32>,
    lengths: Vec<u32>,
    crcs: Vec<u32>,
}

impl<R: Read + Seek> FrameScanner<R> {
    /// Scans `reader` from `start` (a frame boundary) to `end`.
    pub fn new(reader: R, start: u64, end: u64, rules: ScanRules) -> Self {
        Self::with_chunk(reader, start, end, rules, DEFAULT_CHUNK)
    }

    /// As `new`, reading `chunk` bytes at a time: many readers open at once
    /// (a merge over units) keep small windows.
    pub fn with_chunk(reader: R, start: u64, end: u64, rules: ScanRules, chunk: usize) -> Self {
        Self {
            chunk: chunk.max(16),
            reader,
            end,
            pos: start.min(end),
            rules,
            window: Vec::new(),
            window_start: 0,
            in_tail: false,
            ahead: VecDeque::new(),
            starts: Vec::new(),
            lengths: Vec::new(),
            crcs: Vec::new(),
        }
    }

    /// Offset of the next item.
    pub fn offset(&self) -> u64 {
        self.pos
    }

    /// Where the scan stops.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The next frame or damaged region; `None` at the end.
    pub fn next_item(&mut self) -> io::Result<Option<Item<'_>>> {
        let p = self.pos;
        if p >= self.end {
            return Ok(None);
        }
        if let Some((start, len)) = self.vouched(p) {
            self.pos = p + len as u64;
            return Ok(Some(Item::Frame {
                offset: p,
                len: len as u64,
                body: &self.window[start + 4..start + len - 4],
            }));
        }
        let check = if self.end - p < 4 {
            Check::Incomplete
        } else {
            let body_len = self.u32_at(p)?;
            if !plausible(body_len) {
                Check::BadLength(body_len)
            } else if frame_len(body_len as usize) > self.end - p {
                Check::Incomplete
            } else {
                let len = frame_len(body_len as usize);
                let actual = self.body_crc(p, len)?;
                let frame = self.bytes(p, len as usize)?;
                let stored =
                    u32::from_be_bytes(frame[len as usize - 4..].try_into().expect("4 bytes"));
                if stored == actual {
                    self.pos = p + len;
                    let frame = self.bytes(p, len as usize)?;
                    return Ok(Some(Item::Frame {
                        offset: p,
                        len,
                        body: &frame[4..len as usize - 4],
                    }));
                }
                Check::BadChecksum {
                    stored,
                    actual,
                    len,
                }
            }
        };
        let damage = self.classify(p, check)?;
        self.pos = damage.offset + damage.length;
        Ok(Some(Item::Damage(damage)))
    }

    /// The next frame's offset and length when it is one taken ahead whose
    /// stored CRC is the one taken of its body (read it with
    /// [`body_at`](Self::body_at)); `None` for anything else, which
    /// [`next_item`](Self::next_item) then settles. A replay's frames nearly
    /// all come this way, without an [`Item`] made and moved.
    #[inline]
    pub fn next_vouched(&mut self) -> Option<(u64, u64)> {
        let p = self.pos;
        if p >= self.end {
            return None;
        }
        let (_, len) = self.vouched(p)?;
        self.pos = p + len as u64;
        Some((p, len as u64))
    }

    /// Where in the window the frame at `p` starts, and its length, when
    /// it is the next one taken ahead and the CRC it stores is the one taken
    /// of its body: the common case, settled without reading its prefix
    /// again. Anything else is left to the full check in `next_item`.
    #[inline]
    fn vouched(&mut self, p: u64) -> Option<(usize, usize)> {
        let &(offset, body_len, crc) = self.ahead.front()?;
        if offset != p {
            return None;
        }
        let len = frame_len(body_len as usize) as usize;
        let start = usize::try_from(p.checked_sub(self.window_start)?).ok()?;
        let stored = self.window.get(start + len - 4..start + len)?;
        if u32::from_be_bytes(stored.try_into().expect("4 bytes")) != crc {
            return None;
        }
        self.ahead.pop_front();
        Some((start, len))
    }

    /// The CRC-32 of the body of the `len`-byte frame at `p` (its length
    /// prefix read already): from [`Self::ahead`], else taken with those of
    /// every frame that lies whole in the window behind it, in one call.
    fn body_crc(&mut self, p: u64, len: u64) -> io::Result<u32> {
        while let Some(&(offset, _, crc)) = self.ahead.front() {
            self.ahead.pop_front();
            if offset == p {
                return Ok(crc);
            }
        }
        self.bytes(p, len as usize)?;
        let Self {
            window,
            window_start,
            end,
            starts,
            lengths,
            crcs,
            ahead,
            ..
        } = self;
        let limit = (*window_start + window.len() as u64).min(*end);
        starts.clear();
        lengths.clear();
        crcs.clear();
        // Lengths ahead are not trusted: a frame whose prefix lies gets a
        // CRC here that its own check will refuse, and the scan then takes
        // its own way; entries it never reaches are dropped.
        let mut q = p;
        while q + PREFIX_BYTES <= limit {
            let at = (q - *window_start) as usize;
            let body_len = u32::from_be_bytes(window[at..at + 4].try_into().expect("4 bytes"));
            let frame = frame_len(body_len as usize);
            if !plausible(body_len) || q + frame > limit {
                break;
            }
            starts.push((at + 4) as u32);
            lengths.push(body_len);
            q += frame;
        }
        crate::checksum::crc32_spans(window, starts, lengths, crcs);
        let first = *window_start;
        ahead.extend(starts.iter().zip(lengths.iter()).zip(crcs.iter()).map(
            |((&start, &body_len), &crc)| (first + u64::from(start) - PREFIX_BYTES, body_len, crc),
        ));
        let (offset, _, crc) = ahead
            .pop_front()
            .expect("the frame at p is whole in the window");
        debug_assert_eq!(offset, p);
        Ok(crc)
    }

    /// The body of the frame [`FrameScanner::next_item`] returned last,
    /// at `offset` and `len` bytes long, while the window still holds it
    /// (until the next call that moves the scan on).
    pub fn body_at(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let start = offset.checked_sub(self.window_start)? as usize;
        let frame = self.window.get(start..start.checked_add(len as usize)?)?;
        frame.get(4..frame.len().checked_sub(4)?)
    }

    fn u32_at(&mut self, offset: u64) -> io::Result<u32> {
        let b = self.bytes(offset, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Works out the extent and kind of the damage that starts at `p`.
    fn classify(&mut self, p: u64, check: Check) -> io::Result<Damage> {
        let next = if self.in_tail {
            None
        } else {
            self.resync(p + 1)?
        };
        let damage = |kind, end: u64, tail, detail| Damage {
            kind,
            offset: p,
            length: end - p,
            tail,
            detail,
        };
        if let Some(q) = next {
            return Ok(match check {
                Check::BadChecksum {
                    stored,
                    actual,
                    len,
                } if p + len <= q => damage(
                    DamageKind::ChecksumMismatch,
                    p + len,
                    false,
                    format!("frame checksum {stored:08x} stored, {actual:08x} computed"),
                ),
                _ => damage(
                    DamageKind::CorruptedFrame,
                    q,
                    false,
                    format!(
                        "{} bytes are no frame ({}); next valid frame at byte {q}",
                        q - p,
                        self.describe(p, q, &check)?
                    ),
                ),
            });
        }
        self.in_tail = true;
        let end = self.end;
        Ok(match check {
            // Checked before zeros: a torn length prefix is often `00 00`.
            Check::Incomplete => damage(
                DamageKind::TruncatedTail,
                end,
                true,
                format!(
                    "last frame cut short: {} bytes at the end of the file, the writer stopped mid-append",
                    end - p
                ),
            ),
            Check::BadChecksum {
                stored,
                actual,
                len,
            } => damage(
                DamageKind::ChecksumMismatch,
                p + len,
                true,
                format!(
                    "frame checksum {stored:08x} stored, {actual:08x} computed; no valid frame follows"
                ),
            ),
            Check::BadLength(_) if self.all_zero(p, end)? => damage(
                DamageKind::PartialWrite,
                end,
                true,
                format!("{} zero bytes after the last valid frame", end - p),
            ),
            Check::BadLength(n) => damage(
                DamageKind::PartialWrite,
                end,
                true,
                format!(
                    "{} bytes of garbage after the last valid frame (length field {n})",
                    end - p
                ),
            ),
        })
    }

    fn describe(&mut self, p: u64, q: u64, check: &Check) -> io::Result<String> {
        if self.all_zero(p, q)? {
            return Ok("zeros".into());
        }
        Ok(match check {
            Check::BadLength(n) => format!("length field {n} is impossible"),
            Check::BadChecksum { len, .. } => {
                format!("length field says {len} bytes, overlapping the next frame")
            }
            _ => "length field runs past the next frame".into(),
        })
    }

    /// First offset at or after `from` where a valid frame starts, if any.
    fn resync(&mut self, from: u64) -> io::Result<Option<u64>> {
        let mut slow_budget = RESYNC_SLOW_BUDGET;
        let mut q = from;
        while q + OVERHEAD < self.end {
            let body_len = self.u32_at(q)?;
            let first = self.bytes(q + 4, 1)?[0];
            let fits = plausible(body_len) && q + frame_len(body_len as usize) <= self.end;
            if fits && self.rules.body_start.is_none_or(|ok| ok(first)) {
                let after = q + frame_len(body_len as usize);
                // A frame is followed by the end, another length, zeros or
                // too few bytes for a length; anything else is suspicious and
                // is checked only while the slow budget lasts.
                let followed_well = if after + 4 > self.end {
                    true
                } else {
                    let n = self.u32_at(after)?;
                    n == 0 || plausible(n)
                };
                if followed_well || slow_budget >= u64::from(body_len) {
                    if !followed_well {
                        slow_budget -= u64::from(body_len);
                    }
                    if self.checksum_matches(q, body_len)? {
                        return Ok(Some(q));
                    }
                }
            }
            q += 1;
        }
        Ok(None)
    }

    /// Whether the frame at `q` with a `body_len`-byte body checks out,
    /// computed in chunks so the window stays small.
    fn checksum_matches(&mut self, q: u64, body_len: u32) -> io::Result<bool> {
        let mut hasher = crate::checksum::Crc32::new();
        let mut at = q + PREFIX_BYTES;
        let body_end = at + u64::from(body_len);
        while at < body_end {
            let n = ((body_end - at) as usize).min(self.chunk);
            hasher.update(self.bytes(at, n)?);
            at += n as u64;
        }
        Ok(self.u32_at(body_end)? == hasher.value())
    }

    fn all_zero(&mut self, from: u64, to: u64) -> io::Result<bool> {
        let mut at = from;
        while at < to {
            let n = ((to - at) as usize).min(self.chunk);
            if self.bytes(at, n)?.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }

    /// `len` bytes at `offset` (which the caller keeps within `end`), read
    /// through a window so a sequential scan reads each byte once.
    fn bytes(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        let window_end = self.window_start + self.window.len() as u64;
        if offset < self.window_start || offset + len as u64 > window_end {
            let want = (len.max(self.chunk) as u64).min(self.end - offset) as usize;
            if offset >= self.window_start && offset < window_end {
                // Keep the overlap: the common case is reading on past the window.
                self.window.drain(..(offset - self.window_start) as usize);
            } else {
                self.window.clear();
            }
            if self.window.capacity() > 4 * self.chunk && want <= self.chunk {
                self.window.shrink_to(self.chunk);
            }
            let have = self.window.len();
            self.window.resize(want.max(have), 0);
            self.reader.seek(SeekFrom::Start(offset + have as u64))?;
            self.reader.read_exact(&mut self.window[have..])?;
            self.window_start = offset;
        }
        let start = (offset - self.window_start) as usize;
        Ok(&self.window[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frames(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for b in bodies {
            encode(b, &mut out).unwrap();
        }
        out
    }

    fn scan(data: &[u8]) -> Vec<String> {
        let mut s = FrameScanner::new(
            Cursor::new(data),
            0,
            data.len() as u64,
            ScanRules::default(),
        );
        let mut out = Vec::new();
        while let Some(item) = s.next_item().unwrap() {
            out.push(match item {
                Item::Frame { offset, len, .. } => format!("frame {offset}+{len}"),
                Item::Damage(d) => format!(
                    "{:?} {}+{}{}",
                    d.kind,
                    d.offset,
                    d.length,
                    if d.tail { " tail" } else { "" }
                ),
            });
        }
        out
    }

    #[test]
    fn clean_frames_and_empty_bodies_refused() {
        let data = frames(&[b"one", b"two"]);
        assert_eq!(scan(&data), ["frame 0+11", "frame 11+11"]);
        assert_eq!(encode(b"", &mut Vec::new()), Err(EncodeError::Empty));
        assert_eq!(scan(&[0; 8]), ["PartialWrite 0+8 tail"]);
    }

    #[test]
    fn torn_zeroed_and_garbage_tails() {
        let mut data = frames(&[b"one", b"two"]);
        data.truncate(20);
        assert_eq!(scan(&data), ["frame 0+11", "TruncatedTail 11+9 tail"]);
        let mut data = frames(&[b"one"]);
        data.extend_from_slice(&[0; 100]);
        assert_eq!(scan(&data), ["frame 0+11", "PartialWrite 11+100 tail"]);
        let mut data = frames(&[b"one"]);
        data.extend_from_slice(b"garbage here");
        assert_eq!(scan(&data), ["frame 0+11", "PartialWrite 11+12 tail"]);
    }

    #[test]
    fn middle_damage_is_located_and_skipped() {
        let mut data = frames(&[b"one", b"two", b"three"]);
        data[15] ^= 1;
        assert_eq!(
            scan(&data),
            ["frame 0+11", "ChecksumMismatch 11+11", "frame 22+13"]
        );
        let mut data = frames(&[b"one", b"two", b"three"]);
        data[11] = 0xff;
        assert_eq!(
            scan(&data),
            ["frame 0+11", "CorruptedFrame 11+11", "frame 22+13"]
        );
        let mut data = frames(&[b"one", b"two"]);
        data[16] ^= 4;
        assert_eq!(scan(&data), ["frame 0+11", "ChecksumMismatch 11+11 tail"]);
        // A length grown past the end of the file reads as a torn last frame.
        let mut data = frames(&[b"one", b"two"]);
        data[14] ^= 4;
        assert_eq!(scan(&data), ["frame 0+11", "TruncatedTail 11+11 tail"]);
    }
}
