//! The IGN network (`architecture = "ign"`, `cign_core::ign`) against PyTorch:
//!
//! * its parameter count, variable names and shapes equal those PyTorch gives for the network
//!   as `tests/fixtures/ign_param_count.py` writes it from its description (the JSON next to
//!   it), and those of the PapersReimplementations `DCGANLikeModel` itself
//!   (`tests/fixtures/pytorch_init.json`, made by `make_fixtures.py init` from that code);
//! * one training step equals that code's (`tests/fixtures/ign_L4_seed0.safetensors`, made by
//!   `make_fixtures.py ign` with its `IdempotentNetwork.get_losses` and Adam): outputs,
//!   losses, gradients and the state after one step with Dropout2d off, and the losses and
//!   gradients of a step with Dropout2d on after the same torch seed.

mod common;

use std::collections::BTreeMap;

use cign_core::{
    load_named_into, model_config_from_metadata, trainable_parameter_count, AdamW, AdamWConfig,
    Architecture, CignModel, Conditioning, ModelConfig, Objective, ObjectiveConfig, TrainBatch,
};
use common::fixtures::{max_abs, own_dir, own_fixtures, rel_norm, Fixture};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn json(name: &str) -> serde_json::Value {
    let path = own_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn shapes(v: &serde_json::Value) -> BTreeMap<String, Vec<i64>> {
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(n, _)| !n.starts_with("__"))
        .map(|(n, s)| {
            let s = if s.is_object() { &s["shape"] } else { s };
            (
                n.clone(),
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_i64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn parameter_count_names_and_shapes_equal_pytorch() {
    let _rng = common::rng_lock();
    let reference = json("ign_param_count.json");
    for base in [64i64, 8] {
        let want = &reference["networks"][base.to_string()];
        let vs = VarStore::new(Device::Cpu);
        let _m = CignModel::new(&vs.root(), &ModelConfig::ign(base)).unwrap();
        let count = trainable_parameter_count(&vs);
        println!(
            "IGN network, base_c {base}: {count} parameters (PyTorch {})",
            want["parameters"]
        );
        assert_eq!(count, want["parameters"].as_i64().unwrap(), "base_c {base}");
        let ours = |trainable: bool| -> BTreeMap<String, Vec<i64>> {
            vs.variables()
                .into_iter()
                .filter(|(_, t)| t.requires_grad() == trainable)
                .map(|(n, t)| (n, t.size()))
                .collect()
        };
        assert_eq!(ours(true), shapes(&want["trainable"]), "base_c {base}");
        assert_eq!(ours(false), shapes(&want["buffers"]), "base_c {base}");
    }
    assert_eq!(
        reference["networks"]["64"]["parameters"].as_i64(),
        Some(5_550_336)
    );
    // ... and the original code's own model (its state dict, parameters and buffers)
    let original = &json("pytorch_init.json")["models"]["ign_L64"];
    let vs = VarStore::new(Device::Cpu);
    let _m = CignModel::new(&vs.root(), &ModelConfig::ign(64)).unwrap();
    let want = shapes(original);
    let ours: BTreeMap<String, Vec<i64>> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    assert_eq!(ours, want);
    assert_eq!(
        original["__parameters__"].as_i64(),
        Some(trainable_parameter_count(&vs))
    );
}

#[test]
fn ign_network_shapes_modes_and_generation() {
    let _rng = common::rng_lock();
    tch::manual_seed(5);
    let cfg = ModelConfig::ign(8);
    assert_eq!(
        (
            cfg.architecture,
            cfg.conditioning,
            cfg.intermediate_dim,
            cfg.dropout
        ),
        (Architecture::Ign, Conditioning::None, 64, 0.1)
    );
    let vs = VarStore::new(Device::Cpu);
    let m = CignModel::new(&vs.root(), &cfg).unwrap();
    let z = Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let h = tch::no_grad(|| m.encode_mode(&z, None, cign_core::Mode::EVAL));
    assert_eq!(h.size(), [6, 64, 1, 1]);
    // a latent without sigmoid: values outside [0, 1]
    assert!(h.min().double_value(&[]) < 0.0);
    let g = m.generate(&z, None);
    assert_eq!(g.size(), [6, 1, 28, 28]);
    assert!(g.abs().max().double_value(&[]) <= 1.0);
    assert_eq!(max_abs(&g, &m.generate(&z, None)), 0.0);
    let gb = m.generate_t(&z, None, true);
    assert!(max_abs(&gb, &g) > 1e-6);
    // Dropout2d in training mode zeroes whole channels: two passes differ
    let a = tch::no_grad(|| m.forward_t(&z, None, true));
    let b = tch::no_grad(|| m.forward_t(&z, None, true));
    assert!(max_abs(&a, &b) > 0.0);
    // the geometry the flop counter uses
    let geo = cign_core::layer_geometry(&cfg);
    let sizes: Vec<i64> = geo.iter().map(|g| g.out_size).collect();
    assert_eq!(sizes, [14, 7, 5, 3, 1, 3, 5, 7, 14, 28]);
    assert_eq!(
        (geo[9].c_in, geo[9].c_out, geo[5].c_in, geo[5].c_out),
        (4, 1, 64, 32)
    );
}

fn check_close(fails: &mut Vec<String>, what: &str, err: f64, tol: f64) {
    if err > tol {
        fails.push(format!("{what}: {err:.3e} > {tol:.0e}"));
    }
}

/// The fixture's step: Dropout2d off (losses, gradients, one Adam step) and on (losses and
/// gradients after `torch.manual_seed(dropout_seed)`, the generator both codes draw from).
#[test]
fn one_step_equals_the_ign_code() {
    let _rng = common::rng_lock();
    let fixtures = own_fixtures("ign");
    assert!(
        !fixtures.is_empty(),
        "no ign fixture in {}",
        own_dir().display()
    );
    let mut fails = Vec::new();
    for fx in &fixtures {
        fails.extend(
            check_fixture(fx)
                .into_iter()
                .map(|f| format!("{}: {f}", fx.name)),
        );
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

fn check_fixture(fx: &Fixture) -> Vec<String> {
    let mut fails = Vec::new();
    let cfg = model_config_from_metadata(&fx.file.metadata).unwrap();
    assert_eq!(cfg.architecture, Architecture::Ign);
    let p = fx.file.metadata["dropout_p"].parse::<f64>().unwrap();
    let seed = fx.file.metadata["dropout_seed"].parse::<i64>().unwrap();
    let (x, z) = (fx.t("input.x"), fx.t("input.z"));
    let labels = Tensor::zeros([x.size()[0]], (Kind::Int64, Device::Cpu));
    let batch = TrainBatch {
        x: x.shallow_clone(),
        y: labels.shallow_clone(),
        z,
        yz: labels,
        x_mismatch: None,
        y_mismatch: None,
    };
    for (prefix, dropout) in [("", 0.0), ("dropout.", p)] {
        let cfg = ModelConfig {
            dropout,
            ..cfg.clone()
        };
        let mut vs = VarStore::new(Device::Cpu);
        let model = CignModel::new(&vs.root(), &cfg).unwrap();
        load_named_into(&mut vs, &fx.state(), &fx.name).unwrap();
        if dropout == 0.0 {
            for key in ["out.eval", "out.train"] {
                let out = tch::no_grad(|| model.forward_t(&x, None, key == "out.train"));
                let e = max_abs(&out, &fx.t(key));
                println!("{}: {key} max abs err {e:.3e}", fx.name);
                check_close(&mut fails, key, e, 1e-5);
            }
            load_named_into(&mut vs, &fx.state(), &fx.name).unwrap();
        }
        // Adam = AdamW without weight decay (the IGN code's optimiser)
        let mut opt = AdamW::new(
            &vs,
            AdamWConfig {
                weight_decay: 0.0,
                ..Default::default()
            },
        );
        let mut obj = Objective::new(&cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
        opt.zero_grad();
        if dropout > 0.0 {
            tch::manual_seed(seed);
        }
        let step = obj.training_loss(&model, &vs, &batch);
        step.total.backward();
        let terms = step.to_f64();
        for (n, got) in [
            ("rec", terms.rec),
            ("idem_noise", terms.idem_noise),
            ("tight_noise", terms.tight_noise),
            ("total", terms.total),
        ] {
            let want = fx.scalar(&format!("{prefix}loss.{n}"));
            let rel = (got - want).abs() / want.abs();
            println!(
                "{}: {prefix}loss.{n} = {got:.8} (want {want:.8}, rel {rel:.2e})",
                fx.name
            );
            check_close(&mut fails, &format!("{prefix}loss.{n}"), rel, 1e-5);
        }
        assert_eq!((terms.idem_mismatch, terms.tight_mismatch), (0.0, 0.0));
        let want = fx.with_prefix(&format!("{prefix}grad."));
        let vars = vs.variables();
        let trainable: Vec<&String> = vars.keys().filter(|n| vars[*n].requires_grad()).collect();
        assert_eq!(trainable.len(), want.len());
        let mut worst = 0.0f64;
        for n in trainable {
            let r = rel_norm(&vars[n].grad(), want[n]);
            worst = worst.max(r);
            check_close(&mut fails, &format!("{prefix}grad.{n}"), r, 1e-4);
        }
        println!("{}: {prefix}worst gradient rel err {worst:.3e}", fx.name);
        if dropout == 0.0 {
            opt.step();
            let after = fx.with_prefix("after_step.");
            assert_eq!(after.len(), vars.len());
            let worst = vars
                .iter()
                .map(|(n, v)| max_abs(v, after[n]))
                .fold(0.0, f64::max);
            println!("{}: worst after_step abs err {worst:.3e}", fx.name);
            check_close(&mut fails, "after_step", worst, 1e-5);
        }
    }
    fails
}
