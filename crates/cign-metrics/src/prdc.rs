//! Improved precision and recall (Kynkäänniemi et al., "Improved Precision and Recall Metric
//! for Assessing Generative Models", NeurIPS 2019) and density and coverage (Naeem et al.,
//! "Reliable Fidelity and Diversity Metrics for Generative Models", ICML 2020) of a generated
//! feature set against a real one, by k-nearest-neighbour balls. The numbers are those of the
//! PyPI package `prdc` 0.2 (`compute_prdc`, whose README uses `nearest_k = 5`) on the same
//! features.
//!
//! ## Definitions
//!
//! With generated features `Y` (`N` rows) and real features `X` (`M` rows), both `[rows, D]`,
//! and `k = nearest_k`, the radius `r(x)` of a point of a set is its distance to its k-th
//! nearest neighbour **in the same set, itself excluded**: the (k+1)-th smallest distance to
//! the set's rows with the zero distance to itself included, as in `prdc` 0.2. A duplicated
//! row is a neighbour at distance 0 (only the point itself is excluded), so a row with at
//! least `k` exact copies has radius 0. Balls are open, `d < r`, as in `prdc`
//! ([`BallBoundary::Open`]); torch-fidelity 0.4.0 uses closed balls, `d <= r`
//! ([`BallBoundary::Closed`]), which only differs on exact ties.
//!
//! * precision = fraction of generated `y` inside at least one real ball `B(x, r(x))`;
//! * recall = fraction of real `x` inside at least one generated ball `B(y, r(y))`;
//! * density = `(1 / k) * mean over y of #{x : y in B(x, r(x))}`;
//! * coverage = fraction of real `x` whose ball contains at least one generated `y`
//!   (that is, nearest generated sample closer than `r(x)`).
//!
//! Precision, recall and coverage lie in [0, 1]; density lies in [0, M / k] and exceeds 1
//! when generated samples crowd into dense regions of the real set (its expectation is 1
//! when both sets come from the same distribution).
//!
//! ## Exactness
//!
//! Every count is decided as with distances computed by the direct formula
//! `sum_d (x_d - y_d)^2` in float64 on the features as given (f32 features are widened
//! exactly), comparing squared distances with squared radii (the same decisions). The
//! bulk is computed faster as `|x|^2 + |y|^2 - 2 x.y` with a float64 matrix product (libtorch,
//! features first centred on the mean of both sets); a comparison or radius that this
//! value could get wrong, i.e. whose margin is within the rounding-error bound
//! `6 (D + 8) u (|x|^2 + |y|^2)` (u = 2^-53, centred norms), is recomputed with the direct
//! formula. So the result does not depend on the block size, the BLAS or the device, identical
//! rows are at distance exactly 0, and exact ties (such as integer features) are decided by
//! the definition. `prdc` itself compares sklearn's `|x|^2 + |y|^2 - 2 x.y` distances (float32
//! ones for float32 input), so it can differ from these numbers only where a distance lies
//! within its rounding error of a radius.
//!
//! ## Cost
//!
//! Three passes of pairwise distances, `N x N` and `M x M` (radii) and `N x M`: time
//! `O((N^2 + M^2 + N M) D)`, the `D` factor in float64 matrix products (libtorch, all cores),
//! plus `O(D)` per recomputed near-tie (a few per row in practice; every pair if all rows
//! coincide). Rows are processed in blocks of `b = max(1, 2^22 / columns)` rows by default
//! ([`PrdcOptions::block_rows`]), so no `N x M` (or `N x N`) matrix is ever stored. Memory:
//! two float64 copies of the features (a host copy for the direct formula and the centred
//! copy for the products, `2 (N + M) D x 8` bytes: 655 MB for 10,000 + 10,000 rows of 2048),
//! a few float64 and boolean `b x columns` blocks (32 MiB per float64 block), and `O(N + M)`
//! for radii and flags.
//!
//! Measured (`time_10k_by_10k_by_2048` in `tests/prdc_parity.rs`): 10,000 generated and
//! 10,000 real rows of 2048 features in float64 took 44 to 68 s on the 2-core development
//! machine while it was shared with a training run (load average 6 to 9), of which the
//! three passes' matrix products alone took 31 to 41 s; the peak resident memory during the
//! call was 1.1 GiB above that of the inputs (the two copies, the blocks, and freed blocks
//! the allocator keeps).

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{MetricsError, Result};

/// `nearest_k` of the `prdc` package's README example and of this crate's tools
/// (`compute_prdc` itself has no default).
pub const DEFAULT_NEAREST_K: usize = 5;

/// The fewest rows a set needs at `nearest_k`: `nearest_k + 2`, as in `prdc` 0.2, whose
/// `np.argpartition(distances, nearest_k + 1)` over each row of a set's distance matrix
/// raises below that. (With `nearest_k + 1` rows the k-th neighbour would be every point's
/// farthest one, a radius that swallows the whole set: precision and recall 1 whatever the
/// features.)
///
/// Saturates at `usize::MAX` (a `nearest_k` near it needs more rows than any set holds, so
/// the caller's "too few samples" check refuses it instead of wrapping round to 0 or 1).
pub const fn min_rows(nearest_k: usize) -> usize {
    nearest_k.saturating_add(2)
}

/// Distance-matrix entries per block when [`PrdcOptions::block_rows`] is `None`
/// (2^22 float64 values, 32 MiB).
pub const DEFAULT_BLOCK_ENTRIES: usize = 1 << 22;

/// The four metrics. Serialises as `{"precision", "recall", "density", "coverage"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prdc {
    /// Fraction of generated samples inside the k-NN ball of some real sample, in [0, 1].
    pub precision: f64,
    /// Fraction of real samples inside the k-NN ball of some generated sample, in [0, 1].
    pub recall: f64,
    /// Mean number of real k-NN balls containing a generated sample, divided by k; in
    /// [0, M / k], about 1 for matching distributions, above 1 where samples crowd together.
    pub density: f64,
    /// Fraction of real samples whose k-NN ball contains some generated sample, in [0, 1].
    pub coverage: f64,
}

/// Whether a point at exactly the radius is inside a k-NN ball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BallBoundary {
    /// `d < r`: the `prdc` package (and the papers' definitions).
    #[default]
    Open,
    /// `d <= r`: torch-fidelity 0.4.0's precision and recall.
    Closed,
}

/// Settings of [`prdc_with_options`] and [`prdc_tensors`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrdcOptions {
    /// k of the k-nearest-neighbour radii (at least 1; both sets need at least [`min_rows`]
    /// = `nearest_k + 2` rows).
    pub nearest_k: usize,
    /// Open (`prdc`) or closed (torch-fidelity) balls.
    pub boundary: BallBoundary,
    /// Rows per block of the distance computations; `None`: as many as fit
    /// [`DEFAULT_BLOCK_ENTRIES`] entries. Does not change the result, only memory and speed.
    pub block_rows: Option<usize>,
    /// Where the matrix products run (the near-tie recomputation runs on the CPU); checked by
    /// [`PrdcOptions::validate`] with [`crate::device::check_device`].
    pub device: Device,
}

impl Default for PrdcOptions {
    fn default() -> Self {
        PrdcOptions {
            nearest_k: DEFAULT_NEAREST_K,
            boundary: BallBoundary::Open,
            block_rows: None,
            device: Device::Cpu,
        }
    }
}

impl PrdcOptions {
    /// Checks the settings, as every entry point does first; callers can check them before
    /// any feature is computed.
    ///
    /// # Errors
    ///
    /// [`MetricsError::InvalidInput`] if `nearest_k` is 0 or `block_rows` is `Some(0)`;
    /// [`MetricsError::Device`] if `device` is not on this machine (a CUDA device without
    /// CUDA, MPS, Vulkan).
    pub fn validate(&self) -> Result<()> {
        check_options(self)
    }
}

/// Precision, recall, density and coverage of `generated` (`[N, D]`) against `real`
/// (`[M, D]`) with k-NN radii at `nearest_k` (`compute_prdc` has no default; the `prdc`
/// README uses 5, see [`DEFAULT_NEAREST_K`]), open balls, on the CPU. Equal to
/// `prdc.compute_prdc(real, generated, nearest_k)` of `prdc` 0.2 (note its argument order:
/// real first); see the [module documentation](self) for the definitions, exactness and cost.
///
/// Features are any per-sample vectors, for example Inception pool features (`D = 2048`);
/// f32 input is widened to f64 exactly.
///
/// # Errors
///
/// [`MetricsError::InvalidInput`] if `nearest_k` is 0, a set has no feature columns, the
/// feature sizes differ, or a value is NaN or infinite (the message names the set and the
/// row); [`MetricsError::TooFewSamples`] if a set has fewer than [`min_rows`]`(nearest_k) =
/// nearest_k + 2` rows (`prdc` raises there too); [`MetricsError::Numerical`] if squared
/// norms overflow float64.
///
/// # Panics
///
/// Never on user input (libtorch errors are returned as [`MetricsError::Torch`]).
pub fn prdc<T: Copy + Into<f64>>(
    generated: ArrayView2<'_, T>,
    real: ArrayView2<'_, T>,
    nearest_k: usize,
) -> Result<Prdc> {
    prdc_with_options(
        generated,
        real,
        &PrdcOptions {
            nearest_k,
            ..PrdcOptions::default()
        },
    )
}

/// [`prdc`] with all settings: k, open or closed balls, block size, device.
///
/// # Errors
///
/// As [`prdc`]; also [`MetricsError::InvalidInput`] if `block_rows` is `Some(0)`, and
/// [`MetricsError::Device`] if `device` is not on this machine (checked before any
/// computation).
pub fn prdc_with_options<T: Copy + Into<f64>>(
    generated: ArrayView2<'_, T>,
    real: ArrayView2<'_, T>,
    options: &PrdcOptions,
) -> Result<Prdc> {
    check_options(options)?;
    let gen = FeatureSet::from_view(SetName::Generated, generated);
    let real = FeatureSet::from_view(SetName::Real, real);
    compute(gen, real, options)
}

/// [`prdc_with_options`] on tensors `[N, D]` and `[M, D]` of any real kind and device (for
/// example the features kept by [`crate::collect()`]); they are copied to float64.
///
/// # Errors
///
/// As [`prdc_with_options`]; also [`MetricsError::InvalidInput`] if a tensor is not
/// two-dimensional or is complex.
pub fn prdc_tensors(generated: &Tensor, real: &Tensor, options: &PrdcOptions) -> Result<Prdc> {
    check_options(options)?;
    let gen = FeatureSet::from_tensor(SetName::Generated, generated)?;
    let real = FeatureSet::from_tensor(SetName::Real, real)?;
    compute(gen, real, options)
}

/// The four metrics of one class (see [`per_class_prdc`]). Serialises as
/// `{"class", "n_generated", "n_real", "precision", "recall", "density", "coverage"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassPrdc {
    /// The class label.
    pub class: u8,
    /// Generated samples of the class (`N_c`).
    pub n_generated: usize,
    /// Real samples of the class (`M_c`).
    pub n_real: usize,
    /// Precision, recall, density and coverage of the class's generated samples against its
    /// real samples (radii within the class's own samples).
    #[serde(flatten)]
    pub metrics: Prdc,
}

/// Per-class precision, recall, density and coverage, with their unweighted means over
/// classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerClassPrdc {
    /// k of the k-NN radii.
    pub nearest_k: usize,
    /// One entry per class, by label.
    pub classes: Vec<ClassPrdc>,
    /// Mean over classes of each metric (every class weighs the same).
    pub mean: Prdc,
}

/// Checks, from the labels alone, that [`per_class_prdc`] can run at `nearest_k`: at least
/// one label, the same classes on both sides, and at least [`min_rows`]`(nearest_k)` samples
/// of every class on each side. Lets a caller fail before any feature is computed.
///
/// # Errors
///
/// [`MetricsError::InvalidInput`] if a side has no labels or a class is on one side only
/// (the message names the class); [`MetricsError::TooFewSamples`] if a class has fewer than
/// `nearest_k + 2` samples on a side (the message names the side and the class).
pub fn check_class_counts(
    generated_labels: &[u8],
    real_labels: &[u8],
    nearest_k: usize,
) -> Result<()> {
    crate::per_class::check_classes(
        generated_labels,
        real_labels,
        min_rows(nearest_k),
        &format!("precision/recall/density/coverage with nearest_k = {nearest_k}"),
    )
}

/// Per-class precision, recall, density and coverage: for each class `c`, the generated
/// rows labelled `c` against the real rows labelled `c` ([`prdc_tensors`] on those rows, so
/// the radii are those within the class), with the unweighted mean over classes.
/// `generated` is `[N, D]` with `generated_labels` (`N` labels, one per row), `real` is
/// `[M, D]` with `real_labels`; tensors of any real kind and device.
///
/// Cost: the sum over classes of [`prdc`]'s cost, `O(sum_c (N_c + M_c)^2 D)`, about
/// `1 / C` of the all-class computation for `C` balanced classes.
///
/// # Errors
///
/// As [`check_class_counts`] and [`prdc_tensors`]; also [`MetricsError::InvalidInput`] if
/// the number of labels differs from the number of rows, or a value is NaN or infinite (the
/// message names the set and the row in the whole set).
pub fn per_class_prdc(
    generated: &Tensor,
    generated_labels: &[u8],
    real: &Tensor,
    real_labels: &[u8],
    options: &PrdcOptions,
) -> Result<PerClassPrdc> {
    check_options(options)?;
    for (t, labels, side) in [
        (generated, generated_labels, SetName::Generated),
        (real, real_labels, SetName::Real),
    ] {
        let size = t.size();
        if size.len() != 2 {
            return Err(MetricsError::invalid(
                side.arg(),
                format!("expected a [rows, features] tensor, got shape {size:?}"),
            ));
        }
        if size[0] as usize != labels.len() {
            return Err(MetricsError::invalid(
                side.arg(),
                format!("{} labels for {} rows", labels.len(), size[0]),
            ));
        }
    }
    check_class_counts(generated_labels, real_labels, options.nearest_k)?;
    for (t, side) in [(generated, SetName::Generated), (real, SetName::Real)] {
        if let Some(row) = crate::stats::non_finite_rows(t)?.first() {
            return Err(MetricsError::invalid(
                side.arg(),
                format!("row {row} has a NaN or infinite value (features must be finite)"),
            ));
        }
    }
    let rows_of = |labels: &[u8], c: u8| -> Result<Tensor> {
        let idx: Vec<i64> = (0..labels.len() as i64)
            .filter(|&i| labels[i as usize] == c)
            .collect();
        Ok(Tensor::f_from_slice(&idx)?)
    };
    let mut classes = Vec::new();
    for (&c, &n_generated) in crate::per_class::class_counts(generated_labels).iter() {
        let g = generated.f_index_select(
            0,
            &rows_of(generated_labels, c)?.f_to_device(generated.device())?,
        )?;
        let r = real.f_index_select(0, &rows_of(real_labels, c)?.f_to_device(real.device())?)?;
        let metrics = prdc_tensors(&g, &r, options)?;
        classes.push(ClassPrdc {
            class: c,
            n_generated,
            n_real: r.size()[0] as usize,
            metrics,
        });
    }
    let mean = |f: fn(&Prdc) -> f64| {
        classes.iter().map(|c| f(&c.metrics)).sum::<f64>() / classes.len() as f64
    };
    let mean = Prdc {
        precision: mean(|p| p.precision),
        recall: mean(|p| p.recall),
        density: mean(|p| p.density),
        coverage: mean(|p| p.coverage),
    };
    Ok(PerClassPrdc {
        nearest_k: options.nearest_k,
        classes,
        mean,
    })
}

fn check_options(options: &PrdcOptions) -> Result<()> {
    if options.nearest_k == 0 {
        return Err(MetricsError::invalid(
            "nearest_k",
            "must be at least 1 (the radius is the distance to the k-th nearest neighbour)",
        ));
    }
    if options.block_rows == Some(0) {
        return Err(MetricsError::invalid("block_rows", "must be at least 1"));
    }
    crate::device::check_device(options.device)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetName {
    Generated,
    Real,
}

impl SetName {
    fn arg(self) -> &'static str {
        match self {
            SetName::Generated => "generated features",
            SetName::Real => "real features",
        }
    }
}

/// A feature set as a row-major float64 host copy (the direct-formula distances read it).
struct FeatureSet {
    name: SetName,
    rows: usize,
    dim: usize,
    data: Vec<f64>,
}

impl FeatureSet {
    fn from_view<T: Copy + Into<f64>>(name: SetName, view: ArrayView2<'_, T>) -> FeatureSet {
        let (rows, dim) = view.dim();
        let mut data = Vec::with_capacity(rows * dim);
        for row in view.rows() {
            data.extend(row.iter().map(|&v| v.into()));
        }
        FeatureSet {
            name,
            rows,
            dim,
            data,
        }
    }

    fn from_tensor(name: SetName, t: &Tensor) -> Result<FeatureSet> {
        let size = t.size();
        if size.len() != 2 {
            return Err(MetricsError::invalid(
                name.arg(),
                format!("expected a [rows, features] tensor, got shape {size:?}"),
            ));
        }
        if matches!(
            t.kind(),
            Kind::ComplexHalf | Kind::ComplexFloat | Kind::ComplexDouble
        ) {
            return Err(MetricsError::invalid(
                name.arg(),
                format!("expected real values, got {:?}", t.kind()),
            ));
        }
        let data: Vec<f64> = t
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Double)?
            .f_contiguous()?
            .f_view([-1])?
            .try_into()?;
        Ok(FeatureSet {
            name,
            rows: size[0] as usize,
            dim: size[1] as usize,
            data,
        })
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Checks what [`prdc`] documents under `# Errors` for one set.
    fn validate(&self, nearest_k: usize) -> Result<()> {
        if self.dim == 0 {
            return Err(MetricsError::invalid(
                self.name.arg(),
                "rows have no features (shape [rows, 0])",
            ));
        }
        if self.rows < min_rows(nearest_k) {
            return Err(MetricsError::TooFewSamples {
                what: format!(
                    "{} for precision/recall/density/coverage with nearest_k = {nearest_k}",
                    self.name.arg()
                ),
                n: self.rows,
                needed: min_rows(nearest_k),
            });
        }
        if let Some(pos) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(MetricsError::invalid(
                self.name.arg(),
                format!(
                    "row {}, feature {} is {} (features must be finite)",
                    pos / self.dim,
                    pos % self.dim,
                    self.data[pos]
                ),
            ));
        }
        Ok(())
    }

    /// The rows minus `center`, as a float64 tensor `[rows, dim]` on `device`.
    fn centred(&self, center: &Tensor, device: Device) -> Result<Tensor> {
        let mut t = Tensor::f_from_slice(&self.data)?
            .f_view([self.rows as i64, self.dim as i64])?
            .f_to_device(device)?;
        let _ = t.f_sub_(center)?;
        Ok(t)
    }
}

/// Squared Euclidean distance by the direct formula, in a fixed order (four interleaved
/// partial sums, then the tail), so the same pair of rows gives the same value wherever it
/// occurs; exactly symmetric and exactly 0 for identical rows.
fn direct_sq_dist(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        tail += d * d;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail
}

/// Everything the blocked passes share.
struct Ctx<'a> {
    gen: &'a FeatureSet,
    real: &'a FeatureSet,
    /// Centred features and their squared norms, on the device.
    g: Tensor,
    gg: Tensor,
    r: Tensor,
    rr: Tensor,
    /// Coefficient of the error bound `coef * (|x|^2 + |y|^2)` of the product formula
    /// against the direct formula.
    coef: f64,
    k: usize,
    block_rows: Option<usize>,
    device: Device,
}

impl Ctx<'_> {
    fn set(&self, which: SetName) -> (&FeatureSet, &Tensor, &Tensor) {
        match which {
            SetName::Generated => (self.gen, &self.g, &self.gg),
            SetName::Real => (self.real, &self.r, &self.rr),
        }
    }

    fn block_rows(&self, cols: usize) -> usize {
        self.block_rows
            .unwrap_or_else(|| (DEFAULT_BLOCK_ENTRIES / cols.max(1)).max(1))
    }

    /// Squared distances of the rows `x` (squared norms `xx`) to all rows `y` (`yy`) by
    /// `|x|^2 + |y|^2 - 2 x.y` (one matrix product accumulating onto `|x|^2 + |y|^2`; the
    /// factor -2 is exact), clamped at 0: `[rows of x, rows of y]`.
    fn product_sq_dist(x: &Tensor, xx: &Tensor, y: &Tensor, yy: &Tensor) -> Result<Tensor> {
        let base = xx.f_unsqueeze(1)?.f_add(&yy.f_unsqueeze(0)?)?;
        let mut d2 = base.f_addmm(&x.f_mul_scalar(-2.0)?, &y.f_tr()?)?;
        drop(base);
        let _ = d2.f_clamp_min_(0.0)?;
        Ok(d2)
    }

    /// Replaces the entries of `d2` (rows `row0..` of `rows`, all rows of `cols`) marked in
    /// `mask` by direct-formula values.
    fn recompute(
        &self,
        d2: &mut Tensor,
        mask: &Tensor,
        rows: &FeatureSet,
        row0: usize,
        cols: &FeatureSet,
    ) -> Result<()> {
        let pairs = mask.f_nonzero()?.f_to_device(Device::Cpu)?;
        let p = pairs.size()[0];
        if p == 0 {
            return Ok(());
        }
        let flat: Vec<i64> = pairs.f_contiguous()?.f_view([-1])?.try_into()?;
        let values: Vec<f64> = flat
            .chunks_exact(2)
            .map(|ij| direct_sq_dist(rows.row(row0 + ij[0] as usize), cols.row(ij[1] as usize)))
            .collect();
        let pairs = pairs.f_to_device(self.device)?;
        let i = pairs.f_select(1, 0)?;
        let j = pairs.f_select(1, 1)?;
        let values = Tensor::f_from_slice(&values)?.f_to_device(self.device)?;
        let _ = d2.f_index_put_(&[Some(i), Some(j)], &values, false)?;
        Ok(())
    }

    /// Squared k-NN radii of a set: the (k+1)-th smallest direct-formula squared distance of
    /// each row to the rows of its own set, the zero self-distance included.
    fn sq_radii(&self, which: SetName) -> Result<Tensor> {
        let (set, s, ss) = self.set(which);
        let n = set.rows;
        let b = self.block_rows(n);
        let k1 = (self.k + 1) as i64;
        let ss_max = ss.f_max()?.f_double_value(&[])?;
        let mut out = Vec::new();
        for start in (0..n).step_by(b) {
            let len = b.min(n - start);
            let x = s.f_narrow(0, start as i64, len as i64)?;
            let xx = ss.f_narrow(0, start as i64, len as i64)?;
            let mut d2 = Self::product_sq_dist(&x, &xx, s, ss)?;
            // The distance of a row to itself is 0 by definition.
            let _ = d2
                .f_narrow(1, start as i64, len as i64)?
                .f_diagonal(0, 0, 1)?
                .f_fill_(0.0)?;
            // The exact (k+1)-th value is within E = max_j bound(i, j) of the computed one;
            // entries within 2E of it may be ordered wrongly: recompute them exactly. The
            // others keep their rank relative to the exact value, so the (k+1)-th smallest of
            // the mixed row is the exact one (and always a recomputed entry).
            let (v, _) = d2.f_kthvalue(k1, 1, true)?;
            let window = xx.f_add_scalar(ss_max)?.f_mul_scalar(2.0 * self.coef)?;
            let mut t = d2.f_sub(&v)?;
            let _ = t.f_abs_()?;
            let mask = t.f_le_tensor(&window.f_unsqueeze(1)?)?;
            drop(t);
            self.recompute(&mut d2, &mask, set, start, set)?;
            let (r2, _) = d2.f_kthvalue(k1, 1, false)?;
            out.push(r2);
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }
}

/// The counts behind the four metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// Generated rows in some real ball.
    precise: i64,
    /// Sum over generated rows of the number of real balls containing them.
    in_real_balls: i64,
    /// Real rows in some generated ball.
    recalled: i64,
    /// Real rows whose ball contains a generated row.
    covered: i64,
}

fn compute(gen: FeatureSet, real: FeatureSet, options: &PrdcOptions) -> Result<Prdc> {
    let k = options.nearest_k;
    if gen.dim != real.dim {
        return Err(MetricsError::invalid(
            "features",
            format!(
                "generated and real feature sizes differ: {} and {} per row",
                gen.dim, real.dim
            ),
        ));
    }
    gen.validate(k)?;
    real.validate(k)?;
    let counts = counts(&gen, &real, options)?;
    let (n, m) = (gen.rows as f64, real.rows as f64);
    Ok(Prdc {
        precision: counts.precise as f64 / n,
        recall: counts.recalled as f64 / m,
        // As prdc: (1 / k) * mean of the per-sample counts.
        density: (1.0 / k as f64) * (counts.in_real_balls as f64 / n),
        coverage: counts.covered as f64 / m,
    })
}

fn counts(gen: &FeatureSet, real: &FeatureSet, options: &PrdcOptions) -> Result<Counts> {
    let device = options.device;
    let dim = gen.dim;
    // Centre on the mean of both sets: distances do not change, the product formula loses
    // less to cancellation when the features are far from the origin.
    let mut center = vec![0.0f64; dim];
    for set in [gen, real] {
        for i in 0..set.rows {
            for (c, v) in center.iter_mut().zip(set.row(i)) {
                *c += v;
            }
        }
    }
    let total = (gen.rows + real.rows) as f64;
    center.iter_mut().for_each(|c| *c /= total);
    let center = Tensor::f_from_slice(&center)?.f_to_device(device)?;
    let g = gen.centred(&center, device)?;
    let r = real.centred(&center, device)?;
    let gg = g.f_square()?.f_sum_dim_intlist(1, false, Kind::Double)?;
    let rr = r.f_square()?.f_sum_dim_intlist(1, false, Kind::Double)?;
    for (norms, set) in [(&gg, gen), (&rr, real)] {
        if norms.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
            return Err(MetricsError::Numerical(format!(
                "{}: squared distances overflow float64 (values too large)",
                set.name.arg()
            )));
        }
    }
    // |product formula - direct formula| <= coef (|x|^2 + |y|^2) on centred norms, u = 2^-53:
    // the product accumulates D + 1 terms of total magnitude <= 2 (|x|^2 + |y|^2) onto
    // |x|^2 + |y|^2 (error <= 2 (D + 1) u (|x|^2 + |y|^2)), the two norms are sums of D
    // terms (D u (|x|^2 + |y|^2)) added once more (u); the direct formula errs by at most
    // 2 (D + 3) u (|x|^2 + |y|^2) (as d^2 <= 2 |x|^2 + 2 |y|^2) and centring moves a
    // squared distance by at most 4 u (|x|^2 + |y|^2). In all (5 D + 13) u <= 6 (D + 8) u.
    let u = f64::EPSILON / 2.0;
    let ctx = Ctx {
        gen,
        real,
        g,
        gg,
        r,
        rr,
        coef: 6.0 * (dim as f64 + 8.0) * u,
        k: options.nearest_k,
        block_rows: options.block_rows,
        device,
    };
    let r2_real = ctx.sq_radii(SetName::Real)?;
    let r2_gen = ctx.sq_radii(SetName::Generated)?;

    let n = gen.rows;
    let b = ctx.block_rows(real.rows);
    let bool_opts = (Kind::Bool, device);
    let mut recalled = Tensor::f_zeros([real.rows as i64], bool_opts)?;
    let mut covered = Tensor::f_zeros([real.rows as i64], bool_opts)?;
    let mut c = Counts::default();
    let real_row = r2_real.f_unsqueeze(0)?;
    let rr_max = ctx.rr.f_max()?.f_double_value(&[])?;
    for start in (0..n).step_by(b) {
        let len = b.min(n - start);
        let y = ctx.g.f_narrow(0, start as i64, len as i64)?;
        let yy = ctx.gg.f_narrow(0, start as i64, len as i64)?;
        let gen_col = r2_gen
            .f_narrow(0, start as i64, len as i64)?
            .f_unsqueeze(1)?;
        let mut d2 = Ctx::product_sq_dist(&y, &yy, &ctx.r, &ctx.rr)?;
        // Comparisons within the error bound of a real or a generated radius: recompute.
        // bound(j, i) = coef (|y_j|^2 + |x_i|^2) <= coef (|y_j|^2 + max_i |x_i|^2), per row.
        let bound = yy
            .f_add_scalar(rr_max)?
            .f_mul_scalar(ctx.coef)?
            .f_unsqueeze(1)?;
        let mut t = d2.f_sub(&real_row)?;
        let _ = t.f_abs_()?;
        let mut mask = t.f_le_tensor(&bound)?;
        let _ = d2.f_sub_out(&t, &gen_col)?;
        let _ = t.f_abs_()?;
        let _ = mask.f_logical_or_(&t.f_le_tensor(&bound)?)?;
        drop(t);
        ctx.recompute(&mut d2, &mask, gen, start, real)?;
        drop(mask);
        let (in_real, in_gen) = match options.boundary {
            BallBoundary::Open => (d2.f_lt_tensor(&real_row)?, d2.f_lt_tensor(&gen_col)?),
            BallBoundary::Closed => (d2.f_le_tensor(&real_row)?, d2.f_le_tensor(&gen_col)?),
        };
        c.precise += in_real
            .f_any_dim(1, false)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
        c.in_real_balls += in_real.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        let _ = covered.f_logical_or_(&in_real.f_any_dim(0, false)?)?;
        let _ = recalled.f_logical_or_(&in_gen.f_any_dim(0, false)?)?;
    }
    c.covered = covered.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    c.recalled = recalled.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn min_rows_saturates_instead_of_wrapping() {
        assert_eq!(min_rows(5), 7);
        // k + 2 would wrap to 0 and 1: every set would pass the size check.
        assert_eq!(min_rows(usize::MAX), usize::MAX);
        assert_eq!(min_rows(usize::MAX - 1), usize::MAX);
    }

    /// The definitions evaluated literally: all distances (direct formula, square root),
    /// sorted rows for the radii, every comparison.
    fn brute_force(gen: &Array2<f64>, real: &Array2<f64>, k: usize, closed: bool) -> Prdc {
        let dist = |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| {
            a.iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y) * (x - y))
                .sum::<f64>()
                .sqrt()
        };
        let radii = |s: &Array2<f64>| -> Vec<f64> {
            s.rows()
                .into_iter()
                .map(|a| {
                    let mut d: Vec<f64> = s.rows().into_iter().map(|b| dist(a, b)).collect();
                    d.sort_by(|x, y| x.partial_cmp(y).unwrap());
                    d[k]
                })
                .collect()
        };
        let inside = |d: f64, r: f64| if closed { d <= r } else { d < r };
        let (rr, rg) = (radii(real), radii(gen));
        let (n, m) = (gen.nrows(), real.nrows());
        let d: Vec<Vec<f64>> = gen
            .rows()
            .into_iter()
            .map(|y| real.rows().into_iter().map(|x| dist(y, x)).collect())
            .collect();
        let precise = (0..n)
            .filter(|&j| (0..m).any(|i| inside(d[j][i], rr[i])))
            .count();
        let in_balls: usize = (0..n)
            .map(|j| (0..m).filter(|&i| inside(d[j][i], rr[i])).count())
            .sum();
        let recalled = (0..m)
            .filter(|&i| (0..n).any(|j| inside(d[j][i], rg[j])))
            .count();
        let covered = (0..m)
            .filter(|&i| (0..n).any(|j| inside(d[j][i], rr[i])))
            .count();
        Prdc {
            precision: precise as f64 / n as f64,
            recall: recalled as f64 / m as f64,
            density: (1.0 / k as f64) * (in_balls as f64 / n as f64),
            coverage: covered as f64 / m as f64,
        }
    }

    fn gaussian(rng: &mut ChaCha8Rng, rows: usize, dim: usize, mean: f64, std: f64) -> Array2<f64> {
        Array2::from_shape_fn((rows, dim), |_| {
            // Box-Muller.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
            mean + std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
    }

    fn opts(k: usize, boundary: BallBoundary, block_rows: Option<usize>) -> PrdcOptions {
        PrdcOptions {
            nearest_k: k,
            boundary,
            block_rows,
            device: Device::Cpu,
        }
    }

    #[test]
    fn a_device_not_on_this_machine_is_a_device_error_before_any_work() {
        let real = Array2::<f64>::zeros((8, 3));
        let missing_cuda = Device::Cuda(crate::device::cuda_device_count());
        for device in [missing_cuda, Device::Mps] {
            let options = PrdcOptions {
                device,
                ..PrdcOptions::default()
            };
            let err = options.validate().unwrap_err();
            assert!(
                matches!(err, MetricsError::Device(_)),
                "{device:?}: {err:?}"
            );
            let err = prdc_with_options(real.view(), real.view(), &options).unwrap_err();
            assert!(
                matches!(err, MetricsError::Device(_)),
                "{device:?}: {err:?}"
            );
        }
    }

    #[test]
    fn matches_the_definitions_for_every_k_boundary_and_block_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let real = gaussian(&mut rng, 37, 6, 0.0, 1.0);
        let gen = gaussian(&mut rng, 29, 6, 0.4, 0.8);
        for k in [1, 2, 5, 9] {
            for boundary in [BallBoundary::Open, BallBoundary::Closed] {
                let want = brute_force(&gen, &real, k, boundary == BallBoundary::Closed);
                for block in [None, Some(1), Some(4), Some(64)] {
                    let got = prdc_with_options(gen.view(), real.view(), &opts(k, boundary, block))
                        .unwrap();
                    assert_eq!(got, want, "k {k} {boundary:?} block {block:?}");
                }
            }
        }
    }

    #[test]
    fn one_dimensional_example_by_hand() {
        // Real 0, 1, 3, 7 and k = 1: radii 1, 1, 2, 4. Generated 1, 5, 11, 20 (k = 1 radii
        // 4, 4, 6, 9).
        let real = array![[0.0], [1.0], [3.0], [7.0]];
        let gen = array![[1.0], [5.0], [11.0], [20.0]];
        // Generated 1: in B(0,1)? |1-0| = 1, not < 1; in B(1,1) (d 0), B(3,2)? d 2 not < 2:
        // one ball. 5: B(3,2)? d 2 no; B(7,4)? d 2 yes: one ball. 11: B(7,4)? d 4 no. 20: no.
        // Open: precision 2/4, density (1 + 1) / 4. Coverage: real 1 (gen 1 at 0) and 7
        // (gen 5 at 2 < 4): 2/4. Recall: real x in B(y, r(y)) with r = 4, 4, 6, 9 for y = 1,
        // 5, 11, 20: 0 (d 1 < 4), 1 (0), 3 (2), 7 (d 2 from 5 < 4): 4/4.
        let open = prdc(gen.view(), real.view(), 1).unwrap();
        assert_eq!(
            open,
            Prdc {
                precision: 0.5,
                recall: 1.0,
                density: 0.5,
                coverage: 0.5
            }
        );
        // Closed adds the ties: gen 1 also in B(0,1) and B(3,2); gen 5 in B(3,2); gen 11 in
        // B(7,4): precision 3/4, density (3 + 2 + 1) / 4, coverage: 0 and 3 covered too: 4/4.
        let closed = prdc_with_options(
            gen.view(),
            real.view(),
            &opts(1, BallBoundary::Closed, None),
        )
        .unwrap();
        assert_eq!(
            closed,
            Prdc {
                precision: 0.75,
                recall: 1.0,
                density: 1.5,
                coverage: 1.0
            }
        );
    }

    #[test]
    fn duplicates_count_as_neighbours_and_k_copies_give_an_empty_open_ball() {
        // Real: the point 0 three times, and 10, 20, 30. k = 2: the 0s have radius 0 (two
        // copies besides themselves); 10 has radius 10 (to 0 / 20), 20: 10, 30: 20.
        let real = array![[0.0], [0.0], [0.0], [10.0], [20.0], [30.0]];
        // Generated: 0 (on the copies), 5, 100, 101, 102.
        let gen = array![[0.0], [5.0], [100.0], [101.0], [102.0]];
        let got = prdc(gen.view(), real.view(), 2).unwrap();
        // 0: in B(10, 10)? d 10 no; B(0, 0) open: no. Not precise. 5: B(10,10) yes (d 5):
        // precise, count 1 (B(20,10): d 15 no). Precision 1/5, density (1/2)(1/5).
        assert_eq!(got.precision, 0.2);
        assert_eq!(got.density, 0.5 * (1.0 / 5.0));
        // Coverage: only 10's ball has a generated point (5); 0s' balls are empty.
        assert_eq!(got.coverage, 1.0 / 6.0);
        let closed = prdc_with_options(
            gen.view(),
            real.view(),
            &opts(2, BallBoundary::Closed, None),
        )
        .unwrap();
        // Closed: gen 0 is in all three B(0, 0) and in B(10,10): precise; coverage adds the 0s.
        assert_eq!(closed.precision, 0.4);
        assert_eq!(closed.coverage, 4.0 / 6.0);
    }

    #[test]
    fn identical_rows_and_far_offsets_are_exact() {
        // Far from the origin with a tiny spread: the product formula alone would lose
        // everything to cancellation.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut real = gaussian(&mut rng, 30, 8, 1e4, 1e-3);
        let mut gen = gaussian(&mut rng, 25, 8, 1e4 + 2e-4, 1e-3);
        for j in 0..5 {
            let row = real.row(3 * j).to_owned();
            gen.row_mut(j).assign(&row);
        }
        let row = real.row(0).to_owned();
        real.row_mut(1).assign(&row);
        for k in [1, 3] {
            for boundary in [BallBoundary::Open, BallBoundary::Closed] {
                let want = brute_force(&gen, &real, k, boundary == BallBoundary::Closed);
                for block in [None, Some(2)] {
                    let got = prdc_with_options(gen.view(), real.view(), &opts(k, boundary, block))
                        .unwrap();
                    assert_eq!(got, want, "k {k} {boundary:?}");
                }
            }
        }
    }

    #[test]
    fn exact_ties_and_cancellation_are_decided_as_by_the_direct_formula() {
        // Integer features (squared distances are exact small integers, so many distances
        // equal a radius), centred on a non-integer mean: the product formula alone would
        // decide those ties by rounding.
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let real = Array2::from_shape_fn((40, 8), |_| rng.random_range(0..3) as f64);
        let gen = Array2::from_shape_fn((33, 8), |_| rng.random_range(0..4) as f64);
        // Overlapping real and generated clusters of spread 1e-6 at 1e3 (and a few points at
        // -1e3, so the clusters stay far from the mean of both sets): squared distances inside
        // the clusters (about 1e-12) are far below the product formula's rounding (about 1e-9).
        let clusters = |rng: &mut ChaCha8Rng, rows: usize, shift: f64| {
            Array2::from_shape_fn((rows + 5, 8), |(i, _)| {
                if i < rows {
                    1e3 + 1e-6 * (rng.random::<f64>() + shift)
                } else {
                    -1e3 + rng.random::<f64>()
                }
            })
        };
        let tight_gen = clusters(&mut rng, 20, 0.2);
        let tight_real = clusters(&mut rng, 25, 0.0);
        let cases = [
            (&gen, &real),
            (&tight_gen, &tight_real),
            (&tight_real, &tight_gen),
        ];
        for (case, (gen, real)) in cases.into_iter().enumerate() {
            for k in [1, 3, 5] {
                for boundary in [BallBoundary::Open, BallBoundary::Closed] {
                    let want = brute_force(gen, real, k, boundary == BallBoundary::Closed);
                    for block in [None, Some(3)] {
                        let got =
                            prdc_with_options(gen.view(), real.view(), &opts(k, boundary, block))
                                .unwrap();
                        assert_eq!(got, want, "case {case} k {k} {boundary:?} block {block:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn identical_sets_are_fully_precise_and_covered() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = gaussian(&mut rng, 40, 5, 0.0, 1.0);
        let got = prdc(x.view(), x.view(), 5).unwrap();
        assert_eq!(got.precision, 1.0);
        assert_eq!(got.recall, 1.0);
        assert_eq!(got.coverage, 1.0);
        assert!(got.density >= 1.0 / 5.0);
    }

    #[test]
    fn f32_views_and_tensors_agree_with_f64() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let real = gaussian(&mut rng, 20, 4, 0.0, 1.0).mapv(|v| v as f32);
        let gen = gaussian(&mut rng, 18, 4, 0.3, 1.0).mapv(|v| v as f32);
        let want = prdc(gen.mapv(f64::from).view(), real.mapv(f64::from).view(), 3).unwrap();
        assert_eq!(prdc(gen.view(), real.view(), 3).unwrap(), want);
        let t = |a: &Array2<f32>| {
            Tensor::from_slice(a.as_slice().unwrap()).view([a.nrows() as i64, a.ncols() as i64])
        };
        let o = opts(3, BallBoundary::Open, None);
        assert_eq!(prdc_tensors(&t(&gen), &t(&real), &o).unwrap(), want);
    }

    #[test]
    fn errors_name_the_set_and_never_panic() {
        let a = Array2::<f64>::zeros((6, 3));
        let small = Array2::<f64>::zeros((5, 3));
        let e = prdc(a.view(), a.view(), 0).unwrap_err().to_string();
        assert!(e.contains("nearest_k"), "{e}");
        let e = prdc(small.view(), a.view(), 5).unwrap_err().to_string();
        assert!(e.contains("generated") && e.contains("5 samples"), "{e}");
        let e = prdc(a.view(), small.view(), 4).unwrap_err().to_string();
        assert!(e.contains("real") && e.contains("at least 6"), "{e}");
        // k + 1 rows: refused, as prdc's argpartition refuses them.
        let e = prdc(a.view(), a.view(), 5).unwrap_err().to_string();
        assert!(e.contains("6 samples, at least 7"), "{e}");
        assert!(prdc(a.view(), a.view(), 4).is_ok());
        let other = Array2::<f64>::zeros((6, 4));
        let e = prdc(a.view(), other.view(), 2).unwrap_err().to_string();
        assert!(e.contains("3 and 4"), "{e}");
        let mut bad = a.clone();
        bad[[4, 1]] = f64::NAN;
        let e = prdc(bad.view(), a.view(), 2).unwrap_err().to_string();
        assert!(
            e.starts_with("generated features: row 4, feature 1 is NaN"),
            "{e}"
        );
        bad[[4, 1]] = f64::INFINITY;
        let e = prdc(a.view(), bad.view(), 2).unwrap_err().to_string();
        assert!(
            e.starts_with("real features: row 4, feature 1 is inf"),
            "{e}"
        );
        let empty = Array2::<f64>::zeros((6, 0));
        let e = prdc(empty.view(), empty.view(), 2).unwrap_err().to_string();
        assert!(e.contains("no features"), "{e}");
        let e = prdc_with_options(a.view(), a.view(), &opts(2, BallBoundary::Open, Some(0)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("block_rows"), "{e}");
        let huge = Array2::<f64>::from_elem((6, 3), 1e300);
        let e = prdc(huge.view(), a.view(), 2).unwrap_err().to_string();
        assert!(e.contains("overflow"), "{e}");
        let t = Tensor::zeros([6], (Kind::Float, Device::Cpu));
        let t2 = Tensor::zeros([6, 3], (Kind::Float, Device::Cpu));
        let e = prdc_tensors(&t, &t2, &PrdcOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("generated features") && e.contains("[6]"), "{e}");
    }

    #[test]
    fn per_class_is_prdc_of_each_class_and_their_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let real = gaussian(&mut rng, 45, 4, 0.0, 1.0);
        let gen = gaussian(&mut rng, 36, 4, 0.3, 1.1);
        // Interleaved labels: 3 classes, real 15 each, generated 12 each.
        let lr: Vec<u8> = (0..45).map(|i| (i % 3) as u8).collect();
        let lg: Vec<u8> = (0..36).map(|i| ((i / 2) % 3) as u8).collect();
        let t = |a: &Array2<f64>| {
            Tensor::from_slice(a.as_slice().unwrap()).view([a.nrows() as i64, a.ncols() as i64])
        };
        let o = opts(4, BallBoundary::Open, Some(5));
        let got = per_class_prdc(&t(&gen), &lg, &t(&real), &lr, &o).unwrap();
        assert_eq!(got.nearest_k, 4);
        assert_eq!(got.classes.len(), 3);
        let rows = |a: &Array2<f64>, l: &[u8], c: u8| {
            let idx: Vec<usize> = (0..l.len()).filter(|&i| l[i] == c).collect();
            a.select(ndarray::Axis(0), &idx)
        };
        let mut sum = [0.0; 4];
        for (c, class) in got.classes.iter().enumerate() {
            let (g, r) = (rows(&gen, &lg, c as u8), rows(&real, &lr, c as u8));
            assert_eq!(class.class, c as u8);
            assert_eq!((class.n_generated, class.n_real), (12, 15));
            let want = brute_force(&g, &r, 4, false);
            assert_eq!(class.metrics, want, "class {c}");
            for (s, v) in
                sum.iter_mut()
                    .zip([want.precision, want.recall, want.density, want.coverage])
            {
                *s += v / 3.0;
            }
        }
        let m = got.mean;
        for (a, b) in [m.precision, m.recall, m.density, m.coverage]
            .iter()
            .zip(sum)
        {
            assert!((a - b).abs() <= 1e-15, "{m:?} vs {sum:?}");
        }
    }

    #[test]
    fn per_class_errors_name_the_class_and_side() {
        let t = |rows: i64| Tensor::zeros([rows, 2], (Kind::Double, Device::Cpu));
        let o = opts(1, BallBoundary::Open, None);
        let l6: Vec<u8> = vec![0, 0, 0, 1, 1, 1];
        let e = per_class_prdc(&t(6), &l6[..5], &t(6), &l6, &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("generated features") && e.contains("5 labels for 6 rows"),
            "{e}"
        );
        let other: Vec<u8> = vec![0, 0, 0, 2, 2, 2];
        let e = per_class_prdc(&t(6), &l6, &t(6), &other, &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("class 1 has generated samples but no real"),
            "{e}"
        );
        let e = per_class_prdc(&t(6), &l6, &t(6), &l6, &opts(3, BallBoundary::Open, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("generated samples of class 0") && e.contains("3 samples, at least 5"),
            "{e}"
        );
        let uneven: Vec<u8> = vec![0, 0, 0, 0, 1, 1];
        let e = check_class_counts(&l6, &uneven, 1).unwrap_err().to_string();
        assert!(
            e.contains("real samples of class 1") && e.contains("2 samples"),
            "{e}"
        );
        assert!(check_class_counts(&l6, &l6, 1).is_ok());
        // k + 1 samples of a class are too few, as in prdc (it needs k + 2).
        assert!(check_class_counts(&l6, &l6, 2).is_err());
        assert!(check_class_counts(&[], &l6, 2).is_err());
        let bad = t(6);
        let _ = bad.get(4).get(1).fill_(f64::NAN);
        let e = per_class_prdc(&t(6), &l6, &bad, &l6, &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("real features: row 4"), "{e}");
        let e = per_class_prdc(&t(6), &l6, &t(6), &l6, &opts(0, BallBoundary::Open, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nearest_k"), "{e}");
    }

    #[test]
    fn serialises_with_the_four_keys() {
        let p = Prdc {
            precision: 0.5,
            recall: 0.25,
            density: 1.5,
            coverage: 0.75,
        };
        let v = serde_json::to_value(p).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|s| s.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, ["coverage", "density", "precision", "recall"]);
        assert_eq!(v["density"], 1.5);
    }

    #[test]
    fn direct_distance_is_symmetric_and_zero_on_identical_rows() {
        let a = [0.1, 0.7, -3.0, 1e-3, 5.5, 2.0, 0.3];
        let b = [1.1, -0.2, 4.0, 2e-3, 5.0, -2.0, 0.9];
        assert_eq!(direct_sq_dist(&a, &b), direct_sq_dist(&b, &a));
        assert_eq!(direct_sq_dist(&a, &a), 0.0);
        let want: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        assert!((direct_sq_dist(&a, &b) - want).abs() <= 1e-12 * want);
    }
}
