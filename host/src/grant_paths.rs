//! Paths the host itself opens, creates or writes inside a plugin's grant.
//!
//! A plugin can plant a symbolic link anywhere in its data or quarantine
//! directory (WASI lets it point at `../anything`). So the host never
//! follows a link there: files are opened with `O_NOFOLLOW`, new files are
//! created exclusively under a temporary name and renamed into place, and
//! a directory path is walked component by component.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The error for a link found where the host will not follow one.
fn planted(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link inside a plugin's directory; quire does not follow links there \
         (a plugin may have planted it): remove it and retry",
        path.display()
    ))
}

/// Opens (creating if needed) a file for writing without following a link
/// at its final component; a link there is refused.
pub(crate) fn open_for_write(path: &Path) -> io::Result<File> {
    let opened = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    match opened {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(planted(path)),
        Ok(file) if !file.metadata()?.is_file() => Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        ))),
        other => other,
    }
}

/// Creates a new file at `path` for writing; an existing file or a link
/// there is refused, never written through.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Writes `bytes` as a new file at `path`: created exclusively under a
/// temporary name (which no link can redirect), synced, and renamed into
/// place (a rename replaces a link, never writes through it).
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".{}.quire-tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temp)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Creates directory `path` (and missing parents) without following a
/// link inside `grant`: links above `grant` are the operator's and are
/// followed; a link at or below it is refused. Returns the directories
/// created, outermost first, for the caller to sync their parents.
pub(crate) fn create_dir_within(path: &Path, grant: Option<&Path>) -> io::Result<Vec<PathBuf>> {
    let absolute = std::path::absolute(path)?;
    let mut at = PathBuf::new();
    let mut created = Vec::new();
    for component in absolute.components() {
        match component {
            // `at` holds no link (each was resolved as it was met), so its
            // lexical parent is its real one.
            Component::ParentDir => {
                at.pop();
                continue;
            }
            Component::CurDir => continue,
            other => at.push(other),
        }
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let parent = at.parent().unwrap_or(Path::new("/"));
                if grant.is_some_and(|g| parent.canonicalize().is_ok_and(|p| p.starts_with(g))) {
                    return Err(planted(&at));
                }
                at = at.canonicalize()?;
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    at.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // mkdir never follows a link at its last component.
                std::fs::create_dir(&at)?;
                created.push(at.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_planted_link_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        let grant = dir.path().join("grant");
        std::fs::create_dir(&grant).unwrap();
        symlink("../outside", grant.join(".quire-lock")).unwrap();
        let e = open_for_write(&grant.join(".quire-lock")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!outside.exists(), "the link was followed");
    }

    #[test]
    fn write_new_replaces_a_link_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "untouched").unwrap();
        let grant = dir.path().join("grant");
        std::fs::create_dir(&grant).unwrap();
        symlink(&outside, grant.join("r.json")).unwrap();
        write_new(&grant.join("r.json"), b"receipt").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
        let meta = std::fs::symlink_metadata(grant.join("r.json")).unwrap();
        assert!(meta.is_file());
        assert_eq!(std::fs::read(grant.join("r.json")).unwrap(), b"receipt");
    }

    #[test]
    fn a_directory_is_not_created_through_a_link_inside_the_grant() {
        let dir = tempfile::tempdir().unwrap();
        let grant = dir.path().join("grant").canonicalize().or_else(|_| {
            std::fs::create_dir(dir.path().join("grant"))?;
            dir.path().join("grant").canonicalize()
        });
        let grant = grant.unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        symlink(&elsewhere, grant.join("quarantine")).unwrap();
        let e = create_dir_within(&grant.join("quarantine").join("q"), Some(&grant)).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!elsewhere.join("q").exists());
        // `..` is followed as the file system would, not refused.
        let up = grant.join("a").join("..").join("b");
        create_dir_within(&up, Some(&grant)).unwrap();
        assert!(grant.join("b").is_dir() && grant.join("a").is_dir());
        // Without the link it is made, and reported.
        std::fs::remove_file(grant.join("quarantine")).unwrap();
        let made = create_dir_within(&grant.join("quarantine").join("q"), Some(&grant)).unwrap();
        assert_eq!(made.len(), 2);
        assert!(grant.join("quarantine/q").is_dir());
    }
}
