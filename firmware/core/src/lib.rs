//! The espchat chat server: the lab's "NodeMCU chat server on port 5000", with the LED exercise.
//!
//! Sans-IO and `no_std`, with no heap: the ESP32 firmware (embassy-net) and the virtual board
//! (tokio) feed it the same events and carry out the same [`Output`]s, so both behave alike.
//!
//! ```
//! use espchat_core::{Output, Server};
//!
//! let mut server = Server::new();
//! let mut sent = Vec::new();
//! let mut out = |o: Output<'_>| {
//!     if let Output::Send { to, bytes } = o {
//!         sent.push((to.get(), String::from_utf8_lossy(bytes).into_owned()));
//!     }
//! };
//! let alice = server.connect("192.0.2.7:40001".parse().unwrap(), &mut out).unwrap();
//! server.receive(alice, b"hello\r\n", &mut out);
//! assert_eq!(sent, [(1, "Client 1 connected\r\n".into()), (1, "Client 1: hello\r\n".into())]);
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(all(test, not(feature = "std")))]
extern crate std;

mod bridge;
mod chip;
mod console;
mod editor;
mod line;
mod reads;
mod server;

pub use bridge::{BRIDGE_PORT, Bridge, BridgeOutput, HOST_MAX, Target};
pub use chip::{Chip, PinError};
pub use console::{
    BLINK_SECS, BoardCommand, CONSOLE_HELP, ConsoleCommand, ConsoleError, LedPin, LedSetting,
    PASSWORD_MAX, PASSWORD_MIN, Policy, SSID_MAX, WifiCredentials,
};
pub use editor::LineEditor;
pub use line::{Line, LineReader, MAX_LINE};
pub use reads::split_reads;
pub use server::{ClientId, Disconnect, Full, MAX_CLIENTS, Output, PORT, Server};
