//! The one atomic-write helper of the workspace: every file cign writes (checkpoints, weights,
//! IDX files, PNG grids, plots, statistics) goes through [`write_atomic`], so a reader never sees
//! a half-written file and a process killed at any moment leaves the previous file intact.
//!
//! The file is written to a uniquely named temporary file in the destination's directory
//! (`tempfile::NamedTempFile`, so two processes writing the same destination never share a
//! temporary name), flushed to disk, renamed over the destination, and the directory is synced.
//! On any failure the temporary file is removed, so a full disk is not left fuller. The file
//! gets the permissions `File::create` would give it (on Unix `0o666` less the umask), not
//! the owner-only `0o600` of a bare temporary file, so that shared weights and results stay
//! readable by the group and others as the user's umask allows.

use std::io;
use std::path::Path;

/// Writes `path` atomically: `write` receives the path of a fresh temporary file in the same
/// directory and must write the whole content there (it may create or truncate it); the file is
/// then fsynced and renamed over `path`.
///
/// # Errors
///
/// The I/O error of creating the temporary file, of `write`, of the fsync or of the rename. The
/// temporary file is removed before returning an error, and `path` is left untouched.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&Path) -> io::Result<()>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Dropping `tmp` on an early return deletes the temporary file.
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode `File::create` uses; the kernel applies the umask to it.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir)?;
    write(tmp.path())?;
    std::fs::File::open(tmp.path())?.sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename durable; some file systems refuse fsync on directories.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
///
/// # Errors
///
/// As [`write_atomic`].
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |tmp| std::fs::write(tmp, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic_bytes(&p, b"one").unwrap();
        write_atomic_bytes(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_gets_the_permissions_file_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.bin");
        std::fs::File::create(&plain).unwrap();
        let want = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        let p = dir.path().join("a.bin");
        write_atomic_bytes(&p, b"one").unwrap();
        let got = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, want, "mode {got:o}, File::create gives {want:o}");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_atomic_bytes(&p, b"old").unwrap();
        let err = write_atomic(&p, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.bin")]);
    }
}
