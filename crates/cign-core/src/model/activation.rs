//! The activations of the CIGN and IGN layers, and training-mode dropout followed by an
//! activation (with cign's fused CPU form, [`crate::dropout`]).

use tch::{Device, Kind, Tensor};

/// Negative slope of the encoders' LeakyReLU (the authors' `nn.LeakyReLU(0.2)`, as in the IGN
/// code).
pub(crate) const LEAKY_SLOPE: f64 = 0.2;

#[derive(Debug)]
pub(crate) enum Activation {
    /// LeakyReLU with [`LEAKY_SLOPE`], run as `prelu` with the slope as a one-element tensor
    /// (the same value and gradient as `leaky_relu`).
    LeakyRelu {
        slope: Tensor,
    },
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    /// LeakyReLU(0.2) with its slope tensor on `device`.
    pub(crate) fn leaky_relu(device: Device) -> Activation {
        let slope = Tensor::from_slice(&[LEAKY_SLOPE as f32]).to_device(device);
        Activation::LeakyRelu { slope }
    }

    /// The activation alone (element-wise, any shape).
    pub(crate) fn forward(&self, h: &Tensor) -> Tensor {
        match self {
            // to_kind is a no-op unless the model was converted to another float kind
            Activation::LeakyRelu { slope } => h.prelu(&slope.to_kind(h.kind())),
            Activation::Relu => h.relu(),
            Activation::Sigmoid => h.sigmoid(),
            Activation::Tanh => h.tanh(),
        }
    }

    /// Training-mode element-wise dropout with probability `p` (`torch.nn.Dropout`; none when
    /// `p` is 0), then the activation.
    ///
    /// On the CPU, dropout followed by a (leaky) ReLU is one multiplication in float32
    /// ([`crate::dropout::dropout_then_leaky_relu`]: the same value and gradient); a bfloat16
    /// input ([`crate::precision`]) is cast to float32 first, because cign's CPU dropout works
    /// on float32 (the same draws from torch's generator in both precisions; the next
    /// convolution casts back).
    pub(crate) fn after_dropout(&self, h: Tensor, p: f64) -> Tensor {
        if p <= 0.0 {
            return self.forward(&h);
        }
        let cpu = h.device() == Device::Cpu;
        let h = if cpu && h.kind() == Kind::BFloat16 {
            h.to_kind(Kind::Float)
        } else {
            h
        };
        let fused_slope = match self {
            Activation::LeakyRelu { .. } => Some(LEAKY_SLOPE),
            Activation::Relu => Some(0.0),
            Activation::Sigmoid | Activation::Tanh => None,
        };
        match fused_slope {
            Some(slope) if cpu && h.kind() == Kind::Float => {
                crate::dropout::dropout_then_leaky_relu(&h, p, slope)
            }
            _ => self.forward(&crate::dropout::dropout(&h, p)),
        }
    }
}
