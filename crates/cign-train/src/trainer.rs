//! The training loop: sampler -> objective -> backward -> AdamW, with periodic validation on the
//! test split, `last`/`best` checkpoints, sample grids, `metrics.jsonl`, `loss.png`, a progress
//! bar, and stopping on epochs, `max_steps`, `time_budget_minutes` or Ctrl-C.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cign_core::{AdamW, CignModel, LossValues, Objective, TrainBatch};
use cign_data::{BatchSampler, Dataset, SampledBatch, SamplerConfig, Split};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::{nn::VarStore, Device, Tensor};

use crate::checkpoint::{self, LoopState};
use crate::config::{DeviceChoice, TrainConfig};
use crate::images::write_grid;
use crate::plot::write_loss_plot;
use crate::run_dir::{MetricsLog, RunDir};
use crate::sampling::class_grid_rows;

/// Parses a `--device` argument (`cpu`, `cuda` or `auto`) of the command-line tools.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => select_device(DeviceChoice::Cpu),
        "cuda" => select_device(DeviceChoice::Cuda),
        "auto" => select_device(DeviceChoice::Auto),
        other => bail!("--device {other}: expected cpu, cuda or auto"),
    }
}

/// Picks the device of a config: `auto` takes CUDA when libtorch sees it.
pub fn select_device(choice: DeviceChoice) -> Result<Device> {
    Ok(match choice {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Auto => Device::cuda_if_available(),
        DeviceChoice::Cuda => {
            if !tch::Cuda::is_available() {
                bail!(
                    "train.device = cuda but libtorch sees no CUDA device (run scripts/doctor.sh)"
                );
            }
            Device::Cuda(0)
        }
    })
}

/// Loads the data directory of the config, fetching the files when it is empty.
pub fn data_dir(cfg: &TrainConfig) -> Result<std::path::PathBuf> {
    let kind = cfg.data.dataset.into();
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
    pub fn new(cfg: &TrainConfig, device: Device) -> Result<Self> {
        tch::manual_seed(cfg.train.seed as i64);
        let vs = VarStore::new(device);
        let model = CignModel::new(&vs.root(), &cfg.model)?;
        let optim = AdamW::new(&vs, cfg.optim.adamw());
        Ok(Self { vs, model, optim })
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize)]
struct MetricsRecord<'a> {
    kind: &'a str,
    step: u64,
    epoch: u64,
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
    /// Interrupted (Ctrl-C).
    Interrupted,
}

/// Summary of a finished (or stopped) run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Why it stopped.
    pub reason: StopReason,
    /// The loop position at the end.
    pub state: LoopState,
}

/// The sampler's batch as the objective's input.
pub fn to_train_batch(b: SampledBatch) -> TrainBatch {
    TrainBatch {
        x: b.x,
        y: b.y,
        z: b.z,
        yz: b.yz,
        x_mismatch: b.x_mismatch,
        y_mismatch: b.y_mismatch,
    }
}

/// Everything a run needs, set up from a config and a run directory.
pub struct Trainer {
    cfg: TrainConfig,
    run: RunDir,
    device: Device,
    ms: ModelState,
    objective: Objective,
    sampler: BatchSampler,
    val_sampler: BatchSampler,
    train_x: Tensor,
    train_y: Tensor,
    val_x: Tensor,
    val_y: Tensor,
    state: LoopState,
    metrics: MetricsLog,
    train_curve: Curve,
    val_curve: Curve,
    grid_noise: Tensor,
}

impl Trainer {
    /// Prepares a run in `run` (new, or resumed from its `last` checkpoint when `resume`).
    pub fn new(cfg: TrainConfig, run: RunDir, resume: bool) -> Result<Self> {
        if cfg.train.threads > 0 {
            tch::set_num_threads(cfg.train.threads as i32);
        }
        let device = select_device(cfg.train.device)?;
        let dir = data_dir(&cfg)?;
        let kind = cfg.data.dataset.into();
        let train = Dataset::load(kind, Split::Train, &dir)?;
        let test = Dataset::load(kind, Split::Test, &dir)?;
        tracing::info!(
            "{kind}: {} training and {} test images from {}",
            train.len(),
            test.len(),
            dir.display()
        );
        let (train_x, train_y) = (train.images_tensor(device), train.labels_tensor(device));
        let (mut val_x, mut val_y) = (test.images_tensor(device), test.labels_tensor(device));
        if cfg.train.eval_max_images > 0 && cfg.train.eval_max_images < test.len() {
            val_x = val_x.narrow(0, 0, cfg.train.eval_max_images as i64);
            val_y = val_y.narrow(0, 0, cfg.train.eval_max_images as i64);
        }
        let k = if cfg.model.conditioning.is_conditional() {
            cfg.data.mismatch_per_real
        } else {
            0
        };
        let sampler_cfg = SamplerConfig {
            batch_size: cfg.train.batch_size,
            noise_std: cfg.data.train_noise_std,
            mismatch_per_real: k,
            num_classes: cfg.model.num_classes,
            drop_last: cfg.data.drop_last,
            seed: cfg.train.seed,
        };
        let sampler = BatchSampler::new(sampler_cfg.clone())?;
        // Validation images get no training noise (spec §3).
        let val_sampler = BatchSampler::new(SamplerConfig {
            noise_std: 0.0,
            drop_last: false,
            seed: cfg.train.seed ^ 0x005E_ED0F_7E57,
            ..sampler_cfg
        })?;

        let mut ms = ModelState::new(&cfg, device)?;
        let objective = Objective::new(&cfg.model, cfg.loss.objective(), device)?;
        let mut state = LoopState {
            step: 0,
            epoch: 0,
            batch_in_epoch: 0,
            seed: cfg.train.seed,
            best_val_loss: f64::INFINITY,
            train_seconds: 0.0,
        };
        if resume {
            let path = run.existing_checkpoint("last")?;
            state = checkpoint::load(&path, &mut ms.vs, &mut ms.optim)?;
            tracing::info!(
                "resumed from {} at step {} (epoch {}, batch {})",
                path.display(),
                state.step,
                state.epoch,
                state.batch_in_epoch
            );
        } else {
            std::fs::write(run.config(), cfg.to_toml())
                .with_context(|| format!("cannot write {}", run.config().display()))?;
        }
        let metrics = MetricsLog::open(&run.metrics())?;
        let (train_curve, val_curve) = read_curves(&run.metrics());
        let grid_noise = {
            tch::manual_seed(cfg.train.seed as i64 + 1);
            cign_core::sample_noise(8, &cfg.model, device)
        };
        Ok(Self {
            cfg,
            run,
            device,
            ms,
            objective,
            sampler,
            val_sampler,
            train_x,
            train_y,
            val_x,
            val_y,
            state,
            metrics,
            train_curve,
            val_curve,
            grid_noise,
        })
    }

    /// The run directory.
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// Steps the configured run would take in all (bounded by `max_steps`).
    pub fn planned_steps(&self) -> u64 {
        let per_epoch = self
            .sampler
            .batches_per_epoch(self.train_x.size()[0] as usize) as u64;
        let all = per_epoch * self.cfg.train.epochs as u64;
        match self.cfg.train.max_steps {
            0 => all,
            m => all.min(m),
        }
    }

    /// The validation loss on the test split (eval mode, no gradient, no training noise),
    /// averaged over images.
    pub fn validate(&mut self) -> LossValues {
        let mut sum = LossValues::default();
        let mut count = 0usize;
        let batches: Vec<SampledBatch> = self
            .val_sampler
            .epoch(&self.val_x, &self.val_y, 0, 0)
            .collect();
        for b in batches {
            let n = b.x.size()[0] as usize;
            let terms =
                self.objective
                    .validation_loss(&self.ms.model, &self.ms.vs, &to_train_batch(b));
            sum = sum.add(&terms.to_f64().scale(n as f64));
            count += n;
        }
        sum.scale(1.0 / count.max(1) as f64)
    }

    fn write_samples(&self) -> Result<()> {
        let rows = class_grid_rows(&self.ms.model, &self.grid_noise, 1);
        write_grid(&self.run.sample(self.state.step), &rows)
    }

    fn checkpoint(&self, which: &str) -> Result<()> {
        checkpoint::save(
            &self.run.checkpoint(which),
            &self.ms.vs,
            &self.ms.optim,
            &self.state,
        )?;
        // burn-style: the config travels with the checkpoints.
        let cfg_copy = self.run.root().join("checkpoints").join("config.toml");
        std::fs::write(&cfg_copy, self.cfg.to_toml())
            .with_context(|| format!("cannot write {}", cfg_copy.display()))
    }

    fn validate_and_checkpoint(&mut self) -> Result<LossValues> {
        let start = Instant::now();
        let val = self.validate();
        let improved = val.total < self.state.best_val_loss;
        if improved {
            self.state.best_val_loss = val.total;
        }
        self.metrics.write(&MetricsRecord {
            kind: "validation",
            step: self.state.step,
            epoch: self.state.epoch,
            loss: val,
            lr: self.ms.optim.lr(),
            images_per_s: self.val_x.size()[0] as f64 / start.elapsed().as_secs_f64(),
            seconds: self.state.train_seconds,
        })?;
        self.val_curve.push((self.state.step as f64, val.total));
        self.checkpoint("last")?;
        if improved {
            self.checkpoint("best")?;
        }
        if self.cfg.train.sample_every == 0 {
            self.write_samples()?;
        }
        if let Err(e) = write_loss_plot(&self.run.loss_plot(), &self.train_curve, &self.val_curve) {
            tracing::warn!("loss.png not drawn: {e:#}");
        }
        tracing::info!(
            "validation at step {}: total {:.4} (rec {:.4}, idem_noise {:.4}, tight_noise {:.4}, \
             idem_mismatch {:.4}, tight_mismatch {:.4}){} in {:.1} s",
            self.state.step,
            val.total,
            val.rec,
            val.idem_noise,
            val.tight_noise,
            val.idem_mismatch,
            val.tight_mismatch,
            if improved { ", new best" } else { "" },
            start.elapsed().as_secs_f64()
        );
        Ok(val)
    }

    /// Trains until the config's limits or `stop` is raised; returns why it stopped.
    pub fn train(&mut self, stop: Arc<AtomicBool>) -> Result<RunSummary> {
        let planned = self.planned_steps();
        let n_train = self.train_x.size()[0] as usize;
        let per_epoch = self.sampler.batches_per_epoch(n_train) as u64;
        let bar = ProgressBar::new(planned);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(self.state.step);
        let budget_s = self.cfg.train.time_budget_minutes * 60.0;
        let session_start = Instant::now();
        let seconds_before = self.state.train_seconds;
        let mut timed_steps = 0u64;
        let mut timed_seconds = 0.0f64;
        let mut projected = false;
        let mut log_acc = (LossValues::default(), 0u64, 0usize, 0.0f64);
        let mut reason = StopReason::Epochs;
        let mut just_validated = false;

        'epochs: while (self.state.epoch as usize) < self.cfg.train.epochs {
            let epoch = self.state.epoch;
            let start_batch = self.state.batch_in_epoch as usize;
            for index in start_batch..per_epoch as usize {
                if self.cfg.train.max_steps > 0 && self.state.step >= self.cfg.train.max_steps {
                    reason = StopReason::MaxSteps;
                    break 'epochs;
                }
                if budget_s > 0.0 && self.state.train_seconds >= budget_s {
                    reason = StopReason::TimeBudget;
                    break 'epochs;
                }
                if stop.load(Ordering::SeqCst) {
                    reason = StopReason::Interrupted;
                    break 'epochs;
                }
                let t0 = Instant::now();
                let batch = self
                    .sampler
                    .batch(&self.train_x, &self.train_y, epoch, index)?;
                let images = batch.x.size()[0] as usize;
                // Dropout masks of this step: seeded per batch, so a resumed run draws the same.
                tch::manual_seed((self.sampler.batch_seed(epoch, index) >> 1) as i64);
                self.ms.optim.zero_grad();
                let terms = self.objective.training_loss(
                    &self.ms.model,
                    &self.ms.vs,
                    &to_train_batch(batch),
                );
                terms.total.backward();
                self.ms.optim.step();
                let values = terms.to_f64();
                if self.device.is_cuda() {
                    tch::Cuda::synchronize(0);
                }
                let dt = t0.elapsed().as_secs_f64();
                self.state.step += 1;
                self.state.batch_in_epoch = index as u64 + 1;
                self.state.train_seconds = seconds_before + session_start.elapsed().as_secs_f64();
                just_validated = false;
                if !values.total.is_finite() {
                    bail!(
                        "the loss became {} at step {}",
                        values.total,
                        self.state.step
                    );
                }
                // Time per step, leaving out the first (allocations, lazy initialisation).
                if self.state.step > 1 || start_batch > 0 {
                    timed_steps += 1;
                    timed_seconds += dt;
                }
                if !projected && timed_steps >= 3 {
                    projected = true;
                    self.log_projection(planned, timed_seconds / timed_steps as f64, images);
                }
                log_acc = (
                    log_acc.0.add(&values),
                    log_acc.1 + 1,
                    log_acc.2 + images,
                    log_acc.3 + dt,
                );
                bar.set_position(self.state.step);
                bar.set_message(format!(
                    "epoch {} loss {:.4} {:.0} img/s",
                    epoch + 1,
                    values.total,
                    images as f64 / dt
                ));
                let log_every = self.cfg.train.log_every.max(1);
                if self.state.step.is_multiple_of(log_every) {
                    let mean = log_acc.0.scale(1.0 / log_acc.1 as f64);
                    self.metrics.write(&MetricsRecord {
                        kind: "train",
                        step: self.state.step,
                        epoch,
                        loss: mean,
                        lr: self.ms.optim.lr(),
                        images_per_s: log_acc.2 as f64 / log_acc.3,
                        seconds: self.state.train_seconds,
                    })?;
                    self.train_curve.push((self.state.step as f64, mean.total));
                    log_acc = (LossValues::default(), 0, 0, 0.0);
                }
                let every = self.cfg.train.eval_every;
                if every > 0 && self.state.step.is_multiple_of(every) {
                    bar.suspend(|| self.validate_and_checkpoint())?;
                    just_validated = true;
                }
                let sample_every = self.cfg.train.sample_every;
                if sample_every > 0 && self.state.step.is_multiple_of(sample_every) {
                    self.write_samples()?;
                }
            }
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
            if self.cfg.train.eval_every == 0 {
                bar.suspend(|| self.validate_and_checkpoint())?;
                just_validated = true;
            }
        }
        bar.finish_and_clear();
        if !just_validated {
            self.validate_and_checkpoint()?;
        }
        tracing::info!(
            "stopped ({reason:?}) at step {}, epoch {}: {:.1} s of training; run directory {}",
            self.state.step,
            self.state.epoch,
            self.state.train_seconds,
            self.run.root().display()
        );
        Ok(RunSummary {
            reason,
            state: self.state,
        })
    }

    fn log_projection(&self, planned: u64, s_per_step: f64, images: usize) {
        let total = s_per_step * planned as f64;
        let per_epoch = s_per_step
            * self
                .sampler
                .batches_per_epoch(self.train_x.size()[0] as usize) as f64;
        tracing::info!(
            "{:.3} s/step ({:.0} real images/s) on {:?}: one epoch takes {}, the configured run \
             ({planned} steps) about {}{}",
            s_per_step,
            images as f64 / s_per_step,
            self.device,
            human(per_epoch),
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

/// A loss curve: (step, total loss) points.
type Curve = Vec<(f64, f64)>;

/// Reads back the curves of an existing `metrics.jsonl` (when resuming).
fn read_curves(path: &Path) -> (Curve, Curve) {
    let mut train = Vec::new();
    let mut val = Vec::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let (Some(step), Some(total)) = (v["step"].as_f64(), v["total"].as_f64()) else {
                continue;
            };
            match v["kind"].as_str() {
                Some("train") => train.push((step, total)),
                Some("validation") => val.push((step, total)),
                _ => {}
            }
        }
    }
    (train, val)
}
