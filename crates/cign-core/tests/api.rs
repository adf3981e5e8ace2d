//! Configs (serde), the optimiser, the generation API and the mismatch helper.

use cign_core::{
    mismatch_pairs, AdamW, AdamWConfig, Architecture, CignModel, Conditioning, LossWeights,
    ModelConfig, ObjectiveConfig, TightClamp,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[test]
fn config_serde_defaults_and_strictness() {
    let d: ModelConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(d, ModelConfig::default());
    assert_eq!(
        (
            d.conditioning,
            d.latent_dim,
            d.intermediate_dim,
            d.embedding_dim,
            d.dropout,
            d.num_classes,
            d.image_channels
        ),
        (Conditioning::Channel, 64, 128, 5, 0.15, 10, 1)
    );
    let f: ModelConfig =
        serde_json::from_str(r#"{"conditioning": "filter", "latent_dim": 16}"#).unwrap();
    assert_eq!(
        (f.conditioning, f.latent_dim, f.intermediate_dim),
        (Conditioning::Filter, 16, 128)
    );
    let n: ModelConfig = serde_json::from_str(r#"{"conditioning": "none"}"#).unwrap();
    assert_eq!(n.conditioning, Conditioning::None);
    assert!(serde_json::from_str::<ModelConfig>(r#"{"latent": 3}"#).is_err());
    assert!(serde_json::from_str::<ModelConfig>(r#"{"conditioning": "Channel"}"#).is_err());
    assert_eq!(
        serde_json::to_value(Conditioning::Filter).unwrap(),
        "filter"
    );

    let w: LossWeights = serde_json::from_str("{}").unwrap();
    assert_eq!(
        (
            w.rec,
            w.idem_noise,
            w.tight_noise,
            w.idem_mismatch,
            w.tight_mismatch
        ),
        (20.0, 20.0, 2.5, 3.0, 1.0)
    );
    assert!(serde_json::from_str::<LossWeights>(r#"{"recon": 1}"#).is_err());
    // [loss] is flat: the keys of configs/*.toml
    let o: ObjectiveConfig = serde_json::from_str(r#"{"rec": 10}"#).unwrap();
    assert_eq!(
        (o.rec, o.idem_noise, o.tight_clamp, o.tight_clamp_ratio),
        (10.0, 20.0, TightClamp::Off, 1.5)
    );
    assert_eq!(o.weights().rec, 10.0);
    assert!(serde_json::from_str::<ObjectiveConfig>(r#"{"weights": {"rec": 10}}"#).is_err());
    let a: AdamWConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(
        (a.lr, a.betas, a.weight_decay, a.eps),
        (1e-4, (0.5, 0.999), 0.01, 1e-8)
    );
    assert_eq!(
        serde_json::to_value(&a).unwrap()["betas"],
        serde_json::json!([0.5, 0.999])
    );

    for bad in [
        ModelConfig {
            latent_dim: 0,
            ..Default::default()
        },
        ModelConfig {
            dropout: 1.0,
            ..Default::default()
        },
        ModelConfig {
            num_classes: 1,
            ..Default::default()
        },
        ModelConfig {
            image_channels: 0,
            ..Default::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        assert!(CignModel::new(&VarStore::new(Device::Cpu).root(), &bad).is_err());
    }
}

/// `loss.tight_clamp`: the three names, and the booleans of configs written before it had
/// three forms (`false` = off, `true` = batch, the only clamp they had).
#[test]
fn tight_clamp_parses_names_and_old_booleans() {
    let parse = |v: &str| {
        serde_json::from_str::<ObjectiveConfig>(&format!(r#"{{"tight_clamp": {v}}}"#))
            .map(|o| o.tight_clamp)
    };
    assert_eq!(parse("false").unwrap(), TightClamp::Off);
    assert_eq!(parse("true").unwrap(), TightClamp::Batch);
    assert_eq!(parse(r#""off""#).unwrap(), TightClamp::Off);
    assert_eq!(parse(r#""batch""#).unwrap(), TightClamp::Batch);
    assert_eq!(parse(r#""per_sample""#).unwrap(), TightClamp::PerSample);
    for bad in [r#""per-sample""#, r#""on""#, "1", "null"] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(
            e.contains(r#""off", "batch" or "per_sample""#),
            "{bad}: {e}"
        );
    }
    assert_eq!(ObjectiveConfig::default().tight_clamp, TightClamp::Off);
    let o = ObjectiveConfig {
        tight_clamp: TightClamp::PerSample,
        ..Default::default()
    };
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["tight_clamp"], "per_sample");
    assert_eq!(serde_json::from_value::<ObjectiveConfig>(v).unwrap(), o);
}

/// Every `validate` names the key (`section.key`) and the allowed range.
#[test]
fn validation_errors_name_the_key_and_the_range() {
    let adam = |f: &dyn Fn(&mut AdamWConfig)| {
        let mut c = AdamWConfig::default();
        f(&mut c);
        c.validate().map_err(|e| (e.key, e.to_string()))
    };
    assert!(adam(&|_| {}).is_ok());
    assert!(adam(&|c| c.weight_decay = 0.0).is_ok());
    assert!(adam(&|c| c.betas = (0.0, 0.0)).is_ok());
    for (f, key) in [
        (
            &(|c: &mut AdamWConfig| c.betas = (1.0, 0.999)) as &dyn Fn(&mut AdamWConfig),
            "optim.betas",
        ),
        (&|c: &mut AdamWConfig| c.betas = (0.5, 1.5), "optim.betas"),
        (&|c: &mut AdamWConfig| c.betas = (-0.1, 0.9), "optim.betas"),
        (
            &|c: &mut AdamWConfig| c.betas = (f64::NAN, 0.9),
            "optim.betas",
        ),
        (
            &|c: &mut AdamWConfig| c.weight_decay = -1e-3,
            "optim.weight_decay",
        ),
        (
            &|c: &mut AdamWConfig| c.weight_decay = f64::INFINITY,
            "optim.weight_decay",
        ),
        (&|c: &mut AdamWConfig| c.eps = 0.0, "optim.eps"),
        (&|c: &mut AdamWConfig| c.eps = -1e-8, "optim.eps"),
        (&|c: &mut AdamWConfig| c.lr = 0.0, "optim.lr"),
        (&|c: &mut AdamWConfig| c.lr = f64::NAN, "optim.lr"),
        (&|c: &mut AdamWConfig| c.lr = f64::INFINITY, "optim.lr"),
    ] {
        let (k, msg) = adam(f).unwrap_err();
        assert_eq!(k, key, "{msg}");
        assert!(msg.starts_with(key), "{msg}");
    }
    let (_, msg) = adam(&|c| c.betas = (1.0, 0.999)).unwrap_err();
    assert_eq!(msg, "optim.betas = [1, 0.999]: each must be in [0, 1)");

    let obj = |f: &dyn Fn(&mut ObjectiveConfig)| {
        let mut c = ObjectiveConfig::default();
        f(&mut c);
        c.validate().map_err(|e| e.to_string())
    };
    assert!(obj(&|_| {}).is_ok());
    assert_eq!(
        obj(&|c| c.tight_clamp_ratio = 0.0).unwrap_err(),
        "loss.tight_clamp_ratio = 0: must be a finite number > 0"
    );
    assert!(obj(&|c| c.rec = f64::NAN)
        .unwrap_err()
        .starts_with("loss.rec = NaN"));
    assert!(obj(&|c| c.tight_mismatch = -1.0)
        .unwrap_err()
        .starts_with("loss.tight_mismatch = -1"));

    let model = |c: ModelConfig| c.validate().map_err(|e| e.to_string());
    assert!(model(ModelConfig::ign(64)).is_ok());
    assert_eq!(
        model(ModelConfig {
            dropout: 1.0,
            ..Default::default()
        })
        .unwrap_err(),
        "model.dropout = 1: must be in [0, 1)"
    );
    assert!(model(ModelConfig {
        conditioning: Conditioning::Channel,
        ..ModelConfig::ign(64)
    })
    .unwrap_err()
    .starts_with("model.conditioning = channel: must be \"none\""));
    assert_eq!(
        model(ModelConfig {
            intermediate_dim: 128,
            ..ModelConfig::ign(64)
        })
        .unwrap_err(),
        "model.intermediate_dim = 128: must be 8 * latent_dim = 512 with architecture = \"ign\""
    );
    assert!(model(ModelConfig::ign(1))
        .unwrap_err()
        .starts_with("model.latent_dim = 1"));
    // the model constructor reports the same error
    let e = CignModel::new(
        &VarStore::new(Device::Cpu).root(),
        &ModelConfig {
            latent_dim: 0,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("model.latent_dim = 0: must be >= 1"), "{e}");
    // architecture names
    let m: ModelConfig = serde_json::from_str(
        r#"{"architecture": "ign", "conditioning": "none", "latent_dim": 8, "intermediate_dim": 64}"#,
    )
    .unwrap();
    assert_eq!(m.architecture, Architecture::Ign);
    assert!(m.validate().is_ok());
    assert!(serde_json::from_str::<ModelConfig>(r#"{"architecture": "dcgan"}"#).is_err());
    assert_eq!(ModelConfig::default().architecture, Architecture::Cign);
}

/// Our AdamW against the update written out in float64 (PyTorch's single-tensor AdamW).
#[test]
fn adamw_matches_the_reference_update() {
    let vs = VarStore::new(Device::Cpu);
    let p = vs.root().var("p", &[5], tch::nn::Init::Const(0.0));
    tch::no_grad(|| {
        p.shallow_clone()
            .copy_(&Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0, 3.0]))
    });
    let cfg = AdamWConfig {
        lr: 1e-2,
        ..Default::default()
    };
    let mut opt = AdamW::new(&vs, cfg.clone());
    let mut reference: Vec<f64> = vec![0.5, -1.0, 2.0, 0.0, 3.0];
    let (mut m, mut v) = (vec![0.0f64; 5], vec![0.0f64; 5]);
    for step in 1..=4 {
        opt.zero_grad();
        // loss = sum(c_i p_i^2) / 2 -> grad c_i p_i
        let c = Tensor::from_slice(&[1.0f32, 2.0, -0.5, 3.0, 0.1]);
        (&p * &p * &c).sum(Kind::Float).g_mul_scalar(0.5).backward();
        let g: Vec<f64> = Vec::<f32>::try_from(&p.grad())
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect();
        let (b1, b2) = cfg.betas;
        let t = step as f64;
        for i in 0..5 {
            reference[i] *= 1.0 - cfg.lr * cfg.weight_decay;
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let denom = (v[i].sqrt() / (1.0 - b2.powf(t)).sqrt()) + cfg.eps;
            reference[i] -= cfg.lr / (1.0 - b1.powf(t)) * m[i] / denom;
        }
        opt.step();
        let got: Vec<f32> = Vec::<f32>::try_from(&p.detach()).unwrap();
        for i in 0..5 {
            assert!(
                (got[i] as f64 - reference[i]).abs() < 1e-6,
                "step {step} elem {i}: {} vs {}",
                got[i],
                reference[i]
            );
        }
    }
    assert_eq!(opt.step_count(), 4);
}

#[test]
fn adamw_state_round_trip_and_errors() {
    let cfg = ModelConfig::with_dims(Conditioning::Filter, 4, 8, 3);
    let make = || {
        tch::manual_seed(1);
        let vs = VarStore::new(Device::Cpu);
        let m = CignModel::new(&vs.root(), &cfg).unwrap();
        (vs, m)
    };
    let x = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3]);
    let train = |m: &CignModel, opt: &mut AdamW| {
        opt.zero_grad();
        m.forward_t(&x, Some(&y), false)
            .abs()
            .mean(Kind::Float)
            .backward();
        opt.step();
    };
    let (vs_a, m_a) = make();
    let mut opt_a = AdamW::new(&vs_a, AdamWConfig::default());
    train(&m_a, &mut opt_a);
    train(&m_a, &mut opt_a);
    let state = opt_a.state_tensors();
    assert_eq!(state.len(), 2 * vs_a.trainable_variables().len() + 1);
    assert!(state
        .iter()
        .any(|(n, _)| n == "optim.exp_avg.generator.channel_mixer_5.weight"));
    assert!(state
        .iter()
        .any(|(n, t)| n == "optim.step" && t.int64_value(&[]) == 2));
    // B: same weights as A, fresh optimiser, loads A's state; one more step each -> equal
    let (mut vs_b, m_b) = make();
    vs_b.copy(&vs_a).unwrap();
    let mut opt_b = AdamW::new(&vs_b, AdamWConfig::default());
    opt_b.load_state_tensors(&state).unwrap();
    assert_eq!(opt_b.step_count(), 2);
    train(&m_a, &mut opt_a);
    train(&m_b, &mut opt_b);
    for (n, t) in vs_a.variables() {
        let d = (&t - &vs_b.variables()[&n]).abs().max().double_value(&[]);
        assert_eq!(d, 0.0, "{n}");
    }
    // errors
    let mut missing: Vec<(String, Tensor)> = state
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    missing.retain(|(n, _)| !n.ends_with("generator.linear_1.bias"));
    let e = opt_b.load_state_tensors(&missing).unwrap_err().to_string();
    assert!(e.contains("optim.exp_avg.generator.linear_1.bias"), "{e}");
    let mut extra: Vec<(String, Tensor)> = state
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    extra.push((
        "optim.exp_avg.nope".into(),
        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
    ));
    let e = opt_b.load_state_tensors(&extra).unwrap_err().to_string();
    assert!(e.contains("optim.exp_avg.nope"), "{e}");
    // A negative, fractional or huge step is refused, and the state is left as it was.
    for bad in [-1.0f64, 2.5, 1e300] {
        let damaged: Vec<(String, Tensor)> = state
            .iter()
            .map(|(n, t)| match n.as_str() {
                "optim.step" => (n.clone(), Tensor::from(bad)),
                _ => (n.clone(), t.shallow_clone()),
            })
            .collect();
        let e = opt_b.load_state_tensors(&damaged).unwrap_err().to_string();
        assert!(e.contains("optim.step"), "{bad}: {e}");
        assert_eq!(opt_b.step_count(), 3, "{bad}");
    }
    opt_b.set_lr(3e-4);
    assert_eq!(opt_b.lr(), 3e-4);
}

#[test]
fn mismatch_pairs_follow_the_authors_order() {
    let x = Tensor::arange(3, (Kind::Float, Device::Cpu)).view([3, 1, 1, 1]);
    let y = Tensor::from_slice(&[0i64, 4, 9]);
    let (xm, ym) = mismatch_pairs(&x, &y, 10);
    let ym: Vec<i64> = Vec::try_from(&ym).unwrap();
    let mut want = Vec::new();
    for yi in [0, 4, 9] {
        want.extend((0..10).filter(|&l| l != yi));
    }
    assert_eq!(ym, want);
    let xm: Vec<f32> = Vec::try_from(&xm.flatten(0, -1)).unwrap();
    assert_eq!(xm, [[0.0f32; 9], [1.0; 9], [2.0; 9]].concat());
}

#[test]
fn generation_api() {
    for c in [
        Conditioning::Channel,
        Conditioning::Filter,
        Conditioning::None,
    ] {
        tch::manual_seed(2);
        let cfg = ModelConfig::with_dims(c, 4, 8, 3);
        let vs = VarStore::new(Device::Cpu);
        let m = CignModel::new(&vs.root(), &cfg).unwrap();
        let z = Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
        let labels = c.is_conditional().then_some(&y);
        let stats = |vs: &VarStore| vs.variables()["generator.batch_norm_2.running_var"].copy();
        let before = stats(&vs);
        let g = m.generate(&z, labels);
        assert_eq!(g.size(), [6, 1, 28, 28]);
        assert!(!g.requires_grad());
        assert!(g.abs().max().double_value(&[]) <= 1.0);
        // deterministic eval mode (dropout off)
        assert_eq!(
            (&g - m.generate(&z, labels)).abs().max().double_value(&[]),
            0.0
        );
        assert_eq!(
            (&g - m.project(&z, labels)).abs().max().double_value(&[]),
            0.0
        );
        // re-application
        assert_eq!(
            (m.reapply(&z, labels, 0, false) - &z)
                .abs()
                .max()
                .double_value(&[]),
            0.0
        );
        let twice = m.generate(&g, labels);
        assert!(
            (m.reapply(&z, labels, 2, false) - &twice)
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
        // batch-statistics option: differs from eval mode, leaves running statistics alone
        let gb = m.generate_t(&z, labels, true);
        assert!((&gb - &g).abs().max().double_value(&[]) > 1e-6);
        assert!(
            (m.reapply(&z, labels, 1, true) - &gb)
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
        assert_eq!(
            (stats(&vs) - &before).abs().max().double_value(&[]),
            0.0,
            "{c:?}: generation changed statistics"
        );
        // the label matters for the conditional models
        if c.is_conditional() {
            let other = (&y + 1).remainder(10);
            assert!(
                (m.generate(&z, Some(&other)) - &g)
                    .abs()
                    .max()
                    .double_value(&[])
                    > 1e-6
            );
        }
        // training mode: dropout makes two passes differ
        let a = tch::no_grad(|| m.forward_t(&z, labels, true));
        let b = tch::no_grad(|| m.forward_t(&z, labels, true));
        assert!((a - b).abs().max().double_value(&[]) > 0.0);
    }
}
