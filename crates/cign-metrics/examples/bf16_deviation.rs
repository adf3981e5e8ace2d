//! Deviation of bfloat16 features (`--precision bf16`) from float32 ones on the MNIST digits
//! of the test fixtures (tests/fixtures/pytorch_fid_features.npz, written by
//! scripts/make_fixtures.py): FID at the taps 64, 192, 768 and 2048 in both precisions and
//! the relative error per tap, between `set64_a` and `set64_b` (80 MNIST test digits each)
//! and between `set_a` and `set_b` (12 each), the per-image relative error of the features,
//! and the wall and CPU time of the feature passes.
//!
//! ```text
//! cargo run --release -p cign-metrics --example bf16_deviation -- [--rounds R] [--threads T] [--json FILE]
//! ```
//! Each round computes the features of all 184 images in float32 and then in bfloat16
//! (interleaved, so that the load of other processes affects both alike); the FIDs come from
//! the first round (the features do not depend on the round). Prints a Markdown table (the one
//! in the crate's README) and, with `--json`, writes the raw numbers.

mod common;
use common::cpu_seconds;

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ndarray::IxDyn;
use ndarray_npy::NpzReader;
use serde_json::json;
use tch::{Kind, Tensor};

use cign_metrics::{frechet_distance, InceptionExtractor, Precision, Stats, Tap};

/// Images per forward pass (pytorch-fid's default is 50; cign-fid's too).
const BATCH: usize = 50;

fn main() -> Result<()> {
    cign_core::runtime::tune_malloc();
    let mut rounds = 1usize;
    let mut threads = 0i32;
    let mut json_out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--rounds" => rounds = v.parse()?,
            "--threads" => threads = v.parse()?,
            "--json" => json_out = Some(PathBuf::from(v)),
            other => bail!("unknown argument {other}"),
        }
    }
    if rounds == 0 {
        bail!("--rounds 0: at least 1");
    }
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch_fid_features.npz");
    let mut npz = NpzReader::new(File::open(&path).with_context(|| path.display().to_string())?)?;
    let mut grey = |key: &str| -> Result<Tensor> {
        let a = npz.by_name::<ndarray::OwnedRepr<u8>, IxDyn>(key)?;
        let s = a.shape().to_vec();
        Ok(Tensor::from_slice(&a.iter().copied().collect::<Vec<_>>())
            .reshape([s[0] as i64, 1, s[1] as i64, s[2] as i64])
            .to_kind(Kind::Float)
            / 255.0)
    };
    let sets = [
        ("set64_a", grey("set64_a")?),
        ("set64_b", grey("set64_b")?),
        ("set_a", grey("set_a")?),
        ("set_b", grey("set_b")?),
    ];
    let n_images: i64 = sets.iter().map(|(_, t)| t.size()[0]).sum();
    let ex = InceptionExtractor::from_default_weights(tch::Device::Cpu)?;
    // warm-up of both paths (oneDNN primitives are created on first use)
    for p in [Precision::Fp32, Precision::Bf16] {
        ex.features_in(&sets[2].1.narrow(0, 0, 2), &Tap::ALL, p)?;
    }

    let precisions = [Precision::Fp32, Precision::Bf16];
    // features[p][set][tap]
    let mut features: Vec<Vec<Vec<Tensor>>> = vec![Vec::new(), Vec::new()];
    let mut wall = [Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (pi, &p) in precisions.iter().enumerate() {
            let (t0, c0) = (Instant::now(), cpu_seconds());
            let mut per_set = Vec::new();
            for (_, images) in &sets {
                per_set.push(ex.features_batched_in(images, &Tap::ALL, BATCH, p)?);
            }
            wall[pi].push(t0.elapsed().as_secs_f64());
            cpu[pi].push(cpu_seconds() - c0);
            eprintln!(
                "round {round}: {p}: {n_images} images in {:.1} s",
                wall[pi].last().unwrap_or(&0.0)
            );
            if round == 0 {
                features[pi] = per_set;
            }
        }
    }

    // FID per pair and tap in both precisions.
    let mut rows = Vec::new();
    for (pair, (ia, ib)) in [
        ("80 vs 80 (set64_a, set64_b)", (0, 1)),
        ("12 vs 12 (set_a, set_b)", (2, 3)),
    ] {
        for (t, tap) in Tap::ALL.iter().enumerate() {
            let fid = |pi: usize| -> Result<f64> {
                let sa = Stats::from_features(&features[pi][ia][t])?;
                let sb = Stats::from_features(&features[pi][ib][t])?;
                Ok(frechet_distance(&sa, &sb)?)
            };
            let (f32_, bf16) = (fid(0)?, fid(1)?);
            // per-image relative feature error ||f_bf16 - f_fp32|| / ||f_fp32||, both sets
            let mut errs = Vec::new();
            for s in [ia, ib] {
                let a = features[1][s][t].to_kind(Kind::Double);
                let b = features[0][s][t].to_kind(Kind::Double);
                let num = (&a - &b).norm_scalaropt_dim(2, [1i64].as_slice(), false);
                let den = b.norm_scalaropt_dim(2, [1i64].as_slice(), false);
                errs.extend(Vec::<f64>::try_from(num / den)?);
            }
            errs.sort_by(f64::total_cmp);
            rows.push(json!({
                "pair": pair,
                "tap": tap.dims(),
                "fid_fp32": f32_,
                "fid_bf16": bf16,
                "fid_relative_error": (bf16 - f32_) / f32_,
                "feature_relative_error_median": errs[errs.len() / 2],
                "feature_relative_error_max": errs[errs.len() - 1],
            }));
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let timing = json!({
        "images": n_images,
        "batch": BATCH,
        "threads": tch::get_num_threads(),
        "rounds": rounds,
        "fp32_wall_s": wall[0], "bf16_wall_s": wall[1],
        "fp32_cpu_s": cpu[0], "bf16_cpu_s": cpu[1],
        "fp32_wall_median_s": median(&wall[0]), "bf16_wall_median_s": median(&wall[1]),
        "fp32_cpu_median_s": median(&cpu[0]), "bf16_cpu_median_s": median(&cpu[1]),
    });

    println!("| images | tap | FID fp32 | FID bf16 | relative error | feature error per image (median / max) |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.6} | {:.6} | {:+.2e} | {:.1e} / {:.1e} |",
            r["pair"].as_str().unwrap_or(""),
            r["tap"],
            r["fid_fp32"].as_f64().unwrap_or(f64::NAN),
            r["fid_bf16"].as_f64().unwrap_or(f64::NAN),
            r["fid_relative_error"].as_f64().unwrap_or(f64::NAN),
            r["feature_relative_error_median"]
                .as_f64()
                .unwrap_or(f64::NAN),
            r["feature_relative_error_max"].as_f64().unwrap_or(f64::NAN),
        );
    }
    println!();
    println!(
        "features of {n_images} images, all four taps in one pass, batch {BATCH}, {} threads, {rounds} round(s): \
         fp32 {:.1} s wall ({:.1} CPU-s), bf16 {:.1} s wall ({:.1} CPU-s) (medians)",
        tch::get_num_threads(),
        median(&wall[0]),
        median(&cpu[0]),
        median(&wall[1]),
        median(&cpu[1]),
    );
    if let Some(out) = json_out {
        let doc = json!({ "fid": rows, "timing": timing });
        std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| out.display().to_string())?;
    }
    Ok(())
}
