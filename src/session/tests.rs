//! The session's policy, driven with plain events and instants: no IO, no clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;
use crate::serial::StyledLine;

fn board(panes: usize) -> SessionConfig {
    SessionConfig {
        panes,
        server: Server::Board,
        wifi: None,
        led: None,
        flashed: false,
        ip_timeout: None,
        any_address: false,
    }
}

fn wifi() -> WifiCredentials {
    WifiCredentials {
        ssid: "lab net".to_owned(),
        password: "secret".to_owned(),
    }
}

fn address(ip: Option<[u8; 4]>, port: Option<u16>) -> Event {
    Event::Serial(SerialEvent::Address(BoardAddress {
        ip: ip.map(Ipv4Addr::from),
        port,
    }))
}

fn console(text: &str) -> Event {
    let line = StyledLine::new(text, Default::default());
    Event::Serial(SerialEvent::Output(ConsoleOutput::Line(line)))
}

fn open(id: PaneId, host: &str, port: u16) -> Do {
    Do::OpenPane {
        id,
        host: host.to_owned(),
        port,
    }
}

fn send(id: PaneId, text: &str) -> Do {
    Do::Pane(id, PaneCommand::Send(text.to_owned()))
}

fn retarget(id: PaneId, host: &str, port: u16) -> Do {
    Do::Pane(
        id,
        PaneCommand::Retarget {
            host: host.to_owned(),
            port,
        },
    )
}

/// The server's greeting: the pane is its client now.
fn greeted(id: PaneId) -> Event {
    let Event::Serial(SerialEvent::Output(output)) = console(&format!("Client {id} connected"))
    else {
        unreachable!()
    };
    Event::Chat(id, ChatEvent::Output(output))
}

fn connected(id: PaneId) -> Event {
    Event::Chat(
        id,
        ChatEvent::Connected {
            addr: "127.0.0.1:5000".into(),
        },
    )
}

fn closed(id: PaneId) -> Event {
    Event::Chat(id, ChatEvent::Closed)
}

#[test]
fn the_address_is_merged_from_separate_lines_and_panes_open_in_order() {
    let t0 = Instant::now();
    let (mut session, start) = Session::start(board(2), t0);
    assert_eq!(start, []);
    // The port first (e.g. "listening on port 7000"), then the IP: one address.
    assert_eq!(session.event(&address(None, Some(7000)), t0), []);
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 7]), None), t0),
        [open(1, "192.168.4.7", 7000), open(2, "192.168.4.7", 7000)]
    );
    // A new IP keeps the port; the open panes follow it, in pane order.
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 8]), None), t0),
        [
            retarget(1, "192.168.4.8", 7000),
            retarget(2, "192.168.4.8", 7000)
        ]
    );
    // The same address again changes nothing.
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 8]), None), t0),
        []
    );
    assert_eq!(
        session.address(),
        BoardAddress {
            ip: Some(Ipv4Addr::new(192, 168, 4, 8)),
            port: Some(7000)
        }
    );
}

#[test]
fn an_ip_without_a_port_waits_a_grace_then_takes_5000() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    assert_eq!(session.event(&address(Some([127, 0, 0, 1]), None), t0), []);
    assert_eq!(session.next_deadline(), Some(t0 + PORT_GRACE));
    assert_eq!(session.tick(t0 + PORT_GRACE / 2), []);
    assert_eq!(
        session.tick(t0 + PORT_GRACE),
        [open(1, "127.0.0.1", espchat_core::PORT)]
    );
    assert_eq!(session.next_deadline(), None);
}

#[test]
fn a_port_within_the_grace_is_used_without_trying_5000_first() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    session.event(&address(Some([127, 0, 0, 1]), None), t0);
    let later = t0 + PORT_GRACE / 2;
    assert_eq!(
        session.event(&address(None, Some(6000)), later),
        [open(1, "127.0.0.1", 6000)]
    );
    assert_eq!(session.tick(t0 + PORT_GRACE * 2), []);
}

#[test]
fn wifi_is_provisioned_once_after_a_flash() {
    let t0 = Instant::now();
    let config = SessionConfig {
        wifi: Some(wifi()),
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    // Not flashed by this session yet: the firmware's prompt is left alone.
    assert_eq!(session.event(&console("espchat: ready"), t0), []);
    // A failed flash provisions nothing.
    session.event(&Event::FlashDone(Err("no board".to_owned())), t0);
    assert_eq!(session.event(&console("espchat: ready"), t0), []);
    assert_eq!(session.command(UserCommand::Flash, t0), [Do::Flash]);
    // A second flash key while flashing does nothing.
    assert_eq!(session.command(UserCommand::Flash, t0), []);
    assert_eq!(
        session.event(&Event::FlashDone(Ok((1024, 1.0))), t0),
        [Do::OpenConsole]
    );
    // Boot noise before the firmware reads its console: nothing yet.
    assert_eq!(session.event(&console("ESP-ROM:esp32c3-api1"), t0), []);
    assert_eq!(
        session.event(&console("I (42) espchat: no wifi credentials"), t0),
        [
            Do::Serial(SerialCommand::FreshLine(wifi().console_command())),
            Do::Notice(Notice::ProvisionSent {
                ssid: "lab net".to_owned()
            })
        ]
    );
    assert_eq!(session.event(&console("espchat: ready"), t0), []);
}

#[test]
fn the_led_is_stored_before_the_network_and_alone_too() {
    let t0 = Instant::now();
    let supermini = LedSetting::Gpio(espchat_core::LedPin {
        pin: 8,
        active_low: true,
    });
    let config = SessionConfig {
        wifi: Some(wifi()),
        led: Some(supermini),
        flashed: true,
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    assert_eq!(
        session.event(&console("I (42) espchat: no wifi credentials"), t0),
        [
            Do::Serial(SerialCommand::FreshLine("led 8 active-low".to_owned())),
            Do::Serial(SerialCommand::FreshLine(wifi().console_command())),
            Do::Notice(Notice::ProvisionSent {
                ssid: "lab net".to_owned()
            })
        ]
    );
    // Without a network to store, the LED alone; once.
    let config = SessionConfig {
        led: Some(LedSetting::Rgb),
        flashed: true,
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    assert_eq!(
        session.event(&console("espchat: ready"), t0),
        [Do::Serial(SerialCommand::FreshLine("led rgb".to_owned()))]
    );
    assert_eq!(session.event(&console("espchat: ready"), t0), []);
}

#[test]
fn line_mode_provisions_at_the_first_prompt_after_its_flash() {
    let t0 = Instant::now();
    let config = SessionConfig {
        wifi: Some(wifi()),
        flashed: true,
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    let dos = session.event(&console("espchat: ready"), t0);
    assert!(matches!(
        &dos[..],
        [Do::Serial(SerialCommand::FreshLine(_)), Do::Notice(_)]
    ));
}

#[test]
fn lines_typed_before_the_address_are_held_and_delivered_in_order() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(2), t0);
    assert_eq!(session.command(UserCommand::Send(2, "b".into()), t0), []);
    assert_eq!(session.command(UserCommand::Send(1, "a".into()), t0), []);
    assert_eq!(session.command(UserCommand::SendAll("c".into()), t0), []);
    assert_eq!(
        session.event(&address(Some([127, 0, 0, 1]), Some(5000)), t0),
        [
            open(1, "127.0.0.1", 5000),
            open(2, "127.0.0.1", 5000),
            send(2, "b"),
            send(1, "a"),
            send(1, "c"),
            send(2, "c"),
        ]
    );
    // Once open, lines go straight to the pane.
    assert_eq!(
        session.command(UserCommand::Send(1, "d".into()), t0),
        [send(1, "d")]
    );
}

#[test]
fn held_lines_are_capped_and_the_dropped_one_is_reported() {
    assert!(HELD_FULL.contains(&QUEUE_LINES.to_string()));
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    for n in 0..QUEUE_LINES {
        assert_eq!(session.command(UserCommand::Send(1, n.to_string()), t0), []);
    }
    assert_eq!(
        session.command(UserCommand::Send(1, "one too many".into()), t0),
        [Do::Report(
            1,
            ChatEvent::Dropped {
                line: "one too many".into(),
                reason: HELD_FULL
            }
        )]
    );
}

#[test]
fn after_a_reboot_panes_keep_their_numbers_and_new_ones_take_the_next() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(2), t0);
    session.event(&address(Some([192, 168, 4, 7]), Some(5000)), t0);
    assert_eq!(
        session.command(UserCommand::ClosePane(2), t0),
        [Do::Pane(2, PaneCommand::Close)]
    );
    session.event(&closed(2), t0);
    // The board rebooted and got another IP: pane 1 follows it, pane 2 is gone.
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 9]), None), t0),
        [retarget(1, "192.168.4.9", 5000)]
    );
    // A new pane is 3 (never a reused 2), opened at once to the current address.
    assert_eq!(
        session.command(UserCommand::OpenPane, t0),
        [Do::ShowPane(3), open(3, "192.168.4.9", 5000)]
    );
    assert_eq!(session.pane_ids().collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn a_pane_opened_before_the_address_waits_for_it() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    assert_eq!(
        session.command(UserCommand::OpenPane, t0),
        [Do::ShowPane(2)]
    );
    session.command(UserCommand::Send(2, "early".into()), t0);
    assert_eq!(
        session.event(&address(Some([127, 0, 0, 1]), Some(5000)), t0),
        [
            open(1, "127.0.0.1", 5000),
            open(2, "127.0.0.1", 5000),
            send(2, "early")
        ]
    );
}

#[test]
fn end_of_input_before_the_address_delivers_once_it_comes() {
    let t0 = Instant::now();
    let config = SessionConfig {
        ip_timeout: Some(Duration::from_secs(60)),
        ..board(2)
    };
    let (mut session, _) = Session::start(config, t0);
    session.command(UserCommand::Send(1, "on".into()), t0);
    session.command(UserCommand::Send(2, "off".into()), t0);
    // Input ends at once (a script's printf): nothing is closed, nothing dropped.
    assert_eq!(session.command(UserCommand::Finish, t0), []);
    let t1 = t0 + Duration::from_secs(20);
    assert_eq!(session.tick(t1), []);
    assert_eq!(
        session.event(&address(Some([127, 0, 0, 1]), Some(5000)), t1),
        [
            open(1, "127.0.0.1", 5000),
            open(2, "127.0.0.1", 5000),
            send(1, "on"),
            send(2, "off"),
        ]
    );
    // The close deadline counts from the delivery, not from the end of input.
    assert_eq!(session.next_deadline(), Some(t1 + CLOSE_DEADLINE));
    assert_eq!(session.event(&greeted(1), t1), []);
    assert_eq!(
        session.event(&greeted(2), t1),
        [
            Do::Pane(1, PaneCommand::Close),
            Do::Pane(2, PaneCommand::Close)
        ]
    );
    assert_eq!(session.event(&closed(1), t1), []);
    assert_eq!(session.event(&closed(2), t1), [Do::Finished]);
    assert_eq!(session.tick(t1 + CLOSE_DEADLINE), []);
}

#[test]
fn panes_that_do_not_finish_are_given_up_at_the_deadline() {
    let t0 = Instant::now();
    let config = SessionConfig {
        server: Server::Fixed {
            host: "127.0.0.1".into(),
            port: 5000,
        },
        ..board(1)
    };
    let (mut session, start) = Session::start(config, t0);
    assert_eq!(start, [open(1, "127.0.0.1", 5000)]);
    // The pane never gets through to its server.
    assert_eq!(session.command(UserCommand::Finish, t0), []);
    assert_eq!(session.tick(t0 + CLOSE_DEADLINE / 2), []);
    assert_eq!(
        session.tick(t0 + CLOSE_DEADLINE),
        [Do::Notice(Notice::PanesTooSlow), Do::Finished]
    );
}

#[test]
fn a_session_without_panes_finishes_at_once() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(0), t0);
    assert_eq!(session.command(UserCommand::Finish, t0), [Do::Finished]);
}

#[test]
fn finishing_without_an_ip_timeout_reports_held_lines_as_not_sent() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    session.command(UserCommand::Send(1, "hello".into()), t0);
    assert_eq!(
        session.command(UserCommand::Finish, t0),
        [
            Do::Report(
                1,
                ChatEvent::Dropped {
                    line: "hello".into(),
                    reason: CLOSED_EARLY
                }
            ),
            Do::Report(1, ChatEvent::Closed),
            Do::Finished,
        ]
    );
}

#[test]
fn no_address_in_time_fails_with_the_reason_the_console_gave() {
    let t0 = Instant::now();
    let config = SessionConfig {
        ip_timeout: Some(Duration::from_secs(30)),
        ..board(1)
    };
    let (mut session, _) = Session::start(config.clone(), t0);
    assert_eq!(session.tick(t0 + Duration::from_secs(29)), []);
    let dos = session.tick(t0 + Duration::from_secs(30));
    assert!(
        matches!(&dos[..], [Do::Fail(message)] if message.contains("within 30 s")),
        "{dos:?}"
    );

    let (mut session, _) = Session::start(config, t0);
    assert_eq!(
        session.event(&console("espchat: no wifi credentials"), t0),
        [Do::Notice(Notice::NoCredentials)]
    );
    let dos = session.tick(t0 + Duration::from_secs(30));
    assert!(
        matches!(&dos[..], [Do::Fail(message)] if message.contains("--wifi-ssid")),
        "{dos:?}"
    );
}

#[test]
fn a_fixed_server_ignores_the_console_address() {
    let t0 = Instant::now();
    let config = SessionConfig {
        server: Server::Fixed {
            host: "::1".into(),
            port: 7000,
        },
        ..board(2)
    };
    let (mut session, start) = Session::start(config, t0);
    assert_eq!(start, [open(1, "::1", 7000), open(2, "::1", 7000)]);
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 7]), Some(5000)), t0),
        []
    );
    assert_eq!(session.tick(t0 + PORT_GRACE * 2), []);
}

#[test]
fn finishing_waits_until_every_pane_has_tried_its_server() {
    // Pane 1 closing before pane 3 connects would free client number 1 for pane 3.
    let t0 = Instant::now();
    let config = SessionConfig {
        server: Server::Fixed {
            host: "127.0.0.1".into(),
            port: 5000,
        },
        ..board(3)
    };
    let (mut session, _) = Session::start(config, t0);
    session.command(UserCommand::Send(3, "c".into()), t0);
    assert_eq!(session.command(UserCommand::Finish, t0), []);
    assert_eq!(session.event(&greeted(1), t0), []);
    let refused = Event::Chat(
        2,
        ChatEvent::Disconnected {
            reason: "refused".into(),
        },
    );
    assert_eq!(session.event(&refused, t0), []);
    // Connected, but perhaps still in the server's backlog: not a client yet.
    assert_eq!(session.event(&connected(3), t0), []);
    assert_eq!(
        session.event(&greeted(3), t0),
        [
            Do::Pane(1, PaneCommand::Close),
            Do::Pane(2, PaneCommand::Close),
            Do::Pane(3, PaneCommand::Close)
        ]
    );
}

#[test]
fn a_server_that_never_greets_counts_as_accepting_after_a_moment() {
    let t0 = Instant::now();
    let config = SessionConfig {
        server: Server::Fixed {
            host: "127.0.0.1".into(),
            port: 7,
        },
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    assert_eq!(session.command(UserCommand::Finish, t0), []);
    assert_eq!(session.event(&connected(1), t0), []);
    assert_eq!(session.next_deadline(), Some(t0 + ACCEPT_SETTLE));
    assert_eq!(session.tick(t0 + ACCEPT_SETTLE / 2), []);
    assert_eq!(
        session.tick(t0 + ACCEPT_SETTLE),
        [Do::Pane(1, PaneCommand::Close)]
    );
}

#[test]
fn only_local_addresses_are_taken_on_the_consoles_word() {
    for ip in [
        [127, 0, 0, 1],
        [10, 1, 2, 3],
        [172, 16, 0, 1],
        [172, 31, 255, 254],
        [192, 168, 1, 42],
        [169, 254, 3, 4],
        [100, 64, 0, 1],
        [100, 127, 255, 254],
    ] {
        assert!(is_local(Ipv4Addr::from(ip)), "{ip:?}");
    }
    for ip in [
        [8, 8, 8, 8],
        [172, 32, 0, 1],
        [100, 128, 0, 1],
        [192, 169, 0, 1],
        [203, 0, 113, 5],
    ] {
        assert!(!is_local(Ipv4Addr::from(ip)), "{ip:?}");
    }
}

#[test]
fn a_public_address_waits_for_the_users_yes() {
    let t0 = Instant::now();
    let config = SessionConfig {
        ip_timeout: Some(Duration::from_secs(30)),
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    session.command(UserCommand::Send(1, "hi".into()), t0);
    let public = Ipv4Addr::new(203, 0, 113, 5);
    assert_eq!(
        session.event(&address(Some([203, 0, 113, 5]), Some(5000)), t0),
        [Do::Notice(Notice::PublicAddress(public))]
    );
    // Asked once, not at every tick; no deadline left spinning.
    assert_eq!(session.tick(t0 + PORT_GRACE), []);
    assert_eq!(session.next_deadline(), Some(t0 + Duration::from_secs(30)));
    assert_eq!(
        session.command(UserCommand::AllowAddress(public), t0),
        [open(1, "203.0.113.5", 5000), send(1, "hi")]
    );
}

#[test]
fn any_address_connects_to_a_public_one_and_no_answer_says_why() {
    let t0 = Instant::now();
    let config = SessionConfig {
        any_address: true,
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    assert_eq!(
        session.event(&address(Some([203, 0, 113, 5]), Some(5000)), t0),
        [open(1, "203.0.113.5", 5000)]
    );

    let config = SessionConfig {
        ip_timeout: Some(Duration::from_secs(30)),
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    session.event(&address(Some([203, 0, 113, 5]), Some(5000)), t0);
    let dos = session.tick(t0 + Duration::from_secs(30));
    assert!(
        matches!(&dos[..], [Do::Fail(message)] if message.contains("--any-address")),
        "{dos:?}"
    );
}

#[test]
fn no_address_from_a_board_that_does_not_boot_blames_the_image() {
    let t0 = Instant::now();
    let config = SessionConfig {
        ip_timeout: Some(Duration::from_secs(30)),
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    session.event(&console("invalid header: 0xffffffff"), t0);
    let dos = session.tick(t0 + Duration::from_secs(30));
    assert!(
        matches!(&dos[..], [Do::Fail(message)]
            if message.contains("\"invalid header: 0xffffffff\"") && !message.contains("password")),
        "{dos:?}"
    );
}

fn opened() -> Event {
    Event::Serial(SerialEvent::Opened {
        path: "/dev/ttyACM0".into(),
        baud: 115_200,
    })
}

fn ask_address() -> Do {
    Do::Serial(SerialCommand::FreshLine("ip".to_owned()))
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_board_that_booted_before_the_console_opened_is_asked_for_its_address_once() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    session.event(&opened(), t0);
    // Nothing yet says the board runs our firmware: nothing to ask.
    assert_eq!(session.next_deadline(), None);
    assert_eq!(session.tick(t0 + ASK_ADDRESS_QUIET * 10), []);
    // A chat client arrives: our firmware says so, and not where it listens.
    let t1 = t0 + Duration::from_secs(30);
    let line = console("I (86400) espchat: client 1 connected from 127.0.0.1:40001");
    assert_eq!(session.event(&line, t1), []);
    assert_eq!(session.next_deadline(), Some(t1 + ASK_ADDRESS_QUIET));
    assert_eq!(session.tick(t1 + ASK_ADDRESS_QUIET - MS), []);
    assert_eq!(session.tick(t1 + ASK_ADDRESS_QUIET), [ask_address()]);
    // Once: a board that does not answer is not asked again.
    assert_eq!(session.next_deadline(), None);
    assert_eq!(
        session.event(&console("espchat: client 1 disconnected"), t1),
        []
    );
    assert_eq!(session.tick(t1 + ASK_ADDRESS_QUIET * 10), []);
    // The answer opens the panes as a boot log would have.
    assert_eq!(
        session.event(&address(Some([127, 0, 0, 1]), Some(40000)), t1),
        [open(1, "127.0.0.1", 40000)]
    );
}

#[test]
fn a_booting_board_is_given_the_quiet_to_say_its_address_itself() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    session.event(&opened(), t0);
    session.event(&console("I (30) espchat: espchat 0.1.0 on ESP32-C3"), t0);
    // Boot output goes on: each line moves the question back.
    let t1 = t0 + ASK_ADDRESS_QUIET - MS;
    session.event(&console("I (2000) espchat: wifi connecting to \"lab\""), t1);
    assert_eq!(session.tick(t0 + ASK_ADDRESS_QUIET), []);
    assert_eq!(session.next_deadline(), Some(t1 + ASK_ADDRESS_QUIET));
    // An unfinished line counts as output too.
    let t2 = t1 + ASK_ADDRESS_QUIET - MS;
    let partial = Event::Serial(SerialEvent::Output(ConsoleOutput::Partial(
        StyledLine::new("...", Default::default()),
    )));
    session.event(&partial, t2);
    assert_eq!(session.tick(t1 + ASK_ADDRESS_QUIET), []);
    // Then the address comes by itself: nothing to ask.
    session.event(&address(Some([192, 168, 1, 42]), None), t2);
    assert_eq!(
        session.tick(t2 + ASK_ADDRESS_QUIET * 10),
        [open(1, "192.168.1.42", espchat_core::PORT)]
    );
    assert_eq!(session.next_deadline(), None);
}

#[test]
fn another_firmware_is_never_asked() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    session.event(&opened(), t0);
    session.event(&console("MicroPython v1.22.0 on 2024-01-01; ESP32C3"), t0);
    session.event(&console(">>> "), t0);
    assert_eq!(session.next_deadline(), None);
    assert_eq!(session.tick(t0 + ASK_ADDRESS_QUIET * 10), []);
}

#[test]
fn only_an_open_console_is_asked_and_a_flash_forgets_the_firmware() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(0), t0);
    session.event(&opened(), t0);
    session.event(&console("espchat: client 1 disconnected"), t0);
    let lost = Event::Serial(SerialEvent::Lost {
        path: "/dev/ttyACM0".into(),
        reason: "unplugged".into(),
    });
    session.event(&lost, t0 + MS);
    assert_eq!(session.next_deadline(), None);
    assert_eq!(session.tick(t0 + ASK_ADDRESS_QUIET * 2), []);
    // Back (a native-USB board re-enumerates): the same board, asked after the quiet.
    let t1 = t0 + ASK_ADDRESS_QUIET * 2;
    session.event(&opened(), t1);
    assert_eq!(session.next_deadline(), Some(t1 + ASK_ADDRESS_QUIET));
    // A flash closes the console, and the board may run anything afterwards.
    assert_eq!(session.command(UserCommand::Flash, t1), [Do::Flash]);
    assert_eq!(session.next_deadline(), None);
    session.event(&Event::FlashDone(Ok((1024, 1.0))), t1);
    session.event(&opened(), t1);
    session.event(&console("ESP-ROM:esp32c3-api1-20210207"), t1);
    assert_eq!(session.next_deadline(), None);
    assert_eq!(session.tick(t1 + ASK_ADDRESS_QUIET * 2), []);
}

#[test]
fn the_board_just_given_credentials_is_not_asked() {
    let t0 = Instant::now();
    let config = SessionConfig {
        wifi: Some(wifi()),
        flashed: true,
        ..board(1)
    };
    let (mut session, _) = Session::start(config, t0);
    session.event(&opened(), t0);
    let dos = session.event(&console("espchat: no wifi credentials"), t0);
    assert_eq!(dos.len(), 2, "{dos:?}");
    assert_eq!(session.next_deadline(), None);
    assert_eq!(session.tick(t0 + ASK_ADDRESS_QUIET * 2), []);
}

#[test]
fn a_fixed_server_never_asks_the_board() {
    let t0 = Instant::now();
    let config = SessionConfig {
        server: Server::Fixed {
            host: "::1".into(),
            port: 7000,
        },
        ..board(0)
    };
    let (mut session, _) = Session::start(config, t0);
    session.event(&opened(), t0);
    session.event(&console("espchat: client 1 disconnected"), t0);
    assert_eq!(session.next_deadline(), None);
    assert_eq!(session.tick(t0 + ASK_ADDRESS_QUIET * 2), []);
}

fn accepted(token: u64) -> Event {
    Event::Listen(ListenEvent::Accepted {
        token,
        peer: "127.0.0.1:40000".parse().unwrap(),
    })
}

#[test]
fn an_accepted_connection_is_the_next_pane_and_follows_no_address() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    assert_eq!(
        session.event(&accepted(7), t0),
        [Do::ShowPane(2), Do::AdoptPane { id: 2, token: 7 }]
    );
    // Lines for it go at once: it is connected from the start.
    assert_eq!(
        session.command(UserCommand::Send(2, "hi".into()), t0),
        [send(2, "hi")]
    );
    // The board's address moves the panes that connect to it, not the accepted one.
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 7]), Some(5000)), t0),
        [open(1, "192.168.4.7", 5000)]
    );
    assert_eq!(
        session.event(&address(Some([192, 168, 4, 9]), None), t0),
        [retarget(1, "192.168.4.9", 5000)]
    );
    assert_eq!(session.pane_ids().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn a_connection_accepted_while_finishing_is_closed_not_adopted() {
    let t0 = Instant::now();
    let config = SessionConfig {
        server: Server::None,
        ..board(0)
    };
    let (mut session, start) = Session::start(config, t0);
    assert_eq!(start, []);
    session.event(&accepted(1), t0);
    assert_eq!(
        session.command(UserCommand::Finish, t0),
        [Do::Pane(1, PaneCommand::Close)]
    );
    assert_eq!(session.event(&accepted(2), t0), [Do::DropAccepted(2)]);
    assert_eq!(session.event(&closed(1), t0), [Do::Finished]);
}

#[test]
fn the_listen_pane_speaks_to_every_accepted_connection_and_says_when_there_is_none() {
    let t0 = Instant::now();
    let (mut session, _) = Session::start(board(1), t0);
    assert_eq!(
        session.command(UserCommand::SendAccepted("hello".into()), t0),
        [Do::Report(
            LISTEN_PANE,
            ChatEvent::Dropped {
                line: "hello".into(),
                reason: "nothing has connected yet"
            }
        )]
    );
    session.event(&accepted(1), t0);
    session.event(&accepted(2), t0);
    // Pane 1 connects to the board: it is not one of the listen pane's connections.
    assert_eq!(
        session.command(UserCommand::SendAccepted("hello".into()), t0),
        [send(2, "hello"), send(3, "hello")]
    );
    assert_eq!(
        session.command(UserCommand::StopListening, t0),
        [Do::StopListening]
    );
}
