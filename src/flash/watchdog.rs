//! A deadline on progress while writing. espflash's own timeouts restart with every byte it
//! reads, so a board that left the loader and prints its boot loop keeps a write waiting
//! forever. The watchdog counts time since the last progress event; past the allowed silence it
//! cuts espflash off from the port: its next read (serialport polls with a timeout of a few
//! seconds at most, then reads again) fails.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
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

/// Watches one port descriptor; [`Watchdog::run`] returns when the [`Beats`] are dropped.
pub struct Watchdog {
    beats: Mutex<Receiver<Duration>>,
    port: RawFd,
    stalled: AtomicBool,
}

impl Watchdog {
    /// A watchdog on `port`, which must stay open until [`Watchdog::run`] returns; the first
    /// step may take `allowed`.
    pub fn new(port: &impl AsRawFd, allowed: Duration) -> (Watchdog, Beats) {
        let (sender, beats) = channel();
        let _ = sender.send(allowed);
        let watchdog = Watchdog {
            beats: Mutex::new(beats),
            port: port.as_raw_fd(),
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
                    match self.cut_off() {
                        Ok(()) => self.stalled.store(true, Ordering::Relaxed),
                        Err(error) => tracing::warn!("cannot stop a stalled flash: {error}"),
                    }
                    // The writer fails now and drops the beats: wait for that.
                    while beats.recv().is_ok() {}
                    return;
                }
            }
        }
    }

    /// Puts a pipe's write end whose reader is gone in place of the port: reads fail (EBADF,
    /// POLLERR) and writes fail (EPIPE) instead of waiting, and closing it later is harmless.
    fn cut_off(&self) -> std::io::Result<()> {
        let (reader, writer): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
        drop(reader);
        // SAFETY: `self.port` is open for as long as `run` runs (the caller's promise), and
        // dup2 only replaces what that descriptor refers to; no memory is touched.
        let result = unsafe { libc::dup2(writer.as_raw_fd(), self.port) };
        if result == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The silence allowed before a step that may erase or hash `bytes` of flash.
pub fn allowance(stall: Duration, bytes: u64) -> Duration {
    stall + SILENCE_PER_MB.mul_f64(bytes as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn a_read_blocked_past_the_deadline_fails_and_beats_keep_it_alive() {
        let (mut port, _other_end) = UnixStream::pair().unwrap();
        port.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let (watchdog, beats) = Watchdog::new(&port, Duration::from_millis(200));
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

    #[test]
    fn erasing_a_megabyte_may_take_half_a_minute_more() {
        assert_eq!(
            allowance(Duration::from_secs(2), 1_000_000),
            Duration::from_secs(32)
        );
    }
}
