//! Drives one chat server with a script of events decoded from the fuzzer's input and checks,
//! after every event, what CONTRACT.md §3 promises whatever the clients send.
//!
//! Script: a sequence of events, each an opcode byte then its operands; a missing operand
//! reads as 0 and an operand longer than the rest of the input is cut to it.
//! - `op % 5 == 0` connect: 1 byte for the peer's address.
//! - `op % 5 == 1` receive: 1 byte client id (`% 10`, so 0 and 9 are invalid ids), 2 bytes
//!   length (little endian), then that many bytes.
//! - `op % 5 == 2` disconnect: 1 byte client id, 1 byte (odd: too slow, even: closed).
//! - `op % 5 == 3` console: 1 byte length, then the line (lossy UTF-8, line ends removed).
//! - `op % 5 == 4` flood: 1 byte client id, 1 byte value, 1 byte count; receives the value
//!   `count * 64` times in one read, to reach the line limits with a short input.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use espchat_core::{ClientId, Disconnect, MAX_CLIENTS, MAX_LINE, Server};
use libfuzzer_sys::fuzz_target;
use support::{Event, record};

// The server's tests' recorder: this crate is its own workspace, so it takes the file itself.
#[path = "../../tests/support/mod.rs"]
mod support;

struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    fn byte(&mut self) -> u8 {
        let (&first, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        first
    }

    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// What the server must look like from outside: who is connected and the LED.
#[derive(Default)]
struct Model {
    connected: [bool; MAX_CLIENTS],
    led: bool,
}

impl Model {
    fn is_connected(&self, id: u8) -> bool {
        (1..=MAX_CLIENTS as u8).contains(&id) && self.connected[usize::from(id) - 1]
    }

    fn ids(&self) -> Vec<u8> {
        (1..=MAX_CLIENTS as u8)
            .filter(|&id| self.is_connected(id))
            .collect()
    }
}

/// One line the server sent: UTF-8, `\r\n` at the end and no other control character, and a
/// relayed text (`Client N: text`) of at most MAX_LINE bytes.
fn check_sent(bytes: &[u8]) {
    let line = std::str::from_utf8(bytes).expect("a sent line is UTF-8");
    let text = line
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("a sent line ends in \\r\\n: {line:?}"));
    assert!(
        !text.chars().any(char::is_control),
        "control character in a sent line: {line:?}"
    );
    if let Some(rest) = text.strip_prefix("Client ")
        && let Some((number, relayed)) = rest.split_once(": ")
        && number.parse::<u8>().is_ok()
    {
        assert!(relayed.len() <= MAX_LINE, "relayed {} bytes", relayed.len());
    }
}

/// Checks one event's outputs; `closing` is the client an event may close. A client dropped for
/// not reading gets one last notice, right before its close.
fn check_events(events: &[Event], model: &mut Model, closing: Option<u8>) {
    for (n, event) in events.iter().enumerate() {
        match event {
            Event::Send(to, line) => {
                let last_words = Some(*to) == closing
                    && line.as_bytes() == Disconnect::TOO_SLOW_LINE
                    && events.get(n + 1) == Some(&Event::Close(*to));
                assert!(
                    model.is_connected(*to) || last_words,
                    "sent to client {to}, not connected"
                );
                check_sent(line.as_bytes());
            }
            Event::Close(id) => assert_eq!(Some(*id), closing, "unexpected close"),
            Event::Led(on) => model.led = *on,
            Event::Log(line) => assert!(
                !line.contains(['\r', '\n']),
                "a log line is one line: {line:?}"
            ),
        }
    }
}

fn client(byte: u8) -> Option<ClientId> {
    let id = ClientId::new(byte % 10);
    assert_eq!(id.is_some(), (1..=8).contains(&(byte % 10)));
    id
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script { data };
    let mut server = Server::new();
    let mut model = Model::default();
    let mut events = Vec::new();

    while !script.data.is_empty() {
        events.clear();
        let op = script.byte();
        match op % 5 {
            0 => {
                let peer = SocketAddr::from((Ipv4Addr::new(192, 0, 2, script.byte()), 40000));
                let expected = (1..=MAX_CLIENTS as u8).find(|&id| !model.is_connected(id));
                let result = server.connect(peer, &mut record(&mut events));
                match (result, expected) {
                    (Ok(id), Some(expected)) => {
                        assert_eq!(id.get(), expected, "the smallest free id");
                        model.connected[usize::from(expected) - 1] = true;
                        let welcomed: Vec<u8> = events
                            .iter()
                            .filter_map(|event| match event {
                                Event::Send(to, line)
                                    if *line == format!("Client {expected} connected\r\n") =>
                                {
                                    Some(*to)
                                }
                                _ => None,
                            })
                            .collect();
                        assert_eq!(welcomed, model.ids(), "everyone hears of the newcomer");
                    }
                    (Err(_), None) => assert!(
                        !events.iter().any(|event| matches!(event, Event::Send(..))),
                        "a refused connection sends nothing to the others"
                    ),
                    (result, expected) => {
                        panic!("connect gave {result:?}, expected id {expected:?}")
                    }
                }
                check_events(&events, &mut model, None);
            }
            1 => {
                let id = client(script.byte());
                let len = u16::from_le_bytes([script.byte(), script.byte()]);
                let bytes = script.bytes(usize::from(len));
                if let Some(id) = id {
                    server.receive(id, bytes, &mut record(&mut events));
                    if !model.is_connected(id.get()) {
                        assert!(events.is_empty(), "a stranger's bytes do nothing");
                    }
                }
                check_events(&events, &mut model, None);
            }
            2 => {
                let id = client(script.byte());
                let why = if script.byte() % 2 == 1 {
                    Disconnect::TooSlow
                } else {
                    Disconnect::Closed
                };
                if let Some(id) = id {
                    let was_connected = model.is_connected(id.get());
                    model.connected[usize::from(id.get()) - 1] = false;
                    server.disconnect(id, why, &mut record(&mut events));
                    let closes = events
                        .iter()
                        .filter(|event| matches!(event, Event::Close(_)))
                        .count();
                    assert_eq!(closes, usize::from(was_connected), "one close per leaver");
                    check_events(&events, &mut model, Some(id.get()));
                }
            }
            3 => {
                let len = script.byte();
                let line = String::from_utf8_lossy(script.bytes(usize::from(len)))
                    .replace(['\r', '\n'], " ");
                // Board commands come back to the board; none changes the chat.
                let _ = server.console(&line, &mut record(&mut events));
                assert!(
                    !events.iter().any(|event| matches!(event, Event::Send(..))),
                    "the console never talks to the clients"
                );
                check_events(&events, &mut model, None);
            }
            _ => {
                let id = client(script.byte());
                let value = script.byte();
                let count = usize::from(script.byte()) * 64;
                if let Some(id) = id {
                    server.receive(id, &vec![value; count], &mut record(&mut events));
                }
                check_events(&events, &mut model, None);
            }
        }

        let ids: Vec<u8> = server.clients().map(ClientId::get).collect();
        assert_eq!(ids, model.ids(), "the connected clients");
        assert!(ids.len() <= MAX_CLIENTS);
        assert!(ids.iter().all(|id| (1..=MAX_CLIENTS as u8).contains(id)));
        assert_eq!(server.led(), model.led, "the LED");
    }
});
