//! The network `f`: an encoder (the authors' "discriminator") and a decoder ("generator").
//! The CIGN network (arXiv 2406.02841, Sec. 3.2 and the authors' `MNIST/CIGN_channel` and
//! `MNIST/CIGN_filter` modules) is conditioned on the label by extra channels, by per-sample
//! depthwise filters, or not at all (a label-free ablation); [`Architecture::Ign`] selects
//! the unconditional IGN network instead ([`crate::ign`]).
//!
//! Variable names equal the authors' PyTorch state-dict keys, e.g.
//! `discriminator.conv_1.weight`, `discriminator.batch_norm_1.running_mean`,
//! `generator.channel_mixer_5.bias`, `generator.linear_5.bias`, so their weights load without
//! renaming. Initialisation follows PyTorch's defaults for each layer type.

use std::cell::Cell;

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::depthwise::{
    conv_out, conv_transpose_out, depthwise_conv2d, depthwise_conv_transpose2d, DepthwiseImpl,
};
use crate::ign::{ign_layer_geometry, IgnNetwork};
use crate::{Architecture, Conditioning, CoreError, ModelConfig, Precision};

/// Side length of the (square) images.
pub const IMAGE_SIZE: i64 = 28;

/// Geometry of one of the ten convolution layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerGeometry {
    pub c_in: i64,
    pub c_out: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    /// Spatial side of the layer's input (also the side of its channel-conditioning label map).
    pub in_size: i64,
    pub out_size: i64,
    /// Transposed convolution (decoder).
    pub transposed: bool,
}

/// The five encoder layers followed by the five decoder layers of a config: for the CIGN
/// network the kernel sizes, strides and paddings of the authors' modules (`conv_1` to
/// `conv_5` of each half; the filter model's depthwise layers have the same geometry), for
/// the IGN network those of [`crate::ign`].
pub fn layer_geometry(cfg: &ModelConfig) -> [LayerGeometry; 10] {
    if cfg.architecture == Architecture::Ign {
        return ign_layer_geometry(cfg);
    }
    let (l, i, c) = (cfg.latent_dim, cfg.intermediate_dim, cfg.image_channels);
    // (c_in, c_out, k, s, p)
    let enc = [
        (c, l, 4, 2, 1),
        (l, 2 * l, 4, 2, 1),
        (2 * l, 4 * l, 3, 2, 1),
        (4 * l, 8 * l, 4, 2, 1),
        (8 * l, i, 2, 1, 0),
    ];
    let dec = [
        (i, 8 * l, 2, 1, 0),
        (8 * l, 4 * l, 4, 2, 1),
        (4 * l, 2 * l, 3, 2, 1),
        (2 * l, l, 4, 2, 1),
        (l, c, 4, 2, 1),
    ];
    let mut out = [LayerGeometry {
        c_in: 0,
        c_out: 0,
        kernel: 0,
        stride: 0,
        padding: 0,
        in_size: 0,
        out_size: 0,
        transposed: false,
    }; 10];
    let mut size = IMAGE_SIZE;
    for (n, &(ci, co, k, s, p)) in enc.iter().enumerate() {
        let o = conv_out(size, k, s, p);
        out[n] = LayerGeometry {
            c_in: ci,
            c_out: co,
            kernel: k,
            stride: s,
            padding: p,
            in_size: size,
            out_size: o,
            transposed: false,
        };
        size = o;
    }
    for (n, &(ci, co, k, s, p)) in dec.iter().enumerate() {
        let o = conv_transpose_out(size, k, s, p);
        out[5 + n] = LayerGeometry {
            c_in: ci,
            c_out: co,
            kernel: k,
            stride: s,
            padding: p,
            in_size: size,
            out_size: o,
            transposed: true,
        };
        size = o;
    }
    debug_assert_eq!(size, IMAGE_SIZE);
    out
}

/// Negative slope of the encoder's LeakyReLU (the authors' 0.2).
const LEAKY_SLOPE: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    LeakyRelu,
    Sigmoid,
    Relu,
    Tanh,
}

/// `Linear` with PyTorch's default initialisation (weight and bias `U(-1/sqrt(in), 1/sqrt(in))`).
#[derive(Debug)]
struct Linear {
    ws: Tensor,
    bs: Tensor,
}

impl Linear {
    fn new(p: &nn::Path, in_dim: i64, out_dim: i64) -> Self {
        let bound = 1.0 / (in_dim as f64).sqrt();
        let init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Linear {
            ws: p.var("weight", &[out_dim, in_dim], init),
            bs: p.var("bias", &[out_dim], init),
        }
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.ws, Some(&self.bs))
    }
    /// The layer applied over the channels of an NCHW tensor at every pixel.
    fn forward_1x1(&self, x: &Tensor) -> Tensor {
        let (o, i) = (self.ws.size()[0], self.ws.size()[1]);
        x.conv2d(
            &self.ws.view([o, i, 1, 1]),
            Some(&self.bs),
            [1, 1],
            [0, 0],
            [1, 1],
            1,
        )
    }
}

/// Formulation of the filter model's channel mixer (a `Linear(C_in -> C_out)` at every pixel).
/// Both compute the same sums in a different order.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum MixerImpl {
    /// The authors' formulation: `Linear` on an NHWC view, permuted back to NCHW. Its result
    /// has channels-last strides, which makes the following BatchNorm's backward and the next
    /// depthwise layer's input copies slow on the CPU.
    Linear,
    /// A 1x1 convolution with the same weight and bias: contiguous NCHW result (default).
    #[default]
    Conv1x1,
}

/// How the label-dependent tensors are computed: the channel model's label maps
/// (`tanh(Linear(embedding))` as one `H x W` channel per layer) and the filter model's kernels
/// (`tanh(Linear(embedding))` as `C x k x k` per layer). Both formulations compute the same
/// values; sums and gradients differ only in summation order.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum LabelImpl {
    /// The authors' formulation: the label linear runs for every sample; the channel model
    /// concatenates the map to the layer input and convolves `C + 1` channels.
    PerSample,
    /// The label linear runs once per class and the result is gathered by label. The channel
    /// model convolves the `C` image channels with the first `C` input slices of the weight and
    /// adds the per-class convolution of the label map with the last slice (convolution is
    /// linear in its input): no concatenation copy and, on the CPU, no padding of `C + 1`
    /// channels to oneDNN's block size. The filter model's per-sample kernel linear, a skinny
    /// `[B, E] x [E, C k k]` product with a slow weight gradient, becomes a 10-row one (default).
    #[default]
    PerClass,
}

/// Layout in which BatchNorm runs.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum BnLayout {
    /// NCHW, as the authors (default).
    #[default]
    Nchw,
    /// Maps of at most 2x2 pixels (the encoder's last BatchNorms and the decoder's first) are
    /// normalised as rows `[N H W, C]`: the same statistics (over batch and pixels, per
    /// channel), but the CPU kernel vectorises over channels instead of over 1 to 4 pixels
    /// (its backward was 5% of a filter model step). Exact in float64, but in float32 it
    /// lands further from the exact step than the authors' code on an ill-conditioned
    /// fixture (`tests/golden.rs`: 24.6 times the authors' own float32 error scale on
    /// `channel_L8_I16_E5_seed1`, every other formulation at most 3.5 times), so it is not
    /// the default.
    RowsForSmallMaps,
}

/// The formulations a model runs with. All are exact: they compute the same function and
/// gradients and differ only in floating-point summation order and in speed.
/// [`Formulation::AUTHORS`] reproduces the authors' code bit for bit; the default is the
/// fastest measured on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Formulation {
    /// Per-sample depthwise convolution of the filter model.
    pub depthwise: DepthwiseImpl,
    /// Channel mixer of the filter model.
    pub mixer: MixerImpl,
    /// Label maps and kernels.
    pub label: LabelImpl,
    /// BatchNorm layout.
    pub bn: BnLayout,
}

impl Formulation {
    /// The authors' formulation.
    pub const AUTHORS: Formulation = Formulation {
        depthwise: DepthwiseImpl::Grouped,
        mixer: MixerImpl::Linear,
        label: LabelImpl::PerSample,
        bn: BnLayout::Nchw,
    };

    /// The fastest measured formulation for a device.
    pub fn default_for(device: tch::Device) -> Formulation {
        Formulation {
            depthwise: DepthwiseImpl::default_for(device),
            mixer: MixerImpl::default(),
            label: LabelImpl::default(),
            bn: BnLayout::default(),
        }
    }
}

/// How BatchNorm normalises in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Running statistics (PyTorch eval mode).
    Eval,
    /// Batch statistics, running statistics updated (PyTorch training mode).
    Train,
    /// Batch statistics, running statistics left untouched.
    BatchStats,
}

/// The mode of one pass of `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub bn: BnMode,
    /// Apply dropout (with the config's probability).
    pub dropout: bool,
}

impl Mode {
    /// PyTorch's training mode: batch statistics (running statistics updated) and dropout.
    pub const TRAIN: Mode = Mode {
        bn: BnMode::Train,
        dropout: true,
    };
    /// PyTorch's eval mode: running statistics, no dropout.
    pub const EVAL: Mode = Mode {
        bn: BnMode::Eval,
        dropout: false,
    };
    /// Batch statistics without dropout and without touching the running statistics (the
    /// generation API's training-mode option).
    pub const BATCH_STATS: Mode = Mode {
        bn: BnMode::BatchStats,
        dropout: false,
    };

    /// `TRAIN` or `EVAL`.
    pub fn from_train(train: bool) -> Mode {
        if train {
            Mode::TRAIN
        } else {
            Mode::EVAL
        }
    }

    fn generation(train: bool) -> Mode {
        if train {
            Mode::BATCH_STATS
        } else {
            Mode::EVAL
        }
    }
}

#[derive(Debug)]
enum LayerOp {
    /// Plain (transposed) convolution over the input, optionally concatenated with a label map.
    Conv {
        weight: Tensor,
        label_linear: Option<Linear>,
    },
    /// Per-sample depthwise (transposed) convolution with label-generated kernels, then a
    /// per-pixel `Linear(c_in -> c_out)`.
    Filter { label_linear: Linear, mixer: Linear },
}

#[derive(Debug)]
struct Layer {
    geo: LayerGeometry,
    bn: Option<nn::BatchNorm>,
    op: LayerOp,
    dropout: bool,
    act: Activation,
}

/// One half of the network (encoder or decoder).
#[derive(Debug)]
struct Half {
    embedder: Option<Tensor>,
    layers: Vec<Layer>,
}

/// BatchNorm of a 4-d input in `mode`: running statistics updated (train), used (eval), or
/// the batch's own statistics without touching them (`BatchStats`, the frozen copy's passes).
pub(crate) fn batch_norm_2d(bn: &nn::BatchNorm, h: &Tensor, mode: BnMode) -> Tensor {
    match mode {
        BnMode::Train => bn.forward_t(h, true),
        BnMode::Eval => bn.forward_t(h, false),
        BnMode::BatchStats => Tensor::batch_norm(
            h,
            bn.ws.as_ref(),
            bn.bs.as_ref(),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            BN_MOMENTUM,
            BN_EPS,
            true,
        ),
    }
}

/// BatchNorm's momentum and epsilon: PyTorch's `BatchNorm2d` defaults, which both the authors'
/// modules and the IGN code use.
pub(crate) const BN_MOMENTUM: f64 = 0.1;
/// See [`BN_MOMENTUM`].
pub(crate) const BN_EPS: f64 = 1e-5;

/// The BatchNorm layers of every network: PyTorch's `BatchNorm2d` defaults (weight 1, bias 0).
pub(crate) fn bn_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        cudnn_enabled: true,
        eps: BN_EPS,
        momentum: BN_MOMENTUM,
        affine: true,
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
    }
}

impl Half {
    fn new(p: &nn::Path, cfg: &ModelConfig, geos: &[LayerGeometry], decoder: bool) -> Self {
        let cond = cfg.conditioning;
        let embedder = cond.is_conditional().then(|| {
            p.sub("label_embedder").var(
                "weight",
                &[cfg.num_classes, cfg.embedding_dim],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            )
        });
        let mut layers = Vec::with_capacity(5);
        for (n, g) in geos.iter().enumerate() {
            let idx = n + 1;
            // Encoder: batch_norm_k sits before layer k+1; decoder: batch_norm_k before layer k.
            let bn = if decoder {
                Some(nn::batch_norm2d(
                    p.sub(format!("batch_norm_{idx}")),
                    g.c_in,
                    bn_config(),
                ))
            } else if n > 0 {
                Some(nn::batch_norm2d(
                    p.sub(format!("batch_norm_{n}")),
                    g.c_in,
                    bn_config(),
                ))
            } else {
                None
            };
            let kk = g.kernel * g.kernel;
            let op = match cond {
                Conditioning::Channel | Conditioning::None => {
                    let extra = i64::from(cond == Conditioning::Channel);
                    let cin = g.c_in + extra;
                    // PyTorch: kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), ..), fan_in = size(1) * k * k.
                    let (dims, fan_in) = if g.transposed {
                        ([cin, g.c_out, g.kernel, g.kernel], g.c_out * kk)
                    } else {
                        ([g.c_out, cin, g.kernel, g.kernel], cin * kk)
                    };
                    let bound = 1.0 / (fan_in as f64).sqrt();
                    let weight = p.sub(format!("conv_{idx}")).var(
                        "weight",
                        &dims,
                        nn::Init::Uniform {
                            lo: -bound,
                            up: bound,
                        },
                    );
                    let label_linear = (cond == Conditioning::Channel).then(|| {
                        Linear::new(
                            &p.sub(format!("linear_{idx}")),
                            cfg.embedding_dim,
                            g.in_size * g.in_size,
                        )
                    });
                    LayerOp::Conv {
                        weight,
                        label_linear,
                    }
                }
                Conditioning::Filter => LayerOp::Filter {
                    label_linear: Linear::new(
                        &p.sub(format!("linear_{idx}")),
                        cfg.embedding_dim,
                        g.c_in * kk,
                    ),
                    mixer: Linear::new(&p.sub(format!("channel_mixer_{idx}")), g.c_in, g.c_out),
                },
            };
            let last = n == geos.len() - 1;
            let act = match (decoder, last) {
                (false, false) => Activation::LeakyRelu,
                (false, true) => Activation::Sigmoid,
                (true, false) => Activation::Relu,
                (true, true) => Activation::Tanh,
            };
            // The authors' decoder has no dropout after its last layer; the encoder has one after each.
            let dropout = !(decoder && last);
            layers.push(Layer {
                geo: *g,
                bn,
                op,
                dropout,
                act,
            });
        }
        Half { embedder, layers }
    }

    fn forward(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        mode: Mode,
        dropout: f64,
        form: Formulation,
        slope: &Tensor,
    ) -> Tensor {
        let (dw, mixer_impl) = (form.depthwise, form.mixer);
        let emb = match (&self.embedder, labels) {
            (Some(w), Some(l)) => Some(Tensor::embedding(w, l, -1, false, false)),
            (Some(_), None) => panic!("this conditional model needs labels"),
            (None, _) => None,
        };
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            let g = &layer.geo;
            if let Some(bn) = &layer.bn {
                let size = h.size();
                let rows = form.bn == BnLayout::RowsForSmallMaps && size[2] * size[3] <= 4;
                let (n, c, hh, ww) = (size[0], size[1], size[2], size[3]);
                if rows {
                    h = h.permute([0, 2, 3, 1]).reshape([n * hh * ww, c]);
                }
                h = match mode.bn {
                    // tch's module insists on 4-d input: rows go to the functional form (the
                    // module's own settings: momentum 0.1, eps 1e-5).
                    BnMode::Train | BnMode::Eval if rows => Tensor::batch_norm(
                        &h,
                        bn.ws.as_ref(),
                        bn.bs.as_ref(),
                        Some(&bn.running_mean),
                        Some(&bn.running_var),
                        mode.bn == BnMode::Train,
                        BN_MOMENTUM,
                        BN_EPS,
                        true,
                    ),
                    _ => batch_norm_2d(bn, &h, mode.bn),
                };
                if rows {
                    h = h.view([n, hh, ww, c]).permute([0, 3, 1, 2]).contiguous();
                }
            }
            h = match &layer.op {
                LayerOp::Conv {
                    weight,
                    label_linear,
                } => {
                    let (s, p) = ([g.stride, g.stride], [g.padding, g.padding]);
                    let conv = |inp: &Tensor, w: &Tensor| {
                        if g.transposed {
                            inp.conv_transpose2d(w, None::<Tensor>, s, p, [0, 0], 1, [1, 1])
                        } else {
                            inp.conv2d(w, None::<Tensor>, s, p, [1, 1], 1)
                        }
                    };
                    match (label_linear, form.label) {
                        (None, _) => conv(&h, weight),
                        (Some(lin), LabelImpl::PerSample) => {
                            let emb = emb.as_ref().expect("labels");
                            let map = lin.forward(emb).view([-1, 1, g.in_size, g.in_size]).tanh();
                            conv(&Tensor::cat(&[&h, &map], 1), weight)
                        }
                        (Some(lin), LabelImpl::PerClass) => {
                            let (table, labels) = (
                                self.embedder.as_ref().expect("labels"),
                                labels.expect("labels"),
                            );
                            // The input-channel axis of the weight: 1 for a convolution
                            // ([out, in, k, k]), 0 for a transposed one ([in, out, k, k]).
                            let axis = if g.transposed { 0 } else { 1 };
                            let maps = lin
                                .forward(table)
                                .view([-1, 1, g.in_size, g.in_size])
                                .tanh();
                            let per_class = conv(&maps, &weight.narrow(axis, g.c_in, 1));
                            conv(&h, &weight.narrow(axis, 0, g.c_in))
                                + per_class.index_select(0, labels)
                        }
                    }
                }
                LayerOp::Filter {
                    label_linear,
                    mixer,
                } => {
                    let kernel = match form.label {
                        LabelImpl::PerSample => label_linear
                            .forward(emb.as_ref().expect("labels"))
                            .view([-1, g.c_in, g.kernel, g.kernel])
                            .tanh(),
                        LabelImpl::PerClass => label_linear
                            .forward(self.embedder.as_ref().expect("labels"))
                            .view([-1, g.c_in, g.kernel, g.kernel])
                            .tanh()
                            .index_select(0, labels.expect("labels")),
                    };
                    let depthwise = |h: &Tensor, kernel: &Tensor| {
                        if g.transposed {
                            depthwise_conv_transpose2d(h, kernel, g.stride, g.padding, dw)
                        } else {
                            depthwise_conv2d(h, kernel, g.stride, g.padding, dw)
                        }
                    };
                    let d = if crate::precision::autocast_enabled(h.device()) {
                        // bfloat16 (crate::precision): the per-sample depthwise convolution
                        // runs in float32. It is no matrix product (k x k multiply-adds per
                        // output, memory-bound), and libtorch 2.11's grouped transposed
                        // convolution in bfloat16 is 10 to 30 times slower than in float32 on
                        // the CPU (results/performance.md).
                        crate::precision::autocast(Precision::Fp32, h.device(), || {
                            depthwise(&h.to_kind(Kind::Float), &kernel.to_kind(Kind::Float))
                        })
                    } else {
                        depthwise(&h, &kernel)
                    };
                    // Linear over channels at every pixel, as a 1x1 convolution: the same sums
                    // as the authors' Linear on an NHWC view, but the result stays contiguous
                    // NCHW, so BatchNorm and the next depthwise layer need no layout copies
                    // (their layout made BatchNorm's backward 20% of the step).
                    match mixer_impl {
                        MixerImpl::Conv1x1 => mixer.forward_1x1(&d),
                        MixerImpl::Linear => mixer
                            .forward(&d.permute([0, 2, 3, 1]))
                            .permute([0, 3, 1, 2]),
                    }
                }
            };
            let drop = layer.dropout && mode.dropout && dropout > 0.0;
            if drop && h.device() == Device::Cpu && h.kind() == Kind::BFloat16 {
                // bfloat16 (crate::precision): cign's CPU dropout works on float32, so dropout
                // and the activation run in float32 as in the float32 path (the same draws
                // from torch's generator); the next convolution casts back.
                h = h.to_kind(Kind::Float);
            }
            let fused_slope = match layer.act {
                Activation::LeakyRelu => Some(LEAKY_SLOPE),
                Activation::Relu => Some(0.0),
                _ => None,
            };
            if let (true, Some(slope), Device::Cpu, Kind::Float) =
                (drop, fused_slope, h.device(), h.kind())
            {
                // One multiplication instead of dropout, then the activation (same value and
                // gradient; see crate::dropout).
                h = crate::dropout::dropout_then_leaky_relu(&h, dropout, slope);
                continue;
            }
            if drop {
                h = crate::dropout::dropout(&h, dropout);
            }
            h = match layer.act {
                // to_kind is a no-op unless the model was converted to another float kind
                Activation::LeakyRelu => h.prelu(&slope.to_kind(h.kind())),
                Activation::Sigmoid => h.sigmoid(),
                Activation::Relu => h.relu(),
                Activation::Tanh => h.tanh(),
            };
        }
        h
    }
}

/// The layers of one architecture.
#[derive(Debug)]
enum Net {
    Cign { encoder: Half, decoder: Half },
    Ign(IgnNetwork),
}

/// The network `f(x, c) -> x'` (encoder under the path `discriminator`, decoder under
/// `generator`): the CIGN network or, with [`Architecture::Ign`], the IGN network.
#[derive(Debug)]
pub struct CignModel {
    cfg: ModelConfig,
    net: Net,
    /// Negative slope of LeakyReLU (0.2) as a one-element tensor (used through `prelu`, whose
    /// value and gradient equal `leaky_relu`'s).
    slope: Tensor,
    form: Cell<Formulation>,
    precision: Cell<Precision>,
}

impl CignModel {
    /// Creates the variables of `f` under `root` (usually `vs.root()`), initialised like
    /// PyTorch's default initialisation.
    ///
    /// # Errors
    ///
    /// [`CoreError::Config`] when `cfg` fails [`ModelConfig::validate`].
    pub fn new(root: &nn::Path, cfg: &ModelConfig) -> Result<Self, CoreError> {
        cfg.validate()?;
        let net = match cfg.architecture {
            Architecture::Cign => {
                let geos = layer_geometry(cfg);
                Net::Cign {
                    encoder: Half::new(&root.sub("discriminator"), cfg, &geos[..5], false),
                    decoder: Half::new(&root.sub("generator"), cfg, &geos[5..], true),
                }
            }
            Architecture::Ign => Net::Ign(IgnNetwork::new(root, cfg)),
        };
        let slope = Tensor::from_slice(&[LEAKY_SLOPE as f32]).to_device(root.device());
        Ok(CignModel {
            cfg: cfg.clone(),
            net,
            slope,
            form: Cell::new(Formulation::default_for(root.device())),
            precision: Cell::new(Precision::Fp32),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The formulation the model runs with.
    pub fn formulation(&self) -> Formulation {
        self.form.get()
    }

    /// Chooses the formulation (all compute the same function; they differ in summation order
    /// and speed). [`Formulation::AUTHORS`] reproduces the authors' code bit for bit. The IGN
    /// network has one formulation and ignores this.
    pub fn set_formulation(&self, form: Formulation) {
        self.form.set(form);
    }

    /// The precision the model's passes run in ([`Precision::Fp32`] unless set).
    pub fn precision(&self) -> Precision {
        self.precision.get()
    }

    /// Chooses the precision of the model's passes ([`crate::precision`]): with
    /// [`Precision::Bf16`] every pass runs inside libtorch's bfloat16 autocast (convolutions,
    /// transposed convolutions and linears in bfloat16) and returns float32. The variables stay
    /// float32, so weights and checkpoints are the same in both precisions. An [`Objective`]
    /// runs its frozen copy in the model's precision.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidConfig`] when [`Precision::check_device`] fails for the model's
    /// device (bfloat16 on a device other than the CPU or CUDA); the precision is unchanged.
    ///
    /// [`Objective`]: crate::Objective
    pub fn set_precision(&self, precision: Precision) -> Result<(), CoreError> {
        precision.check_device(self.slope.device())?;
        self.precision.set(precision);
        Ok(())
    }

    /// Runs `f` (a pass on `device`) in the model's precision; a bfloat16 result is returned
    /// as float32.
    fn in_precision(&self, device: Device, f: impl FnOnce() -> Tensor) -> Tensor {
        match self.precision.get() {
            // as before precision existed (plus switching off an enclosing bfloat16 scope)
            Precision::Fp32 => crate::precision::autocast(Precision::Fp32, device, f),
            Precision::Bf16 => {
                let out = crate::precision::autocast(Precision::Bf16, device, f);
                if out.kind() == Kind::BFloat16 {
                    out.to_kind(Kind::Float)
                } else {
                    out
                }
            }
        }
    }

    /// The per-sample depthwise formulation used by the filter model.
    pub fn depthwise_impl(&self) -> DepthwiseImpl {
        self.form.get().depthwise
    }

    /// Chooses the per-sample depthwise formulation (both are exact; they differ in speed).
    pub fn set_depthwise_impl(&self, imp: DepthwiseImpl) {
        self.form.set(Formulation {
            depthwise: imp,
            ..self.form.get()
        })
    }

    fn labels<'a>(&self, labels: Option<&'a Tensor>) -> Option<&'a Tensor> {
        if self.cfg.conditioning.is_conditional() {
            Some(labels.expect("a conditional CIGN model needs labels"))
        } else {
            None
        }
    }

    /// One pass of `f`. `x`: `[B, C, 28, 28]` in [-1, 1]; `labels`: Int64 `[B]` in
    /// `0..num_classes` (ignored, and may be `None`, for [`Conditioning::None`]). `train` is
    /// PyTorch's training mode: batch statistics (the BatchNorm running statistics are
    /// updated) and dropout; otherwise eval mode. Returns `[B, C, 28, 28]` in [-1, 1].
    ///
    /// # Panics
    ///
    /// A conditional model given no labels; shapes other than the above (libtorch's error).
    pub fn forward_t(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        self.forward_mode(x, labels, Mode::from_train(train))
    }

    /// One pass of `f` in an explicit [`Mode`], in the model's [`Precision`]. The result is
    /// float32 for a float32 input in either precision.
    pub fn forward_mode(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        self.in_precision(x.device(), || {
            let h = self.encode_raw(x, labels, mode);
            self.decode_raw(&h, labels, mode)
        })
    }

    /// The encoder alone: `[B, C, 28, 28] -> [B, I, 1, 1]` (float32 in either precision).
    pub fn encode_mode(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        self.in_precision(x.device(), || self.encode_raw(x, labels, mode))
    }

    /// The decoder alone: `[B, I, 1, 1] -> [B, C, 28, 28]` (float32 in either precision).
    pub fn decode_mode(&self, h: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        self.in_precision(h.device(), || self.decode_raw(h, labels, mode))
    }

    fn encode_raw(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        let labels = self.labels(labels);
        match &self.net {
            Net::Cign { encoder, .. } => encoder.forward(
                x,
                labels,
                mode,
                self.cfg.dropout,
                self.form.get(),
                &self.slope,
            ),
            Net::Ign(net) => net.encode(x, mode),
        }
    }

    fn decode_raw(&self, h: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        let labels = self.labels(labels);
        match &self.net {
            Net::Cign { decoder, .. } => decoder.forward(
                h,
                labels,
                mode,
                self.cfg.dropout,
                self.form.get(),
                &self.slope,
            ),
            Net::Ign(net) => net.decode(h, mode),
        }
    }

    /// Generation: `f(z, labels)` in eval mode without gradients (one call, as in the paper).
    pub fn generate(&self, z: &Tensor, labels: Option<&Tensor>) -> Tensor {
        self.generate_t(z, labels, false)
    }

    /// Generation with the mode as an option: `train = false` is eval mode (running
    /// statistics); `train = true` normalises with the batch's own statistics (no dropout, and
    /// the running statistics are not modified). No gradients.
    pub fn generate_t(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        tch::no_grad(|| self.forward_mode(z, labels, Mode::generation(train)))
    }

    /// `f` applied `k` times (`k = 0` returns a copy of `x`), without gradients; `train` as in
    /// [`CignModel::generate_t`].
    pub fn reapply(&self, x: &Tensor, labels: Option<&Tensor>, k: usize, train: bool) -> Tensor {
        tch::no_grad(|| {
            let mut h = x.copy();
            for _ in 0..k {
                h = self.forward_mode(&h, labels, Mode::generation(train));
            }
            h
        })
    }

    /// Projection of a given image under a label onto the model's fixed points: one eval-mode
    /// pass without gradients (use [`CignModel::reapply`] for more passes).
    pub fn project(&self, x: &Tensor, labels: Option<&Tensor>) -> Tensor {
        self.generate(x, labels)
    }
}

/// Number of trainable scalars in a var store (BatchNorm running statistics excluded).
pub fn trainable_parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Samples `n` noise images `N(0, I)` of shape `[n, C, 28, 28]`.
pub fn sample_noise(n: i64, cfg: &ModelConfig, device: tch::Device) -> Tensor {
    Tensor::randn(
        [n, cfg.image_channels, IMAGE_SIZE, IMAGE_SIZE],
        (Kind::Float, device),
    )
}
