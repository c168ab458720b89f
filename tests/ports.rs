//! `espchat ports --probe` against virtual boards: every port at once, each one's chip, MAC and
//! flash, a busy or missing port named without stopping the others, and the boards back in
//! their apps afterwards.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use support::{BoardProcess, HeadlessProcess};

/// The row of `table` for `port`.
fn row<'a>(table: &'a str, port: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(port))
        .unwrap_or_else(|| panic!("no row for {port}:\n{table}"))
}

#[test]
fn probe_lists_each_board_and_names_the_ports_it_cannot_ask() {
    let dir = tempfile::tempdir().unwrap();
    let running = BoardProcess::start(&["--no-throttle"]);
    let (blank, _) = BoardProcess::blank(dir.path());
    let held = BoardProcess::start(&["--no-throttle"]);
    let held_path = held.serial.to_str().unwrap().to_owned();
    let mut monitor = HeadlessProcess::start(&["monitor", "--headless", "-p", &held_path]);
    monitor.wait_for("serial! opened");

    let (running_path, blank_path) = (
        running.serial.to_str().unwrap().to_owned(),
        blank.serial.to_str().unwrap().to_owned(),
    );
    let missing = dir.path().join("ttyUSB9");
    let missing = missing.to_str().unwrap();
    let output = support::espchat()
        .args(["ports", "--probe"])
        .args([
            "-p",
            &running_path,
            "-p",
            &blank_path,
            "-p",
            &held_path,
            "-p",
            missing,
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}\n{output:?}");
    assert!(table.starts_with("PORT "), "{table}");
    for port in [&running_path, &blank_path] {
        let row = row(&table, port);
        assert!(
            row.contains("ESP32-C3")
                && row.contains("4 MB")
                && row.contains("58:cf:79:")
                && row.ends_with(" ok"),
            "{row}"
        );
    }
    let busy = row(&table, &held_path);
    assert!(
        busy.contains(&format!(
            "busy (used by espchat (pid {}))",
            monitor.child.id()
        )),
        "{busy}"
    );
    assert!(row(&table, missing).ends_with(" not found"), "{table}");

    // The probe closed the port: the board left its loader and serves the chat again.
    let end = Instant::now() + support::DEADLINE;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", running.port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < end,
            "the probed board never served the chat again"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    monitor.end_input();
}
