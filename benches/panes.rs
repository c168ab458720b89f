//! Panes benchmark: 64 chat panes in one `espchat connect` process against 64 `nc` processes,
//! both talking to the same relay, `ncat --broker` (espchat's own chat server takes at most 8
//! clients, the lab protocol, so it cannot serve 64). Numbers, not pass/fail: it prints a table.
//!
//! - espchat: `espchat connect --headless --clients 64 127.0.0.1:PORT`, stdin a pipe the bench
//!   keeps open (`@1 text` sends from pane 1), stdout read line by line by one bench thread
//!   (`chatN| text` for data, `chatN! ...` for status).
//! - nc: 64 `nc 127.0.0.1 PORT` processes (netcat-openbsd), each with stdin a pipe kept open
//!   and stdout read line by line by its own bench thread.
//!
//! Broadcast latency: the first client sends a line every 5 ms carrying a sequence number and
//! its send time (ns since a base `Instant`); ncat --broker passes it to the 63 others. A line's
//! latency is from just before the bench writes it to the sender's stdin until the bench has
//! read it from the stdout of the last of the 63 receivers.
//!
//! Memory: the VmRSS of espchat's one process against the sum over the 64 nc processes, read
//! after the latency phase with every connection still open; also PSS (/proc/PID/smaps_rollup),
//! which shares the pages the nc processes have in common (libc, the nc binary) among them.
//! ncat's own memory is shown for context and counted on neither side.
//!
//! Every wait has a deadline; `ncat` or `nc` missing from PATH skips with a message.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::table::{Table, fmt_latency, fmt_mib, fmt_ratio, verdict};
use support::{Bench, KillOnDrop, find_on_path, nanos, percentile, proc_field};

const PANES: usize = 64;
/// Broadcast lines in the latency phase, all from the first client...
const MESSAGES: usize = 500;
/// Lines sent the same way before those, not measured: the first lines of a fresh
/// conversation can wait for TCP's delayed ACKs (see the footnotes).
const WARMUP: usize = 40;
/// All lines sent.
const LINES: usize = WARMUP + MESSAGES;
/// ...one every this long.
const PACE: Duration = Duration::from_millis(5);
/// The client that sends; the others receive.
const SENDER: usize = 0;

/// For ncat to listen, for espchat's panes to connect.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// Probe lines (one client to all others) until one reaches everyone: at most this many...
const PROBES: usize = 100;
/// ...each given this long...
const PROBE_WAIT: Duration = Duration::from_millis(500);
/// ...and all of them together this long.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// A receiver that got no probe in this long is deaf: it sends one line itself...
const DEAF_AFTER: Duration = Duration::from_secs(3);
/// ...this long after the previous deaf one.
const WAKE_GAP: Duration = Duration::from_millis(50);
/// After the last send: at most this long for the last receipts.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Unexpected lines kept for the report.
const KEPT_NOTES: usize = 20;

fn main() {
    let bench = Bench::start(&format!(
        "panes benchmark: {PANES} chat clients on 127.0.0.1 through ncat --broker"
    ));
    let base = Instant::now();
    print_context();

    let Some(ncat) = find_on_path("ncat") else {
        println!("ncat: not on PATH, benchmark skipped (Debian/Ubuntu: apt-get install ncat)");
        return;
    };
    let broker = match Broker::start(&ncat) {
        Ok(broker) => broker,
        Err(error) => {
            println!("ncat: cannot start the broker, benchmark skipped: {error}");
            return;
        }
    };
    println!(
        "ncat --broker on 127.0.0.1:{} (pid {})",
        broker.port,
        broker.process.pid()
    );

    let one_pane = espchat_one_pane_rss(broker.port);
    let mut reports = Vec::new();
    let counters = TcpCounters::read();
    match start_espchat(broker.port, base) {
        Ok(mut side) => reports.push(run_side(&mut side, &broker, base, counters)),
        Err(error) => println!("espchat: FAILED to start: {error}"),
    }
    // netcat-openbsd's binary by its own name: `nc` may be another netcat (on Debian an
    // alternative that can point to ncat).
    match find_on_path("nc.openbsd").or_else(|| find_on_path("nc")) {
        None => {
            println!("nc: not on PATH, skipped (Debian/Ubuntu: apt-get install netcat-openbsd)")
        }
        Some(nc) => {
            let real = std::fs::canonicalize(&nc).unwrap_or_else(|_| nc.clone());
            println!("nc: {} (the binary: {})", nc.display(), real.display());
            let counters = TcpCounters::read();
            match start_nc(&nc, broker.port, base) {
                Ok(mut side) => reports.push(run_side(&mut side, &broker, base, counters)),
                Err(error) => println!("nc: FAILED to start: {error}"),
            }
        }
    }

    print_table(&reports, one_pane);
    bench.finish();
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A child process, killed and reaped when dropped (also on panic). Its stdin pipe, when
/// taken, stays open as long as this does.
struct Process {
    child: KillOnDrop,
    stdin: Option<ChildStdin>,
}

impl Process {
    fn spawn(command: &mut Command, stdout: Stdio) -> Result<Process, String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run {program}: {error}"))?;
        let stdin = child.stdin.take();
        Ok(Process {
            child: KillOnDrop(child),
            stdin,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exit_status(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        Some(status.to_string())
    }

    fn write_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("no stdin pipe")?;
        // One write per line, as a person's terminal would send it.
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|error| format!("write to stdin: {error}"))
    }
}

struct Broker {
    process: Process,
    port: u16,
}

impl Broker {
    fn start(ncat: &Path) -> Result<Broker, String> {
        let (mut child, addr) = support::ncat_broker(ncat, Stdio::piped(), START_DEADLINE)?;
        let stdin = child.stdin.take();
        let process = Process { child, stdin };
        Ok(Broker {
            process,
            port: addr.port(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// What the receivers saw

/// Filled by the reader threads.
struct Receipts {
    base: Instant,
    /// `latency ns + 1` of message `seq` at receiver `r`, at `seq * PANES + r`; 0: not yet.
    latency: Vec<AtomicU64>,
    /// Bit r of probe k: receiver r saw probe k.
    probes: Vec<AtomicU64>,
    /// Receipts of a message a receiver had already seen.
    duplicates: AtomicUsize,
    /// Lines that were neither a probe nor a message (with the receiver), and status lines
    /// after the start (espchat's `chatN! ...`), with the time they came: the first
    /// `KEPT_NOTES`, and how many in all.
    other: Mutex<Vec<String>>,
    notes: AtomicUsize,
    /// espchat: panes that reported `connected`, as a bit set.
    connected: AtomicU64,
}

impl Receipts {
    fn new(base: Instant) -> Receipts {
        Receipts {
            base,
            latency: (0..LINES * PANES).map(|_| AtomicU64::new(0)).collect(),
            probes: (0..PROBES).map(|_| AtomicU64::new(0)).collect(),
            duplicates: AtomicUsize::new(0),
            other: Mutex::default(),
            notes: AtomicUsize::new(0),
            connected: AtomicU64::new(0),
        }
    }

    fn now_ns(&self) -> u64 {
        nanos(self.base.elapsed())
    }

    fn note(&self, entry: String) {
        if self.notes.fetch_add(1, Ordering::SeqCst) < KEPT_NOTES
            && let Ok(mut other) = self.other.lock()
        {
            other.push(entry);
        }
    }

    /// One data line (what the sender wrote, without its newline) at receiver `receiver`.
    fn data(&self, receiver: usize, text: &str, at_ns: u64) {
        if let Some(probe) = text.strip_prefix('p').and_then(|k| k.parse::<usize>().ok())
            && probe < PROBES
        {
            self.probes[probe].fetch_or(1 << receiver, Ordering::SeqCst);
            return;
        }
        // A deaf client's wake-up line (see `ready`).
        if text
            .strip_prefix('w')
            .is_some_and(|k| k.parse::<usize>().is_ok())
        {
            return;
        }
        let message = text.strip_prefix('m').and_then(|rest| {
            let (seq, sent) = rest.split_once(' ')?;
            Some((seq.parse::<usize>().ok()?, sent.parse::<u64>().ok()?))
        });
        match message {
            Some((seq, sent_ns)) if seq < LINES => {
                let slot = &self.latency[seq * PANES + receiver];
                let value = at_ns.saturating_sub(sent_ns) + 1;
                if slot
                    .compare_exchange(0, value, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    self.duplicates.fetch_add(1, Ordering::SeqCst);
                }
            }
            _ => self.note(format!("client {}: unexpected line {text:?}", receiver + 1)),
        }
    }

    /// Messages that reached every receiver: (latency to the last receiver, sequence number,
    /// last receiver's client number, latency to the first receiver), slowest last.
    fn latencies(&self, lines: std::ops::Range<usize>) -> Vec<Slowest> {
        let mut latencies: Vec<Slowest> = lines
            .filter_map(|seq| {
                let mut worst = (0, 0);
                let mut best = u64::MAX;
                for receiver in (0..PANES).filter(|&r| r != SENDER) {
                    match self.latency[seq * PANES + receiver].load(Ordering::SeqCst) {
                        0 => return None,
                        value => {
                            worst = worst.max((value - 1, receiver + 1));
                            best = best.min(value - 1);
                        }
                    }
                }
                Some(Slowest {
                    last_ns: worst.0,
                    seq,
                    last_client: worst.1,
                    first_ns: best,
                })
            })
            .collect();
        latencies.sort_unstable_by_key(|slowest| slowest.last_ns);
        latencies
    }

    /// Messages received by each receiver (the sender excluded): (client number, count).
    fn per_receiver(&self) -> Vec<(usize, usize)> {
        (0..PANES)
            .filter(|&r| r != SENDER)
            .map(|receiver| {
                let got = (0..LINES)
                    .filter(|seq| self.latency[seq * PANES + receiver].load(Ordering::SeqCst) != 0)
                    .count();
                (receiver + 1, got)
            })
            .collect()
    }

    fn all_received(&self) -> bool {
        (0..LINES).all(|seq| {
            (0..PANES)
                .filter(|&r| r != SENDER)
                .all(|receiver| self.latency[seq * PANES + receiver].load(Ordering::SeqCst) != 0)
        })
    }

    /// Total receipts so far: to notice when nothing more arrives.
    fn count(&self) -> usize {
        self.latency
            .iter()
            .filter(|slot| slot.load(Ordering::Relaxed) != 0)
            .count()
    }
}

/// One message's delivery.
#[derive(Clone, Copy)]
struct Slowest {
    /// Latency to the last of its receivers.
    last_ns: u64,
    seq: usize,
    /// Who that was.
    last_client: usize,
    /// Latency to the first of its receivers.
    first_ns: u64,
}

/// Reads lines until the stream ends (its process exits), handing each with its arrival time.
fn read_lines(
    stream: impl Read + Send + 'static,
    receipts: Arc<Receipts>,
    mut handle: impl FnMut(&Receipts, &str, u64) + Send + 'static,
) -> JoinHandle<()> {
    support::on_each_line(stream, move |line| {
        let at_ns = receipts.now_ns();
        let text = String::from_utf8_lossy(line);
        handle(&receipts, text.trim_end_matches(['\r', '\n']), at_ns);
    })
}

// ---------------------------------------------------------------------------------------------
// The two sides

/// One side of the comparison: its processes, the threads reading their stdout, and what
/// those saw.
struct Side {
    name: &'static str,
    label: &'static str,
    /// espchat: one process for all panes, which takes `@N text` on its stdin; nc: one
    /// process per client, in client order.
    processes: Vec<Process>,
    receipts: Arc<Receipts>,
    readers: Vec<JoinHandle<()>>,
}

impl Side {
    fn send(&mut self, from: usize, line: &str) -> Result<(), String> {
        match self.processes.as_mut_slice() {
            [espchat] => espchat.write_line(&format!("@{} {line}", from + 1)),
            clients => clients[from].write_line(line),
        }
    }

    /// The processes of this side (for memory and CPU).
    fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(Process::pid).collect()
    }

    /// Processes that have exited, with their status.
    fn exited(&mut self) -> Vec<String> {
        let one = self.processes.len() == 1;
        self.processes
            .iter_mut()
            .enumerate()
            .filter_map(|(client, process)| {
                let status = process.exit_status()?;
                Some(if one {
                    format!("{} exited: {status}", self.name)
                } else {
                    format!("{} {} exited: {status}", self.name, client + 1)
                })
            })
            .collect()
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        // Their stdout has ended with them.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// `espchat connect --headless` with a pane for each client.
fn start_espchat(port: u16, base: Instant) -> Result<Side, String> {
    let receipts = Arc::new(Receipts::new(base));
    let mut process = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_espchat")).args([
            "connect",
            "--headless",
            "--clients",
            &PANES.to_string(),
            &format!("127.0.0.1:{port}"),
        ]),
        Stdio::piped(),
    )?;
    let stdout = process.child.stdout.take().ok_or("no stdout pipe")?;
    let reader = read_lines(stdout, Arc::clone(&receipts), |receipts, line, at_ns| {
        let Some((source, rest)) = line.split_once(['|', '!']) else {
            receipts.note(format!("unexpected line {line:?}"));
            return;
        };
        let pane = source
            .strip_prefix("chat")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=PANES).contains(n));
        let text = rest.strip_prefix(' ').unwrap_or(rest);
        match (pane, line.as_bytes()[source.len()]) {
            (Some(pane), b'|') => receipts.data(pane - 1, text, at_ns),
            (Some(pane), _) if text.starts_with("connected ") => {
                let bit = 1 << (pane - 1);
                if receipts.connected.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
                    // Connected again: it had lost its connection.
                    receipts.note(format!(
                        "{:.3} s: {line}",
                        Duration::from_nanos(at_ns).as_secs_f64()
                    ));
                }
            }
            _ => receipts.note(format!(
                "{:.3} s: {line}",
                Duration::from_nanos(at_ns).as_secs_f64()
            )),
        }
    });
    let mut side = Side {
        name: "espchat",
        label: "espchat, 1 process",
        processes: vec![process],
        receipts,
        readers: vec![reader],
    };
    let deadline = Instant::now() + START_DEADLINE;
    while side.receipts.connected.load(Ordering::SeqCst) != all_panes() {
        if let Some(status) = side.processes[0].exit_status() {
            return Err(format!("it exited ({status}) before all panes connected"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {PANES} panes reported `connected` within {START_DEADLINE:?}",
                side.receipts.connected.load(Ordering::SeqCst).count_ones()
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(side)
}

/// One `nc` process per client.
fn start_nc(nc: &Path, port: u16, base: Instant) -> Result<Side, String> {
    let receipts = Arc::new(Receipts::new(base));
    let mut side = Side {
        name: "nc",
        label: "nc, 64 processes",
        processes: Vec::new(),
        receipts,
        readers: Vec::new(),
    };
    for client in 0..PANES {
        let mut process = Process::spawn(
            Command::new(nc).args(["127.0.0.1", &port.to_string()]),
            Stdio::piped(),
        )?;
        let stdout = process.child.stdout.take().ok_or("no stdout pipe")?;
        side.readers.push(read_lines(
            stdout,
            Arc::clone(&side.receipts),
            move |receipts, line, at_ns| receipts.data(client, line, at_ns),
        ));
        side.processes.push(process);
    }
    Ok(side)
}

fn all_panes() -> u64 {
    if PANES == 64 {
        u64::MAX
    } else {
        (1 << PANES) - 1
    }
}

// ---------------------------------------------------------------------------------------------
// One side's run

struct Report {
    name: &'static str,
    label: &'static str,
    /// Until a probe line from the sender reached all others, and one from another client
    /// reached the sender: everyone wired into the broker.
    ready_after: Result<Readiness, String>,
    /// From before the side's processes started until they were ready.
    tcp: Option<TcpCounters>,
    sent: usize,
    /// Sorted by latency.
    deliveries: Vec<Slowest>,
    /// The warm-up lines' deliveries, sorted by latency.
    warmup: Vec<Slowest>,
    /// The latencies of `deliveries`, in the same order.
    latencies: Vec<u64>,
    per_receiver: Vec<(usize, usize)>,
    duplicates: usize,
    events: Vec<String>,
    /// All unexpected lines, `events` being the first of them.
    notes: usize,
    exited: Vec<String>,
    memory: Memory,
    broker_rss_kib: Option<u64>,
    /// The side's CPU time over the latency phase.
    cpu: Option<Duration>,
}

#[derive(Default)]
struct Memory {
    rss_kib: u64,
    pss_kib: u64,
    /// The largest VmHWM of the side's processes.
    peak_kib: u64,
    complete: bool,
}

/// `counters`: the TCP counters from before the side's processes started.
fn run_side(
    side: &mut Side,
    broker: &Broker,
    base: Instant,
    counters: Option<TcpCounters>,
) -> Report {
    println!("{}: {} clients up, probing...", side.name, PANES);
    let ready_after = ready(side);
    let tcp = counters
        .zip(TcpCounters::read())
        .map(|(before, after)| after.since(before));
    match &ready_after {
        Ok(ready) => println!(
            "  {}: every client relays both ways after {:.2} s{}",
            side.name,
            ready.after.as_secs_f64(),
            if ready.deaf.is_empty() {
                String::new()
            } else {
                format!(" ({} deaf receivers had to send first)", ready.deaf.len())
            }
        ),
        Err(error) => println!("  {}: FAILED: {error}", side.name),
    }

    let mut sent = 0;
    let mut cpu = None;
    if ready_after.is_ok() {
        let cpu_before = cpu_of(&side.pids());
        let start = Instant::now();
        for seq in 0..LINES {
            let due = start + PACE * seq as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let line = format!("m{seq} {}", nanos(base.elapsed()));
            if let Err(error) = side.send(SENDER, &line) {
                println!("  {}: sending message {seq} failed: {error}", side.name);
                break;
            }
            sent += 1;
        }
        // Until everything arrived, or nothing more for a while, or the deadline.
        let drain_deadline = Instant::now() + DRAIN_DEADLINE;
        let mut last_count = side.receipts.count();
        let mut last_change = Instant::now();
        while !side.receipts.all_received() && Instant::now() < drain_deadline {
            thread::sleep(Duration::from_millis(20));
            let count = side.receipts.count();
            if count != last_count {
                last_count = count;
                last_change = Instant::now();
            } else if last_change.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
        cpu = cpu_before
            .zip(cpu_of(&side.pids()))
            .map(|(before, after)| after.saturating_sub(before));
        println!(
            "  {}: sent {sent} lines in {:.2} s",
            side.name,
            start.elapsed().as_secs_f64()
        );
    }

    let memory = memory_of(&side.pids());
    let receipts = &side.receipts;
    let events = receipts
        .other
        .lock()
        .map(|other| other.clone())
        .unwrap_or_default();
    let notes = receipts.notes.load(Ordering::SeqCst);
    let deliveries = receipts.latencies(WARMUP..LINES);
    let warmup = receipts.latencies(0..WARMUP);
    Report {
        name: side.name,
        label: side.label,
        ready_after,
        tcp,
        sent,
        latencies: deliveries.iter().map(|slowest| slowest.last_ns).collect(),
        deliveries,
        warmup,
        per_receiver: receipts.per_receiver(),
        duplicates: receipts.duplicates.load(Ordering::SeqCst),
        events,
        notes,
        exited: side.exited(),
        memory,
        broker_rss_kib: proc_field(broker.process.pid(), "status", "VmRSS:"),
        cpu,
    }
}

/// How the clients became ready.
struct Readiness {
    /// From the first probe until everyone was wired into the broker.
    after: Duration,
    /// Receivers (client numbers) that got none of the probes of the first `DEAF_AFTER`.
    deaf: Vec<usize>,
    /// When a probe first reached all receivers, after the deaf ones had sent their line.
    woken_after: Option<Duration>,
}

/// Probes until a line from the sender reached all the others and a line from the second
/// client reached the sender. Receivers that get nothing for `DEAF_AFTER` send one line
/// each (`w<client>`, `WAKE_GAP` apart): a connection the server's kernel never finished
/// accepting is completed by the first data the client sends.
fn ready(side: &mut Side) -> Result<Readiness, String> {
    let start = Instant::now();
    let receivers = all_panes() & !(1 << SENDER);
    let mut probe = 0;
    let mut heard = 0u64;
    let mut deaf = Vec::new();
    let mut woken_after = None;
    // Sends probe after probe from `from` until one reaches all of `wanted` or `until`.
    let mut probe_until = |side: &mut Side,
                           from: usize,
                           wanted: u64,
                           until: Instant,
                           heard: &mut u64|
     -> Result<bool, String> {
        while probe < PROBES && Instant::now() < until {
            side.send(from, &format!("p{probe}"))?;
            let deadline = Instant::now() + PROBE_WAIT;
            loop {
                let seen = side.receipts.probes[probe].load(Ordering::SeqCst);
                *heard |= seen;
                if seen & wanted == wanted {
                    probe += 1;
                    return Ok(true);
                }
                if Instant::now() > deadline {
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
            probe += 1;
        }
        Ok(false)
    };
    let ready_deadline = start + READY_DEADLINE;
    let mut all = probe_until(side, SENDER, receivers, start + DEAF_AFTER, &mut heard)?;
    if !all {
        deaf = (0..PANES)
            .filter(|&r| receivers & !heard & (1 << r) != 0)
            .collect();
        for &client in &deaf {
            side.send(client, &format!("w{client}"))?;
            thread::sleep(WAKE_GAP);
        }
        all = probe_until(side, SENDER, receivers, ready_deadline, &mut heard)?;
        if all {
            woken_after = Some(start.elapsed());
        }
    }
    let back = all && probe_until(side, SENDER + 1, 1 << SENDER, ready_deadline, &mut 0)?;
    let deaf: Vec<usize> = deaf.into_iter().map(|r| r + 1).collect();
    if !back {
        let last = probe.saturating_sub(1).min(PROBES - 1);
        let seen = side.receipts.probes[last].load(Ordering::SeqCst);
        return Err(format!(
            "not ready within {READY_DEADLINE:?}: {} of {} receivers ever got a probe from              client 1, the last probe reached {} of them{}; {} were deaf after {DEAF_AFTER:?}{}",
            (heard & receivers).count_ones(),
            receivers.count_ones(),
            (seen & receivers).count_ones(),
            if all {
                " (none from client 2 reached client 1)"
            } else {
                ""
            },
            deaf.len(),
            side.exited()
                .first()
                .map(|exit| format!("; {exit}"))
                .unwrap_or_default()
        ));
    }
    Ok(Readiness {
        after: start.elapsed(),
        deaf,
        woken_after,
    })
}

/// TCP counters from /proc/net/netstat (this network namespace, all processes).
#[derive(Clone, Copy, Default)]
struct TcpCounters {
    listen_overflows: u64,
    syncookies_sent: u64,
}

impl TcpCounters {
    fn read() -> Option<TcpCounters> {
        let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
        let mut rows = text.lines().filter(|line| line.starts_with("TcpExt:"));
        let names: Vec<&str> = rows.next()?.split_whitespace().collect();
        let values: Vec<&str> = rows.next()?.split_whitespace().collect();
        let get = |name: &str| -> Option<u64> {
            let index = names.iter().position(|n| *n == name)?;
            values.get(index)?.parse().ok()
        };
        Some(TcpCounters {
            listen_overflows: get("ListenOverflows")?,
            syncookies_sent: get("SyncookiesSent")?,
        })
    }

    fn since(self, before: TcpCounters) -> TcpCounters {
        TcpCounters {
            listen_overflows: self
                .listen_overflows
                .saturating_sub(before.listen_overflows),
            syncookies_sent: self.syncookies_sent.saturating_sub(before.syncookies_sent),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

fn memory_of(pids: &[u32]) -> Memory {
    let mut memory = Memory {
        complete: true,
        ..Memory::default()
    };
    for &pid in pids {
        match (
            proc_field(pid, "status", "VmRSS:"),
            proc_field(pid, "smaps_rollup", "Pss:"),
            proc_field(pid, "status", "VmHWM:"),
        ) {
            (Some(rss), Some(pss), Some(peak)) => {
                memory.rss_kib += rss;
                memory.pss_kib += pss;
                memory.peak_kib = memory.peak_kib.max(peak);
            }
            _ => memory.complete = false,
        }
    }
    memory
}

/// Time on a CPU of all the processes, all their threads, from /proc/PID/task/TID/schedstat
/// (nanoseconds; utime+stime in /proc/PID/stat would round each nc's tiny share down to
/// whole 10 ms ticks). Threads that exit in between are not counted; none do here.
fn cpu_of(pids: &[u32]) -> Option<Duration> {
    let mut total = 0u64;
    for &pid in pids {
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            total += stat.split(' ').next()?.parse::<u64>().ok()?;
        }
    }
    Some(Duration::from_nanos(total))
}

/// VmRSS of `espchat connect` with a single pane, connected: the base for the cost per pane.
fn espchat_one_pane_rss(port: u16) -> Option<u64> {
    let mut process = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_espchat")).args([
            "connect",
            "--headless",
            "--clients",
            "1",
            &format!("127.0.0.1:{port}"),
        ]),
        Stdio::piped(),
    )
    .ok()?;
    let stdout = process.child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.starts_with("chat1! connected") {
                let _ = tx.send(());
            }
        }
    });
    let connected = rx.recv_timeout(START_DEADLINE).is_ok();
    // Let it settle after the connect.
    thread::sleep(Duration::from_millis(200));
    let rss = connected
        .then(|| proc_field(process.pid(), "status", "VmRSS:"))
        .flatten();
    drop(process);
    let _ = reader.join();
    rss
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_context() {
    println!(
        "load: client 1 sends {WARMUP} + {MESSAGES} lines, one per {PACE:?}; the {} others \
         receive each; the first {WARMUP} are not measured",
        PANES - 1
    );
    println!("note: the bench's reader threads and ncat share the CPUs with the clients");
    println!();
}

fn print_table(reports: &[Report], one_pane_rss_kib: Option<u64>) {
    let mut table = Table::new([
        "clients",
        "ready",
        "done",
        "p50",
        "p99",
        "max",
        "total RSS",
        "total PSS",
        "peak RSS",
        "CPU s",
    ]);
    for report in reports {
        let mib = |kib: u64| {
            let mark = if report.memory.complete { "" } else { "?" };
            format!("{}{mark}", fmt_mib(kib))
        };
        table.row([
            report.label.to_owned(),
            report
                .ready_after
                .as_ref()
                .map_or("FAILED".to_owned(), |ready| {
                    format!("{:.2} s", ready.after.as_secs_f64())
                }),
            format!("{}/{}", report.latencies.len(), MESSAGES),
            fmt_latency(percentile(&report.latencies, 50.0)),
            fmt_latency(percentile(&report.latencies, 99.0)),
            fmt_latency(report.latencies.last().copied()),
            mib(report.memory.rss_kib),
            mib(report.memory.pss_kib),
            mib(report.memory.peak_kib),
            report
                .cpu
                .map_or("-".to_owned(), |cpu| format!("{:.2}", cpu.as_secs_f64())),
        ]);
    }
    let espchat = reports.iter().find(|report| report.name == "espchat");
    let nc = reports.iter().find(|report| report.name == "nc");
    if let (Some(espchat), Some(nc)) = (espchat, nc) {
        let p = |report: &Report, p: f64| percentile(&report.latencies, p).map(|ns| ns as f64);
        let max = |report: &Report| report.latencies.last().map(|&ns| ns as f64);
        let kib = |value: u64| Some(value as f64);
        table.row([
            "espchat / nc".to_owned(),
            String::new(),
            String::new(),
            fmt_ratio(p(espchat, 50.0), p(nc, 50.0)),
            fmt_ratio(p(espchat, 99.0), p(nc, 99.0)),
            fmt_ratio(max(espchat), max(nc)),
            fmt_ratio(kib(espchat.memory.rss_kib), kib(nc.memory.rss_kib)),
            fmt_ratio(kib(espchat.memory.pss_kib), kib(nc.memory.pss_kib)),
            String::new(),
            fmt_ratio(
                espchat.cpu.map(|cpu| cpu.as_secs_f64()),
                nc.cpu.map(|cpu| cpu.as_secs_f64()),
            ),
        ]);
    }
    table.print();
    if let (Some(espchat), Some(nc)) = (espchat, nc) {
        let kib = |value: u64| Some(value as f64);
        println!();
        let (mine, theirs) = (espchat.memory.rss_kib, nc.memory.rss_kib);
        println!(
            "goal, espchat uses less total memory than the {PANES} nc processes: RSS {} \
             against {} ({}): {}",
            fmt_mib(mine),
            fmt_mib(theirs),
            fmt_ratio(kib(mine), kib(theirs)),
            if !espchat.memory.complete || !nc.memory.complete {
                "cannot tell (a process was gone)"
            } else {
                verdict(mine < theirs)
            }
        );
        if nc.memory.complete && espchat.memory.complete {
            println!(
                "  by PSS (shared pages split among the processes sharing them): {} against {} \
                 ({})",
                fmt_mib(espchat.memory.pss_kib),
                fmt_mib(nc.memory.pss_kib),
                fmt_ratio(kib(espchat.memory.pss_kib), kib(nc.memory.pss_kib))
            );
        }
    }
    if let Some(espchat) = espchat {
        match one_pane_rss_kib {
            Some(one) => println!(
                "espchat per pane: RSS with 1 pane {}, with {PANES} {}: {:.0} KiB per extra pane",
                fmt_mib(one),
                fmt_mib(espchat.memory.rss_kib),
                espchat.memory.rss_kib.saturating_sub(one) as f64 / (PANES - 1) as f64
            ),
            None => println!("espchat per pane: the 1-pane run failed, no figure"),
        }
    }
    if let Some(nc) = nc {
        println!(
            "nc per process: {:.0} KiB RSS, {:.0} KiB PSS on average",
            nc.memory.rss_kib as f64 / PANES as f64,
            nc.memory.pss_kib as f64 / PANES as f64
        );
    }
    for report in reports {
        if let Some(rss) = report.broker_rss_kib {
            println!(
                "ncat --broker itself (not counted): {} RSS after the {} run",
                fmt_mib(rss),
                report.name
            );
        }
    }

    println!();
    for report in reports {
        print_problems(report);
    }
    println!(
        "\
* ready: from the first probe until a line from client 1 reached all 63 others and one
  from client 2 reached client 1 (espchat: counted once all 64 panes said `connected`).
  A receiver still deaf after the first probes sends one line itself (see `!` above).
* done: measured lines that reached all 63 receivers. Latency: from just before the
  bench writes the line to the sender's stdin (`@1 text` for espchat) until the bench
  has read it from the last receiver's stdout (espchat: its `chatN| text` line on the
  one stdout; nc: the line on that nc's stdout), over the lines that reached all 63.
  The warm-up lines before them are left out: a fresh connection's first lines can
  wait for a delayed ACK (Nagle's algorithm, on a socket without TCP_NODELAY, holds a
  small write until the one before it is acknowledged).
* total RSS / PSS: sums of VmRSS and of Pss (smaps_rollup) over the side's processes
  after the latency phase, connections open; peak RSS: the largest VmHWM among them.
  RSS counts shared pages (libc, the binary) once per process; PSS divides them.
* CPU s: time on a CPU of the side's processes, all threads, over the latency phase,
  warm-up included (/proc/PID/task/*/schedstat).
* espchat / nc: espchat's value / nc's (below 1x = lower latency, less memory/CPU)."
    );
}

fn print_problems(report: &Report) {
    let name = report.name;
    let expected = report.sent;
    let slowest: Vec<String> = report
        .deliveries
        .iter()
        .rev()
        .take(5)
        .map(|slowest| {
            format!(
                "#{} {} (first receiver {}, last client {})",
                slowest.seq,
                fmt_latency(Some(slowest.last_ns)),
                fmt_latency(Some(slowest.first_ns)),
                slowest.last_client
            )
        })
        .collect();
    if !slowest.is_empty() {
        println!("{name}: slowest lines: {}", slowest.join(", "));
    }
    if let Some(worst) = report.warmup.last() {
        println!(
            "{name}: warm-up lines (not in the table): {} of {WARMUP} reached all, slowest #{} \
             {} (first receiver {}, last client {})",
            report.warmup.len(),
            worst.seq,
            fmt_latency(Some(worst.last_ns)),
            fmt_latency(Some(worst.first_ns)),
            worst.last_client
        );
    }
    if let Ok(ready) = &report.ready_after
        && !ready.deaf.is_empty()
    {
        let shown: Vec<String> = ready.deaf.iter().take(12).map(usize::to_string).collect();
        println!(
            "! {name}: {} of the {} receiving clients got none of the probes from client 1 in \
             the first {DEAF_AFTER:?} (clients {}{}){}.",
            ready.deaf.len(),
            PANES - 1,
            shown.join(", "),
            if ready.deaf.len() > shown.len() {
                ", ..."
            } else {
                ""
            },
            if name == "espchat" {
                format!(", though espchat had printed `chatN! connected` for all {PANES} panes")
            } else {
                String::new()
            }
        );
        if let Some(tcp) = report.tcp {
            println!(
                "  From the start of its processes until ready, the kernel counted {} listen \
                 queue overflows and sent {} SYN cookies (counters of the whole network \
                 namespace).",
                tcp.listen_overflows, tcp.syncookies_sent
            );
        }
        match ready.woken_after {
            Some(after) => println!(
                "  Each of them then sent one line itself ({WAKE_GAP:?} apart); a probe reached \
                 all {} {:.2} s after the first probe.",
                PANES - 1,
                after.as_secs_f64()
            ),
            None => println!("  Each of them then sent one line itself, to no avail."),
        }
    }
    let short: Vec<(usize, usize)> = report
        .per_receiver
        .iter()
        .copied()
        .filter(|&(_, got)| got < expected)
        .collect();
    if !short.is_empty() {
        let shown: Vec<String> = short
            .iter()
            .take(8)
            .map(|(client, got)| format!("client {client} got {got}"))
            .collect();
        println!(
            "! {name}: {} receivers missed lines of the {expected} sent: {}{}",
            short.len(),
            shown.join(", "),
            if short.len() > 8 { ", ..." } else { "" }
        );
    }
    if report.sent < LINES && report.ready_after.is_ok() {
        println!("! {name}: only {} of {LINES} lines were sent", report.sent);
    }
    if report.duplicates > 0 {
        println!("! {name}: {} duplicate receipts", report.duplicates);
    }
    for exit in &report.exited {
        println!("! {name}: {exit}");
    }
    for event in &report.events {
        println!("! {name}: {event}");
    }
    if report.notes > report.events.len() {
        println!(
            "! {name}: ... {} more such lines",
            report.notes - report.events.len()
        );
    }
}
