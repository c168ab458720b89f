//! The virtual board: an ESP32-C3 that runs here. Its serial port is a pty, its chat server is
//! `espchat-core` on 127.0.0.1, so every part of espchat can be tried and tested without
//! hardware.

mod firmware;
mod pty;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use firmware::{DEFAULT_SSID, SEND_BACKLOG, STALL_TIMEOUT};

use firmware::Firmware;
use pty::Pty;

/// How to start a virtual board.
#[derive(Clone, Debug, Default)]
pub struct BoardConfig {
    /// TCP port of the chat server on 127.0.0.1; 0 picks a free one.
    pub tcp_port: u16,
    /// A symlink to create to the pty (e.g. `/tmp/esp`), removed when the board stops.
    pub link: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot create the virtual serial port (pty): {0}")]
    Pty(#[source] io::Error),
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source} (is another board using the port? \
         --tcp-port 0 picks a free one)"
    )]
    Bind {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the link {}: {source}", path.display())]
    Link {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing to replace {}: it exists and is not a symlink (choose another --link path)", .0.display())]
    LinkExists(PathBuf),
}

/// A running virtual board. Dropping it stops the board; [`Board::stop`] waits for that.
pub struct Board {
    pty: Arc<Pty>,
    port: u16,
    link: Option<Link>,
    stop: Option<oneshot::Sender<()>>,
    firmware: JoinHandle<()>,
    reopen: JoinHandle<io::Result<()>>,
}

impl Board {
    /// Starts a board on the current tokio runtime: it boots at once and prints its boot log
    /// to the pty, where it waits for the first client.
    pub async fn start(config: BoardConfig) -> Result<Board, BoardError> {
        let pty = Pty::open().map_err(BoardError::Pty)?;
        let link = config
            .link
            .map(|path| Link::create(&path, pty.path()))
            .transpose()?;
        let reopenable = pty.keep_reopenable().map_err(BoardError::Pty)?;
        let (console, console_in) = firmware::console(&pty);
        let firmware = Firmware::start(console, config.tcp_port).await?;
        let port = firmware.port();
        let (stop, stopped) = oneshot::channel();
        Ok(Board {
            reopen: tokio::spawn(reopenable),
            pty,
            port,
            link,
            stop: Some(stop),
            firmware: tokio::spawn(firmware.run(console_in, stopped)),
        })
    }

    /// The serial port clients open: `/dev/pts/N`.
    pub fn serial_path(&self) -> &Path {
        self.pty.path()
    }

    /// The chat server's TCP port on 127.0.0.1.
    pub fn tcp_port(&self) -> u16 {
        self.port
    }

    /// Waits until the board stops by itself (it does not, unless its console fails).
    pub async fn wait(&mut self) {
        let _ = (&mut self.firmware).await;
    }

    /// Stops the board: closes every client and removes the link.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.firmware).await;
        self.reopen.abort();
        drop(self.link.take());
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        self.firmware.abort();
        self.reopen.abort();
    }
}

/// A symlink to the pty, removed again when the board stops, if it still points there.
struct Link {
    path: PathBuf,
    target: PathBuf,
}

impl Link {
    fn create(path: &Path, target: &Path) -> Result<Link, BoardError> {
        let link_error = |source| BoardError::Link {
            path: path.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            // A link left by a board that was killed: take it over.
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::remove_file(path).map_err(link_error)?;
            }
            Ok(_) => return Err(BoardError::LinkExists(path.to_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(link_error(error)),
        }
        std::os::unix::fs::symlink(target, path).map_err(link_error)?;
        Ok(Link {
            path: path.to_owned(),
            target: target.to_owned(),
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if std::fs::read_link(&self.path).is_ok_and(|target| target == self.target) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
