//! An interrupted run, resumed, ends with exactly the weights, BatchNorm statistics and
//! optimizer state of an uninterrupted one (CPU, tiny model, across epoch boundaries).

mod common;

use std::collections::HashMap;

use cign_train::run_dir::RunDir;
use cign_train::signals::StopFlag;
use cign_train::{StopReason, TrainConfig, Trainer};
use tch::Tensor;

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
            if name == "meta.train_seconds" {
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
