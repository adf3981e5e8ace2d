//! `scripts/gpu_paper_run.sh OUT --tiny` runs the whole GPU path (step times, training both
//! headline models, full-protocol evaluation, weights export, sampling from the weights, the
//! summary table) on the CPU with tiny settings, so the script a GPU session runs once is known
//! to work before that session.

use std::path::Path;
use std::process::Command;

#[test]
fn the_gpu_script_runs_end_to_end_in_tiny_mode() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cign-train"))
        .parent()
        .unwrap();
    let step_time = bin_dir.join("examples").join("step_time");
    if !step_time.is_file() {
        // `cargo test` builds the examples; a filtered build (`--test gpu_script`) may not.
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", "cign-train", "--example", "step_time"])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A relative OUT_DIR is taken from the caller's directory, not from the repository root
    // the script works in.
    let status = Command::new("bash")
        .arg(repo.join("scripts/gpu_paper_run.sh"))
        .arg("out")
        .arg("--tiny")
        .current_dir(tmp.path())
        .env("CIGN_BIN_DIR", bin_dir)
        .env("CIGN_STEP_TIME", &step_time)
        // The per-run time budget's path (3 steps end long before it).
        .env("CIGN_TRAIN_MINUTES", "5")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success(), "{stderr}");
    let out = tmp.path().join("out");
    let times = std::fs::read_to_string(out.join("step_times.jsonl")).unwrap();
    assert_eq!(times.lines().count(), 4, "{times}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for cfg in ["large_channel", "small_filter"] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {cfg} |")))
            .unwrap_or_else(|| panic!("no {cfg} row in {summary}"));
        // Steps 3, epochs 0, then numbers: the FID64 per-class mean must be a number.
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], "3", "{row}");
        assert!(cells[6].parse::<f64>().is_ok(), "{row}");
        assert!(out.join(format!("{cfg}.safetensors")).is_file());
        assert!(out.join(format!("{cfg}.grid.png")).is_file());
    }
    // Everything written through a .part file was moved into place.
    let parts: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
    // Without --tiny on a machine without CUDA it refuses with one line and exit 2.
    if !tch::Cuda::is_available() {
        let out2 = tempfile::tempdir().unwrap();
        let refused = Command::new("bash")
            .arg(repo.join("scripts/gpu_paper_run.sh"))
            .arg(out2.path())
            .env("CIGN_BIN_DIR", bin_dir)
            .env("CIGN_STEP_TIME", &step_time)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("no CUDA"));
    }
}

/// The script run from `dir` with `args` and `envs`, its binaries directory missing (a check
/// that must come first).
fn without_binaries(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new("bash")
        .arg(repo.join("scripts/gpu_paper_run.sh"))
        .args(args)
        .current_dir(dir)
        .env("CIGN_BIN_DIR", dir.join("no-binaries"))
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// Usage errors are one line on stderr and exit 2, before any binary is looked for; so is a
/// time budget that is not a number of minutes > 0.
#[test]
fn the_gpu_script_rejects_bad_arguments_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&[][..], &["--tiny"], &["a", "b"], &["out", "--bogus"]] {
        let out = without_binaries(tmp.path(), args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("gpu_paper_run: "), "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
    for minutes in ["0", "-1", "soon", "nan"] {
        let out = without_binaries(tmp.path(), &["out"], &[("CIGN_TRAIN_MINUTES", minutes)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{minutes}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{minutes}: {stderr}");
        assert!(stderr.contains("CIGN_TRAIN_MINUTES"), "{minutes}: {stderr}");
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing created"
    );
}
