//! The signals that end the TUI (Unix): the run loop leaves on one, so that the terminal guard
//! restores the screen, and the process then dies of it as it would have without us.

use std::io;

use nix::sys::signal::{SigHandler, Signal, raise, signal};
use tokio::signal::unix::{self, SignalKind};

/// SIGTERM, SIGINT, SIGHUP and SIGQUIT, caught for the life of the TUI.
pub struct Ending {
    terminate: unix::Signal,
    interrupt: unix::Signal,
    hangup: unix::Signal,
    quit: unix::Signal,
}

impl Ending {
    /// Catches the signals from now on: call it before the terminal changes.
    pub fn catch() -> io::Result<Ending> {
        Ok(Ending {
            terminate: unix::signal(SignalKind::terminate())?,
            interrupt: unix::signal(SignalKind::interrupt())?,
            hangup: unix::signal(SignalKind::hangup())?,
            quit: unix::signal(SignalKind::quit())?,
        })
    }

    /// The next of the signals to arrive.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.terminate.recv() => Signal::SIGTERM,
            _ = self.interrupt.recv() => Signal::SIGINT,
            _ = self.hangup.recv() => Signal::SIGHUP,
            _ = self.quit.recv() => Signal::SIGQUIT,
        }
    }
}

/// Ends the process by `caught`, with its default action, so that the parent sees what it
/// sent (a shell reports 128+N, a script's `trap` and `wait` work as usual). Call it once the
/// terminal is restored.
pub fn die_of(caught: Signal) -> ! {
    // SAFETY: SIG_DFL installs no Rust code as a handler; nothing else runs after this but
    // the signal's default action.
    let _ = unsafe { signal(caught, SigHandler::SigDfl) };
    let _ = raise(caught);
    // Not reached for these signals; the shell's convention if it were.
    std::process::exit(128 + caught as i32)
}
