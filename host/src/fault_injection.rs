//! A file layer for storage-fault tests: the Nth write or sync a plugin
//! makes fails, with "no space left on the device" or an I/O error, as
//! RocksDB's fault-injection file system does for its own files.
//!
//! The host serves the WASI calls through which plugins write and sync
//! files (stream writes, `sync`, `sync-data`); with a
//! [`FaultPlan`] in the store's configuration, each is counted and the
//! planned one fails. A failing write under `NoSpace` first writes half of
//! its bytes, as a nearly full disk does; an I/O error writes nothing. Each
//! plan fails one operation: a disk that stays full is tested on a real,
//! small tmpfs, where the kernel decides what freeing space allows.

use std::sync::Mutex;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    Host as StreamsHost, HostOutputStream, StreamError as WitStreamError,
};
use wasmtime_wasi_io::streams::{DynOutputStream, StreamError};

use crate::sandbox::PluginState;

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

    /// Operations of the target kind seen so far.
    pub fn counted(&self) -> u64 {
        self.state.lock().unwrap().counted
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

fn verdict(state: &PluginState, op: Op) -> Verdict {
    match &state.faults {
        Some(plan) => plan.next(op),
        None => Verdict::Proceed,
    }
}

/// The verdict for a sync, as the error it should return (if any).
pub(crate) fn sync_fault(state: &PluginState) -> Option<ErrorCode> {
    match verdict(state, Op::Sync) {
        Verdict::Proceed => None,
        Verdict::Fail(fault) => Some(ErrorCode::from(&fault.error())),
    }
}

type WriteResult = wasmtime::Result<(Result<(), WitStreamError>,)>;

fn to_wit(state: &mut PluginState, result: Result<(), StreamError>) -> WriteResult {
    match result {
        Ok(()) => Ok((Ok(()),)),
        Err(e) => {
            // The guest's libc reports a failed stream write as a bare I/O
            // error; the host keeps what the file system said, for the error
            // the operator reads (no space left, quota, ...).
            if let StreamError::LastOperationFailed(cause) = &e
                && let Some(io) = cause.downcast_ref::<std::io::Error>()
            {
                state.storage_error = Some(io.to_string());
            }
            Ok((Err(StreamsHost::convert_stream_error(state.table(), e)?),))
        }
    }
}

/// A stream write, `write` or (with `flush`) `blocking-write-and-flush`,
/// failing as planned.
async fn write(
    state: &mut PluginState,
    stream: Resource<DynOutputStream>,
    bytes: Vec<u8>,
    flush: bool,
) -> Result<(), StreamError> {
    let fault = match verdict(state, Op::Write) {
        Verdict::Proceed if flush => {
            return HostOutputStream::blocking_write_and_flush(state.table(), stream, bytes).await;
        }
        Verdict::Proceed => return HostOutputStream::write(state.table(), stream, bytes),
        Verdict::Fail(fault) => fault,
    };
    if fault == Fault::NoSpace {
        // Half lands, and has landed before the error is seen.
        let half = bytes[..bytes.len() / 2].to_vec();
        let _ = HostOutputStream::blocking_write_and_flush(state.table(), stream, half).await;
    }
    Err(StreamError::LastOperationFailed(fault.error().into()))
}

/// Serves the write calls of WASI so that a [`FaultPlan`], when the store
/// has one, can fail them. Without one they behave as wasmtime-wasi's.
pub(crate) fn link_write_calls(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut streams = linker.instance("wasi:io/streams@0.2.12")?;
    for (name, flush) in [
        ("[method]output-stream.write", false),
        ("[method]output-stream.blocking-write-and-flush", true),
    ] {
        streams.func_wrap_async(
            name,
            move |mut store: StoreContextMut<'_, PluginState>,
                  (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
                Box::new(async move {
                    let state = store.data_mut();
                    let result = write(state, stream, bytes, flush).await;
                    to_wit(state, result)
                })
            },
        )?;
    }
    // A file write's failure surfaces at the next `check-write` or flush:
    // served here too, only to keep what the file system said.
    streams.func_wrap(
        "[method]output-stream.check-write",
        |mut store: StoreContextMut<'_, PluginState>, (stream,): (Resource<DynOutputStream>,)| {
            let state = store.data_mut();
            match HostOutputStream::check_write(state.table(), stream) {
                Ok(n) => Ok((Ok(n),)),
                Err(e) => to_wit(state, Err(e)).map(|(r,)| (r.map(|()| 0),)),
            }
        },
    )?;
    streams.func_wrap_async(
        "[method]output-stream.blocking-flush",
        |mut store: StoreContextMut<'_, PluginState>, (stream,): (Resource<DynOutputStream>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let result = HostOutputStream::blocking_flush(state.table(), stream).await;
                to_wit(state, result)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
