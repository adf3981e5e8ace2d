//! `nn.Linear` with PyTorch's default initialisation: the label linears (`linear_k`) and the
//! filter model's channel mixers (`channel_mixer_k`).

use tch::{nn, Tensor};

/// `y = x W^T + b` with weight `[out, in]` and bias `[out]`, both `U(-1/sqrt(in), 1/sqrt(in))`
/// (PyTorch's default).
#[derive(Debug)]
pub(super) struct Linear {
    pub(super) ws: Tensor,
    pub(super) bs: Tensor,
}

impl Linear {
    /// Creates `weight` then `bias` under `p` (the module's path, e.g. `generator.linear_5`).
    pub(super) fn new(p: &nn::Path, in_dim: i64, out_dim: i64) -> Self {
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

    /// `[..., in] -> [..., out]`.
    pub(super) fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.ws, Some(&self.bs))
    }
}
