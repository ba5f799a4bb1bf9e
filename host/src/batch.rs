//! Records in bulk, laid out as they cross into a plugin: what the CLI
//! builds from NDJSON without a `Record` (and its three strings) per line,
//! and what [`crate::Store::append_batch`] takes.

use crate::error::Result;
use crate::record::{Record, lift_plain};
use crate::wit::batch::BatchBuilder;

/// Records ready to append, in order.
#[derive(Default)]
pub struct Batch {
    pub(crate) builder: BatchBuilder,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record.
    pub fn push(&mut self, record: &Record) {
        self.builder
            .push(&record.kind, &record.store, record.timestamp, &record.json);
    }

    /// Adds one line of JSON, lifted and checked as
    /// [`Record::from_json_line`] does (a missing `timestamp` becomes
    /// `now`); the line's text is kept byte for byte. A line that is not a
    /// record is refused and the batch is unchanged.
    pub fn push_json_line(&mut self, line: &str, now: f64) -> Result<()> {
        let line = line.trim();
        if let Some((kind, store, timestamp)) = lift_plain(line) {
            self.builder.push(kind, store, timestamp, line);
            return Ok(());
        }
        let record = Record::from_json_string(line.to_string(), now)?;
        self.push(&record);
        Ok(())
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.builder.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.builder.len() == 0
    }
}

impl From<&[Record]> for Batch {
    fn from(records: &[Record]) -> Self {
        let bytes = records.iter().map(|r| r.json.len()).sum();
        let mut batch = Batch {
            builder: BatchBuilder::with_capacity(records.len(), bytes),
        };
        for r in records {
            batch.push(r);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_records_make_the_same_batch() {
        let lines = [
            r#"{"kind":"event","system_id":"a","timestamp":1.5}"#,
            r#" {"kind":"audit","store":"s","timestamp":2} "#,
            r#"{"kind":"e\u0076ent","timestamp":3}"#,
            r#"{"kind":"event"}"#,
        ];
        let mut from_lines = Batch::new();
        for line in lines {
            from_lines.push_json_line(line, 9.0).unwrap();
        }
        let records: Vec<Record> = lines
            .iter()
            .map(|l| Record::from_json_line(l, 9.0).unwrap())
            .collect();
        let from_records = Batch::from(records.as_slice());
        let (a, b) = (from_lines.builder.finish(), from_records.builder.finish());
        assert_eq!(a.text, b.text);
        assert_eq!(a.names, b.names);
        assert_eq!(a.json_lens.len(), 4);
        assert_eq!(
            (&a.json_lens, &a.kinds, &a.stores, &a.timestamps),
            (&b.json_lens, &b.kinds, &b.stores, &b.timestamps)
        );
        let mut bad = Batch::new();
        assert!(
            bad.push_json_line(r#"{"kind":"event","timestamp":"x"}"#, 0.0)
                .is_err()
        );
        assert!(bad.push_json_line("[1]", 0.0).is_err());
        assert!(bad.is_empty());
    }
}
