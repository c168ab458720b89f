//! Ports: what follows `listening`, a `port` label, or an address as `A:P`.

use super::prefix::trim_end_leftovers;
use super::quad::candidate_at;
use super::text::{skip_spaces, skip_while, starts_with_ignore_case, word_at};

pub(super) enum ListenTarget {
    Port(u16),
    Address,
    Nothing,
    Other,
}

/// What follows `listening`: `on port 5000`, `on 3333`, `on :5000`, `on *:80`,
/// `on [::]:80`, `on A:P`, `on ('0.0.0.0', 80)`, or nothing at all.
pub(super) fn listen_target(line: &[u8], after_word: usize) -> ListenTarget {
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
pub(super) fn port_after_label(line: &[u8], after_word: usize) -> Option<u16> {
    let pos = skip_while(line, after_word, |b| {
        matches!(b, b' ' | b'\t' | b':' | b'=' | b'#' | b'\'' | b'"' | b'(')
    });
    port_number(line, pos)
}

/// A TCP port number standing on its own at `pos`.
pub(super) fn port_number(line: &[u8], pos: usize) -> Option<u16> {
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

#[cfg(test)]
mod tests {
    use crate::serial::ip_watcher::BoardAddress;
    use crate::serial::ip_watcher::tests::{answer, ip, own_ip, port};

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
}
