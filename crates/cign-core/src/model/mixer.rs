//! The filter model's channel mixer (the authors' `channel_mixer_k`): `Linear(c_in -> c_out)`
//! with bias at every pixel, in one of two exact formulations ([`MixerImpl`]).

use tch::{nn, Tensor};

use super::linear::Linear;

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
    /// A 1x1 convolution with the same weight and bias: contiguous NCHW result, so BatchNorm
    /// and the next depthwise layer need no layout copies (they made BatchNorm's backward 20%
    /// of the step) (default).
    #[default]
    Conv1x1,
}

#[derive(Debug)]
pub(super) struct Mixer {
    linear: Linear,
    imp: MixerImpl,
}

impl Mixer {
    /// Creates `weight` `[c_out, c_in]` and `bias` `[c_out]` under `p` (e.g.
    /// `generator.channel_mixer_5`).
    pub(super) fn new(p: &nn::Path, c_in: i64, c_out: i64, imp: MixerImpl) -> Self {
        Mixer {
            linear: Linear::new(p, c_in, c_out),
            imp,
        }
    }

    /// `[B, c_in, H, W] -> [B, c_out, H, W]`.
    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        let Linear { ws, bs } = &self.linear;
        match self.imp {
            MixerImpl::Linear => self
                .linear
                .forward(&x.permute([0, 2, 3, 1]))
                .permute([0, 3, 1, 2]),
            MixerImpl::Conv1x1 => {
                let (o, i) = (ws.size()[0], ws.size()[1]);
                x.conv2d(&ws.view([o, i, 1, 1]), Some(bs), [1, 1], [0, 0], [1, 1], 1)
            }
        }
    }
}
