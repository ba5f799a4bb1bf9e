//! A fast path for the common line: one pass over the bytes that checks the
//! JSON grammar and lifts `kind`, `store`, `system_id` and `timestamp`,
//! without serde's per-token machinery (most of a scan's time in wasm).
//!
//! It only ever says "this is a record, with these fields" or "not sure";
//! anything unusual — an escape in a string, a control character, a
//! duplicate or non-string head field, deep nesting, any syntax error — is
//! "not sure", and the caller asks serde_json for the verdict: the guest
//! helper's `record::classify` when scanning and reading, the host's
//! `Record` lifting when appending. So the fast path can make them faster
//! but never change what they say; differential tests in both hold it to
//! serde_json on valid and damaged lines.

/// The fields lifted from a record line that the fast path accepted.
#[derive(Debug, PartialEq)]
pub struct Head<'a> {
    /// `kind`.
    pub kind: &'a str,
    /// `store`, when present.
    pub store: Option<&'a str>,
    /// `system_id`, when present.
    pub system_id: Option<&'a str>,
    /// `timestamp`.
    pub timestamp: f64,
}

/// Nesting the fast path follows (serde_json's limit is 128).
const MAX_DEPTH: usize = 64;

/// Lifts the head of `text` when it is plainly a record; `None` when serde
/// must decide.
pub fn lift(text: &str) -> Option<Head<'_>> {
    let bytes = text.as_bytes();
    if bytes.len() <= INDEXED_LEN {
        // One SIMD pass finds every quote; a line with a backslash or a
        // control byte anywhere is left to serde outright.
        let mut quotes = [0u64; INDEXED_LEN / 64];
        if !index_quotes(bytes, &mut quotes) {
            return None;
        }
        return lift_with(text, Some(&quotes));
    }
    lift_with(text, None)
}

/// Longest line whose quotes are indexed up front.
const INDEXED_LEN: usize = 1024;

fn lift_with<'a>(text: &'a str, quotes: Option<&[u64]>) -> Option<Head<'a>> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
        quotes,
    };
    p.ws();
    p.eat(b'{')?;
    let (mut kind, mut store, mut system_id, mut timestamp) = (None, None, None, None);
    p.ws();
    if p.peek() == Some(b'}') {
        return None; // `{}` is not a record: serde names what is missing.
    }
    loop {
        let key = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        let slot = match key {
            "kind" => Some(&mut kind),
            "store" => Some(&mut store),
            "system_id" => Some(&mut system_id),
            _ => None,
        };
        match (key, slot) {
            (_, Some(slot)) => {
                if slot.is_some() || p.peek() != Some(b'"') {
                    return None;
                }
                *slot = Some(p.string()?);
            }
            ("timestamp", None) => {
                if timestamp.is_some() {
                    return None;
                }
                let start = p.at;
                p.number()?;
                timestamp = Some(&text[start..p.at]);
            }
            _ => p.value(1)?,
        }
        p.ws();
        match p.next()? {
            b',' => p.ws(),
            b'}' => break,
            _ => return None,
        }
    }
    p.ws();
    if p.at != p.bytes.len() {
        return None;
    }
    // The one number quire reads is converted exactly as serde_json does.
    let timestamp = timestamp_value(timestamp?)?;
    Some(Head {
        kind: kind?,
        store,
        system_id,
        timestamp: Some(timestamp).filter(|t| t.is_finite())?,
    })
}

/// The value serde_json reads from a number's text.
fn timestamp_value(text: &str) -> Option<f64> {
    plain_decimal(text).or_else(|| serde_json::from_str(text).ok())
}

/// A plain decimal (no exponent, at most 15 digits, not zero) computed as
/// serde_json computes it: its digits as an integer, divided once by a
/// power of ten. Both are exact, so the one division is correctly rounded
/// and serde_json (with or without `float_roundtrip`) gets the same bits.
/// Anything else is `None`.
fn plain_decimal(text: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || int.len() + frac.len() > 15 {
        return None;
    }
    let mut significand = 0u64;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        significand = significand * 10 + u64::from(b - b'0');
    }
    if significand == 0 {
        return None; // `-0` and friends: serde_json's own reading decides.
    }
    let f = significand as f64 / POW10[frac.len()];
    Some(if negative { -f } else { f })
}

struct Parser<'a, 'q> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Bit `i` set when byte `i` is a quote, for an indexed line (which
    /// then holds no backslash and no control byte).
    quotes: Option<&'q [u64]>,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Any JSON value, at nesting `depth`.
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => {
                self.at += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digit()?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.digit()?;
            self.digits();
        }
        Some(())
    }

    fn digit(&mut self) -> Option<()> {
        self.next().filter(u8::is_ascii_digit).map(drop)
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters; its contents.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = match self.quotes {
            Some(quotes) => next_bit(quotes, start)?,
            None => start + plain_run(&self.bytes[start..]),
        };
        if self.bytes.get(end) != Some(&b'"') {
            return None; // an escape, a control character, or the end
        }
        self.at = end + 1;
        // A quote is never inside a multi-byte character: both ends are
        // character boundaries.
        self.text.get(start..end)
    }
}

/// The first set bit at or after `from`.
fn next_bit(bits: &[u64], from: usize) -> Option<usize> {
    let (mut word, shift) = (from / 64, from % 64);
    let mut current = bits.get(word)? & (u64::MAX << shift);
    loop {
        if current != 0 {
            return Some(word * 64 + current.trailing_zeros() as usize);
        }
        word += 1;
        current = *bits.get(word)?;
    }
}

/// Sets the bit of every quote of `bytes` (at most [`INDEXED_LEN`]) in
/// `quotes`; false when a backslash or a control byte is found.
fn index_quotes(bytes: &[u8], quotes: &mut [u64]) -> bool {
    let blocks = bytes.len() / 16;
    for block in 0..blocks {
        let chunk: &[u8; 16] = bytes[block * 16..block * 16 + 16].try_into().unwrap();
        let Some(mask) = quote_mask16(chunk) else {
            return false;
        };
        quotes[block / 4] |= (mask as u64) << ((block % 4) * 16);
    }
    for (i, &b) in bytes.iter().enumerate().skip(blocks * 16) {
        match b {
            b'"' => quotes[i / 64] |= 1 << (i % 64),
            b'\\' | 0..0x20 => return false,
            _ => {}
        }
    }
    true
}

/// Bit `i` set when `chunk[i]` is a quote; `None` when the chunk holds a
/// backslash or a control byte.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn quote_mask16(chunk: &[u8; 16]) -> Option<u16> {
    use core::arch::wasm32::{
        u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_any_true, v128_load, v128_or,
    };
    // SAFETY: `chunk` is 16 readable bytes; wasm loads need no alignment.
    let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
    let bad = v128_or(
        u8x16_eq(v, u8x16_splat(b'\\')),
        u8x16_lt(v, u8x16_splat(0x20)),
    );
    if v128_any_true(bad) {
        return None;
    }
    Some(u8x16_bitmask(u8x16_eq(v, u8x16_splat(b'"'))))
}

/// [`quote_mask16`] with SSE2 (part of every x86_64).
#[cfg(target_arch = "x86_64")]
fn quote_mask16(chunk: &[u8; 16]) -> Option<u16> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is baseline on x86_64; `chunk` is 16 readable bytes and
    // the load is unaligned.
    let (bad, quote) = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        (
            _mm_movemask_epi8(_mm_or_si128(control, backslash)),
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))),
        )
    };
    (bad == 0).then_some(quote as u16)
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
fn quote_mask16(chunk: &[u8; 16]) -> Option<u16> {
    quote_mask16_bytes(chunk)
}

/// [`quote_mask16`] a byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn quote_mask16_bytes(chunk: &[u8; 16]) -> Option<u16> {
    let mut mask = 0u16;
    for (i, &b) in chunk.iter().enumerate() {
        match b {
            b'"' => mask |= 1 << i,
            b'\\' | 0..0x20 => return None,
            _ => {}
        }
    }
    Some(mask)
}

/// Length of the leading run of bytes that may stand in a string as they are
/// (not `"`, not `\`, not a control character), sixteen bytes at a time
/// with wasm's SIMD.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn plain_run(bytes: &[u8]) -> usize {
    use core::arch::wasm32::{
        u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_any_true, v128_load, v128_or,
    };
    let (quote, backslash, space) = (u8x16_splat(b'"'), u8x16_splat(b'\\'), u8x16_splat(0x20));
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 16) {
        // SAFETY: `chunk` holds 16 readable bytes; wasm loads need no alignment.
        let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
        let stop = v128_or(
            v128_or(u8x16_eq(v, quote), u8x16_eq(v, backslash)),
            u8x16_lt(v, space),
        );
        if v128_any_true(stop) {
            return at + u8x16_bitmask(stop).trailing_zeros() as usize;
        }
        at += 16;
    }
    at + plain_run_words(&bytes[at..])
}

/// [`plain_run`] sixteen bytes at a time with SSE2 (part of every x86_64).
#[cfg(target_arch = "x86_64")]
fn plain_run(bytes: &[u8]) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 16) {
        // SAFETY: SSE2 is baseline on x86_64; `chunk` holds 16 readable
        // bytes and the load is unaligned.
        let stop = unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
        };
        if stop != 0 {
            return at + stop.trailing_zeros() as usize;
        }
        at += 16;
    }
    at + plain_run_words(&bytes[at..])
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
fn plain_run(bytes: &[u8]) -> usize {
    plain_run_words(bytes)
}

/// [`plain_run`] eight bytes at a time, in plain integer arithmetic.
fn plain_run_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let v = u64::from_le_bytes(chunk.try_into().unwrap());
        // Bytes below 0x20 set their high bit in `v - 0x20..`, unless the
        // byte itself has it set (then it is >= 0x80, which is fine).
        let control = v.wrapping_sub(0x20 * ONES) & !v & HIGHS;
        let special = has_zero(v ^ (b'"' as u64 * ONES)) | has_zero(v ^ (b'\\' as u64 * ONES));
        if control | special != 0 {
            break;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papyra_lines_take_the_fast_path() {
        let line = r#"{"kind": "event", "system_id": "local", "actor_address": "local:w-1", "payload": {"n": 12, "xs": [1.5e3, -0, true, null, "é"]}, "timestamp": 1700000000.125}"#;
        assert_eq!(
            lift(line),
            Some(Head {
                kind: "event",
                store: None,
                system_id: Some("local"),
                timestamp: 1700000000.125,
            })
        );
        assert_eq!(
            lift(r#" {"timestamp":-0,"store":"s","kind":"a"} "#).map(|h| h.timestamp.to_bits()),
            Some(serde_json::from_str::<f64>("-0").unwrap().to_bits()),
            "an integer converts as serde_json converts it"
        );
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for line in [
            r#"{"kind":"a\"b","timestamp":1}"#,
            r#"{"kind":"a","timestamp":1,"kind":"b"}"#,
            r#"{"kind":null,"timestamp":1}"#,
            r#"{"kind":"a","timestamp":"1"}"#,
            r#"{"kind":"a","timestamp":01}"#,
            r#"{"kind":"a","timestamp":1.}"#,
            r#"{"kind":"a","timestamp":1,}"#,
            r#"{"kind":"a","timestamp":1} x"#,
            r#"{"kind":"a","timestamp":1e999}"#,
            r#"{"kind":"a"}"#,
            r#"{"timestamp":1}"#,
            "{\"kind\":\"a\u{1}\",\"timestamp\":1}",
            r#"{"k\u0069nd":"a","timestamp":1}"#,
            r#"[{"kind":"a","timestamp":1}]"#,
            r#"{"kind":"a","timestamp":1,"x":[1,]}"#,
            r#"{"kind":"a","timestamp":1,"x":tru}"#,
        ] {
            assert_eq!(lift(line), None, "{line}");
        }
        let deep = format!(
            r#"{{"kind":"a","timestamp":1,"x":{}{}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert_eq!(lift(&deep), None);
    }

    #[test]
    fn quote_indexes_agree_with_a_byte_scan() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut byte = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            [b'"', b'\\', 0x01, b'\t', b'a', b' ', 0xc3, 0xa9, b'{', b'"'][(seed % 10) as usize]
        };
        for _ in 0..5000 {
            let chunk: [u8; 16] = std::array::from_fn(|_| byte());
            assert_eq!(
                quote_mask16(&chunk),
                quote_mask16_bytes(&chunk),
                "{chunk:?}"
            );
        }
        let line = br#"{"a": "bc", "d": [1, "e"], "f": "ghijklmnopqrstuvwxyz0123456789"}"#;
        let mut quotes = [0u64; INDEXED_LEN / 64];
        assert!(index_quotes(line, &mut quotes));
        let want: Vec<usize> = (0..line.len()).filter(|&i| line[i] == b'"').collect();
        let mut got = Vec::new();
        let mut from = 0;
        while let Some(i) = next_bit(&quotes, from) {
            got.push(i);
            from = i + 1;
        }
        assert_eq!(got, want);
        assert!(!index_quotes(b"{\"a\": \"b\\\"\"}", &mut [0u64; 16]));
        assert!(!index_quotes("{\"a\":\t1}".as_bytes(), &mut [0u64; 16]));
    }

    #[test]
    fn long_lines_take_the_scanning_path() {
        let long = format!(
            r#"{{"kind":"event","note":"{}","timestamp":5}}"#,
            "x".repeat(INDEXED_LEN)
        );
        assert_eq!(lift(&long).map(|h| h.timestamp), Some(5.0));
    }

    #[test]
    fn plain_decimals_read_as_serde_json_reads_them() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut fast = 0;
        for _ in 0..200_000 {
            let len = 1 + (next() % 17) as usize;
            let mut digits: String = (0..len)
                .map(|_| (b'0' + (next() % 10) as u8) as char)
                .collect();
            if digits.len() > 1 && digits.starts_with('0') {
                digits.replace_range(0..1, "1");
            }
            let mut text = digits.clone();
            let point = (next() % (len as u64 + 1)) as usize;
            if point > 0 && point < len {
                text.insert(point, '.');
            }
            if next() % 2 == 0 {
                text.insert(0, '-');
            }
            let want: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(
                timestamp_value(&text).map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
            fast += usize::from(plain_decimal(&text).is_some());
        }
        assert!(fast > 100_000, "{fast}");
        for text in [
            "1700000000.125",
            "0.1",
            "-12.5",
            "42",
            "1e3",
            "-0",
            "0.0",
            "1234567890123456",
        ] {
            let want: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(
                timestamp_value(text).map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
        }
    }

    #[test]
    fn plain_runs_stop_at_every_special_byte() {
        for special in [b'"', b'\\', 0, 0x1f] {
            for at in 0..40 {
                let mut bytes = vec![b'a'; 40];
                bytes[at] = special;
                assert_eq!(plain_run(&bytes), at, "byte {special:#x} at {at}");
                assert_eq!(plain_run_words(&bytes), at, "byte {special:#x} at {at}");
            }
        }
        assert_eq!(plain_run("ééééééé xyz".as_bytes()), "ééééééé xyz".len());
        assert_eq!(plain_run(&[0x20, 0x7f, 0x80, 0xff, b' ']), 5);
        let high: Vec<u8> = (0x20..=0xff).filter(|&b| b != b'"' && b != b'\\').collect();
        assert_eq!(plain_run(&high), high.len(), "bytes above 0x7f are plain");
    }
}
