//! Turning I/O failures into `plugin-error`s that name operation and target.

use crate::types::{IoFailure, PluginError};

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

/// A plugin error in words (for errors that report a second failure).
pub fn describe(e: &PluginError) -> String {
    match e {
        PluginError::Io(f) => format!("{} {}: {}", f.operation, f.target, f.message),
        other => format!("{other:?}"),
    }
}
