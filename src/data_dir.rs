//! One server per data dir: an exclusive lock on `DATA_DIR/lock`, held for the process's life.
//!
//! Two servers on one data dir would each believe they own its runners: the second clears the
//! first's at start, and both dispatch from one queue. The lock is the kernel's (`flock`), so a
//! crashed or killed server never leaves it behind; the file holds the holder's process id, to
//! name it in the refusal.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file inside the data dir.
pub const LOCK_FILE: &str = "lock";

/// The most bytes of the lock file read to learn the holder's process id.
const LOCK_FILE_READ_MAX_BYTES: u64 = 32;

/// Why the data dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it; `pid` when the lock file names one.
    #[error("{} is in use by {}", dir.display(), holder(*pid))]
    InUse { dir: PathBuf, pid: Option<u32> },
    #[error("locking {}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_string(),
    }
}

/// The held lock; dropping it (or the process ending, however it ends) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: Flock<File>,
}

impl DataDirLock {
    /// Locks `dir` (which exists) or says who holds it. Changes nothing in `dir` when it fails
    /// beyond creating an empty lock file.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.clone(), source };
        // Not truncated on open: the holder's process id stays readable until we hold the lock.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                return Err(LockError::InUse { dir: dir.to_path_buf(), pid: read_pid(&mut file) });
            }
            Err((_, errno)) => return Err(io(errno.into())),
        };
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The process id the lock file names; `None` while its holder has not written it yet.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(LOCK_FILE_READ_MAX_BYTES).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        let contents = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(contents.trim(), std::process::id().to_string());
        // flock locks belong to the open file description, so a second open in this process
        // is refused as another process would be.
        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(refused, LockError::InUse { pid: Some(pid), .. } if pid == std::process::id())
        );
        let message = refused.to_string();
        assert_eq!(
            message,
            format!("{} is in use by process {}", dir.path().display(), std::process::id())
        );
        drop(held);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
