//! The labs of ../shared/seeds/ end to end: the console log a seed's firmware prints is
//! replayed into `espchat` through a real pty, with the board's address made 127.0.0.1 and its
//! port that of a TCP server this test runs in the board's place (the sketch's side of the
//! lab). espchat must find address and port on the console, open its chat pane there, and
//! carry lines both ways.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;

use support::HeadlessProcess;

/// Replays `log` (with `{port}` replaced) into `tui --headless --clients 1` and checks that
/// the pane reaches the server behind it and talks with it.
fn replay_reaches_the_server(log: &str) {
    let server = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = server.local_addr().unwrap().port();
    let pty = nix::pty::openpty(None, None).unwrap();
    // Kept open to the end, so the master never reads EIO.
    let slave = pty.slave;
    let slave_path = nix::unistd::ttyname(&slave).unwrap();
    let slave_path = slave_path.to_str().unwrap().to_owned();
    let mut tui =
        HeadlessProcess::start(&["tui", "--headless", "--clients", "1", "-p", &slave_path]);
    tui.wait_for(&format!("serial! opened {slave_path}"));

    let mut master = std::fs::File::from(pty.master);
    master
        .write_all(log.replace("{port}", &port.to_string()).as_bytes())
        .unwrap();
    tui.wait_all(&[
        "board! ip 127.0.0.1",
        &format!("board! port {port}"),
        &format!("chat1! connected 127.0.0.1:{port}"),
    ]);

    // The board's side: a line typed in the pane arrives, a line sent shows in the pane.
    let (stream, _) = server.accept().unwrap();
    stream.set_read_timeout(Some(support::DEADLINE)).unwrap();
    tui.send("@1 hello from the pane");
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), "hello from the pane");
    (&stream).write_all(b"hello from the board\r\n").unwrap();
    tui.wait_for("chat1| hello from the board");
    tui.end_input();
    assert!(tui.wait_exit().success(), "{}", tui.stderr());
    drop(slave);
}

/// seeds/000: the NodeMCU Lua chat server of the lab, `listening on port 5000` and the IP
/// typed at the Lua prompt, tab-separated (as in tests/ip_corpus/nodemcu-seed-lab-server).
#[test]
fn seed_000_nodemcu_lua_chat_server() {
    replay_reaches_the_server(
        "NodeMCU 3.0.0.0 built with Docker provided by frightanic.com\r\n\
         \tbranch: release\r\n\
         connecting to HomeNet\r\n\
         > listening on port {port}\r\n\
         > print(wifi.sta.getip())\r\n\
         127.0.0.1\t255.0.0.0\t127.0.0.1\r\n\
         > ",
    );
}

/// seeds/001: the NodeMCU Arduino TCP socket server sketch, `IP address:` and `Open Telnet and
/// connect to IP:A on port P` (as in tests/ip_corpus/seed-001-nodemcu-arduino-tcp-server).
#[test]
fn seed_001_nodemcu_arduino_tcp_server() {
    replay_reaches_the_server(
        "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n\
         Connecting to Wifi\r\n\
         . . . . . \r\n\
         Connected to labnet\r\n\
         IP address: 127.0.0.1\r\n\
         Open Telnet and connect to IP:127.0.0.1 on port {port}\r\n",
    );
}

/// The ESP8266 core's WiFiTelnetToSerial example, which the labs use for the serial bridge:
/// `connected, address=A` and `Ready! Use 'telnet A P' to connect`.
#[test]
fn esp8266_wifi_telnet_to_serial_example() {
    replay_reaches_the_server(
        "\r\nConnecting to labnet\r\n\
         ..........\r\n\
         connected, address=127.0.0.1\r\n\
         Ready! Use 'telnet 127.0.0.1 {port}' to connect\r\n",
    );
}
