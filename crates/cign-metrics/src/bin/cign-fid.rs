//! `cign-fid`: FID (pytorch-fid's numbers) at any of the taps 64, 192, 768, 2048 in one pass,
//! optionally KID and per-class FID, between two image sets or statistics files.
//!
//! ```text
//! cign-fid [--dims 64,192,768,2048] [--kid] [--per-class --labels-a FILE --labels-b FILE] [--json] A B
//! cign-fid --dims 768 --save-stats OUT.npz A
//! cign-fid --fetch-weights
//! ```
//! A and B are each a folder of images (PNG/JPEG, any size, searched recursively), an IDX
//! image file (MNIST format, gzip or raw) or an `.npz` statistics file (pytorch-fid's format).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;
use tch::Device;

use cign_metrics::images::{open_input, read_labels, Input};
use cign_metrics::{
    collect, frechet_details, kid, npz, per_class_fid, weights, CollectOptions, Collected,
    InceptionExtractor, Kid, KidOptions, PerClassFid, Stats, Tap,
};

#[derive(Parser, Debug)]
#[command(
    name = "cign-fid",
    version,
    about = "FID equal to pytorch-fid at the Inception taps 64/192/768/2048 (one pass), KID, per-class FID"
)]
struct Args {
    /// Feature sizes (taps), comma-separated: any of 64, 192, 768, 2048.
    #[arg(long, default_value = "2048")]
    dims: String,
    /// Also report KID (needs images on both sides).
    #[arg(long)]
    kid: bool,
    /// KID: number of subsets.
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// KID: largest subset size.
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// KID: seed of the subset sampler.
    #[arg(long, default_value_t = 0)]
    kid_seed: u64,
    /// Per-class FID (needs --labels-a and --labels-b).
    #[arg(long)]
    per_class: bool,
    /// Labels of A (IDX label file, or a .txt with one label per line), in the order of
    /// the images (sorted file paths for folders).
    #[arg(long)]
    labels_a: Option<PathBuf>,
    /// Labels of B.
    #[arg(long)]
    labels_b: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write the statistics of A to this .npz file (with several dims: one file per tap,
    /// named `OUT_d<dims>.npz`) instead of computing a distance.
    #[arg(long)]
    save_stats: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// Device: auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// FID weights (safetensors); default: $CIGN_FID_WEIGHTS or the cache, fetched on first use.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Obtain the FID weights (download and convert if needed), print their path and exit.
    #[arg(long)]
    fetch_weights: bool,
    /// Hide the progress bars.
    #[arg(long)]
    no_progress: bool,
    /// Input A.
    a: Option<PathBuf>,
    /// Input B.
    b: Option<PathBuf>,
}

#[derive(Serialize)]
struct TapOut {
    dims: usize,
    fid: f64,
    singular: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<Kid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_class: Option<PerClassFid>,
}

#[derive(Serialize)]
struct Output {
    a: String,
    b: String,
    n_a: usize,
    n_b: usize,
    taps: Vec<TapOut>,
}

enum Side {
    Stats(Stats),
    Images(Collected),
}

impl Side {
    fn stats(&self, tap: Tap) -> Result<Stats> {
        match self {
            Side::Stats(s) => Ok(s.clone()),
            Side::Images(c) => Ok(c.stats(tap)?),
        }
    }
    fn n(&self) -> usize {
        match self {
            Side::Stats(s) => s.n,
            Side::Images(c) => c.n,
        }
    }
}

fn parse_device(s: &str) -> Result<Device> {
    Ok(match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Device::Cuda(i),
            _ => bail!("--device {other}: expected auto, cpu, cuda or cuda:N"),
        },
    })
}

fn stats_file_for(out: &Path, tap: Tap, several: bool) -> PathBuf {
    if !several {
        return out.to_path_buf();
    }
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("stats");
    out.with_file_name(format!("{stem}_d{}.npz", tap.dims()))
}

struct Ctx<'a> {
    extractor: &'a InceptionExtractor,
    taps: &'a [Tap],
    args: &'a Args,
}

fn load_side(ctx: &Ctx, path: &Path, labels: Option<&Path>, name: &str) -> Result<Side> {
    let input = open_input(path).with_context(|| format!("input {name}"))?;
    match input {
        Input::Stats(stats) => {
            if ctx.args.kid || ctx.args.per_class {
                bail!(
                    "{}: --kid and --per-class need images, not a statistics file",
                    path.display()
                );
            }
            if ctx.taps.len() != 1 || ctx.taps[0].dims() != stats.dims() {
                bail!(
                    "{}: statistics of {} dimensions, but --dims asks for {}",
                    path.display(),
                    stats.dims(),
                    ctx.taps
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
            Ok(Side::Stats(stats))
        }
        Input::Images(source) => {
            let labels = match labels {
                Some(p) => Some(read_labels(p).with_context(|| format!("labels of {name}"))?),
                None => None,
            };
            let opts = CollectOptions {
                batch_size: ctx.args.batch_size,
                keep_features: ctx.args.kid,
                progress: !ctx.args.no_progress,
                message: format!("{name}: {}", path.display()),
            };
            Ok(Side::Images(collect(
                ctx.extractor,
                source.as_ref(),
                labels.as_deref(),
                ctx.taps,
                &opts,
            )?))
        }
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let weights_path = match &args.weights {
        Some(p) => p.clone(),
        None => weights::fid_weights()?,
    };
    if args.fetch_weights {
        println!("{}", weights_path.display());
        return Ok(());
    }
    let taps = Tap::parse_list(&args.dims)?;
    let Some(a) = args.a.clone() else {
        bail!("input A is missing (see --help)");
    };
    if args.per_class
        && (args.labels_a.is_none() || (args.save_stats.is_none() && args.labels_b.is_none()))
    {
        bail!("--per-class needs --labels-a and --labels-b");
    }
    let device = parse_device(&args.device)?;
    let extractor = InceptionExtractor::new(&weights_path, device)?;
    let ctx = Ctx {
        extractor: &extractor,
        taps: &taps,
        args: &args,
    };
    let labels_a = if args.per_class {
        args.labels_a.as_deref()
    } else {
        None
    };
    let labels_b = if args.per_class {
        args.labels_b.as_deref()
    } else {
        None
    };

    if let Some(out) = &args.save_stats {
        if args.b.is_some() {
            bail!("--save-stats takes one input (A), got two");
        }
        let side = load_side(&ctx, &a, None, "A")?;
        let mut written = Vec::new();
        for &tap in &taps {
            let path = stats_file_for(out, tap, taps.len() > 1);
            npz::save_stats(&path, &side.stats(tap)?)?;
            written.push(path);
        }
        for p in written {
            println!("{}", p.display());
        }
        return Ok(());
    }

    let Some(b) = args.b.clone() else {
        bail!("input B is missing (or use --save-stats)");
    };
    let side_a = load_side(&ctx, &a, labels_a, "A")?;
    let side_b = load_side(&ctx, &b, labels_b, "B")?;
    let kid_opts = KidOptions {
        subsets: args.kid_subsets,
        subset_size: args.kid_subset_size,
        seed: args.kid_seed,
    };
    let mut out = Output {
        a: a.display().to_string(),
        b: b.display().to_string(),
        n_a: side_a.n(),
        n_b: side_b.n(),
        taps: Vec::new(),
    };
    for &tap in &taps {
        let (sa, sb) = (side_a.stats(tap)?, side_b.stats(tap)?);
        let fid = frechet_details(&sa, &sb)?;
        let mut t = TapOut {
            dims: tap.dims(),
            fid: fid.value,
            singular: fid.singular,
            kid: None,
            per_class: None,
        };
        if let (Side::Images(ca), Side::Images(cb)) = (&side_a, &side_b) {
            if args.kid {
                let (fa, fb) = (
                    ca.tap(tap)?.features.as_ref(),
                    cb.tap(tap)?.features.as_ref(),
                );
                if let (Some(fa), Some(fb)) = (fa, fb) {
                    t.kid = Some(kid(fa, fb, &kid_opts)?);
                }
            }
            if args.per_class {
                t.per_class = Some(per_class_fid(
                    &ca.class_stats(tap)?,
                    &cb.class_stats(tap)?,
                    &sa,
                    &sb,
                )?);
            }
        }
        out.taps.push(t);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out);
    }
    Ok(())
}

fn print_text(out: &Output) {
    for t in &out.taps {
        println!("FID{}: {}", t.dims, t.fid);
        if let Some(k) = &t.kid {
            println!(
                "KID{}: {} ± {} ({} subsets of {})",
                t.dims, k.mean, k.std, k.subsets, k.subset_size
            );
        }
        if let Some(p) = &t.per_class {
            println!(
                "FID{} per class: mean {} std {} min {} max {} (all classes {})",
                t.dims, p.mean, p.std, p.min, p.max, p.all_class
            );
            for c in &p.classes {
                println!(
                    "  class {}: {} ({} vs {} images)",
                    c.class, c.fid, c.n_generated, c.n_real
                );
            }
        }
    }
}
