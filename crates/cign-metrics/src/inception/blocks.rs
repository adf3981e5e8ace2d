//! Building blocks of the FID Inception network: conv + BatchNorm + ReLU with the BatchNorm
//! folded into the convolution, and the A-E Inception blocks of pytorch-fid's variant
//! (average pools that do not count padding in A, C and the first E block; a max pool in the
//! pool branch of the last E block).
//!
//! Convolutions of a block that read the same input with 1x1 kernels are fused into one
//! convolution whose output is split again: the same arithmetic per output channel, fewer
//! passes over the input. The pool branch of the A, C and first E blocks (3x3 average pool,
//! then a 1x1 convolution) joins them: both operations are linear and the pool's weights
//! sum to one at every position (padding not counted), so pooling the convolution's output
//! (bias included) equals convolving the pooled input; the pool then runs on the branch's
//! 32-192 output channels instead of the block's 192-2048 input channels.

use std::collections::HashMap;

use tch::{Device, Kind, Tensor};

use super::spec::{self, ConvSpec};
use crate::error::{MetricsError, Result};

/// BatchNorm epsilon of the TensorFlow Inception (and of pytorch-fid's `BasicConv2d`).
pub const BN_EPS: f64 = 1e-3;

/// The parameters of the network by PyTorch-style name (see [`spec::param_keys`]), on CPU.
pub type ParamMap = HashMap<String, Tensor>;

/// Memory layout used for the activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// NCHW, contiguous (PyTorch's default).
    Nchw,
    /// NHWC strides ("channels last"), often faster for oneDNN convolutions on CPU.
    ChannelsLast,
}

impl Layout {
    /// `x` (`[N, C, H, W]`) with this layout's strides (same shape and values).
    ///
    /// # Errors
    /// [`MetricsError::Torch`] when `x` has another number of dimensions or libtorch runs
    /// out of memory.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Layout::Nchw => x.f_contiguous()?,
            Layout::ChannelsLast => x
                .f_permute([0, 2, 3, 1])?
                .f_contiguous()?
                .f_permute([0, 3, 1, 2])?,
        })
    }
}

/// A convolution followed by its folded BatchNorm (as bias) and ReLU.
#[derive(Debug)]
pub struct BasicConv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: [i64; 2],
}

/// The parameter `key` as a float64 CPU tensor of shape `shape`.
fn get(params: &ParamMap, key: &str, shape: &[i64]) -> Result<Tensor> {
    let t = params.get(key).ok_or_else(|| MetricsError::Weights {
        what: format!("parameter '{key}' is missing"),
    })?;
    if t.size() != shape || !t.is_floating_point() {
        return Err(MetricsError::Weights {
            what: format!(
                "parameter '{key}' is {:?} with shape {:?}, expected a float tensor of shape {shape:?}",
                t.kind(),
                t.size()
            ),
        });
    }
    Ok(t.f_to_device(Device::Cpu)?.f_to_kind(Kind::Double)?)
}

/// Folds the BatchNorm of `spec` into its convolution: returns (scaled weight, bias),
/// computed in float64 and stored as float32.
fn folded(params: &ParamMap, spec: &ConvSpec) -> Result<(Tensor, Tensor)> {
    let [w, gamma, beta, mean, var] = spec::param_keys(&spec.name);
    let cout = [spec.cout];
    let w = get(params, &w, &spec.weight_shape())?;
    let beta = get(params, &beta, &cout)?;
    let mean = get(params, &mean, &cout)?;
    let var = get(params, &var, &cout)?;
    let gamma = match params.contains_key(&gamma) {
        true => get(params, &gamma, &cout)?,
        false => Tensor::ones_like(&beta),
    };
    let scale = gamma / (var + BN_EPS).sqrt();
    let bias = beta - &mean * &scale;
    let weight = w * scale.reshape([-1, 1, 1, 1]);
    Ok((weight.to_kind(Kind::Float), bias.to_kind(Kind::Float)))
}

impl BasicConv {
    /// The convolution `spec` with its parameters from `params`, on `device`.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(params: &ParamMap, spec: &ConvSpec, device: Device, layout: Layout) -> Result<Self> {
        let (weight, bias) = folded(params, spec)?;
        Ok(BasicConv {
            weight: layout.apply(&weight.f_to_device(device)?)?,
            bias: bias.f_to_device(device)?,
            stride: spec.stride,
            padding: spec.padding,
        })
    }

    /// Several 1x1 convolutions of the same input fused into one (output channels
    /// concatenated in the order of `specs`).
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn fused(
        params: &ParamMap,
        specs: &[&ConvSpec],
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        let mut weights = Vec::with_capacity(specs.len());
        let mut biases = Vec::with_capacity(specs.len());
        for spec in specs {
            debug_assert_eq!(spec.kernel, [1, 1]);
            debug_assert_eq!(spec.stride, 1);
            let (w, b) = folded(params, spec)?;
            weights.push(w);
            biases.push(b);
        }
        Ok(BasicConv {
            weight: layout.apply(&Tensor::f_cat(&weights, 0)?.f_to_device(device)?)?,
            bias: Tensor::f_cat(&biases, 0)?.f_to_device(device)?,
            stride: 1,
            padding: [0, 0],
        })
    }

    /// conv + bias + ReLU.
    ///
    /// # Errors
    /// [`MetricsError::Torch`] when libtorch fails (wrong input shape or device, out of
    /// memory).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.forward_linear(x)?;
        let _ = y.f_relu_()?;
        Ok(y)
    }

    /// conv + bias, without the ReLU.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward_linear(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_conv2d(
            &self.weight,
            Some(&self.bias),
            [self.stride, self.stride],
            self.padding,
            [1, 1],
            1,
        )?)
    }
}

/// Fused 1x1 heads of a block: one convolution, split into the branches' channel groups.
/// With `pooled_last`, the last group is an average-pool branch: it is pooled (3x3, stride
/// 1, padding not counted) before its ReLU.
#[derive(Debug)]
pub struct Heads {
    conv: BasicConv,
    splits: Vec<i64>,
    pooled_last: bool,
}

impl Heads {
    fn new(params: &ParamMap, specs: &[&ConvSpec], device: Device, layout: Layout) -> Result<Self> {
        Ok(Heads {
            conv: BasicConv::fused(params, specs, device, layout)?,
            splits: specs.iter().map(|s| s.cout).collect(),
            pooled_last: false,
        })
    }

    fn with_pool_branch(
        params: &ParamMap,
        specs: &[&ConvSpec],
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        Ok(Heads {
            pooled_last: true,
            ..Self::new(params, specs, device, layout)?
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        if !self.pooled_last {
            return Ok(self
                .conv
                .forward(x)?
                .f_split_with_sizes(self.splits.as_slice(), 1)?);
        }
        let y = self.conv.forward_linear(x)?;
        let mut parts = y.f_split_with_sizes(self.splits.as_slice(), 1)?;
        let pool = match parts.pop() {
            Some(p) => Some(avg_pool_3x3_same(&p)?.f_relu()?),
            None => None,
        };
        for p in parts.iter_mut() {
            let _ = p.f_relu_()?;
        }
        parts.extend(pool);
        Ok(parts)
    }
}

/// Average pool 3x3, stride 1, padding 1, padding not counted (TensorFlow's behaviour).
fn avg_pool_3x3_same(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None)?)
}

/// Max pool 3x3, stride 2, no padding.
///
/// # Errors
/// [`MetricsError::Torch`] when libtorch fails (input smaller than 3 x 3, out of memory).
pub fn max_pool_3x3_s2(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?)
}

fn convs(
    params: &ParamMap,
    specs: &[ConvSpec],
    idx: &[usize],
    device: Device,
    layout: Layout,
) -> Result<Vec<BasicConv>> {
    idx.iter()
        .map(|&i| BasicConv::new(params, &specs[i], device, layout))
        .collect()
}

/// A plain chain of convolutions (the stem pieces), each followed by its ReLU.
#[derive(Debug)]
pub struct Chain(Vec<BasicConv>);

impl Chain {
    /// The chain of `specs`.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(
        params: &ParamMap,
        specs: &[ConvSpec],
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        Ok(Chain(
            specs
                .iter()
                .map(|s| BasicConv::new(params, s, device, layout))
                .collect::<Result<_>>()?,
        ))
    }

    /// Runs the convolutions in order.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.shallow_clone();
        for c in &self.0 {
            y = c.forward(&y)?;
        }
        Ok(y)
    }
}

/// InceptionA (Mixed_5b..5d), average pool without padding in the count.
#[derive(Debug)]
pub struct BlockA {
    heads: Heads,
    b5: Vec<BasicConv>,
    dbl: Vec<BasicConv>,
}

impl BlockA {
    /// Block `name` with `cin` input channels and `pool_features` pool-branch channels.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(
        params: &ParamMap,
        name: &str,
        cin: i64,
        pool_features: i64,
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        let s = spec::block_a(name, cin, pool_features);
        Ok(BlockA {
            heads: Heads::with_pool_branch(params, &[&s[0], &s[1], &s[3], &s[6]], device, layout)?,
            b5: convs(params, &s, &[2], device, layout)?,
            dbl: convs(params, &s, &[4, 5], device, layout)?,
        })
    }

    /// Forward pass.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.heads.forward(x)?;
        let b5 = self.b5[0].forward(&h[1])?;
        let dbl = self.dbl[1].forward(&self.dbl[0].forward(&h[2])?)?;
        Ok(Tensor::f_cat(&[&h[0], &b5, &dbl, &h[3]], 1)?)
    }
}

/// InceptionB (Mixed_6a): grid reduction.
#[derive(Debug)]
pub struct BlockB {
    b3: BasicConv,
    dbl: Vec<BasicConv>,
}

impl BlockB {
    /// Block `name` with `cin` input channels.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(
        params: &ParamMap,
        name: &str,
        cin: i64,
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        let s = spec::block_b(name, cin);
        Ok(BlockB {
            b3: BasicConv::new(params, &s[0], device, layout)?,
            dbl: convs(params, &s, &[1, 2, 3], device, layout)?,
        })
    }

    /// Forward pass.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b3 = self.b3.forward(x)?;
        let dbl = self.dbl[2].forward(&self.dbl[1].forward(&self.dbl[0].forward(x)?)?)?;
        let pool = max_pool_3x3_s2(x)?;
        Ok(Tensor::f_cat(&[&b3, &dbl, &pool], 1)?)
    }
}

/// InceptionC (Mixed_6b..6e), factorised 7x7 convolutions, average pool without padding.
#[derive(Debug)]
pub struct BlockC {
    heads: Heads,
    b7: Vec<BasicConv>,
    dbl: Vec<BasicConv>,
}

impl BlockC {
    /// Block `name` with `cin` input channels and `c7` channels in the 7x7 branches.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(
        params: &ParamMap,
        name: &str,
        cin: i64,
        c7: i64,
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        let s = spec::block_c(name, cin, c7);
        Ok(BlockC {
            heads: Heads::with_pool_branch(params, &[&s[0], &s[1], &s[4], &s[9]], device, layout)?,
            b7: convs(params, &s, &[2, 3], device, layout)?,
            dbl: convs(params, &s, &[5, 6, 7, 8], device, layout)?,
        })
    }

    /// Forward pass.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.heads.forward(x)?;
        let b7 = self.b7[1].forward(&self.b7[0].forward(&h[1])?)?;
        let mut dbl = h[2].shallow_clone();
        for c in &self.dbl {
            dbl = c.forward(&dbl)?;
        }
        Ok(Tensor::f_cat(&[&h[0], &b7, &dbl, &h[3]], 1)?)
    }
}

/// InceptionD (Mixed_7a): grid reduction.
#[derive(Debug)]
pub struct BlockD {
    heads: Heads,
    b3: BasicConv,
    b7: Vec<BasicConv>,
}

impl BlockD {
    /// Block `name` with `cin` input channels.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(
        params: &ParamMap,
        name: &str,
        cin: i64,
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        let s = spec::block_d(name, cin);
        Ok(BlockD {
            heads: Heads::new(params, &[&s[0], &s[2]], device, layout)?,
            b3: BasicConv::new(params, &s[1], device, layout)?,
            b7: convs(params, &s, &[3, 4, 5], device, layout)?,
        })
    }

    /// Forward pass.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.heads.forward(x)?;
        let b3 = self.b3.forward(&h[0])?;
        let b7 = self.b7[2].forward(&self.b7[1].forward(&self.b7[0].forward(&h[1])?)?)?;
        let pool = max_pool_3x3_s2(x)?;
        Ok(Tensor::f_cat(&[&b3, &b7, &pool], 1)?)
    }
}

/// Pool branch of an InceptionE block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EPool {
    /// Average pool without padding in the count (Mixed_7b).
    Average,
    /// Max pool (Mixed_7c, a quirk of the TensorFlow graph kept by pytorch-fid).
    Max,
}

/// InceptionE (Mixed_7b, Mixed_7c): expanded filter bank.
#[derive(Debug)]
pub struct BlockE {
    heads: Heads,
    b3: [BasicConv; 2],
    dbl2: BasicConv,
    dbl3: [BasicConv; 2],
    /// The pool branch's convolution when it cannot join the heads (max pool).
    pool_conv: Option<BasicConv>,
}

impl BlockE {
    /// Block `name` with `cin` input channels and the given pool branch.
    ///
    /// # Errors
    /// [`MetricsError::Weights`] when a parameter is missing or of another shape or kind;
    /// [`MetricsError::Torch`] when libtorch fails (an unavailable device, out of memory).
    pub fn new(
        params: &ParamMap,
        name: &str,
        cin: i64,
        pool: EPool,
        device: Device,
        layout: Layout,
    ) -> Result<Self> {
        let s = spec::block_e(name, cin);
        let c = |i: usize| BasicConv::new(params, &s[i], device, layout);
        let (heads, pool_conv) = match pool {
            EPool::Average => (
                Heads::with_pool_branch(params, &[&s[0], &s[1], &s[4], &s[8]], device, layout)?,
                None,
            ),
            EPool::Max => (
                Heads::new(params, &[&s[0], &s[1], &s[4]], device, layout)?,
                Some(c(8)?),
            ),
        };
        Ok(BlockE {
            heads,
            b3: [c(2)?, c(3)?],
            dbl2: c(5)?,
            dbl3: [c(6)?, c(7)?],
            pool_conv,
        })
    }

    /// Forward pass.
    ///
    /// # Errors
    /// As [`BasicConv::forward`].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.heads.forward(x)?;
        let b3a = self.b3[0].forward(&h[1])?;
        let b3b = self.b3[1].forward(&h[1])?;
        let d = self.dbl2.forward(&h[2])?;
        let d3a = self.dbl3[0].forward(&d)?;
        let d3b = self.dbl3[1].forward(&d)?;
        let pool = match &self.pool_conv {
            Some(conv) => {
                conv.forward(&x.f_max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false)?)?
            }
            None => h[3].shallow_clone(),
        };
        Ok(Tensor::f_cat(&[&h[0], &b3a, &b3b, &d3a, &d3b, &pool], 1)?)
    }
}
