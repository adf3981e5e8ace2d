//! The per-sample depthwise convolutions (`cign_core::depthwise`, the authors' grouped
//! convolution) and the `im2col` reference of `tests/common/unfold.rs` against a naive
//! per-(sample, channel) reference, values and gradients, for every geometry the filter model
//! uses and a few others.

mod common;

use cign_core::depthwise::{depthwise_conv2d, depthwise_conv_transpose2d};
use common::unfold;
use tch::{Device, Kind, Tensor};

/// The formulations under test.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Imp {
    /// The library's (grouped convolution).
    Grouped,
    /// `tests/common/unfold.rs`.
    Unfold,
}

fn depthwise(imp: Imp, x: &Tensor, k: &Tensor, s: i64, p: i64, transposed: bool) -> Tensor {
    match (imp, transposed) {
        (Imp::Grouped, false) => depthwise_conv2d(x, k, s, p),
        (Imp::Grouped, true) => depthwise_conv_transpose2d(x, k, s, p),
        (Imp::Unfold, false) => unfold::depthwise_conv2d(x, k, s, p),
        (Imp::Unfold, true) => unfold::depthwise_conv_transpose2d(x, k, s, p),
    }
}

/// Reference: a separate ordinary (transposed) convolution per sample and channel.
fn naive(x: &Tensor, k: &Tensor, s: i64, p: i64, transposed: bool) -> Tensor {
    let (b, c) = (x.size()[0], x.size()[1]);
    let mut rows = Vec::new();
    for i in 0..b {
        let mut chans = Vec::new();
        for j in 0..c {
            let xi = x.narrow(0, i, 1).narrow(1, j, 1);
            let ki = k.narrow(0, i, 1).narrow(1, j, 1);
            let o = if transposed {
                xi.conv_transpose2d(&ki, None::<Tensor>, [s, s], [p, p], [0, 0], 1, [1, 1])
            } else {
                xi.conv2d(&ki, None::<Tensor>, [s, s], [p, p], [1, 1], 1)
            };
            chans.push(o);
        }
        rows.push(Tensor::cat(&chans, 1));
    }
    Tensor::cat(&rows, 0)
}

fn run(
    imp: Option<Imp>,
    x: &Tensor,
    k: &Tensor,
    s: i64,
    p: i64,
    t: bool,
    gout: &Tensor,
) -> (Tensor, Tensor, Tensor) {
    let x = x.detach().set_requires_grad(true);
    let k = k.detach().set_requires_grad(true);
    let y = match imp {
        None => naive(&x, &k, s, p, t),
        Some(i) => depthwise(i, &x, &k, s, p, t),
    };
    (&y * gout).sum(Kind::Double).backward();
    (y.detach(), x.grad(), k.grad())
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn both_formulations_equal_the_naive_reference() {
    tch::manual_seed(0);
    let o = (Kind::Double, Device::Cpu);
    // (B, C, H, k, stride, pad, transposed): the filter model's ten layers, then extra shapes
    let cases = [
        (3, 1, 28, 4, 2, 1, false),
        (3, 4, 14, 4, 2, 1, false),
        (3, 8, 7, 3, 2, 1, false),
        (3, 16, 4, 4, 2, 1, false),
        (3, 32, 2, 2, 1, 0, false),
        (3, 16, 1, 2, 1, 0, true),
        (3, 32, 2, 4, 2, 1, true),
        (3, 16, 4, 3, 2, 1, true),
        (3, 8, 7, 4, 2, 1, true),
        (3, 4, 14, 4, 2, 1, true),
        (2, 3, 9, 3, 1, 1, false),
        (2, 3, 9, 5, 3, 2, true),
    ];
    for (b, c, h, kk, s, p, t) in cases {
        let x = Tensor::randn([b, c, h, h], o);
        let k = Tensor::randn([b, c, kk, kk], o);
        let ho = if t {
            (h - 1) * s - 2 * p + kk
        } else {
            (h + 2 * p - kk) / s + 1
        };
        let gout = Tensor::randn([b, c, ho, ho], o);
        let (y0, gx0, gk0) = run(None, &x, &k, s, p, t, &gout);
        for imp in [Imp::Grouped, Imp::Unfold] {
            let (y, gx, gk) = run(Some(imp), &x, &k, s, p, t, &gout);
            assert_eq!(y.size(), y0.size(), "{imp:?} {:?}", (b, c, h, kk, s, p, t));
            let e = [max_abs(&y, &y0), max_abs(&gx, &gx0), max_abs(&gk, &gk0)];
            assert!(
                e.iter().all(|&e| e < 1e-10),
                "{imp:?} {:?}: errors {e:?}",
                (b, c, h, kk, s, p, t)
            );
        }
    }
}

/// In float32 the two formulations agree to rounding.
#[test]
fn formulations_agree_in_float32() {
    tch::manual_seed(1);
    let o = (Kind::Float, Device::Cpu);
    for t in [false, true] {
        let x = Tensor::randn([64, 32, 7, 7], o);
        let k = Tensor::randn([64, 32, 3, 3], o);
        let a = depthwise(Imp::Grouped, &x, &k, 2, 1, t);
        let b = depthwise(Imp::Unfold, &x, &k, 2, 1, t);
        assert!(
            max_abs(&a, &b) < 1e-5,
            "transposed {t}: {}",
            max_abs(&a, &b)
        );
    }
}
