//! The label input of the conditioned layers: each half's label embedding (the authors'
//! `label_embedder`, `nn.Embedding(num_classes, E)`) and how the label-dependent tensors are
//! computed from it ([`LabelImpl`]).

use tch::{nn, Tensor};

use super::linear::Linear;

/// How the label-dependent tensors are computed: the channel model's label maps
/// (`tanh(Linear(embedding))` as one `H x W` channel per layer) and the filter model's kernels
/// (`tanh(Linear(embedding))` as `C x k x k` per layer). Both formulations compute the same
/// values; sums and gradients differ only in summation order.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum LabelImpl {
    /// The authors' formulation: the label linear runs for every sample; the channel model
    /// concatenates the map to the layer input and convolves `C + 1` channels.
    PerSample,
    /// The label linear runs once per class and the result is gathered by label. The channel
    /// model convolves the `C` image channels with the first `C` input slices of the weight and
    /// adds the per-class convolution of the label map with the last slice (convolution is
    /// linear in its input): no concatenation copy and, on the CPU, no padding of `C + 1`
    /// channels to oneDNN's block size. The filter model's per-sample kernel linear, a skinny
    /// `[B, E] x [E, C k k]` product with a slow weight gradient, becomes a 10-row one (default).
    #[default]
    PerClass,
}

/// One half's embedding table `[num_classes, E]`, initialised `N(0, 1)` as `nn.Embedding`.
#[derive(Debug)]
pub(super) struct Embedder {
    table: Tensor,
    imp: LabelImpl,
}

impl Embedder {
    /// Creates `weight` under `p` (e.g. `generator.label_embedder`).
    pub(super) fn new(p: &nn::Path, num_classes: i64, dim: i64, imp: LabelImpl) -> Self {
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        Embedder {
            table: p.var("weight", &[num_classes, dim], init),
            imp,
        }
    }

    /// The labels `[B]` (Int64 in `0..num_classes`) of one pass of a batch of `batch` images,
    /// as the layers take them: the one place that checks that a conditional model was given
    /// one integer label per image (without this, a `[1]` label tensor would broadcast over
    /// the channel model's batch, and a batch of one over the labels).
    ///
    /// # Panics
    ///
    /// `labels` is `None`, not one-dimensional of length `batch`, or not of an integer kind.
    /// Labels outside `0..num_classes` panic later, in libtorch's `embedding` or
    /// `index_select` (the generation entry points check them first).
    pub(super) fn embed<'a>(&'a self, labels: Option<&'a Tensor>, batch: i64) -> Labels<'a> {
        let labels = labels.expect("a conditional CIGN model needs labels (Int64 [B])");
        assert!(
            labels.size() == [batch]
                && !labels.is_floating_point()
                && labels.kind() != tch::Kind::Bool,
            "labels of shape {:?} and kind {:?} for a batch of {batch}: a conditional CIGN model \
             needs one integer label per image (Int64 [B])",
            labels.size(),
            labels.kind()
        );
        match self.imp {
            LabelImpl::PerSample => {
                Labels::PerSample(Tensor::embedding(&self.table, labels, -1, false, false))
            }
            LabelImpl::PerClass => Labels::PerClass {
                table: &self.table,
                labels,
            },
        }
    }
}

/// The labels of one pass.
pub(super) enum Labels<'a> {
    /// No label input (the label-free network).
    None,
    /// The embedding of each sample, `[B, E]`.
    PerSample(Tensor),
    /// The whole table `[num_classes, E]` and the labels `[B]`.
    PerClass {
        table: &'a Tensor,
        labels: &'a Tensor,
    },
}

impl Labels<'_> {
    pub(super) fn is_per_class(&self) -> bool {
        matches!(self, Labels::PerClass { .. })
    }

    /// `tanh(linear(e))` of each embedding row `e`, viewed as `shape` (`[-1, ...]`): one row
    /// per sample (`[B, ...]`) or per class (`[num_classes, ...]`).
    ///
    /// # Panics
    ///
    /// [`Labels::None`]: unreachable, conditioned layers exist only in the halves of a
    /// conditional model, whose labels come from [`Embedder::embed`].
    pub(super) fn project(&self, linear: &Linear, shape: &[i64]) -> Tensor {
        let rows = match self {
            Labels::PerSample(e) => e,
            Labels::PerClass { table, .. } => *table,
            Labels::None => unreachable!("a conditioned layer in a half without an embedder"),
        };
        linear.forward(rows).view(shape).tanh()
    }

    /// The sample rows of `rows` (one per row of [`Labels::project`], or computed from them
    /// row by row): gathered by label when they are per class, `rows` itself otherwise.
    pub(super) fn per_sample(&self, rows: Tensor) -> Tensor {
        match self {
            Labels::PerClass { labels, .. } => rows.index_select(0, labels),
            _ => rows,
        }
    }
}
