//! Mixed precision: the arithmetic a model's passes run in (`train.precision` of a training
//! config, `--precision` of the binaries).
//!
//! [`Precision::Bf16`] is what `torch.autocast(device_type, dtype=torch.bfloat16)` does in
//! PyTorch, and it is libtorch's own autocast that does it: inside [`autocast`] the operations
//! on autocast's lower-precision list (convolutions, transposed convolutions, `linear`,
//! `matmul`/`bmm`, `prelu`) cast their float32 inputs and weights to bfloat16 and return
//! bfloat16; the losses on its float32 list (`l1_loss`, ...) cast back to float32; other
//! operations run in the type of their inputs (BatchNorm on bfloat16 input keeps float32
//! parameters and running statistics and computes its statistics in float32). Weight casts
//! are cached while the outermost scope lasts, as in PyTorch. Gradients flow back through the
//! casts, so the variables (the master weights), their gradients, AdamW's state and the
//! checkpoints stay float32; a model trained in one precision runs in the other.
//!
//! The model adds what autocast leaves to the caller in PyTorch ([`crate::CignModel`]): its
//! outputs are returned in float32, so every loss and reduction after it is float32; on the
//! CPU its dropout runs on float32 activations (cign's mask generator, [`crate::dropout`], is
//! float32; the draws from torch's generator are then the same in both precisions); and the
//! filter model's per-sample depthwise convolutions run in float32 (no matrix product, and
//! libtorch's grouped transposed convolution is many times slower in bfloat16 on the CPU),
//! its kernel linears and channel mixers in bfloat16.
//!
//! [`Precision::Fp32`] touches nothing: the float32 path is the one that existed before this
//! module (the golden tests hold it bit for bit).
//!
//! `tch` 0.24 exposes only CUDA's autocast switch (`tch::autocast`, libtorch's deprecated
//! `at::autocast::set_enabled`, which does not set the dtype: CUDA's default is float16). The
//! per-device functions of libtorch 2.11 (`at::autocast::set_autocast_enabled(DeviceType,
//! bool)`, `set_autocast_dtype`, `increment_nesting`, `decrement_nesting`, `clear_cache`,
//! declared in `ATen/autocast_mode.h`) are exported by `libtorch_cpu`; this module calls them
//! by their Itanium C++ ABI names (Linux, macOS). Their arguments are `c10::DeviceType` and
//! `c10::ScalarType`, both `enum class : int8_t`, and `bool`, which that ABI passes as C
//! passes `int8_t` and `bool`. Elsewhere (MSVC) bfloat16 is refused with an error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::CoreError;

/// The arithmetic of a model's passes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32 (default).
    #[default]
    Fp32,
    /// Convolutions, transposed convolutions and linears in bfloat16 through libtorch's
    /// autocast; variables, optimizer state, losses, reductions and BatchNorm statistics in
    /// float32.
    Bf16,
}

impl Precision {
    /// The names accepted by [`FromStr`] and serde.
    pub const NAMES: [&'static str; 2] = ["fp32", "bf16"];

    /// The config and command-line name: `fp32` or `bf16`.
    pub fn name(&self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Checks that this precision can run on `device`.
    ///
    /// # Errors
    ///
    /// [`CoreError::Device`] for [`Precision::Bf16`] on a device other than the CPU or
    /// CUDA, or on a target whose C++ ABI this module does not call (MSVC).
    pub fn check_device(&self, device: Device) -> Result<(), CoreError> {
        match self {
            Precision::Fp32 => Ok(()),
            Precision::Bf16 => {
                if !ffi::AVAILABLE {
                    return Err(CoreError::Device(
                        "precision = bf16 needs libtorch's autocast through the Itanium C++ ABI, \
                         which this target does not use"
                            .into(),
                    ));
                }
                device_type(device).map(|_| ()).ok_or_else(|| {
                    CoreError::Device(format!(
                        "precision = bf16 runs on the CPU or CUDA, not on {device:?}"
                    ))
                })
            }
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    /// `fp32` or `bf16` (the error lists both).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("'{s}': expected fp32 or bf16")),
        }
    }
}

/// `c10::DeviceType` of the devices autocast is used on: CPU = 0, CUDA = 1.
fn device_type(device: Device) -> Option<i8> {
    match device {
        Device::Cpu => Some(0),
        Device::Cuda(_) => Some(1),
        _ => None,
    }
}

/// `c10::ScalarType::BFloat16`.
const SCALAR_TYPE_BFLOAT16: i8 = 15;

#[cfg(not(target_env = "msvc"))]
mod ffi {
    pub const AVAILABLE: bool = true;

    // libtorch_cpu's at::autocast functions (ATen/autocast_mode.h, libtorch 2.11); the
    // binaries link libtorch_cpu through torch-sys.
    extern "C" {
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_autocast_enabled(device_type: i8) -> bool;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_autocast_enabled(device_type: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
        pub fn get_autocast_dtype(device_type: i8) -> i8;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_autocast_dtype(device_type: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

#[cfg(target_env = "msvc")]
mod ffi {
    pub const AVAILABLE: bool = false;
    pub unsafe fn is_autocast_enabled(_: i8) -> bool {
        false
    }
    pub unsafe fn set_autocast_enabled(_: i8, _: bool) {}
    pub unsafe fn get_autocast_dtype(_: i8) -> i8 {
        0
    }
    pub unsafe fn set_autocast_dtype(_: i8, _: i8) {}
    pub unsafe fn increment_nesting() -> i32 {
        0
    }
    pub unsafe fn decrement_nesting() -> i32 {
        0
    }
    pub unsafe fn clear_cache() {}
}

/// Whether libtorch's autocast is on for `device`'s type in this thread.
pub fn autocast_enabled(device: Device) -> bool {
    match device_type(device) {
        // SAFETY: reads a thread-local flag of libtorch; the argument is a valid DeviceType.
        Some(t) if ffi::AVAILABLE => unsafe { ffi::is_autocast_enabled(t) },
        _ => false,
    }
}

/// Restores the autocast state of one device type when a scope ends (also on unwinding).
struct Scope {
    device_type: i8,
    was_enabled: bool,
    was_dtype: i8,
}

impl Scope {
    fn enter(device_type: i8, enabled: bool) -> Scope {
        // SAFETY: thread-local settings of libtorch's autocast, valid DeviceType and
        // ScalarType values; none of these functions throws.
        unsafe {
            let scope = Scope {
                device_type,
                was_enabled: ffi::is_autocast_enabled(device_type),
                was_dtype: ffi::get_autocast_dtype(device_type),
            };
            ffi::set_autocast_dtype(device_type, SCALAR_TYPE_BFLOAT16);
            ffi::set_autocast_enabled(device_type, enabled);
            ffi::increment_nesting();
            scope
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // SAFETY: as in `enter`. The weight-cast cache is dropped when the outermost scope
        // ends (what torch.autocast's __exit__ does).
        unsafe {
            if ffi::decrement_nesting() == 0 {
                ffi::clear_cache();
            }
            ffi::set_autocast_enabled(self.device_type, self.was_enabled);
            ffi::set_autocast_dtype(self.device_type, self.was_dtype);
        }
    }
}

/// Runs `f` in `precision` on `device` (this thread only): with [`Precision::Bf16`] inside
/// libtorch's bfloat16 autocast for the device's type (scopes nest; the state before is
/// restored afterwards, also when `f` panics); with [`Precision::Fp32`] as it is, except that
/// an enclosing bfloat16 scope is switched off for the duration (a float32 model inside a
/// bfloat16 scope stays float32).
///
/// As with `torch.autocast`, call `backward` outside the scope: libtorch's backward formulas
/// run on this thread and would be cast too.
///
/// # Panics
///
/// [`Precision::Bf16`] where [`Precision::check_device`] fails (models check it when their
/// precision is set).
pub fn autocast<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    match precision {
        Precision::Fp32 => {
            if !autocast_enabled(device) {
                return f();
            }
            let t = device_type(device).expect("autocast is only on for CPU and CUDA");
            let _scope = Scope::enter(t, false);
            f()
        }
        Precision::Bf16 => {
            if let Err(e) = precision.check_device(device) {
                panic!("{e}");
            }
            let t = device_type(device).expect("checked above");
            let _scope = Scope::enter(t, true);
            f()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn names_round_trip() {
        for p in [Precision::Fp32, Precision::Bf16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        let err = "fp16".parse::<Precision>().unwrap_err();
        assert!(err.contains("fp32 or bf16"), "{err}");
        assert_eq!(Precision::default(), Precision::Fp32);
    }

    #[test]
    fn scopes_nest_and_restore() {
        let cpu = Device::Cpu;
        let x = Tensor::randn([2, 3, 5, 5], (Kind::Float, cpu));
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, cpu));
        let conv = || {
            x.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
                .kind()
        };
        assert!(!autocast_enabled(cpu));
        assert_eq!(conv(), Kind::Float);
        autocast(Precision::Bf16, cpu, || {
            assert!(autocast_enabled(cpu));
            assert_eq!(conv(), Kind::BFloat16);
            // a float32 scope inside switches it off, and back on after
            autocast(Precision::Fp32, cpu, || {
                assert!(!autocast_enabled(cpu));
                assert_eq!(conv(), Kind::Float);
            });
            autocast(Precision::Bf16, cpu, || assert_eq!(conv(), Kind::BFloat16));
            assert!(autocast_enabled(cpu));
            assert_eq!(conv(), Kind::BFloat16);
        });
        assert!(!autocast_enabled(cpu));
        assert_eq!(conv(), Kind::Float);
        // restored on unwinding too
        let r = std::panic::catch_unwind(|| autocast(Precision::Bf16, cpu, || panic!("inside")));
        assert!(r.is_err());
        assert!(!autocast_enabled(cpu));
        assert_eq!(conv(), Kind::Float);
    }

    #[test]
    fn devices() {
        assert!(Precision::Bf16.check_device(Device::Cpu).is_ok());
        assert!(Precision::Bf16.check_device(Device::Cuda(0)).is_ok());
        assert!(Precision::Bf16.check_device(Device::Mps).is_err());
        assert!(Precision::Fp32.check_device(Device::Mps).is_ok());
    }
}
