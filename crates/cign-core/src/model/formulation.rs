//! The formulations a model can be built with: exact speed variants of the same network.

use super::{BnLayout, LabelImpl, MixerImpl};

/// The formulations a model runs with, fixed when it is built
/// ([`crate::CignModel::with_formulation`]). All are exact: they compute the same function and
/// gradients and differ only in floating-point summation order and in speed.
/// [`Formulation::AUTHORS`] reproduces the authors' code bit for bit; the default is the
/// fastest measured on the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Formulation {
    /// Channel mixer of the filter model.
    pub mixer: MixerImpl,
    /// Label maps and kernels.
    pub label: LabelImpl,
    /// BatchNorm layout.
    pub bn: BnLayout,
}

impl Formulation {
    /// The authors' formulation.
    pub const AUTHORS: Formulation = Formulation {
        mixer: MixerImpl::Linear,
        label: LabelImpl::PerSample,
        bn: BnLayout::Nchw,
    };

    /// The fastest measured formulation for a device (what [`crate::CignModel::new`] builds).
    /// Measured on the CPU only; CUDA gets the same until measured there.
    pub fn default_for(device: tch::Device) -> Formulation {
        let _ = device;
        Formulation {
            mixer: MixerImpl::default(),
            label: LabelImpl::default(),
            bn: BnLayout::default(),
        }
    }
}
