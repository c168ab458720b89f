//! Ingest benchmark: how fast `espchat monitor` takes a serial console's output, against `cat`
//! (the floor: read and throw away) and the terminal programs people use for an ESP32's
//! console, `tio` and `picocom`. Numbers, not pass/fail: it prints a table.
//!
//! Every consumer gets its own fresh pty pair: the bench holds the master and keeps a slave fd
//! of its own open (raw mode), the consumer opens the slave by its path with stdout to
//! /dev/null and stdin a pipe the bench keeps open (espchat exits on end of input). A writer
//! thread pushes ESP-IDF style log text into the master as fast as the consumer takes it (the
//! master only accepts bytes while the slave's input queue has room). The time runs from the
//! first byte pushed until the consumer has read the last one: after the writer is done, the
//! bench polls FIONREAD on its own slave fd, which shares the input queue with the consumer's
//! (the bench itself never reads it), until it shows 0 and stays 0.
//!
//! CPU is the consumer's utime + stime from /proc/PID/stat over the same window (all its
//! threads), peak RSS its VmHWM, and `read` the growth of its rchar (/proc/PID/io) over the
//! window: a check that it really read every byte and did not, say, flush the queue.
//!
//! A calibration pass (a few MB each) first checks that every consumer runs and estimates its
//! speed; the amount shrinks for all consumers if the slowest would need over 120 s for it.
//! Every wait has a deadline; a consumer missing from PATH is skipped with a message.
//!
//! Crash decoding: 1% of the lines are ESP-IDF `Backtrace: PC:SP ...` lines holding code
//! addresses of the bundled ESP32-C3 firmware, and `espchat --elf` runs with that firmware's
//! symbols (so it decodes them, `trace!` lines and all) beside plain `espchat`. Before the runs,
//! the bench times loading the firmware's ELF (the full one if `firmware/` was built, and the
//! bundled symbols) in this process, with the memory it takes.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;

use std::io::Read as _;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use support::table::{Table, fmt_mib, fmt_ratio, verdict};
use support::{Bench, KillOnDrop, Pty, find_on_path, peak_rss_kib, proc_field, queued};

/// The amount each consumer gets, unless the slowest would take too long for it.
const TOTAL_BYTES: u64 = 100_000_000;
/// Per consumer in the calibration pass.
const CALIBRATION_BYTES: u64 = 5_000_000;
/// The slowest consumer's estimated time for `TOTAL_BYTES` above which the amount shrinks...
const MAX_CONSUMER_TIME: Duration = Duration::from_secs(120);
/// ...to what the slowest does in this long.
const SHRUNK_CONSUMER_TIME: Duration = Duration::from_secs(60);
/// Measured rounds per consumer (interleaved); the table shows the median round.
const ROUNDS: usize = 5;
/// The log text pushed: this much is generated once and pushed over and over.
const PATTERN_BYTES: usize = 8 << 20;
/// Largest single write to the master.
const WRITE_CHUNK: usize = 64 * 1024;

/// The fastest real link: 3 Mbaud, 8N1 = 10 bits a byte.
const LINK_BYTES_PER_SEC: f64 = 3_000_000.0 / 10.0;
/// Goal: at least this many times the fastest real link.
const LINK_GOAL: f64 = 100.0;

/// For the consumer to open the pty and start reading.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// The queue must stay empty this long to count as drained (the kernel refills it from the
/// pty's buffers in the background, so a single empty reading can come too early).
const DRAIN_STABLE: Duration = Duration::from_millis(100);
const DRAIN_POLL: Duration = Duration::from_millis(1);

const MB: f64 = 1e6;

fn main() {
    let bench = Bench::start(
        "ingest benchmark: serial console text through a pty, as fast as the consumer reads",
    );
    let (elf, addresses) = bench_elf();
    report_elf_loads(&elf);
    let pattern = with_backtraces(&support::esp_log_text(PATTERN_BYTES, true), &addresses);
    print_context(&pattern);

    let consumers = consumers(&elf);
    let mut runnable = Vec::new();
    for consumer in &consumers {
        match find_on_path(consumer.program()) {
            Some(_) => runnable.push(consumer),
            None => println!(
                "{}: not on PATH, skipped ({})",
                consumer.name, consumer.install_hint
            ),
        }
    }

    println!("calibration: {:.0} MB each", CALIBRATION_BYTES as f64 / MB);
    let mut working = Vec::new();
    let mut slowest: Option<f64> = None;
    for consumer in runnable {
        match run_consumer(
            consumer,
            &pattern,
            CALIBRATION_BYTES,
            Duration::from_secs(60),
        ) {
            Ok(run) => {
                println!("  {}: {:.1} MB/s", consumer.name, run.bytes_per_sec() / MB);
                slowest = Some(slowest.map_or(run.bytes_per_sec(), |s| s.min(run.bytes_per_sec())));
                working.push(consumer);
            }
            Err(error) => println!("  {}: FAILED, left out: {error}", consumer.name),
        }
    }
    let Some(slowest) = slowest else {
        println!("no consumer ran; nothing to measure");
        return;
    };

    let mut total = TOTAL_BYTES;
    let shrunk = slowest > 0.0 && TOTAL_BYTES as f64 / slowest > MAX_CONSUMER_TIME.as_secs_f64();
    if shrunk {
        let mb = (slowest * SHRUNK_CONSUMER_TIME.as_secs_f64() / MB)
            .floor()
            .max(1.0);
        total = (mb * MB) as u64;
        println!(
            "the slowest consumer would need {:.0} s for {:.0} MB (over {:?}): every consumer \
             gets {:.0} MB instead",
            TOTAL_BYTES as f64 / slowest,
            TOTAL_BYTES as f64 / MB,
            MAX_CONSUMER_TIME,
            total as f64 / MB
        );
    }
    // Generous: three times the slowest's estimate, and never less than 30 s.
    let deadline = Duration::from_secs_f64((3.0 * total as f64 / slowest).clamp(30.0, 300.0));

    println!(
        "measuring: {:.0} MB per run, {ROUNDS} rounds, consumers interleaved",
        total as f64 / MB
    );
    let mut results: Vec<(&Consumer, Vec<Result<Run, String>>)> = working
        .iter()
        .map(|consumer| (*consumer, Vec::new()))
        .collect();
    for round in 1..=ROUNDS {
        for (consumer, runs) in &mut results {
            let run = run_consumer(consumer, &pattern, total, deadline);
            match &run {
                Ok(run) => println!(
                    "  round {round} {}: {:.1} MB/s, {:.2} CPU s, read {:.1} MB, {:.2} s",
                    consumer.name,
                    run.bytes_per_sec() / MB,
                    run.cpu.as_secs_f64(),
                    run.read_bytes.unwrap_or(0) as f64 / MB,
                    run.elapsed.as_secs_f64()
                ),
                Err(error) => println!("  round {round} {}: FAILED: {error}", consumer.name),
            }
            runs.push(run);
        }
    }

    print_table(&results, total, shrunk);
    bench.finish();
}

// ---------------------------------------------------------------------------------------------
// Consumers

struct Consumer {
    name: &'static str,
    /// The command; `{}` in an argument is replaced by the slave's path.
    command: Vec<String>,
    install_hint: &'static str,
}

impl Consumer {
    fn program(&self) -> &str {
        &self.command[0]
    }

    fn args(&self, port: &Path) -> Vec<String> {
        let port = port.to_string_lossy();
        self.command[1..]
            .iter()
            .map(|arg| arg.replace("{}", &port))
            .collect()
    }
}

fn consumers(elf: &Path) -> Vec<Consumer> {
    let owned = |args: &[&str]| args.iter().map(|arg| (*arg).to_owned()).collect();
    let monitor: Vec<String> = owned(&[
        env!("CARGO_BIN_EXE_espchat"),
        "monitor",
        "--headless",
        "-p",
        "{}",
    ]);
    let elf = elf.to_string_lossy();
    vec![
        Consumer {
            name: "espchat",
            command: monitor.clone(),
            install_hint: "built by cargo",
        },
        Consumer {
            name: "espchat --elf",
            command: [monitor, owned(&["--elf", &elf])].concat(),
            install_hint: "built by cargo",
        },
        Consumer {
            name: "cat",
            command: owned(&["cat", "{}"]),
            install_hint: "coreutils",
        },
        Consumer {
            // tio runs without a terminal as it is: with stdin not a tty it forwards stdin to
            // the port from a thread instead of reading keys.
            name: "tio",
            command: owned(&["tio", "-b", "115200", "{}"]),
            install_hint: "Debian/Ubuntu: apt-get install tio",
        },
        Consumer {
            // picocom too, given a non-tty stdin; --noreset so that it leaves the port as it
            // is on exit, --nolock for no lock file, --quiet for no banner. It still
            // initialises the port (raw, 115200) as in normal use.
            name: "picocom",
            command: owned(&[
                "picocom",
                "--quiet",
                "--noreset",
                "--nolock",
                "-b",
                "115200",
                "{}",
            ]),
            install_hint: "Debian/Ubuntu: apt-get install picocom",
        },
    ]
}

/// A consumer process: killed and reaped when dropped (also on panic). Its stdin pipe stays
/// open as long as this does.
struct Process {
    child: KillOnDrop,
    _stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// None while it runs; its exit status and what it said on stderr once it has exited.
    fn exited(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        let stderr = self
            .stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        Some(format!("it exited ({status}); stderr: {:?}", stderr.trim()))
    }
}

fn spawn(consumer: &Consumer, port: &Path) -> Result<Process, String> {
    let mut child = Command::new(consumer.program())
        .args(consumer.args(port))
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", consumer.program()))?;
    let stdin = child.stdin.take();
    // Keeps the first 4 KiB of stderr; ends when the process exits.
    let stderr = child.stderr.take().map(|mut stderr| {
        thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = 4096usize.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    });
    Ok(Process {
        child: KillOnDrop(child),
        _stdin: stdin,
        stderr,
    })
}

// ---------------------------------------------------------------------------------------------
// One run

struct Run {
    bytes: u64,
    /// First byte pushed until the queue was empty for good.
    elapsed: Duration,
    /// The consumer's CPU time over the same window.
    cpu: Duration,
    /// Growth of the consumer's rchar over the window.
    read_bytes: Option<u64>,
    peak_rss_kib: Option<u64>,
}

impl Run {
    fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn cpu_per_mb(&self) -> f64 {
        self.cpu.as_secs_f64() / (self.bytes as f64 / MB)
    }
}

fn run_consumer(
    consumer: &Consumer,
    pattern: &[u8],
    total: u64,
    deadline: Duration,
) -> Result<Run, String> {
    let Pty {
        master,
        slave,
        path: port,
    } = Pty::open()?;

    let mut process = spawn(consumer, &port)?;
    let pid = process.pid();
    wait_until_reading(&mut process, &port, &master, &slave)?;

    let cpu_before = support::cpu_time(pid).ok_or("cannot read /proc/PID/stat")?;
    let read_before = read_chars(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let give_up = start + deadline;
    let writer = {
        let pattern = pattern.to_vec();
        let stop = Arc::clone(&stop);
        thread::spawn(move || push(master, &pattern, total, &stop, give_up))
    };
    // Stops the writer whatever happens below (it polls the flag at least every 100 ms).
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop = StopOnDrop(Arc::clone(&stop));

    while !writer.is_finished() {
        if let Some(exit) = process.exited() {
            stop.store(true, Ordering::SeqCst);
            let _ = writer.join();
            return Err(format!("the consumer died while reading: {exit}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
    let (master, pushed) = writer
        .join()
        .map_err(|_| "the writer thread panicked".to_owned())?;
    let (master, pushed) = (master, pushed?);

    // Drained: the queue is empty and stays empty for DRAIN_STABLE. The time is when it
    // first showed empty in that final stretch.
    let mut empty_since: Option<Instant> = None;
    let end = loop {
        let now = Instant::now();
        if now > give_up {
            return Err(format!(
                "deadline {deadline:?} hit: {} bytes still waiting",
                queued(&slave).unwrap_or(-1)
            ));
        }
        match queued(&slave) {
            Ok(0) => {
                let since = *empty_since.get_or_insert(now);
                if now.duration_since(since) >= DRAIN_STABLE {
                    break since;
                }
            }
            Ok(_) => empty_since = None,
            Err(error) => return Err(format!("FIONREAD: {error}")),
        }
        if let Some(exit) = process.exited() {
            return Err(format!("the consumer died while draining: {exit}"));
        }
        thread::sleep(DRAIN_POLL);
    };
    if let Some(exit) = process.exited() {
        return Err(format!("the consumer died at the end: {exit}"));
    }
    let cpu_after = support::cpu_time(pid).ok_or("cannot read /proc/PID/stat")?;
    let read_after = read_chars(pid);
    let peak_rss_kib = peak_rss_kib(pid);
    drop(process);
    drop(master);
    Ok(Run {
        bytes: pushed,
        elapsed: end.duration_since(start),
        cpu: cpu_after.saturating_sub(cpu_before),
        read_bytes: read_before
            .zip(read_after)
            .map(|(before, after)| after.saturating_sub(before)),
        peak_rss_kib,
    })
}

/// Waits until the consumer has the port open and reads what arrives. Some consumers flush
/// the port's queue when they open it (tio does), so a byte pushed before that would be lost:
/// probe lines go in until one is taken from the queue by the consumer's own reads.
fn wait_until_reading(
    process: &mut Process,
    port: &Path,
    master: &OwnedFd,
    slave: &OwnedFd,
) -> Result<(), String> {
    let pid = process.pid();
    let deadline = Instant::now() + START_DEADLINE;
    let name = port.display();
    // An error once the consumer has exited, or the deadline has passed before it `did`.
    let give_up = |process: &mut Process, stage: &str, did: &str| match process.exited() {
        Some(exit) => Err(format!("{stage} opening {name}: {exit}")),
        None if Instant::now() > deadline => Err(format!("it {did} within {START_DEADLINE:?}")),
        None => Ok(()),
    };
    while !holds_open(pid, port) {
        give_up(process, "before", &format!("did not open {name}"))?;
        thread::sleep(Duration::from_millis(5));
    }
    let probe = b"I (0) bench: probe\r\n";
    loop {
        let read_before = read_chars(pid).unwrap_or(0);
        let _ = nix::unistd::write(master, probe);
        let probe_deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < probe_deadline {
            let taken = queued(slave).is_ok_and(|n| n == 0);
            let read = read_chars(pid).unwrap_or(0) >= read_before + probe.len() as u64;
            if taken && read {
                // Let it settle into its steady loop.
                thread::sleep(Duration::from_millis(100));
                return Ok(());
            }
            thread::sleep(Duration::from_millis(2));
        }
        give_up(process, "after", &format!("opened {name} but read nothing"))?;
    }
}

/// The writer: pushes `total` bytes of `pattern` (over and over) into the master as fast as
/// it takes them, throwing away anything the consumer writes back. Returns the master (it
/// must stay open until the consumer is gone: closing it hangs up the slave) and the count.
fn push(
    master: OwnedFd,
    pattern: &[u8],
    total: u64,
    stop: &AtomicBool,
    give_up: Instant,
) -> (OwnedFd, Result<u64, String>) {
    let mut sent = 0u64;
    let mut offset = 0usize;
    let mut scratch = vec![0u8; 16 * 1024];
    while sent < total {
        if stop.load(Ordering::Relaxed) {
            return (master, Err(format!("stopped after {sent} bytes")));
        }
        if Instant::now() > give_up {
            return (
                master,
                Err(format!("deadline hit after pushing {sent} bytes")),
            );
        }
        let left = usize::try_from(total - sent).unwrap_or(usize::MAX);
        let len = WRITE_CHUNK.min(pattern.len() - offset).min(left);
        match nix::unistd::write(&master, &pattern[offset..offset + len]) {
            Ok(n) => {
                sent += n as u64;
                offset = (offset + n) % pattern.len();
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = libc::pollfd {
                    fd: master.as_raw_fd(),
                    events: libc::POLLOUT | libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, for the length given.
                let ready = unsafe { libc::poll(&mut fds, 1, 100) };
                if ready > 0 && fds.revents & libc::POLLIN != 0 {
                    // The consumer wrote to the port: take it so that it never blocks.
                    let _ = nix::unistd::read(master.as_fd(), &mut scratch);
                }
            }
            Err(error) => {
                return (master, Err(format!("write to the master: {error}")));
            }
        }
    }
    (master, Ok(sent))
}

// ---------------------------------------------------------------------------------------------
// /proc

fn holds_open(pid: u32, path: &Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
    })
}

/// Bytes the process has read with read(2) and friends, from any file.
fn read_chars(pid: u32) -> Option<u64> {
    proc_field(pid, "io", "rchar:")
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_context(pattern: &[u8]) {
    let lines = pattern.iter().filter(|&&byte| byte == b'\n').count().max(1);
    let coloured = pattern.windows(2).filter(|pair| pair == b"\x1b[").count() / 2;
    println!(
        "text: ESP-IDF style log, {:.1} bytes/line, {:.0}% of lines coloured (SGR), \\r\\n ends",
        pattern.len() as f64 / lines as f64,
        100.0 * coloured as f64 / lines as f64
    );
    println!("note: the writer thread (the bench) shares the CPUs with the consumer");
    println!();
}

fn print_table(results: &[(&Consumer, Vec<Result<Run, String>>)], total: u64, shrunk: bool) {
    // Each column's median over the consumer's good rounds, taken on its own.
    struct Summary {
        name: &'static str,
        rate: Spread,
        cpu: Spread,
        cpu_per_mb: Spread,
        peak_rss_kib: Option<u64>,
        ok: usize,
        rounds: usize,
    }
    let summaries: Vec<Summary> = results
        .iter()
        .filter_map(|(consumer, runs)| {
            let good: Vec<&Run> = runs.iter().filter_map(|run| run.as_ref().ok()).collect();
            Some(Summary {
                name: consumer.name,
                rate: Spread::of(good.iter().map(|run| run.bytes_per_sec()))?,
                cpu: Spread::of(good.iter().map(|run| run.cpu.as_secs_f64()))?,
                cpu_per_mb: Spread::of(good.iter().map(|run| run.cpu_per_mb()))?,
                peak_rss_kib: good.iter().filter_map(|run| run.peak_rss_kib).max(),
                ok: good.len(),
                rounds: runs.len(),
            })
        })
        .collect();
    let find = |name: &str| summaries.iter().find(|summary| summary.name == name);
    let cat = find("cat");
    let tio = find("tio");

    let mut table = Table::new([
        "consumer",
        "MB/s",
        "MB/s range",
        "CPU s",
        "CPU ms/MB",
        "ms/MB range",
        "peak RSS",
        "x link",
        "MB/s/cat",
        "MB/s/tio",
        "CPU/tio",
    ]);
    let ratio = |a: f64, b: Option<f64>| fmt_ratio(Some(a), b);
    for summary in &summaries {
        let rate = summary.rate.median;
        table.row([
            summary.name.to_owned(),
            format!("{:.1}", rate / MB),
            format!("{:.1}-{:.1}", summary.rate.min / MB, summary.rate.max / MB),
            format!("{:.2}", summary.cpu.median),
            format!("{:.1}", summary.cpu_per_mb.median * 1e3),
            format!(
                "{:.1}-{:.1}",
                summary.cpu_per_mb.min * 1e3,
                summary.cpu_per_mb.max * 1e3
            ),
            summary.peak_rss_kib.map_or("-".to_owned(), fmt_mib),
            format!("{:.0}x", rate / LINK_BYTES_PER_SEC),
            ratio(rate, cat.map(|cat| cat.rate.median)),
            ratio(rate, tio.map(|tio| tio.rate.median)),
            ratio(
                summary.cpu_per_mb.median,
                tio.map(|tio| tio.cpu_per_mb.median),
            ),
        ]);
    }
    table.print();
    println!();

    if let Some(espchat) = find("espchat") {
        let rate = espchat.rate.median;
        let link = rate / LINK_BYTES_PER_SEC;
        println!(
            "goal 1, at least {LINK_GOAL:.0}x the fastest real link (3 Mbaud = {:.0} KB/s): \
             espchat does {link:.0}x: {}",
            LINK_BYTES_PER_SEC / 1e3,
            verdict(link >= LINK_GOAL)
        );
        match find("espchat --elf") {
            Some(decoding) => {
                let ratio_elf = decoding.rate.median / rate;
                println!(
                    "goal 3, with an ELF and 1% of lines decoded, within 10% of the rate \
                     without: {:.1} MB/s against {:.1} MB/s ({ratio_elf:.2}x): {}",
                    decoding.rate.median / MB,
                    rate / MB,
                    verdict(ratio_elf >= 0.9)
                );
            }
            None => println!("goal 3, decoding within 10%: espchat --elf did not run"),
        }
        match tio {
            Some(tio) => {
                let (mine, theirs) = (espchat.cpu_per_mb.median, tio.cpu_per_mb.median);
                println!(
                    "goal 2, CPU per MB no worse than tio's: espchat {:.1} ms/MB, tio {:.1} \
                     ms/MB ({}): {}",
                    mine * 1e3,
                    theirs * 1e3,
                    ratio(mine, Some(theirs)),
                    verdict(mine <= theirs)
                );
            }
            None => println!("goal 2, CPU per MB no worse than tio's: tio did not run"),
        }
        println!();
    }

    println!(
        "* each run pushes {:.0} MB (MB = 10^6 bytes){} into a fresh pty. Each column is the",
        total as f64 / MB,
        if shrunk {
            ", less than the planned 100 MB: see the calibration above,"
        } else {
            ""
        }
    );
    println!("  median of its own over {ROUNDS} rounds (consumers interleaved), ranges min-max.");
    for summary in &summaries {
        if summary.ok < summary.rounds {
            println!(
                "  {}: only {}/{} rounds succeeded (see FAILED above); the rest are from those",
                summary.name, summary.ok, summary.rounds
            );
        }
    }
    println!(
        "\
* MB/s: MB / (first byte pushed until the slave's input queue stayed empty,
  FIONREAD on the bench's own slave fd).
* CPU s: the consumer's utime+stime over that window (/proc/PID/stat, all threads,
  10 ms clock ticks); CPU ms/MB: that CPU time per MB pushed.
* peak RSS: the consumer's VmHWM at the end of a run, the largest over the rounds.
* x link: MB/s / 0.3 MB/s (3 Mbaud 8N1). Ratios are the row's value / cat's or tio's
  (MB/s: above 1x = faster; CPU/tio: below 1x = less CPU per MB than tio).
* the machine is shared: MB/s moves with other load (see the load averages); CPU per
  MB moves less.
* every consumer runs with stdout to /dev/null and stdin a pipe kept open:
  espchat `monitor --headless -p PTY` (and with `--elf` the bundled firmware's
  symbols), `cat PTY`, `tio -b 115200 PTY` and
  `picocom --quiet --noreset --nolock -b 115200 PTY`. tio and picocom need no
  terminal: with stdin a pipe they read the port and forward stdin, no wrapper.
  espchat decodes every line (UTF-8, escapes, the IP watcher) and prints plain
  lines; cat, tio and picocom copy the bytes to stdout."
    );
}

/// Median and range of one measure over the rounds.
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values.collect();
        values.sort_by(f64::total_cmp);
        let middle = values.len().checked_sub(1)? / 2;
        let median = if values.len().is_multiple_of(2) {
            (values[middle] + values[middle + 1]) / 2.0
        } else {
            values[middle]
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[values.len() - 1],
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Crash decoding

/// The bundled ESP32-C3 firmware's symbols in a file, and code addresses from its functions.
fn bench_elf() -> (std::path::PathBuf, Vec<u32>) {
    use object::{Object as _, ObjectSymbol as _};
    let elf = espchat::bundled::symbols_for(espflash::target::Chip::Esp32c3)
        .expect("espchat bundles the ESP32-C3 firmware")
        .expect("its symbols inflate");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("espchat-esp32c3-symbols.elf");
    std::fs::write(&path, &elf).expect("write the symbols");
    let file = object::File::parse(&*elf).expect("an ELF");
    let addresses: Vec<u32> = file
        .symbols()
        .filter(|symbol| symbol.kind() == object::SymbolKind::Text && symbol.size() >= 16)
        .filter_map(|symbol| u32::try_from(symbol.address() + ((symbol.size() / 2) & !1)).ok())
        .step_by(7)
        .take(200)
        .collect();
    (path, addresses)
}

/// `pattern` with every 100th line an ESP-IDF backtrace line of two code addresses.
fn with_backtraces(pattern: &[u8], addresses: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len() + pattern.len() / 50);
    let mut next = addresses.iter().cycle();
    for (index, line) in pattern.split_inclusive(|&byte| byte == b'\n').enumerate() {
        if index % 100 == 99
            && let (Some(pc), Some(caller)) = (next.next(), next.next())
        {
            out.extend_from_slice(
                format!("Backtrace: {pc:#010x}:0x3fc9a0f0 {caller:#010x}:0x3fc9a110\r\n")
                    .as_bytes(),
            );
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// How long loading an ELF for decoding takes here, and how much memory the loaded symbols
/// hold (VmRSS growth of this process while they are alive).
fn report_elf_loads(bundled: &Path) {
    let firmware = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("firmware/target/riscv32imc-unknown-none-elf/release/espchat-firmware");
    let mut table = Table::new(["ELF", "size", "load ms", "RSS growth", "first lookup us"]);
    let mut kept = Vec::new();
    for (name, path) in [
        ("firmware ELF (line tables)", firmware.as_path()),
        ("bundled symbols", bundled),
    ] {
        let Ok(data) = std::fs::read(path) else {
            println!("{name}: {} not built, skipped", path.display());
            continue;
        };
        let rss = || proc_field(std::process::id(), "status", "VmRSS:").unwrap_or(0);
        let before = rss();
        let started = Instant::now();
        let mut symbols = espchat::trace::Symbols::load(&data).expect("the ELF loads");
        let load = started.elapsed();
        let grown = rss().saturating_sub(before);
        let probe = Instant::now();
        let _ = symbols.frames(0x4206_0000);
        let lookup = probe.elapsed();
        table.row([
            name.to_owned(),
            format!("{:.1} MB", data.len() as f64 / MB),
            format!("{:.0}", load.as_secs_f64() * 1e3),
            fmt_mib(grown),
            format!("{:.0}", lookup.as_secs_f64() * 1e6),
        ]);
        // Kept until both are measured: memory freed by one would be reused by the next.
        kept.push(symbols);
    }
    table.print();
    println!();
}
