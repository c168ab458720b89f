//! A class of boards: 16 virtual boards (`espchat board --blank`, each UART-paced like a real
//! link) get the bundled firmware's app image at 921600 baud, four ways, in one run:
//!
//! - espchat, one board alone (the reference: what one board takes);
//! - espchat, every board at once in one process (`espchat flash -p A -p B ...`);
//! - espchat, one board after another (a shell loop of `espchat flash`);
//! - esptool, one process per board, all at once (what a loop of `esptool &` does).
//!
//! Per row: wall time from the first spawn to the last exit, CPU time (user + system, summed
//! over the tool's processes, from wait4), and peak resident memory (summed over processes that
//! ran at the same time, the largest for one after another). The boards' own work is the same
//! in every row and is not counted. Every board's flash is checked afterwards; a row with a
//! wrong flash or a failed tool is marked FAILED.
//!
//! Goals (issue "A class of boards"): espchat's parallel run within 1.3x of one board's time,
//! and less CPU and memory than the 16 esptool processes.
//!
//! CLASS_BENCH_BOARDS=N changes the number of boards. esptool is found as in the flashing bench.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::table::{Table, fmt_ratio, verdict};
use support::{Bench, VirtualBoard, find_esptool};

const BOARDS: usize = 16;
const BAUD: u32 = 921_600;
const APP_OFFSET: usize = 0x10000;

fn main() {
    let bench = Bench::start(
        "class benchmark: the bundled app image to 16 virtual boards at 921600 baud, at once and \
         one by one",
    );
    let boards = std::env::var("CLASS_BENCH_BOARDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(BOARDS);
    let image = espchat::bundled::app_for(espchat::flash::Chip::Esp32c3)
        .expect("the bundled ESP32-C3 firmware")
        .to_vec();
    let esptool = find_esptool();
    println!(
        "boards: {boards}; image: {} bytes (the bundled ESP32-C3 app, written at 0x10000); esptool: {}",
        image.len(),
        esptool
            .as_ref()
            .map_or("not found: its row is skipped".to_owned(), |e| format!(
                "{} ({})",
                e.version,
                e.path.display()
            ))
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let app = dir.path().join("app.bin");
    std::fs::write(&app, &image).expect("write the image");

    let espchat = PathBuf::from(env!("CARGO_BIN_EXE_espchat"));
    let espchat_args = |ports: &[PathBuf]| {
        let mut args = vec!["flash".to_owned(), "-b".to_owned(), BAUD.to_string()];
        for port in ports {
            args.extend(["-p".to_owned(), port.display().to_string()]);
        }
        args.push(app.display().to_string());
        args
    };

    let one = run_row(dir.path(), "espchat, 1 board", 1, &image, |ports| {
        Plan::Together(vec![(espchat.clone(), espchat_args(ports))])
    });
    let together = run_row(
        dir.path(),
        &format!("espchat, {boards} at once (1 process)"),
        boards,
        &image,
        |ports| Plan::Together(vec![(espchat.clone(), espchat_args(ports))]),
    );
    let sequential = run_row(
        dir.path(),
        &format!("espchat, {boards} one by one"),
        boards,
        &image,
        |ports| {
            Plan::OneByOne(
                ports
                    .iter()
                    .map(|port| (espchat.clone(), espchat_args(std::slice::from_ref(port))))
                    .collect(),
            )
        },
    );
    let esptool_row = esptool.as_ref().map(|esptool| {
        run_row(
            dir.path(),
            &format!("esptool, {boards} processes at once"),
            boards,
            &image,
            |ports| {
                Plan::Together(
                    ports
                        .iter()
                        .map(|port| {
                            let args = [
                                "--chip",
                                "esp32c3",
                                "-p",
                                &port.display().to_string(),
                                "--before",
                                "no-reset",
                                "--after",
                                "no-reset",
                                "-b",
                                &BAUD.to_string(),
                                "write-flash",
                                &format!("0x{APP_OFFSET:x}"),
                                &app.display().to_string(),
                            ]
                            .map(str::to_owned)
                            .to_vec();
                            (esptool.path.clone(), args)
                        })
                        .collect(),
                )
            },
        )
    });

    let mut table = Table::new(["run", "wall s", "CPU s", "peak RSS MiB", "boards ok"]);
    let rows: Vec<&Row> = [
        Some(&one),
        Some(&together),
        Some(&sequential),
        esptool_row.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for row in &rows {
        match &row.failure {
            None => table.row([
                row.label.clone(),
                format!("{:.2}", row.wall.as_secs_f64()),
                format!("{:.2}", row.cpu.as_secs_f64()),
                format!("{:.1}", row.rss_kib as f64 / 1024.0),
                format!("{}/{}", row.boards_ok, row.boards),
            ]),
            Some(failure) => {
                table.row_with_remark([row.label.clone()], format!("FAILED: {failure}"))
            }
        }
    }
    table.print();

    let ok = |row: &Row| row.failure.is_none();
    let time_ratio =
        (ok(&together) && ok(&one)).then(|| together.wall.as_secs_f64() / one.wall.as_secs_f64());
    println!();
    println!(
        "espchat at once / one board alone, wall: {} (goal <= 1.30: {})",
        fmt_ratio(time_ratio, Some(1.0)),
        time_ratio.map_or("-", |ratio| verdict(ratio <= 1.3))
    );
    println!(
        "espchat at once / one by one, wall: {}",
        fmt_ratio(
            (ok(&together) && ok(&sequential)).then_some(together.wall.as_secs_f64()),
            Some(sequential.wall.as_secs_f64())
        )
    );
    match esptool_row.as_ref().filter(|row| ok(row)) {
        Some(esptool) if ok(&together) => {
            let cpu = together.cpu.as_secs_f64() / esptool.cpu.as_secs_f64();
            let rss = together.rss_kib as f64 / esptool.rss_kib as f64;
            println!(
                "espchat at once / esptool processes at once: wall {}, CPU {cpu:.2}x (goal < 1: {}), \
                 peak RSS {rss:.2}x (goal < 1: {})",
                fmt_ratio(
                    Some(together.wall.as_secs_f64()),
                    Some(esptool.wall.as_secs_f64())
                ),
                verdict(cpu < 1.0),
                verdict(rss < 1.0)
            );
        }
        _ => println!("espchat against esptool: no ratio (a row failed or esptool is missing)"),
    }
    bench.finish();
}

/// How a row runs its tool processes.
enum Plan {
    /// All at once; wall time from the first spawn to the last exit.
    Together(Vec<(PathBuf, Vec<String>)>),
    /// Each after the previous one exited.
    OneByOne(Vec<(PathBuf, Vec<String>)>),
}

struct Row {
    label: String,
    boards: usize,
    boards_ok: usize,
    wall: Duration,
    cpu: Duration,
    rss_kib: u64,
    failure: Option<String>,
}

/// Starts `boards` blank boards, runs what `plan` makes of their ports, stops the boards and
/// checks every flash.
fn run_row(
    dir: &Path,
    label: &str,
    boards: usize,
    image: &[u8],
    plan: impl FnOnce(&[PathBuf]) -> Plan,
) -> Row {
    let mut row = Row {
        label: label.to_owned(),
        boards,
        boards_ok: 0,
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        rss_kib: 0,
        failure: None,
    };
    let files: Vec<PathBuf> = (0..boards)
        .map(|n| dir.join(format!("flash-{}-{n}.bin", label.replace([' ', ','], "_"))))
        .collect();
    let mut started = Vec::new();
    for file in &files {
        match VirtualBoard::start(file) {
            Ok(board) => started.push(board),
            Err(error) => {
                row.failure = Some(format!("virtual board: {error}"));
                return row;
            }
        }
    }
    let ports: Vec<PathBuf> = started.iter().map(|board| board.serial.clone()).collect();
    let measured = match plan(&ports) {
        Plan::Together(commands) => run_together(commands),
        Plan::OneByOne(commands) => run_one_by_one(commands),
    };
    for board in started {
        if let Err(error) = board.stop() {
            row.failure
                .get_or_insert(format!("stopping a board: {error}"));
        }
    }
    match measured {
        Ok(measured) => {
            row.wall = measured.wall;
            row.cpu = measured.cpu;
            row.rss_kib = measured.rss_kib;
            if let Some(failure) = measured.failure {
                row.failure.get_or_insert(failure);
            }
        }
        Err(error) => {
            row.failure.get_or_insert(error);
        }
    }
    row.boards_ok = files
        .iter()
        .filter(|file| {
            std::fs::read(file)
                .is_ok_and(|flash| flash.get(APP_OFFSET..APP_OFFSET + image.len()) == Some(image))
        })
        .count();
    for file in &files {
        let _ = std::fs::remove_file(file);
    }
    if row.boards_ok < boards {
        row.failure.get_or_insert(format!(
            "WRONG FLASH on {} of {boards} boards",
            boards - row.boards_ok
        ));
    }
    row
}

struct Measured {
    wall: Duration,
    cpu: Duration,
    rss_kib: u64,
    failure: Option<String>,
}

/// One exited process: its status, CPU time and peak RSS, from wait4.
struct Exit {
    success: bool,
    cpu: Duration,
    rss_kib: u64,
    output: String,
}

fn run_together(commands: Vec<(PathBuf, Vec<String>)>) -> Result<Measured, String> {
    let started = Instant::now();
    let children: Vec<_> = commands
        .iter()
        .map(|(program, args)| spawn(program, args))
        .collect::<Result<_, _>>()?;
    let exits: Vec<Exit> = children.into_iter().map(reap).collect();
    let wall = started.elapsed();
    Ok(summarize(
        wall,
        &exits,
        exits.iter().map(|exit| exit.rss_kib).sum(),
    ))
}

fn run_one_by_one(commands: Vec<(PathBuf, Vec<String>)>) -> Result<Measured, String> {
    let started = Instant::now();
    let mut exits = Vec::new();
    for (program, args) in &commands {
        exits.push(reap(spawn(program, args)?));
    }
    let wall = started.elapsed();
    let largest = exits.iter().map(|exit| exit.rss_kib).max().unwrap_or(0);
    Ok(summarize(wall, &exits, largest))
}

fn summarize(wall: Duration, exits: &[Exit], rss_kib: u64) -> Measured {
    let failure = exits
        .iter()
        .find(|exit| !exit.success)
        .map(|exit| format!("a tool failed: {}", last_line(&exit.output)));
    Measured {
        wall,
        cpu: exits.iter().map(|exit| exit.cpu).sum(),
        rss_kib,
        failure,
    }
}

struct Running {
    pid: libc::pid_t,
    output: thread::JoinHandle<String>,
}

fn spawn(program: &Path, args: &[String]) -> Result<Running, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", program.display()))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let output = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| "pid out of range".to_owned())?;
    // The Child is dropped unreaped: wait4 below reaps it, with its resource usage.
    drop(child);
    Ok(Running { pid, output })
}

/// Waits for the process and reads what the kernel counted for it.
fn reap(running: Running) -> Exit {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, spawned above and not reaped by anyone else.
    let reaped = unsafe { libc::wait4(running.pid, &mut status, 0, &mut usage) };
    let output = running.output.join().unwrap_or_default();
    let seconds = |time: libc::timeval| {
        Duration::from_secs(u64::try_from(time.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(time.tv_usec).unwrap_or(0))
    };
    Exit {
        success: reaped == running.pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        output,
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("(no output)")
}
