//! The seam for storage faults: every write and sync of segment bytes and
//! manifests, and every cut a rollback makes, goes through here. Outside
//! tests each function is the plain operation. A test arms a plan on its
//! thread ("the 3rd write fails: no space left") to see what a failing
//! disk leaves behind; directory syncs are not counted.

use std::fs::File;
use std::io::{self, ErrorKind, Write};

/// What a planned fault can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Bytes written to a segment, or a manifest written.
    Write,
    /// A segment's `fsync` / `fdatasync`.
    Sync,
    /// A rollback's truncation or removal of a file.
    Cut,
}

/// Writes all of `bytes`. A write that meets a full disk lands half of
/// them first, as a nearly full disk does.
pub fn write_all(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    if let Err(e) = check(Op::Write) {
        if e.kind() == ErrorKind::StorageFull {
            let _ = file.write_all(&bytes[..bytes.len() / 2]);
        }
        return Err(e);
    }
    file.write_all(bytes)
}

/// `fdatasync`.
pub fn sync_data(file: &File) -> io::Result<()> {
    check(Op::Sync)?;
    quire_guest::sync::sync_data(file)
}

/// `fsync`: for a new file, whose size and name must reach the disk too.
pub fn sync_all(file: &File) -> io::Result<()> {
    check(Op::Sync)?;
    file.sync_all()
}

/// Fails if the plan says this operation fails.
#[cfg(not(test))]
#[inline]
pub fn check(_op: Op) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub use plan::check;

/// The test side: arm a plan, run, clear.
#[cfg(test)]
pub mod plan {
    use std::cell::RefCell;
    use std::io::{self, ErrorKind};

    use super::Op;

    /// How the planned operation fails.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        /// `ENOSPC`: from then on every write and sync fails too (cuts
        /// still work, as they do on a full disk), until [`clear`].
        NoSpace,
        /// `EIO`, once.
        Io,
    }

    #[derive(Default)]
    struct Plan {
        /// (operation, nth of its kind, fault).
        faults: Vec<(Op, u64, Fault)>,
        /// Operations seen, per kind: write, sync, cut.
        counted: [u64; 3],
        fired: u64,
        /// The disk is full: writes and syncs fail.
        full: bool,
    }

    thread_local! {
        static PLAN: RefCell<Plan> = RefCell::default();
    }

    /// Makes the `nth` (1-based) operation of kind `op` on this thread
    /// fail, counting from now; on top of what is armed already.
    pub fn arm(op: Op, nth: u64, fault: Fault) {
        PLAN.with(|p| {
            let mut p = p.borrow_mut();
            let nth = nth + p.counted[op as usize];
            p.faults.push((op, nth, fault));
        });
    }

    /// Disarms everything; returns how many operations failed.
    pub fn clear() -> u64 {
        PLAN.with(|p| std::mem::take(&mut *p.borrow_mut()).fired)
    }

    /// Fails if the armed plan says so.
    pub fn check(op: Op) -> io::Result<()> {
        PLAN.with(|p| {
            let mut p = p.borrow_mut();
            p.counted[op as usize] += 1;
            let seen = p.counted[op as usize];
            let planned = p
                .faults
                .iter()
                .find(|(o, n, _)| *o == op && *n == seen)
                .map(|f| f.2);
            let fault = match planned {
                Some(f) => f,
                None if p.full && op != Op::Cut => Fault::NoSpace,
                None => return Ok(()),
            };
            p.fired += 1;
            Err(match fault {
                Fault::NoSpace => {
                    p.full = true;
                    io::Error::new(ErrorKind::StorageFull, "No space left on device (injected)")
                }
                Fault::Io => io::Error::other("Input/output error (injected)"),
            })
        })
    }
}
