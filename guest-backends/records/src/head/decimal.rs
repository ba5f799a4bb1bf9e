//! Reading a plain decimal (the common timestamp, `1700000000.125`) the way
//! serde_json reads it. Texts of eight to sixteen bytes, nearly every
//! timestamp, are read a word at a time with no loop: in wasm every loop
//! turn also checks the epoch deadline, and a digit loop was most of the
//! lift's own time.

/// Powers of ten that are exact as `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A plain decimal (no exponent, at most 15 digits, not zero) computed as
/// serde_json computes it: its digits as an integer, divided once by a
/// power of ten. Both are exact, so the one division is correctly rounded
/// and serde_json (with or without `float_roundtrip`) gets the same bits.
/// Anything else, including every text that is not a JSON number (a
/// leading zero, a point without digits on both sides), is `None`: a
/// remembered shape leaves the timestamp's word to this check.
pub fn plain_decimal(text: &str) -> Option<f64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    let (significand, count, point) = if (8..=16).contains(&digits.len()) {
        by_words(digits)?
    } else {
        by_bytes(digits)?
    };
    let whole = point.unwrap_or(digits.len());
    let frac = point.map_or(0, |p| digits.len() - p - 1);
    let leading_zero = whole > 1 && digits[0] == b'0';
    if digits.is_empty() || count > 15 || leading_zero || (point.is_some() && frac == 0) {
        return None;
    }
    if significand == 0 {
        return None; // `-0` and friends: serde_json's own reading decides.
    }
    // Below 10^15, so exact as an i64 and as an f64 (cranelift converts a
    // signed integer in one instruction, an unsigned one in a dozen).
    let f = significand as f64 / POW10[frac];
    Some(if negative { -f } else { f })
}

/// The digits as an integer (wrapping past 18 digits: the caller refuses
/// more than 15), how many there are, and where the point is; `None` for
/// a byte that is neither a digit nor the first point after a digit.
fn by_bytes(digits: &[u8]) -> Option<(i64, usize, Option<usize>)> {
    let (mut significand, mut point) = (0i64, None);
    for (at, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                significand = significand
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(b - b'0'))
            }
            b'.' if point.is_none() && at > 0 => point = Some(at),
            _ => return None,
        }
    }
    Some((
        significand,
        digits.len() - usize::from(point.is_some()),
        point,
    ))
}

/// Each byte's value repeated across an 8-byte word.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// The high bit of each byte of `word` that is a digit, and of each that
/// is a point; carry-free, byte by byte.
fn digits_and_points(word: u64) -> (u64, u64) {
    let low7 = word & splat(0x7f);
    let high = word & splat(0x80);
    let at_least_0 = (low7 + splat(0x80 - b'0')) & splat(0x80);
    let above_9 = (low7 + splat(0x80 - b'9' - 1)) & splat(0x80);
    let not_point = (((word ^ splat(b'.')) & splat(0x7f)) + splat(0x7f)) | high;
    (at_least_0 & !above_9 & !high, !not_point & splat(0x80))
}

/// The bytes of a word below byte `k` (0 to 8).
fn below(k: usize) -> u64 {
    if k >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * k)) - 1
    }
}

/// [`by_bytes`] for 8 to 16 bytes (15 digits and a point at most, longer
/// is refused by the caller anyway), with no loop: the text right-aligned
/// in sixteen characters after '0's, as two words (character `i` in byte
/// `i % 8`, so the first word holds the high half of the number).
fn by_words(digits: &[u8]) -> Option<(i64, usize, Option<usize>)> {
    let n = digits.len();
    let pad = 16 - n;
    let first = u64::from_le_bytes(digits[..8].try_into().unwrap());
    let high = match pad {
        8 => splat(b'0'),
        _ => first << (8 * pad) | splat(b'0') & below(pad),
    };
    let low = u64::from_le_bytes(digits[n - 8..].try_into().unwrap());
    let (high_digits, high_points) = digits_and_points(high);
    let (low_digits, low_points) = digits_and_points(low);
    if high_digits | high_points != splat(0x80) || low_digits | low_points != splat(0x80) {
        return None;
    }
    // Where the point is, in the sixteen characters; then without it:
    // every character before it moves one place on, a '0' comes first.
    let (high, low, point) = match (high_points.count_ones(), low_points.count_ones()) {
        (0, 0) => (high, low, None),
        (1, 0) => {
            let k = high_points.trailing_zeros() as usize / 8;
            let moved = high << 8 | u64::from(b'0');
            (high & !below(k + 1) | moved & below(k + 1), low, Some(k))
        }
        (0, 1) => {
            let k = low_points.trailing_zeros() as usize / 8;
            let moved = low << 8 | high >> 56;
            (
                high << 8 | u64::from(b'0'),
                low & !below(k + 1) | moved & below(k + 1),
                Some(8 + k),
            )
        }
        _ => return None,
    };
    let point = match point {
        Some(p) if p == pad => return None, // the point comes first
        p => p.map(|p| p - pad),
    };
    let significand = eight_digits(high) * 100_000_000 + eight_digits(low);
    Some((significand as i64, n - usize::from(point.is_some()), point))
}

/// The value of eight ASCII digits, the first in the lowest byte.
fn eight_digits(word: u64) -> u64 {
    let v = word - 0x3030_3030_3030_3030;
    // Pairs, then quads, then the eight: the usual multiply-and-shift.
    let v = (v * 10) + (v >> 8);
    ((v & 0x0000_00ff_0000_00ff) * (100 + (1_000_000 << 32))
        + ((v >> 16) & 0x0000_00ff_0000_00ff) * (1 + (10_000 << 32)))
        >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_bytes_agree_on_every_text_of_eight_to_sixteen_bytes() {
        let mut next = crate::edits::xorshift(0x853c_49e6_748f_ea9bu64);
        let alphabets: [&[u8]; 3] = [
            b"0123456789",
            b"0123456789.",
            b"0123456789./:\x80\xb5\xae\xff-e ",
        ];
        let mut read = 0;
        for round in 0..600_000 {
            let alphabet = alphabets[round % 3];
            let len = 8 + (next() % 9) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let bytes = by_bytes(&text);
            let words = by_words(&text);
            // Past 15 digits the two may wrap differently; the caller refuses those.
            if let Some((_, count, _)) = bytes.filter(|b| b.1 <= 15) {
                assert_eq!(
                    words,
                    bytes,
                    "{:?} ({count} digits)",
                    String::from_utf8_lossy(&text)
                );
                read += 1;
            } else if bytes.is_none() {
                assert_eq!(words, None, "{:?}", String::from_utf8_lossy(&text));
            }
        }
        assert!(read > 100_000, "{read}");
        assert_eq!(
            by_words(b"1700000000.125"),
            Some((1_700_000_000_125, 13, Some(10)))
        );
        assert_eq!(
            by_words(b"123456789012345."),
            Some((123_456_789_012_345, 15, Some(15)))
        );
        assert_eq!(eight_digits(u64::from_le_bytes(*b"12345678")), 12_345_678);
    }
}
