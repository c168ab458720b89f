//! Consoles behind the network (issue 14 item 3): a virtual board's pty bridged to TCP, raw
//! (`socket://`, as ser2net and esp-link serve it) by this test, and over RFC 2217
//! (`rfc2217://`) by pyserial's PortManager (tests/support/rfc2217_bridge.py).
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use support::{BoardProcess, HeadlessProcess};

/// Opens the board's pty as a terminal program would: raw.
fn open_raw(path: &Path) -> File {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .unwrap();
    let mut termios = nix::sys::termios::tcgetattr(&file).unwrap();
    nix::sys::termios::cfmakeraw(&mut termios);
    nix::sys::termios::tcsetattr(&file, nix::sys::termios::SetArg::TCSANOW, &termios).unwrap();
    file
}

/// A raw TCP bridge to the pty, one client at a time; `hang_up` drops the current one.
struct SocketBridge {
    port: u16,
    current: Arc<Mutex<Option<TcpStream>>>,
}

impl SocketBridge {
    fn start(pty: &Path) -> SocketBridge {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let current: Arc<Mutex<Option<TcpStream>>> = Arc::default();
        let board = open_raw(pty);
        let mut from_board = board.try_clone().unwrap();
        let to_client = current.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = from_board.read(&mut buf) {
                if let Some(client) = to_client.lock().unwrap().as_mut() {
                    let _ = client.write_all(&buf[..n]);
                }
            }
        });
        let accepted = current.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let mut from_client = client.try_clone().unwrap();
                *accepted.lock().unwrap() = Some(client);
                let mut to_board = board.try_clone().unwrap();
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        if to_board.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SocketBridge { port, current }
    }

    fn hang_up(&self) {
        if let Some(client) = self.current.lock().unwrap().take() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_socket_console_shows_the_board_and_comes_back_after_a_drop() {
    let board = BoardProcess::start(&[]);
    let bridge = SocketBridge::start(&board.serial);
    let url = format!("socket://127.0.0.1:{}", bridge.port);
    let mut monitor = HeadlessProcess::start(&["tui", "--headless", "--clients", "1", "-p", &url]);
    monitor.wait_for(&format!("serial! opened {url} at 115200 baud"));
    // The board booted before the bridge took its port (the boot log went to nobody): asked,
    // it prints its address again.
    monitor.send("@serial ip");
    monitor.wait_all(&[
        "espchat: got ip: 127.0.0.1",
        "board! ip 127.0.0.1",
        &format!("board! port {}", board.port),
        // The chat pane goes to the address the console showed.
        &format!("chat1! connected 127.0.0.1:{}", board.port),
        "chat1| Client 1 connected",
    ]);
    monitor.send("@serial status");
    monitor.wait_for("espchat: LED is off; clients: 1; policy lab");

    // The server drops the connection (a ser2net restart): espchat says so and reconnects.
    bridge.hang_up();
    let lost = monitor.wait_for("serial! lost ");
    assert!(lost.starts_with(&format!("serial! lost {url}: ")), "{lost}");
    monitor.wait_for(&format!("serial! opened {url}"));
    monitor.send("@serial ip");
    monitor.wait_for(&format!("espchat: listening on 127.0.0.1:{}", board.port));
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());
}

#[test]
fn a_socket_console_with_nothing_there_is_a_clear_error() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("socket://127.0.0.1:{port}");
    let stderr = support::fails_with(&["monitor", "--headless", "-p", &url]);
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("running there?"), "{stderr}");
    // Flashing over the network is not something espflash does: said, with what to do.
    let stderr = support::fails_with(&["flash", "--headless", "-p", &url]);
    assert!(
        stderr.contains("is a console behind the network"),
        "{stderr}"
    );
}

/// The RFC 2217 server, killed with the test.
struct Rfc2217Bridge {
    child: Child,
    port: u16,
    /// What it printed after `listening` (`baud N`, `dtr N`, `rts N`), read by a thread.
    said: Arc<Mutex<Vec<String>>>,
}

impl Rfc2217Bridge {
    fn start(pty: &Path) -> Rfc2217Bridge {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rfc2217_bridge.py");
        let mut child = Command::new(support::python_with_pyserial())
            .arg(script)
            .arg(pty)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run the RFC 2217 bridge");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let said: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut line = String::new();
        let port = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the bridge ended");
            if let Some(port) = line.trim().strip_prefix("listening ") {
                break port.parse().unwrap();
            }
            said.lock().unwrap().push(line.trim().to_owned());
        };
        let lines = said.clone();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                lines.lock().unwrap().push(line);
            }
        });
        Rfc2217Bridge { child, port, said }
    }

    /// Waits (with a deadline) until it has said `lines` in this order since `from`.
    fn wait_said(&self, from: usize, lines: &[&str]) {
        let end = std::time::Instant::now() + support::DEADLINE;
        loop {
            let said = self.said.lock().unwrap().clone();
            let mut wanted = lines.iter().peekable();
            for line in said.iter().skip(from) {
                if wanted.peek().is_some_and(|want| *want == line) {
                    wanted.next();
                }
            }
            if wanted.peek().is_none() {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "the bridge did not say {lines:?}; it said {said:?}"
            );
            thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Rfc2217Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_rfc2217_console_sets_the_baud_and_shows_the_board() {
    let board = BoardProcess::start(&[]);
    let bridge = Rfc2217Bridge::start(&board.serial);
    let url = format!("rfc2217://127.0.0.1:{}", bridge.port);
    let mut monitor =
        HeadlessProcess::start(&["monitor", "--headless", "-b", "460800", "-p", &url]);
    monitor.wait_for(&format!("serial! opened {url} at 460800 baud"));
    // The baud reached the far side's port, through RFC 2217's SET-BAUDRATE.
    bridge.wait_said(0, &["baud 460800"]);
    // pyserial flushed the boot log when it opened the pty: asked, the board says it again.
    monitor.send("@serial ip");
    monitor.wait_all(&[
        "espchat: got ip: 127.0.0.1",
        "board! ip 127.0.0.1",
        &format!("board! port {}", board.port),
    ]);
    // Typed lines (an 0xFF among them would be doubled) go through the Telnet framing.
    monitor.send("@serial status");
    monitor.wait_for("espchat: LED is off; clients: none; policy lab");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());
}

/// The reset of the TUI's F6 over RFC 2217: DTR off, RTS on for a moment, RTS off, on the
/// far side's port (the pty cannot show modem lines; the bridge reports them).
#[test]
fn an_rfc2217_reset_switches_dtr_and_rts_on_the_far_side() {
    let board = BoardProcess::start(&[]);
    let bridge = Rfc2217Bridge::start(&board.serial);
    let url = format!("rfc2217://127.0.0.1:{}", bridge.port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let net = espchat::serial::net::NetPort::open(
            Path::new(&url),
            espchat::serial::net::Scheme::Rfc2217,
            &format!("127.0.0.1:{}", bridge.port),
            115_200,
        )
        .unwrap();
        bridge.wait_said(0, &["baud 115200"]);
        let from = bridge.said.lock().unwrap().len();
        net.reset(std::time::Duration::from_millis(100))
            .await
            .unwrap();
        bridge.wait_said(from, &["dtr 0", "rts 1", "rts 0"]);
    });
}

/// `espchat board --console-tcp`: the board's own port is a TCP one (Windows has no ptys), one
/// client at a time, and espchat opens it as any `socket://` console.
#[test]
fn a_board_whose_port_is_tcp_serves_one_client_at_a_time() {
    let board = BoardProcess::start(&["--console-tcp", "0"]);
    let url = board.serial.to_str().unwrap().to_owned();
    let address = url
        .strip_prefix("socket://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a socket:// port on 127.0.0.1: {url}"));
    let console_port: u16 = address.parse().unwrap();
    let mut monitor = HeadlessProcess::start(&["tui", "--headless", "--clients", "1", "-p", &url]);
    // The boot log waited for the first client, as it does in a pty.
    monitor.wait_all(&[
        &format!("serial! opened {url} at 115200 baud"),
        "serial| ESP-ROM:esp32c3-api1-20210207",
        "board! ip 127.0.0.1",
        &format!("chat1! connected 127.0.0.1:{}", board.port),
    ]);
    // A second client is told the port is in use and let go; the first goes on.
    let mut second = TcpStream::connect(("127.0.0.1", console_port)).unwrap();
    support::read_until(&mut second, "the serial port is in use by another client");
    let mut rest = Vec::new();
    second.set_read_timeout(Some(support::DEADLINE)).unwrap();
    assert_eq!(second.read_to_end(&mut rest).unwrap(), 0, "{rest:?}");
    monitor.send("@serial status");
    monitor.wait_for("espchat: LED is off; clients: 1; policy lab");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());

    // Once espchat let go, the port takes the next client, as nc would be.
    let mut next = TcpStream::connect(("127.0.0.1", console_port)).unwrap();
    next.write_all(b"status\r\n").unwrap();
    support::read_until(&mut next, "espchat: LED is off; clients: none; policy lab");
}
