//! pytorch-fid's FID Inception v3 as four blocks ending at the four taps; a pass computes
//! every requested tap and stops after the deepest one.

use tch::{Device, Kind, Tensor};

use super::blocks::{
    max_pool_3x3_s2, BlockA, BlockB, BlockC, BlockD, BlockE, Chain, EPool, Layout, ParamMap,
};
use super::spec;
use crate::error::{MetricsError, Result};
use crate::tap::{normalize, Tap};

/// The smallest input side the whole network accepts (torchvision's Inception v3 says 75).
pub const MIN_SIDE: i64 = 75;

/// The FID Inception network with its weights (BatchNorm folded), on one device.
#[derive(Debug)]
pub struct InceptionNetwork {
    stem64: Chain,
    stem192: Chain,
    mixed5: Vec<BlockA>,
    mixed6a: BlockB,
    mixed6: Vec<BlockC>,
    mixed7a: BlockD,
    mixed7b: BlockE,
    mixed7c: BlockE,
    layout: Layout,
    device: Device,
}

impl InceptionNetwork {
    /// Builds the network from `params` (PyTorch-style names, see [`spec::param_keys`]) on
    /// `device`.
    ///
    /// # Errors
    /// [`MetricsError::Device`] when `device` is not available, [`MetricsError::Weights`]
    /// when a parameter is missing or has another shape, [`MetricsError::Torch`] when
    /// libtorch cannot place the weights.
    pub fn new(params: &ParamMap, device: Device, layout: Layout) -> Result<Self> {
        crate::device::check_device(device)?;
        let mixed5 = spec::A_BLOCKS
            .iter()
            .map(|&(name, cin, pool)| BlockA::new(params, name, cin, pool, device, layout))
            .collect::<Result<_>>()?;
        let mixed6 = spec::C_BLOCKS
            .iter()
            .map(|&(name, c7)| BlockC::new(params, name, 768, c7, device, layout))
            .collect::<Result<_>>()?;
        Ok(InceptionNetwork {
            stem64: Chain::new(params, &spec::stem_64(), device, layout)?,
            stem192: Chain::new(params, &spec::stem_192(), device, layout)?,
            mixed5,
            mixed6a: BlockB::new(params, "Mixed_6a", 288, device, layout)?,
            mixed6,
            mixed7a: BlockD::new(params, "Mixed_7a", 768, device, layout)?,
            mixed7b: BlockE::new(params, "Mixed_7b", 1280, EPool::Average, device, layout)?,
            mixed7c: BlockE::new(params, "Mixed_7c", 2048, EPool::Max, device, layout)?,
            layout,
            device,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Output of block `index` (0..=3) for the output of block `index - 1` (or the network
    /// input for block 0), before spatial averaging.
    fn block(&self, index: usize, x: &Tensor) -> Result<Tensor> {
        match index {
            0 => max_pool_3x3_s2(&self.stem64.forward(x)?),
            1 => max_pool_3x3_s2(&self.stem192.forward(x)?),
            2 => {
                let mut y = x.shallow_clone();
                for b in &self.mixed5 {
                    y = b.forward(&y)?;
                }
                y = self.mixed6a.forward(&y)?;
                for b in &self.mixed6 {
                    y = b.forward(&y)?;
                }
                Ok(y)
            }
            _ => {
                let y = self.mixed7a.forward(x)?;
                let y = self.mixed7b.forward(&y)?;
                self.mixed7c.forward(&y)
            }
        }
    }

    /// Features of `input` (`[N, 3, H, W]` with `H, W >= 75`, usually `299 x 299`, already
    /// preprocessed to [-1, 1]) at `taps`: one `[N, dims]` float32 tensor per tap, on the
    /// network's device, in the order of the sorted, deduplicated taps. Each tap is its block's
    /// output averaged over space; the pass stops after the deepest requested tap.
    ///
    /// # Errors
    /// [`MetricsError::InvalidInput`] for another shape or a side below 75 pixels (the
    /// smallest input the whole network accepts); [`MetricsError::Torch`] when libtorch fails.
    pub fn forward_taps(&self, input: &Tensor, taps: &[Tap]) -> Result<Vec<Tensor>> {
        let size = input.size();
        if size.len() != 4 || size[1] != 3 || size[2] < MIN_SIDE || size[3] < MIN_SIDE {
            return Err(MetricsError::invalid(
                "input",
                format!(
                    "expected [N, 3, H, W] preprocessed images with H, W >= {MIN_SIDE}, got shape {size:?}"
                ),
            ));
        }
        let taps = normalize(taps);
        let Some(deepest) = taps.last() else {
            return Ok(Vec::new());
        };
        let x = self
            .layout
            .apply(&input.f_to_kind(Kind::Float)?.f_to_device(self.device)?)?;
        tch::no_grad(|| {
            let mut feats = Vec::with_capacity(taps.len());
            let mut y = x;
            for index in 0..=deepest.block_index() {
                y = self.block(index, &y)?;
                if taps.iter().any(|t| t.block_index() == index) {
                    feats.push(y.f_mean_dim([2i64, 3].as_slice(), false, Kind::Float)?);
                }
            }
            Ok(feats)
        })
    }
}
