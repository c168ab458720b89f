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
}
