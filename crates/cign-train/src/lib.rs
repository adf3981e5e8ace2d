//! # cign-train
//!
//! The main job of cign: train a CIGN model from a TOML config ([`config`]), with validation,
//! atomic `last`/`best` checkpoints and exact resume ([`checkpoint`]), sample grids
//! ([`images`], [`sampling`]), `metrics.jsonl` and `loss.png` ([`run_dir`], [`plot`]).
//!
//! Binaries: `cign-train CONFIG [--set section.key=value ...] [--resume RUN_DIR] [--summary]`,
//! `cign-sample` (PNG grids, IDX output, projection of a given image), `cign-eval` (one model at
//! the evaluation protocol, [`evaluation`]), `cign-curve` (every epoch snapshot of a run,
//! [`learning_curve`]) and `cign-export` (a run's weights file).

pub mod checkpoint;
pub mod config;
pub mod doctor;
pub mod evaluation;
pub mod images;
pub mod learning_curve;
pub mod lock;
pub mod logging;
pub mod outputs;
pub mod plot;
pub mod run_dir;
pub mod run_model;
pub mod sampling;
pub mod signals;
pub mod summary;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{ModelState, RunSummary, StopReason, Trainer};
