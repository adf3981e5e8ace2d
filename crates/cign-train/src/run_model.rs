//! Loading a trained model back from a run directory (for sampling and evaluation).

use anyhow::{bail, Result};
use tch::Device;

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::run_dir::RunDir;
use crate::trainer::ModelState;

/// A model restored from `RUN_DIR/checkpoints/<which>.safetensors` with the run's config.
pub struct RunModel {
    /// The run's resolved config.
    pub config: TrainConfig,
    /// Model, variables and (unused) optimizer.
    pub state: ModelState,
    /// The checkpoint file read.
    pub checkpoint: std::path::PathBuf,
}

impl RunModel {
    /// Opens `run`, builds its model on `device` and loads checkpoint `which` (`best` or `last`).
    pub fn load(run: &std::path::Path, which: &str, device: Device) -> Result<Self> {
        if which != "best" && which != "last" {
            bail!("--checkpoint {which}: expected best or last");
        }
        let run = RunDir::open(run)?;
        let config = TrainConfig::load(&run.config(), &[])?;
        let path = run.existing_checkpoint(which)?;
        let mut state = ModelState::new(&config, device)?;
        checkpoint::load_model(&path, &mut state.vs)?;
        Ok(Self {
            config,
            state,
            checkpoint: path,
        })
    }

    /// Checks that `label` is a class of this model.
    pub fn check_label(&self, label: i64) -> Result<()> {
        let n = self.config.model.num_classes;
        if !self.config.model.conditioning.is_conditional() {
            bail!("--label {label}: this run's model is unconditional (model.conditioning = none)");
        }
        if !(0..n).contains(&label) {
            bail!("--label {label} is outside 0..{n}");
        }
        Ok(())
    }
}
