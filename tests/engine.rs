//! The engine end to end: `espchat monitor` and `espchat connect` in headless mode, against
//! the virtual board and against a pty the test drives itself.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{BoardProcess, ChatClient, DEADLINE, HeadlessProcess};

#[test]
fn monitor_reports_the_boards_ip_and_port() {
    let board = BoardProcess::start(&[]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &serial]);
    monitor.wait_for(&format!("serial! opened {serial} at 115200 baud"));
    monitor.wait_for("serial| ESP-ROM:esp32c3");
    assert_eq!(monitor.wait_for("board! ip "), "board! ip 127.0.0.1");
    assert_eq!(
        monitor.wait_for("board! port "),
        format!("board! port {}", board.port)
    );

    // Typed lines reach the board's console, and its answers come back.
    monitor.send("@serial status");
    let reply = monitor.wait_for("espchat: LED is off; clients: none; policy lab");
    assert!(reply.starts_with("serial| I ("), "{reply}");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
}

/// A board that came up before espchat (its boot log read by a tool that left): espchat sees
/// our firmware on the console once a chat client arrives, hears no address, and asks for it
/// with `ip` once the console is quiet.
#[test]
fn monitor_asks_a_board_that_booted_unheard_for_its_address() {
    let board = BoardProcess::start(&[]);
    let boot_log = board.take_boot_log();
    assert!(
        boot_log.contains("espchat: got ip: 127.0.0.1"),
        "{boot_log}"
    );
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &serial]);
    monitor.wait_for(&format!("serial! opened {serial}"));
    let _client = board.connect();
    monitor.wait_for("espchat: client 1 connected from 127.0.0.1:");
    // The board's answer, then what espchat makes of it.
    let answer = monitor.wait_for("espchat: got ip: ");
    assert!(answer.starts_with("serial| I ("), "{answer}");
    assert_eq!(monitor.wait_for("board! ip "), "board! ip 127.0.0.1");
    assert_eq!(
        monitor.wait_for("board! port "),
        format!("board! port {}", board.port)
    );
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
    let seen = monitor.all_stdout().to_vec();
    // Asked once, and not before the client came: the address was unknown until the answer.
    let asked = |line: &String| line.contains("espchat: got ip: ");
    assert_eq!(
        seen.iter().filter(|line| asked(line)).count(),
        1,
        "{seen:#?}"
    );
    let client = seen
        .iter()
        .position(|line| line.contains("client 1 connected"));
    let answer = seen.iter().position(asked);
    assert!(client < answer, "{seen:#?}");
}

/// The same in line mode's `tui`: the panes open once the board has answered.
#[test]
fn line_mode_tui_opens_its_pane_on_a_board_that_booted_unheard() {
    let board = BoardProcess::start(&[]);
    board.take_boot_log();
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut tui = HeadlessProcess::start(&["tui", "--headless", "--clients", "1", "-p", &serial]);
    tui.wait_for(&format!("serial! opened {serial}"));
    let _client = board.connect();
    tui.wait_for("espchat: client 1 connected from 127.0.0.1:");
    assert_eq!(tui.wait_for("board! ip "), "board! ip 127.0.0.1");
    tui.wait_for(&format!("chat1! connected 127.0.0.1:{}", board.port));
    tui.wait_for("chat1| Client 2 connected");
}

#[test]
fn monitor_finds_the_port_in_espchat_port() {
    let board = BoardProcess::start(&[]);
    let mut monitor = HeadlessProcess::start_with_env(
        &["monitor", "--headless"],
        &[("ESPCHAT_PORT", board.serial.to_str().unwrap())],
    );
    monitor.wait_for("board! ip 127.0.0.1");
}

#[test]
fn monitor_names_a_missing_port_and_exits_1() {
    let output = support::espchat()
        .args(["monitor", "--headless", "-p", "/dev/ttyUSB-not-there"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/dev/ttyUSB-not-there: not found") && stderr.contains("espchat ports"),
        "{stderr}"
    );
}

#[test]
fn console_and_panes_survive_a_board_restart_and_deliver_what_was_typed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("esp");
    let link_arg = link.to_str().unwrap().to_owned();
    let mut board = BoardProcess::start(&["--link", &link_arg]);
    let port = board.port.to_string();

    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &link_arg]);
    monitor.wait_for("board! port ");
    let server = format!("127.0.0.1:{port}");
    let mut chat = HeadlessProcess::start(&["connect", "--headless", "--clients", "2", &server]);
    chat.wait_all(&["chat1! connected 127.0.0.1:", "chat2! connected 127.0.0.1:"]);

    // The board dies without a word (SIGKILL): its pty and its sockets vanish.
    board.child.kill().unwrap();
    board.child.wait().unwrap();
    monitor.wait_for("serial! lost ");
    chat.wait_all(&["chat1! disconnected: ", "chat2! disconnected: "]);
    chat.send("@1 typed while the board was down");

    let _board = BoardProcess::start(&["--link", &link_arg, "--tcp-port", &port]);
    monitor.wait_for(&format!("serial! opened {link_arg}"));
    monitor.wait_for("serial| rst:0x1 (POWERON)");
    monitor.wait_for("serial| I (");
    monitor.wait_for(&format!("espchat: listening on 127.0.0.1:{port}"));
    // Both panes reconnect, pane 1 first, so that each is again the client of its number (the
    // lab's LED rule depends on it); the line typed meanwhile reaches the new server, which
    // relays it (to pane 1 at least: pane 2 may connect after it went out).
    chat.wait_all(&[
        "chat1! connected 127.0.0.1:",
        "chat2! connected 127.0.0.1:",
        "chat1| Client 1: typed while the board was down",
    ]);
    chat.send("@2 and pane 2 is client 2");
    chat.wait_for("chat2| Client 2: and pane 2 is client 2");

    // End of input: queued lines go out, connections close, exit 0.
    chat.send("@all bye");
    chat.end_input();
    chat.wait_all(&["chat1! closed", "chat2! closed"]);
    assert!(chat.wait_exit().success());
}

#[test]
fn hostile_console_bytes_never_reach_stdout_and_memory_stays_bounded() {
    let pty = nix::pty::openpty(None, None).unwrap();
    // Kept open to the end, so the master never reads EIO while the monitor reopens.
    let slave = pty.slave;
    let slave_path = nix::unistd::ttyname(&slave).unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut monitor = support::espchat()
        .args(["monitor", "--headless", "-p", slave_path.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(out.reopen().unwrap())
        .spawn()
        .unwrap();
    let output = || std::fs::read(out.path()).unwrap();
    wait_until(|| output().windows(14).any(|w| w == b"serial! opened"));
    let before = support::rss_kib(monitor.id());

    let mut master = std::fs::File::from(pty.master);
    let mut hostile: Vec<u8> = Vec::new();
    hostile.extend_from_slice(b"\x1b[2J\x1b[H\x1b]52;c;aGVsbG8=\x07clip\r\n");
    hostile.extend_from_slice(b"\x1b]0;title\x1b\\\x1bP1$r\x1b\\dcs \x9b31m c1 \xc2\x9b31m\r\n");
    hostile.extend_from_slice(b"nul\x00 bel\x07 del\x7f bad\xff\xfe utf8 \xe2\x82\r\n");
    hostile.extend_from_slice(b"\x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07\r\n");
    master.write_all(&hostile).unwrap();
    // 4 MB without a newline, then a marker line.
    let chunk = vec![b'A'; 64 * 1024];
    for _ in 0..64 {
        master.write_all(&chunk).unwrap();
    }
    master.write_all(b"\r\nEND-OF-HOSTILE\r\n").unwrap();
    wait_until(|| output().windows(14).any(|w| w == b"END-OF-HOSTILE"));
    let growth = support::rss_kib(monitor.id()).saturating_sub(before);

    let bytes = output();
    let text = String::from_utf8(bytes.clone()).expect("stdout is UTF-8");
    for (at, c) in text.char_indices() {
        assert!(
            c == '\n' || !c.is_control(),
            "control character U+{:04X} at byte {at} of stdout",
            c as u32
        );
    }
    assert!(text.contains("serial| clip\n"), "{text:.2000}");
    assert!(text.contains("serial| red link\n"), "{text:.2000}");
    assert!(
        text.contains("serial| nul bel del bad\u{fffd}\u{fffd} utf8 \u{fffd}\n"),
        "{text:.2000}"
    );
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(
        longest < 64 * 1024,
        "a line of {longest} bytes reached stdout"
    );
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB");

    let _ = monitor.kill();
    let _ = monitor.wait();
    drop(slave);
}

fn wait_until(mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            Instant::now() < end,
            "condition not met within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ports_lists_or_says_there_are_none() {
    let output = support::espchat().arg("ports").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("PORT ") || stdout.starts_with("No serial ports found"),
        "{stdout}"
    );
}

#[test]
fn log_file_keeps_sanitized_timestamped_console_lines() {
    let board = BoardProcess::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&[
        "monitor",
        "--headless",
        "-p",
        &serial,
        "--log-file",
        log.to_str().unwrap(),
    ]);
    monitor.wait_for("board! port ");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("espchat: got ip: 127.0.0.1"))
        .unwrap_or_else(|| panic!("no IP line in the log:\n{text}"));
    // `2026-11-22T10:57:01.123Z I (0) espchat: got ip: 127.0.0.1`
    let (stamp, _) = line.split_once(' ').unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "{line}"
    );
    assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
}

#[test]
fn hex_view_dumps_the_bytes() {
    let board = BoardProcess::start(&[]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "--hex", "-p", &serial]);
    // The boot log starts with "ESP-ROM:" = 45 53 50 2d 52 4f 4d 3a.
    let line = monitor.wait_for("45 53 50 2d 52 4f 4d 3a");
    assert!(line.starts_with("serial| 00000000"), "{line}");
    // The text underneath is still read: the address is found, and no text line is shown.
    let lines = monitor.wait_all(&["board! ip 127.0.0.1", "board! port "]);
    assert_eq!(lines[1], format!("board! port {}", board.port));
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
    let text_lines: Vec<&String> = monitor
        .all_stdout()
        .iter()
        .filter(|line| line.starts_with("serial| ") && !line.starts_with("serial| 0000"))
        .collect();
    assert!(text_lines.is_empty(), "{text_lines:?}");
}

#[test]
fn a_full_pane_queue_reports_every_line_it_cannot_send() {
    // Nothing listens on this port: the pane keeps retrying, and queues what is typed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = format!("127.0.0.1:{port}");
    let mut chat = HeadlessProcess::start(&["connect", "--headless", &server]);
    chat.wait_for("chat1! disconnected: connection refused");
    for n in 0..300 {
        chat.send(&format!("@1 line {n}"));
    }
    // 256 fit in the queue; the other 44 are reported at once.
    for n in 256..300 {
        assert_eq!(
            chat.wait_for("chat1! not sent"),
            format!("chat1! not sent (the send queue is full): line {n}")
        );
    }
    // End of input while disconnected: the queued ones are reported too, then the pane closes.
    chat.end_input();
    for n in 0..256 {
        assert_eq!(
            chat.wait_for("chat1! not sent"),
            format!("chat1! not sent (closed before it could be sent): line {n}")
        );
    }
    chat.wait_for("chat1! closed");
    assert!(chat.wait_exit().success());
}

/// Input that ends at once (a script's `printf ... | espchat connect`): every pane still
/// delivers its line, although the later panes are still waiting for their turn to connect.
#[test]
fn connect_delivers_every_line_when_input_ends_at_once() {
    let board = BoardProcess::start(&[]);
    let server = format!("127.0.0.1:{}", board.port);
    for run in 1..=10 {
        let mut chat =
            HeadlessProcess::start(&["connect", "--headless", "--clients", "3", &server]);
        chat.send("@1 a");
        chat.send("@2 b");
        chat.send("@3 c");
        chat.end_input();
        let status = chat.wait_exit();
        let out = chat.all_stdout().join("\n");
        assert!(status.success(), "run {run}:\n{out}");
        assert!(!out.contains("not sent"), "run {run}:\n{out}");
        for echo in [
            "chat1| Client 1: a",
            "chat2| Client 2: b",
            "chat3| Client 3: c",
        ] {
            assert!(out.contains(echo), "run {run}: no {echo:?} in:\n{out}");
        }
    }
}

/// A full server refuses the pane: the line waits (it is not lost), the pane backs off as for
/// any failure and says why, and the line goes out once a place is free.
#[test]
fn a_line_for_a_full_server_waits_for_a_free_place() {
    let board = BoardProcess::start(&[]);
    let mut others: Vec<ChatClient> = (0..8).map(|_| ChatClient::join(board.port).0).collect();
    let server = format!("127.0.0.1:{}", board.port);
    let mut chat = HeadlessProcess::start(&["connect", "--headless", &server]);
    chat.send("@1 hello once there is room");
    chat.wait_for("chat1! disconnected: refused: server full (8 clients)");
    // Backing off: the waits grow instead of knocking every 0.25 s.
    let waits: Vec<f64> = (0..3)
        .map(|_| {
            let line = chat.wait_for("chat1! reconnecting in ");
            line.trim_start_matches("chat1! reconnecting in ")
                .trim_end_matches(" s")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(waits[2] > waits[0], "{waits:?}");
    // Client 1 leaves: the pane takes its place and the line goes out.
    drop(others.remove(0));
    chat.wait_for("chat1| Client 1: hello once there is room");
    chat.end_input();
    assert!(chat.wait_exit().success());
}

/// Whoever reads stdout may go away (`espchat ports | head -0`): espchat ends quietly, never
/// with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let board = BoardProcess::start(&[]);
    let server = format!("127.0.0.1:{}", board.port);
    let serial = board.serial.to_str().unwrap().to_owned();
    for args in [
        vec!["ports"],
        vec!["monitor", "--headless", "-p", &serial],
        vec!["connect", "--headless", &server],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = support::espchat()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = support::wait_for_exit(&mut child, "espchat");
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(
            status.success() && !stderr.contains("panicked"),
            "{args:?}: {status:?}\n{stderr}"
        );
    }
}

/// A command the mode does not take is refused with the ones it does, and pane numbers are
/// written one way only.
#[test]
fn unknown_commands_list_what_this_mode_takes() {
    let board = BoardProcess::start(&[]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &serial]);
    monitor.send("@1 hello");
    assert_eq!(
        monitor.wait_for("error! "),
        "error! unknown command \"@1\": use @serial text, @quit"
    );
    monitor.end_input();
    assert!(monitor.wait_exit().success());

    let server = format!("127.0.0.1:{}", board.port);
    let mut chat = HeadlessProcess::start(&["connect", "--headless", "--clients", "2", &server]);
    for command in ["@serial status", "@01 hi", "@+1 hi", "@3 hi"] {
        chat.send(command);
        let target = command.split(' ').next().unwrap();
        assert_eq!(
            chat.wait_for("error! "),
            format!("error! unknown command \"{target}\": use @1..@2 text, @all text, @quit")
        );
    }
    chat.send("@2 still here");
    chat.wait_for("chat2| Client 2: still here");
    chat.end_input();
    assert!(chat.wait_exit().success());
}

/// Issue 16, item 8: the hex view shows a last, shorter row once the device goes quiet: `XYZ`
/// after 16 bytes does not wait for 13 more.
#[test]
fn hex_view_shows_a_partial_row_once_the_device_is_quiet() {
    let pty = nix::pty::openpty(None, None).unwrap();
    // Kept open to the end, so the master never reads EIO.
    let slave = pty.slave;
    let slave_path = nix::unistd::ttyname(&slave).unwrap();
    let mut monitor = HeadlessProcess::start(&[
        "monitor",
        "--headless",
        "--hex",
        "-p",
        slave_path.to_str().unwrap(),
    ]);
    monitor.wait_for("serial! opened");
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"0123456789abcdefXYZ").unwrap();
    let first = monitor.wait_for("|0123456789abcdef|");
    assert!(first.starts_with("serial| 00000000  30 31"), "{first}");
    let last = monitor.wait_for("|XYZ|");
    assert!(last.starts_with("serial| 00000010  58 59 5a "), "{last}");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
}

/// `@serial` while the port is gone, and input ends at once: the line is reported as not
/// sent before espchat exits, not dropped silently (issue 16 item 1).
#[test]
fn a_line_for_a_vanished_port_is_reported_even_when_input_ends_at_once() {
    let mut board = BoardProcess::start(&[]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &serial]);
    monitor.wait_for("board! port ");
    board.child.kill().unwrap();
    board.child.wait().unwrap();
    monitor.wait_for("serial! lost ");
    monitor.send("@serial status");
    monitor.end_input();
    assert!(monitor.wait_exit().success());
    let not_sent =
        format!("error! not sent: serial port {serial} is gone (waiting for it to come back)");
    let out = monitor.all_stdout();
    assert!(out.contains(&not_sent), "{out:?}");
}

/// A server that says `server full` at once, before reading anything: whichever the pane does
/// first, read that or write its line, the line is not lost (CI caught the write-after-refusal
/// order losing it).
#[test]
fn a_line_survives_refusals_that_come_before_or_after_it_is_written() {
    use std::io::BufRead as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let mut chat = HeadlessProcess::start(&["connect", "--headless", &server]);
    chat.send("@1 hello after the refusals");
    for _ in 0..4 {
        let (mut refused, _) = listener.accept().unwrap();
        refused.write_all(b"server full (8 clients)\r\n").unwrap();
        drop(refused);
    }
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(accepted)
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "hello after the refusals\n");
    chat.end_input();
}
