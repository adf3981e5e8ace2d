//! The training loop: sampler -> objective -> backward -> AdamW, with periodic validation on the
//! test split, `last`/`best` checkpoints, periodic `last` checkpoints between validations,
//! sample grids, `metrics.jsonl`, `loss.png`, a progress bar, and stopping on epochs,
//! `max_steps`, `time_budget_minutes` or a signal (SIGTERM, Ctrl-C).
//!
//! What a run guarantees:
//! - A signal (SIGTERM or the first Ctrl-C) finishes the current step and writes `last` at once,
//!   without validating; a validation interrupted by it is redone first when the run resumes.
//! - `last` is the commit point: whatever belongs to a step (its `metrics.jsonl` records, its
//!   epoch snapshot and sample grid, `best`) is written before the `last` of that step, so a
//!   process killed at any moment resumes from a `last` whose outputs all exist, and what was
//!   written after it is written again (records dropped first, files replaced).
//! - A run interrupted anywhere (signal or kill -9) resumes from its `last` checkpoint and,
//!   on the CPU, ends bit for bit where an uninterrupted run ends: shuffling, noise, mismatched
//!   labels and dropout masks are all drawn from per-batch seeds.
//! - No non-finite loss, parameter, BatchNorm statistic or optimizer moment is ever written to
//!   a checkpoint; the run stops with an error naming the quantity and the step instead.

use std::time::Instant;

use anyhow::{bail, Result};
use cign_core::{AdamW, CignModel, LossValues, Objective};
use cign_data::{BatchSampler, Dataset, SamplerConfig, Split};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::{nn::VarStore, Device, Tensor};

use crate::checkpoint::{self, CheckpointError, LoopState};
use crate::config::{ConfigError, TrainConfig};
use crate::images::write_grid;
use crate::plot::write_loss_plot;
use crate::run_dir::{Curve, MetricsLog, RunDir};
use crate::sampling::class_grid_rows;
use crate::signals::StopFlag;

/// Loads the data directory of the config, fetching the files when it is empty.
///
/// # Errors
///
/// The dataset cannot be fetched or verified.
pub fn data_dir(cfg: &TrainConfig) -> Result<std::path::PathBuf> {
    let kind = cfg.data.dataset;
    let dir = if cfg.data.dir.is_empty() {
        cign_data::default_data_dir(kind)
    } else {
        std::path::PathBuf::from(&cfg.data.dir)
    };
    cign_data::fetch::ensure_dataset(kind, &dir)?;
    Ok(dir)
}

/// The model, its variables and the optimizer, built from a config on a device.
pub struct ModelState {
    /// The variables (parameters and BatchNorm statistics).
    pub vs: VarStore,
    /// The network `f`.
    pub model: CignModel,
    /// The optimizer.
    pub optim: AdamW,
}

impl ModelState {
    /// Builds a freshly initialised model (seeded by `train.seed`).
    ///
    /// # Errors
    ///
    /// The model config is invalid, or libtorch fails on the device.
    pub fn new(cfg: &TrainConfig, device: Device) -> Result<Self> {
        tch::manual_seed(cfg.train.seed as i64);
        let vs = VarStore::new(device);
        let mut model = CignModel::new(&vs.root(), &cfg.model)?;
        model.set_precision(cfg.train.precision)?;
        let optim = AdamW::new(&vs, cfg.optim.clone());
        Ok(Self { vs, model, optim })
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize)]
struct MetricsRecord<'a> {
    kind: &'a str,
    step: u64,
    /// Completed epochs.
    epoch: u64,
    /// Batches done in the epoch under way: 0 right after epoch `epoch` ended, so a
    /// validation with 0 here is the end-of-epoch one (`train.eval_every` and carried-over
    /// validations fall mid-epoch).
    batch_in_epoch: u64,
    #[serde(flatten)]
    loss: LossValues,
    lr: f64,
    images_per_s: f64,
    seconds: f64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// All configured epochs done.
    Epochs,
    /// `train.max_steps` reached.
    MaxSteps,
    /// `train.time_budget_minutes` used up.
    TimeBudget,
    /// Interrupted by a signal (the number: 2 for SIGINT, 15 for SIGTERM).
    Interrupted(i32),
}

impl StopReason {
    /// Why the run stopped, in words for the final line (`run.log` keeps the variant name).
    pub fn describe(&self) -> String {
        match self {
            StopReason::Epochs => "finished: all epochs done".into(),
            StopReason::MaxSteps => "stopped: train.max_steps reached".into(),
            StopReason::TimeBudget => "stopped: train.time_budget_minutes used up".into(),
            StopReason::Interrupted(sig) => {
                format!("interrupted by {}", crate::signals::signal_name(*sig))
            }
        }
    }
}

/// Summary of a finished (or stopped) run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Why it stopped.
    pub reason: StopReason,
    /// The loop position at the end.
    pub state: LoopState,
}

/// The training and validation images of a run, on its device.
pub struct TrainData {
    /// Training images `[N, 1, 28, 28]` in [-1, 1].
    pub train_x: Tensor,
    /// Training labels `[N]` (int64).
    pub train_y: Tensor,
    /// Validation (test split) images, cut to `train.eval_max_images` when set.
    pub val_x: Tensor,
    /// Validation labels.
    pub val_y: Tensor,
}

impl TrainData {
    /// Loads (fetching if needed) the config's dataset onto `device` and checks that the batch
    /// size fits it.
    ///
    /// # Errors
    ///
    /// The data cannot be fetched or read; `train.batch_size` exceeds the training images, or
    /// would leave a last batch of one image (BatchNorm cannot train on it).
    pub fn load(cfg: &TrainConfig, device: Device) -> Result<Self> {
        let dir = data_dir(cfg)?;
        let kind = cfg.data.dataset;
        let train = Dataset::load(kind, Split::Train, &dir)?;
        let test = Dataset::load(kind, Split::Test, &dir)?;
        tracing::info!(
            "{kind}: {} training and {} test images from {}",
            train.len(),
            test.len(),
            dir.display()
        );
        check_batch_size(cfg, train.len())?;
        let (mut val_x, mut val_y) = (test.images_tensor(device), test.labels_tensor(device));
        if cfg.train.eval_max_images > 0 && cfg.train.eval_max_images < test.len() {
            val_x = val_x.narrow(0, 0, cfg.train.eval_max_images as i64);
            val_y = val_y.narrow(0, 0, cfg.train.eval_max_images as i64);
        }
        Ok(Self {
            train_x: train.images_tensor(device),
            train_y: train.labels_tensor(device),
            val_x,
            val_y,
        })
    }

    fn train_len(&self) -> usize {
        self.train_x.size()[0] as usize
    }
}

/// Checks `train.batch_size` against the number of training images: at most all of them, and
/// no epoch may end in a batch of one image (BatchNorm's variance of one sample is undefined).
///
/// # Errors
///
/// [`ConfigError::Invalid`] naming the key and the allowed range.
pub fn check_batch_size(cfg: &TrainConfig, n_train: usize) -> Result<(), ConfigError> {
    let b = cfg.train.batch_size;
    let invalid = |what: String| ConfigError::Invalid {
        key: "train.batch_size",
        value: b.to_string(),
        what,
    };
    if b > n_train {
        return Err(invalid(format!(
            "must be at most the {n_train} training images"
        )));
    }
    if !cfg.data.drop_last && n_train % b == 1 {
        return Err(invalid(format!(
            "{n_train} training images leave a last batch of 1 image, which BatchNorm cannot \
             train on: choose another batch size or set data.drop_last = true"
        )));
    }
    Ok(())
}

/// The samplers of a run: training batches and validation batches.
pub struct Samplers {
    /// Training batches (noise `data.train_noise_std`, shuffled per epoch).
    pub train: BatchSampler,
    /// Validation batches: no training noise, fixed order, and one fixed draw of noise and
    /// mismatched labels for every validation. A fixed draw makes successive validations paired
    /// comparisons of the model alone, so "best" is the checkpoint with the lowest expected
    /// loss up to model changes, not up to a lucky draw. (The authors redraw the noise at every
    /// validation; the expectation is the same, only the variance of the selection differs.)
    pub val: BatchSampler,
}

impl Samplers {
    /// Builds both samplers from the config.
    ///
    /// # Errors
    ///
    /// The sampler settings are invalid.
    pub fn new(cfg: &TrainConfig) -> Result<Self> {
        let sampler_cfg = cfg.sampler_config();
        let train = BatchSampler::new(sampler_cfg.clone())?;
        let val = BatchSampler::new(SamplerConfig {
            noise_std: 0.0,
            drop_last: false,
            seed: cfg.train.seed ^ 0x005E_ED0F_7E57,
            ..sampler_cfg
        })?;
        Ok(Self { train, val })
    }
}

/// A hook called at each point where the trainer has written something durable and at the start
/// of each validation, with a label (`"validation"`, `"train record"`, `"validation record"`,
/// `"best"`, `"last"`, `"snapshot"`, `"samples"`) and the loop state; an error it returns stops
/// the run there, as a process killed at that moment would (tests of the crash windows).
type EventHook = Box<dyn FnMut(&str, &LoopState) -> Result<()>>;

/// Everything a run needs, set up from a config and a run directory.
pub struct Trainer {
    cfg: TrainConfig,
    run: RunDir,
    device: Device,
    ms: ModelState,
    objective: Objective,
    samplers: Samplers,
    data: TrainData,
    state: LoopState,
    metrics: MetricsLog,
    train_curve: Curve,
    val_curve: Curve,
    grid_noise: Tensor,
    last_checkpoint: Instant,
    /// When this process's training began, and the training seconds of the run before it.
    session_start: Instant,
    seconds_before: f64,
    /// The step of the newest `last` checkpoint (written or resumed from), if any.
    saved_step: Option<u64>,
    hook: Option<EventHook>,
}

impl Trainer {
    /// Prepares a run in `run` (new, or resumed from its `last` checkpoint when `resume`):
    /// device, data, samplers, model, objective, and the metrics log.
    ///
    /// # Errors
    ///
    /// No such device, unreadable data, a batch size that does not fit the data, a checkpoint
    /// that does not fit the config or whose seed differs from `train.seed`.
    pub fn new(cfg: TrainConfig, run: RunDir, resume: bool) -> Result<Self> {
        if cfg.train.threads > 0 {
            // At most MAX_THREADS (checked by the config), so the cast is exact.
            tch::set_num_threads(cfg.train.threads as i32);
        }
        let device = cfg.train.device.resolve()?;
        let data = TrainData::load(&cfg, device)?;
        let samplers = Samplers::new(&cfg)?;
        let mut ms = ModelState::new(&cfg, device)?;
        let objective = Objective::new(&cfg.model, cfg.loss.clone(), device)?;
        let mut state = LoopState::new(cfg.train.seed);
        let mut saved_step = None;
        if resume {
            run.remove_stale_temporaries();
            let path = run.existing_checkpoint("last")?;
            state = checkpoint::load(&path, &mut ms.vs, &mut ms.optim)?;
            if state.seed != cfg.train.seed {
                bail!(
                    "{}: the checkpoint was trained with train.seed = {}, the config says {}; \
                     the seed cannot change on resume",
                    path.display(),
                    state.seed,
                    cfg.train.seed
                );
            }
            saved_step = Some(state.step);
            let batches_per_epoch = samplers.train.batches_per_epoch(data.train_len()) as u64;
            tracing::info!(
                "resumed from {} at step {} ({}{})",
                path.display(),
                state.step,
                state.position(batches_per_epoch),
                if state.pending_validation {
                    "; its interrupted validation runs first"
                } else {
                    ""
                }
            );
        }
        cign_data::atomic::write_atomic_bytes(&run.config(), cfg.to_toml().as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", run.config().display()))?;
        let metrics = MetricsLog::open(&run.metrics(), resume.then_some(&state))?;
        let (train_curve, val_curve) = MetricsLog::read_curves(&run.metrics());
        let grid_noise = {
            tch::manual_seed((cfg.train.seed as i64).wrapping_add(1));
            cign_core::sample_noise(8, &cfg.model, device)?
        };
        Ok(Self {
            cfg,
            run,
            device,
            ms,
            objective,
            samplers,
            data,
            state,
            metrics,
            train_curve,
            val_curve,
            grid_noise,
            last_checkpoint: Instant::now(),
            session_start: Instant::now(),
            seconds_before: state.train_seconds,
            saved_step,
            hook: None,
        })
    }

    /// Installs the hook of the crash-window tests (see [`EventHook`]); not for other uses.
    #[doc(hidden)]
    pub fn set_event_hook(&mut self, hook: impl FnMut(&str, &LoopState) -> Result<()> + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Calls the event hook, if one is installed.
    fn event(&mut self, what: &str) -> Result<()> {
        match &mut self.hook {
            Some(hook) => hook(what, &self.state),
            None => Ok(()),
        }
    }

    /// What to do after the model diverged: resume from the newest checkpoint with a lower
    /// learning rate, or, when none was written, start again with one.
    fn divergence_advice(&self) -> String {
        match self.saved_step {
            Some(step) => format!(
                "the checkpoint of step {step} is kept: resume from it with a lower learning \
                 rate (cign-train --resume {} --set optim.lr=...)",
                self.run.root().display()
            ),
            None => "no checkpoint was written yet: start the run again with a lower optim.lr"
                .to_string(),
        }
    }

    /// Brings `train_seconds` up to now (wall-clock time of this process's training, plus
    /// that of the run before it).
    fn clock(&mut self) {
        self.state.train_seconds = self.seconds_before + self.session_start.elapsed().as_secs_f64();
    }

    /// The run directory.
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// The loop position.
    pub fn state(&self) -> &LoopState {
        &self.state
    }

    fn batches_per_epoch(&self) -> u64 {
        self.samplers.train.batches_per_epoch(self.data.train_len()) as u64
    }

    /// Where the loop stands, for people: [`LoopState::position`] of this run.
    pub fn position(&self) -> String {
        self.state.position(self.batches_per_epoch())
    }

    /// Steps the configured run would take in all (bounded by `max_steps`).
    pub fn planned_steps(&self) -> u64 {
        let all = self
            .batches_per_epoch()
            .saturating_mul(self.cfg.train.epochs as u64);
        match self.cfg.train.max_steps {
            0 => all,
            m => all.min(m),
        }
    }

    /// The validation loss on the test split (eval mode, no gradient, no training noise),
    /// averaged over images; `None` when `stop` was raised before it finished.
    ///
    /// # Errors
    ///
    /// The sampler refuses the validation images or labels (see
    /// [`cign_data::BatchSampler::epoch`]).
    pub fn validate(&mut self, stop: &StopFlag) -> Result<Option<LossValues>> {
        let mut sum = LossValues::default();
        let mut count = 0usize;
        let batches = self
            .samplers
            .val
            .epoch(&self.data.val_x, &self.data.val_y, 0, 0)?;
        for b in batches {
            if stop.is_requested() {
                return Ok(None);
            }
            let n = b.x.size()[0] as usize;
            let terms = self
                .objective
                .validation_loss(&self.ms.model, &self.ms.vs, &b);
            sum = sum.add(&terms.to_f64().scale(n as f64));
            count += n;
        }
        Ok(Some(sum.scale(1.0 / count.max(1) as f64)))
    }

    fn write_samples(&mut self) -> Result<()> {
        let rows = class_grid_rows(&self.ms.model, &self.grid_noise, 1);
        write_grid(&self.run.sample(self.state.step), &rows)?;
        self.event("samples")
    }

    /// Writes the epoch snapshot of the epoch that just ended.
    fn write_snapshot(&mut self) -> Result<()> {
        let path = self.run.snapshot(self.state.epoch);
        checkpoint::save_weights(&path, &self.ms.vs).map_err(|e| self.with_divergence_advice(e))?;
        tracing::info!(
            "kept the model of epoch {} as {}",
            self.state.epoch,
            path.display()
        );
        self.event("snapshot")
    }

    /// `e`, with what to do next when it is a diverged model.
    fn with_divergence_advice(&self, e: CheckpointError) -> anyhow::Error {
        match e {
            CheckpointError::NonFinite { .. } => {
                anyhow::anyhow!("{e}; {}", self.divergence_advice())
            }
            other => other.into(),
        }
    }

    /// Writes checkpoint `which` (`last` or `best`) and the config beside it; the training time
    /// it stores is brought up to now.
    fn checkpoint(&mut self, which: &str) -> Result<()> {
        self.clock();
        // burn-style: the config travels with the checkpoints.
        let cfg_copy = self.run.checkpoint_config();
        cign_data::atomic::write_atomic_bytes(&cfg_copy, self.cfg.to_toml().as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", cfg_copy.display()))?;
        checkpoint::save(
            &self.run.checkpoint(which),
            &self.ms.vs,
            &self.ms.optim,
            &self.state,
        )
        .map_err(|e| self.with_divergence_advice(e))?;
        self.last_checkpoint = Instant::now();
        if which == "last" {
            self.saved_step = Some(self.state.step);
        }
        self.event(which)
    }

    /// Validates, then writes the validation's `metrics.jsonl` record, the samples (with
    /// `train.sample_every = 0`), `best` when improved and `last` (in this order: `last` is the
    /// commit point, see the module's documentation), and the loss plot. Returns `false` (and
    /// writes nothing) when a stop request interrupted the validation.
    ///
    /// # Errors
    ///
    /// A non-finite validation loss (nothing is written), a failed write.
    fn validate_and_checkpoint(&mut self, stop: &StopFlag) -> Result<bool> {
        self.event("validation")?;
        let start = Instant::now();
        self.state.pending_validation = true;
        let Some(val) = self.validate(stop)? else {
            return Ok(false);
        };
        self.state.pending_validation = false;
        if !val.total.is_finite() {
            bail!(
                "the validation loss became {} at step {} (rec {}, idem_noise {}, tight_noise {}, \
                 idem_mismatch {}, tight_mismatch {}): the model diverged and was not saved; {}",
                val.total,
                self.state.step,
                val.rec,
                val.idem_noise,
                val.tight_noise,
                val.idem_mismatch,
                val.tight_mismatch,
                self.divergence_advice()
            );
        }
        self.state.validated = true;
        let improved = val.total < self.state.best_val_loss;
        if improved {
            self.state.best_val_loss = val.total;
        }
        self.metrics.write(&MetricsRecord {
            kind: "validation",
            step: self.state.step,
            epoch: self.state.epoch,
            batch_in_epoch: self.state.batch_in_epoch,
            loss: val,
            lr: self.ms.optim.lr(),
            images_per_s: self.data.val_x.size()[0] as f64 / start.elapsed().as_secs_f64(),
            seconds: self.state.train_seconds,
        })?;
        self.event("validation record")?;
        self.val_curve.push((self.state.step as f64, val.total));
        if self.cfg.train.sample_every == 0 {
            self.write_samples()?;
        }
        if improved {
            self.checkpoint("best")?;
        }
        self.checkpoint("last")?;
        if let Err(e) = write_loss_plot(&self.run.loss_plot(), &self.train_curve, &self.val_curve) {
            tracing::warn!("loss.png not drawn: {e:#}");
        }
        tracing::info!(
            "validation at step {} ({}): total {:.4} (rec {:.4}, idem_noise {:.4}, \
             tight_noise {:.4}, idem_mismatch {:.4}, tight_mismatch {:.4}){} in {:.1} s",
            self.state.step,
            self.position(),
            val.total,
            val.rec,
            val.idem_noise,
            val.tight_noise,
            val.idem_mismatch,
            val.tight_mismatch,
            if improved { ", new best" } else { "" },
            start.elapsed().as_secs_f64()
        );
        Ok(true)
    }

    /// Why the loop must stop before the next step, if it must.
    fn should_stop(&self, stop: &StopFlag, session_start: Instant) -> Option<StopReason> {
        if let Some(sig) = stop.signal() {
            return Some(StopReason::Interrupted(sig));
        }
        if self.state.epoch as usize >= self.cfg.train.epochs {
            return Some(StopReason::Epochs);
        }
        if self.cfg.train.max_steps > 0 && self.state.step >= self.cfg.train.max_steps {
            return Some(StopReason::MaxSteps);
        }
        let budget_s = self.cfg.train.time_budget_minutes * 60.0;
        if budget_s > 0.0 && session_start.elapsed().as_secs_f64() >= budget_s {
            return Some(StopReason::TimeBudget);
        }
        None
    }

    /// One optimizer step on the next batch; returns the step's loss terms and its image count.
    fn step(&mut self) -> Result<(LossValues, usize)> {
        let (epoch, index) = (self.state.epoch, self.state.batch_in_epoch as usize);
        let batch =
            self.samplers
                .train
                .batch(&self.data.train_x, &self.data.train_y, epoch, index)?;
        let images = batch.x.size()[0] as usize;
        // Dropout masks of this step: seeded per batch, so a resumed run draws the same.
        tch::manual_seed((self.samplers.train.batch_seed(epoch, index) >> 1) as i64);
        self.ms.optim.zero_grad();
        let terms = self
            .objective
            .training_loss(&self.ms.model, &self.ms.vs, &batch);
        terms.total.backward();
        self.ms.optim.step();
        let values = terms.to_f64();
        if self.device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        if !values.total.is_finite() {
            bail!(
                "the training loss became {} at step {} (rec {}, idem_noise {}, tight_noise {}, \
                 idem_mismatch {}, tight_mismatch {}): the model diverged; {}",
                values.total,
                self.state.step + 1,
                values.rec,
                values.idem_noise,
                values.tight_noise,
                values.idem_mismatch,
                values.tight_mismatch,
                self.divergence_advice()
            );
        }
        self.state.step += 1;
        self.state.batch_in_epoch += 1;
        self.state.validated = false;
        Ok((values, images))
    }

    /// After a step: the training record, the end of the epoch, its snapshot, the sample grid,
    /// validation and the periodic checkpoint. The snapshot and the grid come before the
    /// validation (which does not change the model), so that a signal cutting the validation
    /// short does not skip them. Returns `false` when a stop request interrupted a validation.
    fn end_of_step(&mut self, stop: &StopFlag) -> Result<bool> {
        let log_every = self.cfg.train.log_every.max(1);
        if self.state.step.is_multiple_of(log_every) {
            if let Some(mean) = self.state.log.mean() {
                self.metrics.write(&MetricsRecord {
                    kind: "train",
                    step: self.state.step,
                    epoch: self.state.epoch,
                    batch_in_epoch: self.state.batch_in_epoch,
                    loss: mean,
                    lr: self.ms.optim.lr(),
                    images_per_s: self.state.log.images as f64 / self.state.log.seconds,
                    seconds: self.state.train_seconds,
                })?;
                self.train_curve.push((self.state.step as f64, mean.total));
                self.state.log = Default::default();
                self.event("train record")?;
            }
        }
        let epoch_done = self.state.batch_in_epoch >= self.batches_per_epoch();
        if epoch_done {
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
        }
        if epoch_done && self.snapshot_due() {
            self.write_snapshot()?;
        }
        let sample_every = self.cfg.train.sample_every;
        if sample_every > 0 && self.state.step.is_multiple_of(sample_every) {
            self.write_samples()?;
        }
        let every = self.cfg.train.eval_every;
        let due = if every > 0 {
            self.state.step.is_multiple_of(every)
        } else {
            epoch_done
        };
        if due && !self.validate_and_checkpoint(stop)? {
            return Ok(false);
        }
        let minutes = self.cfg.train.checkpoint_every_minutes;
        if !due && minutes > 0.0 && self.last_checkpoint.elapsed().as_secs_f64() >= minutes * 60.0 {
            self.checkpoint("last")?;
            tracing::info!(
                "checkpoint at step {} ({}): {:.1} s of training",
                self.state.step,
                self.position(),
                self.state.train_seconds
            );
        }
        Ok(true)
    }

    /// Whether the epoch that just ended (`batch_in_epoch` 0) gets a snapshot.
    fn snapshot_due(&self) -> bool {
        let every = self.cfg.train.snapshot_every_epochs;
        every > 0
            && self.state.epoch > 0
            && self.state.batch_in_epoch == 0
            && self.state.epoch.is_multiple_of(every)
    }

    /// Writes, when resuming, what belongs to the checkpoint's step but is missing: the epoch
    /// snapshot at an epoch's end and the sample grid due at this step (checkpoints of older
    /// versions could be written without them, when a signal cut the end-of-epoch validation
    /// short; a file can also be deleted by hand). The checkpoint holds the model they show.
    fn write_missing_outputs(&mut self) -> Result<()> {
        if self.snapshot_due() && !self.run.snapshot(self.state.epoch).exists() {
            tracing::info!("the snapshot of epoch {} is missing", self.state.epoch);
            self.write_snapshot()?;
        }
        let every = self.cfg.train.sample_every;
        let grid_due = if every > 0 {
            self.state.step.is_multiple_of(every)
        } else {
            self.state.validated
        };
        if self.state.step > 0 && grid_due && !self.run.sample(self.state.step).exists() {
            tracing::info!("the sample grid of step {} is missing", self.state.step);
            self.write_samples()?;
        }
        Ok(())
    }

    /// Trains until the config's limits or a stop request; returns why it stopped. On a stop
    /// request, `last` is written at once (no validation); a stop request during the final
    /// validation of a run that reached its epochs or `max_steps` is an interruption too (the
    /// resumed run validates then).
    ///
    /// # Errors
    ///
    /// A non-finite loss or model, a failed checkpoint or metrics write.
    pub fn train(&mut self, stop: &StopFlag) -> Result<RunSummary> {
        let planned = self.planned_steps();
        let bar = ProgressBar::new(planned);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(self.state.step);
        self.session_start = Instant::now();
        self.seconds_before = self.state.train_seconds;
        let session_start = self.session_start;
        let first_step = self.state.step;
        let (mut timed_steps, mut timed_seconds, mut projected) = (0u64, 0.0f64, false);

        self.write_missing_outputs()?;
        let mut completed = true;
        if self.state.pending_validation {
            completed = bar.suspend(|| self.validate_and_checkpoint(stop))?;
        }
        let mut reason = loop {
            if !completed {
                break StopReason::Interrupted(
                    stop.signal().unwrap_or(signal_hook::consts::SIGINT),
                );
            }
            if let Some(reason) = self.should_stop(stop, session_start) {
                break reason;
            }
            let t0 = Instant::now();
            let (values, images) = self.step()?;
            let dt = t0.elapsed().as_secs_f64();
            self.clock();
            // Time per step, leaving out the first (allocations, lazy initialisation).
            if self.state.step > first_step + 1 {
                timed_steps += 1;
                timed_seconds += dt;
            }
            if !projected && timed_steps >= 3 {
                projected = true;
                self.log_projection(planned, timed_seconds / timed_steps as f64, images);
            }
            self.state.log.add(&values, images as u64, dt);
            bar.set_position(self.state.step);
            bar.set_message(format!(
                "epoch {} loss {:.4} {:.0} img/s",
                self.state.epoch + 1,
                values.total,
                images as f64 / dt
            ));
            completed = bar.suspend(|| self.end_of_step(stop))?;
        };
        bar.finish_and_clear();
        // A time budget is a deadline (a scheduler slot, a session's end): the run will be
        // resumed, so it writes `last` at once, as a signal does, and the next scheduled
        // validation runs after resuming; unless no validation ever ran, when it validates once
        // so that `best`, what the sampling and evaluation tools read by default, exists. The
        // other ends validate the final model unless it was validated (by the last step, or
        // before the run was resumed).
        match reason {
            StopReason::Interrupted(_) => {}
            _ if self.state.validated => {}
            StopReason::TimeBudget if self.state.best_val_loss.is_finite() => {
                self.checkpoint("last")?;
            }
            _ => {
                if !self.validate_and_checkpoint(stop)? {
                    // The final validation is not a scheduled one: nothing is pending, and a
                    // resumed run that ends at this step validates its model then.
                    self.state.pending_validation = false;
                    reason = StopReason::Interrupted(
                        stop.signal().unwrap_or(signal_hook::consts::SIGINT),
                    );
                }
            }
        }
        if let StopReason::Interrupted(sig) = reason {
            self.checkpoint("last")?;
            tracing::info!(
                "stopped by {} at step {} ({}): wrote {}{}",
                crate::signals::signal_name(sig),
                self.state.step,
                self.position(),
                self.run.checkpoint("last").display(),
                if self.state.pending_validation {
                    " (its validation was interrupted and runs first on resume)"
                } else {
                    ""
                }
            );
        } else {
            tracing::info!(
                "stopped ({reason:?}) at step {} ({}): {:.1} s of training; run directory {}",
                self.state.step,
                self.position(),
                self.state.train_seconds,
                self.run.root().display()
            );
        }
        Ok(RunSummary {
            reason,
            state: self.state,
        })
    }

    fn log_projection(&self, planned: u64, s_per_step: f64, images: usize) {
        let total = s_per_step * planned.saturating_sub(self.state.step) as f64;
        let per_epoch = s_per_step * self.batches_per_epoch() as f64;
        tracing::info!(
            "{:.3} s/step ({:.0} real images/s) on {:?}: one epoch takes {}, the rest of the \
             configured run ({} of {planned} steps) about {}{}",
            s_per_step,
            images as f64 / s_per_step,
            self.device,
            human(per_epoch),
            planned.saturating_sub(self.state.step),
            human(total),
            if self.cfg.train.time_budget_minutes > 0.0 {
                format!(
                    "; the time budget of {} min allows about {} steps",
                    self.cfg.train.time_budget_minutes,
                    (self.cfg.train.time_budget_minutes * 60.0 / s_per_step) as u64
                )
            } else if total > 3600.0 {
                "; shorten it with --set train.max_steps=N, --set train.time_budget_minutes=M or \
                 --set train.epochs=E (and --set train.eval_max_images=N for quicker validation)"
                    .to_string()
            } else {
                String::new()
            }
        );
    }
}

/// Seconds as `1 h 05 min`, `12 min 30 s` or `40 s`.
pub fn human(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}
