//! Element-wise dropout with a cheaper mask on the CPU.
//!
//! `torch.nn.functional.dropout` on the CPU draws a Bernoulli mask element by element from the
//! Mersenne Twister (about 4 ns per element here, 9 to 15% of a CIGN training step in the
//! authors' code, see `results/performance.md`), then divides it by `1 - p` and multiplies. This
//! module builds the already scaled mask (`0` or `1 / (1 - p)`) directly in the mask tensor's
//! memory from a counter-based generator (SplitMix64 over the element index, keyed by one
//! 64-bit draw from torch's generator), in fixed blocks spread over torch's threads, and
//! multiplies once. The distribution is the same: every element is kept independently with
//! probability `1 - p` (to within 2^-32) and scaled by `1 / (1 - p)`; the gradient is the
//! incoming gradient times the mask. A seeded torch generator still makes the masks
//! reproducible, independent of the thread count. Other devices and kinds use torch's dropout.

use cign_data::sampler::splitmix64;
use tch::{Device, Kind, Tensor};

/// Elements per independently keyed block (the unit of work of one thread).
const BLOCK: usize = 1 << 16;

/// Where the multiplier of an element comes from.
#[derive(Clone, Copy)]
struct Multiplier<'a> {
    /// Drop when the 32-bit draw is below this.
    threshold: u32,
    /// `1 / (1 - p)`.
    scale: f32,
    /// With an activation: the input and the activation's slope for negative inputs (`0` for
    /// ReLU, `0.2` for the authors' LeakyReLU).
    act: Option<(&'a [f32], f32)>,
}

impl Multiplier<'_> {
    #[inline(always)]
    fn at(&self, draw: u32, index: usize) -> f32 {
        if draw < self.threshold {
            return 0.0;
        }
        match self.act {
            None => self.scale,
            // LeakyReLU's (and ReLU's) derivative convention: the slope at x <= 0.
            Some((x, slope)) if x[index] <= 0.0 => self.scale * slope,
            Some(_) => self.scale,
        }
    }
}

/// Fills `out` (elements `offset..offset + out.len()` of the whole mask). Element `i` uses 32
/// bits of `splitmix64(key + (i / 2) * gamma)`.
fn fill_block(out: &mut [f32], offset: usize, key: u64, m: Multiplier) {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    debug_assert!(offset.is_multiple_of(2));
    let mut counter = (offset / 2) as u64;
    let mut pairs = out.chunks_exact_mut(2);
    let mut i = offset;
    for pair in &mut pairs {
        let r = splitmix64(key.wrapping_add(counter.wrapping_mul(GAMMA)));
        pair[0] = m.at(r as u32, i);
        pair[1] = m.at((r >> 32) as u32, i + 1);
        counter += 1;
        i += 2;
    }
    if let [last] = pairs.into_remainder() {
        let r = splitmix64(key.wrapping_add(counter.wrapping_mul(GAMMA)));
        *last = m.at(r as u32, i);
    }
}

/// Fills a new float32 CPU tensor of `shape` block by block over torch's threads.
fn build_mask(shape: &[i64], p: f64, key: u64, act: Option<(&[f32], f32)>) -> Tensor {
    assert!(
        (0.0..1.0).contains(&p),
        "dropout probability {p} not in [0, 1)"
    );
    let mask = Tensor::empty(shape, (Kind::Float, Device::Cpu));
    let n = mask.numel();
    if n == 0 {
        return mask;
    }
    let m = Multiplier {
        threshold: (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32,
        scale: (1.0 / (1.0 - p)) as f32,
        act,
    };
    // SAFETY: `mask` is a freshly allocated contiguous float32 CPU tensor of `n` elements that
    // nothing else references until this function returns it.
    let data = unsafe { std::slice::from_raw_parts_mut(mask.data_ptr() as *mut f32, n) };
    let threads = (tch::get_num_threads().max(1) as usize).min(n.div_ceil(BLOCK));
    if threads <= 1 {
        for (b, chunk) in data.chunks_mut(BLOCK).enumerate() {
            fill_block(chunk, b * BLOCK, key, m);
        }
    } else {
        let blocks: Vec<(usize, &mut [f32])> = data.chunks_mut(BLOCK).enumerate().collect();
        let per = blocks.len().div_ceil(threads);
        let mut groups: Vec<Vec<(usize, &mut [f32])>> = Vec::new();
        let mut it = blocks.into_iter().peekable();
        while it.peek().is_some() {
            groups.push(it.by_ref().take(per).collect());
        }
        std::thread::scope(|s| {
            for group in groups {
                s.spawn(move || {
                    for (b, chunk) in group {
                        fill_block(chunk, b * BLOCK, key, m);
                    }
                });
            }
        });
    }
    mask
}

/// A dropout mask of `shape` (float32, CPU): each element `1 / (1 - p)` with probability
/// `1 - p`, else `0`, keyed by `key`.
///
/// # Panics
///
/// `p` outside [0, 1) (NaN included); a negative size in `shape` (libtorch's error).
pub fn dropout_mask(shape: &[i64], p: f64, key: u64) -> Tensor {
    build_mask(shape, p, key, None)
}

/// The element-wise multiplier `M` with `activation(dropout(x)) = x * M` for the dropout mask
/// [`dropout_mask`]`(shape, p, key)` and a (leaky) ReLU with `negative_slope`: `M` is the mask
/// times `1` where `x > 0` and `negative_slope` elsewhere. `x` must be a contiguous float32 CPU
/// tensor.
///
/// # Panics
///
/// `x` not a contiguous float32 CPU tensor; `p` outside [0, 1).
pub fn dropout_activation_multiplier(x: &Tensor, p: f64, negative_slope: f64, key: u64) -> Tensor {
    assert!(
        x.device() == Device::Cpu && x.kind() == Kind::Float && x.is_contiguous(),
        "dropout_activation_multiplier needs a contiguous float32 CPU tensor"
    );
    let n = x.numel();
    // SAFETY: `x` is a contiguous float32 CPU tensor of `n` elements, read only while it lives.
    let xs: &[f32] = if n == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(x.data_ptr() as *const f32, n) }
    };
    build_mask(&x.size(), p, key, Some((xs, negative_slope as f32)))
}

/// One 64-bit key from torch's generator (so `tch::manual_seed` makes the masks reproducible).
fn draw_key() -> u64 {
    Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]) as u64
}

/// Training-mode dropout with probability `p`: on CPU float32 tensors `x * mask` with
/// [`dropout_mask`] keyed by one draw from torch's generator; elsewhere torch's own dropout.
/// Any layout of `x` (the product is contiguous).
///
/// # Panics
///
/// `p` outside [0, 1) (on other devices and kinds: outside [0, 1], libtorch's error).
pub fn dropout(x: &Tensor, p: f64) -> Tensor {
    if p == 0.0 {
        return x.shallow_clone();
    }
    if x.device() != Device::Cpu || x.kind() != Kind::Float {
        return x.dropout(p, true);
    }
    x * dropout_mask(&x.size(), p, draw_key())
}

/// Training-mode dropout followed by a (leaky) ReLU with `negative_slope` (`0` for ReLU) in one
/// multiplication on CPU float32 tensors: `x * M` with [`dropout_activation_multiplier`], whose
/// value and gradient (`M`, the product of the mask and the activation's derivative) equal
/// those of the two operations in sequence with the same mask. Saves the activation's passes
/// and its backward. Elsewhere: [`dropout`] then the activation. Any layout of `x` (it is made
/// contiguous first).
///
/// # Panics
///
/// As [`dropout`].
pub fn dropout_then_leaky_relu(x: &Tensor, p: f64, negative_slope: f64) -> Tensor {
    if x.device() != Device::Cpu || x.kind() != Kind::Float || p == 0.0 {
        return crate::model::activation::leaky_relu(&dropout(x, p), negative_slope);
    }
    let x = x.contiguous();
    let m = tch::no_grad(|| dropout_activation_multiplier(&x, p, negative_slope, draw_key()));
    &x * m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_rate_scale_and_independence_of_threads() {
        let p = 0.15;
        let shape = [64, 16, 14, 14];
        let n = shape.iter().product::<i64>() as f64;
        tch::set_num_threads(1);
        let a = dropout_mask(&shape, p, 42);
        tch::set_num_threads(2);
        let b = dropout_mask(&shape, p, 42);
        assert!(a.equal(&b), "the mask must not depend on the thread count");
        let kept = a.gt(0.0).sum(Kind::Double).double_value(&[]);
        // Binomial(n, 0.85): std sqrt(n * 0.85 * 0.15) ~ 160; allow 5 std.
        let expected = n * (1.0 - p);
        let std = (n * p * (1.0 - p)).sqrt();
        assert!(
            (kept - expected).abs() < 5.0 * std,
            "kept {kept}, expected {expected} +- {std}"
        );
        let max = a.max().double_value(&[]);
        assert!((max - 1.0 / (1.0 - p)).abs() < 1e-6, "scale {max}");
        // Mean of the scaled mask is 1 (dropout keeps the expectation).
        let mean = a.mean(Kind::Double).double_value(&[]);
        assert!(
            (mean - 1.0).abs() < 5.0 * std / n / (1.0 - p),
            "mean {mean}"
        );
        // Another key gives another mask; neighbouring elements are uncorrelated.
        let c = dropout_mask(&shape, p, 43);
        assert!(!a.equal(&c));
        let flat = a.gt(0.0).to_kind(Kind::Double).flatten(0, -1);
        let len = flat.size()[0];
        let u = flat.narrow(0, 0, len - 1) - (1.0 - p);
        let v = flat.narrow(0, 1, len - 1) - (1.0 - p);
        let corr = (&u * &v).mean(Kind::Double).double_value(&[]) / (p * (1.0 - p));
        assert!(corr.abs() < 0.01, "lag-1 correlation {corr}");
    }

    #[test]
    fn fused_dropout_and_activation_equal_the_two_operations() {
        let shape = [33, 7, 5, 5];
        for (p, slope) in [(0.15, 0.2), (0.15, 0.0), (0.5, 0.2)] {
            let x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
            // a few exact zeros: the derivative convention at 0 is the slope's side
            let x = x.where_self(&x.abs().gt(0.05), &x.zeros_like());
            let key = 1234;
            let mask = dropout_mask(&shape, p, key);
            let m = dropout_activation_multiplier(&x, p, slope, key);
            // values: leaky(x * mask) vs x * M
            let a = {
                let d = &x * &mask;
                d.clamp_min(0.0) + d.clamp_max(0.0) * slope
            };
            let b = &x * &m;
            let err = (&a - &b).abs().max().double_value(&[]);
            assert!(err <= 1e-6, "p {p} slope {slope}: value err {err}");
            // gradient: mask times the activation's derivative (slope at x <= 0)
            let deriv = x.gt(0.0).to_kind(Kind::Float) * (1.0 - slope) + slope;
            let err = (&mask * deriv - &m).abs().max().double_value(&[]);
            assert!(err <= 1e-6, "p {p} slope {slope}: derivative err {err}");
            // dropped where the mask drops; kept (non-zero) elsewhere unless the activation
            // zeroes it (ReLU at x <= 0)
            assert!(
                m.masked_select(&mask.eq(0.0))
                    .eq(0.0)
                    .all()
                    .int64_value(&[])
                    == 1
            );
            let alive = mask
                .ne(0.0)
                .logical_and(&x.gt(0.0).logical_or(&Tensor::from(slope > 0.0)));
            assert!(m.masked_select(&alive).ne(0.0).all().int64_value(&[]) == 1);
        }
    }

    #[test]
    fn gradient_is_the_mask() {
        tch::manual_seed(3);
        let x = Tensor::randn([7, 5, 3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = dropout(&x, 0.3);
        y.sum(Kind::Float).backward();
        let g = x.grad();
        // Where kept, y = x / 0.7 and the gradient is 1 / 0.7; where dropped both are 0.
        let kept = y.ne(0.0);
        let expected = kept.to_kind(Kind::Float) / 0.7;
        assert!((g - expected).abs().max().double_value(&[]) < 1e-6);
        let ratio = (y.masked_select(&kept) / x.masked_select(&kept)).mean(Kind::Double);
        assert!((ratio.double_value(&[]) - 1.0 / 0.7).abs() < 1e-5);
        // p = 0 is the identity.
        assert!(dropout(&x, 0.0).equal(&x));
    }
}
