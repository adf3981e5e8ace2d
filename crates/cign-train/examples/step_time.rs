//! Times full training steps of a config's model on random MNIST-shaped data and prints one
//! JSON object: batch building (noise, mismatched pairs) + the five-term objective + backward
//! + AdamW, the step of `cign-train`. Used by `scripts/compare_speed.py`.
//!
//! `cargo run --release -p cign-train --example step_time -- CONFIG [--batch 256] [--steps 5]
//!  [--warmup 1] [--threads 2] [--device cpu|cuda]`

use std::time::Instant;

use anyhow::{bail, Result};
use cign_core::Objective;
use cign_data::{BatchSampler, SamplerConfig};
use cign_train::trainer::to_train_batch;
use cign_train::{ModelState, TrainConfig};
use tch::{Device, Kind, Tensor};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(config) = args.get(1).filter(|a| !a.starts_with("--")) else {
        bail!("usage: step_time CONFIG [--batch B] [--steps N] [--warmup W] [--threads T] [--device cpu|cuda]");
    };
    let batch: usize = arg(&args, "--batch", "256").parse()?;
    let steps: usize = arg(&args, "--steps", "5").parse()?;
    let warmup: usize = arg(&args, "--warmup", "1").parse()?;
    let threads: i32 = arg(&args, "--threads", "0").parse()?;
    let device = match arg(&args, "--device", "cpu").as_str() {
        "cuda" => Device::Cuda(0),
        _ => Device::Cpu,
    };
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let malloc = cign_core::runtime::tune_malloc();
    let cfg = TrainConfig::load(std::path::Path::new(config), &[])?;
    let mut ms = ModelState::new(&cfg, device)?;
    let mut objective = Objective::new(&cfg.model, cfg.loss.objective(), device)?;
    let sampler = BatchSampler::new(SamplerConfig {
        batch_size: batch,
        noise_std: cfg.data.train_noise_std,
        mismatch_per_real: if cfg.model.conditioning.is_conditional() {
            cfg.data.mismatch_per_real
        } else {
            0
        },
        num_classes: cfg.model.num_classes,
        drop_last: false,
        seed: 0,
    })?;
    let x = Tensor::rand([batch as i64, 1, 28, 28], (Kind::Float, device)) * 2.0 - 1.0;
    let y = Tensor::randint(cfg.model.num_classes, [batch as i64], (Kind::Int64, device));
    let mut times = Vec::new();
    for i in 0..warmup + steps {
        let t0 = Instant::now();
        let tb = to_train_batch(sampler.make_batch(&x, &y, i as u64));
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
            "config": config,
            "batch": batch,
            "threads": tch::get_num_threads(),
            "malloc": format!("{malloc:?}"),
            "step_flops": cign_core::flops::training_step_flops(&cfg.model, batch as i64),
            "step_seconds": times,
        })
    );
    Ok(())
}
