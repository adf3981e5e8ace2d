//! Channel conditioning (arXiv 2406.02841, Sec. 3.2; the authors' `CIGN_channel`): before the
//! layer's (transposed) convolution the label becomes one more input channel, the map
//! `tanh(Linear(E -> S S))` of its embedding viewed as `[1, S, S]` (`S` the layer's input side).

use tch::{nn, Tensor};

use super::conv::Conv;
use super::label::Labels;
use super::linear::Linear;
use super::LayerGeometry;

/// The variables `conv_k.weight` (`c_in + 1` input channels) and `linear_k.{weight, bias}`.
#[derive(Debug)]
pub(super) struct ChannelConv {
    conv: Conv,
    linear: Linear,
    geo: LayerGeometry,
}

impl ChannelConv {
    /// Creates `conv_{idx}` then `linear_{idx}` under `p` (the half's path).
    pub(super) fn new(p: &nn::Path, idx: usize, geo: &LayerGeometry, embedding_dim: i64) -> Self {
        ChannelConv {
            conv: Conv::new(&p.sub(format!("conv_{idx}")), geo, 1),
            linear: Linear::new(
                &p.sub(format!("linear_{idx}")),
                embedding_dim,
                geo.in_size * geo.in_size,
            ),
            geo: *geo,
        }
    }

    /// `[B, c_in, S, S] -> [B, c_out, S', S']`.
    pub(super) fn forward(&self, h: &Tensor, labels: &Labels) -> Tensor {
        let (c_in, s) = (self.geo.c_in, self.geo.in_size);
        let maps = labels.project(&self.linear, &[-1, 1, s, s]);
        if !labels.is_per_class() {
            // the authors': one convolution over [image channels, label map]
            return self.conv.forward(&Tensor::cat(&[h, &maps], 1));
        }
        // Per class (LabelImpl::PerClass): the image channels through the first c_in input
        // slices of the weight, plus each class's map through the last, gathered by label.
        // The input-channel axis: 1 for a convolution ([out, in, k, k]), 0 for a transposed
        // one ([in, out, k, k]).
        let axis = if self.geo.transposed { 0 } else { 1 };
        let w = &self.conv.weight;
        let per_class = self.conv.apply(&maps, &w.narrow(axis, c_in, 1));
        self.conv.apply(h, &w.narrow(axis, 0, c_in)) + labels.per_sample(per_class)
    }
}
