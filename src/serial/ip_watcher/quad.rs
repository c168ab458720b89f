//! Dotted quads that stand on their own in the text, with the port or prefix written after
//! them: the candidates for the board's address.

use std::net::Ipv4Addr;

use super::port::port_number;
use super::text::{skip_spaces, skip_while};

/// A dotted quad that stands on its own in the text.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub(super) start: usize,
    /// Just past the last octet.
    pub(super) end: usize,
    pub(super) ip: Ipv4Addr,
    /// From `A:P`.
    pub(super) port: Option<u16>,
    /// From a Python sockaddr `('A', P)`.
    pub(super) tuple_port: Option<u16>,
    /// Where scanning resumes: past the port or prefix length.
    pub(super) next: usize,
}

/// Parses a dotted quad starting at `pos` (a digit, or dots of an ellipsis before one).
pub(super) fn candidate_at(line: &[u8], pos: usize, sgr_before: bool) -> Option<Candidate> {
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

#[cfg(test)]
mod tests {
    use crate::serial::ip_watcher::BoardAddress;
    use crate::serial::ip_watcher::tests::{answer, ip, own_ip};

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
}
