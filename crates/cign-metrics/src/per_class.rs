//! Per-class FID for conditional models: for each class `c`, generated images of class `c`
//! against real images of class `c`; summarised by mean, standard deviation (population,
//! over classes), min and max, next to the all-class FID.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{MetricsError, Result};
use crate::frechet::frechet_details;
use crate::stats::Stats;

/// The FID of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassFid {
    /// The class label.
    pub class: u8,
    /// Generated images of the class.
    pub n_generated: usize,
    /// Real images of the class.
    pub n_real: usize,
    /// FID between them.
    pub fid: f64,
    /// As [`crate::FrechetDetails::singular`]: a covariance numerically singular, a set
    /// with no more samples than dimensions, or the `1e-6` offset needed.
    pub singular: bool,
}

/// Per-class FIDs at one tap, with their summary and the all-class FID.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerClassFid {
    /// Feature size of the tap.
    pub dims: usize,
    /// One entry per class, by label.
    pub classes: Vec<ClassFid>,
    /// Mean over classes (the paper's "FID mean").
    pub mean: f64,
    /// Population standard deviation over classes.
    pub std: f64,
    /// Smallest class FID.
    pub min: f64,
    /// Largest class FID.
    pub max: f64,
    /// FID of all generated images against all real images.
    pub all_class: f64,
}

/// Mean, population std, min and max of `values` (all NaN when empty).
pub fn summarize(values: &[f64]) -> (f64, f64, f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, std, min, max)
}

/// Samples per label (every label of `labels` with its count, in label order).
pub fn class_counts(labels: &[u8]) -> BTreeMap<u8, usize> {
    let mut counts = BTreeMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    counts
}

/// Checks labels of a per-class comparison: some labels on each side, the same classes on
/// both sides, at least `min_per_class` samples of each class on each side (`purpose` says
/// what needs them, for the message).
pub(crate) fn check_classes(
    generated_labels: &[u8],
    real_labels: &[u8],
    min_per_class: usize,
    purpose: &str,
) -> Result<()> {
    let (g, r) = (class_counts(generated_labels), class_counts(real_labels));
    if g.is_empty() || r.is_empty() {
        return Err(MetricsError::invalid(
            "labels",
            format!("{purpose} needs labelled samples on both sides"),
        ));
    }
    for (have, lack, side, other) in [(&g, &r, "generated", "real"), (&r, &g, "real", "generated")]
    {
        if let Some(c) = have.keys().find(|c| !lack.contains_key(c)) {
            return Err(MetricsError::invalid(
                "labels",
                format!("class {c} has {side} samples but no {other} samples ({purpose} compares the same classes)"),
            ));
        }
    }
    for (counts, side) in [(&g, "generated"), (&r, "real")] {
        for (c, &n) in counts.iter() {
            if n < min_per_class {
                return Err(MetricsError::TooFewSamples {
                    what: format!("{side} samples of class {c} for {purpose}"),
                    n,
                    needed: min_per_class,
                });
            }
        }
    }
    Ok(())
}

/// Per-class FID from per-class statistics of generated and real images (the same classes
/// on both sides) and the all-class statistics.
///
/// With no class on either side the summary's `mean`, `std`, `min` and `max` are NaN.
///
/// # Errors
/// [`MetricsError::InvalidInput`] naming a class that is on one side only; the errors of
/// [`frechet_details`] for a class or for all classes.
pub fn per_class_fid(
    generated: &BTreeMap<u8, Stats>,
    real: &BTreeMap<u8, Stats>,
    all_generated: &Stats,
    all_real: &Stats,
) -> Result<PerClassFid> {
    let all_class = frechet_details(all_generated, all_real)?.value;
    per_class_fid_given_all(generated, real, all_generated.dims(), all_class)
}

/// [`per_class_fid`] with the all-class FID already computed (`all_class`, at `dims`
/// dimensions), so that a caller that has it does not compute it (and warn about it) twice.
pub(crate) fn per_class_fid_given_all(
    generated: &BTreeMap<u8, Stats>,
    real: &BTreeMap<u8, Stats>,
    dims: usize,
    all_class: f64,
) -> Result<PerClassFid> {
    for c in generated.keys() {
        if !real.contains_key(c) {
            return Err(MetricsError::invalid(
                "labels",
                format!("class {c} has generated images but no real images"),
            ));
        }
    }
    for c in real.keys() {
        if !generated.contains_key(c) {
            return Err(MetricsError::invalid(
                "labels",
                format!("class {c} has real images but no generated images"),
            ));
        }
    }
    let mut classes = Vec::with_capacity(generated.len());
    for (c, g) in generated {
        let r = &real[c];
        let d = frechet_details(g, r)?;
        classes.push(ClassFid {
            class: *c,
            n_generated: g.n,
            n_real: r.n,
            fid: d.value,
            singular: d.singular,
        });
    }
    let values: Vec<f64> = classes.iter().map(|c| c.fid).collect();
    let (mean, std, min, max) = summarize(&values);
    Ok(PerClassFid {
        dims,
        classes,
        mean,
        std,
        min,
        max,
        all_class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    fn st(m: f64) -> Stats {
        Stats {
            mu: Array1::from(vec![m, 0.0]),
            sigma: Array2::eye(2),
            n: 10,
        }
    }

    #[test]
    fn summary_over_classes() {
        let g: BTreeMap<u8, Stats> = [(0, st(0.0)), (1, st(1.0)), (2, st(3.0))].into();
        let r: BTreeMap<u8, Stats> = [(0, st(0.0)), (1, st(0.0)), (2, st(0.0))].into();
        let p = per_class_fid(&g, &r, &st(1.0), &st(0.0)).unwrap();
        let fids: Vec<f64> = p.classes.iter().map(|c| c.fid).collect();
        for (f, want) in fids.iter().zip([0.0, 1.0, 9.0]) {
            assert!((f - want).abs() < 1e-9);
        }
        assert!((p.mean - 10.0 / 3.0).abs() < 1e-9);
        assert!((p.min - 0.0).abs() < 1e-9 && (p.max - 9.0).abs() < 1e-9);
        let var =
            ((10.0f64 / 3.0).powi(2) + (7.0f64 / 3.0).powi(2) + (17.0f64 / 3.0).powi(2)) / 3.0;
        assert!((p.std - var.sqrt()).abs() < 1e-9);
        assert!((p.all_class - 1.0).abs() < 1e-9);

        let mut r2 = r.clone();
        r2.remove(&2);
        assert!(per_class_fid(&g, &r2, &st(1.0), &st(0.0)).is_err());
    }
}
