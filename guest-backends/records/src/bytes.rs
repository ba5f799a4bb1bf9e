//! Byte-string equality for hot paths: in wasm, comparing two slices is a
//! call into the C library's `memcmp`, which goes a byte at a time.

/// `a == b`, eight bytes at a time.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap());
    let tails = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .all(|(x, y)| x == y);
    tails && a8.zip(b8).all(|(x, y)| word(x) == word(y))
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
        for at in 0..17 {
            let a = vec![7u8; 17];
            let mut b = a.clone();
            b[at] = 8;
            assert!(!same(&a, &b), "differs at {at}");
        }
    }
}
