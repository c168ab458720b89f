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

use std::net::Ipv4Addr;

/// The board's address as far as the console has told it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoardAddress {
    pub ip: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

/// Reads console lines one at a time and keeps the board's latest own address and port.
#[derive(Debug, Default)]
pub struct IpWatcher {
    current: BoardAddress,
    /// The previous line announced that the next one carries the address.
    armed: Option<Arm>,
    /// A port from `Socket bound, port P`, waiting for a line that says the socket listens.
    bound: Option<PendingPort>,
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
        if let Some(ip) = found.ip
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

/// What one line says.
#[derive(Debug, Default)]
struct Findings {
    ip: Option<Ipv4Addr>,
    port: Option<u16>,
    bound_port: Option<u16>,
    listening_without_port: bool,
    arm: Option<Arm>,
}

/// Word classes. A word can be in several: `server` qualifies an IP (`Server IP` is someone
/// else's) and also makes a `port` in the same line a server port.
mod class {
    /// Names an interface address: `ip`, `ipv4`, `inet`.
    pub const IP: u32 = 1 << 0;
    /// Names an address of some kind; an own address only if the line speaks of IPs.
    pub const ADDRESS: u32 = 1 << 1;
    /// Everything after it up to the next address belongs to another host or another field.
    pub const FOREIGN: u32 = 1 << 2;
    /// In front of (or between a label and) an address: `Server IP`, `IP of host`.
    pub const QUALIFIER: u32 = 1 << 3;
    /// In front of a label only: `connecting to IP`.
    pub const TOWARD: u32 = 1 << 4;
    pub const LISTEN: u32 = 1 << 5;
    pub const ON: u32 = 1 << 6;
    pub const SCHEME: u32 = 1 << 7;
    pub const AS: u32 = 1 << 8;
    pub const CONNECTED: u32 = 1 << 9;
    /// A REPL echo of a call that prints the address on the next line.
    pub const ECHO: u32 = 1 << 10;
    pub const PORT: u32 = 1 << 11;
    /// Makes a port in the line a server's port.
    pub const SERVER: u32 = 1 << 12;
    /// `bound`: a port, but maybe a UDP one; wait for `listening`.
    pub const BIND: u32 = 1 << 13;
    pub const UDP: u32 = 1 << 14;
    /// A port in a line with this word belongs to someone else or to another service.
    pub const PORT_VETO: u32 = 1 << 15;
    /// A URL in a line with this word is where the board serves.
    pub const URL_OK: u32 = 1 << 16;
    /// A URL in a line with this word is something the board fetches.
    pub const URL_VETO: u32 = 1 << 17;
    /// A block header (`API Server:`, `WiFi:`) whose next line may hold the address.
    pub const HEADER: u32 = 1 << 18;
}

fn classify(word: &[u8]) -> u32 {
    use class::*;
    let mut lower = [0u8; 16];
    let Some(lower) = lower.get_mut(..word.len()) else {
        return 0;
    };
    for (dst, src) in lower.iter_mut().zip(word) {
        *dst = src.to_ascii_lowercase();
    }
    match &*lower {
        b"ip" | b"ipv4" => IP | HEADER,
        b"ip4" | b"ipaddress" | b"ipaddr" | b"inet" | b"myip" | b"staip" => IP,
        b"localip" => IP | ECHO,
        b"address" | b"addr" => ADDRESS,
        b"addresses" => ADDRESS | HEADER,
        b"lookup" | b"resolved" | b"resolve" | b"resolving" | b"nameserver" | b"accepted"
        | b"accept" | b"accepting" | b"assigned" | b"leased" | b"offered" | b"netmask"
        | b"mask" | b"subnet" | b"broadcast" | b"bcast" | b"sender" | b"forward" | b"forwarded"
        | b"forwarding" | b"ping" | b"pinging" => FOREIGN,
        b"dns" | b"dns1" | b"dns2" | b"client" | b"clients" | b"peer" | b"remote" | b"from"
        | b"broker" | b"mqtt" | b"ntp" | b"sntp" | b"gateway" | b"gw" | b"router" | b"target"
        | b"destination" | b"dest" | b"source" | b"src" | b"upstream" | b"proxy" => {
            FOREIGN | PORT_VETO
        }
        b"server" | b"servers" => QUALIFIER | SERVER | URL_OK | HEADER,
        b"host" | b"public" | b"external" | b"wan" | b"old" | b"previous" | b"prev" | b"last"
        | b"range" | b"pool" | b"mac" | b"bssid" | b"real" | b"origin" | b"their" => QUALIFIER,
        b"to" | b"via" | b"reconnecting" => TOWARD,
        b"connecting" => TOWARD | PORT_VETO | URL_VETO,
        b"sending" | b"send" => TOWARD | URL_VETO,
        b"listening" | b"listen" | b"listens" | b"serving" => LISTEN | SERVER | URL_OK,
        b"on" | b"at" => ON,
        b"http" | b"https" => SCHEME,
        b"tcp" | b"ws" => SCHEME,
        b"as" => AS,
        b"connected" => CONNECTED | PORT_VETO,
        b"connect" => PORT_VETO | URL_VETO,
        b"ifconfig" | b"ipconfig" | b"getip" => ECHO,
        b"port" => PORT,
        b"httpd" | b"webserver" | b"telnet" | b"started" | b"running" | b"active" => {
            SERVER | URL_OK
        }
        b"ready" => SERVER | URL_OK,
        b"bound" | b"bind" => BIND,
        b"udp" => UDP | PORT_VETO,
        b"mdns" | b"ota" | b"syslog" | b"serial" | b"uart" => PORT_VETO | URL_VETO,
        b"open" | b"browse" | b"browser" | b"visit" | b"navigate" | b"point" | b"available"
        | b"ui" | b"webui" | b"portal" | b"dashboard" | b"use" | b"access" => URL_OK,
        b"download" | b"downloading" | b"fetch" | b"fetching" | b"get" | b"post" | b"put"
        | b"request" | b"requesting" | b"update" | b"updating" | b"upgrade" | b"firmware"
        | b"upload" | b"uploading" | b"redirect" | b"redirecting" | b"webhook" | b"api"
        | b"image" | b"file" => URL_VETO,
        b"network" | b"wifi" | b"interface" | b"netif" | b"sta" | b"station" | b"ethernet"
        | b"eth" | b"wlan" | b"web" => HEADER,
        _ => 0,
    }
}

/// The words of the current clause, newest last. A clause starts after punctuation that is
/// followed by another word, so `esp_netif_handlers: sta ip:` leaves `sta ip`.
#[derive(Debug, Default)]
struct Clause {
    words: [u32; Clause::CAP],
    len: usize,
}

impl Clause {
    const CAP: usize = 8;

    fn push(&mut self, word: u32) {
        if self.len == Self::CAP {
            self.words.copy_within(1.., 0);
            self.len -= 1;
        }
        self.words[self.len] = word;
        self.len += 1;
    }

    fn words(&self) -> &[u32] {
        &self.words[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// `listening on A`, `serving at http://A`.
    fn is_listen(&self) -> bool {
        let mut words = self
            .words()
            .iter()
            .rev()
            .skip_while(|w| *w & class::SCHEME != 0);
        match (words.next(), words.next()) {
            (Some(last), _) if last & class::LISTEN != 0 => true,
            (Some(last), Some(before)) => last & class::ON != 0 && before & class::LISTEN != 0,
            _ => false,
        }
    }

    /// `connected to MyNet as A`.
    fn is_connected_as(&self) -> bool {
        let words = self.words();
        words.last().is_some_and(|w| w & class::AS != 0)
            && words.iter().any(|w| w & class::CONNECTED != 0)
    }

    /// A label naming the board's IP ends the clause: `sta ip`, `IP address is`, not
    /// `Gateway IP` nor `IP of server`.
    fn is_own_label(&self, segment_mentions_ip: bool) -> bool {
        let words = self.words();
        let heads = class::IP | class::ADDRESS;
        let Some(head) = (0..words.len())
            .rev()
            .take(4)
            .find(|&i| words[i] & heads != 0)
        else {
            return false;
        };
        if words[head + 1..].iter().any(|w| w & class::QUALIFIER != 0) {
            return false;
        }
        let mut first = head;
        while first > 0 && words[first - 1] & heads != 0 {
            first -= 1;
        }
        if first > 0 && words[first - 1] & (class::QUALIFIER | class::TOWARD) != 0 {
            return false;
        }
        segment_mentions_ip || words[first..=head].iter().any(|w| w & class::IP != 0)
    }

    /// Only labels (`Address`, `IP address`) or nothing: the shape of the value line after an
    /// announcing line.
    fn is_only_labels(&self) -> bool {
        self.words()
            .iter()
            .all(|w| *w & (class::IP | class::ADDRESS) != 0)
    }

    /// The line ends in an IP label with no value: `IP address: `.
    fn ends_in_label(&self) -> bool {
        let words = self.words();
        let heads = class::IP | class::ADDRESS;
        let Some(&last) = words.last() else {
            return false;
        };
        if last & heads == 0 {
            return false;
        }
        let first = words
            .iter()
            .rposition(|w| w & heads == 0)
            .map_or(0, |i| i + 1);
        let qualified = first > 0 && words[first - 1] & (class::QUALIFIER | class::TOWARD) != 0;
        !qualified && words[first..].iter().any(|w| w & class::IP != 0)
    }

    /// `API Server:`, `WiFi:`: a short header of a block.
    fn is_header(&self) -> bool {
        let words = self.words();
        (1..=3).contains(&words.len()) && words.iter().any(|w| w & class::HEADER != 0)
    }
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
    candidates: usize,
}

/// A dotted quad that stands on its own in the text.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    start: usize,
    /// Just past the last octet.
    end: usize,
    ip: Ipv4Addr,
    /// From `A:P`.
    port: Option<u16>,
    /// From a Python sockaddr `('A', P)`.
    tuple_port: Option<u16>,
    /// Where scanning resumes: past the port or prefix length.
    next: usize,
}

fn scan_line(line: &[u8], armed: Option<Arm>) -> Findings {
    let mut found = Findings::default();
    let start = strip_prefix(line);
    let udp = has_word(&line[start..], b"udp");

    let mut seg = Segment::default();
    let mut facts = LineFacts::default();
    let mut pos = start;
    let mut after_sgr = false;
    let mut listened_without_port = false;

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
                if let Some(port) = own.port
                    && !udp
                    && !facts.port_veto
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
            let port_ok = !udp && !facts.port_veto;
            facts.port_veto |= word & class::PORT_VETO != 0;

            if word & class::LISTEN != 0 {
                match listen_target(line, end) {
                    ListenTarget::Port(port) if port_ok => found.port = Some(port),
                    ListenTarget::Nothing => listened_without_port = true,
                    _ => {}
                }
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
    if facts.candidates == 0 && !seg.foreign {
        found.arm = if seg.clause.ends_in_label()
            || (ends_with_colon(&line[start..]) && seg.clause.is_header())
        {
            Some(Arm::Label)
        } else if facts.connected_or_echo {
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
    let listen = clause.is_listen();
    let is_url = line[..candidate.start].ends_with(b"://");
    let own = listen
        || clause.is_own_label(seg.mentions_ip)
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
        return verdict;
    }
    let port = if listen {
        candidate.port.or(candidate.tuple_port)
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

/// The line holds the address and nothing else but quotes, a REPL prompt and whitespace.
fn is_alone(line: &[u8], message_start: usize, candidate: &Candidate) -> bool {
    let filler = |b: &u8| matches!(b, b' ' | b'\t' | b'\'' | b'"' | b'>');
    line[message_start..candidate.start].iter().all(filler)
        && line[candidate.next..].iter().all(filler)
}

enum ListenTarget {
    Port(u16),
    Address,
    Nothing,
    Other,
}

/// What follows `listening`: `on port 5000`, `on 3333`, `on :5000`, `on *:80`,
/// `on [::]:80`, `on A:P`, `on ('0.0.0.0', 80)`, or nothing at all.
fn listen_target(line: &[u8], after_word: usize) -> ListenTarget {
    let line = trim_end_leftovers(line);
    let mut pos = skip_spaces(line, after_word.min(line.len()));
    for word in [&b"on"[..], b"at"] {
        if word_at(line, pos, word) {
            pos = skip_spaces(line, pos + word.len());
            break;
        }
    }
    if word_at(line, pos, b"port") {
        pos = skip_spaces(line, pos + 4);
    }
    for scheme in [&b"http://"[..], b"https://", b"tcp://"] {
        if starts_with_ignore_case(&line[pos..], scheme) {
            pos += scheme.len();
            break;
        }
    }
    // embassy's examples: `Listening on TCP:1234...`.
    if word_at(line, pos, b"tcp") && line.get(pos + 3) == Some(&b':') {
        pos += 4;
    }
    pos = skip_while(line, pos, |b| {
        matches!(
            b,
            b' ' | b'\t' | b':' | b'=' | b'#' | b'\'' | b'"' | b'(' | b'[' | b']' | b'*'
        )
    });
    if pos >= line.len() || matches!(line[pos], b'.' | b'!' | b',' | b';' | b')') {
        let next_word = skip_while(line, pos, |b| !b.is_ascii_alphanumeric());
        return if next_word == line.len() {
            ListenTarget::Nothing
        } else {
            ListenTarget::Other
        };
    }
    if candidate_at(line, pos, false).is_some() {
        return ListenTarget::Address;
    }
    match port_number(line, pos) {
        Some(port) => ListenTarget::Port(port),
        None => ListenTarget::Other,
    }
}

/// The number after `port`: `port 80`, `port: 80`, `port=80`, `port: '80'`, `port #23`.
fn port_after_label(line: &[u8], after_word: usize) -> Option<u16> {
    let pos = skip_while(line, after_word, |b| {
        matches!(b, b' ' | b'\t' | b':' | b'=' | b'#' | b'\'' | b'"' | b'(')
    });
    port_number(line, pos)
}

/// A TCP port number standing on its own at `pos`.
fn port_number(line: &[u8], pos: usize) -> Option<u16> {
    let end = skip_while(line, pos, |b| b.is_ascii_digit());
    if end == pos || end - pos > 5 {
        return None;
    }
    match line.get(end) {
        Some(b) if b.is_ascii_alphanumeric() || *b == b'_' => return None,
        Some(b'.') if line.get(end + 1).is_some_and(u8::is_ascii_digit) => return None,
        _ => {}
    }
    let port: u32 = std::str::from_utf8(&line[pos..end]).ok()?.parse().ok()?;
    u16::try_from(port).ok().filter(|p| *p != 0)
}

/// Parses a dotted quad starting at `pos` (a digit, or dots of an ellipsis before one).
fn candidate_at(line: &[u8], pos: usize, sgr_before: bool) -> Option<Candidate> {
    let run_end = skip_while(line, pos, |b| b.is_ascii_digit() || b == b'.');
    let start = skip_while(line, pos, |b| b == b'.');
    if start == run_end {
        return None;
    }
    // Glued to what comes before: `v5.1.2.3`, `esp32-1.2.3.4`, `ver.1.2.3.4`. Dots in front
    // of the run (`...192.168.1.42`) are punctuation when preceded by nothing word-like.
    // Next to a non-ASCII character (mostly U+FFFD, a byte lost to line noise) a digit of
    // the address may be lost as well.
    if !sgr_before {
        let glued = match pos.checked_sub(1).map(|i| line[i]) {
            Some(b) => {
                b.is_ascii_alphanumeric()
                    || b == b'_'
                    || !b.is_ascii()
                    || b == b'.'
                    || (b == b'-' && pos >= 2 && line[pos - 2].is_ascii_alphanumeric())
            }
            None => false,
        };
        if glued {
            return None;
        }
    }
    let mut end = run_end;
    while end > start && line[end - 1] == b'.' {
        end -= 1;
    }
    let trailing_dots = run_end - end;
    let glued_after = match line.get(run_end) {
        Some(b) if !b.is_ascii() => true,
        // `1.2.3.4abc`, `1.2.3.4.x`; an ellipsis before a word is punctuation.
        Some(b) if b.is_ascii_alphanumeric() || *b == b'_' => trailing_dots <= 1,
        // `1.2.3.4-beta`.
        Some(b'-') => {
            trailing_dots == 0 && line.get(run_end + 1).is_some_and(u8::is_ascii_alphanumeric)
        }
        _ => false,
    };
    if glued_after {
        return None;
    }

    let mut octets = [0u8; 4];
    let mut parts = line[start..end].split(|b| *b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 {
            return None;
        }
        let value = part
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        *octet = u8::try_from(value).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }

    let mut next = end;
    let mut port = None;
    if trailing_dots == 0 {
        match line.get(end) {
            Some(b':') => {
                port = port_number(line, end + 1);
                if port.is_some() {
                    next = skip_while(line, end + 1, |b| b.is_ascii_digit());
                }
            }
            Some(b'/') => {
                let digits = skip_while(line, end + 1, |b| b.is_ascii_digit());
                if (1..=2).contains(&(digits - end - 1)) {
                    next = digits;
                }
            }
            _ => {}
        }
    }
    let tuple_port = match (start.checked_sub(1).map(|i| line[i]), line.get(end)) {
        (Some(q @ (b'\'' | b'"')), Some(close)) if *close == q => {
            let comma = end + 1;
            if line.get(comma) == Some(&b',') {
                port_number(line, skip_spaces(line, comma + 1))
            } else {
                None
            }
        }
        _ => None,
    };
    Some(Candidate {
        start,
        end,
        ip: Ipv4Addr::from(octets),
        port,
        tuple_port,
        next,
    })
}

/// The end of a colour or cursor code whose ESC the decoder dropped: `[0;32m`, `[0m`, `[2K`.
fn sgr_leftover(line: &[u8], pos: usize) -> Option<usize> {
    let params = skip_while(line, pos + 1, |b| b.is_ascii_digit() || b == b';');
    let count = params - pos - 1;
    let last = *line.get(params)?;
    let ends = match last {
        b'm' | b'K' | b'J' | b'H' | b'A' | b'B' | b'C' | b'D' | b'G' => count > 0 || last == b'K',
        _ => false,
    };
    // `[C][wifi:…]` is ESPHome's level tag, not a cursor code.
    let bracket_tag = line.get(params + 1) == Some(&b']');
    (ends && count <= 12 && !bracket_tag).then_some(params + 1)
}

/// Skips the log prefix so the log tag's words (`gateway:`, `mqtt_client:`) do not count as
/// the message's: ESP-IDF `I (1234) tag: `, `INFO - `, ESPHome `[C][wifi:436]: `, Arduino
/// `[   524][D][WiFiGeneric.cpp:1098] _eventCallback(): `, Tasmota `00:00:02.600 HTP: `.
fn strip_prefix(line: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        pos = skip_spaces(line, pos);
        match line.get(pos) {
            Some(b'[') => match sgr_leftover(line, pos) {
                Some(end) => pos = end,
                None => break,
            },
            _ => break,
        }
    }
    let rest = &line[pos..];

    // ESP-IDF: `I (1234) tag: message`, the time also as `(12:34:56.789)`.
    if rest.len() > 3
        && b"EWIDV".contains(&rest[0])
        && rest[1] == b' '
        && rest[2] == b'('
        && let Some(close) = rest.iter().take(24).position(|b| *b == b')')
    {
        let tag = skip_spaces(rest, close + 1);
        if let Some(colon) = rest[tag..].iter().take(32).position(|b| *b == b':') {
            return skip_spaces(line, pos + tag + colon + 1);
        }
        return pos + tag;
    }
    // esp-println / log: `INFO - message`.
    for level in [&b"ERROR"[..], b"WARN", b"INFO", b"DEBUG", b"TRACE"] {
        if rest.starts_with(level) && rest[level.len()..].starts_with(b" - ") {
            return pos + level.len() + 3;
        }
    }
    // Bracketed tags: ESPHome and Arduino-ESP32's log_x().
    let mut bracketed = 0;
    let mut after = pos;
    while line.get(after) == Some(&b'[') {
        match line[after..].iter().take(48).position(|b| *b == b']') {
            Some(close) => {
                after += close + 1;
                bracketed += 1;
            }
            None => break,
        }
    }
    if bracketed > 0 {
        if line.get(after) == Some(&b':') {
            after += 1;
        }
        after = skip_spaces(line, after);
        // Arduino's `_eventCallback(): `.
        let ident = skip_while(line, after, |b| b.is_ascii_alphanumeric() || b == b'_');
        if ident > after && line[ident..].starts_with(b"(): ") {
            after = ident + 4;
        }
        return after;
    }
    // Tasmota: `00:00:02.600 HTP: message`.
    if rest.len() > 9 && rest[2] == b':' && rest[5] == b':' && rest[0].is_ascii_digit() {
        let time = skip_while(rest, 0, |b| b.is_ascii_digit() || b == b':' || b == b'.');
        let tag = skip_spaces(rest, time);
        let tag_end = skip_while(rest, tag, |b| b.is_ascii_uppercase());
        if (2..=4).contains(&(tag_end - tag)) && rest[tag_end..].starts_with(b": ") {
            return pos + tag_end + 2;
        }
        return pos + tag;
    }
    pos
}

fn is_boundary(byte: u8) -> bool {
    matches!(
        byte,
        b',' | b';'
            | b'.'
            | b'!'
            | b'?'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'|'
            | b'<'
            | b'>'
            | b':'
            | b'='
    )
}

fn ends_with_colon(text: &[u8]) -> bool {
    trim_end_leftovers(text)
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b':')
}

/// `text` without the whitespace and colour-code leftovers (`[0m`) at its end.
fn trim_end_leftovers(text: &[u8]) -> &[u8] {
    let mut end = text.len();
    loop {
        while end > 0 && text[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        // A leftover is short; looking further back would make long lines slow.
        let window = end.saturating_sub(16);
        let Some(open) = text[window..end].iter().rposition(|b| *b == b'[') else {
            return &text[..end];
        };
        if sgr_leftover(text, window + open) == Some(end) {
            end = window + open;
        } else {
            return &text[..end];
        }
    }
}

fn has_word(text: &[u8], word: &[u8]) -> bool {
    text.windows(word.len()).enumerate().any(|(i, window)| {
        window.eq_ignore_ascii_case(word)
            && (i == 0 || !text[i - 1].is_ascii_alphanumeric())
            && text
                .get(i + word.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric())
    })
}

fn word_at(line: &[u8], pos: usize, word: &[u8]) -> bool {
    starts_with_ignore_case(&line[pos.min(line.len())..], word)
        && line
            .get(pos + word.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric())
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn skip_spaces(line: &[u8], pos: usize) -> usize {
    skip_while(line, pos, |b| b == b' ' || b == b'\t')
}

fn skip_while(line: &[u8], pos: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut pos = pos;
    while pos < line.len() && keep(line[pos]) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<Ipv4Addr> {
        Some(text.parse().expect("test address"))
    }

    /// The answer after feeding `lines` in order.
    fn answer(lines: &[&str]) -> BoardAddress {
        let mut watcher = IpWatcher::new();
        for line in lines {
            watcher.line(line);
        }
        watcher.address()
    }

    fn own_ip(lines: &[&str]) -> Option<Ipv4Addr> {
        answer(lines).ip
    }

    fn port(lines: &[&str]) -> Option<u16> {
        answer(lines).port
    }

    #[test]
    fn esp_idf_sta_ip_line_gives_the_address_not_the_mask_or_gateway() {
        let line = "I (1523) esp_netif_handlers: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1";
        assert_eq!(own_ip(&[line]), ip("192.168.1.42"));
        let gateway_first = "I (1523) esp_netif_handlers: gw: 192.168.1.1, sta ip: 192.168.1.42";
        assert_eq!(own_ip(&[gateway_first]), ip("192.168.1.42"));
    }

    #[test]
    fn esp_idf_got_ip_in_its_versions() {
        for line in [
            "I (1523) wifi_station: got ip:192.168.1.42",
            "I (2853) wifi station: got ip:192.168.1.42",
            "I (2463) event: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1",
            "I (2463) tcpip_adapter: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1",
            "I (5483) example_connect: Got IPv4 event: Interface \"example_netif_sta\" address: 192.168.1.42",
            "I (5493) example_common: - IPv4 address: 192.168.1.42,",
            "I (12:34:56.789) gateway: got ip: 192.168.1.42",
        ] {
            assert_eq!(own_ip(&[line]), ip("192.168.1.42"), "{line}");
        }
    }

    #[test]
    fn arduino_ip_address_with_the_value_on_the_next_line() {
        assert_eq!(
            own_ip(&["WiFi connected", "IP address: ", "192.168.1.42"]),
            ip("192.168.1.42")
        );
        // A blank (CR-only) line in between does not use the announcement up.
        assert_eq!(
            own_ip(&["IP address: ", "", "192.168.1.42"]),
            ip("192.168.1.42")
        );
        // Only the very next line.
        assert_eq!(
            own_ip(&["IP address: ", "Connecting to broker", "10.0.0.5"]),
            None
        );
    }

    #[test]
    fn arduino_ip_address_on_the_same_line_or_after_wifi_connected() {
        assert_eq!(own_ip(&["IP address:\t192.168.1.42"]), ip("192.168.1.42"));
        assert_eq!(own_ip(&["IP address: 192.168.1.42"]), ip("192.168.1.42"));
        assert_eq!(own_ip(&["Local IP: 192.168.1.42"]), ip("192.168.1.42"));
        assert_eq!(own_ip(&["My IP is 192.168.1.42"]), ip("192.168.1.42"));
        assert_eq!(
            own_ip(&["WiFi connected", "192.168.1.42"]),
            ip("192.168.1.42")
        );
        assert_eq!(
            own_ip(&["Connected to WiFi network MyNet as 192.168.1.42"]),
            ip("192.168.1.42")
        );
        // A bare address with no announcement is anybody's.
        assert_eq!(own_ip(&["hello", "192.168.1.42"]), None);
        // After `WiFi connected`, only a line that is nothing but the address.
        assert_eq!(own_ip(&["WiFi connected", "ping 8.8.8.8"]), None);
    }

    #[test]
    fn an_announcement_covers_only_a_plain_value_on_the_next_line() {
        assert_eq!(own_ip(&["IP address:", "Gateway: 192.168.1.1"]), None);
        assert_eq!(
            own_ip(&["IP address:", "connecting to 93.184.216.34"]),
            None
        );
        assert_eq!(
            own_ip(&["IP address:", "[C][x:1]:   192.168.1.42"]),
            ip("192.168.1.42")
        );
        assert_eq!(own_ip(&["Gateway IP:", "192.168.1.1"]), None);
        assert_eq!(own_ip(&["client connected", "192.168.1.77"]), None);
        assert_eq!(
            own_ip(&["API Server:", "uptime 5 s", "Address: 10.0.0.5"]),
            None
        );
        assert_eq!(
            own_ip(&["WiFi connected", "'192.168.1.42'"]),
            ip("192.168.1.42")
        );
    }

    #[test]
    fn arduino_core_event_log() {
        let line = "[   524][D][WiFiGeneric.cpp:1098] _eventCallback(): STA IP: 192.168.1.42, MASK: 255.255.255.0, GW: 192.168.1.1";
        assert_eq!(own_ip(&[line]), ip("192.168.1.42"));
    }

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
    fn micropython_interface_tuples() {
        let ifconfig = "('192.168.1.42', '255.255.255.0', '192.168.1.1', '8.8.8.8')";
        assert_eq!(own_ip(&[ifconfig]), ip("192.168.1.42"));
        let addr4 = "('192.168.1.42', '255.255.255.0')";
        assert_eq!(own_ip(&[addr4]), ip("192.168.1.42"));
        let boot =
            "network config: ('192.168.1.42', '255.255.255.0', '192.168.1.1', '192.168.1.1')";
        assert_eq!(own_ip(&[boot]), ip("192.168.1.42"));
        let static_echo =
            ">>> wlan.ifconfig(('192.168.1.50', '255.255.255.0', '192.168.1.1', '8.8.8.8'))";
        assert_eq!(own_ip(&[static_echo]), ip("192.168.1.50"));
        assert_eq!(
            own_ip(&[">>> wlan.ifconfig()[0]", "'192.168.1.42'"]),
            ip("192.168.1.42")
        );
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
    fn micropython_listening_on_a_sockaddr_gives_the_port() {
        assert_eq!(
            answer(&["listening on ('0.0.0.0', 80)"]),
            BoardAddress {
                ip: None,
                port: Some(80)
            }
        );
    }

    #[test]
    fn nodemcu_getip_and_eventmon() {
        assert_eq!(
            own_ip(&["192.168.1.42\t255.255.255.0\t192.168.1.1"]),
            ip("192.168.1.42")
        );
        assert_eq!(
            own_ip(&[
                "> print(wifi.sta.getip())",
                "192.168.1.42 255.255.255.0 192.168.1.1"
            ]),
            ip("192.168.1.42")
        );
        let eventmon = [
            "STA - GOT IP",
            "\tStation IP: 192.168.1.42",
            "\tSubnet mask: 255.255.255.0",
            "\tGateway IP: 192.168.1.1",
        ];
        assert_eq!(own_ip(&eventmon), ip("192.168.1.42"));
        assert_eq!(
            own_ip(&["Connected, IP is 192.168.1.42"]),
            ip("192.168.1.42")
        );
    }

    #[test]
    fn tasmota_web_server_line_and_status_json() {
        let web = "00:00:02.600 HTP: Web server active on tasmota-1A2B3C-2876 with IP address 192.168.1.42";
        assert_eq!(own_ip(&[web]), ip("192.168.1.42"));
        let info2 = r#"00:00:03.130 RSL: INFO2 = {"Info2":{"WebServerMode":"Admin","Hostname":"tasmota-1A2B3C-2876","IPAddress":"192.168.1.42"}}"#;
        assert_eq!(own_ip(&[info2]), ip("192.168.1.42"));
        let version = "00:00:00.100 Project tasmota - Tasmota Version 10.0.0.3(tasmota32)-2_0_14";
        assert_eq!(own_ip(&[version]), None);
        let mqtt = "00:00:05.001 MQT: Connect failed to 192.168.1.10:1883, rc -2. Retry in 10 sec";
        assert_eq!(answer(&[mqtt]), BoardAddress::default());
    }

    #[test]
    fn esphome_blocks() {
        let wifi = [
            "[I][wifi:617]: WiFi Connected!",
            "[C][wifi:428]:   Local MAC: 24:0A:C4:12:34:56",
            "[C][wifi:436]:   IP Address: 192.168.1.42",
            "  Subnet: 255.255.255.0",
            "  Gateway: 192.168.1.1",
            "  DNS1: 192.168.1.1",
            "  DNS2: 0.0.0.0",
        ];
        assert_eq!(own_ip(&wifi), ip("192.168.1.42"));
        let api = [
            "[C][api:139]: API Server:",
            "[C][api:140]:   Address: 192.168.1.43:6053",
        ];
        assert_eq!(
            answer(&api),
            BoardAddress {
                ip: ip("192.168.1.43"),
                port: Some(6053)
            }
        );
        // `Address:` alone, outside such a block, is nobody's.
        assert_eq!(own_ip(&["[C][mqtt:100]:   Address: 10.0.0.5:1883"]), None);
        assert_eq!(own_ip(&["  Address: 10.0.0.5"]), None);
    }

    #[test]
    fn esp_hal_and_embassy_examples() {
        assert_eq!(own_ip(&["Got IP: 192.168.1.42/24"]), ip("192.168.1.42"));
        assert_eq!(
            own_ip(&["INFO - IP address: 192.168.1.42"]),
            ip("192.168.1.42")
        );
        let embassy = "INFO - Got IP: StaticConfigV4 { address: 192.168.1.42/24, gateway: Some(192.168.1.1), dns_servers: [192.168.1.1] }";
        assert_eq!(own_ip(&[embassy]), ip("192.168.1.42"));
        let esp_wifi = "got ip IpInfo { ip: 192.168.1.42, subnet: Subnet { gateway: 192.168.1.1, mask: Mask(24) }, dns: None, secondary_dns: None }";
        assert_eq!(own_ip(&[esp_wifi]), ip("192.168.1.42"));
    }

    #[test]
    fn our_firmware_on_a_real_board() {
        for prefix in ["I (4321) ", "INFO - ", ""] {
            let lines = [
                format!("{prefix}espchat: wifi connecting to \"lab\""),
                format!("{prefix}espchat: got ip: 192.168.1.42"),
                format!("{prefix}espchat: listening on 192.168.1.42:5000"),
                format!("{prefix}espchat: client 1 connected from 192.168.1.77:51234"),
            ];
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(
                answer(&lines),
                BoardAddress {
                    ip: ip("192.168.1.42"),
                    port: Some(5000)
                },
                "{prefix}"
            );
        }
    }

    #[test]
    fn listening_on_an_address_gives_address_and_port() {
        assert_eq!(
            answer(&["I (2601) espchat: listening on 192.168.1.42:5000"]),
            BoardAddress {
                ip: ip("192.168.1.42"),
                port: Some(5000)
            }
        );
        assert_eq!(
            answer(&["Web server listening on http://10.0.0.7:8080"]),
            BoardAddress {
                ip: ip("10.0.0.7"),
                port: Some(8080)
            }
        );
        // UDP: the address is still the board's, the port is not a chat server's.
        assert_eq!(
            answer(&["UDP listening on 192.168.1.42:4210"]),
            BoardAddress {
                ip: ip("192.168.1.42"),
                port: None
            }
        );
    }

    #[test]
    fn the_virtual_board_is_on_loopback() {
        let lines = [
            "I (412) espchat: got ip: 127.0.0.1",
            "I (413) espchat: listening on 127.0.0.1:41234",
        ];
        assert_eq!(
            answer(&lines),
            BoardAddress {
                ip: ip("127.0.0.1"),
                port: Some(41234)
            }
        );
        assert_eq!(
            answer(&["I (413) espchat: listening on 127.0.0.1:41234"]),
            BoardAddress {
                ip: ip("127.0.0.1"),
                port: Some(41234)
            }
        );
    }

    #[test]
    fn listening_on_every_interface_gives_only_the_port() {
        assert_eq!(
            answer(&["espchat: listening on 0.0.0.0:5000"]),
            BoardAddress {
                ip: None,
                port: Some(5000)
            }
        );
        assert_eq!(
            answer(&["got ip: 192.168.1.42", "listening on 0.0.0.0:5000"]),
            BoardAddress {
                ip: ip("192.168.1.42"),
                port: Some(5000)
            }
        );
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
    fn version_strings_are_not_addresses() {
        for line in [
            "IP stack v5.1.2.3",
            "I (24) boot: ESP-IDF v4.4.4-dirty 2nd stage bootloader",
            "ip: 1.2.3.4-beta",
            "ip: v1.2.3.4",
            "IP ver.1.2.3.4",
            "NodeMCU 3.0.0.0 built with Docker provided by frightanic.com",
            "IP version 1.2.3.4.5",
        ] {
            assert_eq!(own_ip(&[line]), None, "{line}");
        }
    }

    #[test]
    fn macs_and_bssids_are_not_addresses() {
        for line in [
            "I (453) wifi:mode : sta (24:0a:c4:12:34:56)",
            "I (503) wifi:connected with MyNet, aid = 1, channel 6, BW20, bssid = 8c:3b:ad:01:02:03",
            "ip mac: 24:0a:c4:12:34:56",
            "ip mac: 24-0A-C4-12-34-56",
            "IP: 24.10.196.18.52.86",
        ] {
            assert_eq!(answer(&[line]), BoardAddress::default(), "{line}");
        }
    }

    #[test]
    fn malformed_quads_are_not_addresses() {
        for line in [
            "ip: 1.2.3.4.5",
            "ip: 256.1.1.1",
            "ip: 192.168.1.300",
            "ip: 192.168.1",
            "ip: 192.168..1",
            "ip: 0192.168.1.1",
            "ip: abc192.168.1.1",
            "ip: 192.168.1.1abc",
            "ip: 192.168.1.1_x",
            "ip: esp32-192.168.1.1",
        ] {
            assert_eq!(own_ip(&[line]), None, "{line}");
        }
        // Sentence punctuation after an address is not part of it.
        assert_eq!(own_ip(&["Got IP 192.168.1.42."]), ip("192.168.1.42"));
        assert_eq!(own_ip(&["Got IP 192.168.1.42..."]), ip("192.168.1.42"));
        assert_eq!(own_ip(&["IP=(192.168.1.42)"]), ip("192.168.1.42"));
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

    #[test]
    fn the_latest_own_address_wins_and_each_change_is_reported_once() {
        let mut watcher = IpWatcher::new();
        let first = watcher.line("I (1523) esp_netif_handlers: sta ip: 192.168.1.40, mask: 255.255.255.0, gw: 192.168.1.1");
        assert_eq!(first.ip, ip("192.168.1.40"));
        assert_eq!(first.port, None);
        let again = watcher.line("I (1530) wifi_station: got ip:192.168.1.40");
        assert_eq!(again, BoardAddress::default());
        let renewed = watcher.line("I (91523) esp_netif_handlers: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1");
        assert_eq!(renewed.ip, ip("192.168.1.42"));
        let port = watcher.line("espchat: listening on 192.168.1.42:5000");
        assert_eq!(
            port,
            BoardAddress {
                ip: None,
                port: Some(5000)
            }
        );
        // A reboot keeps the last answer until a new one is printed.
        watcher.line("ets Jun  8 2016 00:22:57");
        watcher.line("rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)");
        assert_eq!(watcher.address().ip, ip("192.168.1.42"));
        watcher.line("IP address: 10.0.0.9");
        assert_eq!(
            watcher.address(),
            BoardAddress {
                ip: ip("10.0.0.9"),
                port: Some(5000)
            }
        );
    }

    #[test]
    fn server_ports_in_their_usual_sentences() {
        for (line, expected) in [
            ("listening on port 5000", 5000),
            ("I (5523) example: Socket listening on 3333", 3333),
            ("TCP server started on port 8080", 8080),
            ("server on port 23", 23),
            ("Telnet server listening on :2323", 2323),
            ("listening on *:8000", 8000),
            ("INFO - Listening on TCP:1234...", 1234),
            ("Starting web server on port: '80'", 80),
            ("00:00:02.700 HTP: Web server active on port 80", 80),
            ("Open http://192.168.1.42:8080/ in your browser", 8080),
            ("IP: 192.168.1.42:5000", 5000),
        ] {
            assert_eq!(port(&[line]), Some(expected), "{line}");
        }
        assert_eq!(
            own_ip(&["Open http://192.168.1.42:8080/ in your browser"]),
            ip("192.168.1.42")
        );
    }

    #[test]
    fn a_url_without_a_port_leaves_the_port_alone() {
        let lines = [
            "listening on port 5000",
            "Open http://192.168.1.42/ in your browser",
        ];
        assert_eq!(
            answer(&lines),
            BoardAddress {
                ip: ip("192.168.1.42"),
                port: Some(5000)
            }
        );
    }

    #[test]
    fn other_ports_are_not_the_server_port() {
        for line in [
            "UDP listening on 4210",
            "udp server on port 5555",
            "Listening on port 4210 (UDP)",
            "client 1 connected from 192.168.1.77:51234",
            "Connected to broker on port 1883",
            "MQTT port 1883",
            "OTA server on port 3232",
            "DNS server started on port 53",
            "Serial port 0 opened",
            "port 5000",
            "listening on 5000.5",
        ] {
            assert_eq!(port(&[line]), None, "{line}");
        }
    }

    #[test]
    fn a_bound_port_counts_once_the_socket_listens() {
        let tcp = [
            "I (5503) example: Socket created",
            "I (5513) example: Socket bound, port 3333",
            "I (5523) example: Socket listening",
        ];
        assert_eq!(port(&tcp), Some(3333));
        let udp = [
            "I (5503) example: Socket created",
            "I (5513) example: Socket bound, port 3333",
            "I (5523) example: Waiting for data",
            "I (5524) example: Waiting for data",
            "I (5525) example: Waiting for data",
            "I (9000) other: listening",
        ];
        assert_eq!(port(&udp), None);
    }

    #[test]
    fn colour_code_leftovers_do_not_hide_or_fake_an_address() {
        let line = "[0;32mI (1523) esp_netif_handlers: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1[0m";
        assert_eq!(own_ip(&[line]), ip("192.168.1.42"));
        assert_eq!(
            own_ip(&["IP address: [1;33m192.168.1.42[0m"]),
            ip("192.168.1.42")
        );
        assert_eq!(
            own_ip(&["[0;36m[C][wifi:436]:   IP Address: 192.168.1.42[0m"]),
            ip("192.168.1.42")
        );
        assert_eq!(own_ip(&["[0;33mW (1234) wifi: gw [0m192.168.1.1"]), None);
    }

    #[test]
    fn garbage_replacement_characters_and_long_lines_are_harmless() {
        let mut watcher = IpWatcher::new();
        watcher.line("got ip: 192.168.1.42");
        for line in [
            "\u{FFFD}\u{FFFD}\u{FFFD}ip\u{FFFD}1.2.3.4\u{FFFD}",
            "\u{FFFD}p\u{FFFD}\u{FFFD}#\u{FFFD}\u{FFFD}l\u{FFFD}192.168.1.1\u{FFFD}",
            "ÿ\u{FFFD}ets Jun  8 2016 00:22:57 \u{FFFD}rst:0x1",
            "....................",
            "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
            "ip:ip:ip:ip:ip:ip:ip:ip:",
            "[[[[[[[[[[[[0;;;;;;;;;;m",
            "",
        ] {
            assert_eq!(watcher.line(line), BoardAddress::default(), "{line}");
        }
        let long = "ab1.2.3.4.5 ".repeat(16 * 1024 / 12);
        assert_eq!(watcher.line(&long), BoardAddress::default());
        let dots = "1.".repeat(8 * 1024);
        assert_eq!(watcher.line(&dots), BoardAddress::default());
        let many_gateways = "gw: 192.168.1.1 ".repeat(1000);
        assert_eq!(watcher.line(&many_gateways), BoardAddress::default());
        assert_eq!(watcher.address().ip, ip("192.168.1.42"));
        // Even at the end of a very long line, a real announcement is found.
        let mut tail = "x".repeat(16 * 1024);
        tail.push_str(" got ip: 192.168.1.50");
        assert_eq!(watcher.line(&tail).ip, ip("192.168.1.50"));
    }

    /// Lines of characters that cannot spell any context word never yield an answer, and
    /// nothing panics, whatever digits, dots and punctuation they hold.
    #[test]
    fn random_junk_never_gives_an_answer() {
        const ALPHABET: &[char] = &[
            '0', '1', '2', '5', '9', '.', '.', '.', ':', ',', '-', '/', ' ', ' ', '(', ')', '\'',
            '"', '[', ']', ';', 'm', 'K', 'x', 'z', 'q', '\u{FFFD}', 'é', '\t', '>', '*', '_',
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut watcher = IpWatcher::new();
        for _ in 0..2000 {
            let len = (next() % 120) as usize;
            let line: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            assert_eq!(watcher.line(&line), BoardAddress::default(), "{line:?}");
        }
    }
}
