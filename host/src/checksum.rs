//! The `checksum` interface the host provides to backends: CRC-32 at
//! native speed (wasm has no CRC instructions). The bytes are read in
//! place from the plugin's memory, never copied, so a plugin asking for
//! the checksum of all its memory costs the host nothing but the pass.

use wasmtime::AsContext;
use wasmtime::component::{Linker, WasmList};

use crate::sandbox::PluginState;

/// The interface, as backends import it.
const INTERFACE: &str = "quire:persistence/checksum@0.3.0";

/// The CRC-32 (IEEE) of `bytes`, continuing from `initial`.
pub fn crc32(initial: u32, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(initial);
    hasher.update(bytes);
    hasher.finalize()
}

/// Most bytes one `crc32-lines` call takes: its answer (four bytes a line,
/// up to one line a byte) stays a bounded allocation on the host.
pub const MAX_LINES_INPUT: usize = 16 << 20;

/// The CRC-32 of each line of `bytes` (newline included), then of what
/// follows the last newline, if anything.
pub fn crc32_lines(bytes: &[u8]) -> Vec<u32> {
    let mut crcs = Vec::with_capacity(bytes.len() / 128 + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes) {
        crcs.push(crc32fast::hash(&bytes[start..=end]));
        start = end + 1;
    }
    if start < bytes.len() {
        crcs.push(crc32fast::hash(&bytes[start..]));
    }
    crcs
}

/// Most bytes the spans of one `crc32-spans` call may hold together
/// (overlapping spans count each time): the call's work stays bounded.
pub const MAX_SPANS_BYTES: u64 = 16 << 20;
/// Most spans one `crc32-spans` call may ask for: its answer stays a
/// bounded allocation on the host.
pub const MAX_SPANS: usize = 1 << 20;

/// The CRC-32 of each span `bytes[starts[i]..][..lengths[i]]`, in order;
/// an error naming what is wrong when the lists differ in length, a span
/// lies outside `bytes`, or the spans exceed [`MAX_SPANS`] or
/// [`MAX_SPANS_BYTES`].
pub fn crc32_spans(bytes: &[u8], starts: &[u32], lengths: &[u32]) -> Result<Vec<u32>, String> {
    if starts.len() != lengths.len() {
        return Err(format!(
            "{} starts but {} lengths",
            starts.len(),
            lengths.len()
        ));
    }
    if starts.len() > MAX_SPANS {
        return Err(format!(
            "{} spans; at most {MAX_SPANS} per call",
            starts.len()
        ));
    }
    // Values cross little-endian; the checks come before any work.
    let spans = || {
        starts
            .iter()
            .zip(lengths)
            .map(|(&s, &l)| (u32::from_le(s) as usize, u32::from_le(l) as usize))
    };
    let mut total = 0u64;
    for (i, (start, len)) in spans().enumerate() {
        if start.checked_add(len).is_none_or(|end| end > bytes.len()) {
            return Err(format!(
                "span {i} ({len} bytes from {start}) lies outside the {} bytes given",
                bytes.len()
            ));
        }
        total += len as u64;
    }
    if total > MAX_SPANS_BYTES {
        return Err(format!(
            "spans of {total} bytes in all; at most {MAX_SPANS_BYTES} per call"
        ));
    }
    Ok(spans()
        .map(|(start, len)| crc32fast::hash(&bytes[start..start + len]))
        .collect())
}

/// Adds the interface to the plugins' linker.
pub(crate) fn link(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    linker.instance(INTERFACE)?.func_wrap(
        "crc32",
        |store: wasmtime::StoreContextMut<'_, PluginState>,
         (initial, bytes): (u32, WasmList<u8>)| {
            let bytes = bytes.as_le_slice(store.as_context());
            Ok((crc32(initial, bytes),))
        },
    )?;
    linker.instance(INTERFACE)?.func_wrap(
        "crc32-lines",
        |store: wasmtime::StoreContextMut<'_, PluginState>, (bytes,): (WasmList<u8>,)| {
            let bytes = bytes.as_le_slice(store.as_context());
            if bytes.len() > MAX_LINES_INPUT {
                return Err(wasmtime::Error::msg(format!(
                    "checksum.crc32-lines was given {} bytes; at most {MAX_LINES_INPUT} per call",
                    bytes.len()
                )));
            }
            Ok((crc32_lines(bytes),))
        },
    )?;
    linker.instance(INTERFACE)?.func_wrap(
        "crc32-spans",
        |store: wasmtime::StoreContextMut<'_, PluginState>,
         (bytes, starts, lengths): (WasmList<u8>, WasmList<u32>, WasmList<u32>)| {
            let bytes = bytes.as_le_slice(&store);
            let (starts, lengths) = (starts.as_le_slice(&store), lengths.as_le_slice(&store));
            let crcs = crc32_spans(bytes, starts, lengths)
                .map_err(|e| wasmtime::Error::msg(format!("checksum.crc32-spans: {e}")))?;
            Ok((crcs,))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_its_crc_newline_included() {
        assert_eq!(crc32_lines(b""), Vec::<u32>::new());
        assert_eq!(
            crc32_lines(b"ab\n\ncd"),
            [
                crc32fast::hash(b"ab\n"),
                crc32fast::hash(b"\n"),
                crc32fast::hash(b"cd")
            ]
        );
        assert_eq!(crc32_lines(b"x\n"), [crc32fast::hash(b"x\n")]);
    }

    #[test]
    fn spans_get_their_crcs_and_bad_spans_are_refused() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        assert_eq!(
            crc32_spans(&bytes, &[0, 10, 999, 5, 1000], &[10, 0, 1, 990, 0]),
            Ok(vec![
                crc32fast::hash(&bytes[..10]),
                crc32fast::hash(b""),
                crc32fast::hash(&bytes[999..]),
                crc32fast::hash(&bytes[5..995]),
                crc32fast::hash(b""),
            ])
        );
        let refused =
            |starts: &[u32], lengths: &[u32]| crc32_spans(&bytes, starts, lengths).unwrap_err();
        assert_eq!(refused(&[0], &[]), "1 starts but 0 lengths");
        assert!(refused(&[0, 991], &[1, 10]).starts_with("span 1 (10 bytes from 991)"));
        assert!(refused(&[1], &[u32::MAX]).starts_with("span 0"));
        assert!(refused(&[u32::MAX], &[1]).starts_with("span 0"));
        // Overlapping spans count each time: 20,000 spans of 1,000 bytes.
        let many = vec![0u32; 20_000];
        assert!(refused(&many, &vec![1000; 20_000]).contains("at most 16777216"));
        let too_many = vec![0u32; MAX_SPANS + 1];
        assert!(refused(&too_many, &too_many).contains("spans; at most"));
    }

    #[test]
    fn running_crcs_chain() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
        let whole = crc32fast::hash(&bytes);
        for cut in [0, 1, 100, 4999, 5000] {
            assert_eq!(
                crc32(crc32(0, &bytes[..cut]), &bytes[cut..]),
                whole,
                "{cut}"
            );
        }
    }
}
