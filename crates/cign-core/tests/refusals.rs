//! Bad input refused cleanly: a training pass that would write NaN into BatchNorm's running
//! variance, a device the machine does not have, configs too large to build or whose sizes
//! overflow, an objective given a model of another config or an empty batch, labels that are
//! not one integer per image or out of range; and generating no images, which is no error.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cign_core::flops::training_step_passes;
use cign_core::{
    layer_geometry, mismatch_pairs, model_config_from_metadata, CignModel, Conditioning, CoreError,
    Formulation, Mode, ModelConfig, Objective, ObjectiveConfig, TrainBatch,
};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

mod common;

/// The model configs of these tests: the three conditionings and the IGN network, small.
fn configs() -> Vec<ModelConfig> {
    let mut v: Vec<ModelConfig> = [
        Conditioning::Channel,
        Conditioning::Filter,
        Conditioning::None,
    ]
    .into_iter()
    .map(|c| ModelConfig::with_dims(c, 4, 8, 3))
    .collect();
    v.push(ModelConfig::ign(4));
    v
}

/// Copies of every BatchNorm running statistic of `vs`.
fn running_stats(vs: &VarStore) -> HashMap<String, Tensor> {
    vs.variables()
        .into_iter()
        .filter(|(n, _)| n.contains("running_"))
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

fn same_stats(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> bool {
    a.len() == b.len() && a.iter().all(|(n, t)| t.equal(&b[n]))
}

fn all_finite(stats: &HashMap<String, Tensor>) -> bool {
    stats
        .values()
        .all(|t| t.isfinite().all().int64_value(&[]) == 1)
}

/// The panic message of `f`, or `None` when it returns.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    catch_unwind(AssertUnwindSafe(f)).err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn batch(n: i64, cfg: &ModelConfig) -> TrainBatch {
    let o = (Kind::Float, Device::Cpu);
    let x = Tensor::rand([n, 1, 28, 28], o) * 2.0 - 1.0;
    let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(cfg.num_classes);
    let (xm, ym) = mismatch_pairs(&x, &y, cfg.num_classes);
    TrainBatch {
        z: Tensor::randn([n, 1, 28, 28], o),
        yz: y.copy(),
        x,
        y,
        x_mismatch: Some(xm),
        y_mismatch: Some(ym),
    }
}

/// A training-mode pass on one image would normalise one value per channel at the decoder's
/// first BatchNorm (`[1, I, 1, 1]`) and write NaN into its running variance (libtorch divides
/// by n - 1 = 0); it is refused before any running statistic changes, through every entry
/// point, while a batch of two trains and eval mode takes a batch of one.
#[test]
fn one_image_in_training_mode_is_refused_before_the_running_stats_change() {
    let _rng = common::rng_lock();
    tch::manual_seed(5);
    for cfg in configs() {
        let vs = VarStore::new(Device::Cpu);
        let model = CignModel::new(&vs.root(), &cfg).unwrap();
        let b1 = batch(1, &cfg);
        let labels = cfg.conditioning.is_conditional().then_some(&b1.y);
        let before = running_stats(&vs);
        let msg = panic_message(|| {
            let _ = model.forward_t(&b1.x, labels, true);
        })
        .unwrap_or_else(|| panic!("{cfg:?}: a training pass on one image was accepted"));
        assert!(msg.contains("more than 1 value per channel"), "{msg}");
        let h = Tensor::rand([1, cfg.intermediate_dim, 1, 1], (Kind::Float, Device::Cpu));
        assert!(panic_message(|| {
            let _ = model.decode_mode(&h, labels, Mode::TRAIN);
        })
        .is_some());
        let mut objective = Objective::new(&cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
        assert!(panic_message(|| {
            objective.training_loss(&model, &vs, &b1);
        })
        .is_some());
        let after = running_stats(&vs);
        assert!(all_finite(&after), "{cfg:?}: NaN running statistics");
        assert!(
            same_stats(&before, &after),
            "{cfg:?}: running statistics changed"
        );

        // eval mode and batch statistics take one image; the encoder alone trains on it
        let _ = model.forward_t(&b1.x, labels, false);
        let _ = model.generate_t(&b1.x, labels, true);
        let _ = model.encode_mode(&b1.x, labels, Mode::TRAIN);
        // a batch of two trains and keeps the statistics finite
        let b2 = batch(2, &cfg);
        let labels = cfg.conditioning.is_conditional().then_some(&b2.y);
        let _ = model.forward_t(&b2.x, labels, true);
        let trained = running_stats(&vs);
        assert!(all_finite(&trained), "{cfg:?}");
        assert!(!same_stats(&before, &trained), "{cfg:?}");
    }
}

/// A CUDA device the machine does not have is an error naming it, from the model and the
/// objective (their variables would otherwise panic in `nn::Path::var`).
#[test]
fn an_absent_cuda_device_is_an_error() {
    let cfg = ModelConfig::with_dims(Conditioning::Filter, 4, 8, 3);
    let n = tch::Cuda::device_count();
    let absent = Device::Cuda(usize::try_from(n).unwrap());
    let mut devices = vec![absent];
    if !tch::Cuda::is_available() {
        devices.push(Device::Cuda(0));
    }
    for device in devices {
        let vs = VarStore::new(device);
        match CignModel::new(&vs.root(), &cfg) {
            Err(CoreError::Device(msg)) => assert!(msg.contains(&format!("{device:?}")), "{msg}"),
            other => panic!("{device:?}: {other:?}"),
        }
        assert!(vs.variables().is_empty(), "variables created on {device:?}");
        match Objective::new(&cfg, ObjectiveConfig::default(), device) {
            Err(CoreError::Device(msg)) => assert!(msg.contains(&format!("{device:?}")), "{msg}"),
            other => panic!("{device:?}: {other:?}"),
        }
    }
}

/// The size guard counts every parameter: the filter model's label linears (`E c_in k^2`
/// weights each) hold most of a model with a huge embedding, and the error names
/// `embedding_dim`; the count is the built model's.
#[test]
fn validate_bounds_every_parameter() {
    // the large filter preset (configs/large_filter.toml)
    let preset = ModelConfig::with_dims(Conditioning::Filter, 128, 128, 5);
    assert!(preset.validate().is_ok());
    let huge = ModelConfig {
        embedding_dim: cign_core::config::MAX_MODEL_SIZE,
        ..preset.clone()
    };
    let e = huge.validate().unwrap_err();
    assert_eq!(e.key, "model.embedding_dim", "{e}");
    assert!(e.to_string().contains("parameters"), "{e}");
    assert!(huge.parameter_count() > cign_core::config::MAX_PARAMETERS);
    assert!(CignModel::new(&VarStore::new(Device::Cpu).root(), &huge).is_err());
    // the convolution widths are still named when they are the bulk
    let wide = ModelConfig::with_dims(Conditioning::Channel, 4096, 128, 5);
    assert_eq!(wide.validate().unwrap_err().key, "model.latent_dim");
}

/// Sizes that overflow `8 latent_dim` (and more) are errors, not arithmetic panics: the IGN
/// metadata whose `intermediate_dim` defaults to `8 latent_dim`, the IGN preset, the FLOP
/// counts; `layer_geometry` of an unvalidated config panics with a message saying so.
#[test]
fn huge_sizes_are_errors_not_overflows() {
    for latent in [i64::MAX, i64::MAX / 4, 1 << 40] {
        let meta: HashMap<String, String> = [
            ("kind".to_string(), "ign".to_string()),
            ("latent_dim".to_string(), latent.to_string()),
        ]
        .into_iter()
        .collect();
        match model_config_from_metadata(&meta) {
            Err(CoreError::Config(e)) => assert_eq!(e.key, "model.latent_dim", "{e}"),
            other => panic!("latent_dim {latent}: {other:?}"),
        }
        assert!(ModelConfig::ign(latent).validate().is_err());
    }
    let (f, b) = training_step_passes(i64::MAX, 9);
    assert!(f.is_finite() && b.is_finite());
    let msg = panic_message(|| {
        let _ = layer_geometry(&ModelConfig::ign(i64::MAX));
    })
    .expect("layer_geometry of an unvalidated config");
    assert!(msg.contains("validated config"), "{msg}");
}

/// Generation of no images returns an empty batch of the right shape, for every conditioning,
/// the IGN network and the authors' formulation (the filter model's grouped convolution cannot
/// have `0 * C` groups).
#[test]
fn generating_no_images_gives_an_empty_batch() {
    for cfg in configs() {
        for form in [Formulation::default_for(Device::Cpu), Formulation::AUTHORS] {
            let vs = VarStore::new(Device::Cpu);
            let model = CignModel::with_formulation(&vs.root(), &cfg, form).unwrap();
            let z = Tensor::randn([0, 1, 28, 28], (Kind::Float, Device::Cpu));
            let y = Tensor::zeros([0], (Kind::Int64, Device::Cpu));
            let labels = cfg.conditioning.is_conditional().then_some(&y);
            let g = model.generate(&z, labels);
            assert_eq!(g.size(), [0, 1, 28, 28], "{cfg:?} {form:?}");
            assert_eq!(g.kind(), Kind::Float);
            let e = model.encode_mode(&z, labels, Mode::EVAL);
            assert_eq!(e.size(), [0, cfg.intermediate_dim, 1, 1], "{cfg:?}");
        }
    }
}

/// The objective checks the whole model config, not only the architecture and conditioning:
/// its frozen copy runs with its own config's dropout.
#[test]
fn objective_refuses_a_model_of_another_config() {
    let _rng = common::rng_lock();
    let cfg = ModelConfig::with_dims(Conditioning::Channel, 4, 8, 3);
    let other = ModelConfig {
        dropout: 0.1,
        ..cfg.clone()
    };
    let vs = VarStore::new(Device::Cpu);
    let model = CignModel::new(&vs.root(), &other).unwrap();
    let mut objective = Objective::new(&cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
    let b = batch(2, &cfg);
    let msg = panic_message(|| {
        objective.training_loss(&model, &vs, &b);
    })
    .expect("a model with another dropout was accepted");
    assert!(msg.contains("another model config"), "{msg}");
    assert!(msg.contains("dropout: 0.1"), "{msg}");
    assert!(panic_message(|| {
        objective.validation_loss(&model, &vs, &b);
    })
    .is_some());
}

/// Labels that are not one integer per image are refused before anything runs, in every
/// conditional model and formulation: a `[1]` label tensor used to broadcast over the channel
/// model's batch (every image generated under that one label) and a batch of one over the
/// labels (a batch of ten out of one noise image). Labels outside `0..num_classes` are
/// refused by generation before the network runs (on CUDA they would be a device-side
/// assertion that libtorch cannot recover from).
#[test]
fn labels_not_one_per_image_or_out_of_range_are_refused() {
    let o = (Kind::Float, Device::Cpu);
    for cfg in configs()
        .into_iter()
        .filter(|c| c.conditioning.is_conditional())
    {
        for form in [Formulation::default_for(Device::Cpu), Formulation::AUTHORS] {
            let vs = VarStore::new(Device::Cpu);
            let model = CignModel::with_formulation(&vs.root(), &cfg, form).unwrap();
            let z8 = Tensor::randn([8, 1, 28, 28], o);
            let z1 = Tensor::randn([1, 1, 28, 28], o);
            let y8 = Tensor::arange(8, (Kind::Int64, Device::Cpu));
            let cases = [
                (&z8, Tensor::from_slice(&[3i64]), "shape [1]"),
                (&z8, Tensor::from(3i64), "shape []"),
                (
                    &z1,
                    Tensor::arange(10, (Kind::Int64, Device::Cpu)),
                    "shape [10]",
                ),
                (&z8, y8.view([2, 4]), "shape [2, 4]"),
                (&z8, y8.to_kind(Kind::Float), "kind Float"),
                (&z8, y8.ne(0), "kind Bool"),
            ];
            for (z, y, want) in &cases {
                for pass in ["generate", "forward_t"] {
                    let msg = panic_message(|| {
                        let _ = match pass {
                            "generate" => model.generate(z, Some(y)),
                            _ => model.forward_t(z, Some(y), false),
                        };
                    })
                    .unwrap_or_else(|| panic!("{cfg:?} {form:?} {pass}: {want} accepted"));
                    assert!(
                        msg.contains(want) && msg.contains("one integer label per image"),
                        "{cfg:?} {form:?} {pass}: {msg}"
                    );
                }
            }
            for bad in [-1i64, cfg.num_classes] {
                let y = y8.remainder(cfg.num_classes).fill_(bad);
                let msg = panic_message(|| {
                    let _ = model.generate(&z8, Some(&y));
                })
                .unwrap_or_else(|| panic!("{cfg:?}: label {bad} accepted"));
                assert!(
                    msg.contains(&format!("labels from {bad} to {bad}")),
                    "{cfg:?}: {msg}"
                );
                let msg = panic_message(|| {
                    let _ = model.reapply(&z8, Some(&y), 2, false);
                })
                .unwrap_or_else(|| panic!("{cfg:?}: reapply took label {bad}"));
                assert!(msg.contains("labels from"), "{cfg:?}: {msg}");
            }
            // One label per image in range: fine.
            let g = model.generate(&z8, Some(&y8.remainder(cfg.num_classes)));
            assert_eq!(g.size(), [8, 1, 28, 28]);
        }
    }
}

/// An empty batch has no loss (a mean over nothing is NaN): refused by both losses.
#[test]
fn the_objective_refuses_an_empty_batch() {
    let _rng = common::rng_lock();
    let cfg = ModelConfig::with_dims(Conditioning::Channel, 4, 8, 3);
    let vs = VarStore::new(Device::Cpu);
    let model = CignModel::new(&vs.root(), &cfg).unwrap();
    let mut objective = Objective::new(&cfg, ObjectiveConfig::default(), Device::Cpu).unwrap();
    let empty = batch(0, &cfg);
    for which in ["training", "validation"] {
        let msg = panic_message(|| {
            let _ = match which {
                "training" => objective.training_loss(&model, &vs, &empty),
                _ => objective.validation_loss(&model, &vs, &empty),
            };
        })
        .unwrap_or_else(|| panic!("{which}: an empty batch was accepted"));
        assert!(msg.contains("empty batch"), "{which}: {msg}");
    }
    // A batch of one is fine in validation (eval mode).
    let one = batch(1, &cfg);
    let terms = objective.validation_loss(&model, &vs, &one);
    assert!(terms.to_f64().total.is_finite());
}
