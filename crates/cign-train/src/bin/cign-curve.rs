//! `cign-curve --run RUN_DIR [--n-per-class 200] [--dims 64,192,768] [--seed 0]
//! [--real-limit N] [--json FILE] [--png FILE] [--precision fp32|bf16] [--fresh]`: the
//! learning curve of a run. Every epoch snapshot (`checkpoints/epoch-NNN.safetensors`, kept
//! by `train.snapshot_every_epochs`) generates N images per class (seeded; the same noise for
//! every snapshot) and is scored by per-class FID at the taps (mean, std, min, max over
//! classes) and the conditional accuracy, next to the validation loss of that epoch. Writes
//! JSON (default `RUN_DIR/curve.json`) and a figure (default `RUN_DIR/curve.png`) after every
//! snapshot; a later call evaluates only the snapshots the JSON does not hold yet, and again
//! those whose point has no conditional accuracy when a classifier has been cached since.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cign_core::Precision;
use cign_data::{Dataset, Split};
use cign_metrics::device::DeviceChoice;
use cign_metrics::{ConditionalClassifier, EvalOptions, InceptionExtractor, Preprocess, Tap};
use cign_train::evaluation::{evaluate_model, GenerationPlan};
use cign_train::learning_curve::{
    epoch_validations, write_curve_plot, CurvePoint, CurveSettings, LearningCurve,
};
use cign_train::outputs::check_outputs;
use cign_train::run_dir::{read_records, RunDir};
use cign_train::run_model::RunModel;

/// The learning curve of a run: every epoch snapshot evaluated at one cheap protocol.
#[derive(Debug, clap::Parser)]
#[command(name = "cign-curve", version)]
struct Cli {
    /// The run directory (holds config.toml, metrics.jsonl and checkpoints/epoch-NNN.safetensors).
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// Generated images per class for every snapshot (at least 2).
    #[arg(long, default_value_t = 200)]
    n_per_class: usize,
    /// Inception taps of the per-class FID, comma-separated, from 64, 192, 768, 2048.
    #[arg(long, default_value = "64,192,768")]
    dims: String,
    /// Seed of the generated noise (the same for every snapshot).
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Use only the first N test images as the reference (default: the whole split; more
    /// than the split holds is an error).
    #[arg(long)]
    real_limit: Option<usize>,
    /// The curve's JSON (read first: a snapshot it already holds is evaluated again only when
    /// its file changed (SHA-256) or its point lacks the conditional accuracy and a classifier
    /// is cached now).
    /// Default: RUN_DIR/curve.json.
    #[arg(long, value_name = "FILE.json")]
    json: Option<PathBuf>,
    /// The figure. Default: RUN_DIR/curve.png.
    #[arg(long, value_name = "FILE.png")]
    png: Option<PathBuf>,
    /// Arithmetic of the generator's passes. Default: the run's train.precision.
    #[arg(long, value_name = "fp32|bf16")]
    precision: Option<Precision>,
    /// Ignore an existing JSON and evaluate every snapshot again.
    #[arg(long)]
    fresh: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

fn run(cli: Cli) -> Result<()> {
    GenerationPlan::check_n_per_class(cli.n_per_class)?;
    let taps = Tap::parse_list(&cli.dims)?;
    let device = cli.device.resolve()?;
    let run = RunDir::open(&cli.run)?;
    let snapshots = run.snapshots()?;
    if snapshots.is_empty() {
        bail!(
            "run directory {} has no epoch snapshots (checkpoints/epoch-NNN.safetensors): \
             train with --set train.snapshot_every_epochs=N to keep them",
            run.root().display()
        );
    }
    let json = cli
        .json
        .clone()
        .unwrap_or_else(|| run.root().join("curve.json"));
    let png = cli
        .png
        .clone()
        .unwrap_or_else(|| run.root().join("curve.png"));
    // Both outputs checked before anything is evaluated or written: a bad --png does not
    // leave a --json behind. The JSON is read as well as written, so it is no input here.
    let written = check_outputs(
        &[("--json", json.as_path()), ("--png", png.as_path())],
        &[
            ("the config of --run", run.config()),
            ("the metrics.jsonl of --run", run.metrics()),
        ],
    )?;
    let plan = GenerationPlan {
        n_per_class: cli.n_per_class,
        seed: cli.seed,
    };
    let options = EvalOptions {
        taps: taps.clone(),
        preprocess: Preprocess { quantize: true },
        real_limit: cli.real_limit,
        progress: false,
        ..EvalOptions::default()
    };

    // The model of the first snapshot: checks the config, the precision and the plan before
    // any network is loaded or anything evaluated.
    let load = |path: &PathBuf| -> Result<RunModel> {
        let mut rm = RunModel::from_weights(path, &run.config(), device)?;
        if let Some(p) = cli.precision {
            rm.set_precision(p)?;
        }
        Ok(rm)
    };
    let first = load(&snapshots[0].1)?;
    if !first.config.model.conditioning.is_conditional() {
        bail!(
            "{}: model.conditioning = none; the learning curve is per class and needs a \
             conditional model (use cign-eval on each snapshot)",
            run.config().display()
        );
    }
    let kind = first.config.data.dataset;
    let test = Dataset::load(
        kind,
        Split::Test,
        &cign_train::trainer::data_dir(&first.config)?,
    )?;
    plan.check(&first.state.model, &test, &options)?;
    let settings = CurveSettings {
        n_per_class: cli.n_per_class,
        seed: cli.seed,
        dims: taps.iter().map(|t| t.dims()).collect(),
        real_limit: cli.real_limit,
        precision: first.state.model.precision().name().to_string(),
    };
    let mut curve = LearningCurve::open(
        &json,
        &run.root().display().to_string(),
        settings,
        cli.fresh,
    )?;

    // metrics.jsonl is read once: the trainer of a finished snapshot's epoch wrote it. The
    // validation of every finished epoch follows it on every call.
    let records = read_records(&run.metrics());
    let validation = epoch_validations(&records);
    if curve.validation != validation {
        curve.validation = validation.clone();
        curve.save(&json)?;
    }

    let hashed: Vec<(u64, PathBuf, String)> = snapshots
        .into_iter()
        .map(|(epoch, path)| {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok((epoch, path, cign_data::fetch::sha256_hex(&bytes)))
        })
        .collect::<Result<_>>()?;
    let classifier = ConditionalClassifier::load_cached(kind, device)?;
    let todo: Vec<_> = hashed
        .into_iter()
        .filter(|(epoch, _, sha)| curve.needs(*epoch, sha, classifier.is_some()))
        .collect();
    let again = todo
        .iter()
        .filter(|(epoch, _, sha)| !curve.needs(*epoch, sha, false))
        .count();
    if again > 0 {
        tracing::info!(
            "{again} snapshot(s) evaluated again: their points have no conditional accuracy \
             and a {kind} classifier is cached now"
        );
    }
    tracing::info!(
        "{} snapshot(s) to evaluate, {} already in {}",
        todo.len(),
        curve.points.len() - again,
        json.display()
    );
    if !todo.is_empty() {
        let extractor = InceptionExtractor::from_default_weights(device)?;
        if classifier.is_none() {
            tracing::warn!(
                "{}",
                cign_metrics::classifier::missing_classifier_warning(kind)
            );
        }
        let mut first = Some(first);
        for (i, (epoch, path, sha)) in todo.iter().enumerate() {
            let rm = match first.take() {
                Some(rm) if rm.checkpoint == *path => rm,
                _ => load(path)?,
            };
            tracing::info!(
                "epoch {epoch} ({} of {}): {} images from {}",
                i + 1,
                todo.len(),
                plan.len(&rm.state.model),
                path.display()
            );
            let (report, _) = evaluate_model(
                &rm.state.model,
                plan,
                &test,
                &options,
                &extractor,
                classifier.as_ref(),
                device,
            )?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let point = CurvePoint::from_report(*epoch, name, sha.clone(), &report, &validation)?;
            tracing::info!(
                "epoch {epoch}: per-class FID mean {}; conditional accuracy {}; {:.0} s",
                point
                    .fid
                    .iter()
                    .map(|t| format!("{}: {:.4}", t.dims, t.mean))
                    .collect::<Vec<_>>()
                    .join(", "),
                point
                    .conditional_accuracy
                    .map_or("-".to_string(), |a| format!("{:.2}%", a * 100.0)),
                point.seconds
            );
            curve.insert(point);
            curve.save(&json)?;
            write_curve_plot(&png, &curve)?;
        }
    }
    if todo.is_empty() {
        // The figure follows the JSON (it was redrawn after each new point otherwise).
        write_curve_plot(&png, &curve)?;
    }
    written.keep();
    print!("{}", markdown(&curve));
    eprintln!("wrote {} and {}", json.display(), png.display());
    Ok(())
}

/// The curve as a Markdown table, one row per snapshot.
fn markdown(curve: &LearningCurve) -> String {
    let mut s = String::from("| epoch | step | validation total | validation rec |");
    for d in &curve.settings.dims {
        s.push_str(&format!(" FID{d} mean |"));
    }
    s.push_str(" conditional accuracy |\n|---|---|---|---|");
    s.push_str(&"---|".repeat(curve.settings.dims.len() + 1));
    s.push('\n');
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    for p in &curve.points {
        s.push_str(&format!(
            "| {} | {} | {} | {} |",
            p.epoch,
            p.step.map_or("-".to_string(), |v| v.to_string()),
            opt(p.validation_total),
            opt(p.validation_rec)
        ));
        for t in &p.fid {
            s.push_str(&format!(" {:.4} |", t.mean));
        }
        s.push_str(&format!(
            " {} |\n",
            p.conditional_accuracy
                .map_or("-".to_string(), |a| format!("{:.2}%", a * 100.0))
        ));
    }
    s
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("info", run)
}
