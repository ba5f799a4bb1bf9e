//! Lines from one writer mostly share a shape: the same tokens in the same
//! order, with other words and other string contents. A line whose tokens
//! match a shape the grammar walk has already accepted is grammatical
//! without walking again; what is left to check is what the token classes
//! do not say — each bare word is a number or literal, and each top-level
//! key names the same head field (or none) as before.

use super::grammar::{Field, RawHead, as_str, field_of, is_literal, is_number};
use super::tokens::{Tokens, WORD};
use crate::bytes::same;

/// Shapes remembered (a store mixing kinds has a few).
const SHAPES: usize = 4;

/// The shape of a line the walk accepted.
#[derive(Default)]
struct Shape {
    class: Vec<u8>,
    /// Top-level keys: token index, and the head field each names.
    keys: Vec<(u32, Field)>,
    /// Bare words other than the timestamp, by token index.
    words: Vec<u32>,
    /// Token index of the value of `kind`, `store`, `system_id`, `timestamp`.
    values: [Option<u32>; 4],
}

/// Remembered shapes, and the token buffers lines are gathered into.
pub struct Shapes {
    pub tokens: Tokens,
    shapes: Vec<Shape>,
    next: usize,
}

impl Default for Shapes {
    fn default() -> Self {
        Self::new()
    }
}

impl Shapes {
    /// No shapes remembered yet.
    pub const fn new() -> Self {
        Shapes {
            tokens: Tokens::new(),
            shapes: Vec::new(),
            next: 0,
        }
    }

    /// The head of the gathered line when it fits a remembered shape;
    /// `None` when it fits none (the walk decides).
    pub fn fit<'a>(&self, text: &'a str) -> Option<RawHead<'a>> {
        let tokens = &self.tokens;
        let shape = self
            .shapes
            .iter()
            .find(|s| same(&s.class, tokens.classes()))?;
        let bytes = text.as_bytes();
        for &(key, field) in &shape.keys {
            if field_of(tokens.text(bytes, key as usize)?) != field {
                return None;
            }
        }
        for &word in &shape.words {
            let bare = tokens.text(bytes, word as usize)?;
            if !(is_literal(bare) || is_number(bare)) {
                return None;
            }
        }
        // The timestamp's word is checked where it is read: only a JSON
        // number gives a value (`head::timestamp_value`), else serde decides.
        let timestamp = match shape.values[3] {
            Some(i) => Some(tokens.text(bytes, i as usize)?),
            None => None,
        };
        Some(RawHead {
            kind: string(text, tokens, shape.values[0])?,
            store: string(text, tokens, shape.values[1])?,
            system_id: string(text, tokens, shape.values[2])?,
            timestamp: timestamp.map(|t| as_str(text, t)),
        })
    }

    /// Whether a shape with the tokens of `text` is remembered (tests).
    #[cfg(test)]
    pub fn remembers(&self, text: &str) -> bool {
        let mut tokens = Tokens::default();
        if !tokens.gather(text.as_bytes(), super::tokens::Refuse::Nothing) {
            return false;
        }
        self.shapes.iter().any(|s| same(&s.class, tokens.classes()))
    }

    /// Remembers the shape of the gathered line, which the walk accepted.
    pub fn learn(&mut self, text: &str) {
        if self.shapes.len() < SHAPES {
            self.shapes.push(Shape::default());
        }
        let slot = self.next % self.shapes.len();
        self.next = slot + 1;
        let shape = &mut self.shapes[slot];
        let tokens = &self.tokens;
        shape.class.clear();
        shape.class.extend_from_slice(tokens.classes());
        shape.keys.clear();
        shape.words.clear();
        shape.values = [None; 4];
        let class = tokens.classes();
        let mut depth = 0u32;
        for (i, &c) in class.iter().enumerate() {
            match c {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b'"' if depth == 1 && matches!(class[i - 1], b'{' | b',') => {
                    let key = tokens
                        .text(text.as_bytes(), i)
                        .expect("the walk accepted it");
                    let field = field_of(key);
                    shape.keys.push((i as u32, field));
                    // The value follows the key and its colon.
                    let value = Some(i as u32 + 2);
                    match field {
                        Field::Other => {}
                        Field::Kind => shape.values[0] = value,
                        Field::Store => shape.values[1] = value,
                        Field::SystemId => shape.values[2] = value,
                        Field::Timestamp => shape.values[3] = value,
                    }
                }
                WORD if shape.values[3] != Some(i as u32) => shape.words.push(i as u32),
                _ => {}
            }
        }
    }
}

/// The string at token `i`, if the shape has one there; `None` when the
/// line does not hold it as it should.
#[inline(always)]
fn string<'a>(text: &'a str, tokens: &Tokens, i: Option<u32>) -> Option<Option<&'a str>> {
    match i {
        None => Some(None),
        Some(i) => Some(Some(as_str(
            text,
            tokens.text(text.as_bytes(), i as usize)?,
        ))),
    }
}
