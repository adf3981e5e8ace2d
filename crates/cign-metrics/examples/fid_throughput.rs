//! Images/s of feature extraction for one configuration, for interleaved comparisons with
//! pytorch-fid (scripts/bench_compare.sh alternates this with scripts/bench_pytorch_fid.py).
//!
//! ```text
//! cargo run --release -p cign-metrics --example fid_throughput -- --taps 768 --layout channels_last --seconds 15
//! ```
//! Prints one JSON line: `{"taps": ..., "layout": ..., "batch": ..., "images_per_s": ...,
//! "cpu_s_per_image": ...}`; the process CPU time per image (user + system, from
//! /proc/self/stat) is less sensitive than wall time to other processes on a shared machine,
//! especially with `--threads 1`.

mod common;
use common::cpu_seconds;

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use ndarray::IxDyn;
use ndarray_npy::NpzReader;
use tch::{Device, Kind, Tensor};

use cign_metrics::inception::Layout;
use cign_metrics::{weights, InceptionExtractor, Tap};

fn main() -> Result<()> {
    // As cign-fid and cign-eval (through cign_metrics::cli::main_with), so the numbers match.
    cign_core::runtime::tune_malloc();
    let mut taps = "768".to_string();
    let mut layout = "channels_last".to_string();
    let mut seconds = 15.0f64;
    let mut batch = 8i64;
    let mut threads = 0i32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--taps" => taps = v,
            "--layout" => layout = v,
            "--seconds" => seconds = v.parse()?,
            "--batch" => batch = v.parse()?,
            "--threads" => threads = v.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let taps = Tap::parse_list(&taps)?;
    let lay = match layout.as_str() {
        "channels_last" => Layout::ChannelsLast,
        "nchw" => Layout::Nchw,
        other => bail!("--layout {other}: channels_last or nchw"),
    };
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch_fid_features.npz");
    let mut npz = NpzReader::new(File::open(path)?)?;
    let a = npz.by_name::<ndarray::OwnedRepr<u8>, IxDyn>("set_a")?;
    let s = a.shape().to_vec();
    let x = Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>())
        .reshape([s[0] as i64, 1, s[1] as i64, s[2] as i64])
        .narrow(0, 0, batch.min(s[0] as i64))
        .to_kind(Kind::Float)
        / 255.0;
    let n = x.size()[0];
    let ex = InceptionExtractor::with_layout(&weights::fid_weights()?, Device::Cpu, lay)?;
    ex.features(&x, &taps)?; // warm-up
    let mut times = Vec::new();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    while start.elapsed().as_secs_f64() < seconds || times.len() < 3 {
        let t0 = Instant::now();
        ex.features(&x, &taps)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let cpu_per_image = (cpu_seconds() - cpu0) / (times.len() as f64 * n as f64);
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!(
        "{{\"impl\": \"cign-metrics\", \"taps\": \"{}\", \"layout\": \"{layout}\", \"batch\": {n}, \"threads\": {}, \"images_per_s\": {:.3}, \"median_batch_s\": {:.4}, \"batches\": {}, \"cpu_s_per_image\": {:.4}}}",
        taps.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
        tch::get_num_threads(),
        n as f64 / med,
        med,
        times.len(),
        cpu_per_image
    );
    Ok(())
}
