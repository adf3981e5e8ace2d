//! `cign-sample (--run RUN_DIR [--checkpoint best|last] | --weights FILE --config CONFIG)
//! [--label L|all] [--n N] [--seed S] [--reapply K] [--out FILE.png] [--idx FILE]
//! [--idx-labels FILE] [--device D] [--precision fp32|bf16]` (default: `--label all --n 8`):
//! generate images from a trained model as a PNG grid (with `all`: one row
//! per class; each column one noise, shared by every row) and/or as raw IDX files for metrics.
//!
//! `--project IMAGE.png [--label L] --out FILE.png` instead projects a given image onto the
//! model's fixed points (under label L for a conditional model; without a label for an
//! unconditional one, the IGN "global projector") and writes input and outputs side by side.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cign_metrics::device::DeviceChoice;
use cign_train::images::{read_gray, to_u8, write_grid};
use cign_train::run_model::ModelArgs;
use cign_train::sampling::{apply, class_grid_rows};
use tch::{Kind, Tensor};

/// Generate images from a trained CIGN run.
#[derive(Debug, clap::Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    model: ModelArgs,
    /// A class index, or `all` for one row per class.
    #[arg(long, default_value = "all")]
    label: String,
    /// Images per label.
    #[arg(long, default_value_t = 8)]
    n: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// How many times f is applied (1 = plain generation; the paper's re-application test
    /// uses more).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    reapply: u32,
    /// The PNG grid to write (at least one of --out and --idx is needed).
    #[arg(long, required_unless_present = "idx")]
    out: Option<PathBuf>,
    /// Also write the images as a raw IDX image file.
    #[arg(long)]
    idx: Option<PathBuf>,
    /// Also write their labels as a raw IDX label file.
    #[arg(long)]
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
    if cli.n == 0 {
        bail!("--n must be at least 1");
    }
    let device = cli.device.resolve()?;
    let rm = cli.model.load(device)?;
    let model = &rm.state.model;
    let conditional = rm.config.model.conditioning.is_conditional();
    let reapply = cli.reapply as usize;
    // Checked before anything is generated or written.
    if !conditional && cli.label != "all" {
        bail!(
            "--label {}: this model is unconditional (model.conditioning = none); {}",
            cli.label,
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
            let label: i64 = cli.label.parse().with_context(|| {
                format!(
                    "--project needs --label L with a class index, got '{}'",
                    cli.label
                )
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
        let under = label.map_or("without a label".to_string(), |l| {
            format!("under label {l}")
        });
        println!(
            "wrote {} (input, then f applied 1..={reapply} times {under})",
            out.display(),
        );
        return Ok(());
    }

    tch::manual_seed(cli.seed);
    let z = cign_core::sample_noise(cli.n as i64, model.config(), device);
    let (rows, labels): (Vec<Tensor>, Vec<u8>) = if cli.label == "all" {
        let rows = class_grid_rows(model, &z, reapply);
        let labels = if conditional {
            (0..rows.len())
                .flat_map(|c| std::iter::repeat_n(c as u8, cli.n))
                .collect()
        } else {
            Vec::new()
        };
        (rows, labels)
    } else {
        let label: i64 = cli
            .label
            .parse()
            .with_context(|| format!("--label {}: expected a class index or all", cli.label))?;
        rm.check_label(label)?;
        let l = Tensor::full([cli.n as i64], label, (Kind::Int64, device));
        (
            vec![apply(model, &z, Some(&l), reapply)],
            vec![label as u8; cli.n],
        )
    };
    // Checked before anything is written: a diverged model writes nothing.
    let all = to_u8(&Tensor::cat(&rows, 0))?;
    if let Some(out) = &cli.out {
        write_grid(out, &rows)?;
        println!("wrote {} ({} rows of {})", out.display(), rows.len(), cli.n);
    }
    if let Some(path) = &cli.idx {
        cign_data::idx::write_idx_images(path, &all)?;
        println!("wrote {} ({} images)", path.display(), all.count);
    }
    if let Some(path) = &cli.idx_labels {
        cign_data::idx::write_idx_labels(path, &labels)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("info", run)
}
