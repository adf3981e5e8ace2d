//! [`DeviceChoice`]: the one device argument of the cign binaries and configs (`auto`, `cpu`,
//! `cuda`, `cuda:N`), and [`check_device`], which every function of this crate that takes a
//! [`tch::Device`] calls before touching it, so that a CUDA request on a machine without CUDA
//! is an error and never a libtorch panic.
//!
//! ```
//! use cign_metrics::device::DeviceChoice;
//! let choice: DeviceChoice = "cuda:1".parse()?;
//! assert_eq!(choice, DeviceChoice::Cuda(1));
//! assert_eq!(choice.to_string(), "cuda:1");
//! // An explicit CUDA request never falls back to the CPU: here 0 devices are visible.
//! assert!(choice.resolve_with(0).is_err());
//! assert_eq!(DeviceChoice::Auto.resolve_with(0)?, tch::Device::Cpu);
//! # Ok::<(), cign_metrics::device::DeviceError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tch::Device;

/// The forms [`DeviceChoice`] accepts, for messages.
pub const DEVICE_FORMS: &str = "auto, cpu, cuda or cuda:N (N = 0, 1, ...)";

/// Where to run: the CPU, a CUDA device, or the first CUDA device when there is one.
///
/// Parsed from and written as `auto`, `cpu`, `cuda` (= `cuda:0`) and `cuda:N`
/// ([`FromStr`], [`fmt::Display`], serde as the same strings), so the same type serves a
/// clap argument (`#[arg(long, default_value = "auto")] device: DeviceChoice`) and a config
/// value. [`DeviceChoice::resolve`] turns it into a [`tch::Device`] after checking that the
/// device exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when CUDA is available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device with this index (`cuda` is `cuda:0`).
    Cuda(usize),
}

/// A device that cannot be used, or a device text that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The text is not one of the accepted forms.
    #[error("'{text}' is not a device: expected {DEVICE_FORMS}")]
    Parse {
        /// The text given.
        text: String,
    },
    /// CUDA was requested but no CUDA device is visible (CPU-only libtorch, no GPU, no
    /// driver, or `CUDA_VISIBLE_DEVICES` empty).
    #[error("device {requested}: CUDA is not available on this machine (no CUDA device visible to libtorch); use --device cpu or auto")]
    CudaUnavailable {
        /// The device asked for.
        requested: String,
    },
    /// The CUDA index is not below the number of visible devices.
    #[error("device {requested}: only {count} CUDA device(s) visible (cuda:0 to cuda:{last})", last = count.saturating_sub(1))]
    CudaIndex {
        /// The device asked for.
        requested: String,
        /// Number of CUDA devices visible.
        count: usize,
    },
    /// A device libtorch knows but this crate does not run on (MPS, Vulkan).
    #[error("device {requested}: not supported (use cpu or cuda:N)")]
    Unsupported {
        /// The device asked for.
        requested: String,
    },
}

impl DeviceChoice {
    /// The [`tch::Device`] for this choice on this machine. `Auto` is `Cuda(0)` when CUDA is
    /// available, else `Cpu`; an explicit CUDA request is checked against
    /// `tch::Cuda::device_count()` and never falls back to the CPU.
    ///
    /// # Errors
    /// [`DeviceError::CudaUnavailable`] when CUDA is requested and no device is visible,
    /// [`DeviceError::CudaIndex`] when the index is too large.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        self.resolve_with(cuda_device_count())
    }

    /// [`DeviceChoice::resolve`] as if `cuda_count` CUDA devices were visible.
    ///
    /// # Errors
    /// As [`DeviceChoice::resolve`].
    pub fn resolve_with(self, cuda_count: usize) -> Result<Device, DeviceError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto if cuda_count > 0 => Ok(Device::Cuda(0)),
            DeviceChoice::Auto => Ok(Device::Cpu),
            DeviceChoice::Cuda(_) if cuda_count == 0 => Err(DeviceError::CudaUnavailable {
                requested: self.to_string(),
            }),
            DeviceChoice::Cuda(i) if i >= cuda_count => Err(DeviceError::CudaIndex {
                requested: self.to_string(),
                count: cuda_count,
            }),
            DeviceChoice::Cuda(i) => Ok(Device::Cuda(i)),
        }
    }
}

/// Number of CUDA devices libtorch sees (0 on a CPU-only machine or build).
pub fn cuda_device_count() -> usize {
    usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
}

/// Checks that `device` exists on this machine, so that moving a tensor there cannot fail for
/// that reason. Called by every function of this crate that takes a [`tch::Device`].
///
/// # Errors
/// [`DeviceError::CudaUnavailable`] / [`DeviceError::CudaIndex`] for a CUDA device that is not
/// there, [`DeviceError::Unsupported`] for MPS and Vulkan.
pub fn check_device(device: Device) -> Result<(), DeviceError> {
    match device {
        Device::Cpu => Ok(()),
        Device::Cuda(i) => DeviceChoice::Cuda(i).resolve().map(|_| ()),
        other => Err(DeviceError::Unsupported {
            requested: format!("{other:?}"),
        }),
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    /// `auto`, `cpu`, `cuda` or `cuda:N` (ASCII case-insensitive, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let text = s.trim().to_ascii_lowercase();
        match text.as_str() {
            "auto" => return Ok(DeviceChoice::Auto),
            "cpu" => return Ok(DeviceChoice::Cpu),
            "cuda" => return Ok(DeviceChoice::Cuda(0)),
            _ => {}
        }
        text.strip_prefix("cuda:")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<usize>().ok())
            .map(DeviceChoice::Cuda)
            .ok_or_else(|| DeviceError::Parse {
                text: s.to_string(),
            })
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_round_trips_every_form() {
        for (text, want) in [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("CPU", DeviceChoice::Cpu),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:0", DeviceChoice::Cuda(0)),
            (" cuda:3 ", DeviceChoice::Cuda(3)),
        ] {
            let got: DeviceChoice = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<DeviceChoice>().unwrap(), want);
            let json = serde_json::to_string(&got).unwrap();
            assert_eq!(serde_json::from_str::<DeviceChoice>(&json).unwrap(), want);
        }
        assert_eq!(DeviceChoice::Cuda(0).to_string(), "cuda:0");
        assert_eq!(
            serde_json::to_string(&DeviceChoice::Auto).unwrap(),
            "\"auto\""
        );
        for bad in [
            "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda0", "", "mps",
        ] {
            let err = bad.parse::<DeviceChoice>().unwrap_err().to_string();
            assert!(
                err.contains(&format!("'{bad}'")) && err.contains("auto, cpu, cuda or cuda:N"),
                "{bad}: {err}"
            );
        }
        let err = serde_json::from_str::<DeviceChoice>("\"gpu\"").unwrap_err();
        assert!(err.to_string().contains("cuda:N"), "{err}");
    }

    #[test]
    fn explicit_cuda_never_falls_back() {
        assert_eq!(DeviceChoice::Auto.resolve_with(0).unwrap(), Device::Cpu);
        assert_eq!(DeviceChoice::Auto.resolve_with(2).unwrap(), Device::Cuda(0));
        assert_eq!(DeviceChoice::Cpu.resolve_with(2).unwrap(), Device::Cpu);
        assert_eq!(
            DeviceChoice::Cuda(1).resolve_with(2).unwrap(),
            Device::Cuda(1)
        );
        assert_eq!(
            DeviceChoice::Cuda(0).resolve_with(0).unwrap_err(),
            DeviceError::CudaUnavailable {
                requested: "cuda:0".into()
            }
        );
        let err = DeviceChoice::Cuda(3).resolve_with(2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device cuda:3: only 2 CUDA device(s) visible (cuda:0 to cuda:1)"
        );
    }

    #[test]
    fn this_machine_agrees_with_libtorch() {
        let n = cuda_device_count();
        assert_eq!(n > 0, tch::Cuda::is_available());
        assert!(check_device(Device::Cuda(n)).is_err());
        assert!(check_device(Device::Cpu).is_ok());
        assert!(check_device(Device::Mps).is_err());
    }
}
