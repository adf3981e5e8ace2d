//! `cign-eval`'s precision/recall/density/coverage arguments: every mistake is one `error:`
//! line with exit code 2, found before a model is loaded or an image generated.

mod common;

use std::process::Command;

/// Runs cign-eval and returns its one error line, asserting exit code 2 and no panic.
fn eval_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cign-eval"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

#[test]
fn nearest_k_and_class_sizes_are_checked_first() {
    // Before the run is even opened.
    let e = eval_fails(&["--run", "/nonexistent-run", "--nearest-k", "0"]);
    assert!(
        e.contains("--nearest-k 0") && e.contains("at least 1"),
        "{e}"
    );
    let e = eval_fails(&["--run", "/nonexistent-run", "--n-per-class", "5"]);
    assert!(
        e.contains("--n-per-class 5") && e.contains("--nearest-k 5") && e.contains("--no-prdc"),
        "{e}"
    );
    let e = eval_fails(&["--run", "/nonexistent-run", "--nearest-k", "five"]);
    assert!(e.contains("five"), "{e}");

    // A run whose test split has 100 images (2 to 15 per class, two of class 8): too few real
    // images of class 8 for k = 5, reported before any image is generated or the Inception
    // network is loaded.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::tiny_mnist(&data, 16, 100);
    let runs = tmp.path().join("runs");
    let cfg = common::write(
        tmp.path(),
        "tiny.toml",
        &common::tiny_config(&data, &runs, "channel"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cign-train"))
        .args([cfg.to_str().unwrap(), "--set", "train.max_steps=1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run = run.to_str().unwrap();
    let e = eval_fails(&[
        "--run",
        run,
        "--checkpoint",
        "last",
        "--device",
        "cpu",
        "--n-per-class",
        "10",
    ]);
    assert!(
        e.contains("real samples of class 8") && e.contains("2 samples, at least 6"),
        "{e}"
    );
    // The first 10 test images have no 3, 6 or 8: per-class FID and PRDC compare the same
    // classes, so this is an error too, naming the class and the options to change.
    let e = eval_fails(&[
        "--run",
        run,
        "--checkpoint",
        "last",
        "--device",
        "cpu",
        "--n-per-class",
        "10",
        "--nearest-k",
        "1",
        "--real-limit",
        "10",
    ]);
    assert!(
        e.contains("class 3 has generated samples but no real samples")
            && e.contains("the first 10 test images"),
        "{e}"
    );
}
