//! Helpers shared by the test binaries of cign-core.

use cign_core::{BnLayout, DepthwiseImpl, Formulation, LabelImpl, MixerImpl};
use tch::Device;

/// Every formulation other than the authors': each of cign's changes alone on top of
/// [`Formulation::AUTHORS`], then all of them together (the CPU default).
pub fn other_formulations() -> Vec<Formulation> {
    let a = Formulation::AUTHORS;
    vec![
        Formulation {
            depthwise: DepthwiseImpl::Unfold,
            ..a
        },
        Formulation {
            mixer: MixerImpl::Conv1x1,
            ..a
        },
        Formulation {
            label: LabelImpl::PerClass,
            ..a
        },
        Formulation {
            bn: BnLayout::RowsForSmallMaps,
            ..a
        },
        Formulation::default_for(Device::Cpu),
    ]
}
