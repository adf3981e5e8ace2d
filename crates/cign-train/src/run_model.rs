//! Loading a trained model back for sampling and evaluation: from a run directory
//! (`--run DIR [--checkpoint best|last]`) or from a weights file with its config
//! (`--weights FILE.safetensors --config CONFIG.toml`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use cign_core::Precision;
use tch::Device;

use crate::checkpoint::{self, LoopState};
use crate::config::TrainConfig;
use crate::run_dir::RunDir;
use crate::trainer::ModelState;

/// Where the model comes from: the arguments shared by `cign-sample` and `cign-eval`. Exactly
/// one of `--run` (with `--checkpoint`) and `--weights` (with `--config`) is required, and the
/// usage line says so: `<--run <RUN_DIR>|--weights <FILE.safetensors>>`.
#[derive(Debug, Clone, clap::Args)]
// Not the derive's group of every field (which `--precision` alone would satisfy): a group of
// the two sources.
#[group(skip)]
#[command(group(clap::ArgGroup::new("model").required(true).args(["run", "weights"])))]
pub struct ModelArgs {
    /// A run directory (holds config.toml and checkpoints/).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["weights", "config"])]
    pub run: Option<PathBuf>,
    /// Which checkpoint of --run: best (the default) or last.
    #[arg(long, value_parser = ["best", "last"], requires = "run", conflicts_with = "weights")]
    pub checkpoint: Option<String>,
    /// A weights file: the model's tensors under the authors' state-dict names (as written by
    /// `cign-export`, e.g. models/large_channel_mnist.safetensors, or the authors' own PyTorch
    /// model saved with safetensors); needs --config.
    #[arg(long, value_name = "FILE.safetensors", requires = "config")]
    pub weights: Option<PathBuf>,
    /// The config the weights were trained with (only its [model] and [data] sections and
    /// train.precision, the default of --precision, are used).
    #[arg(long, value_name = "CONFIG.toml", requires = "weights")]
    pub config: Option<PathBuf>,
    /// Arithmetic of the passes: fp32, or bf16 (convolutions and linears in bfloat16 through
    /// libtorch's autocast). Weights are float32 either way, so any model runs in either.
    /// Default: the config's train.precision.
    #[arg(long, value_name = "fp32|bf16")]
    pub precision: Option<Precision>,
}

impl ModelArgs {
    /// A short name of the source for reports: the run directory or the weights file.
    pub fn describe(&self) -> String {
        match (&self.run, &self.weights) {
            (Some(run), _) => run.display().to_string(),
            (None, Some(w)) => w.display().to_string(),
            (None, None) => String::new(),
        }
    }

    /// The files the model is read from, each with a name for messages: the run's
    /// `config.toml` and checkpoint, or the weights file and its config. Outputs must be none
    /// of them ([`crate::outputs::check_outputs`]).
    pub fn inputs(&self) -> Vec<(String, PathBuf)> {
        match (&self.run, &self.weights, &self.config) {
            (Some(run), _, _) => run_inputs(run, self.checkpoint.as_deref().unwrap_or("best")),
            (None, weights, config) => weights
                .iter()
                .map(|w| ("--weights".to_string(), w.clone()))
                .chain(config.iter().map(|c| ("--config".to_string(), c.clone())))
                .collect(),
        }
    }

    /// Loads the model on `device`, in `--precision` if given (else the config's
    /// `train.precision`).
    ///
    /// # Errors
    ///
    /// See [`RunModel::load`] and [`RunModel::from_weights`]; bf16 where libtorch's autocast
    /// cannot run ([`Precision::check_device`]).
    pub fn load(&self, device: Device) -> Result<RunModel> {
        let mut rm = match (&self.run, &self.weights, &self.config) {
            (Some(run), _, _) => {
                RunModel::load(run, self.checkpoint.as_deref().unwrap_or("best"), device)?
            }
            (None, Some(w), Some(c)) => RunModel::from_weights(w, c, device)?,
            _ => {
                bail!("give --run RUN_DIR, or --weights FILE.safetensors with --config CONFIG.toml")
            }
        };
        if let Some(p) = self.precision {
            rm.set_precision(p)?;
        }
        Ok(rm)
    }
}

/// The files a command reads from run directory `run` when it loads checkpoint `which`
/// (`best` or `last`), each with a name for messages: its `config.toml` and the checkpoint.
pub fn run_inputs(run: &Path, which: &str) -> Vec<(String, PathBuf)> {
    let dir = RunDir::open_unchecked(run);
    vec![
        ("the config of --run".into(), dir.config()),
        (
            format!("the {which} checkpoint of --run"),
            dir.checkpoint(which),
        ),
    ]
}

/// A model restored from a checkpoint or a weights file, with its config.
pub struct RunModel {
    /// The run's resolved config (or the config given with the weights).
    pub config: TrainConfig,
    /// Model, variables and (unused) optimizer.
    pub state: ModelState,
    /// The file read.
    pub checkpoint: PathBuf,
    /// Where training stood when the file was written (step, epoch, seconds...): `Some` for a
    /// checkpoint of a run, `None` for a weights file.
    pub loop_state: Option<LoopState>,
}

impl RunModel {
    /// Opens `run`, builds its model on `device` and loads checkpoint `which` (`best` or `last`).
    ///
    /// # Errors
    ///
    /// No such run or checkpoint, a checkpoint of another architecture, non-finite weights.
    pub fn load(run: &Path, which: &str, device: Device) -> Result<Self> {
        if which != "best" && which != "last" {
            bail!("--checkpoint {which}: expected best or last");
        }
        let run = RunDir::open(run)?;
        let config = TrainConfig::load(&run.config(), &[])?;
        let path = run.existing_checkpoint(which)?;
        Self::from_file(config, path, device)
    }

    /// Builds the model of `config` on `device` and loads a weights file (plain state-dict
    /// names) or a checkpoint (`model.*`) into it.
    ///
    /// # Errors
    ///
    /// An unreadable config or file, tensors that do not fit the config's model (each one
    /// named), non-finite weights.
    pub fn from_weights(weights: &Path, config: &Path, device: Device) -> Result<Self> {
        let config = TrainConfig::load(config, &[])?;
        Self::from_file(config, weights.to_path_buf(), device)
    }

    fn from_file(config: TrainConfig, path: PathBuf, device: Device) -> Result<Self> {
        let mut state = ModelState::new(&config, device)?;
        let loop_state = checkpoint::load_model_and_state(&path, &mut state.vs)?;
        Ok(Self {
            config,
            state,
            checkpoint: path,
            loop_state,
        })
    }

    /// Runs the model's passes in `precision` from now on (the weights stay float32).
    ///
    /// # Errors
    ///
    /// bf16 where libtorch's autocast cannot run on the model's device.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        self.state.model.set_precision(precision)?;
        Ok(())
    }

    /// Checks that `label` is a class of this model.
    ///
    /// # Errors
    ///
    /// The model is unconditional, or `label` is outside `0..num_classes`.
    pub fn check_label(&self, label: i64) -> Result<()> {
        let n = self.config.model.num_classes;
        if !self.config.model.conditioning.is_conditional() {
            bail!("--label {label}: this model is unconditional (model.conditioning = none)");
        }
        if !(0..n).contains(&label) {
            bail!(
                "--label {label}: not a class of this model (its classes are 0 to {})",
                n - 1
            );
        }
        Ok(())
    }
}
