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
