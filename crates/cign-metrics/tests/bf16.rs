//! bfloat16 features (`Precision::Bf16`, `cign-fid --precision bf16`): they are really
//! computed in bfloat16 (they differ measurably from float32 ones, so no silent float32
//! fallback), they stay within a stated distance of pytorch-fid's float32 features, and FID
//! from them stays within a stated relative distance of pytorch-fid's FID. The independent
//! reference is pytorch-fid 0.3.0's float32 output (fixtures of scripts/make_fixtures.py).
//!
//! Tolerances. bfloat16 keeps 8 significant bits: one rounding moves a value by up to
//! u = 2^-9 = 1.95e-3 relative (the spacing of bfloat16 numbers, 2^-8 = 3.9e-3, is twice
//! that). Under autocast every convolution's input and weights are rounded and its output is
//! rounded again; the errors of the layers add up along the network's depth.
//!
//! * "Computed in bfloat16": every image's features at every tap differ from pytorch-fid's
//!   by at least `BF16_MIN = 5e-4` relative (Euclidean norm over the feature vector). The
//!   float32 path agrees with pytorch-fid to 2.6e-6 at worst on the same images (tolerance
//!   1e-4, `pytorch_fid_parity.rs`); bfloat16 cannot come below a fraction of u, because
//!   the first convolution's input is already rounded. Measured: 4.4e-3 at tap 64 to
//!   2.1e-2 (median) at tap 2048.
//! * Bounded: at most `BF16_MAX` per tap, about three times the worst measured on these
//!   images and on the 184 MNIST digits of `examples/bf16_deviation.rs` (4.7e-3, 7.1e-3,
//!   2.0e-2, 5.3e-2 at 64, 192, 768, 2048). A broken bfloat16 path (a wrong cast, an
//!   overflow, a skipped layer) gives errors of order one.
//! * FID between the 12 + 12 MNIST digits of `set_a` and `set_b`: within 2e-2 relative of
//!   pytorch-fid's at every tap (measured: 1.1e-3 to 4.5e-3 on these sets, 1.1e-3 to 3.9e-3
//!   on 80 + 80 digits; the crate README's table). The features' errors are mostly common to
//!   both sets and cancel in the difference of the means; what is left moves FID by a few
//!   tenths of a per cent.

mod common;

use cign_core::precision::autocast;
use common::{extractor, rel_err, Npz};
use tch::{Device, Kind, Tensor};

use cign_metrics::{
    collect, frechet_distance, CollectOptions, PixelRange, Precision, Preprocess, Stats, Tap,
    TensorImages,
};

/// One torch thread for this test binary (its tests run one at a time anyway, `heavy()`). On
/// the shared 2-core machine, two OpenMP threads next to other jobs spin-wait for each other:
/// the binary took 152 s wall (132 CPU-s) with two threads and 9 s with one.
fn one_thread() {
    tch::set_num_threads(1);
}

/// Lower bound of the per-image relative feature error of bfloat16 (see the module docs).
const BF16_MIN: f64 = 5e-4;
/// Upper bounds per tap (64, 192, 768, 2048).
const BF16_MAX: [f64; 4] = [1.5e-2, 2.5e-2, 6e-2, 1.5e-1];
/// FID: relative error bound against pytorch-fid's float32 FID.
const FID_TOL: f64 = 2e-2;

/// The 8 fixed images (4 MNIST digits, 4 synthetic colour images of several sizes) one at a
/// time, at all four taps: bfloat16 against pytorch-fid's float32 features.
#[test]
fn bf16_features_differ_from_float32_within_the_stated_bounds() {
    let _guard = common::heavy();
    one_thread();
    let ex = extractor();
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let want: Vec<Tensor> = Tap::ALL
        .iter()
        .map(|t| npz.f32_tensor(&format!("feat{}", t.dims())))
        .collect();
    let mut lo = [f64::INFINITY; 4];
    let mut hi = [0.0f64; 4];
    for i in 0..8 {
        let img = npz.image_hwc(&format!("img{i}"));
        let feats = ex.features_in(&img, &Tap::ALL, Precision::Bf16).unwrap();
        for (t, tap) in Tap::ALL.iter().enumerate() {
            let f = &feats[t];
            // returned as float32 like the float32 path, for the statistics code
            assert_eq!(f.kind(), Kind::Float);
            assert_eq!(f.size(), vec![1, tap.dims() as i64]);
            assert_eq!(f.device(), Device::Cpu);
            let e = rel_err(&f.get(0), &want[t].get(i));
            assert!(
                e >= BF16_MIN,
                "image {i}, tap {tap}: bf16 features within {e:e} of float32: not computed in bfloat16?"
            );
            assert!(
                e <= BF16_MAX[t],
                "image {i}, tap {tap}: bf16 features {e:e} from float32 (bound {:e})",
                BF16_MAX[t]
            );
            lo[t] = lo[t].min(e);
            hi[t] = hi[t].max(e);
        }
    }
    eprintln!("bf16 vs pytorch-fid float32, relative feature error per tap: min {lo:?} max {hi:?}");
}

/// Float32 stays float32 inside a caller's bfloat16 scope (bit for bit), and bfloat16 gives
/// the same features whether the caller is in such a scope or not.
#[test]
fn precision_does_not_depend_on_the_callers_scope() {
    let _guard = common::heavy();
    one_thread();
    let ex = extractor();
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let x = npz.grey_set("set_a").narrow(0, 0, 2);
    let taps = [Tap::D64, Tap::D192];
    let plain = ex.features(&x, &taps).unwrap();
    let explicit = ex.features_in(&x, &taps, Precision::Fp32).unwrap();
    let scoped = autocast(Precision::Bf16, Device::Cpu, || {
        ex.features_in(&x, &taps, Precision::Fp32).unwrap()
    });
    let bf16 = ex.features_in(&x, &taps, Precision::Bf16).unwrap();
    let bf16_scoped = autocast(Precision::Bf16, Device::Cpu, || {
        ex.features_in(&x, &taps, Precision::Bf16).unwrap()
    });
    for t in 0..taps.len() {
        assert!(plain[t].equal(&explicit[t]), "tap {t}: features() vs Fp32");
        assert!(
            plain[t].equal(&scoped[t]),
            "tap {t}: Fp32 inside a bf16 scope"
        );
        assert!(
            bf16[t].equal(&bf16_scoped[t]),
            "tap {t}: Bf16 inside a bf16 scope"
        );
        let e = rel_err(&bf16[t], &plain[t]);
        assert!(e >= BF16_MIN, "tap {t}: bf16 within {e:e} of fp32");
    }
}

/// FID of `set_a` against `set_b` (12 MNIST digits each) at all taps from bfloat16 features,
/// through `collect` (the entry point of cign-fid, `reference_stats` and `evaluate_generated`),
/// against pytorch-fid's float32 FID.
#[test]
fn bf16_fid_stays_within_the_stated_tolerance_of_pytorch_fid() {
    let _guard = common::heavy();
    one_thread();
    let ex = extractor();
    let mut npz = Npz::open("pytorch_fid_features.npz");
    let want = npz.f64("fid_ab");
    let options = CollectOptions {
        progress: false,
        precision: Precision::Bf16,
        ..Default::default()
    };
    let set = |key: &str, npz: &mut Npz| {
        let images = npz.grey_set_u8(key);
        let source = TensorImages::new(&images, PixelRange::Unit, Preprocess::default()).unwrap();
        collect(&ex, &source, None, &Tap::ALL, &options).unwrap()
    };
    let a = set("set_a", &mut npz);
    let b = set("set_b", &mut npz);
    let mut errs = [0.0f64; 4];
    for (t, tap) in Tap::ALL.iter().enumerate() {
        let fid = frechet_distance(&a.stats(*tap).unwrap(), &b.stats(*tap).unwrap()).unwrap();
        errs[t] = (fid - want[t]) / want[t];
        eprintln!(
            "FID{tap}: bf16 {fid}, pytorch-fid {} (relative {:+e})",
            want[t], errs[t]
        );
        assert!(
            errs[t].abs() <= FID_TOL,
            "FID{tap}: bf16 {fid} vs pytorch-fid {} (relative {:e}, bound {FID_TOL:e})",
            want[t],
            errs[t]
        );
    }
    // The statistics stay float64 (from float32 features).
    let s: Stats = a.stats(Tap::D64).unwrap();
    assert_eq!(s.n, 12);
}
