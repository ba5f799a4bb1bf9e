//! The names of a batch: each kind and store once, referred to by index.

use std::collections::HashMap;

/// Interns names in order of first use.
#[derive(Default, Debug, Clone)]
pub struct NameTable {
    names: Vec<String>,
    index: HashMap<String, u32>,
    /// The two names looked up last.
    recent: [u32; 2],
}

impl NameTable {
    /// The index of `name`, added if new.
    #[inline(always)]
    pub fn index(&mut self, name: &str) -> u32 {
        // Neighbouring records mostly share their kind and store: two
        // comparisons instead of hashing the name, inlined; the hash, with
        // its larger frame, only when they miss.
        // (Plain `if let`s: `is_some_and` with a closure stayed a call.)
        for &i in &self.recent {
            if let Some(known) = self.names.get(i as usize)
                && crate::bytes::same(known.as_bytes(), name.as_bytes())
            {
                return i;
            }
        }
        self.index_hashed(name)
    }

    /// [`index`](Self::index) by hash, remembering the answer as recent.
    #[inline(never)]
    fn index_hashed(&mut self, name: &str) -> u32 {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let i = self.names.len() as u32;
                self.names.push(name.to_string());
                self.index.insert(name.to_string(), i);
                i
            }
        };
        self.recent = [self.recent[1], i];
        i
    }

    /// The names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The names, by index, for the batch.
    pub fn into_names(self) -> Vec<String> {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_once_in_order_of_first_use() {
        let mut t = NameTable::default();
        let got: Vec<u32> = ["event", "a", "event", "b", "audit", "a", "event"]
            .iter()
            .map(|n| t.index(n))
            .collect();
        assert_eq!(got, [0, 1, 0, 2, 3, 1, 0]);
        assert_eq!(t.into_names(), ["event", "a", "b", "audit"]);
    }
}
