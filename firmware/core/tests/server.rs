//! The chat protocol of docs/contract.md §3 and the console of §4, rule by rule, with exact lines.

mod support;

use std::net::SocketAddr;

use espchat_core::{
    BoardCommand, CONSOLE_HELP, ClientId, Disconnect, Full, LedPin, LedSetting, MAX_CLIENTS,
    MAX_LINE, Policy, Server, WifiCredentials,
};
use support::Event::{self, Close, Led, Log};
use support::record;

fn send(to: u8, line: &str) -> Event {
    Event::Send(to, line.to_owned())
}

fn log(line: &str) -> Event {
    Log(line.to_owned())
}

/// A server plus every output it produced since the last [`Harness::take`].
struct Harness {
    server: Server,
    events: Vec<Event>,
}

impl Harness {
    fn new() -> Self {
        Self {
            server: Server::new(),
            events: Vec::new(),
        }
    }

    /// A server with clients 1..=n connected, and no events recorded yet.
    fn with_clients(n: u8) -> Self {
        let mut harness = Self::new();
        for expected in 1..=n {
            assert_eq!(harness.connect().get(), expected);
        }
        harness.take();
        harness
    }

    fn connect_from(&mut self, peer: SocketAddr) -> Result<ClientId, Full> {
        self.server.connect(peer, &mut record(&mut self.events))
    }

    /// Connects from a documentation address that names the connection's sequence number.
    fn connect(&mut self) -> ClientId {
        let n = self.server.clients().count() + 1;
        self.connect_from(peer(n))
            .expect("the server has room for this client")
    }

    fn receive(&mut self, id: ClientId, bytes: &[u8]) {
        self.server
            .receive(id, bytes, &mut record(&mut self.events));
    }

    fn disconnect(&mut self, id: ClientId, why: Disconnect) {
        self.server
            .disconnect(id, why, &mut record(&mut self.events));
    }

    fn console(&mut self, line: &str) -> Option<BoardCommand> {
        self.server.console(line, &mut record(&mut self.events))
    }

    fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn ids(&self) -> Vec<u8> {
        self.server.clients().map(ClientId::get).collect()
    }
}

fn id(n: u8) -> ClientId {
    ClientId::new(n).expect("a valid client id")
}

fn peer(n: usize) -> SocketAddr {
    format!("192.0.2.{n}:{}", 40000 + n).parse().unwrap()
}

/// The same line sent to each of `to`, in order.
fn broadcast(to: &[u8], line: &str) -> Vec<Event> {
    to.iter().map(|&n| send(n, line)).collect()
}

fn concat(parts: impl IntoIterator<Item = Vec<Event>>) -> Vec<Event> {
    parts.into_iter().flatten().collect()
}

#[test]
fn ids_are_the_smallest_free_and_stable() {
    let mut h = Harness::new();
    let ids: Vec<u8> = (0..3).map(|_| h.connect().get()).collect();
    assert_eq!(ids, [1, 2, 3]);

    h.disconnect(id(2), Disconnect::Closed);
    assert_eq!(h.ids(), [1, 3]);
    assert_eq!(h.connect_from(peer(4)), Ok(id(2)));
    assert_eq!(h.connect_from(peer(5)), Ok(id(4)));
    assert_eq!(h.ids(), [1, 2, 3, 4]);

    // Client 3 kept its number through all of that.
    h.take();
    h.receive(id(3), b"still 3\n");
    assert_eq!(h.take(), broadcast(&[1, 2, 3, 4], "Client 3: still 3\r\n"));
}

#[test]
fn connected_goes_to_everyone_including_the_newcomer() {
    let mut h = Harness::new();
    assert_eq!(h.connect().get(), 1);
    assert_eq!(
        h.take(),
        [
            log("client 1 connected from 192.0.2.1:40001"),
            send(1, "Client 1 connected\r\n"),
        ]
    );
    h.connect();
    h.take();
    assert_eq!(h.connect().get(), 3);
    assert_eq!(
        h.take(),
        concat([
            vec![log("client 3 connected from 192.0.2.3:40003")],
            broadcast(&[1, 2, 3], "Client 3 connected\r\n"),
        ])
    );
}

#[test]
fn a_line_is_sent_to_every_client_including_the_sender() {
    let mut h = Harness::with_clients(3);
    h.receive(id(2), b"hello, world\r\n");
    assert_eq!(
        h.take(),
        broadcast(&[1, 2, 3], "Client 2: hello, world\r\n")
    );
}

#[test]
fn disconnect_tells_the_others_and_closes_the_leaver() {
    let mut h = Harness::with_clients(3);
    h.disconnect(id(2), Disconnect::Closed);
    assert_eq!(
        h.take(),
        concat([
            vec![Close(2), log("client 2 disconnected")],
            broadcast(&[1, 3], "Client 2 disconnected\r\n"),
        ])
    );
    // A second report of the same close changes nothing.
    h.disconnect(id(2), Disconnect::Closed);
    assert_eq!(h.take(), []);
    assert_eq!(h.ids(), [1, 3]);
}

#[test]
fn lab_policy_client_2_may_not_switch_the_led_on() {
    let mut h = Harness::with_clients(2);
    h.receive(id(2), b"on\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 2: on\r\n"),
            vec![send(2, "denied: only Client 1 may switch the LED on\r\n")],
        ])
    );
    assert!(!h.server.led());
}

#[test]
fn lab_policy_client_1_switches_the_led_on() {
    let mut h = Harness::with_clients(2);
    h.receive(id(1), b"on\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: on\r\n"),
            vec![Led(true), log("led on")],
            broadcast(&[1, 2], "LED on (Client 1)\r\n"),
        ])
    );
    assert!(h.server.led());
}

#[test]
fn lab_policy_client_1_may_not_switch_the_led_off() {
    let mut h = Harness::with_clients(2);
    h.receive(id(1), b"on\n");
    h.take();
    h.receive(id(1), b"off\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: off\r\n"),
            vec![send(1, "denied: only Client 2 may switch the LED off\r\n")],
        ])
    );
    assert!(h.server.led());
}

#[test]
fn lab_policy_client_2_switches_the_led_off() {
    let mut h = Harness::with_clients(3);
    h.receive(id(1), b"on\n");
    h.take();
    h.receive(id(2), b"off\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2, 3], "Client 2: off\r\n"),
            vec![Led(false), log("led off")],
            broadcast(&[1, 2, 3], "LED off (Client 2)\r\n"),
        ])
    );
    assert!(!h.server.led());
    // Client 3 may do neither.
    h.receive(id(3), b"on\n");
    assert_eq!(
        h.take()[3..],
        [send(3, "denied: only Client 1 may switch the LED on\r\n")]
    );
    h.receive(id(3), b"off\n");
    assert_eq!(
        h.take()[3..],
        [send(3, "denied: only Client 2 may switch the LED off\r\n")]
    );
}

#[test]
fn led_commands_are_trimmed_and_case_insensitive() {
    let mut h = Harness::with_clients(2);
    h.receive(id(1), b" ON \r\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1:  ON \r\n"),
            vec![Led(true), log("led on")],
            broadcast(&[1, 2], "LED on (Client 1)\r\n"),
        ])
    );
    h.receive(id(2), b"\toFf  \n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 2: oFf  \r\n"),
            vec![Led(false), log("led off")],
            broadcast(&[1, 2], "LED off (Client 2)\r\n"),
        ])
    );
    // Only a whole line is a command.
    h.receive(id(1), b"on please\nturn on\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: on please\r\n"),
            broadcast(&[1, 2], "Client 1: turn on\r\n"),
        ])
    );
    assert!(!h.server.led());
}

#[test]
fn policy_open_lets_any_client_switch() {
    let mut h = Harness::with_clients(3);
    assert_eq!(h.console("policy open"), None);
    assert_eq!(h.take(), [log("policy open")]);
    assert_eq!(h.server.policy(), Policy::Open);

    h.receive(id(3), b"on\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2, 3], "Client 3: on\r\n"),
            vec![Led(true), log("led on")],
            broadcast(&[1, 2, 3], "LED on (Client 3)\r\n"),
        ])
    );
    h.receive(id(3), b"off\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2, 3], "Client 3: off\r\n"),
            vec![Led(false), log("led off")],
            broadcast(&[1, 2, 3], "LED off (Client 3)\r\n"),
        ])
    );

    // And back to the lab rules.
    h.console("policy lab");
    assert_eq!(h.take(), [log("policy lab")]);
    h.receive(id(3), b"on\n");
    assert_eq!(
        h.take()[3..],
        [send(3, "denied: only Client 1 may switch the LED on\r\n")]
    );
}

#[test]
fn status_goes_to_the_sender_only() {
    let mut h = Harness::with_clients(3);
    h.receive(id(1), b"on\n");
    h.take();
    h.receive(id(2), b"status\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2, 3], "Client 2: status\r\n"),
            vec![send(2, "LED is on; clients: 1,2,3; policy lab\r\n")],
        ])
    );

    h.console("policy open");
    h.disconnect(id(2), Disconnect::Closed);
    h.receive(id(1), b"off\n");
    h.take();
    h.receive(id(3), b" Status\r\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 3], "Client 3:  Status\r\n"),
            vec![send(3, "LED is off; clients: 1,3; policy open\r\n")],
        ])
    );
}

#[test]
fn help_goes_to_the_sender_only() {
    let mut h = Harness::with_clients(2);
    h.receive(id(2), b"help\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 2: help\r\n"),
            vec![
                send(2, "commands: on, off (switch the LED), status, help\r\n"),
                send(
                    2,
                    "policy lab: only Client 1 may switch the LED on, only Client 2 may switch it off\r\n",
                ),
            ],
        ])
    );
    h.console("policy open");
    h.take();
    h.receive(id(1), b"HELP\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: HELP\r\n"),
            vec![
                send(1, "commands: on, off (switch the LED), status, help\r\n"),
                send(1, "policy open: any client may switch the LED\r\n"),
            ],
        ])
    );
}

#[test]
fn the_ninth_client_is_refused() {
    assert_eq!(MAX_CLIENTS, 8);
    assert_eq!(Full::LINE, b"server full (8 clients)\r\n");
    let mut h = Harness::with_clients(8);
    assert_eq!(h.connect_from(peer(9)), Err(Full));
    assert_eq!(
        h.take(),
        [log(
            "connection from 192.0.2.9:40009 refused: server full (8 clients)"
        )]
    );
    assert_eq!(h.ids(), [1, 2, 3, 4, 5, 6, 7, 8]);

    // Once one leaves, the next one gets its place.
    h.disconnect(id(5), Disconnect::Closed);
    assert_eq!(h.connect_from(peer(10)), Ok(id(5)));
}

#[test]
fn a_long_line_is_cut_and_the_sender_told() {
    let mut h = Harness::with_clients(2);
    let long: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    h.receive(id(1), format!("{long}\r\n").as_bytes());
    let relayed = format!("Client 1: {}\r\n", &long[..MAX_LINE]);
    assert_eq!(relayed.len(), "Client 1: ".len() + 256 + 2);
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], &relayed),
            vec![send(1, "notice: line cut to 256 bytes\r\n")],
        ])
    );

    // 256 bytes exactly are not cut.
    h.receive(id(2), format!("{}\n", &long[..MAX_LINE]).as_bytes());
    assert_eq!(h.take(), broadcast(&[1, 2], &relayed.replace("1:", "2:")));
}

#[test]
fn escape_sequences_are_not_relayed() {
    let mut h = Harness::with_clients(2);
    let hostile = concat!(
        "\x1b[2J",                      // clear screen
        "\x1b[H",                       // cursor home
        "a",                            //
        "\x1b]52;c;aGFja2VkCg==\x07",   // OSC 52: write the clipboard, BEL-terminated
        "b",                            //
        "\x1b]52;c;aGFja2VkCg==\x1b\\", // the same, ST-terminated
        "c",                            //
        "\x1bP1$r0m\x1b\\",             // DCS
        "d",                            //
        "\x1b[1;31me\x1b[0m",           // CSI colours
        "\x1b]0;title\x07",             // OSC window title
        "\x1b(0f\x1b(B",                // charset switch
        "\x1bcg",                       // full reset
        "\n",
    );
    h.receive(id(1), hostile.as_bytes());
    assert_eq!(h.take(), broadcast(&[1, 2], "Client 1: abcdefg\r\n"));

    // An escape sequence left open at the line end does not swallow the next line.
    h.receive(id(1), b"x\x1b]52;c;aGFja2Vk\ny\x1b[31\nz\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: x\r\n"),
            broadcast(&[1, 2], "Client 1: y\r\n"),
            broadcast(&[1, 2], "Client 1: z\r\n"),
        ])
    );
}

#[test]
fn control_bytes_are_not_relayed() {
    let mut h = Harness::with_clients(2);
    // NUL, BEL, BS, TAB, VT, FF, CR, DEL; C1 NEL and CSI as UTF-8 and as raw 8-bit bytes.
    h.receive(
        id(2),
        b"a\x00b\x07c\x08d\te\x0bf\x0cg\rh\x7fi\xc2\x85j\xc2\x9bk\x85l\x9bm\n",
    );
    assert_eq!(h.take(), broadcast(&[1, 2], "Client 2: abcdefghijklm\r\n"));
}

#[test]
fn invalid_utf8_becomes_the_replacement_character() {
    let mut h = Harness::with_clients(2);
    h.receive(id(1), b"caf\xe9 \xff\xfe ok \xe2\x82\n");
    assert_eq!(
        h.take(),
        broadcast(
            &[1, 2],
            "Client 1: caf\u{fffd} \u{fffd}\u{fffd} ok \u{fffd}\r\n"
        )
    );
    // Valid multi-byte text passes unchanged.
    h.receive(id(2), "grüße, €, 🦀\n".as_bytes());
    assert_eq!(h.take(), broadcast(&[1, 2], "Client 2: grüße, €, 🦀\r\n"));
}

#[test]
fn crlf_and_lf_both_end_lines() {
    let mut h = Harness::with_clients(1);
    h.receive(id(1), b"one\r\ntwo\nthree\r\n\n");
    assert_eq!(
        h.take(),
        [
            send(1, "Client 1: one\r\n"),
            send(1, "Client 1: two\r\n"),
            send(1, "Client 1: three\r\n"),
            send(1, "Client 1: \r\n"),
        ]
    );
}

#[test]
fn a_line_split_over_many_reads() {
    let mut h = Harness::with_clients(2);
    let line = "héllo \x1b[1mwörld\x1b[0m €\r\n".as_bytes();
    for byte in &line[..line.len() - 1] {
        h.receive(id(1), std::slice::from_ref(byte));
        assert_eq!(h.take(), [], "nothing is sent before the line end");
    }
    h.receive(id(1), b"\n");
    assert_eq!(h.take(), broadcast(&[1, 2], "Client 1: héllo wörld €\r\n"));
}

#[test]
fn many_lines_in_one_read() {
    let mut h = Harness::with_clients(2);
    h.receive(id(1), b"first\nsecond\r\non\nstatus\nlast, unfinished");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: first\r\n"),
            broadcast(&[1, 2], "Client 1: second\r\n"),
            broadcast(&[1, 2], "Client 1: on\r\n"),
            vec![Led(true), log("led on")],
            broadcast(&[1, 2], "LED on (Client 1)\r\n"),
            broadcast(&[1, 2], "Client 1: status\r\n"),
            vec![send(1, "LED is on; clients: 1,2; policy lab\r\n")],
        ])
    );
    h.receive(id(1), b" line\n");
    assert_eq!(
        h.take(),
        broadcast(&[1, 2], "Client 1: last, unfinished line\r\n")
    );
}

#[test]
fn disconnect_mid_line_discards_the_partial_line() {
    let mut h = Harness::with_clients(2);
    h.receive(id(1), b"half a li");
    h.receive(id(2), b"an open \x1b]52;c;");
    assert_eq!(h.take(), []);
    h.disconnect(id(1), Disconnect::Closed);
    h.disconnect(id(2), Disconnect::Closed);
    h.take();

    assert_eq!(h.connect_from(peer(3)), Ok(id(1)));
    assert_eq!(h.connect_from(peer(4)), Ok(id(2)));
    h.take();
    h.receive(id(1), b"fresh\n");
    h.receive(id(2), b"clean\n");
    assert_eq!(
        h.take(),
        concat([
            broadcast(&[1, 2], "Client 1: fresh\r\n"),
            broadcast(&[1, 2], "Client 2: clean\r\n"),
        ])
    );
}

#[test]
fn a_too_slow_client_is_told_then_closed_and_logged() {
    let mut h = Harness::with_clients(3);
    h.disconnect(id(2), Disconnect::TooSlow);
    assert_eq!(
        h.take(),
        concat([
            vec![
                send(2, "notice: disconnected: you stopped reading\r\n"),
                Close(2),
                log("client 2 stopped reading; closing its connection"),
                log("client 2 disconnected"),
            ],
            broadcast(&[1, 3], "Client 2 disconnected\r\n"),
        ])
    );
    assert_eq!(h.ids(), [1, 3]);
}

#[test]
fn events_for_unknown_clients_do_nothing() {
    assert_eq!(ClientId::new(0), None);
    assert_eq!(ClientId::new(9), None);
    assert_eq!(ClientId::new(255), None);

    let mut h = Harness::with_clients(2);
    h.disconnect(id(2), Disconnect::Closed);
    h.take();
    for n in [2, 3, 8] {
        h.receive(id(n), b"ghost\non\nstatus\n");
        h.disconnect(id(n), Disconnect::TooSlow);
    }
    assert_eq!(h.take(), []);
    assert_eq!(h.ids(), [1]);
    assert!(!h.server.led());
}

#[test]
fn console_status_logs_the_state_and_every_client() {
    let mut h = Harness::new();
    h.connect_from(peer(1)).unwrap();
    h.connect_from(peer(2)).unwrap();
    h.connect_from("[2001:db8::3]:40003".parse().unwrap())
        .unwrap();
    h.disconnect(id(2), Disconnect::Closed);
    h.receive(id(1), b"on\n");
    h.take();
    // The address is the board's to print.
    assert_eq!(h.console("status"), Some(BoardCommand::Address));
    assert_eq!(
        h.take(),
        [
            log("LED is on; clients: 1,3; policy lab"),
            log("client 1 at 192.0.2.1:40001"),
            log("client 3 at [2001:db8::3]:40003"),
        ]
    );

    let mut empty = Harness::new();
    assert_eq!(empty.console("  STATUS  "), Some(BoardCommand::Address));
    assert_eq!(empty.take(), [log("LED is off; clients: none; policy lab")]);
}

#[test]
fn console_help_logs_the_commands() {
    let mut h = Harness::with_clients(1);
    assert_eq!(h.console("help"), None);
    let expected: Vec<Event> = CONSOLE_HELP.iter().map(|line| log(line)).collect();
    assert_eq!(h.take(), expected);
    // Every command the console takes is in the help.
    for command in [
        "wifi", "ip", "status", "policy", "led", "panic", "reboot", "help",
    ] {
        assert!(
            CONSOLE_HELP.iter().any(|line| line.contains(command)),
            "{command} is missing from the help"
        );
    }
}

#[test]
fn console_board_commands_are_returned_not_carried_out() {
    let mut h = Harness::with_clients(2);
    assert_eq!(
        h.console("wifi \"lab net\" secret123"),
        Some(BoardCommand::Wifi(WifiCredentials {
            ssid: "lab net".try_into().unwrap(),
            password: "secret123".try_into().unwrap(),
        }))
    );
    assert_eq!(
        h.console("led 8 active-low"),
        Some(BoardCommand::Led(LedSetting::Gpio(LedPin {
            pin: 8,
            active_low: true,
        })))
    );
    assert_eq!(
        h.console("led rgb"),
        Some(BoardCommand::Led(LedSetting::Rgb))
    );
    assert_eq!(h.console("reboot"), Some(BoardCommand::Reboot));
    assert_eq!(h.console("panic"), Some(BoardCommand::Panic));
    assert_eq!(h.console("ip"), Some(BoardCommand::Address));
    // Nothing was logged (so no password either), sent, switched or closed.
    assert_eq!(h.take(), []);
    assert!(!h.server.led());
    assert_eq!(h.ids(), [1, 2]);
}

#[test]
fn console_errors_are_logged_with_their_message() {
    let mut h = Harness::with_clients(1);
    let cases = [
        (
            "flash now",
            "unknown command \"flash\"; type help for the list",
        ),
        (
            "policy closed",
            "policy must be lab or open, e.g. policy open",
        ),
        ("policy", "usage: policy lab|open"),
        (
            "wifi net short",
            "the Wi-Fi password must be 8 to 64 characters, or \"\" for an open network",
        ),
        ("wifi \"open quote", "missing closing quote (\")"),
        (
            "led eight",
            "the LED pin must be a GPIO number, e.g. led 8 (or led rgb)",
        ),
        ("status please", "usage: status"),
    ];
    for (line, message) in cases {
        assert_eq!(h.console(line), None, "{line}");
        assert_eq!(h.take(), [log(message)], "{line}");
    }
    // A blank line is no error worth printing.
    assert_eq!(h.console("   "), None);
    assert_eq!(h.take(), []);
    assert_eq!(h.server.policy(), Policy::Lab);
}

#[test]
fn a_thousand_connect_disconnect_cycles_leave_no_stale_ids() {
    let mut h = Harness::new();
    // A fixed pseudo-random sequence (xorshift) picks how many join and who leaves first.
    let mut state: u32 = 0x9e37_79b9;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for cycle in 0..1000 {
        let joining = 1 + next() as usize % MAX_CLIENTS;
        for _ in 0..joining {
            let expected = (1..=MAX_CLIENTS as u8)
                .find(|n| !h.ids().contains(n))
                .unwrap();
            assert_eq!(h.connect_from(peer(cycle % 200)), Ok(id(expected)));
        }
        // Half way through the cycle, the clients leave in a scrambled order.
        let mut connected = h.ids();
        while !connected.is_empty() {
            let leaver = connected.remove(next() as usize % connected.len());
            h.disconnect(id(leaver), Disconnect::Closed);
            assert_eq!(h.ids(), connected);
        }
        h.take();
    }
    assert_eq!(h.ids(), Vec::<u8>::new());
    assert_eq!(h.connect_from(peer(1)), Ok(id(1)));
    assert_eq!(
        h.take(),
        [
            log("client 1 connected from 192.0.2.1:40001"),
            send(1, "Client 1 connected\r\n"),
        ]
    );
}

#[test]
fn a_megabyte_without_newline_keeps_the_server_healthy() {
    let flood = vec![b'x'; 1 << 20];
    let relayed = format!("Client 1: {}\r\n", "x".repeat(MAX_LINE));
    // The flood arrives in one read and in 64 KiB reads; both must behave alike.
    for read_size in [flood.len(), 1 << 16] {
        let mut h = Harness::with_clients(2);
        for read in flood.chunks(read_size) {
            h.receive(id(1), read);
        }
        assert_eq!(h.take(), []);

        h.receive(id(2), b"still here\n");
        assert_eq!(h.take(), broadcast(&[1, 2], "Client 2: still here\r\n"));

        h.receive(id(1), b"\nnext\n");
        assert_eq!(
            h.take(),
            concat([
                broadcast(&[1, 2], &relayed),
                vec![send(1, "notice: line cut to 256 bytes\r\n")],
                broadcast(&[1, 2], "Client 1: next\r\n"),
            ]),
            "reads of {read_size} bytes"
        );
    }
}
