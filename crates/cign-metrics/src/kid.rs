//! Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² with the polynomial
//! kernel `k(x, y) = (x·y / d + 1)^3`, averaged over random subsets (by default 100 subsets
//! of at most 1000 samples from each side, drawn without replacement), with the population
//! standard deviation over subsets. Works at any tap. The reference is torch-fidelity 0.4.0's
//! `metric_kid.py`: the same kernel, the same estimator, `np.std`, and the same subsets, drawn
//! as it draws them (`np.random.RandomState(seed).choice(n, m, replace=False)`, first side A
//! then side B for each subset, seed 2020 by default; see [`crate::numpy_random`]), so the
//! same features and seed give torch-fidelity's mean and std up to rounding (it computes in
//! float32, cign in float64). Unlike it, a set smaller than the subset size is not an error:
//! the subsets shrink to the smaller set.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{MetricsError, Result};
use crate::numpy_random::RandomState;

/// KID settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KidOptions {
    /// Number of subsets.
    pub subsets: usize,
    /// Largest subset size (the subsets use `min(subset_size, n_a, n_b)` samples per side).
    pub subset_size: usize,
    /// Seed of the subset sampler: NumPy's `RandomState` seed (torch-fidelity's `rng_seed`,
    /// 2020 by default).
    pub seed: u32,
}

impl Default for KidOptions {
    fn default() -> Self {
        KidOptions {
            subsets: 100,
            subset_size: 1000,
            seed: 2020,
        }
    }
}

impl KidOptions {
    /// Checks the settings before any feature is computed.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] when `subsets` is 0 or `subset_size` is below 2 (the
    /// unbiased estimate needs two samples per side).
    pub fn validate(&self) -> Result<()> {
        if self.subsets == 0 {
            return Err(MetricsError::invalid("kid subsets", "must be at least 1"));
        }
        if self.subset_size < 2 {
            return Err(MetricsError::invalid(
                "kid subset size",
                format!(
                    "{} is below 2 (the unbiased MMD² needs two samples per side)",
                    self.subset_size
                ),
            ));
        }
        Ok(())
    }
}

/// A KID estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Kid {
    /// Mean of the subset MMD² values (unitless; the unbiased estimate can be slightly
    /// below 0 when the sets match).
    pub mean: f64,
    /// Population standard deviation of the subset MMD² values.
    pub std: f64,
    /// Number of subsets used.
    pub subsets: usize,
    /// Samples per side in each subset.
    pub subset_size: usize,
}

/// Unbiased MMD² between the rows of `x` (`[m, d]`) and `y` (`[n, d]`), any float kind and
/// device, with the cubic polynomial kernel, computed in float64 on the CPU.
///
/// # Errors
/// [`MetricsError::InvalidInput`] for other shapes, [`MetricsError::TooFewSamples`] when `m`
/// or `n` is below 2.
pub fn mmd2_unbiased(x: &Tensor, y: &Tensor) -> Result<f64> {
    let (sx, sy) = (x.size(), y.size());
    if sx.len() != 2 || sy.len() != 2 || sx[1] != sy[1] || sx[1] == 0 {
        return Err(MetricsError::invalid(
            "features",
            format!("expected [m, d] and [n, d] with d >= 1, got {sx:?} and {sy:?}"),
        ));
    }
    if sx[0] < 2 || sy[0] < 2 {
        return Err(MetricsError::TooFewSamples {
            what: "unbiased MMD²".into(),
            n: sx[0].min(sy[0]) as usize,
            needed: 2,
        });
    }
    let x = x.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let y = y.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let (m, n, d) = (sx[0] as f64, sy[0] as f64, sx[1] as f64);
    let kernel = |a: &Tensor, b: &Tensor| -> Result<Tensor> {
        Ok((a.f_matmul(&b.tr())? / d + 1.0).f_pow_tensor_scalar(3)?)
    };
    let sum = |k: &Tensor| -> Result<f64> { Ok(k.f_sum(Kind::Double)?.f_double_value(&[])?) };
    let sum_off = |k: &Tensor| -> Result<f64> { Ok(sum(k)? - k.f_trace()?.f_double_value(&[])?) };
    let (kxx, kyy, kxy) = (kernel(&x, &x)?, kernel(&y, &y)?, kernel(&x, &y)?);
    Ok(
        sum_off(&kxx)? / (m * (m - 1.0)) + sum_off(&kyy)? / (n * (n - 1.0))
            - 2.0 * sum(&kxy)? / (m * n),
    )
}

/// KID between the feature sets `a` (`[n_a, d]`) and `b` (`[n_b, d]`), any float kind and
/// device (computed in float64 on the CPU).
///
/// # Errors
/// [`MetricsError::InvalidInput`] for other shapes or settings that fail
/// [`KidOptions::validate`] (`subsets == 0`, `subset_size < 2`),
/// [`MetricsError::InvalidInput`] naming the set and the row when a feature is not finite,
/// [`MetricsError::TooFewSamples`] when a subset would hold fewer than two samples,
/// [`MetricsError::Numerical`] when the result is not finite.
pub fn kid(a: &Tensor, b: &Tensor, options: &KidOptions) -> Result<Kid> {
    let (sa, sb) = (a.size(), b.size());
    if sa.len() != 2 || sb.len() != 2 || sa[1] != sb[1] {
        return Err(MetricsError::invalid(
            "features",
            format!("expected [n_a, d] and [n_b, d], got {sa:?} and {sb:?}"),
        ));
    }
    options.validate()?;
    let m = options.subset_size.min(sa[0] as usize).min(sb[0] as usize);
    if m < 2 {
        return Err(MetricsError::TooFewSamples {
            what: "KID subset".into(),
            n: m,
            needed: 2,
        });
    }
    let a = a.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    let b = b.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?;
    check_finite(&a, "features A")?;
    check_finite(&b, "features B")?;
    let mut rng = RandomState::new(options.seed);
    let mut values = Vec::with_capacity(options.subsets);
    for _ in 0..options.subsets {
        let ia = subset(&mut rng, sa[0] as usize, m);
        let ib = subset(&mut rng, sb[0] as usize, m);
        values.push(mmd2_unbiased(
            &a.f_index_select(0, &ia)?,
            &b.f_index_select(0, &ib)?,
        )?);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    if !mean.is_finite() {
        return Err(MetricsError::Numerical("KID is not finite".into()));
    }
    Ok(Kid {
        mean,
        std: var.sqrt(),
        subsets: options.subsets,
        subset_size: m,
    })
}

fn subset(rng: &mut RandomState, n: usize, m: usize) -> Tensor {
    let idx: Vec<i64> = rng
        .choice_without_replacement(n, m)
        .into_iter()
        .map(|i| i as i64)
        .collect();
    Tensor::from_slice(&idx)
}

/// Refuses a non-finite value in `x` (`[n, d]`), naming its row: every subset that drew it
/// would be NaN, and a row no subset draws would pass unseen.
fn check_finite(x: &Tensor, what: &'static str) -> Result<()> {
    let rows = crate::stats::non_finite_rows(x)?;
    match rows.first() {
        None => Ok(()),
        Some(row) => Err(MetricsError::invalid(
            what,
            format!(
                "row {row} holds a non-finite value ({} such rows)",
                rows.len()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_distribution_is_near_zero_and_shift_is_positive() {
        tch::manual_seed(3);
        let a = Tensor::randn([300, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([300, 8], (Kind::Float, Device::Cpu));
        let c = Tensor::randn([300, 8], (Kind::Float, Device::Cpu)) + 1.0;
        let opts = KidOptions {
            subsets: 20,
            subset_size: 100,
            seed: 1,
        };
        let nan = a.copy();
        let _ = nan.get(250).get(3).fill_(f64::NAN);
        let e = kid(&nan, &b, &opts).unwrap_err().to_string();
        assert!(e.contains("features A") && e.contains("row 250"), "{e}");
        let same = kid(&a, &b, &opts).unwrap();
        let shifted = kid(&a, &c, &opts).unwrap();
        assert!(same.mean.abs() < 3.0 * same.std + 1e-3, "{same:?}");
        assert!(
            shifted.mean > 10.0 * same.mean.abs(),
            "{shifted:?} {same:?}"
        );
        assert_eq!(
            kid(&a, &c, &opts).unwrap(),
            shifted,
            "seeded, so repeatable"
        );
        assert!(kid(&a.narrow(0, 0, 1), &b, &opts).is_err());
        assert!(kid(&a, &b.narrow(1, 0, 4), &opts).is_err());
    }
}
