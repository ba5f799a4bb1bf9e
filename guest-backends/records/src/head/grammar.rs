//! Stage two of the lift: a walk over the line's tokens that checks the
//! JSON grammar and picks out the head fields. Between two tokens there are
//! only spaces or the inside of a string, which stage one has vouched for
//! (no backslash, no control byte).

use super::tokens::Tokens;

/// Nesting the fast path follows (serde_json's limit is 128).
const MAX_DEPTH: u32 = 64;

/// The head fields as they stand in the line.
#[derive(Default)]
pub struct RawHead<'a> {
    pub kind: Option<&'a str>,
    pub store: Option<&'a str>,
    pub system_id: Option<&'a str>,
    /// The timestamp's number, as text.
    pub timestamp: Option<&'a str>,
}

/// What the walk expects next.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// The top-level `{`.
    Start,
    /// A key or `}` (just after `{`).
    KeyOrEnd,
    /// A key (after a `,` in an object).
    Key,
    /// The `:` after a key.
    Colon,
    /// A value (after `:`, or after a `,` in an array).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrEnd,
    /// `,` or the end of the current container.
    Next,
    /// Nothing: the top-level object has ended.
    Done,
}

/// Which head field the value being read belongs to.
#[derive(Clone, Copy, PartialEq)]
pub enum Field {
    Other,
    Kind,
    Store,
    SystemId,
    Timestamp,
}

/// The head of `text` (with its `tokens`) when
/// the line is one well-formed object whose head fields are plain; `None`
/// when serde must decide.
pub fn walk<'a>(text: &'a str, tokens: &Tokens) -> Option<RawHead<'a>> {
    let bytes = text.as_bytes();
    let mut head = RawHead::default();
    let mut expect = Expect::Start;
    // Bit `d` set when the open container at depth `d` is an object.
    let mut objects = 0u64;
    let mut depth = 0u32;
    let mut field = Field::Other;
    for (i, &b) in tokens.classes().iter().enumerate() {
        expect = match expect {
            Expect::Start if b == b'{' => {
                objects = 1;
                depth = 1;
                Expect::KeyOrEnd
            }
            Expect::KeyOrEnd | Expect::Key if b == b'"' => {
                if depth == 1 {
                    field = field_of(tokens.text(bytes, i)?);
                }
                Expect::Colon
            }
            Expect::Colon if b == b':' => Expect::Value,
            Expect::Next if b == b',' => {
                if objects >> (depth - 1) & 1 == 1 {
                    Expect::Key
                } else {
                    Expect::Value
                }
            }
            Expect::KeyOrEnd | Expect::Next if b == b'}' => close(objects, &mut depth, true)?,
            Expect::ValueOrEnd | Expect::Next if b == b']' => close(objects, &mut depth, false)?,
            Expect::Value | Expect::ValueOrEnd => {
                let lifted = std::mem::replace(&mut field, Field::Other);
                match b {
                    b'"' => {
                        let slot = match lifted {
                            Field::Other => None,
                            Field::Kind => Some(&mut head.kind),
                            Field::Store => Some(&mut head.store),
                            Field::SystemId => Some(&mut head.system_id),
                            Field::Timestamp => return None,
                        };
                        if let Some(slot) = slot {
                            if slot.is_some() {
                                return None; // a duplicate: serde names it
                            }
                            *slot = Some(as_str(text, tokens.text(bytes, i)?));
                        }
                        Expect::Next
                    }
                    b'{' | b'[' => {
                        if lifted != Field::Other || depth >= MAX_DEPTH {
                            return None;
                        }
                        if b == b'{' {
                            objects |= 1 << depth;
                        } else {
                            objects &= !(1 << depth);
                        }
                        depth += 1;
                        if b == b'{' {
                            Expect::KeyOrEnd
                        } else {
                            Expect::ValueOrEnd
                        }
                    }
                    b'}' | b']' | b':' | b',' => return None,
                    _ => {
                        let bare = tokens.text(bytes, i)?;
                        match lifted {
                            Field::Other if is_literal(bare) || is_number(bare) => {}
                            Field::Timestamp if head.timestamp.is_none() && is_number(bare) => {
                                head.timestamp = Some(as_str(text, bare));
                            }
                            _ => return None,
                        }
                        Expect::Next
                    }
                }
            }
            _ => return None,
        };
    }
    (expect == Expect::Done).then_some(head)
}

/// `part` (a piece of `text` between ASCII delimiters) as a `str`.
#[inline(always)]
pub fn as_str<'a>(text: &'a str, part: &[u8]) -> &'a str {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    &text[start..start + part.len()]
}

/// Closes the container at the top (an object when `object`); what comes
/// next, or `None` when the bracket does not match.
fn close(objects: u64, depth: &mut u32, object: bool) -> Option<Expect> {
    if (objects >> (*depth - 1) & 1 == 1) != object {
        return None;
    }
    *depth -= 1;
    Some(if *depth == 0 {
        Expect::Done
    } else {
        Expect::Next
    })
}

/// The head field `key` names.
#[inline(always)]
pub fn field_of(key: &[u8]) -> Field {
    // By length first, then whole words: no call to `memcmp` in wasm.
    let word4 = |at: usize| u32::from_le_bytes(key[at..at + 4].try_into().unwrap());
    match key.len() {
        4 if word4(0) == u32::from_le_bytes(*b"kind") => Field::Kind,
        5 if word4(0) == u32::from_le_bytes(*b"stor") && key[4] == b'e' => Field::Store,
        9 => {
            let (head, tail) = (word4(0) as u64 | (word4(4) as u64) << 32, key[8]);
            if head == u64::from_le_bytes(*b"system_i") && tail == b'd' {
                Field::SystemId
            } else if head == u64::from_le_bytes(*b"timestam") && tail == b'p' {
                Field::Timestamp
            } else {
                Field::Other
            }
        }
        _ => Field::Other,
    }
}

/// `true`, `false` or `null`.
#[inline(always)]
pub fn is_literal(word: &[u8]) -> bool {
    matches!(word, b"true" | b"false" | b"null")
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, all of `word`.
pub fn is_number(word: &[u8]) -> bool {
    // Plain indices checked against the length (no closures, no `Option`s):
    // this runs for every bare word of every line.
    let n = word.len();
    let digits_from = |mut at: usize| {
        while at < n && word[at].is_ascii_digit() {
            at += 1;
        }
        at
    };
    let mut at = usize::from(n > 0 && word[0] == b'-');
    if at >= n {
        return false;
    }
    at = match word[at] {
        b'0' => at + 1,
        b'1'..=b'9' => digits_from(at + 1),
        _ => return false,
    };
    if at < n && word[at] == b'.' {
        let end = digits_from(at + 1);
        if end == at + 1 {
            return false;
        }
        at = end;
    }
    if at < n && word[at] | 0x20 == b'e' {
        at += 1;
        if at < n && (word[at] == b'+' || word[at] == b'-') {
            at += 1;
        }
        let end = digits_from(at);
        if end == at {
            return false;
        }
        at = end;
    }
    at == n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_fields_are_named_by_their_exact_keys() {
        for (key, field) in [
            ("kind", Field::Kind),
            ("store", Field::Store),
            ("system_id", Field::SystemId),
            ("timestamp", Field::Timestamp),
        ] {
            assert!(field_of(key.as_bytes()) == field, "{key}");
            for at in 0..key.len() {
                let mut near = key.as_bytes().to_vec();
                near[at] ^= 0x20;
                assert!(field_of(&near) == Field::Other, "{near:?}");
                assert!(field_of(&key.as_bytes()[..at]) == Field::Other);
            }
        }
        assert!(field_of(b"kinds") == Field::Other);
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for good in ["0", "-0", "12", "1.5", "-0.25e+3", "1E9", "9e-0"] {
            assert!(is_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1x", "0x1", "--1", "1.2.3",
        ] {
            assert!(!is_number(bad.as_bytes()), "{bad}");
        }
    }
}
