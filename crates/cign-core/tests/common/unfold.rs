//! A second exact formulation of the per-sample depthwise convolutions, kept as a reference
//! for `cign_core::depthwise` (tests/depthwise.rs) and for its benchmark (benches/step.rs,
//! group `depthwise`): `im2col` + batched matrix product (`[B*C, 1, k*k] x [B*C, k*k, L]`);
//! the transposed version is the outer product `[B*C, k*k, 1] x [B*C, 1, L]` followed by
//! `col2im`, which is exactly what a transposed convolution computes. It sums in another
//! order than the library's grouped convolution and was measured 4 to 8 times slower on the
//! CPU (see `cign_core::depthwise`), so the library does not use it.

use tch::Tensor;

fn sizes(x: &Tensor, k: &Tensor) -> (i64, i64, i64, i64, i64, i64) {
    let (b, c, h, w) = x.size4().expect("depthwise input [B, C, H, W]");
    let (kb, kc, kh, kw) = k.size4().expect("depthwise kernel [B, C, kh, kw]");
    assert!(
        kb == b && kc == c,
        "kernel {:?} for input {:?}",
        k.size(),
        x.size()
    );
    (b, c, h, w, kh, kw)
}

/// `cign_core::depthwise::depthwise_conv2d` through `im2col`.
pub fn depthwise_conv2d(x: &Tensor, k: &Tensor, stride: i64, pad: i64) -> Tensor {
    let (b, c, h, w, kh, kw) = sizes(x, k);
    let ho = (h + 2 * pad - kh) / stride + 1;
    let wo = (w + 2 * pad - kw) / stride + 1;
    // [B, C*kh*kw, L]: row index is c*kh*kw + i*kw + j, as the kernel's flattening.
    let cols = x.im2col([kh, kw], [1, 1], [pad, pad], [stride, stride]);
    let cols = cols.view([b * c, kh * kw, ho * wo]);
    k.reshape([b * c, 1, kh * kw])
        .bmm(&cols)
        .view([b, c, ho, wo])
}

/// `cign_core::depthwise::depthwise_conv_transpose2d` through `col2im`.
pub fn depthwise_conv_transpose2d(x: &Tensor, k: &Tensor, stride: i64, pad: i64) -> Tensor {
    let (b, c, h, w, kh, kw) = sizes(x, k);
    let ho = (h - 1) * stride - 2 * pad + kh;
    let wo = (w - 1) * stride - 2 * pad + kw;
    // Column (i*kw + j, l) of channel (b, c) is k[b, c, i, j] * x[b, c, l]; col2im adds it at
    // output position l*stride - pad + (i, j): the transposed convolution.
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
