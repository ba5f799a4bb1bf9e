//! Errors at the library's public edge.

use std::path::PathBuf;

/// Everything the quire host can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plugin could not be loaded: not a component, wrong WIT version, bad imports.
    #[error("plugin {plugin}: {message}")]
    Load {
        /// The plugin (built-in name or file path).
        plugin: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A plugin returned an error of its own.
    #[error("plugin {plugin} failed during {operation}: {message}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// The host operation that called it.
        operation: String,
        /// The plugin's error, rendered.
        message: String,
    },
    /// A plugin does not implement an operation (a single file cannot be
    /// sealed, a 0.1 plugin keeps no receipts): callers may fall back.
    #[error("plugin {plugin} does not support {operation}: {message}")]
    Unsupported {
        /// The plugin.
        plugin: String,
        /// The host operation that called it.
        operation: String,
        /// The plugin's explanation.
        message: String,
    },
    /// A plugin trapped, ran out of time or memory, or returned something
    /// impossible. Its instance was discarded; the next call gets a fresh one.
    #[error(
        "plugin {plugin} faulted during {operation}: {cause} (the plugin was restarted; no data was changed by this call's failure)"
    )]
    Fault {
        /// The plugin.
        plugin: String,
        /// The host operation that called it.
        operation: String,
        /// Trap message, deadline or limit.
        cause: String,
    },
    /// The data path is unusable.
    #[error("{path}: {message}")]
    Path {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Another process holds the store's write lock.
    #[error("{path} is locked by another quire process; wait for it to finish or stop it")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A record given to append is not acceptable.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// An option or argument is not acceptable.
    #[error("{0}")]
    Usage(String),
    /// Recovery ran but a re-scan still finds anomalies.
    #[error("recovery finished but {remaining} anomalies remain after re-scan")]
    NotRecovered {
        /// Anomalies found by the validating re-scan.
        remaining: usize,
    },
    /// Something else, with its context chain.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
