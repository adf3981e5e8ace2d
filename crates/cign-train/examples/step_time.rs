//! Times full training steps of a config's model on random MNIST-shaped data and prints one
//! JSON object: batch building (noise, mismatched pairs) + the five-term objective + backward
//! + AdamW, the step of `cign-train`. Used by `scripts/compare_speed.py`.
//!
//! `cargo run --release -p cign-train --example step_time -- CONFIG [--batch 256] [--steps 5]
//!  [--warmup 1] [--threads 0] [--device cpu|cuda|cuda:N] [--precision fp32|bf16]`
//!  (defaults shown; `--threads 0` leaves libtorch's own thread count)

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use cign_core::{Objective, Precision};
use cign_data::{BatchSampler, SamplerConfig};
use cign_metrics::device::DeviceChoice;
use cign_train::{ModelState, TrainConfig};
use tch::{Kind, Tensor};

/// Time training steps of a config's model on random MNIST-shaped data (one JSON line).
#[derive(Debug, clap::Parser)]
struct Args {
    /// The TOML config whose model, loss and sampler settings are timed.
    config: PathBuf,
    /// Real images per step.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// libtorch intra-op threads (0 = libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: i32,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// fp32 or bf16 (default: the config's train.precision).
    #[arg(long)]
    precision: Option<Precision>,
}

fn main() -> ExitCode {
    cign_metrics::cli::main_with("warn", run)
}

fn run(args: Args) -> Result<()> {
    let Args {
        config,
        batch,
        steps,
        warmup,
        threads,
        device,
        precision,
    } = args;
    anyhow::ensure!(batch >= 2, "--batch {batch}: must be at least 2");
    anyhow::ensure!(steps >= 1, "--steps must be at least 1");
    let device = device.resolve()?;
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let malloc = cign_core::runtime::tune_malloc();
    let cfg = TrainConfig::load(&config, &[])?;
    let mut ms = ModelState::new(&cfg, device)?;
    if let Some(p) = precision {
        ms.model.set_precision(p)?;
    }
    let mut objective = Objective::new(&cfg.model, cfg.loss.clone(), device)?;
    let sampler = BatchSampler::new(SamplerConfig {
        batch_size: batch,
        drop_last: false,
        seed: 0,
        ..cfg.sampler_config()
    })?;
    let x = Tensor::rand([batch as i64, 1, 28, 28], (Kind::Float, device)) * 2.0 - 1.0;
    let y = Tensor::randint(cfg.model.num_classes, [batch as i64], (Kind::Int64, device));
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let tb = sampler.make_batch(&x, &y, i as u64);
        ms.optim.zero_grad();
        let terms = objective.training_loss(&ms.model, &ms.vs, &tb);
        terms.total.backward();
        ms.optim.step();
        let _ = terms.total.double_value(&[]);
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "impl": "cign",
            "config": config.display().to_string(),
            "batch": batch,
            "threads": tch::get_num_threads(),
            "precision": ms.model.precision().name(),
            "malloc": format!("{malloc:?}"),
            "step_flops": cign_core::flops::training_step_flops(&cfg.model, batch as i64),
            "step_seconds": times,
        })
    );
    Ok(())
}
