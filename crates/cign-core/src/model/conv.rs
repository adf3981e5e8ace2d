//! Convolutions and transposed convolutions without bias (`nn.Conv2d` / `nn.ConvTranspose2d`
//! with `bias=False`, as in the authors' modules and the IGN code), with PyTorch's default
//! initialisation.

use tch::{nn, Tensor};

use super::LayerGeometry;

/// Output size of a convolution along one axis.
pub(crate) fn conv_out(size: i64, k: i64, stride: i64, pad: i64) -> i64 {
    (size + 2 * pad - k) / stride + 1
}

/// Output size of a transposed convolution along one axis (no output padding).
pub(crate) fn conv_transpose_out(size: i64, k: i64, stride: i64, pad: i64) -> i64 {
    (size - 1) * stride - 2 * pad + k
}

/// One (transposed) convolution of a [`LayerGeometry`].
#[derive(Debug)]
pub(crate) struct Conv {
    /// `[c_out, c_in + extra, k, k]`, transposed `[c_in + extra, c_out, k, k]`.
    pub(crate) weight: Tensor,
    geo: LayerGeometry,
}

impl Conv {
    /// Creates `weight` under `p` (the module's path, e.g. `discriminator.conv_1`) for
    /// `geo.c_in + extra` input channels (channel conditioning's label map is the extra one).
    pub(crate) fn new(p: &nn::Path, geo: &LayerGeometry, extra: i64) -> Self {
        let (c_in, k) = (geo.c_in + extra, geo.kernel);
        // PyTorch: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
        // fan_in = weight.size(1) * k * k; a transposed convolution's weight is [in, out, k, k].
        let (dims, fan_in) = if geo.transposed {
            ([c_in, geo.c_out, k, k], geo.c_out * k * k)
        } else {
            ([geo.c_out, c_in, k, k], c_in * k * k)
        };
        let bound = 1.0 / (fan_in as f64).sqrt();
        let init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Conv {
            weight: p.var("weight", &dims, init),
            geo: *geo,
        }
    }

    /// `[B, c_in + extra, in_size, in_size] -> [B, c_out, out_size, out_size]`.
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        self.apply(x, &self.weight)
    }

    /// The layer's (transposed) convolution with another weight (a slice of this one).
    pub(crate) fn apply(&self, x: &Tensor, weight: &Tensor) -> Tensor {
        let g = &self.geo;
        let (s, p) = ([g.stride, g.stride], [g.padding, g.padding]);
        if g.transposed {
            x.conv_transpose2d(weight, None::<Tensor>, s, p, [0, 0], 1, [1, 1])
        } else {
            x.conv2d(weight, None::<Tensor>, s, p, [1, 1], 1)
        }
    }
}
