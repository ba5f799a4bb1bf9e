//! The WASI file calls the host serves itself instead of wasmtime-wasi:
//! `sync` and `sync-data`, and stream writes.
//!
//! Writes: the guest's libc reduces a failed stream write to "I/O error",
//! so the host keeps what the file system said (no space left, quota...)
//! for the error the operator reads. With the `test-support` feature the
//! same calls feed the power-loss tracker (`power_loss.rs`) and can fail
//! as a fault plan says (`fault_injection.rs`).

use std::fs::File;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::ErrorCode as SyncErrorCode;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    Host as StreamsHost, HostOutputStream, StreamError as WitStreamError,
};
use wasmtime_wasi_io::streams::{DynOutputStream, StreamError};

use crate::sandbox::PluginState;

/// A failure a test layer injects into one write or sync.
pub(crate) struct Injected {
    /// What the call fails with.
    pub error: std::io::Error,
    /// Half of a write's bytes land first (a nearly full disk).
    pub half: bool,
}

#[cfg(feature = "test-support")]
fn injected(state: &PluginState, sync: bool) -> Option<Injected> {
    crate::fault_injection::next_failure(state, sync)
}

#[cfg(not(feature = "test-support"))]
fn injected(_state: &PluginState, _sync: bool) -> Option<Injected> {
    None
}

/// Tells the power-loss tracker, if the store has one, what was synced.
#[cfg(feature = "test-support")]
fn note_synced(state: &PluginState, file: &File) {
    if let Some(tracker) = &state.sync_tracker {
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            tracker.note_dir(file);
        } else {
            tracker.note_file(file);
        }
    }
}

#[cfg(not(feature = "test-support"))]
fn note_synced(_state: &PluginState, _file: &File) {}

fn descriptor_file(state: &mut PluginState, fd: &Resource<Descriptor>) -> Option<Arc<File>> {
    match state.table().get(fd).ok()? {
        Descriptor::File(f) => Some(f.file.clone()),
        Descriptor::Dir(d) => Some(d.dir.clone()),
    }
}

/// `descriptor.sync` (`all`) or `descriptor.sync-data`.
fn sync(state: &mut PluginState, fd: Resource<Descriptor>, all: bool) -> Result<(), ErrorCode> {
    let file = descriptor_file(state, &fd).ok_or(ErrorCode::BadDescriptor)?;
    if let Some(injected) = injected(state, true) {
        return Err(ErrorCode::from(&injected.error));
    }
    let synced = if all {
        file.sync_all()
    } else {
        file.sync_data()
    };
    // The plugin learns what failed (no space, I/O error), not just that it did.
    synced.map_err(|e| ErrorCode::from(&e))?;
    note_synced(state, &file);
    Ok(())
}

/// The bytes of a stream write, copied from the plugin's memory into the
/// state's reusable buffer. Lifting them as a `Vec` allocated and freed a
/// batch-sized buffer per write, and with the host's own batch buffer that
/// churn made the C allocator return its heap top to the kernel and fault
/// it back in on every append (a third of an append's time). The write
/// consumes the returned bytes before the next copy, so the buffer's
/// memory is unique again by then and is reused.
fn copy_in(store: &mut StoreContextMut<'_, PluginState>, list: &WasmList<u8>) -> Bytes {
    if list.len() > MAX_KEPT_BUFFER {
        // A rare large write (a rewrite's copy) gets a buffer of its own,
        // freed after it, so the host keeps no more than this between writes.
        return Bytes::copy_from_slice(list.as_le_slice(&*store));
    }
    let mut buffer = std::mem::take(&mut store.data_mut().write_buffer);
    buffer.clear();
    if !buffer.try_reclaim(list.len()) {
        // Grown only here, by powers of two up to the limit (never past it).
        buffer = BytesMut::with_capacity(list.len().next_power_of_two().min(MAX_KEPT_BUFFER));
    }
    buffer.extend_from_slice(list.as_le_slice(&*store));
    let bytes = buffer.split().freeze();
    store.data_mut().write_buffer = buffer;
    bytes
}

/// The largest write copied through the reused buffer (an append batch of
/// a thousand records is a few hundred KiB).
const MAX_KEPT_BUFFER: usize = 1 << 20;

/// A stream write, `write` or (with `flush`) `blocking-write-and-flush`.
async fn write(
    state: &mut PluginState,
    stream: Resource<DynOutputStream>,
    bytes: Bytes,
    flush: bool,
) -> Result<(), StreamError> {
    let Some(injected) = injected(state, false) else {
        if flush {
            // At most 4 KiB (wasmtime-wasi refuses more): a second copy into
            // the `Vec` its check takes costs nothing worth saving.
            return HostOutputStream::blocking_write_and_flush(
                state.table(),
                stream,
                bytes.to_vec(),
            )
            .await;
        }
        // A plain `write` is finished before it returns: for a file this is
        // one write on the calling thread (wasmtime-wasi would hand every
        // write to a tokio blocking thread and back, a tenth of an append's
        // time); the guest was granted these bytes by `check-write` and sees
        // no difference. The call stays inside the plugin's timeout.
        let stream = state
            .table()
            .get_mut(&stream)
            .map_err(|e| StreamError::Trap(e.into()))?;
        return stream.blocking_write_and_flush(bytes).await;
    };
    if injected.half {
        // Half lands, and has landed before the error is seen.
        let half = bytes.slice(..bytes.len() / 2);
        if let Ok(stream) = state.table().get_mut(&stream) {
            let _ = stream.blocking_write_and_flush(half).await;
        }
    }
    Err(StreamError::LastOperationFailed(injected.error.into()))
}

/// Bytes a ready stream is offered per `write`.
const WRITE_PERMIT: u64 = 4 << 20;

type WriteResult = wasmtime::Result<(Result<(), WitStreamError>,)>;

fn to_wit(state: &mut PluginState, result: Result<(), StreamError>) -> WriteResult {
    match result {
        Ok(()) => Ok((Ok(()),)),
        Err(e) => {
            if let StreamError::LastOperationFailed(cause) = &e
                && let Some(io) = cause.downcast_ref::<std::io::Error>()
            {
                state.storage_error = Some(io.to_string());
            }
            Ok((Err(StreamsHost::convert_stream_error(state.table(), e)?),))
        }
    }
}

/// Links the calls above over wasmtime-wasi's.
pub(crate) fn link(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance("wasi:filesystem/types@0.2.12")?;
    for (name, all) in [
        ("[method]descriptor.sync-data", false),
        ("[method]descriptor.sync", true),
    ] {
        types.func_wrap(
            name,
            move |mut store: StoreContextMut<'_, PluginState>,
                  (fd,): (Resource<Descriptor>,)|
                  -> wasmtime::Result<(Result<(), SyncErrorCode>,)> {
                Ok((sync(store.data_mut(), fd, all).map_err(Into::into),))
            },
        )?;
    }
    let mut streams = linker.instance("wasi:io/streams@0.2.12")?;
    for (name, flush) in [
        ("[method]output-stream.write", false),
        ("[method]output-stream.blocking-write-and-flush", true),
    ] {
        streams.func_wrap_async(
            name,
            move |mut store: StoreContextMut<'_, PluginState>,
                  (stream, list): (Resource<DynOutputStream>, WasmList<u8>)| {
                let bytes = copy_in(&mut store, &list);
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
                // A ready stream may take a whole batch in one `write`: the
                // host finishes every write before returning (see `write`),
                // so the permit need not stop at wasmtime-wasi's 64 KiB.
                Ok(n) if n > 0 => Ok((Ok(n.max(WRITE_PERMIT)),)),
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
