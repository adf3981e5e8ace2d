//! `cign-classifier`: trains and caches the classifier behind the conditional-accuracy
//! metric, or measures a cached one.
//!
//! ```text
//! cargo run --release -p cign-metrics --bin cign-classifier -- train [--dataset mnist] [--epochs 4]
//! cargo run --release -p cign-metrics --bin cign-classifier -- eval [--dataset mnist]
//! cargo run --release -p cign-metrics --bin cign-classifier -- path [--dataset mnist]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use cign_data::{Dataset, DatasetKind, Split};
use cign_metrics::device::DeviceChoice;
use cign_metrics::{default_classifier_path, train_and_cache, ConditionalClassifier, TrainOptions};

#[derive(Parser, Debug)]
#[command(
    name = "cign-classifier",
    version,
    about = "Train or evaluate the conditional-accuracy classifier",
    after_help = "Exit codes: 0 success, 2 any error (one `error:` line on stderr)."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train on the training split, report test accuracy, cache the weights.
    Train {
        /// mnist or fashion-mnist.
        #[arg(long, default_value = "mnist")]
        dataset: DatasetKind,
        /// Data directory (default: cign-data's default for the dataset).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Epochs (at least 1).
        #[arg(long, default_value_t = 4)]
        epochs: usize,
        /// Batch size (at least 1).
        #[arg(long, default_value_t = 128)]
        batch_size: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Train on the first N training images only (default: all); the test split is whole.
        #[arg(long)]
        train_limit: Option<usize>,
        /// Output file (default: the cache path).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Device: cpu (default, reproducible), auto, cuda or cuda:N. An explicit CUDA device
        /// that is not there is an error.
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
    },
    /// Print the default (cache) path of the classifier of a dataset, for scripts:
    /// `[ -f "$(cign-classifier path)" ] || cign-classifier train`.
    Path {
        /// mnist or fashion-mnist.
        #[arg(long, default_value = "mnist")]
        dataset: DatasetKind,
    },
    /// Test accuracy of a trained classifier.
    Eval {
        /// mnist or fashion-mnist.
        #[arg(long, default_value = "mnist")]
        dataset: DatasetKind,
        /// Data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Weights (default: the cache path).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Device: cpu (default), auto, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
    },
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("info", run)
}

fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Train {
            dataset: kind,
            data_dir,
            epochs,
            batch_size,
            seed,
            train_limit,
            out,
            device,
        } => {
            let device = device.resolve().context("--device")?;
            let options = TrainOptions {
                epochs,
                batch_size,
                seed,
                train_limit,
                ..Default::default()
            };
            options.validate()?;
            let dir = data_dir.unwrap_or_else(|| cign_data::default_data_dir(kind));
            let report = train_and_cache(kind, &dir, &options, device, out.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            println!(
                "{} test accuracy: {:.4} ({} test images), saved to {}",
                kind,
                report.test_accuracy,
                report.test_images,
                out.unwrap_or_else(|| default_classifier_path(kind))
                    .display()
            );
        }
        Command::Path { dataset } => {
            println!("{}", default_classifier_path(dataset).display());
        }
        Command::Eval {
            dataset: kind,
            data_dir,
            weights,
            device,
        } => {
            let device = device.resolve().context("--device")?;
            let path = weights.unwrap_or_else(|| default_classifier_path(kind));
            // The weights before the data: a missing classifier is reported without a fetch.
            let c = ConditionalClassifier::load(&path, device)?;
            let dir = data_dir.unwrap_or_else(|| cign_data::default_data_dir(kind));
            cign_data::fetch::ensure_dataset(kind, &dir)?;
            let test = Dataset::load(kind, Split::Test, &dir)?;
            let acc = c.dataset_accuracy(&test, None)?;
            println!("{kind} test accuracy: {acc:.4} ({} images)", test.len());
        }
    }
    Ok(())
}
