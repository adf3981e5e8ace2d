//! Evaluating a trained model: the seeded generation plan shared by `cign-eval` (one model, the
//! full protocol of `results/protocol.md`) and `cign-curve` (every epoch snapshot of a run, the
//! cheap protocol), so that both draw the same images from the same model and seed.

use anyhow::{Context, Result};
use cign_core::CignModel;
use cign_data::Dataset;
use cign_metrics::{
    check_evaluation, evaluate_generated, ConditionalClassifier, EvalOptions, EvalReport,
    InceptionExtractor,
};
use tch::{Device, Tensor};

use crate::sampling::{generate_class, GENERATION_BATCH};

/// The most images per class [`GenerationPlan::check`] accepts (10^6: ten million images in
/// all, about 31 GB as float32).
pub const MAX_PER_CLASS: usize = 1_000_000;

/// What to generate: `n_per_class` images of every class (the unconditional model:
/// `num_classes` (10) times as many, unlabelled), from torch's generator seeded with `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationPlan {
    /// Images per class (at least 2: a covariance needs two samples).
    pub n_per_class: usize,
    /// Seed of the noise (`tch::manual_seed`).
    pub seed: i64,
}

impl GenerationPlan {
    /// The number of images the plan generates for `model`: `n_per_class * num_classes`.
    pub fn len(&self, model: &CignModel) -> usize {
        self.n_per_class * model.config().num_classes as usize
    }

    /// Whether the plan generates nothing (`n_per_class` = 0).
    pub fn is_empty(&self) -> bool {
        self.n_per_class == 0
    }

    /// The labels of the images in generation order (class 0 first, `n_per_class` each), or
    /// `None` for an unconditional model.
    pub fn labels(&self, model: &CignModel) -> Option<Vec<u8>> {
        let cfg = model.config();
        cfg.conditioning.is_conditional().then(|| {
            (0..cfg.num_classes)
                .flat_map(|c| std::iter::repeat_n(c as u8, self.n_per_class))
                .collect()
        })
    }

    /// Seeds torch's generator and generates the images: `[N, 1, 28, 28]` float32 in
    /// `[-1, 1]` on the CPU, with [`Self::labels`]. Eval mode, one application of `f`.
    ///
    /// # Errors
    ///
    /// libtorch fails (e.g. cannot allocate the images).
    pub fn generate(&self, model: &CignModel, device: Device) -> Result<(Tensor, Option<Vec<u8>>)> {
        tch::manual_seed(self.seed);
        let labels = self.labels(model);
        let images = if labels.is_some() {
            let parts: Vec<Tensor> = (0..model.config().num_classes)
                .map(|c| {
                    generate_class(
                        model,
                        Some(c),
                        self.n_per_class,
                        GENERATION_BATCH,
                        1,
                        device,
                    )
                })
                .collect::<Result<_>>()?;
            Tensor::f_cat(&parts, 0)
                .map_err(crate::sampling::torch_error)
                .with_context(|| format!("cannot allocate {} generated images", self.len(model)))?
        } else {
            generate_class(model, None, self.len(model), GENERATION_BATCH, 1, device)?
        };
        Ok((images, labels))
    }

    /// Checks `n_per_class` alone (the `--n-per-class` flag of `cign-eval` and `cign-curve`),
    /// before any check that relates it to other flags.
    ///
    /// # Errors
    ///
    /// `n_per_class` below 2 or above [`MAX_PER_CLASS`].
    pub fn check_n_per_class(n_per_class: usize) -> Result<()> {
        if !(2..=MAX_PER_CLASS).contains(&n_per_class) {
            anyhow::bail!(
                "--n-per-class {n_per_class}: must be in 2..={MAX_PER_CLASS} (a covariance \
                 needs two samples; the paper's protocol uses 1000)"
            );
        }
        Ok(())
    }

    /// Checks, before anything is generated, that the plan fits `options` and the real split
    /// `real` (sizes per class, k of PRDC, taps).
    ///
    /// # Errors
    ///
    /// `n_per_class` below 2 or above [`MAX_PER_CLASS`] ([`Self::check_n_per_class`]);
    /// `real_limit` 0 or above the size of `real` (never clamped silently); or what
    /// [`check_evaluation`] refuses, with the plan and the flags that change it named
    /// (`--nearest-k` only when `options` computes precision/recall).
    pub fn check(&self, model: &CignModel, real: &Dataset, options: &EvalOptions) -> Result<()> {
        Self::check_n_per_class(self.n_per_class)?;
        match options.real_limit {
            Some(0) => anyhow::bail!("--real-limit 0: must be at least 1"),
            Some(n) if n > real.len() => anyhow::bail!(
                "--real-limit {n}: the {} test split has only {} images (leave --real-limit \
                 out to use them all)",
                real.kind.name(),
                real.len()
            ),
            _ => {}
        }
        let labels = self.labels(model);
        let flags = if options.prdc.is_some() {
            "--n-per-class, --real-limit, --nearest-k"
        } else {
            "--n-per-class, --real-limit"
        };
        check_evaluation(self.len(model), labels.as_deref(), real, options).with_context(|| {
            format!(
                "{} generated images per class against {} test images ({flags})",
                self.n_per_class,
                options
                    .real_limit
                    .map_or("all".to_string(), |n| format!("the first {n}"))
            )
        })
    }
}

/// Generates the images of `plan` from `model` and evaluates them against `real` (see
/// [`evaluate_generated`], which checks sizes again). Returns the report and the generated
/// images (`[N, 1, 28, 28]`, `[-1, 1]`, CPU). Call [`GenerationPlan::check`] first to fail
/// before any image is generated or network loaded.
///
/// # Errors
///
/// What [`evaluate_generated`] refuses.
pub fn evaluate_model(
    model: &CignModel,
    plan: GenerationPlan,
    real: &Dataset,
    options: &EvalOptions,
    extractor: &InceptionExtractor,
    classifier: Option<&ConditionalClassifier>,
    device: Device,
) -> Result<(EvalReport, Tensor)> {
    let (images, labels) = plan.generate(model, device)?;
    let report = evaluate_generated(
        extractor,
        &images,
        labels.as_deref(),
        real,
        options,
        classifier,
    )?;
    Ok((report, images))
}
