//! The crate's error type.

/// Errors of `cign-core`.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A configuration value out of range, with its key.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigValueError),
    /// A device that cannot be used: absent (a CUDA device on a machine without it), or one
    /// a precision does not run on.
    #[error("device: {0}")]
    Device(String),
    /// A file's metadata that does not name a model config: a missing key, an unparsable
    /// value, an unknown kind.
    #[error("invalid metadata: {0}")]
    Metadata(String),
    /// A named tensor that was expected is absent.
    #[error("missing tensors: {0}")]
    MissingTensors(String),
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
