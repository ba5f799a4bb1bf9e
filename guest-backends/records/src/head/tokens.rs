//! A line's tokens, in order: structural characters outside strings,
//! opening quotes, and the first byte of each bare word (a number, a
//! literal, or garbage), with where each stands.

use super::masks::{Block as Block64, block64};
use crate::bytes::same_64;

/// The class of a bare word's first byte.
pub const WORD: u8 = b'w';

/// The tokens of one line (buffers reused from line to line).
pub struct Tokens {
    /// Each token's class (`{ } [ ] : , "` or [`WORD`]), then stale bytes.
    class: Vec<u8>,
    /// Each token's byte offset, then stale offsets.
    at: Vec<u32>,
    /// How many tokens the line has.
    len: usize,
    /// The first block of the last line gathered through it, when it is
    /// ASCII (so any refusal passes it).
    first: Option<FirstBlock>,
}

/// A line's first 64 bytes, gathered: their tokens are still the first
/// `tokens` in the buffers.
struct FirstBlock {
    bytes: [u8; 64],
    tokens: usize,
    /// What gathering them left: inside a string, inside a word.
    in_string: u64,
    word_carry: u64,
}

/// What [`Tokens::gather`] refuses besides backslashes and control bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Refuse {
    /// Nothing else.
    Nothing,
    /// Bytes from 0x80 up: a line gathered this way is ASCII, so UTF-8
    /// without a check of its own.
    NonAscii,
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

impl Tokens {
    /// No tokens, no buffers yet.
    pub const fn new() -> Self {
        Tokens {
            class: Vec::new(),
            at: Vec::new(),
            len: 0,
            first: None,
        }
    }

    /// Collects the tokens of `bytes`, finding its quotes, structural
    /// characters and spaces a 64-byte block at a time (stage one) as it
    /// goes; false, with no tokens, when `bytes` holds a backslash, a
    /// control byte or what `refuse` names.
    #[inline(always)]
    pub fn gather(&mut self, bytes: &[u8], refuse: Refuse) -> bool {
        // A line has at most one token per byte, and each block writes into
        // a window of 64 past its first token; the buffers only grow.
        let room = bytes.len() + WINDOW;
        if self.class.len() < room {
            self.class.resize(room, 0);
            self.at.resize(room, 0);
        }
        self.len = 0;
        let mut n = 0;
        let mut in_string = 0u64;
        let mut word_carry = 0u64;
        let whole = bytes.len() / 64 * 64;
        let padded;
        // Each block as 64 bytes, the bytes of the line from `skip` on, and
        // the bits of those bytes. A short last block is the line's last 64
        // bytes when the line has that many (no copy; the bytes before it
        // were taken already), else a copy padded with spaces.
        let tail = match bytes.len() - whole {
            0 => None,
            rem if bytes.len() >= 64 => {
                let last: &[u8; 64] = bytes[bytes.len() - 64..].try_into().unwrap();
                Some((last, 64 - rem, (1u64 << rem) - 1))
            }
            rem => {
                let mut last = [b' '; 64];
                last[..rem].copy_from_slice(bytes);
                padded = last;
                Some((&padded, 0, (1u64 << rem) - 1))
            }
        };
        // Lines from one writer often begin alike (Papyra's events do for
        // their first 60-odd bytes): a first block equal to the last line's
        // has the same tokens, left in the buffers, and leaves the same state.
        let mut first_block = 0;
        match &self.first {
            Some(first) if whole >= 64 && same_64(&bytes[..64], &first.bytes) => {
                (n, in_string, word_carry) = (first.tokens, first.in_string, first.word_carry);
                first_block = 1;
            }
            _ => self.first = None,
        }
        let blocks = bytes[..whole]
            .chunks_exact(64)
            .map(|block| (block.try_into().unwrap(), 0, !0u64))
            .chain(tail);
        for (w, (block, skip, inside)) in blocks.enumerate().skip(first_block) {
            let Some(Block64 {
                quote,
                structural,
                space,
                high,
            }) = block64(block)
            else {
                return false;
            };
            let [quote, structural, space, high] =
                [quote, structural, space, high].map(|m| m >> skip);
            if refuse == Refuse::NonAscii && high != 0 {
                return false;
            }
            // Past the line's end: spaces (never tokens).
            let space = space | !inside;
            // From each opening quote up to (not including) its closing quote.
            let strings = prefix_xor(quote) ^ in_string;
            in_string = ((strings as i64) >> 63) as u64;
            let word = !(structural | space | quote | strings);
            let word_starts = word & !((word << 1) | word_carry);
            word_carry = word >> 63;
            let tokens = (structural & !strings) | (quote & strings) | word_starts;
            n += emit(
                Block {
                    tokens,
                    words: word_starts,
                    base: w * 64,
                    bytes: block,
                    skip,
                },
                (&mut self.class[n..n + WINDOW]).try_into().unwrap(),
                (&mut self.at[n..n + WINDOW]).try_into().unwrap(),
            );
            if w == 0 && whole >= 64 && high == 0 {
                self.first = Some(FirstBlock {
                    bytes: *block,
                    tokens: n,
                    in_string,
                    word_carry,
                });
            }
        }
        self.len = n;
        true
    }

    /// The classes of the line's tokens, in order.
    pub fn classes(&self) -> &[u8] {
        &self.class[..self.len]
    }

    /// Where the line's tokens stand, in order.
    pub fn offsets(&self) -> &[u32] {
        &self.at[..self.len]
    }

    /// Lines the buffers have room for without growing (tests).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.class.len()
    }

    /// Where token `i` stands.
    pub fn at(&self, i: usize) -> usize {
        self.at[i] as usize
    }

    /// The text of token `i` of `bytes`: a string's contents (quotes left
    /// out), or a bare word. Only spaces stand between the text's end and
    /// the next token (a string's closing quote is never a token), so no
    /// search is needed. `None` for a string that nothing follows.
    #[inline(always)]
    pub fn text<'b>(&self, bytes: &'b [u8], i: usize) -> Option<&'b [u8]> {
        let start = self.at(i);
        let mut end = match self.offsets().get(i + 1) {
            Some(&next) => next as usize,
            None if self.class[i] == WORD => bytes.len(),
            None => return None,
        };
        // Spaces before the next token are rare: no loop unless one is there.
        if bytes[end - 1] == b' ' {
            while bytes[end - 1] == b' ' {
                end -= 1;
            }
        }
        if self.class[i] == WORD {
            return Some(&bytes[start..end]);
        }
        debug_assert_eq!(bytes[end - 1], b'"');
        Some(&bytes[start + 1..end - 1])
    }
}

/// Tokens a block may write: one per byte.
const WINDOW: usize = 64;

/// One 64-byte block of a line, with its tokens.
struct Block<'b> {
    /// Bit `i` set when byte `i` starts a token.
    tokens: u64,
    /// The tokens that start bare words.
    words: u64,
    /// Offset in the line of the byte bit 0 stands for.
    base: usize,
    /// The block's bytes: bit `i` stands for `bytes[skip + i]`.
    bytes: &'b [u8; 64],
    skip: usize,
}

/// Writes the classes and offsets of a block's tokens; how many there were.
/// Runs once per token of every line, so it is kept free of bounds checks
/// (indices masked into fixed-size arrays) and branches, and unrolled by
/// four: in wasm every loop turn also checks the epoch deadline.
fn emit(block: Block, class: &mut [u8; WINDOW], offsets: &mut [u32; WINDOW]) -> usize {
    let (mut tokens, mut n) = (block.tokens, 0usize);
    let count = tokens.count_ones() as usize;
    let mut step = |tokens: &mut u64| {
        let bit = tokens.trailing_zeros() as usize & 63;
        *tokens &= *tokens - 1;
        // A structural character or quote stands for itself, a word for
        // [`WORD`]: chosen with a mask, as words and the rest alternate
        // too unevenly for a branch to be predicted.
        let byte = block.bytes[(block.skip + bit) & 63];
        let word = ((block.words >> bit) as u8 & 1).wrapping_neg();
        class[n & 63] = byte ^ ((byte ^ WORD) & word);
        offsets[n & 63] = (block.base + bit) as u32;
        n += 1;
    };
    for _ in 0..count / 4 {
        step(&mut tokens);
        step(&mut tokens);
        step(&mut tokens);
        step(&mut tokens);
    }
    for _ in 0..count % 4 {
        step(&mut tokens);
    }
    count
}

/// Bit `i` set when an odd number of bits at or below `i` are set in `x`.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines whose first 64 bytes repeat, in a random order with lines
    /// that begin otherwise, give the tokens a fresh gather gives.
    #[test]
    fn a_first_block_seen_last_line_gives_the_tokens_of_a_fresh_gather() {
        let prefixes = [
            // The last byte inside a string.
            r#"{"kind": "event", "system_id": "local", "actor_address": "local:"#,
            // A number running on past the block.
            r#"{"kind": "event", "n": 12345678901234567890123456789012345678901"#,
            // A run of spaces, and a key's opening quote last.
            r#"{"kind":                                                  "x", ""#,
            // Not ASCII: never remembered (gathering it may refuse it).
            r#"{"kind": "évent", "system_id": "local", "actor_address": "local"#,
        ];
        let tails = [
            r#"orker-3", "payload": {"n": 12}, "timestamp": 1700000000.125}"#,
            r#"4, "timestamp": 17}"#,
            r#"a": [true, null], "timestamp": 1.5}"#,
            r#"x\"y", "timestamp": 1}"#,
            "\t\u{1}\\",
            "",
            r#"}"#,
        ];
        let mut lines: Vec<String> = Vec::new();
        for p in prefixes {
            assert_eq!(p.len(), 64, "{p}");
            for t in tails {
                lines.push(format!("{p}{t}"));
            }
        }
        lines.extend([
            r#"{"kind": "short", "timestamp": 1}"#.to_string(),
            "x".repeat(64),
        ]);
        let mut next = crate::edits::xorshift(0x2545_f491_4f6c_dd1d);
        let mut reused = Tokens::default();
        let mut hits = 0;
        for _ in 0..4_000 {
            let line = lines[(next() % lines.len() as u64) as usize].as_bytes();
            let refuse = if next() & 1 == 0 {
                Refuse::Nothing
            } else {
                Refuse::NonAscii
            };
            hits += usize::from(
                line.len() >= 64
                    && (reused.first.as_ref()).is_some_and(|f| same_64(&line[..64], &f.bytes)),
            );
            let mut fresh = Tokens::default();
            let want = fresh.gather(line, refuse);
            assert_eq!(
                reused.gather(line, refuse),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
            if want {
                assert_eq!(reused.classes(), fresh.classes());
                assert_eq!(reused.offsets(), fresh.offsets());
            }
        }
        assert!(hits > 400, "{hits} lines began as the last one did");
    }

    #[test]
    fn prefix_xor_marks_the_inside_of_quotes() {
        let quotes = 1 << 2 | 1 << 5 | 1 << 9;
        assert_eq!(prefix_xor(quotes) & 0x3ff, 0b10_0001_1100);
    }

    #[test]
    fn tokens_skip_strings_and_spaces() {
        let line = r#" {"a{": [12, tru, "x,y"], "b": -1}"#;
        let mut tokens = Tokens::default();
        assert!(tokens.gather(line.as_bytes(), Refuse::Nothing));
        assert_eq!(tokens.classes(), br#"{":[w,w,"],":w}"#);
        let at: Vec<usize> = tokens.offsets().iter().map(|&a| a as usize).collect();
        assert_eq!(at[4], line.find("12").unwrap());
        assert_eq!(at[6], line.find("tru").unwrap());
        let text = |i| std::str::from_utf8(tokens.text(line.as_bytes(), i).unwrap()).unwrap();
        assert_eq!(
            [text(1), text(4), text(6), text(8), text(11), text(13)],
            ["a{", "12", "tru", "x,y", "b", "-1"]
        );
        let open = r#"{"a": "b"  "#;
        assert!(tokens.gather(open.as_bytes(), Refuse::Nothing));
        assert_eq!(tokens.classes(), br#"{":""#);
        assert_eq!(
            tokens.text(open.as_bytes(), 3),
            None,
            "nothing follows the last string"
        );
        assert!(
            !tokens.gather(b"{\"a\": \"b\\\"\"}", Refuse::Nothing),
            "a backslash"
        );
        assert!(
            !tokens.gather("{\"a\":\t1}".as_bytes(), Refuse::Nothing),
            "a control byte"
        );
        let accented = "{\"a\": \"é\"}".as_bytes();
        assert!(tokens.gather(accented, Refuse::Nothing));
        assert!(!tokens.gather(accented, Refuse::NonAscii), "not ASCII");
        assert!(tokens.classes().is_empty());
    }
}
