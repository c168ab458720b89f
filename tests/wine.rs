//! The Windows build end to end, under Wine (issue 14 items 2 and 4): `espchat.exe` opens COM
//! ports (Wine maps `COMn` to a virtual board's pty here), flashes through them with espflash,
//! reads the console and opens chat panes; the demo runs its virtual board on a TCP console,
//! as on Windows. `scripts/wine-test` builds the exe, prepares a Wine prefix and runs these
//! (they are ignored otherwise: they need Wine and the exe).
// The Linux side of these tests (virtual boards on ptys) is Unix.
#![cfg(unix)]

mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{BoardProcess, HeadlessProcess};

const NEEDS_WINE: &str = "needs Wine and the Windows build: scripts/wine-test runs it";

/// `wine espchat.exe ARGS`, in the prefix scripts/wine-test prepared.
fn espchat_exe(args: &[&str]) -> Command {
    let exe = std::env::var_os("ESPCHAT_WINE_EXE")
        .unwrap_or_else(|| panic!("ESPCHAT_WINE_EXE is not set: {NEEDS_WINE}"));
    prefix();
    let mut command = Command::new("wine");
    command.arg(exe).args(args).env("WINEDEBUG", "-all");
    // Wine hands the environment on: what the machine has set is out of play, as for
    // `support::espchat` (the prefix has no config file).
    for name in [
        "ESPCHAT_CONFIG",
        "ESPCHAT_PORT",
        "ESPCHAT_BAUD",
        "ESPFLASH_PORT",
    ] {
        command.env_remove(name);
    }
    command
}

fn prefix() -> PathBuf {
    PathBuf::from(
        std::env::var_os("WINEPREFIX")
            .unwrap_or_else(|| panic!("WINEPREFIX is not set: {NEEDS_WINE}")),
    )
}

/// Makes `COMn` (n distinct per test: they run at once) the board's pty.
fn com_port(number: u32, board: &BoardProcess) -> String {
    let link = prefix().join("dosdevices").join(format!("com{number}"));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&board.serial, &link).expect("map the COM port to the pty");
    format!("COM{number}")
}

#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn a_com_port_shows_the_board_and_its_chat() {
    let board = BoardProcess::start(&[]);
    let com = com_port(11, &board);
    let mut monitor = HeadlessProcess::spawn(espchat_exe(&[
        "tui",
        "--headless",
        "--clients",
        "1",
        "-p",
        &com,
    ]));
    monitor.wait_for(&format!("serial! opened {com} at 115200 baud"));
    // The boot log waited in the pty for its first reader.
    monitor.wait_all(&[
        "serial| ESP-ROM:esp32c3-api1-20210207",
        "board! ip 127.0.0.1",
        &format!("chat1! connected 127.0.0.1:{}", board.port),
        "chat1| Client 1 connected",
    ]);
    // Typing reaches the board while the console waits on it (overlapped IO).
    monitor.send("@serial status");
    monitor.wait_for("espchat: LED is off; clients: 1; policy lab");
    monitor.send("@1 on");
    monitor.wait_all(&["board! led on", "chat1| LED on (Client 1)"]);
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());
}

#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn flashing_through_a_com_port_writes_the_firmware_and_the_board_boots_it() {
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = BoardProcess::blank(dir.path());
    let com = com_port(12, &board);
    let output = espchat_exe(&["flash", "-p", &com])
        .output()
        .expect("run espchat.exe flash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    // A pty has no modem lines under Wine either: no reset, SYNC only.
    assert!(
        stdout.contains(&format!(
            "flash! connecting to {com} (before: no-reset, after: no-reset)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("flash! connected: ESP32-C3"), "{stdout}");
    assert!(stdout.contains("flash! done "), "{stdout}");
    // What espflash wrote is in the board's flash: the app's descriptor names it.
    let flash = std::fs::read(&flash_file).unwrap();
    let app = &flash[0x10000..0x10000 + 0x200];
    assert!(
        app.windows(b"espchat-firmware".len())
            .any(|window| window == b"espchat-firmware"),
        "no espchat app at 0x10000"
    );
    // The port is free again, and the board boots what was written.
    let mut monitor = HeadlessProcess::spawn(espchat_exe(&["monitor", "-p", &com]));
    monitor.send("ip");
    monitor.wait_for("espchat: got ip: 127.0.0.1");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());
}

/// The one-shot through a COM port: flash, the address from the console, chat panes.
#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn flash_and_connect_through_a_com_port() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _flash_file) = BoardProcess::blank(dir.path());
    let com = com_port(13, &board);
    let mut oneshot = HeadlessProcess::spawn(espchat_exe(&[
        "flash-and-connect",
        "--headless",
        "-p",
        &com,
    ]));
    oneshot.wait_all(&[
        "flash! connected: ESP32-C3",
        "flash! done ",
        "board! ip 127.0.0.1",
        "chat1| Client 1 connected",
        "chat2| Client 2 connected",
    ]);
    oneshot.send("@1 on");
    oneshot.wait_all(&["board! led on", "chat2| LED on (Client 1)"]);
    oneshot.send("@quit");
    assert!(oneshot.wait_exit().success(), "{}", oneshot.stderr());
}

#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn a_missing_com_port_is_named() {
    let output = espchat_exe(&["monitor", "-p", "COM42"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run espchat.exe monitor");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("serial port COM42: not found"), "{stderr}");
}

#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn the_demo_runs_its_board_on_a_tcp_console() {
    let mut demo = HeadlessProcess::spawn(espchat_exe(&["demo", "--headless"]));
    let opened = demo.wait_for("serial! opened ");
    assert!(
        opened.starts_with("serial! opened socket://127.0.0.1:"),
        "{opened}"
    );
    demo.wait_all(&[
        "board! ip 127.0.0.1",
        "chat1| Client 1 connected",
        "chat2| Client 2 connected",
    ]);
    demo.send("@1 on");
    demo.wait_all(&["board! led on", "chat2| LED on (Client 1)"]);
    // Client 2 may only switch it off (the lab's exercise).
    demo.send("@2 off");
    demo.wait_all(&["board! led off", "chat1| LED off (Client 2)"]);
    demo.send("@quit");
    assert!(demo.wait_exit().success(), "{}", demo.stderr());
    assert!(
        demo.stderr().contains("this system has no ptys"),
        "{}",
        demo.stderr()
    );
}

/// The TUI on a Windows console (Wine's, in a tmux pane): it draws, takes keys, and gives the
/// screen back when it quits.
#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn the_tui_runs_on_a_windows_console() {
    let exe = std::env::var("ESPCHAT_WINE_EXE").expect(NEEDS_WINE);
    let tmux = tmux::Tmux::new(format!("espchat-wine-{}", std::process::id()));
    // The exit status goes to a file: the pane's last words are Wine's console's, which may
    // clear the screen after tmux says the pane is dead.
    let dir = tempfile::tempdir().unwrap();
    let status_file = dir.path().join("status");
    let command = format!(
        "sh -c \"WINEPREFIX='{}' WINEDEBUG=-all wine '{exe}' demo; echo \\$? > '{}'\"",
        prefix().display(),
        status_file.display()
    );
    let session = tmux.start("demo", (120, 36), &command).unwrap();
    let start = Instant::now();
    let deadline = Duration::from_secs(60);
    let pause = Duration::from_millis(100);
    let wait = |what: &str| {
        session
            .wait_for(start, deadline, pause, |screen| screen.contains(what))
            .unwrap_or_else(|error| panic!("waiting for {what:?}: {error}"))
    };
    wait("Client 2 connected");
    // Typed into pane 1 (focused first): the board switches its LED, the status bar says so.
    tmux.run(&["send-keys", "-t", "demo", "-l", "on"]).unwrap();
    tmux.run(&["send-keys", "-t", "demo", "Enter"]).unwrap();
    wait("LED on");
    tmux.run(&["send-keys", "-t", "demo", "C-q"]).unwrap();
    let gone = Instant::now() + deadline;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && status.ends_with('\n')
        {
            break status;
        }
        assert!(
            Instant::now() < gone,
            "Ctrl-Q did not end it:\n{}",
            session.screen()
        );
        std::thread::sleep(pause);
    };
    assert_eq!(status.trim(), "0");
    // The alternate screen is left: none of the TUI stays on the console.
    let mut screen = session.screen();
    while screen.contains("F5  flash") {
        assert!(
            Instant::now() < gone,
            "the TUI stayed on the screen:\n{screen}"
        );
        std::thread::sleep(pause);
        screen = session.screen();
    }
}

/// The computer as the server, for boards that are clients: a connection is a pane, lines go
/// both ways.
#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn listen_takes_a_boards_connection() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let mut listen = HeadlessProcess::spawn(espchat_exe(&["listen", "127.0.0.1:0"]));
    let line = listen.wait_for("listen! listening on 127.0.0.1:");
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    let mut board = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    listen.wait_for("chat1! accepted from 127.0.0.1:");
    board.write_all(b"hello from the board\n").unwrap();
    listen.wait_for("chat1| hello from the board");
    listen.send("@1 hello from the computer");
    board.set_read_timeout(Some(support::DEADLINE)).unwrap();
    let mut answer = String::new();
    BufReader::new(&board).read_line(&mut answer).unwrap();
    assert_eq!(answer.trim_end(), "hello from the computer");
    listen.send("@quit");
    assert!(listen.wait_exit().success(), "{}", listen.stderr());
}

/// Chat panes only, to a board's server.
#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn connect_opens_panes_to_the_board() {
    let board = BoardProcess::start(&[]);
    let address = format!("127.0.0.1:{}", board.port);
    let mut panes = HeadlessProcess::spawn(espchat_exe(&["connect", &address, "--clients", "2"]));
    panes.wait_all(&["chat1| Client 1 connected", "chat2| Client 2 connected"]);
    panes.send("@2 off");
    panes.wait_for("chat1| Client 2: off");
    panes.send("@quit");
    assert!(panes.wait_exit().success(), "{}", panes.stderr());
}

/// `espchat board` on Windows: its port is TCP, and esptool flashes it through `socket://`.
#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn esptool_flashes_the_windows_virtual_board() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let app = espchat::board::image::build("hello-world", "1.0", &vec![0x6B; 20_000]);
    let app_path = dir.path().join("hello.bin");
    std::fs::write(&app_path, &app).unwrap();
    let board =
        BoardProcess::start_command(espchat_exe(&["board", "--tcp-port", "0", "--no-throttle"]));
    let url = board.serial.to_str().unwrap().to_owned();
    assert!(url.starts_with("socket://127.0.0.1:"), "{url}");
    let output = support::esptool_write(&board, &["--no-stub"], &[], &app_path);
    assert!(output.contains("Hash of data verified"), "{output}");
    // esptool left: the board boots what it wrote and tells the next client.
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut console = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    console.write_all(b"\r\n").unwrap();
    support::read_until(
        &mut console,
        "app 'hello-world' runs here without a chat server",
    );
}

/// The exe named by the environment exists: a typo in the script would otherwise show as
/// four failures that blame Wine.
#[test]
#[ignore = "needs Wine and the Windows build: scripts/wine-test runs it"]
fn the_exe_is_there() {
    let exe = std::env::var_os("ESPCHAT_WINE_EXE").expect(NEEDS_WINE);
    assert!(Path::new(&exe).is_file(), "{exe:?}");
}
