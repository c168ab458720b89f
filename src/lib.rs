//! espchat: flash an ESP32, read its IP from the serial console, and chat with its TCP server.
//!
//! The library holds the engine: actors that own the serial port and the chat connections and
//! report [`event::Event`]s, the front ends that consume them, and the virtual board.
//! `main.rs` only parses the command line and runs one command.

pub mod app;
pub mod board;
pub mod bundled;
pub mod chat;
pub mod config;
pub mod event;
pub mod flash;
pub mod headless;
pub mod listen;
pub mod roll;
pub mod serial;
pub mod session;
pub mod signals;
pub mod trace;
pub mod tui;
pub mod udp;
pub mod ui;
