//! Byte-string equality for hot paths: in wasm, comparing two slices is a
//! call into the C library's `memcmp`, which goes a byte at a time.

/// `a == b`, eight bytes at a time. Up to sixteen bytes take no loop (two
/// overlapping words from each end): names and keys are short, and in wasm
/// every loop turn also checks the epoch deadline.
#[inline(always)]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word8 = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
    let word4 = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => {
            let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
            // The last eight bytes cover the remainders.
            word8(a, n - 8) == word8(b, n - 8)
                && a8.zip(b8).all(|(x, y)| word8(x, 0) == word8(y, 0))
        }
    }
}

/// `a == b` for 64 bytes (`a` is cut to them), eight words folded with no
/// loop: [`same`] loops past sixteen bytes.
#[inline(always)]
pub fn same_64(a: &[u8], b: &[u8; 64]) -> bool {
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[8 * i..8 * i + 8].try_into().unwrap());
    let a = &a[..64];
    (0..8).fold(0, |differ, i| differ | (word(a, i) ^ word(b, i))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_exactly_when_slices_are() {
        let words = [
            "",
            "a",
            "event",
            "events",
            "dead_letter",
            "dead_lettes",
            "0123456789abcdefX",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
        let block: [u8; 64] = std::array::from_fn(|i| i as u8);
        assert!(same_64(&block, &block));
        for at in 0..64 {
            let mut other = block;
            other[at] = 200;
            assert!(!same_64(&other, &block), "differs at {at}");
        }
        for len in 0..40 {
            let a: Vec<u8> = (0..len as u8).collect();
            assert!(same(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] = 200;
                assert!(!same(&a, &b), "length {len}, differs at {at}");
            }
        }
    }
}
