//! What each command does, once `main.rs` has parsed the command line and loaded the settings.

mod board;
mod flashing;
mod install;
mod roll;
mod sessions;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use espchat::config::{Config, process_env};
use espchat::serial::port;

pub use self::board::{list_ports, probe_ports, run_board};
pub use self::flashing::run_flash;
pub use self::install::{completions, man};
pub use self::sessions::{
    run_connect, run_demo, run_flash_and_connect, run_listen, run_monitor, run_tui,
};
use crate::cli::GlobalArgs;

/// Runs a command's async part. The runtime is then left to wind down in the background: a
/// read of stdin that never returns (the terminal stays open after `@quit`) must not keep the
/// process alive.
fn block_on(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(command);
    runtime.shutdown_background();
    result
}

/// Writes to stdout at once. A closed stdout (`espchat ports | head -1`) is an error that
/// `main` ends quietly, as other command-line tools do.
pub fn print(text: std::fmt::Arguments) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// The line mode of docs/contract.md §2: asked for, or stdout is not a terminal.
fn line_mode(global: &GlobalArgs) -> bool {
    global.headless || !std::io::stdout().is_terminal()
}

/// The port from the flag, the environment or the config file, or the one board found.
/// The serial ports that look like ESP boards (by their USB bridge), maybe none.
fn esp_ports() -> anyhow::Result<Vec<PathBuf>> {
    Ok(port::list_ports()?
        .into_iter()
        .filter(|info| info.esp_bridge().is_some())
        .map(|info| info.path)
        .collect())
}

fn serial_path(config: &Config, flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = config.port(flag, &process_env) {
        return Ok(path);
    }
    Ok(port::detect_port()?.path)
}
