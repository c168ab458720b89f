//! The serial side: finding and opening ports, the console actor, and the pure stages it runs
//! the board's output through (decoding, sanitizing, watching for the board's address).

mod console;
pub mod decode;
pub mod ip_watcher;
pub mod net;
pub mod port;
#[cfg(unix)]
mod tty_unix;
#[cfg(unix)]
use tty_unix as tty;
#[cfg(windows)]
mod tty_windows;
#[cfg(windows)]
use tty_windows as tty;

pub use tty::NativePort;

pub use console::{
    LineEnding, SerialCommand, SerialConsole, SerialEvent, SerialOptions,
    firmware_lacks_credentials, firmware_reads_console, humantime_now,
};
pub use decode::{ConsoleDecoder, ConsoleOutput, StyledLine};
pub use ip_watcher::{BoardAddress, IpWatcher};
