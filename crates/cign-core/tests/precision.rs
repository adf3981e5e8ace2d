//! bfloat16 mixed precision ([`Precision::Bf16`]) against float32.
//!
//! Scales. bfloat16 keeps 8 significant bits: one rounding moves a value by at most
//! `u = 2^-8` of its binade (relative error in `[2^-9, 2^-8]` at worst). Autocast rounds, at
//! every convolution and linear, the weight, the input activation and the output, and in the
//! backward pass the incoming gradient and both results: about six roundings per layer, ten
//! layers deep.
//!
//! * Quantities that are means over many elements or pass through no batch statistics are
//!   well conditioned and get fixed tolerances in units of `u`: each loss term (a mean absolute
//!   error over 25,000 to 230,000 elements) within [`LOSS_TOL`] relative, the eval-mode output
//!   within [`EVAL_OUT_TOL`] absolute.
//! * One training step's gradients are not. The network's BatchNorm normalises its `I x 1 x 1`
//!   latent (a sigmoid output whose batch standard deviation is ~0.13 at initialisation) and
//!   amplifies the latent's rounding about 8 times; the L1 distances flip the sign of every
//!   element whose residual is within the perturbation of zero; the gradients of the five terms
//!   partly cancel. Measured here, the float32 step itself, run from its initial variables and
//!   inputs rounded once to bfloat16 (one rounding of the weights and the images, none
//!   elsewhere), moves the whole gradient by 23% to 36% (relative norm; 11% to 19% for the
//!   reconstruction term alone) and the training-mode output by 0.009 to 0.12 (float32 itself
//!   lands 1e-5 to 2e-2 from the float64 gradient). So bfloat16's deviation of the
//!   training-mode output, the gradients, the AdamW update and the running statistics is judged
//!   against that sensitivity of the same step: at most [`K_SENSITIVITY`] times it. Six
//!   independent roundings per layer instead of one add up (in variance) to `sqrt(6) = 2.4`
//!   times the deviation; measured 1.2 to 2.0 for the gradients, 1.1 to 1.3 for the AdamW
//!   update, 1.2 to 2.6 for the running statistics and 1.3 to 2.9 for the training-mode output
//!   (batch statistics amplify each rounding); 5 leaves room above the largest.
//!
//! The single-step comparison cannot see a small bias: that is what the quality runs of
//! `scripts/bf16_quality.sh` are for (training curves and metrics of both precisions).

mod common;

use std::collections::BTreeMap;

use cign_core::{
    mismatch_pairs, AdamW, AdamWConfig, CignModel, Conditioning, ModelConfig, Objective,
    ObjectiveConfig, Precision, TrainBatch,
};
use common::fixtures::{max_abs, rel_norm};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// What one training step gives.
struct Step {
    out_eval: Tensor,
    out_train: Tensor,
    /// The five terms and the total.
    losses: Vec<(String, f64)>,
    grads: BTreeMap<String, Tensor>,
    /// Each trainable variable after one AdamW step minus before.
    updates: BTreeMap<String, Tensor>,
    /// BatchNorm running statistics after the step.
    stats: BTreeMap<String, Tensor>,
    /// Kinds of every variable, gradient and AdamW state tensor after the step.
    kinds: Vec<(String, Kind)>,
}

/// One training step of a freshly initialised model (seed `seed`) on a random batch of `b`
/// real images (and `b` noise images, `9 b` mismatched pairs), in `precision`, with variables
/// and inputs in `kind` (Float, or Double for the exact step).
fn run(cfg: &ModelConfig, precision: Precision, kind: Kind, seed: i64, b: i64) -> Step {
    run_with(
        cfg,
        &ObjectiveConfig::default(),
        precision,
        kind,
        seed,
        b,
        false,
    )
}

/// [`run`] with an objective config; `round` rounds the initial variables and the inputs to
/// bfloat16 (and back to `kind`) before the step.
fn run_with(
    cfg: &ModelConfig,
    obj: &ObjectiveConfig,
    precision: Precision,
    kind: Kind,
    seed: i64,
    b: i64,
    round: bool,
) -> Step {
    let dev = Device::Cpu;
    tch::manual_seed(seed);
    let mut vs = VarStore::new(dev);
    let mut model = CignModel::new(&vs.root(), cfg).unwrap();
    if kind == Kind::Double {
        vs.double();
    }
    model.set_precision(precision).unwrap();
    let r = |t: Tensor| {
        if round {
            t.to_kind(Kind::BFloat16).to_kind(kind)
        } else {
            t.to_kind(kind)
        }
    };
    if round {
        tch::no_grad(|| {
            for (_, mut v) in vs.variables() {
                let rounded = r(v.copy());
                v.copy_(&rounded);
            }
        });
    }
    let o = (Kind::Float, dev);
    let x = r(Tensor::rand([b, 1, 28, 28], o) * 2.0 - 1.0);
    let y = Tensor::randint(cfg.num_classes, [b], (Kind::Int64, dev));
    let z = r(Tensor::randn([b, 1, 28, 28], o));
    let yz = Tensor::randint(cfg.num_classes, [b], (Kind::Int64, dev));

    let out_eval = tch::no_grad(|| model.forward_t(&x, Some(&y), false));
    let stats_before: Vec<(String, Tensor)> = running_stats(&vs).into_iter().collect();
    let out_train = tch::no_grad(|| model.forward_t(&x, Some(&y), true));
    tch::no_grad(|| {
        let vars = vs.variables();
        for (n, t) in &stats_before {
            vars[n].shallow_clone().copy_(t);
        }
    });

    let (xm, ym) = if cfg.conditioning.is_conditional() {
        let (xm, ym) = mismatch_pairs(&x, &y, cfg.num_classes);
        (Some(xm), Some(ym))
    } else {
        (None, None)
    };
    let batch = TrainBatch {
        x,
        y,
        z,
        yz,
        x_mismatch: xm,
        y_mismatch: ym,
    };
    let mut objective = Objective::new(cfg, obj.clone(), dev).unwrap();
    let mut opt = AdamW::new(&vs, AdamWConfig::default());
    opt.zero_grad();
    let terms = objective.training_loss(&model, &vs, &batch);
    let mut losses: Vec<(String, f64)> = terms
        .named()
        .iter()
        .map(|(n, t)| (n.to_string(), t.double_value(&[])))
        .collect();
    losses.push(("total".into(), terms.total.double_value(&[])));
    terms.total.backward();
    let trainable: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, v)| v.requires_grad())
        .collect();
    let grads = trainable
        .iter()
        .map(|(n, v)| (n.clone(), v.grad().copy()))
        .collect();
    let before: Vec<Tensor> = trainable.iter().map(|(_, v)| v.copy()).collect();
    opt.step();
    let updates = trainable
        .iter()
        .zip(&before)
        .map(|((n, v), b)| (n.clone(), v - b))
        .collect();
    let mut kinds: Vec<(String, Kind)> = vs
        .variables()
        .into_iter()
        .map(|(n, v)| (n, v.kind()))
        .collect();
    kinds.extend(
        trainable
            .iter()
            .map(|(n, v)| (format!("grad of {n}"), v.grad().kind())),
    );
    kinds.extend(
        opt.state_tensors()
            .into_iter()
            .map(|(n, t)| (format!("adamw {n}"), t.kind())),
    );
    Step {
        out_eval,
        out_train,
        losses,
        grads,
        updates,
        stats: running_stats(&vs),
        kinds,
    }
}

fn running_stats(vs: &VarStore) -> BTreeMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .filter(|(n, _)| n.contains("running_"))
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

/// Distances of `s` from `r`: outputs (max abs; they lie in [-1, 1]), losses (relative),
/// gradients (relative Frobenius norm per tensor and of the whole gradient), AdamW updates
/// (relative norm of the whole update), running statistics (max abs).
#[derive(Debug, Default, Clone, Copy)]
struct Dist {
    out_eval: f64,
    out_train: f64,
    loss: f64,
    grad_whole: f64,
    grad_worst: f64,
    update: f64,
    stats: f64,
}

fn dist(s: &Step, r: &Step) -> Dist {
    let mut d = Dist {
        out_eval: max_abs(
            &s.out_eval.to_kind(Kind::Double),
            &r.out_eval.to_kind(Kind::Double),
        ),
        out_train: max_abs(
            &s.out_train.to_kind(Kind::Double),
            &r.out_train.to_kind(Kind::Double),
        ),
        ..Default::default()
    };
    for ((_, a), (_, b)) in s.losses.iter().zip(&r.losses) {
        d.loss = d.loss.max((a - b).abs() / b.abs().max(1e-30));
    }
    let (mut num, mut den) = (0.0, 0.0);
    for (n, g) in &s.grads {
        let e = &r.grads[n];
        d.grad_worst = d.grad_worst.max(rel_norm(g, e));
        num += (g.to_kind(Kind::Double) - e.to_kind(Kind::Double))
            .norm()
            .double_value(&[])
            .powi(2);
        den += e.to_kind(Kind::Double).norm().double_value(&[]).powi(2);
    }
    d.grad_whole = (num / den).sqrt();
    let (mut num, mut den) = (0.0, 0.0);
    for (n, u) in &s.updates {
        let e = &r.updates[n];
        num += (u.to_kind(Kind::Double) - e.to_kind(Kind::Double))
            .norm()
            .double_value(&[])
            .powi(2);
        den += e.to_kind(Kind::Double).norm().double_value(&[]).powi(2);
    }
    d.update = (num / den).sqrt();
    for (n, t) in &s.stats {
        d.stats = d.stats.max(max_abs(
            &t.to_kind(Kind::Double),
            &r.stats[n].to_kind(Kind::Double),
        ));
    }
    d
}

fn configs() -> Vec<(&'static str, ModelConfig)> {
    let mut v = vec![
        (
            "channel",
            ModelConfig::with_dims(Conditioning::Channel, 8, 16, 5),
        ),
        (
            "filter",
            ModelConfig::with_dims(Conditioning::Filter, 8, 16, 5),
        ),
        ("ign", ModelConfig::ign(4)),
    ];
    for (_, c) in &mut v {
        c.dropout = 0.0;
    }
    v
}

/// Relative tolerance of each loss term: `8 u = 2^-5`. A term is a mean of `|a - b|` over
/// at least 25,000 elements whose relative errors are a few `u` and partly average out;
/// measured at most 4.2e-3 (1.1 `u`) over the configurations and seeds below.
const LOSS_TOL: f64 = 1.0 / 32.0;
/// Absolute tolerance of the eval-mode output (in [-1, 1], bfloat16 spacing `2^-8` in
/// [0.5, 1)): four spacings, `2^-6`. Running statistics at initialisation normalise nothing
/// away, so each output element carries the roundings of its ten layers, sqrt(30) half
/// spacings in expectation, 2.7 spacings; measured at most 3.8e-3 (one spacing).
const EVAL_OUT_TOL: f64 = 1.0 / 64.0;
/// bfloat16's deviation from float32 may be this multiple of the float32 step's own deviation
/// when its initial variables and inputs are rounded once to bfloat16 (module docs).
const K_SENSITIVITY: f64 = 5.0;

/// Structural checks of a bfloat16 step: every variable, gradient and AdamW state tensor is
/// float32 (the master weights, and what checkpoints hold), every trainable parameter got a
/// non-zero gradient.
fn structure(s: &Step) -> Vec<String> {
    let mut fails: Vec<String> = s
        .kinds
        .iter()
        // AdamW's step counter is an integer
        .filter(|(n, k)| *k != Kind::Float && !(n.starts_with("adamw") && *k == Kind::Int64))
        .map(|(n, k)| format!("{n} is {k:?}, not Float"))
        .collect();
    for (n, g) in &s.grads {
        if g.abs().sum(Kind::Double).double_value(&[]) == 0.0 {
            fails.push(format!("{n}: zero gradient"));
        }
    }
    fails
}

/// One bfloat16 training step (the seven passes, the five terms, backward, AdamW) against the
/// float32 step from the same variables and batch, for the channel, filter and IGN networks
/// and three seeds each (batch 32, dropout 0; see the module docs for the tolerances).
#[test]
fn one_bf16_training_step_against_the_fp32_step() {
    let _serial = common::rng_lock();
    tch::set_num_threads(1);
    let mut fails = Vec::new();
    let mut worst_ratio: f64 = 0.0;
    for (name, cfg) in configs() {
        for seed in [1, 2, 3] {
            let fp32 = run(&cfg, Precision::Fp32, Kind::Float, seed, 32);
            let bf16 = run(&cfg, Precision::Bf16, Kind::Float, seed, 32);
            let obj = ObjectiveConfig::default();
            let rounded = run_with(&cfg, &obj, Precision::Fp32, Kind::Float, seed, 32, true);
            let (d, r) = (dist(&bf16, &fp32), dist(&rounded, &fp32));
            println!(
                "{name} seed {seed}: bf16 vs fp32 (rounded-once fp32 vs fp32): loss {:.2e} ({:.2e}), \
                 eval out {:.2e} ({:.2e}), train out {:.2e} ({:.2e}), gradient {:.2e} ({:.2e}), \
                 AdamW update {:.2e} ({:.2e}), running stats {:.2e} ({:.2e})",
                d.loss, r.loss, d.out_eval, r.out_eval, d.out_train, r.out_train, d.grad_whole,
                r.grad_whole, d.update, r.update, d.stats, r.stats
            );
            let tag = format!("{name} seed {seed}");
            fails.extend(structure(&bf16).into_iter().map(|f| format!("{tag}: {f}")));
            if d.loss > LOSS_TOL {
                fails.push(format!(
                    "{tag}: loss rel err {:.3e} > {LOSS_TOL:.3e}",
                    d.loss
                ));
            }
            if d.out_eval > EVAL_OUT_TOL {
                fails.push(format!(
                    "{tag}: eval output err {:.3e} > {EVAL_OUT_TOL:.3e}",
                    d.out_eval
                ));
            }
            for (what, got, scale) in [
                ("training-mode output", d.out_train, r.out_train),
                ("gradient", d.grad_whole, r.grad_whole),
                ("AdamW update", d.update, r.update),
                ("running statistics", d.stats, r.stats),
            ] {
                worst_ratio = worst_ratio.max(got / scale);
                if got > K_SENSITIVITY * scale {
                    fails.push(format!(
                        "{tag}: {what} err {got:.3e} > {K_SENSITIVITY} x {scale:.3e}"
                    ));
                }
            }
        }
    }
    println!(
        "largest ratio to the rounded-once sensitivity: {worst_ratio:.2} (allowed {K_SENSITIVITY})"
    );
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// How many times float32's own error (its distance from the float64 step) the bfloat16 path
/// must move the eval output and the losses away from float32. A silent float32 path stays
/// within a few times that error; bfloat16's 8-bit mantissa moves them by hundreds to
/// thousands of times (the losses of the channel model: 684 times on an AMD EPYC with
/// AVX512-BF16, whose bfloat16 products accumulate in float32, over 1000 on the earlier
/// machine).
const SEPARATION: f64 = 100.0;

/// The bfloat16 path computes in bfloat16 (no silent float32): libtorch's autocast is on inside
/// the scope (convolutions, transposed convolutions, linears and batched products return
/// bfloat16), and the model's eval output and the step's losses move away from float32 by
/// [`SEPARATION`] times float32's own error or more.
#[test]
fn the_bf16_path_computes_in_bf16() {
    let _serial = common::rng_lock();
    tch::set_num_threads(1);
    let dev = Device::Cpu;
    let o = (Kind::Float, dev);
    let x = Tensor::randn([2, 3, 6, 6], o);
    let w = Tensor::randn([4, 3, 3, 3], o);
    let wt = Tensor::randn([3, 4, 3, 3], o);
    let kinds = || {
        [
            x.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
                .kind(),
            x.conv_transpose2d(&wt, None::<Tensor>, [1, 1], [0, 0], [0, 0], 1, [1, 1])
                .kind(),
            x.linear(&Tensor::randn([5, 6], o), Some(&Tensor::randn([5], o)))
                .kind(),
            x.view([6, 6, 6]).bmm(&x.view([6, 6, 6])).kind(),
        ]
    };
    assert_eq!(kinds(), [Kind::Float; 4]);
    let inside = cign_core::precision::autocast(Precision::Bf16, dev, kinds);
    assert_eq!(inside, [Kind::BFloat16; 4]);
    assert!(!cign_core::precision::autocast_enabled(dev));

    for (name, cfg) in configs() {
        let exact = run(&cfg, Precision::Fp32, Kind::Double, 1, 16);
        let fp32 = run(&cfg, Precision::Fp32, Kind::Float, 1, 16);
        let bf16 = run(&cfg, Precision::Bf16, Kind::Float, 1, 16);
        assert_eq!(bf16.out_eval.kind(), Kind::Float, "outputs are float32");
        let (d32, d16) = (dist(&fp32, &exact), dist(&bf16, &fp32));
        let loss32 = fp32
            .losses
            .iter()
            .zip(&exact.losses)
            .map(|((_, a), (_, b))| (a - b).abs())
            .fold(0.0, f64::max);
        let loss16 = bf16
            .losses
            .iter()
            .zip(&fp32.losses)
            .map(|((_, a), (_, b))| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "{name}: eval output: fp32 vs float64 {:.2e}, bf16 vs fp32 {:.2e}; losses: {:.2e}, {:.2e}",
            d32.out_eval, d16.out_eval, loss32, loss16
        );
        assert!(
            d16.out_eval > SEPARATION * d32.out_eval && d16.out_eval > 1e-7,
            "{name}: eval output {:.3e} from fp32, fp32 {:.3e} from float64",
            d16.out_eval,
            d32.out_eval
        );
        assert!(
            loss16 > SEPARATION * loss32,
            "{name}: losses {loss16:.3e} from fp32, fp32 {loss32:.3e} from float64"
        );
    }
}

/// With dropout, the bfloat16 step draws the same masks as the float32 step (cign's CPU dropout
/// runs on float32 activations in both): its training-mode output stays within the rounding
/// sensitivity of the float32 one, while other masks move it by far more.
#[test]
fn dropout_masks_are_the_same_in_both_precisions() {
    let _serial = common::rng_lock();
    tch::set_num_threads(1);
    let obj = ObjectiveConfig::default();
    for (name, mut cfg) in configs() {
        cfg.dropout = if cfg.architecture == cign_core::Architecture::Ign {
            0.1
        } else {
            0.15
        };
        let fp32 = run(&cfg, Precision::Fp32, Kind::Float, 1, 32);
        let bf16 = run(&cfg, Precision::Bf16, Kind::Float, 1, 32);
        let rounded = run_with(&cfg, &obj, Precision::Fp32, Kind::Float, 1, 32, true);
        // other masks: the same variables and batch, torch's generator moved on
        let other = {
            let _guard = tch::no_grad_guard();
            tch::manual_seed(1);
            let vs = VarStore::new(Device::Cpu);
            let model = CignModel::new(&vs.root(), &cfg).unwrap();
            let x = Tensor::rand([32, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
            let y = Tensor::randint(cfg.num_classes, [32], (Kind::Int64, Device::Cpu));
            let _ = Tensor::randn([32, 1, 28, 28], (Kind::Float, Device::Cpu));
            let _ = Tensor::randint(cfg.num_classes, [32], (Kind::Int64, Device::Cpu));
            let _ = model.forward_t(&x, Some(&y), false);
            let _ = model.forward_t(&x, Some(&y), true); // masks drawn, then new ones:
            model.forward_t(&x, Some(&y), true)
        };
        let d = max_abs(&bf16.out_train, &fp32.out_train);
        let s = max_abs(&rounded.out_train, &fp32.out_train);
        let m = max_abs(&other, &fp32.out_train);
        println!("{name}: training-mode output with dropout: bf16 vs fp32 {d:.3e}, rounded-once {s:.3e}, other masks {m:.3e}");
        assert!(
            d <= K_SENSITIVITY * s,
            "{name}: {d:.3e} > {K_SENSITIVITY} x {s:.3e}"
        );
        assert!(
            m > 2.0 * K_SENSITIVITY * s,
            "{name}: the control does not separate"
        );
    }
}

/// [`Precision::Fp32`] is the float32 path: a model set to it explicitly, even inside an
/// enclosing bfloat16 scope, gives bit for bit the same step as a model that never heard of
/// precision; and variables trained in bfloat16 run in float32 (and back) unchanged.
#[test]
fn fp32_is_unchanged_and_precision_is_switchable() {
    let _serial = common::rng_lock();
    tch::set_num_threads(1);
    let (_, cfg) = &configs()[0];
    // the passes and the losses (backward runs outside any autocast scope, as in training)
    let passes = || {
        tch::manual_seed(5);
        let vs = VarStore::new(Device::Cpu);
        let mut model = CignModel::new(&vs.root(), cfg).unwrap();
        model.set_precision(Precision::Fp32).unwrap();
        let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
        let (xm, ym) = mismatch_pairs(&x, &y, 10);
        let batch = TrainBatch {
            z: Tensor::randn([8, 1, 28, 28], (Kind::Float, Device::Cpu)),
            yz: Tensor::randint(10, [8], (Kind::Int64, Device::Cpu)),
            x: x.shallow_clone(),
            y: y.shallow_clone(),
            x_mismatch: Some(xm),
            y_mismatch: Some(ym),
        };
        let mut objective = Objective::new(cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
        let eval = model.generate(&x, Some(&y));
        let train = tch::no_grad(|| model.forward_t(&x, Some(&y), true));
        let terms = objective.training_loss(&model, &vs, &batch).to_f64();
        (eval, train, terms)
    };
    let plain = passes();
    let nested = cign_core::precision::autocast(Precision::Bf16, Device::Cpu, passes);
    assert!(plain.0.equal(&nested.0));
    assert!(plain.1.equal(&nested.1));
    assert_eq!(plain.2, nested.2);

    // a bfloat16 training step, then the same variables in either precision
    tch::manual_seed(6);
    let vs = VarStore::new(Device::Cpu);
    let mut model = CignModel::new(&vs.root(), cfg).unwrap();
    model.set_precision(Precision::Bf16).unwrap();
    let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
    let (xm, ym) = mismatch_pairs(&x, &y, 10);
    let batch = TrainBatch {
        z: Tensor::randn([8, 1, 28, 28], (Kind::Float, Device::Cpu)),
        yz: Tensor::randint(10, [8], (Kind::Int64, Device::Cpu)),
        x: x.shallow_clone(),
        y: y.shallow_clone(),
        x_mismatch: Some(xm),
        y_mismatch: Some(ym),
    };
    let mut objective = Objective::new(cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
    let mut opt = AdamW::new(&vs, AdamWConfig::default());
    opt.zero_grad();
    let terms = objective.training_loss(&model, &vs, &batch);
    assert_eq!(objective.frozen_model().precision(), Precision::Bf16);
    terms.total.backward();
    opt.step();
    let val = objective.validation_loss(&model, &vs, &batch).to_f64();
    let mut fresh_vs = VarStore::new(Device::Cpu);
    let mut fresh = CignModel::new(&fresh_vs.root(), cfg).unwrap();
    fresh_vs.copy(&vs).unwrap();
    let a = model.generate(&x, Some(&y));
    let b = fresh.generate(&x, Some(&y));
    fresh.set_precision(Precision::Bf16).unwrap();
    assert!(
        a.equal(&fresh.generate(&x, Some(&y))),
        "same variables, same bf16 output"
    );
    model.set_precision(Precision::Fp32).unwrap();
    assert!(
        model.generate(&x, Some(&y)).equal(&b),
        "same variables, same fp32 output"
    );
    assert!(max_abs(&a, &b) <= EVAL_OUT_TOL);
    let val32 = objective.validation_loss(&model, &vs, &batch).to_f64();
    assert!(
        (val.total - val32.total).abs() <= LOSS_TOL * val32.total.abs(),
        "validation loss bf16 {} fp32 {}",
        val.total,
        val32.total
    );
}
