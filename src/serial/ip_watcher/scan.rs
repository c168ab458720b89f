//! One line, left to right: words go into the clause, each address found is judged by
//! what came before it, and the line's findings go back to the watcher.

use std::net::Ipv4Addr;

use super::Arm;
use super::port::{ListenTarget, listen_target, port_after_label, port_number};
use super::prefix::{ends_with_colon, sgr_leftover, strip_prefix};
use super::quad::{Candidate, candidate_at};
use super::text::{has_word, is_boundary, skip_while};
use super::words::{Clause, class, classify};

/// What one line says.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub(super) ip: Option<Ipv4Addr>,
    pub(super) port: Option<u16>,
    pub(super) bound_port: Option<u16>,
    pub(super) listening_without_port: bool,
    /// `Server IP: A`: the board's if a line soon after says it waits for clients.
    pub(super) server_ip: Option<Ipv4Addr>,
    /// `accepting.....`: a server waits for its clients (no address on the line).
    pub(super) awaits_clients: bool,
    pub(super) arm: Option<Arm>,
}

/// Facts about the text between the previous address on the line (or the line's start) and
/// the next one.
#[derive(Debug, Default)]
struct Segment {
    clause: Clause,
    /// Punctuation seen since the last word; the next word starts a new clause.
    boundary: bool,
    foreign: bool,
    mentions_ip: bool,
}

/// Facts about the line up to the current position.
#[derive(Debug, Default)]
struct LineFacts {
    server: bool,
    bind: bool,
    port_veto: bool,
    url_ok: bool,
    url_veto: bool,
    connected_or_echo: bool,
    /// A client command (`telnet`, `nc`) the board suggests: its port words count even after
    /// `connect` (`Open Telnet and connect to IP: A on port 23`).
    hint: bool,
    /// The board reaching out somewhere (`connecting`): a client command is then its own.
    outgoing: bool,
    candidates: usize,
}

impl LineFacts {
    /// The line suggests a client command to reach the board.
    fn suggests(&self) -> bool {
        self.hint && !self.outgoing
    }
}

pub(super) fn scan_line(line: &[u8], armed: Option<Arm>) -> Findings {
    let mut found = Findings::default();
    let start = strip_prefix(line);
    let udp = has_word(&line[start..], b"udp");

    let mut seg = Segment::default();
    let mut facts = LineFacts::default();
    let mut pos = start;
    let mut after_sgr = false;
    let mut listened_without_port = false;
    let mut awaits = false;

    while pos < line.len() {
        let byte = line[pos];
        if byte == b'['
            && let Some(end) = sgr_leftover(line, pos)
        {
            pos = end;
            after_sgr = true;
            continue;
        }
        let sgr_before = std::mem::take(&mut after_sgr);
        let starts_number = byte.is_ascii_digit()
            || (byte == b'.' && {
                let dots = skip_while(line, pos, |b| b == b'.');
                line.get(dots).is_some_and(u8::is_ascii_digit)
            });
        if starts_number {
            if let Some(candidate) = candidate_at(line, pos, sgr_before) {
                let first = facts.candidates == 0;
                facts.candidates += 1;
                let own = judge(line, start, &candidate, &seg, &facts, armed, first);
                if let Some(ip) = own.ip {
                    found.ip = Some(ip);
                }
                if own.ip.is_none() && found.server_ip.is_none() {
                    found.server_ip = own.server_ip;
                }
                if let Some(port) = own.port
                    && !udp
                    && (!facts.port_veto || facts.suggests())
                {
                    found.port = Some(port);
                }
                seg = Segment::default();
                pos = candidate.next;
                continue;
            }
            // Not an address: skip the whole run of digits and dots, so that a long
            // `1.2.3.4.5...` is looked at once, not from each of its digits.
            let run_end = skip_while(line, pos, |b| b.is_ascii_digit() || b == b'.');
            seg.boundary |= line[pos..run_end].contains(&b'.');
            pos = run_end;
            if line.get(pos).is_some_and(u8::is_ascii_alphabetic) {
                pos = skip_while(line, pos, |b| b.is_ascii_alphanumeric());
            }
            continue;
        }
        if byte.is_ascii_alphabetic()
            && let Some((port, next)) = local_name_port(line, pos)
        {
            // `esp32.local:8080`: the board's own mDNS name, judged as an address would be
            // where it stands; only its port is news (the address comes on its own line).
            let first = facts.candidates == 0;
            facts.candidates += 1;
            let is_url = line[..pos].ends_with(b"://");
            let own = seg.clause.is_listen()
                || seg.clause.is_server_started_at()
                || seg.clause.is_hint()
                || seg
                    .clause
                    .is_own_label(seg.mentions_ip || facts.connected_or_echo)
                || (is_url && facts.url_ok && !facts.url_veto)
                || (first && armed == Some(Arm::Label) && seg.clause.is_only_labels());
            if own && !seg.foreign && !udp && (!facts.port_veto || facts.suggests()) {
                found.port = Some(port);
            }
            seg = Segment::default();
            pos = next;
            continue;
        }
        if byte.is_ascii_alphabetic() {
            let end = skip_while(line, pos, |b| b.is_ascii_alphanumeric());
            let word = classify(&line[pos..end]);
            if std::mem::take(&mut seg.boundary) {
                seg.clause.clear();
            }
            seg.clause.push(word);
            seg.foreign |= word & class::FOREIGN != 0;
            seg.mentions_ip |= word & class::IP != 0;
            facts.server |= word & class::SERVER != 0;
            facts.bind |= word & class::BIND != 0;
            facts.url_ok |= word & class::URL_OK != 0;
            facts.url_veto |= word & class::URL_VETO != 0;
            facts.connected_or_echo |= word & (class::CONNECTED | class::ECHO) != 0;
            facts.hint |= word & class::HINT != 0;
            facts.outgoing |= word & class::OUTGOING != 0;
            awaits |= word & class::AWAITS != 0;
            let port_ok = !udp && (!facts.port_veto || facts.suggests());
            facts.port_veto |= word & class::PORT_VETO != 0;

            if word & class::LISTEN != 0 {
                match listen_target(line, end) {
                    ListenTarget::Port(port) if port_ok => found.port = Some(port),
                    ListenTarget::Nothing => listened_without_port = true,
                    _ => {}
                }
            }
            if word & class::STARTS != 0
                && port_ok
                && let Some(port) = started_port(line, end)
            {
                found.port = Some(port);
            }
            if word & class::PORT != 0
                && port_ok
                && let Some(port) = port_after_label(line, end)
            {
                if facts.server {
                    found.port = Some(port);
                } else if facts.bind {
                    found.bound_port = Some(port);
                }
            }
            pos = end;
            continue;
        }
        if is_boundary(byte) {
            seg.boundary = true;
        }
        pos += 1;
    }

    found.listening_without_port =
        listened_without_port && !udp && found.port.is_none() && facts.candidates == 0;
    found.awaits_clients = awaits && !udp && facts.candidates == 0;
    if facts.candidates == 0 && !seg.foreign {
        found.arm = if seg.clause.ends_in_label()
            || (ends_with_colon(&line[start..]) && seg.clause.is_header())
        {
            Some(Arm::Label)
        } else if facts.connected_or_echo || is_progress_dots(&line[start..]) {
            Some(Arm::Bare)
        } else {
            None
        };
    }
    found
}

/// What one address in a line turned out to be.
#[derive(Debug, Default)]
struct Judgement {
    ip: Option<Ipv4Addr>,
    port: Option<u16>,
    /// Not the board's on this line's word: a server's (see [`Findings::server_ip`]).
    server_ip: Option<Ipv4Addr>,
}

fn judge(
    line: &[u8],
    message_start: usize,
    candidate: &Candidate,
    seg: &Segment,
    facts: &LineFacts,
    armed: Option<Arm>,
    first: bool,
) -> Judgement {
    let mut verdict = Judgement::default();
    if seg.foreign {
        return verdict;
    }
    let clause = &seg.clause;
    let listen = clause.is_listen() || clause.is_server_started_at();
    let hint = clause.is_hint();
    let is_url = line[..candidate.start].ends_with(b"://");
    let own = listen
        || hint
        || clause.is_own_label(seg.mentions_ip || facts.connected_or_echo)
        || clause.is_connected_as()
        || (is_url && facts.url_ok && !facts.url_veto)
        || is_interface_triple(line, candidate)
        || (first
            && match armed {
                Some(Arm::Label) => clause.is_only_labels(),
                Some(Arm::Bare) => is_alone(line, message_start, candidate),
                None => false,
            });
    if !own {
        if clause.is_server_label() && candidate.port.is_none() && is_host_address(candidate.ip) {
            verdict.server_ip = Some(candidate.ip);
        }
        return verdict;
    }
    let port = if listen {
        candidate.port.or(candidate.tuple_port)
    } else if hint {
        candidate
            .port
            .or_else(|| port_after_space(line, candidate.end))
    } else {
        candidate.port
    };
    if is_host_address(candidate.ip) {
        verdict.ip = Some(candidate.ip);
        verdict.port = port;
    } else if listen && candidate.ip.is_unspecified() {
        // `listening on 0.0.0.0:5000`: every interface, so the port is real but the
        // address says nothing about where the board is.
        verdict.port = port;
    }
    verdict
}

/// `server started on :8080`, `running on port 3333`: a port said as one (a colon or the word
/// `port` before it), not any number (`started at 1234 ms`).
fn started_port(line: &[u8], after_word: usize) -> Option<u16> {
    let mut pos = skip_while(line, after_word, |b| b == b' ');
    for word in [&b"on "[..], b"at "] {
        if line[pos..].len() >= word.len() && line[pos..pos + word.len()].eq_ignore_ascii_case(word)
        {
            pos = skip_while(line, pos + word.len(), |b| b == b' ');
            break;
        }
    }
    if line.get(pos) == Some(&b':') {
        return port_number(line, pos + 1);
    }
    let rest = &line[pos..];
    if rest.len() > 4 && rest[..4].eq_ignore_ascii_case(b"port") && !rest[4].is_ascii_alphanumeric()
    {
        return port_after_label(line, pos + 4);
    }
    None
}

/// `telnet 192.168.1.42 23`: the port a client command takes after the address, a number
/// that ends the word.
fn port_after_space(line: &[u8], at: usize) -> Option<u16> {
    let start = skip_while(line, at, |b| b == b' ' || b == b'\t');
    if start == at {
        return None;
    }
    let end = skip_while(line, start, |b| b.is_ascii_digit());
    let ends_word = line
        .get(end)
        .is_none_or(|&b| !b.is_ascii_alphanumeric() && b != b'.');
    if end == start || end - start > 5 || !ends_word {
        return None;
    }
    std::str::from_utf8(&line[start..end])
        .ok()?
        .parse()
        .ok()
        .filter(|&port| port > 0)
}

/// An address some host can have as its own.
fn is_host_address(ip: Ipv4Addr) -> bool {
    let first = ip.octets()[0];
    first != 0 && first < 224
}

/// `('192.168.1.42', '255.255.255.0', …)` and NodeMCU's `192.168.1.42\t255.255.255.0\t…`:
/// an address directly followed by a netmask is an interface's own address, unless it is the
/// network or broadcast address of that mask.
fn is_interface_triple(line: &[u8], candidate: &Candidate) -> bool {
    if candidate.port.is_some() {
        return false;
    }
    let after = skip_while(line, candidate.end, |b| {
        matches!(b, b' ' | b'\t' | b',' | b'\'' | b'"')
    });
    if after == candidate.end {
        return false;
    }
    let Some(mask) = candidate_at(line, after, false) else {
        return false;
    };
    let mask = u32::from(mask.ip);
    let ones = mask.leading_ones();
    if ones == 0 || mask.checked_shl(ones).unwrap_or(0) != 0 {
        return false;
    }
    let host = u32::from(candidate.ip) & !mask;
    ones >= 31 || (host != 0 && host != !mask)
}

/// `kitchen-sensor.local:6053` starting at `pos` (a host name that starts there, not in the
/// middle of a word or a longer name): its port, and where scanning resumes.
fn local_name_port(line: &[u8], pos: usize) -> Option<(u16, usize)> {
    if pos > 0 && matches!(line[pos - 1], b'.' | b'-' | b'_')
        || line[..pos].last().is_some_and(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    let end = skip_while(line, pos, |b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
    });
    let name = &line[pos..end];
    let suffix = b".local";
    if name.len() <= suffix.len()
        || !name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        || line.get(end) != Some(&b':')
    {
        return None;
    }
    let port = super::port::port_number(line, end + 1)?;
    let next = skip_while(line, end + 1, |b| b.is_ascii_digit());
    Some((port, next))
}

/// `.....`, `. . . .`: a sketch waiting for Wi-Fi prints a dot a second; what it prints alone
/// on the line after them is the address it got (`Serial.println(WiFi.localIP())`).
fn is_progress_dots(text: &[u8]) -> bool {
    text.iter()
        .all(|&b| matches!(b, b'.' | b' ' | b'\t' | b'\r'))
        && text.iter().filter(|&&b| b == b'.').count() >= 3
}

/// The line holds the address and nothing else but quotes, a REPL prompt and whitespace.
fn is_alone(line: &[u8], message_start: usize, candidate: &Candidate) -> bool {
    let filler = |b: &u8| matches!(b, b' ' | b'\t' | b'\'' | b'"' | b'>');
    line[message_start..candidate.start].iter().all(filler)
        && line[candidate.next..].iter().all(filler)
}

#[cfg(test)]
mod tests {
    use crate::serial::ip_watcher::BoardAddress;
    use crate::serial::ip_watcher::tests::{answer, ip, own_ip};

    #[test]
    fn gateway_dns_mask_and_broadcast_are_never_taken() {
        for line in [
            "Gateway IP: 192.168.1.1",
            "Gateway: 192.168.1.1",
            "GW IP: 192.168.1.1",
            "gw: 192.168.1.1",
            "DNS: 8.8.8.8",
            "DNS IP: 192.168.1.1",
            "DNS Server: 192.168.1.1",
            "Subnet Mask: 255.255.255.0",
            "Netmask: 255.255.255.0",
            "Broadcast IP: 192.168.1.255",
            "broadcast address 192.168.1.255",
            "Router IP: 192.168.1.1",
            "\tGateway IP: 192.168.1.1",
        ] {
            assert_eq!(own_ip(&[line]), None, "{line}");
        }
        let lines = [
            "IP address: 192.168.1.42",
            "Gateway IP: 192.168.1.1",
            "Subnet mask: 255.255.255.0",
            "DNS: 192.168.1.1",
        ];
        assert_eq!(own_ip(&lines), ip("192.168.1.42"));
    }

    #[test]
    fn socket_addresses_are_not_interface_tuples() {
        for line in [
            ">>> s.connect(('93.184.216.34', 80))",
            "[(2, 1, 0, '', ('93.184.216.34', 80))]",
            "client connected from ('192.168.1.77', 51234)",
            "('192.168.1.0', '255.255.255.0')",
            "('192.168.1.255', '255.255.255.0')",
        ] {
            assert_eq!(answer(&[line]), BoardAddress::default(), "{line}");
        }
    }

    #[test]
    fn clients_are_not_the_board() {
        for line in [
            "client 1 connected from 192.168.1.77:51234",
            "espchat: client 2 connected from 192.168.1.78:40000",
            "Accepted connection from 192.168.1.77",
            "New client: 192.168.1.77",
            "I (8000) example: Socket accepted ip address: 192.168.1.77",
            "Client IP: 192.168.1.77",
            "I (9000) esp_netif_lwip: DHCP server assigned IP to a client, IP is: 192.168.4.2",
            "I (9000) esp_netif_lwip: DHCP server assigned IP to a station, IP is: 192.168.4.2",
            "Received 5 bytes from 192.168.1.77:",
            "peer ip 192.168.1.80",
            "remote ip: 192.168.1.80",
            "X-Real-IP: 192.168.4.2",
            "dhcp server: offered IP 192.168.4.2 to 3c:22:fb:12:ab:cd",
            "X-Forwarded-For IP: 192.168.4.2",
        ] {
            assert_eq!(answer(&[line]), BoardAddress::default(), "{line}");
        }
    }

    #[test]
    fn remote_servers_are_not_the_board() {
        for line in [
            "connecting to 93.184.216.34",
            "Connecting to IP 93.184.216.34",
            "MQTT broker 10.0.0.5",
            "MQTT broker IP: 10.0.0.5",
            "NTP server 162.159.200.1",
            "NTP server ip: 162.159.200.1",
            "ping 8.8.8.8",
            "64 bytes from 8.8.8.8: icmp_seq=1 ttl=115 time=23 ms",
            "I (5843) example: DNS lookup succeeded. IP=93.184.216.34",
            "Server IP: 10.0.0.5",
            "IP of the server: 10.0.0.5",
            "Public IP: 203.0.113.7",
            "old ip: 192.168.1.40",
            "Attempting to download update from https://192.168.1.10:8070/app.bin",
            "Connecting to http://10.0.0.5:8080/api",
            "TCP Connected to: 192.168.1.100 : 8888",
        ] {
            assert_eq!(answer(&[line]), BoardAddress::default(), "{line}");
        }
    }

    #[test]
    fn a_client_command_the_board_suggests_names_its_address_and_port() {
        for (line, ip_text, port) in [
            // ESP8266/ESP32 Arduino's WiFiTelnetToSerial example and its many copies.
            (
                "Ready! Use 'telnet 192.168.1.42 23' to connect",
                "192.168.1.42",
                Some(23),
            ),
            (
                "Ready! Use 'telnet or nc 192.168.4.1 8880' to connect",
                "192.168.4.1",
                Some(8880),
            ),
            ("try: nc 192.168.1.42 3333", "192.168.1.42", Some(3333)),
            ("telnet 192.168.1.42", "192.168.1.42", None),
            ("ncat 192.168.1.42:5000", "192.168.1.42", Some(5000)),
        ] {
            assert_eq!(
                answer(&[line]),
                BoardAddress {
                    ip: ip(ip_text),
                    port
                },
                "{line}"
            );
        }
        // A number glued to more is not a port; a peer after `from` is still nobody's hint.
        assert_eq!(answer(&["telnet 192.168.1.42 23a"]).port, None);
        assert_eq!(answer(&["nc 192.168.1.42 1.5"]).port, None);
        assert_eq!(
            answer(&["telnet session from 192.168.1.77 closed"]),
            BoardAddress::default()
        );
    }

    #[test]
    fn connected_address_is_the_boards_but_not_a_clients() {
        // ESP8266 Arduino core examples: `Serial.print("connected, address=")` + localIP().
        assert_eq!(
            own_ip(&["connected, address=192.168.1.42"]),
            ip("192.168.1.42")
        );
        assert_eq!(own_ip(&["client connected, address=192.168.1.77"]), None);
        assert_eq!(own_ip(&["address=192.168.1.42"]), None);
    }

    #[test]
    fn a_server_started_at_an_address_or_port_is_the_boards() {
        for (lines, ip_text, port) in [
            (
                &["Server running at 192.168.1.1:3000"][..],
                Some("192.168.1.1"),
                Some(3000),
            ),
            (
                &["TCP server started on 192.168.4.1:3000"][..],
                Some("192.168.4.1"),
                Some(3000),
            ),
            (
                &["server started on :8080", "got ip: 192.168.1.42"][..],
                Some("192.168.1.42"),
                Some(8080),
            ),
            (&["HTTP server running on port 80"][..], None, Some(80)),
        ] {
            assert_eq!(
                answer(lines),
                BoardAddress {
                    ip: ip_text.and_then(ip),
                    port
                },
                "{lines:?}"
            );
        }
        for line in [
            "Task started at 1234 ms",
            "WiFi started on channel 6",
            "App running at 10.0.0.5:3000",
            "MQTT server running at 10.0.0.5:1883",
            "mDNS responder started on port 5353",
            "UDP server started on :4210",
        ] {
            assert_eq!(answer(&[line]), BoardAddress::default(), "{line}");
        }
    }

    #[test]
    fn the_seed_labs_telnet_line_names_address_and_port() {
        // ../shared/seeds/001: the NodeMCU TCP socket server sketch and its many copies.
        let line = "Open Telnet and connect to IP:192.168.1.42 on port 23";
        assert_eq!(
            answer(&[line]),
            BoardAddress {
                ip: ip("192.168.1.42"),
                port: Some(23)
            }
        );
        // The board going out to a telnet server is not the board.
        for line in [
            "connecting to telnet server 10.0.0.5 port 23",
            "Connecting to telnet host 10.0.0.5",
            "sending to nc 10.0.0.5 9000",
        ] {
            assert_eq!(answer(&[line]), BoardAddress::default(), "{line}");
        }
    }

    #[test]
    fn addresses_no_host_has_are_never_the_answer() {
        for line in [
            "got ip: 0.0.0.0",
            "got ip: 255.255.255.255",
            "got ip: 224.0.0.251",
            "got ip: 240.0.0.1",
            "IP address: 255.255.255.0",
            "IP: 0.1.2.3",
        ] {
            assert_eq!(own_ip(&[line]), None, "{line}");
        }
        assert_eq!(own_ip(&["got ip: 169.254.10.20"]), ip("169.254.10.20"));
    }
}
