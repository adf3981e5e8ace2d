//! The formulations a model can be built with: exact speed variants of the same network.

use super::{BnLayout, LabelImpl, MixerImpl};

/// The formulations a model runs with, fixed when it is built
/// ([`crate::CignModel::with_formulation`]). All are exact: they compute the same function and
/// gradients and differ only in floating-point summation order and in speed.
/// [`Formulation::AUTHORS`] reproduces the authors' code bit for bit; the default is the
/// fastest measured on the CPU among the formulations that stay as close to the exact step as
/// the authors' own float32 code ([`BnLayout::RowsForSmallMaps`] is faster but does not, so it
/// is not the default).
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

    /// The default formulation for a device (what [`crate::CignModel::new`] builds; see
    /// [`Formulation`] for how it was chosen).
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
