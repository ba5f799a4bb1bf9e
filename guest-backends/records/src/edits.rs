//! Every single-byte edit of a line, for the differential tests that hold
//! a fast path to serde_json (on the host and in the guest helper), and
//! the pseudo-random numbers this crate's own tests draw texts from.

/// Each byte of `seed` replaced by, or preceded by, each byte of
/// `alphabet` (and the end preceded by each), and each byte removed.
pub fn single_edits<'a>(seed: &'a [u8], alphabet: &'a [u8]) -> impl Iterator<Item = Vec<u8>> + 'a {
    (0..=seed.len()).flat_map(move |at| {
        let inserted = alphabet.iter().map(move |&b| {
            let mut line = seed.to_vec();
            line.insert(at, b);
            line
        });
        let replaced = alphabet
            .iter()
            .filter(move |_| at < seed.len())
            .map(move |&b| {
                let mut line = seed.to_vec();
                line[at] = b;
                line
            });
        let removed = (at < seed.len()).then(|| {
            let mut line = seed.to_vec();
            line.remove(at);
            line
        });
        inserted.chain(replaced).chain(removed)
    })
}

/// A deterministic pseudo-random sequence (xorshift64) from `seed` (not
/// zero): the same texts on every run.
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_insertion_replacement_and_removal() {
        let got: Vec<Vec<u8>> = super::single_edits(b"ab", b"x").collect();
        let want: Vec<&[u8]> = vec![b"xab", b"xb", b"b", b"axb", b"ax", b"a", b"abx"];
        assert_eq!(got, want);
    }
}
