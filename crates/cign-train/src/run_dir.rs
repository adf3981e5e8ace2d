//! The run directory `OUTPUT_DIR/<config name>-<timestamp>/`: the resolved `config.toml`,
//! `metrics.jsonl`, `run.log`, `lock`, `checkpoints/{last,best}.safetensors` (with the config
//! beside them), `samples/` and `loss.png`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::checkpoint::LoopState;

/// Paths inside one run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
    /// Created by this process and not yet known to be a run: removed by [`RunDir::discard`].
    fresh: bool,
    /// The ancestors of `root` (`output.dir` and its parents) that [`RunDir::create`] created,
    /// deepest first: removed by [`RunDir::discard`] when empty.
    created: Vec<PathBuf>,
}

impl RunDir {
    /// Creates `output_dir/<name>-<YYYYmmdd-HHMMSS>/` (with a numeric suffix `-2`, `-3`, ...
    /// when that name is taken), creating `output_dir` and its parents as needed (remembered,
    /// so that [`RunDir::discard`] removes them again). The directory is claimed atomically
    /// ([`claim_dir`]): two runs started in the same second get two directories.
    ///
    /// # Errors
    ///
    /// The directory cannot be created (then nothing this call created is left behind).
    pub fn create(output_dir: &Path, name: &str) -> Result<Self> {
        let created = cign_data::atomic::create_dir_all_tracked(output_dir)
            .with_context(|| format!("cannot create output.dir {}", output_dir.display()))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let root = claim_dir(output_dir, &format!("{name}-{stamp}")).with_context(|| {
            format!("cannot create a run directory in {}", output_dir.display())
        })?;
        std::fs::create_dir(root.join("checkpoints"))
            .and_then(|_| std::fs::create_dir(root.join("samples")))
            .with_context(|| format!("cannot create run directory {}", root.display()))
            .inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&root);
            })?;
        Ok(Self {
            root,
            fresh: true,
            created: created.keep(),
        })
    }

    /// Opens an existing run directory (for `--resume` and sampling); it must hold a config.
    ///
    /// # Errors
    ///
    /// The directory does not exist or holds no `config.toml`.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!("run directory {} does not exist", root.display());
        }
        if !root.join("config.toml").is_file() {
            bail!(
                "{} is not a cign run directory: it has no config.toml",
                root.display()
            );
        }
        Ok(Self {
            root: root.to_path_buf(),
            fresh: false,
            created: Vec::new(),
        })
    }

    /// The paths of a run directory at `root` without checking that it is one (to name its
    /// files before it is opened, e.g. the inputs of a command); [`RunDir::open`] checks.
    pub fn open_unchecked(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            fresh: false,
            created: Vec::new(),
        }
    }

    /// Removes a directory made by [`RunDir::create`] whose run failed before its first
    /// checkpoint (no CUDA, bad data, a model diverging at once), so that it leaves nothing
    /// behind: the run directory, and the directories of `output.dir` that `create` made, each
    /// only if it is empty. Does nothing to an opened one or once a checkpoint (`last` or
    /// `best`) exists.
    pub fn discard(&self) {
        if self.fresh && !self.checkpoint("last").exists() && !self.checkpoint("best").exists() {
            let _ = std::fs::remove_dir_all(&self.root);
            cign_data::atomic::remove_created_dirs(&self.created);
        }
    }

    /// Removes the temporary files (`.NAME.XXXXXX.part`) that a process killed in the middle
    /// of a write leaves behind: every one in `checkpoints/` and `samples/`, and in the run
    /// directory itself those of the files cign-train writes there (`config.toml`,
    /// `metrics.jsonl`, `loss.png`; another tool's output being written there is left alone).
    /// The count is logged. Call only while holding the run's lock.
    pub fn remove_stale_temporaries(&self) {
        let own = ["config.toml", "metrics.jsonl", "loss.png"];
        let mut removed = 0;
        for (dir, any) in [
            (self.root.join("checkpoints"), true),
            (self.root.join("samples"), true),
            (self.root.clone(), false),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let temporary = name.starts_with('.')
                    && name.ends_with(".part")
                    && (any || own.iter().any(|f| name.starts_with(&format!(".{f}."))));
                if temporary && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::warn!(
                "removed {removed} temporary files left by a process killed while writing"
            );
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `checkpoints/config.toml`: the config the checkpoints were written with.
    pub fn checkpoint_config(&self) -> PathBuf {
        self.root.join("checkpoints").join("config.toml")
    }
    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    /// `run.log`.
    pub fn log(&self) -> PathBuf {
        self.root.join("run.log")
    }
    /// `checkpoints/<which>.safetensors` (`which` is `last` or `best`).
    pub fn checkpoint(&self, which: &str) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("{which}.safetensors"))
    }
    /// `checkpoints/epoch-NNN.safetensors`: the model (weights file) after `epoch` epochs.
    pub fn snapshot(&self, epoch: u64) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("epoch-{epoch:03}.safetensors"))
    }
    /// Every epoch snapshot of the run, `(epoch, path)` by epoch (see [`Self::snapshot`]);
    /// other files are ignored.
    ///
    /// # Errors
    ///
    /// `checkpoints/` cannot be read (a run without it has no snapshots: empty list).
    pub fn snapshots(&self) -> Result<Vec<(u64, PathBuf)>> {
        let dir = self.root.join("checkpoints");
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot read {}", dir.display()))?
                .path();
            let epoch = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("epoch-"))
                .and_then(|n| n.strip_suffix(".safetensors"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(epoch) = epoch {
                if path.is_file() {
                    found.push((epoch, path));
                }
            }
        }
        found.sort();
        Ok(found)
    }
    /// `samples/step-NNNNNN.png`.
    pub fn sample(&self, step: u64) -> PathBuf {
        self.root
            .join("samples")
            .join(format!("step-{step:06}.png"))
    }
    /// `loss.png`.
    pub fn loss_plot(&self) -> PathBuf {
        self.root.join("loss.png")
    }

    /// Path of the existing checkpoint `which` (`best`, `last`, `epoch-NNN`), or an error that
    /// says when that checkpoint is written and which ones the directory holds.
    ///
    /// # Errors
    ///
    /// The checkpoint does not exist.
    pub fn existing_checkpoint(&self, which: &str) -> Result<PathBuf> {
        let path = self.checkpoint(which);
        if path.is_file() {
            return Ok(path);
        }
        let when = match which {
            "best" => {
                if self.checkpoint("last").is_file() {
                    "it is written at the first validation, and this run has none yet: use \
                     --checkpoint last"
                } else {
                    "it is written at the first validation"
                }
            }
            "last" => "it is written at the first validation, checkpoint interval or stop",
            _ if which.starts_with("epoch-") => {
                "snapshots are written every train.snapshot_every_epochs epochs"
            }
            _ => "not a checkpoint name cign-train writes",
        };
        let mut held: Vec<String> = std::fs::read_dir(self.root.join("checkpoints"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".safetensors")
                    .map(str::to_string)
            })
            .collect();
        held.sort();
        let held = if held.is_empty() {
            "none".to_string()
        } else {
            held.join(", ")
        };
        bail!(
            "run directory {} has no checkpoint {} ({when}; it holds: {held})",
            self.root.display(),
            path.display()
        )
    }
}

/// Creates the directory `parent/base`, or `parent/base-2`, `base-3`, ... when taken, and
/// returns it. Each name is claimed with one `create_dir`, which fails when the name exists:
/// of two processes claiming the same name at the same moment, exactly one gets it and the
/// other moves on to the next suffix.
///
/// # Errors
///
/// A directory cannot be created for another reason than an existing name.
pub fn claim_dir(parent: &Path, base: &str) -> std::io::Result<PathBuf> {
    for n in 1u64.. {
        let dir = match n {
            1 => parent.join(base),
            n => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u64 suffixes do not run out")
}

/// A point of a loss curve: (step, total loss).
pub type Curve = Vec<(f64, f64)>;

/// `metrics.jsonl`: one JSON object per line, each line written with a single `write`, so an
/// interrupted process leaves at most one cut last line, which [`MetricsLog::open`] ends.
#[derive(Debug)]
pub struct MetricsLog {
    file: File,
    path: PathBuf,
}

impl MetricsLog {
    /// Opens `path` for appending. A cut last line (the process was killed in the middle of a
    /// write) is ended with a newline first, so the next record starts on a line of its own; it
    /// is logged. With `resumed`, the state of the checkpoint being resumed, the records about
    /// to be written again are dropped and counted in the log: those of later steps, and, when
    /// its validation is pending, a validation record of its own step (written by a process
    /// killed before it committed that validation's `last`).
    ///
    /// # Errors
    ///
    /// The file cannot be opened, read or rewritten.
    pub fn open(path: &Path, resumed: Option<&LoopState>) -> Result<Self> {
        let ctx = || format!("cannot open {}", path.display());
        if let Some(state) = resumed {
            drop_records_after(path, state.step, state.pending_validation).with_context(ctx)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(ctx)?;
        let len = file.metadata().with_context(ctx)?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .with_context(ctx)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").with_context(ctx)?;
                tracing::warn!(
                    "{}: its last line was cut (the process was killed while writing it); ended \
                     it, the cut record is skipped by readers",
                    path.display()
                );
            }
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Writes one record as one line, in one write.
    ///
    /// # Errors
    ///
    /// The record cannot be serialised or written.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// The training and validation curves (step, total) of a `metrics.jsonl`; lines that are
    /// not complete records are skipped. A missing file gives empty curves.
    pub fn read_curves(path: &Path) -> (Curve, Curve) {
        let mut train = Vec::new();
        let mut val = Vec::new();
        for v in read_records(path) {
            let (Some(step), Some(total)) = (v["step"].as_f64(), v["total"].as_f64()) else {
                continue;
            };
            match v["kind"].as_str() {
                Some("train") => train.push((step, total)),
                Some("validation") => val.push((step, total)),
                _ => {}
            }
        }
        (train, val)
    }
}

/// Every complete JSON record of a `metrics.jsonl` (missing file: none).
pub fn read_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Drops the records of steps after `step`, and with `validation_pending` the validation
/// records of `step` too.
fn drop_records_after(path: &Path, step: u64, validation_pending: bool) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let mut kept = String::with_capacity(text.len());
    let mut dropped = 0usize;
    for line in text.split_inclusive('\n') {
        let record = serde_json::from_str::<serde_json::Value>(line.trim_end()).ok();
        let redone = record.as_ref().is_some_and(|v| {
            v["step"].as_u64().is_some_and(|s| {
                s > step || (validation_pending && s == step && v["kind"] == "validation")
            })
        });
        if redone {
            dropped += 1;
        } else {
            kept.push_str(line);
        }
    }
    if dropped > 0 {
        cign_data::atomic::write_atomic_bytes(path, kept.as_bytes())?;
        tracing::info!(
            "{}: dropped {dropped} records written after the checkpoint of step {step} being \
             resumed (they are written again)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_checkpoint_says_when_it_is_written_and_what_the_run_holds() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open_unchecked(dir.path());
        std::fs::create_dir_all(dir.path().join("checkpoints")).unwrap();
        let err = |which: &str| run.existing_checkpoint(which).unwrap_err().to_string();
        let e = err("best");
        assert!(
            e.contains("first validation") && e.ends_with("it holds: none)"),
            "{e}"
        );
        assert!(!e.contains("--checkpoint last"), "{e}");
        std::fs::write(run.checkpoint("last"), b"").unwrap();
        std::fs::write(run.snapshot(5), b"").unwrap();
        // A run stopped before its first validation has `last` only: say to use it.
        let e = err("best");
        assert!(e.contains("use --checkpoint last"), "{e}");
        assert!(e.ends_with("it holds: epoch-005, last)"), "{e}");
        assert!(err("epoch-010").contains("snapshot_every_epochs"));
        assert!(err("bset").contains("not a checkpoint name"));
        assert_eq!(
            run.existing_checkpoint("last").unwrap(),
            run.checkpoint("last")
        );
    }

    #[test]
    fn a_cut_last_line_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        std::fs::write(
            &p,
            "{\"kind\":\"train\",\"step\":1,\"total\":2.0}\n{\"kind\":\"tr",
        )
        .unwrap();
        let mut log = MetricsLog::open(&p, None).unwrap();
        log.write(&serde_json::json!({"kind": "train", "step": 2, "total": 1.5}))
            .unwrap();
        let (train, _) = MetricsLog::read_curves(&p);
        assert_eq!(train, vec![(1.0, 2.0), (2.0, 1.5)]);
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 3);
    }

    #[test]
    fn resuming_drops_records_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        let lines: String = (1..=5)
            .flat_map(|s| {
                ["train", "validation"]
                    .map(|k| format!("{{\"kind\":\"{k}\",\"step\":{s},\"total\":1.0}}\n"))
            })
            .collect();
        let mut state = LoopState::new(0);
        state.step = 3;
        let steps = |curve: Curve| curve.iter().map(|c| c.0).collect::<Vec<f64>>();
        for pending in [false, true] {
            std::fs::write(&p, &lines).unwrap();
            state.pending_validation = pending;
            MetricsLog::open(&p, Some(&state)).unwrap();
            let (train, val) = MetricsLog::read_curves(&p);
            assert_eq!(steps(train), vec![1.0, 2.0, 3.0]);
            // A checkpoint whose validation is pending redoes it: a record of it written by
            // a process killed before its `last` is dropped.
            let validated = if pending { 2.0 } else { 3.0 };
            assert_eq!(*steps(val).last().unwrap(), validated, "pending {pending}");
        }
    }

    #[test]
    fn a_run_directory_name_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(claim_dir(dir.path(), "a").unwrap(), dir.path().join("a"));
        assert_eq!(claim_dir(dir.path(), "a").unwrap(), dir.path().join("a-2"));
        // A name taken by a file is taken too.
        std::fs::write(dir.path().join("a-3"), b"").unwrap();
        assert_eq!(claim_dir(dir.path(), "a").unwrap(), dir.path().join("a-4"));
        // So is one taken by a dangling link, which a check for an existing path misses: the
        // name is claimed by creating it, never by checking first.
        #[cfg(unix)]
        {
            let out = dir.path().join("links");
            std::fs::create_dir(&out).unwrap();
            let now = chrono::Local::now();
            for s in 0..3 {
                let stamp = (now + chrono::Duration::seconds(s)).format("%Y%m%d-%H%M%S");
                std::os::unix::fs::symlink("nowhere", out.join(format!("r-{stamp}"))).unwrap();
            }
            let run = RunDir::create(&out, "r").unwrap();
            let name = run
                .root()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(name.ends_with("-2"), "{name}");
            assert!(run.root().join("checkpoints").is_dir());
        }
        // Runs started at the same moment get a directory each (the check-then-create this
        // replaced gave two of them one directory, and the loser of the lock deleted it).
        // Threads released together by a spinning barrier, so that they reach the claim at
        // the same moment on different cores.
        let threads = 4;
        for round in 0..20 {
            let out = dir.path().join(format!("out{round}"));
            // (output.dir exists: this is about the run directories inside it.)
            std::fs::create_dir(&out).unwrap();
            let waiting = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (out, waiting) = (out.clone(), waiting.clone());
                    std::thread::spawn(move || {
                        waiting.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        while waiting.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                            std::hint::spin_loop();
                        }
                        RunDir::create(&out, "same").unwrap().root().to_path_buf()
                    })
                })
                .collect();
            let mut roots: Vec<PathBuf> = handles.into_iter().map(|t| t.join().unwrap()).collect();
            roots.sort();
            roots.dedup();
            assert_eq!(roots.len(), threads, "round {round}: {roots:?}");
        }
    }

    #[test]
    fn temporaries_of_a_killed_write_are_removed_from_the_whole_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), "r").unwrap();
        let root = run.root();
        let left = [
            "checkpoints/.last.safetensors.a1B2c3.part",
            "samples/.step-000004.png.x9Y8z7.part",
            ".metrics.jsonl.Q1w2E3.part",
            ".config.toml.r4T5y6.part",
            ".loss.png.u7I8o9.part",
        ];
        let kept = [
            ".curve.json.p0A1s2.part",
            "metrics.jsonl",
            "samples/step-000004.png",
        ];
        for name in left.iter().chain(&kept) {
            std::fs::write(root.join(name), b"x").unwrap();
        }
        run.remove_stale_temporaries();
        for name in left {
            assert!(!root.join(name).exists(), "{name} left");
        }
        for name in kept {
            assert!(root.join(name).exists(), "{name} removed");
        }
    }
}
