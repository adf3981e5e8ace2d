//! `BatchNorm2d` of the CIGN and IGN networks, with PyTorch's defaults (which both the
//! authors' modules and the IGN code use), in one of two exact layouts ([`BnLayout`]).

use tch::{nn, Tensor};

use super::BnMode;

/// BatchNorm's momentum (PyTorch's `BatchNorm2d` default).
const BN_MOMENTUM: f64 = 0.1;
/// BatchNorm's epsilon (PyTorch's `BatchNorm2d` default).
const BN_EPS: f64 = 1e-5;

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

/// Refuses a pass that would update the running statistics ([`BnMode::Train`]) from one value
/// per channel: libtorch's unbiased running-variance update divides by `n - 1 = 0` and writes
/// NaN into `running_var`, where PyTorch's `BatchNorm2d` raises "Expected more than 1 value per
/// channel when training". `shape` is the input's (`[N, C, H, W]`, or rows `[N, C]`); the
/// values per channel are the product of every size but `C`'s. Other modes, and empty inputs,
/// pass.
///
/// # Panics
///
/// `mode` is [`BnMode::Train`] and `shape` has exactly one value per channel.
pub(crate) fn check_values_per_channel(shape: &[i64], mode: BnMode) {
    let values: i64 = shape
        .iter()
        .enumerate()
        .filter(|&(dim, _)| dim != 1)
        .map(|(_, &size)| size)
        .product();
    assert!(
        mode != BnMode::Train || values != 1,
        "BatchNorm in training mode needs more than 1 value per channel (its running variance \
         would become NaN), got an input of shape {shape:?}: train on batches of at least 2"
    );
}

/// `BatchNorm2d(channels)`: weight 1, bias 0, running mean 0 and variance 1 (the variables
/// `weight`, `bias`, `running_mean`, `running_var` of a PyTorch state dict).
#[derive(Debug)]
pub(crate) struct BatchNorm {
    bn: nn::BatchNorm,
    layout: BnLayout,
}

impl BatchNorm {
    /// Creates the variables under `p` (the module's path, e.g. `generator.batch_norm_1`).
    pub(crate) fn new(p: nn::Path, channels: i64, layout: BnLayout) -> Self {
        let config = nn::BatchNormConfig {
            cudnn_enabled: true,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
            affine: true,
            ws_init: nn::Init::Const(1.0),
            bs_init: nn::Init::Const(0.0),
        };
        BatchNorm {
            bn: nn::batch_norm2d(p, channels, config),
            layout,
        }
    }

    /// Normalises `h` `[N, C, H, W]` per channel in `mode`: with the running statistics
    /// ([`BnMode::Eval`]), or with the batch's own (over `N H W`), updating the running
    /// statistics ([`BnMode::Train`]) or leaving them untouched ([`BnMode::BatchStats`]).
    ///
    /// # Panics
    ///
    /// As [`check_values_per_channel`]; `h` not 4-d (libtorch's error).
    pub(crate) fn forward(&self, h: &Tensor, mode: BnMode) -> Tensor {
        if self.layout == BnLayout::RowsForSmallMaps {
            let (n, c, hh, ww) = h.size4().expect("BatchNorm2d takes [N, C, H, W]");
            if hh * ww <= 4 {
                let rows = h.permute([0, 2, 3, 1]).reshape([n * hh * ww, c]);
                return self
                    .normalise(&rows, mode)
                    .view([n, hh, ww, c])
                    .permute([0, 3, 1, 2])
                    .contiguous();
            }
        }
        self.normalise(h, mode)
    }

    /// `torch.batch_norm` over dimension 1 of `h` (`[N, C, H, W]` or rows `[N, C]`): what
    /// `BatchNorm2d.forward` calls.
    fn normalise(&self, h: &Tensor, mode: BnMode) -> Tensor {
        check_values_per_channel(&h.size(), mode);
        let bn = &self.bn;
        let running = mode != BnMode::BatchStats;
        Tensor::batch_norm(
            h,
            bn.ws.as_ref(),
            bn.bs.as_ref(),
            running.then_some(&bn.running_mean),
            running.then_some(&bn.running_var),
            mode != BnMode::Eval,
            BN_MOMENTUM,
            BN_EPS,
            true, // cudnn_enabled, as above
        )
    }
}
