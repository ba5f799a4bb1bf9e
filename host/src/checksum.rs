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
