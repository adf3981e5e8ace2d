//! `cign-eval`'s precision/recall/density/coverage arguments: every mistake is one `error:`
//! line with exit code 2, found before a model is loaded or an image generated.

mod common;

fn eval_fails(args: &[&str]) -> String {
    common::fails(env!("CARGO_BIN_EXE_cign-eval"), args)
}

#[test]
fn nearest_k_and_class_sizes_are_checked_first() {
    // Before the run is even opened.
    let e = eval_fails(&["--run", "/nonexistent-run", "--nearest-k", "0"]);
    assert!(
        e.contains("--nearest-k 0") && e.contains("at least 1"),
        "{e}"
    );
    // k + 1 images per class are too few (as prdc, which needs k + 2).
    let e = eval_fails(&["--run", "/nonexistent-run", "--n-per-class", "6"]);
    assert!(
        e.contains("--n-per-class 6") && e.contains("--nearest-k 5") && e.contains("--no-prdc"),
        "{e}"
    );
    let e = eval_fails(&["--run", "/nonexistent-run", "--nearest-k", "five"]);
    assert!(e.contains("five"), "{e}");

    // A run whose test split has 100 images (2 to 15 per class, two of class 8): too few real
    // images of class 8 for k = 5, reported before any image is generated or the Inception
    // network is loaded.
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 100, 1);
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
        e.contains("real samples of class 8") && e.contains("2 samples, at least 7"),
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

#[test]
fn each_flag_is_checked_on_its_own_and_outputs_before_the_evaluation() {
    // --n-per-class's own range comes before its relation to --nearest-k.
    for n in ["0", "1"] {
        let e = eval_fails(&["--run", "/nonexistent-run", "--n-per-class", n]);
        assert!(
            e.contains(&format!("--n-per-class {n}"))
                && e.contains("2..=1000000")
                && !e.contains("--nearest-k"),
            "{e}"
        );
    }
    // --nearest-k means nothing without precision/recall.
    let e = eval_fails(&["--run", "/nonexistent-run", "--no-prdc", "--nearest-k", "3"]);
    assert!(e.contains("--no-prdc") && e.contains("--nearest-k"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 100, 1);
    let run = run.to_str().unwrap();
    let base = [
        "--run",
        run,
        "--checkpoint",
        "last",
        "--device",
        "cpu",
        "--no-prdc",
    ];
    // More reference images than the test split holds: refused, not clamped.
    let e = eval_fails(&[&base[..], &["--real-limit", "99999999"][..]].concat());
    assert!(
        e.contains("--real-limit 99999999") && e.contains("only 100"),
        "{e}"
    );
    // The JSON's path is checked before anything is evaluated or printed.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("dir").join("c.json").display().to_string();
    let ckpt = format!("{run}/checkpoints/last.safetensors");
    for (json, word) in [
        (bad.as_str(), bad.as_str()),
        (ckpt.as_str(), "inside the checkpoints/ folder"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cign-eval"))
            .args([&base[..], &["--json", json][..]].concat())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty(), "a report was printed: {stderr}");
        assert!(
            stderr.contains(word) && !stderr.contains(".part"),
            "{stderr}"
        );
    }
}
