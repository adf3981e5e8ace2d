//! Preprocessing exactly as pytorch-fid: images in [0, 1], grey repeated to three channels,
//! bilinear resize to 299 x 299 (`align_corners = false`), then `2x - 1`. The resize and
//! `2x - 1` are pytorch-fid's `InceptionV3.forward` (`resize_input`, `normalize_input`, in
//! `src/pytorch_fid/inception.py`); the grey channel repeated is what its image loader's
//! `convert('RGB')` (in `fid_score.py`) does to a grey PNG.
//!
//! Generated images (usually in [-1, 1]) are first mapped to [0, 1] and, by default,
//! quantised to 8 bits, which is what saving them as PNG files for pytorch-fid would do.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{MetricsError, Result};

/// Side of the square input of the FID Inception network.
pub const INCEPTION_SIZE: i64 = 299;

/// The value range of a batch of images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PixelRange {
    /// Values in [0, 1] (`u8 / 255`).
    Unit,
    /// Values in [-1, 1] (`2 * u8 / 255 - 1`), the usual output of a generator with `tanh`.
    Signed,
}

/// How generated images become [0, 1] inputs of the FID network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Round to the nearest of the 256 levels of an 8-bit image (`floor(255 x + 0.5) / 255`,
    /// as torchvision's `save_image` does before writing a PNG). On by default.
    pub quantize: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { quantize: true }
    }
}

impl Preprocess {
    /// Maps `images` (`[N, 1|3, H, W]`, any float kind or `u8`, any device) from `range` to
    /// [0, 1] float32 on the same device, clamping, and quantising to 8 bits when
    /// [`Preprocess::quantize`] is set. `u8` input is taken as `value / 255` whatever `range`
    /// says. Float values may overshoot `range` (they are clamped, as `save_image` clamps),
    /// but by at most half its width: [-0.5, 1.5] for [`PixelRange::Unit`], [-2, 2] for
    /// [`PixelRange::Signed`]; beyond that the range was declared wrong (0..255 floats as
    /// `Unit`, [-1, 1] images as `Unit`), and clamping would silently turn them into other
    /// images.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape, a kind that is neither float nor
    /// `u8`, NaN / infinite values, or float values beyond the allowed overshoot (the message
    /// gives their minimum and maximum and the declared range).
    pub fn to_unit(&self, images: &Tensor, range: PixelRange) -> Result<Tensor> {
        check_images("images", images)?;
        if images.kind() == Kind::Uint8 {
            return Ok(images.f_to_kind(Kind::Float)? / 255.0);
        }
        check_range("images", images, range)?;
        let x = images.f_to_kind(Kind::Float)?;
        let unit = match range {
            PixelRange::Unit => x,
            PixelRange::Signed => (x + 1.0) * 0.5,
        }
        .clamp(0.0, 1.0);
        Ok(if self.quantize {
            quantize_8bit(&unit)
        } else {
            unit
        })
    }
}

/// `floor(255 x + 0.5) / 255` for `x` in [0, 1].
pub fn quantize_8bit(unit: &Tensor) -> Tensor {
    (unit * 255.0 + 0.5).floor().clamp(0.0, 255.0) / 255.0
}

/// Checks that `images` is a `[N, C, H, W]` batch of a float kind or `u8` with one or three
/// channels, non-empty sides and no NaN or infinite value; `name` names it in the error.
///
/// # Errors
/// [`MetricsError::InvalidInput`] saying which of these fails.
pub fn check_images(name: &'static str, images: &Tensor) -> Result<()> {
    if !images.defined() {
        return Err(MetricsError::invalid(name, "undefined tensor"));
    }
    let kind = images.kind();
    if !(images.is_floating_point() || kind == Kind::Uint8) {
        return Err(MetricsError::invalid(
            name,
            format!("expected a float or u8 tensor, got {kind:?}"),
        ));
    }
    let size = images.size();
    if size.len() != 4 {
        return Err(MetricsError::invalid(
            name,
            format!("expected a [N, C, H, W] batch, got shape {size:?}"),
        ));
    }
    if size[1] != 1 && size[1] != 3 {
        return Err(MetricsError::invalid(
            name,
            format!("expected 1 (grey) or 3 (RGB) channels, got shape {size:?}"),
        ));
    }
    if size[2] < 1 || size[3] < 1 {
        return Err(MetricsError::invalid(
            name,
            format!("empty images, shape {size:?}"),
        ));
    }
    if images.is_floating_point() && images.numel() > 0 {
        let finite = images.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1;
        if !finite {
            return Err(MetricsError::invalid(
                name,
                "contains NaN or infinite values",
            ));
        }
    }
    Ok(())
}

/// Checks that the float values of `images` lie within `range` widened by half its width on
/// each side: [-0.5, 1.5] for [`PixelRange::Unit`], [-2, 2] for [`PixelRange::Signed`]. A
/// small overshoot is what generators produce and is clamped or used as it is; beyond it the
/// range was declared wrong (0..255 floats or [-1, 1] images given as [0, 1]), and the
/// features would be those of other images. `u8` batches and empty ones pass; `name` names
/// the batch in the error.
///
/// # Errors
/// [`MetricsError::InvalidInput`] giving the values' minimum and maximum and the declared
/// range; [`MetricsError::Torch`] when libtorch fails.
pub fn check_range(name: &'static str, images: &Tensor, range: PixelRange) -> Result<()> {
    if !images.is_floating_point() || images.numel() == 0 {
        return Ok(());
    }
    let (lo, hi, declared) = match range {
        PixelRange::Unit => (0.0, 1.0, "[0, 1] (PixelRange::Unit)"),
        PixelRange::Signed => (-1.0, 1.0, "[-1, 1] (PixelRange::Signed)"),
    };
    let slack = (hi - lo) / 2.0;
    let min = images.f_min()?.f_double_value(&[])?;
    let max = images.f_max()?.f_double_value(&[])?;
    if min < lo - slack || max > hi + slack {
        return Err(MetricsError::invalid(
            name,
            format!(
                "values span [{min}, {max}], far outside the declared range {declared}: \
                 give 0..255 pixels as u8 (or divided by 255), [-1, 1] images as \
                 PixelRange::Signed"
            ),
        ));
    }
    Ok(())
}

/// The network input for images in [0, 1]: `[N, 1|3, H, W]` becomes `[N, 3, 299, 299]`
/// float32 in [-1, 1] (bilinear resize with `align_corners = false`, grey repeated to three
/// channels, then `2x - 1`), on the device of `unit`. A `u8` batch is taken as
/// `value / 255` first, as [`Preprocess::to_unit`] takes it; float values are used as they
/// are, not clamped (pytorch-fid's `InceptionV3.forward` in `inception.py` neither clamps nor
/// checks them), but values beyond [-0.5, 1.5] are refused ([`check_range`]).
///
/// # Errors
/// As [`check_images`] (another shape or kind, NaN or infinite values) and [`check_range`]
/// (float values far outside [0, 1]).
pub fn inception_input(unit: &Tensor) -> Result<Tensor> {
    check_images("images", unit)?;
    check_range("images", unit, PixelRange::Unit)?;
    let x = if unit.kind() == Kind::Uint8 {
        unit.f_to_kind(Kind::Float)? / 255.0
    } else {
        unit.f_to_kind(Kind::Float)?
    };
    let x = if x.size()[2] == INCEPTION_SIZE && x.size()[3] == INCEPTION_SIZE {
        // Bilinear resampling at scale 1 (align_corners = false) is the identity.
        x
    } else {
        x.f_upsample_bilinear2d([INCEPTION_SIZE, INCEPTION_SIZE], false, None, None)?
    };
    let x = if x.size()[1] == 1 {
        x.f_expand([-1, 3, -1, -1], false)?
    } else {
        x
    };
    Ok(x * 2.0 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_images_map_to_unit_and_quantize() {
        let x = Tensor::from_slice(&[-1.0f32, 1.0, 0.0, -2.0, 0.001, 0.5 / 255.0 * 2.0 - 1.0])
            .reshape([1, 1, 2, 3]);
        let q = Preprocess { quantize: true }
            .to_unit(&x, PixelRange::Signed)
            .unwrap();
        let v: Vec<f32> = q.flatten(0, -1).try_into().unwrap();
        assert_eq!(v[0], 0.0);
        assert_eq!(v[1], 1.0);
        assert!((v[2] - 128.0 / 255.0).abs() < 1e-7, "{}", v[2]);
        assert_eq!(v[3], 0.0);
        assert!((v[4] - 128.0 / 255.0).abs() < 1e-7);
        // 0.5 / 255 rounds half up to level 1, like torchvision's save_image.
        assert!((v[5] - 1.0 / 255.0).abs() < 1e-6, "{}", v[5]);
        let raw = Preprocess { quantize: false }
            .to_unit(&x, PixelRange::Signed)
            .unwrap();
        let r: Vec<f32> = raw.flatten(0, -1).try_into().unwrap();
        assert!((r[2] - 0.5).abs() < 1e-7);
    }

    #[test]
    fn a_wrongly_declared_range_is_an_error_small_overshoot_is_clamped() {
        let p = Preprocess { quantize: false };
        let t = |v: &[f32]| Tensor::from_slice(v).reshape([1, 1, 1, v.len() as i64]);
        // 0..255 floats declared as [0, 1], [-1, 1] images declared as [0, 1].
        for (v, range) in [
            (&[0.0f32, 128.0, 255.0][..], PixelRange::Unit),
            (&[-1.0, 0.0, 1.0][..], PixelRange::Unit),
            (&[0.0, 3.0][..], PixelRange::Signed),
        ] {
            let e = p.to_unit(&t(v), range).unwrap_err().to_string();
            assert!(e.contains("far outside the declared range"), "{e}");
        }
        let ok: Vec<f32> = p
            .to_unit(&t(&[-0.5, 0.5, 1.5]), PixelRange::Unit)
            .unwrap()
            .flatten(0, -1)
            .try_into()
            .unwrap();
        assert_eq!(ok, vec![0.0, 0.5, 1.0]);
        assert!(p.to_unit(&t(&[-2.0, 2.0]), PixelRange::Signed).is_ok());
    }

    #[test]
    fn the_network_input_refuses_what_is_not_near_0_1_and_keeps_a_small_overshoot() {
        let t = |v: &[f32]| Tensor::from_slice(v).reshape([1, 1, 1, v.len() as i64]);
        for v in [
            &[0.0f32, 128.0, 255.0][..],
            &[-1.0, 0.0, 1.0][..],
            &[1.6][..],
        ] {
            let e = inception_input(&t(v)).unwrap_err().to_string();
            assert!(
                e.contains("far outside the declared range [0, 1]"),
                "{v:?}: {e}"
            );
        }
        // Used as they are, not clamped (pytorch-fid does not clamp): -0.5 stays -2 after 2x - 1.
        let y = inception_input(&t(&[-0.5, 1.5])).unwrap();
        assert_eq!(y.min().double_value(&[]), -2.0);
        assert_eq!(y.max().double_value(&[]), 2.0);
        // u8 batches and empty ones pass the range check.
        let bytes = Tensor::from_slice(&[0u8, 255]).reshape([1, 1, 1, 2]);
        assert!(check_range("images", &bytes, PixelRange::Unit).is_ok());
        let empty = Tensor::zeros([0, 1, 2, 2], (Kind::Float, tch::Device::Cpu));
        assert!(check_range("images", &empty, PixelRange::Unit).is_ok());
        // Tensor images are checked against their declared range when wrapped.
        let e =
            crate::TensorImages::new(&t(&[0.0, 255.0]), PixelRange::Unit, Preprocess::default())
                .err()
                .expect("0..255 floats as Unit refused")
                .to_string();
        assert!(e.contains("far outside"), "{e}");
        assert!(crate::TensorImages::new(
            &t(&[-1.0, 1.0]),
            PixelRange::Signed,
            Preprocess::default()
        )
        .is_ok());
    }

    #[test]
    fn grey_becomes_three_channels_of_299() {
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, tch::Device::Cpu));
        let y = inception_input(&x).unwrap();
        assert_eq!(y.size(), vec![2, 3, 299, 299]);
        let d = (y.select(1, 0) - y.select(1, 2))
            .abs()
            .max()
            .double_value(&[]);
        assert_eq!(d, 0.0);
        assert!(y.min().double_value(&[]) >= -1.0 && y.max().double_value(&[]) <= 1.0);
    }

    #[test]
    fn u8_images_are_read_as_value_over_255() {
        let levels: Vec<u8> = (0..=255u8).step_by(5).chain([255]).collect();
        let n = levels.len() as i64;
        let bytes = Tensor::from_slice(&levels).reshape([1, 1, 1, n]);
        let from_u8 = inception_input(&bytes).unwrap();
        let unit = bytes.to_kind(Kind::Float) / 255.0;
        let from_float = inception_input(&unit).unwrap();
        assert_eq!(from_u8.kind(), Kind::Float);
        // The same float32 values, so the same network input bit for bit.
        assert!(from_u8.equal(&from_float));
        assert!(from_u8.max().double_value(&[]) <= 1.0);
        assert!(from_u8.min().double_value(&[]) >= -1.0);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(
            inception_input(&Tensor::zeros([2, 28, 28], (Kind::Float, tch::Device::Cpu))).is_err()
        );
        assert!(inception_input(&Tensor::zeros(
            [2, 2, 28, 28],
            (Kind::Float, tch::Device::Cpu)
        ))
        .is_err());
        let nan = Tensor::from_slice(&[f32::NAN]).reshape([1, 1, 1, 1]);
        assert!(Preprocess::default()
            .to_unit(&nan, PixelRange::Unit)
            .is_err());
    }
}
