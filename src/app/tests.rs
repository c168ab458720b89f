//! `App::update` per action, and keys through the mode machine (overlay, search, prefix).

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keys::Action;
use super::*;
use crate::chat::ChatEvent;
use crate::event::Event;
use crate::flash::FlashEvent;
use crate::serial::{BoardAddress, ConsoleOutput, SerialCommand, SerialEvent, StyledLine};

fn app(panes: usize) -> App {
    App::new(AppConfig {
        panes,
        ..AppConfig::default()
    })
}

fn line(text: &str) -> StyledLine {
    StyledLine::new(text, Default::default())
}

fn serial_line(app: &mut App, text: &str) {
    app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
        line(text),
    ))));
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

#[test]
fn focus_next_and_prev_cycle_through_serial_and_panes() {
    let mut app = app(2);
    assert_eq!(app.focus(), Focus::Serial);
    app.update(Action::FocusNext);
    assert_eq!(app.focus(), Focus::Chat(0));
    app.update(Action::FocusNext);
    app.update(Action::FocusNext);
    assert_eq!(app.focus(), Focus::Serial);
    app.update(Action::FocusPrev);
    assert_eq!(app.focus(), Focus::Chat(1));
    let mut alone = super::App::new(AppConfig {
        panes: 0,
        ..AppConfig::default()
    });
    alone.update(Action::FocusNext);
    alone.update(Action::FocusPrev);
    assert_eq!(alone.focus(), Focus::Serial);
}

#[test]
fn focus_pane_by_number() {
    let mut app = app(3);
    app.update(Action::FocusPane(3));
    assert_eq!(app.focus(), Focus::Chat(2));
    app.update(Action::FocusPane(9));
    assert_eq!(app.focus(), Focus::Chat(2));
    app.update(Action::FocusPane(0));
    assert_eq!(app.focus(), Focus::Serial);
}

#[test]
fn new_pane_asks_the_runtime_and_focuses_it_when_opened() {
    let mut app = app(1);
    let commands = app.update(Action::NewPane);
    assert!(matches!(commands[..], [Command::OpenPane]));
    assert_eq!(app.panes().len(), 1);
    app.pane_opened(2);
    app.pane_opened(2);
    assert_eq!(app.panes().len(), 2);
    assert_eq!(app.focus(), Focus::Chat(1));
}

#[test]
fn new_pane_stops_at_the_cap() {
    let mut app = app(MAX_PANES);
    assert!(app.update(Action::NewPane).is_empty());
    assert!(app.hint.is_some());
}

#[test]
fn close_pane_closes_the_focused_chat_only() {
    let mut app = app(2);
    assert!(app.update(Action::ClosePane).is_empty());
    app.update(Action::FocusPane(2));
    let commands = app.update(Action::ClosePane);
    assert!(matches!(commands[..], [Command::ClosePane(2)]));
    assert_eq!(app.panes().len(), 1);
    assert_eq!(app.focus(), Focus::Chat(0));
    app.update(Action::ClosePane);
    assert_eq!(app.focus(), Focus::Serial);
    // Late events of a closed pane are ignored.
    app.handle_event(&Event::Chat(1, ChatEvent::Closed));
}

#[test]
fn flash_starts_once() {
    let mut app = app(0);
    assert!(matches!(app.update(Action::Flash)[..], [Command::Flash]));
    assert!(app.flash_progress().is_some());
    assert!(app.update(Action::Flash).is_empty());
    app.handle_event(&Event::FlashDone(Err("no sync".into())));
    assert!(app.flash_progress().is_none());
    assert_eq!(
        app.serial.get(0).unwrap().line.plain(),
        "flash failed: no sync"
    );
}

#[test]
fn reset_board() {
    assert!(matches!(
        app(0).update(Action::ResetBoard)[..],
        [Command::ResetBoard]
    ));
}

#[test]
fn toggle_timestamps() {
    let mut app = app(0);
    app.update(Action::ToggleTimestamps);
    assert!(app.timestamps);
    app.update(Action::ToggleTimestamps);
    assert!(!app.timestamps);
}

#[test]
fn toggle_hex_tells_the_console() {
    let mut app = app(0);
    assert!(matches!(
        app.update(Action::ToggleHex)[..],
        [Command::Serial(SerialCommand::Hex(true))]
    ));
    assert!(matches!(
        app.update(Action::ToggleHex)[..],
        [Command::Serial(SerialCommand::Hex(false))]
    ));
}

#[test]
fn scroll_up_and_down_by_a_page() {
    let mut app = app(0);
    for i in 0..100 {
        serial_line(&mut app, &i.to_string());
    }
    app.update(Action::ScrollUp);
    let page = app.serial.offset();
    assert!(page > 10, "a page of a 40-line screen, got {page}");
    app.update(Action::ScrollUp);
    assert_eq!(app.serial.offset(), 2 * page);
    app.update(Action::ScrollDown);
    app.update(Action::ScrollDown);
    assert_eq!(app.serial.offset(), 0);
}

#[test]
fn search_types_a_query_then_steps_through_matches() {
    let mut app = app(0);
    for text in ["boot", "got ip: 1.2.3.4", "x", "got ip: 5.6.7.8", "y"] {
        serial_line(&mut app, text);
    }
    app.update(Action::Search);
    for c in "GOT IP".chars() {
        app.update(Action::Insert(c));
    }
    assert_eq!(app.search.as_ref().unwrap().matches, 2);
    app.update(Action::Submit);
    let current = |app: &App| app.search.as_ref().unwrap().current;
    assert_eq!(current(&app), Some(3));
    assert_eq!(app.serial.offset(), 1);
    app.update(Action::SearchNext);
    assert_eq!(current(&app), Some(1));
    app.update(Action::SearchNext);
    assert_eq!(current(&app), Some(1));
    assert_eq!(app.hint.as_deref(), Some("no older match"));
    app.update(Action::SearchPrev);
    assert_eq!(current(&app), Some(3));
    app.update(Action::Cancel);
    assert!(app.search.is_none());
}

#[test]
fn clear_empties_the_focused_pane() {
    let mut app = app(1);
    serial_line(&mut app, "a");
    app.handle_event(&Event::Chat(
        1,
        ChatEvent::Output(ConsoleOutput::Line(line("b"))),
    ));
    app.update(Action::FocusPane(1));
    app.update(Action::Clear);
    assert!(app.panes()[0].scrollback.is_empty());
    assert_eq!(app.serial.len(), 1);
}

#[test]
fn help_opens_and_any_key_closes() {
    let mut app = app(1);
    app.update(Action::Help);
    assert_eq!(app.overlay(), Some(Overlay::Help));
    assert!(app.handle_key(ctrl('q')).is_empty());
    assert_eq!(app.overlay(), None);
    assert!(!app.should_quit());
}

#[test]
fn quit_quits_when_idle() {
    let mut app = app(1);
    assert!(!app.should_quit());
    assert!(app.update(Action::Quit).is_empty());
    assert!(app.should_quit());
}

#[test]
fn quit_asks_first_while_flashing() {
    let mut app = app(1);
    app.update(Action::Flash);
    assert!(app.update(Action::Quit).is_empty());
    assert_eq!(app.overlay(), Some(Overlay::ConfirmQuit));
    assert!(app.handle_key(key(KeyCode::Char('n'))).is_empty());
    assert_eq!(app.overlay(), None);
    assert!(!app.should_quit());
    app.update(Action::Quit);
    assert!(app.handle_key(key(KeyCode::Char('y'))).is_empty());
    assert!(app.should_quit());
}

#[test]
fn a_public_address_is_asked_about_and_only_yes_allows_it() {
    let ip = std::net::Ipv4Addr::new(203, 0, 113, 5);
    let mut app = app(1);
    app.ask_address(ip);
    assert_eq!(app.overlay(), Some(Overlay::ConfirmAddress(ip)));
    // Typing goes to the question, not to the pane.
    assert!(app.handle_key(key(KeyCode::Char('x'))).is_empty());
    assert_eq!(app.overlay(), None);
    assert!(
        app.hint
            .as_deref()
            .is_some_and(|hint| hint.contains("not connecting to 203.0.113.5"))
    );
    app.ask_address(ip);
    assert!(matches!(
        app.handle_key(key(KeyCode::Char('y')))[..],
        [Command::AllowAddress(allowed)] if allowed == ip
    ));
    assert_eq!(app.overlay(), None);
}

#[test]
fn confirm_quit_and_close_overlay() {
    let mut app = app(0);
    app.overlay = Some(Overlay::ConfirmQuit);
    assert!(app.update(Action::ConfirmQuit(false)).is_empty());
    assert!(!app.should_quit());
    app.overlay = Some(Overlay::Help);
    app.update(Action::CloseOverlay);
    assert_eq!(app.overlay(), None);
    assert!(!app.should_quit());
    assert!(app.update(Action::ConfirmQuit(true)).is_empty());
    assert!(app.should_quit());
}

#[test]
fn editing_and_submit_send_the_line_without_echo() {
    let mut app = app(1);
    app.update(Action::FocusPane(1));
    for c in "of".chars() {
        app.update(Action::Insert(c));
    }
    app.update(Action::CursorHome);
    app.update(Action::Insert('x'));
    app.update(Action::DeleteForward);
    app.update(Action::CursorEnd);
    app.update(Action::Insert('f'));
    app.update(Action::CursorLeft);
    app.update(Action::CursorRight);
    app.update(Action::DeleteBack);
    app.update(Action::Insert('f'));
    let commands = app.update(Action::Submit);
    assert!(matches!(&commands[..], [Command::Send(1, line)] if line == "xff"));
    assert!(
        app.panes()[0].scrollback.is_empty(),
        "the server echoes, not us"
    );
    app.update(Action::HistoryPrev);
    assert_eq!(app.panes()[0].input.text(), "xff");
    app.update(Action::HistoryNext);
    assert_eq!(app.panes()[0].input.text(), "");
}

#[test]
fn serial_bytes_go_to_the_board() {
    let mut app = app(0);
    let commands = app.update(Action::SerialBytes(vec![3]));
    assert!(matches!(&commands[..], [Command::Serial(SerialCommand::Bytes(b))] if b == &[3]));
}

#[test]
fn serial_pane_sends_keys_and_the_prefix_reaches_the_app() {
    let mut app = app(1);
    let commands = app.handle_key(ctrl('c'));
    assert!(matches!(&commands[..], [Command::Serial(SerialCommand::Bytes(b))] if b == &[3]));
    // Tab and Ctrl-L are the board's in the serial console.
    let commands = app.handle_key(key(KeyCode::Tab));
    assert!(matches!(&commands[..], [Command::Serial(SerialCommand::Bytes(b))] if b == b"\t"));
    assert_eq!(app.focus(), Focus::Serial);
    assert!(app.handle_key(ctrl('t')).is_empty());
    assert!(app.prefix);
    assert!(app.handle_key(key(KeyCode::Tab)).is_empty());
    assert!(!app.prefix);
    assert_eq!(app.focus(), Focus::Chat(0));
    app.update(Action::FocusPane(0));
    app.handle_key(ctrl('t'));
    let commands = app.handle_key(ctrl('t'));
    assert!(matches!(&commands[..], [Command::Serial(SerialCommand::Bytes(b))] if b == &[0x14]));
    app.handle_key(ctrl('t'));
    assert!(matches!(
        app.handle_key(key(KeyCode::Char('r')))[..],
        [Command::ResetBoard]
    ));
    app.handle_key(ctrl('t'));
    assert!(!app.should_quit());
    assert!(app.handle_key(key(KeyCode::Char('q'))).is_empty());
    assert!(app.should_quit());
}

#[test]
fn chat_keys_type_unless_bound() {
    let mut app = app(1);
    app.update(Action::FocusPane(1));
    app.handle_key(key(KeyCode::Char('?')));
    assert_eq!(app.overlay(), Some(Overlay::Help));
    app.handle_key(key(KeyCode::Esc));
    app.handle_key(key(KeyCode::Char('a')));
    app.handle_key(key(KeyCode::Char('?')));
    app.handle_key(key(KeyCode::Char('/')));
    assert_eq!(app.panes()[0].input.text(), "a?/");
    assert_eq!(app.overlay(), None);
    assert!(app.search.is_none());
    app.handle_key(key(KeyCode::F(7)));
    assert!(app.timestamps);
}

#[test]
fn a_key_clears_the_hint() {
    let mut app = app(0);
    app.hint("press F5 to flash".into());
    assert!(app.hint.is_some());
    app.handle_key(key(KeyCode::F(7)));
    assert!(app.hint.is_none());
}

#[test]
fn an_address_hint_goes_when_the_address_comes() {
    let address = Event::Serial(SerialEvent::Address(BoardAddress {
        ip: Some([192, 168, 1, 42].into()),
        port: None,
    }));
    let mut app = app(2);
    app.hint_until_address("press F6 to reset the board".into());
    app.handle_event(&Event::Serial(SerialEvent::Address(BoardAddress {
        ip: None,
        port: Some(5000),
    })));
    assert!(app.hint.is_some(), "a port alone is not the address");
    app.handle_event(&address);
    assert!(app.hint.is_none());
    // An ordinary hint (the demo's) stays.
    app.hint("type on in pane 1".into());
    app.handle_event(&address);
    assert!(app.hint.is_some());
}

#[test]
fn events_update_board_and_panes() {
    let mut app = app(1);
    let t0 = Instant::now();
    app.tick(t0);
    app.handle_event(&Event::Serial(SerialEvent::Led(true)));
    assert_eq!(app.board().led, Some(true));
    app.handle_event(&Event::Chat(
        1,
        ChatEvent::Reconnecting {
            after: Duration::from_secs(3),
        },
    ));
    app.tick(t0 + Duration::from_millis(1500));
    assert_eq!(
        app.panes()[0].connection_text(app.now),
        "reconnecting in 2s"
    );
    app.handle_event(&Event::Chat(
        1,
        ChatEvent::Output(ConsoleOutput::Partial(line("> "))),
    ));
    assert_eq!(app.panes()[0].scrollback.partial().unwrap().plain(), "> ");
    app.handle_event(&Event::Flash(FlashEvent::Segment {
        address: 0x1000,
        total: 10,
    }));
    app.tick(t0 + Duration::from_millis(2500));
    app.handle_event(&Event::Flash(FlashEvent::Progress {
        address: 0x1000,
        done: 5,
        total: 10,
    }));
    let flash = app.flash_progress().unwrap();
    assert_eq!(flash.rate(), Some(5.0));
    assert_eq!(flash.eta(), Some(Duration::from_secs(1)));
    serial_line(&mut app, "x");
    assert_eq!(
        app.serial.get(0).unwrap().at,
        Some(Duration::from_millis(2500))
    );
}

#[test]
fn key_releases_do_nothing() {
    // Terminals with the kitty keyboard protocol report releases too; only the press counts.
    let release = |mut key: KeyEvent| {
        key.kind = ratatui::crossterm::event::KeyEventKind::Release;
        key
    };
    let mut app = app(1);
    app.update(Action::FocusPane(1));
    assert!(app.handle_key(release(key(KeyCode::Char('a')))).is_empty());
    assert!(app.handle_key(release(ctrl('q'))).is_empty());
    assert_eq!(app.panes()[0].input.text(), "");
    assert!(!app.should_quit());
    app.handle_key(key(KeyCode::Char('a')));
    assert_eq!(app.panes()[0].input.text(), "a");
}

#[test]
fn the_terminal_size_sets_the_page_and_where_clicks_land() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    use ratatui::layout::Size;
    let mut app = app(2);
    for i in 0..200 {
        serial_line(&mut app, &i.to_string());
    }
    app.resize(Size::new(80, 24));
    app.update(Action::ScrollUp);
    let small = app.serial.offset();
    app.update(Action::ScrollDown);
    app.resize(Size::new(120, 60));
    app.update(Action::ScrollUp);
    assert!(app.serial.offset() > small, "{small}");
    app.update(Action::ScrollDown);

    let click = |column, row| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    app.resize(Size::new(80, 24));
    app.handle_mouse(click(100, 30));
    assert_eq!(app.focus(), Focus::Serial, "beyond a small terminal");
    app.resize(Size::new(120, 40));
    app.handle_mouse(click(100, 30));
    assert!(matches!(app.focus(), Focus::Chat(_)));
}

#[test]
fn a_paste_goes_into_the_chat_line_whole_and_enter_sends_each_line() {
    let mut app = app(2);
    app.update(Action::FocusPane(1));
    let long = "x".repeat(4000);
    assert!(app.handle_paste(format!("{long}\r\nstatus\n")).is_empty());
    assert_eq!(app.panes()[0].input.text(), format!("{long}\nstatus"));
    let commands = app.handle_key(key(KeyCode::Enter));
    assert!(
        matches!(&commands[..], [Command::Send(1, a), Command::Send(1, b)] if *a == long && b == "status"),
        "{commands:?}"
    );
    assert!(app.panes()[0].input.is_empty());
}

#[test]
fn a_paste_past_the_line_limit_is_cut_with_a_notice() {
    let mut app = app(1);
    app.update(Action::FocusPane(1));
    app.handle_paste("y".repeat(input::MAX_BYTES + 10));
    assert_eq!(app.panes()[0].input.text().len(), input::MAX_BYTES);
    assert!(
        app.hint.as_deref().is_some_and(|h| h.contains("paste cut")),
        "{:?}",
        app.hint
    );
}

#[test]
fn a_paste_in_the_serial_console_goes_to_the_board_as_typed_keys() {
    let mut app = app(1);
    // After the prefix too: a paste is no command for the app.
    app.handle_key(ctrl('t'));
    let commands = app.handle_paste("wifi lab secret\nstatus\r\n".into());
    assert!(
        matches!(&commands[..], [Command::Serial(SerialCommand::Bytes(b))] if b == b"wifi lab secret\rstatus\r"),
        "{commands:?}"
    );
    assert!(!app.prefix);
    let commands = app.handle_paste("z".repeat(input::MAX_BYTES + 1));
    assert!(
        matches!(&commands[..], [Command::Serial(SerialCommand::Bytes(b))] if b.len() == input::MAX_BYTES)
    );
    assert!(app.hint.as_deref().is_some_and(|h| h.contains("paste cut")));
}

#[test]
fn a_paste_into_the_search_query_is_one_line_and_counts_matches() {
    let mut app = app(1);
    serial_line(&mut app, "got ip: 10.0.0.7");
    app.update(Action::Search);
    app.handle_paste("got\nip".into());
    let search = app.search.as_ref().unwrap();
    assert_eq!(search.query.text(), "got ip");
    assert_eq!(search.matches, 1);
}

#[test]
fn a_paste_answers_no_overlay() {
    let mut app = app(1);
    app.update(Action::FocusPane(1));
    app.update(Action::Help);
    assert!(app.handle_paste("y".into()).is_empty());
    assert_eq!(app.overlay(), Some(Overlay::Help));
    assert!(app.panes()[0].input.is_empty());
}

#[test]
fn the_rest_of_a_lost_key_sequence_is_not_typed() {
    let mut app = app(1);
    app.update(Action::FocusPane(1));
    // Esc, then F11 in the same read: crossterm gives Esc and `[23~` as keys.
    let at = Instant::now();
    for code in [KeyCode::Esc]
        .into_iter()
        .chain("[23~ok".chars().map(KeyCode::Char))
    {
        app.handle_key_at(key(code), at);
    }
    assert_eq!(app.panes()[0].input.text(), "ok");
    // Typed by a person, long after an Esc, a bracket is a bracket.
    let later = at + Duration::from_secs(1);
    app.handle_key_at(key(KeyCode::Esc), later);
    app.handle_key_at(key(KeyCode::Char('[')), later + Duration::from_millis(200));
    assert_eq!(app.panes()[0].input.text(), "ok[");
}

#[test]
fn the_listen_pane_opens_focused_sends_to_all_and_closing_it_stops_listening() {
    let mut app = app(1);
    assert!(matches!(
        app.handle_key(key(KeyCode::F(9))).as_slice(),
        [Command::Listen]
    ));
    let report = ListenReport {
        addr: "0.0.0.0:8888".parse().unwrap(),
        reachable: vec![crate::listen::HostAddress {
            ip: "192.168.1.20".parse().unwrap(),
            interface: "wlan0".into(),
        }],
        told: None,
    };
    app.listening(&report);
    assert_eq!(app.focus(), Focus::Chat(1));
    let pane = &app.panes()[1];
    assert_eq!(pane.id, LISTEN_PANE);
    assert_eq!(
        pane.connection_text(None),
        "boards connect to 192.168.1.20:8888"
    );
    // A second F9 keeps the one pane.
    app.listening(&report);
    assert_eq!(app.panes().len(), 2);
    for c in "hi".chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)).as_slice(),
        [Command::SendAccepted(line)] if line == "hi"
    ));
    assert!(matches!(
        app.handle_key(ctrl('w')).as_slice(),
        [Command::StopListening]
    ));
    assert_eq!(app.panes().len(), 1);
}
