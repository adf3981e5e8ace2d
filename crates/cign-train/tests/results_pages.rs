//! `results/README.md`, `results/ablations.md` and `results/large_channel_segments{,_run1,_run2}.md`
//! are written by scripts from the committed run records (`results/runs/*.json`, the campaign's
//! curve JSONs and run logs, the training logs): a page edited by hand, or a script changed without
//! rendering its page again, fails here. Each campaign page's hand-written total and validation
//! table are those its committed run log and metrics give (the current run's and those of runs 1
//! and 2, both lost, whose records carry `_run1` and `_run2`).
//!
//! The current run's records and page (no suffix) are written once it has some: until
//! `results/runs/large_channel_campaign.run.log` exists, and only then, the checks of the current
//! run are skipped (each says so on stderr). The archived runs are always checked.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// `python3 scripts/SCRIPT ARGS...` from the repository.
fn python(script: &str, args: &[&OsStr]) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new("python3")
        .arg(repo.join("scripts").join(script))
        .args(args)
        .output()
        .expect("python3 runs")
}

/// What `python3 scripts/SCRIPT ARGS...` prints; it must succeed.
fn rendered(script: &str, args: &[&OsStr]) -> String {
    let out = python(script, args);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn committed(page: &str) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = repo.join("results").join(page);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether the checks of a campaign run's records (by suffix: "" for the current run) are to be
/// skipped: only the current run's, and only while its run log has not been committed
/// (`results/runs/large_channel_campaign.run.log`; run 3 has just started and its page is not
/// written yet). Once that log exists, a missing page or metrics file of the current run fails.
fn skipped(suffix: &str, what: &str) -> bool {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let skip = suffix.is_empty()
        && !repo
            .join("results/runs/large_channel_campaign.run.log")
            .exists();
    if skip {
        eprintln!(
            "skipped for the current run ({what}): results/runs/large_channel_campaign.run.log \
             is not committed yet"
        );
    }
    skip
}

#[test]
fn results_pages_are_what_their_scripts_render() {
    for (script, args, page) in [
        ("results_table.py", &[][..], "README.md"),
        ("ablation_tables.py", &[], "ablations.md"),
        ("campaign_segments.py", &[], "large_channel_segments.md"),
        (
            "campaign_segments.py",
            &["--run", "1"],
            "large_channel_segments_run1.md",
        ),
        (
            "campaign_segments.py",
            &["--run", "2"],
            "large_channel_segments_run2.md",
        ),
    ] {
        if page == "large_channel_segments.md" && skipped("", page) {
            continue;
        }
        let command = [&[script][..], args].concat().join(" ");
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let want = rendered(script, &args);
        let have = committed(page);
        // The first line (1-based) where they part, or the end of the shorter one.
        let first_difference = want
            .lines()
            .zip(have.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(have.lines().count()))
            + 1;
        assert!(
            want == have,
            "results/{page} differs from `python3 scripts/{command}` from line {first_difference}; \
             render it again: python3 scripts/{command} > results/{page}"
        );
    }
}

/// Text with every run of whitespace (line breaks included) as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The campaign's runs: the current one (no suffix; it may have no validation yet when its
/// records are first committed), run 1, lost at step 3773 (`_run1`), and run 2, lost after
/// reaching at least step 2988 with its records ending at step 2896 (`_run2`), as
/// (`campaign_segments.py` arguments, suffix of their records and pages, fewest validations).
const RUNS: [(&[&str], &str, usize); 3] = [
    (&[], "", 0),
    (&["--run", "1"], "_run1", 13),
    (&["--run", "2"], "_run2", 12),
];

#[test]
fn each_campaign_page_states_the_total_of_its_committed_run_log() {
    for (args, suffix, _) in RUNS {
        if skipped(suffix, "its page's total") {
            continue;
        }
        let command = [args, &["--total"]].concat().join(" ");
        let mut args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        args.push("--total".as_ref());
        let total = one_line(&rendered("campaign_segments.py", &args));
        assert!(total.contains(" steps = "), "{total}");
        let page = one_line(&committed(&format!("large_channel_campaign{suffix}.md")));
        assert!(
            page.contains(&total),
            "results/large_channel_campaign{suffix}.md does not give the run log's total \
             \"{total}\" (python3 scripts/campaign_segments.py {command})"
        );
    }
}

#[test]
fn segments_are_read_from_the_log_killed_and_running_ones_included() {
    // Five invocations: stopped by SIGTERM, killed without a stop line (its steps end at the
    // checkpoint the next one that trained resumed from), a start that failed before resuming
    // (not counted), ended by its time budget, still running.
    let log = "\
2026-01-01T00:00:00.000000Z  INFO run directory /x
2026-01-01T00:00:05.000000Z  INFO mnist: 60000 training and 10000 test images from /d
2026-01-01T00:10:00.000000Z  INFO checkpoint at step 10 (epoch 1, batch 10 of 20): 590.0 s of training
2026-01-01T00:20:00.000000Z  INFO stopped by SIGTERM at step 20 (epoch 2, batch 0 of 20): wrote /x/checkpoints/last.safetensors
2026-01-01T01:00:00.000000Z  INFO run directory /x
2026-01-01T01:00:01.000000Z  INFO resumed from /x/checkpoints/last.safetensors at step 20 (epoch 2, batch 0 of 20)
2026-01-01T01:10:00.000000Z  INFO checkpoint at step 30 (epoch 2, batch 10 of 20): 1800.0 s of training
2026-01-01T01:15:00.000000Z  INFO checkpoint at step 33 (epoch 2, batch 13 of 20): 2100.0 s of training
2026-01-01T01:40:00.000000Z  INFO run directory /x
2026-01-01T01:40:01.000000Z  WARN a start that fails before resuming (bad data)
2026-01-01T02:00:00.000000Z  INFO run directory /x
2026-01-01T02:00:01.000000Z  INFO resumed from /x/checkpoints/last.safetensors at step 33 (epoch 2, batch 13 of 20)
2026-01-01T02:30:00.000000Z  INFO stopped (TimeBudget) at step 40 (epoch 3, batch 0 of 20): 3600.0 s of training; run directory /x
2026-01-01T03:00:00.000000Z  INFO run directory /x
2026-01-01T03:00:01.000000Z  INFO resumed from /x/checkpoints/last.safetensors at step 40 (epoch 3, batch 0 of 20)
2026-01-01T03:10:00.000000Z  INFO checkpoint at step 45 (epoch 3, batch 5 of 20): 4200.0 s of training
";
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("results/runs")).unwrap();
    std::fs::write(
        tmp.path()
            .join("results/runs/large_channel_campaign.run.log"),
        log,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
        args.push(tmp.path().as_os_str());
        rendered("campaign_segments.py", &args)
    };
    // 20 + 13 + 7 steps of 20 per epoch; 20 + 15 + 30 minutes; the trainer's clock at the last
    // finished segment's stop.
    assert_eq!(
        run(&["--total"]).trim(),
        "40 steps = 2.00 of 25 epochs in three segments, 1 h 05 min 00 s of wall time \
         (1.00 h by the trainer's clock at step 40)"
    );
    let page = run(&[]);
    let rows: Vec<&str> = page.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 6, "{page}");
    assert!(
        rows[2].starts_with("| 2 | 2026-01-01 01:00:00 | 2026-01-01 01:15:00 | 20 → 33 | 0 h 15 min 00 s | 69.2 | no stop line"),
        "{page}"
    );
    assert!(
        rows[3].starts_with("| 3 |") && rows[3].contains("failed start"),
        "{page}"
    );
    assert!(rows[4].contains("| 33 → 40 |") && rows[4].ends_with("| stopped (TimeBudget) |"));
    assert!(
        rows[5].starts_with("| 5 | 2026-01-01 03:00:00 | running | from 40 |"),
        "{page}"
    );

    // No log: one line, exit 2.
    let empty = tempfile::tempdir().unwrap();
    let out = python("campaign_segments.py", &[empty.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);

    // An earlier run's log by number (`--run N`: `_runN`, for any N: runs 1 and 2 here); the
    // current run's log has no suffix; no number, a run without a log, an unknown option or two
    // ROOTs: one line, exit 2.
    let current = tmp
        .path()
        .join("results/runs/large_channel_campaign.run.log");
    for n in ["1", "2"] {
        std::fs::copy(
            &current,
            tmp.path().join(format!(
                "results/runs/large_channel_campaign_run{n}.run.log"
            )),
        )
        .unwrap();
    }
    std::fs::remove_file(&current).unwrap();
    let earlier = |extra: &[&str]| {
        let mut args: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
        args.push(tmp.path().as_os_str());
        python("campaign_segments.py", &args)
    };
    for n in ["1", "2"] {
        for args in [["--run", n, "--total"], ["--total", "--run", n]] {
            let out = earlier(&args);
            assert!(out.status.success(), "{args:?}");
            assert!(
                String::from_utf8_lossy(&out.stdout).starts_with("40 steps = 2.00 of 25 epochs"),
                "{args:?}"
            );
        }
        let page = String::from_utf8(earlier(&["--run", n]).stdout).unwrap();
        assert!(
            page.contains(&format!(
                "campaign_segments.py --run {n} > results/large_channel_segments_run{n}.md"
            )) && page.contains(&format!("(runs/large_channel_campaign_run{n}.run.log)"))
                && page.contains(&format!("(large_channel_campaign_run{n}.md)")),
            "{page}"
        );
    }
    for bad in [
        &["--run"][..],
        &["--run", "x"],
        &["--run", "0"],
        &["--run", "-1"],
        &["--run", "3"],
        &["--run", "1", "--run", "2"],
        &["--runs", "1"],
        &["--run", "1", "another-root"],
        &[],
    ] {
        is_usage_error(&earlier(bad), &format!("{bad:?}"));
    }
}

#[test]
fn each_campaign_pages_validation_table_is_its_committed_metrics() {
    // Every validation record of the run's metrics.jsonl, in order, as the page's table has
    // it: step, epochs done (step / 235), and the six terms at 4 decimals.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (_, suffix, fewest) in RUNS {
        if skipped(suffix, "its page's validation table") {
            continue;
        }
        let metrics_path = format!("results/runs/large_channel_campaign{suffix}.metrics.jsonl");
        let metrics = std::fs::read_to_string(repo.join(&metrics_path))
            .unwrap_or_else(|e| panic!("{metrics_path}: {e}"));
        let want: Vec<String> = metrics
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["kind"] == "validation")
            .map(|r| {
                let step = r["step"].as_u64().unwrap();
                let epochs = if step % 235 == 0 {
                    (step / 235).to_string()
                } else {
                    format!("{:.2}", step as f64 / 235.0)
                };
                let terms: Vec<String> = [
                    "total",
                    "rec",
                    "idem_noise",
                    "tight_noise",
                    "idem_mismatch",
                    "tight_mismatch",
                ]
                .iter()
                .map(|k| format!("{:.4}", r[*k].as_f64().unwrap()))
                .collect();
                format!("| {step} | {epochs} | {} |", terms.join(" | "))
            })
            .collect();
        assert!(
            want.len() >= fewest,
            "{metrics_path}: {} validation records",
            want.len()
        );
        let page_name = format!("large_channel_campaign{suffix}.md");
        let page = committed(&page_name);
        let have: Vec<&str> = page
            .lines()
            .skip_while(|l| !l.starts_with("| step | epochs done | total | rec |"))
            .skip(2)
            .take_while(|l| l.starts_with("| "))
            .collect();
        assert_eq!(
            have, want,
            "the validation table of results/{page_name} is not the validations of {metrics_path}"
        );
    }
}

#[test]
fn the_results_page_states_every_campaign_run_from_its_curve() {
    // results_table.py's campaign status, from the curve JSONs alone: runs 1 and 2 (lost,
    // `_run1` and `_run2`) and the current run, the one after the highest earlier run, once it
    // has a curve; before that, that it has started with no finished curve point.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run1 = std::fs::read_to_string(repo.join("results/large_channel_curve_run1.json")).unwrap();
    let run2 = std::fs::read_to_string(repo.join("results/large_channel_curve_run2.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("results/runs")).unwrap();
    let status = || rendered("results_table.py", &[tmp.path().as_os_str()]);
    let page = status();
    assert!(page.contains("has not started"), "{page}");
    assert!(!page.contains("The current run"), "{page}");

    std::fs::write(
        tmp.path().join("results/large_channel_curve_run1.json"),
        &run1,
    )
    .unwrap();
    let page = status();
    assert!(page.contains("is\nunder way"), "{page}");
    assert!(
        page.contains("The current run is run 2; run 1 was lost (below).")
            && page
                .contains("Run 2 has started (from step 0) and has no finished curve point yet."),
        "{page}"
    );
    assert!(
        page.contains("Run 1's latest evaluated snapshot, epoch 15 at 200 images per class"),
        "{page}"
    );
    assert!(page.contains("Run 1's last finished epoch in the curve's data: 16 (step 3760"));

    // Run 2's curve too: run 3 is the current run.
    std::fs::write(
        tmp.path().join("results/large_channel_curve_run2.json"),
        &run2,
    )
    .unwrap();
    let page = status();
    assert!(
        page.contains("The current run is run 3; runs 1 and 2 were lost (below).")
            && page
                .contains("Run 3 has started (from step 0) and has no finished curve point yet."),
        "{page}"
    );
    assert!(!page.contains("Run 2 has started"), "{page}");
    let lost1 = page
        .find("Run 1 of the campaign lost its run directory, checkpoints included, before it finished, and run 2 started again from step 0 ([large_channel_campaign_run1.md](large_channel_campaign_run1.md)).")
        .unwrap_or_else(|| panic!("{page}"));
    let lost2 = page
        .find("Run 2 of the campaign lost its run directory, checkpoints included, before it finished, and run 3 started again from step 0 ([large_channel_campaign_run2.md](large_channel_campaign_run2.md)).")
        .unwrap_or_else(|| panic!("{page}"));
    assert!(lost1 < lost2, "{page}");
    assert!(
        page.contains("Run 2's latest evaluated snapshot, epoch 10 at 200 images per class: per-class FID means 0.3559 / 1.7199 / 0.6273 at 64 / 192 / 768, conditional accuracy 67.40%"),
        "{page}"
    );
    assert!(
        page.contains("Run 2's last finished epoch in the curve's data: 12 (step 2820"),
        "{page}"
    );

    // The current run's curve: its points first, the lost runs' after.
    let mut current: serde_json::Value = serde_json::from_str(&run1).unwrap();
    current["points"].as_array_mut().unwrap().truncate(1);
    current["validation"].as_array_mut().unwrap().truncate(5);
    std::fs::write(
        tmp.path().join("results/large_channel_curve.json"),
        current.to_string(),
    )
    .unwrap();
    let page = status();
    let ours = page
        .find("The current run's latest evaluated snapshot, epoch 5 at 200 images per class")
        .unwrap_or_else(|| panic!("{page}"));
    assert!(
        page.contains("The current run's last finished epoch in the curve's data: 5 (step 1175")
    );
    assert!(page.contains("The current run is run 3; runs 1 and 2 were lost (below)."));
    assert!(!page.contains("no finished curve point"), "{page}");
    assert!(page.find("Run 1's latest evaluated snapshot").unwrap() > ours);
    assert!(page.find("Run 2's latest evaluated snapshot").unwrap() > ours);

    // Usage errors: one line, exit 2, nothing on stdout.
    let other = tempfile::tempdir().unwrap();
    for bad in [
        &[OsStr::new("--help")][..],
        &[tmp.path().as_os_str(), tmp.path().as_os_str()],
        &[other.path().as_os_str()],
    ] {
        is_usage_error(&python("results_table.py", bad), &format!("{bad:?}"));
    }
}

/// Each archived run's page says in its title that the run was lost and no longer tells how to
/// resume it, and every relative link of the campaign's pages (the lost runs' pages and segment
/// pages, the results page, the current run's once it is recorded) names a file that exists.
/// The current run's page is the one link target allowed to be missing while the current run's
/// records are not committed.
#[test]
fn the_campaign_pages_say_which_runs_were_lost_and_their_links_resolve() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (_, suffix, _) in RUNS {
        if suffix.is_empty() {
            continue;
        }
        let n = suffix.trim_start_matches("_run");
        let page = committed(&format!("large_channel_campaign{suffix}.md"));
        let title = page.lines().next().unwrap_or_default();
        assert!(
            title.starts_with(&format!("# Paper-recipe campaign, run {n} (lost")),
            "results/large_channel_campaign{suffix}.md: {title}"
        );
        assert!(
            !page.contains("Next: resume"),
            "results/large_channel_campaign{suffix}.md still tells how to resume a lost run"
        );
    }
    let current_recorded = !skipped("", "its page's links");
    let mut pages = vec!["README.md".to_string()];
    for (_, suffix, _) in RUNS {
        if suffix.is_empty() && !current_recorded {
            continue;
        }
        pages.push(format!("large_channel_campaign{suffix}.md"));
        pages.push(format!("large_channel_segments{suffix}.md"));
    }
    for name in pages {
        let page = committed(&name);
        let mut rest = page.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let target = &rest[..rest.find(')').unwrap_or(rest.len())];
            let file = target.split('#').next().unwrap_or_default();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            if file == "large_channel_campaign.md" && !current_recorded {
                continue;
            }
            assert!(
                repo.join("results").join(file).exists(),
                "results/{name} links to {target}, which does not exist"
            );
        }
    }
}

/// A script's usage error: exit 2, one line on stderr, nothing on stdout.
fn is_usage_error(out: &std::process::Output, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{what}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().count(),
        1,
        "{what}"
    );
    assert!(out.stdout.is_empty(), "{what}");
}
