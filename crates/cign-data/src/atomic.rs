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
//! readable by the group and others as the user's umask allows. Errors never name the
//! temporary file, only what the user gave: the caller names the destination. [`Staged`]
//! does the same for a command with several outputs: all of them are written, or none.
//!
//! [`prepare_output`] is the one check of an output path before any work starts: a path that
//! is an existing directory, or whose directory cannot be created or written, is refused at
//! once, and missing parent directories are created (and removed again, when empty, if the
//! command fails: see [`CreatedDirs`]). [`check_outputs`] checks all outputs of a command
//! together, also against its inputs and each other.

use std::io;
use std::path::{Path, PathBuf};

/// `err` without the ` at path "..."` that `tempfile` appends (the path of the temporary
/// file, which the user never gave), keeping its kind.
fn without_temporary_path(err: io::Error) -> io::Error {
    let text = err.to_string();
    match text.split_once(" at path \"") {
        Some((head, _)) => io::Error::new(err.kind(), head.to_string()),
        None => err,
    }
}

/// Writes `path` atomically: `write` receives the path of a fresh temporary file in the same
/// directory and must write the whole content there (it may create or truncate it); the file is
/// then fsynced and renamed over `path`.
///
/// # Errors
///
/// The I/O error of creating the temporary file, of `write`, of the fsync or of the rename,
/// without the temporary file's name (the caller names `path`). The temporary file is removed
/// before returning an error, and `path` is left untouched.
pub fn write_atomic<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&Path) -> io::Result<()>,
{
    write_atomic_inner(path, write).map_err(without_temporary_path)
}

fn write_atomic_inner<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&Path) -> io::Result<()>,
{
    // Dropping `tmp` on an early return deletes the temporary file.
    let tmp = temporary_beside(path)?;
    write(tmp.path())?;
    std::fs::File::open(tmp.path())?.sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_parent(path);
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

/// Several outputs written so that a command leaves all of them or none: each is written to a
/// temporary file beside its destination (`.NAME.XXXXXX.part`, with the permissions
/// [`write_atomic`] gives), and [`Staged::commit`] fsyncs and moves them into place together.
/// Dropped without a commit (a later write failed), it removes its temporary files and no
/// destination is touched. [`write_atomic`] is the one-output case.
#[derive(Debug, Default)]
#[must_use = "dropping it discards the staged outputs"]
pub struct Staged {
    files: Vec<(tempfile::TempPath, PathBuf)>,
}

impl Staged {
    /// No output staged yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages `dest`: `write` writes the whole content to the path it is given (a fresh file
    /// in `dest`'s directory, which must exist). `write`'s errors should name `dest`, not
    /// the temporary file.
    ///
    /// # Errors
    ///
    /// The temporary file cannot be created (a [`StagedError`] naming `dest`, converted into
    /// `E`), or the error of `write`; the temporary file is removed then.
    pub fn stage<E: From<StagedError>>(
        &mut self,
        dest: &Path,
        write: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), E> {
        let tmp = temporary_beside(dest)
            .map_err(|e| StagedError::new(dest, without_temporary_path(e)))?
            .into_temp_path();
        write(&tmp)?;
        self.files.push((tmp, dest.to_path_buf()));
        Ok(())
    }

    /// Fsyncs every staged file, then moves each into place, in the order staged.
    ///
    /// # Errors
    ///
    /// A [`StagedError`] naming the destination when an fsync or a rename failed. A failed
    /// fsync moves nothing; a rename is within one directory and fails only if the
    /// destination changed meanwhile (e.g. it became a directory): the outputs moved before it
    /// stay.
    pub fn commit(self) -> Result<(), StagedError> {
        for (tmp, dest) in &self.files {
            std::fs::File::open(tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| StagedError::new(dest, e))?;
        }
        for (tmp, dest) in self.files {
            tmp.persist(&dest)
                .map_err(|e| StagedError::new(&dest, e.error))?;
            sync_parent(&dest);
        }
        Ok(())
    }
}

/// An output of [`Staged`] that could not be written: its destination and the I/O error
/// (which never names the temporary file).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {error}", path.display())]
pub struct StagedError {
    /// The destination.
    pub path: PathBuf,
    /// What failed.
    pub error: io::Error,
}

impl StagedError {
    fn new(path: &Path, error: io::Error) -> Self {
        Self {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl From<StagedError> for io::Error {
    /// The same kind, with the message naming the destination.
    fn from(e: StagedError) -> Self {
        io::Error::new(e.error.kind(), e.to_string())
    }
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Makes a rename into `path`'s directory durable; some file systems refuse fsync on
/// directories, which is not an error.
fn sync_parent(path: &Path) {
    if let Ok(d) = std::fs::File::open(parent_dir(path)) {
        let _ = d.sync_all();
    }
}

/// A fresh temporary file beside `path` (`.NAME.XXXXXX.part`), with the permissions
/// `File::create` would give it.
fn temporary_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".part");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode `File::create` uses; the kernel applies the umask to it.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(parent_dir(path))
}

/// Directories created by [`create_dir_all_tracked`] (or [`prepare_output`]), deepest first.
/// Dropped without [`CreatedDirs::keep`], it removes them again, each only if it is empty, so
/// a command that fails after creating them leaves no empty directory of its own behind.
#[derive(Debug, Default)]
#[must_use = "dropping it removes the directories it created"]
pub struct CreatedDirs {
    dirs: Vec<PathBuf>,
}

impl CreatedDirs {
    /// Keeps the directories and returns them (deepest first), e.g. to remove them later
    /// with [`remove_created_dirs`].
    pub fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.dirs)
    }

    /// Adds the directories of `other` (which stays responsible for none of them).
    pub fn absorb(&mut self, other: CreatedDirs) {
        let mut more = other.keep();
        more.append(&mut self.dirs);
        self.dirs = more;
    }

    /// The directories created, deepest first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        remove_created_dirs(&self.dirs);
    }
}

/// Removes `dirs` (deepest first, as [`CreatedDirs::keep`] returns them), each only if it is
/// empty; a directory that is not empty (or already gone) is left as it is.
pub fn remove_created_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        // `remove_dir` refuses a directory that is not empty: what others put there stays.
        let _ = std::fs::remove_dir(dir);
    }
}

/// `std::fs::create_dir_all` that returns the directories it created itself (none when `dir`
/// exists), to be removed again if what follows fails.
///
/// # Errors
///
/// The error of the first directory that cannot be created, naming that directory (a path
/// that exists as something other than a directory: [`io::ErrorKind::NotADirectory`]); the
/// directories created before it are removed again.
pub fn create_dir_all_tracked(dir: &Path) -> io::Result<CreatedDirs> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        if std::fs::symlink_metadata(d).is_ok() {
            if d.is_dir() {
                // Another process made it since the check above.
                break;
            }
            // A file (or a link to none) where a directory is needed: say so, rather than
            // create_dir's "File exists".
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} exists and is not a directory", d.display()),
            ));
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    let mut created = CreatedDirs::default();
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(&d) {
            Ok(()) => created.dirs.insert(0, d),
            // Another process made it meanwhile: not ours to remove.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create directory {}: {e}", d.display()),
                ))
            }
        }
    }
    Ok(created)
}

/// An output path refused by [`prepare_output`] or [`check_outputs`]: always one line naming
/// the path as given, after the command-line flag that gave it when there is one
/// (`--json out/r.json: ...`).
#[derive(Debug)]
pub struct OutputError {
    /// The flag that named the output (`--out`), if any.
    pub flag: Option<String>,
    /// The output path as given.
    pub path: PathBuf,
    /// What is wrong with it.
    pub what: String,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(flag) = &self.flag {
            write!(f, "{flag} ")?;
        }
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for OutputError {}

/// Checks, before any work, that [`write_atomic`] will be able to write `path`: the path names
/// a file (not empty, not an existing directory), its parent directories exist (missing ones
/// are created, as every cign tool does for its outputs) and a file can be created in the
/// directory. Nothing is written to `path` itself. Returns the directories it created: drop
/// the [`CreatedDirs`] to remove them again if the command fails, or [`CreatedDirs::keep`]
/// them once the output is written.
///
/// # Errors
///
/// [`OutputError`] naming `path`: an empty path, an existing directory, a parent directory
/// that cannot be created (e.g. under a regular file, or without permission), or a directory
/// in which no file can be created.
pub fn prepare_output(path: &Path) -> Result<CreatedDirs, OutputError> {
    let err = |what: String| OutputError {
        flag: None,
        path: path.to_path_buf(),
        what,
    };
    if path.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(err("not a file name".into()));
    }
    if path.is_dir() {
        return Err(err("is a directory, not a file".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let created = create_dir_all_tracked(dir).map_err(|e| err(e.to_string()))?;
    // A probe file, removed at once: refuses a read-only directory before the work.
    tempfile::Builder::new()
        .prefix(".cign-write-check.")
        .tempfile_in(dir)
        .map_err(|e| {
            err(format!(
                "cannot create a file in {}: {}",
                dir.display(),
                without_temporary_path(e)
            ))
        })?;
    Ok(created)
}

/// `path` made absolute, with the part that exists resolved (symlinks, `..`) and the `..` of
/// the part that does not exist applied, so that two spellings of one file compare equal
/// whether or not it (or a directory on the way to it) exists yet.
pub fn resolve_path(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    for ancestor in absolute.ancestors() {
        if let Ok(real) = ancestor.canonicalize() {
            let rest = absolute.strip_prefix(ancestor).unwrap_or(Path::new(""));
            // The part that does not exist yet will be made of plain directories, so its
            // `..` undo the component before them (`new/../a` is `a` once `new` is created);
            // the result is resolved again, since it may now reach an existing link.
            let mut out = real;
            let mut popped = false;
            for part in rest.components() {
                match part {
                    std::path::Component::ParentDir => {
                        out.pop();
                        popped = true;
                    }
                    std::path::Component::Normal(name) => out.push(name),
                    _ => {}
                }
            }
            return if popped { resolve_path(&out) } else { out };
        }
    }
    absolute
}

/// Whether `a` and `b` are the same file: one inode where both exist (hard links included),
/// else the same resolved path ([`resolve_path`]).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    resolve_path(a) == resolve_path(b)
}

/// Checks every output of a command before any work: `outputs` are `(flag, path)` pairs
/// (e.g. `("--json", path)`), `inputs` the files the command reads, each with a name for the
/// message (e.g. `("--weights", path)`). Each output is then prepared by [`prepare_output`]
/// (missing parent directories created). Returns the directories created for all of them
/// (see [`CreatedDirs`]).
///
/// # Errors
///
/// [`OutputError`] naming the flag and the path: an output that is the same file as an input
/// or as another output; what [`prepare_output`] refuses (an existing directory, a parent
/// directory that cannot be created or written). Nothing is created when an error is
/// returned.
pub fn check_outputs<S: AsRef<str>, P: AsRef<Path>>(
    outputs: &[(&str, &Path)],
    inputs: &[(S, P)],
) -> Result<CreatedDirs, OutputError> {
    let err = |flag: &str, path: &Path, what: String| OutputError {
        flag: Some(flag.to_string()),
        path: path.to_path_buf(),
        what,
    };
    for (i, (flag, path)) in outputs.iter().enumerate() {
        for (name, input) in inputs {
            let input = input.as_ref();
            if same_file(path, input) {
                return Err(err(
                    flag,
                    path,
                    format!(
                        "is the same file as {} ({}), which this command reads: write the \
                         output to another path",
                        name.as_ref(),
                        input.display()
                    ),
                ));
            }
        }
        for (other_flag, other) in &outputs[..i] {
            if same_file(path, other) {
                return Err(err(
                    flag,
                    path,
                    format!(
                        "is the same file as {other_flag} {}: give each output its own path",
                        other.display()
                    ),
                ));
            }
        }
    }
    let mut created = CreatedDirs::default();
    for (flag, path) in outputs {
        // On an error, `created` is dropped: the directories made so far are removed again.
        let more = prepare_output(path).map_err(|e| OutputError {
            flag: Some(flag.to_string()),
            ..e
        })?;
        created.absorb(more);
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_against_inputs_each_other_and_files_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in.idx");
        std::fs::write(&input, b"x").unwrap();
        let inputs = [("input A", input.as_path())];
        let err = |outputs: &[(&str, &Path)]| check_outputs(outputs, &inputs).unwrap_err();
        // An input under another spelling, and a hard link to it.
        let spelled = tmp.path().join("sub").join("..").join("in.idx");
        let e = err(&[("--save-stats", spelled.as_path())]).to_string();
        assert!(
            e.starts_with("--save-stats ") && e.contains("same file as input A"),
            "{e}"
        );
        let link = tmp.path().join("link.idx");
        std::fs::hard_link(&input, &link).unwrap();
        assert!(err(&[("--out", link.as_path())])
            .to_string()
            .contains("same file as input A"));
        // Two outputs on one file; nothing created for the first.
        let a = tmp.path().join("new").join("a.npz");
        let e = err(&[("--out", a.as_path()), ("--json", a.as_path())]).to_string();
        assert!(
            e.starts_with("--json ") && e.contains("same file as --out"),
            "{e}"
        );
        assert!(!tmp.path().join("new").exists());
        // A file where a directory is needed: said in those words; the directory made for the
        // first output is removed again.
        let file = tmp.path().join("afile");
        std::fs::write(&file, b"x").unwrap();
        let b = file.join("deeper").join("b.json");
        let e = err(&[("--out", a.as_path()), ("--json", b.as_path())]);
        assert_eq!(
            e.to_string(),
            format!(
                "--json {}: {} exists and is not a directory",
                b.display(),
                file.display()
            )
        );
        assert!(!tmp.path().join("new").exists());
        // An existing directory as the output.
        let e = err(&[("--out", tmp.path())]).to_string();
        assert!(e.contains("is a directory, not a file"), "{e}");
        // Good outputs: their directory made, and kept.
        let dirs = check_outputs(&[("--out", a.as_path())], &inputs)
            .unwrap()
            .keep();
        assert_eq!(dirs, vec![tmp.path().join("new")]);
        assert!(tmp.path().join("new").is_dir());
    }

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

    #[test]
    fn errors_name_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("a.bin");
        let err = write_atomic_bytes(&p, b"x").unwrap_err();
        assert!(!err.to_string().contains(".part"), "{err}");
        assert!(!err.to_string().contains("at path"), "{err}");
    }

    #[test]
    fn prepare_output_creates_parents_and_removes_them_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a").join("b").join("out.json");
        let created = prepare_output(&p).unwrap();
        assert_eq!(
            created.dirs(),
            [dir.path().join("a").join("b"), dir.path().join("a")]
        );
        assert!(p.parent().unwrap().is_dir() && !p.exists());
        // Nothing but the directories is left: the probe file is gone.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 0);
        drop(created);
        assert!(!dir.path().join("a").exists());
        let kept = prepare_output(&p).unwrap().keep();
        assert_eq!(kept.len(), 2);
        assert!(p.parent().unwrap().is_dir());
        // A directory that is not empty is not removed.
        std::fs::write(p.parent().unwrap().join("other"), b"x").unwrap();
        remove_created_dirs(&kept);
        assert!(p.parent().unwrap().is_dir());
    }

    #[test]
    fn prepare_output_refuses_directories_and_impossible_parents() {
        let dir = tempfile::tempdir().unwrap();
        let e = prepare_output(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let p = file.join("sub").join("out.png");
        let e = prepare_output(&p).unwrap_err().to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        assert!(!e.contains(".part") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn staged_outputs_are_written_all_or_none() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let files = || {
            let mut names: Vec<String> = std::fs::read_dir(tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        std::fs::write(&a, b"old").unwrap();
        // The second write fails: the first output keeps its old content, no temporary file
        // stays.
        let mut staged = Staged::new();
        staged.stage(&a, |p| std::fs::write(p, b"first")).unwrap();
        let e = staged
            .stage(&b, |_| Err(io::Error::other("disk full")))
            .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        drop(staged);
        assert_eq!(files(), ["a"]);
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        // Both written: both moved into place at the commit, not before.
        let mut staged = Staged::new();
        staged.stage(&a, |p| std::fs::write(p, b"first")).unwrap();
        staged.stage(&b, |p| std::fs::write(p, b"second")).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        assert!(!b.exists());
        staged.commit().unwrap();
        assert_eq!(files(), ["a", "b"]);
        assert_eq!(std::fs::read(&a).unwrap(), b"first");
        assert_eq!(std::fs::read(&b).unwrap(), b"second");
        // A destination in a missing directory: the error names it, not the temporary file.
        let missing = tmp.path().join("no").join("c");
        let e = Staged::new()
            .stage(&missing, |p| std::fs::write(p, b"x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("cannot write {}", missing.display())) && !e.contains(".part"),
            "{e}"
        );
    }
}
