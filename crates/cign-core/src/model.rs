//! The network `f(x, y)`: an encoder (the authors' "discriminator") and a decoder
//! ("generator"), each with its own label embedding `Embedding(num_classes, E)` (arXiv
//! 2406.02841, Sec. 3.2; the authors' `MNIST/CIGN_channel` and `MNIST/CIGN_filter` modules,
//! niccronc/conditional-idempotent-generative-networks). With `L = latent_dim`,
//! `I = intermediate_dim`, `C = image_channels` and 28 x 28 images, layer `k` of a half is
//! `BN -> conditioned (transposed) convolution -> dropout -> activation`:
//!
//! | layer | BN | convolution (no bias) | then | output |
//! |---|---|---|---|---|
//! | encoder 1 | | Conv(C -> L, k4 s2 p1) | Dropout, LeakyReLU(0.2) | L x 14 x 14 |
//! | encoder 2 | BN(L) | Conv(L -> 2L, k4 s2 p1) | Dropout, LeakyReLU(0.2) | 2L x 7 x 7 |
//! | encoder 3 | BN(2L) | Conv(2L -> 4L, k3 s2 p1) | Dropout, LeakyReLU(0.2) | 4L x 4 x 4 |
//! | encoder 4 | BN(4L) | Conv(4L -> 8L, k4 s2 p1) | Dropout, LeakyReLU(0.2) | 8L x 2 x 2 |
//! | encoder 5 | BN(8L) | Conv(8L -> I, k2 s1 p0) | Dropout, Sigmoid | I x 1 x 1 |
//! | decoder 1 | BN(I) | ConvT(I -> 8L, k2 s1 p0) | Dropout, ReLU | 8L x 2 x 2 |
//! | decoder 2 | BN(8L) | ConvT(8L -> 4L, k4 s2 p1) | Dropout, ReLU | 4L x 4 x 4 |
//! | decoder 3 | BN(4L) | ConvT(4L -> 2L, k3 s2 p1) | Dropout, ReLU | 2L x 7 x 7 |
//! | decoder 4 | BN(2L) | ConvT(2L -> L, k4 s2 p1) | Dropout, ReLU | L x 14 x 14 |
//! | decoder 5 | BN(L) | ConvT(L -> C, k4 s2 p1) | Tanh | C x 28 x 28 |
//!
//! BatchNorm has PyTorch's defaults; dropout is element-wise with probability
//! [`ModelConfig::dropout`] (0.15). The label enters every convolution as [`Conditioning`]
//! says: as one more input channel, as per-sample depthwise kernels followed by a channel
//! mixer, or not at all (a label-free ablation). [`Architecture::Ign`] selects the
//! unconditional IGN network instead ([`crate::ign`]).
//!
//! One file per layer kind under `model/`: `conv.rs`, `linear.rs`, `batch_norm.rs`,
//! `activation.rs` (with dropout), `label.rs` (the label embedding), `channel.rs` and
//! `filter.rs` (the two conditionings), `mixer.rs` (the filter model's channel mixer). Their
//! exact speed variants ([`Formulation`]: label maps per class, the mixer as a 1x1
//! convolution, BatchNorm of small maps as rows) are chosen when the model is built
//! ([`CignModel::with_formulation`]).
//!
//! Variable names equal the authors' PyTorch state-dict keys, e.g.
//! `discriminator.conv_1.weight`, `discriminator.batch_norm_1.running_mean`,
//! `generator.channel_mixer_5.bias`, `generator.linear_5.bias`, so their weights load without
//! renaming. Initialisation follows PyTorch's defaults for each layer type.

pub(crate) mod activation;
pub(crate) mod batch_norm;
mod channel;
pub(crate) mod conv;
mod filter;
mod formulation;
mod label;
mod linear;
mod mixer;
mod mode;

use tch::{nn, Device, Kind, Tensor};

use crate::ign::{ign_layer_geometry, IgnNetwork};
use crate::{Architecture, Conditioning, CoreError, ModelConfig, Precision};
use activation::Activation;
use batch_norm::BatchNorm;
use channel::ChannelConv;
use conv::{conv_out, conv_transpose_out, Conv};
use filter::FilterConv;
use label::{Embedder, Labels};

pub use batch_norm::BnLayout;
pub use formulation::Formulation;
pub use label::LabelImpl;
pub use mixer::MixerImpl;
pub use mode::{BnMode, Mode};

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
/// network those of the table above (the filter model's depthwise layers have the same
/// geometry), for the IGN network those of [`crate::ign`].
///
/// # Panics
///
/// `cfg` with a size above [`crate::config::MAX_MODEL_SIZE`] or below its minimum, or otherwise
/// failing the field checks of [`ModelConfig::validate`] (its widths could overflow): pass a
/// validated config.
pub fn layer_geometry(cfg: &ModelConfig) -> [LayerGeometry; 10] {
    if let Err(e) = cfg.validate_fields() {
        panic!("layer_geometry needs a validated config: {e}");
    }
    if cfg.architecture == Architecture::Ign {
        return ign_layer_geometry(cfg);
    }
    let (l, i, c) = (cfg.latent_dim, cfg.intermediate_dim, cfg.image_channels);
    // (c_in, c_out, kernel, stride, padding); the last five are transposed
    let layers = [
        (c, l, 4, 2, 1),
        (l, 2 * l, 4, 2, 1),
        (2 * l, 4 * l, 3, 2, 1),
        (4 * l, 8 * l, 4, 2, 1),
        (8 * l, i, 2, 1, 0),
        (i, 8 * l, 2, 1, 0),
        (8 * l, 4 * l, 4, 2, 1),
        (4 * l, 2 * l, 3, 2, 1),
        (2 * l, l, 4, 2, 1),
        (l, c, 4, 2, 1),
    ];
    geometry_of(layers)
}

/// The geometry of ten layers given as `(c_in, c_out, kernel, stride, padding)`, five
/// convolutions then five transposed convolutions, on 28 x 28 images.
pub(crate) fn geometry_of(layers: [(i64, i64, i64, i64, i64); 10]) -> [LayerGeometry; 10] {
    let (mut n, mut size) = (0, IMAGE_SIZE);
    let out = layers.map(|(c_in, c_out, kernel, stride, padding)| {
        let transposed = n >= 5;
        let out_size = if transposed {
            conv_transpose_out(size, kernel, stride, padding)
        } else {
            conv_out(size, kernel, stride, padding)
        };
        let g = LayerGeometry {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            in_size: size,
            out_size,
            transposed,
        };
        (n, size) = (n + 1, out_size);
        g
    });
    debug_assert_eq!(size, IMAGE_SIZE);
    out
}

/// The (transposed) convolution of a layer with the label entering as [`Conditioning`] says.
#[derive(Debug)]
enum ConditionedConv {
    /// No label input (the label-free ablation): `conv_k`.
    Plain(Conv),
    /// `conv_k` over the input and a label map from `linear_k` ([`channel`]).
    Channel(ChannelConv),
    /// Depthwise kernels from `linear_k`, then `channel_mixer_k` ([`filter`]).
    Filter(FilterConv),
}

impl ConditionedConv {
    /// Creates the variables of layer `idx` (1 to 5) under `p` (the half's path).
    fn new(
        p: &nn::Path,
        idx: usize,
        g: &LayerGeometry,
        cfg: &ModelConfig,
        form: Formulation,
    ) -> Self {
        let e = cfg.embedding_dim;
        match cfg.conditioning {
            Conditioning::None => Self::Plain(Conv::new(&p.sub(format!("conv_{idx}")), g, 0)),
            Conditioning::Channel => Self::Channel(ChannelConv::new(p, idx, g, e)),
            Conditioning::Filter => Self::Filter(FilterConv::new(p, idx, g, e, form.mixer)),
        }
    }

    fn forward(&self, h: &Tensor, labels: &Labels) -> Tensor {
        match self {
            Self::Plain(conv) => conv.forward(h),
            Self::Channel(conv) => conv.forward(h, labels),
            Self::Filter(conv) => conv.forward(h, labels),
        }
    }
}

/// One row of the table: BatchNorm (all but the encoder's first layer), the conditioned
/// (transposed) convolution, dropout (all but the decoder's last layer), the activation.
#[derive(Debug)]
struct Layer {
    bn: Option<BatchNorm>,
    conv: ConditionedConv,
    dropout: bool,
    act: Activation,
}

/// One half of the network (encoder or decoder).
#[derive(Debug)]
struct Half {
    embedder: Option<Embedder>,
    layers: Vec<Layer>,
}

impl Half {
    /// The five layers of `geos` under `p` (`discriminator` or `generator`).
    fn new(
        p: &nn::Path,
        cfg: &ModelConfig,
        geos: &[LayerGeometry],
        decoder: bool,
        form: Formulation,
    ) -> Self {
        let embedder = cfg.conditioning.is_conditional().then(|| {
            let p = p.sub("label_embedder");
            Embedder::new(&p, cfg.num_classes, cfg.embedding_dim, form.label)
        });
        let layers = (1..=geos.len())
            .zip(geos)
            .map(|(idx, g)| {
                let last = idx == geos.len();
                // the encoder's batch_norm_k sits before layer k + 1, the decoder's before k
                let bn_index = if decoder {
                    Some(idx)
                } else {
                    (idx > 1).then(|| idx - 1)
                };
                let bn = bn_index
                    .map(|k| BatchNorm::new(p.sub(format!("batch_norm_{k}")), g.c_in, form.bn));
                let act = match (decoder, last) {
                    (false, false) => Activation::leaky_relu(p.device()),
                    (false, true) => Activation::Sigmoid,
                    (true, false) => Activation::Relu,
                    (true, true) => Activation::Tanh,
                };
                Layer {
                    bn,
                    conv: ConditionedConv::new(p, idx, g, cfg, form),
                    dropout: !(decoder && last),
                    act,
                }
            })
            .collect();
        Half { embedder, layers }
    }

    /// The five layers on `x` with `labels` (`[B]`, needed when conditional, ignored
    /// otherwise) in `mode`; dropout has probability `dropout`.
    ///
    /// # Panics
    ///
    /// A conditional half given no labels ([`Embedder::embed`]), before any layer runs.
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode, dropout: f64) -> Tensor {
        let labels = match &self.embedder {
            Some(e) => e.embed(labels, x.size().first().copied().unwrap_or(0)),
            None => Labels::None,
        };
        let mut h = x.shallow_clone();
        for layer in &self.layers {
            if let Some(bn) = &layer.bn {
                h = bn.forward(&h, mode.bn);
            }
            h = layer.conv.forward(&h, &labels);
            let drop = layer.dropout && mode.dropout;
            h = layer.act.after_dropout(h, if drop { dropout } else { 0.0 });
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
///
/// A model is bound to the device its var store had when it was built: its precision checks
/// ([`CignModel::set_precision`]) and its formulation ([`Formulation::default_for`]) are that
/// device's. Moving the var store afterwards (`VarStore::set_device`) is not supported; build
/// the model on the device it is to run on and load weights into it
/// ([`crate::load_safetensors_into`]).
#[derive(Debug)]
pub struct CignModel {
    cfg: ModelConfig,
    net: Net,
    form: Formulation,
    precision: Precision,
    device: Device,
}

impl CignModel {
    /// Creates the variables of `f` under `root` (usually `vs.root()`), initialised like
    /// PyTorch's default initialisation, with the fastest formulation for `root`'s device
    /// ([`Formulation::default_for`]).
    ///
    /// # Errors
    ///
    /// [`CoreError::Config`] when `cfg` fails [`ModelConfig::validate`];
    /// [`CoreError::Device`] when `root`'s device cannot hold tensors (a CUDA device this
    /// machine does not have, or any device libtorch was built without).
    pub fn new(root: &nn::Path, cfg: &ModelConfig) -> Result<Self, CoreError> {
        Self::with_formulation(root, cfg, Formulation::default_for(root.device()))
    }

    /// [`CignModel::new`] with the formulation `form` (all compute the same function; they
    /// differ in summation order and speed; [`Formulation::AUTHORS`] reproduces the authors'
    /// code bit for bit). The variables and their initialisation do not depend on it, so
    /// weights move freely between formulations. The IGN network has one formulation and
    /// ignores `form`.
    ///
    /// # Errors
    ///
    /// As [`CignModel::new`]; nothing is created under `root` on an error.
    pub fn with_formulation(
        root: &nn::Path,
        cfg: &ModelConfig,
        form: Formulation,
    ) -> Result<Self, CoreError> {
        cfg.validate()?;
        probe_device(root.device())?;
        let net = match cfg.architecture {
            Architecture::Cign => {
                let geos = layer_geometry(cfg);
                let half = |name: &str, geos: &[LayerGeometry], decoder: bool| {
                    Half::new(&root.sub(name), cfg, geos, decoder, form)
                };
                Net::Cign {
                    encoder: half("discriminator", &geos[..5], false),
                    decoder: half("generator", &geos[5..], true),
                }
            }
            Architecture::Ign => Net::Ign(IgnNetwork::new(root, cfg)),
        };
        Ok(CignModel {
            cfg: cfg.clone(),
            net,
            form,
            precision: Precision::Fp32,
            device: root.device(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The formulation the model was built with.
    pub fn formulation(&self) -> Formulation {
        self.form
    }

    /// The precision the model's passes run in ([`Precision::Fp32`] unless set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Chooses the precision of the model's passes ([`crate::precision`]): with
    /// [`Precision::Bf16`] every pass runs inside libtorch's bfloat16 autocast (convolutions,
    /// transposed convolutions and linears in bfloat16) and returns float32. The variables stay
    /// float32, so weights and checkpoints are the same in both precisions.
    ///
    /// Unlike the formulation, the precision can change after the model is built: it is not
    /// part of the layers but of how each pass runs, and the binaries load a model first and
    /// then apply the precision of the config or the command line (a model trained in one
    /// precision samples in the other). An [`Objective`] runs its frozen copy in the model's
    /// precision.
    ///
    /// # Errors
    ///
    /// [`CoreError::Device`] when [`Precision::check_device`] fails for the model's
    /// device (bfloat16 on a device other than the CPU or CUDA); the precision is unchanged.
    ///
    /// [`Objective`]: crate::Objective
    pub fn set_precision(&mut self, precision: Precision) -> Result<(), CoreError> {
        precision.check_device(self.device)?;
        self.precision = precision;
        Ok(())
    }

    /// Runs `f` (a pass on `device`) in the model's precision; a bfloat16 result is returned
    /// as float32.
    fn in_precision(&self, device: Device, f: impl FnOnce() -> Tensor) -> Tensor {
        match self.precision {
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

    /// Refuses a pass in a mode that updates the running statistics ([`BnMode::Train`]) on a
    /// batch of one, before any statistic changes: the decoder's first BatchNorm (the IGN
    /// network's `generator.main.0` likewise) normalises the `[B, I, 1, 1]` latent, one value
    /// per channel, and libtorch would write NaN into its running variance.
    ///
    /// # Panics
    ///
    /// `mode.bn` is [`BnMode::Train`] and `batch` is 1.
    fn check_batch(&self, batch: &Tensor, mode: Mode) {
        let b = batch.size().first().copied().unwrap_or(0);
        let latent = [b, self.cfg.intermediate_dim, 1, 1];
        batch_norm::check_values_per_channel(&latent, mode.bn);
    }

    /// One pass of `f`. `x`: `[B, C, 28, 28]` float in [-1, 1] on the model's device;
    /// `labels`: Int64 `[B]` in `0..num_classes` on the same device (ignored, and may be
    /// `None`, for [`Conditioning::None`] and the IGN network). `train` is PyTorch's training
    /// mode: batch statistics (the BatchNorm running statistics are updated) and dropout;
    /// otherwise eval mode. Returns `[B, C, 28, 28]` in [-1, 1] (`B = 0` gives an empty
    /// batch).
    ///
    /// # Panics
    ///
    /// As [`CignModel::forward_mode`] with [`Mode::TRAIN`] or [`Mode::EVAL`].
    pub fn forward_t(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        self.forward_mode(x, labels, Mode::from_train(train))
    }

    /// One pass of `f` in an explicit [`Mode`], in the model's [`Precision`]; `x`, `labels`
    /// and the result as in [`CignModel::forward_t`]. The result is float32 for a float32
    /// input in either precision.
    ///
    /// # Panics
    ///
    /// Before anything runs: a conditional model given no labels, or labels that are not an
    /// integer `[B]` tensor; `mode.bn` =
    /// [`BnMode::Train`] on a batch of one (one value per channel at the decoder's first
    /// BatchNorm; PyTorch raises too), so no running statistic becomes NaN. In libtorch (its
    /// error as a panic, possibly after the running statistics of earlier layers were updated):
    /// `x` not `[B, C, 28, 28]` or not floating point, labels outside `0..num_classes` (the
    /// generation entry points check them first), tensors on another device than the
    /// model's, a kind other
    /// than the variables' (float32 unless the var store was converted). On CUDA an
    /// out-of-range label is a device-side assertion, which libtorch cannot recover from.
    pub fn forward_mode(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        self.check_batch(x, mode);
        self.in_precision(x.device(), || {
            let h = self.encode_raw(x, labels, mode);
            self.decode_raw(&h, labels, mode)
        })
    }

    /// The encoder alone: `[B, C, 28, 28] -> [B, I, 1, 1]` (float32 in either precision). The
    /// CIGN latent is a sigmoid output, in (0, 1); the IGN network's (its last convolution has
    /// no activation) is unbounded.
    ///
    /// # Panics
    ///
    /// As [`CignModel::forward_mode`], except that a batch of one trains (the encoder's
    /// BatchNorms see at least 2 x 2 values per channel).
    pub fn encode_mode(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        self.in_precision(x.device(), || self.encode_raw(x, labels, mode))
    }

    /// The decoder alone: `[B, I, 1, 1] -> [B, C, 28, 28]` in [-1, 1] (float32 in either
    /// precision).
    ///
    /// # Panics
    ///
    /// As [`CignModel::forward_mode`], with `h` in place of `x`.
    pub fn decode_mode(&self, h: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        self.check_batch(h, mode);
        self.in_precision(h.device(), || self.decode_raw(h, labels, mode))
    }

    fn encode_raw(&self, x: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        match &self.net {
            Net::Cign { encoder, .. } => encoder.forward(x, labels, mode, self.cfg.dropout),
            Net::Ign(net) => net.encode(x, mode),
        }
    }

    fn decode_raw(&self, h: &Tensor, labels: Option<&Tensor>, mode: Mode) -> Tensor {
        match &self.net {
            Net::Cign { decoder, .. } => decoder.forward(h, labels, mode, self.cfg.dropout),
            Net::Ign(net) => net.decode(h, mode),
        }
    }

    /// Generation: `f(z, labels)` in eval mode without gradients (one call, as in the paper).
    /// `z` `[B, C, 28, 28]` (noise, [`sample_noise`]), `labels` and the result as in
    /// [`CignModel::forward_t`].
    ///
    /// # Panics
    ///
    /// As [`CignModel::forward_mode`] in eval mode.
    pub fn generate(&self, z: &Tensor, labels: Option<&Tensor>) -> Tensor {
        self.generate_t(z, labels, false)
    }

    /// Generation with the mode as an option: `train = false` is eval mode (running
    /// statistics); `train = true` normalises with the batch's own statistics (no dropout, and
    /// the running statistics are not modified; a batch of one then normalises the decoder's
    /// `1 x 1` latent to BatchNorm's bias, where PyTorch's training mode would refuse it). No
    /// gradients.
    ///
    /// # Panics
    ///
    /// As [`CignModel::forward_mode`] (neither mode refuses a batch of one).
    pub fn generate_t(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        self.check_label_range(labels);
        tch::no_grad(|| self.forward_mode(z, labels, Mode::generation(train)))
    }

    /// Checks, for a conditional model, that every label is in `0..num_classes` before a
    /// generation runs (one reduction and one host sync per call, so the training passes do
    /// not pay it): on CUDA an out-of-range label would be a device-side assertion that
    /// leaves the process unable to use the GPU.
    ///
    /// # Panics
    ///
    /// A label outside `0..num_classes`, naming the range found.
    fn check_label_range(&self, labels: Option<&Tensor>) {
        let Some(labels) = labels.filter(|l| l.numel() > 0) else {
            return;
        };
        if !self.cfg.conditioning.is_conditional() || matches!(self.net, Net::Ign(_)) {
            return;
        }
        let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
        let n = self.cfg.num_classes;
        assert!(
            lo >= 0 && hi < n,
            "labels from {lo} to {hi}: a model of {n} classes takes labels in 0..{n}"
        );
    }

    /// `f` applied `k` times (`k = 0` returns a copy of `x`), without gradients; `train` as in
    /// [`CignModel::generate_t`].
    ///
    /// # Panics
    ///
    /// As [`CignModel::generate_t`], for `k > 0`.
    pub fn reapply(&self, x: &Tensor, labels: Option<&Tensor>, k: usize, train: bool) -> Tensor {
        if k > 0 {
            self.check_label_range(labels);
        }
        tch::no_grad(|| {
            let mut h = x.copy();
            for _ in 0..k {
                h = self.forward_mode(&h, labels, Mode::generation(train));
            }
            h
        })
    }

    /// Projection of a given image under a label onto the model's fixed points: one eval-mode
    /// pass without gradients (use [`CignModel::reapply`] for more passes). `x` `[B, C, 28, 28]`
    /// in [-1, 1].
    ///
    /// # Panics
    ///
    /// As [`CignModel::generate`].
    pub fn project(&self, x: &Tensor, labels: Option<&Tensor>) -> Tensor {
        self.generate(x, labels)
    }
}

/// Checks that `device` can hold tensors before any variable is created there (`nn::Path::var`
/// would panic): a CUDA index below `tch::Cuda::device_count()`, then an empty allocation.
fn probe_device(device: Device) -> Result<(), CoreError> {
    if let Device::Cuda(i) = device {
        let n = tch::Cuda::device_count();
        if i64::try_from(i).map_or(true, |i| i >= n) {
            return Err(CoreError::Device(format!(
                "{device:?} is not available: this machine has {n} CUDA device(s)"
            )));
        }
    }
    Tensor::f_empty([0], (Kind::Float, device))
        .map(|_| ())
        .map_err(|e| CoreError::Device(format!("cannot allocate on {device:?}: {e}")))
}

/// Number of trainable scalars in a var store (BatchNorm running statistics excluded).
pub fn trainable_parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// Samples `n` noise images `N(0, I)` of shape `[n, C, 28, 28]` (float32, on `device`) from
/// torch's generator: the prior of the authors' `MNIST/main.py`,
/// `Normal(torch.zeros(1, 28, 28), torch.ones(1, 28, 28))`, whose samples are the noise `z`
/// of the objective and of generation.
///
/// # Errors
///
/// [`tch::TchError`] when libtorch cannot allocate them (or `n` is negative).
pub fn sample_noise(
    n: i64,
    cfg: &ModelConfig,
    device: tch::Device,
) -> Result<Tensor, tch::TchError> {
    Tensor::f_randn(
        [n, cfg.image_channels, IMAGE_SIZE, IMAGE_SIZE],
        (Kind::Float, device),
    )
}
