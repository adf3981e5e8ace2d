//! [`InceptionExtractor`]: images in [0, 1] in, pytorch-fid features at any set of taps out.
//!
//! ## Precision
//!
//! The network runs in float32 by default ([`Precision::Fp32`], the numbers equal to
//! pytorch-fid's). [`Precision::Bf16`] runs it inside libtorch's bfloat16 autocast
//! ([`cign_core::precision::autocast`], what `torch.autocast(device, dtype=torch.bfloat16)`
//! does in PyTorch): every convolution takes bfloat16 inputs and weights (its products are
//! accumulated in float32 by the backends, its output rounded to bfloat16), and the ReLUs,
//! pools and concatenations between them run on those bfloat16 activations. The
//! preprocessing (resize to 299, `2x - 1`) runs before the scope, in float32; the spatial
//! mean of each tap is accumulated in float32, and the features are returned as float32 as in
//! the float32 path, so that the statistics (float64 means and covariances) and the Fréchet
//! distance are computed exactly as there. bfloat16 keeps 8 significant bits: each rounding
//! changes a value by up to 2^-9 = 1.95e-3 relative (the spacing of bfloat16 numbers is
//! 2^-8 = 3.9e-3 relative), so the features, and FID, move away from float32's; the crate's
//! README gives the deviation measured on MNIST digits per tap. Nothing is refused: the
//! choice is the caller's.

use std::path::{Path, PathBuf};

use cign_core::precision::autocast;
use cign_core::Precision;
use tch::{Device, Kind, Tensor};

use crate::error::{MetricsError, Result};
use crate::inception::{InceptionNetwork, Layout};
use crate::preprocess::inception_input;
use crate::tap::{normalize, Tap};
use crate::weights;

/// The FID feature extractor: pytorch-fid's preprocessing and Inception network.
///
/// ```no_run
/// use cign_metrics::{InceptionExtractor, Tap};
/// let extractor = InceptionExtractor::from_default_weights(tch::Device::Cpu)?;
/// let images = tch::Tensor::rand([4, 1, 28, 28], (tch::Kind::Float, tch::Device::Cpu));
/// let feats = extractor.features(&images, &[Tap::D64, Tap::D768])?;
/// assert_eq!(feats[1].size(), vec![4, 768]);
/// # Ok::<(), cign_metrics::MetricsError>(())
/// ```
#[derive(Debug)]
pub struct InceptionExtractor {
    network: InceptionNetwork,
    weights: PathBuf,
    weights_id: String,
}

impl InceptionExtractor {
    /// Loads the weights at `weights` (safetensors, see [`crate::weights`]) onto `device`.
    ///
    /// # Errors
    /// [`MetricsError::Device`] when `device` is not available on this machine (a CUDA
    /// device without CUDA, or an index past the visible devices; checked before the weights
    /// are read), [`MetricsError::Weights`] when the file is missing or lacks a tensor of the
    /// network, [`MetricsError::Torch`] when libtorch cannot place the weights.
    pub fn new(weights: &Path, device: Device) -> Result<Self> {
        Self::with_layout(weights, device, default_layout(device))
    }

    /// Like [`InceptionExtractor::new`] with an explicit activation layout.
    ///
    /// # Errors
    /// As [`InceptionExtractor::new`].
    pub fn with_layout(weights: &Path, device: Device, layout: Layout) -> Result<Self> {
        crate::device::check_device(device)?;
        let params = weights::load_fid_params(weights)?;
        let network = InceptionNetwork::new(&params, device, layout)?;
        Ok(InceptionExtractor {
            network,
            weights: weights.to_path_buf(),
            weights_id: weights::weights_id(&params),
        })
    }

    /// Loads the default weights ([`weights::fid_weights`]: `$CIGN_FID_WEIGHTS` or the cache,
    /// fetched and converted on first use).
    ///
    /// # Errors
    /// As [`InceptionExtractor::new`] (the device is checked before any download), and
    /// [`MetricsError::Weights`] when the weights cannot be obtained.
    pub fn from_default_weights(device: Device) -> Result<Self> {
        crate::device::check_device(device)?;
        Self::new(&weights::fid_weights()?, device)
    }

    /// The device the network runs on.
    pub fn device(&self) -> Device {
        self.network.device()
    }

    /// The identity of the loaded weights in cache keys ([`weights::weights_id`]): empty for
    /// the standard FID weights, `w` and 12 hex digits for any others.
    pub fn weights_id(&self) -> &str {
        &self.weights_id
    }

    /// The weights file this extractor was loaded from.
    pub fn weights_path(&self) -> &Path {
        &self.weights
    }

    /// Features of `images_0_1` (`[N, 1|3, H, W]`, any size, any device: a float kind with
    /// values in [0, 1], used as they are (a small overshoot included), or `u8` in [0, 255],
    /// read as `value / 255`) at
    /// `taps`: one `[N, dims]` float32 CPU tensor per tap, in the order of the sorted,
    /// deduplicated taps. All taps come from one pass that stops after the deepest
    /// one. The network runs in float32 ([`Precision::Fp32`]), also inside a caller's
    /// bfloat16 autocast scope; [`InceptionExtractor::features_in`] chooses the precision.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape, a channel count other than 1 or 3,
    /// a kind other than float or `u8`, NaN or infinite values, float values beyond
    /// [-0.5, 1.5] (a wrongly declared range: [`crate::preprocess::check_range`]), or no tap;
    /// [`MetricsError::Torch`] when libtorch fails (for example out of memory).
    pub fn features(&self, images_0_1: &Tensor, taps: &[Tap]) -> Result<Vec<Tensor>> {
        self.features_in(images_0_1, taps, Precision::Fp32)
    }

    /// [`InceptionExtractor::features`] with the network in `precision` (see [the module
    /// documentation](self)): with [`Precision::Bf16`] the convolutions run in bfloat16
    /// through libtorch's autocast; the input preprocessing stays float32 and the features
    /// are returned as float32 `[N, dims]` CPU tensors either way. [`Precision::Fp32`] gives
    /// exactly the features of [`InceptionExtractor::features`].
    ///
    /// # Errors
    /// As [`InceptionExtractor::features`], and [`MetricsError::InvalidInput`] (argument
    /// `precision`) when `precision` cannot run on the extractor's device
    /// ([`Precision::check_device`]: bfloat16 runs on the CPU and CUDA, on targets with the
    /// Itanium C++ ABI).
    pub fn features_in(
        &self,
        images_0_1: &Tensor,
        taps: &[Tap],
        precision: Precision,
    ) -> Result<Vec<Tensor>> {
        let taps = normalize(taps);
        if taps.is_empty() {
            return Err(MetricsError::invalid("taps", "no tap requested"));
        }
        check_precision(precision, self.device())?;
        crate::preprocess::check_images("images", images_0_1)?;
        crate::preprocess::check_range("images", images_0_1, crate::PixelRange::Unit)?;
        if images_0_1.size()[0] == 0 {
            return Ok(empty_features(&taps));
        }
        let x = images_0_1.f_to_device(self.device())?;
        // The preprocessing in float32 even inside a caller's bfloat16 scope.
        let input = autocast(Precision::Fp32, self.device(), || {
            tch::no_grad(|| inception_input(&x))
        })?;
        let feats = autocast(precision, self.device(), || {
            self.network.forward_taps(&input, &taps)
        })?;
        feats
            .into_iter()
            .map(|f| {
                // The taps are float32 already (their mean is accumulated in float32); the
                // cast is a no-op then, and a guarantee for the statistics code.
                let f = match f.kind() {
                    Kind::Float => f,
                    _ => f.f_to_kind(Kind::Float)?,
                };
                Ok(f.f_to_device(Device::Cpu)?)
            })
            .collect()
    }

    /// [`InceptionExtractor::features`] in batches of `batch_size` images, concatenated.
    ///
    /// # Errors
    /// As [`InceptionExtractor::features`], and [`MetricsError::InvalidInput`] when
    /// `batch_size` is 0.
    pub fn features_batched(
        &self,
        images_0_1: &Tensor,
        taps: &[Tap],
        batch_size: usize,
    ) -> Result<Vec<Tensor>> {
        self.features_batched_in(images_0_1, taps, batch_size, Precision::Fp32)
    }

    /// [`InceptionExtractor::features_in`] in batches of `batch_size` images, concatenated.
    ///
    /// # Errors
    /// As [`InceptionExtractor::features_in`], and [`MetricsError::InvalidInput`] when
    /// `batch_size` is 0.
    pub fn features_batched_in(
        &self,
        images_0_1: &Tensor,
        taps: &[Tap],
        batch_size: usize,
        precision: Precision,
    ) -> Result<Vec<Tensor>> {
        if batch_size == 0 {
            return Err(MetricsError::invalid("batch_size", "must be at least 1"));
        }
        crate::preprocess::check_images("images", images_0_1)?;
        crate::preprocess::check_range("images", images_0_1, crate::PixelRange::Unit)?;
        let n = images_0_1.size()[0];
        let mut parts: Vec<Vec<Tensor>> = Vec::new();
        let mut start = 0;
        while start < n {
            let len = (batch_size as i64).min(n - start);
            parts.push(self.features_in(&images_0_1.f_narrow(0, start, len)?, taps, precision)?);
            start += len;
        }
        if parts.is_empty() {
            return self.features_in(images_0_1, taps, precision);
        }
        let ntaps = normalize(taps).len();
        (0..ntaps)
            .map(|t| {
                Ok(Tensor::f_cat(
                    &parts.iter().map(|p| &p[t]).collect::<Vec<_>>(),
                    0,
                )?)
            })
            .collect()
    }
}

/// [`Precision::check_device`] as a [`MetricsError::InvalidInput`] naming `precision`.
///
/// # Errors
/// When `precision` cannot run on `device` (bfloat16 on a device other than the CPU or
/// CUDA, or on a target without the Itanium C++ ABI).
pub fn check_precision(precision: Precision, device: Device) -> Result<()> {
    precision
        .check_device(device)
        .map_err(|e| MetricsError::invalid("precision", e.to_string()))
}

/// One `[0, dims]` float32 CPU tensor per tap: the features of no image.
fn empty_features(taps: &[Tap]) -> Vec<Tensor> {
    taps.iter()
        .map(|t| Tensor::zeros([0, t.dims() as i64], (tch::Kind::Float, Device::Cpu)))
        .collect()
}

/// The activation layout used by default on `device` (channels-last on CPU, where oneDNN
/// convolutions are faster with it; NCHW elsewhere). The environment variable
/// `CIGN_FID_LAYOUT` (`nchw` or `channels_last`) overrides it on every device; other values
/// are ignored.
pub fn default_layout(device: Device) -> Layout {
    match std::env::var("CIGN_FID_LAYOUT").as_deref() {
        Ok("nchw") => return Layout::Nchw,
        Ok("channels_last") => return Layout::ChannelsLast,
        _ => {}
    }
    match device {
        Device::Cpu => Layout::ChannelsLast,
        _ => Layout::Nchw,
    }
}
