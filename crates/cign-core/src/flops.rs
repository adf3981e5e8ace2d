//! Analytic FLOP counts (1 multiply-add = 2 FLOPs) of the convolutions, label linears,
//! depthwise products and channel mixers; element-wise work (BatchNorm, activations, dropout,
//! the loss) is not counted.

use crate::model::layer_geometry;
use crate::{Conditioning, ModelConfig};

/// FLOPs of one forward pass of `f` for one sample.
///
/// # Panics
///
/// As [`layer_geometry`]: pass a validated config.
pub fn forward_flops_per_sample(cfg: &ModelConfig) -> f64 {
    let e = cfg.embedding_dim as f64;
    let mut macs = 0.0f64;
    for g in layer_geometry(cfg) {
        let (ci, co, kk) = (g.c_in as f64, g.c_out as f64, (g.kernel * g.kernel) as f64);
        let (pin, pout) = (
            (g.in_size * g.in_size) as f64,
            (g.out_size * g.out_size) as f64,
        );
        // A convolution touches each output pixel with k*k inputs; a transposed one each input
        // pixel with k*k outputs.
        let positions = if g.transposed { pin } else { pout };
        match cfg.conditioning {
            Conditioning::Channel => {
                macs += positions * (ci + 1.0) * co * kk;
                macs += e * pin; // label map Linear(E -> H*W)
            }
            Conditioning::None => macs += positions * ci * co * kk,
            Conditioning::Filter => {
                macs += positions * ci * kk; // per-sample depthwise
                macs += pout * ci * co; // channel mixer
                macs += e * ci * kk; // kernel Linear(E -> C*k*k)
            }
        }
    }
    2.0 * macs
}

/// Number of sample-passes of one training step, as (forward, backward-equivalent) in units
/// of one sample's forward pass, for real batch `b` and `mismatch_per_image` mismatched pairs
/// per image (9 for MNIST; 0 for the unconditional baseline). Passes whose parameters get
/// gradients cost 2x forward in backward (weights and inputs); the frozen copy's passes 1x
/// (inputs only). Counted in float64, so no argument overflows.
pub fn training_step_passes(b: i64, mismatch_per_image: i64) -> (f64, f64) {
    let (b, m) = (b as f64, b as f64 * mismatch_per_image as f64);
    // f(x), f(z), f(x'), f_copy(f(z)), f(sg f(z)), f_copy(f(x')), f(sg f(x'))
    let fwd = b + b + m + b + b + m + m;
    let with_params = b + b + m + b + m; // f(x), f(z), f(x'), f(sg f(z)), f(sg f(x'))
    let copy = b + m;
    (fwd, 2.0 * with_params + copy)
}

/// FLOPs of one training step (objective forward + backward; the optimiser's element-wise
/// update is not counted) at real batch `b`.
///
/// # Panics
///
/// As [`layer_geometry`].
pub fn training_step_flops(cfg: &ModelConfig, b: i64) -> f64 {
    let m = if cfg.conditioning.is_conditional() {
        cfg.num_classes - 1
    } else {
        0
    };
    let (f, bw) = training_step_passes(b, m);
    (f + bw) * forward_flops_per_sample(cfg)
}

/// FLOPs of one forward pass of `f` over `b` samples.
///
/// # Panics
///
/// As [`layer_geometry`].
pub fn forward_flops(cfg: &ModelConfig, b: i64) -> f64 {
    b as f64 * forward_flops_per_sample(cfg)
}
