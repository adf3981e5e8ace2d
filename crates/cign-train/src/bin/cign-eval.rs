//! `cign-eval --run RUN_DIR [--checkpoint best] [--n-per-class N] [--dims 64,192,768]
//! [--nearest-k K] [--no-prdc] [--json OUT]`: generates N images per class (seeded), then
//! reports per-class FID at the requested taps against the test split of that class (mean,
//! std, min, max over classes), the all-class FID, KID (with --kid), improved precision and
//! recall, density and coverage per class (generated images of class c against the real test
//! images of class c) and over all classes at the 2048 tap with k = 5 (`--nearest-k`), and
//! the conditional accuracy, as Markdown tables and JSON. For the unconditional baseline: the
//! all-class numbers and the classifier's class balance.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cign_data::atomic::write_atomic_bytes;
use cign_data::{Dataset, DatasetKind, Split};
use cign_metrics::device::DeviceChoice;
use cign_metrics::{
    ConditionalClassifier, EvalOptions, EvalReport, InceptionExtractor, KidOptions, PixelRange,
    PrdcOptions, Preprocess, Tap, DEFAULT_NEAREST_K,
};
use cign_train::checkpoint::LoopState;
use cign_train::evaluation::{evaluate_model, GenerationPlan};
use cign_train::outputs::check_outputs;
use cign_train::run_model::ModelArgs;
use serde::Serialize;

/// Evaluate a trained CIGN run: per-class FID, all-class FID, KID, precision/recall/density/
/// coverage, conditional accuracy.
#[derive(Debug, clap::Parser)]
#[command(name = "cign-eval", version)]
struct Cli {
    #[command(flatten)]
    model: ModelArgs,
    /// Generated images per class (the unconditional model generates 10 times this many).
    #[arg(long, default_value_t = 1000)]
    n_per_class: usize,
    /// Inception taps, comma-separated, from 64, 192, 768, 2048.
    #[arg(long, default_value = "64,192,768")]
    dims: String,
    /// Also compute KID (100 subsets of at most 1000).
    #[arg(long)]
    kid: bool,
    /// k of the k-nearest-neighbour radii of precision/recall/density/coverage (at least 1;
    /// each class needs at least k + 2 generated and k + 2 real images, as `prdc`).
    #[arg(long, value_name = "K", default_value_t = DEFAULT_NEAREST_K, conflicts_with = "no_prdc")]
    nearest_k: usize,
    /// Skip precision/recall/density/coverage (computed by default at the 2048 tap, which is
    /// collected even when --dims does not list it; they cost about a minute on two CPU cores
    /// for 10,000 + 10,000 images, and keep the features in memory: 8 KB per image at 2048).
    #[arg(long)]
    no_prdc: bool,
    /// Use only the first N test images as the reference (default: the whole split; more
    /// than the split holds is an error).
    #[arg(long)]
    real_limit: Option<usize>,
    /// Seed of the generated noise.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Do not quantise generated images to 8 bits before the metrics.
    #[arg(long)]
    no_quantize: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    run: String,
    checkpoint: String,
    /// Step, epoch (completed), seconds of training... of the evaluated checkpoint; null for a
    /// weights file.
    checkpoint_state: Option<LoopState>,
    n_per_class: usize,
    seed: i64,
    /// Arithmetic of the generator's passes: fp32 or bf16.
    precision: &'static str,
    report: &'a EvalReport,
    /// Unconditional models: share of generated images the classifier puts in each class.
    class_balance: Option<Vec<f64>>,
}

fn run(cli: Cli) -> Result<()> {
    // Each flag's own range first, then how the flags fit together.
    GenerationPlan::check_n_per_class(cli.n_per_class)?;
    if cli.nearest_k == 0 {
        anyhow::bail!(
            "--nearest-k 0: must be at least 1 (the radius is the distance to the k-th nearest neighbour)"
        );
    }
    if !cli.no_prdc && cli.n_per_class < cign_metrics::prdc::min_rows(cli.nearest_k) {
        anyhow::bail!(
            "--n-per-class {} is too few for --nearest-k {}: precision/recall/density/coverage \
             need at least k + 2 = {} generated images per class, as prdc (or use --no-prdc)",
            cli.n_per_class,
            cli.nearest_k,
            cign_metrics::prdc::min_rows(cli.nearest_k)
        );
    }
    let taps = Tap::parse_list(&cli.dims)?;
    // The JSON's path is checked before the model is loaded and the evaluation runs.
    let outputs: Vec<(&str, &std::path::Path)> =
        cli.json.iter().map(|p| ("--json", p.as_path())).collect();
    let written = check_outputs(&outputs, &cli.model.inputs())?;
    let device = cli.device.resolve()?;
    let rm = cli.model.load(device)?;
    let kind: DatasetKind = rm.config.data.dataset;
    let data_dir = cign_train::trainer::data_dir(&rm.config)?;
    let test = Dataset::load(kind, Split::Test, &data_dir)?;
    let model = &rm.state.model;
    let conditional = rm.config.model.conditioning.is_conditional();
    let preprocess = Preprocess {
        quantize: !cli.no_quantize,
    };
    let options = EvalOptions {
        taps,
        range: PixelRange::Signed,
        preprocess,
        kid: cli.kid.then(KidOptions::default),
        prdc: (!cli.no_prdc).then_some(PrdcOptions {
            nearest_k: cli.nearest_k,
            device,
            ..PrdcOptions::default()
        }),
        real_limit: cli.real_limit,
        ..EvalOptions::default()
    };
    let plan = GenerationPlan {
        n_per_class: cli.n_per_class,
        seed: cli.seed,
    };
    // Everything the evaluation checks (sizes per class against the test split, k) before the
    // images are generated and the networks loaded.
    plan.check(model, &test, &options)?;
    let extractor = InceptionExtractor::from_default_weights(device)?;
    let classifier = ConditionalClassifier::load_cached(kind, device)?;
    if classifier.is_none() {
        eprintln!(
            "{}",
            cign_metrics::classifier::missing_classifier_warning(kind)
        );
    }
    eprintln!(
        "generating {} images from {} ({}); then computing metrics",
        plan.len(model),
        rm.checkpoint.display(),
        model.precision().name()
    );
    let (report, images) = evaluate_model(
        model,
        plan,
        &test,
        &options,
        &extractor,
        classifier.as_ref(),
        device,
    )?;
    let class_balance = match (&classifier, conditional) {
        (Some(c), false) => {
            let pred: Vec<i64> = c
                .predict(&images, PixelRange::Signed, preprocess)?
                .try_into()?;
            // The classifier's classes (not the model's): its predictions are 0..NUM_CLASSES.
            let mut counts = vec![0usize; usize::from(cign_data::NUM_CLASSES)];
            for p in &pred {
                counts[*p as usize] += 1;
            }
            Some(
                counts
                    .iter()
                    .map(|&n| n as f64 / pred.len() as f64)
                    .collect(),
            )
        }
        _ => None,
    };
    print!("{}", markdown(&report, class_balance.as_deref()));
    if let Some(path) = &cli.json {
        let out = Output {
            run: cli.model.describe(),
            checkpoint: rm.checkpoint.display().to_string(),
            checkpoint_state: rm.loop_state,
            n_per_class: cli.n_per_class,
            seed: cli.seed,
            precision: model.precision().name(),
            report: &report,
            class_balance,
        };
        write_atomic_bytes(path, serde_json::to_string_pretty(&out)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    written.keep();
    Ok(())
}

/// The report as a Markdown table: one row per tap.
fn markdown(r: &EvalReport, balance: Option<&[f64]>) -> String {
    let mut s = format!(
        "{} generated vs {} real ({} {} split), quantised: {}, {:.0} s\n\n",
        r.n_generated, r.n_real, r.dataset, r.split, r.quantize, r.seconds
    );
    s.push_str("| tap | per-class FID mean | std | min | max | all-class FID | KID (x1e3) |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    for t in &r.taps {
        let (mean, std, min, max) = t
            .per_class
            .as_ref()
            .map(|p| {
                (
                    format!("{:.4}", p.mean),
                    format!("{:.4}", p.std),
                    format!("{:.4}", p.min),
                    format!("{:.4}", p.max),
                )
            })
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into(), "-".into()));
        let kid = t
            .kid
            .as_ref()
            .map(|k| format!("{:.3} ± {:.3}", k.mean * 1e3, k.std * 1e3))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "| {} | {mean} | {std} | {min} | {max} | {:.4} | {kid} |\n",
            t.dims, t.fid
        ));
    }
    if let Some(p) = &r.prdc {
        s.push_str(&format!(
            "\nprecision / recall / density / coverage at the {} tap, k = {}{}:\n\n",
            p.dims,
            p.nearest_k,
            if p.per_class.is_some() {
                " (per class: generated images of the class against the real images of the class)"
            } else {
                ""
            }
        ));
        s.push_str("| class | precision | recall | density | coverage | generated | real |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        let row = |name: &str, v: &cign_metrics::Prdc, n: &str, m: &str| {
            format!(
                "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {n} | {m} |\n",
                v.precision, v.recall, v.density, v.coverage
            )
        };
        if let Some(pc) = &p.per_class {
            for c in &pc.classes {
                s.push_str(&row(
                    &c.class.to_string(),
                    &c.metrics,
                    &c.n_generated.to_string(),
                    &c.n_real.to_string(),
                ));
            }
            s.push_str(&row("mean over classes", &pc.mean, "-", "-"));
        }
        s.push_str(&row(
            "all classes",
            &p.all_class,
            &r.n_generated.to_string(),
            &r.n_real.to_string(),
        ));
    }
    if let Some(acc) = &r.conditional_accuracy {
        s.push_str(&format!(
            "\nconditional accuracy: {:.2}% (per class: {})\n",
            acc.overall * 100.0,
            acc.per_class
                .iter()
                .map(|c| format!("{}: {:.1}%", c.class, c.accuracy * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(b) = balance {
        s.push_str(&format!(
            "\nclass balance (classifier): {}\n",
            b.iter()
                .enumerate()
                .map(|(c, v)| format!("{c}: {:.1}%", v * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("info", run)
}
