//! All-or-nothing appends: a batch that fails to reach a file (no space
//! left, an I/O error, a failed sync) is cut off again, so the file holds
//! exactly what was acknowledged before and the caller may retry without
//! duplicating records.

use std::fs::File;
use std::io::Write;

use crate::errors::io;
use crate::types::PluginError;

/// Appends `bytes` to `file`, which is `start` bytes long, and syncs the
/// data when `sync`. On any failure the file is cut back to `start` (and
/// synced, so the cut survives a crash) and the error says so.
pub fn append_or_roll_back(
    file: &mut File,
    start: u64,
    bytes: &[u8],
    sync: bool,
    label: &str,
) -> Result<(), PluginError> {
    let failure = match file.write_all(bytes) {
        Err(e) => io("write", label, e),
        Ok(()) if !sync => return Ok(()),
        Ok(()) => match crate::sync::sync_data(file) {
            Ok(()) => return Ok(()),
            Err(e) => io("sync", label, e),
        },
    };
    Err(roll_back(file, start, label, failure))
}

/// Cuts `file` back to `start` after `failure`, and returns the error that
/// tells what happened to the batch.
pub fn roll_back(file: &File, start: u64, label: &str, failure: PluginError) -> PluginError {
    let undone = file
        .set_len(start)
        .and_then(|()| crate::sync::sync_data(file));
    let note = match undone {
        Ok(()) => format!("; the batch was rolled back ({label} is {start} bytes again)"),
        Err(e) => format!(
            "; rolling the batch back failed too ({e}): {label} may end in part of it, which the \
             next open or `quire recover` removes"
        ),
    };
    crate::errors::with_note(failure, &note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_append_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"kept\n").unwrap();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"torn part of a batch").unwrap();
        let e = roll_back(
            &file,
            5,
            "f",
            io("write", "f", std::io::Error::other("disk full")),
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\n");
        let PluginError::Io(f) = e else { panic!() };
        assert!(
            f.message.contains("disk full") && f.message.contains("rolled back"),
            "{}",
            f.message
        );
        append_or_roll_back(&mut file, 5, b"next\n", true, "f").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\nnext\n");
    }
}
