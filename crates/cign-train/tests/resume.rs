//! An interrupted run, resumed, ends with exactly the weights, BatchNorm statistics and
//! optimizer state of an uninterrupted one (CPU, tiny model, across epoch boundaries).

mod common;

use std::collections::HashMap;

use cign_train::run_dir::RunDir;
use cign_train::signals::StopFlag;
use cign_train::{StopReason, TrainConfig, Trainer};
use tch::Tensor;

/// libtorch's random generator is global: tests that train in one process run one at a time,
/// or their draws would interleave.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn train(cfg_text: &str, overrides: &[&str], run: RunDir, resume: bool) -> RunDir {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let cfg = TrainConfig::from_toml_str(cfg_text, "test", &overrides).unwrap();
    let mut t = Trainer::new(cfg, run, resume).unwrap();
    let summary = t.train(&StopFlag::new()).unwrap();
    assert_eq!(summary.reason, StopReason::MaxSteps);
    t.run_dir().clone()
}

fn tensors(run: &RunDir) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(run.checkpoint("last"))
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // 40 training images, batch 8: 5 steps per epoch, so 13 steps cross two epoch ends.
    common::tiny_mnist(&data, 40, 16);
    for conditioning in ["channel", "filter"] {
        let cfg = common::tiny_config(&data, &tmp.path().join("runs"), conditioning);

        let full = train(
            &cfg,
            &["train.max_steps=13"],
            RunDir::create(&tmp.path().join("runs"), &format!("full-{conditioning}")).unwrap(),
            false,
        );
        let part = train(
            &cfg,
            &["train.max_steps=7"],
            RunDir::create(&tmp.path().join("runs"), &format!("part-{conditioning}")).unwrap(),
            false,
        );
        let early = tensors(&part);
        // A stop request (what SIGTERM raises) right after resuming mid-epoch writes `last` at
        // once, without a step or a validation, and says so; the next resume carries on.
        // (The real signal, sent to the binary at a random step: tests/interruptions.rs.)
        {
            let overrides = vec!["train.max_steps=13".to_string()];
            let cfg_t = TrainConfig::from_toml_str(&cfg, "test", &overrides).unwrap();
            let mut t = Trainer::new(cfg_t, RunDir::open(part.root()).unwrap(), true).unwrap();
            let stop = StopFlag::new();
            stop.request(15);
            let summary = t.train(&stop).unwrap();
            assert_eq!(summary.reason, StopReason::Interrupted(15));
            assert_eq!((summary.state.step, summary.state.batch_in_epoch), (7, 2));
            let again = tensors(&part);
            for (name, t) in &early {
                if name != "meta.train_seconds" {
                    assert!(t.equal(&again[name]), "{name} changed by the stop");
                }
            }
        }
        let resumed = train(
            &cfg,
            &["train.max_steps=13"],
            RunDir::open(part.root()).unwrap(),
            true,
        );

        let (a, b) = (tensors(&full), tensors(&resumed));
        assert_eq!(
            a.keys().collect::<std::collections::BTreeSet<_>>(),
            b.keys().collect::<std::collections::BTreeSet<_>>()
        );
        assert!(a.keys().any(|k| k.ends_with("running_mean")));
        assert!(a.keys().any(|k| k.starts_with("optim.exp_avg_sq.")));
        for (name, t) in &a {
            // Wall-clock times.
            if name == "meta.train_seconds" || name == "meta.log_seconds" {
                continue;
            }
            assert!(
                t.equal(&b[name]),
                "{conditioning}: {name} differs after resume"
            );
        }
        assert_eq!(a["meta.step"].int64_value(&[]), 13);
        assert_eq!(a["meta.epoch"].int64_value(&[]), 2);
        // The comparison has teeth: the 7-step checkpoint differs from the 13-step one.
        assert_eq!(early["meta.step"].int64_value(&[]), 7);
        assert!(a
            .iter()
            .filter(|(k, _)| k.starts_with("model.") && k.ends_with("weight"))
            .all(|(k, t)| !t.equal(&early[k])));
    }
}

// ---- Crash windows and resumes of finished or interrupted runs (library API, tiny model). ----
//
// A hook of the trainer (`set_event_hook`) stands in for the moment a process is killed (it
// returns an error: nothing after that point is written) or a signal arrives (it raises the
// stop flag), at a point of the trainer's writes chosen by label and step.

use std::path::Path;

use cign_train::checkpoint::LoopState;
use serde_json::Value;

/// A tiny dataset and config in a temporary directory.
struct Tiny {
    tmp: tempfile::TempDir,
    cfg: String,
}

impl Tiny {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        common::tiny_mnist(&data, 40, 16);
        let cfg = common::tiny_config(&data, &tmp.path().join("runs"), "channel");
        Self { tmp, cfg }
    }

    fn trainer(&self, overrides: &[&str], run: RunDir, resume: bool) -> Trainer {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let cfg = TrainConfig::from_toml_str(&self.cfg, "test", &overrides).unwrap();
        Trainer::new(cfg, run, resume).unwrap()
    }

    /// A trainer resuming `run` (reopened from disk, as `cign-train --resume` does).
    fn resumed(&self, overrides: &[&str], run: &RunDir) -> Trainer {
        self.trainer(overrides, RunDir::open(run.root()).unwrap(), true)
    }

    fn new_run(&self, name: &str) -> RunDir {
        RunDir::create(&self.tmp.path().join("runs"), name).unwrap()
    }
}

/// A hook that fails (the process "dies") right after the event `what` at step `step`.
fn crash_after(
    what: &'static str,
    step: u64,
) -> impl FnMut(&str, &LoopState) -> anyhow::Result<()> + 'static {
    move |event, state| {
        if event == what && state.step == step {
            anyhow::bail!("injected crash after {what} at step {step}");
        }
        Ok(())
    }
}

/// A hook that raises `stop` (as SIGTERM does) at the event `what` at step `step`.
fn signal_at(
    stop: &StopFlag,
    what: &'static str,
    step: u64,
) -> impl FnMut(&str, &LoopState) -> anyhow::Result<()> + 'static {
    let stop = stop.clone();
    move |event, state| {
        if event == what && state.step == step {
            stop.request(15);
        }
        Ok(())
    }
}

fn records(run: &RunDir) -> Vec<Value> {
    cign_train::run_dir::read_records(&run.metrics())
}

/// The steps of the records of `kind`, in file order.
fn steps(run: &RunDir, kind: &str) -> Vec<u64> {
    records(run)
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

fn meta_f64(run: &RunDir, which: &str, key: &str) -> f64 {
    tensors_of(&run.checkpoint(which))[&format!("meta.{key}")].double_value(&[])
}

fn tensors_of(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn a_crash_inside_a_validations_writes_loses_nothing_and_duplicates_nothing() {
    let _serial = serial();
    let t = Tiny::new();
    // Killed right after the `last` of the validation at step 4 (eval_every = 4): `best` and
    // the validation's record were written before it, so nothing of it is lost.
    let run = t.new_run("crash");
    let mut tr = t.trainer(&["train.max_steps=8"], run.clone(), false);
    tr.set_event_hook(crash_after("last", 4));
    assert!(tr.train(&StopFlag::new()).is_err());
    drop(tr);
    assert!(
        run.checkpoint("best").is_file(),
        "best was not written before last"
    );
    assert_eq!(
        meta_f64(&run, "best", "best_val_loss"),
        meta_f64(&run, "last", "best_val_loss")
    );
    assert_eq!(steps(&run, "validation"), [4]);
    let mut tr = t.resumed(&["train.max_steps=8"], &run);
    tr.train(&StopFlag::new()).unwrap();
    assert_eq!(steps(&run, "validation"), [4, 8]);
    assert_eq!(steps(&run, "train"), (1..=8).collect::<Vec<u64>>());

    // A validation cut short by a signal is pending in `last`; its redone validation killed
    // after its record but before its `last`: the next resume redoes it once more and keeps
    // one record of it.
    let run = t.new_run("pending");
    let stop = StopFlag::new();
    let mut tr = t.trainer(&["train.max_steps=8"], run.clone(), false);
    tr.set_event_hook(signal_at(&stop, "train record", 4));
    let summary = tr.train(&stop).unwrap();
    assert_eq!(summary.reason, StopReason::Interrupted(15));
    assert!(summary.state.pending_validation);
    drop(tr);
    let mut tr = t.resumed(&["train.max_steps=8"], &run);
    tr.set_event_hook(crash_after("validation record", 4));
    assert!(tr.train(&StopFlag::new()).is_err());
    drop(tr);
    assert_eq!(steps(&run, "validation"), [4]);
    let mut tr = t.resumed(&["train.max_steps=8"], &run);
    tr.train(&StopFlag::new()).unwrap();
    assert_eq!(steps(&run, "validation"), [4, 8]);
    assert_eq!(steps(&run, "train"), (1..=8).collect::<Vec<u64>>());
}

#[test]
fn a_signal_during_an_end_of_epoch_validation_skips_no_snapshot_or_grid() {
    let _serial = serial();
    let t = Tiny::new();
    // 5 steps per epoch; validation at epoch ends; a snapshot every epoch, a grid every 5
    // steps.
    let sets = [
        "train.max_steps=10",
        "train.eval_every=0",
        "train.snapshot_every_epochs=1",
        "train.sample_every=5",
    ];
    let reference = t.new_run("reference");
    t.trainer(&sets, reference.clone(), false)
        .train(&StopFlag::new())
        .unwrap();

    let run = t.new_run("signalled");
    let stop = StopFlag::new();
    let mut tr = t.trainer(&sets, run.clone(), false);
    tr.set_event_hook(signal_at(&stop, "train record", 5));
    let summary = tr.train(&stop).unwrap();
    drop(tr);
    assert_eq!(summary.reason, StopReason::Interrupted(15));
    assert!(summary.state.pending_validation);
    assert!(
        run.snapshot(1).is_file(),
        "the snapshot of epoch 1 was skipped"
    );
    assert!(run.sample(5).is_file(), "the grid of step 5 was skipped");
    // A checkpoint without them (an older version skipped them, or they were deleted):
    // the resumed run writes them first, from the checkpoint's model.
    std::fs::remove_file(run.snapshot(1)).unwrap();
    std::fs::remove_file(run.sample(5)).unwrap();
    t.resumed(&sets, &run).train(&StopFlag::new()).unwrap();
    for (a, b) in [
        (reference.snapshot(1), run.snapshot(1)),
        (reference.snapshot(2), run.snapshot(2)),
        (reference.sample(5), run.sample(5)),
        (reference.sample(10), run.sample(10)),
    ] {
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{b:?}"
        );
    }
    assert_eq!(steps(&run, "validation"), [5, 10]);
}

#[test]
fn a_finished_run_resumed_is_not_validated_again() {
    let _serial = serial();
    let t = Tiny::new();
    // Ends at step 8, validated there as scheduled; ends at step 6, validated there as the
    // final model.
    for max in [8, 6] {
        let sets = [&format!("train.max_steps={max}") as &str];
        let run = t.new_run(&format!("finished{max}"));
        let mut tr = t.trainer(&sets, run.clone(), false);
        // The validation's time counts: `last` stores the time after it, not before.
        tr.set_event_hook(|event, state| {
            if event == "validation record" && state.step == 6 {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Ok(())
        });
        assert_eq!(
            tr.train(&StopFlag::new()).unwrap().reason,
            StopReason::MaxSteps
        );
        drop(tr);
        if max == 6 {
            let recorded = records(&run)
                .iter()
                .find(|r| r["kind"] == "validation" && r["step"] == 6)
                .map(|r| r["seconds"].as_f64().unwrap())
                .unwrap();
            let stored = meta_f64(&run, "last", "train_seconds");
            assert!(stored >= recorded + 0.3, "{stored} < {recorded} + 0.3");
        }
        let before = std::fs::read_to_string(run.metrics()).unwrap();
        let last = std::fs::read(run.checkpoint("last")).unwrap();
        let summary = t.resumed(&sets, &run).train(&StopFlag::new()).unwrap();
        assert_eq!(summary.reason, StopReason::MaxSteps);
        assert_eq!(std::fs::read_to_string(run.metrics()).unwrap(), before);
        assert_eq!(std::fs::read(run.checkpoint("last")).unwrap(), last);
    }
}

#[test]
fn a_signal_during_the_final_validation_is_an_interruption() {
    let _serial = serial();
    let t = Tiny::new();
    // max_steps 6, eval_every 4: the validation at step 6 is the final one.
    let sets = ["train.max_steps=6"];
    let run = t.new_run("final");
    let stop = StopFlag::new();
    let mut tr = t.trainer(&sets, run.clone(), false);
    tr.set_event_hook(signal_at(&stop, "validation", 6));
    let summary = tr.train(&stop).unwrap();
    drop(tr);
    assert_eq!(summary.reason, StopReason::Interrupted(15));
    assert!(!summary.state.pending_validation && !summary.state.validated);
    assert_eq!(steps(&run, "validation"), [4]);
    // Resumed, it stops at once and validates the final model.
    let summary = t.resumed(&sets, &run).train(&StopFlag::new()).unwrap();
    assert_eq!(summary.reason, StopReason::MaxSteps);
    assert_eq!(steps(&run, "validation"), [4, 6]);
}

#[test]
fn a_resumed_training_record_averages_the_steps_an_uninterrupted_one_does() {
    let _serial = serial();
    let t = Tiny::new();
    let full = t.new_run("full");
    t.trainer(
        &["train.max_steps=9", "train.log_every=3"],
        full.clone(),
        false,
    )
    .train(&StopFlag::new())
    .unwrap();
    // Stopped at step 7: the record of step 9 averages steps 7, 8 and 9.
    let part = t.new_run("part");
    t.trainer(
        &["train.max_steps=7", "train.log_every=3"],
        part.clone(),
        false,
    )
    .train(&StopFlag::new())
    .unwrap();
    t.trainer(
        &["train.max_steps=9", "train.log_every=3"],
        RunDir::open(part.root()).unwrap(),
        true,
    )
    .train(&StopFlag::new())
    .unwrap();
    let record = |run: &RunDir| {
        let r = records(run)
            .into_iter()
            .find(|r| r["kind"] == "train" && r["step"] == 9)
            .unwrap();
        cign_core::LossValues::NAMES.map(|k| r[k].as_f64().unwrap())
    };
    assert_eq!(record(&full), record(&part));
    assert_eq!(steps(&part, "train"), [3, 6, 9]);
}
