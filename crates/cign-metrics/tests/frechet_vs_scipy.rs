//! The Fréchet distance against SciPy's `sqrtm`-based value (and pytorch-fid's function) for
//! random statistics: well-conditioned, ill-conditioned (eigenvalues down to 1e-9), singular
//! (fewer samples than dimensions) and low-rank against full rank. Fixtures from
//! scripts/make_fixtures.py.

mod common;

use common::Npz;
use ndarray::{Array2, Ix1, Ix2};

use cign_metrics::{frechet_details, frechet_distance, Stats};

const CASES: [&str; 4] = ["well", "ill", "singular", "low_rank_vs_full"];

fn case(npz: &mut Npz, k: usize) -> (Stats, Stats, f64, f64) {
    let p = format!("case{k}");
    let mu1 = npz
        .f64(&format!("{p}_mu1"))
        .into_dimensionality::<Ix1>()
        .unwrap();
    let s1 = npz
        .f64(&format!("{p}_s1"))
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mu2 = npz
        .f64(&format!("{p}_mu2"))
        .into_dimensionality::<Ix1>()
        .unwrap();
    let s2 = npz
        .f64(&format!("{p}_s2"))
        .into_dimensionality::<Ix2>()
        .unwrap();
    (
        Stats {
            mu: mu1,
            sigma: s1,
            n: 0,
        },
        Stats {
            mu: mu2,
            sigma: s2,
            n: 0,
        },
        npz.f64(&format!("{p}_scipy"))[[0]],
        npz.f64(&format!("{p}_pytorch_fid"))[[0]],
    )
}

#[test]
fn matches_scipy_sqrtm_to_1e6_relative() {
    let mut npz = Npz::open("frechet_cases.npz");
    let mut checked = 0;
    for (k, name) in CASES.iter().enumerate() {
        let (a, b, scipy, pytorch_fid) = case(&mut npz, k);
        let d = frechet_details(&a, &b).unwrap();
        assert!(d.value.is_finite(), "{name}: not finite");
        assert!(!d.offset_added, "{name}: no offset needed");
        if scipy.is_finite() {
            let rel = (d.value - scipy).abs() / scipy.abs();
            eprintln!("{name}: ours {} scipy {scipy} (relative {rel:e})", d.value);
            assert!(rel < 1e-6, "{name}: {} vs SciPy {scipy}", d.value);
            checked += 1;
        }
        let rel = (d.value - pytorch_fid).abs() / pytorch_fid.abs();
        assert!(
            rel < 1e-6,
            "{name}: {} vs pytorch-fid {pytorch_fid}",
            d.value
        );
        assert_eq!(
            d.value,
            frechet_distance(&b, &a).unwrap(),
            "{name}: symmetry"
        );
        if *name == "singular" || *name == "low_rank_vs_full" {
            assert!(d.singular, "{name} must be flagged singular");
        } else {
            assert!(!d.singular, "{name} must not be flagged singular");
        }
        let same = frechet_distance(&a, &a).unwrap();
        assert!(same.abs() < 1e-6, "{name}: FID(a, a) = {same}");
    }
    assert!(
        checked >= 3,
        "SciPy was finite in too few cases to test anything"
    );
}

#[test]
fn more_dimensions_than_samples_never_gives_nan() {
    // 5 samples in 300 dimensions on each side: rank-4 covariances.
    tch::manual_seed(7);
    let a = tch::Tensor::randn([5, 300], (tch::Kind::Double, tch::Device::Cpu));
    let b = tch::Tensor::randn([5, 300], (tch::Kind::Double, tch::Device::Cpu)) * 2.0 + 1.0;
    let sa = Stats::from_features(&a).unwrap();
    let sb = Stats::from_features(&b).unwrap();
    let d = frechet_details(&sa, &sb).unwrap();
    assert!(d.value.is_finite() && d.value > 0.0, "{d:?}");
    assert!(d.singular);
    // Zero covariance on one side: the distance is |mu1 - mu2|^2 + tr S2.
    let zero = Stats {
        mu: sa.mu.clone(),
        sigma: Array2::zeros((300, 300)),
        n: 1,
    };
    let v = frechet_distance(&zero, &sb).unwrap();
    let want = (&sa.mu - &sb.mu).mapv(|x| x * x).sum() + sb.sigma.diag().sum();
    assert!((v - want).abs() < 1e-9 * want, "{v} vs {want}");
}
