//! `scripts/campaign_state.sh` on a tiny run: `save` keeps what `--resume` and the tools need
//! (`best` without its AdamW moments), refuses a run whose trainer holds the lock, and
//! `restore` recreates a run directory that resumes where the saved one stood and whose `best`
//! holds the same model.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cign_train::checkpoint;
use tch::{nn::VarStore, Device};

fn script(args: &[&Path]) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new("bash")
        .arg(repo.join("scripts/campaign_state.sh"))
        .args(args)
        .output()
        .unwrap()
}

fn tensor_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = tch::Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    names
}

/// The model of a checkpoint, as the sampling tools load it (`checkpoint::load_model`).
fn model_of(path: &Path, run: &Path) -> Vec<(String, tch::Tensor)> {
    let cfg = cign_train::config::TrainConfig::load(&run.join("config.toml"), &[]).unwrap();
    let mut vs = VarStore::new(Device::Cpu);
    let _model = cign_core::CignModel::new(&vs.root(), &cfg.model).unwrap();
    checkpoint::load_model(path, &mut vs).unwrap();
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_saved_state_restores_a_run_that_resumes_and_samples_like_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let run: PathBuf = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 32, 40, 3);
    let state = tmp.path().join("state");

    // A trainer holding the lock: refused, nothing written.
    let held = Command::new("flock")
        .args(["-n", "-s", "--no-fork"])
        .arg(run.join("lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = script(&[Path::new("save"), &run, &state]);
    let mut held = held;
    held.kill().unwrap();
    held.wait().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("holds its lock"), "{}", stderr(&out));
    assert!(!state.exists());

    let out = script(&[Path::new("save"), &run, &state]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_file = std::fs::read_to_string(state.join("RUN")).unwrap();
    let name = run.file_name().unwrap().to_str().unwrap();
    assert_eq!(run_file, format!("run {name}\nstep 3\n"));
    // `last` whole; `best` without optim.*, and with every model.* and meta.* tensor.
    assert_eq!(
        std::fs::read(state.join("checkpoints/last.safetensors")).unwrap(),
        std::fs::read(run.join("checkpoints/last.safetensors")).unwrap()
    );
    let best_names = tensor_names(&run.join("checkpoints/best.safetensors"));
    assert!(best_names.iter().any(|n| n.starts_with("optim.")));
    let kept: Vec<String> = best_names
        .into_iter()
        .filter(|n| !n.starts_with("optim."))
        .collect();
    assert_eq!(
        tensor_names(&state.join("checkpoints/best.safetensors")),
        kept
    );

    // Restored: the same model in `best`, the same `last`, records and config.
    let runs = tmp.path().join("restored");
    let out = script(&[Path::new("restore"), &state, &runs]);
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = runs.join(name);
    for (a, b) in model_of(&run.join("checkpoints/best.safetensors"), &run)
        .iter()
        .zip(model_of(
            &restored.join("checkpoints/best.safetensors"),
            &restored,
        ))
    {
        assert_eq!(a.0, b.0);
        assert!(a.1.equal(&b.1), "{} differs", a.0);
    }
    for f in [
        "checkpoints/last.safetensors",
        "checkpoints/config.toml",
        "config.toml",
        "run.log",
        "metrics.jsonl",
    ] {
        assert_eq!(
            std::fs::read(run.join(f)).unwrap(),
            std::fs::read(restored.join(f)).unwrap(),
            "{f}"
        );
    }
    // A second restore over it is refused.
    let out = script(&[Path::new("restore"), &state, &runs]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));

    // The restored run resumes from step 3.
    let resumed = Command::new(env!("CARGO_BIN_EXE_cign-train"))
        .arg("--resume")
        .arg(&restored)
        .args(["--set", "train.max_steps=4"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let log = std::fs::read_to_string(restored.join("run.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("resumed from") && l.contains("at step 3")),
        "{log}"
    );

    // The state directory belongs to one run, and never goes back to an earlier step.
    let other = common::tiny_run(
        env!("CARGO_BIN_EXE_cign-train"),
        &tmp.path().join("other"),
        32,
        40,
        2,
    );
    // (Another name for sure: two tiny runs started in one second would share theirs.)
    let other = {
        let renamed = other.with_file_name("other-run");
        std::fs::rename(&other, &renamed).unwrap();
        renamed
    };
    let out = script(&[Path::new("save"), &other, &state]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give another STATE_DIR"),
        "{}",
        stderr(&out)
    );
    let out = script(&[Path::new("save"), &restored, &state]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(state.join("RUN"))
        .unwrap()
        .contains("step 4"));
    let out = script(&[Path::new("save"), &run, &state]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("newer than"), "{}", stderr(&out));

    // Usage errors: one line, exit 2.
    for bad in [
        &[][..],
        &[Path::new("save")][..],
        &[Path::new("nonsense")][..],
    ] {
        let out = script(bad);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
}
