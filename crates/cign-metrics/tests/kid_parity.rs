//! KID against torch-fidelity 0.4.0 itself (`metric_kid.kid_features_to_metric`), with subsets
//! smaller than the sets, so the test fails unless cign draws torch-fidelity's subsets:
//! NumPy's legacy `RandomState(seed).choice(n, m, replace=False)`, side 1 then side 2.
//!
//! Fixture: `tests/fixtures/kid_torch_fidelity.npz`, written by
//! `scripts/make_kid_fixture.py` (torch-fidelity 0.4.0, NumPy 2.4.6, torch 2.11.0; see its
//! header). Tolerances: the subsets' row indices must be equal; the mean and std must be
//! within `1e-6 + 1e-4 |x|` of torch-fidelity's (it computes the kernels in float32, cign in
//! float64; the fixture's own float64 recomputation differs from it by at most 2.5e-8
//! absolute on the mean and 7.6e-6 relative on the std) and within `1e-12` relative (plus
//! `1e-15` absolute) of the float64 recomputation with the same subsets. Other subsets would
//! move the mean by sampling noise, of the order of the std over `sqrt(subsets)`: 1e-3 and
//! more here.

mod common;

use cign_metrics::numpy_random::RandomState;
use cign_metrics::{kid, KidOptions};
use common::Npz;

const CASES: [&str; 4] = [
    "default_seed",
    "other_seed",
    "same_distribution",
    "large_seed",
];

fn close(got: f64, want: f64, abs: f64, rel: f64) -> bool {
    (got - want).abs() <= abs + rel * want.abs()
}

#[test]
fn subsets_are_numpys_draw_for_draw() {
    let mut npz = Npz::open("kid_torch_fidelity.npz");
    for case in CASES {
        let setting = npz.i64(&format!("{case}_setting"));
        let (size, seed) = (setting[1] as usize, setting[2] as u32);
        let (n_a, n_b) = (
            npz.f32(&format!("{case}_a")).shape()[0],
            npz.f32(&format!("{case}_b")).shape()[0],
        );
        let idx = npz.i64(&format!("{case}_idx"));
        assert_eq!(idx.shape(), &[3, 2, size], "{case}");
        let mut rng = RandomState::new(seed);
        for s in 0..3 {
            for (side, n) in [(0, n_a), (1, n_b)] {
                let got = rng.choice_without_replacement(n, size);
                let want: Vec<usize> = (0..size).map(|i| idx[[s, side, i]] as usize).collect();
                assert_eq!(got, want, "{case}: subset {s}, side {side}");
            }
        }
    }
}

#[test]
fn kid_equals_torch_fidelitys_on_subsets_smaller_than_the_sets() {
    let mut npz = Npz::open("kid_torch_fidelity.npz");
    for case in CASES {
        let setting = npz.i64(&format!("{case}_setting"));
        let options = KidOptions {
            subsets: setting[0] as usize,
            subset_size: setting[1] as usize,
            seed: u32::try_from(setting[2]).unwrap(),
        };
        let a = npz.f32_tensor(&format!("{case}_a"));
        let b = npz.f32_tensor(&format!("{case}_b"));
        let tfid = npz.f64(&format!("{case}_tfid"));
        let f64_ref = npz.f64(&format!("{case}_f64"));
        let got = kid(&a, &b, &options).unwrap();
        assert_eq!(
            (got.subsets, got.subset_size),
            (options.subsets, options.subset_size)
        );
        for (name, g, t, f) in [
            ("mean", got.mean, tfid[0], f64_ref[0]),
            ("std", got.std, tfid[1], f64_ref[1]),
        ] {
            assert!(
                close(g, t, 1e-6, 1e-4),
                "{case}: {name} {g} vs torch-fidelity {t}"
            );
            assert!(
                close(g, f, 1e-15, 1e-12),
                "{case}: {name} {g} vs float64 {f}"
            );
        }
    }
}

#[test]
fn the_default_seed_is_torch_fidelitys() {
    assert_eq!(KidOptions::default().seed, 2020);
    assert_eq!(KidOptions::default().subsets, 100);
    assert_eq!(KidOptions::default().subset_size, 1000);
}
