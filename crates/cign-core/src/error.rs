//! The crate's error type.

/// Errors of `cign-core`.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A configuration value out of range, with its key.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigValueError),
    /// A named tensor that was expected is absent.
    #[error("missing tensors: {0}")]
    MissingTensors(String),
    /// Tensors whose names are not known to the receiver.
    #[error("unexpected tensors: {0}")]
    UnexpectedTensors(String),
    /// A tensor has a shape other than the expected one.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// Loading a state failed for several reasons at once (each listed).
    #[error("cannot load state from {path}: {problems}")]
    Load { path: String, problems: String },
    /// A safetensors file could not be parsed, or has an unsupported dtype.
    #[error("safetensors: {0}")]
    SafeTensors(String),
    /// File system error.
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
