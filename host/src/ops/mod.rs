//! The algorithms the host drives over any backend.

pub mod compact;
pub mod durability;
pub mod groups;
pub mod inspect;
mod merge;
pub mod migrate;
pub(crate) mod open_quarantine;
pub mod read;
pub mod recover;
pub mod rewrite;
pub mod scan;
pub mod startup;
mod unverified;

/// Records per boundary crossing.
pub const BATCH: u32 = 1024;
/// Bytes a plugin validates per call.
pub const SCAN_BUDGET: u64 = 4 << 20;
