//! Every per-instance limit in one place: the numbers, their defaults, and
//! the resource limiter that enforces them and remembers what it refused,
//! so that a fault names the limit instead of wasmtime's wording.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Resource limits per plugin instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory the plugin may grow to, over all its memories.
    pub memory_bytes: usize,
    /// Longest a single call may take, by the wall clock: computing,
    /// sleeping and waiting on I/O all count.
    pub timeout: Duration,
    /// Most handles (open files and directories, streams, pollables,
    /// sockets) the plugin may hold at once.
    pub open_handles: usize,
}

impl Limits {
    /// Core instances a component may create. A Rust guest needs 2–4; a
    /// Python component built by componentize-py needs 14.
    pub const INSTANCES: usize = 64;
    /// Tables a component may create.
    pub const TABLES: usize = 64;
    /// Linear memories a component may create.
    pub const MEMORIES: usize = 16;
    /// Most elements one table may grow to.
    pub const TABLE_ELEMENTS: usize = 1 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(30),
            open_handles: 1024,
        }
    }
}

/// Enforces [`Limits`] on one instance's store and records the first
/// refusal.
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_bytes: usize,
    /// Bytes of linear memory granted so far, over all memories.
    memory_in_use: usize,
    /// What was refused, in words, for the fault that follows.
    pub denied: Option<String>,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Limiter {
            memory_bytes: limits.memory_bytes,
            memory_in_use: 0,
            denied: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if total > self.memory_bytes {
            self.denied.get_or_insert_with(|| {
                format!(
                    "exceeded its memory limit of {} MiB (asked for {} MiB in all)",
                    self.memory_bytes >> 20,
                    total.div_ceil(1 << 20)
                )
            });
            return Ok(false);
        }
        self.memory_in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > Limits::TABLE_ELEMENTS {
            self.denied.get_or_insert_with(|| {
                format!(
                    "exceeded its table limit of {} elements",
                    Limits::TABLE_ELEMENTS
                )
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        Limits::INSTANCES
    }

    fn tables(&self) -> usize {
        Limits::TABLES
    }

    fn memories(&self) -> usize {
        Limits::MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(mib: usize) -> Limiter {
        Limiter::new(&Limits {
            memory_bytes: mib << 20,
            ..Limits::default()
        })
    }

    #[test]
    fn memory_is_counted_over_all_memories_and_the_refusal_is_named() {
        let mut l = limiter(4);
        assert!(l.memory_growing(0, 2 << 20, None).unwrap());
        assert!(
            l.memory_growing(0, 2 << 20, None).unwrap(),
            "a second memory fits"
        );
        assert!(l.denied.is_none());
        assert!(!l.memory_growing(2 << 20, 3 << 20, None).unwrap());
        let denied = l.denied.as_deref().unwrap();
        assert!(denied.contains("memory limit of 4 MiB"), "{denied}");
        assert!(denied.contains("5 MiB"), "{denied}");
    }

    #[test]
    fn growing_one_memory_counts_only_the_difference() {
        let mut l = limiter(4);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(l.memory_growing(1 << 20, 4 << 20, None).unwrap());
        assert!(!l.memory_growing(4 << 20, (4 << 20) + 1, None).unwrap());
    }

    #[test]
    fn tables_are_bounded() {
        let mut l = limiter(4);
        assert!(l.table_growing(0, 1000, None).unwrap());
        assert!(
            !l.table_growing(0, Limits::TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
        assert!(l.denied.unwrap().contains("table limit"));
    }
}
