//! # cign-core
//!
//! Conditional Idempotent Generative Networks (Ronchetti, arXiv 2406.02841) on libtorch via
//! `tch`: the channel- and filter-conditioned networks of the authors' MNIST code (and the same
//! network without labels, an ablation), the unconditional IGN network the paper compares
//! against ([`ign`], [`Architecture::Ign`]), the five-term CIGN objective (three-term IGN
//! objective without labels) with its gradient routing and optional tightness clamp
//! ([`TightClamp`]), an AdamW equal to PyTorch's, and import of the authors' weights from
//! safetensors files that use their state-dict names.
//!
//! ```no_run
//! use cign_core::{AdamW, AdamWConfig, CignModel, Conditioning, ModelConfig, Objective,
//!                 ObjectiveConfig, TrainBatch, mismatch_pairs};
//! use tch::{nn::VarStore, Device, Kind, Tensor};
//!
//! # fn main() -> Result<(), cign_core::CoreError> {
//! let device = Device::Cpu;
//! let cfg = ModelConfig { conditioning: Conditioning::Filter, ..Default::default() };
//! let vs = VarStore::new(device);
//! let model = CignModel::new(&vs.root(), &cfg)?;
//! let mut objective = Objective::new(&cfg, ObjectiveConfig::default(), device)?;
//! let mut opt = AdamW::new(&vs, AdamWConfig::default());
//!
//! // One training step on a (random) batch of 8.
//! let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, device)) * 2.0 - 1.0;
//! let y = Tensor::randint(10, [8], (Kind::Int64, device));
//! let (xm, ym) = mismatch_pairs(&x, &y, 10);
//! let batch = TrainBatch {
//!     z: Tensor::randn([8, 1, 28, 28], (Kind::Float, device)),
//!     yz: Tensor::randint(10, [8], (Kind::Int64, device)),
//!     x, y, x_mismatch: Some(xm), y_mismatch: Some(ym),
//! };
//! opt.zero_grad();
//! let terms = objective.training_loss(&model, &vs, &batch);
//! terms.total.backward();
//! opt.step();
//! println!("{:?}", terms.to_f64());
//!
//! // Generation: one eval-mode call per image; the same noise under every label.
//! let z = Tensor::randn([10, 1, 28, 28], (Kind::Float, device));
//! let labels = Tensor::arange(10, (Kind::Int64, device));
//! let images = model.generate(&z, Some(&labels));
//! assert_eq!(images.size(), [10, 1, 28, 28]);
//! # Ok(()) }
//! ```
//!
//! Variable names are the authors' (`discriminator.conv_1.weight`,
//! `generator.batch_norm_5.running_var`, ...), so [`load_safetensors_into`] loads their weights
//! without renaming.
//!
//! ## Notes
//!
//! * Modes: [`CignModel::forward_t`] with `train = true` is PyTorch's training mode (batch
//!   statistics, running statistics updated, dropout); the generation API ([`CignModel::generate`],
//!   [`CignModel::reapply`], [`CignModel::project`]) is eval mode by default, and its
//!   `train = true` option normalises with batch statistics without dropout and without touching
//!   the running statistics.
//! * [`Objective::validation_loss`] follows PyTorch Lightning's validation loop in the authors'
//!   code: everything in eval mode under `no_grad`, so the frozen copy equals `f` and the
//!   tightness distances equal the idempotence distances.
//! * [`AdamW::zero_grad`] zeroes gradients (tch cannot reset them to `None`); a parameter that
//!   never received a gradient is skipped by [`AdamW::step`] as in PyTorch, one whose gradient
//!   was zeroed is updated with a zero gradient (in CIGN every parameter gets a gradient every
//!   step, so the two agree).
//! * The golden tests reproduce the fixtures made by `tests/fixtures/make_fixtures.py` bit for
//!   bit, running as they were made: oneDNN's AVX2 kernels (`ONEDNN_MAX_CPU_ISA=AVX2`) and one
//!   intra-op thread (training-mode BatchNorm splits its sums by thread); every formulation is
//!   held to a multiple of the fixture's own float32 error from a float64 run of its inputs.
//! * Speed on the CPU without changing the objective ([`Formulation`], fixed when the model
//!   and its objective are built: [`CignModel::with_formulation`],
//!   [`Objective::with_formulation`]; the default is the fastest measured among those whose
//!   float32 step stays within 10 times the authors' own float32 error of the exact step on
//!   every fixture (`tests/golden.rs`), [`Formulation::AUTHORS`] reproduces the authors' code
//!   bit for bit on fixtures made on the same machine):
//!   dropout masks from a counter-based generator instead of torch's per-element Bernoulli
//!   draws, fused with the following (leaky) ReLU into one multiplication ([`dropout`]); the
//!   filter model's channel mixer as a 1x1 convolution so activations stay contiguous NCHW
//!   ([`MixerImpl`]); label maps and kernels computed once per class and gathered, the channel
//!   model's label channel as a separate convolution ([`LabelImpl`]); optionally BatchNorm of
//!   1x1 and 2x2 maps as rows ([`BnLayout`], not the default: less accurate in float32).
//!   Binaries also raise glibc's malloc thresholds
//!   ([`runtime::tune_malloc`]) so freed activations are reused instead of unmapped.
//! * Precision ([`Precision`], [`CignModel::set_precision`]): float32 (default) or bfloat16
//!   mixed precision through libtorch's autocast ([`precision`]): convolutions and linears in
//!   bfloat16; variables, gradients, AdamW state, losses and BatchNorm statistics in float32.
//! * FLOPs: [`flops`]; the benchmark (`cargo bench -p cign-core`) prints them next to the times.

pub mod config;
pub mod depthwise;
pub mod dropout;
pub mod error;
pub mod flops;
pub mod ign;
pub mod import;
pub mod model;
pub mod objective;
pub mod optim;
pub mod precision;
pub mod runtime;

pub use config::{
    AdamWConfig, Architecture, Conditioning, ConfigValueError, LossWeights, ModelConfig,
    ObjectiveConfig, TightClamp,
};
pub use error::CoreError;
pub use import::{
    load_named_into, load_safetensors_into, model_config_from_metadata, read_safetensors,
    SafetensorsFile,
};
pub use model::{
    layer_geometry, sample_noise, trainable_parameter_count, BnLayout, BnMode, CignModel,
    Formulation, LabelImpl, LayerGeometry, MixerImpl, Mode, IMAGE_SIZE,
};
pub use objective::{mismatch_pairs, LossTerms, LossValues, Objective, TrainBatch};
pub use optim::AdamW;
pub use precision::Precision;
