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

use crate::depthwise::{conv_out, conv_transpose_out};
use crate::model::{batch_norm_2d, bn_config, LayerGeometry, Mode, IMAGE_SIZE};
use crate::ModelConfig;

/// Negative slope of the encoder's LeakyReLU.
const LEAKY_SLOPE: f64 = 0.2;

/// One module of an `nn.Sequential`.
#[derive(Debug)]
enum Op {
    Conv { weight: Tensor, geo: LayerGeometry },
    BatchNorm(nn::BatchNorm),
    Dropout2d,
    LeakyRelu,
    Relu,
    Tanh,
}

/// `(c_in, c_out, kernel, stride, padding)` of the five encoder convolutions.
fn encoder_convs(cfg: &ModelConfig) -> [(i64, i64, i64, i64, i64); 5] {
    let (l, c) = (cfg.latent_dim, cfg.image_channels);
    [
        (c, l, 4, 2, 1),
        (l, 2 * l, 4, 2, 1),
        (2 * l, 4 * l, 3, 1, 0),
        (4 * l, 8 * l, 3, 1, 0),
        (8 * l, 8 * l, 3, 1, 0),
    ]
}

/// `(c_in, c_out, kernel, stride, padding)` of the five decoder (transposed) convolutions.
fn decoder_convs(cfg: &ModelConfig) -> [(i64, i64, i64, i64, i64); 5] {
    let (i, c) = (8 * cfg.latent_dim, cfg.image_channels);
    [
        (i, i / 2, 3, 1, 0),
        (i / 2, i / 4, 3, 1, 0),
        (i / 4, i / 8, 3, 1, 0),
        (i / 8, i / 16, 4, 2, 1),
        (i / 16, c, 4, 2, 1),
    ]
}

/// The ten convolutions of the IGN network (encoder then decoder) with their sizes on
/// 28 x 28 images.
pub fn ign_layer_geometry(cfg: &ModelConfig) -> [LayerGeometry; 10] {
    let mut out = Vec::with_capacity(10);
    let mut size = IMAGE_SIZE;
    for (transposed, convs) in [(false, encoder_convs(cfg)), (true, decoder_convs(cfg))] {
        for (c_in, c_out, kernel, stride, padding) in convs {
            let out_size = if transposed {
                conv_transpose_out(size, kernel, stride, padding)
            } else {
                conv_out(size, kernel, stride, padding)
            };
            out.push(LayerGeometry {
                c_in,
                c_out,
                kernel,
                stride,
                padding,
                in_size: size,
                out_size,
                transposed,
            });
            size = out_size;
        }
    }
    debug_assert_eq!(size, IMAGE_SIZE);
    out.try_into().expect("ten layers")
}

/// A convolution weight with PyTorch's default initialisation.
fn conv_weight(p: &nn::Path, g: &LayerGeometry) -> Tensor {
    let kk = g.kernel * g.kernel;
    // PyTorch: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    // fan_in = weight.size(1) * k * k; a transposed convolution's weight is [in, out, k, k].
    let (dims, fan_in) = if g.transposed {
        ([g.c_in, g.c_out, g.kernel, g.kernel], g.c_out * kk)
    } else {
        ([g.c_out, g.c_in, g.kernel, g.kernel], g.c_in * kk)
    };
    let bound = 1.0 / (fan_in as f64).sqrt();
    p.var(
        "weight",
        &dims,
        nn::Init::Uniform {
            lo: -bound,
            up: bound,
        },
    )
}

fn batch_norm(p: &nn::Path, channels: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, channels, bn_config())
}

/// One `nn.Sequential`: its modules in order (the index of each is its variable path).
#[derive(Debug)]
struct Sequential {
    ops: Vec<Op>,
}

impl Sequential {
    fn forward(&self, x: &Tensor, mode: Mode, dropout: f64, slope: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for op in &self.ops {
            h = match op {
                Op::Conv { weight, geo } => {
                    let (s, p) = ([geo.stride, geo.stride], [geo.padding, geo.padding]);
                    if geo.transposed {
                        h.conv_transpose2d(weight, None::<Tensor>, s, p, [0, 0], 1, [1, 1])
                    } else {
                        h.conv2d(weight, None::<Tensor>, s, p, [1, 1], 1)
                    }
                }
                Op::BatchNorm(bn) => batch_norm_2d(bn, &h, mode.bn),
                // torch.nn.Dropout2d on a 4-d input is feature_dropout: one Bernoulli draw per
                // (sample, channel), kept channels scaled by 1 / (1 - p).
                Op::Dropout2d if mode.dropout && dropout > 0.0 => h.feature_dropout(dropout, true),
                Op::Dropout2d => h,
                // to_kind is a no-op unless the model was converted to another float kind
                Op::LeakyRelu => h.prelu(&slope.to_kind(h.kind())),
                Op::Relu => h.relu(),
                Op::Tanh => h.tanh(),
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
    /// LeakyReLU's slope as a one-element tensor (`prelu` has `leaky_relu`'s value and
    /// gradient).
    slope: Tensor,
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
                    &enc.sub(ops.len().to_string()),
                    g.c_in,
                )));
            }
            let weight = conv_weight(&enc.sub(ops.len().to_string()), g);
            ops.push(Op::Conv { weight, geo: *g });
            if n < 4 {
                ops.push(Op::Dropout2d);
                ops.push(Op::LeakyRelu);
            }
        }
        debug_assert_eq!(ops.len(), 16);
        let encoder = Sequential { ops };

        let dec = root.sub("generator").sub("main");
        let mut ops = Vec::with_capacity(18);
        for (n, g) in geo[5..].iter().enumerate() {
            if n < 4 {
                ops.push(Op::BatchNorm(batch_norm(
                    &dec.sub(ops.len().to_string()),
                    g.c_in,
                )));
            }
            let weight = conv_weight(&dec.sub(ops.len().to_string()), g);
            ops.push(Op::Conv { weight, geo: *g });
            if n < 4 {
                ops.push(Op::Dropout2d);
                ops.push(Op::Relu);
            } else {
                ops.push(Op::Tanh);
            }
        }
        debug_assert_eq!(ops.len(), 18);
        let decoder = Sequential { ops };
        IgnNetwork {
            encoder,
            decoder,
            dropout: cfg.dropout,
            slope: Tensor::from_slice(&[LEAKY_SLOPE as f32]).to_device(root.device()),
        }
    }

    /// The encoder: `[B, C, 28, 28] -> [B, 8L, 1, 1]`.
    pub(crate) fn encode(&self, x: &Tensor, mode: Mode) -> Tensor {
        self.encoder.forward(x, mode, self.dropout, &self.slope)
    }

    /// The decoder: `[B, 8L, 1, 1] -> [B, C, 28, 28]` in [-1, 1].
    pub(crate) fn decode(&self, h: &Tensor, mode: Mode) -> Tensor {
        self.decoder.forward(h, mode, self.dropout, &self.slope)
    }
}
