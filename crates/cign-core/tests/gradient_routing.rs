//! Gradient routing of every term (the table of `cign_core::objective`, from the authors'
//! `get_losses`): which parameters get a non-zero gradient, that the
//! frozen copy gets none, and whether the gradient flows through the inner call (idempotence
//! terms) or only through the outer call (tightness terms).

use cign_core::{
    mismatch_pairs, CignModel, Conditioning, LossTerms, ModelConfig, Objective, ObjectiveConfig,
    TrainBatch,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

const B: i64 = 3;

struct Setup {
    vs: VarStore,
    model: CignModel,
    objective: Objective,
    batch: TrainBatch,
}

fn setup(c: Conditioning, dropout: f64, seed: i64) -> Setup {
    tch::manual_seed(seed);
    let cfg = ModelConfig {
        dropout,
        ..ModelConfig::with_dims(c, 4, 8, 3)
    };
    let vs = VarStore::new(Device::Cpu);
    let model = CignModel::new(&vs.root(), &cfg).unwrap();
    let objective = Objective::new(&cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
    let opts = (Kind::Float, Device::Cpu);
    let x = (Tensor::rand([B, 1, 28, 28], opts) * 2.0 - 1.0).set_requires_grad(true);
    let y = Tensor::from_slice(&[3i64, 0, 9]);
    let (xm, ym) = mismatch_pairs(&x.detach(), &y, 10);
    let batch = TrainBatch {
        x,
        y,
        z: Tensor::randn([B, 1, 28, 28], opts).set_requires_grad(true),
        yz: Tensor::from_slice(&[1i64, 5, 7]),
        x_mismatch: Some(xm.set_requires_grad(true)),
        y_mismatch: Some(ym),
    };
    Setup {
        vs,
        model,
        objective,
        batch,
    }
}

fn pick<'a>(t: &'a LossTerms, name: &str) -> &'a Tensor {
    t.named().into_iter().find(|(n, _)| *n == name).unwrap().1
}

fn grad_abs_sum(t: &Tensor) -> f64 {
    let g = t.grad();
    if g.defined() {
        g.abs().sum(Kind::Double).double_value(&[])
    } else {
        0.0
    }
}

const TERMS: [&str; 5] = [
    "rec",
    "idem_noise",
    "tight_noise",
    "idem_mismatch",
    "tight_mismatch",
];

/// Backpropagates each term alone: every parameter of `f` gets a non-zero gradient, the frozen
/// copy none; the inputs tell inner from outer routing.
#[test]
fn each_term_alone_routes_gradients_as_specified() {
    for c in [
        Conditioning::Channel,
        Conditioning::Filter,
        Conditioning::None,
    ] {
        for term in TERMS {
            let mut s = setup(c, 0.15, 7);
            let terms = s.objective.training_loss(&s.model, &s.vs, &s.batch);
            let t = pick(&terms, term);
            if !c.is_conditional() && term.ends_with("mismatch") {
                assert_eq!(t.double_value(&[]), 0.0, "{c:?} {term}");
                assert!(!t.requires_grad());
                continue;
            }
            assert!(t.double_value(&[]) != 0.0, "{c:?} {term} is zero");
            t.backward();
            for (n, v) in s.vs.variables() {
                if v.requires_grad() {
                    assert!(
                        grad_abs_sum(&v) > 0.0,
                        "{c:?} {term}: parameter {n} got no gradient"
                    );
                } else {
                    assert!(
                        !v.grad().defined(),
                        "{c:?} {term}: buffer {n} got a gradient"
                    );
                }
            }
            for (n, v) in s.objective.frozen_var_store().variables() {
                assert!(!v.requires_grad(), "frozen {n} requires grad");
                assert!(
                    grad_abs_sum(&v) == 0.0,
                    "{c:?} {term}: frozen copy's {n} got a gradient"
                );
            }
            // routing: which inputs the term's gradient reaches
            let gx = grad_abs_sum(&s.batch.x);
            let gz = grad_abs_sum(&s.batch.z);
            let gm = grad_abs_sum(s.batch.x_mismatch.as_ref().unwrap());
            let expect = match term {
                "rec" => (true, false, false),
                "idem_noise" => (false, true, false), // through the inner call f(z)
                "tight_noise" => (false, false, false), // sg f(z): never back to z
                "idem_mismatch" => (false, false, true),
                "tight_mismatch" => (false, false, false),
                _ => unreachable!(),
            };
            assert_eq!(
                (gx > 0.0, gz > 0.0, gm > 0.0),
                expect,
                "{c:?} {term}: input gradients x {gx} z {gz} x' {gm}"
            );
        }
    }
}

fn param_grads(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| {
            let g = t.grad();
            (
                n,
                if g.defined() {
                    g.copy()
                } else {
                    t.zeros_like()
                },
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn zero(vs: &VarStore) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
}

fn max_rel(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    let mut worst = 0.0f64;
    for ((_, x), (_, y)) in a.iter().zip(b) {
        let d = (x - y).norm().double_value(&[]);
        let n = y.norm().double_value(&[]).max(1e-12);
        worst = worst.max(d / n);
    }
    worst
}

/// The idempotence term's gradient flows through both arguments of `D` (the copy's input and
/// the target), and only through the inner call; the tightness term's only through the outer
/// call. Checked against hand-built graphs with dropout 0 (deterministic passes).
#[test]
fn idempotence_gradient_uses_both_arguments_tightness_only_outer_call() {
    for c in [Conditioning::Channel, Conditioning::Filter] {
        let w = cign_core::LossWeights::default();
        let mut s = setup(c, 0.0, 11);
        let (z, yz) = (&s.batch.z.detach(), &s.batch.yz);

        // ours
        let terms = s.objective.training_loss(&s.model, &s.vs, &s.batch);
        terms.idem_noise.backward();
        let ours_idem = param_grads(&s.vs);
        zero(&s.vs);
        let terms = s.objective.training_loss(&s.model, &s.vs, &s.batch);
        terms.tight_noise.backward();
        let ours_tight = param_grads(&s.vs);
        zero(&s.vs);

        // reference idem: g = dD(copy(u), u)/du at u = f(z) (both arguments), then J_f^T g
        let fz = s.model.forward_t(z, Some(yz), true);
        let u = fz.detach().set_requires_grad(true);
        let d = s
            .objective
            .frozen_model()
            .forward_t(&u, Some(yz), true)
            .l1_loss(&u, Reduction::Mean)
            * w.idem_noise;
        let gu = Tensor::run_backward(&[&d], &[&u], false, false)
            .pop()
            .unwrap();
        (&fz * &gu).sum(Kind::Float).backward();
        let ref_idem = param_grads(&s.vs);
        zero(&s.vs);

        // wrong variant: target detached (only the copy's input carries the graph)
        let fz = s.model.forward_t(z, Some(yz), true);
        let d = s
            .objective
            .frozen_model()
            .forward_t(&fz, Some(yz), true)
            .l1_loss(&fz.detach(), Reduction::Mean)
            * w.idem_noise;
        d.backward();
        let wrong_idem = param_grads(&s.vs);
        zero(&s.vs);

        // reference tight: outer call only
        let fz_d = s.model.forward_t(z, Some(yz), true).detach();
        let d = s
            .model
            .forward_t(&fz_d, Some(yz), true)
            .l1_loss(&fz_d, Reduction::Mean)
            * (-w.tight_noise);
        d.backward();
        let ref_tight = param_grads(&s.vs);
        zero(&s.vs);

        let e_idem = max_rel(&ours_idem, &ref_idem);
        let e_wrong = max_rel(&wrong_idem, &ref_idem);
        let e_tight = max_rel(&ours_tight, &ref_tight);
        println!("{c:?}: idem vs reference {e_idem:.2e}, detached-target variant {e_wrong:.2e}, tight {e_tight:.2e}");
        assert!(
            e_idem < 1e-4,
            "{c:?}: idem gradient differs from reference ({e_idem:.2e})"
        );
        assert!(
            e_wrong > 1e-2,
            "{c:?}: the check cannot tell a detached target ({e_wrong:.2e})"
        );
        assert!(
            e_tight < 1e-4,
            "{c:?}: tight gradient differs from reference ({e_tight:.2e})"
        );
    }
}

/// The frozen copy is refreshed in place every step (same storage), and equals `f` afterwards.
#[test]
fn frozen_copy_is_refreshed_in_place() {
    let mut s = setup(Conditioning::Filter, 0.0, 3);
    let name = "generator.channel_mixer_2.weight";
    let before_ptr = s.objective.frozen_var_store().variables()[name].data_ptr();
    let _ = s.objective.training_loss(&s.model, &s.vs, &s.batch);
    tch::no_grad(|| {
        let _ = s.vs.variables()[name].shallow_clone().g_add_scalar_(0.5);
    });
    let _ = s.objective.training_loss(&s.model, &s.vs, &s.batch);
    let frozen = &s.objective.frozen_var_store().variables()[name];
    assert_eq!(frozen.data_ptr(), before_ptr, "frozen copy reallocated");
    let diff = (frozen - &s.vs.variables()[name])
        .abs()
        .max()
        .double_value(&[]);
    assert_eq!(diff, 0.0);
}

/// Training-mode passes of `f` update its running statistics; the frozen copy's are refreshed
/// from `f` at the next step, so its own updates are thrown away.
#[test]
fn running_statistics_follow_the_model_not_the_copy() {
    let mut s = setup(Conditioning::Channel, 0.15, 5);
    let rm = |vs: &VarStore| vs.variables()["generator.batch_norm_3.running_mean"].copy();
    let before = rm(&s.vs);
    let _ = s.objective.training_loss(&s.model, &s.vs, &s.batch);
    let after = rm(&s.vs);
    assert!((&after - &before).abs().max().double_value(&[]) > 0.0);
    // the copy ran 2 training passes of its own after the refresh: its statistics moved away
    let copy_stats = rm(s.objective.frozen_var_store());
    assert!((&copy_stats - &before).abs().max().double_value(&[]) > 0.0);
    s.objective.refresh_copy(&s.vs).unwrap();
    assert_eq!(
        (rm(s.objective.frozen_var_store()) - &after)
            .abs()
            .max()
            .double_value(&[]),
        0.0
    );
}

/// Validation: eval mode, no gradients, deterministic, running statistics untouched; the
/// tightness terms are the negated idempotence distances.
#[test]
fn validation_loss_is_eval_mode_and_pure() {
    for c in [
        Conditioning::Channel,
        Conditioning::Filter,
        Conditioning::None,
    ] {
        let mut s = setup(c, 0.15, 9);
        let before: Vec<(String, Tensor)> =
            s.vs.variables()
                .into_iter()
                .map(|(n, t)| (n, t.copy()))
                .collect();
        let a = s.objective.validation_loss(&s.model, &s.vs, &s.batch);
        let b = s.objective.validation_loss(&s.model, &s.vs, &s.batch);
        assert!(!a.total.requires_grad());
        assert_eq!(
            a.to_f64(),
            b.to_f64(),
            "{c:?}: validation not deterministic"
        );
        for (n, t) in before {
            assert_eq!(
                (&t - &s.vs.variables()[&n]).abs().max().double_value(&[]),
                0.0,
                "{c:?}: {n} changed"
            );
        }
        let v = a.to_f64();
        let w = cign_core::LossWeights::default();
        assert!((v.tight_noise / -w.tight_noise - v.idem_noise / w.idem_noise).abs() < 1e-6);
        // hand-computed in eval mode
        let (x, y) = (&s.batch.x.detach(), &s.batch.y);
        let rec = tch::no_grad(|| {
            s.model
                .forward_t(x, Some(y), false)
                .l1_loss(x, Reduction::Mean)
        })
        .double_value(&[]);
        assert!((v.rec - w.rec * rec).abs() < 1e-5 * v.rec.abs().max(1.0));
        if !c.is_conditional() {
            assert_eq!((v.idem_mismatch, v.tight_mismatch), (0.0, 0.0));
        }
    }
}

/// Without mismatched pairs (k = 0) the mismatch terms are 0 and the rest unchanged.
#[test]
fn no_mismatch_pairs_gives_zero_mismatch_terms() {
    let mut s = setup(Conditioning::Channel, 0.0, 13);
    let full = s
        .objective
        .training_loss(&s.model, &s.vs, &s.batch)
        .to_f64();
    s.batch.x_mismatch = None;
    s.batch.y_mismatch = None;
    let part = s
        .objective
        .training_loss(&s.model, &s.vs, &s.batch)
        .to_f64();
    assert_eq!((part.idem_mismatch, part.tight_mismatch), (0.0, 0.0));
    assert!((part.rec - full.rec).abs() < 1e-6 && (part.idem_noise - full.idem_noise).abs() < 1e-6);
    assert!((part.total - (part.rec + part.idem_noise + part.tight_noise)).abs() < 1e-5);
}

/// The optional smooth clamp bounds each tightness term by `a * D_rec * w` in magnitude.
#[test]
fn tight_clamp_bounds_the_tightness_terms() {
    let mut s = setup(Conditioning::Channel, 0.0, 17);
    let cfg = s.model.config().clone();
    let plain = s
        .objective
        .training_loss(&s.model, &s.vs, &s.batch)
        .to_f64();
    let oc = ObjectiveConfig {
        tight_clamp: cign_core::TightClamp::Batch,
        ..Default::default()
    };
    let mut clamped_obj = Objective::new(&cfg, oc, Device::Cpu).unwrap();
    let cl = clamped_obj
        .training_loss(&s.model, &s.vs, &s.batch)
        .to_f64();
    let w = cign_core::LossWeights::default();
    let rec_raw = cl.rec / w.rec;
    for (v, p, wt) in [
        (cl.tight_noise, plain.tight_noise, w.tight_noise),
        (cl.tight_mismatch, plain.tight_mismatch, w.tight_mismatch),
    ] {
        assert!(v < 0.0 && v.abs() <= 1.5 * rec_raw * wt + 1e-6);
        let expect = -(p.abs() / wt / (1.5 * rec_raw)).tanh() * 1.5 * rec_raw * wt;
        assert!(
            (v - expect).abs() < 1e-5 * expect.abs().max(1.0),
            "{v} vs {expect}"
        );
    }
}
