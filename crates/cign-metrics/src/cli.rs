//! The `main` of the cign binaries (feature `cli`): logging to stderr, argument parsing, and
//! every error as exactly one `error: ...` line on stderr with exit code 2.
//!
//! ```no_run
//! use clap::Parser;
//! use cign_metrics::device::DeviceChoice;
//!
//! /// An example tool.
//! #[derive(Parser)]
//! struct Args {
//!     /// auto, cpu, cuda or cuda:N.
//!     #[arg(long, default_value = "auto")]
//!     device: DeviceChoice,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     cign_metrics::cli::main_with("info", |args: Args| {
//!         let device = args.device.resolve()?;
//!         tracing::info!("running on {device:?}");
//!         Ok(())
//!     })
//! }
//! ```
//!
//! * Logging: `tracing` events go to stderr through `tracing-subscriber`, filtered by
//!   `RUST_LOG` (default: the `default_filter` given to [`main_with`]), coloured only when
//!   stderr is a terminal.
//! * Errors: [`error_line`] joins an `anyhow` chain with `": "`, drops a cause whose text the
//!   message already holds (a `thiserror` message that prints its source, or a transparent
//!   wrapper, would otherwise repeat it), cuts libtorch's C++ traces and folds line breaks.
//! * Usage errors from clap: one line too ([`clap_error_line`]), exit code 2; `--help` and
//!   `--version` print as usual and exit 0.
//! * A panic (a bug, never a user error) prints one `error: internal error ...` line and
//!   keeps Rust's exit code 101, so that tests can tell bugs from user errors.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

/// Exit code of every user error (bad arguments, bad input, failed computation).
pub const USER_ERROR_EXIT: u8 = 2;

/// Tunes malloc for tensor work ([`cign_core::runtime::tune_malloc`]), parses the arguments as
/// `A`, sets up logging and a one-line panic message, runs `run`, and turns its error into one
/// `error:` line with exit code [`USER_ERROR_EXIT`]. `default_filter` is the log filter when
/// `RUST_LOG` is not set (e.g. `"warn"`, `"info"`).
pub fn main_with<A, F>(default_filter: &str, run: F) -> ExitCode
where
    A: Parser,
    F: FnOnce(A) -> anyhow::Result<()>,
{
    cign_core::runtime::tune_malloc();
    install_panic_hook();
    init_logging(default_filter);
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("{}", missing_line(&A::command()));
            return ExitCode::from(USER_ERROR_EXIT);
        }
        Err(e) => return clap_exit(&e),
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::from(USER_ERROR_EXIT)
        }
    }
}

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` or else by `default_filter`
/// (a `tracing_subscriber::EnvFilter` directive such as `"warn"` or `"cign_train=info"`), with
/// colours only when stderr is a terminal. Does nothing when a subscriber is already set.
pub fn init_logging(default_filter: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&text)
            .unwrap_or_else(|e| {
                eprintln!(
                    "warning: RUST_LOG={text} is not a valid filter ({e}); using {default_filter}"
                );
                tracing_subscriber::EnvFilter::new(default_filter)
            }),
        _ => tracing_subscriber::EnvFilter::new(default_filter),
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

/// Replaces the panic message (and its backtrace note) by one line. With `RUST_BACKTRACE` set,
/// the default report follows it.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (a bug, please report it): {}{at}",
            one_line(&payload)
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            default(info);
        }
    }));
}

/// `text` on one line: libtorch's C++ trace ("Exception raised from ..." or "frame #0: ...")
/// cut off, lines trimmed and joined with spaces, a leading `error: ` removed.
pub fn one_line(text: &str) -> String {
    // libtorch appends a C++ stack dump ("Exception raised from ...", or "frame #0: ...").
    let cut = ["Exception raised from", "frame #0"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    let text = &text[..cut];
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined
        .strip_prefix("error: ")
        .map(str::to_string)
        .unwrap_or(joined)
}

/// The one-line report of `err`: `error: ` and the chain of messages joined by `": "`, each
/// on one line ([`one_line`]), without a cause whose text an earlier message already contains.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = one_line(&cause.to_string());
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    if parts.is_empty() {
        parts.push("unknown error".into());
    }
    format!("error: {}", parts.join(": "))
}

/// A clap usage error as one line: its message and tips, without the usage block.
pub fn clap_error_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let parts: Vec<String> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| {
            !p.is_empty() && !p.starts_with("Usage:") && !p.starts_with("For more information")
        })
        .map(one_line)
        .collect();
    format!("error: {} (see --help)", parts.join("; "))
}

/// The one line for a command run without its required subcommand or arguments (where clap
/// would print the whole help).
pub fn missing_line(command: &clap::Command) -> String {
    let subcommands: Vec<&str> = command
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|n| *n != "help")
        .collect();
    if subcommands.is_empty() {
        format!(
            "error: {}: arguments are missing (see --help)",
            command.get_name()
        )
    } else {
        format!(
            "error: {}: a subcommand is missing: {} (see --help)",
            command.get_name(),
            subcommands.join(", ")
        )
    }
}

/// Prints a clap outcome: help and version to stdout with exit code 0, any other error as one
/// line ([`clap_error_line`]; a missing subcommand or argument without the help clap would
/// print) with exit code [`USER_ERROR_EXIT`].
pub fn clap_exit(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // clap would print the whole help; [`main_with`] names the subcommands instead.
            eprintln!("error: arguments or a subcommand are missing (see --help)");
            ExitCode::from(USER_ERROR_EXIT)
        }
        _ => {
            eprintln!("{}", clap_error_line(err));
            ExitCode::from(USER_ERROR_EXIT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: cannot open: {source}")]
    struct Repeats {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn chains_are_one_line_without_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = Err::<(), _>(Repeats {
            path: "/x".into(),
            source: io,
        })
        .context("input A")
        .unwrap_err();
        assert_eq!(
            error_line(&e),
            "error: input A: /x: cannot open: No such file or directory"
        );
        let torch = anyhow::anyhow!(
            "libtorch: CUDA error: no device\nCUDA kernel errors might be reported\nException raised from c10_cuda_check at x.cpp:1\nframe #0: ..."
        );
        assert_eq!(
            error_line(&torch.context("loading")),
            "error: loading: libtorch: CUDA error: no device CUDA kernel errors might be reported"
        );
        // An allocation failure's dump has frames but no "Exception raised from" line.
        assert_eq!(
            one_line(
                "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes.\nframe #0: c10::ThrowEnforceNotMet(...)\nframe #1: ..."
            ),
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes."
        );
        let e = anyhow::anyhow!("error: already prefixed");
        assert_eq!(error_line(&e), "error: already prefixed");
    }

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(long, default_value = "auto")]
        device: crate::device::DeviceChoice,
        #[arg(long)]
        dims: String,
    }

    #[test]
    fn clap_errors_are_one_line() {
        let e = Args::try_parse_from(["x", "--device", "gpu", "--dims", "1"]).unwrap_err();
        let line = clap_error_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("error: invalid value 'gpu' for '--device <DEVICE>'")
                && line.contains("expected auto, cpu, cuda or cuda:N"),
            "{line}"
        );
        #[derive(Debug, Parser)]
        #[command(name = "tool", arg_required_else_help = true)]
        enum Tool {
            /// Train.
            Train,
            /// Evaluate.
            Eval,
        }
        let e = Tool::try_parse_from(["tool"]).unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert_eq!(
            missing_line(&<Tool as clap::CommandFactory>::command()),
            "error: tool: a subcommand is missing: train, eval (see --help)"
        );
        let e = Args::try_parse_from(["x", "--dim", "1"]).unwrap_err();
        let line = clap_error_line(&e);
        assert!(!line.contains('\n') && line.contains("'--dim'"), "{line}");
        assert!(
            line.contains("tip: a similar argument exists: '--dims'"),
            "{line}"
        );
    }
}
