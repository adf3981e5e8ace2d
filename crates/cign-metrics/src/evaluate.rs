//! [`evaluate_generated`]: the full evaluation of a (conditional) generator's images against
//! a real dataset split, independent of any model type: all-class FID, per-class FID
//! (mean, std, min, max), optional KID, optional conditional accuracy, at any taps.

use std::path::PathBuf;
use std::time::Instant;

use cign_data::Dataset;
use serde::Serialize;
use tch::Tensor;

use crate::classifier::{AccuracyReport, ConditionalClassifier};
use crate::collect::{collect, CollectOptions};
use crate::error::{MetricsError, Result};
use crate::extractor::InceptionExtractor;
use crate::frechet::frechet_details;
use crate::images::TensorImages;
use crate::kid::{kid, Kid, KidOptions};
use crate::per_class::{per_class_fid, PerClassFid};
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
    /// Images per forward pass.
    pub batch_size: usize,
    /// KID settings; `None` skips KID.
    pub kid: Option<KidOptions>,
    /// Use only the first `real_limit` real images.
    pub real_limit: Option<usize>,
    /// Where reference statistics are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            taps: Tap::PAPER.to_vec(),
            range: PixelRange::Signed,
            preprocess: Preprocess::default(),
            batch_size: 50,
            kid: None,
            real_limit: None,
            cache_dir: Some(default_cache_dir()),
            progress: true,
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
    /// A covariance of the all-class FID was singular.
    pub fid_singular: bool,
    /// Per-class FID (when labels were given).
    pub per_class: Option<PerClassFid>,
    /// KID (when asked for).
    pub kid: Option<Kid>,
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
    /// One report per tap, shallowest first.
    pub taps: Vec<TapReport>,
    /// Conditional accuracy (when a classifier and labels were given).
    pub conditional_accuracy: Option<AccuracyReport>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Evaluates `generated` (`[N, 1|3, H, W]` in `options.range`) with their requested
/// `labels` (one per image; `None` for an unconditional model: no per-class FID and no
/// accuracy) against the real images of `real`.
pub fn evaluate_generated(
    extractor: &InceptionExtractor,
    generated: &Tensor,
    labels: Option<&[u8]>,
    real: &Dataset,
    options: &EvalOptions,
    classifier: Option<&ConditionalClassifier>,
) -> Result<EvalReport> {
    let started = Instant::now();
    let taps = normalize(&options.taps);
    if taps.is_empty() {
        return Err(MetricsError::invalid("taps", "no tap requested"));
    }
    let source = TensorImages::new(generated, options.range, options.preprocess)?;
    let collect_opts = CollectOptions {
        batch_size: options.batch_size,
        keep_features: options.kid.is_some(),
        progress: options.progress,
        message: "generated".into(),
    };
    let gen = collect(extractor, &source, labels, &taps, &collect_opts)?;
    let real_opts = CollectOptions {
        message: "real".into(),
        ..collect_opts.clone()
    };
    let reference = reference_stats(
        extractor,
        real,
        options.real_limit,
        &taps,
        options.preprocess,
        options.cache_dir.as_deref(),
        &real_opts,
    )?;
    let n_real = options.real_limit.unwrap_or(real.len()).min(real.len());

    let mut reports = Vec::new();
    for &tap in &taps {
        let r = &reference[&tap];
        let g_all = gen.stats(tap)?;
        let fid = frechet_details(&g_all, &r.all)?;
        let per_class = match labels {
            Some(_) => Some(per_class_fid(
                &gen.class_stats(tap)?,
                &r.per_class,
                &g_all,
                &r.all,
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
    let conditional_accuracy = match (classifier, labels) {
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
        taps: reports,
        conditional_accuracy,
        seconds: started.elapsed().as_secs_f64(),
    })
}
