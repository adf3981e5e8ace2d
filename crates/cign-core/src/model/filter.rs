//! Filter conditioning (arXiv 2406.02841, Sec. 3.2; the authors' `CIGN_filter`): the label's
//! embedding becomes per-sample depthwise kernels `tanh(Linear(E -> c_in k k))` viewed as
//! `[c_in, k, k]`; each sample's channels are cross-correlated (transposed: convolved
//! transposed) with its own kernels ([`crate::depthwise`]), then a channel mixer
//! `Linear(c_in -> c_out)` runs at every pixel ([`Mixer`]).

use tch::{nn, Kind, Tensor};

use super::label::Labels;
use super::linear::Linear;
use super::mixer::{Mixer, MixerImpl};
use super::LayerGeometry;
use crate::depthwise::{depthwise_conv2d, depthwise_conv_transpose2d};
use crate::precision::{autocast, autocast_enabled};
use crate::Precision;

/// The variables `linear_k.{weight, bias}` and `channel_mixer_k.{weight, bias}`.
#[derive(Debug)]
pub(super) struct FilterConv {
    linear: Linear,
    mixer: Mixer,
    geo: LayerGeometry,
}

impl FilterConv {
    /// Creates `linear_{idx}` then `channel_mixer_{idx}` under `p` (the half's path).
    pub(super) fn new(
        p: &nn::Path,
        idx: usize,
        geo: &LayerGeometry,
        embedding_dim: i64,
        mixer: MixerImpl,
    ) -> Self {
        let kk = geo.kernel * geo.kernel;
        FilterConv {
            linear: Linear::new(
                &p.sub(format!("linear_{idx}")),
                embedding_dim,
                geo.c_in * kk,
            ),
            mixer: Mixer::new(
                &p.sub(format!("channel_mixer_{idx}")),
                geo.c_in,
                geo.c_out,
                mixer,
            ),
            geo: *geo,
        }
    }

    /// `[B, c_in, S, S] -> [B, c_out, S', S']`.
    pub(super) fn forward(&self, h: &Tensor, labels: &Labels) -> Tensor {
        let g = &self.geo;
        let kernels = labels.project(&self.linear, &[-1, g.c_in, g.kernel, g.kernel]);
        let d = self.depthwise(h, &labels.per_sample(kernels));
        self.mixer.forward(&d)
    }

    /// The per-sample depthwise (transposed) convolution of `h` `[B, c_in, S, S]` with
    /// `kernels` `[B, c_in, k, k]`.
    fn depthwise(&self, h: &Tensor, kernels: &Tensor) -> Tensor {
        let g = &self.geo;
        let run = |h: &Tensor, k: &Tensor| {
            if g.transposed {
                depthwise_conv_transpose2d(h, k, g.stride, g.padding)
            } else {
                depthwise_conv2d(h, k, g.stride, g.padding)
            }
        };
        if !autocast_enabled(h.device()) {
            return run(h, kernels);
        }
        // bfloat16 (crate::precision): the per-sample depthwise convolution runs in float32.
        // It is no matrix product (k x k multiply-adds per output, memory-bound), and libtorch
        // 2.11's grouped transposed convolution in bfloat16 is 10 to 30 times slower than in
        // float32 on the CPU (results/performance.md).
        autocast(Precision::Fp32, h.device(), || {
            run(&h.to_kind(Kind::Float), &kernels.to_kind(Kind::Float))
        })
    }
}
