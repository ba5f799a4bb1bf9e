//! The `record-batch` layout: each record's JSON followed by one newline,
//! its length in its entry. One walk checks it for both sides.

/// Checks that a batch's columns (JSON lengths, kinds, stores, timestamps)
/// are as long as each other; else the first record one of them lacks, and
/// what differs.
pub fn columns(
    json_lens: usize,
    kinds: usize,
    stores: usize,
    timestamps: usize,
) -> Result<(), (usize, String)> {
    if kinds == json_lens && stores == json_lens && timestamps == json_lens {
        return Ok(());
    }
    Err((
        json_lens.min(kinds).min(stores).min(timestamps),
        format!(
            "the batch's columns differ: {json_lens} lengths, {kinds} kinds, {stores} stores, {timestamps} timestamps"
        ),
    ))
}

/// Where each record's JSON starts in `text`, given the records' JSON
/// lengths in order (see [`walk`]).
pub fn starts(
    text: &[u8],
    lengths: impl IntoIterator<Item = u32>,
) -> Result<Vec<u32>, (usize, String)> {
    let lengths = lengths.into_iter();
    let mut starts = Vec::with_capacity(lengths.size_hint().0);
    walk(text, lengths, |_, start, _| {
        starts.push(start);
        Ok(())
    })?;
    Ok(starts)
}

/// Walks the records of `text`, given their JSON lengths in order, calling
/// `each(index, start, json)`. Every record must end where its length says,
/// at a newline, and the text must end with the last one; a record that
/// does not fit, or that `each` refuses, is named by its index. (Newlines
/// inside a record are not looked for: a caller counts them once over the
/// whole text with [`line_breaks`] when it must know.)
pub fn walk(
    text: &[u8],
    lengths: impl IntoIterator<Item = u32>,
    mut each: impl FnMut(usize, u32, &[u8]) -> Result<(), String>,
) -> Result<(), (usize, String)> {
    let mut at = 0usize;
    let mut n = 0;
    for len in lengths {
        let end = at
            .checked_add(len as usize)
            .filter(|&end| end < text.len())
            .ok_or_else(|| {
                (
                    n,
                    format!("runs past the batch text ({} bytes)", text.len()),
                )
            })?;
        if text[end] != b'\n' {
            return Err((
                n,
                "is not followed by a newline where its length says it ends".into(),
            ));
        }
        let start = u32::try_from(at).map_err(|_| (n, "batch text over 4 GiB".to_string()))?;
        each(n, start, &text[at..end]).map_err(|reason| (n, reason))?;
        at = end + 1;
        n += 1;
    }
    if at != text.len() {
        return Err((
            n,
            format!(
                "{} bytes of batch text after the last record",
                text.len() - at
            ),
        ));
    }
    Ok(())
}

/// The line breaks of a batch's text: how many newlines, and whether it
/// holds a carriage return anywhere.
#[derive(Debug, PartialEq)]
pub struct LineBreaks {
    /// `\n` bytes.
    pub newlines: usize,
    /// Whether any `\r` byte is there.
    pub carriage_return: bool,
}

/// Counts the line breaks of `text`, 64 bytes per step. (An iterator over
/// each newline stops and restarts its SIMD search once per record; most
/// of an append's check went there.)
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn line_breaks(text: &[u8]) -> LineBreaks {
    let mut blocks = text.chunks_exact(64);
    let (mut newlines, mut carriage) = (0usize, false);
    for block in blocks.by_ref() {
        let (n, r) = block_breaks(block.try_into().unwrap());
        newlines += n.count_ones() as usize;
        carriage |= r != 0;
    }
    for &b in blocks.remainder() {
        newlines += usize::from(b == b'\n');
        carriage |= b == b'\r';
    }
    LineBreaks {
        newlines,
        carriage_return: carriage,
    }
}

/// Counts the line breaks of `text` with wasm SIMD: sixteen byte counters
/// summed across lanes once per 4080 bytes (before a lane can pass 255),
/// and carriage returns OR-ed into one vector looked at once. (A bitmask
/// per sixteen bytes costs twice as much as cranelift compiles it.)
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn line_breaks(text: &[u8]) -> LineBreaks {
    use std::arch::wasm32::{
        u8x16_splat, u16x8_extadd_pairwise_u8x16, u32x4_extadd_pairwise_u16x8, u32x4_extract_lane,
        v128, v128_any_true, v128_or,
    };
    let sum = |counts: v128| {
        let wide = u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(counts));
        (u32x4_extract_lane::<0>(wide)
            + u32x4_extract_lane::<1>(wide)
            + u32x4_extract_lane::<2>(wide)
            + u32x4_extract_lane::<3>(wide)) as usize
    };
    let (mut newlines, mut carriage) = (0usize, u8x16_splat(0));
    for span in text.chunks(16 * 255) {
        let (counts, returns) = span_breaks(span);
        newlines += sum(counts);
        carriage = v128_or(carriage, returns);
    }
    let mut carriage_return = v128_any_true(carriage);
    let whole = text.len() / 16 * 16;
    for &b in &text[whole..] {
        newlines += usize::from(b == b'\n');
        carriage_return |= b == b'\r';
    }
    LineBreaks {
        newlines,
        carriage_return,
    }
}

/// Per-lane newline counts and carriage-return matches of the whole
/// sixteen-byte chunks of `span` (at most 255 of them).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn span_breaks(span: &[u8]) -> (std::arch::wasm32::v128, std::arch::wasm32::v128) {
    use std::arch::wasm32::{i8x16_sub, u8x16_eq, u8x16_splat, v128, v128_load, v128_or};
    let (nl, cr) = (u8x16_splat(b'\n'), u8x16_splat(b'\r'));
    let (mut counts, mut returns) = (u8x16_splat(0), u8x16_splat(0));
    let mut step = |chunk: &[u8]| {
        // SAFETY: sixteen readable bytes; wasm loads need no alignment.
        let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
        // A match is 0xff, that is -1: subtracting it counts one.
        counts = i8x16_sub(counts, u8x16_eq(v, nl));
        returns = v128_or(returns, u8x16_eq(v, cr));
    };
    // Four chunks per turn: every loop turn also checks the epoch.
    let mut blocks = span.chunks_exact(64);
    for block in blocks.by_ref() {
        step(&block[..16]);
        step(&block[16..32]);
        step(&block[32..48]);
        step(&block[48..]);
    }
    for chunk in blocks.remainder().chunks_exact(16) {
        step(chunk);
    }
    (counts, returns)
}

/// Bitmaps of the `\n` and `\r` bytes of 64 bytes (SSE2).
#[cfg(target_arch = "x86_64")]
fn block_breaks(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let (mut n, mut r) = (0u64, 0u64);
    for i in 0..4 {
        // SAFETY: SSE2 is baseline on x86_64; 16 of the block's bytes, an
        // unaligned load.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast());
            let nl = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)));
            let cr = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)));
            n |= u64::from(nl as u16) << (16 * i);
            r |= u64::from(cr as u16) << (16 * i);
        }
    }
    (n, r)
}

/// Bitmaps of the `\n` and `\r` bytes of 64 bytes, a byte at a time.
#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
fn block_breaks(block: &[u8; 64]) -> (u64, u64) {
    let (mut n, mut r) = (0u64, 0u64);
    for (i, &b) in block.iter().enumerate() {
        n |= u64::from(b == b'\n') << i;
        r |= u64::from(b == b'\r') << i;
    }
    (n, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_follow_the_lengths_and_misfits_are_named() {
        let text = b"{\"a\":1}\n{}\n";
        assert_eq!(starts(text, [7, 2]), Ok(vec![0, 8]));
        assert_eq!(starts(text, [8, 1]).unwrap_err().0, 0);
        assert_eq!(starts(text, [7, 9]).unwrap_err().0, 1);
        assert_eq!(starts(text, [7]).unwrap_err().0, 1);
        assert_eq!(starts(b"", []), Ok(vec![]));
        let refused = walk(text, [7, 2], |n, _, json| match json {
            b"{}" => Err(format!("record {n} is empty")),
            _ => Ok(()),
        });
        assert_eq!(refused, Err((1, "record 1 is empty".into())));
    }

    #[test]
    fn line_breaks_are_counted_at_every_position() {
        for len in 0..200 {
            for at in 0..len {
                let mut text = vec![b'x'; len];
                text[at] = b'\n';
                if at + 3 < len {
                    text[at + 3] = b'\n';
                }
                let newlines = text.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(
                    line_breaks(&text),
                    LineBreaks {
                        newlines,
                        carriage_return: false
                    },
                    "{len} {at}"
                );
                text[at] = b'\r';
                assert!(line_breaks(&text).carriage_return, "{len} {at}");
            }
        }
    }
}
