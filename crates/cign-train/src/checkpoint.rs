//! Checkpoints and weights files.
//!
//! A checkpoint is one safetensors file with the model (`model.<state-dict name>`, BatchNorm
//! running statistics included), the optimizer state (`optim.*`) and the loop position
//! (`meta.*`). A weights file holds the model only, under the authors' state-dict names
//! (`discriminator.conv_1.weight`, `generator.linear_5.bias`, ...), so it also loads the
//! authors' own PyTorch models saved as safetensors (their `*.num_batches_tracked` counters
//! are ignored).
//!
//! Guarantees:
//! - Writes are atomic ([`cign_data::atomic::write_atomic`]): a process killed at any moment
//!   leaves the previous file intact, and a failed write (full disk) removes its temporary file.
//! - Nothing non-finite is ever written: every floating-point tensor (parameters, BatchNorm
//!   statistics, AdamW moments) is checked first, and the error names the tensor.
//! - Nothing non-finite is ever loaded: every tool that reads weights refuses NaN or infinite
//!   values, naming the tensor.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cign_core::{AdamW, LossValues};
use tch::{nn::VarStore, Kind, Tensor};

/// Where the training loop stands; saved in every checkpoint (and reported by `cign-eval
/// --json` for the checkpoint it evaluated).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LoopState {
    /// Optimizer steps done.
    pub step: u64,
    /// Epochs completed (0-based index of the current epoch). The authors' Lightning logs count
    /// from 0, so their "epoch 24" ends when this reaches 25.
    pub epoch: u64,
    /// Batches of the current epoch already done.
    pub batch_in_epoch: u64,
    /// Seed of the run (checked on resume).
    pub seed: u64,
    /// Best validation loss so far (`f64::INFINITY` when none yet).
    pub best_val_loss: f64,
    /// Seconds of training so far, across resumes.
    pub train_seconds: f64,
    /// An end-of-epoch (or `eval_every`) validation was due but interrupted by a signal: the
    /// resumed run validates first.
    pub pending_validation: bool,
    /// The model at `step` has been validated (so a run that ends here does not validate it
    /// again). Checkpoints of older versions lack it: read as false.
    pub validated: bool,
    /// The training terms summed since the last `metrics.jsonl` training record, so that a
    /// resumed run writes the record an uninterrupted one writes (not part of `cign-eval`'s
    /// report). Checkpoints of older versions lack it: read as empty.
    #[serde(skip)]
    pub log: LogSums,
}

/// The training terms summed over the steps since the last training record of
/// `metrics.jsonl`, whose mean the next record writes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogSums {
    /// Sum of each term over the steps.
    pub sum: LossValues,
    /// Steps summed.
    pub steps: u64,
    /// Real images of those steps.
    pub images: u64,
    /// Seconds those steps took (for the images per second of the record).
    pub seconds: f64,
}

impl LogSums {
    /// Adds one step's terms, images and seconds.
    pub fn add(&mut self, values: &LossValues, images: u64, seconds: f64) {
        self.sum = self.sum.add(values);
        self.steps += 1;
        self.images += images;
        self.seconds += seconds;
    }

    /// The mean terms of the steps summed (`None` when none was).
    pub fn mean(&self) -> Option<LossValues> {
        (self.steps > 0).then(|| self.sum.scale(1.0 / self.steps as f64))
    }
}

impl LoopState {
    /// The state of a run that has not taken a step.
    pub fn new(seed: u64) -> Self {
        Self {
            step: 0,
            epoch: 0,
            batch_in_epoch: 0,
            seed,
            best_val_loss: f64::INFINITY,
            train_seconds: 0.0,
            pending_validation: false,
            validated: false,
            log: LogSums::default(),
        }
    }

    /// Where the loop stands, for people: `start of training`, `end of epoch E` or
    /// `epoch E, batch B of N`, with epochs counted from 1 (the authors' Lightning logs count
    /// from 0). Every message of the trainer that names a position uses this one wording.
    ///
    /// `batches_per_epoch` is the sampler's number of batches per epoch (235 for MNIST at
    /// batch 256).
    pub fn position(&self, batches_per_epoch: u64) -> String {
        match (self.epoch, self.batch_in_epoch) {
            (0, 0) => "start of training".to_string(),
            (e, 0) => format!("end of epoch {e}"),
            (e, b) => format!("epoch {}, batch {b} of {batches_per_epoch}", e + 1),
        }
    }
}

/// A checkpoint or weights error, always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O or safetensors error (the message names the file only: it may be a checkpoint or a
    /// weights file).
    #[error("{path}: {what}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: String,
    },
    /// The checkpoint does not fit the model.
    #[error("{path} does not match the model of this config: {what}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Which tensor differs and how.
        what: String,
    },
    /// A tensor holds NaN or infinite values: refused, so a diverged model never replaces a
    /// good checkpoint and is never sampled.
    #[error("{path}: tensor {tensor} has {count} non-finite values{at}; {advice}")]
    NonFinite {
        /// The file (to be written, or read).
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// How many of its values are NaN or infinite.
        count: i64,
        /// ` at step N`, when known.
        at: String,
        /// What to do about it.
        advice: &'static str,
    },
}

const META_STEP: &str = "meta.step";
const META_EPOCH: &str = "meta.epoch";
const META_BATCH: &str = "meta.batch_in_epoch";
const META_SEED: &str = "meta.seed";
const META_BEST: &str = "meta.best_val_loss";
const META_SECONDS: &str = "meta.train_seconds";
/// Absent in checkpoints of older versions (read as false).
const META_PENDING: &str = "meta.pending_validation";
/// Absent in checkpoints of older versions (read as false).
const META_VALIDATED: &str = "meta.validated";
/// The [`LogSums`]; absent in checkpoints of older versions (read as empty).
const META_LOG_SUM: &str = "meta.log_sum";
const META_LOG_STEPS: &str = "meta.log_steps";
const META_LOG_IMAGES: &str = "meta.log_images";
const META_LOG_SECONDS: &str = "meta.log_seconds";

/// The first floating-point tensor of `named` with NaN or infinite values, with their count.
pub fn first_non_finite<'a, I>(named: I) -> Option<(String, i64)>
where
    I: IntoIterator<Item = (&'a str, &'a Tensor)>,
{
    named.into_iter().find_map(|(name, t)| {
        if !t.is_floating_point() {
            return None;
        }
        let bad = t.isfinite().logical_not().sum(Kind::Int64).int64_value(&[]);
        (bad > 0).then(|| (name.to_string(), bad))
    })
}

/// Writes model, optimizer and loop state to `path` atomically, after checking that every
/// floating-point tensor is finite.
///
/// # Errors
///
/// [`CheckpointError::NonFinite`] (nothing is written, the previous file stays), or
/// [`CheckpointError::Io`] when the file cannot be written (its temporary file is removed).
pub fn save(
    path: &Path,
    vs: &VarStore,
    optim: &AdamW,
    state: &LoopState,
) -> Result<(), CheckpointError> {
    let mut named: Vec<(String, Tensor)> = model_tensors(vs, "model.");
    named.extend(
        optim
            .state_tensors()
            .into_iter()
            .map(|(n, t)| (n, t.to_device(tch::Device::Cpu))),
    );
    if let Some((tensor, count)) = first_non_finite(named.iter().map(|(n, t)| (n.as_str(), t))) {
        return Err(CheckpointError::NonFinite {
            path: path.to_path_buf(),
            tensor,
            count,
            at: format!(" at step {}", state.step),
            advice: "the model diverged, so it was not saved (the file keeps what it held)",
        });
    }
    let ints = [
        (META_STEP, state.step),
        (META_EPOCH, state.epoch),
        (META_BATCH, state.batch_in_epoch),
        (META_SEED, state.seed),
        (META_PENDING, state.pending_validation as u64),
        (META_VALIDATED, state.validated as u64),
        (META_LOG_STEPS, state.log.steps),
        (META_LOG_IMAGES, state.log.images),
    ];
    for (key, v) in ints {
        named.push((key.to_string(), Tensor::from(v as i64)));
    }
    named.push((META_BEST.into(), Tensor::from(state.best_val_loss)));
    named.push((META_SECONDS.into(), Tensor::from(state.train_seconds)));
    named.push((META_LOG_SECONDS.into(), Tensor::from(state.log.seconds)));
    named.push((
        META_LOG_SUM.into(),
        Tensor::from_slice(&state.log.sum.to_array()),
    ));
    write_named(path, named)
}

/// Writes the model's variables alone under their state-dict names (a weights file: no
/// optimizer, no loop state), atomically, after checking that they are finite.
///
/// # Errors
///
/// As [`save`].
pub fn save_weights(path: &Path, vs: &VarStore) -> Result<(), CheckpointError> {
    let named = model_tensors(vs, "");
    if let Some((tensor, count)) = first_non_finite(named.iter().map(|(n, t)| (n.as_str(), t))) {
        return Err(CheckpointError::NonFinite {
            path: path.to_path_buf(),
            tensor,
            count,
            at: String::new(),
            advice: "a model with non-finite weights is not exported",
        });
    }
    write_named(path, named)
}

fn model_tensors(vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    vs.variables()
        .into_iter()
        .map(|(name, t)| {
            (
                format!("{prefix}{name}"),
                t.detach().to_device(tch::Device::Cpu),
            )
        })
        .collect()
}

fn write_named(path: &Path, mut named: Vec<(String, Tensor)>) -> Result<(), CheckpointError> {
    let io = |what: String| CheckpointError::Io {
        path: path.to_path_buf(),
        what,
    };
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
    }
    cign_data::atomic::write_atomic(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(std::io::Error::other)
    })
    .map_err(|e| io(format!("write failed: {e}")))
}

/// Reads all tensors of a safetensors file by name.
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

/// Copies the model tensors of a checkpoint (`model.*`) or of a weights file (plain state-dict
/// names) into `vs`. Every variable must be present with the same shape and finite values;
/// nothing is copied unless all checks pass.
///
/// # Errors
///
/// [`CheckpointError::Io`] for an unreadable file, [`CheckpointError::Mismatch`] naming every
/// missing, unexpected or mis-shaped tensor, [`CheckpointError::NonFinite`] naming the first
/// tensor with NaN or infinite values.
pub fn load_model(path: &Path, vs: &mut VarStore) -> Result<(), CheckpointError> {
    load_model_and_state(path, vs).map(|_| ())
}

/// As [`load_model`], and returns the loop state of a checkpoint (`None` for a weights file,
/// which has no `meta.*`): which step and epoch the model is from.
///
/// # Errors
///
/// As [`load_model`], plus a checkpoint whose `meta.*` tensors are incomplete or out of
/// range (not one number each, a negative step, epoch or batch, a NaN best loss).
pub fn load_model_and_state(
    path: &Path,
    vs: &mut VarStore,
) -> Result<Option<LoopState>, CheckpointError> {
    let tensors = read(path)?;
    load_model_from(path, &tensors, vs)?;
    if tensors.keys().any(|k| k.starts_with("meta.")) {
        loop_state(path, &tensors).map(Some)
    } else {
        Ok(None)
    }
}

/// The `meta.*` tensors of a checkpoint as a [`LoopState`].
fn loop_state(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
) -> Result<LoopState, CheckpointError> {
    let get = |key: &str| -> Result<&Tensor, CheckpointError> {
        tensors.get(key).ok_or_else(|| CheckpointError::Io {
            path: path.to_path_buf(),
            what: format!("{key} is missing (not a cign-train checkpoint?)"),
        })
    };
    let bad = |key: &str, what: String| CheckpointError::Io {
        path: path.to_path_buf(),
        what: format!("{key} {what} (a damaged checkpoint?)"),
    };
    // One value, as written by `save`; anything else is a damaged or foreign file.
    let scalar = |key: &str| -> Result<&Tensor, CheckpointError> {
        let t = get(key)?;
        if t.numel() != 1 || t.kind() == Kind::Bool {
            return Err(bad(
                key,
                format!(
                    "has shape {:?} and kind {:?}, expected one number",
                    t.size(),
                    t.kind()
                ),
            ));
        }
        Ok(t)
    };
    // The seed is a u64 stored bit for bit in an i64, so any value is valid.
    let bits = |key: &str| -> Result<u64, CheckpointError> {
        Ok(scalar(key)?.to_kind(Kind::Int64).int64_value(&[]) as u64)
    };
    let count = |key: &str| -> Result<u64, CheckpointError> {
        let v = scalar(key)?.to_kind(Kind::Int64).int64_value(&[]);
        u64::try_from(v).map_err(|_| bad(key, format!("is {v}, expected a count >= 0")))
    };
    let best = scalar(META_BEST)?.double_value(&[]);
    if best.is_nan() {
        // Infinity is the value before the first validation; NaN would never improve.
        return Err(bad(META_BEST, "is NaN".into()));
    }
    let seconds = scalar(META_SECONDS)?.double_value(&[]);
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(bad(
            META_SECONDS,
            format!("is {seconds}, expected seconds >= 0"),
        ));
    }
    // Keys that older versions did not write: absent reads as `None`.
    let optional = |key: &str| tensors.contains_key(key);
    let flag = |key: &str| -> Result<bool, CheckpointError> {
        Ok(optional(key) && scalar(key)?.to_kind(Kind::Int64).int64_value(&[]) != 0)
    };
    let log = if optional(META_LOG_SUM) {
        let sum = get(META_LOG_SUM)?;
        let values: Vec<f64> = if sum.numel() == LossValues::NAMES.len() && sum.is_floating_point()
        {
            Vec::<f64>::try_from(sum.to_kind(Kind::Double).flatten(0, -1)).unwrap_or_default()
        } else {
            Vec::new()
        };
        if values.len() != LossValues::NAMES.len() || values.iter().any(|v| !v.is_finite()) {
            return Err(bad(
                META_LOG_SUM,
                format!(
                    "is not {} finite numbers ({})",
                    LossValues::NAMES.len(),
                    LossValues::NAMES.join(", ")
                ),
            ));
        }
        let log_seconds = scalar(META_LOG_SECONDS)?.double_value(&[]);
        if !(log_seconds.is_finite() && log_seconds >= 0.0) {
            return Err(bad(
                META_LOG_SECONDS,
                format!("is {log_seconds}, expected seconds >= 0"),
            ));
        }
        LogSums {
            sum: LossValues::from_array(values.try_into().expect("six values, checked above")),
            steps: count(META_LOG_STEPS)?,
            images: count(META_LOG_IMAGES)?,
            seconds: log_seconds,
        }
    } else {
        LogSums::default()
    };
    Ok(LoopState {
        step: count(META_STEP)?,
        epoch: count(META_EPOCH)?,
        batch_in_epoch: count(META_BATCH)?,
        seed: bits(META_SEED)?,
        best_val_loss: best,
        train_seconds: seconds,
        pending_validation: flag(META_PENDING)?,
        validated: flag(META_VALIDATED)?,
        log,
    })
}

fn load_model_from(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    vs: &mut VarStore,
) -> Result<(), CheckpointError> {
    // A checkpoint prefixes the model with `model.`; a weights file has the plain names.
    let is_checkpoint = tensors.keys().any(|k| k.starts_with("meta."));
    let named: BTreeMap<String, &Tensor> = if is_checkpoint {
        tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix("model.").map(|n| (n.to_string(), t)))
            .collect()
    } else {
        tensors.iter().map(|(k, t)| (k.clone(), t)).collect()
    };
    if let Some((tensor, count)) = first_non_finite(named.iter().map(|(n, t)| (n.as_str(), *t))) {
        return Err(CheckpointError::NonFinite {
            path: path.to_path_buf(),
            tensor,
            count,
            at: String::new(),
            advice: "this model diverged and cannot be used",
        });
    }
    cign_core::load_named_into(vs, &named, &path.display().to_string()).map_err(|e| {
        CheckpointError::Mismatch {
            path: path.to_path_buf(),
            what: match e {
                cign_core::CoreError::Load { problems, .. } => problems,
                other => other.to_string(),
            },
        }
    })
}

/// Loads model, optimizer state and loop state (for `--resume`).
///
/// # Errors
///
/// As [`load_model`], plus a missing `meta.*` or mismatched optimizer state.
pub fn load(
    path: &Path,
    vs: &mut VarStore,
    optim: &mut AdamW,
) -> Result<LoopState, CheckpointError> {
    let tensors = read(path)?;
    if !tensors.contains_key(META_STEP) {
        return Err(CheckpointError::Io {
            path: path.to_path_buf(),
            what: format!("{META_STEP} is missing (not a cign-train checkpoint?)"),
        });
    }
    load_model_from(path, &tensors, vs)?;
    let optim_state: Vec<(String, Tensor)> = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("optim."))
        .map(|(k, t)| (k.clone(), t.to_device(vs.device())))
        .collect();
    if let Some((tensor, count)) =
        first_non_finite(optim_state.iter().map(|(n, t)| (n.as_str(), t)))
    {
        return Err(CheckpointError::NonFinite {
            path: path.to_path_buf(),
            tensor,
            count,
            at: String::new(),
            advice: "the optimizer state diverged; this checkpoint cannot be resumed",
        });
    }
    optim
        .load_state_tensors(&optim_state)
        .map_err(|e| CheckpointError::Mismatch {
            path: path.to_path_buf(),
            what: format!("optimizer state: {e}"),
        })?;
    loop_state(path, &tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint of a one-variable model with the `meta.*` values of `state`, then `patch`
    /// written over one of them.
    fn checkpoint_with(dir: &Path, patch: (&str, Tensor)) -> std::path::PathBuf {
        let state = LoopState::new(7);
        let mut named: Vec<(String, Tensor)> = vec![(
            "model.w".into(),
            Tensor::ones([2], (Kind::Float, tch::Device::Cpu)),
        )];
        for (key, v) in [
            (META_STEP, state.step as i64),
            (META_EPOCH, state.epoch as i64),
            (META_BATCH, state.batch_in_epoch as i64),
            (META_SEED, state.seed as i64),
        ] {
            named.push((key.into(), Tensor::from(v)));
        }
        named.push((META_BEST.into(), Tensor::from(f64::INFINITY)));
        named.push((META_SECONDS.into(), Tensor::from(0.0f64)));
        named.retain(|(k, _)| k != patch.0);
        named.push((patch.0.to_string(), patch.1));
        let path = dir.join("c.safetensors");
        Tensor::write_safetensors(&named, &path).unwrap();
        path
    }

    #[test]
    fn damaged_meta_values_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let vs = || {
            let vs = VarStore::new(tch::Device::Cpu);
            let _ = vs.root().zeros("w", &[2]);
            vs
        };
        // The untouched file loads, with the seed's bits kept (a u64 above i64::MAX included).
        let p = checkpoint_with(dir.path(), (META_SEED, Tensor::from(-1i64)));
        let state = load_model_and_state(&p, &mut vs()).unwrap().unwrap();
        assert_eq!(state.seed, u64::MAX);
        for (key, value) in [
            (META_EPOCH, Tensor::from(-1i64)),
            (META_STEP, Tensor::from_slice(&[1i64, 2])),
            (
                META_BATCH,
                Tensor::zeros([0], (Kind::Int64, tch::Device::Cpu)),
            ),
            (META_BEST, Tensor::from(f64::NAN)),
            (META_SECONDS, Tensor::from(-5.0f64)),
            (META_LOG_SUM, Tensor::from_slice(&[1.0f64, 2.0])),
            (META_LOG_SUM, Tensor::from_slice(&[f64::NAN; 6])),
        ] {
            let p = checkpoint_with(dir.path(), (key, value));
            let err = load_model_and_state(&p, &mut vs()).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("damaged"), "{key}: {err}");
        }
    }

    #[test]
    fn the_loop_state_survives_a_checkpoint_and_older_checkpoints_load() {
        let dir = tempfile::tempdir().unwrap();
        let vs = VarStore::new(tch::Device::Cpu);
        let _ = vs.root().zeros("w", &[2]);
        let optim = AdamW::new(&vs, cign_core::AdamWConfig::default());
        let mut state = LoopState::new(3);
        (state.step, state.epoch, state.batch_in_epoch) = (7, 1, 2);
        (state.best_val_loss, state.train_seconds) = (1.5, 12.25);
        (state.pending_validation, state.validated) = (false, true);
        let terms = LossValues {
            rec: 1.0,
            idem_noise: 2.0,
            tight_noise: 3.0,
            idem_mismatch: 4.0,
            tight_mismatch: 5.0,
            total: 6.0,
        };
        state.log.add(&terms, 8, 0.5);
        state.log.add(&terms, 8, 0.25);
        let path = dir.path().join("last.safetensors");
        save(&path, &vs, &optim, &state).unwrap();
        let mut vs2 = VarStore::new(tch::Device::Cpu);
        let _ = vs2.root().zeros("w", &[2]);
        assert_eq!(load_model_and_state(&path, &mut vs2).unwrap(), Some(state));
        // A checkpoint of an older version, without the newer keys: not validated, no sums.
        let old = checkpoint_with(dir.path(), (META_STEP, Tensor::from(4i64)));
        let loaded = load_model_and_state(&old, &mut vs2).unwrap().unwrap();
        assert!(!loaded.validated && !loaded.pending_validation);
        assert_eq!(loaded.log, LogSums::default());
    }

    #[test]
    fn positions_count_epochs_from_one() {
        let mut s = LoopState::new(0);
        assert_eq!(s.position(235), "start of training");
        (s.epoch, s.batch_in_epoch) = (3, 221);
        assert_eq!(s.position(235), "epoch 4, batch 221 of 235");
        (s.epoch, s.batch_in_epoch) = (4, 0);
        assert_eq!(s.position(235), "end of epoch 4");
    }
}
