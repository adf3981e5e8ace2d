//! `tracing` to stderr and, once a run directory exists, to its `run.log`.

use std::path::Path;

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Installs the subscriber: stderr always (coloured only on a terminal), `log_file` too when
/// given. Level from `RUST_LOG` (default `info`). The binaries without a run directory use
/// `cign_metrics::cli::init_logging` instead.
///
/// # Errors
///
/// The log file cannot be opened, or a subscriber is already installed.
pub fn init(log_file: Option<&Path>) -> anyhow::Result<()> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter());
    let file_layer = match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            Some(
                fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false)
                    .with_target(false)
                    .with_filter(filter()),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging already initialised: {e}"))
}
