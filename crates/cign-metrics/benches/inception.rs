//! Feature-extraction throughput on CPU: images/s at tap 768 and at all four taps (one pass),
//! for both activation layouts, on a batch of 8 MNIST digits (from the test fixtures).
//!
//! ```text
//! cargo bench -p cign-metrics --bench inception
//! CIGN_BENCH_PYTHON=/work/refvenv-metrics/bin/python cargo bench -p cign-metrics --bench inception
//! ```
//! With `CIGN_BENCH_PYTHON` set, pytorch-fid 0.3.0 is timed on the same images in the same
//! session (scripts/bench_pytorch_fid.py) and its figures are printed next to ours.
//! `CIGN_BENCH_THREADS=n` sets the libtorch thread count of both (default: libtorch's).

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::IxDyn;
use ndarray_npy::NpzReader;
use tch::{Device, Kind, Tensor};

use cign_metrics::inception::Layout;
use cign_metrics::{weights, InceptionExtractor, Tap};

const BATCH: i64 = 8;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn images() -> Tensor {
    let path = crate_dir().join("tests/fixtures/pytorch_fid_features.npz");
    let mut npz = NpzReader::new(File::open(&path).expect("fixtures")).expect("npz");
    let a = npz
        .by_name::<ndarray::OwnedRepr<u8>, IxDyn>("set_a")
        .expect("set_a");
    let s = a.shape().to_vec();
    Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>())
        .reshape([s[0] as i64, 1, s[1] as i64, s[2] as i64])
        .narrow(0, 0, BATCH)
        .to_kind(Kind::Float)
        / 255.0
}

fn bench(c: &mut Criterion) {
    // As every binary of the workspace: freed tensors stay in the heap.
    cign_core::runtime::tune_malloc();
    let threads: i32 = std::env::var("CIGN_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let weights = weights::fid_weights().expect("FID weights");
    let x = images();
    eprintln!("libtorch threads: {}", tch::get_num_threads());
    let mut group = c.benchmark_group("inception_cpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(BATCH as u64));
    for (layout, lname) in [
        (Layout::ChannelsLast, "channels_last"),
        (Layout::Nchw, "nchw"),
    ] {
        let ex = InceptionExtractor::with_layout(&weights, Device::Cpu, layout).expect("extractor");
        for (taps, tname) in [
            (vec![Tap::D768], "tap768"),
            (Tap::ALL.to_vec(), "all_taps"),
            (vec![Tap::D2048], "tap2048"),
        ] {
            group.bench_function(format!("{tname}/{lname}"), |b| {
                b.iter(|| ex.features(&x, &taps).expect("features"))
            });
        }
    }
    group.finish();

    if let Ok(python) = std::env::var("CIGN_BENCH_PYTHON") {
        let script = crate_dir().join("scripts/bench_pytorch_fid.py");
        let out = Command::new(python)
            .arg(script)
            .arg("--fixtures")
            .arg(crate_dir().join("tests/fixtures"))
            .arg("--batch")
            .arg(BATCH.to_string())
            .arg("--threads")
            .arg(threads.to_string())
            .output();
        match out {
            Ok(o) => {
                eprintln!("{}", String::from_utf8_lossy(&o.stdout));
                if !o.status.success() {
                    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
                }
            }
            Err(e) => eprintln!("could not run pytorch-fid's bench: {e}"),
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
