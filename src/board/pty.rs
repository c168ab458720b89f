//! The virtual board's serial port: a pseudo-terminal whose slave side clients open like a
//! `/dev/ttyUSB0`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::BoardError;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{OpenptyResult, openpty};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// The master side, shared by the console reader and writer tasks. The slave fd stays open for
/// the board's whole life: without it, reads on the master fail with EIO whenever no client has
/// the port open, and the boot log would be lost instead of waiting for the first client.
pub struct Pty {
    master: AsyncFd<OwnedFd>,
    slave: OwnedFd,
    path: PathBuf,
    /// Signalled each time the last client closes the port.
    closes: Notify,
    /// Closes of the port seen so far, whoever closed it, counted as soon as they are read.
    close_events: AtomicU64,
    /// The number (in `close_events`) of the last close that let go of the port: tells a new
    /// one from one signalled before someone listened, and from one that happened before the
    /// current client came.
    close_count: AtomicU64,
    /// The watch on the port's opens and closes, and how many clients have it open: read in
    /// the order the kernel queued them, by whoever looks first (the watching task, or the
    /// chip before it handles a client's bytes).
    watch: std::sync::OnceLock<Watch>,
    holders: std::sync::Mutex<u64>,
}

impl Pty {
    pub fn open() -> io::Result<Arc<Pty>> {
        let OpenptyResult { master, slave } = openpty(None, None)?;
        // Raw at once: in cooked mode the slave would echo the boot log back to the board
        // and turn every "\n" a client sends into "\r\n".
        let mut termios = tcgetattr(&slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
        for fd in [&master, &slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        let path = nix::unistd::ttyname(&slave)?;
        let pty = Pty {
            master: register(master)?,
            slave,
            path,
            closes: Notify::new(),
            close_events: AtomicU64::new(0),
            close_count: AtomicU64::new(0),
            watch: std::sync::OnceLock::new(),
            holders: std::sync::Mutex::new(0),
        };
        pty.allow_reopen()?;
        Ok(Arc::new(pty))
    }

    /// `/dev/pts/N`: what clients open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves when the last client closes the port, or has done so since the last call:
    /// compare [`Pty::close_count`] to tell whether it was a new close. A close while another
    /// client still has the port open (a second monitor, a bare open and close, an open the
    /// exclusive flag refused) does not count: the tool that has the port is still there.
    pub async fn closed(&self) {
        self.closes.notified().await;
    }

    /// The number of the last close that let go of the port (see [`Pty::close_events`]).
    pub fn close_count(&self) -> u64 {
        self.close_count.load(Ordering::Relaxed)
    }

    /// How many closes of the port have been seen so far, whoever closed it. A client that
    /// starts a session notes this: a later [`Pty::close_count`] above it is a close that came
    /// after the session began, not the previous client's.
    pub fn close_events(&self) -> u64 {
        self.close_events.load(Ordering::Relaxed)
    }

    /// The baud rate the client set on its side of the port, if the kernel tells.
    pub fn baud(&self) -> Option<u32> {
        watch::baud(self.master.get_ref().as_raw_fd())
    }

    /// Reads bytes a client wrote to the port.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::read(fd.get_ref(), buf)?)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Drops the bytes clients wrote that nobody has read yet; returns how many.
    pub fn discard_input(&self) -> usize {
        let mut buf = [0u8; 4096];
        let mut dropped = 0;
        // The master is non-blocking: this ends with EAGAIN once the queue is empty.
        while let Ok(n @ 1..) = nix::unistd::read(self.master.get_ref(), &mut buf) {
            dropped += n;
        }
        dropped
    }

    /// Writes all of `bytes` towards the client, waiting while the pty buffer is full.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.master.writable().await?;
            match guard.try_io(|fd| Ok(nix::unistd::write(fd.get_ref(), bytes)?)) {
                Ok(Ok(written)) => bytes = &bytes[written..],
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Clears the exclusive-use flag (TIOCEXCL). The `serialport` crate sets it on open and
    /// never clears it, so after the first client closes, any non-root user would get EBUSY.
    fn allow_reopen(&self) -> io::Result<()> {
        // SAFETY: TIOCNXCL takes no argument and only changes a flag of the tty we own.
        let result = unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::TIOCNXCL as _) };
        if result == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Clears exclusivity each time the last client closes the port, so the next one can open
    /// it. The watch starts before this returns, so no open or close is missed; the future runs
    /// until the board stops.
    pub fn keep_reopenable(
        self: &Arc<Self>,
    ) -> io::Result<impl Future<Output = io::Result<()>> + use<>> {
        if self.watch.set(Watch::start(&self.path)?).is_err() {
            return Err(io::Error::other("the pty is watched already"));
        }
        let pty = Arc::clone(self);
        Ok(async move {
            let Some(watch) = pty.watch.get() else {
                return Ok(());
            };
            loop {
                watch.changed().await?;
                pty.take_events();
            }
        })
    }

    /// Takes the opens and closes queued so far, in order. A close that leaves no client with
    /// the port open is the tool letting go: exclusivity is cleared and [`Pty::closed`] fires.
    /// A close while another client has the port (a second monitor, a bare open and close)
    /// does not count. The chip calls this before it handles a client's bytes, so a close
    /// queued before them is known first.
    pub fn take_events(&self) {
        let Some(watch) = self.watch.get() else {
            return;
        };
        let Ok(mut holders) = self.holders.lock() else {
            return;
        };
        watch.take(|change| {
            match change {
                Change::Open => *holders += 1,
                Change::Close => {
                    *holders = holders.saturating_sub(1);
                    let number = self.close_events.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::debug!("pty: close {number}, {holders} client(s) still have it");
                    if *holders == 0 {
                        // A failure here only costs non-root users their next open; the close
                        // still counts.
                        if let Err(error) = self.allow_reopen() {
                            tracing::warn!("cannot clear exclusive use of the pty: {error}");
                        }
                        self.close_count.store(number, Ordering::Relaxed);
                        self.closes.notify_one();
                    }
                }
            }
        });
    }
}

/// A symlink to the pty, removed again when the board stops, if it still points there.
pub struct Link {
    path: PathBuf,
    target: PathBuf,
}

impl Link {
    pub fn create(path: &Path, target: &Path) -> Result<Link, BoardError> {
        let link_error = |error| BoardError::Link {
            path: path.to_owned(),
            error,
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

/// Registers an owned descriptor with tokio's reactor.
pub(super) fn register<T: AsRawFd>(owner: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: `owner` owns its descriptor (an `OwnedFd`, an inotify or a timer) and keeps the
    // same one open until the `AsyncFd` drops it.
    unsafe { AsyncFd::register(owner) }.map_err(|error| error.into_parts().1)
}

/// An open or a close of the port by a client, as the platform's watch reports it.
enum Change {
    Open,
    Close,
}

#[cfg(target_os = "linux")]
mod watch_linux;
#[cfg(target_os = "linux")]
use watch_linux as watch;
#[cfg(target_os = "macos")]
mod watch_macos;
#[cfg(target_os = "macos")]
use watch_macos as watch;

use watch::Watch;
