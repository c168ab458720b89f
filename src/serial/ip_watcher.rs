//! Finds the board's own IPv4 address and the TCP port its server listens on, in the lines of
//! its serial console.
//!
//! Firmwares announce their address in many shapes (ESP-IDF, Arduino, MicroPython, NodeMCU,
//! Tasmota, ESPHome, esp-hal/embassy, our own firmware), and the same logs are full of other
//! dotted quads: netmask, gateway, DNS, the clients that connect, brokers and servers the board
//! talks to, version strings. Taking a wrong one opens chat panes to a stranger, while taking
//! none only means the user types the address; so an address counts only with positive
//! evidence that it is the board's own, and any sign that it belongs to someone else wins.
//!
//! The evidence, per address in a line:
//! - a label right before it that names an IP (`got ip:`, `sta ip:`, `IP address:`, `Local IP`,
//!   `IPv4 address`, `with IP address`, `"IPAddress":`), unless the label is qualified
//!   (`Gateway IP`, `Server IP`, `old IP`, `connecting to IP`);
//! - `listening on A:P` (our firmware, and servers in general);
//! - an interface triple: the address directly followed by a netmask, as MicroPython's
//!   `ifconfig()`/`ipconfig('addr4')` tuples and NodeMCU's `wifi.sta.getip()` print it;
//! - a URL `http://A:P/` in a line that talks about serving (`Open …`, `server …`);
//! - `connected … as A`;
//! - a line that is only the address, right after a line that announced it (`IP address:`
//!   alone, `WiFi connected`, an `ifconfig()` echo, an ESPHome `API Server:` block header).
//!
//! Vetoes: any of `mask gw gateway dns broadcast from client peer remote broker mqtt ntp ping
//! lookup resolved accepted assigned …` between the previous address on the line and this one
//! (ESP-IDF's `sta ip: A, mask: M, gw: G` gives A only), and addresses that no host has:
//! `0.0.0.0`, `255.255.255.255`, multicast, class E, a network or broadcast address next to
//! its own netmask. Dotted quads inside longer sequences (`1.2.3.4.5`), glued to letters
//! (`v5.1.2.3`, `1.2.3.4-beta`) or with octets over 255 are not addresses at all.
//!
//! Ports come from `listening on [A:]P`, `listening on port P`, `… server … port P`, an own
//! address written `A:P`, and ESP-IDF's `Socket bound, port P` once a following line says the
//! socket is listening (the UDP example prints the same bound line and never listens). Nothing
//! that says `udp`, and no port next to a client, a broker, a remote or an OTA service.
//!
//! Loopback counts: the virtual board really is at `127.0.0.1`.
//!
//! The last address the board reports as its own wins (reconnect, new lease, reboot). A reboot
//! does not clear the answer: the old address is the best guess until a new one is printed.
//!
//! The watcher expects the console decoder to keep a tab as whitespace (a tab or spaces):
//! NodeMCU's `wifi.sta.getip()` separates its three addresses with nothing but tabs.
//!
//! Cost: one pass over each line, no allocation; words are compared in a 16-byte stack buffer.
//!
//! Here: the watcher's state across lines. `scan` reads one line and judges each address in it,
//! with `words` (word classes and clauses), `quad` (dotted quads), `port` (ports) and `prefix`
//! (log prefixes, colour-code leftovers); `text` has the byte-level helpers they share.

mod port;
mod prefix;
mod quad;
mod scan;
#[cfg(test)]
mod tests;
mod text;
mod words;

use std::net::Ipv4Addr;

use scan::scan_line;

/// The board's address as far as the console has told it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoardAddress {
    pub ip: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

impl BoardAddress {
    /// Takes what a change reports: the console reports only what changed, so a new IP keeps
    /// the port it had, and the reverse.
    pub fn merge(&mut self, change: BoardAddress) {
        self.ip = change.ip.or(self.ip);
        self.port = change.port.or(self.port);
    }
}

/// Reads console lines one at a time and keeps the board's latest own address and port.
#[derive(Debug, Default)]
pub struct IpWatcher {
    current: BoardAddress,
    /// The previous line announced that the next one carries the address.
    armed: Option<Arm>,
    /// A port from `Socket bound, port P`, waiting for a line that says the socket listens.
    bound: Option<PendingPort>,
    /// An address from `Server IP: A`, waiting for a line that says the server waits for
    /// clients (`accepting`, `listening`): then it is the board's own.
    server_ip: Option<PendingIp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arm {
    /// `IP address:` with the value on the next line, which may carry a log prefix and an
    /// `Address:` label (ESPHome blocks).
    Label,
    /// `WiFi connected` or an `ifconfig()` echo: only a line holding nothing but an address
    /// counts.
    Bare,
}

#[derive(Clone, Copy, Debug)]
struct PendingPort {
    port: u16,
    lines_left: u8,
}

#[derive(Clone, Copy, Debug)]
struct PendingIp {
    ip: Ipv4Addr,
    lines_left: u8,
}

/// How many non-empty lines a bound port waits for its `listening` line.
const BOUND_PORT_LINES: u8 = 3;

impl IpWatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one finished console line: plain text (escape sequences already removed by the
    /// console decoder, but it must still cope with leftovers: stray printable garbage,
    /// U+FFFD, NUL-free text, very long lines). Returns what changed because of this line
    /// (fields are Some only when that value changed).
    pub fn line(&mut self, line: &str) -> BoardAddress {
        let bytes = line.as_bytes();
        // Blank lines (CR-only redraws, spacing) must not use up an armed announcement.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return BoardAddress::default();
        }
        let found = scan_line(bytes, self.armed.take());
        self.armed = found.arm;

        let mut port = found.port;
        let mut ip = found.ip;
        if let Some(server_ip) = found.server_ip {
            self.server_ip = Some(PendingIp {
                ip: server_ip,
                lines_left: BOUND_PORT_LINES,
            });
        } else if let Some(pending) = self.server_ip.take() {
            if found.awaits_clients || found.listening_without_port {
                ip = ip.or(Some(pending.ip));
            } else if pending.lines_left > 1 && ip.is_none() {
                self.server_ip = Some(PendingIp {
                    lines_left: pending.lines_left - 1,
                    ..pending
                });
            }
        }
        if let Some(bound) = found.bound_port {
            self.bound = Some(PendingPort {
                port: bound,
                lines_left: BOUND_PORT_LINES,
            });
        } else if let Some(pending) = self.bound.take() {
            if found.listening_without_port {
                port = port.or(Some(pending.port));
            } else if pending.lines_left > 1 {
                self.bound = Some(PendingPort {
                    lines_left: pending.lines_left - 1,
                    ..pending
                });
            }
        }

        let mut change = BoardAddress::default();
        if let Some(ip) = ip
            && self.current.ip != Some(ip)
        {
            self.current.ip = Some(ip);
            change.ip = Some(ip);
        }
        if let Some(port) = port
            && self.current.port != Some(port)
        {
            self.current.port = Some(port);
            change.port = Some(port);
        }
        change
    }

    /// The current answer.
    pub fn address(&self) -> BoardAddress {
        self.current
    }
}
