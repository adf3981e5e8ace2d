//! The activations of the CIGN and IGN layers, and training-mode dropout followed by an
//! activation (with cign's fused CPU form, [`crate::dropout`]).

use tch::{Device, Kind, Tensor};

use crate::precision::autocast_enabled;

/// Negative slope of the encoders' LeakyReLU (the authors' `nn.LeakyReLU(0.2)`, as in the IGN
/// code).
pub(crate) const LEAKY_SLOPE: f64 = 0.2;

/// `max(x, 0) + slope min(x, 0)` in `x`'s kind with `slope` a scalar (the arithmetic of
/// `torch.nn.functional.leaky_relu`: the slope in the kernel's float accuracy, not rounded to
/// `x`'s kind; none of the three operations is on autocast's lists). The gradient at `x = 0`
/// is `slope`, as `leaky_relu`'s.
pub(crate) fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    x.relu() + x.clamp_max(0.0) * slope
}

#[derive(Debug)]
pub(crate) enum Activation {
    /// LeakyReLU with [`LEAKY_SLOPE`]. Float32 outside autocast (the float32 path the golden
    /// tests hold bit for bit): `prelu` with the slope as a one-element float32 tensor (the
    /// same value and gradient as `leaky_relu`). Any other kind, or under autocast (which runs
    /// `prelu` in bfloat16, rounding the slope to 0.2001953125): [`leaky_relu`] with the
    /// slope 0.2 as a scalar, as `nn.LeakyReLU(0.2)` runs in PyTorch, also under autocast.
    LeakyRelu {
        slope: Tensor,
    },
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    /// LeakyReLU(0.2) with its slope tensor on `device` (moved to another device's input when
    /// needed).
    pub(crate) fn leaky_relu(device: Device) -> Activation {
        let slope = Tensor::from_slice(&[LEAKY_SLOPE as f32]).to_device(device);
        Activation::LeakyRelu { slope }
    }

    /// The activation alone (element-wise, any shape).
    pub(crate) fn forward(&self, h: &Tensor) -> Tensor {
        match self {
            Activation::LeakyRelu { slope }
                if h.kind() == Kind::Float && !autocast_enabled(h.device()) =>
            {
                // to_device is a no-op on the device the model was built on
                h.prelu(&slope.to_device(h.device()))
            }
            Activation::LeakyRelu { .. } => leaky_relu(h, LEAKY_SLOPE),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::autocast;
    use crate::Precision;

    /// Negative inputs with many mantissas, for the slope.
    fn negatives() -> Tensor {
        Tensor::linspace(-50.0, -0.01, 4001, (Kind::Float, Device::Cpu))
    }

    /// In bfloat16 (and in float32 under bfloat16 autocast) the slope stays 0.2, as
    /// `nn.LeakyReLU(0.2)` computes it: `round(x * 0.2f)` in the input's kind; `prelu` would
    /// round the slope to bfloat16 (0.2001953125) first.
    #[test]
    fn leaky_relu_keeps_its_slope_in_bfloat16() {
        let act = Activation::leaky_relu(Device::Cpu);
        let x = negatives().to_kind(Kind::BFloat16);
        let expected = (x.to_kind(Kind::Float) * LEAKY_SLOPE).to_kind(Kind::BFloat16);
        let got = act.forward(&x);
        assert_eq!(got.kind(), Kind::BFloat16);
        assert!(got.equal(&expected), "bfloat16 LeakyReLU is not x * 0.2");
        // positive inputs pass unchanged
        let pos = x.neg();
        assert!(act.forward(&pos).equal(&pos));

        // a float32 input under bfloat16 autocast: float32, slope 0.2
        let x = negatives();
        let got = autocast(Precision::Bf16, Device::Cpu, || act.forward(&x));
        assert_eq!(got.kind(), Kind::Float);
        assert!(got.equal(&(&x * LEAKY_SLOPE)));
    }

    /// Float32 outside autocast is `prelu` with the float32 slope, unchanged (the golden
    /// tests hold it bit for bit), and its gradient at 0 is the slope, as in the other path.
    #[test]
    fn float32_leaky_relu_is_prelu() {
        let act = Activation::leaky_relu(Device::Cpu);
        let x = Tensor::cat(&[negatives(), negatives().neg()], 0);
        let slope = Tensor::from_slice(&[LEAKY_SLOPE as f32]);
        assert!(act.forward(&x).equal(&x.prelu(&slope)));
        for kind in [Kind::Float, Kind::Double] {
            let z = Tensor::zeros([1], (kind, Device::Cpu)).set_requires_grad(true);
            act.forward(&z).sum(kind).backward();
            assert!(
                (z.grad().double_value(&[0]) - LEAKY_SLOPE).abs() < 1e-7,
                "{kind:?}"
            );
        }
    }
}
