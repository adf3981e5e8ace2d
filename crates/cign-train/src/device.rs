//! The `--device` argument of the binaries and `train.device` of the config.

use anyhow::{bail, Result};
use tch::Device;

use crate::config::DeviceChoice;

/// Parses a `--device` argument (`cpu`, `cuda` or `auto`) of the command-line tools.
///
/// # Errors
///
/// An unknown name, or `cuda` without a CUDA device.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => DeviceChoice::Cpu.resolve(),
        "cuda" => DeviceChoice::Cuda.resolve(),
        "auto" => DeviceChoice::Auto.resolve(),
        other => bail!("--device {other}: expected cpu, cuda or auto"),
    }
}
