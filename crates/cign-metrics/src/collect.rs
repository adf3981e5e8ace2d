//! Runs an [`ImageSource`] through the extractor batch by batch, with a progress bar, and
//! accumulates per tap the all-image statistics, per-label statistics (when labels are
//! given) and, on request, the features themselves (for KID).

use std::collections::BTreeMap;

use cign_core::Precision;
use indicatif::{ProgressBar, ProgressStyle};
use tch::Tensor;

use crate::error::{MetricsError, Result};
use crate::extractor::{check_precision, InceptionExtractor};
use crate::images::ImageSource;
use crate::stats::{Stats, StreamingStats};
use crate::tap::{normalize, Tap};

/// How to run a collection.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Images per forward pass (pytorch-fid's default is 50).
    pub batch_size: usize,
    /// Keep the features (needed for KID).
    pub keep_features: bool,
    /// Show a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Text in front of the progress bar.
    pub message: String,
    /// Arithmetic of the Inception network (default float32; bfloat16 through libtorch's
    /// autocast, see [`InceptionExtractor::features_in`]). The features and statistics are
    /// float32 and float64 either way.
    pub precision: Precision,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            batch_size: 50,
            keep_features: false,
            progress: true,
            message: "features".into(),
            precision: Precision::Fp32,
        }
    }
}

/// What was accumulated at one tap.
#[derive(Debug)]
pub struct TapCollection {
    /// The tap.
    pub tap: Tap,
    /// Statistics of all images.
    pub all: StreamingStats,
    /// Statistics per label (empty without labels).
    pub per_class: BTreeMap<u8, StreamingStats>,
    /// The features `[n, dims]` when kept.
    pub features: Option<Tensor>,
}

/// The result of [`collect`].
#[derive(Debug)]
pub struct Collected {
    /// One entry per requested tap, shallowest first.
    pub taps: Vec<TapCollection>,
    /// Number of images.
    pub n: usize,
}

impl Collected {
    /// The collection of `tap`.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when `tap` was not collected.
    pub fn tap(&self, tap: Tap) -> Result<&TapCollection> {
        self.taps
            .iter()
            .find(|t| t.tap == tap)
            .ok_or_else(|| MetricsError::invalid("tap", format!("tap {tap} was not collected")))
    }

    /// Statistics of all images at `tap`.
    ///
    /// # Errors
    /// As [`Collected::tap`]; [`MetricsError::TooFewSamples`] with fewer than two images.
    pub fn stats(&self, tap: Tap) -> Result<Stats> {
        self.tap(tap)?.all.finish()
    }

    /// Statistics per label at `tap`.
    ///
    /// # Errors
    /// As [`Collected::tap`]; [`MetricsError::InvalidInput`] naming a class with fewer than
    /// two images.
    pub fn class_stats(&self, tap: Tap) -> Result<BTreeMap<u8, Stats>> {
        self.tap(tap)?
            .per_class
            .iter()
            .map(|(c, s)| {
                s.finish()
                    .map(|st| (*c, st))
                    .map_err(|e| MetricsError::invalid("labels", format!("class {c}: {e}")))
            })
            .collect()
    }
}

/// A progress bar over `n` images (hidden when `show` is false).
pub fn progress_bar(n: usize, show: bool, message: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {bar:40} {pos}/{len} images ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(message.to_string());
    bar
}

/// Runs all images of `source` through `extractor` at `taps`; with `labels` (one per image)
/// it also accumulates statistics per label.
///
/// # Errors
/// [`MetricsError::InvalidInput`] for an empty tap list, batch size 0 or a label count other
/// than the number of images, or a precision the extractor's device cannot run (checked
/// before the first image is read); the errors of [`ImageSource::batch`] (unreadable or
/// invalid images) and of [`InceptionExtractor::features_in`] (libtorch, device, memory).
pub fn collect(
    extractor: &InceptionExtractor,
    source: &dyn ImageSource,
    labels: Option<&[u8]>,
    taps: &[Tap],
    options: &CollectOptions,
) -> Result<Collected> {
    let taps = normalize(taps);
    if taps.is_empty() {
        return Err(MetricsError::invalid("taps", "no tap requested"));
    }
    if options.batch_size == 0 {
        return Err(MetricsError::invalid("batch_size", "must be at least 1"));
    }
    check_precision(options.precision, extractor.device())?;
    let n = source.len();
    if let Some(l) = labels {
        if l.len() != n {
            return Err(MetricsError::invalid(
                "labels",
                format!("{} labels for {n} images", l.len()),
            ));
        }
    }
    let mut cols: Vec<TapCollection> = taps
        .iter()
        .map(|&tap| TapCollection {
            tap,
            all: StreamingStats::new(tap.dims()),
            per_class: BTreeMap::new(),
            features: None,
        })
        .collect();
    let mut kept: Vec<Vec<Tensor>> = (0..taps.len()).map(|_| Vec::new()).collect();
    let bar = progress_bar(n, options.progress, &options.message);
    let mut start = 0;
    while start < n {
        let end = (start + options.batch_size).min(n);
        let images = source.batch(start, end)?;
        let feats = extractor.features_in(&images, &taps, options.precision)?;
        for (t, f) in feats.iter().enumerate() {
            cols[t].all.update(f)?;
            if let Some(labels) = labels {
                add_per_class(&mut cols[t], f, &labels[start..end])?;
            }
            if options.keep_features {
                kept[t].push(f.shallow_clone());
            }
        }
        bar.inc((end - start) as u64);
        start = end;
    }
    bar.finish_and_clear();
    if options.keep_features {
        for (c, k) in cols.iter_mut().zip(kept) {
            if !k.is_empty() {
                c.features = Some(Tensor::f_cat(&k, 0)?);
            }
        }
    }
    Ok(Collected { taps: cols, n })
}

fn add_per_class(col: &mut TapCollection, feats: &Tensor, labels: &[u8]) -> Result<()> {
    let mut by_class: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    for (i, &c) in labels.iter().enumerate() {
        by_class.entry(c).or_default().push(i as i64);
    }
    for (c, idx) in by_class {
        let rows = feats.index_select(0, &Tensor::from_slice(&idx));
        col.per_class
            .entry(c)
            .or_insert_with(|| StreamingStats::new(col.tap.dims()))
            .update(&rows)?;
    }
    Ok(())
}
