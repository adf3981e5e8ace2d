//! Per-sample depthwise (channel-wise) cross-correlation and its transpose: the filter model
//! convolves every channel of every sample with that sample's own `k x k` kernel.
//!
//! Both run as the authors do it: one grouped convolution with `groups = B * C` over the batch
//! folded into channels (`[1, B*C, H, W]`), which also reproduces their fixtures bit for bit.
//! Exact alternatives measured on the 2-core CPU were all slower, forward + backward of the
//! filter model's ten depthwise layers (L = 64): at 2,304 samples (the mismatch pass of batch
//! 256, 2 threads) grouped 9.0 s, `im2col` + batched matrix product 73.8 s, `im2col` +
//! multiply/sum 46.2 s, one ordinary depthwise convolution per label 28.4 s; at 144 samples
//! (1 thread) grouped 0.20 s, `im2col` + batched matrix product 0.79 s, `im2col` +
//! multiply/sum 1.05 s. The `im2col` formulation is kept as a reference in the tests
//! (`tests/common/unfold.rs`), and `cargo bench -p cign-core -- depthwise` times it against
//! these functions. No CUDA measurement yet.

use tch::Tensor;

use crate::model::conv::{conv_out, conv_transpose_out};

fn size4(t: &Tensor, what: &str) -> (i64, i64, i64, i64) {
    match t.size().as_slice() {
        &[a, b, c, d] => (a, b, c, d),
        s => panic!("{what}: expected a 4-d tensor, got shape {s:?}"),
    }
}

/// The sizes of `x` `[B, C, H, W]` and `k` `[B, C, kh, kw]`.
fn check(x: &Tensor, k: &Tensor) -> (i64, i64, i64, i64, i64, i64) {
    let (b, c, h, w) = size4(x, "depthwise input");
    let (kb, kc, kh, kw) = size4(k, "depthwise kernel");
    assert!(
        kb == b && kc == c,
        "depthwise kernel shape {:?} does not match input shape {:?}",
        k.size(),
        x.size()
    );
    (b, c, h, w, kh, kw)
}

/// The result of a depthwise layer on an empty batch: `[0, C, H_out, W_out]` in `x`'s kind
/// and device.
///
/// # Panics
///
/// `H_out` or `W_out` below 1 (the kernel does not fit), as the convolution would.
fn empty_batch(x: &Tensor, c: i64, ho: i64, wo: i64) -> Tensor {
    assert!(
        ho > 0 && wo > 0,
        "depthwise convolution: output size {ho} x {wo} (kernel larger than the padded input)"
    );
    Tensor::zeros([0, c, ho, wo], (x.kind(), x.device()))
}

/// Cross-correlates each channel of each sample of `x` `[B, C, H, W]` with its own kernel
/// `k` `[B, C, kh, kw]` (no bias, no dilation). Returns `[B, C, H_out, W_out]` with
/// `H_out = (H + 2 pad - kh) / stride + 1`. An empty batch (`B = 0`) gives an empty
/// `[0, C, H_out, W_out]` (a grouped convolution cannot have `B C = 0` groups).
///
/// # Panics
///
/// `x` or `k` not 4-d, or `k`'s first two sizes other than `x`'s; `stride` 0; a kernel larger
/// than the padded input (`H_out` or `W_out` below 1), a negative `pad`, kinds or devices
/// that differ (libtorch's errors).
pub fn depthwise_conv2d(x: &Tensor, k: &Tensor, stride: i64, pad: i64) -> Tensor {
    let (b, c, h, w, kh, kw) = check(x, k);
    assert!(
        stride > 0,
        "depthwise convolution: stride {stride} must be > 0"
    );
    let (ho, wo) = (conv_out(h, kh, stride, pad), conv_out(w, kw, stride, pad));
    if b == 0 {
        return empty_batch(x, c, ho, wo);
    }
    x.contiguous()
        .view([1, b * c, h, w])
        .conv2d(
            &k.contiguous().view([b * c, 1, kh, kw]),
            None::<Tensor>,
            [stride, stride],
            [pad, pad],
            [1, 1],
            b * c,
        )
        .view([b, c, ho, wo])
}

/// Transposed version of [`depthwise_conv2d`] (what `conv_transpose2d` with `groups = B * C`
/// computes; no output padding). `x` `[B, C, H, W]`, `k` `[B, C, kh, kw]`; returns
/// `[B, C, H_out, W_out]` with `H_out = (H - 1) stride - 2 pad + kh`; an empty batch gives
/// an empty result, as in [`depthwise_conv2d`].
///
/// # Panics
///
/// As [`depthwise_conv2d`] (here `H_out` below 1 means a padding too large for the kernel).
pub fn depthwise_conv_transpose2d(x: &Tensor, k: &Tensor, stride: i64, pad: i64) -> Tensor {
    let (b, c, h, w, kh, kw) = check(x, k);
    assert!(
        stride > 0,
        "depthwise convolution: stride {stride} must be > 0"
    );
    let (ho, wo) = (
        conv_transpose_out(h, kh, stride, pad),
        conv_transpose_out(w, kw, stride, pad),
    );
    if b == 0 {
        return empty_batch(x, c, ho, wo);
    }
    x.contiguous()
        .view([1, b * c, h, w])
        .conv_transpose2d(
            &k.contiguous().view([b * c, 1, kh, kw]),
            None::<Tensor>,
            [stride, stride],
            [pad, pad],
            [0, 0],
            b * c,
            [1, 1],
        )
        .view([b, c, ho, wo])
}
