//! Ending on request: the signals (Unix) or console control events (Windows) that ask a
//! program to stop. The TUI catches them all so that it leaves its loop and the terminal guard
//! restores the screen, and then ends as it would have without us ([`die_of`]); line mode and
//! the virtual board stop cleanly on them.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{Caught, Ending, Interrupt, die_of};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{Caught, Ending, Interrupt, die_of};
