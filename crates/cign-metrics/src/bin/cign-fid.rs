//! `cign-fid`: FID (pytorch-fid's numbers) at any of the taps 64, 192, 768, 2048 in one pass,
//! optionally KID, per-class FID and precision/recall/density/coverage, between two image
//! sets or statistics files.
//!
//! ```text
//! cign-fid [--dims 64,192,768,2048] [--kid] [--prdc [--nearest-k K]]
//!          [--per-class --labels-a FILE --labels-b FILE] [--precision fp32|bf16] [--json] A B
//! cign-fid --dims 768 --save-stats OUT.npz A
//! cign-fid --fetch-weights
//! ```
//! A and B are each a folder of images (bmp, jpg/jpeg, pgm/ppm, png, tif/tiff, webp; any size;
//! searched recursively; hidden files and folders skipped unless `--include-hidden`), an IDX
//! image file (MNIST format, gzip or raw) or an `.npz` statistics file (pytorch-fid's format).
//! FID and KID are symmetric; precision/recall/density/coverage are not: A is the generated
//! set and B the real one (as `prdc.compute_prdc(real_features=B, fake_features=A)`).
//! `--precision bf16` runs the Inception convolutions in bfloat16 (libtorch's autocast; off by
//! default): faster where the hardware has bfloat16 units, FID moved by the deviation the
//! crate's README reports; the JSON output says which precision was used
//! (`"inception_precision"`).
//! Every argument and input is checked before the network runs; every error is one
//! `error: ...` line naming the input (A or B), its path and the class where there is one,
//! with exit code 2.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Serialize;

use cign_data::atomic::Staged;
use cign_metrics::device::DeviceChoice;
use cign_metrics::images::{open_input_with, read_labels, FolderOptions, Input};
use cign_metrics::per_class::class_counts;
use cign_metrics::prdc::min_rows;
use cign_metrics::{
    collect, frechet_details, kid, npz, per_class_fid, per_class_prdc, prdc_tensors, weights,
    CollectOptions, Collected, InceptionExtractor, Kid, KidOptions, PerClassFid, PerClassPrdc,
    Prdc, PrdcOptions, Precision, Stats, Tap, DEFAULT_NEAREST_K,
};

#[derive(Parser, Debug)]
#[command(
    name = "cign-fid",
    version,
    about = "FID equal to pytorch-fid at the Inception taps 64/192/768/2048 (one pass), KID, per-class FID, precision/recall/density/coverage",
    after_help = "Inputs A and B: a folder of images (bmp, jpg, jpeg, pgm, png, ppm, tif, tiff, webp), an IDX image file or an .npz statistics file. A is the generated set and B the real one: FID and KID do not depend on the order, precision/recall/density/coverage do (precision: share of A inside B's k-NN balls; recall: share of B inside A's). Exit codes: 0 success, 2 any error (one `error:` line on stderr)."
)]
struct Args {
    /// Feature sizes (taps), comma-separated: any of 64, 192, 768, 2048.
    #[arg(long, default_value = "2048")]
    dims: String,
    /// Also report KID (needs images on both sides).
    #[arg(long)]
    kid: bool,
    /// KID: number of subsets (at least 1).
    #[arg(long, default_value_t = 100)]
    kid_subsets: usize,
    /// KID: largest subset size (at least 2).
    #[arg(long, default_value_t = 1000)]
    kid_subset_size: usize,
    /// KID: seed of the subset sampler, NumPy's `RandomState` seed as torch-fidelity uses it
    /// (0..=4294967295; torch-fidelity's default 2020), so equal seeds draw equal subsets.
    #[arg(long, default_value_t = 2020)]
    kid_seed: u32,
    /// Also report improved precision and recall (Kynkäänniemi et al. 2019) and density and
    /// coverage (Naeem et al. 2020) of A (generated) against B (real), equal to the `prdc`
    /// package, on the 2048 features (or the largest tap of --dims without 2048); per class
    /// too with --per-class. Needs images on both sides, at least K + 2 of each (and per class),
    /// as `prdc`.
    /// Costs O((N + M)^2 D) in float64: about a minute on two CPU cores for 10,000 x 10,000
    /// images at 2048.
    #[arg(long)]
    prdc: bool,
    /// k of the k-nearest-neighbour radii of --prdc (at least 1; default 5, as `prdc`).
    #[arg(long, value_name = "K")]
    nearest_k: Option<usize>,
    /// Per-class FID (needs --labels-a and --labels-b); per-class PRDC with --prdc.
    #[arg(long)]
    per_class: bool,
    /// Labels of A (IDX label file, or a text file with one label per line), in the order of
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
    /// Images per forward pass (at least 1).
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// Device: auto (CUDA 0 when available, else the CPU), cpu, cuda or cuda:N. An explicit
    /// CUDA device that is not there is an error.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Arithmetic of the Inception network: fp32 (pytorch-fid's numbers) or bf16 (convolutions
    /// in bfloat16 through libtorch's autocast, on the CPU or CUDA; features, statistics and
    /// distances stay float32/float64; FID deviates from fp32's by the amount the crate's
    /// README reports per tap). Statistics files (.npz) do not record it.
    #[arg(long, default_value = "fp32", value_name = "fp32|bf16")]
    precision: Precision,
    /// Also read hidden files and search hidden folders (names starting with '.', such as
    /// .ipynb_checkpoints), which are skipped by default.
    #[arg(long)]
    include_hidden: bool,
    /// FID weights (safetensors); default: $CIGN_FID_WEIGHTS or the cache, fetched on first use.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Obtain the FID weights (download and convert if needed), print their path and exit.
    #[arg(long)]
    fetch_weights: bool,
    /// Hide the progress bars.
    #[arg(long)]
    no_progress: bool,
    /// Input A: the generated set (what --prdc measures).
    a: Option<PathBuf>,
    /// Input B: the real set (the reference of --prdc).
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

/// Precision, recall, density and coverage of A (generated) against B (real).
#[derive(Serialize)]
struct PrdcOut {
    /// The tap whose features they use.
    prdc_dims: usize,
    nearest_k: usize,
    #[serde(flatten)]
    values: Prdc,
    #[serde(skip_serializing_if = "Option::is_none")]
    prdc_per_class: Option<PerClassPrdc>,
}

#[derive(Serialize)]
struct Output {
    a: String,
    b: String,
    n_a: usize,
    n_b: usize,
    /// Arithmetic of the Inception network (`"fp32"` or `"bf16"`), named apart from the
    /// `precision` of --prdc.
    inception_precision: Precision,
    taps: Vec<TapOut>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    prdc: Option<PrdcOut>,
}

/// One input, opened and checked, before any feature is computed.
struct Opened {
    name: &'static str,
    path: PathBuf,
    input: Input,
    labels: Option<Vec<u8>>,
}

impl Opened {
    /// "input A (path)".
    fn label(&self) -> String {
        format!("input {} ({})", self.name, self.path.display())
    }
}

/// One input after the network.
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

fn stats_file_for(out: &Path, tap: Tap, several: bool) -> PathBuf {
    if !several {
        return out.to_path_buf();
    }
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("stats");
    out.with_file_name(format!("{stem}_d{}.npz", tap.dims()))
}

fn tap_list(taps: &[Tap]) -> String {
    taps.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Opens input `name` at `path` with its labels and checks everything that can be checked
/// without the network: what the path is, the number of images (two at least: a covariance
/// needs two samples), statistics dimensions, label count, and images per class.
fn open_side(
    args: &Args,
    taps: &[Tap],
    name: &'static str,
    path: &Path,
    labels: Option<&Path>,
) -> Result<Opened> {
    let folder = FolderOptions {
        include_hidden: args.include_hidden,
    };
    let label = format!("input {name} ({})", path.display());
    let input = named(
        open_input_with(path, &folder),
        &format!("input {name}"),
        path,
    )?;
    let labels = match labels {
        Some(p) => Some(named(
            read_labels(p),
            &format!("labels of input {name}"),
            p,
        )?),
        None => None,
    };
    match &input {
        Input::Stats(stats) => {
            if args.kid || args.per_class || args.prdc {
                bail!("{label}: --kid, --per-class and --prdc need images, not a statistics file");
            }
            if taps.len() != 1 || taps[0].dims() != stats.dims() {
                bail!(
                    "{label}: statistics of {} dimensions, but --dims asks for {}",
                    stats.dims(),
                    tap_list(taps)
                );
            }
        }
        Input::Images(source) => {
            let n = source.len();
            if n < 2 {
                bail!("{label}: {n} image(s), at least 2 needed (a covariance needs two samples)");
            }
            let k = nearest_k(args);
            if args.prdc && n < min_rows(k) {
                bail!(
                    "{label}: {n} image(s), --prdc with --nearest-k {k} needs at least {} (K + 2, as prdc)",
                    min_rows(k)
                );
            }
            if let Some(labels) = &labels {
                if labels.len() != n {
                    bail!(
                        "{label}: {} labels for {n} images (one label per image, in the order of the sorted file paths)",
                        labels.len()
                    );
                }
                for (class, count) in class_counts(labels) {
                    if count < 2 {
                        bail!("{label}, class {class}: {count} image, at least 2 needed for its covariance (per-class FID)");
                    }
                    if args.prdc && count < min_rows(k) {
                        bail!(
                            "{label}, class {class}: {count} images, per-class --prdc with --nearest-k {k} needs at least {} per class (K + 2, as prdc)",
                            min_rows(k)
                        );
                    }
                }
            }
        }
    }
    Ok(Opened {
        name,
        path: path.to_path_buf(),
        input,
        labels,
    })
}

/// k of --prdc (--nearest-k, default 5).
fn nearest_k(args: &Args) -> usize {
    args.nearest_k.unwrap_or(DEFAULT_NEAREST_K)
}

/// The tap of --prdc: 2048 when requested, else the largest requested.
fn prdc_tap(taps: &[Tap]) -> Tap {
    if taps.contains(&Tap::D2048) {
        Tap::D2048
    } else {
        taps.iter().copied().max().unwrap_or(Tap::D2048)
    }
}

/// Prefixes an error with `what` ("input A") and the path, unless the message names the
/// path already (then `what` alone: the path once is enough).
fn named<T>(result: cign_metrics::Result<T>, what: &str, path: &Path) -> Result<T> {
    result.map_err(|e| {
        let shown = path.display().to_string();
        if e.to_string().contains(&shown) {
            anyhow::Error::new(e).context(what.to_string())
        } else {
            anyhow::Error::new(e).context(format!("{what} ({shown})"))
        }
    })
}

/// Per-class FID compares the same classes: each class on one side must be on the other.
fn check_same_classes(a: &Opened, b: &Opened) -> Result<()> {
    let (Some(la), Some(lb)) = (&a.labels, &b.labels) else {
        return Ok(());
    };
    let (ca, cb) = (class_counts(la), class_counts(lb));
    for (x, y, cx, cy) in [(a, b, &ca, &cb), (b, a, &cb, &ca)] {
        if let Some(class) = cx.keys().find(|c| !cy.contains_key(c)) {
            bail!(
                "{}, class {class}: {} images, but {} has none of this class (per-class FID compares the same classes)",
                x.label(),
                cx[class],
                y.label()
            );
        }
    }
    Ok(())
}

fn run_side(
    extractor: Option<&InceptionExtractor>,
    args: &Args,
    taps: &[Tap],
    opened: Opened,
) -> Result<Side> {
    let label = opened.label();
    match opened.input {
        Input::Stats(stats) => Ok(Side::Stats(stats)),
        Input::Images(source) => {
            let Some(extractor) = extractor else {
                bail!("{label}: images but no network (a bug)");
            };
            let opts = CollectOptions {
                batch_size: args.batch_size,
                keep_features: args.kid || args.prdc,
                progress: !args.no_progress,
                message: format!("{}: {}", opened.name, opened.path.display()),
                precision: args.precision,
            };
            let collected = collect(
                extractor,
                source.as_ref(),
                opened.labels.as_deref(),
                taps,
                &opts,
            )
            .with_context(|| label.clone())?;
            Ok(Side::Images(collected))
        }
    }
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("warn", run)
}

fn run(args: Args) -> Result<()> {
    if args.fetch_weights {
        let path = match &args.weights {
            Some(p) => p.clone(),
            None => weights::fid_weights()?,
        };
        println!("{}", path.display());
        return Ok(());
    }
    // Arguments first: nothing heavy runs before every one of them is known to be usable.
    let taps = Tap::parse_list(&args.dims).context("--dims")?;
    if args.batch_size == 0 {
        bail!("--batch-size 0: must be at least 1");
    }
    let kid_opts = KidOptions {
        subsets: args.kid_subsets,
        subset_size: args.kid_subset_size,
        seed: args.kid_seed,
    };
    if args.kid {
        kid_opts
            .validate()
            .context("--kid-subsets / --kid-subset-size")?;
    }
    if args.nearest_k.is_some() && !args.prdc {
        bail!("--nearest-k is used with --prdc only");
    }
    if args.nearest_k == Some(0) {
        bail!("--nearest-k 0: must be at least 1 (the radius is the distance to the k-th nearest neighbour)");
    }
    let Some(a) = args.a.clone() else {
        bail!("input A is missing (see --help)");
    };
    if args.save_stats.is_some() && args.b.is_some() {
        bail!("--save-stats takes one input (A), got two");
    }
    if args.save_stats.is_none() && args.b.is_none() {
        bail!("input B is missing (or use --save-stats)");
    }
    if args.per_class
        && (args.labels_a.is_none() || (args.save_stats.is_none() && args.labels_b.is_none()))
    {
        bail!("--per-class needs --labels-a and --labels-b");
    }
    if !args.per_class && (args.labels_a.is_some() || args.labels_b.is_some()) {
        bail!("--labels-a / --labels-b are used with --per-class only");
    }
    if args.save_stats.is_some() && (args.kid || args.per_class || args.prdc) {
        bail!("--save-stats writes the all-image statistics of A; --kid, --per-class and --prdc need two inputs");
    }
    let device = args.device.resolve().context("--device")?;
    args.precision
        .check_device(device)
        .map_err(|e| anyhow::anyhow!("--precision {}: {e}", args.precision))?;

    // The --save-stats files: checked (not an input, not a directory, a writable place) and
    // their missing directories made before any input is read or image computed.
    let stats_out = match &args.save_stats {
        Some(out) => {
            let paths: Vec<PathBuf> = taps
                .iter()
                .map(|&tap| stats_file_for(out, tap, taps.len() > 1))
                .collect();
            let outputs: Vec<(&str, &Path)> = paths
                .iter()
                .map(|p| ("--save-stats", p.as_path()))
                .collect();
            let mut inputs = vec![("input A", a.as_path())];
            if let Some(labels) = &args.labels_a {
                inputs.push(("--labels-a", labels.as_path()));
            }
            let created = cign_data::atomic::check_outputs(&outputs, &inputs)?;
            Some((paths, created))
        }
        None => None,
    };

    // Inputs: listed, read (IDX, npz) and checked, both before the network.
    let side_a = open_side(&args, &taps, "A", &a, args.labels_a.as_deref())?;
    let side_b = match &args.b {
        Some(b) => Some(open_side(&args, &taps, "B", b, args.labels_b.as_deref())?),
        None => None,
    };
    if let Some(side_b) = &side_b {
        check_same_classes(&side_a, side_b)?;
    }

    // The network only when some input is images (two statistics files need none).
    let needs_network = std::iter::once(&side_a)
        .chain(side_b.as_ref())
        .any(|s| matches!(s.input, Input::Images(_)));
    let extractor = if needs_network {
        let weights_path = match &args.weights {
            Some(p) => p.clone(),
            None => weights::fid_weights()?,
        };
        Some(InceptionExtractor::new(&weights_path, device)?)
    } else {
        None
    };
    let extractor = extractor.as_ref();

    if let Some((paths, created)) = stats_out {
        let label = side_a.label();
        let side = run_side(extractor, &args, &taps, side_a)?;
        // Every tap's statistics before the first file, and every file written before any
        // is moved into place, so that a failure (even a full disk) leaves none.
        let stats = taps
            .iter()
            .map(|&tap| side.stats(tap).with_context(|| label.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut staged = Staged::new();
        for (path, stats) in paths.iter().zip(&stats) {
            stats.validate(&path.display().to_string())?;
            staged.stage(path, |tmp| {
                npz::write_npz(tmp, stats)
                    .with_context(|| format!("cannot write {}", path.display()))
            })?;
        }
        staged.commit()?;
        created.keep();
        for p in paths {
            println!("{}", p.display());
        }
        return Ok(());
    }

    let Some(side_b) = side_b else {
        bail!("input B is missing (or use --save-stats)");
    };
    let (label_a, label_b) = (side_a.label(), side_b.label());
    let b = side_b.path.clone();
    let (labels_a, labels_b) = (side_a.labels.clone(), side_b.labels.clone());
    let side_a = run_side(extractor, &args, &taps, side_a)?;
    let side_b = run_side(extractor, &args, &taps, side_b)?;
    let mut out = Output {
        a: a.display().to_string(),
        b: b.display().to_string(),
        n_a: side_a.n(),
        n_b: side_b.n(),
        inception_precision: args.precision,
        taps: Vec::new(),
        prdc: None,
    };
    for &tap in &taps {
        let sa = side_a.stats(tap).with_context(|| label_a.clone())?;
        let sb = side_b.stats(tap).with_context(|| label_b.clone())?;
        let fid = frechet_details(&sa, &sb).map_err(|e| match e {
            // "first/second statistics" are inputs A and B: name them.
            cign_metrics::MetricsError::InvalidStats { which, what } => {
                let side = if which.starts_with("first") {
                    &label_a
                } else {
                    &label_b
                };
                anyhow::anyhow!("FID{tap}: {side}: {what}")
            }
            e => anyhow::Error::new(e).context(format!("FID{tap}")),
        })?;
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
                    t.kid = Some(kid(fa, fb, &kid_opts).with_context(|| format!("KID{tap}"))?);
                }
            }
            if args.per_class {
                let class_a = ca.class_stats(tap).with_context(|| label_a.clone())?;
                let class_b = cb.class_stats(tap).with_context(|| label_b.clone())?;
                t.per_class = Some(
                    per_class_fid(&class_a, &class_b, &sa, &sb)
                        .with_context(|| format!("per-class FID{tap}"))?,
                );
            }
        }
        out.taps.push(t);
    }
    if args.prdc {
        out.prdc = Some(prdc_out(
            &side_a,
            &side_b,
            labels_a.as_deref(),
            labels_b.as_deref(),
            prdc_tap(&taps),
            &PrdcOptions {
                nearest_k: nearest_k(&args),
                device,
                ..PrdcOptions::default()
            },
        )?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out);
    }
    Ok(())
}

/// Precision, recall, density and coverage of A against B at `tap`, per class too when both
/// sides have labels (--per-class).
fn prdc_out(
    side_a: &Side,
    side_b: &Side,
    labels_a: Option<&[u8]>,
    labels_b: Option<&[u8]>,
    tap: Tap,
    options: &PrdcOptions,
) -> Result<PrdcOut> {
    let (Side::Images(ca), Side::Images(cb)) = (side_a, side_b) else {
        bail!("--prdc needs images on both sides (a bug: checked before)");
    };
    let (Some(fa), Some(fb)) = (
        ca.tap(tap)?.features.as_ref(),
        cb.tap(tap)?.features.as_ref(),
    ) else {
        bail!("--prdc: features of tap {tap} were not kept (a bug)");
    };
    let what = format!("precision/recall/density/coverage at tap {tap}");
    let values = prdc_tensors(fa, fb, options).with_context(|| what.clone())?;
    let prdc_per_class = match (labels_a, labels_b) {
        (Some(la), Some(lb)) => Some(
            per_class_prdc(fa, la, fb, lb, options).with_context(|| format!("per-class {what}"))?,
        ),
        _ => None,
    };
    Ok(PrdcOut {
        prdc_dims: tap.dims(),
        nearest_k: options.nearest_k,
        values,
        prdc_per_class,
    })
}

fn print_text(out: &Output) {
    if out.inception_precision != Precision::Fp32 {
        // Only when it is not the default, so that fp32 output stays as it was (and not
        // "precision:", the line of --prdc's metric).
        println!("inception precision: {}", out.inception_precision);
    }
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
    if let Some(p) = &out.prdc {
        println!(
            "PRDC at {} features, nearest_k {} (A generated, B real):",
            p.prdc_dims, p.nearest_k
        );
        let v = &p.values;
        println!("precision: {}", v.precision);
        println!("recall: {}", v.recall);
        println!("density: {}", v.density);
        println!("coverage: {}", v.coverage);
        if let Some(pc) = &p.prdc_per_class {
            let m = &pc.mean;
            println!(
                "PRDC per class: mean precision {} recall {} density {} coverage {}",
                m.precision, m.recall, m.density, m.coverage
            );
            for c in &pc.classes {
                let v = &c.metrics;
                println!(
                    "  class {}: precision {} recall {} density {} coverage {} ({} vs {} images)",
                    c.class, v.precision, v.recall, v.density, v.coverage, c.n_generated, c.n_real
                );
            }
        }
    }
}
