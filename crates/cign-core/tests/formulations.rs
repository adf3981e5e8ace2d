//! Every formulation of the model (per-sample depthwise: grouped or unfold; filter mixer:
//! `Linear` or 1x1 convolution; channel label map: concatenated or split) gives the same
//! training step as a float64 reference.

use cign_core::{
    mismatch_pairs, BnLayout, CignModel, Conditioning, DepthwiseImpl, Formulation, LabelImpl,
    LossValues, MixerImpl, ModelConfig, Objective, ObjectiveConfig, TrainBatch,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const AUTHORS: Formulation = Formulation::AUTHORS;

/// Tensors by variable name, sorted by name.
type Named = Vec<(String, Tensor)>;

/// A whole training step (seven passes, all five terms, backward; freshly initialised model,
/// batch 8, dropout 0) with `form` in `kind`: the loss values, the gradients and the BatchNorm
/// running statistics afterwards (float64).
fn step(
    cfg: &ModelConfig,
    init: &VarStore,
    batch: &(Tensor, Tensor, Tensor, Tensor),
    kind: Kind,
    form: Formulation,
) -> (LossValues, Named, Named) {
    let mut vs = VarStore::new(Device::Cpu);
    let model = CignModel::new(&vs.root(), cfg).unwrap();
    vs.copy(init).unwrap();
    if kind == Kind::Double {
        vs.double();
    }
    model.set_formulation(form);
    let (x, y, z, yz) = batch;
    let x = x.to_kind(kind);
    let (xm, ym) = mismatch_pairs(&x, y, 10);
    let batch = TrainBatch {
        z: z.to_kind(kind),
        yz: yz.shallow_clone(),
        x,
        y: y.shallow_clone(),
        x_mismatch: Some(xm),
        y_mismatch: Some(ym),
    };
    let mut obj = Objective::new(cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
    let terms = obj.training_loss(&model, &vs, &batch);
    terms.total.backward();
    let mut grads: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(n, t)| (n, t.grad().to_kind(Kind::Double)))
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    // BatchNorm's running statistics after the step's seven passes
    let mut stats: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| n.contains("running_"))
        .map(|(n, t)| (n, t.to_kind(Kind::Double)))
        .collect();
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    (terms.to_f64(), grads, stats)
}

/// Every float32 formulation must have the loss within 1e-5 relative of the float64 step (the
/// authors' formulation in float64) and each gradient within 1e-4 relative, or, for a gradient
/// that float32 cannot resolve that well (a small sum of cancelling terms), within 10 times
/// the error of the authors' own formulation in float32.
fn check(conditioning: Conditioning, formulations: &[Formulation]) {
    let cfg = ModelConfig {
        dropout: 0.0,
        ..ModelConfig::with_dims(conditioning, 8, 16, 5)
    };
    // All random draws happen here, once (other tests of this binary use torch's generator
    // concurrently): every model below copies these weights.
    let (batch, init) = {
        let o = (Kind::Float, Device::Cpu);
        tch::manual_seed(3);
        let x = Tensor::rand([8, 1, 28, 28], o) * 2.0 - 1.0;
        let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
        let z = Tensor::randn([8, 1, 28, 28], o);
        let yz = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
        let init = VarStore::new(Device::Cpu);
        CignModel::new(&init.root(), &cfg).unwrap();
        ((x, y, z, yz), init)
    };
    let rel = |a: &Tensor, b: &Tensor| {
        (a - b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-12)
    };
    let (l64, g64, s64) = step(&cfg, &init, &batch, Kind::Double, AUTHORS);
    let (_, g_authors, _) = step(&cfg, &init, &batch, Kind::Float, AUTHORS);
    assert!(!s64.is_empty());
    for &form in formulations {
        let (l, g, stats) = step(&cfg, &init, &batch, Kind::Float, form);
        for ((n, a), (_, r)) in stats.iter().zip(&s64) {
            let e = (a - r).abs().max().double_value(&[]);
            assert!(e < 1e-5, "{form:?} {n}: running statistic off by {e:.2e}");
        }
        assert!(
            (l.total - l64.total).abs() < 1e-5 * l64.total.abs(),
            "{form:?}: {l:?} vs float64 {l64:?}"
        );
        for (((n, a), (_, r)), (_, au)) in g.iter().zip(&g64).zip(&g_authors) {
            let (e, e_authors) = (rel(a, r), rel(au, r));
            assert!(
                e < 1e-4 || e < 10.0 * e_authors,
                "{form:?} {n}: gradient rel err {e:.2e} against float64 (authors' formulation \
                 in float32: {e_authors:.2e})"
            );
        }
    }
}

/// Each of cign's changes alone, and all of them (the default), plus the unfold depthwise.
fn formulations() -> Vec<Formulation> {
    let a = AUTHORS;
    vec![
        a,
        Formulation {
            depthwise: DepthwiseImpl::Unfold,
            ..a
        },
        Formulation {
            mixer: MixerImpl::Conv1x1,
            ..a
        },
        Formulation {
            label: LabelImpl::PerClass,
            ..a
        },
        Formulation {
            bn: BnLayout::RowsForSmallMaps,
            ..a
        },
        Formulation::default_for(Device::Cpu),
        Formulation {
            depthwise: DepthwiseImpl::Unfold,
            ..Formulation::default_for(Device::Cpu)
        },
    ]
}

#[test]
fn filter_formulations_give_the_same_training_step() {
    check(Conditioning::Filter, &formulations());
}

#[test]
fn channel_formulations_give_the_same_training_step() {
    check(Conditioning::Channel, &formulations());
}

#[test]
fn unconditional_formulations_give_the_same_training_step() {
    check(Conditioning::None, &formulations());
}

/// Control: the check sees a wrong formulation (a label map shifted by one class).
#[test]
fn a_wrong_step_is_detected() {
    let cfg = ModelConfig {
        dropout: 0.0,
        ..ModelConfig::with_dims(Conditioning::Channel, 8, 16, 5)
    };
    let init = VarStore::new(Device::Cpu);
    CignModel::new(&init.root(), &cfg).unwrap();
    let o = (Kind::Float, Device::Cpu);
    let x = Tensor::ones([8, 1, 28, 28], o) * 0.5;
    let y = Tensor::arange(8, (Kind::Int64, Device::Cpu));
    let z = Tensor::ones([8, 1, 28, 28], o) * -0.5;
    let (good, _, _) = step(
        &cfg,
        &init,
        &(
            x.shallow_clone(),
            y.shallow_clone(),
            z.shallow_clone(),
            y.shallow_clone(),
        ),
        Kind::Double,
        AUTHORS,
    );
    let shifted = (&y + 1).remainder(10);
    let (bad, _, _) = step(
        &cfg,
        &init,
        &(x, shifted.shallow_clone(), z, shifted),
        Kind::Double,
        AUTHORS,
    );
    assert!((good.total - bad.total).abs() > 1e-5 * good.total.abs());
}
