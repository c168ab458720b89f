//! Whole frames through `TestBackend`, compared as plain text with insta snapshots. Colours are
//! checked separately where they carry meaning (the LED, NO_COLOR).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Rect, Size};
use ratatui::style::Color as TuiColor;

use crate::app::layout::layout;
use crate::app::{App, AppConfig, Focus};
use crate::chat::ChatEvent;
use crate::event::Event;
use crate::flash::FlashEvent;
use crate::serial::decode::{Color, Style};
use crate::serial::{BoardAddress, ConsoleOutput, SerialEvent, StyledLine};

fn plain(text: &str) -> StyledLine {
    StyledLine::new(text, Style::default())
}

fn green(text: &str) -> StyledLine {
    let green = Style {
        fg: Some(Color::Indexed(2)),
        ..Style::default()
    };
    StyledLine::new(text, green)
}

const BOOT: &[&str] = &[
    "ESP-ROM:esp32c3-api1-20210207",
    "rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)",
    "load:0x3fcd5820,len:0x1714",
    "entry 0x403cc710",
];
const APP: &[&str] = &[
    "I (312) espchat: wifi connecting to \"lab\"",
    "I (1450) espchat: got ip: 192.168.1.42",
    "I (1452) espchat: listening on 192.168.1.42:5000",
];

/// A board that booted, got its IP, and `panes` chat panes connected to it.
fn board(panes: usize) -> App {
    let mut app = App::new(AppConfig {
        panes,
        ..AppConfig::default()
    });
    let t0 = Instant::now();
    app.tick(t0);
    app.set_board("/dev/ttyUSB0".into(), Some("ESP32-C3".into()));
    app.handle_event(&Event::Serial(SerialEvent::Opened {
        path: PathBuf::from("/dev/ttyUSB0"),
        baud: 115_200,
    }));
    for line in BOOT {
        app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
            plain(line),
        ))));
    }
    for line in APP {
        app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
            green(line),
        ))));
    }
    app.handle_event(&Event::Serial(SerialEvent::Address(BoardAddress {
        ip: Some(Ipv4Addr::new(192, 168, 1, 42)),
        port: Some(5000),
    })));
    for id in 1..=panes {
        let addr = "192.168.1.42:5000".to_string();
        app.handle_event(&Event::Chat(
            id,
            ChatEvent::Connecting { addr: addr.clone() },
        ));
        app.handle_event(&Event::Chat(id, ChatEvent::Connected { addr }));
        for other in 1..=id {
            let line = format!("Client {other} connected");
            app.handle_event(&Event::Chat(
                id,
                ChatEvent::Output(ConsoleOutput::Line(plain(&line))),
            ));
        }
        let line = format!("espchat: client {id} connected from 192.168.1.10:4{id:04}");
        app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
            green(&line),
        ))));
    }
    if panes >= 1 {
        app.handle_event(&Event::Chat(
            1,
            ChatEvent::Output(ConsoleOutput::Line(plain("Client 1: hello board"))),
        ));
    }
    app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Partial(
        plain("espchat> "),
    ))));
    app
}

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .unwrap();
    terminal
}

/// The buffer as text, one line per row, trailing blanks trimmed.
fn text(buffer: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut row = String::new();
        for x in 0..buffer.area.width {
            row.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

fn screen(app: &App, width: u16, height: u16) -> String {
    text(render(app, width, height).backend().buffer())
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn one_pane_120x40() {
    let mut app = board(1);
    app.handle_key(KeyEvent::new(KeyCode::Char('1'), KeyModifiers::ALT));
    for c in "on".chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn two_panes_120x40() {
    insta::assert_snapshot!(screen(&board(2), 120, 40));
}

#[test]
fn four_panes_120x40() {
    let mut app = board(4);
    app.handle_event(&Event::Chat(
        3,
        ChatEvent::Disconnected {
            reason: "connection reset by peer".into(),
        },
    ));
    app.handle_event(&Event::Chat(
        3,
        ChatEvent::Reconnecting {
            after: Duration::from_secs(2),
        },
    ));
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn eight_panes_120x40() {
    let mut app = board(8);
    app.update(crate::app::keys::Action::FocusPane(6));
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn two_panes_80x24() {
    insta::assert_snapshot!(screen(&board(2), 80, 24));
}

#[test]
fn help_overlay() {
    let mut app = board(2);
    app.handle_key(key(KeyCode::F(1)));
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn help_overlay_80x24() {
    let mut app = board(2);
    app.handle_key(key(KeyCode::F(1)));
    insta::assert_snapshot!(screen(&app, 80, 24));
}

fn flashing() -> App {
    let mut app = board(2);
    let t0 = app.now.unwrap();
    app.handle_key(key(KeyCode::F(5)));
    app.handle_event(&Event::Flash(FlashEvent::Segment {
        address: 0x10000,
        total: 1024 * 1024,
    }));
    // 256 KiB in 2 s: 128 KiB/s, 768 KiB left: ETA 6 s.
    app.tick(t0 + Duration::from_secs(1));
    app.handle_event(&Event::Flash(FlashEvent::Progress {
        address: 0x10000,
        done: 128 * 1024,
        total: 1024 * 1024,
    }));
    app.tick(t0 + Duration::from_secs(2));
    app.handle_event(&Event::Flash(FlashEvent::Progress {
        address: 0x10000,
        done: 256 * 1024,
        total: 1024 * 1024,
    }));
    app
}

#[test]
fn flash_in_progress() {
    let app = flashing();
    let flash = app.flash_progress().unwrap();
    assert_eq!(flash.percent(), 25);
    assert_eq!(flash.rate(), Some(128.0 * 1024.0));
    assert_eq!(flash.eta(), Some(Duration::from_secs(6)));
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn gauge_hides_after_flash_done() {
    let mut app = flashing();
    assert!(screen(&app, 120, 40).contains("ETA 6s"));
    app.handle_event(&Event::FlashDone(Ok((1024 * 1024, 8.0))));
    let after = screen(&app, 120, 40);
    assert!(!after.contains("ETA"));
    assert!(after.contains("flash: done, 1048576 bytes in 8.00 s"));
}

#[test]
fn public_address_overlay() {
    let mut app = App::new(AppConfig::default());
    app.ask_address(std::net::Ipv4Addr::new(203, 0, 113, 5));
    let screen = screen(&app, 80, 24);
    assert!(
        screen.contains("The console shows a public address, 203.0.113.5."),
        "{screen}"
    );
    assert!(screen.contains("y  connect"), "{screen}");
}

#[test]
fn quit_confirm_overlay() {
    let mut app = flashing();
    app.handle_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL));
    insta::assert_snapshot!(screen(&app, 120, 40));
}

#[test]
fn led_on_and_ip_known() {
    let mut app = board(2);
    app.handle_event(&Event::Serial(SerialEvent::Led(true)));
    app.handle_event(&Event::Chat(
        1,
        ChatEvent::Output(ConsoleOutput::Line(plain("Client 1: on"))),
    ));
    app.handle_event(&Event::Chat(
        1,
        ChatEvent::Output(ConsoleOutput::Line(plain("LED on (Client 1)"))),
    ));
    let terminal = render(&app, 120, 40);
    let buffer = terminal.backend().buffer();
    let text = text(buffer);
    assert!(text.lines().next().unwrap().contains("192.168.1.42:5000"));
    insta::assert_snapshot!(text);
    // The lit LED is yellow; find its cell on the status line.
    let status = text.lines().next().unwrap();
    let col = status.chars().position(|c| c == '●').unwrap() as u16;
    assert_eq!(buffer[(col, 0)].bg, TuiColor::Yellow);
}

#[test]
fn no_color_renders_no_colours() {
    let mut app = App::new(AppConfig {
        color: false,
        ..AppConfig::default()
    });
    app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
        green("ok"),
    ))));
    app.handle_event(&Event::Serial(SerialEvent::Led(true)));
    let terminal = render(&app, 80, 24);
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, TuiColor::Reset);
        assert_eq!(cell.bg, TuiColor::Reset);
    }
    // The coloured app does use colour, so the check above can fail.
    let mut coloured = App::new(AppConfig::default());
    coloured.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
        green("ok"),
    ))));
    let terminal = render(&coloured, 80, 24);
    assert!(
        terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg == TuiColor::Indexed(2))
    );
}

#[test]
fn search_highlights_and_moves() {
    let mut app = board(0);
    app.handle_key(KeyEvent::new(KeyCode::Char('t'), KeyModifiers::CONTROL));
    app.handle_key(key(KeyCode::Char('/')));
    for c in "espchat".chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
    app.handle_key(key(KeyCode::Enter));
    let search = app.search.as_ref().unwrap();
    assert_eq!(search.matches, 3);
    let newest = search.current.unwrap();
    app.handle_key(key(KeyCode::Char('n')));
    assert!(app.search.as_ref().unwrap().current.unwrap() < newest);
    let terminal = render(&app, 80, 24);
    let buffer = terminal.backend().buffer();
    let reversed_or_yellow = buffer
        .content()
        .iter()
        .filter(|c| c.bg == TuiColor::Yellow || c.bg == TuiColor::LightYellow)
        .count();
    // `n` brought the second-newest match to the bottom row: it and the one above show.
    assert_eq!(reversed_or_yellow, 2 * "espchat".len());
    app.handle_key(key(KeyCode::Esc));
    assert!(app.search.is_none());
}

#[test]
fn long_lines_wrap_and_only_the_window_is_drawn() {
    let mut app = App::new(AppConfig {
        panes: 0,
        ..AppConfig::default()
    });
    for i in 0..20_000 {
        app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
            plain(&format!("line {i}")),
        ))));
    }
    app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
        plain(&"x".repeat(100)),
    ))));
    assert_eq!(app.serial.len(), crate::app::scrollback::SCROLLBACK_LINES);
    let text = screen(&app, 40, 12);
    assert!(text.contains("line 19999"));
    // 100 x's in a 38-wide pane: three rows.
    let pane: String = text.lines().take(11).collect();
    assert_eq!(pane.matches('x').count(), 100);
}

#[test]
fn click_focuses_the_pane_under_the_pointer() {
    let mut app = board(4);
    app.resize(Size::new(120, 40));
    let area = Rect::new(0, 0, 120, 40);
    let rects = layout(area, &app).panes;
    let target = rects[2];
    app.handle_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: target.x + 2,
        row: target.y + 1,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.focus(), Focus::Chat(2));
    let serial = layout(area, &app).serial;
    app.handle_mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: serial.x + 2,
        row: serial.y + 2,
        modifiers: KeyModifiers::NONE,
    });
    assert!(app.serial.offset() > 0);
    assert_eq!(app.focus(), Focus::Chat(2));
}

#[test]
fn layouts_tile_every_pane_without_overlap() {
    for n in 0..=16 {
        let app = board(n);
        for (w, h) in [(120, 40), (80, 24), (200, 60)] {
            let l = layout(Rect::new(0, 0, w, h), &app);
            assert_eq!(l.panes.len(), n);
            for (i, a) in l.panes.iter().enumerate() {
                assert!(!a.intersects(l.serial), "{n} panes at {w}x{h}");
                for b in &l.panes[i + 1..] {
                    assert!(!a.intersects(*b), "{n} panes at {w}x{h}");
                }
            }
        }
    }
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// The footer: the last row of the screen.
fn footer(screen: &str) -> &str {
    screen.trim_end().lines().last().unwrap_or_default()
}

/// A board with two panes whose key table is `keys` rebound.
fn rebound(keys: &[(&str, &str)]) -> App {
    let mut table = crate::app::keys::KeyTable::default();
    for (action, chord) in keys {
        table.rebind(action, chord).unwrap();
    }
    table.check().unwrap();
    let mut app = board(2);
    app.keys = table;
    app
}

#[test]
fn a_rebound_prefix_is_named_everywhere_it_shows() {
    let mut app = rebound(&[("prefix", "ctrl-a")]);
    let mut frames = Vec::new();
    // The serial console's footer names the prefix keys.
    let serial = screen(&app, 120, 40);
    assert!(footer(&serial).contains(" ^A Tab  next"), "{serial}");
    frames.push(("serial console", serial));
    // After the prefix: the console's title and the footer.
    app.handle_key(ctrl('a'));
    let pending = screen(&app, 120, 40);
    assert!(
        pending.contains("serial /dev/ttyUSB0 115200 · Ctrl-A … "),
        "{pending}"
    );
    assert!(footer(&pending).contains("Ctrl-A then: "), "{pending}");
    frames.push(("prefix pending", pending));
    // The help, in two columns and in one.
    app.handle_key(key(KeyCode::Char('?')));
    for (width, height) in [(120, 40), (80, 24)] {
        let help = screen(&app, width, height);
        assert!(help.contains("Ctrl-A     then one of:"), "{help}");
        assert!(help.contains("Ctrl-A Ctrl-A sends Ctrl-A."), "{help}");
        frames.push(("help", help));
    }
    // A search from the console: its footers, and a hint on the line above the footer.
    app.handle_key(key(KeyCode::Esc));
    app.handle_key(ctrl('a'));
    app.handle_key(key(KeyCode::Char('/')));
    app.handle_key(key(KeyCode::Char('z')));
    frames.push(("search query", screen(&app, 120, 40)));
    app.handle_key(key(KeyCode::Enter));
    let hint = screen(&app, 120, 40);
    assert!(hint.contains("not found: z"), "{hint}");
    frames.push(("search matches and a hint", hint));
    // The chat pane's footer, the other state with key hints.
    app.handle_key(key(KeyCode::Esc));
    app.handle_key(KeyEvent::new(KeyCode::Char('1'), KeyModifiers::ALT));
    frames.push(("chat pane", screen(&app, 120, 40)));
    for (state, screen) in frames {
        assert!(
            !screen.contains("Ctrl-T") && !screen.contains("^T"),
            "{state} names the old prefix:\n{screen}"
        );
    }
    // Ctrl-T is the board's again, and the new prefix still reaches the app.
    app.update(crate::app::keys::Action::FocusPane(0));
    app.handle_key(ctrl('t'));
    assert!(!app.prefix);
    app.handle_key(ctrl('a'));
    assert!(app.prefix);
}

#[test]
fn rebound_search_keys_work_and_are_named_in_the_footer() {
    let mut app = rebound(&[
        ("search-find", "tab"),
        ("search-cancel", "ctrl-g"),
        ("search-older", "j"),
        ("search-newer", "k"),
        ("search-done", "q"),
    ]);
    app.handle_key(ctrl('t'));
    app.handle_key(key(KeyCode::Char('/')));
    for c in "espchat".chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
    let typing = screen(&app, 120, 40);
    let bar = footer(&typing);
    assert!(bar.contains(" Tab  find   ^G  cancel"), "{typing}");
    assert!(!bar.contains("Enter") && !bar.contains("Esc"), "{typing}");
    app.handle_key(key(KeyCode::Tab));
    let search = app.search.as_ref().unwrap();
    assert!(!search.editing);
    let newest = search.current.unwrap();
    let browsing = screen(&app, 120, 40);
    let bar = footer(&browsing);
    assert!(bar.contains(" j  older   k  newer   q  done"), "{browsing}");
    assert!(
        !bar.contains(" n ") && !bar.contains(" N ") && !bar.contains("Esc"),
        "{browsing}"
    );
    // The old keys go to the board now; the new ones step through the matches.
    app.handle_key(key(KeyCode::Char('n')));
    assert_eq!(app.search.as_ref().unwrap().current, Some(newest));
    app.handle_key(key(KeyCode::Char('j')));
    assert!(app.search.as_ref().unwrap().current.unwrap() < newest);
    app.handle_key(key(KeyCode::Char('k')));
    assert_eq!(app.search.as_ref().unwrap().current, Some(newest));
    app.handle_key(key(KeyCode::Char('q')));
    assert!(app.search.is_none());
    // Ctrl-G leaves the query being typed.
    app.handle_key(ctrl('t'));
    app.handle_key(key(KeyCode::Char('/')));
    app.handle_key(ctrl('g'));
    assert!(app.search.is_none());
}

#[test]
fn a_rebound_scroll_key_is_named_in_the_scrolled_note() {
    let mut app = rebound(&[("scroll-down", "ctrl-d")]);
    for i in 0..100 {
        app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
            plain(&format!("line {i}")),
        ))));
    }
    app.handle_key(key(KeyCode::PageUp));
    let scrolled = screen(&app, 120, 40);
    assert!(scrolled.contains("newer lines (^D)"), "{scrolled}");
    assert!(!scrolled.contains("PgDn"), "{scrolled}");
}

#[test]
fn a_pasted_line_break_shows_in_the_input_line_and_the_cursor_stays_in_view() {
    let mut app = board(1);
    app.handle_key(KeyEvent::new(KeyCode::Char('1'), KeyModifiers::ALT));
    app.handle_paste(format!("{}\non\noff", "x".repeat(500)));
    let screen = screen(&app, 80, 24);
    let input = screen
        .lines()
        .find(|line| line.contains("› "))
        .unwrap_or_default();
    assert!(input.contains("xx⏎on⏎off"), "{screen}");
    // The cursor (a reversed blank) after the end of the line, inside the pane.
    let buffer = render(&app, 80, 24).backend().buffer().clone();
    let row = screen.lines().position(|line| line.contains("› ")).unwrap() as u16;
    let at = input.find("⏎off").unwrap();
    let end = (input[..at].chars().count() + "⏎off".chars().count()) as u16;
    assert!(
        buffer[(end, row)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
}

#[test]
fn paging_through_wrapped_lines_shows_every_line() {
    let mut app = board(1);
    app.resize(Size::new(60, 30));
    app.update(crate::app::keys::Action::FocusPane(0));
    // Lines of one, two and three rows at the pane's width.
    for n in 0..90 {
        let text = format!("L{n:03} {}", "x".repeat((n % 3) * 60));
        app.handle_event(&Event::Serial(SerialEvent::Output(ConsoleOutput::Line(
            plain(&text),
        ))));
    }
    let seen = |app: &App, seen: &mut std::collections::BTreeSet<String>| {
        let screen = text(render(app, 60, 30).backend().buffer());
        for word in screen.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() == 4 && word.starts_with('L') {
                seen.insert(word.to_owned());
            }
        }
    };
    let all: std::collections::BTreeSet<String> = (0..90).map(|n| format!("L{n:03}")).collect();
    for (action, direction) in [
        (crate::app::keys::Action::ScrollUp, "up"),
        (crate::app::keys::Action::ScrollDown, "down"),
    ] {
        let mut shown = std::collections::BTreeSet::new();
        seen(&app, &mut shown);
        for _ in 0..200 {
            let before = app.serial.offset();
            app.update(action.clone());
            seen(&app, &mut shown);
            if app.serial.offset() == before {
                break;
            }
        }
        let missing: Vec<_> = all.difference(&shown).collect();
        assert!(
            missing.is_empty(),
            "paging {direction} never showed {missing:?}"
        );
    }
}
