//! Whole-file checksums, as manifests record them for sealed units.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::errors::IoContext;
use crate::types::PluginError;

/// Size and CRC32 of the whole file at `path`, read in 1 MiB chunks.
/// `label` names the file in errors.
pub fn file_crc32(path: &Path, label: &str) -> Result<(u64, u32), PluginError> {
    let mut file = File::open(path).ctx("open", label)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok((total, hasher.finalize())),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(crate::errors::io("read", label, e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn size_and_crc_of_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let (len, crc) = super::file_crc32(&path, "f").unwrap();
        assert_eq!((len, crc), (bytes.len() as u64, crc32fast::hash(&bytes)));
    }
}
