//! Unix: the signals whose default action ends the process.

use std::io;
use std::task::Poll;

use nix::sys::signal::{SigHandler, Signal, raise, signal};
use tokio::signal::unix::{self, SignalKind};

/// The signals whose default action ends the process and that a program may catch. Not
/// SIGPIPE (Rust ignores it: a write fails instead), nor the faults (SIGSEGV and kin), after
/// which no code should run; SIGKILL cannot be caught.
const ENDING: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
];

/// What ended the process.
pub type Caught = Signal;

/// The [`ENDING`] signals, caught from [`Ending::catch`] on.
pub struct Ending {
    streams: Vec<(Signal, unix::Signal)>,
}

impl Ending {
    /// Catches the signals from now on: call it before the terminal changes.
    pub fn catch() -> io::Result<Ending> {
        let streams = ENDING
            .iter()
            .map(|&caught| Ok((caught, unix::signal(SignalKind::from_raw(caught as i32))?)))
            .collect::<io::Result<_>>()?;
        Ok(Ending { streams })
    }

    /// The next of the signals to arrive.
    pub async fn recv(&mut self) -> Signal {
        std::future::poll_fn(|cx| {
            for (caught, stream) in &mut self.streams {
                if stream.poll_recv(cx).is_ready() {
                    return Poll::Ready(*caught);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Ctrl-C (SIGINT), caught from [`Interrupt::catch`] on.
pub struct Interrupt(unix::Signal);

impl Interrupt {
    pub fn catch() -> io::Result<Interrupt> {
        unix::signal(SignalKind::interrupt()).map(Interrupt)
    }

    pub async fn recv(&mut self) {
        self.0.recv().await;
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
