//! The access point's DHCP server: edge-dhcp's, sized so that it keeps leasing.
//!
//! edge-dhcp's `Server<_, N>` offers the first address of its range that is not in its lease
//! table, and takes back an expired lease only when no such address is left. Its default range,
//! .50 to .200, is 151 addresses, far more than a table a board can hold: once N devices had
//! ever joined, the next one was offered an address the full table could not record, and got a
//! NAK for every request until the board rebooted. With the range exactly as large as the
//! table, a newcomer gets the address of a lease that has run out. A short lease makes a device
//! that left give its address back soon; the ones that stay renew it at half time.

use core::net::Ipv4Addr;

use edge_dhcp::server::{Server, ServerOptions};

use crate::ACCESS_POINT_ADDRESS;

/// Leases the server keeps, and addresses it hands out: room for the chat's 8 clients and the
/// devices that left not long ago.
pub const LEASES: usize = 16;
/// How long a lease lasts, in seconds. Clients renew at half of it.
pub const LEASE_SECS: u32 = 10 * 60;
/// The first address a client gets; the others follow it, [`LEASES`] in all.
pub const FIRST_LEASE: Ipv4Addr = Ipv4Addr::new(192, 168, 4, 50);

/// The lease table of the access point's clients.
pub type Leases<F> = Server<F, LEASES>;

/// An empty lease table for [`FIRST_LEASE`] and the addresses after it; `now` tells the time in
/// seconds.
pub fn leases<F: FnMut() -> u64>(now: F) -> Leases<F> {
    let mut leases = Server::new(now, ACCESS_POINT_ADDRESS);
    leases.range_start = FIRST_LEASE;
    // LEASES is far below 2^32.
    leases.range_end = Ipv4Addr::from(u32::from(FIRST_LEASE) + LEASES as u32 - 1);
    leases
}

/// What the replies say: the board as server, no gateway (a phone keeps its mobile data for
/// the internet), a /24, [`LEASE_SECS`].
pub fn lease_options() -> ServerOptions<'static> {
    let mut options = ServerOptions::new(ACCESS_POINT_ADDRESS, None);
    options.lease_duration_secs = LEASE_SECS;
    options
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::vec::Vec;

    use edge_dhcp::{DhcpOption, MessageType, Options, Packet};

    use super::*;

    /// What a client got for one message.
    #[derive(Debug, PartialEq, Eq)]
    enum Reply {
        Offer(Ipv4Addr),
        Ack(Ipv4Addr),
        Nak,
        Nothing,
    }

    /// One server and its clock, driven with the packets a phone sends.
    struct Network<F: FnMut() -> u64, const N: usize> {
        server: Server<F, N>,
        options: ServerOptions<'static>,
    }

    impl<F: FnMut() -> u64, const N: usize> Network<F, N> {
        fn send(&mut self, request: &Packet<'_>) -> Reply {
            let mut buf = Options::buf();
            let Some(reply) = self.server.handle_request(&mut buf, &self.options, request) else {
                return Reply::Nothing;
            };
            let kind = reply.options.iter().find_map(|option| match option {
                DhcpOption::MessageType(kind) => Some(kind),
                _ => None,
            });
            match kind {
                Some(MessageType::Offer) => Reply::Offer(reply.yiaddr),
                Some(MessageType::Ack) => {
                    let lease = reply.options.iter().find_map(|option| match option {
                        DhcpOption::IpAddressLeaseTime(secs) => Some(secs),
                        _ => None,
                    });
                    assert_eq!(lease, Some(self.options.lease_duration_secs));
                    Reply::Ack(reply.yiaddr)
                }
                Some(MessageType::Nak) => Reply::Nak,
                other => panic!("unexpected reply {other:?}"),
            }
        }

        /// DISCOVER, then REQUEST for what was offered: the address the client has now.
        fn join(&mut self, mac: [u8; 6], previous: Option<Ipv4Addr>) -> Result<Ipv4Addr, Reply> {
            let mut buf = Options::buf();
            let discover =
                Packet::new_request(mac, 1, 0, None, true, Options::discover(previous, &mut buf));
            let offered = match self.send(&discover) {
                Reply::Offer(ip) => ip,
                other => return Err(other),
            };
            let mut buf = Options::buf();
            let request =
                Packet::new_request(mac, 2, 0, None, true, Options::request(offered, &mut buf));
            match self.send(&request) {
                Reply::Ack(ip) if ip == offered => Ok(ip),
                other => Err(other),
            }
        }

        /// A REQUEST from a client that has `ip` (RFC 2131 RENEWING: `ciaddr` set).
        fn renew(&mut self, mac: [u8; 6], ip: Ipv4Addr) -> Reply {
            let mut buf = Options::buf();
            let request =
                Packet::new_request(mac, 3, 0, Some(ip), false, Options::request(ip, &mut buf));
            self.send(&request)
        }
    }

    fn mac(n: usize) -> [u8; 6] {
        [0x02, 0, 0, 0, 0, n as u8]
    }

    const MINUTE: u64 = 60;

    /// A lab day: phone k (0 to 19) joins at k * 5 minutes, stays 30 minutes renewing its
    /// lease at half time as DHCP clients do, and walks away without a RELEASE (phones do).
    /// At most 7 are there at once. Returns, per phone, whether it got an address and kept
    /// it while it stayed.
    fn lab_day<F: FnMut() -> u64, const N: usize>(
        network: &mut Network<F, N>,
        clock: &Cell<u64>,
    ) -> Vec<Result<Ipv4Addr, Reply>> {
        const PHONES: usize = 20;
        let lease = u64::from(network.options.lease_duration_secs);
        let joins = |k: usize| k as u64 * 5 * MINUTE;
        let leaves = |k: usize| joins(k) + 30 * MINUTE;
        let mut outcome: Vec<Option<Result<Ipv4Addr, Reply>>> = (0..PHONES).map(|_| None).collect();
        let mut renew_at = [0u64; PHONES];
        for now in 0..=leaves(PHONES - 1) {
            clock.set(now);
            for k in 0..PHONES {
                if now == joins(k) {
                    let joined = network.join(mac(k), None);
                    renew_at[k] = now + lease / 2;
                    outcome[k] = Some(joined);
                }
                if now == renew_at[k]
                    && now < leaves(k)
                    && let Some(Ok(ip)) = outcome[k]
                {
                    renew_at[k] = now + lease / 2;
                    let renewed = network.renew(mac(k), ip);
                    if renewed != Reply::Ack(ip) {
                        outcome[k] = Some(Err(renewed));
                    }
                }
            }
        }
        outcome
            .into_iter()
            .map(|o| o.unwrap_or(Err(Reply::Nothing)))
            .collect()
    }

    #[test]
    fn twenty_phones_over_a_day_all_get_and_keep_an_address() {
        let clock = Cell::new(0);
        let mut network = Network {
            server: leases(|| clock.get()),
            options: lease_options(),
        };
        let outcome = lab_day(&mut network, &clock);
        let stranded: Vec<usize> = (0..outcome.len())
            .filter(|&k| outcome[k].is_err())
            .collect();
        assert_eq!(stranded, [], "{outcome:?}");
        let last = Ipv4Addr::new(192, 168, 4, 50 + LEASES as u8 - 1);
        for ip in outcome.iter().flatten() {
            assert!((FIRST_LEASE..=last).contains(ip), "{ip}");
        }
    }

    /// The sizing the firmware had: edge-dhcp's defaults (.50 to .200, 2-hour leases) with a
    /// table of 8. The day above strands every phone after the eighth, which shows that the
    /// test of the new sizing can fail.
    #[test]
    fn the_old_sizing_naks_every_phone_after_the_eighth() {
        let clock = Cell::new(0);
        let mut network = Network {
            server: Server::<_, 8>::new(|| clock.get(), ACCESS_POINT_ADDRESS),
            options: ServerOptions::new(ACCESS_POINT_ADDRESS, None),
        };
        let outcome = lab_day(&mut network, &clock);
        let stranded: Vec<usize> = (0..outcome.len())
            .filter(|&k| outcome[k].is_err())
            .collect();
        assert_eq!(stranded, (8..20).collect::<Vec<_>>(), "{outcome:?}");
        assert_eq!(outcome[8], Err(Reply::Nak));
    }

    #[test]
    fn with_every_address_leased_a_newcomer_waits_for_one_to_run_out() {
        let clock = Cell::new(0);
        let mut network = Network {
            server: leases(|| clock.get()),
            options: lease_options(),
        };
        let held: Vec<Ipv4Addr> = (0..LEASES)
            .map(|k| network.join(mac(k), None).expect("an address"))
            .collect();
        // No offer, so the newcomer keeps asking rather than being told no.
        assert_eq!(network.join(mac(99), None), Err(Reply::Nothing));
        // Everyone else renews but the first, which left.
        clock.set(u64::from(LEASE_SECS) / 2);
        for (k, &ip) in held.iter().enumerate().skip(1) {
            assert_eq!(network.renew(mac(k), ip), Reply::Ack(ip));
        }
        clock.set(u64::from(LEASE_SECS) + 1);
        assert_eq!(network.join(mac(99), None), Ok(held[0]));
    }

    #[test]
    fn a_phone_that_comes_back_gets_its_address_again() {
        let clock = Cell::new(0);
        let mut network = Network {
            server: leases(|| clock.get()),
            options: lease_options(),
        };
        let first = network.join(mac(1), None).expect("an address");
        let other = network.join(mac(2), None).expect("an address");
        clock.set(3 * u64::from(LEASE_SECS));
        assert_eq!(network.join(mac(1), Some(first)), Ok(first));
        assert_ne!(first, other);
    }
}
