//! Local serial ports on Unix: a tty whose descriptor is non-blocking and registered with
//! tokio's reactor, read and written directly.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use serialport::TTYPort;
use tokio::io::unix::AsyncFd;

use super::port::{self, PortError};

/// The port type espflash flashes through.
pub type NativePort = TTYPort;

/// Port names to give as examples in errors.
pub const EXAMPLE_PORTS: &str = if cfg!(target_os = "macos") {
    "/dev/cu.usbserial-0001 or /dev/cu.usbmodem101"
} else {
    "/dev/ttyUSB0 or /dev/ttyACM0"
};

/// What to do when opening a port is not permitted.
pub const PERMISSION_FIX: &str = if cfg!(target_os = "macos") {
    "check who may open it: ls -l PORT; use the /dev/cu.* name of the port"
} else {
    "add your user to the 'dialout' group: sudo usermod -aG dialout $USER, then log out and \
     in again"
};

/// Whether a failed open says the device has no terminal ioctls (ENOTTY).
pub fn not_a_terminal(error: &serialport::Error) -> bool {
    error.description == nix::errno::Errno::ENOTTY.desc()
}

/// Whether a port that could not be opened for want of the device is simply not there (Unix
/// says so itself: ENOENT).
pub fn missing(_path: &Path) -> bool {
    false
}

/// Whether `given` (what the user named) is the port enumeration listed as `listed`: the same
/// device once symlinks are resolved.
pub fn same_port(given: &Path, listed: &Path) -> bool {
    match (std::fs::canonicalize(given), std::fs::canonicalize(listed)) {
        (Ok(given), Ok(listed)) => given == listed,
        _ => false,
    }
}

/// An open tty.
pub struct Tty(AsyncFd<TTYPort>);

impl Tty {
    pub fn open(path: &Path, baud: u32) -> Result<Tty, PortError> {
        let tty = port::open(path, baud)?;
        let other = |error: io::Error| PortError::Other {
            path: path.to_owned(),
            message: error.to_string(),
        };
        set_nonblocking(tty.as_raw_fd()).map_err(other)?;
        // SAFETY: the TTYPort owns its descriptor and keeps it open until the AsyncFd drops it.
        let fd = unsafe { AsyncFd::register(tty) }.map_err(|error| other(error.into_parts().1))?;
        Ok(Tty(fd))
    }

    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| raw_read(fd.get_ref().as_raw_fd(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    pub async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| raw_write(fd.get_ref().as_raw_fd(), bytes)) {
                Ok(Ok(written)) => bytes = &bytes[written..],
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// The port's modem lines and settings.
    pub fn lines(&mut self) -> &mut dyn serialport::SerialPort {
        self.0.get_mut()
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn raw_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes for the whole call.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn raw_write(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for `bytes.len()` bytes of reads for the whole call.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
