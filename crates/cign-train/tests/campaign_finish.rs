//! `scripts/campaign_finish.sh RUN OUT_ROOT` on a tiny run: the curve, the full-protocol
//! evaluations of the best checkpoint and of the last snapshot, the weights with their SHA-256
//! and card, and the results rows rendered from what it wrote. The model card's numbers are
//! those of the evaluation JSONs and the run's own records.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs the script with tiny settings (few images, taps 64 and 2048, 2 epochs enough) and
/// `env` on top.
fn script(
    args: &[&Path],
    bin_dir: &Path,
    sample_config: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new("bash")
        .arg(repo.join("scripts/campaign_finish.sh"))
        .args(args)
        .env("CIGN_MIN_EPOCHS", "2")
        .env("CIGN_BIN_DIR", bin_dir)
        .env("CIGN_N_PER_CLASS", "4")
        .env("CIGN_DIMS", "64,2048")
        .env("CIGN_EVAL_ARGS", "--nearest-k 2")
        .env("CIGN_CURVE_N_PER_CLASS", "2")
        .env("CIGN_CURVE_DIMS", "64")
        .env("CIGN_SAMPLE_CONFIG", sample_config)
        .env("CIGN_COMMIT", "test123")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn a_finished_campaign_gets_its_numbers_weights_card_and_rows() {
    let tmp = tempfile::tempdir().unwrap();
    // 4 steps per epoch, 2 epochs, a snapshot after each: the best checkpoint is the epoch with
    // the lowest validation total, the last snapshot epoch 2. Few images (4 per class against
    // the 200 test images), since the 2048 tap runs the whole Inception network.
    let run = common::tiny_run_with(
        env!("CARGO_BIN_EXE_cign-train"),
        tmp.path(),
        32,
        200,
        &[
            "train.epochs=2",
            "train.eval_every=0",
            "train.snapshot_every_epochs=1",
        ],
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cign-train"))
        .parent()
        .unwrap();
    let out = tmp.path().join("out");
    let sample_config = run.join("config.toml");
    let done = script(&[&run, &out], bin_dir, &sample_config, &[]);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");

    // The best checkpoint is the lowest validation total of metrics.jsonl.
    let records: Vec<Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let best_val = records
        .iter()
        .filter(|r| r["kind"] == "validation")
        .min_by(|a, b| {
            a["total"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["total"].as_f64().unwrap())
        })
        .unwrap();
    let best_step = best_val["step"].as_u64().unwrap();
    let best = read_json(&out.join("results/runs/large_channel_campaign.json"));
    // Which files were evaluated (best and last may hold the same model in a tiny run).
    assert!(best["checkpoint"]
        .as_str()
        .unwrap()
        .ends_with("checkpoints/best.safetensors"));
    assert_eq!(best["checkpoint_state"]["step"].as_u64(), Some(best_step));
    assert_eq!(best["training"]["model_step"].as_u64(), Some(best_step));
    assert_eq!(best["training"]["steps_trained"].as_u64(), Some(8));
    assert_eq!(best["training"]["epochs_trained"].as_u64(), Some(2));
    assert_eq!(best["n_per_class"].as_u64(), Some(4));
    let last = read_json(&out.join("results/runs/large_channel_campaign_epoch002.json"));
    assert!(last["checkpoint"]
        .as_str()
        .unwrap()
        .ends_with("checkpoints/epoch-002.safetensors"));
    assert!(
        last["checkpoint_state"].is_null(),
        "a weights file has no loop state"
    );
    assert_eq!(last["training"]["model_epoch"].as_u64(), Some(2));
    assert_eq!(last["training"]["model_step"].as_u64(), Some(8));
    for d in [&best, &last] {
        let taps: Vec<u64> = d["report"]["taps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["dims"].as_u64().unwrap())
            .collect();
        assert_eq!(taps, [64, 2048]);
        assert!(d["report"]["prdc"]["all_class"]["recall"].is_number());
    }

    // The weights, their SHA-256 in the card, and the card's numbers.
    let weights = out.join("models/large_channel_mnist.safetensors");
    let sha = cign_data::fetch::sha256_hex(&std::fs::read(&weights).unwrap());
    let card = std::fs::read_to_string(out.join("models/README.md")).unwrap();
    assert!(card.contains(&sha), "{card}");
    assert!(card.contains(&format!("step {best_step}")), "{card}");
    let mean64 = |d: &Value| {
        d["report"]["taps"][0]["per_class"]["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(card.contains(&format!("{:.4}", mean64(&best))), "{card}");
    assert!(card.contains(&format!("{:.4}", mean64(&last))), "{card}");
    assert!(card.contains("worse than the paper's 0.1149"), "{card}");
    assert!(out
        .join("results/large_channel_campaign_final.png")
        .is_file());
    let curve = read_json(&out.join("results/large_channel_curve.json"));
    assert_eq!(curve["points"].as_array().unwrap().len(), 2);

    // The run's records, copied, and its one segment read from the copied log.
    for (from, to) in [
        ("run.log", "results/runs/large_channel_campaign.run.log"),
        (
            "metrics.jsonl",
            "results/runs/large_channel_campaign.metrics.jsonl",
        ),
    ] {
        assert_eq!(
            std::fs::read(run.join(from)).unwrap(),
            std::fs::read(out.join(to)).unwrap(),
            "{to}"
        );
    }
    let segments = std::fs::read_to_string(out.join("results/large_channel_segments.md")).unwrap();
    assert!(
        segments.contains("Total: 8 steps = 2.00 of 25 epochs in one segment, "),
        "{segments}"
    );
    assert!(stderr.contains("the campaign's total: 8 steps"), "{stderr}");
    assert!(
        card.contains("| wall time | 8 steps = 2.00 of 25 epochs in one segment, "),
        "{card}"
    );

    // The results rows, rendered from what the script wrote.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let table = Command::new("python3")
        .arg(repo.join("scripts/results_table.py"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("| large_channel, paper recipe: best by validation |"))
        .unwrap_or_else(|| panic!("no campaign row in {table}"));
    assert!(row.contains(&format!("{:.4}", mean64(&best))), "{row}");
    assert!(row.contains(&format!("step {best_step}")), "{row}");
    assert!(
        row.contains("8 steps = 2.00 of 25 epochs in one segment, ")
            && row.contains(" of wall time"),
        "{row}"
    );
    assert!(table.contains("is finished"), "{table}");

    // Bad input: one line, exit 2.
    let repo_script = repo.join("scripts/campaign_finish.sh");
    let none = Command::new("bash").arg(&repo_script).output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    let refused = |args: &[&Path], bins: &Path, env: &[(&str, &str)], why: &str| {
        let o = script(args, bins, &sample_config, env);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.lines().count() == 1 && stderr.contains(why),
            "{why}: {stderr}"
        );
    };
    refused(&[tmp.path()], bin_dir, &[], "not a run directory");
    refused(
        &[&run, &out],
        bin_dir,
        &[("CIGN_MIN_EPOCHS", "25")],
        "before 25",
    );
    // Binaries older than the last commit that changed crates/ (dated 1970 here).
    let stale = tmp.path().join("stale-bin");
    std::fs::create_dir(&stale).unwrap();
    for b in ["cign-curve", "cign-eval", "cign-export", "cign-sample"] {
        let f = stale.join(b);
        std::fs::write(&f, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
    }
    refused(&[&run, &out], &stale, &[], "older than the last commit");
    // A run whose trainer still holds the lock.
    let mut holder = Command::new("flock")
        .arg(run.join("lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    refused(&[&run, &out], bin_dir, &[], "still being trained");
    holder.kill().unwrap();
    holder.wait().unwrap();
}
