//! The command line (CONTRACT.md §1). Commands arrive here as their issues land.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "espchat",
    version,
    about = "Flash an ESP32, read its IP from the serial console, and chat with its TCP server",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a virtual ESP32-C3: a pty as its serial port, the espchat chat server on 127.0.0.1
    #[command(
        after_help = "Prints `serial: /dev/pts/N` first. Talk to it with e.g.\n  \
                      picocom /dev/pts/N        (the console: try `status` or `help`)\n  \
                      nc 127.0.0.1 5000         (a chat client; open several)\n\
                      Stops on Ctrl-C (SIGINT) or SIGTERM."
    )]
    Board(BoardArgs),
}

#[derive(Debug, clap::Args)]
pub struct BoardArgs {
    /// TCP port of the chat server on 127.0.0.1 (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = espchat_core::PORT)]
    pub tcp_port: u16,
    /// Also make a symlink at PATH to the serial port (removed on exit)
    #[arg(long, value_name = "PATH")]
    pub link: Option<PathBuf>,
}
