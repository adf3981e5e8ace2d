//! Bad input gives a one-line error that names the problem, and exit code 2, never a panic.

mod common;

use std::path::Path;
use std::process::Command;

use common::fails;

fn train_fails(args: &[&str]) -> String {
    fails(env!("CARGO_BIN_EXE_cign-train"), args)
}

fn tmp_config(dir: &Path, text: &str) -> String {
    common::write(dir, "c.toml", text).display().to_string()
}

#[test]
fn missing_config_file() {
    let e = train_fails(&["/nonexistent/x.toml"]);
    assert!(
        e.contains("/nonexistent/x.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn bad_toml_reports_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let c = tmp_config(
        d.path(),
        "[model]\nlatent_dim = 4\nintermediate_dim = = 3\n",
    );
    let e = train_fails(&[&c, "--summary"]);
    assert!(e.contains("line 3") && e.contains("column"), "{e}");
}

#[test]
fn unknown_key_lists_valid_ones() {
    let d = tempfile::tempdir().unwrap();
    let c = tmp_config(d.path(), "[train]\nbatch_sise = 4\n");
    let e = train_fails(&[&c, "--summary"]);
    assert!(e.contains("batch_sise") && e.contains("batch_size"), "{e}");
    let c = tmp_config(d.path(), "[modle]\n");
    let e = train_fails(&[&c, "--summary"]);
    assert!(e.contains("modle") && e.contains("model"), "{e}");
    let e = train_fails(&[
        "../../configs/small_channel.toml",
        "--set",
        "train.speed=3",
        "--summary",
    ]);
    assert!(e.contains("speed") && e.contains("max_steps"), "{e}");
}

#[test]
fn wrong_type() {
    let d = tempfile::tempdir().unwrap();
    let c = tmp_config(d.path(), "[train]\nbatch_size = \"big\"\n");
    let e = train_fails(&[&c, "--summary"]);
    assert!(e.contains("batch_size") || e.contains("integer"), "{e}");
    let e = train_fails(&[
        "../../configs/small_channel.toml",
        "--set",
        "train.max_steps=lots",
        "--summary",
    ]);
    assert!(e.contains("train.max_steps=lots"), "{e}");
}

#[test]
fn out_of_range_values() {
    let e = train_fails(&[
        "../../configs/small_channel.toml",
        "--set",
        "data.mismatch_per_real=10",
        "--summary",
    ]);
    assert!(
        e.contains("mismatch_per_real") && e.contains("0..=9"),
        "{e}"
    );
    let e = train_fails(&[
        "../../configs/small_channel.toml",
        "--set",
        "train.batch_size=0",
    ]);
    assert!(e.contains("batch_size"), "{e}");
}

#[test]
fn run_directory_without_checkpoints() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.toml"), "").unwrap();
    let e = train_fails(&["--resume", &d.path().display().to_string()]);
    assert!(
        e.contains("no checkpoint") && e.contains("last.safetensors"),
        "{e}"
    );
    let e = train_fails(&["--resume", "/nonexistent-run"]);
    assert!(e.contains("/nonexistent-run"), "{e}");
}

#[test]
fn sampling_errors_label_and_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 8, 2);
    let run_s = run.display().to_string();
    let sample = env!("CARGO_BIN_EXE_cign-sample");
    let png = tmp.path().join("g.png").display().to_string();

    let e = fails(sample, &["--run", &run_s, "--label", "10", "--out", &png]);
    assert!(e.contains("--label 10") && e.contains("0..10"), "{e}");
    let e = fails(
        sample,
        &["--run", &run_s, "--label", "seven", "--out", &png],
    );
    assert!(e.contains("seven"), "{e}");

    // The same grid works with the right architecture...
    let ok = Command::new(sample)
        .args([
            "--run",
            &run_s,
            "--out",
            &png,
            "--n",
            "3",
            "--checkpoint",
            "last",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(Path::new(&png).is_file());

    // ...but a config that names another architecture no longer fits the checkpoint.
    let text = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(
        run.join("config.toml"),
        text.replace("latent_dim = 4", "latent_dim = 6"),
    )
    .unwrap();
    let e = fails(
        sample,
        &["--run", &run_s, "--out", &png, "--checkpoint", "last"],
    );
    assert!(e.contains("does not match") && e.contains("shape"), "{e}");
}

#[test]
fn every_out_of_range_value_is_one_line_naming_the_key_before_training() {
    for (set, key) in [
        ("optim.betas=[1.5,0.999]", "optim.betas"),
        ("optim.weight_decay=-1", "optim.weight_decay"),
        ("optim.eps=0", "optim.eps"),
        ("optim.lr=-1e-4", "optim.lr"),
        ("loss.tight_clamp_ratio=-2", "loss.tight_clamp_ratio"),
        ("loss.rec=-1", "loss.rec"),
        ("data.train_noise_std=-0.1", "data.train_noise_std"),
        ("model.dropout=1.5", "model.dropout"),
        (
            "train.checkpoint_every_minutes=-1",
            "train.checkpoint_every_minutes",
        ),
        ("train.device=\"gpu\"", "gpu"),
        // The model must fit the data (10 classes of grey images) and the machine.
        ("model.num_classes=5", "model.num_classes"),
        ("model.num_classes=20", "model.num_classes"),
        ("model.image_channels=3", "model.image_channels"),
        ("model.latent_dim=100000", "model.latent_dim"),
        ("model.latent_dim=20000", "model.latent_dim"),
        ("model.embedding_dim=1000000", "model.embedding_dim"),
        ("train.threads=4294967296", "train.threads"),
        ("train.log_every=0", "train.log_every"),
    ] {
        // --summary would exit 0 after the config check: the check comes first.
        let e = train_fails(&[
            "../../configs/small_channel.toml",
            "--set",
            set,
            "--summary",
        ]);
        assert!(e.contains(key), "{set}: {e}");
    }
}

#[test]
fn a_config_with_resume_is_refused_not_ignored() {
    let d = tempfile::tempdir().unwrap();
    let e = train_fails(&[
        "../../configs/small_channel.toml",
        "--resume",
        &d.path().display().to_string(),
    ]);
    assert!(
        e.contains("not both") && e.contains("small_channel.toml"),
        "{e}"
    );
}

#[test]
fn sampling_options_that_would_be_ignored_are_errors_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run_with(
        env!("CARGO_BIN_EXE_cign-train"),
        tmp.path(),
        16,
        8,
        &["train.max_steps=2", "model.conditioning=\"none\""],
    );
    let run_s = run.display().to_string();
    let sample = env!("CARGO_BIN_EXE_cign-sample");
    let out = |name: &str| tmp.path().join(name).display().to_string();
    let (png, idx, labels) = (out("g.png"), out("g.idx"), out("l.idx"));
    // An unconditional model has no labels to write: refused before any image is written.
    let e = fails(
        sample,
        &[
            "--run",
            &run_s,
            "--out",
            &png,
            "--idx",
            &idx,
            "--idx-labels",
            &labels,
        ],
    );
    assert!(
        e.contains("--idx-labels") && e.contains("unconditional"),
        "{e}"
    );
    for f in [&png, &idx, &labels] {
        assert!(!Path::new(f).exists(), "{f} was written");
    }
    // f applied zero times, a checkpoint choice for a weights file, --project with --idx.
    let weights = out("w.safetensors");
    for (args, word) in [
        (
            vec!["--run", &run_s, "--out", &png, "--reapply", "0"],
            "--reapply",
        ),
        (
            vec![
                "--weights",
                &weights,
                "--config",
                &out("c.toml"),
                "--checkpoint",
                "last",
                "--out",
                &png,
            ],
            "--checkpoint",
        ),
        (
            vec!["--run", &run_s, "--project", &png, "--idx", &idx],
            "--idx",
        ),
    ] {
        let e = fails(sample, &args);
        assert!(e.contains(word), "{args:?}: {e}");
    }
    assert!(!Path::new(&png).exists() && !Path::new(&idx).exists());
}
