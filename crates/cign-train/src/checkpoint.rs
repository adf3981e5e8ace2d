//! Checkpoints: one safetensors file with the model (`model.<state-dict name>`, BatchNorm
//! running statistics included), the optimizer state (`optim.*`) and the loop position
//! (`meta.*`). Writes are atomic: a temporary file in the same directory, fsync, rename, fsync
//! of the directory, so a process killed at any moment leaves the previous file intact.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use cign_core::AdamW;
use tch::{nn::VarStore, Kind, Tensor};

/// Where the training loop stands; saved in every checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopState {
    /// Optimizer steps done.
    pub step: u64,
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Batches of the current epoch already done.
    pub batch_in_epoch: u64,
    /// Seed of the run (checked on resume).
    pub seed: u64,
    /// Best validation loss so far (`f64::INFINITY` when none yet).
    pub best_val_loss: f64,
    /// Seconds of training so far, across resumes.
    pub train_seconds: f64,
}

/// A checkpoint error, always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O or safetensors error.
    #[error("checkpoint {path}: {what}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
    /// The checkpoint does not fit the model.
    #[error("checkpoint {path} does not match the model of this config: {what}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Which tensor differs and how.
        what: String,
    },
}

const META_KEYS: [&str; 6] = [
    "meta.step",
    "meta.epoch",
    "meta.batch_in_epoch",
    "meta.seed",
    "meta.best_val_loss",
    "meta.train_seconds",
];

/// Writes model, optimizer and loop state to `path` atomically.
pub fn save(
    path: &Path,
    vs: &VarStore,
    optim: &AdamW,
    state: &LoopState,
) -> Result<(), CheckpointError> {
    let io = |what: String| CheckpointError::Io {
        path: path.to_path_buf(),
        what,
    };
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            (
                format!("model.{name}"),
                t.detach().to_device(tch::Device::Cpu),
            )
        })
        .collect();
    named.extend(
        optim
            .state_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.to_device(tch::Device::Cpu))),
    );
    let ints = [state.step, state.epoch, state.batch_in_epoch, state.seed];
    for (key, v) in META_KEYS.iter().zip(ints) {
        named.push((key.to_string(), Tensor::from(v as i64)));
    }
    named.push((META_KEYS[4].into(), Tensor::from(state.best_val_loss)));
    named.push((META_KEYS[5].into(), Tensor::from(state.train_seconds)));
    named.sort_by(|a, b| a.0.cmp(&b.0));

    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = path.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&named, &tmp).map_err(|e| io(format!("write failed: {e}")))?;
    File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(format!("fsync failed: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| io(format!("rename failed: {e}")))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads all tensors of a checkpoint by name.
fn read(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    if !path.is_file() {
        return Err(CheckpointError::Io {
            path: path.to_path_buf(),
            what: "no such file".into(),
        });
    }
    Tensor::read_safetensors(path)
        .map(|v| v.into_iter().collect())
        .map_err(|e| CheckpointError::Io {
            path: path.to_path_buf(),
            what: format!("not a readable safetensors file: {e}"),
        })
}

/// Copies the `model.*` tensors of a checkpoint into `vs`; every tensor must exist on both
/// sides with the same shape, otherwise the error says which one differs.
pub fn load_model(path: &Path, vs: &mut VarStore) -> Result<(), CheckpointError> {
    let tensors = read(path)?;
    load_model_from(path, &tensors, vs)
}

fn load_model_from(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    vs: &mut VarStore,
) -> Result<(), CheckpointError> {
    let mismatch = |what: String| CheckpointError::Mismatch {
        path: path.to_path_buf(),
        what,
    };
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let Some(saved) = tensors.get(&format!("model.{name}")) else {
            return Err(mismatch(format!(
                "tensor {name} is missing from the checkpoint"
            )));
        };
        if saved.size() != var.size() {
            return Err(mismatch(format!(
                "tensor {name} has shape {:?} in the checkpoint but {:?} in the model",
                saved.size(),
                var.size()
            )));
        }
    }
    if let Some(extra) = tensors
        .keys()
        .filter_map(|k| k.strip_prefix("model."))
        .find(|k| !vars.contains_key(*k))
    {
        return Err(mismatch(format!(
            "the checkpoint has tensor {extra}, which the model lacks"
        )));
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            var.copy_(&tensors[&format!("model.{name}")]);
        }
    });
    Ok(())
}

/// Loads model, optimizer state and loop state (for `--resume`).
pub fn load(
    path: &Path,
    vs: &mut VarStore,
    optim: &mut AdamW,
) -> Result<LoopState, CheckpointError> {
    let tensors = read(path)?;
    load_model_from(path, &tensors, vs)?;
    let optim_state: Vec<(String, Tensor)> = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("optim."))
        .map(|(k, t)| (k.clone(), t.to_device(vs.device())))
        .collect();
    optim
        .load_state_tensors(&optim_state)
        .map_err(|e| CheckpointError::Mismatch {
            path: path.to_path_buf(),
            what: format!("optimizer state: {e}"),
        })?;
    let get = |key: &str| -> Result<&Tensor, CheckpointError> {
        tensors.get(key).ok_or_else(|| CheckpointError::Io {
            path: path.to_path_buf(),
            what: format!("{key} is missing (not a cign-train checkpoint?)"),
        })
    };
    let int = |key: &str| -> Result<u64, CheckpointError> {
        Ok(get(key)?.to_kind(Kind::Int64).int64_value(&[]) as u64)
    };
    Ok(LoopState {
        step: int(META_KEYS[0])?,
        epoch: int(META_KEYS[1])?,
        batch_in_epoch: int(META_KEYS[2])?,
        seed: int(META_KEYS[3])?,
        best_val_loss: get(META_KEYS[4])?.double_value(&[]),
        train_seconds: get(META_KEYS[5])?.double_value(&[]),
    })
}
