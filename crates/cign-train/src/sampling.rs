//! Generation helpers shared by the training loop, `cign-sample` and `cign-eval`.
//!
//! What `cign-sample`, `cign-eval` and `cign-curve` generate goes through the fallible
//! functions here ([`sample_noise`], [`generate_rows_u8`], [`generate_class`]): the large
//! allocations (the noise, the concatenated outputs) use libtorch's fallible calls, and the
//! network runs on batches of [`GENERATION_BATCH`] images, so that an allocation libtorch
//! cannot make is an error, never a panic.

use anyhow::{Context, Result};
use cign_core::{CignModel, ModelConfig};
use cign_data::IdxImages;
use tch::{Device, Kind, Tensor};

use crate::images::to_u8;

/// Images per forward pass of the generation functions.
pub const GENERATION_BATCH: usize = 250;

/// A libtorch error as its message alone, without the C++ frame dump libtorch appends
/// (`frame #0: ...`, `Exception raised from ...`), so that it fits the one-line report.
pub fn torch_error(err: tch::TchError) -> anyhow::Error {
    anyhow::anyhow!("{}", cign_metrics::cli::one_line(&err.to_string()))
}

/// [`cign_core::sample_noise`] of `n` images, its libtorch error (e.g. the memory cannot be
/// allocated) on one line with the size named.
///
/// # Errors
///
/// libtorch fails.
pub fn sample_noise(n: usize, cfg: &ModelConfig, device: Device) -> Result<Tensor> {
    cign_core::sample_noise(n as i64, cfg, device)
        .map_err(torch_error)
        .with_context(|| format!("cannot allocate the noise of {n} images on {device:?}"))
}

/// Generates one row of 8-bit images per entry of `labels` (`Some(class)`, or `None` for the
/// unconditional model), each row `f^k(z, label)` of the same noise `z` (`[N, C, 28, 28]`),
/// `applications` times `f` in eval mode, in batches of [`GENERATION_BATCH`] images.
///
/// # Errors
///
/// libtorch or the pixel buffers cannot be allocated; non-finite pixels (see [`to_u8`]).
pub fn generate_rows_u8(
    model: &CignModel,
    z: &Tensor,
    labels: &[Option<i64>],
    applications: usize,
) -> Result<Vec<IdxImages>> {
    let n = z.size()[0] as usize;
    let device = z.device();
    let mut rows = Vec::with_capacity(labels.len());
    for label in labels {
        let mut row: Option<IdxImages> = None;
        let mut done = 0;
        while done < n {
            let m = GENERATION_BATCH.min(n - done);
            let part = z.f_narrow(0, done as i64, m as i64).map_err(torch_error)?;
            let l = label
                .map(|c| Tensor::f_full([m as i64], c, (Kind::Int64, device)))
                .transpose()
                .map_err(torch_error)?;
            let images = to_u8(&apply(model, &part, l.as_ref(), applications))?;
            match &mut row {
                None => {
                    let mut pixels = Vec::new();
                    let total = n * images.rows * images.cols;
                    pixels
                        .try_reserve_exact(total)
                        .with_context(|| format!("cannot allocate {total} bytes for {n} images"))?;
                    pixels.extend_from_slice(&images.pixels);
                    row = Some(IdxImages {
                        count: m,
                        pixels,
                        ..images
                    });
                }
                Some(r) => {
                    r.pixels.extend_from_slice(&images.pixels);
                    r.count += m;
                }
            }
            done += m;
        }
        if let Some(r) = row {
            rows.push(r);
        }
    }
    Ok(rows)
}

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
///
/// # Errors
///
/// libtorch fails (e.g. cannot allocate the images).
pub fn generate_class(
    model: &CignModel,
    label: Option<i64>,
    n: usize,
    batch: usize,
    applications: usize,
    device: tch::Device,
) -> Result<Tensor> {
    let mut parts = Vec::new();
    let mut done = 0;
    while done < n {
        let m = batch.min(n - done);
        let z = sample_noise(m, model.config(), device)?;
        let labels = label
            .map(|c| Tensor::f_full([m as i64], c, (Kind::Int64, device)))
            .transpose()
            .map_err(torch_error)?;
        parts.push(
            apply(model, &z, labels.as_ref(), applications)
                .f_to_device(Device::Cpu)
                .map_err(torch_error)?,
        );
        done += m;
    }
    Tensor::f_cat(&parts, 0)
        .map_err(torch_error)
        .with_context(|| format!("cannot allocate {n} generated images"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn torch_errors_lose_their_frame_dump() {
        let e = tch::TchError::Torch(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes. \
             Error code 12 (Cannot allocate memory)\nframe #0: c10::ThrowEnforceNotMet(...)\n\
             frame #1: ..."
                .into(),
        );
        let text = super::torch_error(e).to_string();
        assert!(text.ends_with("(Cannot allocate memory)"), "{text}");
    }
}
