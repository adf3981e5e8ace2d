//! `cign-sample (--run RUN_DIR [--checkpoint best|last] | --weights FILE --config CONFIG)
//! [--label L|all] [--n N] [--seed S] [--reapply K] [--out FILE.png] [--idx FILE]
//! [--idx-labels FILE] [--device D] [--precision fp32|bf16]` (default: `--label all --n 8`):
//! generate images from a trained model as a PNG grid (with `all`: one row
//! per class; each column one noise, shared by every row) and/or as raw IDX files for metrics.
//!
//! `--project IMAGE.png [--label L] --out FILE.png` instead projects a given image onto the
//! model's fixed points (under label L for a conditional model; without a label for an
//! unconditional one, the IGN "global projector") and writes input and outputs side by side.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cign_data::atomic::Staged;
use cign_metrics::device::DeviceChoice;
use cign_train::evaluation::MAX_PER_CLASS;
use cign_train::images::{read_gray, write_grid, write_grid_u8};
use cign_train::outputs::check_outputs;
use cign_train::run_model::ModelArgs;
use cign_train::sampling::{apply, generate_rows_u8, sample_noise};
use tch::{Kind, Tensor};

/// The most columns (`--n`) of a PNG grid (`--out`): 300,000 pixels wide. More images go to
/// `--idx`.
const MAX_GRID_COLUMNS: u32 = 10_000;

/// Generate images from a trained CIGN run.
#[derive(Debug, clap::Parser)]
#[command(name = "cign-sample", version)]
#[command(group = clap::ArgGroup::new("outputs").required(true).multiple(true))]
struct Cli {
    #[command(flatten)]
    model: ModelArgs,
    /// A class index, or `all` for one row per class (the default when generating). With
    /// --project: the class index to project under (needed for a conditional model).
    #[arg(long, allow_hyphen_values = true)]
    label: Option<String>,
    /// Images per label, 1 to 1000000 (with --out at most 10000: the PNG grid's columns).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=MAX_PER_CLASS as i64))]
    n: u32,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// How many times f is applied (1 = plain generation; the paper's re-application test
    /// uses more).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    reapply: u32,
    /// The PNG grid to write (at least one of --out and --idx is needed).
    #[arg(long, group = "outputs")]
    out: Option<PathBuf>,
    /// Also write the images as a raw IDX image file.
    #[arg(long, group = "outputs")]
    idx: Option<PathBuf>,
    /// Also write their labels as a raw IDX label file (with --idx, whose images they label).
    #[arg(long, requires = "idx")]
    idx_labels: Option<PathBuf>,
    /// Project this image (PNG/JPEG, resized to 28x28) instead of generating: under --label
    /// for a conditional model, without one for an unconditional model.
    #[arg(long, conflicts_with_all = ["idx", "idx_labels", "n", "seed"])]
    project: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

fn run(cli: Cli) -> Result<()> {
    let n = cli.n as usize;
    if cli.out.is_some() && cli.project.is_none() && cli.n > MAX_GRID_COLUMNS {
        bail!(
            "--n {n} with --out: a PNG grid holds at most {MAX_GRID_COLUMNS} columns; write \
             more images with --idx (and --idx-labels) alone"
        );
    }
    // Every output checked before the model is loaded or anything generated.
    let outputs: Vec<(&str, &Path)> = [
        ("--out", &cli.out),
        ("--idx", &cli.idx),
        ("--idx-labels", &cli.idx_labels),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
    .collect();
    let mut inputs = cli.model.inputs();
    if let Some(image) = &cli.project {
        inputs.push(("--project".into(), image.clone()));
    }
    let written = check_outputs(&outputs, &inputs)?;

    let device = cli.device.resolve()?;
    let rm = cli.model.load(device)?;
    let model = &rm.state.model;
    let conditional = rm.config.model.conditioning.is_conditional();
    let reapply = cli.reapply as usize;
    // Checked before anything is generated or written.
    if let Some(label) = cli.label.as_deref().filter(|l| !conditional && *l != "all") {
        bail!(
            "--label {label}: this model is unconditional (model.conditioning = none); {}",
            if cli.project.is_some() {
                "project without --label"
            } else {
                "use --label all"
            }
        );
    }
    if !conditional && cli.idx_labels.is_some() {
        bail!("--idx-labels: an unconditional model's images have no labels");
    }

    if let Some(image) = &cli.project {
        let Some(out) = &cli.out else {
            bail!("--project writes a PNG: give --out FILE.png");
        };
        let label = if conditional {
            let classes = rm.config.model.num_classes;
            let Some(text) = cli.label.as_deref() else {
                bail!(
                    "--project on a conditional model needs --label L, the class index \
                     (0..{classes}) to project under"
                );
            };
            let label: i64 = text.parse().with_context(|| {
                format!("--label {text}: --project needs one class index (0..{classes})")
            })?;
            rm.check_label(label)?;
            Some(label)
        } else {
            None
        };
        let x = read_gray(image)?;
        let x = if x.size()[2..] != [28, 28] {
            x.upsample_bilinear2d([28, 28], false, None, None)
        } else {
            x
        }
        .to_device(device);
        let labels = label.map(|l| Tensor::full([1], l, (Kind::Int64, device)));
        let mut row = vec![x.shallow_clone()];
        for k in 1..=reapply {
            row.push(apply(model, &x, labels.as_ref(), k));
        }
        write_grid(out, &[Tensor::cat(&row, 0)])?;
        written.keep();
        let under = label.map_or("without a label".to_string(), |l| {
            format!("under label {l}")
        });
        println!(
            "wrote {} (input, then f applied 1..={reapply} times {under})",
            out.display(),
        );
        return Ok(());
    }

    let label_arg = cli.label.as_deref().unwrap_or("all");
    let row_labels: Vec<Option<i64>> = if label_arg == "all" {
        if conditional {
            (0..rm.config.model.num_classes).map(Some).collect()
        } else {
            vec![None]
        }
    } else {
        let label: i64 = label_arg
            .parse()
            .with_context(|| format!("--label {label_arg}: expected a class index or all"))?;
        rm.check_label(label)?;
        vec![Some(label)]
    };
    tch::manual_seed(cli.seed);
    let z = sample_noise(n, model.config(), device)?;
    // Generated in batches; every pixel checked before anything is written: a diverged model
    // writes nothing.
    let rows = generate_rows_u8(model, &z, &row_labels, reapply)?;
    drop(z);
    let labels: Vec<u8> = row_labels
        .iter()
        .filter_map(|l| *l)
        .flat_map(|c| std::iter::repeat_n(c as u8, n))
        .collect();
    // Every output is written to a temporary file first and moved into place only once all
    // are written (staging, not only checking up front: a write can still fail, e.g. on a full
    // disk), so a failed command leaves none of its outputs.
    let mut staged = Staged::new();
    let mut wrote = Vec::new();
    if let Some(out) = &cli.out {
        staged.stage(out, |tmp| {
            write_grid_u8(tmp, &rows).map_err(|e| named(e, tmp, out))
        })?;
        wrote.push(format!(
            "wrote {} ({} rows of {n})",
            out.display(),
            rows.len()
        ));
    }
    if let Some(path) = &cli.idx {
        let mut rows = rows.into_iter();
        let mut all = rows.next().context("nothing was generated")?;
        for row in rows {
            all.pixels
                .try_reserve_exact(row.pixels.len())
                .with_context(|| format!("cannot allocate the IDX file {}", path.display()))?;
            all.pixels.extend_from_slice(&row.pixels);
            all.count += row.count;
        }
        staged.stage(path, |tmp| {
            cign_data::idx::write_idx_images(tmp, &all).map_err(|e| named(e.into(), tmp, path))
        })?;
        wrote.push(format!("wrote {} ({} images)", path.display(), all.count));
    }
    if let Some(path) = &cli.idx_labels {
        staged.stage(path, |tmp| {
            cign_data::idx::write_idx_labels(tmp, &labels).map_err(|e| named(e.into(), tmp, path))
        })?;
        wrote.push(format!("wrote {}", path.display()));
    }
    staged.commit()?;
    for line in wrote {
        println!("{line}");
    }
    written.keep();
    Ok(())
}

/// `e`, a write error of the temporary file `tmp`, naming the output `dest` the user gave
/// instead.
fn named(e: anyhow::Error, tmp: &Path, dest: &Path) -> anyhow::Error {
    let text = format!("{e:#}");
    anyhow::anyhow!(
        "{}",
        text.replace(&tmp.display().to_string(), &dest.display().to_string())
    )
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("info", run)
}
