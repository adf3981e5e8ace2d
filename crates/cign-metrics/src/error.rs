//! The error type of cign-metrics: every variant names the file, key or value that is wrong.

use std::path::PathBuf;

/// Everything that can go wrong while computing metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A file could not be read or written.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("cannot read", "cannot create", ...).
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The FID Inception weights are missing, damaged or could not be obtained.
    #[error(
        "FID Inception weights: {what}. {}",
        crate::weights::HOW_TO_GET_WEIGHTS
    )]
    Weights {
        /// What is wrong.
        what: String,
    },
    /// A weights or classifier file does not have the expected contents.
    #[error("{path}: {what}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (missing key, wrong shape, ...).
        what: String,
    },
    /// A tensor or array argument has the wrong shape, kind or values.
    #[error("{name}: {what}")]
    InvalidInput {
        /// The argument.
        name: &'static str,
        /// What is wrong with it.
        what: String,
    },
    /// A `.npz` statistics file could not be read or written.
    #[error("{path}: statistics file: {what}")]
    Npz {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// An image file could not be decoded.
    #[error("{path}: cannot decode image: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// Statistics (mean and covariance) that cannot be those of real features.
    #[error("{which}: {what}")]
    InvalidStats {
        /// Which statistics (a file, "first statistics", ...).
        which: String,
        /// What is wrong.
        what: String,
    },
    /// Fewer samples than a statistic needs.
    #[error("{what}: {n} samples, at least {needed} needed")]
    TooFewSamples {
        /// Which statistic.
        what: String,
        /// Samples available.
        n: usize,
        /// Samples needed.
        needed: usize,
    },
    /// A numerical routine failed (non-finite input or result).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// libtorch reported an error (shown as its first line, without libtorch's C++ trace).
    #[error("libtorch: {}", torch_message(.0))]
    Torch(tch::TchError),
    /// The requested device does not exist or cannot be used.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// cign-data reported an error.
    #[error(transparent)]
    Data(#[from] cign_data::DataError),
    /// An output path that cannot be written, found before any work
    /// ([`cign_data::atomic::check_outputs`]).
    #[error(transparent)]
    Output(#[from] cign_data::atomic::OutputError),
}

impl From<cign_data::atomic::StagedError> for MetricsError {
    fn from(e: cign_data::atomic::StagedError) -> Self {
        MetricsError::Io {
            path: e.path,
            action: "cannot write",
            source: e.error,
        }
    }
}

impl From<tch::TchError> for MetricsError {
    fn from(e: tch::TchError) -> Self {
        MetricsError::Torch(e)
    }
}

/// The first line of a libtorch error: libtorch appends notes and a C++ stack trace of dozens
/// of frames ("Exception raised from ...") that say nothing to a user.
pub fn torch_message(e: &tch::TchError) -> String {
    let text = e.to_string();
    let text = text.split("Exception raised from").next().unwrap_or("");
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error")
        .to_string()
}

/// Result with [`MetricsError`].
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

impl MetricsError {
    /// Shorthand for [`MetricsError::InvalidInput`].
    pub(crate) fn invalid(name: &'static str, what: impl Into<String>) -> Self {
        MetricsError::InvalidInput {
            name,
            what: what.into(),
        }
    }

    /// Shorthand for [`MetricsError::Io`].
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        MetricsError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
