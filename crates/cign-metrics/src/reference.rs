//! Reference statistics of a real dataset split (all images and per class), cached as
//! pytorch-fid-readable `.npz` files keyed by dataset, split, image count, a fingerprint of
//! the pixels and labels, tap, quantisation, the precision of the network and its weights:
//! `<cache>/<dataset>-<split>-n<count>-<fingerprint>-d<dims>-q<0|1>[-bf16][-w<id>]-<all|c<label>>.npz`
//! (float32 features have no precision suffix, the names the cache had before bfloat16
//! existed; bfloat16 features are `-bf16`, so that they are never read back as float32 ones,
//! nor the reverse; the standard FID weights have no weights suffix, any other weights file
//! `-w` and a digest of its tensors, so that switching `--weights` or `CIGN_FID_WEIGHTS`
//! never reads back statistics of other weights).
//! When the features themselves are asked for (KID, precision/recall/density/coverage), they
//! are cached too, as a float32 `.npy` array `[count, dims]` (NumPy's format) next to them:
//! `<same key>-features.npy` (82 MB for the 10,000 MNIST test images at 2048). Every file is
//! written atomically. The default cache is `<weights dir>/fid-stats`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cign_core::Precision;
use cign_data::atomic::write_atomic;
use cign_data::Dataset;
use ndarray::Array2;
use sha1::{Digest, Sha1};
use tch::{Device, Kind, Tensor};

use crate::collect::{collect, CollectOptions};
use crate::error::{MetricsError, Result};
use crate::extractor::InceptionExtractor;
use crate::images::TensorImages;
use crate::npz::{load_stats, save_stats};
use crate::preprocess::{PixelRange, Preprocess};
use crate::stats::Stats;
use crate::tap::{normalize, Tap};

/// Statistics of the real images at one tap.
#[derive(Debug)]
pub struct ReferenceStats {
    /// All images.
    pub all: Stats,
    /// Per class label, for the classes with two images or more (a covariance).
    pub per_class: BTreeMap<u8, Stats>,
    /// The features `[n, dims]`, when they were asked for (KID needs them).
    pub features: Option<Tensor>,
}

/// The default cache directory: `<weights dir>/fid-stats`.
pub fn default_cache_dir() -> PathBuf {
    crate::weights::weights_dir().join("fid-stats")
}

/// The first `limit` images of `dataset` (all when `None`) as a `u8` tensor `[n, 1, rows, cols]`
/// and their labels.
///
/// # Panics
/// If `dataset.images.pixels` holds fewer than `count * rows * cols` bytes or `labels` fewer
/// than `count` entries (never for a dataset read by `cign_data::Dataset::load`).
pub fn dataset_images(dataset: &Dataset, limit: Option<usize>) -> (Tensor, Vec<u8>) {
    let im = &dataset.images;
    let n = limit.unwrap_or(im.count).min(im.count);
    let size = im.rows * im.cols;
    let t = Tensor::from_slice(&im.pixels[..n * size]).reshape([
        n as i64,
        1,
        im.rows as i64,
        im.cols as i64,
    ]);
    (t, dataset.labels[..n].to_vec())
}

/// Short fingerprint of pixels and labels (10 hex digits of their SHA-1).
pub fn fingerprint(pixels: &[u8], labels: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(pixels);
    h.update([0xffu8]);
    h.update(labels);
    hex::encode(h.finalize())[..10].to_string()
}

/// The cache key (file-name stem without the `-all` / `-c<label>` suffix) of the first `n`
/// images of `dataset` with fingerprint `fp` at `tap`, with `preprocess`, from a network run
/// in `precision` with the weights `weights_id` ([`InceptionExtractor::weights_id`]):
/// `<dataset>-<split>-n<n>-<fp>-d<dims>-q<0|1>`, followed by `-bf16` for
/// [`Precision::Bf16`] (nothing for [`Precision::Fp32`]) and by `-<weights_id>` for weights
/// other than the standard FID weights (nothing for those).
pub fn cache_key(
    dataset: &Dataset,
    n: usize,
    fp: &str,
    tap: Tap,
    preprocess: Preprocess,
    precision: Precision,
    weights_id: &str,
) -> String {
    let mut suffix = match precision {
        Precision::Fp32 => String::new(),
        other => format!("-{}", other.name()),
    };
    if !weights_id.is_empty() {
        suffix.push('-');
        suffix.push_str(weights_id);
    }
    format!(
        "{}-{}-n{n}-{fp}-d{}-q{}{suffix}",
        dataset.kind.name(),
        dataset.split.name(),
        tap.dims(),
        u8::from(preprocess.quantize)
    )
}

/// The cached entry of `key`: statistics, and the features `[n, dims]` too when
/// `features` is `Some((n, dims))` (`None` if any file is missing or does not fit).
fn read_cached(
    dir: &Path,
    key: &str,
    classes: &[u8],
    features: Option<(usize, usize)>,
) -> Option<ReferenceStats> {
    let all = load_stats(&dir.join(format!("{key}-all.npz"))).ok()?;
    let mut per_class = BTreeMap::new();
    for &c in classes {
        per_class.insert(c, load_stats(&dir.join(format!("{key}-c{c}.npz"))).ok()?);
    }
    let features = match features {
        Some(shape) => Some(read_features(&features_file(dir, key), shape)?),
        None => None,
    };
    Some(ReferenceStats {
        all,
        per_class,
        features,
    })
}

fn features_file(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}-features.npy"))
}

/// A cached float32 feature array of shape `shape`, as a CPU tensor; `None` (with a warning
/// when the file exists) if it is missing, unreadable, of another shape or not finite.
fn read_features(path: &Path, shape: (usize, usize)) -> Option<Tensor> {
    if !path.is_file() {
        return None;
    }
    let a: Array2<f32> = match ndarray_npy::read_npy(path) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(
                "{}: cached features unreadable ({e}); recomputing",
                path.display()
            );
            return None;
        }
    };
    if a.dim() != shape || a.iter().any(|v| !v.is_finite()) {
        tracing::warn!(
            "{}: cached features of shape {:?} (expected {shape:?}) or not finite; recomputing",
            path.display(),
            a.dim()
        );
        return None;
    }
    let data: Vec<f32> = a.iter().copied().collect();
    Tensor::f_from_slice(&data)
        .and_then(|t| t.f_view([shape.0 as i64, shape.1 as i64]))
        .ok()
}

fn write_cached(dir: &Path, key: &str, r: &ReferenceStats) -> Result<()> {
    save_stats(&dir.join(format!("{key}-all.npz")), &r.all)?;
    for (c, s) in &r.per_class {
        save_stats(&dir.join(format!("{key}-c{c}.npz")), s)?;
    }
    if let Some(f) = &r.features {
        let size = f.size();
        let data: Vec<f32> = f
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?
            .f_view([-1])?
            .try_into()?;
        let a = Array2::from_shape_vec((size[0] as usize, size[1] as usize), data)
            .map_err(|e| MetricsError::Numerical(format!("features of shape {size:?}: {e}")))?;
        let path = features_file(dir, key);
        write_atomic(&path, |part| {
            ndarray_npy::write_npy(part, &a).map_err(std::io::Error::other)
        })
        .map_err(|e| MetricsError::io(&path, "cannot write", e))?;
    }
    Ok(())
}

/// Reference statistics of the first `limit` images of `dataset` at `taps`, with the network
/// in `options.precision`, read from `cache_dir` when present there (under the key of that
/// precision, [`cache_key`]), else computed (and written there when `cache_dir` is set).
/// With `options.keep_features` the features `[n, dims]` are returned too (read from the
/// cache when it holds them, else computed and cached). A cache that cannot be written is a
/// warning, not an error.
///
/// # Errors
///
/// The errors of [`collect`] (the extractor, the device, the batch size) and of
/// [`TensorImages::new`], when the statistics are not all in the cache;
/// [`MetricsError::TooFewSamples`] when `limit` leaves fewer than two images (a covariance
/// needs two). A class with a single image is left out of `per_class` (it has no covariance).
///
/// # Panics
///
/// As [`dataset_images`], for a hand-built `dataset` whose fields disagree.
pub fn reference_stats(
    extractor: &InceptionExtractor,
    dataset: &Dataset,
    limit: Option<usize>,
    taps: &[Tap],
    preprocess: Preprocess,
    cache_dir: Option<&Path>,
    options: &CollectOptions,
) -> Result<BTreeMap<Tap, ReferenceStats>> {
    let taps = normalize(taps);
    let (images, labels) = dataset_images(dataset, limit);
    let n = labels.len();
    let size = dataset.images.rows * dataset.images.cols;
    let fp = fingerprint(&dataset.images.pixels[..n * size], &labels);
    // The classes with a covariance (two images or more): a class with one image has no
    // per-class statistics, which only a per-class comparison needs (and refuses up front).
    let classes: Vec<u8> = crate::per_class::class_counts(&labels)
        .into_iter()
        .filter(|&(_, n)| n >= 2)
        .map(|(c, _)| c)
        .collect();

    let key_of = |tap: Tap| {
        let weights = extractor.weights_id();
        cache_key(dataset, n, &fp, tap, preprocess, options.precision, weights)
    };
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for &tap in &taps {
        let key = key_of(tap);
        let features = options.keep_features.then_some((n, tap.dims()));
        let cached = cache_dir.and_then(|d| read_cached(d, &key, &classes, features));
        match cached {
            Some(r) => {
                tracing::info!("reference statistics {key} read from the cache");
                out.insert(tap, r);
            }
            None => missing.push(tap),
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    let source = TensorImages::new(&images, PixelRange::Unit, preprocess)?;
    let collected = collect(extractor, &source, Some(&labels), &missing, options)?;
    for &tap in &missing {
        let r = ReferenceStats {
            all: collected.stats(tap)?,
            per_class: collected
                .tap(tap)?
                .per_class
                .iter()
                .filter(|(c, _)| classes.contains(c))
                .map(|(&c, s)| s.finish().map(|st| (c, st)))
                .collect::<Result<_>>()?,
            features: collected
                .tap(tap)?
                .features
                .as_ref()
                .map(|f| f.shallow_clone()),
        };
        if let Some(dir) = cache_dir {
            let key = key_of(tap);
            if let Err(e) = write_cached(dir, &key, &r) {
                tracing::warn!("could not cache reference statistics {key}: {e}");
            }
        }
        out.insert(tap, r);
    }
    Ok(out)
}
