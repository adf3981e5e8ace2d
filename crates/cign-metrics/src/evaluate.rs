//! [`evaluate_generated`]: the full evaluation of a (conditional) generator's images against
//! a real dataset split, independent of any model type: all-class FID, per-class FID
//! (mean, std, min, max), optional KID, optional precision/recall/density/coverage (all
//! classes and per class), optional conditional accuracy, at any taps.

use std::path::PathBuf;
use std::time::Instant;

use cign_core::Precision;
use cign_data::Dataset;
use serde::Serialize;
use tch::Tensor;

use crate::classifier::{AccuracyReport, ConditionalClassifier};
use crate::collect::{collect, CollectOptions};
use crate::error::{MetricsError, Result};
use crate::extractor::{check_precision, InceptionExtractor};
use crate::frechet::frechet_details;
use crate::images::TensorImages;
use crate::kid::{kid, Kid, KidOptions};
use crate::per_class::{per_class_fid_given_all, PerClassFid};
use crate::prdc::{
    check_class_counts, per_class_prdc, prdc_tensors, PerClassPrdc, Prdc, PrdcOptions,
};
use crate::preprocess::{PixelRange, Preprocess};

use crate::reference::{default_cache_dir, reference_stats};
use crate::tap::{normalize, Tap};

/// Settings of [`evaluate_generated`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Taps to report (default: the paper's 64, 192, 768).
    pub taps: Vec<Tap>,
    /// Value range of the generated images (default [-1, 1]).
    pub range: PixelRange,
    /// Quantisation of the generated images (default: on, as if saved as PNG).
    pub preprocess: Preprocess,
    /// Images per forward pass (default 50, pytorch-fid's).
    pub batch_size: usize,
    /// KID settings; `None` skips KID.
    pub kid: Option<KidOptions>,
    /// Precision, recall, density and coverage settings (k, device, ...); `None` skips them.
    /// They are computed on all images and, with labels, per class (generated images of
    /// class `c` against the real images of class `c`), on the features of [`Self::prdc_tap`].
    /// Their cost, `O((N + M)^2 D)` (see [the module](mod@crate::prdc)), adds about a minute on two CPU
    /// cores for 10,000 + 10,000 images at 2048 features.
    pub prdc: Option<PrdcOptions>,
    /// The tap whose features precision/recall/density/coverage use (default 2048, the
    /// usual choice); collected even when it is not in `taps` (its FID is then not reported).
    pub prdc_tap: Tap,
    /// Use only the first `real_limit` real images.
    pub real_limit: Option<usize>,
    /// Where reference statistics are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Show progress bars.
    pub progress: bool,
    /// Arithmetic of the Inception network for the generated and the real images (default
    /// float32, pytorch-fid's numbers; bfloat16 through libtorch's autocast, see
    /// [`InceptionExtractor::features_in`] and the deviation measured in the crate's README).
    /// FID, per-class FID, KID and PRDC all use these features; the real images' cached
    /// statistics are kept apart per precision. The conditional-accuracy classifier always
    /// runs in float32.
    pub precision: Precision,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            taps: Tap::PAPER.to_vec(),
            range: PixelRange::Signed,
            preprocess: Preprocess::default(),
            batch_size: 50,
            kid: None,
            prdc: None,
            prdc_tap: Tap::D2048,
            real_limit: None,
            cache_dir: Some(default_cache_dir()),
            progress: true,
            precision: Precision::Fp32,
        }
    }
}

/// Results at one tap.
#[derive(Debug, Clone, Serialize)]
pub struct TapReport {
    /// Feature size.
    pub dims: usize,
    /// FID of all generated images against all real images.
    pub fid: f64,
    /// [`crate::FrechetDetails::singular`] of the all-class FID.
    pub fid_singular: bool,
    /// Per-class FID (when labels were given).
    pub per_class: Option<PerClassFid>,
    /// KID (when asked for).
    pub kid: Option<Kid>,
}

/// Precision, recall, density and coverage of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct PrdcReport {
    /// Feature size of the tap they were computed on.
    pub dims: usize,
    /// k of the k-NN radii.
    pub nearest_k: usize,
    /// All generated images against all real images.
    pub all_class: Prdc,
    /// Per class, with the means over classes (when labels were given).
    pub per_class: Option<PerClassPrdc>,
}

/// The full evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Real dataset.
    pub dataset: String,
    /// Real split.
    pub split: String,
    /// Generated images.
    pub n_generated: usize,
    /// Real images.
    pub n_real: usize,
    /// Whether generated images were quantised to 8 bits.
    pub quantize: bool,
    /// Arithmetic of the Inception network (`"fp32"` or `"bf16"`, [`EvalOptions::precision`];
    /// named apart from the `precision` of precision/recall/density/coverage).
    pub inception_precision: Precision,
    /// One report per tap, shallowest first.
    pub taps: Vec<TapReport>,
    /// Precision, recall, density and coverage (when asked for).
    pub prdc: Option<PrdcReport>,
    /// Conditional accuracy (when a classifier and labels were given).
    pub conditional_accuracy: Option<AccuracyReport>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The number of real images an evaluation of `real` with `options` uses.
fn real_count(real: &Dataset, options: &EvalOptions) -> usize {
    options.real_limit.unwrap_or(real.len()).min(real.len())
}

/// Checks everything [`evaluate_generated`] can check before any image goes through the
/// network, from the settings, the number of generated images `n_generated`, their `labels`
/// and the real split: taps, batch size, KID and PRDC settings, the label count, the classes
/// (per-class FID and per-class PRDC compare the same classes on both sides), two images per
/// class for per-class FID, and at least `nearest_k + 2` images per set (and per class) for
/// PRDC ([`crate::prdc::min_rows`]). A caller can run it before generating the images.
///
/// # Errors
///
/// [`MetricsError::InvalidInput`] for an empty tap list, batch size 0, invalid KID or PRDC
/// settings, a label count other than `n_generated`, or a class on one side only (the
/// precision is checked against the device by [`evaluate_generated`], which knows it);
/// [`MetricsError::TooFewSamples`] for too few images in a set or class (the message names
/// which).
pub fn check_evaluation(
    n_generated: usize,
    labels: Option<&[u8]>,
    real: &Dataset,
    options: &EvalOptions,
) -> Result<()> {
    if normalize(&options.taps).is_empty() {
        return Err(MetricsError::invalid("taps", "no tap requested"));
    }
    if options.batch_size == 0 {
        return Err(MetricsError::invalid("batch_size", "must be at least 1"));
    }
    if let Some(k) = &options.kid {
        k.validate()?;
    }
    let n_real = real_count(real, options);
    for (n, what) in [(n_generated, "generated images"), (n_real, "real images")] {
        if n < 2 {
            return Err(MetricsError::TooFewSamples {
                what: format!("{what} (a covariance needs two samples)"),
                n,
                needed: 2,
            });
        }
    }
    let real_labels = &real.labels[..n_real];
    if let Some(labels) = labels {
        if labels.len() != n_generated {
            return Err(MetricsError::invalid(
                "labels",
                format!("{} labels for {n_generated} generated images", labels.len()),
            ));
        }
        // Per-class FID: the same classes, two images each (a covariance).
        crate::per_class::check_classes(labels, real_labels, 2, "per-class FID")?;
    }
    if let Some(p) = &options.prdc {
        p.validate()?;
        let k = p.nearest_k;
        for (n, what) in [(n_generated, "generated images"), (n_real, "real images")] {
            if n < crate::prdc::min_rows(k) {
                return Err(MetricsError::TooFewSamples {
                    what: format!(
                        "{what} for precision/recall/density/coverage with nearest_k = {k}"
                    ),
                    n,
                    needed: crate::prdc::min_rows(k),
                });
            }
        }
        if let Some(labels) = labels {
            check_class_counts(labels, real_labels, k)?;
        }
    }
    Ok(())
}

/// Evaluates `generated` (`[N, 1|3, H, W]` in `options.range`) with their requested
/// `labels` (one per image; `None` for an unconditional model: no per-class FID, no
/// per-class PRDC and no accuracy) against the first `options.real_limit` real images of
/// `real` (all by default).
///
/// # Errors
///
/// Everything [`check_evaluation`] reports (checked first, before the network runs), and
/// [`MetricsError::InvalidInput`] when a `classifier` is given and the images are not
/// `[N, 1, 28, 28]` (checked before the network runs too); then the errors of the extractor
/// and of the metrics ([`MetricsError::InvalidInput`] for images of another shape or
/// non-finite values, [`MetricsError::Numerical`], [`MetricsError::Torch`],
/// [`MetricsError::Device`]).
///
/// # Panics
///
/// Only for a hand-built `real` whose pixels or labels are fewer than its `count` says (as
/// [`crate::reference::dataset_images`]; never for a split read by `cign_data::Dataset::load`).
pub fn evaluate_generated(
    extractor: &InceptionExtractor,
    generated: &Tensor,
    labels: Option<&[u8]>,
    real: &Dataset,
    options: &EvalOptions,
    classifier: Option<&ConditionalClassifier>,
) -> Result<EvalReport> {
    let started = Instant::now();
    let n_generated = generated.size().first().copied().unwrap_or(0).max(0) as usize;
    check_evaluation(n_generated, labels, real, options)?;
    if classifier.is_some() && labels.is_some() {
        crate::classifier::check_28(generated)?;
    }
    check_precision(options.precision, extractor.device())?;
    let taps = normalize(&options.taps);
    // PRDC's tap is collected too, even when it is not reported.
    let mut collect_taps = taps.clone();
    if options.prdc.is_some() {
        collect_taps = normalize(&[taps.as_slice(), &[options.prdc_tap]].concat());
    }
    let source = TensorImages::new(generated, options.range, options.preprocess)?;
    let collect_opts = CollectOptions {
        batch_size: options.batch_size,
        keep_features: options.kid.is_some() || options.prdc.is_some(),
        progress: options.progress,
        message: "generated".into(),
        precision: options.precision,
    };
    let gen = collect(extractor, &source, labels, &collect_taps, &collect_opts)?;
    let real_opts = CollectOptions {
        message: "real".into(),
        ..collect_opts.clone()
    };
    let reference = reference_stats(
        extractor,
        real,
        options.real_limit,
        &collect_taps,
        options.preprocess,
        options.cache_dir.as_deref(),
        &real_opts,
    )?;
    let n_real = real_count(real, options);

    let mut reports = Vec::new();
    for &tap in &taps {
        let r = &reference[&tap];
        let g_all = gen.stats(tap)?;
        let fid = frechet_details(&g_all, &r.all)?;
        let per_class = match labels {
            // The all-class FID just computed, not a second time (nor its warning).
            Some(_) => Some(per_class_fid_given_all(
                &gen.class_stats(tap)?,
                &r.per_class,
                g_all.dims(),
                fid.value,
            )?),
            None => None,
        };
        let kid_value = match (&options.kid, &gen.tap(tap)?.features, &r.features) {
            (Some(o), Some(fg), Some(fr)) => Some(kid(fg, fr, o)?),
            _ => None,
        };
        reports.push(TapReport {
            dims: tap.dims(),
            fid: fid.value,
            fid_singular: fid.singular,
            per_class,
            kid: kid_value,
        });
    }
    let prdc = match &options.prdc {
        Some(p) => {
            let tap = options.prdc_tap;
            let missing = || MetricsError::invalid("prdc", format!("no features at tap {tap}"));
            let fg = gen.tap(tap)?.features.as_ref().ok_or_else(missing)?;
            let fr = reference[&tap].features.as_ref().ok_or_else(missing)?;
            let per_class = match labels {
                Some(l) => Some(per_class_prdc(fg, l, fr, &real.labels[..n_real], p)?),
                None => None,
            };
            Some(PrdcReport {
                dims: tap.dims(),
                nearest_k: p.nearest_k,
                all_class: prdc_tensors(fg, fr, p)?,
                per_class,
            })
        }
        None => None,
    };
    let conditional_accuracy = match (classifier, labels) {
        // float32 whatever the precision of the features (the classifier sees to it)
        (Some(c), Some(l)) => {
            Some(c.conditional_accuracy(generated, options.range, options.preprocess, l)?)
        }
        _ => None,
    };
    Ok(EvalReport {
        dataset: real.kind.name().to_string(),
        split: real.split.name().to_string(),
        n_generated: gen.n,
        n_real,
        quantize: options.preprocess.quantize,
        inception_precision: options.precision,
        taps: reports,
        prdc,
        conditional_accuracy,
        seconds: started.elapsed().as_secs_f64(),
    })
}
