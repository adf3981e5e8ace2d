//! Helpers shared by the test binaries of cign-core.
#![allow(dead_code)]

pub mod fixtures;
pub mod unfold;

/// Held by a test while it seeds torch's global generator and draws from it: the tests of a
/// binary run in parallel threads, and without it one test's draws (a model's initialisation,
/// a dropout mask) could land between another's seed and draws.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

use cign_core::{BnLayout, Formulation, LabelImpl, MixerImpl};
use tch::Device;

/// Every formulation other than the authors': each of cign's changes alone on top of
/// [`Formulation::AUTHORS`], then all of them together (the CPU default).
pub fn other_formulations() -> Vec<Formulation> {
    let a = Formulation::AUTHORS;
    vec![
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
