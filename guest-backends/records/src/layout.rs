//! The `record-batch` layout: each record's JSON followed by one newline,
//! its length in its entry. One walk checks it for both sides.

/// Where each record's JSON starts in `text`, given the records' JSON
/// lengths in order. Every record must end where its length says, at a
/// newline, and the text must end with the last one; a record that does not
/// fit is named by its index. (Newlines inside a record are not looked for:
/// a caller counts them once over the whole text when it must know.)
pub fn starts(
    text: &[u8],
    lengths: impl IntoIterator<Item = u32>,
) -> Result<Vec<u32>, (usize, String)> {
    let lengths = lengths.into_iter();
    let mut starts = Vec::with_capacity(lengths.size_hint().0);
    let mut at = 0usize;
    for (n, len) in lengths.enumerate() {
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
        starts.push(start);
        at = end + 1;
    }
    if at != text.len() {
        return Err((
            starts.len(),
            format!(
                "{} bytes of batch text after the last record",
                text.len() - at
            ),
        ));
    }
    Ok(starts)
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
    }
}
