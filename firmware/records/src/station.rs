//! When the station gives up on the router and the board opens its own access point.

/// Failed connection attempts, in a row and before any success, that start the access point.
pub const FAILURES_BEFORE_ACCESS_POINT: u8 = 3;

const FIRST_DELAY_SECS: u32 = 2;
const MAX_DELAY_SECS: u32 = 30;

/// What the station does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try the router again after this many seconds.
    Retry { after_secs: u32 },
    /// Stop trying and open the access point.
    AccessPoint,
}

/// Counts failed attempts to join the router.
///
/// Credentials that never worked since boot (a typo, the wrong room) lead to the access point
/// after [`FAILURES_BEFORE_ACCESS_POINT`] attempts, so the board stays reachable. Once the
/// station has been connected, a lost router (rebooting, out of range for a while) is retried
/// for ever with a growing delay: switching to the access point would strand the board there.
#[derive(Clone, Copy, Debug, Default)]
pub struct StationRetry {
    failures: u8,
    ever_connected: bool,
}

impl StationRetry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn connected(&mut self) {
        self.failures = 0;
        self.ever_connected = true;
    }

    pub fn failed(&mut self) -> Next {
        self.failures = self.failures.saturating_add(1);
        if !self.ever_connected && self.failures >= FAILURES_BEFORE_ACCESS_POINT {
            return Next::AccessPoint;
        }
        let doublings = u32::from(self.failures - 1).min(8);
        Next::Retry {
            after_secs: (FIRST_DELAY_SECS << doublings).min(MAX_DELAY_SECS),
        }
    }
}

/// While the access point runs in place of a router that never answered, the stored
/// credentials are tried again after this many seconds, then twice as long each time up to
/// [`ACCESS_POINT_RETRY_MAX_SECS`]: a router that was off when the board booted (a power cut
/// in the lab) is found again, and phones on the access point are rarely disturbed.
pub const ACCESS_POINT_RETRY_FIRST_SECS: u32 = 30;
pub const ACCESS_POINT_RETRY_MAX_SECS: u32 = 600;

/// The delays between tries of the stored credentials while the access point runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessPointRetry {
    tries: u8,
}

impl AccessPointRetry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Seconds to wait before the next try.
    pub fn next_delay_secs(&mut self) -> u32 {
        let doublings = u32::from(self.tries).min(8);
        self.tries = self.tries.saturating_add(1);
        (ACCESS_POINT_RETRY_FIRST_SECS << doublings).min(ACCESS_POINT_RETRY_MAX_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_connected_opens_the_access_point_after_three_failures() {
        let mut retry = StationRetry::new();
        assert_eq!(retry.failed(), Next::Retry { after_secs: 2 });
        assert_eq!(retry.failed(), Next::Retry { after_secs: 4 });
        assert_eq!(retry.failed(), Next::AccessPoint);
    }

    #[test]
    fn once_connected_it_retries_for_ever_with_a_capped_delay() {
        let mut retry = StationRetry::new();
        retry.connected();
        let delays: std::vec::Vec<Next> = (0..300).map(|_| retry.failed()).collect();
        assert_eq!(delays[0], Next::Retry { after_secs: 2 });
        assert_eq!(delays[1], Next::Retry { after_secs: 4 });
        assert_eq!(delays[3], Next::Retry { after_secs: 16 });
        assert!(
            delays[4..]
                .iter()
                .all(|n| *n == Next::Retry { after_secs: 30 })
        );
    }

    #[test]
    fn a_success_resets_the_delay() {
        let mut retry = StationRetry::new();
        retry.failed();
        retry.failed();
        retry.connected();
        assert_eq!(retry.failed(), Next::Retry { after_secs: 2 });
    }

    #[test]
    fn the_access_point_retries_the_router_with_a_growing_capped_delay() {
        let mut retry = AccessPointRetry::new();
        let delays: std::vec::Vec<u32> = (0..1000).map(|_| retry.next_delay_secs()).collect();
        assert_eq!(delays[..6], [30, 60, 120, 240, 480, 600]);
        assert!(
            delays[6..]
                .iter()
                .all(|&d| d == ACCESS_POINT_RETRY_MAX_SECS)
        );
        // Over a lab day (8 h) the router is tried about 50 times, not thousands.
        let mut elapsed = 0;
        let tries = delays
            .iter()
            .take_while(|&&d| {
                elapsed += d;
                elapsed <= 8 * 3600
            })
            .count();
        assert!((45..=55).contains(&tries), "{tries} tries");
    }
}
