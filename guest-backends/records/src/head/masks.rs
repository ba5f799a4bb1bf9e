//! Stage one of the lift: where a line's quotes, structural characters and
//! spaces are, as bitmaps of 64 bytes per word, sixteen bytes per SIMD step.
//! A line holding a backslash or a control byte anywhere is left to serde.

/// Bitmaps of one line: bit `i % 64` of word `i / 64` stands for byte `i`.
pub struct Masks<'m> {
    /// `"`.
    pub quote: &'m mut [u64],
    /// `{`, `}`, `[`, `]`, `:` and `,` (inside strings too: stage two masks them).
    pub structural: &'m mut [u64],
    /// ` `, and every bit past the end of the line.
    pub space: &'m mut [u64],
}

/// The bitmaps of one line, owning their words (tests build them so).
#[cfg(test)]
pub struct Owned {
    quote: Vec<u64>,
    structural: Vec<u64>,
    space: Vec<u64>,
}

#[cfg(test)]
impl Owned {
    /// The bitmaps of `bytes`; `None` when it holds a backslash or a
    /// control byte.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        let words = bytes.len().div_ceil(64);
        let mut owned = Owned {
            quote: vec![0; words],
            structural: vec![0; words],
            space: vec![0; words],
        };
        index(bytes, &mut owned.masks()).then_some(owned)
    }

    /// Borrowed, as stage two takes them.
    pub fn masks(&mut self) -> Masks<'_> {
        Masks {
            quote: &mut self.quote,
            structural: &mut self.structural,
            space: &mut self.space,
        }
    }
}

/// The three bitmaps of sixteen bytes; `None` when they hold a backslash or
/// a control byte.
#[derive(Debug, PartialEq)]
pub struct Chunk {
    quote: u16,
    structural: u16,
    space: u16,
}

/// Fills `masks` (at least `bytes.len().div_ceil(64)` words each); false
/// when `bytes` holds a backslash or a control byte.
pub fn index(bytes: &[u8], masks: &mut Masks) -> bool {
    let mut blocks = bytes.chunks_exact(64);
    let mut w = 0;
    for block in blocks.by_ref() {
        let Some((quote, structural, space)) = block64(block.try_into().unwrap()) else {
            return false;
        };
        (masks.quote[w], masks.structural[w], masks.space[w]) = (quote, structural, space);
        w += 1;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Spaces stand in for the bytes past the end.
        let mut padded = [b' '; 64];
        padded[..rest.len()].copy_from_slice(rest);
        let Some((quote, structural, space)) = block64(&padded) else {
            return false;
        };
        (masks.quote[w], masks.structural[w], masks.space[w]) = (quote, structural, space);
    }
    true
}

/// The three bitmaps of 64 bytes, built in registers and stored once.
fn block64(block: &[u8; 64]) -> Option<(u64, u64, u64)> {
    let (mut quote, mut structural, mut space) = (0u64, 0u64, 0u64);
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let found = chunk16(chunk.try_into().unwrap())?;
        quote |= u64::from(found.quote) << (i * 16);
        structural |= u64::from(found.structural) << (i * 16);
        space |= u64::from(found.space) << (i * 16);
    }
    Some((quote, structural, space))
}

/// [`Chunk`] of sixteen bytes with wasm's SIMD.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn chunk16(chunk: &[u8; 16]) -> Option<Chunk> {
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
    // With control bytes ruled out, `b | 0x20` tells `[{` from `]}` and
    // nothing else lands on `{`, `}`, `:` or `,`.
    let lower = v128_or(v, u8x16_splat(0x20));
    let structural = v128_or(
        v128_or(
            u8x16_eq(lower, u8x16_splat(b'{')),
            u8x16_eq(lower, u8x16_splat(b'}')),
        ),
        v128_or(
            u8x16_eq(lower, u8x16_splat(b':')),
            u8x16_eq(lower, u8x16_splat(b',')),
        ),
    );
    Some(Chunk {
        quote: u8x16_bitmask(u8x16_eq(v, u8x16_splat(b'"'))),
        structural: u8x16_bitmask(structural),
        space: u8x16_bitmask(u8x16_eq(v, u8x16_splat(b' '))),
    })
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
    };
    for (i, &b) in chunk.iter().enumerate() {
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

    #[test]
    fn simd_masks_agree_with_a_byte_scan() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"\"\\\x01\t a\xc3\xa9{}[]:,\"\x7f\xfb\x5b\x3a\x1a\x0c";
        let mut byte = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            alphabet[(seed % alphabet.len() as u64) as usize]
        };
        let mut clean = 0;
        for _ in 0..20_000 {
            let chunk: [u8; 16] = std::array::from_fn(|_| byte());
            let want = chunk16_bytes(&chunk);
            clean += usize::from(want.is_some());
            assert_eq!(chunk16(&chunk), want, "{chunk:?}");
        }
        for b in 0..=255u8 {
            assert_eq!(chunk16(&[b; 16]), chunk16_bytes(&[b; 16]), "byte {b:#x}");
        }
        assert!(clean > 10, "{clean}");
    }

    #[test]
    fn bits_past_the_end_are_spaces() {
        let line = br#"{"a": [1, "x y"]}"#;
        let (mut q, mut s, mut w) = ([0u64; 1], [0u64; 1], [0u64; 1]);
        let mut masks = Masks {
            quote: &mut q,
            structural: &mut s,
            space: &mut w,
        };
        assert!(index(line, &mut masks));
        let (q, s, w) = (masks.quote[0], masks.structural[0], masks.space[0]);
        let bits = |pick: fn(&u8) -> bool| {
            line.iter()
                .enumerate()
                .filter(|(_, b)| pick(b))
                .fold(0u64, |m, (i, _)| m | 1 << i)
        };
        assert_eq!(q, bits(|&b| b == b'"'));
        assert_eq!(s, bits(|b| b"{}[]:,".contains(b)));
        assert_eq!(w, bits(|&b| b == b' ') | u64::MAX << line.len());
        assert!(!index(b"{\"a\": \"b\\\"\"}", &mut masks));
        assert!(!index("{\"a\":\t1}".as_bytes(), &mut masks));
    }
}
