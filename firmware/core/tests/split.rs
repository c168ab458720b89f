//! Properties of the server under hostile input: how the bytes are cut into reads never
//! matters, clients never disturb each other's lines, and whatever the server sends is clean.

mod support;

use std::fmt;
use std::net::SocketAddr;

use espchat_core::{ClientId, MAX_LINE, Server, split_reads};
use proptest::prelude::*;
use proptest::sample::Index;
use support::{Event, record};

/// Bytes shown as an escaped byte string, so a failing case is readable.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\" ({} bytes)", self.0.escape_ascii(), self.0.len())
    }
}

fn peer(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 40000 + u16::from(n)))
}

/// A server with `n` clients, and the events of their connecting.
fn server_with_clients(n: u8) -> (Server, Vec<Event>) {
    let mut server = Server::new();
    let mut events = Vec::new();
    for expected in 1..=n {
        let id = server.connect(peer(expected), &mut record(&mut events));
        assert_eq!(id.map(ClientId::get), Ok(expected));
    }
    (server, events)
}

fn id(n: u8) -> ClientId {
    ClientId::new(n).unwrap()
}

/// A piece of what a chat client, a broken terminal or an attacker might send.
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    let escape = prop_oneof![
        Just(b"\x1b[2J".to_vec()),
        Just(b"\x1b]52;c;aGFja2VkCg==\x07".to_vec()),
        Just(b"\x1b]52;c;aGFja2VkCg==\x1b\\".to_vec()),
        Just(b"\x1bP1$r0m\x1b\\".to_vec()),
        Just(b"\x1b[1;31m".to_vec()),
        Just(b"\x1b[0m".to_vec()),
        Just(b"\x1b(0".to_vec()),
        Just(b"\x1b".to_vec()),
        Just(b"\x1b]".to_vec()),
        Just(b"\x1bP".to_vec()),
        Just(b"\x1b[".to_vec()),
        Just(b"\x9b31m".to_vec()),
        Just("\u{9b}1m\u{85}".as_bytes().to_vec()),
        // CSI with random parameters and a random final byte.
        (prop::collection::vec(b'0'..=b';', 0..8), 0x40u8..=0x7e).prop_map(|(params, end)| {
            let mut bytes = b"\x1b[".to_vec();
            bytes.extend(params);
            bytes.push(end);
            bytes
        }),
        // OSC with a random body, terminated or not.
        (
            "[ -~]{0,40}",
            prop_oneof![Just(&b"\x07"[..]), Just(&b"\x1b\\"[..]), Just(&b""[..])]
        )
            .prop_map(|(body, end)| {
                let mut bytes = b"\x1b]".to_vec();
                bytes.extend(body.as_bytes());
                bytes.extend(end);
                bytes
            }),
    ];
    let invalid = prop_oneof![
        Just(vec![0x80]),
        Just(vec![0xbf]),
        Just(vec![0xc0, 0xaf]),
        Just(vec![0xc1]),
        Just(vec![0xe2, 0x82]),
        Just(vec![0xe2]),
        Just(vec![0xf0, 0x9f, 0xa6]),
        Just(vec![0xed, 0xa0, 0x80]),
        Just(vec![0xf4, 0x90, 0x80, 0x80]),
        (0xf5u8..=0xff).prop_map(|b| vec![b]),
    ];
    let line_end = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
    ];
    let command = prop_oneof![
        Just(b"on\n".to_vec()),
        Just(b" OFF \r\n".to_vec()),
        Just(b"status\n".to_vec()),
        Just(b"help\r\n".to_vec()),
    ];
    // Long runs cross both the 256-byte text limit and the 1024-byte raw limit of a line.
    let long_run = (
        prop_oneof![
            Just(&b"x"[..]),
            Just("€".as_bytes()),
            Just(&b"\x1b[0m"[..]),
            Just(&b"\xff"[..]),
        ],
        0usize..700,
    )
        .prop_map(|(unit, count)| unit.repeat(count));
    prop_oneof![
        3 => "[ -~]{0,24}".prop_map(String::into_bytes),
        2 => any::<String>().prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<char>(), 0..8)
            .prop_map(|chars| chars.into_iter().collect::<String>().into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..16),
        2 => prop::collection::vec(0u8..0x20, 0..4),
        3 => line_end,
        3 => escape,
        2 => invalid,
        1 => command,
        1 => long_run,
    ]
}

fn stream() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(chunk(), 0..40).prop_map(|chunks| Bytes(chunks.concat()))
}

/// Cuts `bytes` into reads at the given points; empty reads are kept, they happen too.
fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    split_reads(bytes, &mut points).collect()
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..24)
}

/// Checks one line the server sent: UTF-8, one `\r\n` at its end and no other control
/// character, and relayed text of at most [`MAX_LINE`] bytes.
fn check_sent(bytes: &[u8]) -> Result<(), TestCaseError> {
    let line = std::str::from_utf8(bytes)
        .map_err(|error| TestCaseError::fail(format!("not UTF-8 ({error}): {bytes:?}")))?;
    let text = line
        .strip_suffix("\r\n")
        .ok_or_else(|| TestCaseError::fail(format!("no \\r\\n at the end: {line:?}")))?;
    prop_assert!(
        !text.chars().any(char::is_control),
        "control character inside: {:?}",
        line
    );
    if let Some(rest) = text.strip_prefix("Client ")
        && let Some((number, relayed)) = rest.split_once(": ")
        && number.parse::<u8>().is_ok()
    {
        prop_assert!(
            relayed.len() <= MAX_LINE,
            "relayed text of {} bytes",
            relayed.len()
        );
    }
    Ok(())
}

fn check_all_sent(events: &[Event]) -> Result<(), TestCaseError> {
    for event in events {
        if let Event::Send(_, line) = event {
            check_sent(line.as_bytes())?;
        }
    }
    Ok(())
}

/// Feeds client 1's stream read by read (client 2 listens) and returns every event.
fn feed_one(reads: &[&[u8]]) -> Vec<Event> {
    let (mut server, mut events) = server_with_clients(2);
    for read in reads {
        server.receive(id(1), read, &mut record(&mut events));
    }
    events
}

// 256 cases each by default; set PROPTEST_CASES for a longer search.
proptest! {
    #[test]
    fn splitting_a_stream_into_reads_changes_nothing(bytes in stream(), cuts in cuts()) {
        let whole = feed_one(&[&bytes.0]);
        let split = feed_one(&split(&bytes.0, &cuts));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn byte_by_byte_is_the_same_as_one_read(bytes in stream()) {
        let whole = feed_one(&[&bytes.0]);
        let reads: Vec<&[u8]> = bytes.0.chunks(1).collect();
        prop_assert_eq!(feed_one(&reads), whole);
    }

    /// Two clients' reads interleave in any order; the result must be what the same lines give
    /// when each arrives whole, in the order their line ends arrived. So neither the cuts nor the
    /// other client's bytes can change a line.
    #[test]
    fn interleaved_clients_do_not_disturb_each_other(
        streams in [stream(), stream()],
        cuts in [cuts(), cuts()],
        order in prop::collection::vec(any::<bool>(), 0..64),
    ) {
        let mut reads = [split(&streams[0].0, &cuts[0]), split(&streams[1].0, &cuts[1])];
        for queue in &mut reads {
            queue.reverse();
        }
        // The interleaving: `order` first, then whatever is left, client 1 before client 2.
        let schedule = order
            .iter()
            .map(|&second| usize::from(second))
            .chain(std::iter::repeat_n(0, reads[0].len()))
            .chain(std::iter::repeat_n(1, reads[1].len()));

        let (mut server, mut events) = server_with_clients(3);
        let mut pending: [Vec<u8>; 2] = Default::default();
        let mut whole_lines: Vec<(usize, Vec<u8>)> = Vec::new();
        for client in schedule {
            let Some(read) = reads[client].pop() else { continue };
            server.receive(id(client as u8 + 1), read, &mut record(&mut events));
            for &byte in read {
                pending[client].push(byte);
                if byte == b'\n' {
                    whole_lines.push((client, std::mem::take(&mut pending[client])));
                }
            }
        }

        let (mut reference, mut expected) = server_with_clients(3);
        for (client, line) in &whole_lines {
            reference.receive(id(*client as u8 + 1), line, &mut record(&mut expected));
        }
        prop_assert_eq!(events, expected);
    }

    #[test]
    fn everything_sent_is_clean_utf8_lines(
        streams in [stream(), stream()],
        cuts in [cuts(), cuts()],
    ) {
        let (mut server, mut events) = server_with_clients(3);
        for (n, (bytes, cuts)) in streams.iter().zip(&cuts).enumerate() {
            for read in split(&bytes.0, cuts) {
                server.receive(id(n as u8 + 1), read, &mut record(&mut events));
            }
        }
        check_all_sent(&events)?;
    }

    /// For plain printable ASCII the sanitizer must keep every byte: the relayed text is the
    /// input line, cut to [`MAX_LINE`] with a notice.
    #[test]
    fn printable_ascii_is_relayed_unchanged(
        lines in prop::collection::vec("[ -~]{0,300}", 1..8),
        cuts in cuts(),
    ) {
        let stream: String = lines.iter().map(|line| format!("{line}\r\n")).collect();
        let events = feed_one(&split(stream.as_bytes(), &cuts));
        let relayed: Vec<String> = events
            .iter()
            .filter_map(|event| match event {
                Event::Send(2, line) if line.starts_with("Client 1: ") => Some(line.clone()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = lines
            .iter()
            .map(|line| format!("Client 1: {}\r\n", &line[..line.len().min(MAX_LINE)]))
            .collect();
        prop_assert_eq!(relayed, expected);
        let notices = events
            .iter()
            .filter(|event| {
                **event == Event::Send(1, "notice: line cut to 256 bytes\r\n".to_owned())
            })
            .count();
        prop_assert_eq!(notices, lines.iter().filter(|line| line.len() > MAX_LINE).count());
    }
}
