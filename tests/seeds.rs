//! The labs of ../shared/seeds/ end to end: the console log a seed's firmware prints is
//! replayed into `espchat` through a real pty, with the board's address made 127.0.0.1 and its
//! port that of a TCP server this test runs in the board's place (the sketch's side of the
//! lab). espchat must find address and port on the console, open its chat pane there, and
//! carry lines both ways.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};

use support::HeadlessProcess;

/// Replays `log` (with `{port}` replaced) into `tui --headless --clients 1` and checks that
/// the pane reaches the server behind it and talks with it.
fn replay_reaches_the_server(log: &str) {
    replay_then_serve(log, |stream, tui| {
        // The board's side: a line typed in the pane arrives, a line sent shows in the pane.
        tui.send("@1 hello from the pane");
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line.trim_end(), "hello from the pane");
        (&stream).write_all(b"hello from the board\r\n").unwrap();
        tui.wait_for("chat1| hello from the board");
    });
}

/// Starts `espchat ARGS -p PTY` on a fresh pty and, once its console is open, writes `log`
/// into the pty as the board would. The pty's slave is returned: kept open to the end, so the
/// master never reads EIO.
fn replay(log: &str, args: &[&str]) -> (HeadlessProcess, std::os::fd::OwnedFd) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = pty.slave;
    let slave_path = nix::unistd::ttyname(&slave).unwrap();
    let slave_path = slave_path.to_str().unwrap().to_owned();
    let mut args = args.to_vec();
    args.extend(["-p", &slave_path]);
    let mut espchat = HeadlessProcess::start(&args);
    espchat.wait_for(&format!("serial! opened {slave_path}"));
    let mut master = std::fs::File::from(pty.master);
    master.write_all(log.as_bytes()).unwrap();
    (espchat, slave)
}

/// Replays `log` (with `{port}` replaced) into `tui --headless --clients 1`, checks that the
/// pane connects to the test's loopback server, and hands its connection to `serve`, which
/// plays the seed's firmware.
fn replay_then_serve(log: &str, serve: impl FnOnce(TcpStream, &mut HeadlessProcess)) {
    let server = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = server.local_addr().unwrap().port();
    let log = log.replace("{port}", &port.to_string());
    let (mut tui, slave) = replay(&log, &["tui", "--headless", "--clients", "1"]);
    tui.wait_all(&[
        "board! ip 127.0.0.1",
        &format!("board! port {port}"),
        &format!("chat1! connected 127.0.0.1:{port}"),
    ]);

    let (stream, _) = server.accept().unwrap();
    stream.set_read_timeout(Some(support::DEADLINE)).unwrap();
    serve(stream, &mut tui);
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

/// Replays a log into `monitor --headless` and returns what it printed up to the line that
/// holds `last`: for boards that are clients, whose console names only their server.
fn replay_into_monitor(log: &str, last: &str) -> Vec<String> {
    let (mut monitor, slave) = replay(log, &["monitor", "--headless"]);
    monitor.wait_for(last);
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
    drop(slave);
    monitor.all_stdout().to_vec()
}

/// For a board that is a client: checks that its console (`seen`) gave no address as the
/// board's (it names only its server), then starts `espchat listen 127.0.0.1:0` and connects
/// to it in the board's place.
fn listen_pane_with_a_client(seen: &[String]) -> (HeadlessProcess, TcpStream) {
    assert!(
        !seen.iter().any(|line| line.starts_with("board!")),
        "the server's address taken for the board's: {seen:#?}"
    );
    let mut listener = HeadlessProcess::start(&["listen", "127.0.0.1:0", "--headless"]);
    let line = listener.wait_for("listen! listening on 127.0.0.1:");
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    let board = TcpStream::connect(("127.0.0.1", port)).unwrap();
    board.set_read_timeout(Some(support::DEADLINE)).unwrap();
    (listener, board)
}

/// seeds/002, project 13.1: the MicroPython client connects to the computer's server (the
/// students use Processing's TCP SERVER mode; here `espchat listen`), sends `Hello` and `This
/// is my IP.` without line ends, then echoes what it receives. Its console names only its
/// server, which is never taken for the board's address.
#[test]
fn seed_002_micropython_client_with_a_listen_pane() {
    let seen = replay_into_monitor(
        "MicroPython v1.23.0 on 2024-06-02; ESP32C3 module with ESP32C3\r\n\
         Type \"help()\" for more information.\r\n\
         >>> \r\nTCP Connected to: 192.168.1.20 : 8888\r\n\
         b'ping'\r\nClose socket\r\n",
        "serial| Close socket",
    );
    let (mut listener, board) = listen_pane_with_a_client(&seen);
    (&board).write_all(b"Hello").unwrap();
    (&board).write_all(b"This is my IP.").unwrap();
    listener.wait_for("chat1! accepted from 127.0.0.1:");
    // No line end: shown once the board pauses.
    assert_eq!(listener.wait_for("chat1| "), "chat1| HelloThis is my IP.");
    listener.send("@1 ping");
    // The board echoes what it receives.
    let mut reader = BufReader::new(board.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ping\n");
    (&board).write_all(line.as_bytes()).unwrap();
    assert_eq!(listener.wait_for("chat1| "), "chat1| ping");
    drop(reader);
    drop(board);
    listener.wait_for("chat1! disconnected: the client closed the connection");
    listener.send("@quit");
    assert!(listener.wait_exit().success());
}

/// seeds/002, project 13.2: the MicroPython server prints its address and port, waits for a
/// client and echoes each message back. (The seed describes the program without its code;
/// the lines are those of Freenove's tutorial code: `tcp waiting...`, `Server IP: A \tPort:
/// P`, `accepting.....`.)
#[test]
fn seed_002_micropython_server() {
    replay_then_serve(
        "MicroPython v1.23.0 on 2024-06-02; ESP32C3 module with ESP32C3\r\n\
         >>> \r\ntcp waiting...\r\nServer IP: 127.0.0.1 \tPort: {port}\r\naccepting.....\r\n",
        |stream, tui| {
            tui.send("@1 hello micropython");
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            (&stream).write_all(line.as_bytes()).unwrap();
            assert_eq!(tui.wait_for("chat1| "), "chat1| hello micropython");
        },
    );
}

/// seeds/003: the ESP-IDF server on its own access point, 192.168.1.1:3000 in the seed (here
/// the loopback address), which answers every request with `Hello World`. The seed shows no
/// log; these are ESP-IDF v5's softAP lines and the socket example's, with the seed's setup.
#[test]
fn seed_003_esp_idf_access_point_server() {
    replay_then_serve(
        "I (612) wifi softAP: wifi_init_softap finished. SSID:ESP32-AP password:esp32pass channel:1\r\n\
         I (622) esp_netif_lwip: DHCP server started on interface WIFI_AP_DEF with IP: 127.0.0.1\r\n\
         I (632) tcp_server: Socket bound, port {port}\r\n\
         I (642) tcp_server: Socket listening\r\n",
        |stream, tui| {
            tui.send("@1 GET / HTTP/1.0");
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            assert_eq!(request.trim_end(), "GET / HTTP/1.0");
            (&stream).write_all(b"Hello World").unwrap();
            stream.shutdown(std::net::Shutdown::Both).unwrap();
            tui.wait_all(&["chat1| Hello World", "chat1! disconnected:"]);
        },
    );
}

/// seeds/004, example 2: the ESP-IDF echo server on port 3333 (`Socket bound to port 3333`)
/// after the station got its address.
#[test]
fn seed_004_esp_idf_echo_server() {
    replay_then_serve(
        "I (2345) esp_netif_handlers: sta ip: 127.0.0.1, mask: 255.0.0.0, gw: 127.0.0.1\r\n\
         I (2355) tcp_server: Listening socket created\r\n\
         I (2365) tcp_server: Socket bound to port {port}\r\n\
         I (2375) tcp_server: Socket listening...\r\n",
        |stream, tui| {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            for text in ["echo me", "and me"] {
                tui.send(&format!("@1 {text}"));
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                (&stream).write_all(line.as_bytes()).unwrap();
                assert_eq!(tui.wait_for("chat1| "), format!("chat1| {text}"));
            }
        },
    );
}

/// seeds/004, example 1 and its exercise: the ESP-IDF tcp_client, pointed at the computer
/// instead of tcpbin.com: its console names the server only; `espchat listen` is that server,
/// and the pane answers each `Hello from ESP32! Message #N` as the echo server would.
#[test]
fn seed_004_esp_idf_tcp_client_with_a_listen_pane() {
    let seen = replay_into_monitor(
        "I (3012) tcp_client: Socket created, attempting to connect to 192.168.1.20:3333\r\n\
         I (3022) tcp_client: Successfully connected to 192.168.1.20:3333\r\n\
         I (3032) tcp_client: Sent: Hello from ESP32! Message #0\r\n\
         I (3132) tcp_client: Received 30 bytes: Hello from ESP32! Message #0\r\n",
        "Received 30 bytes",
    );
    let (mut listener, board) = listen_pane_with_a_client(&seen);
    let mut reader = BufReader::new(board.try_clone().unwrap());
    listener.wait_for("chat1! accepted from 127.0.0.1:");
    for n in 0..3 {
        let message = format!("Hello from ESP32! Message #{n}");
        (&board)
            .write_all(format!("{message}\r\n").as_bytes())
            .unwrap();
        assert_eq!(listener.wait_for("chat1| "), format!("chat1| {message}"));
        listener.send(&format!("@1 {message}"));
        let mut echoed = String::new();
        reader.read_line(&mut echoed).unwrap();
        assert_eq!(echoed.trim_end(), message);
    }
    listener.send("@quit");
    assert!(listener.wait_exit().success());
}
