//! The CIGN objective (arXiv 2406.02841, Sec. 3.1; `get_losses` of the authors'
//! `MNIST/idempotent_networks.py`) and the IGN objective of the unconditional networks.
//!
//! With `D` the mean absolute error, `f_copy` a frozen copy of `f` and `sg` stop-gradient:
//!
//! | term | expression | gradients reach |
//! |---|---|---|
//! | rec | `w_rec D(f(x, y), x)` | f |
//! | idem_noise | `w D(f_copy(f(z, y_z), y_z), f(z, y_z))` | f, inner call only (both arguments) |
//! | tight_noise | `-w D(f(sg f(z, y_z), y_z), sg f(z, y_z))` | f, outer call only |
//! | idem_mismatch | `w D(f_copy(f(x', y'), y'), f(x', y'))` | f, inner call only |
//! | tight_mismatch | `-w D(f(sg f(x', y'), y'), sg f(x', y'))` | f, outer call only |
//!
//! Training runs the seven passes in the authors' order: f(x), f(z), f(x'), f_copy(f(z)),
//! f(sg f(z)), f_copy(f(x')), f(sg f(x')), every one in training mode (own dropout masks and
//! batch statistics). The order decides `f`'s BatchNorm running statistics. The copy's
//! parameters are refreshed from `f` at the start of every step (an in-place copy into a
//! frozen [`VarStore`], no reallocation); its own running statistics are overwritten there too,
//! so whatever its training-mode passes do to them is thrown away.
//!
//! For [`crate::Conditioning::None`] the objective is IGN's: rec, idem and tight on noise, labels
//! ignored; the mismatch terms are zero. (The IGN code the authors modified,
//! PapersReimplementations `src/cv/ign/ign.py`, runs the same four passes in the same order:
//! f(x), f(z), f_copy(f(z)), f(sg f(z)).)
//!
//! The optional smooth clamp of the tightness terms ([`TightClamp`], off by default as in the
//! authors' code) replaces `-w d` by `-w tanh(d / (a D_rec)) a D_rec`, with `D_rec` the
//! (unweighted) reconstruction distance of the real batch, gradients flowing through both
//! (IGN, arXiv 2311.01462, Sec. 3). [`TightClamp::Batch`] clamps the batch's distance `d`;
//! [`TightClamp::PerSample`] clamps each sample's distance `d_i` (the mean over its elements)
//! and then averages over the samples. When `D_rec` is exactly 0 (`f` reconstructs the real
//! batch exactly) the clamp divides by zero: the clamped terms' gradients are NaN (their value
//! is 0, NaN where `d` is 0 too), as the clamp is written in IGN; the numerics are kept as
//! they are (the unclamped objective, the authors', has no such point).
//!
//! Precision: the passes of `f` and `f_copy` run in the model's [`crate::Precision`]
//! ([`CignModel::set_precision`]; the copy follows `f`), and return float32, so the distances,
//! the clamp and the sum are float32 in both precisions.

use serde::Serialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

use crate::model::{CignModel, Formulation, Mode};
use crate::{CoreError, ModelConfig, ObjectiveConfig, TightClamp};

pub use cign_data::{mismatch_pairs, TrainBatch};

/// The weighted terms of one evaluation of the objective (scalar tensors).
#[derive(Debug)]
pub struct LossTerms {
    pub rec: Tensor,
    pub idem_noise: Tensor,
    pub tight_noise: Tensor,
    pub idem_mismatch: Tensor,
    pub tight_mismatch: Tensor,
    /// Plain sum of the five.
    pub total: Tensor,
}

impl LossTerms {
    /// The five weighted terms and their sum.
    fn from_terms(
        rec: Tensor,
        idem_noise: Tensor,
        tight_noise: Tensor,
        idem_mismatch: Tensor,
        tight_mismatch: Tensor,
    ) -> Self {
        let total = &rec + &idem_noise + &tight_noise + &idem_mismatch + &tight_mismatch;
        LossTerms {
            rec,
            idem_noise,
            tight_noise,
            idem_mismatch,
            tight_mismatch,
            total,
        }
    }
}

/// [`LossTerms`] as plain numbers, for logging.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct LossValues {
    pub rec: f64,
    pub idem_noise: f64,
    pub tight_noise: f64,
    pub idem_mismatch: f64,
    pub tight_mismatch: f64,
    pub total: f64,
}

impl LossTerms {
    pub fn to_f64(&self) -> LossValues {
        let v = |t: &Tensor| t.double_value(&[]);
        LossValues {
            rec: v(&self.rec),
            idem_noise: v(&self.idem_noise),
            tight_noise: v(&self.tight_noise),
            idem_mismatch: v(&self.idem_mismatch),
            tight_mismatch: v(&self.tight_mismatch),
            total: v(&self.total),
        }
    }

    /// The five weighted terms by name, in the authors' order.
    pub fn named(&self) -> [(&'static str, &Tensor); 5] {
        [
            ("rec", &self.rec),
            ("idem_noise", &self.idem_noise),
            ("tight_noise", &self.tight_noise),
            ("idem_mismatch", &self.idem_mismatch),
            ("tight_mismatch", &self.tight_mismatch),
        ]
    }
}

impl LossValues {
    /// The field names in order: the five weighted terms in the authors' order, then `total`
    /// (the names of the `metrics.jsonl` records).
    pub const NAMES: [&'static str; 6] = [
        "rec",
        "idem_noise",
        "tight_noise",
        "idem_mismatch",
        "tight_mismatch",
        "total",
    ];

    /// The values in [`Self::NAMES`] order.
    pub fn to_array(&self) -> [f64; 6] {
        [
            self.rec,
            self.idem_noise,
            self.tight_noise,
            self.idem_mismatch,
            self.tight_mismatch,
            self.total,
        ]
    }

    /// The values given in [`Self::NAMES`] order.
    pub fn from_array(v: [f64; 6]) -> Self {
        let [rec, idem_noise, tight_noise, idem_mismatch, tight_mismatch, total] = v;
        LossValues {
            rec,
            idem_noise,
            tight_noise,
            idem_mismatch,
            tight_mismatch,
            total,
        }
    }

    /// Element-wise sum (for averaging over batches).
    pub fn add(&self, o: &LossValues) -> LossValues {
        LossValues {
            rec: self.rec + o.rec,
            idem_noise: self.idem_noise + o.idem_noise,
            tight_noise: self.tight_noise + o.tight_noise,
            idem_mismatch: self.idem_mismatch + o.idem_mismatch,
            tight_mismatch: self.tight_mismatch + o.tight_mismatch,
            total: self.total + o.total,
        }
    }

    /// Every field multiplied by `s`.
    pub fn scale(&self, s: f64) -> LossValues {
        LossValues {
            rec: self.rec * s,
            idem_noise: self.idem_noise * s,
            tight_noise: self.tight_noise * s,
            idem_mismatch: self.idem_mismatch * s,
            tight_mismatch: self.tight_mismatch * s,
            total: self.total * s,
        }
    }
}

/// Mean absolute error (`torch.nn.L1Loss()`).
fn dist(a: &Tensor, b: &Tensor) -> Tensor {
    a.l1_loss(b, Reduction::Mean)
}

/// The objective; owns the frozen copy `f_copy` (its own var store on the model's device).
#[derive(Debug)]
pub struct Objective {
    cfg: ObjectiveConfig,
    model_cfg: ModelConfig,
    frozen_vs: VarStore,
    frozen: CignModel,
}

impl Objective {
    /// The objective for models of `model_cfg` built by [`CignModel::new`] on `device`, with
    /// its own frozen copy there.
    ///
    /// # Errors
    ///
    /// [`CoreError::Config`] when either config fails its `validate`; [`CoreError::Device`]
    /// when `device` cannot hold tensors (as [`CignModel::new`]).
    pub fn new(
        model_cfg: &ModelConfig,
        obj_cfg: ObjectiveConfig,
        device: Device,
    ) -> Result<Self, CoreError> {
        Self::with_formulation(model_cfg, obj_cfg, device, Formulation::default_for(device))
    }

    /// [`Objective::new`] for models built with the formulation `form`
    /// ([`CignModel::with_formulation`]): the frozen copy is built with it too, so that `f`
    /// and `f_copy` sum in the same order ([`Formulation::AUTHORS`] reproduces the authors'
    /// step bit for bit only with both in it).
    ///
    /// # Errors
    ///
    /// As [`Objective::new`].
    pub fn with_formulation(
        model_cfg: &ModelConfig,
        obj_cfg: ObjectiveConfig,
        device: Device,
        form: Formulation,
    ) -> Result<Self, CoreError> {
        model_cfg.validate()?;
        obj_cfg.validate()?;
        let mut frozen_vs = VarStore::new(device);
        let frozen = CignModel::with_formulation(&frozen_vs.root(), model_cfg, form)?;
        frozen_vs.freeze();
        Ok(Objective {
            cfg: obj_cfg,
            model_cfg: model_cfg.clone(),
            frozen_vs,
            frozen,
        })
    }

    pub fn config(&self) -> &ObjectiveConfig {
        &self.cfg
    }

    /// The frozen copy's var store (its parameters never require gradients).
    pub fn frozen_var_store(&self) -> &VarStore {
        &self.frozen_vs
    }

    /// The frozen copy.
    pub fn frozen_model(&self) -> &CignModel {
        &self.frozen
    }

    /// Overwrites the frozen copy with `vs`'s values (parameters and running statistics), in
    /// place. If `vs` was converted to another float kind (`VarStore::double`), the copy
    /// follows it first.
    ///
    /// # Errors
    ///
    /// [`CoreError::Torch`] when `vs` lacks one of the copy's variables (the var store of a
    /// model of another config), or holds one of a shape that does not broadcast to it; the
    /// copy may then be partly overwritten. This is `VarStore::copy`: extra variables in `vs`
    /// are ignored and a broadcastable shape is copied broadcast, so callers check the model
    /// first, as [`Objective::training_loss`] does (every field of its config).
    pub fn refresh_copy(&mut self, vs: &VarStore) -> Result<(), CoreError> {
        let kind_of = |v: &VarStore| v.trainable_variables().first().map(Tensor::kind);
        if let (Some(want), Some(have)) = (kind_of(vs), kind_of(&self.frozen_vs)) {
            if want != have {
                self.frozen_vs.set_kind(want);
            }
        }
        self.frozen_vs.copy(vs)?;
        Ok(())
    }

    /// Checks that `model` has the config the objective (and its frozen copy) was built for,
    /// every field of it (the copy's passes use its dropout, for one).
    ///
    /// # Panics
    ///
    /// `model.config()` differs from the objective's model config; the message shows both.
    fn check_model(&self, model: &CignModel) {
        let (m, o) = (model.config(), &self.model_cfg);
        assert!(
            m == o,
            "the objective was built for another model config: model {m:?}, objective {o:?}"
        );
    }

    /// Checks that `model` and the frozen copy run in the same formulation.
    fn check_formulation(&self, model: &CignModel) {
        assert_eq!(
            model.formulation(),
            self.frozen.formulation(),
            "the objective was built for another formulation (Objective::with_formulation)"
        );
    }

    /// The weighted tightness term of `out = f(sg a)` and `inp = sg a` (both `[N, ...]`),
    /// clamped as configured; `rec_raw` is the unweighted reconstruction distance.
    fn tight(&self, out: &Tensor, inp: &Tensor, rec_raw: &Tensor, w: f64) -> Tensor {
        let scale = || rec_raw * self.cfg.tight_clamp_ratio;
        match self.cfg.tight_clamp {
            // The authors' `-w * L1Loss()(out, inp)`.
            TightClamp::Off => dist(out, inp) * (-w),
            TightClamp::Batch => {
                let scale = scale();
                (-dist(out, inp) / &scale).tanh() * scale * w
            }
            TightClamp::PerSample => {
                let n = out.size()[0];
                let per_sample =
                    (out - inp)
                        .abs()
                        .reshape([n, -1])
                        .mean_dim(1, false, None::<Kind>);
                let scale = scale();
                (-per_sample / &scale).tanh().mean(None::<Kind>) * scale * w
            }
        }
    }

    fn zero(device: Device) -> Tensor {
        Tensor::zeros([], (Kind::Float, device))
    }

    /// The training loss: refreshes the frozen copy from `vs` (no reallocation), runs the seven
    /// passes in training mode in the fixture order and returns the weighted terms with the
    /// gradient routing of the module docs (call `total.backward()` next).
    ///
    /// # Panics
    ///
    /// `model` of another config (any field) or formulation than the objective was built for;
    /// `vs` with other variables than the model's; an empty `batch` (no image: every term
    /// would be NaN); a `batch` with `x_mismatch` but no `y_mismatch`; a batch of one image (BatchNorm in training mode needs more than one
    /// value per channel: [`CignModel::forward_mode`], refused before any running statistic
    /// changes); tensors that do not fit the model (shapes, labels outside `0..num_classes`,
    /// another device: libtorch's errors). Batches of at least 2 from
    /// `cign_data::BatchSampler` for the model's config always fit.
    pub fn training_loss(
        &mut self,
        model: &CignModel,
        vs: &VarStore,
        batch: &TrainBatch,
    ) -> LossTerms {
        self.check_model(model);
        self.check_formulation(model);
        check_not_empty(batch);
        self.refresh_copy(vs)
            .expect("the frozen copy and the model's var store have different variables");
        // the copy runs in the precision the model runs in now (it may have been changed)
        self.frozen
            .set_precision(model.precision())
            .expect("the frozen copy is on the model's device");
        // One autocast scope around the seven passes (each pass opens its own too): libtorch
        // casts each weight of f to bfloat16 once per step instead of once per pass. Nothing
        // happens in float32.
        crate::precision::autocast(model.precision(), batch.x.device(), || {
            self.training_terms(model, batch)
        })
    }

    /// The seven passes and the five terms of [`Objective::training_loss`].
    fn training_terms(&self, model: &CignModel, batch: &TrainBatch) -> LossTerms {
        let w = self.cfg.weights();
        let cond = self.model_cfg.conditioning.is_conditional();
        let lab = |t: &Tensor| -> Option<Tensor> { cond.then(|| t.shallow_clone()) };
        let (y, yz) = (lab(&batch.y), lab(&batch.yz));
        let mismatch = match (&batch.x_mismatch, &batch.y_mismatch) {
            (Some(xm), ym) if cond => {
                Some((xm, lab(ym.as_ref().expect("x_mismatch without y_mismatch"))))
            }
            _ => None,
        };
        let t = Mode::TRAIN;
        let dev = batch.x.device();

        // f(x), f(z), f(x')
        let fx = model.forward_mode(&batch.x, y.as_ref(), t);
        let fz = model.forward_mode(&batch.z, yz.as_ref(), t);
        let fm = mismatch
            .as_ref()
            .map(|(xm, ym)| model.forward_mode(xm, ym.as_ref(), t));

        let rec_raw = dist(&fx, &batch.x);
        let rec = &rec_raw * w.rec;
        // f_copy(f(z)): gradients reach f through both arguments of D.
        let idem_noise = dist(&self.frozen.forward_mode(&fz, yz.as_ref(), t), &fz) * w.idem_noise;
        // f(sg f(z)): gradients reach f through the outer call only.
        let fz_d = fz.detach();
        let tight_noise = self.tight(
            &model.forward_mode(&fz_d, yz.as_ref(), t),
            &fz_d,
            &rec_raw,
            w.tight_noise,
        );
        let (idem_mismatch, tight_mismatch) = match (&mismatch, &fm) {
            (Some((_, ym)), Some(fm)) => {
                let idem =
                    dist(&self.frozen.forward_mode(fm, ym.as_ref(), t), fm) * w.idem_mismatch;
                let fm_d = fm.detach();
                let tight = self.tight(
                    &model.forward_mode(&fm_d, ym.as_ref(), t),
                    &fm_d,
                    &rec_raw,
                    w.tight_mismatch,
                );
                (idem, tight)
            }
            _ => (Self::zero(dev), Self::zero(dev)),
        };
        LossTerms::from_terms(rec, idem_noise, tight_noise, idem_mismatch, tight_mismatch)
    }

    /// The validation loss as the authors evaluate it: PyTorch Lightning's validation loop puts
    /// the whole module (`f` and `f_copy`) in eval mode and disables gradients; `f_copy` is
    /// loaded from `f`'s state dict first, so in eval mode it computes exactly `f`. Hence
    /// `f_copy(f(z)) = f(f(z))` and the idempotence and tightness distances coincide (the
    /// tightness terms are their negatives, weighted). No running statistics change.
    ///
    /// # Panics
    ///
    /// `model` of another config (any field) than the objective was built for (its
    /// formulation may differ, and `vs` is not used: no copy is needed); an empty `batch`;
    /// tensors that do not fit the model, as in [`Objective::training_loss`]. A batch of one
    /// image is fine (eval mode).
    pub fn validation_loss(
        &mut self,
        model: &CignModel,
        vs: &VarStore,
        batch: &TrainBatch,
    ) -> LossTerms {
        let _ = vs; // f_copy equals f in eval mode: no copy needed
        self.check_model(model);
        check_not_empty(batch);
        let device = batch.x.device();
        crate::precision::autocast(model.precision(), device, || {
            tch::no_grad(|| {
                let w = self.cfg.weights();
                let cond = self.model_cfg.conditioning.is_conditional();
                let lab = |t: &Tensor| -> Option<Tensor> { cond.then(|| t.shallow_clone()) };
                let (y, yz) = (lab(&batch.y), lab(&batch.yz));
                let e = Mode::EVAL;
                let dev = batch.x.device();
                let fx = model.forward_mode(&batch.x, y.as_ref(), e);
                let rec_raw = dist(&fx, &batch.x);
                let fz = model.forward_mode(&batch.z, yz.as_ref(), e);
                let ffz = model.forward_mode(&fz, yz.as_ref(), e);
                let idem_noise = dist(&ffz, &fz) * w.idem_noise;
                let tight_noise = self.tight(&ffz, &fz, &rec_raw, w.tight_noise);
                let (idem_mismatch, tight_mismatch) = match (&batch.x_mismatch, &batch.y_mismatch) {
                    (Some(xm), ym) if cond => {
                        let ym = lab(ym.as_ref().expect("x_mismatch without y_mismatch"));
                        let fm = model.forward_mode(xm, ym.as_ref(), e);
                        let ffm = model.forward_mode(&fm, ym.as_ref(), e);
                        (
                            dist(&ffm, &fm) * w.idem_mismatch,
                            self.tight(&ffm, &fm, &rec_raw, w.tight_mismatch),
                        )
                    }
                    _ => (Self::zero(dev), Self::zero(dev)),
                };
                let rec = rec_raw * w.rec;
                LossTerms::from_terms(rec, idem_noise, tight_noise, idem_mismatch, tight_mismatch)
            })
        })
    }
}

/// # Panics
///
/// `batch` holds no image (`B = 0`): a mean over nothing is NaN, and the per-sample clamp
/// cannot reshape it.
fn check_not_empty(batch: &TrainBatch) {
    assert!(
        batch.x.size().first().is_some_and(|&b| b > 0),
        "an empty batch (shape {:?}) has no loss: a batch needs at least one image",
        batch.x.size()
    );
}
