//! Stopping a run from outside: SIGTERM (what schedulers send before preemption) and the first
//! Ctrl-C (SIGINT) ask the loop to finish its current step, write `last` at once (no
//! validation) and exit with 128 + the signal number; a second signal of either kind ends the
//! process at once with `_exit` (no exit-time destructors run under a libtorch kernel that is
//! still working, which used to crash), exit code 130 for SIGINT and 143 for SIGTERM.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The stop request shared by the signal handlers and the training loop.
#[derive(Debug, Clone, Default)]
pub struct StopFlag {
    requested: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl StopFlag {
    /// A flag nobody has raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs the SIGINT and SIGTERM handlers that raise this flag (a second signal exits at
    /// once), plus a watcher thread that prints what happens when the first one arrives.
    ///
    /// # Errors
    ///
    /// The operating system refused to install a handler.
    pub fn install_handlers(&self) -> std::io::Result<()> {
        for sig in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as it was before this signal raised it.
            signal_hook::flag::register_conditional_shutdown(
                sig,
                128 + sig,
                self.requested.clone(),
            )?;
            signal_hook::flag::register_usize(sig, self.signal.clone(), sig as usize)?;
            signal_hook::flag::register(sig, self.requested.clone())?;
        }
        let flag = self.clone();
        std::thread::Builder::new()
            .name("cign-stop-watch".into())
            .spawn(move || loop {
                if let Some(sig) = flag.signal() {
                    eprintln!(
                        "{}: finishing the current step, then writing the checkpoint and exiting \
                         (send it again to exit at once, without a checkpoint)",
                        signal_name(sig)
                    );
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            })?;
        Ok(())
    }

    /// Raises the flag as the given signal would (tests, embedding programs).
    pub fn request(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::SeqCst);
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The signal that requested the stop, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 if self.is_requested() => Some(SIGINT),
            0 => None,
            s => Some(s as i32),
        }
    }
}

/// `SIGINT (Ctrl-C)`, `SIGTERM` or `signal N`.
pub fn signal_name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT (Ctrl-C)".into(),
        SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}
