//! The virtual board's serial port: a pty (Unix), or a TCP port on 127.0.0.1 (everywhere; the
//! only kind on Windows). The chip and its console see one interface.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::BoardError;
#[cfg(unix)]
pub use super::pty::Link;
#[cfg(unix)]
use super::pty::Pty;
use super::socket::Socket;

/// No ptys, no links to them.
#[cfg(not(unix))]
pub enum Link {}

/// Which kind of port a board gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SerialKind {
    /// A pty, opened like `/dev/ttyUSB0` (Unix only).
    Pty,
    /// `socket://127.0.0.1:PORT` (0: any free port).
    Tcp(u16),
}

impl Default for SerialKind {
    fn default() -> SerialKind {
        if cfg!(unix) {
            SerialKind::Pty
        } else {
            SerialKind::Tcp(0)
        }
    }
}

#[derive(Clone)]
pub enum Port {
    #[cfg(unix)]
    Pty(Arc<Pty>),
    Socket(Arc<Socket>),
}

/// The same call on whichever port it is.
macro_rules! each {
    ($port:expr, $inner:ident => $call:expr) => {
        match $port {
            #[cfg(unix)]
            Port::Pty($inner) => $call,
            Port::Socket($inner) => $call,
        }
    };
}

impl Port {
    pub async fn open(kind: SerialKind) -> io::Result<Port> {
        match kind {
            #[cfg(unix)]
            SerialKind::Pty => Pty::open().map(Port::Pty),
            #[cfg(not(unix))]
            SerialKind::Pty => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this system has no ptys; the board's port can be a TCP port (--console-tcp)",
            )),
            SerialKind::Tcp(port) => Socket::open(port).await.map(Port::Socket),
        }
    }

    /// A symlink at `path` to the port, removed when dropped: a pty's only.
    pub fn link(&self, path: &Path) -> Result<Link, BoardError> {
        match self {
            #[cfg(unix)]
            Port::Pty(pty) => Link::create(path, pty.path()),
            Port::Socket(_) => Err(BoardError::LinkNeedsPty(path.to_owned())),
        }
    }

    /// What clients open: `/dev/pts/N` or `socket://127.0.0.1:PORT`.
    pub fn path(&self) -> &Path {
        each!(self, port => port.path())
    }

    /// Resolves when a client lets go of the port, or has done so since the last call.
    pub async fn closed(&self) {
        each!(self, port => port.closed().await)
    }

    /// The number of the last close that let go of the port.
    pub fn close_count(&self) -> u64 {
        match self {
            #[cfg(unix)]
            Port::Pty(pty) => pty.close_count(),
            Port::Socket(socket) => socket.close_events(),
        }
    }

    /// How many closes have been seen so far, whoever closed it.
    pub fn close_events(&self) -> u64 {
        each!(self, port => port.close_events())
    }

    /// The baud rate the client set on its side, if the port tells (a TCP port does not).
    pub fn baud(&self) -> Option<u32> {
        match self {
            #[cfg(unix)]
            Port::Pty(pty) => pty.baud(),
            Port::Socket(_) => None,
        }
    }

    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, port => port.read(buf).await)
    }

    pub fn discard_input(&self) -> usize {
        each!(self, port => port.discard_input())
    }

    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        each!(self, port => port.write_all(bytes).await)
    }

    /// Takes the opens and closes queued so far (a TCP port learns of them as it reads).
    pub fn take_events(&self) {
        match self {
            #[cfg(unix)]
            Port::Pty(pty) => pty.take_events(),
            Port::Socket(_) => {}
        }
    }

    /// Lets the next client in each time one lets go; runs until the board stops.
    pub fn keep_reopenable(
        &self,
    ) -> io::Result<std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + Send>>> {
        Ok(match self {
            #[cfg(unix)]
            Port::Pty(pty) => Box::pin(pty.keep_reopenable()?),
            Port::Socket(socket) => Box::pin(socket.keep_reopenable()?),
        })
    }
}
