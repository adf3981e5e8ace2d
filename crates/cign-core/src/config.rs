//! Configuration types: the model, the objective's weights and the optimiser.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// How the label enters the network.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Conditioning {
    /// Spec §4a: the label becomes one extra input channel before every convolution.
    #[default]
    Channel,
    /// Spec §4b: the label becomes a per-sample depthwise kernel followed by a channel mixer.
    Filter,
    /// Unconditional IGN baseline: the channel architecture without any label input.
    None,
}

impl Conditioning {
    /// Whether the model consumes labels.
    pub fn is_conditional(&self) -> bool {
        !matches!(self, Conditioning::None)
    }
}

/// Hyper-parameters of the network `f`.
///
/// Defaults: channel conditioning, `latent_dim` 64, `intermediate_dim` 128, `embedding_dim` 5,
/// `dropout` 0.15, `num_classes` 10, `image_channels` 1 (the paper's large channel model).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub conditioning: Conditioning,
    /// `L`: channel width of the first encoder layer (the widths are L, 2L, 4L, 8L).
    pub latent_dim: i64,
    /// `I`: size of the `I x 1 x 1` latent between encoder and decoder.
    pub intermediate_dim: i64,
    /// `E`: size of each half's label embedding.
    pub embedding_dim: i64,
    /// Element-wise dropout probability (the authors use 0.15).
    pub dropout: f64,
    pub num_classes: i64,
    pub image_channels: i64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
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
    /// A config with the given conditioning and `(L, I, E)`, other fields at their defaults.
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

    /// Checks that every field is in range.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::InvalidConfig(m));
        if self.latent_dim < 1 {
            return bad(format!("latent_dim must be >= 1, got {}", self.latent_dim));
        }
        if self.intermediate_dim < 1 {
            return bad(format!(
                "intermediate_dim must be >= 1, got {}",
                self.intermediate_dim
            ));
        }
        if self.conditioning.is_conditional() && self.embedding_dim < 1 {
            return bad(format!(
                "embedding_dim must be >= 1, got {}",
                self.embedding_dim
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) || !self.dropout.is_finite() {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.conditioning.is_conditional() && self.num_classes < 2 {
            return bad(format!(
                "num_classes must be >= 2, got {}",
                self.num_classes
            ));
        }
        if self.image_channels < 1 {
            return bad(format!(
                "image_channels must be >= 1, got {}",
                self.image_channels
            ));
        }
        Ok(())
    }
}

/// Weights of the five loss terms (spec §2). Defaults 20, 20, 2.5, 3, 1.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    pub rec: f64,
    pub idem_noise: f64,
    pub tight_noise: f64,
    pub idem_mismatch: f64,
    pub tight_mismatch: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            rec: 20.0,
            idem_noise: 20.0,
            tight_noise: 2.5,
            idem_mismatch: 3.0,
            tight_mismatch: 1.0,
        }
    }
}

/// Settings of the objective.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    pub weights: LossWeights,
    /// Smooth clamp of the tightness terms, `tanh(D_t / (a D_rec)) a D_rec` (IGN follow-ups);
    /// off by default (the authors' code has none).
    pub tight_clamp: bool,
    /// `a` of the clamp.
    pub tight_clamp_ratio: f64,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig {
            weights: LossWeights::default(),
            tight_clamp: false,
            tight_clamp_ratio: 1.5,
        }
    }
}

impl ObjectiveConfig {
    pub fn validate(&self) -> Result<(), CoreError> {
        let w = &self.weights;
        for (n, v) in [
            ("rec", w.rec),
            ("idem_noise", w.idem_noise),
            ("tight_noise", w.tight_noise),
            ("idem_mismatch", w.idem_mismatch),
            ("tight_mismatch", w.tight_mismatch),
        ] {
            if !v.is_finite() {
                return Err(CoreError::InvalidConfig(format!(
                    "loss weight {n} must be finite, got {v}"
                )));
            }
        }
        if self.tight_clamp && !(self.tight_clamp_ratio > 0.0 && self.tight_clamp_ratio.is_finite())
        {
            return Err(CoreError::InvalidConfig(format!(
                "tight_clamp_ratio must be > 0, got {}",
                self.tight_clamp_ratio
            )));
        }
        Ok(())
    }
}

/// AdamW settings; defaults are the authors' (lr 1e-4, betas (0.5, 0.999), weight decay 0.01,
/// eps 1e-8).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdamWConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub weight_decay: f64,
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
    pub fn validate(&self) -> Result<(), CoreError> {
        let (b1, b2) = self.betas;
        let ok = self.lr >= 0.0
            && self.lr.is_finite()
            && (0.0..1.0).contains(&b1)
            && (0.0..1.0).contains(&b2)
            && self.weight_decay >= 0.0
            && self.weight_decay.is_finite()
            && self.eps >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(CoreError::InvalidConfig(format!(
                "invalid AdamW config {self:?}"
            )))
        }
    }
}
