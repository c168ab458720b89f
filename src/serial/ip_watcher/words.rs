//! Words as the watcher sees them: each word of a line falls in some classes (a label, a
//! veto, a verb), and the words of the current clause decide what an address after them is.

/// Word classes. A word can be in several: `server` qualifies an IP (`Server IP` is someone
/// else's) and also makes a `port` in the same line a server port.
pub(super) mod class {
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
    /// A client command a board suggests to reach it: `telnet IP PORT`, `nc IP PORT`.
    pub const HINT: u32 = 1 << 19;
    /// The board reaching out (`connecting`, `sending`): what follows is somewhere else.
    pub const OUTGOING: u32 = 1 << 20;
    /// `started`, `running`: with a server named before it, `on :8080` or `at A:P` after it
    /// is where that server is.
    pub const STARTS: u32 = 1 << 21;
    /// `accepting`: a server waiting for its clients.
    pub const AWAITS: u32 = 1 << 22;
}

pub(super) fn classify(word: &[u8]) -> u32 {
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
        b"accepting" => FOREIGN | AWAITS,
        b"lookup" | b"resolved" | b"resolve" | b"resolving" | b"nameserver" | b"accepted"
        | b"accept" | b"assigned" | b"leased" | b"offered" | b"netmask" | b"mask" | b"subnet"
        | b"broadcast" | b"bcast" | b"sender" | b"forward" | b"forwarded" | b"forwarding"
        | b"ping" | b"pinging" => FOREIGN,
        b"dns" | b"dns1" | b"dns2" | b"client" | b"clients" | b"peer" | b"remote" | b"from"
        | b"broker" | b"mqtt" | b"ntp" | b"sntp" | b"gateway" | b"gw" | b"router" | b"target"
        | b"destination" | b"dest" | b"source" | b"src" | b"upstream" | b"proxy" => {
            FOREIGN | PORT_VETO
        }
        b"server" | b"servers" => QUALIFIER | SERVER | URL_OK | HEADER,
        b"host" | b"public" | b"external" | b"wan" | b"old" | b"previous" | b"prev" | b"last"
        | b"range" | b"pool" | b"mac" | b"bssid" | b"real" | b"origin" | b"their" => QUALIFIER,
        b"to" | b"via" => TOWARD,
        b"reconnecting" => TOWARD | OUTGOING,
        b"connecting" => TOWARD | PORT_VETO | URL_VETO | OUTGOING,
        b"sending" | b"send" => TOWARD | URL_VETO | OUTGOING,
        b"listening" | b"listen" | b"listens" | b"serving" => LISTEN | SERVER | URL_OK,
        b"on" | b"at" => ON,
        b"http" | b"https" => SCHEME,
        b"tcp" | b"ws" => SCHEME,
        b"as" => AS,
        b"connected" => CONNECTED | PORT_VETO,
        b"connect" => PORT_VETO | URL_VETO,
        b"ifconfig" | b"ipconfig" | b"getip" => ECHO,
        b"port" => PORT,
        b"telnet" => SERVER | URL_OK | HINT,
        b"nc" | b"ncat" | b"netcat" => HINT,
        b"started" | b"running" => SERVER | URL_OK | STARTS,
        b"httpd" | b"webserver" | b"active" => SERVER | URL_OK,
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
pub(super) struct Clause {
    words: [u32; Clause::CAP],
    len: usize,
}

impl Clause {
    const CAP: usize = 8;

    pub(super) fn push(&mut self, word: u32) {
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

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// `listening on A`, `serving at http://A`.
    pub(super) fn is_listen(&self) -> bool {
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

    /// A client command the board suggests names where to reach it: `telnet 192.168.1.42 23`,
    /// `Open Telnet and connect to IP: 192.168.1.42 on port 23`; not `connecting to telnet
    /// server A` (the board's own way out) nor `telnet client A`.
    pub(super) fn is_hint(&self) -> bool {
        let words = self.words();
        let not = class::QUALIFIER | class::OUTGOING | class::FOREIGN;
        words.iter().any(|w| w & class::HINT != 0) && !words.iter().any(|w| w & not != 0)
    }

    /// `Server running at A:P`, `TCP server started on A`: a server named before the verb.
    pub(super) fn is_server_started_at(&self) -> bool {
        let mut words = self
            .words()
            .iter()
            .rev()
            .skip_while(|w| *w & class::SCHEME != 0);
        match (words.next(), words.next()) {
            (Some(on), Some(verb)) if on & class::ON != 0 && verb & class::STARTS != 0 => {
                words.any(|w| w & class::SERVER != 0)
            }
            _ => false,
        }
    }

    /// `connected to MyNet as A`.
    pub(super) fn is_connected_as(&self) -> bool {
        let words = self.words();
        words.last().is_some_and(|w| w & class::AS != 0)
            && words.iter().any(|w| w & class::CONNECTED != 0)
    }

    /// A label naming the board's IP ends the clause: `sta ip`, `IP address is`, not
    /// `Gateway IP` nor `IP of server`.
    pub(super) fn is_own_label(&self, segment_mentions_ip: bool) -> bool {
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

    /// `Server IP`, `TCP server IP address`: an IP label qualified by a server. Whose server
    /// the line alone does not say (a client prints its server's); a server that then says
    /// it waits for clients (`accepting`, `listening`) is the board's own.
    pub(super) fn is_server_label(&self) -> bool {
        let words = self.words();
        let heads = class::IP | class::ADDRESS;
        let Some(head) = words.iter().rposition(|w| w & heads != 0) else {
            return false;
        };
        let mut first = head;
        while first > 0 && words[first - 1] & heads != 0 {
            first -= 1;
        }
        let others = class::FOREIGN | class::TOWARD | class::OUTGOING | class::CONNECTED;
        first > 0
            && words[first - 1] & class::SERVER != 0
            && words[first - 1] & class::QUALIFIER != 0
            && words[first..=head].iter().any(|w| w & class::IP != 0)
            && !words.iter().any(|w| w & others != 0)
    }

    /// Only labels (`Address`, `IP address`) or nothing: the shape of the value line after an
    /// announcing line.
    pub(super) fn is_only_labels(&self) -> bool {
        self.words()
            .iter()
            .all(|w| *w & (class::IP | class::ADDRESS) != 0)
    }

    /// The line ends in an IP label with no value: `IP address: `.
    pub(super) fn ends_in_label(&self) -> bool {
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
    pub(super) fn is_header(&self) -> bool {
        let words = self.words();
        (1..=3).contains(&words.len()) && words.iter().any(|w| w & class::HEADER != 0)
    }
}
