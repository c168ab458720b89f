//! Windows: the console's control events. Ctrl-C and Ctrl-Break, the console window closed,
//! the user logging off, the system shutting down.

use std::io;
use std::task::Poll;

use tokio::signal::windows;

/// What ended the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caught {
    CtrlC,
    CtrlBreak,
    Close,
    Logoff,
    Shutdown,
}

/// Every control event, caught from [`Ending::catch`] on.
pub struct Ending {
    ctrl_c: windows::CtrlC,
    ctrl_break: windows::CtrlBreak,
    close: windows::CtrlClose,
    logoff: windows::CtrlLogoff,
    shutdown: windows::CtrlShutdown,
}

impl Ending {
    /// Catches the events from now on: call it before the terminal changes.
    pub fn catch() -> io::Result<Ending> {
        Ok(Ending {
            ctrl_c: windows::ctrl_c()?,
            ctrl_break: windows::ctrl_break()?,
            close: windows::ctrl_close()?,
            logoff: windows::ctrl_logoff()?,
            shutdown: windows::ctrl_shutdown()?,
        })
    }

    /// The next of the events to arrive.
    pub async fn recv(&mut self) -> Caught {
        std::future::poll_fn(|cx| {
            let caught = if self.ctrl_c.poll_recv(cx).is_ready() {
                Caught::CtrlC
            } else if self.ctrl_break.poll_recv(cx).is_ready() {
                Caught::CtrlBreak
            } else if self.close.poll_recv(cx).is_ready() {
                Caught::Close
            } else if self.logoff.poll_recv(cx).is_ready() {
                Caught::Logoff
            } else if self.shutdown.poll_recv(cx).is_ready() {
                Caught::Shutdown
            } else {
                return Poll::Pending;
            };
            Poll::Ready(caught)
        })
        .await
    }
}

/// Ctrl-C, caught from [`Interrupt::catch`] on.
pub struct Interrupt(windows::CtrlC);

impl Interrupt {
    pub fn catch() -> io::Result<Interrupt> {
        windows::ctrl_c().map(Interrupt)
    }

    pub async fn recv(&mut self) {
        self.0.recv().await;
    }
}

/// Ends the process as Ctrl-C would have without us: with STATUS_CONTROL_C_EXIT, which
/// cmd.exe and PowerShell report as an interrupted program. Call it once the terminal is
/// restored.
pub fn die_of(caught: Caught) -> ! {
    tracing::debug!("ending on {caught:?}");
    const STATUS_CONTROL_C_EXIT: u32 = 0xC000_013A;
    std::process::exit(STATUS_CONTROL_C_EXIT as i32)
}
