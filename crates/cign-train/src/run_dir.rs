//! The run directory `OUTPUT_DIR/<config name>-<timestamp>/`: the resolved `config.toml`,
//! `metrics.jsonl`, `run.log`, `checkpoints/{last,best}.safetensors`, `samples/` and `loss.png`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Paths inside one run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates `output_dir/<name>-<YYYYmmdd-HHMMSS>/` (with a numeric suffix if it exists).
    pub fn create(output_dir: &Path, name: &str) -> Result<Self> {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let mut root = output_dir.join(format!("{name}-{stamp}"));
        let mut n = 1;
        while root.exists() {
            n += 1;
            root = output_dir.join(format!("{name}-{stamp}-{n}"));
        }
        std::fs::create_dir_all(root.join("checkpoints"))
            .and_then(|_| std::fs::create_dir_all(root.join("samples")))
            .with_context(|| format!("cannot create run directory {}", root.display()))?;
        Ok(Self { root })
    }

    /// Opens an existing run directory (for `--resume` and sampling); it must hold a config.
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
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
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

    /// Path of an existing checkpoint, or an error that says what the directory holds.
    pub fn existing_checkpoint(&self, which: &str) -> Result<PathBuf> {
        let path = self.checkpoint(which);
        if path.is_file() {
            Ok(path)
        } else {
            bail!(
                "run directory {} has no checkpoint {} (it is written at the first validation)",
                self.root.display(),
                path.display()
            )
        }
    }
}

/// Appends one JSON object per line to `metrics.jsonl`.
#[derive(Debug)]
pub struct MetricsLog {
    file: File,
    path: PathBuf,
}

impl MetricsLog {
    /// Opens `path` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Writes one record and flushes it.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let line = serde_json::to_string(record)?;
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}
