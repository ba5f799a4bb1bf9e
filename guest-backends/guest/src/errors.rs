//! Turning I/O failures into `plugin-error`s that name operation and target.

use crate::types::{IoFailure, PluginError, RecordRejection};

/// Wraps an I/O error with the operation and the path it concerned.
pub fn io(operation: &str, target: &str, err: std::io::Error) -> PluginError {
    PluginError::Io(IoFailure {
        operation: operation.to_string(),
        target: target.to_string(),
        message: err.to_string(),
    })
}

/// Extension for `Result<T, io::Error>`: `.ctx("write", path)?`.
pub trait IoContext<T> {
    /// Attaches the operation and target to an I/O error.
    fn ctx(self, operation: &str, target: &str) -> Result<T, PluginError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, operation: &str, target: &str) -> Result<T, PluginError> {
        self.map_err(|e| io(operation, target, e))
    }
}

/// Refuses record `index` of a batch for `reason` (nothing of the batch is
/// written).
pub fn rejected(index: usize, reason: impl Into<String>) -> PluginError {
    PluginError::InvalidRecord(RecordRejection {
        index: index as u32,
        reason: reason.into(),
    })
}

/// A plugin error in words (for errors that report a second failure).
pub fn describe(e: &PluginError) -> String {
    match e {
        PluginError::Io(f) => format!("{} `{}`: {}", f.operation, f.target, f.message),
        other => format!("{other:?}"),
    }
}

/// `e` with `note` added to its message (what became of a batch, say).
pub fn with_note(e: PluginError, note: &str) -> PluginError {
    match e {
        PluginError::Io(f) => PluginError::Io(IoFailure {
            message: format!("{}{note}", f.message),
            ..f
        }),
        PluginError::InvalidState(s) => PluginError::InvalidState(s + note),
        PluginError::InvalidConfig(s) => PluginError::InvalidConfig(s + note),
        PluginError::Unsupported(s) => PluginError::Unsupported(s + note),
        PluginError::InvalidRecord(r) => PluginError::InvalidRecord(RecordRejection {
            reason: r.reason + note,
            ..r
        }),
        PluginError::Corrupt(mut a) => {
            a.detail.push_str(note);
            PluginError::Corrupt(a)
        }
        // Its text is the unit id: left as it is.
        e @ PluginError::NoSuchUnit(_) => e,
    }
}

/// What a rewriter whose format cannot copy stored records answers to
/// `copy` (the host then writes the records instead).
pub fn cannot_copy(format: &str) -> PluginError {
    PluginError::Unsupported(format!("{format} rewriters take records, not stored bytes"))
}
