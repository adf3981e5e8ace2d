//! Parameter counts of the authors' models (their `CIGN_channel` and `CIGN_filter` modules as
//! PyTorch counts them), every row.

use cign_core::{layer_geometry, trainable_parameter_count, CignModel, Conditioning, ModelConfig};
use tch::nn::VarStore;
use tch::Device;

fn count(c: Conditioning, l: i64, i: i64, e: i64) -> i64 {
    let vs = VarStore::new(Device::Cpu);
    let _m = CignModel::new(&vs.root(), &ModelConfig::with_dims(c, l, i, e)).unwrap();
    trainable_parameter_count(&vs)
}

const ROWS: [((i64, i64, i64), i64, i64); 5] = [
    ((64, 128, 5), 5_607_110, 616_005),
    ((16, 128, 5), 462_182, 92_229),
    ((32, 128, 5), 1_546_374, 223_813),
    ((128, 128, 5), 21_297_990, 1_916_485),
    ((16, 512, 10), 864_377, 238_681),
];

#[test]
fn parameter_counts_equal_the_authors_models() {
    let mut bad = Vec::new();
    for ((l, i, e), channel, filter) in ROWS {
        let c = count(Conditioning::Channel, l, i, e);
        let f = count(Conditioning::Filter, l, i, e);
        println!("(L, I, E) = ({l}, {i}, {e}): channel {c}, filter {f}");
        if c != channel {
            bad.push(format!("channel ({l},{i},{e}): {c} != {channel}"));
        }
        if f != filter {
            bad.push(format!("filter ({l},{i},{e}): {f} != {filter}"));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// `ModelConfig::parameter_count` (what `validate` bounds) is the count of the built model,
/// for every conditioning and the IGN network.
#[test]
fn config_parameter_count_is_the_built_models() {
    for ((l, i, e), _, _) in ROWS {
        for c in [
            Conditioning::Channel,
            Conditioning::Filter,
            Conditioning::None,
        ] {
            let cfg = ModelConfig::with_dims(c, l, i, e);
            assert_eq!(
                cfg.parameter_count(),
                count(c, l, i, e),
                "{c:?} ({l},{i},{e})"
            );
        }
    }
    for base_c in [2, 8, 64] {
        let cfg = ModelConfig::ign(base_c);
        let vs = VarStore::new(Device::Cpu);
        let _m = CignModel::new(&vs.root(), &cfg).unwrap();
        assert_eq!(
            cfg.parameter_count(),
            trainable_parameter_count(&vs),
            "ign {base_c}"
        );
    }
}

/// The unconditional baseline is the channel model minus everything the label feeds: the two
/// embeddings, the ten label-map linears and the label channel of every convolution.
#[test]
fn unconditional_baseline_is_channel_model_without_label_inputs() {
    for ((l, i, e), channel, _) in ROWS {
        let cfg = ModelConfig::with_dims(Conditioning::Channel, l, i, e);
        let mut label_params = 2 * cfg.num_classes * e;
        for g in layer_geometry(&cfg) {
            let hw = g.in_size * g.in_size;
            label_params += e * hw + hw; // Linear(E -> H*W)
            label_params += g.c_out * g.kernel * g.kernel; // the label channel's conv weights
        }
        let none = count(Conditioning::None, l, i, e);
        assert_eq!(none, channel - label_params, "({l},{i},{e})");
    }
}

/// Variable names are the authors' state-dict keys.
#[test]
fn variable_names_are_the_authors_keys() {
    for c in [Conditioning::Channel, Conditioning::Filter] {
        let vs = VarStore::new(Device::Cpu);
        let _m = CignModel::new(&vs.root(), &ModelConfig::with_dims(c, 8, 16, 5)).unwrap();
        let names = vs.variables();
        for n in [
            "discriminator.label_embedder.weight",
            "discriminator.batch_norm_1.running_mean",
            "discriminator.batch_norm_4.running_var",
            "discriminator.linear_1.weight",
            "generator.batch_norm_5.weight",
            "generator.linear_5.bias",
        ] {
            assert!(names.contains_key(n), "{c:?}: {n} missing");
        }
        assert!(!names.contains_key("discriminator.batch_norm_5.weight"));
        let specific = match c {
            Conditioning::Channel => "generator.conv_5.weight",
            _ => "generator.channel_mixer_5.weight",
        };
        assert!(names.contains_key(specific), "{c:?}: {specific} missing");
    }
}
