//! What the trainer guarantees when it is interrupted, run twice, or diverges: SIGTERM and
//! Ctrl-C write `last` at once and the run resumes bit for bit; a second Ctrl-C exits at once
//! (130, never a crash); kill -9 leaves a loadable checkpoint; one process per run directory; a
//! diverged model is never saved or sampled; a failed start leaves no run directory behind.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tch::Tensor;

const TRAIN: &str = env!("CARGO_BIN_EXE_cign-train");
const SAMPLE: &str = env!("CARGO_BIN_EXE_cign-sample");

/// A temporary directory with a tiny dataset (40 training images) and a tiny channel config.
struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    runs: PathBuf,
}

fn setup(batch_size: usize) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::tiny_mnist(&data, 40, 16);
    let runs = root.join("runs");
    let text = common::tiny_config(&data, &runs, "channel")
        .replace("batch_size = 8", &format!("batch_size = {batch_size}"));
    let config = common::write(&root, "tiny.toml", &text);
    Setup {
        _tmp: tmp,
        root,
        config,
        runs,
    }
}

fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(runs) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(TRAIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    run_logging(args, "warn")
}

fn run_logging(args: &[&str], level: &str) -> Output {
    Command::new(TRAIN)
        .args(args)
        .env("RUST_LOG", level)
        .output()
        .unwrap()
}

/// The number of validation records in a run's metrics.jsonl.
fn validations(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"validation\""))
        .count()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The highest training step recorded in the run's metrics.jsonl.
fn logged_step(run: &Path) -> u64 {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["step"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Waits (at most 120 s) until the only run under `runs` has logged `step`; returns its dir.
fn wait_for_step(runs: &Path, step: u64) -> PathBuf {
    let start = Instant::now();
    loop {
        if let Some(run) = run_dirs(runs).into_iter().next() {
            if logged_step(&run) >= step {
                return run;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no progress to step {step}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn checkpoint(run: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(run.join("checkpoints/last.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn meta(t: &HashMap<String, Tensor>, key: &str) -> i64 {
    t[&format!("meta.{key}")].int64_value(&[])
}

#[test]
fn sigterm_mid_epoch_checkpoints_at_once_and_the_run_resumes_bit_for_bit() {
    // Batch 2 on 40 images: 20 steps per epoch, so the signal lands mid-epoch almost always.
    let s = setup(2);
    let cfg = s.config.display().to_string();
    let child = spawn(&[&cfg, "--set", "train.eval_every=7"]);
    let run_dir = wait_for_step(&s.runs, 5);
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{err}");
    assert!(
        err.contains("SIGTERM") && err.contains("cign-train --resume"),
        "{err}"
    );
    let stopped = checkpoint(&run_dir);
    let stop_step = meta(&stopped, "step") as u64;
    assert!(stop_step >= 5);
    // The stop message and the resume log name the position in the same words, epochs from 1.
    let position = match meta(&stopped, "batch_in_epoch") {
        0 => format!("end of epoch {}", meta(&stopped, "epoch")),
        b => format!("epoch {}, batch {b} of 20", meta(&stopped, "epoch") + 1),
    };
    assert!(
        err.contains(&format!("at step {stop_step} ({position})")),
        "{err}"
    );
    // The lock was released and its PID cleared.
    assert_eq!(std::fs::read_to_string(run_dir.join("lock")).unwrap(), "");

    let target = stop_step + 9;
    let run_s = run_dir.display().to_string();
    let max = format!("train.max_steps={target}");
    let out = run_logging(&["--resume", &run_s, "--set", &max], "info");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("at step {stop_step} ({position}")),
        "{err}"
    );
    let end = match target % 20 {
        0 => format!("end of epoch {}", target / 20),
        b => format!("epoch {}, batch {b} of 20", target / 20 + 1),
    };
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("step {target} ({end})")),
        "{summary}"
    );

    let reference_runs = s.root.join("reference");
    let out_dir = format!("output.dir=\"{}\"", reference_runs.display());
    let out = run(&[
        &cfg,
        "--set",
        "train.eval_every=7",
        "--set",
        &max,
        "--set",
        &out_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = checkpoint(&run_dirs(&reference_runs)[0]);
    let resumed = checkpoint(&run_dir);
    assert_eq!(meta(&resumed, "step") as u64, target);
    let mut compared = 0;
    for (name, t) in &reference {
        if name.starts_with("model.") || name.starts_with("optim.") {
            assert!(t.equal(&resumed[name]), "{name} differs after resume");
            compared += 1;
        }
    }
    assert!(compared > 20);
    for key in ["epoch", "batch_in_epoch"] {
        assert_eq!(meta(&reference, key), meta(&resumed, key), "{key}");
    }
    // Records written after the checkpoint were dropped on resume: each step is logged once.
    let steps: Vec<u64> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "train")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<u64> = steps.iter().copied().collect();
    assert_eq!(steps.len(), unique.len(), "{steps:?}");
    assert_eq!(unique.len() as u64, target);
}

#[test]
fn a_second_ctrl_c_exits_at_once_with_130() {
    // A model large enough that a step takes a while, so the second signal lands inside
    // libtorch (where exit-time destructors used to crash the process).
    let s = setup(8);
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("intermediate_dim = 8", "intermediate_dim = 128")
        .replace("latent_dim = 4", "latent_dim = 64");
    let cfg = common::write(&s.root, "bigger.toml", &text);
    for attempt in 0..3 {
        let out_dir = format!(
            "output.dir=\"{}\"",
            s.root.join(format!("r{attempt}")).display()
        );
        let child = spawn(&[cfg.to_str().unwrap(), "--set", &out_dir]);
        wait_for_step(&s.root.join(format!("r{attempt}")), 1);
        signal(&child, libc::SIGINT);
        std::thread::sleep(Duration::from_millis(30));
        signal(&child, libc::SIGINT);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    }
}

#[test]
fn kill_9_leaves_a_loadable_checkpoint_and_a_reported_lock() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    // A checkpoint after (nearly) every step, so the kill often lands inside a write.
    let child = spawn(&[&cfg, "--set", "train.checkpoint_every_minutes=0.00001"]);
    let run = wait_for_step(&s.runs, 12);
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    let t = checkpoint(&run);
    assert!(meta(&t, "step") >= 1);
    // No temporary files are left that a later run would trip over... and resuming works,
    // reporting the dead holder of the lock.
    let max = format!("train.max_steps={}", meta(&t, "step") + 3);
    let out = run_resume(&run, &max);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ended without releasing its lock"),
        "{}",
        stderr(&out)
    );
    let leftovers: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_time_budget_stop_writes_last_at_once_and_validates_only_a_run_without_best() {
    // 40 images at batch 8: 5 steps per epoch, validation only at epoch ends. A budget of
    // 6 ms ends the run after its first step, mid-epoch.
    let s = setup(8);
    let cfg = s.config.display().to_string();
    let out = run(&[&cfg, "--set", "train.time_budget_minutes=0.0001"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary
            .contains("stopped: train.time_budget_minutes used up: step 1 (epoch 1, batch 1 of 5)"),
        "{summary}"
    );
    // The run had never validated: it validates once, so that `best` (what cign-sample,
    // cign-eval and cign-export read by default) exists.
    let run_dir = run_dirs(&s.runs).remove(0);
    assert_eq!(validations(&run_dir), 1);
    assert!(run_dir.join("checkpoints/best.safetensors").is_file());
    // Resumed with a best: the next budget stop writes `last` at once, without validating.
    let out = run_resume(&run_dir, "train.time_budget_minutes=0.0001");
    assert!(out.status.success(), "{}", stderr(&out));
    let t = checkpoint(&run_dir);
    assert_eq!(meta(&t, "step"), 2);
    assert_eq!(meta(&t, "pending_validation"), 0);
    assert_eq!(validations(&run_dir), 1);
    // The same end by max_steps validates the final model.
    let other = s.root.join("other");
    let out_dir = format!("output.dir=\"{}\"", other.display());
    let out = run(&[&cfg, "--set", "train.max_steps=1", "--set", &out_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(validations(&run_dirs(&other)[0]), 1);
}

fn run_resume(run: &Path, set: &str) -> Output {
    Command::new(TRAIN)
        .args(["--resume", run.to_str().unwrap(), "--set", set])
        .output()
        .unwrap()
}

#[test]
fn a_second_process_on_the_same_run_directory_is_refused_with_the_pid() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    let first = spawn(&[&cfg, "--set", "train.checkpoint_every_minutes=0.00001"]);
    let run = wait_for_step(&s.runs, 3);
    let out = run_resume(&run, "train.max_steps=100000");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("PID {}", first.id())), "{err}");
    assert_eq!(err.lines().filter(|l| !l.is_empty()).count(), 1, "{err}");
    signal(&first, libc::SIGTERM);
    first.wait_with_output().unwrap();
}

#[test]
fn a_diverged_model_is_never_saved_and_never_sampled() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    let out = run(&[&cfg, "--set", "train.max_steps=4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = run_dirs(&s.runs)[0].clone();
    let good = checkpoint(&run_dir);

    // Diverge: a huge learning rate (a new run in another directory).
    let other = format!("output.dir=\"{}\"", s.root.join("diverged").display());
    let out = run(&[
        &cfg,
        "--set",
        "optim.lr=1e12",
        "--set",
        "train.eval_every=1",
        "--set",
        &other,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("diverged") || err.contains("non-finite"),
        "{err}"
    );
    for dir in run_dirs(&s.root.join("diverged")) {
        for which in ["last", "best"] {
            let p = dir.join(format!("checkpoints/{which}.safetensors"));
            if p.exists() {
                for (name, t) in Tensor::read_safetensors(&p).unwrap() {
                    if name.starts_with("model.") || name.starts_with("optim.") {
                        assert!(
                            bool::try_from(t.isfinite().all()).unwrap(),
                            "{name} saved non-finite"
                        );
                    }
                }
            }
        }
    }

    // Diverged before its first checkpoint: the error does not claim one is kept, and the run
    // leaves no directory behind (nor the output.dir it created), as a failed start does.
    let at_once = s.root.join("at-once");
    let out_dir = format!("output.dir=\"{}\"", at_once.display());
    let out = run(&[
        &cfg,
        "--set",
        "optim.lr=1e12",
        "--set",
        "train.max_steps=4",
        "--set",
        &out_dir,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("diverged") && err.contains("no checkpoint was written yet"),
        "{err}"
    );
    assert!(!err.contains("is kept"), "{err}");
    assert!(!at_once.exists(), "{:?}", run_dirs(&at_once));

    // A checkpoint whose weights went bad is refused by the sampler, and nothing is written.
    let mut named: Vec<(String, Tensor)> = good.into_iter().collect();
    for (name, t) in named.iter_mut() {
        if name.ends_with("running_var") {
            *t = t.fill(f64::NAN);
            break;
        }
    }
    Tensor::write_safetensors(&named, run_dir.join("checkpoints/last.safetensors")).unwrap();
    let png = s.root.join("grid.png");
    let idx = s.root.join("images-idx3-ubyte");
    let out = Command::new(SAMPLE)
        .args([
            "--run",
            run_dir.to_str().unwrap(),
            "--checkpoint",
            "last",
            "--out",
            png.to_str().unwrap(),
            "--idx",
            idx.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("non-finite") && err.contains("running_var"),
        "{err}"
    );
    assert!(!png.exists() && !idx.exists());
    // Resuming from it is refused too.
    let out = run_resume(&run_dir, "train.max_steps=8");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("non-finite"), "{}", stderr(&out));
}

#[test]
fn a_failed_start_leaves_no_run_directory() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    // No CUDA on the test machine (on a GPU machine this start succeeds, so skip there).
    if !tch::Cuda::is_available() {
        let out = run(&[&cfg, "--set", "train.device=\"cuda\""]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(run_dirs(&s.runs).is_empty(), "{:?}", run_dirs(&s.runs));
        // One line: refused before a run directory (and its "run directory" log line).
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "{}",
            stderr(&out)
        );
    }
    // A data directory that cannot exist (under a regular file).
    let bad = format!("data.dir=\"{}\"", s.config.join("data").display());
    let out = run(&[&cfg, "--set", &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(run_dirs(&s.runs).is_empty(), "{:?}", run_dirs(&s.runs));
    // Nor the output.dir chain it created for the run directory.
    let new_out = s.root.join("bad4");
    let out_dir = format!("output.dir=\"{}\"", new_out.join("deeper").display());
    let out = run(&[&cfg, "--set", &bad, "--set", &out_dir]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!new_out.exists(), "{} was left behind", new_out.display());
}

#[test]
fn batch_sizes_that_cannot_train_are_refused_before_training() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    for (set, expect) in [
        ("train.batch_size=1", "at least 2"),
        ("train.batch_size=100000", "at most the 40 training images"),
        // 40 images in batches of 3 leave a last batch of 1.
        ("train.batch_size=3", "last batch of 1 image"),
    ] {
        let out = run(&[&cfg, "--set", set]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{set}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains("train.batch_size") && lines[0].contains(expect),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(run_dirs(&s.runs).is_empty());
}

#[test]
fn only_limits_may_change_on_resume() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    let out = run(&[&cfg, "--set", "train.max_steps=3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = run_dirs(&s.runs)[0].clone();
    // An edited seed in the run's config.toml is refused...
    let text = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    std::fs::write(
        run_dir.join("config.toml"),
        text.replace("seed = 0", "seed = 5"),
    )
    .unwrap();
    let out = run_resume(&run_dir, "train.max_steps=6");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("train.seed"), "{err}");
    std::fs::write(run_dir.join("config.toml"), &text).unwrap();
    // ...and so is another optimizer setting given with --set...
    let out = run_resume(&run_dir, "optim.weight_decay=0.5");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("optim.weight_decay"),
        "{}",
        stderr(&out)
    );
    // ...while a new limit is taken, and a new learning rate (what a diverged run needs): the
    // optimizer uses it from the resumed step on, the configs record it, run.log says so.
    let out = Command::new(TRAIN)
        .args(["--resume", run_dir.to_str().unwrap()])
        .args(["--set", "train.max_steps=6", "--set", "optim.lr=0.5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(meta(&checkpoint(&run_dir), "step"), 6);
    let lrs: Vec<(u64, f64)> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "train")
        .map(|v| (v["step"].as_u64().unwrap(), v["lr"].as_f64().unwrap()))
        .collect();
    assert_eq!(lrs.len(), 6, "{lrs:?}");
    assert!(
        lrs.iter().all(|&(step, lr)| (lr == 0.5) == (step > 3)),
        "{lrs:?}"
    );
    for config in ["config.toml", "checkpoints/config.toml"] {
        let text = std::fs::read_to_string(run_dir.join(config)).unwrap();
        assert!(text.contains("lr = 0.5"), "{config}: {text}");
    }
    let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
    assert!(
        log.contains("optim.lr: ") && log.contains(" -> 0.5"),
        "{log}"
    );
}

#[test]
fn snapshots_and_exported_weights_load_with_their_config() {
    let s = setup(8);
    let cfg = s.config.display().to_string();
    let out = run(&[
        &cfg,
        "--set",
        "train.max_steps=10",
        "--set",
        "train.snapshot_every_epochs=1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = run_dirs(&s.runs)[0].clone();
    let config = run_dir.join("config.toml");
    let exported = s.root.join("model.safetensors");
    let out = Command::new(env!("CARGO_BIN_EXE_cign-export"))
        .args(["--run", run_dir.to_str().unwrap(), "--checkpoint", "last"])
        .arg("--out")
        .arg(&exported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A weights file holds the model alone, under the state-dict names.
    let names: Vec<String> = Tensor::read_safetensors(&exported)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names
        .iter()
        .all(|n| !n.starts_with("optim.") && !n.starts_with("meta.")));
    assert!(names.iter().any(|n| n.ends_with("running_mean")));
    let mut images = Vec::new();
    for weights in [
        run_dir.join("checkpoints/epoch-001.safetensors"),
        run_dir.join("checkpoints/epoch-002.safetensors"),
        exported.clone(),
    ] {
        let idx = s.root.join("images-idx3-ubyte");
        let labels = s.root.join("labels-idx1-ubyte");
        let out = Command::new(SAMPLE)
            .arg("--weights")
            .arg(&weights)
            .arg("--config")
            .arg(&config)
            .args(["--label", "all", "--n", "3", "--device", "cpu"])
            .arg("--idx")
            .arg(&idx)
            .arg("--idx-labels")
            .arg(&labels)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            weights.display(),
            stderr(&out)
        );
        images.push(std::fs::read(&idx).unwrap());
        assert_eq!(std::fs::read(&labels).unwrap().len(), 8 + 30);
    }
    // The exported model is the last checkpoint's (step 10 = end of epoch 2), so it samples
    // exactly what the epoch-2 snapshot samples, and differs from epoch 1.
    assert_eq!(images[1], images[2]);
    assert_ne!(images[0], images[1]);
    // --weights without --config is a usage error, one line.
    let out = Command::new(SAMPLE)
        .arg("--weights")
        .arg(&exported)
        .args(["--out", "x.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));
}
