//! The error type of cign-data: every variant names the file (or URL) and what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong while reading, fetching or sampling data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file (or its directory) could not be created or written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file or directory, as the caller named it (never a temporary file).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: corrupt gzip stream (truncated or damaged): {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: std::io::Error,
    },
    /// The file is shorter than its IDX header says (or shorter than a header).
    #[error("{path}: truncated: {what}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was expected against what was found.
        what: String,
    },
    /// The IDX magic number is not the one expected for this kind of file.
    #[error("{path}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number read.
        found: u32,
        /// The magic number expected.
        expected: u32,
        /// What kind of file was expected.
        what: &'static str,
    },
    /// Dimensions in the header are not acceptable (zero, or not what the caller asked for).
    #[error("{path}: bad dimensions: {what}")]
    BadDimensions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The file is longer than its header says.
    #[error("{path}: {extra} trailing bytes after the {expected} bytes the header describes")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Number of bytes the header describes (header included).
        expected: usize,
        /// Bytes beyond that.
        extra: usize,
    },
    /// A label is not a valid class index.
    #[error("{path}: label {label} at index {index} is outside 0..{num_classes}")]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Record index.
        index: usize,
        /// The bad label.
        label: u8,
        /// Number of classes.
        num_classes: u8,
    },
    /// Images and labels disagree on the number of records.
    #[error("{images_path} has {images} images but {labels_path} has {labels} labels")]
    CountMismatch {
        /// Image file.
        images_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Label file.
        labels_path: PathBuf,
        /// Number of labels.
        labels: usize,
    },
    /// A file's decompressed bytes do not have the expected SHA-256.
    #[error("{path}: SHA-256 of the decompressed bytes is {found}, expected {expected}")]
    Checksum {
        /// The file (or URL) checked.
        path: String,
        /// Digest found.
        found: String,
        /// Digest expected.
        expected: String,
    },
    /// A dataset file is missing and could not be fetched.
    #[error("{what}")]
    Unavailable {
        /// A full explanation: which directory, which variable to set, which downloads failed.
        what: String,
    },
    /// A parameter is out of its valid range.
    #[error("invalid {name}: {what}")]
    InvalidParameter {
        /// Name of the parameter.
        name: &'static str,
        /// What is wrong with it.
        what: String,
    },
    /// A tensor operation failed (wrong shapes, device errors).
    #[error("tensor operation failed: {0}")]
    Torch(#[from] tch::TchError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;
