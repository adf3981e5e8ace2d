//! One process per run directory: an exclusive advisory lock on `RUN_DIR/lock` (the operating
//! system's file lock, so it is released when the process ends, however it ends) whose content is
//! the holder's PID.
//!
//! A second trainer on the same directory is refused with the holder's PID. A lock file that
//! still names a PID although nobody holds the lock was left by a process that died without
//! cleaning up (kill -9, power loss): it is reported, then taken over; never silently.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds it.
    #[error(
        "run directory {dir} is in use by another cign-train process (PID {pid}); wait for it to \
         end or stop it (kill -TERM {pid}) before resuming"
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// The holder's PID as written in the lock file (`?` when unreadable).
        pid: String,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock run directory {dir}: {source}")]
    Io {
        /// The run directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The held lock; dropping it clears the PID and releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    stale: Option<String>,
}

impl RunLock {
    /// Takes the lock of run directory `dir`.
    ///
    /// # Errors
    ///
    /// [`LockError::Busy`] when another process holds it, [`LockError::Io`] when the lock file
    /// cannot be opened.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join("lock");
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid = text.trim();
                return Err(LockError::Busy {
                    dir: dir.to_path_buf(),
                    pid: if pid.is_empty() {
                        "?".into()
                    } else {
                        pid.into()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut previous = String::new();
        file.read_to_string(&mut previous).map_err(io)?;
        let previous = previous.trim();
        let stale = (!previous.is_empty()).then(|| previous.to_string());
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        Ok(Self { file, path, stale })
    }

    /// The PID a process that died while holding the lock left in the lock file, if any (the
    /// caller reports it once logging is set up; see [`RunLock::report_stale`]).
    pub fn stale_holder(&self) -> Option<&str> {
        self.stale.as_deref()
    }

    /// Logs a warning when the lock was taken over from a process that died holding it.
    pub fn report_stale(&self) {
        if let Some(pid) = &self.stale {
            tracing::warn!(
                "{}: process {pid} ended without releasing its lock (killed?); taken over",
                self.path.display()
            );
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // An empty lock file means "released cleanly"; the OS lock goes with the descriptor.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_pid_and_a_released_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("lock")).unwrap(),
            ""
        );
        let again = RunLock::acquire(dir.path()).unwrap();
        assert!(again.path().ends_with("lock"));
        assert_eq!(again.stale_holder(), None);
        // A PID left in the file by a process that died holding the lock is reported.
        std::mem::forget(again);
        let taken = RunLock::acquire(dir.path());
        // (The forgotten handle still holds the OS lock in this process.)
        assert!(taken.is_err());
        let dir2 = tempfile::tempdir().unwrap();
        std::fs::write(dir2.path().join("lock"), "4242").unwrap();
        let lock = RunLock::acquire(dir2.path()).unwrap();
        assert_eq!(lock.stale_holder(), Some("4242"));
    }
}
