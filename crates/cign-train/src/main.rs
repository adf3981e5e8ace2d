//! `cign-train (CONFIG | --resume RUN_DIR) [--set section.key=value ...] [--summary] [--doctor]`:
//! the main job. Trains a CIGN model as the config says and writes a run directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cign_train::lock::RunLock;
use cign_train::run_dir::RunDir;
use cign_train::signals::{self, StopFlag};
use cign_train::{
    config::TrainConfig, doctor, logging, outputs, summary, ModelState, StopReason, Trainer,
};
use clap::Parser;

/// Train a Conditional Idempotent Generative Network.
#[derive(Debug, Parser)]
#[command(name = "cign-train", version)]
struct Cli {
    /// The TOML config (see configs/). Not with --resume (the run keeps its own); not needed
    /// with --doctor.
    config: Option<PathBuf>,
    /// Override a config key, e.g. `--set train.max_steps=20` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Continue the run in RUN_DIR from its `last` checkpoint (its config.toml is used;
    /// --set may change limits, logging, threads, device, paths and optim.lr, nothing else).
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
        (Some(dir), Some(path)) => bail!(
            "give CONFIG.toml or --resume {}, not both: a resumed run keeps the config it was \
             started with (change resumable keys with --set KEY=VALUE), got {}",
            dir.display(),
            path.display()
        ),
        (Some(dir), None) => {
            TrainConfig::check_resume_overrides(&cli.set)?;
            let run = RunDir::open(dir)?;
            let cfg = TrainConfig::load(&run.config(), &cli.set)?;
            (cfg, Some(run))
        }
        (None, Some(path)) => (TrainConfig::load_new(path, &cli.set)?, None),
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
    // An absent device is refused before a run directory is made or its log opened (one
    // line, no "run directory" line before it).
    cfg.train.device.resolve()?;
    let resume = run_dir.is_some();
    let (run, changes) = match run_dir {
        Some(run) => {
            let last = run.existing_checkpoint("last")?;
            // The config the checkpoint was trained with (older runs: the run's own config).
            let trained_with = if run.checkpoint_config().is_file() {
                run.checkpoint_config()
            } else {
                run.config()
            };
            let changes = TrainConfig::load(&trained_with, &[])
                .with_context(|| format!("cannot check {} against it", last.display()))?
                .check_resume(&cfg)?;
            (run, changes)
        }
        None => {
            outputs::check_output_dir(Path::new(&cfg.output.dir))?;
            let name = config_name(cli.config.as_deref().expect("config given"));
            (
                RunDir::create(Path::new(&cfg.output.dir), &name)?,
                Vec::new(),
            )
        }
    };
    let lock = match RunLock::acquire(run.root()) {
        Ok(lock) => lock,
        Err(e) => {
            run.discard();
            return Err(e.into());
        }
    };
    let stop = StopFlag::new();
    let started = (|| -> Result<Trainer> {
        logging::init(Some(&run.log()))?;
        tracing::info!("run directory {}", run.root().display());
        if !changes.is_empty() {
            tracing::info!("resumed with changed settings: {}", changes.join(", "));
        }
        lock.report_stale();
        stop.install_handlers()
            .context("cannot install the SIGINT/SIGTERM handlers")?;
        Trainer::new(cfg, run.clone(), resume)
    })();
    let mut trainer = match started {
        Ok(t) => t,
        Err(e) => {
            drop(lock);
            // A failed start (no CUDA, bad data, no log file) leaves no empty run directory
            // behind.
            run.discard();
            return Err(e);
        }
    };
    let summary = match trainer.train(&stop) {
        Ok(summary) => summary,
        Err(e) => {
            drop(trainer);
            drop(lock);
            // A new run that failed before its first checkpoint (a model diverging at once)
            // leaves no run directory behind, as a failed start does.
            run.discard();
            return Err(e);
        }
    };
    let dir = trainer.run_dir().root().display().to_string();
    if let StopReason::Interrupted(sig) = summary.reason {
        eprintln!(
            "interrupted by {} at step {} ({}); checkpoint written. Resume with: cign-train \
             --resume {dir}",
            signals::signal_name(sig),
            summary.state.step,
            trainer.position(),
        );
        drop(lock);
        std::process::exit(128 + sig);
    }
    let best = if summary.state.best_val_loss.is_finite() {
        format!("best validation loss {:.4}", summary.state.best_val_loss)
    } else {
        "no validation ran yet".to_string()
    };
    println!(
        "{}: step {} ({}), {best}; run directory {dir}",
        summary.reason.describe(),
        summary.state.step,
        trainer.position(),
    );
    Ok(())
}

fn main() -> ExitCode {
    cign_core::runtime::tune_malloc();
    cign_metrics::cli::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cign_metrics::cli::clap_exit(&e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", cign_metrics::cli::error_line(&e));
            ExitCode::from(cign_metrics::cli::USER_ERROR_EXIT)
        }
    }
}
