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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
