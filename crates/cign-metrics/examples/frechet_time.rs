//! Wall time of one Fréchet distance between two full-rank 2048-dimensional Gaussians
//! (statistics of 3000 random vectors each), for comparison with SciPy's `sqrtm`:
//! `cargo run --release -p cign-metrics --example frechet_time -- [dims] [samples]`.

use std::time::Instant;

use cign_metrics::{frechet_distance, Stats};
use tch::{Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    cign_core::runtime::tune_malloc();
    let mut args = std::env::args().skip(1);
    let d: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2048);
    let n: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3000);
    tch::manual_seed(0);
    let a = Tensor::randn([n, d], (Kind::Double, Device::Cpu));
    let b = Tensor::randn([n, d], (Kind::Double, Device::Cpu)) * 1.1;
    let (sa, sb) = (Stats::from_features(&a)?, Stats::from_features(&b)?);
    let t0 = Instant::now();
    let fid = frechet_distance(&sa, &sb)?;
    println!(
        "d {d}, n {n}: FID {fid:.6} in {:.2} s ({} threads)",
        t0.elapsed().as_secs_f64(),
        tch::get_num_threads()
    );
    Ok(())
}
