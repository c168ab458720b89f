//! The virtual board: an ESP32-C3 that runs here. Its serial port is a pty (or a TCP port
//! where there are no ptys), its chat server is `espchat-core` on 127.0.0.1, so every part of
//! espchat can be tried and tested without hardware.

pub mod boot;
mod bridge;
mod chip;
mod console;
mod firmware;
pub mod image;
mod panic;
mod port;
#[cfg(unix)]
mod pty;
pub mod rom;
mod socket;
mod uart;

use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use firmware::{DEFAULT_SSID, SEND_BACKLOG, STALL_TIMEOUT};

use chip::{Chip, ChipConfig};
use port::Port;
pub use port::SerialKind;
use rom::{DEFAULT_FLASH_SIZE, Flash};

/// How to start a virtual board.
#[derive(Clone, Debug, Default)]
pub struct BoardConfig {
    /// TCP port of the chat server on 127.0.0.1; 0 picks a free one.
    pub tcp_port: u16,
    /// The serial port: a pty, or a TCP port on 127.0.0.1.
    pub serial: SerialKind,
    /// A symlink to create to the pty (e.g. `/tmp/esp`), removed when the board stops.
    pub link: Option<PathBuf>,
    /// Start with erased flash instead of an espchat app image.
    pub blank: bool,
    /// Keep the 4 MB flash in this file across runs (created if missing).
    pub flash_file: Option<PathBuf>,
    /// Pace the ROM loader's traffic like a UART at the client's baud rate (realistic
    /// flashing times); off for fast tests.
    pub throttle: bool,
}

// Each message includes its OS error, so none is a `source`: `{error:#}` would say it twice.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot create the virtual serial port (pty): {0}")]
    Pty(io::Error),
    #[error(
        "cannot listen for the serial console on 127.0.0.1:{port}: {error} (is another board \
         using the port? --console-tcp 0 picks a free one)"
    )]
    ConsoleBind { port: u16, error: io::Error },
    #[error(
        "cannot link {} to the serial port: it is a TCP port, not a pty (open the socket:// \
         address it prints instead)",
        .0.display()
    )]
    LinkNeedsPty(PathBuf),
    #[error(
        "cannot listen on 127.0.0.1:{port}: {error} (is another board using the port? \
         --tcp-port 0 picks a free one)"
    )]
    Bind { port: u16, error: io::Error },
    #[error("cannot create the link {}: {error}", path.display())]
    Link { path: PathBuf, error: io::Error },
    #[error("refusing to replace {}: it exists and is not a symlink (choose another --link path)", .0.display())]
    LinkExists(PathBuf),
    #[error("flash file {}: {error}", path.display())]
    FlashFile { path: PathBuf, error: io::Error },
    #[error(
        "flash file {}: {len} bytes, not a 4 MiB flash (it was not written by espchat board; \
         choose another --flash-file or delete it)",
        path.display()
    )]
    FlashFileSize { path: PathBuf, len: usize },
}

/// A running virtual board. Dropping it stops the board; [`Board::stop`] waits for that.
pub struct Board {
    serial: Port,
    port: u16,
    link: Option<port::Link>,
    stop: Option<oneshot::Sender<()>>,
    chip: JoinHandle<()>,
    reopen: JoinHandle<io::Result<()>>,
}

impl Board {
    /// Starts a board on the current tokio runtime: it boots at once and prints its boot log
    /// to the pty, where it waits for the first client.
    pub async fn start(config: BoardConfig) -> Result<Board, BoardError> {
        let port = free_port(config.tcp_port).await?;
        let flash = initial_flash(&config)?;
        let serial = Port::open(config.serial)
            .await
            .map_err(|error| match config.serial {
                SerialKind::Pty => BoardError::Pty(error),
                SerialKind::Tcp(port) => BoardError::ConsoleBind { port, error },
            })?;
        let link = config.link.map(|path| serial.link(&path)).transpose()?;
        let reopenable = serial.keep_reopenable().map_err(BoardError::Pty)?;
        let (console, console_in) = console::start(&serial);
        let mut chip = Chip::new(
            console,
            console_in,
            serial.clone(),
            ChipConfig {
                tcp_port: port,
                flash,
                flash_file: config.flash_file,
                throttle: config.throttle,
            },
        );
        chip.power_on().await;
        let (stop, stopped) = oneshot::channel();
        Ok(Board {
            reopen: tokio::spawn(reopenable),
            serial,
            port,
            link,
            stop: Some(stop),
            chip: tokio::spawn(chip.run(stopped)),
        })
    }

    /// The serial port clients open: `/dev/pts/N` or `socket://127.0.0.1:PORT`.
    pub fn serial_path(&self) -> &Path {
        self.serial.path()
    }

    /// The chat server's TCP port on 127.0.0.1.
    pub fn tcp_port(&self) -> u16 {
        self.port
    }

    /// Waits until the board stops by itself (it does not, unless its console fails).
    pub async fn wait(&mut self) {
        let _ = (&mut self.chip).await;
    }

    /// Stops the board: closes every client and removes the link.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.chip).await;
        self.reopen.abort();
        // Removes it.
        self.link = None;
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.chip.abort();
        self.reopen.abort();
    }
}

/// The chat port: the one asked for, or a free one, checked by binding it once. The firmware
/// binds it again at each boot.
async fn free_port(port: u16) -> Result<u16, BoardError> {
    let bind_error = |error| BoardError::Bind { port, error };
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(bind_error)?;
    Ok(listener.local_addr().map_err(bind_error)?.port())
}

/// What the flash holds at power-on: the flash file's content, or erased flash, or the bundled
/// espchat firmware (a board after its first flash).
fn initial_flash(config: &BoardConfig) -> Result<Flash, BoardError> {
    if let Some(path) = &config.flash_file {
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == DEFAULT_FLASH_SIZE => return Ok(Flash::from_bytes(bytes)),
            Ok(bytes) => {
                return Err(BoardError::FlashFileSize {
                    path: path.clone(),
                    len: bytes.len(),
                });
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(BoardError::FlashFile {
                    path: path.clone(),
                    error,
                });
            }
        }
    }
    let mut flash = Flash::new_erased(DEFAULT_FLASH_SIZE);
    if !config.blank {
        // As `espchat flash` leaves a 4 MB ESP32-C3: bootloader, partition table, app.
        let no_parts = crate::flash::layout::LoadedParts::default();
        let segments = crate::flash::FlashImage::Bundled
            .segments(
                crate::flash::Chip::Esp32c3,
                crate::flash::FlashSize::_4Mb,
                espflash::target::XtalFrequency::_40Mhz,
                &no_parts,
            )
            .expect("the bundled ESP32-C3 firmware converts");
        for segment in segments {
            // Made for this flash's size: it fits.
            let _ = flash.write(segment.addr, &segment.data);
        }
    }
    if let Some(path) = &config.flash_file {
        write_atomically(path, flash.as_bytes()).map_err(|error| BoardError::FlashFile {
            path: path.clone(),
            error,
        })?;
    }
    Ok(flash)
}

/// Replaces `path` in one step: whoever reads the flash file sees the old flash or the new one,
/// never half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
