//! A class of boards on one computer: several virtual boards flashed by one `espchat flash`,
//! each in its own pty, all at once.

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
