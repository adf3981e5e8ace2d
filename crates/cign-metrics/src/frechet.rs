//! The Fréchet distance between two Gaussians,
//! `|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))`, in float64.
//!
//! `tr sqrt(S1 S2)` comes from symmetric eigen-decompositions `Si = Vi diag(wi) Vi^T`
//! (eigenvalues below `d * eps * max` count as 0; negative ones down to
//! [`NEGATIVE_EIGENVALUE_RTOL`] ` * max` are round-off, e.g. of statistics stored in float16,
//! and count as 0 too; a covariance with a more negative eigenvalue is not a covariance and
//! is refused, where pytorch-fid raises on the imaginary part it gives `sqrtm`): with `Fi = Vi diag(sqrt wi)`, `S1 S2` has the non-zero eigenvalues of
//! `F1^T S2 F1 = C^T C`, `C = F2^T F1`, so the trace is the sum of the singular values of
//! `C` (the equivalent of `tr sqrtm(sqrt(S1) S2 sqrt(S1))`, without squaring the condition
//! number). This never produces a complex number or a NaN on singular covariances (fewer
//! samples than dimensions), where `scipy.linalg.sqrtm` can. As in pytorch-fid, if the
//! result is not finite the computation is repeated with `1e-6` added to both diagonals,
//! with a warning; since this computation stays finite on any finite covariances, that
//! fallback practically never runs, so where pytorch-fid needs its offset (SciPy's `sqrtm`
//! not finite, e.g. 2 samples at 64 dimensions) cign returns the exact value and pytorch-fid
//! one moved by the offset (2.2e-6 relative apart in that example). The reference is pytorch-fid's `calculate_frechet_distance` (in
//! `src/pytorch_fid/fid_score.py`).

use tch::{Device, Kind, Tensor};

use crate::error::{MetricsError, Result};
use crate::stats::{array1_to_tensor, array2_to_tensor, Stats};

/// pytorch-fid's diagonal offset for the fallback.
pub const DIAGONAL_OFFSET: f64 = 1e-6;

/// The most negative eigenvalue a covariance may have, relative to its largest, and still
/// count as positive semi-definite up to rounding (float16 storage of 64-dimensional
/// statistics gives about 1e-3; a real covariance computed in float64, about 1e-15).
pub const NEGATIVE_EIGENVALUE_RTOL: f64 = 1e-2;

/// A Fréchet distance with what happened on the way.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FrechetDetails {
    /// The distance, in squared feature units; at least 0 up to rounding.
    pub value: f64,
    /// A covariance is numerically singular, a set has no more samples than dimensions, or
    /// the `1e-6` offset was needed: the value is still defined, but it is a poor estimate
    /// of the population distance.
    pub singular: bool,
    /// The `1e-6` diagonal offset had to be added (pytorch-fid's fallback).
    pub offset_added: bool,
}

/// The Fréchet distance between two sets of statistics (see the module documentation).
/// Symmetric: swapping the arguments gives exactly the same value.
///
/// # Errors
/// As [`frechet_details`].
pub fn frechet_distance(a: &Stats, b: &Stats) -> Result<f64> {
    Ok(frechet_details(a, b)?.value)
}

/// [`frechet_distance`] with the singular / fallback flags. Warns (through `tracing`) when a
/// covariance is singular, as pytorch-fid warns when it has to add its offset.
///
/// # Errors
/// [`MetricsError::InvalidStats`] when either statistics fail [`Stats::validate`] or a
/// covariance has an eigenvalue below `-NEGATIVE_EIGENVALUE_RTOL` times its largest (not
/// positive semi-definite);
/// [`MetricsError::InvalidInput`] when their feature sizes differ;
/// [`MetricsError::Numerical`] when the trace of the matrix square root is not finite even
/// with pytorch-fid's diagonal offset; [`MetricsError::Torch`] for a libtorch failure (out of
/// memory).
pub fn frechet_details(a: &Stats, b: &Stats) -> Result<FrechetDetails> {
    a.validate("first statistics")?;
    b.validate("second statistics")?;
    if a.dims() != b.dims() {
        return Err(MetricsError::invalid(
            "stats",
            format!("feature sizes differ: {} and {}", a.dims(), b.dims()),
        ));
    }
    // A fixed order of the two arguments makes the value exactly symmetric.
    let (first, second) = ("first statistics", "second statistics");
    let (a, b, names) = if canonical_first(a, b) {
        (a, b, [first, second])
    } else {
        (b, a, [second, first])
    };
    let mu1 = array1_to_tensor(&a.mu);
    let mu2 = array1_to_tensor(&b.mu);
    let s1 = array2_to_tensor(&a.sigma);
    let s2 = array2_to_tensor(&b.sigma);
    let d = a.dims();
    let diff = &mu1 - &mu2;
    let mean_term = diff.dot(&diff).double_value(&[]);
    let traces = s1.trace().double_value(&[]) + s2.trace().double_value(&[]);

    let mut singular = (a.n > 0 && a.n <= d) || (b.n > 0 && b.n <= d);
    let mut offset_added = false;
    let tr_covmean = match trace_sqrt_product_of(&s1, &s2, names) {
        Ok((tr, cov_singular)) if tr.is_finite() => {
            singular |= cov_singular;
            tr
        }
        Err(e @ MetricsError::InvalidStats { .. }) => return Err(e),
        _ => {
            tracing::warn!(
                "fid calculation produces singular product; adding {DIAGONAL_OFFSET} to diagonal of cov estimates"
            );
            offset_added = true;
            singular = true;
            let eye = Tensor::eye(d as i64, (Kind::Double, Device::Cpu)) * DIAGONAL_OFFSET;
            let (tr, _) = trace_sqrt_product_of(&(&s1 + &eye), &(&s2 + &eye), names)?;
            if !tr.is_finite() {
                return Err(MetricsError::Numerical(
                    "trace of sqrt(S1 S2) is not finite even with the diagonal offset".into(),
                ));
            }
            tr
        }
    };
    if singular {
        let count = |n: usize| match n {
            0 => "an unknown number of".to_string(),
            n => n.to_string(),
        };
        tracing::warn!(
            "a covariance is singular ({} and {} samples for {d} dimensions): the Fréchet distance is computed exactly but is a poor estimate",
            count(a.n),
            count(b.n)
        );
    }
    Ok(FrechetDetails {
        value: mean_term + traces - 2.0 * tr_covmean,
        singular,
        offset_added,
    })
}

/// A factor `F` with `S = F F^T` from the symmetric eigen-decomposition of the PSD matrix
/// `S`: `F = V_k diag(sqrt w_k)` over the eigenvalues above round-off (`d * eps * max`), so
/// it has as many columns as the numerical rank. Also says whether `S` is singular.
///
/// # Errors
/// [`MetricsError::InvalidStats`] naming `which` when an eigenvalue is below
/// `-NEGATIVE_EIGENVALUE_RTOL` times the largest; [`MetricsError::Numerical`] when the
/// decomposition fails.
fn psd_factor(s: &Tensor, which: &str) -> Result<(Tensor, bool)> {
    let d = s.size()[0];
    let s = (s + s.tr()) * 0.5;
    let (w, v) = s.f_linalg_eigh("L").map_err(|e| {
        MetricsError::Numerical(format!("eigen-decomposition of {which} failed: {e}"))
    })?;
    let wmax = w.abs().max().double_value(&[]);
    let wmin = w.min().double_value(&[]);
    if wmin < -NEGATIVE_EIGENVALUE_RTOL * wmax {
        return Err(MetricsError::InvalidStats {
            which: which.to_string(),
            what: format!(
                "sigma is not positive semi-definite (eigenvalue {wmin:.4e} against a largest of                  {wmax:.4e}; at most {NEGATIVE_EIGENVALUE_RTOL} times it below 0 is rounding):                  not the covariance of any features"
            ),
        });
    }
    let tol = wmax * d as f64 * f64::EPSILON;
    let keep = w.gt(tol).nonzero().squeeze_dim(1);
    let rank = keep.size()[0];
    let factor = v.index_select(1, &keep) * w.index_select(0, &keep).sqrt().unsqueeze(0);
    Ok((factor, rank < d))
}

/// `tr sqrt(S1 S2)` for symmetric positive semi-definite `S1`, `S2` (`[d, d]`, any float kind
/// and device; computed in float64 on the CPU), and whether either is numerically singular.
///
/// With factors `Si = Fi Fi^T` (from the eigen-decompositions, see the module docs), the
/// non-zero eigenvalues of `S1 S2` are those of `F1^T S2 F1 = (F2^T F1)^T (F2^T F1)`, the
/// squared singular values of
/// `C = F2^T F1`, so the trace is the sum of the singular values of `C`. Working with `C`
/// rather than `C^T C` keeps the accuracy of the small eigenvalues (square roots of
/// round-off in `C^T C` would dominate for ill-conditioned inputs), and `C` is only
/// rank(S2) x rank(S1), small when there are fewer samples than dimensions.
///
/// # Errors
/// [`MetricsError::InvalidInput`] unless both are square matrices of the same size;
/// [`MetricsError::InvalidStats`] (naming `S1` or `S2`) when one is not positive
/// semi-definite beyond rounding ([`NEGATIVE_EIGENVALUE_RTOL`]);
/// [`MetricsError::Numerical`] when a decomposition fails.
pub fn trace_sqrt_product(s1: &Tensor, s2: &Tensor) -> Result<(f64, bool)> {
    trace_sqrt_product_of(s1, s2, ["S1", "S2"])
}

/// [`trace_sqrt_product`], naming the two matrices `which` in its errors.
fn trace_sqrt_product_of(s1: &Tensor, s2: &Tensor, which: [&str; 2]) -> Result<(f64, bool)> {
    let (z1, z2) = (s1.size(), s2.size());
    if z1.len() != 2 || z1[0] != z1[1] || z1 != z2 || z1[0] == 0 {
        return Err(MetricsError::invalid(
            "covariances",
            format!("expected two [d, d] matrices with d >= 1, got {z1:?} and {z2:?}"),
        ));
    }
    let s1 = &s1.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let s2 = &s2.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let (f1, sing1) = psd_factor(s1, which[0])?;
    let (f2, sing2) = psd_factor(s2, which[1])?;
    if f1.size()[1] == 0 || f2.size()[1] == 0 {
        return Ok((0.0, true));
    }
    let c = f2.tr().matmul(&f1);
    let (_, sv, _) = c
        .f_svd(true, false)
        .map_err(|e| MetricsError::Numerical(format!("singular values of F2^T F1 failed: {e}")))?;
    Ok((sv.sum(Kind::Double).double_value(&[]), sing1 || sing2))
}

/// Whether `a` goes first in the canonical argument order (trace, then mean, then count).
fn canonical_first(a: &Stats, b: &Stats) -> bool {
    let ta: f64 = a.sigma.diag().sum();
    let tb: f64 = b.sigma.diag().sum();
    if ta != tb {
        return ta < tb;
    }
    for (x, y) in a.mu.iter().zip(b.mu.iter()) {
        if x != y {
            return x < y;
        }
    }
    a.n <= b.n
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};

    fn diag_stats(mu: &[f64], var: &[f64]) -> Stats {
        Stats {
            mu: Array1::from(mu.to_vec()),
            sigma: Array2::from_diag(&Array1::from(var.to_vec())),
            n: 100,
        }
    }

    #[test]
    fn diagonal_covariances_have_a_closed_form() {
        // For commuting (diagonal) covariances: sum (m1-m2)^2 + (sqrt v1 - sqrt v2)^2.
        let a = diag_stats(&[0.0, 1.0, 2.0], &[1.0, 4.0, 9.0]);
        let b = diag_stats(&[1.0, 1.0, 0.0], &[4.0, 1.0, 0.25]);
        let want = 1.0 + 0.0 + 4.0 + 1.0 + 1.0 + 6.25;
        let got = frechet_distance(&a, &b).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert_eq!(got, frechet_distance(&b, &a).unwrap());
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-12);
    }

    #[test]
    fn singular_and_zero_covariances_stay_finite() {
        let a = diag_stats(&[0.0, 0.0], &[0.0, 0.0]);
        let b = diag_stats(&[3.0, 4.0], &[0.0, 1.0]);
        let d = frechet_details(&a, &b).unwrap();
        assert!((d.value - 26.0).abs() < 1e-12, "{}", d.value);
        assert!(d.singular);
        assert!(!d.offset_added);
    }

    #[test]
    fn mismatched_or_non_finite_statistics_are_errors() {
        let a = diag_stats(&[0.0, 0.0], &[1.0, 1.0]);
        let b = diag_stats(&[0.0], &[1.0]);
        assert!(frechet_distance(&a, &b).is_err());
        let mut c = a.clone();
        c.sigma[[0, 1]] = f64::NAN;
        assert!(frechet_distance(&a, &c).is_err());
    }

    // pytorch-fid raises on such a covariance (sqrtm gives a large imaginary part); cign used
    // to drop the negative eigenvalue and return a value. The error names the argument,
    // whichever order they come in.
    #[test]
    fn a_covariance_that_is_not_positive_semi_definite_is_refused() {
        let bad = Stats {
            mu: Array1::zeros(2),
            // Eigenvalues 3 and -1.
            sigma: Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 2.0, 1.0]).unwrap(),
            n: 100,
        };
        let good = diag_stats(&[0.0, 0.0], &[1.0, 1.0]);
        for (a, b, which) in [
            (&bad, &good, "first statistics"),
            (&good, &bad, "second statistics"),
        ] {
            match frechet_details(a, b).unwrap_err() {
                MetricsError::InvalidStats { which: w, what } => {
                    assert_eq!(w, which);
                    assert!(what.contains("not positive semi-definite"), "{what}");
                }
                other => panic!("{other:?}"),
            }
        }
        let e = trace_sqrt_product(
            &array2_to_tensor(&good.sigma),
            &array2_to_tensor(&bad.sigma),
        )
        .unwrap_err();
        assert!(
            matches!(&e, MetricsError::InvalidStats { which, .. } if which == "S2"),
            "{e:?}"
        );
        // Rounding below the tolerance counts as 0: the value of the clamped matrix, less the
        // negative eigenvalue's share of the trace. Rotated by 45 degrees, so that the
        // diagonal stays positive: R diag(1, -e) R^T.
        let e = 0.5 * NEGATIVE_EIGENVALUE_RTOL;
        let rotated = |w2: f64| Stats {
            mu: Array1::zeros(2),
            sigma: Array2::from_shape_vec(
                (2, 2),
                vec![
                    (1.0 + w2) / 2.0,
                    (1.0 - w2) / 2.0,
                    (1.0 - w2) / 2.0,
                    (1.0 + w2) / 2.0,
                ],
            )
            .unwrap(),
            n: 100,
        };
        let got = frechet_distance(&rotated(-e), &good).unwrap();
        let want = frechet_distance(&rotated(0.0), &good).unwrap() - e;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}
