//! Generation helpers shared by the training loop, `cign-sample` and `cign-eval`.

use cign_core::CignModel;
use tch::{Kind, Tensor};

/// Generates `f^k(z, c)` for each class `c` with the same noise `z` in every row (so the effect
/// of the label is visible column by column). For the unconditional model there is one row.
/// Eval mode, no gradient.
pub fn class_grid_rows(model: &CignModel, z: &Tensor, applications: usize) -> Vec<Tensor> {
    let cfg = model.config();
    if !cfg.conditioning.is_conditional() {
        return vec![apply(model, z, None, applications)];
    }
    (0..cfg.num_classes)
        .map(|c| {
            let labels = Tensor::full([z.size()[0]], c, (Kind::Int64, z.device()));
            apply(model, z, Some(&labels), applications)
        })
        .collect()
}

/// `f` applied `applications` times (at least once) in eval mode.
pub fn apply(
    model: &CignModel,
    x: &Tensor,
    labels: Option<&Tensor>,
    applications: usize,
) -> Tensor {
    model.reapply(x, labels, applications.max(1), false)
}

/// Generates `n` images of class `label` (or unconditional when `label` is `None`) in batches
/// of `batch`, with noise drawn from torch's generator.
pub fn generate_class(
    model: &CignModel,
    label: Option<i64>,
    n: usize,
    batch: usize,
    applications: usize,
    device: tch::Device,
) -> Tensor {
    let mut parts = Vec::new();
    let mut done = 0;
    while done < n {
        let m = batch.min(n - done) as i64;
        let z = cign_core::sample_noise(m, model.config(), device);
        let labels = label.map(|c| Tensor::full([m], c, (Kind::Int64, device)));
        parts.push(apply(model, &z, labels.as_ref(), applications).to_device(tch::Device::Cpu));
        done += m as usize;
    }
    Tensor::cat(&parts, 0)
}
