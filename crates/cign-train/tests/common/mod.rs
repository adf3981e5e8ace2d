//! Shared helpers of the cign-train integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cign_data::idx::{write_idx_images, write_idx_labels};
use cign_data::{default_data_dir, fetch::ensure_dataset, Dataset, DatasetKind, IdxImages, Split};

/// Writes a tiny MNIST-format dataset (`n_train` and `n_test` real MNIST images) into `dir`.
pub fn tiny_mnist(dir: &Path, n_train: usize, n_test: usize) {
    let source = default_data_dir(DatasetKind::Mnist);
    ensure_dataset(DatasetKind::Mnist, &source).expect("MNIST available");
    for (split, n) in [(Split::Train, n_train), (Split::Test, n_test)] {
        let full = Dataset::load(DatasetKind::Mnist, split, &source).unwrap();
        let images = IdxImages {
            count: n,
            rows: 28,
            cols: 28,
            pixels: full.images.pixels[..n * 784].to_vec(),
        };
        let prefix = split.file_prefix();
        write_idx_images(&dir.join(format!("{prefix}-images-idx3-ubyte")), &images).unwrap();
        write_idx_labels(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            &full.labels[..n],
        )
        .unwrap();
    }
}

/// A config for a very small model on the tiny dataset in `data_dir`, writing runs to `out`.
pub fn tiny_config(data_dir: &Path, out: &Path, conditioning: &str) -> String {
    format!(
        r#"
[model]
conditioning = "{conditioning}"
latent_dim = 4
intermediate_dim = 8
embedding_dim = 3

[data]
dir = "{}"
mismatch_per_real = 3

[train]
batch_size = 8
epochs = 50
device = "cpu"
eval_every = 4
log_every = 1
threads = 1

[output]
dir = "{}"
"#,
        data_dir.display(),
        out.display()
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `bin` with `args` and returns its one `error:` line, asserting exit code 2, no panic
/// and exactly one error line.
pub fn fails(bin: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

/// Runs `cmd`, asserts that it succeeded (showing its stderr if not) and returns its output.
pub fn succeeds(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Trains the tiny channel model on a tiny dataset (`n_train`, `n_test` images) in `dir` for
/// `steps` steps with `cign-train` (`train_bin`) and returns the run directory.
pub fn tiny_run(train_bin: &str, dir: &Path, n_train: usize, n_test: usize, steps: u64) -> PathBuf {
    tiny_run_with(
        train_bin,
        dir,
        n_train,
        n_test,
        &[&format!("train.max_steps={steps}")],
    )
}

/// [`tiny_run`] with `--set` overrides `sets` (e.g. `train.epochs=2`) instead of a step count.
pub fn tiny_run_with(
    train_bin: &str,
    dir: &Path,
    n_train: usize,
    n_test: usize,
    sets: &[&str],
) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    tiny_mnist(&data, n_train, n_test);
    let runs = dir.join("runs");
    let cfg = write(dir, "tiny.toml", &tiny_config(&data, &runs, "channel"));
    let mut cmd = std::process::Command::new(train_bin);
    cmd.arg(&cfg);
    for s in sets {
        cmd.args(["--set", s]);
    }
    succeeds(&mut cmd);
    std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}
