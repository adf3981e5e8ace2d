//! The mode of one pass of `f`: how BatchNorm normalises and whether dropout is on.

/// How BatchNorm normalises in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Running statistics (PyTorch eval mode).
    Eval,
    /// Batch statistics, running statistics updated (PyTorch training mode).
    Train,
    /// Batch statistics, running statistics left untouched.
    BatchStats,
}

/// The mode of one pass of `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub bn: BnMode,
    /// Apply dropout (with the config's probability).
    pub dropout: bool,
}

impl Mode {
    /// PyTorch's training mode: batch statistics (running statistics updated) and dropout.
    pub const TRAIN: Mode = Mode {
        bn: BnMode::Train,
        dropout: true,
    };
    /// PyTorch's eval mode: running statistics, no dropout.
    pub const EVAL: Mode = Mode {
        bn: BnMode::Eval,
        dropout: false,
    };
    /// Batch statistics without dropout and without touching the running statistics (the
    /// generation API's training-mode option).
    pub const BATCH_STATS: Mode = Mode {
        bn: BnMode::BatchStats,
        dropout: false,
    };

    /// `TRAIN` or `EVAL`.
    pub fn from_train(train: bool) -> Mode {
        if train {
            Mode::TRAIN
        } else {
            Mode::EVAL
        }
    }

    /// The generation API's modes: `BATCH_STATS` or `EVAL`.
    pub(crate) fn generation(train: bool) -> Mode {
        if train {
            Mode::BATCH_STATS
        } else {
            Mode::EVAL
        }
    }
}
