//! Configuration types: the model (`[model]` of a training config), the objective (`[loss]`)
//! and the optimiser (`[optim]`).
//!
//! Every type derives serde with `deny_unknown_fields` and `default`, so a TOML section may
//! leave out any key (it takes its default) but may not name an unknown one. Field names are
//! the TOML keys. `validate` checks the ranges types cannot express; its [`ConfigValueError`]
//! names the key as `section.key` (`model.dropout`, `loss.tight_clamp_ratio`, `optim.betas`)
//! and the allowed range.

use serde::{Deserialize, Serialize};

/// A configuration value out of its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {allowed}")]
pub struct ConfigValueError {
    /// `section.key` as in a training config, e.g. `optim.betas`.
    pub key: &'static str,
    /// The value as given.
    pub value: String,
    /// The allowed range, e.g. `must be in [0, 1)`.
    pub allowed: String,
}

fn invalid(
    key: &'static str,
    value: impl ToString,
    allowed: impl Into<String>,
) -> ConfigValueError {
    ConfigValueError {
        key,
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

/// Which network `f` is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// The CIGN encoder/decoder of the authors' `MNIST/CIGN_channel` and `MNIST/CIGN_filter`
    /// modules (niccronc/conditional-idempotent-generative-networks), with the label entering
    /// as [`ModelConfig::conditioning`] says (`none`: the same network without any label input,
    /// a label-free ablation of CIGN).
    #[default]
    Cign,
    /// The unconditional IGN network that the authors' `MNIST/idempotent_networks.py` says it
    /// modifies: the DCGAN-like model of the PapersReimplementations repository
    /// (`src/cv/ign/model.py`): five convolutions down to a `8L x 1 x 1` latent without
    /// sigmoid, five transposed convolutions back, `Dropout2d`, BatchNorm after the
    /// activations ([`crate::ign`]). Needs `conditioning = "none"` and
    /// `intermediate_dim = 8 * latent_dim`.
    Ign,
}

/// How the label enters the CIGN network (arXiv 2406.02841, Sec. 3.2; the authors'
/// `CIGN_channel` and `CIGN_filter` modules).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Conditioning {
    /// Channel conditioning: before every convolution the label becomes one extra input
    /// channel, `tanh(Linear(embedding))` reshaped to the layer's input size.
    #[default]
    Channel,
    /// Filter conditioning: before every layer the label becomes a per-sample depthwise
    /// kernel `tanh(Linear(embedding))`, followed by a per-pixel channel mixer.
    Filter,
    /// No label input (the unconditional networks: [`Architecture::Ign`], or the CIGN network
    /// without its label inputs).
    None,
}

impl Conditioning {
    /// Whether the model consumes labels.
    pub fn is_conditional(&self) -> bool {
        !matches!(self, Conditioning::None)
    }
}

/// Hyper-parameters of the network `f` (`[model]`).
///
/// Defaults: the CIGN architecture with channel conditioning, `latent_dim` 64,
/// `intermediate_dim` 128, `embedding_dim` 5, `dropout` 0.15, `num_classes` 10,
/// `image_channels` 1 (the paper's large channel model).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// The network: `cign` (default) or `ign`.
    pub architecture: Architecture,
    /// `channel`, `filter` or `none`.
    pub conditioning: Conditioning,
    /// `L`: channel width of the first encoder layer (the encoder widths are L, 2L, 4L, 8L;
    /// the IGN network's `base_c`).
    pub latent_dim: i64,
    /// `I`: channels of the `I x 1 x 1` latent between encoder and decoder (the IGN network's
    /// is `8L`).
    pub intermediate_dim: i64,
    /// `E`: size of each half's label embedding (unused without labels).
    pub embedding_dim: i64,
    /// Dropout probability in [0, 1): element-wise `Dropout` in the CIGN network (the authors
    /// use 0.15), whole-channel `Dropout2d` in the IGN network (0.1 there).
    pub dropout: f64,
    /// Number of classes of the labels.
    pub num_classes: i64,
    /// Image channels (1 for MNIST).
    pub image_channels: i64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            architecture: Architecture::Cign,
            conditioning: Conditioning::Channel,
            latent_dim: 64,
            intermediate_dim: 128,
            embedding_dim: 5,
            dropout: 0.15,
            num_classes: 10,
            image_channels: 1,
        }
    }
}

impl ModelConfig {
    /// A CIGN config with the given conditioning and `(L, I, E)`, other fields at their
    /// defaults.
    pub fn with_dims(
        conditioning: Conditioning,
        latent_dim: i64,
        intermediate_dim: i64,
        embedding_dim: i64,
    ) -> Self {
        ModelConfig {
            conditioning,
            latent_dim,
            intermediate_dim,
            embedding_dim,
            ..Default::default()
        }
    }

    /// The IGN network of width `base_c` (64 in the PapersReimplementations code) with its
    /// `Dropout2d` probability 0.1: `architecture = "ign"`, `conditioning = "none"`,
    /// `latent_dim = base_c`, `intermediate_dim = 8 base_c` (saturating: a `base_c` too large
    /// for that is refused by [`ModelConfig::validate`], not here).
    pub fn ign(base_c: i64) -> Self {
        ModelConfig {
            architecture: Architecture::Ign,
            conditioning: Conditioning::None,
            latent_dim: base_c,
            intermediate_dim: base_c.saturating_mul(8),
            dropout: 0.1,
            ..Default::default()
        }
    }

    /// Checks that every field is in range.
    ///
    /// # Errors
    ///
    /// The first field out of range, named `model.<field>`: `latent_dim` < 1 (< 2 for the IGN
    /// network, whose last decoder width is `8L / 16`), `intermediate_dim` < 1 (or not
    /// `8 * latent_dim` for the IGN network), `embedding_dim` < 1 or `num_classes` < 2 with
    /// labels, `dropout` outside [0, 1), `image_channels` < 1, a conditioning other than
    /// `none` for the IGN network; a size above [`MAX_MODEL_SIZE`], or a model of more than
    /// [`MAX_PARAMETERS`] parameters ([`ModelConfig::parameter_count`]; named
    /// `model.embedding_dim` when the label embeddings and linears hold most of them,
    /// `model.latent_dim` otherwise), so that building the model can neither overflow nor ask
    /// for terabytes.
    pub fn validate(&self) -> Result<(), ConfigValueError> {
        self.validate_fields()?;
        let (params, label) = self.parameters();
        if params > MAX_PARAMETERS {
            let (key, value) = if 2 * label > params {
                ("model.embedding_dim", self.embedding_dim)
            } else {
                ("model.latent_dim", self.latent_dim)
            };
            return Err(invalid(
                key,
                value,
                format!(
                    "gives a model of {params} parameters (latent_dim {}, intermediate_dim {}, \
                     embedding_dim {}), more than {MAX_PARAMETERS} (8 GiB of float32)",
                    self.latent_dim, self.intermediate_dim, self.embedding_dim
                ),
            ));
        }
        Ok(())
    }

    /// The trainable parameters of the model this config builds (what
    /// [`crate::trainable_parameter_count`] counts once it is built): convolution weights, the
    /// label embeddings and label linears (`E` weights per output), the filter model's channel
    /// mixers, BatchNorm's weights and biases.
    ///
    /// # Panics
    ///
    /// As [`crate::layer_geometry`]: pass a validated config.
    pub fn parameter_count(&self) -> i64 {
        self.parameters().0
    }

    /// [`ModelConfig::parameter_count`] and the part of it that the label input holds (the
    /// embeddings and the label linears). Every size is at most 2^16 after
    /// [`ModelConfig::validate_fields`], so each term (at most 2^19 * 2^19 * 16) and the sums
    /// fit an i64.
    fn parameters(&self) -> (i64, i64) {
        let geos = crate::model::layer_geometry(self);
        let e = self.embedding_dim;
        let mut label = if self.conditioning.is_conditional() {
            2 * self.num_classes * e
        } else {
            0
        };
        let mut rest = 0;
        for g in &geos {
            let kk = g.kernel * g.kernel;
            match self.conditioning {
                Conditioning::None => rest += g.c_in * g.c_out * kk,
                // conv_k with the label channel, linear_k: E -> S * S
                Conditioning::Channel => {
                    rest += (g.c_in + 1) * g.c_out * kk;
                    label += (e + 1) * g.in_size * g.in_size;
                }
                // linear_k: E -> c_in k k, channel_mixer_k: c_in -> c_out
                Conditioning::Filter => {
                    rest += g.c_in * g.c_out + g.c_out;
                    label += (e + 1) * g.c_in * kk;
                }
            }
        }
        // BatchNorm (weight and bias per channel) before every layer but the first of the
        // CIGN network; in the IGN network before encoder layers 2-4 and decoder layers 1-4
        let with_bn: &[usize] = match self.architecture {
            Architecture::Cign => &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            Architecture::Ign => &[1, 2, 3, 5, 6, 7, 8],
        };
        rest += with_bn.iter().map(|&n| 2 * geos[n].c_in).sum::<i64>();
        (rest + label, label)
    }

    /// The checks of [`ModelConfig::validate`] on the fields one by one (everything but the
    /// parameter count), which bound every size so that the layer widths cannot overflow.
    pub(crate) fn validate_fields(&self) -> Result<(), ConfigValueError> {
        for (key, value) in [
            ("model.latent_dim", self.latent_dim),
            ("model.intermediate_dim", self.intermediate_dim),
            ("model.embedding_dim", self.embedding_dim),
            ("model.num_classes", self.num_classes),
            ("model.image_channels", self.image_channels),
        ] {
            if value > MAX_MODEL_SIZE {
                return Err(invalid(key, value, format!("must be <= {MAX_MODEL_SIZE}")));
            }
        }
        let ign = self.architecture == Architecture::Ign;
        if ign && self.conditioning != Conditioning::None {
            return Err(invalid(
                "model.conditioning",
                format!("{:?}", self.conditioning).to_lowercase(),
                "must be \"none\" with architecture = \"ign\" (the IGN network has no label input)",
            ));
        }
        let min_l = if ign { 2 } else { 1 };
        if self.latent_dim < min_l {
            return Err(invalid(
                "model.latent_dim",
                self.latent_dim,
                format!("must be >= {min_l}"),
            ));
        }
        if ign && self.intermediate_dim != 8 * self.latent_dim {
            return Err(invalid(
                "model.intermediate_dim",
                self.intermediate_dim,
                format!(
                    "must be 8 * latent_dim = {} with architecture = \"ign\"",
                    8 * self.latent_dim
                ),
            ));
        }
        if self.intermediate_dim < 1 {
            return Err(invalid(
                "model.intermediate_dim",
                self.intermediate_dim,
                "must be >= 1",
            ));
        }
        if self.conditioning.is_conditional() && self.embedding_dim < 1 {
            return Err(invalid(
                "model.embedding_dim",
                self.embedding_dim,
                "must be >= 1",
            ));
        }
        if !((0.0..1.0).contains(&self.dropout) && self.dropout.is_finite()) {
            return Err(invalid("model.dropout", self.dropout, "must be in [0, 1)"));
        }
        if self.conditioning.is_conditional() && self.num_classes < 2 {
            return Err(invalid(
                "model.num_classes",
                self.num_classes,
                "must be >= 2 with labels",
            ));
        }
        if self.num_classes < 1 {
            return Err(invalid(
                "model.num_classes",
                self.num_classes,
                "must be >= 1",
            ));
        }
        if self.image_channels < 1 {
            return Err(invalid(
                "model.image_channels",
                self.image_channels,
                "must be >= 1",
            ));
        }
        Ok(())
    }
}

/// The largest `latent_dim`, `intermediate_dim`, `embedding_dim`, `num_classes` and
/// `image_channels` [`ModelConfig::validate`] accepts (2^16; the paper's models use at most
/// 128).
pub const MAX_MODEL_SIZE: i64 = 1 << 16;

/// The most parameters ([`ModelConfig::parameter_count`]) [`ModelConfig::validate`] accepts
/// (2^31, 8 GiB of float32; the paper's large channel model has about 5.6 million).
pub const MAX_PARAMETERS: i64 = 1 << 31;

/// Which form of the optional smooth clamp of the tightness terms (`loss.tight_clamp`).
///
/// With `D_rec` the batch's reconstruction distance, `a` the ratio and `d` a tightness
/// distance, the clamped term is `-tanh(d / (a D_rec)) a D_rec` instead of `-d` (IGN,
/// arXiv 2311.01462, Sec. 3; the authors' CIGN code has no clamp). In TOML: `"off"`,
/// `"batch"` or `"per_sample"`; the booleans of older configs are accepted (`false` = off,
/// `true` = batch, the only form they had).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum TightClamp {
    /// No clamp (the authors' code; default).
    #[default]
    Off,
    /// Clamp the batch-mean distance `d = mean_i d_i` once.
    Batch,
    /// Clamp each sample's distance `d_i` (mean over its pixels), then average over the
    /// batch: `mean_i -tanh(d_i / (a D_rec)) a D_rec` (the form of IGN follow-ups).
    PerSample,
}

impl<'de> Deserialize<'de> for TightClamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TightClamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"off\", \"batch\" or \"per_sample\" (or false / true)")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<TightClamp, E> {
                Ok(if v {
                    TightClamp::Batch
                } else {
                    TightClamp::Off
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TightClamp, E> {
                match v {
                    "off" => Ok(TightClamp::Off),
                    "batch" => Ok(TightClamp::Batch),
                    "per_sample" => Ok(TightClamp::PerSample),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The five loss weights of [`ObjectiveConfig`] as one value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    /// Reconstruction.
    pub rec: f64,
    /// Idempotence on noise.
    pub idem_noise: f64,
    /// Tightness on noise.
    pub tight_noise: f64,
    /// Idempotence on mismatched pairs.
    pub idem_mismatch: f64,
    /// Tightness on mismatched pairs.
    pub tight_mismatch: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        let o = ObjectiveConfig::default();
        o.weights()
    }
}

/// Settings of the objective (`[loss]`): the weights of the five terms of arXiv 2406.02841,
/// Sec. 3.1 (defaults 20, 20, 2.5, 3, 1: the authors' `idempotent_networks.py`) and the
/// optional tightness clamp. Distances are the mean absolute error (`torch.nn.L1Loss()`, as
/// in the authors' code and the IGN code it modifies).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    /// Reconstruction weight (20).
    pub rec: f64,
    /// Idempotence weight on noise (20).
    pub idem_noise: f64,
    /// Tightness weight on noise (2.5).
    pub tight_noise: f64,
    /// Idempotence weight on mismatched pairs (3; unused without labels).
    pub idem_mismatch: f64,
    /// Tightness weight on mismatched pairs (1; unused without labels).
    pub tight_mismatch: f64,
    /// Smooth clamp of the tightness terms: off (default), batch or per sample.
    pub tight_clamp: TightClamp,
    /// `a` of the clamp (1.5, as in IGN).
    pub tight_clamp_ratio: f64,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig {
            rec: 20.0,
            idem_noise: 20.0,
            tight_noise: 2.5,
            idem_mismatch: 3.0,
            tight_mismatch: 1.0,
            tight_clamp: TightClamp::Off,
            tight_clamp_ratio: 1.5,
        }
    }
}

impl ObjectiveConfig {
    /// The five weights.
    pub fn weights(&self) -> LossWeights {
        LossWeights {
            rec: self.rec,
            idem_noise: self.idem_noise,
            tight_noise: self.tight_noise,
            idem_mismatch: self.idem_mismatch,
            tight_mismatch: self.tight_mismatch,
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// A weight (`loss.rec`, ...) that is negative or not finite, or `loss.tight_clamp_ratio`
    /// not a finite number > 0.
    pub fn validate(&self) -> Result<(), ConfigValueError> {
        for (key, v) in [
            ("loss.rec", self.rec),
            ("loss.idem_noise", self.idem_noise),
            ("loss.tight_noise", self.tight_noise),
            ("loss.idem_mismatch", self.idem_mismatch),
            ("loss.tight_mismatch", self.tight_mismatch),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(invalid(key, v, "must be a finite number >= 0"));
            }
        }
        let a = self.tight_clamp_ratio;
        if !(a > 0.0 && a.is_finite()) {
            return Err(invalid(
                "loss.tight_clamp_ratio",
                a,
                "must be a finite number > 0",
            ));
        }
        Ok(())
    }
}

/// AdamW settings (`[optim]`); defaults are the authors' (lr 1e-4, betas (0.5, 0.999),
/// weight decay 0.01, eps 1e-8). `weight_decay = 0` is Adam (the IGN code's optimiser: with
/// no decay the two updates are the same).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    /// Learning rate, > 0.
    pub lr: f64,
    /// `(beta1, beta2)`, each in [0, 1); a two-element array in TOML.
    pub betas: (f64, f64),
    /// Decoupled weight decay, >= 0.
    pub weight_decay: f64,
    /// Added to the denominator, > 0.
    pub eps: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-4,
            betas: (0.5, 0.999),
            weight_decay: 0.01,
            eps: 1e-8,
        }
    }
}

impl AdamWConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// `optim.lr` not a finite number > 0, `optim.betas` with an element outside [0, 1),
    /// `optim.weight_decay` not a finite number >= 0, `optim.eps` not a finite number > 0.
    pub fn validate(&self) -> Result<(), ConfigValueError> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(invalid("optim.lr", self.lr, "must be a finite number > 0"));
        }
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return Err(invalid(
                "optim.betas",
                format!("[{b1}, {b2}]"),
                "each must be in [0, 1)",
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(invalid(
                "optim.weight_decay",
                self.weight_decay,
                "must be a finite number >= 0",
            ));
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(invalid(
                "optim.eps",
                self.eps,
                "must be a finite number > 0",
            ));
        }
        Ok(())
    }
}
