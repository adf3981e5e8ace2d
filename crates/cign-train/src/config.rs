//! The training configuration: a TOML file with the sections `model`, `data`, `loss`, `optim`,
//! `train` and `output`. Every field has a default (the authors' settings: their
//! `MNIST/main.py` and `idempotent_networks.py`, niccronc/conditional-idempotent-generative-
//! networks), unknown keys are rejected with the list of valid ones, and
//! `--set section.key=value` overrides any key with type checking.
//!
//! `[model]`, `[loss]` and `[optim]` are cign-core's own types ([`ModelConfig`],
//! [`ObjectiveConfig`], [`AdamWConfig`]) and `data.dataset` is cign-data's [`DatasetKind`],
//! embedded, not copied: one definition and one default per value, and every `validate()` of
//! theirs is called by [`TrainConfig::validate`]. The batch sampler's settings are read from the
//! config in one place, [`TrainConfig::sampler_config`], and checked by cign-data's own
//! [`SamplerConfig::validate`].

use std::path::{Path, PathBuf};

use cign_core::{AdamWConfig, Conditioning, ModelConfig, ObjectiveConfig};
pub use cign_data::DatasetKind;
use cign_data::{DataError, SamplerConfig};
use serde::{Deserialize, Serialize};

/// The most libtorch threads `train.threads` accepts.
pub const MAX_THREADS: usize = 4096;

/// A configuration error: always one line that names the file, key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// TOML syntax or a type/unknown-key error (the message carries line and column).
    #[error("config {origin}: {message}")]
    Parse {
        /// The file, or the override.
        origin: String,
        /// The parser's message, on one line.
        message: String,
    },
    /// A `--set` argument is not of the form `section.key=value` or names no known key.
    #[error("--set {arg}: {what}")]
    Override {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        what: String,
    },
    /// A config file that sets no key at all (empty, or only comments): it would silently
    /// train the default (large) model for 100 epochs.
    #[error(
        "config {path}: sets no key at all (it is empty or holds only comments), so it would \
         train the default large model for 100 epochs; start from one of configs/*.toml"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A resumed run changes a key that must stay as the checkpoint was trained.
    #[error(
        "resume: {key} = {now}, but the checkpoint was trained with {key} = {was}; only these \
         keys may change on resume: {}",
        RESUMABLE_KEYS.join(", ")
    )]
    Resume {
        /// `section.key`.
        key: String,
        /// The value the checkpoint was trained with.
        was: String,
        /// The value asked for now.
        now: String,
    },
    /// A value of a core type (`[model]`, `[loss]`, `[optim]`) is out of range.
    #[error("config: {0}")]
    Value(#[from] cign_core::ConfigValueError),
    /// A sampler setting (`data.train_noise_std`, `data.mismatch_per_real`) is out of the range
    /// cign-data's [`SamplerConfig::validate`] accepts.
    #[error("config: {key}: {source}")]
    Sampler {
        /// `section.key`.
        key: &'static str,
        /// The sampler's error, naming its own parameter and the range.
        source: DataError,
    },
    /// A value is out of range.
    #[error("config: {key} = {value}: {what}")]
    Invalid {
        /// `section.key`.
        key: &'static str,
        /// The value.
        value: String,
        /// The allowed range.
        what: String,
    },
}

/// `[data]`: what to train on and how batches are built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// `mnist` or `fashion-mnist`.
    pub dataset: DatasetKind,
    /// Data directory; empty = `$CIGN_DATA_DIR/<dataset>` or `<repo>/data/<dataset>`.
    pub dir: String,
    /// Std of the additive noise on training images (0.15).
    pub train_noise_std: f64,
    /// Mismatched pairs per real image, 0..=9 (9).
    pub mismatch_per_real: usize,
    /// Drop the last partial batch of each epoch (false).
    pub drop_last: bool,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Mnist,
            dir: String::new(),
            train_noise_std: 0.15,
            mismatch_per_real: 9,
            drop_last: false,
        }
    }
}

/// Where to train: `auto`, `cpu`, `cuda` or `cuda:N`; the one device type of all cign crates.
pub use cign_metrics::device::DeviceChoice;

/// `[train]`: the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Real images per step (256).
    pub batch_size: usize,
    /// Epochs (100).
    pub epochs: usize,
    /// Seed of initialisation, shuffling and noise (0).
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N` (auto).
    pub device: DeviceChoice,
    /// Stop after this many steps; 0 = no limit (0).
    pub max_steps: u64,
    /// Stop after this many minutes of training in this invocation (a resumed run gets the
    /// budget again, so a scheduler slot can be filled); 0 = no limit (0). The stop comes
    /// after the step that crosses the budget and writes `last` at once, without a final
    /// validation (the run is meant to be resumed; a validation due at that step still runs),
    /// except in a run that has never validated: it validates once, so that `best` exists.
    pub time_budget_minutes: f64,
    /// Validate (and checkpoint) every this many steps; 0 = at the end of each epoch (0).
    pub eval_every: u64,
    /// Test images used by each validation; 0 = the whole test split (0).
    pub eval_max_images: usize,
    /// Write a sample grid every this many steps; 0 = at each validation (0).
    pub sample_every: u64,
    /// Log training losses to metrics.jsonl every this many steps, at least 1 (10).
    pub log_every: u64,
    /// libtorch intra-op threads, at most [`MAX_THREADS`]; 0 = libtorch's default (0).
    pub threads: usize,
    /// Write the `last` checkpoint every this many minutes between validations, without
    /// validating, so a preempted run loses at most this much work; 0 = off (10).
    pub checkpoint_every_minutes: f64,
    /// Keep the model of every N-th completed epoch as `checkpoints/epoch-NNN.safetensors` (a
    /// weights file, model only) for learning curves; 0 = off (0).
    pub snapshot_every_epochs: u64,
    /// Arithmetic of the passes: `fp32`, or `bf16` (convolutions and linears in bfloat16;
    /// variables, optimizer state, losses and checkpoints float32; `cign_core::precision`) (fp32).
    pub precision: cign_core::Precision,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            batch_size: 256,
            epochs: 100,
            seed: 0,
            device: DeviceChoice::Auto,
            max_steps: 0,
            time_budget_minutes: 0.0,
            eval_every: 0,
            eval_max_images: 0,
            sample_every: 0,
            log_every: 10,
            threads: 0,
            checkpoint_every_minutes: 10.0,
            snapshot_every_epochs: 0,
            precision: cign_core::Precision::Fp32,
        }
    }
}

/// `[output]`: where runs go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Directory that receives one folder per run (`runs`).
    pub dir: String,
}

impl Default for OutputSection {
    fn default() -> Self {
        Self { dir: "runs".into() }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `[model]`: conditioning (`channel`, `filter`, `none`) and sizes.
    pub model: ModelConfig,
    /// `[data]`.
    pub data: DataSection,
    /// `[loss]`: the five weights and the tightness clamp.
    pub loss: ObjectiveConfig,
    /// `[optim]`: AdamW.
    pub optim: AdamWConfig,
    /// `[train]`.
    pub train: TrainSection,
    /// `[output]`.
    pub output: OutputSection,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses TOML text, naming `origin` in errors.
fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: one_line(&e.to_string()),
    })
}

impl TrainConfig {
    /// Reads a config file and applies `overrides` (`section.key=value`), then validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// Reads the config file of a new run: as [`TrainConfig::load`], but a file that sets no
    /// key at all (empty, or only comments) is refused rather than taken as "all defaults".
    /// A file with at least one section or key is read as usual.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`], or what [`TrainConfig::load`] refuses.
    pub fn load_new(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if text.parse::<toml::Table>().is_ok_and(|t| t.is_empty()) {
            return Err(ConfigError::Empty {
                path: path.to_path_buf(),
            });
        }
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// Checks the `--set` overrides of a resumed run: keys that only place a new run
    /// ([`NEW_RUN_KEYS`]: `output.dir`) are refused, since a resumed run stays in its
    /// directory.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Override`] naming the first such override.
    pub fn check_resume_overrides(overrides: &[String]) -> Result<(), ConfigError> {
        for arg in overrides {
            let key = arg.split_once('=').map_or(arg.as_str(), |(k, _)| k).trim();
            if NEW_RUN_KEYS.contains(&key) {
                return Err(ConfigError::Override {
                    arg: arg.clone(),
                    what: format!(
                        "{key} only places new runs; a resumed run stays in its own directory \
                         (move the directory to move the run)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Parses TOML text (`origin` names it in errors), applies overrides and validates.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        // Type-check the file alone first, so its errors carry its own line and column.
        toml::from_str::<Self>(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: one_line(&e.to_string()),
        })?;
        let mut table = parse_table(text, origin)?;
        for arg in overrides {
            apply_override(&mut table, arg)?;
            Self::from_table(table.clone(), &format!("after --set {arg}"))?;
        }
        let cfg = Self::from_table(table, origin)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn from_table(table: toml::Table, origin: &str) -> Result<Self, ConfigError> {
        // Re-serialising gives the deserializer a document to point into.
        let text = toml::to_string(&table).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: one_line(&e.to_string()),
        })?;
        toml::from_str::<Self>(&text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: one_line(e.message()),
        })
    }

    /// Checks ranges that types cannot express, and that the model fits the data: both
    /// datasets (MNIST, Fashion-MNIST) have [`cign_data::NUM_CLASSES`] classes of grey images,
    /// so `model.num_classes` must be 10 and `model.image_channels` 1.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first key out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, value: String, what: &str| ConfigError::Invalid {
            key,
            value,
            what: what.into(),
        };
        let classes = i64::from(cign_data::NUM_CLASSES);
        if self.model.num_classes != classes {
            return Err(invalid(
                "model.num_classes",
                self.model.num_classes.to_string(),
                &format!(
                    "must be {classes}: the {} dataset has {classes} classes",
                    self.data.dataset.name()
                ),
            ));
        }
        if self.model.image_channels != 1 {
            return Err(invalid(
                "model.image_channels",
                self.model.image_channels.to_string(),
                &format!(
                    "must be 1: the {} dataset has grey images",
                    self.data.dataset.name()
                ),
            ));
        }
        if self.train.log_every == 0 {
            return Err(invalid(
                "train.log_every",
                "0".into(),
                "must be at least 1 (the training losses are logged every this many steps)",
            ));
        }
        if self.train.threads > MAX_THREADS {
            return Err(invalid(
                "train.threads",
                self.train.threads.to_string(),
                &format!("must be in 0..={MAX_THREADS} (0 = libtorch's default)"),
            ));
        }
        if self.train.batch_size < 2 {
            return Err(invalid(
                "train.batch_size",
                self.train.batch_size.to_string(),
                "must be at least 2 (BatchNorm cannot train on batches of one image)",
            ));
        }
        let minutes = self.train.checkpoint_every_minutes;
        if !(minutes >= 0.0 && minutes.is_finite()) {
            return Err(invalid(
                "train.checkpoint_every_minutes",
                minutes.to_string(),
                "must be a finite number >= 0 (0 = off)",
            ));
        }
        // `k` and the training noise are the sampler's settings: its own `validate` checks them
        // (with the configured `k`, also for the unconditional model, which ignores it).
        let sampler = SamplerConfig {
            mismatch_per_real: self.data.mismatch_per_real,
            ..self.sampler_config()
        };
        sampler.validate().map_err(|source| {
            let key = match &source {
                DataError::InvalidParameter { name, .. } => match *name {
                    "noise_std" => "data.train_noise_std",
                    "mismatch_per_real" => "data.mismatch_per_real",
                    "batch_size" => "train.batch_size",
                    "num_classes" => "model.num_classes",
                    _ => "data",
                },
                _ => "data",
            };
            ConfigError::Sampler { key, source }
        })?;
        if self.train.epochs == 0 {
            return Err(invalid("train.epochs", "0".into(), "must be at least 1"));
        }
        if self.train.time_budget_minutes.is_nan() || self.train.time_budget_minutes < 0.0 {
            return Err(invalid(
                "train.time_budget_minutes",
                self.train.time_budget_minutes.to_string(),
                "must be >= 0 (0 = no limit)",
            ));
        }
        self.model.validate()?;
        self.loss.validate()?;
        self.optim.validate()?;
        if self.model.conditioning == Conditioning::None && self.data.mismatch_per_real > 0 {
            // The unconditional baseline has no labels to mismatch: its loss has three terms.
            tracing::debug!("model.conditioning = none: data.mismatch_per_real is ignored");
        }
        Ok(())
    }

    /// Checks that a resumed run changes only the keys that may change on resume
    /// ([`RESUMABLE_KEYS`]); `self` is the config the checkpoint was written with, `resumed` the
    /// one about to be used. Returns the resumable keys that change, as `key: was -> now`, for
    /// the run's log.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Resume`] naming the first other key that differs and both values.
    pub fn check_resume(&self, resumed: &TrainConfig) -> Result<Vec<String>, ConfigError> {
        let flat = |cfg: &TrainConfig| -> Vec<(String, String)> {
            let table = toml::Table::try_from(cfg).expect("the configuration serialises");
            let mut out = Vec::new();
            for (section, v) in table {
                match v {
                    toml::Value::Table(t) => out.extend(
                        t.into_iter()
                            .map(|(k, v)| (format!("{section}.{k}"), v.to_string())),
                    ),
                    other => out.push((section, other.to_string())),
                }
            }
            out
        };
        let before: std::collections::BTreeMap<String, String> = flat(self).into_iter().collect();
        let mut changes = Vec::new();
        for (key, value) in flat(resumed) {
            if NEW_RUN_KEYS.contains(&key.as_str()) {
                continue;
            }
            let old = before
                .get(&key)
                .cloned()
                .unwrap_or_else(|| "(absent)".into());
            if old == value {
                continue;
            }
            if !RESUMABLE_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::Resume {
                    key,
                    was: old,
                    now: value,
                });
            }
            changes.push(format!("{key}: {old} -> {value}"));
        }
        Ok(changes)
    }

    /// The batch sampler's settings for this run, the one place they are read from the config:
    /// batch size and seed from `[train]`, training noise, `k` and `drop_last` from `[data]`
    /// (`k = 0` for an unconditional model, whose loss has no mismatch terms), classes from
    /// `[model]`. Training uses them as they are; validation derives its own from them.
    pub fn sampler_config(&self) -> SamplerConfig {
        SamplerConfig {
            batch_size: self.train.batch_size,
            noise_std: self.data.train_noise_std,
            mismatch_per_real: if self.model.conditioning.is_conditional() {
                self.data.mismatch_per_real
            } else {
                0
            },
            num_classes: self.model.num_classes,
            drop_last: self.data.drop_last,
            seed: self.train.seed,
        }
    }

    /// The resolved configuration as TOML (written next to every run and checkpoint).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration serialises")
    }
}

/// The keys a resumed run may change (with `--set` or by editing the run's `config.toml`):
/// how long it runs, how often it validates, logs, samples and checkpoints, threads, device,
/// the data directory, and the learning rate (to resume a diverged run with a lower one; the
/// AdamW moments do not depend on it). Every other key (model, data, loss, the optimizer's
/// other settings, batch size, seed) would make the resumed run a different experiment and is
/// refused; [`NEW_RUN_KEYS`] are refused with `--set` and ignored in the file.
pub const RESUMABLE_KEYS: &[&str] = &[
    "train.epochs",
    "train.max_steps",
    "train.time_budget_minutes",
    "train.eval_every",
    "train.eval_max_images",
    "train.sample_every",
    "train.log_every",
    "train.threads",
    "train.device",
    "train.checkpoint_every_minutes",
    "train.snapshot_every_epochs",
    "train.precision",
    "data.dir",
    "optim.lr",
];

/// The keys that only place a new run (`output.dir`: where its directory is created). A
/// resumed run stays in its directory, so `--set` of these is refused on resume
/// ([`TrainConfig::check_resume_overrides`]); their value in the run's `config.toml` is not
/// compared with the checkpoint's.
pub const NEW_RUN_KEYS: &[&str] = &["output.dir"];

/// Applies one `section.key=value` override; the value is parsed as TOML (so `20`, `1e-4`,
/// `true`, `[0.5, 0.999]`, `"cpu"`), and a bare word is taken as a string.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |what: String| ConfigError::Override {
        arg: arg.to_string(),
        what,
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| err("expected section.key=value".into()))?;
    let (section, field) = key
        .trim()
        .split_once('.')
        .ok_or_else(|| err("expected section.key=value".into()))?;
    let defaults = toml::Table::try_from(TrainConfig::default()).expect("the defaults serialise");
    let Some(toml::Value::Table(known)) = defaults.get(section) else {
        let names: Vec<&str> = defaults.keys().map(String::as_str).collect();
        return Err(err(format!(
            "unknown section '{section}', expected one of {}",
            names.join(", ")
        )));
    };
    if !known.contains_key(field) {
        let names: Vec<&str> = known.keys().map(String::as_str).collect();
        return Err(err(format!(
            "unknown key '{field}' in [{section}], expected one of {}",
            names.join(", ")
        )));
    }
    let value = value.trim();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let entry = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => {
            t.insert(field.to_string(), parsed);
            Ok(())
        }
        _ => Err(err(format!("[{section}] in the file is not a table"))),
    }
}
