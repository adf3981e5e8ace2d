//! Bad input gives a one-line error that names the problem, and exit code 2, never a panic.

mod common;

use std::path::{Path, PathBuf};
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
    assert!(e.contains("--label 10") && e.contains("0 to 9"), "{e}");
    let e = fails(
        sample,
        &["--run", &run_s, "--label", "seven", "--out", &png],
    );
    assert!(e.contains("seven"), "{e}");
    // A negative class is a class out of range, not an unknown option.
    let e = fails(sample, &["--run", &run_s, "--label", "-1", "--out", &png]);
    assert!(e.contains("--label -1") && e.contains("0 to 9"), "{e}");
    // A weights file that is not one is named as what it is, not as a checkpoint; a folder
    // given as the image to project says so.
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"x").unwrap();
    let config = run.join("config.toml").display().to_string();
    let e = fails(
        sample,
        &[
            "--weights",
            junk.to_str().unwrap(),
            "--config",
            &config,
            "--out",
            &png,
        ],
    );
    assert!(
        e.starts_with(&format!(
            "error: {}: not a readable safetensors",
            junk.display()
        )),
        "{e}"
    );
    let e = fails(
        sample,
        &[
            "--run",
            &run_s,
            "--checkpoint",
            "last",
            "--project",
            tmp.path().to_str().unwrap(),
            "--label",
            "1",
            "--out",
            &png,
        ],
    );
    assert!(e.contains("is a directory, not an image file"), "{e}");

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

#[test]
fn a_config_that_sets_no_key_is_refused() {
    let d = tempfile::tempdir().unwrap();
    for text in ["", "# only comments\n\n# here\n"] {
        let c = tmp_config(d.path(), text);
        // --summary would exit 0 with the default model: the check comes first.
        let e = train_fails(&[&c, "--summary"]);
        assert!(
            e.contains("c.toml") && e.contains("sets no key") && e.contains("configs/*.toml"),
            "{e}"
        );
    }
    // A file that sets something (even an empty section) is read as usual.
    let c = tmp_config(d.path(), "[train]\n");
    common::succeeds(
        Command::new(env!("CARGO_BIN_EXE_cign-train")).args([c.as_str(), "--summary"]),
    );
}

#[test]
fn every_binary_names_itself_and_describes_itself() {
    for (bin, name, about) in [
        (
            env!("CARGO_BIN_EXE_cign-train"),
            "cign-train",
            "Train a Conditional",
        ),
        (
            env!("CARGO_BIN_EXE_cign-sample"),
            "cign-sample",
            "Generate images",
        ),
        (
            env!("CARGO_BIN_EXE_cign-eval"),
            "cign-eval",
            "Evaluate a trained",
        ),
        (
            env!("CARGO_BIN_EXE_cign-curve"),
            "cign-curve",
            "The learning curve",
        ),
        (
            env!("CARGO_BIN_EXE_cign-export"),
            "cign-export",
            "Export a checkpoint",
        ),
    ] {
        let out = common::succeeds(Command::new(bin).arg("-V"));
        let version = String::from_utf8_lossy(&out.stdout);
        assert!(version.starts_with(&format!("{name} ")), "{version}");
        let out = common::succeeds(Command::new(bin).arg("--help"));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.starts_with(about), "{name}: {help}");
        assert!(help.contains(&format!("Usage: {name} ")), "{help}");
        assert!(!help.contains("(the main job)"), "{name}: {help}");
    }
    // The usage line says what is needed: --run or --weights, nothing else stands for them.
    for (bin, output) in [
        (env!("CARGO_BIN_EXE_cign-sample"), &["--out", "s.png"][..]),
        (env!("CARGO_BIN_EXE_cign-eval"), &[][..]),
    ] {
        let out = common::succeeds(Command::new(bin).arg("--help"));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("<--run <RUN_DIR>|--weights <FILE.safetensors>>")
                && !help.contains("|--precision"),
            "{help}"
        );
        for args in [
            ["--precision", "bf16"],
            ["--checkpoint", "last"],
            ["--config", "c.toml"],
        ] {
            let e = fails(bin, &[&args[..], output].concat());
            assert!(
                e.contains("--run") && e.contains("--weights"),
                "{args:?}: {e}"
            );
        }
    }
}

#[test]
fn outputs_are_checked_before_any_work_and_never_replace_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 8, 2);
    let run_s = run.display().to_string();
    let sample = env!("CARGO_BIN_EXE_cign-sample");
    let export = env!("CARGO_BIN_EXE_cign-export");
    let at = |p: &Path| p.display().to_string();
    let last = run.join("checkpoints").join("last.safetensors");
    let before = std::fs::read(&last).unwrap();
    let config = run.join("config.toml");

    // The checkpoint read, another file of checkpoints/, the config read, the files the
    // trainer keeps in the run directory (a replaced lock would let a second trainer in): all
    // refused, and none replaced.
    let kept: Vec<(PathBuf, Vec<u8>)> = ["lock", "metrics.jsonl", "run.log", "config.toml"]
        .iter()
        .map(|n| (run.join(n), std::fs::read(run.join(n)).unwrap()))
        .collect();
    for out in [
        last.clone(),
        run.join("checkpoints").join("best.safetensors"),
        run.join("checkpoints").join("model.safetensors"),
        run.join("checkpoints").join(".").join("last.safetensors"),
        config.clone(),
        run.join("lock"),
        run.join("metrics.jsonl"),
        run.join("samples").join("..").join("run.log"),
    ] {
        let e = fails(
            export,
            &["--run", &run_s, "--checkpoint", "last", "--out", &at(&out)],
        );
        assert!(
            e.contains("--out") && e.contains("only cign-train writes"),
            "{e}"
        );
        for flag in ["--out", "--idx"] {
            let e = fails(
                sample,
                &["--run", &run_s, "--checkpoint", "last", flag, &at(&out)],
            );
            assert!(e.contains(flag), "{e}");
        }
    }
    assert_eq!(std::fs::read(&last).unwrap(), before);
    for (path, content) in &kept {
        assert_eq!(&std::fs::read(path).unwrap(), content, "{}", path.display());
    }
    let idx = at(&tmp.path().join("i.idx"));
    let e = fails(
        sample,
        &["--run", &run_s, "--idx", &idx, "--idx-labels", &at(&config)],
    );
    assert!(
        e.contains("--idx-labels") && e.contains("only cign-train writes"),
        "{e}"
    );
    // A weights file is an input too, and two outputs cannot share a file.
    let loose_config = tmp.path().join("loose.toml");
    std::fs::copy(&config, &loose_config).unwrap();
    let e = fails(
        sample,
        &[
            "--weights",
            &at(&last),
            "--config",
            &at(&loose_config),
            "--out",
            &at(&loose_config),
        ],
    );
    assert!(e.contains("same file as --config"), "{e}");
    let e = fails(sample, &["--run", &run_s, "--out", &idx, "--idx", &idx]);
    assert!(e.contains("same file") && e.contains("--idx"), "{e}");

    // A directory that cannot be created, or a directory as the output: refused up front,
    // naming the user's path, never a temporary file.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = at(&file.join("sub").join("g.png"));
    for (bin, args) in [
        (sample, vec!["--run", &run_s, "--out", &under_file]),
        (sample, vec!["--run", &run_s, "--idx", &under_file]),
        (
            export,
            vec![
                "--run",
                &run_s,
                "--checkpoint",
                "last",
                "--out",
                &under_file,
            ],
        ),
    ] {
        let e = fails(bin, &args);
        assert!(e.contains(&under_file) && !e.contains(".part"), "{e}");
    }
    let e = fails(sample, &["--run", &run_s, "--out", &at(tmp.path())]);
    assert!(e.contains("is a directory"), "{e}");
    assert!(!file.join("sub").exists());

    // Missing directories are created, and removed again when the command fails.
    let new = tmp.path().join("new");
    let deep = at(&new.join("deeper").join("g.png"));
    let e = fails(
        sample,
        &[
            "--run",
            &run_s,
            "--checkpoint",
            "last",
            "--label",
            "10",
            "--out",
            &deep,
        ],
    );
    assert!(e.contains("--label 10"), "{e}");
    assert!(!new.exists());
    common::succeeds(Command::new(export).args([
        "--run",
        &run_s,
        "--checkpoint",
        "last",
        "--out",
        &at(&new.join("deeper").join("w.safetensors")),
    ]));
    assert!(new.join("deeper").join("w.safetensors").is_file());

    // A resumed run stays in its directory: output.dir is refused, not silently stored.
    let text = std::fs::read_to_string(&config).unwrap();
    let elsewhere = format!("output.dir=\"{}\"", at(&tmp.path().join("elsewhere")));
    let e = train_fails(&["--resume", &run_s, "--set", &elsewhere]);
    assert!(
        e.contains("output.dir") && e.contains("stays in its own directory"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn sampling_sizes_and_flag_combinations_are_checked_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 8, 2);
    let run_s = run.display().to_string();
    let sample = env!("CARGO_BIN_EXE_cign-sample");
    let out = |name: &str| tmp.path().join(name).display().to_string();
    let (png, labels) = (out("q.png"), out("qlab"));
    // Far too many images: a one-line error, never a panic of libtorch's allocator.
    let e = fails(
        sample,
        &["--run", &run_s, "--idx", &out("i.idx"), "--n", "100000000"],
    );
    assert!(e.contains("100000000") && e.contains("1000000"), "{e}");
    let e = fails(sample, &["--run", &run_s, "--out", &png, "--n", "20000"]);
    assert!(e.contains("--n 20000") && e.contains("--idx"), "{e}");
    // Labels without the images they label.
    let e = fails(
        sample,
        &["--run", &run_s, "--out", &png, "--idx-labels", &labels],
    );
    assert!(e.contains("required") && e.contains("--idx <IDX>"), "{e}");
    assert!(!Path::new(&png).exists() && !Path::new(&labels).exists());
    // --project on a conditional model without --label says that --label is needed.
    let input = out("in.png");
    common::succeeds(Command::new(sample).args([
        "--run",
        &run_s,
        "--checkpoint",
        "last",
        "--n",
        "1",
        "--label",
        "3",
        "--out",
        &input,
    ]));
    let e = fails(
        sample,
        &[
            "--run",
            &run_s,
            "--checkpoint",
            "last",
            "--project",
            &input,
            "--out",
            &png,
        ],
    );
    assert!(e.contains("needs --label") && !e.contains("'all'"), "{e}");
    assert!(!Path::new(&png).exists());
}

/// A libtorch allocation that fails while sampling (here: an address-space limit below the
/// noise of a million images) is one error line with exit code 2, without libtorch's C++
/// frame dump, never a panic.
#[cfg(unix)]
#[test]
fn an_allocation_failure_while_sampling_is_one_error_line() {
    use std::os::unix::process::CommandExt;
    if tch::Cuda::is_available() {
        return; // the limit is sized for the CPU process
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 8, 2);
    let idx = tmp.path().join("big.idx");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cign-sample"));
    cmd.arg("--run")
        .arg(&run)
        .args([
            "--checkpoint",
            "last",
            "--n",
            "1000000",
            "--device",
            "cpu",
            "--idx",
        ])
        .arg(&idx);
    // 3.5 GB of address space: libtorch loads (about 2.5 GB of mappings), the 3.1 GB of
    // noise cannot be allocated.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 3_500_000_000,
                rlim_max: 3_500_000_000,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(127) {
        eprintln!("skipped: the binary does not load under the limit: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("cannot allocate")
            && !stderr.contains("frame #")
            && !stderr.contains("internal error"),
        "{stderr}"
    );
    assert!(!idx.exists());
}

/// cign-sample writes all its outputs or none: a write that fails after every check (here: a
/// file size limit that the IDX file exceeds and the PNG grid does not) leaves neither output
/// and no temporary file, and names the output the user gave.
#[cfg(unix)]
#[test]
fn a_failed_write_leaves_none_of_the_outputs() {
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let run = common::tiny_run(env!("CARGO_BIN_EXE_cign-train"), tmp.path(), 16, 8, 2);
    // A model whose images are one flat grey (all weights zero), so that the PNG grid
    // compresses to far less than the raw IDX file of the same images.
    let weights = tmp.path().join("flat.safetensors");
    common::succeeds(
        Command::new(env!("CARGO_BIN_EXE_cign-export"))
            .arg("--run")
            .arg(&run)
            .args(["--checkpoint", "last", "--out"])
            .arg(&weights),
    );
    let flat: Vec<(String, tch::Tensor)> = tch::Tensor::read_safetensors(&weights)
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            let fill = if name.ends_with("running_var") {
                1.0
            } else {
                0.0
            };
            (name, t.zeros_like() + fill)
        })
        .collect();
    tch::Tensor::write_safetensors(&flat, &weights).unwrap();
    let config = tmp.path().join("flat.toml");
    std::fs::copy(run.join("config.toml"), &config).unwrap();
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let (png, idx) = (dir.join("g.png"), dir.join("g.idx"));
    let sample = |limit: Option<u64>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cign-sample"));
        cmd.arg("--weights")
            .arg(&weights)
            .arg("--config")
            .arg(&config)
            .args(["--n", "8", "--device", "cpu"])
            .arg("--out")
            .arg(&png)
            .arg("--idx")
            .arg(&idx);
        if let Some(limit) = limit {
            // SAFETY: async-signal-safe calls only, in the child before exec.
            unsafe {
                cmd.pre_exec(move || {
                    // A write past the limit then fails with EFBIG instead of killing.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let l = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &l);
                    Ok(())
                });
            }
        }
        cmd.output().unwrap()
    };
    let out = sample(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let (png_len, idx_len) = (size(&png), size(&idx));
    assert!(png_len < idx_len, "{png_len} {idx_len}");
    std::fs::remove_file(&png).unwrap();
    std::fs::remove_file(&idx).unwrap();

    let out = sample(Some((png_len + idx_len) / 2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&idx.display().to_string()) && !stderr.contains(".part"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
