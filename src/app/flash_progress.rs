//! What the gauge shows of a flash: the phase, bytes done, the rate and the time left.

use std::time::{Duration, Instant};

/// A flash in progress, as far as its events told.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlashProgress {
    /// What it is doing, for the gauge's label: "connecting", "writing", "verifying".
    pub phase: &'static str,
    pub address: Option<u32>,
    pub done: u64,
    pub total: u64,
    /// When the segment started and when its latest progress came, from the injected clock.
    pub segment_start: Option<Instant>,
    pub progress_at: Option<Instant>,
}

impl FlashProgress {
    pub fn percent(&self) -> u64 {
        (self.done * 100)
            .checked_div(self.total)
            .unwrap_or(0)
            .min(100)
    }

    /// Average rate over the segment so far, in bytes per second.
    pub fn rate(&self) -> Option<f64> {
        let elapsed = self
            .progress_at?
            .checked_duration_since(self.segment_start?)?
            .as_secs_f64();
        (elapsed > 0.0 && self.done > 0).then(|| self.done as f64 / elapsed)
    }

    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate()?;
        let left = self.total.saturating_sub(self.done) as f64;
        Some(Duration::from_secs_f64(left / rate))
    }
}
