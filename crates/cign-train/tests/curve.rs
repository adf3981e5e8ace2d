//! `cign-curve`: every epoch snapshot evaluated once, with the same images `cign-eval` draws
//! from the same weights and seed, next to the validation loss of its epoch; re-evaluated only
//! when its file changes; settings never mixed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn curve(args: &[&str]) -> String {
    // The log lines checked below are at INFO, whatever RUST_LOG the caller has.
    let out = common::succeeds(
        Command::new(env!("CARGO_BIN_EXE_cign-curve"))
            .args(args)
            .env("RUST_LOG", "info"),
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Per-class FID means of a curve point, by tap.
fn point_means(point: &Value) -> Vec<(u64, f64)> {
    point["fid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["dims"].as_u64().unwrap(), t["mean"].as_f64().unwrap()))
        .collect()
}

/// A tiny run with a snapshot at every epoch: 32 training images, batch 8, so 4 steps per
/// epoch; 200 test images, so every class is present.
fn run_with_snapshots(dir: &Path, epochs: u64, eval_every: u64) -> PathBuf {
    common::tiny_run_with(
        env!("CARGO_BIN_EXE_cign-train"),
        dir,
        32,
        200,
        &[
            &format!("train.epochs={epochs}"),
            &format!("train.eval_every={eval_every}"),
            "train.snapshot_every_epochs=1",
        ],
    )
}

/// The records of a run's `metrics.jsonl`.
fn records(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `cign-curve` arguments for `run` on the CPU, writing `curve.json` and `curve.png` in `dir`.
fn curve_args(run: &Path, dir: &Path, n_per_class: &str, dims: &str) -> Vec<String> {
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    [
        "--run".into(),
        path(run.to_path_buf()),
        "--n-per-class".into(),
        n_per_class.into(),
        "--dims".into(),
        dims.into(),
        "--device".into(),
        "cpu".into(),
        "--json".into(),
        path(dir.join("curve.json")),
        "--png".into(),
        path(dir.join("curve.png")),
    ]
    .to_vec()
}

#[test]
fn every_snapshot_is_evaluated_once_as_cign_eval_would() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_with_snapshots(tmp.path(), 2, 0);
    let snap = |e: u64| {
        run.join("checkpoints")
            .join(format!("epoch-{e:03}.safetensors"))
    };
    assert!(snap(1).is_file() && snap(2).is_file());

    let json = tmp.path().join("curve.json");
    let png = tmp.path().join("curve.png");
    let owned = curve_args(&run, tmp.path(), "4", "64,192");
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let log = curve(&args);
    assert!(log.contains("2 snapshot(s) to evaluate"), "{log}");
    let c = read_json(&json);
    let points = c["points"].as_array().unwrap().clone();
    assert_eq!(points.len(), 2);
    assert!(image::open(&png).is_ok(), "the figure is a readable PNG");

    // Each point: its epoch, the step and validation loss of that epoch's validation record
    // (read here straight from metrics.jsonl), finite positive FIDs at both taps.
    let records = records(&run);
    // The validation of every finished epoch, as metrics.jsonl has it.
    let validation = c["validation"].as_array().unwrap();
    assert_eq!(validation.len(), 2);
    for (i, v) in validation.iter().enumerate() {
        let epoch = i as u64 + 1;
        let val = records
            .iter()
            .find(|r| r["kind"] == "validation" && r["epoch"].as_u64() == Some(epoch))
            .unwrap();
        assert_eq!(v["epoch"].as_u64(), Some(epoch));
        assert_eq!(v["step"].as_u64(), Some(4 * epoch));
        assert_eq!(v["total"].as_f64(), val["total"].as_f64());
        assert_eq!(v["rec"].as_f64(), val["rec"].as_f64());
    }
    for (i, p) in points.iter().enumerate() {
        let epoch = i as u64 + 1;
        assert_eq!(p["epoch"].as_u64(), Some(epoch));
        let val = records
            .iter()
            .find(|r| r["kind"] == "validation" && r["epoch"].as_u64() == Some(epoch))
            .expect("a validation record at the end of every epoch");
        assert_eq!(p["step"].as_u64(), Some(4 * epoch));
        assert_eq!(val["step"].as_u64(), Some(4 * epoch));
        assert_eq!(p["validation_total"].as_f64(), val["total"].as_f64());
        let means = point_means(p);
        assert_eq!(means.iter().map(|m| m.0).collect::<Vec<_>>(), [64, 192]);
        assert!(
            means.iter().all(|m| m.1.is_finite() && m.1 > 0.0),
            "{means:?}"
        );
    }

    // The same plan as cign-eval: its per-class FID means of the epoch-2 weights at the same
    // seed and size are the curve's, to the bit.
    let eval_json = tmp.path().join("eval.json");
    common::succeeds(
        Command::new(env!("CARGO_BIN_EXE_cign-eval"))
            .args(["--weights", snap(2).to_str().unwrap()])
            .args(["--config", run.join("config.toml").to_str().unwrap()])
            .args(["--n-per-class", "4", "--dims", "64,192", "--no-prdc"])
            .args(["--device", "cpu", "--json", eval_json.to_str().unwrap()]),
    );
    let ev = read_json(&eval_json);
    let eval_means: Vec<(u64, f64)> = ev["report"]["taps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["dims"].as_u64().unwrap(),
                t["per_class"]["mean"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(eval_means, point_means(&points[1]));
    // and the two epochs' weights differ, so their points do too
    assert_ne!(point_means(&points[0]), point_means(&points[1]));

    // Nothing new: nothing evaluated, the JSON untouched.
    let before = std::fs::read(&json).unwrap();
    let log = curve(&args);
    assert!(log.contains("0 snapshot(s) to evaluate"), "{log}");
    assert_eq!(std::fs::read(&json).unwrap(), before);

    // A changed snapshot file (epoch 1 replaced by the epoch-2 weights) is evaluated again,
    // and gives the epoch-2 numbers.
    std::fs::copy(snap(2), snap(1)).unwrap();
    let log = curve(&args);
    assert!(log.contains("1 snapshot(s) to evaluate"), "{log}");
    let c = read_json(&json);
    let points = c["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(point_means(&points[0]), point_means(&points[1]));

    // Other settings against the same JSON: refused, naming the difference; --fresh starts over.
    let mut other = args.to_vec();
    other[3] = "5";
    let e = common::fails(env!("CARGO_BIN_EXE_cign-curve"), &other);
    assert!(
        e.contains("other settings") && e.contains("n_per_class 4") && e.contains("--fresh"),
        "{e}"
    );
    other.push("--fresh");
    curve(&other);
    let c = read_json(&json);
    assert_eq!(c["settings"]["n_per_class"].as_u64(), Some(5));
    assert_eq!(c["points"].as_array().unwrap().len(), 2);
}

#[test]
fn a_point_without_accuracy_is_evaluated_again_once_a_classifier_is_cached() {
    // An empty weights directory of its own (no classifier, so no accuracy), the FID
    // weights named directly.
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    let fid_weights = cign_metrics::weights::fid_weights().unwrap();
    let run = run_with_snapshots(tmp.path(), 1, 0);
    let json = tmp.path().join("curve.json");
    let owned = curve_args(&run, tmp.path(), "4", "64");
    let call = || {
        let out = common::succeeds(
            Command::new(env!("CARGO_BIN_EXE_cign-curve"))
                .args(&owned)
                .env("RUST_LOG", "info")
                .env("CIGN_WEIGHTS_DIR", &weights)
                .env("CIGN_FID_WEIGHTS", &fid_weights),
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let log = call();
    assert!(log.contains("1 snapshot(s) to evaluate"), "{log}");
    assert!(log.contains("no cached mnist classifier"), "{log}");
    let before = read_json(&json)["points"][0].clone();
    assert!(before["conditional_accuracy"].is_null(), "{before}");

    // A classifier appears in the cache (untrained: any accuracy will do): the point is
    // evaluated again, gains its accuracy and keeps its FIDs (same weights, same seed).
    cign_metrics::ConditionalClassifier::new(tch::Device::Cpu)
        .unwrap()
        .save(&cign_metrics::classifier::classifier_path_in(
            &weights,
            cign_data::DatasetKind::Mnist,
        ))
        .unwrap();
    let log = call();
    assert!(log.contains("1 snapshot(s) evaluated again"), "{log}");
    assert!(
        log.contains("1 snapshot(s) to evaluate, 0 already in"),
        "{log}"
    );
    let after = read_json(&json)["points"][0].clone();
    let accuracy = after["conditional_accuracy"]
        .as_f64()
        .expect("an accuracy now");
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    assert_eq!(point_means(&after), point_means(&before));
    assert_eq!(after["sha256"], before["sha256"]);

    // Complete now: nothing evaluated again, the JSON untouched.
    let bytes = std::fs::read(&json).unwrap();
    let log = call();
    assert!(log.contains("0 snapshot(s) to evaluate"), "{log}");
    assert_eq!(std::fs::read(&json).unwrap(), bytes);
}

#[test]
fn a_run_without_snapshots_or_a_bad_argument_is_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 100, 1);
    let bin = env!("CARGO_BIN_EXE_cign-curve");
    let e = common::fails(bin, &["--run", run.to_str().unwrap(), "--device", "cpu"]);
    assert!(
        e.contains("no epoch snapshots") && e.contains("snapshot_every_epochs"),
        "{e}"
    );
    let e = common::fails(bin, &["--run", "/nonexistent-run"]);
    assert!(e.contains("/nonexistent-run"), "{e}");
    let e = common::fails(bin, &["--run", run.to_str().unwrap(), "--dims", "65"]);
    assert!(e.contains("65"), "{e}");
    let e = common::fails(
        bin,
        &["--run", run.to_str().unwrap(), "--precision", "fp16"],
    );
    assert!(e.contains("fp16"), "{e}");
}

#[test]
fn bad_outputs_and_ranges_are_refused_before_anything_is_written() {
    let bin = env!("CARGO_BIN_EXE_cign-curve");
    let e = common::fails(bin, &["--run", "/nonexistent-run", "--n-per-class", "1"]);
    assert!(e.contains("--n-per-class 1") && e.contains("2..="), "{e}");
    let tmp = tempfile::tempdir().unwrap();
    let run = run_with_snapshots(tmp.path(), 1, 0);
    let run_s = run.to_str().unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let json = tmp.path().join("c6.json");
    let png = file.join("dir").join("c.png");
    let e = common::fails(
        bin,
        &[
            "--run",
            run_s,
            "--device",
            "cpu",
            "--png",
            png.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("--png") && e.contains(png.to_str().unwrap()) && !e.contains(".part"),
        "{e}"
    );
    assert!(
        !json.exists(),
        "--json was written although --png cannot be"
    );
    // Inside the run's checkpoints/, or over its metrics: refused.
    for (flag, path) in [
        ("--json", run.join("checkpoints").join("curve.json")),
        ("--png", run.join("metrics.jsonl")),
    ] {
        let e = common::fails(bin, &["--run", run_s, flag, path.to_str().unwrap()]);
        assert!(e.contains(flag), "{e}");
    }
    // Only flags cign-curve has are named; more reference images than exist is an error.
    let args = [
        "--run",
        run_s,
        "--device",
        "cpu",
        "--json",
        json.to_str().unwrap(),
    ];
    let e = common::fails(
        bin,
        &[&args[..], &["--real-limit", "5", "--n-per-class", "2"][..]].concat(),
    );
    assert!(
        e.contains("--real-limit") && !e.contains("--nearest-k"),
        "{e}"
    );
    let e = common::fails(bin, &[&args[..], &["--real-limit", "201"][..]].concat());
    assert!(
        e.contains("--real-limit 201") && e.contains("only 200"),
        "{e}"
    );
    assert!(!json.exists());
}

#[test]
fn validations_between_epoch_ends_never_stand_for_an_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    // 4 steps per epoch, 3 epochs, validation every 3 steps: at steps 3, 6, 9 (mid-epoch) and
    // 12 (the end of epoch 3); only epoch 3 has an end-of-epoch validation.
    let run = run_with_snapshots(tmp.path(), 3, 3);
    let records = records(&run);
    let validations: Vec<(u64, u64, u64)> = records
        .iter()
        .filter(|r| r["kind"] == "validation")
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["epoch"].as_u64().unwrap(),
                r["batch_in_epoch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(validations, [(3, 0, 3), (6, 1, 2), (9, 2, 1), (12, 3, 0)]);

    let json = tmp.path().join("curve.json");
    let png = tmp.path().join("curve.png");
    let owned = curve_args(&run, tmp.path(), "2", "64");
    curve(&owned.iter().map(String::as_str).collect::<Vec<_>>());
    let c = read_json(&json);
    let validation: Vec<(u64, u64)> = c["validation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["epoch"].as_u64().unwrap(), v["step"].as_u64().unwrap()))
        .collect();
    assert_eq!(validation, [(3, 12)]);
    let points: Vec<(u64, Option<u64>, Option<f64>)> = c["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["epoch"].as_u64().unwrap(),
                p["step"].as_u64(),
                p["validation_total"].as_f64(),
            )
        })
        .collect();
    let end = records
        .iter()
        .find(|r| r["kind"] == "validation" && r["step"].as_u64() == Some(12))
        .unwrap();
    assert_eq!(
        points,
        [
            (1, None, None),
            (2, None, None),
            (3, Some(12), end["total"].as_f64())
        ]
    );
    assert!(image::open(&png).is_ok(), "the figure is a readable PNG");
}
