//! Precision, recall, density and coverage against the PyPI packages `prdc` 0.2 and
//! torch-fidelity 0.4.0 on fixture feature sets (tests/fixtures/prdc, made by
//! scripts/make_prdc_fixtures.py: shifted Gaussians, partial overlap, mode collapse,
//! duplicated rows, an integer lattice with exact ties).
//!
//! Tolerances. The metrics are ratios of counts: one count decided differently moves a value
//! by at least 1 / (k * max(N, M)) >= 1 / (5 * 300) = 6.7e-4 here. So `prdc` (float64
//! ratios) is compared to 1e-12, which admits only the rounding of the final division, i.e.
//! every count must agree. torch-fidelity returns float32 means (`.float().mean().item()`),
//! rounded by up to 2^-24 relative, so it is compared to 1e-7. Counts could legitimately
//! differ only where a distance lies within the references' rounding error of a radius: the
//! fixture script records the smallest relative margin |d - r| / r of every case (at least
//! 3.7e-6, checked below), far above float32 distance rounding (about 1e-7 relative), and the
//! lattice case has integer squared distances, exact in every implementation.

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use ndarray::{Array1, Array2, Ix1};
use ndarray_npy::NpzReader;

use cign_metrics::{prdc, prdc_tensors, prdc_with_options, BallBoundary, Prdc, PrdcOptions};

/// Agreement with prdc's float64 ratios: identical counts (see the module docs).
const PRDC_TOL: f64 = 1e-12;
/// Agreement with torch-fidelity's float32 ratios.
const TFID_TOL: f64 = 1e-7;
/// Float32 distance rounding is about 1e-7 relative; margins must be well above it for the
/// float32 references to be decided like exact distances.
const MIN_MARGIN: f64 = 1e-6;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prdc")
}

struct Case {
    name: String,
    gen: Array2<f32>,
    real: Array2<f32>,
    margins: Vec<(usize, f64)>,
    npz_prefix: String,
}

struct Fixtures {
    npz: NpzReader<File>,
    cases: Vec<Case>,
    tfid_k: usize,
}

impl Fixtures {
    fn load() -> Fixtures {
        let meta: serde_json::Value = serde_json::from_reader(
            File::open(dir().join("prdc_cases.json")).expect("prdc_cases.json"),
        )
        .expect("prdc_cases.json is JSON");
        let mut npz = NpzReader::new(File::open(dir().join("prdc_cases.npz")).expect("npz"))
            .expect("prdc_cases.npz");
        let mut cases = Vec::new();
        for c in meta["cases"].as_array().expect("cases") {
            let name = c["name"].as_str().unwrap().to_string();
            let gen: Array2<f32> = npz.by_name(&format!("{name}_gen")).unwrap();
            let real: Array2<f32> = npz.by_name(&format!("{name}_real")).unwrap();
            assert_eq!(
                gen.dim(),
                (
                    c["n_gen"].as_u64().unwrap() as usize,
                    c["dim"].as_u64().unwrap() as usize
                )
            );
            assert_eq!(real.nrows(), c["n_real"].as_u64().unwrap() as usize);
            let margins = c["smallest_relative_margin"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k[1..].parse().unwrap(), v.as_f64().unwrap()))
                .collect();
            cases.push(Case {
                npz_prefix: name.clone(),
                name,
                gen,
                real,
                margins,
            });
        }
        assert_eq!(cases.len(), 5, "five fixture cases");
        Fixtures {
            npz,
            cases,
            tfid_k: meta["torch_fidelity_k"].as_u64().unwrap() as usize,
        }
    }

    fn reference(&mut self, case: &Case, key: &str) -> Array1<f64> {
        let name = format!("{}_{key}", case.npz_prefix);
        let a: ndarray::ArrayD<f64> = self
            .npz
            .by_name(&name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        a.into_dimensionality::<Ix1>().unwrap()
    }
}

fn values(p: &Prdc) -> [f64; 4] {
    [p.precision, p.recall, p.density, p.coverage]
}

const NAMES: [&str; 4] = ["precision", "recall", "density", "coverage"];

fn options(k: usize, boundary: BallBoundary, block_rows: Option<usize>) -> PrdcOptions {
    PrdcOptions {
        nearest_k: k,
        boundary,
        block_rows,
        ..PrdcOptions::default()
    }
}

/// Compares and returns the largest absolute deviation.
fn check(case: &str, what: &str, ours: &[f64], reference: &[f64], tol: f64) -> f64 {
    let mut worst = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        let dev = (a - b).abs();
        assert!(
            dev <= tol,
            "{case} {what} {}: ours {a} reference {b} (deviation {dev:e} > {tol:e})",
            NAMES[i]
        );
        worst = worst.max(dev);
    }
    worst
}

#[test]
fn fixture_margins_are_far_above_float32_rounding() {
    let fx = Fixtures::load();
    for c in &fx.cases {
        for &(k, m) in &c.margins {
            if c.name == "lattice" {
                continue; // exact ties by design, integer distances
            }
            assert!(m > MIN_MARGIN, "{} k {k}: smallest margin {m:e}", c.name);
        }
    }
}

#[test]
fn matches_prdc_0_2_on_float64_features() {
    let mut fx = Fixtures::load();
    let cases = std::mem::take(&mut fx.cases);
    let mut worst = 0.0f64;
    for c in &cases {
        let gen = c.gen.mapv(f64::from);
        let real = c.real.mapv(f64::from);
        for k in [5, 3] {
            let ours = prdc(gen.view(), real.view(), k).unwrap();
            let want = fx.reference(c, &format!("prdc_f64_k{k}"));
            eprintln!("{} k {k}: ours {ours:?} prdc {want}", c.name);
            worst = worst.max(check(
                &c.name,
                &format!("k {k} f64"),
                &values(&ours),
                want.as_slice().unwrap(),
                PRDC_TOL,
            ));
        }
    }
    eprintln!("largest deviation from prdc 0.2 (float64): {worst:e}");
}

#[test]
fn matches_prdc_0_2_on_float32_features() {
    // prdc on float32 arrays compares sklearn's float32 distances; ours widens to float64.
    let mut fx = Fixtures::load();
    let cases = std::mem::take(&mut fx.cases);
    let mut worst = 0.0f64;
    for c in &cases {
        for k in [5, 3] {
            let ours = prdc(c.gen.view(), c.real.view(), k).unwrap();
            let want = fx.reference(c, &format!("prdc_f32_k{k}"));
            worst = worst.max(check(
                &c.name,
                &format!("k {k} f32"),
                &values(&ours),
                want.as_slice().unwrap(),
                PRDC_TOL,
            ));
        }
    }
    eprintln!("largest deviation from prdc 0.2 (float32 input): {worst:e}");
}

#[test]
fn matches_torch_fidelity_0_4_0_precision_recall_at_its_k() {
    let mut fx = Fixtures::load();
    let cases = std::mem::take(&mut fx.cases);
    let k = fx.tfid_k;
    assert_eq!(k, 3, "torch-fidelity 0.4.0's DEFAULTS['prc_neighborhood']");
    let mut worst = 0.0f64;
    for c in &cases {
        let closed = prdc_with_options(
            c.gen.view(),
            c.real.view(),
            &options(k, BallBoundary::Closed, None),
        )
        .unwrap();
        let open = prdc_with_options(
            c.gen.view(),
            c.real.view(),
            &options(k, BallBoundary::Open, None),
        )
        .unwrap();
        for kind in ["f64", "f32"] {
            let want = fx.reference(c, &format!("tfid_{kind}_k{k}"));
            eprintln!(
                "{} {kind}: ours (closed) {closed:?} torch-fidelity {want}",
                c.name
            );
            worst = worst.max(check(
                &c.name,
                &format!("torch-fidelity {kind}"),
                &[closed.precision, closed.recall],
                want.as_slice().unwrap(),
                TFID_TOL,
            ));
        }
        if c.name == "lattice" {
            // Exact ties: the closed balls of torch-fidelity count them, prdc's open ones do not.
            assert!(closed.precision > open.precision && closed.recall > open.recall);
        } else {
            assert_eq!(closed, open, "{}: no exact ties, open = closed", c.name);
        }
    }
    eprintln!("largest deviation from torch-fidelity 0.4.0: {worst:e}");
}

#[test]
fn chunking_does_not_change_the_result() {
    let fx = Fixtures::load();
    for c in &fx.cases {
        for k in [5, 3] {
            for boundary in [BallBoundary::Open, BallBoundary::Closed] {
                // One block holding every row, against small and odd block sizes (block 1 is in the
                // unit tests).
                let one = prdc_with_options(
                    c.gen.view(),
                    c.real.view(),
                    &options(k, boundary, Some(100_000)),
                )
                .unwrap();
                for block in [4, 13, 299] {
                    let got = prdc_with_options(
                        c.gen.view(),
                        c.real.view(),
                        &options(k, boundary, Some(block)),
                    )
                    .unwrap();
                    assert_eq!(got, one, "{} k {k} {boundary:?} block {block}", c.name);
                }
                let auto =
                    prdc_with_options(c.gen.view(), c.real.view(), &options(k, boundary, None))
                        .unwrap();
                assert_eq!(auto, one);
            }
        }
    }
}

#[test]
fn tensor_entry_point_agrees() {
    let fx = Fixtures::load();
    let c = &fx.cases[1];
    let t = |a: &Array2<f32>| {
        tch::Tensor::from_slice(a.as_slice().unwrap()).view([a.nrows() as i64, a.ncols() as i64])
    };
    let want = prdc(c.gen.view(), c.real.view(), 5).unwrap();
    assert_eq!(
        prdc_tensors(&t(&c.gen), &t(&c.real), &PrdcOptions::default()).unwrap(),
        want
    );
}

/// The cost figure of the module docs: 10,000 generated and 10,000 real rows of 2048
/// features (`PRDC_BLOCK_ROWS=b` sets the block rows, `PRDC_CUDA=1` runs on CUDA 0). Run by hand: `cargo test --release -p cign-metrics --test prdc_parity -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_10k_by_10k_by_2048() {
    let n = 10_000;
    let d = 2048;
    tch::manual_seed(0);
    let opts = (tch::Kind::Double, tch::Device::Cpu);
    let real = tch::Tensor::randn([n, d], opts).relu();
    let gen = (tch::Tensor::randn([n, d], opts) * 0.9 + 0.1).relu();
    let device = if std::env::var("PRDC_CUDA").is_ok() {
        tch::Device::Cuda(0)
    } else {
        tch::Device::Cpu
    };
    eprintln!("threads: {}, device {device:?}", tch::get_num_threads());
    let before = vm_kib("VmRSS:");
    // Linux: reset the peak resident size, so VmHWM below is the peak during the call.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t0 = Instant::now();
    let p = prdc_tensors(
        &gen,
        &real,
        &PrdcOptions {
            device,
            block_rows: std::env::var("PRDC_BLOCK_ROWS")
                .ok()
                .map(|v| v.parse().expect("PRDC_BLOCK_ROWS")),
            ..PrdcOptions::default()
        },
    )
    .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("10k x 10k x 2048 float64: {secs:.1} s, {p:?}");
    if let (Some(before), Some(peak)) = (before, vm_kib("VmHWM:")) {
        eprintln!(
            "  resident memory: {:.0} MiB before the call (inputs, libtorch), peak {:.0} MiB during it",
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    // The floor: the three passes' float64 matrix products alone, in the same blocks.
    let t0 = Instant::now();
    let b = (cign_metrics::prdc::DEFAULT_BLOCK_ENTRIES / n as usize) as i64;
    for (x, y) in [(&real, &real), (&gen, &gen), (&gen, &real)] {
        let yt = y.tr();
        for start in (0..n).step_by(b as usize) {
            let _ = x.narrow(0, start, b.min(n - start)).matmul(&yt);
        }
    }
    eprintln!(
        "  of which the three blocked matrix products alone take {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// A `kB` field of /proc/self/status (Linux), in KiB.
fn vm_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
