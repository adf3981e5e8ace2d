//! Per-sample depthwise (channel-wise) cross-correlation and its transpose.
//!
//! The filter-conditioned model convolves every channel of every sample with that sample's own
//! `k x k` kernel. Two exact formulations are provided (they compute the same sums, only the
//! floating-point summation order may differ):
//!
//! * [`DepthwiseImpl::Grouped`]: the authors' formulation, one grouped convolution with
//!   `groups = B * C` over the batch folded into channels (`[1, B*C, H, W]`).
//! * [`DepthwiseImpl::Unfold`]: `im2col` + batched matrix product (`[B*C, 1, k*k] x
//!   [B*C, k*k, L]`); the transposed version is the outer product `[B*C, k*k, 1] x [B*C, 1, L]`
//!   followed by `col2im`, which is exactly what a transposed convolution computes.
//!
//! Which is faster depends on the device; see [`DepthwiseImpl::default_for`] and the benchmark
//! (on the CPU the grouped formulation wins at every batch size measured). The grouped one is
//! also the one that reproduces the authors' fixtures bit for bit: the other sums in another
//! order.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Formulation of the per-sample depthwise convolution.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DepthwiseImpl {
    /// One grouped convolution with `groups = B * C` (the authors' code).
    Grouped,
    /// `im2col` / `col2im` with a batched matrix product.
    Unfold,
}

impl DepthwiseImpl {
    /// The formulation chosen by measurement (`cargo bench -p cign-core`, the `depthwise` group)
    /// for a device.
    pub fn default_for(device: Device) -> Self {
        // Measured on the 2-core CPU, forward + backward of the filter model's ten depthwise
        // layers (L = 64): at 2,304 samples (the mismatch pass of batch 256, 2 threads) grouped
        // 9.0 s, unfold + bmm 73.8 s, unfold + multiply/sum 46.2 s, one ordinary depthwise
        // convolution per label 28.4 s; at 144 samples (1 thread) grouped 0.20 s, unfold + bmm
        // 0.79 s, unfold + multiply/sum 1.05 s. No CUDA measurement yet: grouped (the authors'
        // choice) there too.
        let _ = device;
        DepthwiseImpl::Grouped
    }
}

fn size4(t: &Tensor, what: &str) -> (i64, i64, i64, i64) {
    match t.size().as_slice() {
        &[a, b, c, d] => (a, b, c, d),
        s => panic!("{what}: expected a 4-d tensor, got shape {s:?}"),
    }
}

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

/// Output size of a convolution along one axis.
pub fn conv_out(size: i64, k: i64, stride: i64, pad: i64) -> i64 {
    (size + 2 * pad - k) / stride + 1
}

/// Output size of a transposed convolution along one axis (no output padding).
pub fn conv_transpose_out(size: i64, k: i64, stride: i64, pad: i64) -> i64 {
    (size - 1) * stride - 2 * pad + k
}

/// Cross-correlates each channel of each sample of `x` `[B, C, H, W]` with its own kernel
/// `k` `[B, C, kh, kw]` (no bias). Returns `[B, C, H_out, W_out]`.
pub fn depthwise_conv2d(
    x: &Tensor,
    k: &Tensor,
    stride: i64,
    pad: i64,
    imp: DepthwiseImpl,
) -> Tensor {
    let (b, c, h, w, kh, kw) = check(x, k);
    let (ho, wo) = (conv_out(h, kh, stride, pad), conv_out(w, kw, stride, pad));
    match imp {
        DepthwiseImpl::Grouped => x
            .contiguous()
            .view([1, b * c, h, w])
            .conv2d(
                &k.contiguous().view([b * c, 1, kh, kw]),
                None::<Tensor>,
                [stride, stride],
                [pad, pad],
                [1, 1],
                b * c,
            )
            .view([b, c, ho, wo]),
        DepthwiseImpl::Unfold => {
            // [B, C*kh*kw, L]: row index is c*kh*kw + i*kw + j, as the kernel's flattening.
            let cols = x.im2col([kh, kw], [1, 1], [pad, pad], [stride, stride]);
            let cols = cols.view([b * c, kh * kw, ho * wo]);
            k.reshape([b * c, 1, kh * kw])
                .bmm(&cols)
                .view([b, c, ho, wo])
        }
    }
}

/// Transposed version of [`depthwise_conv2d`] (what `conv_transpose2d` with `groups = B * C`
/// computes; no output padding). `x` `[B, C, H, W]`, `k` `[B, C, kh, kw]`.
pub fn depthwise_conv_transpose2d(
    x: &Tensor,
    k: &Tensor,
    stride: i64,
    pad: i64,
    imp: DepthwiseImpl,
) -> Tensor {
    let (b, c, h, w, kh, kw) = check(x, k);
    let (ho, wo) = (
        conv_transpose_out(h, kh, stride, pad),
        conv_transpose_out(w, kw, stride, pad),
    );
    match imp {
        DepthwiseImpl::Grouped => x
            .contiguous()
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
            .view([b, c, ho, wo]),
        DepthwiseImpl::Unfold => {
            // Column (i*kw + j, l) of channel (b, c) is k[b, c, i, j] * x[b, c, l]; col2im adds
            // it at output position l*stride - pad + (i, j): the transposed convolution.
            let cols = k
                .reshape([b * c, kh * kw, 1])
                .bmm(&x.reshape([b * c, 1, h * w]));
            cols.view([b, c * kh * kw, h * w]).col2im(
                [ho, wo],
                [kh, kw],
                [1, 1],
                [pad, pad],
                [stride, stride],
            )
        }
    }
}
