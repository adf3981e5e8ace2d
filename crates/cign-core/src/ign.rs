//! The unconditional IGN network the CIGN paper compares against.
//!
//! The authors' `MNIST/idempotent_networks.py` (niccronc/conditional-idempotent-generative-
//! networks) says it modifies an earlier public IGN re-implementation, the PapersReimplementations
//! repository (`src/cv/ign/`), whose network (`model.py`, "DCGAN-like") is this one. With
//! `L = latent_dim` (their `base_c`, 64) and `C = image_channels`:
//!
//! | module | layers | output |
//! |---|---|---|
//! | `discriminator.main` 0-2 | Conv(C -> L, k4 s2 p1), Dropout2d, LeakyReLU(0.2) | L x 14 x 14 |
//! | 3-6 | BN(L), Conv(L -> 2L, k4 s2 p1), Dropout2d, LeakyReLU | 2L x 7 x 7 |
//! | 7-10 | BN(2L), Conv(2L -> 4L, k3 s1 p0), Dropout2d, LeakyReLU | 4L x 5 x 5 |
//! | 11-14 | BN(4L), Conv(4L -> 8L, k3 s1 p0), Dropout2d, LeakyReLU | 8L x 3 x 3 |
//! | 15 | Conv(8L -> 8L, k3 s1 p0), no activation | 8L x 1 x 1 |
//! | `generator.main` 0-3 | BN(8L), ConvT(8L -> 4L, k3 s1 p0), Dropout2d, ReLU | 4L x 3 x 3 |
//! | 4-7 | BN(4L), ConvT(4L -> 2L, k3 s1 p0), Dropout2d, ReLU | 2L x 5 x 5 |
//! | 8-11 | BN(2L), ConvT(2L -> L, k3 s1 p0), Dropout2d, ReLU | L x 7 x 7 |
//! | 12-15 | BN(L), ConvT(L -> L/2, k4 s2 p1), Dropout2d, ReLU | L/2 x 14 x 14 |
//! | 16-17 | ConvT(L/2 -> C, k4 s2 p1), Tanh | C x 28 x 28 |
//!
//! (The decoder's widths are `8L / 2, 8L / 4, 8L / 8, 8L / 16` with integer division, as
//! there.) Convolutions have no bias; `Dropout2d` (probability [`ModelConfig::dropout`], 0.1
//! there) zeroes whole channels of a sample; BatchNorm has PyTorch's defaults (eps 1e-5,
//! momentum 0.1) and sits after the activation. Variables are named like the PyTorch
//! state-dict keys of `DCGANLikeModel` (`discriminator.main.0.weight`,
//! `generator.main.0.running_var`, ...: the index of the module in its `nn.Sequential`), so a
//! state dict of that code loads without renaming. Initialisation is PyTorch's default:
//! weights `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with `fan_in = weight.size(1) * k * k` (for a
//! transposed convolution `size(1)` is its output channels), BatchNorm weight 1 and bias 0.
//!
//! The network has 5,550,336 trainable parameters at `L = 64`, `C = 1`
//! (`tests/ign.rs` checks this against PyTorch).

use tch::nn;
use tch::Tensor;

use crate::model::activation::Activation;
use crate::model::batch_norm::{BatchNorm, BnLayout};
use crate::model::conv::Conv;
use crate::model::{geometry_of, LayerGeometry, Mode};
use crate::ModelConfig;

/// One module of an `nn.Sequential`.
#[derive(Debug)]
enum Op {
    Conv(Conv),
    BatchNorm(BatchNorm),
    Dropout2d,
    Activation(Activation),
}

/// `(c_in, c_out, kernel, stride, padding)` of the five encoder convolutions and the five
/// decoder (transposed) convolutions.
fn convs(cfg: &ModelConfig) -> [(i64, i64, i64, i64, i64); 10] {
    let (l, c) = (cfg.latent_dim, cfg.image_channels);
    let i = 8 * l;
    [
        (c, l, 4, 2, 1),
        (l, 2 * l, 4, 2, 1),
        (2 * l, 4 * l, 3, 1, 0),
        (4 * l, 8 * l, 3, 1, 0),
        (8 * l, 8 * l, 3, 1, 0),
        (i, i / 2, 3, 1, 0),
        (i / 2, i / 4, 3, 1, 0),
        (i / 4, i / 8, 3, 1, 0),
        (i / 8, i / 16, 4, 2, 1),
        (i / 16, c, 4, 2, 1),
    ]
}

/// The ten convolutions of the IGN network (encoder then decoder) with their sizes on
/// 28 x 28 images; `cfg` has passed the field checks ([`crate::layer_geometry`] checks them,
/// the public way to these).
pub(crate) fn ign_layer_geometry(cfg: &ModelConfig) -> [LayerGeometry; 10] {
    geometry_of(convs(cfg))
}

fn batch_norm(p: nn::Path, channels: i64) -> BatchNorm {
    BatchNorm::new(p, channels, BnLayout::Nchw)
}

/// One `nn.Sequential`: its modules in order (the index of each is its variable path).
#[derive(Debug)]
struct Sequential {
    ops: Vec<Op>,
}

impl Sequential {
    fn forward(&self, x: &Tensor, mode: Mode, dropout: f64) -> Tensor {
        let mut h = x.shallow_clone();
        for op in &self.ops {
            h = match op {
                Op::Conv(conv) => conv.forward(&h),
                Op::BatchNorm(bn) => bn.forward(&h, mode.bn),
                // torch.nn.Dropout2d on a 4-d input is feature_dropout: one Bernoulli draw per
                // (sample, channel), kept channels scaled by 1 / (1 - p).
                Op::Dropout2d if mode.dropout && dropout > 0.0 => h.feature_dropout(dropout, true),
                Op::Dropout2d => h,
                Op::Activation(act) => act.forward(&h),
            };
        }
        h
    }
}

/// The IGN network `f(x) -> x'`: encoder under `discriminator.main`, decoder under
/// `generator.main`. Build it through [`crate::CignModel::new`] with
/// `architecture = "ign"`.
#[derive(Debug)]
pub(crate) struct IgnNetwork {
    encoder: Sequential,
    decoder: Sequential,
    dropout: f64,
}

impl IgnNetwork {
    /// Creates the variables under `root` with PyTorch's default initialisation. `cfg` must
    /// have passed [`ModelConfig::validate`] with `architecture = "ign"`.
    pub(crate) fn new(root: &nn::Path, cfg: &ModelConfig) -> Self {
        let geo = ign_layer_geometry(cfg);
        let enc = root.sub("discriminator").sub("main");
        let mut ops = Vec::with_capacity(16);
        for (n, g) in geo[..5].iter().enumerate() {
            if n > 0 && n < 4 {
                ops.push(Op::BatchNorm(batch_norm(
                    enc.sub(ops.len().to_string()),
                    g.c_in,
                )));
            }
            ops.push(Op::Conv(Conv::new(&enc.sub(ops.len().to_string()), g, 0)));
            if n < 4 {
                ops.push(Op::Dropout2d);
                ops.push(Op::Activation(Activation::leaky_relu(root.device())));
            }
        }
        debug_assert_eq!(ops.len(), 16);
        let encoder = Sequential { ops };

        let dec = root.sub("generator").sub("main");
        let mut ops = Vec::with_capacity(18);
        for (n, g) in geo[5..].iter().enumerate() {
            if n < 4 {
                ops.push(Op::BatchNorm(batch_norm(
                    dec.sub(ops.len().to_string()),
                    g.c_in,
                )));
            }
            ops.push(Op::Conv(Conv::new(&dec.sub(ops.len().to_string()), g, 0)));
            if n < 4 {
                ops.push(Op::Dropout2d);
                ops.push(Op::Activation(Activation::Relu));
            } else {
                ops.push(Op::Activation(Activation::Tanh));
            }
        }
        debug_assert_eq!(ops.len(), 18);
        let decoder = Sequential { ops };
        IgnNetwork {
            encoder,
            decoder,
            dropout: cfg.dropout,
        }
    }

    /// The encoder: `[B, C, 28, 28] -> [B, 8L, 1, 1]`.
    pub(crate) fn encode(&self, x: &Tensor, mode: Mode) -> Tensor {
        self.encoder.forward(x, mode, self.dropout)
    }

    /// The decoder: `[B, 8L, 1, 1] -> [B, C, 28, 28]` in [-1, 1].
    pub(crate) fn decode(&self, h: &Tensor, mode: Mode) -> Tensor {
        self.decoder.forward(h, mode, self.dropout)
    }
}
