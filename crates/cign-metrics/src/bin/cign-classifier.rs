//! `cign-classifier`: trains and caches the classifier behind the conditional-accuracy
//! metric, or measures a cached one.
//!
//! ```text
//! cargo run --release -p cign-metrics --bin cign-classifier -- train [--dataset mnist] [--epochs 4]
//! cargo run --release -p cign-metrics --bin cign-classifier -- eval [--dataset mnist]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tch::Device;

use cign_data::{Dataset, DatasetKind, Split};
use cign_metrics::{default_classifier_path, train_and_cache, ConditionalClassifier, TrainOptions};

#[derive(Parser, Debug)]
#[command(
    name = "cign-classifier",
    about = "Train or evaluate the conditional-accuracy classifier"
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
        dataset: String,
        /// Data directory (default: cign-data's default for the dataset).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Epochs.
        #[arg(long, default_value_t = 4)]
        epochs: usize,
        /// Batch size.
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
        /// cpu or cuda.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Test accuracy of a trained classifier.
    Eval {
        /// mnist or fashion-mnist.
        #[arg(long, default_value = "mnist")]
        dataset: String,
        /// Data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Weights (default: the cache path).
        #[arg(long)]
        weights: Option<PathBuf>,
    },
}

fn device(s: &str) -> Device {
    if s == "cuda" {
        Device::cuda_if_available()
    } else {
        Device::Cpu
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
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Args::parse().command {
        Command::Train {
            dataset,
            data_dir,
            epochs,
            batch_size,
            seed,
            train_limit,
            out,
            device: dev,
        } => {
            let kind: DatasetKind = dataset.parse()?;
            let dir = data_dir.unwrap_or_else(|| cign_data::default_data_dir(kind));
            let options = TrainOptions {
                epochs,
                batch_size,
                seed,
                train_limit,
                ..Default::default()
            };
            let report = train_and_cache(kind, &dir, &options, device(&dev), out.as_deref())?;
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
        Command::Eval {
            dataset,
            data_dir,
            weights,
        } => {
            let kind: DatasetKind = dataset.parse()?;
            let dir = data_dir.unwrap_or_else(|| cign_data::default_data_dir(kind));
            cign_data::fetch::ensure_dataset(kind, &dir)?;
            let test = Dataset::load(kind, Split::Test, &dir)?;
            let path = weights.unwrap_or_else(|| default_classifier_path(kind));
            let c = ConditionalClassifier::load(&path, Device::Cpu)
                .with_context(|| format!("{}", path.display()))?;
            let acc = c.dataset_accuracy(&test, None)?;
            println!("{kind} test accuracy: {acc:.4} ({} images)", test.len());
        }
    }
    Ok(())
}
