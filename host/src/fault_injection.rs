//! A file layer for storage-fault tests: the Nth write or sync a plugin
//! makes fails, with "no space left on the device" or an I/O error, as
//! RocksDB's fault-injection file system does for its own files.
//!
//! The host serves the WASI calls through which plugins write and sync
//! files (stream writes, `sync`, `sync-data`: `wasi_files.rs`); with a
//! [`FaultPlan`] in the store's configuration, each is counted and the
//! planned one fails. Built with the `test-support` feature only. A failing write under `NoSpace` first writes half of
//! its bytes, as a nearly full disk does; an I/O error writes nothing. Each
//! plan fails one operation: a disk that stays full is tested on a real,
//! small tmpfs, where the kernel decides what freeing space allows.

use std::sync::Mutex;

use crate::sandbox::PluginState;
use crate::wasi_files::Injected;

/// What the planned failure looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ENOSPC`: half the bytes of a write land (a sync fails outright).
    NoSpace,
    /// `EIO`, with nothing written.
    Io,
}

impl Fault {
    fn error(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(match self {
            Fault::NoSpace => libc::ENOSPC,
            Fault::Io => libc::EIO,
        })
    }
}

/// Which operations count towards the Nth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// File writes only.
    Writes,
    /// `sync` and `sync-data` only.
    Syncs,
    /// Both.
    Any,
}

#[derive(Debug, Default)]
struct State {
    counted: u64,
    fired: u64,
    disarmed: bool,
}

/// When and how a plugin's file operations fail.
#[derive(Debug)]
pub struct FaultPlan {
    fault: Fault,
    target: Target,
    nth: u64,
    state: Mutex<State>,
}

/// Whether one counted operation goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Proceed,
    Fail(Fault),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Sync,
}

impl FaultPlan {
    /// Fails the `nth` (1-based) operation of `target` with `fault`.
    pub fn fail_nth(nth: u64, target: Target, fault: Fault) -> std::sync::Arc<Self> {
        std::sync::Arc::new(FaultPlan {
            fault,
            target,
            nth: nth.max(1),
            state: Mutex::default(),
        })
    }

    /// Operations failed so far.
    pub fn fired(&self) -> u64 {
        self.state.lock().unwrap().fired
    }

    /// Stops counting and failing: the test is done with this plan.
    pub fn disarm(&self) {
        self.state.lock().unwrap().disarmed = true;
    }

    fn next(&self, op: Op) -> Verdict {
        let mut state = self.state.lock().unwrap();
        if state.disarmed {
            return Verdict::Proceed;
        }
        let counts = matches!(
            (self.target, op),
            (Target::Any, _) | (Target::Writes, Op::Write) | (Target::Syncs, Op::Sync)
        );
        if !counts {
            return Verdict::Proceed;
        }
        state.counted += 1;
        if state.counted != self.nth {
            return Verdict::Proceed;
        }
        state.fired += 1;
        Verdict::Fail(self.fault)
    }
}

/// The injected failure for this plugin's next write (`sync: false`) or
/// sync, if its plan has one; `half` when half the bytes land first.
pub(crate) fn next_failure(state: &PluginState, sync: bool) -> Option<Injected> {
    let op = if sync { Op::Sync } else { Op::Write };
    match state.faults.as_ref()?.next(op) {
        Verdict::Proceed => None,
        Verdict::Fail(fault) => Some(Injected {
            error: fault.error(),
            half: fault == Fault::NoSpace,
        }),
    }
}
