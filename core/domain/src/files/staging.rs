//! Where an upload's bytes wait before they take their real name: an unnamed `O_TMPFILE` inode
//! (open(2), Linux ≥ 3.11) given its name with linkat(2), else a named file in `system/tmp`
//! moved with rename(2). Either way a reader sees the old content or the new content whole.
//!
//! Why unnamed: creating a named file holds the directory's lock while the file system picks
//! a free inode, and every upload creates in the same `system/tmp`. On ext4 that search can be
//! slow (without a journal it skips every inode freed in the last 30 s, reading each one's
//! inode table block), so concurrent uploads queued on that one lock; profiles of 16 parallel
//! 4 KiB PUTs spent about a third of the server's CPU there. An `O_TMPFILE` inode takes no
//! directory lock, and a crash leaves no name behind to clean up.

use crate::CoreError;
use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// How a temporary file is held.
#[derive(Debug)]
pub(crate) enum Staging {
    /// A named file (a resumable upload's data, or where `O_TMPFILE` is not available).
    Named(PathBuf),
    /// An `O_TMPFILE` inode with no name yet; `tmp_dir` is where a replacing write stages a name.
    Unnamed { tmp_dir: PathBuf },
}

/// Creates a temporary file in `tmp_dir`: unnamed when `unnamed` (see [`unnamed_works`]).
pub(crate) fn create(tmp_dir: &Path, unnamed: bool) -> Result<(File, Staging), CoreError> {
    if unnamed {
        let fd = rustix::fs::open(
            tmp_dir,
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(|e| CoreError::io("creating an upload file", e.into()))?;
        let staging = Staging::Unnamed {
            tmp_dir: tmp_dir.to_path_buf(),
        };
        return Ok((File::from(fd), staging));
    }
    let path = random_name(tmp_dir);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| CoreError::io("creating an upload file", e))?;
    Ok((file, Staging::Named(path)))
}

/// Whether this file system links `O_TMPFILE` inodes through `/proc/self/fd` (probed once at
/// start: the file system, the kernel and a mounted `/proc` must all play along).
pub(crate) fn unnamed_works(tmp_dir: &Path) -> bool {
    let Ok((file, _)) = create(tmp_dir, true) else {
        return false;
    };
    let probe = random_name(tmp_dir);
    let linked = link(&file, &probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    linked
}

/// Gives `file` the name `target`, replacing whatever file has it (atomically, like rename(2)).
pub(crate) fn place(file: &File, staging: &Staging, target: &Path) -> Result<(), CoreError> {
    let placed = match staging {
        Staging::Named(path) => std::fs::rename(path, target),
        Staging::Unnamed { tmp_dir } => match link(file, target) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => replace(file, tmp_dir, target),
            other => other,
        },
    };
    placed.map_err(|e| CoreError::io("putting an upload in place", e))
}

/// linkat(2) never replaces: stage a name, then rename it over the old file.
fn replace(file: &File, tmp_dir: &Path, target: &Path) -> std::io::Result<()> {
    let staged = random_name(tmp_dir);
    link(file, &staged)?;
    std::fs::rename(&staged, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })
}

/// Drops a temporary file that never took its name.
pub(crate) fn discard(staging: &Staging) {
    if let Staging::Named(path) = staging {
        let _ = std::fs::remove_file(path);
    }
    // An unnamed inode goes when its last descriptor closes.
}

/// linkat(2) of the open file through `/proc/self/fd` (`AT_EMPTY_PATH` would need
/// `CAP_DAC_READ_SEARCH`).
fn link(file: &File, target: &Path) -> std::io::Result<()> {
    let fd_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(CWD, fd_path.as_str(), CWD, target, AtFlags::SYMLINK_FOLLOW)
        .map_err(std::io::Error::from)
}

/// A fresh name in `dir`: 128 random bits from the thread-local generator (no getrandom(2)).
fn random_name(dir: &Path) -> PathBuf {
    dir.join(format!("{:032x}", rand::random::<u128>()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn unnamed_file_takes_a_new_name_and_replaces_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        assert!(unnamed_works(&tmp), "tmpfs/ext4 support O_TMPFILE");
        let target = dir.path().join("a.txt");
        for content in ["first", "second"] {
            let (mut file, staging) = create(&tmp, true).unwrap();
            assert!(matches!(staging, Staging::Unnamed { .. }));
            file.write_all(content.as_bytes()).unwrap();
            place(&file, &staging, &target).unwrap();
            assert_eq!(std::fs::read_to_string(&target).unwrap(), content);
        }
        // Nothing is left behind in the staging folder, and a discarded file leaves no trace.
        let (file, staging) = create(&tmp, true).unwrap();
        discard(&staging);
        drop(file);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn named_file_is_renamed_and_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, staging) = create(dir.path(), false).unwrap();
        file.write_all(b"x").unwrap();
        let target = dir.path().join("b");
        place(&file, &staging, &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
        let (_file, staging) = create(dir.path(), false).unwrap();
        discard(&staging);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
