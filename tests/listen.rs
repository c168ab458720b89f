//! `espchat listen`: the computer as the server. Clients here are plain loopback sockets, as a
//! board running a TCP client example would be.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use support::{BoardProcess, DEADLINE, HeadlessProcess};

/// Starts `espchat listen` on a free loopback port; returns it and the port.
fn listen(extra: &[&str]) -> (HeadlessProcess, u16) {
    let mut args = vec!["listen", "127.0.0.1:0", "--headless"];
    args.extend_from_slice(extra);
    let mut listener = HeadlessProcess::start(&args);
    let line = listener.wait_for("listen! listening on 127.0.0.1:");
    (listener, port_of(&line))
}

/// The port of a `listen! listening on HOST:PORT` line (` (udp)` after it for UDP).
fn port_of(line: &str) -> u16 {
    let addr = line.trim_end_matches(" (udp)");
    addr.rsplit(':').next().unwrap().parse().expect("a port")
}

/// A client as `nc` is one: lines out, lines in.
struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a line in time");
        line
    }
}

/// The local port of a client, as `accepted from` names it.
fn peer_of(client: &Client) -> String {
    client.stream.local_addr().unwrap().to_string()
}

#[test]
fn each_connection_is_a_pane_that_talks_both_ways() {
    let (mut listener, port) = listen(&[]);
    listener.wait_for("listen! a board can connect to 127.0.0.1:");
    let mut first = Client::connect(port);
    assert_eq!(
        listener.wait_for("chat1! "),
        format!("chat1! accepted from {}", peer_of(&first))
    );
    let mut second = Client::connect(port);
    assert_eq!(
        listener.wait_for("chat2! "),
        format!("chat2! accepted from {}", peer_of(&second))
    );

    first.send(b"hello from the board\r\n");
    assert_eq!(listener.wait_for("chat1| "), "chat1| hello from the board");
    listener.send("@2 only for you");
    assert_eq!(second.line(), "only for you\n");
    listener.send("@all everyone");
    assert_eq!(first.line(), "everyone\n");
    assert_eq!(second.line(), "everyone\n");

    // A client that sends no newline (a prompt) is shown once it pauses.
    second.send(b"> ");
    assert_eq!(listener.wait_for("chat2| "), "chat2| > ");

    // The board hangs up: its pane says so and closes; a line typed for it is not lost
    // silently.
    first.stream.shutdown(Shutdown::Both).unwrap();
    drop(first);
    listener.wait_all(&[
        "chat1! disconnected: the client closed the connection",
        "chat1! closed",
    ]);
    listener.send("@1 too late");
    assert_eq!(
        listener.wait_for("error! "),
        "error! unknown command \"@1\": use @2 text, @all text, @quit"
    );
    // It connects again: a new pane.
    let mut again = Client::connect(port);
    listener.wait_for("chat3! accepted from ");
    again.send(b"back\n");
    assert_eq!(listener.wait_for("chat3| "), "chat3| back");

    // End of input: what is queued goes out, the connections close, espchat exits 0.
    listener.send("@3 bye");
    listener.end_input();
    assert_eq!(again.line(), "bye\n");
    let mut rest = String::new();
    again.reader.read_to_string(&mut rest).expect("closed");
    assert!(listener.wait_exit().success(), "{}", listener.stderr());
}

#[test]
fn a_flood_of_connections_gets_the_most_and_a_refusal_for_the_rest() {
    let (mut listener, port) = listen(&["--max-clients", "3"]);
    let clients: Vec<Client> = (1..=3)
        .map(|id| {
            let client = Client::connect(port);
            listener.wait_for(&format!("chat{id}! accepted from "));
            client
        })
        .collect();
    let mut fourth = Client::connect(port);
    assert_eq!(
        fourth.line(),
        "espchat: full (3 connections open), try again later\r\n"
    );
    assert_eq!(
        listener.wait_for("listen! refused"),
        format!(
            "listen! refused {}: 3 connections are open, the most (--max-clients)",
            peer_of(&fourth)
        )
    );
    // The panes that are open go on.
    let mut first = clients.into_iter().next().unwrap();
    first.send(b"still here\n");
    listener.wait_for("chat1| still here");
    listener.send("@quit");
    assert!(listener.wait_exit().success());
}

#[test]
fn binary_escapes_and_endless_lines_reach_stdout_clean_and_bounded() {
    let (mut listener, port) = listen(&[]);
    let mut client = Client::connect(port);
    listener.wait_for("chat1! accepted from ");
    // Escape sequences that would clear a terminal, retitle it, or ring it, and binary.
    client.send(b"\x1b[2J\x1b]0;pwned\x07red \x1b[31mtext\x1b[0m\x00\x01\xff\xfe end\r\n");
    let line = listener.wait_for("chat1| ");
    assert!(line.contains("red text"), "{line}");
    assert!(!line.chars().any(char::is_control), "{line:?}");
    // 10 MB without a newline: one line, cut and marked, and the pane still works after it.
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..160 {
        client.send(&chunk);
    }
    client.send(b"\nafter the flood\n");
    let cut = listener.wait_for("chat1| xxx");
    assert!(cut.len() <= 16 * 1024 + 64, "a line of {} bytes", cut.len());
    assert!(
        cut.ends_with("[line cut: longer than 16 KiB]"),
        "{}",
        &cut[cut.len() - 60..]
    );
    assert_eq!(listener.wait_for("chat1| "), "chat1| after the flood");
    assert!(
        listener.rss_kib() < 200 * 1024,
        "RSS {} KiB",
        listener.rss_kib()
    );
    listener.send("@quit");
    assert!(listener.wait_exit().success());
}

#[test]
fn a_port_in_use_is_an_error_that_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = support::fails_with(&["listen", &addr]);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}: the port is in use")),
        "{stderr}"
    );
}

/// Seed 004's exercise, the serial-to-TCP bridge, with the computer as the server: the virtual
/// board told `connect 127.0.0.1 P` on its console becomes a pane of `espchat listen`; lines
/// go both ways; when the listener goes away and comes back, the board connects again.
#[test]
fn the_board_as_a_client_of_a_listen_pane_and_back_after_a_restart() {
    let (mut listener, port) = listen(&[]);
    let board = BoardProcess::start(&[]);
    let mut console = board.open_console();
    // The virtual board is this computer: it goes nowhere else.
    console.send("connect 192.0.2.1 80");
    console.wait_for("espchat: connect 192.0.2.1: the virtual board is this computer");

    console.send(&format!("connect 127.0.0.1 {port}"));
    console.wait_for(&format!("espchat: connected to 127.0.0.1:{port}"));
    listener.wait_for("chat1! accepted from 127.0.0.1:");
    listener.send("@1 hello board");
    console.wait_for("espchat: received: hello board");
    console.send("hello pane");
    assert_eq!(listener.wait_for("chat1| "), "chat1| hello pane");

    // The listener stops; the board says so and keeps trying.
    listener.send("@quit");
    assert!(listener.wait_exit().success());
    console.wait_for(&format!("espchat: disconnected from 127.0.0.1:{port}"));
    console.wait_for("connecting again in 1 s");
    console.wait_for(&format!(
        "espchat: cannot connect to 127.0.0.1:{port}: connection refused"
    ));
    let address = format!("127.0.0.1:{port}");
    let mut again = HeadlessProcess::start(&["listen", &address, "--headless"]);
    again.wait_for(&format!("listen! listening on {address}"));
    console.wait_for(&format!("espchat: connected to {address}"));
    again.wait_for("chat1! accepted from 127.0.0.1:");
    console.send("back again");
    assert_eq!(again.wait_for("chat1| "), "chat1| back again");

    // `disconnect`: the pane sees the board go, and the console takes commands again.
    console.send("disconnect");
    console.wait_for(&format!("espchat: disconnected from {address}"));
    again.wait_for("chat1! disconnected: the client closed the connection");
    console.send("status");
    console.wait_for("espchat: LED is off; clients: none; policy lab");
    again.send("@quit");
    assert!(again.wait_exit().success());
}

/// `nc -u` both ways: `connect --udp` sends a datagram per line to a server, and shows what
/// comes back; `listen --udp` makes each sending address a pane that answers it.
#[test]
fn udp_one_datagram_per_line_both_ways() {
    use std::net::UdpSocket;
    // A board's UDP server, here: echoes each datagram, uppercased.
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(DEADLINE)).unwrap();
    let address = server.local_addr().unwrap().to_string();
    let mut connect = HeadlessProcess::start(&["connect", &address, "--udp", "--headless"]);
    assert_eq!(
        connect.wait_for("chat1! "),
        format!("chat1! connected {address} (udp)")
    );
    connect.send("@1 hello udp");
    let mut buf = [0u8; 70_000];
    let (n, client) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello udp\n");
    server.send_to(b"HELLO UDP\nsecond line", client).unwrap();
    connect.wait_all(&["chat1| HELLO UDP", "chat1| second line"]);
    // A line longer than a datagram holds is cut, and said.
    connect.send(&format!("@1 {}", "x".repeat(70_000)));
    assert_eq!(
        connect.wait_for("cut"),
        "chat1! line cut to 65507 bytes, the most a UDP datagram holds"
    );
    let (n, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(n, 65_507);
    connect.send("@quit");
    assert!(connect.wait_exit().success());

    let mut listener = HeadlessProcess::start(&["listen", "127.0.0.1:0", "--udp", "--headless"]);
    let line = listener.wait_for("listen! listening on 127.0.0.1:");
    assert!(line.ends_with(" (udp)"), "{line}");
    let port = port_of(&line);
    let boards: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let board = UdpSocket::bind("127.0.0.1:0").unwrap();
            board.set_read_timeout(Some(DEADLINE)).unwrap();
            board.connect(("127.0.0.1", port)).unwrap();
            board
        })
        .collect();
    for (id, board) in (1..).zip(&boards) {
        board
            .send(format!("temperature {id}\n").as_bytes())
            .unwrap();
        assert_eq!(
            listener.wait_for(&format!("chat{id}! ")),
            format!(
                "chat{id}! accepted from {} (udp)",
                board.local_addr().unwrap()
            )
        );
        assert_eq!(
            listener.wait_for(&format!("chat{id}| ")),
            format!("chat{id}| temperature {id}")
        );
    }
    // The same address again is the same pane; an answer goes to that address only.
    boards[0].send(b"again").unwrap();
    assert_eq!(listener.wait_for("chat1| "), "chat1| again");
    listener.send("@2 led on");
    let n = boards[1].recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"led on\n");
    listener.send("@quit");
    assert!(listener.wait_exit().success());
    let seen = listener.all_stdout().join("\n");
    assert!(!seen.contains("chat3"), "{seen}");
}

#[test]
fn udp_peers_beyond_the_most_are_refused_once_each() {
    use std::net::UdpSocket;
    let (mut listener, port) = listen(&["--udp", "--max-clients", "2"]);
    let peers: Vec<UdpSocket> = (0..3)
        .map(|_| {
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.connect(("127.0.0.1", port)).unwrap();
            peer
        })
        .collect();
    for (id, peer) in (1..).zip(&peers[..2]) {
        peer.send(b"hi\n").unwrap();
        listener.wait_for(&format!("chat{id}! accepted from "));
    }
    // The third is refused, said once however often it sends; the two panes go on.
    for _ in 0..3 {
        peers[2].send(b"me too\n").unwrap();
    }
    let refused = listener.wait_for("listen! refused ");
    assert!(
        refused.starts_with(&format!(
            "listen! refused {}: 2 connections are open",
            peers[2].local_addr().unwrap()
        )),
        "{refused}"
    );
    peers[1].send(b"still here\n").unwrap();
    listener.wait_for("chat2| still here");
    listener.send("@quit");
    assert!(listener.wait_exit().success());
    let seen = listener.all_stdout().join("\n");
    assert_eq!(seen.matches("listen! refused").count(), 1, "{seen}");
    assert!(!seen.contains("me too"), "{seen}");
}
