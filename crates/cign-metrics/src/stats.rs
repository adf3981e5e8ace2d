//! Feature statistics: float64 mean and covariance (`n - 1`, like `np.cov`), accumulated
//! batch by batch ([`StreamingStats`], Chan et al.'s pairwise update, so no batch needs to
//! hold all features).

use ndarray::{Array1, Array2};
use tch::{Device, Kind, Tensor};

use crate::error::{MetricsError, Result};

/// Mean and covariance of a set of feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Mean, `[dims]`.
    pub mu: Array1<f64>,
    /// Covariance with `n - 1` normalisation, `[dims, dims]`.
    pub sigma: Array2<f64>,
    /// Number of samples (0 when unknown, e.g. statistics read from a pytorch-fid file).
    pub n: usize,
}

impl Stats {
    /// Feature size.
    pub fn dims(&self) -> usize {
        self.mu.len()
    }

    /// Statistics of the rows of `features` (`[n, dims]`, any float kind).
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape (zero feature columns included) or
    /// NaN / infinite values; [`MetricsError::TooFewSamples`] with fewer than two rows.
    ///
    /// # Panics
    /// If libtorch runs out of memory for the `dims x dims` covariance.
    pub fn from_features(features: &Tensor) -> Result<Stats> {
        let size = features.size();
        if size.len() != 2 || size[1] == 0 {
            return Err(MetricsError::invalid(
                "features",
                format!("expected [n, dims] with dims >= 1, got shape {size:?}"),
            ));
        }
        let mut s = StreamingStats::new(size[1] as usize);
        s.update(features)?;
        s.finish()
    }

    /// Checks that these can be statistics of real features: `mu` not empty, `sigma`
    /// `[d, d]`, every value finite, `sigma` symmetric within a relative tolerance
    /// ([`SYMMETRY_RTOL`]: `max |S_ij - S_ji| <= SYMMETRY_RTOL * max |S_ij|`) and no negative
    /// variance on its diagonal (below `-SYMMETRY_RTOL * max |S_ij|`). `what` names the
    /// statistics in the error.
    ///
    /// # Errors
    /// [`MetricsError::InvalidStats`] saying which check fails (and where, for symmetry).
    pub fn validate(&self, what: &str) -> Result<()> {
        self.check().map_err(|problem| MetricsError::InvalidStats {
            which: what.to_string(),
            what: problem,
        })
    }

    fn check(&self) -> std::result::Result<(), String> {
        let d = self.mu.len();
        if d == 0 || self.sigma.dim() != (d, d) {
            return Err(format!(
                "mean has {d} entries but covariance has shape {:?}",
                self.sigma.dim()
            ));
        }
        if let Some(i) = self.mu.iter().position(|v| !v.is_finite()) {
            return Err(format!("mu[{i}] is {} (not finite)", self.mu[i]));
        }
        if let Some(((i, j), v)) = self.sigma.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!("sigma[{i}, {j}] is {v} (not finite)"));
        }
        let scale = self.sigma.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut worst = (0.0f64, 0, 0);
        for i in 0..d {
            for j in 0..i {
                let diff = (self.sigma[[i, j]] - self.sigma[[j, i]]).abs();
                if diff > worst.0 {
                    worst = (diff, i, j);
                }
            }
        }
        if worst.0 > SYMMETRY_RTOL * scale {
            let (diff, i, j) = worst;
            return Err(format!(
                "sigma is not symmetric: sigma[{i}, {j}] = {} but sigma[{j}, {i}] = {} (difference {diff:.3e}, more than {SYMMETRY_RTOL:e} x the largest |entry| {scale:.3e}); a covariance matrix is symmetric",
                self.sigma[[i, j]],
                self.sigma[[j, i]]
            ));
        }
        if let Some(i) = (0..d).find(|&i| self.sigma[[i, i]] < -SYMMETRY_RTOL * scale) {
            return Err(format!(
                "sigma[{i}, {i}] = {} is a negative variance",
                self.sigma[[i, i]]
            ));
        }
        Ok(())
    }
}

/// Relative tolerance of the symmetry check of [`Stats::validate`]: loose enough for
/// covariances computed in float32 or stored in float16 (both keep exact symmetry anyway),
/// tight enough to refuse a matrix that is not a covariance.
pub const SYMMETRY_RTOL: f64 = 1e-6;

/// Streaming accumulator of the mean and covariance of `dims`-dimensional features, in
/// float64 on the CPU.
#[derive(Debug)]
pub struct StreamingStats {
    dims: usize,
    n: usize,
    mean: Tensor,
    m2: Tensor,
}

impl Clone for StreamingStats {
    fn clone(&self) -> Self {
        StreamingStats {
            dims: self.dims,
            n: self.n,
            mean: self.mean.copy(),
            m2: self.m2.copy(),
        }
    }
}

impl StreamingStats {
    /// An empty accumulator.
    ///
    /// # Panics
    /// If libtorch cannot allocate the `dims x dims` float64 matrix (out of memory).
    pub fn new(dims: usize) -> Self {
        let d = dims as i64;
        StreamingStats {
            dims,
            n: 0,
            mean: Tensor::zeros([d], (Kind::Double, Device::Cpu)),
            m2: Tensor::zeros([d, d], (Kind::Double, Device::Cpu)),
        }
    }

    /// Feature size.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Samples seen so far.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Adds the rows of `features` (`[b, dims]`, any float kind, any device).
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape or NaN / infinite values.
    ///
    /// # Panics
    /// If libtorch runs out of memory for the `[b, dims]` float64 copy or the `dims x dims`
    /// product.
    pub fn update(&mut self, features: &Tensor) -> Result<()> {
        let size = features.size();
        if size.len() != 2 || size[1] as usize != self.dims {
            return Err(MetricsError::invalid(
                "features",
                format!("expected [b, {}], got shape {size:?}", self.dims),
            ));
        }
        let b = size[0] as usize;
        if b == 0 {
            return Ok(());
        }
        let x = features.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
        if x.f_isfinite()?.f_all()?.f_int64_value(&[])? != 1 {
            return Err(MetricsError::invalid(
                "features",
                "contain NaN or infinite values",
            ));
        }
        let batch_mean = x.mean_dim(0, false, Kind::Double);
        let xc = &x - &batch_mean;
        let batch_m2 = xc.tr().matmul(&xc);
        self.merge_parts(b, &batch_mean, &batch_m2);
        Ok(())
    }

    /// Merges another accumulator of the same feature size into this one.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when the feature sizes differ.
    pub fn merge(&mut self, other: &StreamingStats) -> Result<()> {
        if other.dims != self.dims {
            return Err(MetricsError::invalid(
                "stats",
                format!("cannot merge {} into {} dimensions", other.dims, self.dims),
            ));
        }
        if other.n > 0 {
            self.merge_parts(other.n, &other.mean, &other.m2);
        }
        Ok(())
    }

    fn merge_parts(&mut self, nb: usize, mean_b: &Tensor, m2_b: &Tensor) {
        if self.n == 0 {
            self.n = nb;
            self.mean = mean_b.copy();
            self.m2 = m2_b.copy();
            return;
        }
        let na = self.n as f64;
        let nbf = nb as f64;
        let n = na + nbf;
        let delta = mean_b - &self.mean;
        self.mean = &self.mean + &delta * (nbf / n);
        let outer = delta.unsqueeze(1).matmul(&delta.unsqueeze(0));
        self.m2 = &self.m2 + m2_b + outer * (na * nbf / n);
        self.n += nb;
    }

    /// The statistics (covariance with `n - 1`); needs at least two samples.
    ///
    /// # Errors
    /// [`MetricsError::TooFewSamples`] with fewer than two samples.
    ///
    /// # Panics
    /// If libtorch runs out of memory for the `dims x dims` covariance.
    pub fn finish(&self) -> Result<Stats> {
        if self.n < 2 {
            return Err(MetricsError::TooFewSamples {
                what: "feature covariance".into(),
                n: self.n,
                needed: 2,
            });
        }
        let sigma = &self.m2 / (self.n as f64 - 1.0);
        // Exactly symmetric, as np.cov's result is.
        let sigma = (&sigma + sigma.tr()) * 0.5;
        Ok(Stats {
            mu: tensor_to_array1(&self.mean)?,
            sigma: tensor_to_array2(&sigma)?,
            n: self.n,
        })
    }
}

/// A float64 CPU tensor `[d]` as an ndarray.
pub(crate) fn tensor_to_array1(t: &Tensor) -> Result<Array1<f64>> {
    let v: Vec<f64> = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .contiguous()
        .try_into()?;
    Ok(Array1::from(v))
}

/// A float64 CPU tensor `[r, c]` as an ndarray.
pub(crate) fn tensor_to_array2(t: &Tensor) -> Result<Array2<f64>> {
    let size = t.size();
    let (r, c) = (size[0] as usize, size[1] as usize);
    let v: Vec<f64> = t
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Double)?
        .flatten(0, -1)
        .contiguous()
        .try_into()?;
    Array2::from_shape_vec((r, c), v).map_err(|e| MetricsError::Numerical(e.to_string()))
}

/// An ndarray `[d]` as a float64 CPU tensor.
pub(crate) fn array1_to_tensor(a: &Array1<f64>) -> Tensor {
    Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>())
}

/// An ndarray `[r, c]` as a float64 CPU tensor.
pub(crate) fn array2_to_tensor(a: &Array2<f64>) -> Tensor {
    let (r, c) = a.dim();
    Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>()).reshape([r as i64, c as i64])
}

/// The indices of the rows of `x` (`[n, d]`, any float kind and device) that hold a NaN or
/// infinite value, in order; the one check behind the "row N is not finite" errors of KID and
/// per-class PRDC.
///
/// # Errors
/// [`MetricsError::Torch`] when libtorch fails (e.g. `x` is not two-dimensional).
pub(crate) fn non_finite_rows(x: &Tensor) -> Result<Vec<i64>> {
    let bad = x.f_isfinite()?.f_logical_not()?.f_any_dim(1, false)?;
    Ok(bad.f_nonzero()?.f_view([-1])?.try_into()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_without_columns_are_refused() {
        for shape in [vec![5i64, 0], vec![5], vec![2, 3, 4]] {
            let f = Tensor::zeros(shape.as_slice(), (Kind::Float, tch::Device::Cpu));
            let err = Stats::from_features(&f).unwrap_err();
            assert!(
                matches!(err, MetricsError::InvalidInput { .. }),
                "{shape:?}: {err:?}"
            );
        }
    }

    fn naive(x: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = x.len() as f64;
        let d = x[0].len();
        let mu: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n)
            .collect();
        let cov = (0..d)
            .map(|i| {
                (0..d)
                    .map(|j| {
                        x.iter()
                            .map(|r| (r[i] - mu[i]) * (r[j] - mu[j]))
                            .sum::<f64>()
                            / (n - 1.0)
                    })
                    .collect()
            })
            .collect();
        (mu, cov)
    }

    #[test]
    fn streaming_equals_two_pass_for_any_batching() {
        tch::manual_seed(1);
        let x = Tensor::randn([37, 5], (Kind::Double, Device::Cpu)) * 3.0 + 100.0;
        let rows: Vec<Vec<f64>> = (0..37)
            .map(|i| Vec::<f64>::try_from(x.get(i)).unwrap())
            .collect();
        let (mu, cov) = naive(&rows);
        for batch in [1, 4, 10, 37] {
            let mut s = StreamingStats::new(5);
            let mut i = 0;
            while i < 37 {
                let len = batch.min(37 - i);
                s.update(&x.narrow(0, i as i64, len as i64)).unwrap();
                i += len;
            }
            let st = s.finish().unwrap();
            assert_eq!(st.n, 37);
            for j in 0..5 {
                assert!((st.mu[j] - mu[j]).abs() < 1e-10 * mu[j].abs());
                for (k, want) in cov[j].iter().enumerate() {
                    assert!((st.sigma[[j, k]] - want).abs() < 1e-9, "{batch} {j} {k}");
                }
            }
        }
    }

    #[test]
    fn too_few_samples_and_bad_shapes_are_errors() {
        let mut s = StreamingStats::new(3);
        assert!(s.finish().is_err());
        s.update(&Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)))
            .unwrap();
        assert!(matches!(
            s.finish(),
            Err(MetricsError::TooFewSamples { .. })
        ));
        assert!(s
            .update(&Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)))
            .is_err());
        let nan = Tensor::from_slice(&[f32::NAN, 0.0, 0.0]).reshape([1, 3]);
        assert!(s.update(&nan).is_err());
    }
}
