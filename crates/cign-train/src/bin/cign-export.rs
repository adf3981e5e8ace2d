//! `cign-export --run RUN_DIR [--checkpoint best|last] --out FILE.safetensors`: writes the
//! model of a checkpoint as a weights file (fp32 tensors under the authors' state-dict names,
//! no optimizer or loop state), the format `cign-sample --weights` and `cign-eval --weights`
//! read together with the run's config.

use std::path::PathBuf;

use anyhow::Result;
use cign_train::checkpoint::save_weights;
use cign_train::outputs::check_outputs;
use cign_train::run_model::{run_inputs, RunModel};

/// Export a checkpoint's model as a weights file.
#[derive(Debug, clap::Parser)]
#[command(name = "cign-export", version)]
struct Cli {
    /// The run directory.
    #[arg(long, value_name = "RUN_DIR")]
    run: PathBuf,
    /// Which checkpoint: best or last.
    #[arg(long, default_value = "best", value_parser = ["best", "last"])]
    checkpoint: String,
    /// The weights file to write (not inside the run's checkpoints/ folder, whose files only
    /// cign-train writes).
    #[arg(long, value_name = "FILE.safetensors")]
    out: PathBuf,
}

fn run(cli: Cli) -> Result<()> {
    let inputs = run_inputs(&cli.run, &cli.checkpoint);
    let written = check_outputs(&[("--out", &cli.out)], &inputs)?;
    let rm = RunModel::load(&cli.run, &cli.checkpoint, tch::Device::Cpu)?;
    save_weights(&cli.out, &rm.state.vs)?;
    written.keep();
    println!(
        "wrote {} ({} tensors from {}); load it with --weights {} --config {}",
        cli.out.display(),
        rm.state.vs.variables().len(),
        rm.checkpoint.display(),
        cli.out.display(),
        cli.run.join("config.toml").display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    cign_metrics::cli::main_with("info", run)
}
