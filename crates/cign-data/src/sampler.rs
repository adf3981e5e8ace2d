//! The CIGN batch sampler: the three kinds of pairs the CIGN loss is evaluated on (arXiv
//! 2406.02841, Sec. 3.1: matched real pairs, noise pairs, mismatched pairs), drawn as the
//! authors' code draws them (github niccronc/conditional-idempotent-generative-networks:
//! `load_data` in `MNIST/main.py` for the training noise, `get_losses` and
//! `_create_additional_pairs_batch` in `MNIST/idempotent_networks.py` for the noise and the
//! mismatched pairs). For each real batch `(x, y)` of size `B` it yields
//!
//! * the real images with training noise: `x + N(0, sigma^2)`, clamped to [-1, 1]
//!   (`sigma = 0.15` in `main.py`);
//! * `B` noise images `z ~ N(0, 1)` with labels uniform in `0..num_classes`;
//! * `k` mismatched pairs per real image (`0 <= k <= num_classes - 1`): the noisy image repeated
//!   with `k` distinct wrong labels (all of them, in ascending order, when `k = num_classes - 1`,
//!   which is the authors' helper and default; otherwise a random subset without repetition).
//!
//! Determinism: the epoch order comes from a ChaCha RNG seeded by `(seed, epoch)`, and all noise,
//! noise labels and mismatch subsets of a batch from a ChaCha RNG seeded by
//! `(seed, epoch, batch index)`. The draws happen on the host, so the same seed gives the same
//! batches on every device, a run resumed at any batch replays the same batches, and nothing
//! depends on torch's global generator (which other threads may be using). The training loop
//! seeds torch's generator itself, from [`BatchSampler::batch_seed`], for its dropout masks.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tch::{Kind, Tensor};

use crate::error::{DataError, Result};

/// Settings of the sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Real images per batch (`B`).
    pub batch_size: usize,
    /// Standard deviation of the additive training noise (`sigma`, default 0.15).
    pub noise_std: f64,
    /// Mismatched pairs per real image (`k`, default 9).
    pub mismatch_per_real: usize,
    /// Number of classes (10).
    pub num_classes: i64,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of shuffling and of all noise.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            noise_std: 0.15,
            mismatch_per_real: 9,
            num_classes: 10,
            drop_last: false,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    /// Checks the ranges: batch size at least 1, at least 2 classes, `k` at most
    /// `num_classes - 1`, `sigma` finite and `>= 0`.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidParameter`] naming the first value out of range.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(DataError::InvalidParameter {
                name: "batch_size",
                what: "must be at least 1".into(),
            });
        }
        if self.num_classes < 2 {
            return Err(DataError::InvalidParameter {
                name: "num_classes",
                what: format!("{} (need at least 2)", self.num_classes),
            });
        }
        let too_many =
            i64::try_from(self.mismatch_per_real).map_or(true, |k| k >= self.num_classes);
        if too_many {
            return Err(DataError::InvalidParameter {
                name: "mismatch_per_real",
                what: format!(
                    "{} (must be in 0..={}: each real image can take each wrong label once)",
                    self.mismatch_per_real,
                    self.num_classes - 1
                ),
            });
        }
        if !(self.noise_std >= 0.0 && self.noise_std.is_finite()) {
            return Err(DataError::InvalidParameter {
                name: "noise_std",
                what: format!("{} (must be a finite number >= 0)", self.noise_std),
            });
        }
        Ok(())
    }
}

/// One training step's data, as the sampler makes it and the objective (`cign_core::Objective`)
/// consumes it; the one batch type of cign. All tensors live on one device; labels are
/// `Int64`.
#[derive(Debug)]
pub struct TrainBatch {
    /// Noisy real images `[B, C, H, W]` (training noise `N(0, sigma^2)` added, then clamped to
    /// [-1, 1], as in the authors' `MNIST/main.py`).
    pub x: Tensor,
    /// Their labels, `Int64 [B]` (converted from the caller's integer kind if needed).
    pub y: Tensor,
    /// Noise images `[B, C, H, W]`, standard normal.
    pub z: Tensor,
    /// Labels of the noise images, `Int64 [B]`, uniform.
    pub yz: Tensor,
    /// Mismatched images `[k*B, C, H, W]` (image `i` repeated `k` times in a row); `None` if
    /// `k = 0` (then the mismatch terms are 0).
    pub x_mismatch: Option<Tensor>,
    /// Their wrong labels, `Int64 [k*B]`; `None` if `k = 0`.
    pub y_mismatch: Option<Tensor>,
}

impl TrainBatch {
    /// Moves every tensor to `device`.
    ///
    /// # Panics
    ///
    /// If libtorch cannot copy to `device` (a CUDA device that is not there, out of memory).
    pub fn to_device(&self, device: tch::Device) -> TrainBatch {
        TrainBatch {
            x: self.x.to_device(device),
            y: self.y.to_device(device),
            z: self.z.to_device(device),
            yz: self.yz.to_device(device),
            x_mismatch: self.x_mismatch.as_ref().map(|t| t.to_device(device)),
            y_mismatch: self.y_mismatch.as_ref().map(|t| t.to_device(device)),
        }
    }
}

/// The wrong labels at `positions` among the `num_classes - 1` labels that differ from each
/// true label: the p-th wrong label of true label `y` is `p`, or `p + 1` from `y` onwards (so
/// positions `0..K-1` list them in ascending order). `positions`: `Int64 [B, k]`, `y`:
/// `Int64 [B]`; returns `Int64 [B * k]`, row by row. The one place this rule is written.
///
/// # Panics
///
/// If `positions` is not two-dimensional or its rows do not match `y` (libtorch's shape
/// errors).
pub fn wrong_labels(positions: &Tensor, y: &Tensor) -> Tensor {
    let size = positions.size();
    let y_col = y.to_kind(Kind::Int64).unsqueeze(1);
    let labels = positions + positions.ge_tensor(&y_col).to_kind(Kind::Int64);
    labels.reshape([size[0] * size[1]])
}

/// The mismatched pairs of the authors' helper (`k = num_classes - 1`): every image repeated
/// once with each of the labels that differ from its own, in ascending label order. `x`:
/// `[B, ...]`, `y`: Int64 `[B]`. Returns `([(K-1) B, ...], Int64 [(K-1) B])`.
///
/// # Panics
///
/// If `x` has no dimension, `num_classes < 1`, or `y` has another length than `x`.
pub fn mismatch_pairs(x: &Tensor, y: &Tensor, num_classes: i64) -> (Tensor, Tensor) {
    let b = x.size()[0];
    let k = num_classes - 1;
    let positions = Tensor::arange(k, (Kind::Int64, x.device()))
        .unsqueeze(0)
        .expand([b, k], false);
    (
        x.repeat_interleave_self_int(k, Some(0), None),
        wrong_labels(&positions, y),
    )
}

/// SplitMix64's output function (`mix64` of Java's `SplittableRandom`; Steele, Lea and Flood,
/// OOPSLA 2014): a bijection of `u64` that scrambles neighbouring inputs. Also the
/// counter-based generator of `cign-core`'s dropout masks.
#[inline(always)]
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mixes seed, epoch and batch index into one 64-bit seed ([`splitmix64`] of their
/// combination).
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    splitmix64(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
}

/// The sampler. Holds only its settings; the data is passed to [`BatchSampler::epoch`].
#[derive(Debug, Clone)]
pub struct BatchSampler {
    config: SamplerConfig,
}

impl BatchSampler {
    /// A sampler with checked settings.
    ///
    /// # Errors
    ///
    /// As [`SamplerConfig::validate`].
    pub fn new(config: SamplerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Number of batches of an epoch over `n` images.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        let b = self.config.batch_size;
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The shuffled order of epoch `epoch` over `n` images.
    pub fn epoch_order(&self, n: usize, epoch: u64) -> Vec<i64> {
        let mut order: Vec<i64> = (0..n as i64).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.config.seed, epoch, u64::MAX));
        order.shuffle(&mut rng);
        order
    }

    /// Batch `index` of epoch `epoch`. `images` is `[N, C, H, W]` in [-1, 1], `labels` is
    /// `Int64 [N]`, both on the device where the batch is wanted.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidParameter`] if `images` is not a four-dimensional float tensor,
    /// the images of the batch hold values outside [-1, 1] (beyond [`RANGE_TOLERANCE`]) or
    /// NaN, `labels` is not an integer `[N]` tensor on the device of `images`, or `index` is
    /// not a batch of the epoch.
    ///
    /// # Panics
    ///
    /// Only on libtorch failures such as running out of memory.
    pub fn batch(
        &self,
        images: &Tensor,
        labels: &Tensor,
        epoch: u64,
        index: usize,
    ) -> Result<TrainBatch> {
        let n = check_inputs(images, labels)?;
        let count = self.batches_per_epoch(n);
        if index >= count {
            return Err(DataError::InvalidParameter {
                name: "batch index",
                what: format!("{index} but the epoch has {count} batches"),
            });
        }
        let order = self.epoch_order(n, epoch);
        let (x, y) = self.real_batch(images, labels, &order, index);
        // The range of the images of this batch only: one batch per step, not the whole set.
        check_range(&x)?;
        Ok(self.make_batch(&x, &y, self.batch_seed(epoch, index)))
    }

    /// The real images and labels of batch `index` in `order`.
    fn real_batch(
        &self,
        images: &Tensor,
        labels: &Tensor,
        order: &[i64],
        index: usize,
    ) -> (Tensor, Tensor) {
        let b = self.config.batch_size;
        let picked = &order[index * b..((index + 1) * b).min(order.len())];
        let idx = Tensor::from_slice(picked).to_device(images.device());
        (images.index_select(0, &idx), labels.index_select(0, &idx))
    }

    /// The seed of batch `index` of epoch `epoch`: what [`BatchSampler::make_batch`] is given for
    /// it, and what the training loop seeds torch with before that batch's step.
    pub fn batch_seed(&self, epoch: u64, index: usize) -> u64 {
        mix(self.config.seed, epoch, index as u64)
    }

    /// All batches of epoch `epoch`, starting at batch `start` (for resuming mid-epoch), with
    /// the inputs of [`BatchSampler::batch`], checked as it checks them (the range over all
    /// images, once).
    ///
    /// # Errors
    ///
    /// As [`BatchSampler::batch`], except that a `start` past the last batch gives no batch.
    ///
    /// # Panics
    ///
    /// While iterating, only on libtorch failures such as running out of memory.
    pub fn epoch<'a>(
        &'a self,
        images: &'a Tensor,
        labels: &'a Tensor,
        epoch: u64,
        start: usize,
    ) -> Result<impl Iterator<Item = TrainBatch> + 'a> {
        let n = check_inputs(images, labels)?;
        check_range(images)?;
        let order = self.epoch_order(n, epoch);
        Ok((start..self.batches_per_epoch(n)).map(move |index| {
            let (x, y) = self.real_batch(images, labels, &order, index);
            self.make_batch(&x, &y, self.batch_seed(epoch, index))
        }))
    }

    /// Builds the noisy, noise and mismatched parts from a real batch. Every draw comes from a
    /// ChaCha RNG seeded with `seed` (on the host, then copied to the batch's device), so the
    /// result depends on `seed` and the inputs only.
    ///
    /// # Panics
    ///
    /// If `x` has no dimension or `y` another length than `x` (libtorch's shape errors).
    pub fn make_batch(&self, x: &Tensor, y: &Tensor, seed: u64) -> TrainBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cfg = &self.config;
        let shape = x.size();
        let b = shape[0];
        let device = x.device();
        let normal = |rng: &mut ChaCha8Rng| -> Tensor {
            let numel: i64 = shape.iter().product();
            let values: Vec<f32> = (0..numel).map(|_| rng.sample(StandardNormal)).collect();
            Tensor::from_slice(&values)
                .reshape(shape.as_slice())
                .to_device(device)
                .to_kind(x.kind())
        };
        let x_noisy = if cfg.noise_std > 0.0 {
            (x + normal(&mut rng) * cfg.noise_std).clamp(-1.0, 1.0)
        } else {
            x.shallow_clone()
        };
        let z = normal(&mut rng);
        let yz_values: Vec<i64> = (0..b)
            .map(|_| rng.random_range(0..cfg.num_classes))
            .collect();
        let yz = Tensor::from_slice(&yz_values).to_device(device);
        let k = cfg.mismatch_per_real as i64;
        let (x_mismatch, y_mismatch) = if k == 0 {
            (None, None)
        } else {
            let wrong = cfg.num_classes - 1;
            // Positions among the wrong labels: all of them in order, or a random k-subset
            // (ascending) per image.
            let positions = if k == wrong {
                Tensor::arange(wrong, (Kind::Int64, device))
                    .unsqueeze(0)
                    .expand([b, wrong], false)
            } else {
                let mut all: Vec<i64> = Vec::with_capacity((b * k) as usize);
                for _ in 0..b {
                    let mut subset: Vec<i64> =
                        rand::seq::index::sample(&mut rng, wrong as usize, k as usize)
                            .into_iter()
                            .map(|p| p as i64)
                            .collect();
                    subset.sort_unstable();
                    all.extend(subset);
                }
                Tensor::from_slice(&all).reshape([b, k]).to_device(device)
            };
            (
                Some(x_noisy.repeat_interleave_self_int(k, Some(0), None)),
                Some(wrong_labels(&positions, y)),
            )
        };
        TrainBatch {
            x: x_noisy,
            y: y.to_kind(Kind::Int64),
            z,
            yz,
            x_mismatch,
            y_mismatch,
        }
    }
}

/// How far outside [-1, 1] an image value may lie (rounding of a caller's own scaling).
pub const RANGE_TOLERANCE: f64 = 1e-4;

/// Checks the shapes, kinds and devices of a sampler's inputs; returns the image count.
fn check_inputs(images: &Tensor, labels: &Tensor) -> Result<usize> {
    let size = images.size();
    if size.len() != 4 {
        return Err(DataError::InvalidParameter {
            name: "images",
            what: format!("shape {size:?}, expected [N, C, H, W]"),
        });
    }
    if !images.is_floating_point() {
        return Err(DataError::InvalidParameter {
            name: "images",
            what: format!(
                "kind {:?}, expected a float kind with values in [-1, 1] (2 * pixel / 255 - 1)",
                images.kind()
            ),
        });
    }
    let n = size[0] as usize;
    if labels.size() != [n as i64] {
        return Err(DataError::InvalidParameter {
            name: "labels",
            what: format!("shape {:?} for {n} images", labels.size()),
        });
    }
    if labels.is_floating_point() || labels.kind() == Kind::Bool {
        return Err(DataError::InvalidParameter {
            name: "labels",
            what: format!("kind {:?}, expected an integer kind (Int64)", labels.kind()),
        });
    }
    if labels.device() != images.device() {
        return Err(DataError::InvalidParameter {
            name: "labels",
            what: format!(
                "on {:?} but the images are on {:?}",
                labels.device(),
                images.device()
            ),
        });
    }
    Ok(n)
}

/// Checks that every value of `images` is in [-1, 1] (within [`RANGE_TOLERANCE`]) and none
/// is NaN: images in [0, 1] or [0, 255] would otherwise be clamped silently.
fn check_range(images: &Tensor) -> Result<()> {
    if images.numel() == 0 {
        return Ok(());
    }
    let limit = 1.0 + RANGE_TOLERANCE;
    // One reduction and one host sync on the hot path (once per training step); written so
    // that a NaN (which max propagates) fails too. The range is computed for the message only.
    let largest = images.abs().max().double_value(&[]);
    if largest.is_nan() || largest > limit {
        let lo = images.min().double_value(&[]);
        let hi = images.max().double_value(&[]);
        return Err(DataError::InvalidParameter {
            name: "images",
            what: format!(
                "values from {lo} to {hi}, expected [-1, 1] (2 * pixel / 255 - 1) and no NaN"
            ),
        });
    }
    Ok(())
}
