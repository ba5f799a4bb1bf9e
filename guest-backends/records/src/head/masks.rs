//! Stage one of the lift: where a line's quotes, structural characters and
//! spaces are, as bitmaps of 64 bytes per word, sixteen bytes per SIMD step.
//! A line holding a backslash or a control byte anywhere is left to serde.

/// The bitmaps of sixteen bytes; `None` when they hold a backslash or
/// a control byte.
#[derive(Debug, PartialEq)]
pub struct Chunk {
    quote: u16,
    structural: u16,
    space: u16,
    /// Bytes from 0x80 up: a line without any is ASCII, so UTF-8.
    high: u16,
}

/// The bitmaps of 64 bytes (bit `i` for byte `i`).
#[derive(Debug, PartialEq)]
pub struct Block {
    /// Quotes.
    pub quote: u64,
    /// Structural characters (inside strings too: stage two masks them).
    pub structural: u64,
    /// Spaces.
    pub space: u64,
    /// Bytes from 0x80 up.
    pub high: u64,
}

/// The bitmaps of a 64-byte block; `None` when it holds a backslash or a
/// control byte. In wasm the block is one piece of straight-line code with
/// one test for bad bytes: a control byte is looked for in the four chunks'
/// bytewise minimum (an unsigned `<` on bytes is four instructions once
/// cranelift has lowered it).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn block64(block: &[u8; 64]) -> Option<Block> {
    use core::arch::wasm32::{
        u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_min, u8x16_splat, v128, v128_any_true, v128_load,
        v128_or,
    };
    // SAFETY: `block` is 64 readable bytes; wasm loads need no alignment.
    let chunk = |i: usize| unsafe { v128_load(block.as_ptr().add(16 * i).cast::<v128>()) };
    let v = [chunk(0), chunk(1), chunk(2), chunk(3)];
    // A control byte anywhere makes the bytewise minimum of the four
    // chunks one; a backslash is looked for in each.
    let least = u8x16_min(u8x16_min(v[0], v[1]), u8x16_min(v[2], v[3]));
    let backslash = |v: v128| u8x16_eq(v, u8x16_splat(b'\\'));
    let bad = v128_or(
        v128_or(backslash(v[0]), backslash(v[1])),
        v128_or(backslash(v[2]), backslash(v[3])),
    );
    if v128_any_true(v128_or(bad, u8x16_lt(least, u8x16_splat(0x20)))) {
        return None;
    }
    // Bit `i` of the block from byte `i % 16` of chunk `i / 16`.
    let bits = |of: fn(v128) -> v128| {
        (0..4).fold(0u64, |bits, i| {
            bits | u64::from(u8x16_bitmask(of(v[i]))) << (16 * i)
        })
    };
    Some(Block {
        quote: bits(|v| u8x16_eq(v, u8x16_splat(b'"'))),
        // With control bytes ruled out, `b | 0x20` tells `[{` from `]}` and
        // nothing else lands on `{`, `}`, `:` or `,`.
        structural: bits(|v| {
            let lower = v128_or(v, u8x16_splat(0x20));
            v128_or(
                v128_or(
                    u8x16_eq(lower, u8x16_splat(b'{')),
                    u8x16_eq(lower, u8x16_splat(b'}')),
                ),
                v128_or(
                    u8x16_eq(lower, u8x16_splat(b':')),
                    u8x16_eq(lower, u8x16_splat(b',')),
                ),
            )
        }),
        space: bits(|v| u8x16_eq(v, u8x16_splat(b' '))),
        high: bits(|v| v),
    })
}

/// The bitmaps of a 64-byte block; `None` when it holds a backslash or a
/// control byte.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
pub fn block64(block: &[u8; 64]) -> Option<Block> {
    from_chunks(block, chunk16)
}

/// A block's bitmaps from its four chunks' bitmaps, each found by `chunk`;
/// `None` as soon as one is.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128", not(test)),
    allow(dead_code)
)]
#[inline(always)]
fn from_chunks(block: &[u8; 64], chunk: impl Fn(&[u8; 16]) -> Option<Chunk>) -> Option<Block> {
    let mut found = Block {
        quote: 0,
        structural: 0,
        space: 0,
        high: 0,
    };
    for (i, bytes) in block.chunks_exact(16).enumerate() {
        let chunk = chunk(bytes.try_into().unwrap())?;
        found.quote |= u64::from(chunk.quote) << (i * 16);
        found.structural |= u64::from(chunk.structural) << (i * 16);
        found.space |= u64::from(chunk.space) << (i * 16);
        found.high |= u64::from(chunk.high) << (i * 16);
    }
    Some(found)
}

/// [`Chunk`] of sixteen bytes with SSE2 (part of every x86_64).
#[cfg(target_arch = "x86_64")]
pub fn chunk16(chunk: &[u8; 16]) -> Option<Chunk> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is baseline on x86_64; `chunk` is 16 readable bytes and
    // the load is unaligned.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        if _mm_movemask_epi8(_mm_or_si128(control, backslash)) != 0 {
            return None;
        }
        let is = |b: u8, v| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let structural = _mm_or_si128(
            _mm_or_si128(is(b'{', lower), is(b'}', lower)),
            _mm_or_si128(is(b':', lower), is(b',', lower)),
        );
        Some(Chunk {
            quote: _mm_movemask_epi8(is(b'"', v)) as u16,
            structural: _mm_movemask_epi8(structural) as u16,
            space: _mm_movemask_epi8(is(b' ', v)) as u16,
            high: _mm_movemask_epi8(v) as u16,
        })
    }
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
pub fn chunk16(chunk: &[u8; 16]) -> Option<Chunk> {
    chunk16_bytes(chunk)
}

/// [`chunk16`] a byte at a time.
#[cfg_attr(
    any(target_arch = "x86_64", target_feature = "simd128"),
    allow(dead_code)
)]
pub fn chunk16_bytes(chunk: &[u8; 16]) -> Option<Chunk> {
    let mut found = Chunk {
        quote: 0,
        structural: 0,
        space: 0,
        high: 0,
    };
    for (i, &b) in chunk.iter().enumerate() {
        if b >= 0x80 {
            found.high |= 1 << i;
        }
        match b {
            b'\\' | 0..0x20 => return None,
            b'"' => found.quote |= 1 << i,
            b'{' | b'}' | b'[' | b']' | b':' | b',' => found.structural |= 1 << i,
            b' ' => found.space |= 1 << i,
            _ => {}
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`block64`] a byte at a time.
    fn block64_bytes(block: &[u8; 64]) -> Option<Block> {
        from_chunks(block, chunk16_bytes)
    }

    /// Whatever SIMD the target has (SSE2 natively, simd128 in the guests:
    /// `tests/guest_unit_tests.rs` runs these tests in wasm too).
    #[test]
    fn simd_masks_agree_with_a_byte_scan() {
        let mut next = crate::edits::xorshift(0x9e37_79b9_7f4a_7c15);
        let clean = b"\" a\xc3\xa9{}[]:,\x7f\xfb\x5b\x3a\x80\xff\x20\x210-";
        let bad = b"\\\x00\x01\t\n\x1a\x1f\x0c";
        let mut pick = |from: &[u8]| from[(next() % from.len() as u64) as usize];
        let mut accepted = 0;
        for round in 0..40_000 {
            let mut block: [u8; 64] = std::array::from_fn(|_| pick(clean));
            // A quarter of the blocks have no bad byte, the rest up to three.
            for _ in 0..round % 4 {
                let at = pick(&[0, 1, 15, 16, 17, 31, 32, 40, 47, 48, 62, 63]) as usize;
                block[at] = pick(bad);
            }
            let want = block64_bytes(&block);
            accepted += usize::from(want.is_some());
            assert_eq!(block64(&block), want, "{block:?}");
        }
        assert!(accepted > 8_000, "{accepted}");
        for b in 0..=255u8 {
            assert_eq!(block64(&[b; 64]), block64_bytes(&[b; 64]), "byte {b:#x}");
            for at in [0, 15, 16, 31, 32, 47, 48, 63] {
                let mut block = [b'a'; 64];
                block[at] = b;
                assert_eq!(
                    block64(&block),
                    block64_bytes(&block),
                    "byte {b:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn a_block_has_a_bit_per_byte() {
        let mut block = [b' '; 64];
        let line = br#"{"a": [1, "x y"]} "#;
        block[40..40 + line.len()].copy_from_slice(line);
        block[20] = 0xc3;
        block[21] = 0xa9;
        let found = block64(&block).unwrap();
        let bits = |pick: fn(&u8) -> bool| {
            block
                .iter()
                .enumerate()
                .filter(|(_, b)| pick(b))
                .fold(0u64, |m, (i, _)| m | 1 << i)
        };
        assert_eq!(found.quote, bits(|&b| b == b'"'));
        assert_eq!(found.structural, bits(|b| b"{}[]:,".contains(b)));
        assert_eq!(found.space, bits(|&b| b == b' '));
        assert_eq!(found.high, 0b11 << 20);
        block[63] = b'\\';
        assert_eq!(block64(&block), None);
        block[63] = b'\t';
        assert_eq!(block64(&block), None);
    }
}
