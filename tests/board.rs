//! `espchat board` end to end: the real binary, its real pty, real TCP clients on loopback.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::io::Read;
#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
use std::thread;

use nix::sys::signal::Signal;
use support::{BoardProcess, ChatClient};

/// Two clients with ids 1 and 2, each having seen both announcements.
fn two_clients(board: &BoardProcess) -> (ChatClient, ChatClient) {
    let (mut one, id) = ChatClient::join(board.port);
    assert_eq!(id, 1);
    let (two, id) = ChatClient::join(board.port);
    assert_eq!(id, 2);
    one.expect("Client 2 connected");
    (one, two)
}

#[test]
fn boot_log_names_the_ip_and_port_on_the_serial_console() {
    let board = BoardProcess::start(&[]);
    let mut console = board.open_console();
    console.wait_for("ESP-ROM:esp32c3");
    console.wait_for("rst:0x1 (POWERON)");
    console.wait_for("espchat: wifi connecting to \"espchat-virtual\"");
    console.wait_for("espchat: got ip: 127.0.0.1");
    assert_eq!(console.wait_listening(), board.port);
}

#[test]
fn announcements_and_broadcast_reach_everyone() {
    let board = BoardProcess::start(&[]);
    let (mut one, mut two) = two_clients(&board);
    let (mut three, id) = ChatClient::join(board.port);
    assert_eq!(id, 3);
    one.expect("Client 3 connected");
    two.expect("Client 3 connected");

    two.say("hello from two");
    for client in [&mut one, &mut two, &mut three] {
        client.expect("Client 2: hello from two");
    }
    drop(three);
    one.expect("Client 3 disconnected");
    two.expect("Client 3 disconnected");
}

#[test]
fn lab_policy_client_1_switches_on_client_2_off() {
    let board = BoardProcess::start(&[]);
    let mut console = board.open_console();
    let (mut one, mut two) = two_clients(&board);

    two.say("on");
    one.expect("Client 2: on");
    two.expect("Client 2: on");
    two.expect("denied: only Client 1 may switch the LED on");

    one.say("ON");
    for client in [&mut one, &mut two] {
        client.expect("Client 1: ON");
        client.expect("LED on (Client 1)");
    }
    console.wait_for("espchat: led on");

    one.say("off");
    one.expect("Client 1: off");
    one.expect("denied: only Client 2 may switch the LED off");
    two.expect("Client 1: off");
    two.say(" off ");
    two.expect("Client 2:  off ");
    two.expect("LED off (Client 2)");
    console.wait_for("espchat: led off");
}

#[test]
fn status_goes_to_the_sender_only() {
    let board = BoardProcess::start(&[]);
    let (mut one, mut two) = two_clients(&board);
    one.say("on");
    one.expect("Client 1: on");
    one.expect("LED on (Client 1)");
    two.say("status");
    two.expect("Client 1: on");
    two.expect("LED on (Client 1)");
    two.expect("Client 2: status");
    two.expect("LED is on; clients: 1,2; policy lab");
    // Client 1 sees the status line relayed, but not the reply: the next line is its own.
    one.expect("Client 2: status");
    one.say("marker");
    one.expect("Client 1: marker");
}

#[test]
fn ninth_client_is_refused_and_the_others_hear_nothing() {
    let board = BoardProcess::start(&[]);
    let mut clients = Vec::new();
    for expected in 1..=8u8 {
        let (client, id) = ChatClient::join(board.port);
        assert_eq!(id, expected);
        clients.push(client);
    }
    let mut ninth = ChatClient::connect(board.port);
    ninth.expect("server full (8 clients)");
    assert!(ninth.closed_by_server());

    let first = &mut clients[0];
    for id in 2..=8 {
        first.expect(&format!("Client {id} connected"));
    }
    first.say("still here");
    first.expect("Client 1: still here");
}

#[test]
fn long_line_is_cut_to_256_bytes_with_a_notice_to_the_sender() {
    let board = BoardProcess::start(&[]);
    let (mut one, mut two) = two_clients(&board);
    let mut line = vec![b'x'; 1000];
    line.extend_from_slice(b"\r\n");
    two.send(&line);
    let relayed = format!("Client 2: {}", "x".repeat(256));
    one.expect(&relayed);
    two.expect(&relayed);
    two.expect("notice: line cut to 256 bytes");
    one.say("marker");
    one.expect("Client 1: marker");
}

#[test]
fn escape_sequences_and_control_bytes_are_not_relayed() {
    let board = BoardProcess::start(&[]);
    let (mut one, mut two) = two_clients(&board);
    two.send(b"a\x1b[2Jb\x1b]52;c;ZXZpbA==\x07c\x00d\x07e\x08f\x1bP1$r\x1b\\g\x9bh\x7fi\r\n");
    one.expect("Client 2: abcdefghi");
    two.send(b"bad \xff\xfe utf8 \xe2\x82\r\n");
    one.expect("Client 2: bad \u{fffd}\u{fffd} utf8 \u{fffd}");
}

#[test]
fn freed_id_is_reused_and_others_keep_theirs() {
    let board = BoardProcess::start(&[]);
    let (mut one, two) = two_clients(&board);
    let (mut three, _) = ChatClient::join(board.port);
    one.expect("Client 3 connected");
    drop(two);
    one.expect("Client 2 disconnected");
    three.expect("Client 2 disconnected");
    let (mut again, id) = ChatClient::join(board.port);
    assert_eq!(id, 2);
    three.expect("Client 2 connected");
    three.say("three is still three");
    again.expect("Client 3: three is still three");
}

#[test]
fn thousand_connect_disconnect_cycles_leave_no_stale_ids() {
    let board = BoardProcess::start(&[]);
    let (mut one, _) = ChatClient::join(board.port);
    for _ in 0..1000 {
        let (visitor, id) = ChatClient::join(board.port);
        assert_eq!(id, 2);
        one.expect("Client 2 connected");
        drop(visitor);
        one.expect("Client 2 disconnected");
    }
    one.say("status");
    one.expect("Client 1: status");
    one.expect("LED is off; clients: 1; policy lab");
}

#[test]
fn disconnect_mid_line_and_half_close_leave_the_server_healthy() {
    let board = BoardProcess::start(&[]);
    let (mut one, mut two) = two_clients(&board);
    two.send(b"never finished");
    drop(two);
    one.expect("Client 2 disconnected");

    // A half-closing client (`nc -N`) still gets what was relayed before the close.
    let (mut half, id) = ChatClient::join(board.port);
    assert_eq!(id, 2);
    one.expect("Client 2 connected");
    half.send(b"last words\n");
    half.half_close();
    half.expect("Client 2: last words");
    assert!(half.closed_by_server());
    one.expect("Client 2: last words");
    one.expect("Client 2 disconnected");

    let (mut fresh, id) = ChatClient::join(board.port);
    assert_eq!(id, 2);
    fresh.say("healthy");
    fresh.expect("Client 2: healthy");
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_stalls_no_one() {
    let board = BoardProcess::start(&[]);
    let (mut listener, _) = ChatClient::join(board.port);
    let (sleeper, id) = ChatClient::join(board.port);
    assert_eq!(id, 2);
    listener.expect("Client 2 connected");
    let (mut talker, id) = ChatClient::join(board.port);
    assert_eq!(id, 3);
    listener.expect("Client 3 connected");

    // The listener reads all along on its own thread: every line of the talker in order, and
    // the notice about the sleeper once, until the talker's final marker.
    let mut listener_reader = listener.try_clone();
    let text = "y".repeat(200);
    let expected = text.clone();
    let listening = thread::spawn(move || {
        let (mut relayed, mut notices) = (0, 0);
        loop {
            let line = listener_reader.line();
            if line == "Client 3: done" {
                return (relayed, notices);
            } else if line == "Client 2 disconnected" {
                notices += 1;
            } else {
                assert_eq!(line, format!("Client 3: {relayed:06} {expected}"));
                relayed += 1;
            }
        }
    });
    // The talker floods, and reads its own echoes on another thread so it is not slow itself.
    let mut talker_reader = talker.try_clone();
    let (notice_tx, notice) = std::sync::mpsc::channel();
    let echo = thread::spawn(move || {
        loop {
            match talker_reader.line().as_str() {
                "Client 2 disconnected" => notice_tx.send(()).unwrap(),
                "Client 3: done" => return,
                _ => {}
            }
        }
    });
    // Bounded in count and time: the talker's own kernel buffers hide how far the board is.
    let mut sent = 0;
    let end = std::time::Instant::now() + support::DEADLINE;
    let mut sleeper_dropped = false;
    while !sleeper_dropped && sent < 500_000 && std::time::Instant::now() < end {
        talker.say(&format!("{sent:06} {text}"));
        sent += 1;
        sleeper_dropped = notice.try_recv().is_ok();
    }
    talker.say("done");
    echo.join().expect("the talker read its echoes to the end");
    assert!(sleeper_dropped, "the sleeper was never disconnected");
    let (relayed, notices) = listening
        .join()
        .expect("the listener got every line in order");
    assert_eq!((relayed, notices), (sent, 1));
    drop(sleeper);
}

#[test]
fn hostile_floods_keep_memory_bounded_and_others_chatting() {
    let board = BoardProcess::start(&[]);
    let (mut one, mut two) = two_clients(&board);
    let before = board.rss_kib();
    // 16 MB without a newline, mostly inside an unterminated OSC sequence.
    let mut chunk = vec![b'A'; 1 << 20];
    chunk[..4].copy_from_slice(b"\x1b]52");
    for _ in 0..16 {
        two.send(&chunk);
    }
    one.say("unaffected");
    one.expect("Client 1: unaffected");
    two.send(b"\nnext\n");
    two.expect("Client 1: unaffected");
    two.expect("Client 2: ");
    two.expect("notice: line cut to 256 bytes");
    two.expect("Client 2: next");
    let growth = board.rss_kib().saturating_sub(before);
    assert!(growth < 8 * 1024, "RSS grew by {growth} KiB");
}

#[test]
fn console_commands_ip_status_wifi_blink_and_reboot() {
    let board = BoardProcess::start(&[]);
    let mut console = board.open_console();
    console.wait_listening();
    let (mut one, _two) = two_clients(&board);

    console.send("ip");
    console.wait_for("espchat: got ip: 127.0.0.1");
    assert_eq!(console.wait_listening(), board.port);

    console.send("status");
    console.wait_for("espchat: LED is off; clients: 1,2; policy lab");
    console.wait_for("espchat: client 2 at 127.0.0.1:");
    console.wait_for("espchat: got ip: 127.0.0.1");
    assert_eq!(console.wait_listening(), board.port);

    console.send("wifi \"lab net\" hunter2hunter2");
    let line = console.wait_for("espchat: wifi connecting to \"lab net\"");
    assert!(!line.contains("hunter2"));
    console.wait_for("espchat: got ip: 127.0.0.1");
    assert_eq!(console.wait_listening(), board.port);

    console.send("policy open");
    console.wait_for("espchat: policy open");

    // Which board is this? (a table of them in a class)
    console.send("blink");
    console.wait_for("espchat: blink: the LED flashes for 5 s");

    console.send("reboot");
    console.wait_for("rst:0xc (RTC_SW_CPU_RST)");
    assert_eq!(console.wait_listening(), board.port);
    assert!(one.closed_by_server());
    let (_client, id) = ChatClient::join(board.port);
    assert_eq!(id, 1);
}

#[test]
fn console_echoes_what_is_typed_with_backspace_and_the_password_as_stars() {
    let board = BoardProcess::start(&[]);
    let mut console = board.open_console();
    console.wait_listening();

    // A typo taken back with DEL, which is what picocom sends for Backspace: the terminal shows
    // `ip` (the board read the bytes in one piece and echoed the result, or it echoed `ii` and
    // rubbed the second `i` out), and the command is `ip`.
    console.write_raw(b"ii\x7fp\r");
    let echoed = console.next_line();
    assert_eq!(on_screen(&echoed), "ip", "echoed {echoed:?}");
    console.wait_for("espchat: got ip: 127.0.0.1");
    assert_eq!(console.wait_listening(), board.port);

    console.write_raw(b"wifi lab hunter2hunter2\r");
    assert_eq!(
        console.wait_for("wifi lab "),
        format!("wifi lab {}", "*".repeat(14))
    );
    let line = console.wait_for("espchat: wifi connecting to \"lab\"");
    assert!(!line.contains("hunter2"), "{line:?}");
    console.wait_for("espchat: got ip: 127.0.0.1");
}

/// What a terminal shows of an echoed line: BS moves the cursor back, the next character
/// overwrites.
fn on_screen(echoed: &str) -> String {
    let mut row: Vec<char> = Vec::new();
    let mut col = 0;
    for c in echoed.chars() {
        if c == '\x08' {
            col = usize::saturating_sub(col, 1);
        } else {
            if col < row.len() {
                row[col] = c;
            } else {
                row.push(c);
            }
            col += 1;
        }
    }
    row.into_iter().collect::<String>().trim_end().to_owned()
}

#[test]
fn sigterm_exits_cleanly_and_removes_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("esp");
    let mut board = BoardProcess::start(&["--link", link.to_str().unwrap()]);
    assert_eq!(std::fs::read_link(&link).unwrap(), board.serial);
    let (mut client, _) = ChatClient::join(board.port);
    let status = board.signal_and_wait(Signal::SIGTERM);
    assert!(status.success(), "{status}");
    assert!(!link.exists(), "link not removed");
    let mut rest = Vec::new();
    let _ = client.stream.read_to_end(&mut rest);
}

#[test]
fn sigint_exits_cleanly() {
    let mut board = BoardProcess::start(&[]);
    let status = board.signal_and_wait(Signal::SIGINT);
    assert!(status.success(), "{status}");
}

// TIOCGEXCL, which reads the flag back, is Linux's.
#[cfg(target_os = "linux")]
#[test]
fn port_can_be_reopened_after_an_exclusive_client_closes_it() {
    let board = BoardProcess::start(&[]);
    let client = support::open_pty(&board.serial);
    // Take exclusive use as the serialport crate does, then close.
    assert_eq!(
        unsafe { libc::ioctl(client.as_raw_fd(), libc::TIOCEXCL) },
        0
    );
    assert!(exclusive(&client));
    drop(client);
    // Each look opens the port again (as root, past the flag) and closes it: the board clears
    // the flag once nobody has the port open, which a look kept open throughout would prevent.
    let end = std::time::Instant::now() + support::DEADLINE;
    while exclusive(&support::open_pty(&board.serial)) {
        assert!(
            std::time::Instant::now() < end,
            "TIOCEXCL was never cleared"
        );
        thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether the tty has exclusive use set (TIOCGEXCL, Linux 3.8+).
#[cfg(target_os = "linux")]
fn exclusive(tty: &std::fs::File) -> bool {
    let mut flag: libc::c_int = 0;
    assert_eq!(
        unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGEXCL, &mut flag) },
        0
    );
    flag != 0
}

#[test]
fn a_client_dropped_for_not_reading_gets_whole_lines_then_a_notice() {
    let board = BoardProcess::start(&[]);
    let (mut talker, _) = ChatClient::join(board.port);
    let (sleeper, id) = ChatClient::join(board.port);
    assert_eq!(id, 2);
    talker.expect("Client 2 connected");

    // The talker reads its own echoes on another thread (so it is not slow itself) and reports
    // when the sleeper is dropped.
    let mut talker_reader = talker.try_clone();
    let (dropped_tx, dropped) = std::sync::mpsc::channel();
    let echo = thread::spawn(move || {
        loop {
            match talker_reader.line().as_str() {
                "Client 2 disconnected" => dropped_tx.send(()).unwrap(),
                "Client 1: done" => return,
                _ => {}
            }
        }
    });
    let text = "z".repeat(200);
    let end = std::time::Instant::now() + support::DEADLINE;
    let mut sleeper_dropped = false;
    let mut sent = 0;
    while !sleeper_dropped && sent < 500_000 && std::time::Instant::now() < end {
        talker.say(&format!("{sent:06} {text}"));
        sent += 1;
        sleeper_dropped = dropped.try_recv().is_ok();
    }
    assert!(sleeper_dropped, "the sleeper was never disconnected");

    // The sleeper reads again at once: whole lines, the notice last, then the end.
    let mut stream = std::io::BufReader::new(sleeper.stream.try_clone().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut raw = Vec::new();
        std::io::BufRead::read_until(&mut stream, b'\n', &mut raw).expect("read the sleeper");
        if raw.is_empty() {
            break;
        }
        assert!(
            raw.ends_with(b"\r\n"),
            "cut mid-line after {} lines: {:?}",
            lines.len(),
            String::from_utf8_lossy(&raw)
        );
        lines.push(String::from_utf8(raw).unwrap());
    }
    let (last, relayed) = lines.split_last().expect("the sleeper got lines");
    assert_eq!(last, "notice: disconnected: you stopped reading\r\n");
    for line in relayed {
        assert!(
            line.starts_with("Client 1: ") && line.ends_with(&format!(" {text}\r\n")),
            "{line:?}"
        );
    }
    talker.say("done");
    echo.join().expect("the talker read its echoes to the end");
    drop(sleeper);
}

#[test]
fn console_refuses_an_led_pin_the_chip_lacks_with_its_range() {
    let board = BoardProcess::start(&[]);
    let mut console = board.open_console();
    console.wait_listening();
    console.send("led 99");
    console.wait_for("espchat: led 99: the ESP32-C3 has GPIO 0 to 21");
    // The pins the chip needs for itself are refused as the firmware refuses them.
    console.send("led 12");
    console.wait_for("espchat: led 12: that pin belongs to the SPI flash");
    console.send("led 2 active-low");
    console.wait_for("espchat: led on GPIO2 (active-low)");
}

/// Issue 16, item 2: the busy message names the program that has the port, not the virtual
/// board, which keeps its own end of the pty open for its whole life.
#[test]
fn the_holder_of_a_virtual_boards_port_is_its_client_not_the_board() {
    let board = BoardProcess::start(&[]);
    let mut client = std::process::Command::new("sleep")
        .arg("60")
        .stdin(support::open_pty(&board.serial))
        .spawn()
        .expect("start sleep");
    let holder = espchat::serial::port::holder_of(&board.serial);
    let _ = client.kill();
    let _ = client.wait();
    let holder = holder.expect("a holder");
    assert_eq!(holder.pid, client.id(), "{holder}");
    assert_eq!(holder.command, "sleep");
}

/// Issue 16, item 11: an OS error is said once, not once in the message and again as its cause.
#[test]
fn a_flash_file_that_is_a_directory_is_named_with_its_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let output = support::espchat()
        .args(["board", "--tcp-port", "0", "--flash-file"])
        .arg(dir.path())
        .output()
        .expect("run espchat board");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("flash file "), "{stderr}");
    assert_eq!(stderr.matches("os error 21").count(), 1, "{stderr}");
}
