//! Initialisation against PyTorch's defaults, as PyTorch computes them for the original
//! modules (`tests/fixtures/pytorch_init.json`, made by `make_fixtures.py init` from the
//! authors' channel and filter models at (L, I, E) = (16, 128, 5) and the
//! PapersReimplementations IGN network at base_c 64): convolution, transposed-convolution and
//! linear weights and biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with PyTorch's fan-in (for
//! a transposed convolution, `weight.size(1) * k * k`: its output channels), embeddings
//! `N(0, 1)`, BatchNorm weight 1, bias 0, running mean 0, running variance 1.
//!
//! For each tensor of `n` elements: every value within the uniform bound; with `n >= 20`, the
//! sample variance within 5 standard errors of the distribution's (`b^2 / 3` with relative
//! standard error `sqrt(0.8 / n)` for the uniform, 1 with `sqrt(2 / n)` for N(0, 1)), the mean
//! within 5 standard errors of 0, and (uniform) the largest magnitude above `b (1 - 20 / n)`
//! (probability of a false failure below `e^-20`). The script checks PyTorch's own draw with
//! the same criteria.

mod common;

use cign_core::{CignModel, Conditioning, ModelConfig};
use common::fixtures::own_dir;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Whether `t` looks like a draw of `U(-b, b)`; the reason when not.
fn uniform_ok(t: &Tensor, b: f64) -> Result<(), String> {
    let t = t.to_kind(Kind::Double);
    let n = t.numel() as f64;
    let max = t.abs().max().double_value(&[]);
    // float32 rounding of lo + (hi - lo) u
    if max > b * (1.0 + 1e-6) {
        return Err(format!("max |w| {max:.6e} above the bound {b:.6e}"));
    }
    if n >= 20.0 {
        let var = t.var(true).double_value(&[]);
        let r = var / (b * b / 3.0) - 1.0;
        if r.abs() > 5.0 * (0.8 / n).sqrt() {
            return Err(format!(
                "variance {var:.4e} vs b^2/3 = {:.4e} (rel {r:+.3e}, allowed {:.3e})",
                b * b / 3.0,
                5.0 * (0.8 / n).sqrt()
            ));
        }
        let mean = t.mean(Kind::Double).double_value(&[]);
        if mean.abs() > 5.0 * b / (3.0 * n).sqrt() {
            return Err(format!("mean {mean:.3e}"));
        }
        if max < b * (1.0 - 20.0 / n) {
            return Err(format!("max |w| {max:.6e} far below the bound {b:.6e}"));
        }
    }
    Ok(())
}

fn normal_ok(t: &Tensor, mean0: f64, std0: f64) -> Result<(), String> {
    let t = t.to_kind(Kind::Double);
    let n = t.numel() as f64;
    let mean = t.mean(Kind::Double).double_value(&[]);
    let var = t.var(true).double_value(&[]);
    if (mean - mean0).abs() > 5.0 * std0 / n.sqrt()
        || (var / (std0 * std0) - 1.0).abs() > 5.0 * (2.0 / n).sqrt()
    {
        return Err(format!("mean {mean:.4}, variance {var:.4} (n {n})"));
    }
    Ok(())
}

fn models() -> Vec<(&'static str, ModelConfig)> {
    vec![
        (
            "channel_L16_I128_E5",
            ModelConfig::with_dims(Conditioning::Channel, 16, 128, 5),
        ),
        (
            "filter_L16_I128_E5",
            ModelConfig::with_dims(Conditioning::Filter, 16, 128, 5),
        ),
        ("ign_L64", ModelConfig::ign(64)),
    ]
}

#[test]
fn initialisation_follows_pytorch_defaults() {
    let _rng = common::rng_lock();
    let path = own_dir().join("pytorch_init.json");
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut fails = Vec::new();
    let mut checked = 0;
    for (name, cfg) in models() {
        let want = facts["models"][name].as_object().unwrap();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let _m = CignModel::new(&vs.root(), &cfg).unwrap();
        let vars = vs.variables();
        let mut ours: Vec<&String> = vars.keys().collect();
        ours.sort();
        let mut theirs: Vec<&String> = want.keys().filter(|k| !k.starts_with("__")).collect();
        theirs.sort();
        assert_eq!(ours, theirs, "{name}: variable names");
        for (var, fact) in want.iter().filter(|(k, _)| !k.starts_with("__")) {
            let t = &vars[var];
            let shape: Vec<i64> = fact["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap())
                .collect();
            assert_eq!(t.size(), shape, "{name} {var}");
            let init = &fact["init"];
            let res = if let Some(b) = init.get("uniform") {
                uniform_ok(t, b.as_f64().unwrap())
            } else if let Some(p) = init.get("normal") {
                normal_ok(t, p[0].as_f64().unwrap(), p[1].as_f64().unwrap())
            } else {
                let c = init["const"].as_f64().unwrap();
                let e = (t.to_kind(Kind::Double) - c).abs().max().double_value(&[]);
                if e == 0.0 {
                    Ok(())
                } else {
                    Err(format!("not the constant {c}"))
                }
            };
            if let Err(e) = res {
                fails.push(format!("{name} {var}: {e}"));
            }
            checked += 1;
        }
    }
    println!("{checked} tensors checked");
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// Control: the criterion rejects the classic mistake, a transposed convolution's fan-in
/// taken from its input channels (`weight.size(0)`), where that halves or doubles it.
#[test]
fn a_wrong_transposed_convolution_fan_in_is_detected() {
    let _rng = common::rng_lock();
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let _m = CignModel::new(&vs.root(), &ModelConfig::ign(64)).unwrap();
    let mut detected = 0;
    for (n, t) in vs.variables() {
        let s = t.size();
        if !n.starts_with("generator.") || s.len() != 4 || s[0] == s[1] {
            continue;
        }
        let kk = (s[2] * s[3]) as f64;
        let right = 1.0 / (s[1] as f64 * kk).sqrt();
        let wrong = 1.0 / (s[0] as f64 * kk).sqrt();
        assert!(uniform_ok(&t, right).is_ok(), "{n}");
        if uniform_ok(&t, wrong).is_err() {
            detected += 1;
        }
    }
    assert_eq!(
        detected, 5,
        "every transposed convolution of the IGN decoder"
    );
}
