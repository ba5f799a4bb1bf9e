//! Building the anomalies a backend reports, located to the byte.

use crate::types::{Anomaly, AnomalyKind};

/// An anomaly of `kind` at bytes `offset..offset + length` of `unit`, with
/// no line number (line formats number lines where they find them).
pub fn at(kind: AnomalyKind, unit: &str, offset: u64, length: u64, detail: String) -> Anomaly {
    Anomaly {
        kind,
        unit: unit.to_string(),
        offset,
        length,
        line: None,
        detail,
    }
}
