//! The time bytes take on the board's UART line, for a board that paces its ROM loader like a
//! real chip (`--throttle`, the default of `espchat board`).
//!
//! A pty moves bytes at once; a UART at B baud takes 10 bits (8N1) per byte. The board waits
//! that long for each request and each reply, on one clock for both directions. The waits use
//! the kernel's high-resolution timer (a timerfd): tokio's timer wakes on whole milliseconds,
//! and its late wake-up cost each 1 KiB ROM block 1.1 ms beyond its bytes (measured at 2000000
//! baud: the line time of a block is 5.4 ms, the waits came back 0.84 ms late in the median,
//! 1.13 ms on average), which slowed every flashing tool by up to 20%.

use std::time::Duration;

use tokio::time::Instant;

use self::precise::PreciseTimer;

/// One UART line, both directions on one clock.
pub struct UartLine {
    /// When the bytes paced so far are all through.
    free_at: Instant,
    /// `None` if the kernel would not give one (or has none: macOS): tokio's timer then, a
    /// millisecond late.
    timer: Option<PreciseTimer>,
}

impl UartLine {
    pub fn new() -> UartLine {
        let timer = PreciseTimer::new();
        if let Err(error) = &timer {
            tracing::debug!("no precise timer ({error}): the UART pace is a millisecond coarse");
        }
        UartLine {
            free_at: Instant::now(),
            timer: timer.ok(),
        }
    }

    /// Waits until `bytes` have crossed the line at `baud`, after what crossed it before. A
    /// line that was idle starts now: time nobody sent anything in is not owed.
    pub async fn carry(&mut self, bytes: usize, baud: u32) {
        let time = Duration::from_secs_f64(bytes as f64 * 10.0 / f64::from(baud.max(1)));
        self.free_at = self.free_at.max(Instant::now()) + time;
        self.wait_until_free().await;
    }

    async fn wait_until_free(&self) {
        let left = self.free_at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let precise = match &self.timer {
            Some(timer) => timer.sleep(left).await,
            None => Err(std::io::Error::from(std::io::ErrorKind::Unsupported)),
        };
        if precise.is_err() {
            tokio::time::sleep_until(self.free_at).await;
        }
    }
}

/// Linux: a non-blocking one-shot timerfd on the monotonic clock, registered with tokio.
#[cfg(target_os = "linux")]
mod precise {
    use std::io;
    use std::os::fd::{AsFd as _, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;

    use crate::board::pty::register;

    pub struct PreciseTimer(AsyncFd<Fd>);

    struct Fd(TimerFd);

    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    impl PreciseTimer {
        pub fn new() -> io::Result<PreciseTimer> {
            let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
            let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?;
            Ok(PreciseTimer(register(Fd(timer))?))
        }

        /// Sleeps `left`, to the microsecond.
        pub async fn sleep(&self, left: Duration) -> io::Result<()> {
            self.0.get_ref().0.set(
                Expiration::OneShot(TimeSpec::from_duration(left)),
                TimerSetTimeFlags::empty(),
            )?;
            loop {
                let mut ready = self.0.readable().await?;
                // The expiry count: 8 bytes once the timer went off, EAGAIN before.
                match ready.try_io(|timer| Ok(nix::unistd::read(&timer.get_ref().0, &mut [0; 8])?))
                {
                    Ok(_) => return Ok(()),
                    Err(_not_yet) => continue,
                }
            }
        }
    }
}

/// Elsewhere (macOS has no timerfd): none; tokio's timer paces the line.
#[cfg(not(target_os = "linux"))]
mod precise {
    use std::io;
    use std::time::Duration;

    pub struct PreciseTimer;

    impl PreciseTimer {
        pub fn new() -> io::Result<PreciseTimer> {
            Err(io::ErrorKind::Unsupported.into())
        }

        pub async fn sleep(&self, _left: Duration) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_take_ten_bits_each_one_after_another() {
        let mut line = UartLine::new();
        #[cfg(target_os = "linux")]
        assert!(line.timer.is_some(), "no timerfd");
        let started = Instant::now();
        // 25 requests of 1000 bytes at 1 Mbaud: 10 ms each, 250 ms in all.
        for _ in 0..25 {
            line.carry(1000, 1_000_000).await;
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    }

    #[tokio::test]
    async fn an_idle_line_owes_nothing() {
        let mut line = UartLine::new();
        line.carry(100, 1_000_000).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        line.carry(100, 1_000_000).await;
        // The line was idle: these bytes take their 1 ms from now on.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1), "{elapsed:?}");
    }
}
