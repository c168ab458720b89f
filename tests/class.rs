//! A class of boards on one computer: several virtual boards flashed by one `espchat flash`,
//! each in its own pty, all at once.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use support::{BoardProcess, HeadlessProcess};

/// Polls until the board's chat server takes a connection.
fn serves_the_chat(board: &BoardProcess) -> bool {
    let end = Instant::now() + support::DEADLINE;
    while Instant::now() < end {
        if std::net::TcpStream::connect(("127.0.0.1", board.port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn sixteen_erased_boards_flashed_at_once_all_serve_the_chat() {
    let dir = tempfile::tempdir().unwrap();
    // A class: 16 boards, each its own pty and TCP port.
    let boards: Vec<(BoardProcess, _)> = (0..16).map(|_| BoardProcess::blank(dir.path())).collect();
    let mut args = vec!["flash".to_owned()];
    for (board, _) in &boards {
        args.extend(["-p".to_owned(), board.serial.to_str().unwrap().to_owned()]);
    }
    let output = support::espchat().args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{output:?}");
    let app = espchat::bundled::app_for(espchat::flash::Chip::Esp32c3).unwrap();
    let mut macs = std::collections::BTreeSet::new();
    for (k, (board, flash_file)) in boards.iter().enumerate() {
        let n = k + 1;
        // The first line of each board names its port; its last one says it is done.
        let serial = board.serial.display().to_string();
        assert!(
            stdout.contains(&format!("flash{n}! connecting to {serial} ")),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("flash{n}! done ")), "{stdout}");
        let row = stdout
            .lines()
            .find(|line| line.starts_with(&format!("flash! {serial} ")))
            .unwrap_or_else(|| panic!("no summary row for {serial}:\n{stdout}"));
        assert!(row.contains("ESP32-C3") && row.contains(" ok "), "{row}");
        // Each board has its own MAC, as real ones do: a class can tell them apart.
        macs.insert(row.split_whitespace().nth(3).unwrap().to_owned());
        let flash = std::fs::read(flash_file).unwrap();
        assert!(flash[0x10000..0x10000 + app.len()] == *app, "board {n}");
        assert!(serves_the_chat(board), "board {n} does not serve the chat");
    }
    assert_eq!(macs.len(), 16, "{macs:?}");
}

#[test]
fn a_board_lost_mid_flash_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (fast, _) = BoardProcess::blank(dir.path());
    // UART-paced at 115200: the bundled firmware takes it some 30 s, time enough to pull it.
    let mut slow = BoardProcess::start(&["--blank"]);
    let mut flash = HeadlessProcess::start(&[
        "flash",
        "-p",
        fast.serial.to_str().unwrap(),
        "-p",
        slow.serial.to_str().unwrap(),
    ]);
    flash.wait_for("flash2! 0x0 ");
    slow.signal_and_wait(nix::sys::signal::Signal::SIGKILL);
    let status = flash.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", flash.stderr());
    let stdout = flash.all_stdout().join("\n");
    assert!(stdout.contains("flash1! done "), "{stdout}");
    let failed = stdout
        .lines()
        .find(|line| line.starts_with("flash2! failed: "))
        .unwrap_or_else(|| panic!("no failure for board 2:\n{stdout}"));
    assert!(
        failed.contains(&slow.serial.display().to_string()),
        "{failed}"
    );
    let row = |port: &std::path::Path| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("flash! {} ", port.display())))
            .unwrap_or_else(|| panic!("no row for {}:\n{stdout}", port.display()))
            .to_owned()
    };
    assert!(row(&fast.serial).contains(" ok "), "{stdout}");
    assert!(row(&slow.serial).contains(" failed "), "{stdout}");
    assert!(
        flash.stderr().contains("1 of 2 boards failed"),
        "{}",
        flash.stderr()
    );
    assert!(serves_the_chat(&fast));
}

/// The roll-call (issue 15 item 3): 16 erased boards flashed, provisioned and watched by one
/// `flash-and-connect`, plus a port with no board; the roll names every board's address as its
/// console says it, the roster file keeps it, `@blink K` reaches board K, and the missing one
/// fails alone with its reason (exit 1).
#[test]
fn the_roll_call_lists_sixteen_boards_and_blinks_the_one_asked() {
    let dir = tempfile::tempdir().unwrap();
    let boards: Vec<(BoardProcess, _)> = (0..16).map(|_| BoardProcess::blank(dir.path())).collect();
    let missing = dir.path().join("ttyUSB-unplugged");
    let roster = dir.path().join("roster.csv");
    let mut args = vec!["flash-and-connect", "--headless"];
    let serials: Vec<String> = boards
        .iter()
        .map(|(board, _)| board.serial.display().to_string())
        .collect();
    for serial in &serials {
        args.extend(["-p", serial]);
    }
    args.extend(["-p", missing.to_str().unwrap()]);
    args.extend(["--roster", roster.to_str().unwrap()]);
    args.extend(["--wifi-ssid", "lab", "--wifi-password", "secret123"]);
    let mut roll = HeadlessProcess::start(&args);
    roll.wait_for("roll! 16 of 17 boards up");
    for (k, (board, _)) in boards.iter().enumerate() {
        let n = k + 1;
        let row = roll.wait_for(&format!("roll! {n:>3}  "));
        assert!(
            row.contains(&serials[k]) && row.ends_with(&format!(" 127.0.0.1:{}", board.port)),
            "{row}"
        );
    }
    let row = roll.wait_for("roll!  17  ");
    assert!(row.ends_with(" failed"), "{row}");
    roll.wait_for("roll! roster written to ");
    roll.send("@blink 5");
    let answer = roll.wait_for("blink: the LED flashes");
    assert!(
        answer.starts_with(&format!("roll! 5 {} ", serials[4])),
        "{answer}"
    );
    roll.end_input();
    assert_eq!(roll.wait_exit().code(), Some(1), "{}", roll.stderr());
    let stdout = roll.all_stdout().join("\n");
    // Each board was given the Wi-Fi credentials, and the missing one says why it failed.
    for (k, serial) in serials.iter().enumerate() {
        assert!(
            stdout.contains(&format!("roll! {} {serial} 58:cf:79:1a:", k + 1)),
            "{stdout}"
        );
    }
    assert_eq!(
        stdout
            .matches("sending the Wi-Fi credentials for \"lab\"")
            .count(),
        16
    );
    assert!(
        stdout.contains(&format!(
            "roll! 17 {} - failed: flashing failed: ",
            missing.display()
        )),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&roster).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "board,port,mac,ip,tcp_port,status");
    assert_eq!(rows.len(), 18, "{csv}");
    for (k, (board, _)) in boards.iter().enumerate() {
        let fields: Vec<&str> = rows[k + 1].split(',').collect();
        assert_eq!(fields[0], (k + 1).to_string());
        assert_eq!(fields[1], serials[k]);
        assert!(fields[2].starts_with("58:cf:79:1a:"), "{}", rows[k + 1]);
        assert_eq!(fields[3..], ["127.0.0.1", &board.port.to_string(), "up"]);
    }
}

/// `--no-flash`: boards that run already are asked for their MAC by their ROM loader (which
/// resets them into the app) and watched: the roll has them all.
#[test]
fn the_roll_call_without_flashing_takes_running_boards() {
    let boards: Vec<BoardProcess> = (0..3).map(|_| BoardProcess::start(&[])).collect();
    let serials: Vec<String> = boards
        .iter()
        .map(|board| board.serial.display().to_string())
        .collect();
    let mut args = vec!["flash-and-connect", "--headless", "--no-flash"];
    for serial in &serials {
        args.extend(["-p", serial]);
    }
    let mut roll = HeadlessProcess::start(&args);
    roll.wait_for("roll! 3 of 3 boards up");
    for (k, board) in boards.iter().enumerate() {
        let row = roll.wait_for(&format!("roll! {:>3}  ", k + 1));
        assert!(row.contains(" 58:cf:79:1a:"), "{row}");
        assert!(
            row.ends_with(&format!(" 127.0.0.1:{}", board.port)),
            "{row}"
        );
    }
    roll.end_input();
    assert!(roll.wait_exit().success(), "{}", roll.stderr());
    assert!(
        !roll
            .all_stdout()
            .iter()
            .any(|line| line.starts_with("flash"))
    );
}

/// Line mode with several boards (issue 15 item 4): every source numbered by board, commands
/// routed by number; one board's lines never under the other's number.
#[test]
fn line_mode_with_two_boards_numbers_every_source() {
    let first = BoardProcess::start(&[]);
    let second = BoardProcess::start(&[]);
    let (a, b) = (
        first.serial.display().to_string(),
        second.serial.display().to_string(),
    );
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &a, "-p", &b]);
    monitor.wait_all(&[
        &format!("serial1! opened {a} at 115200 baud"),
        &format!("serial2! opened {b} at 115200 baud"),
    ]);
    monitor.send("@serial2 ip");
    monitor.wait_all(&[
        "board2! ip 127.0.0.1",
        &format!("board2! port {}", second.port),
    ]);
    monitor.send("@serial1 status");
    let answer = monitor.wait_for("espchat: LED is off");
    assert!(answer.starts_with("serial1| "), "{answer}");
    monitor.send("@3.1 hello");
    assert_eq!(
        monitor.wait_for("error! "),
        "error! unknown command \"@3.1\": use @serialK text, @quit (K: the board, 1 to 2)"
    );
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());

    // With chat panes: chatK.N, and a line for board 2's pane 1 reaches board 2 only.
    let mut tui =
        HeadlessProcess::start(&["tui", "--headless", "--clients", "1", "-p", &a, "-p", &b]);
    tui.send("@serial1 ip");
    tui.send("@serial2 ip");
    tui.wait_all(&[
        &format!("chat1.1! connected 127.0.0.1:{}", first.port),
        &format!("chat2.1! connected 127.0.0.1:{}", second.port),
        "chat1.1| Client 1 connected",
        "chat2.1| Client 1 connected",
    ]);
    tui.send("@2.1 on");
    tui.wait_for("chat2.1| LED on (Client 1)");
    tui.send("@all bye");
    tui.wait_all(&["chat1.1| Client 1: bye", "chat2.1| Client 1: bye"]);
    tui.end_input();
    assert!(tui.wait_exit().success(), "{}", tui.stderr());
    let seen = tui.all_stdout().join("\n");
    assert!(!seen.contains("chat1.1| LED on"), "{seen}");
    assert!(
        seen.lines()
            .all(|line| !line.starts_with("serial|") && !line.starts_with("chat1|")),
        "an unnumbered source: {seen}"
    );
}
