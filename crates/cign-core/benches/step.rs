//! `cargo bench -p cign-core`: forward pass, full training step (objective + backward + AdamW)
//! and generation throughput of the paper's models, on the CPU and on CUDA when present; the
//! training step in the authors' formulation against the default one (group `formulation`,
//! one model built per formulation), in float32 against bfloat16 (group `precision`), and the
//! filter model's per-sample depthwise convolutions against the `im2col` reference of
//! `tests/common/unfold.rs` (group `depthwise`). `cargo bench -p cign-core -- precision` runs
//! one group alone.
//!
//! Every line of the summary prints the FLOPs of the operation (see `cign_core::flops`) next to
//! its time, and the time the FLOPs would take at the machine's measured float32 matmul rate
//! (the "floor"), so the gap is visible.
//!
//! Knobs (environment):
//! * `CIGN_BENCH_QUICK` (default `1` on CPU-only machines): every operation runs once as a
//!   warm-up; one that took over 0.5 s is then timed by hand (`CIGN_BENCH_REPS` runs; a run
//!   over 10 s is not repeated, the warm-up run is the measurement) instead of by criterion,
//!   whose minimum of 10 samples would take many minutes for the batch-256 training steps on 2
//!   cores; the IGN baseline and the formulation, precision and depthwise comparisons run at
//!   the small batch only.
//!   `0`: criterion (10 samples, 10 s) everywhere.
//! * `CIGN_BENCH_REPS`: repetitions of the hand-timed measurements (default 2).
//! * `CIGN_BENCH_MODELS`: comma-separated subset of `large_channel,small_channel,small_filter,large_filter,ign`.
//! * `CIGN_BENCH_CPU=0`: skip the CPU when CUDA is present.
//! * `CIGN_BENCH_THREADS`: libtorch's intra-op threads (default: libtorch's choice). On a
//!   machine shared with other busy processes, 1 thread gives steadier numbers.

use std::time::{Duration, Instant};

#[path = "../tests/common/unfold.rs"]
mod unfold;

use cign_core::depthwise::{depthwise_conv2d, depthwise_conv_transpose2d};
use cign_core::flops::{forward_flops, training_step_flops};
use cign_core::{
    layer_geometry, mismatch_pairs, AdamW, AdamWConfig, Architecture, CignModel, Conditioning,
    Formulation, ModelConfig, Objective, ObjectiveConfig, Precision, TrainBatch,
};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const SMALL_BATCH: i64 = 16;
const LARGE_BATCH: i64 = 256;
/// Quick mode: operations slower than this (seconds per run) are timed by hand.
const QUICK_LIMIT: f64 = 0.5;
/// Quick mode: operations slower than this are run once (no separate warm-up).
const SINGLE_RUN_LIMIT: f64 = 10.0;

fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| !matches!(v.trim(), "0" | "false" | "no" | ""))
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

struct Setup {
    vs: VarStore,
    model: CignModel,
    objective: Objective,
    opt: AdamW,
    batch: TrainBatch,
}

fn setup(cfg: &ModelConfig, b: i64, device: Device, form: Formulation) -> Setup {
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let model = CignModel::with_formulation(&vs.root(), cfg, form).unwrap();
    let objective =
        Objective::with_formulation(cfg, ObjectiveConfig::default(), device, form).unwrap();
    let opt = AdamW::new(&vs, AdamWConfig::default());
    let o = (Kind::Float, device);
    let x = Tensor::rand([b, cfg.image_channels, 28, 28], o) * 2.0 - 1.0;
    let y = Tensor::randint(cfg.num_classes, [b], (Kind::Int64, device));
    let (xm, ym) = if cfg.conditioning.is_conditional() {
        let (xm, ym) = mismatch_pairs(&x, &y, cfg.num_classes);
        (Some(xm), Some(ym))
    } else {
        (None, None)
    };
    let batch = TrainBatch {
        z: Tensor::randn([b, cfg.image_channels, 28, 28], o),
        yz: Tensor::randint(cfg.num_classes, [b], (Kind::Int64, device)),
        x,
        y,
        x_mismatch: xm,
        y_mismatch: ym,
    };
    Setup {
        vs,
        model,
        objective,
        opt,
        batch,
    }
}

impl Setup {
    fn step(&mut self) {
        self.opt.zero_grad();
        let terms = self
            .objective
            .training_loss(&self.model, &self.vs, &self.batch);
        terms.total.backward();
        self.opt.step();
    }
    fn forward(&self) {
        // one training-mode pass of f with its autograd graph (as in the objective)
        let out = self
            .model
            .forward_t(&self.batch.x, Some(&self.batch.y), true);
        let _ = std::hint::black_box(out);
    }
    fn generate(&self) {
        let out = self.model.generate(&self.batch.z, Some(&self.batch.yz));
        let _ = std::hint::black_box(out);
    }
}

/// Forward and backward of the per-sample depthwise convolutions of the filter model `cfg`'s
/// ten layers at batch `b` (random inputs and kernels), through the library's functions or the
/// `im2col` reference.
fn depthwise_layers(cfg: &ModelConfig, b: i64, device: Device, reference: bool) -> impl FnMut() {
    let o = (Kind::Float, device);
    let layers: Vec<_> = layer_geometry(cfg)
        .into_iter()
        .map(|g| {
            let x = Tensor::randn([b, g.c_in, g.in_size, g.in_size], o).set_requires_grad(true);
            let k = Tensor::randn([b, g.c_in, g.kernel, g.kernel], o).set_requires_grad(true);
            (g, x, k)
        })
        .collect();
    move || {
        for (g, x, k) in &layers {
            let (s, p) = (g.stride, g.padding);
            let y = match (reference, g.transposed) {
                (false, false) => depthwise_conv2d(x, k, s, p),
                (false, true) => depthwise_conv_transpose2d(x, k, s, p),
                (true, false) => unfold::depthwise_conv2d(x, k, s, p),
                (true, true) => unfold::depthwise_conv_transpose2d(x, k, s, p),
            };
            y.sum(Kind::Float).backward();
        }
    }
}

/// Sustained float32 matmul rate of this device (GFLOP/s), the floor's yardstick.
fn matmul_rate(device: Device) -> f64 {
    let n = 1024;
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
    for _ in 0..2 {
        let _ = a.mm(&b);
    }
    sync(device);
    let reps = if device == Device::Cpu { 10 } else { 200 };
    let t = Instant::now();
    for _ in 0..reps {
        let _ = a.mm(&b);
    }
    sync(device);
    2.0 * (n * n * n) as f64 * reps as f64 / t.elapsed().as_secs_f64() / 1e9
}

struct Report {
    rows: Vec<String>,
    rate: f64,
}

impl Report {
    fn add(&mut self, what: &str, secs: f64, flops: f64, extra: &str) {
        let floor = flops / (self.rate * 1e9);
        let line = format!(
            "{what:<44} {:>10.1} ms  {:>9.2} GFLOP  {:>7.1} GFLOP/s  floor {:>8.1} ms ({:>5.1}x){extra}",
            secs * 1e3,
            flops / 1e9,
            flops / secs / 1e9,
            floor * 1e3,
            secs / floor
        );
        println!("{line}");
        self.rows.push(line);
    }
}

/// Times `f`: one warm-up run first; in quick mode an operation whose warm-up took longer
/// than `QUICK_LIMIT` is timed by hand (`reps` runs, 1 when a run takes over 10 s), otherwise
/// criterion measures it (10 flat samples).
#[allow(clippy::too_many_arguments)]
fn measure(
    c: &mut Criterion,
    group: &str,
    (func, param): (String, String),
    device: Device,
    elements: Option<u64>,
    quick: bool,
    reps: usize,
    mut f: impl FnMut(),
) -> f64 {
    sync(device);
    let t = Instant::now();
    f();
    sync(device);
    let warm = t.elapsed().as_secs_f64();
    if quick && warm > SINGLE_RUN_LIMIT {
        // the first run's one-time costs are negligible at this length: it is the measurement
        println!(
            "{group}/{func}/{param}: hand-timed, single run: {:.1} ms",
            warm * 1e3
        );
        return warm;
    }
    if quick && warm > QUICK_LIMIT {
        let reps = reps.max(1);
        let mut total = 0.0;
        for _ in 0..reps {
            let t = Instant::now();
            f();
            sync(device);
            total += t.elapsed().as_secs_f64();
        }
        let mean = total / reps as f64;
        println!(
            "{group}/{func}/{param}: hand-timed, {reps} run(s) after a warm-up of {:.1} ms: {:.1} ms",
            warm * 1e3,
            mean * 1e3
        );
        return mean;
    }
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(if quick { 2 } else { 10 }));
    if let Some(n) = elements {
        g.throughput(Throughput::Elements(n));
    }
    let mut spent = Duration::ZERO;
    let mut iters = 0u64;
    g.bench_function(BenchmarkId::new(func, param), |bch| {
        bch.iter_custom(|n| {
            sync(device);
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            sync(device);
            let e = t.elapsed();
            spent += e;
            iters += n;
            e
        })
    });
    g.finish();
    spent.as_secs_f64() / iters.max(1) as f64
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    cign_core::runtime::tune_malloc();
    if let Some(n) = std::env::var("CIGN_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        tch::set_num_threads(n);
    }
    let cuda = tch::Cuda::is_available();
    let mut devices = Vec::new();
    if !cuda || env_flag("CIGN_BENCH_CPU").unwrap_or(true) {
        devices.push(Device::Cpu);
    }
    if cuda {
        devices.push(Device::Cuda(0));
    }
    let quick = env_flag("CIGN_BENCH_QUICK").unwrap_or(!cuda);
    let reps: usize = std::env::var("CIGN_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let all_models = [
        (
            "large_channel",
            ModelConfig::with_dims(Conditioning::Channel, 64, 128, 5),
        ),
        (
            "small_channel",
            ModelConfig::with_dims(Conditioning::Channel, 16, 128, 5),
        ),
        (
            "small_filter",
            ModelConfig::with_dims(Conditioning::Filter, 64, 128, 5),
        ),
        (
            "large_filter",
            ModelConfig::with_dims(Conditioning::Filter, 128, 128, 5),
        ),
        (
            "ign",
            ModelConfig::with_dims(Conditioning::None, 64, 128, 5),
        ),
    ];
    let wanted: Option<Vec<String>> = std::env::var("CIGN_BENCH_MODELS")
        .ok()
        .map(|s| s.split(',').map(|m| m.trim().to_string()).collect());
    let models: Vec<_> = all_models
        .iter()
        .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == n)))
        .collect();

    let mut summary = Vec::new();
    for &device in &devices {
        let dname = if device == Device::Cpu {
            "cpu".to_string()
        } else {
            "cuda".to_string()
        };
        let rate = matmul_rate(device);
        println!(
            "\n== {dname}: {} threads, float32 1024^3 matmul {rate:.1} GFLOP/s (the floor's yardstick); quick = {quick}",
            tch::get_num_threads()
        );
        if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
            println!("   load average at start: {}", l.trim());
        }
        let mut rep = Report {
            rows: Vec::new(),
            rate,
        };
        for (name, cfg) in &models {
            for b in [SMALL_BATCH, LARGE_BATCH] {
                // the baseline is not a paper model: small batch only in quick mode
                if quick && *name == "ign" && b == LARGE_BATCH {
                    continue;
                }
                let mut s = setup(cfg, b, device, Formulation::default_for(device));
                let id = |op: &str| (format!("{dname}/{op}"), format!("{name}/b{b}"));
                let t = measure(
                    &mut c,
                    "forward",
                    id("forward"),
                    device,
                    None,
                    quick,
                    reps,
                    || s.forward(),
                );
                rep.add(
                    &format!("{dname} forward  {name:<14} B={b}"),
                    t,
                    forward_flops(cfg, b),
                    "",
                );
                let t = measure(
                    &mut c,
                    "train_step",
                    id("train_step"),
                    device,
                    None,
                    quick,
                    reps,
                    || s.step(),
                );
                rep.add(
                    &format!("{dname} step     {name:<14} B={b}"),
                    t,
                    training_step_flops(cfg, b),
                    "",
                );
                if b == LARGE_BATCH {
                    let t = measure(
                        &mut c,
                        "generate",
                        id("generate"),
                        device,
                        Some(b as u64),
                        quick,
                        reps,
                        || s.generate(),
                    );
                    let extra = format!("  {:.0} images/s", b as f64 / t);
                    rep.add(
                        &format!("{dname} generate {name:<14} B={b}"),
                        t,
                        forward_flops(cfg, b),
                        &extra,
                    );
                }
            }
        }
        // Comparisons at the small batch (both batches with CIGN_BENCH_QUICK=0).
        let batches: &[i64] = if quick {
            &[SMALL_BATCH]
        } else {
            &[SMALL_BATCH, LARGE_BATCH]
        };
        // The authors' formulation against the default (one model built per formulation), full
        // training step.
        for (name, cfg) in &models {
            if cfg.architecture == Architecture::Ign {
                continue; // one formulation
            }
            for &b in batches {
                for (fname, form) in [
                    ("authors", Formulation::AUTHORS),
                    ("default", Formulation::default_for(device)),
                ] {
                    let mut s = setup(cfg, b, device, form);
                    let id = (format!("{dname}/step_{fname}"), format!("{name}/b{b}"));
                    let t = measure(&mut c, "formulation", id, device, None, quick, reps, || {
                        s.step()
                    });
                    rep.add(
                        &format!("{dname} step     {name:<14} B={b} {fname}"),
                        t,
                        training_step_flops(cfg, b),
                        "",
                    );
                }
            }
        }
        // The filter model's per-sample depthwise convolutions (forward + backward of its ten
        // layers): the library's grouped convolution against the im2col reference.
        if models.iter().any(|(n, _)| *n == "small_filter") {
            let cfg = ModelConfig::with_dims(Conditioning::Filter, 64, 128, 5);
            for &b in batches {
                for (fname, reference) in [("grouped", false), ("unfold", true)] {
                    let mut f = depthwise_layers(&cfg, b, device, reference);
                    let id = (format!("{dname}/{fname}"), format!("small_filter/b{b}"));
                    let t = measure(&mut c, "depthwise", id, device, None, quick, reps, &mut f);
                    println!(
                        "{dname} depthwise small_filter B={b} {fname}: {:.1} ms",
                        t * 1e3
                    );
                    rep.rows.push(format!(
                        "{dname} depthwise small_filter B={b} {fname:<8} {:>10.1} ms (forward + backward of the ten depthwise layers)",
                        t * 1e3
                    ));
                }
            }
        }
        // float32 against bfloat16 mixed precision (cign_core::precision), full training step.
        for (name, cfg) in &models {
            for &b in batches {
                for precision in [Precision::Fp32, Precision::Bf16] {
                    let mut s = setup(cfg, b, device, Formulation::default_for(device));
                    s.model.set_precision(precision).unwrap();
                    let id = (format!("{dname}/step_{precision}"), format!("{name}/b{b}"));
                    let t = measure(&mut c, "precision", id, device, None, quick, reps, || {
                        s.step()
                    });
                    rep.add(
                        &format!("{dname} step     {name:<14} B={b} {precision}"),
                        t,
                        training_step_flops(cfg, b),
                        "",
                    );
                }
            }
        }
        summary.push(format!("== {dname}: matmul {rate:.1} GFLOP/s"));
        summary.extend(rep.rows);
    }
    c.final_summary();
    println!("\n==== summary (time per operation; step = objective + backward + AdamW; FLOPs: cign_core::flops) ====");
    for l in summary {
        println!("{l}");
    }
}
