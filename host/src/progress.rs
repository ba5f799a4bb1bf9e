//! Progress of long operations, reported in bytes.

/// Receives progress; the CLI draws a bar, embedders may log or ignore it.
pub trait Progress: Sync {
    /// A phase starts (`scan`, `compact: pass 1`, ...) covering `total` bytes.
    fn begin(&self, phase: &str, total: u64);
    /// `bytes` more of the current phase are done.
    fn advance(&self, bytes: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
