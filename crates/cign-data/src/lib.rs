//! # cign-data
//!
//! MNIST-format data for CIGN: an IDX reader and writer ([`idx`]), the MNIST and Fashion-MNIST
//! datasets ([`Dataset`]), the fetch step that fills a data directory from a local copy or the
//! public mirrors with checksums ([`fetch`]), and the real : noise : mismatch batch sampler
//! of the CIGN objective ([`sampler`]).
//!
//! ```no_run
//! use cign_data::{default_data_dir, fetch::ensure_dataset, Dataset, DatasetKind, Split};
//! let dir = default_data_dir(DatasetKind::Mnist);
//! ensure_dataset(DatasetKind::Mnist, &dir)?;
//! let test = Dataset::load(DatasetKind::Mnist, Split::Test, &dir)?;
//! let x = test.images_tensor(tch::Device::Cpu); // [10000, 1, 28, 28] in [-1, 1]
//! # Ok::<(), cign_data::DataError>(())
//! ```

pub mod atomic;
pub mod dataset;
pub mod error;
pub mod fetch;
pub mod idx;
pub mod sampler;

use std::path::PathBuf;

pub use dataset::{Dataset, DatasetKind, Split, NUM_CLASSES};
pub use error::{DataError, Result};
pub use idx::IdxImages;
pub use sampler::{mismatch_pairs, wrong_labels, BatchSampler, SamplerConfig, TrainBatch};

/// Root of the cign checkout this crate was built from.
pub fn repo_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Default data directory of a dataset: `$CIGN_DATA_DIR/<name>` when that variable is set and
/// not empty (as `$CIGN_WEIGHTS_DIR` is read), else `<repo>/data/<name>` (`mnist` or
/// `fashion-mnist`).
pub fn default_data_dir(kind: DatasetKind) -> PathBuf {
    let base = match std::env::var_os("CIGN_DATA_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join("data"),
    };
    base.join(kind.name())
}
