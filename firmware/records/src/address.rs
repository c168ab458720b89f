//! The station's address while it is associated with the router: announced when DHCP gives
//! one, announced again when a renewal brings another, reported when the lease is lost, and
//! given up on (reconnect) when DHCP never answers.

use core::net::Ipv4Addr;

/// Associated but no address from DHCP for this long: the station reconnects (a router whose
/// DHCP server is stuck, or a lease refused), rather than sitting silent for ever.
pub const DHCP_TIMEOUT_SECS: u64 = 30;

/// What the firmware does after a look at the stack's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressNews {
    /// A new address: say `got ip:` and `listening on` (host tools retarget to it).
    Got(Ipv4Addr),
    /// The lease was lost: the chat is down until an address comes back.
    Lost(Ipv4Addr),
    /// No address for [`DHCP_TIMEOUT_SECS`]: disconnect and join again.
    GiveUp,
}

/// Follows the station's address, looked at every second or so, from association on.
#[derive(Clone, Copy, Debug)]
pub struct AddressWatch {
    current: Option<Ipv4Addr>,
    /// Since when (seconds) the station has been without an address.
    without_since: u64,
}

impl AddressWatch {
    /// The station has just associated, at `now` (seconds).
    pub fn associated(now: u64) -> Self {
        Self {
            current: None,
            without_since: now,
        }
    }

    /// The stack's address at `now`: what, if anything, changed.
    pub fn look(&mut self, now: u64, address: Option<Ipv4Addr>) -> Option<AddressNews> {
        match (self.current, address) {
            (Some(old), Some(new)) if old == new => None,
            (_, Some(new)) => {
                self.current = Some(new);
                Some(AddressNews::Got(new))
            }
            (Some(old), None) => {
                self.current = None;
                self.without_since = now;
                Some(AddressNews::Lost(old))
            }
            (None, None) if now.saturating_sub(self.without_since) >= DHCP_TIMEOUT_SECS => {
                // Counted afresh, should the caller keep looking.
                self.without_since = now;
                Some(AddressNews::GiveUp)
            }
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 42);
    const B: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 57);

    #[test]
    fn an_address_is_announced_once_while_it_stays() {
        let mut watch = AddressWatch::associated(100);
        assert_eq!(watch.look(101, None), None);
        assert_eq!(watch.look(102, Some(A)), Some(AddressNews::Got(A)));
        for now in 103..1000 {
            assert_eq!(watch.look(now, Some(A)), None, "at {now}");
        }
    }

    #[test]
    fn a_renewal_with_another_address_is_announced() {
        let mut watch = AddressWatch::associated(0);
        assert_eq!(watch.look(1, Some(A)), Some(AddressNews::Got(A)));
        assert_eq!(watch.look(2, Some(B)), Some(AddressNews::Got(B)));
        assert_eq!(watch.look(3, Some(B)), None);
    }

    #[test]
    fn a_lost_lease_is_said_and_the_next_address_announced() {
        let mut watch = AddressWatch::associated(0);
        assert_eq!(watch.look(1, Some(A)), Some(AddressNews::Got(A)));
        assert_eq!(watch.look(500, None), Some(AddressNews::Lost(A)));
        assert_eq!(watch.look(501, None), None);
        // The same address again is news: host tools had been told it was gone.
        assert_eq!(watch.look(510, Some(A)), Some(AddressNews::Got(A)));
    }

    #[test]
    fn dhcp_that_never_answers_times_out_into_a_retry() {
        let mut watch = AddressWatch::associated(1000);
        for now in 1000..1000 + DHCP_TIMEOUT_SECS {
            assert_eq!(watch.look(now, None), None, "at {now}");
        }
        assert_eq!(
            watch.look(1000 + DHCP_TIMEOUT_SECS, None),
            Some(AddressNews::GiveUp)
        );
        // After a lost lease the clock starts at the loss, not at association.
        let mut watch = AddressWatch::associated(0);
        watch.look(1, Some(A));
        assert_eq!(watch.look(300, None), Some(AddressNews::Lost(A)));
        assert_eq!(watch.look(300 + DHCP_TIMEOUT_SECS - 1, None), None);
        assert_eq!(
            watch.look(300 + DHCP_TIMEOUT_SECS, None),
            Some(AddressNews::GiveUp)
        );
    }
}
