//! [`InceptionExtractor`]: images in [0, 1] in, pytorch-fid features at any set of taps out.

use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

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

    /// The weights file this extractor was loaded from.
    pub fn weights_path(&self) -> &Path {
        &self.weights
    }

    /// Features of `images_0_1` (`[N, 1|3, H, W]` in [0, 1], any float or `u8` kind, any
    /// size, any device) at `taps`: one `[N, dims]` float32 CPU tensor per tap, in the order of
    /// the sorted, deduplicated taps. All taps come from one pass that stops after the deepest
    /// one.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape, 2 or more than 3 channels, NaN or
    /// infinite values, or no tap; [`MetricsError::Torch`] when libtorch fails (for example
    /// out of memory).
    pub fn features(&self, images_0_1: &Tensor, taps: &[Tap]) -> Result<Vec<Tensor>> {
        let taps = normalize(taps);
        if taps.is_empty() {
            return Err(MetricsError::invalid("taps", "no tap requested"));
        }
        crate::preprocess::check_images("images", images_0_1)?;
        if images_0_1.size()[0] == 0 {
            return Ok(empty_features(&taps));
        }
        let x = images_0_1.f_to_device(self.device())?;
        let input = tch::no_grad(|| inception_input(&x))?;
        let feats = self.network.forward_taps(&input, &taps)?;
        feats
            .into_iter()
            .map(|f| Ok(f.f_to_device(Device::Cpu)?))
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
        if batch_size == 0 {
            return Err(MetricsError::invalid("batch_size", "must be at least 1"));
        }
        crate::preprocess::check_images("images", images_0_1)?;
        let n = images_0_1.size()[0];
        let mut parts: Vec<Vec<Tensor>> = Vec::new();
        let mut start = 0;
        while start < n {
            let len = (batch_size as i64).min(n - start);
            parts.push(self.features(&images_0_1.f_narrow(0, start, len)?, taps)?);
            start += len;
        }
        if parts.is_empty() {
            return self.features(images_0_1, taps);
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

/// One `[0, dims]` float32 CPU tensor per tap: the features of no image.
fn empty_features(taps: &[Tap]) -> Vec<Tensor> {
    taps.iter()
        .map(|t| Tensor::zeros([0, t.dims() as i64], (tch::Kind::Float, Device::Cpu)))
        .collect()
}

/// The activation layout used by default on `device` (channels-last on CPU, where oneDNN
/// convolutions are faster with it; NCHW elsewhere).
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
