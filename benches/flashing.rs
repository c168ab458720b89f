//! Flashing benchmark: `espchat flash` (the espflash library) against esptool, writing a 1 MiB
//! ESP32-C3 app image to the virtual board (`espchat board`) at 115200, 921600 and 2000000
//! baud. Numbers, not pass/fail: it prints a table.
//!
//! The board paces its ROM loader's traffic like a real UART at the baud rate the client set on
//! the pty (10 bits a byte, both directions on one clock, on a timerfd), so the times
//! are those of a real link, less the chip's own erase, write and MD5 times, which the board
//! does not model.
//!
//! Rows, per baud rate: espchat with its stub (compressed, the default), espchat `--no-stub`
//! (the ROM loader, compressed) and `--no-stub --no-compress`, and esptool with its stub or the ROM loader, each with `--compress` and
//! `--no-compress`. Every run gets a fresh blank board (`--blank --flash-file F`), so runs do
//! not depend on each other (espflash skips segments whose MD5 already matches). The time is
//! the tool's wall time from process start to exit: connecting, the stub upload, the baud
//! change, writing and the MD5 check. After the tool exits the board is stopped (SIGTERM: it
//! saves its flash to F) and F is compared with the image: a row whose flash is wrong, or whose
//! tool failed, is marked FAILED and left out of the rates and ratios.
//!
//! 115200 baud is slow (some 90 s per uncompressed megabyte): there the rows that add the
//! least are skipped (`SKIPPED_AT_115200`); FLASHING_BENCH_ALL=1 runs them too.
//!
//! FLASHING_BENCH_BAUD=N runs only the rows at N (one of the three rates).
//!
//! esptool is found through $ESPTOOL, /tmp/esptool-venv/bin/esptool, target/ci-venv/bin/esptool
//! (where CI installs it) or PATH; without it its rows are skipped with a message.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use espchat::board::image;
use support::table::{Align, Table, fmt_ratio, verdict};
use support::{Bench, Esptool, VirtualBoard, find_esptool};

const BAUDS: [u32; 3] = [115_200, 921_600, 2_000_000];
/// The image is this long, or a few bytes less (its segments are padded to 4 bytes).
const IMAGE_BYTES: usize = 1 << 20;
/// Percent of the image's 4 KiB pages that are pseudo-random: with it the image deflates about
/// as well as a real app, the bundled espchat firmware (the bench prints both).
const RANDOM_PAGES: u64 = 28;
/// Where a `.bin` goes, for both tools.
const APP_OFFSET: usize = 0x10000;
/// The ROM loader's FLASH_DATA block, for espflash and esptool alike.
const ROM_BLOCK: usize = 1024;
/// The 4 MiB flash of the virtual board.
const FLASH_BYTES: usize = 4 << 20;

/// Rows not run at 115200, unless FLASHING_BENCH_ALL=1: the time the rest take is enough.
const SKIPPED_AT_115200: &[Mode] = &[ESPTOOL_STUB_RAW];
const SKIP_REASON: &str = "at 115200 it takes as long as the ROM's uncompressed write (some \
                           90 s) and shows nothing the 921600 and 2000000 rows do not: the \
                           same bytes on the wire, only 16 KiB blocks instead of 1 KiB";

fn main() {
    let bench = Bench::start(
        "flashing benchmark: a 1 MiB ESP32-C3 app image to the virtual board, paced like a UART",
    );
    let image = app_image();
    let compressed = deflated_len(&image);
    let esptool = find_esptool();
    print_context(&image, compressed, esptool.as_ref());

    let all_rows = std::env::var_os("FLASHING_BENCH_ALL").is_some_and(|value| value == "1");
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            println!("cannot create a temporary directory: {error}");
            return;
        }
    };
    let app = dir.path().join("app.bin");
    if let Err(error) = std::fs::write(&app, &image) {
        println!("cannot write {}: {error}", app.display());
        return;
    }

    // FLASHING_BENCH_BAUD=921600 (say) runs that rate only: a quick look.
    let only_baud: Option<u32> = std::env::var("FLASHING_BENCH_BAUD")
        .ok()
        .and_then(|baud| baud.parse().ok());
    let mut rows = Vec::new();
    // The fast rates first: a broken setup shows in seconds, not minutes.
    for &baud in BAUDS.iter().rev() {
        if only_baud.is_some_and(|only| only != baud) {
            continue;
        }
        for mode in MODES {
            let skip = if mode.tool == Tool::Esptool && esptool.is_none() {
                Some(Skip::NoEsptool)
            } else if baud == 115_200 && !all_rows && SKIPPED_AT_115200.contains(&mode) {
                Some(Skip::Slow)
            } else {
                None
            };
            let result = match skip {
                Some(skip) => Err(skip),
                None => {
                    let run = run_row(
                        mode,
                        baud,
                        &app,
                        &image,
                        dir.path(),
                        esptool.as_ref(),
                        compressed,
                    );
                    print_progress(mode, baud, &run, image.len());
                    Ok(run)
                }
            };
            rows.push(Row { baud, mode, result });
        }
    }
    rows.sort_by_key(|row| row.baud);

    print_table(&rows, &image, compressed, all_rows);
    bench.finish();
}

// ---------------------------------------------------------------------------------------------
// The image

/// A valid ESP32-C3 app image of about 1 MiB. Its IROM payload stands for a real app: 4 KiB
/// pages, some of pseudo-random bytes (code and data that deflate cannot shrink), the others of
/// ESP-IDF style text with numbers in it (strings, tables, logs: they shrink a lot).
fn app_image() -> Vec<u8> {
    const PAGE: usize = 4096;
    const WORDS: &str = "wifi esp_netif tcp chat client connected heap task queue timeout ok \
                         failed retry rx tx buffer";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    // The header, descriptor and segment headers take a few hundred bytes.
    let payload_len = IMAGE_BYTES - 512;
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut payload = Vec::with_capacity(payload_len + PAGE);
    while payload.len() < payload_len {
        if random.next() % 100 < RANDOM_PAGES {
            for _ in 0..PAGE / 8 {
                payload.extend_from_slice(&random.next().to_le_bytes());
            }
        } else {
            let start = payload.len();
            while payload.len() < start + PAGE {
                let value = random.next();
                let line = format!(
                    "I ({}) {}: {} {} 0x{:08x} {}\r\n\0",
                    value % 100_000,
                    words[(value >> 20) as usize % words.len()],
                    words[(value >> 24) as usize % words.len()],
                    words[(value >> 28) as usize % words.len()],
                    (value >> 32) as u32 & 0x3FCF_FFFF,
                    value % 997
                );
                payload.extend_from_slice(line.as_bytes());
            }
            payload.truncate(start + PAGE);
        }
    }
    payload.truncate(payload_len);
    image::build("flashbench", "1.0.0", &payload)
}

/// What espchat sends of `bytes` compressed (zlib level 9, as esptool does).
fn deflated_len(bytes: &[u8]) -> usize {
    espchat::flash::deflate(bytes).map_or(bytes.len(), |compressed| compressed.len())
}

/// xorshift64: fixed content from run to run, without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

// ---------------------------------------------------------------------------------------------
// Tools and modes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    Espchat,
    Esptool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mode {
    tool: Tool,
    /// The tool's RAM stub; else the chip's ROM loader.
    stub: bool,
    /// Deflate on the wire (FLASH_DEFL_*); else FLASH_DATA.
    compress: bool,
}

const ESPCHAT_STUB: Mode = Mode {
    tool: Tool::Espchat,
    stub: true,
    compress: true,
};
const ESPCHAT_ROM_ZLIB: Mode = Mode {
    tool: Tool::Espchat,
    stub: false,
    compress: true,
};
const ESPCHAT_ROM_RAW: Mode = Mode {
    tool: Tool::Espchat,
    stub: false,
    compress: false,
};
const ESPTOOL_STUB_ZLIB: Mode = Mode {
    tool: Tool::Esptool,
    stub: true,
    compress: true,
};
const ESPTOOL_STUB_RAW: Mode = Mode {
    tool: Tool::Esptool,
    stub: true,
    compress: false,
};
const ESPTOOL_ROM_ZLIB: Mode = Mode {
    tool: Tool::Esptool,
    stub: false,
    compress: true,
};
const ESPTOOL_ROM_RAW: Mode = Mode {
    tool: Tool::Esptool,
    stub: false,
    compress: false,
};

/// Table order. espflash's stub always compresses (where deflate shrinks the data), so espchat
/// has no stub, raw row.
const MODES: [Mode; 7] = [
    ESPCHAT_STUB,
    ESPCHAT_ROM_ZLIB,
    ESPCHAT_ROM_RAW,
    ESPTOOL_STUB_ZLIB,
    ESPTOOL_STUB_RAW,
    ESPTOOL_ROM_ZLIB,
    ESPTOOL_ROM_RAW,
];

impl Mode {
    fn tool_name(self) -> &'static str {
        match self.tool {
            Tool::Espchat => "espchat",
            Tool::Esptool => "esptool",
        }
    }

    /// The options that select the mode, as the user types them.
    fn flags(self) -> &'static str {
        match (self.tool, self.stub, self.compress) {
            (Tool::Espchat, true, _) => "(default)",
            (Tool::Espchat, false, true) => "--no-stub",
            (Tool::Espchat, false, false) => "--no-stub --no-compress",
            (Tool::Esptool, true, true) => "--compress",
            (Tool::Esptool, true, false) => "--no-compress",
            (Tool::Esptool, false, true) => "--no-stub --compress",
            (Tool::Esptool, false, false) => "--no-stub --no-compress",
        }
    }

    fn loader(self) -> &'static str {
        if self.stub { "stub" } else { "ROM" }
    }

    fn data(self) -> &'static str {
        if self.compress { "zlib" } else { "raw" }
    }

    fn label(self) -> String {
        format!("{} {}", self.tool_name(), self.flags())
    }

    fn command(self, baud: u32, port: &Path, app: &Path, esptool: Option<&Esptool>) -> Command {
        let baud = baud.to_string();
        match self.tool {
            Tool::Espchat => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_espchat"));
                command.arg("flash").arg(app).arg("-p").arg(port);
                command.args(["-b", &baud]);
                if !self.stub {
                    command.arg("--no-stub");
                    if !self.compress {
                        command.arg("--no-compress");
                    }
                }
                command
            }
            Tool::Esptool => {
                let program = esptool.map_or_else(|| PathBuf::from("esptool"), |e| e.path.clone());
                let mut command = Command::new(program);
                command.args(["--chip", "esp32c3", "-p"]).arg(port);
                command.args(["--before", "no-reset", "--after", "no-reset", "-b", &baud]);
                if !self.stub {
                    command.arg("--no-stub");
                }
                command.arg("write-flash");
                command.arg(if self.compress {
                    "--compress"
                } else {
                    "--no-compress"
                });
                command.arg(format!("{APP_OFFSET:#x}")).arg(app);
                command
            }
        }
    }
}

/// espflash's version, from the lock file the bench was built with.
fn espflash_version() -> String {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
    std::fs::read_to_string(lock)
        .ok()
        .and_then(|lock| {
            let at = lock.find("name = \"espflash\"\nversion = \"")?;
            let rest = &lock[at + "name = \"espflash\"\nversion = \"".len()..];
            Some(rest[..rest.find('"')?].to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

// ---------------------------------------------------------------------------------------------
// The virtual board

// ---------------------------------------------------------------------------------------------
// One row

struct Row {
    baud: u32,
    mode: Mode,
    result: Result<Run, Skip>,
}

#[derive(Clone, Copy)]
enum Skip {
    NoEsptool,
    Slow,
}

struct Run {
    /// From the tool's start to its exit.
    wall: Duration,
    /// The write time the tool itself printed (espchat: `flash! done … in X s`, from
    /// FLASH_BEGIN to FLASH_END, MD5 check included; esptool: `Wrote … in X seconds`, the
    /// blocks only, after FLASH_BEGIN and before the MD5 check).
    tool_write: Option<f64>,
    /// Bytes esptool says it sent (compressed), if it said.
    sent: Option<u64>,
    /// Why the row failed: the tool's exit, a timeout, or the flash not holding the image.
    failure: Option<String>,
}

impl Run {
    fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

fn run_row(
    mode: Mode,
    baud: u32,
    app: &Path,
    image: &[u8],
    dir: &Path,
    esptool: Option<&Esptool>,
    compressed: usize,
) -> Run {
    let failed = |failure: String| Run {
        wall: Duration::ZERO,
        tool_write: None,
        sent: None,
        failure: Some(failure),
    };
    let flash_file = dir.join(format!(
        "flash-{baud}-{}.bin",
        mode.label().replace(' ', "_")
    ));
    let board = match VirtualBoard::start(&flash_file) {
        Ok(board) => board,
        Err(error) => return failed(format!("virtual board: {error}")),
    };
    // Generous: twice the time of the bytes on the wire at the line rate, plus a minute.
    let wire = if mode.compress {
        compressed
    } else {
        image.len()
    };
    let deadline = Duration::from_secs_f64(2.0 * wire as f64 * 10.0 / f64::from(baud) + 60.0);
    let mut command = mode.command(baud, &board.serial, app, esptool);
    command.current_dir(dir);
    let finished = match run_timed(command, deadline) {
        Ok(finished) => finished,
        Err(error) => return failed(error),
    };
    let stopped = board.stop();
    let mut failure = None;
    if finished.timed_out {
        failure = Some(format!("no exit within {deadline:?}: killed"));
    } else if !finished.status.success() {
        failure = Some(format!(
            "exit {}: {}",
            finished.status,
            last_lines(&finished.stdout, &finished.stderr)
        ));
    }
    let check = match stopped {
        Ok(()) => check_flash(&flash_file, image),
        Err(error) => Err(format!("cannot check the flash: {error}")),
    };
    let _ = std::fs::remove_file(&flash_file);
    if let Err(problem) = check {
        failure = Some(match failure {
            Some(failure) => format!("{failure}; {problem}"),
            None => problem,
        });
    }
    let (tool_write, sent) = match mode.tool {
        Tool::Espchat => (espchat_write_time(&finished.stdout), None),
        Tool::Esptool => esptool_write_report(&finished.stdout),
    };
    Run {
        wall: finished.wall,
        tool_write,
        sent,
        failure,
    }
}

/// The flash the board saved must hold the image at 0x10000 and be erased everywhere else
/// (it started blank).
fn check_flash(flash_file: &Path, image: &[u8]) -> Result<(), String> {
    let flash = std::fs::read(flash_file)
        .map_err(|error| format!("cannot read the saved flash: {error}"))?;
    if flash.len() != FLASH_BYTES {
        return Err(format!(
            "the saved flash is {} bytes, not {FLASH_BYTES}",
            flash.len()
        ));
    }
    let written = &flash[APP_OFFSET..APP_OFFSET + image.len()];
    let wrong = written
        .iter()
        .zip(image)
        .filter(|(got, want)| got != want)
        .count();
    if wrong > 0 {
        let first = written
            .iter()
            .zip(image)
            .position(|(got, want)| got != want)
            .unwrap_or(0);
        return Err(format!(
            "WRONG FLASH: {wrong} of the image's {} bytes differ, the first at image offset \
             {first:#x}",
            image.len()
        ));
    }
    let outside = flash[..APP_OFFSET]
        .iter()
        .chain(&flash[APP_OFFSET + image.len()..])
        .filter(|&&byte| byte != 0xFF)
        .count();
    if outside > 0 {
        return Err(format!(
            "WRONG FLASH: the image is there, but {outside} bytes outside it are no longer \
             erased"
        ));
    }
    Ok(())
}

struct Finished {
    status: ExitStatus,
    wall: Duration,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its exit (killed at `deadline`), timing it from spawn to exit.
fn run_timed(mut command: Command, deadline: Duration) -> Result<Finished, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot run {:?}: {error}", command.get_program()))?;
    let pid = child.id();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = done_tx.send((status, Instant::now()));
    });
    let (status, ended, timed_out) = match done_rx.recv_timeout(deadline) {
        Ok((status, ended)) => (status, ended, false),
        Err(_) => {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: the waiter has not reaped the child (it would have reported), so the
                // pid is still our child's.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let (status, ended) = done_rx
                .recv()
                .map_err(|_| "the waiter thread died".to_owned())?;
            (status, ended, true)
        }
    };
    let _ = waiter.join();
    let status = status.map_err(|error| format!("cannot wait for the tool: {error}"))?;
    Ok(Finished {
        status,
        wall: ended.duration_since(started),
        timed_out,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Reads a child's pipe to its end, as text.
fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// The last few non-empty lines of a failed tool's output, on one line.
fn last_lines(stdout: &str, stderr: &str) -> String {
    let lines: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// `flash! done 1048576 bytes in 12.34 s`.
fn espchat_write_time(stdout: &str) -> Option<f64> {
    stdout.lines().find_map(|line| {
        let rest = line.strip_prefix("flash! done ")?;
        let (_, seconds) = rest.split_once(" bytes in ")?;
        seconds.strip_suffix(" s")?.trim().parse().ok()
    })
}

/// `Wrote 1048576 bytes (578123 compressed) at 0x00010000 in 6.1 seconds (1374.6 kbit/s).`
/// or `Wrote 1048576 bytes at 0x00010000 in 12.3 seconds (…).`: the seconds and the bytes
/// sent.
fn esptool_write_report(stdout: &str) -> (Option<f64>, Option<u64>) {
    let Some(line) = stdout
        .lines()
        .find(|line| line.trim().starts_with("Wrote "))
    else {
        return (None, None);
    };
    let seconds = line.split_once(" in ").and_then(|(_, rest)| {
        rest.split_whitespace()
            .next()
            .and_then(|number| number.parse().ok())
    });
    let sent = line.split_once(" bytes (").and_then(|(_, rest)| {
        rest.split_once(" compressed)")
            .and_then(|(number, _)| number.parse().ok())
    });
    (seconds, sent)
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_context(image: &[u8], compressed: usize, esptool: Option<&Esptool>) {
    let real = espchat::bundled::app_for(espchat::flash::Chip::Esp32c3).unwrap();
    let real_compressed = deflated_len(real);
    println!(
        "image: {} bytes (espchat::board::image::build: 4 KiB pages, {RANDOM_PAGES}% \
         pseudo-random, the rest log-style text); zlib level 9: {} bytes = {:.1}% of the image \
         (the bundled espchat ESP32-C3 firmware, a real app: {:.1}%)",
        image.len(),
        compressed,
        100.0 * compressed as f64 / image.len() as f64,
        100.0 * real_compressed as f64 / real.len() as f64
    );
    println!(
        "tools: espchat flash (espflash {} library); {}",
        espflash_version(),
        match esptool {
            Some(esptool) => format!("esptool {} ({})", esptool.version, esptool.path.display()),
            None => "esptool: not found ($ESPTOOL, /tmp/esptool-venv/bin/esptool, \
                     target/ci-venv/bin/esptool, PATH): its rows are skipped (python3 -m venv \
                     /tmp/esptool-venv && /tmp/esptool-venv/bin/pip install 'esptool>=5,<6')"
                .to_owned(),
        }
    );
    let line_rate: Vec<String> = BAUDS
        .iter()
        .map(|&baud| {
            format!(
                "{:.1} s at {baud}",
                image.len() as f64 * 10.0 / f64::from(baud)
            )
        })
        .collect();
    println!(
        "the image at the line rate (baud/10 bytes/s): {}",
        line_rate.join(", ")
    );
    println!("note: one run per row, each on a fresh blank board; the machine is shared");
    println!();
}

fn print_progress(mode: Mode, baud: u32, run: &Run, image_len: usize) {
    let label = format!("{baud} {}", mode.label());
    match &run.failure {
        None => println!(
            "  {label}: {:.2} s, {:.0} bytes/s, flash verified",
            run.wall.as_secs_f64(),
            image_len as f64 / run.wall.as_secs_f64()
        ),
        Some(failure) => println!(
            "  {label}: FAILED after {:.2} s: {failure}",
            run.wall.as_secs_f64()
        ),
    }
}

fn print_table(rows: &[Row], image: &[u8], compressed: usize, all_rows: bool) {
    let image_len = image.len();
    // Text columns left, numbers right.
    let mut table = Table::new([
        "baud", "tool", "options", "loader", "data", "wall s", "write s", "setup s", "bytes/s",
        "x line",
    ])
    .align(0..1, Align::Right)
    .align(1..5, Align::Left);
    let mut failures = Vec::new();
    let mut previous_baud = None;
    for row in rows {
        if previous_baud.is_some_and(|baud| baud != row.baud) {
            table.gap();
        }
        previous_baud = Some(row.baud);
        let mode = row.mode;
        let mut cells = vec![
            row.baud.to_string(),
            mode.tool_name().to_owned(),
            mode.flags().to_owned(),
            mode.loader().to_owned(),
            mode.data().to_owned(),
        ];
        match &row.result {
            Err(Skip::NoEsptool) => table.row_with_remark(cells, "skipped: no esptool"),
            Err(Skip::Slow) => table.row_with_remark(cells, "skipped (see below)"),
            Ok(run) => {
                let wall = run.wall.as_secs_f64();
                cells.push(format!("{wall:.2}"));
                cells.push(run.tool_write.map_or("-".to_owned(), |s| format!("{s:.2}")));
                cells.push(
                    run.tool_write
                        .map_or("-".to_owned(), |s| format!("{:.2}", wall - s)),
                );
                if run.ok() {
                    let rate = image_len as f64 / wall;
                    cells.push(format!("{rate:.0}"));
                    cells.push(format!("{:.2}x", rate / (f64::from(row.baud) / 10.0)));
                } else {
                    cells.extend(["FAILED".to_owned(), "-".to_owned()]);
                    failures.push(row);
                }
                table.row(cells);
            }
        }
    }
    table.print();

    print_ratios(rows);
    print_goals(rows, image_len);
    print_turnaround(rows, image);

    println!(
        "\
* bytes/s: the image's {image_len} bytes / wall s; x line: that / (baud/10), the most a UART
  moves (8N1: 10 bits a byte). Compressed rows send {compressed} bytes (zlib, 9) plus framing,
  so they can pass 1x; uncompressed ones cannot.
* wall s: from the tool's start to its exit: connect (SYNC at 115200), chip detection,
  the stub upload (at 115200: both tools switch baud after it), the baud change, the write,
  the MD5 check, and the process's own start (esptool: Python).
* write s: the time the tool itself reports. espchat: FLASH_(DEFL_)BEGIN to FLASH_(DEFL_)END,
  its MD5 checks included (skip-unchanged MD5 before, verify MD5 after). esptool: the data
  blocks (and the stub's FLASH_END), not FLASH_BEGIN nor the MD5 check after; one decimal.
  setup s: wall s - write s, the rest: startup, connecting, stub, baud change.
* the board paces every byte either way on one clock (a half-duplex model of the UART)
  and does not model the chip's erase, write and MD5 times: real chips add those, mostly
  to the ROM loader's FLASH_BEGIN (it erases the whole region before the first block).
  It waits on a timerfd (tokio's 1 ms timer woke ~1.1 ms late per 1 KiB block), so an
  exchange costs its bytes plus the tools' and the board's wake-ups, some 0.1-0.3 ms (a
  USB-UART bridge adds its own latency on a real board). The ROM loader's 1 KiB blocks
  are stop-and-wait, so they pay that per block: the ROM, raw line above shows what the
  board and the tool together add per block.
* every row: a fresh `espchat board --blank --flash-file F`; after the tool exits the
  board is stopped (SIGTERM, it saves F) and F must hold the image at 0x10000 and 0xFF
  everywhere else; otherwise the row is FAILED and left out of rates and ratios.
* espchat: `espchat flash app.bin -p PTY -b BAUD [--no-stub [--no-compress]]` (stdout not a
  terminal: `flash! …` lines). esptool: `esptool --chip esp32c3 -p PTY --before no-reset
  --after no-reset -b BAUD [--no-stub] write-flash --compress|--no-compress 0x10000 app.bin`.
* espchat --no-stub (the ROM loader): SPI_ATTACH, per segment an SPI_FLASH_MD5 of the
  region (skip it if unchanged), FLASH_DEFL_BEGIN (size rounded up to 4 KiB sectors), the
  zlib stream (level 9) in 1 KiB FLASH_DEFL_DATA blocks, each waiting for its reply,
  SPI_FLASH_MD5 to verify, FLASH_DEFL_END with reboot. --no-compress: espflash 4.7's own ROM
  path, FLASH_BEGIN and one FLASH_DATA per 1 KiB (the last padded with 0xFF), FLASH_END.
  With its stub, espflash sends FLASH_DEFL_* with zlib level 9 in 16 KiB blocks (raw if
  deflate does not shrink the data). esptool: 1 KiB blocks in ROM mode, 16 KiB with its
  stub, compressed or not."
    );
    let skipped: Vec<&Row> = rows
        .iter()
        .filter(|row| matches!(row.result, Err(Skip::Slow)))
        .collect();
    if !skipped.is_empty() {
        let names: Vec<String> = skipped
            .iter()
            .map(|row| format!("{} {}", row.baud, row.mode.label()))
            .collect();
        println!(
            "* skipped: {}: {SKIP_REASON}. FLASHING_BENCH_ALL=1 runs it.",
            names.join(", ")
        );
    } else if all_rows {
        println!("* FLASHING_BENCH_ALL=1: every row ran.");
    }
    if rows
        .iter()
        .any(|row| matches!(row.result, Err(Skip::NoEsptool)))
    {
        println!("* esptool was not found: its rows and the ratios to it are missing.");
    }
    for row in failures {
        if let Ok(Run {
            failure: Some(failure),
            ..
        }) = &row.result
        {
            println!("! FAILED {} {}: {failure}", row.baud, row.mode.label());
        }
    }
    let sent: Vec<String> = rows
        .iter()
        .filter_map(|row| match &row.result {
            Ok(Run {
                sent: Some(sent), ..
            }) if row.mode.compress => {
                Some(format!("{sent} ({} at {})", row.mode.loader(), row.baud))
            }
            _ => None,
        })
        .collect();
    if !sent.is_empty() {
        println!(
            "* esptool's compressed bytes sent, as it reports them: {}",
            sent.join(", ")
        );
    }
}

/// A row's wall time, if it ran and succeeded.
fn wall(rows: &[Row], baud: u32, mode: Mode) -> Option<f64> {
    rows.iter()
        .find(|row| row.baud == baud && row.mode == mode)
        .and_then(|row| row.result.as_ref().ok())
        .filter(|run| run.ok())
        .map(|run| run.wall.as_secs_f64())
}

/// espchat's row, the esptool row it is compared with, and what the comparison is called.
const COMPARISONS: [(Mode, Mode, &str); 3] = [
    (
        ESPCHAT_STUB,
        ESPTOOL_STUB_ZLIB,
        "stub, zlib: espchat / esptool",
    ),
    (
        ESPCHAT_ROM_ZLIB,
        ESPTOOL_ROM_ZLIB,
        "ROM, zlib: espchat / esptool",
    ),
    (
        ESPCHAT_ROM_RAW,
        ESPTOOL_ROM_RAW,
        "ROM, raw: espchat / esptool",
    ),
];

fn print_ratios(rows: &[Row]) {
    let mut table = Table::new(
        std::iter::once("time ratio (below 1x: espchat faster)".to_owned())
            .chain(BAUDS.map(|baud| baud.to_string())),
    );
    for (espchat, esptool, name) in COMPARISONS {
        table.row(std::iter::once(name.to_owned()).chain(
            BAUDS.map(|baud| fmt_ratio(wall(rows, baud, espchat), wall(rows, baud, esptool))),
        ));
    }
    table.print();
    println!();
}

/// Where the ROM loader's uncompressed time goes: the tools' write time less the time of the
/// FLASH_DATA blocks' bytes at the line rate, per block.
fn print_turnaround(rows: &[Row], image: &[u8]) {
    let blocks = image.len().div_ceil(ROM_BLOCK);
    let wire = rom_data_wire_bytes(image);
    let mut cells = Vec::new();
    for baud in BAUDS {
        let wire_s = wire as f64 * 10.0 / f64::from(baud);
        let per_block = |mode: Mode| {
            rows.iter()
                .find(|row| row.baud == baud && row.mode == mode)
                .and_then(|row| row.result.as_ref().ok())
                .filter(|run| run.ok())
                .and_then(|run| run.tool_write)
                .map_or("-".to_owned(), |write| {
                    format!("{:.2} ms", (write - wire_s) * 1e3 / blocks as f64)
                })
        };
        cells.push(format!(
            "{baud}: espchat {}, esptool {}",
            per_block(ESPCHAT_ROM_RAW),
            per_block(ESPTOOL_ROM_RAW)
        ));
    }
    println!(
        "ROM, raw: write s beyond the blocks' bytes at the line rate ({blocks} FLASH_DATA \
         requests and replies, SLIP framed: {wire} bytes), per 1 KiB block:"
    );
    println!("  {}", cells.join("; "));
    println!();
}

/// Bytes on the wire for the ROM loader's FLASH_DATA exchanges that write `image`: 1 KiB
/// blocks (the last padded with 0xFF), each request and its 12-byte reply SLIP framed.
fn rom_data_wire_bytes(image: &[u8]) -> usize {
    const REPLY: usize = 12 + 2;
    let slip_len = |packet: &[u8]| {
        2 + packet.len()
            + packet
                .iter()
                .filter(|&&byte| byte == 0xC0 || byte == 0xDB)
                .count()
    };
    image
        .chunks(ROM_BLOCK)
        .enumerate()
        .map(|(sequence, chunk)| {
            let mut block = chunk.to_vec();
            block.resize(ROM_BLOCK, 0xFF);
            let checksum = u32::from(block.iter().fold(0xEF, |sum, byte| sum ^ byte));
            let mut packet = vec![0x00, 0x03];
            packet.extend_from_slice(&((16 + ROM_BLOCK) as u16).to_le_bytes());
            packet.extend_from_slice(&checksum.to_le_bytes());
            for word in [ROM_BLOCK as u32, sequence as u32, 0, 0] {
                packet.extend_from_slice(&word.to_le_bytes());
            }
            packet.extend_from_slice(&block);
            slip_len(&packet) + REPLY
        })
        .sum()
}

fn print_goals(rows: &[Row], image_len: usize) {
    // Goal 1: espchat's time at or below esptool's in every comparable pair.
    let mut slower = Vec::new();
    let mut missing = Vec::new();
    for (espchat, esptool, name) in COMPARISONS {
        for baud in BAUDS {
            match (wall(rows, baud, espchat), wall(rows, baud, esptool)) {
                (Some(a), Some(b)) if a <= b => {}
                (Some(a), Some(b)) => slower.push(format!("{name} at {baud}: {:.2}x", a / b)),
                _ => missing.push(format!("{name} at {baud}")),
            }
        }
    }
    let outcome = if slower.is_empty() && missing.is_empty() {
        "met".to_owned()
    } else if slower.is_empty() {
        format!("no slower pair, but not measured: {}", missing.join(", "))
    } else {
        let mut text = format!("NOT met, espchat slower in: {}", slower.join("; "));
        if !missing.is_empty() {
            let _ = write!(text, " (not measured: {})", missing.join(", "));
        }
        text
    };
    println!("goal 1, espchat at or below esptool's time in every comparable row: {outcome}");

    // Goal 2: uncompressed ROM writes within 10% of the line rate, i.e. at least 0.9x.
    let espchat_rom = ESPCHAT_ROM_RAW;
    let esptool_rom = ESPTOOL_ROM_RAW;
    let mut cells = Vec::new();
    let mut met = true;
    for baud in BAUDS {
        let line_time = |mode: Mode| {
            wall(rows, baud, mode).map(|wall| {
                let ideal = image_len as f64 * 10.0 / f64::from(baud);
                ideal / wall
            })
        };
        match line_time(espchat_rom) {
            Some(x) => {
                met &= x >= 0.9;
                cells.push(format!(
                    "{baud}: {x:.2}x{}",
                    line_time(esptool_rom).map_or(String::new(), |y| format!(" (esptool {y:.2}x)"))
                ));
            }
            None => {
                met = false;
                cells.push(format!("{baud}: not measured"));
            }
        }
    }
    println!(
        "goal 2, uncompressed ROM writes (espchat --no-stub --no-compress) within 10% of the \
         line rate (>= 0.90x): {}: {}",
        verdict(met),
        cells.join(", ")
    );
    println!();
}
