//! espchat: flash an ESP32, read its IP from the serial console, and chat with its TCP server.
//!
//! The library holds the engine; `main.rs` only parses the command line and runs one command.

pub mod board;
