//! `cign-train CONFIG [--set section.key=value ...] [--resume RUN_DIR] [--summary] [--doctor]`:
//! the main job. Trains a CIGN model as the config says and writes a run directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cign_train::run_dir::RunDir;
use cign_train::{config::TrainConfig, doctor, logging, summary, ModelState, Trainer};
use clap::Parser;

/// Train a Conditional Idempotent Generative Network.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The TOML config (see configs/). Not needed with --resume or --doctor.
    config: Option<PathBuf>,
    /// Override a config key, e.g. `--set train.max_steps=20` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Continue the run in RUN_DIR from its `last` checkpoint (its config.toml is used;
    /// --set may still change limits such as train.max_steps or train.epochs).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Print the model table and parameter count, then exit (no data is loaded).
    #[arg(long)]
    summary: bool,
    /// Print what this build sees (libtorch, CUDA, data and weight locations), then exit.
    #[arg(long)]
    doctor: bool,
}

fn config_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

fn run(cli: Cli) -> Result<()> {
    if cli.doctor {
        print!("{}", doctor::report());
        return Ok(());
    }
    let (cfg, run_dir) = match (&cli.resume, &cli.config) {
        (Some(dir), _) => {
            let run = RunDir::open(dir)?;
            let cfg = TrainConfig::load(&run.config(), &cli.set)?;
            (cfg, Some(run))
        }
        (None, Some(path)) => (TrainConfig::load(path, &cli.set)?, None),
        (None, None) => {
            bail!("no config given: cign-train CONFIG.toml (see configs/), or --resume RUN_DIR")
        }
    };
    if cli.summary {
        let ms = ModelState::new(&cfg, tch::Device::Cpu)?;
        println!(
            "model: {:?} conditioning, latent_dim {}, intermediate_dim {}, embedding_dim {}",
            cfg.model.conditioning,
            cfg.model.latent_dim,
            cfg.model.intermediate_dim,
            cfg.model.embedding_dim
        );
        print!("{}", summary::model_table(&ms.vs));
        return Ok(());
    }
    let resume = run_dir.is_some();
    let run = match run_dir {
        Some(run) => {
            run.existing_checkpoint("last")?;
            run
        }
        None => {
            let name = config_name(cli.config.as_deref().expect("config given"));
            RunDir::create(Path::new(&cfg.output.dir), &name)?
        }
    };
    logging::init(Some(&run.log()))?;
    tracing::info!("run directory {}", run.root().display());

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("second Ctrl-C: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("Ctrl-C: finishing the current step, writing a checkpoint, then exiting");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let mut trainer = Trainer::new(cfg, run, resume)?;
    let summary = trainer.train(stop)?;
    println!(
        "{:?}: step {}, epoch {}, best validation loss {:.4}; run directory {}",
        summary.reason,
        summary.state.step,
        summary.state.epoch,
        summary.state.best_val_loss,
        trainer.run_dir().root().display()
    );
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    cign_core::runtime::tune_malloc();
    if let Err(e) = run(cli) {
        cign_train::exit_with_error(&e);
    }
}
