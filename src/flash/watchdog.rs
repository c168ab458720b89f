//! A deadline on progress while writing. espflash's own timeouts restart with every byte it
//! reads, so a board that left the loader and prints its boot loop keeps a write waiting
//! forever. The watchdog counts time since the last progress event; past the allowed silence it
//! cuts espflash off from the port: its next read (serialport polls with a timeout of a few
//! seconds at most, then reads again) fails. How is the platform's part ([`cut`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

/// How long writing may go without progress before espchat gives up (`--stall-timeout`).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a ROM loader may legitimately stay silent per MB of a segment: erasing it at
/// FLASH_BEGIN, or hashing it to verify (espflash allows 30 s and 8 s per MB).
pub const SILENCE_PER_MB: Duration = Duration::from_secs(30);

/// The writing side: tells the watchdog of each step and how long the next one may take.
pub struct Beats {
    sender: Sender<Duration>,
}

impl Beats {
    /// Progress was made; the next may take `allowed`.
    pub fn beat(&self, allowed: Duration) {
        let _ = self.sender.send(allowed);
    }
}

pub use cut::Port;

/// How often a stalled port is cut off again, until the writer gives up.
const CUT_AGAIN: Duration = Duration::from_millis(50);

/// Watches one port; [`Watchdog::run`] returns when the [`Beats`] are dropped.
pub struct Watchdog {
    beats: Mutex<Receiver<Duration>>,
    port: Port,
    stalled: AtomicBool,
}

impl Watchdog {
    /// A watchdog on `port`, which must stay open until [`Watchdog::run`] returns; the first
    /// step may take `allowed`.
    pub fn new(port: Port, allowed: Duration) -> (Watchdog, Beats) {
        let (sender, beats) = channel();
        let _ = sender.send(allowed);
        let watchdog = Watchdog {
            beats: Mutex::new(beats),
            port,
            stalled: AtomicBool::new(false),
        };
        (watchdog, Beats { sender })
    }

    /// Whether it had to cut the port off.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::Relaxed)
    }

    pub fn run(&self) {
        let Ok(beats) = self.beats.lock() else {
            return;
        };
        let mut allowed = Duration::ZERO;
        let mut since = Instant::now();
        loop {
            let left = allowed.saturating_sub(since.elapsed());
            match beats.recv_timeout(left) {
                Ok(next) => {
                    allowed = next;
                    since = Instant::now();
                }
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    // The writer fails now and drops the beats: until it does (a cut can fall
                    // between two of its reads), cut again. The port stays open meanwhile.
                    loop {
                        // SAFETY: the port is open for as long as `run` runs (the caller's
                        // promise).
                        match unsafe { self.port.cut_off() } {
                            Ok(()) => self.stalled.store(true, Ordering::Relaxed),
                            Err(error) => tracing::warn!("cannot stop a stalled flash: {error}"),
                        }
                        if let Err(RecvTimeoutError::Disconnected) = beats.recv_timeout(CUT_AGAIN) {
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(unix)]
mod cut {
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};

    /// A port's descriptor.
    #[derive(Clone, Copy)]
    pub struct Port(RawFd);

    impl Port {
        pub fn of(port: &impl AsRawFd) -> Port {
            Port(port.as_raw_fd())
        }

        /// Puts a pipe's write end whose reader is gone in place of the port: reads fail
        /// (EBADF, POLLERR) and writes fail (EPIPE) instead of waiting, and closing it later
        /// is harmless.
        ///
        /// # Safety
        /// The descriptor must still be the port's, open.
        pub unsafe fn cut_off(&self) -> std::io::Result<()> {
            let (reader, writer): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
            drop(reader);
            // SAFETY: the port is open (the caller's promise), and dup2 only replaces what
            // that descriptor refers to; no memory is touched.
            let result = unsafe { libc::dup2(writer.as_raw_fd(), self.0) };
            if result == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

#[cfg(windows)]
mod cut {
    use std::os::windows::io::AsRawHandle;

    /// A port's handle, as a number: a raw handle is a pointer, which threads may not share.
    #[derive(Clone, Copy)]
    pub struct Port(usize);

    impl Port {
        pub fn of(port: &impl AsRawHandle) -> Port {
            Port(port.as_raw_handle() as usize)
        }

        /// Cancels the IO waiting on the port (espflash's read): it fails with "operation
        /// aborted". Windows has no way to swap what a handle refers to, so a read that starts
        /// after this waits again: the watchdog cuts until the writer gives up.
        ///
        /// # Safety
        /// The handle must still be the port's, open.
        pub unsafe fn cut_off(&self) -> std::io::Result<()> {
            use windows_sys::Win32::Foundation::{ERROR_NOT_FOUND, HANDLE};
            use windows_sys::Win32::System::IO::CancelIoEx;
            // SAFETY: the handle is open (the caller's promise); a null OVERLAPPED cancels
            // every request on it and no memory is passed.
            let cancelled = unsafe { CancelIoEx(self.0 as HANDLE, std::ptr::null()) };
            let error = std::io::Error::last_os_error();
            // Nothing to cancel at this moment is not a failure.
            if cancelled == 0 && error.raw_os_error() != Some(ERROR_NOT_FOUND as i32) {
                return Err(error);
            }
            Ok(())
        }
    }
}

/// The silence allowed before a step that may erase or hash `bytes` of flash.
pub fn allowance(stall: Duration, bytes: u64) -> Duration {
    stall + SILENCE_PER_MB.mul_f64(bytes as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_read_blocked_past_the_deadline_fails_and_beats_keep_it_alive() {
        let (mut port, _other_end) = std::os::unix::net::UnixStream::pair().unwrap();
        port.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (watchdog, beats) = Watchdog::new(Port::of(&port), Duration::from_millis(200));
        std::thread::scope(|scope| {
            scope.spawn(|| watchdog.run());
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(100));
                beats.beat(Duration::from_millis(200));
            }
            assert!(!watchdog.stalled());
            // Nothing ever arrives: only the watchdog ends these reads, which time out and
            // try again as serialport's do.
            let result = loop {
                match port.read(&mut [0u8; 16]) {
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => continue,
                    result => break result,
                }
            };
            assert!(result.is_err(), "{result:?}");
            drop(beats);
        });
        assert!(watchdog.stalled());
    }

    /// A pipe's synchronous read waits as a COM port's does between serialport's timeouts.
    #[cfg(windows)]
    #[test]
    fn a_read_blocked_past_the_deadline_fails() {
        let (mut port, _writer) = std::io::pipe().unwrap();
        let (watchdog, beats) = Watchdog::new(Port::of(&port), Duration::from_millis(200));
        std::thread::scope(|scope| {
            scope.spawn(|| watchdog.run());
            let result = port.read(&mut [0u8; 16]);
            assert!(result.is_err(), "{result:?}");
            drop(beats);
        });
        assert!(watchdog.stalled());
    }

    #[test]
    fn erasing_a_megabyte_may_take_half_a_minute_more() {
        assert_eq!(
            allowance(Duration::from_secs(2), 1_000_000),
            Duration::from_secs(32)
        );
    }
}
