//! Relay benchmark: the virtual board's chat server (`espchat board`) against a peer relay,
//! `ncat --broker`, under the same load. Numbers, not pass/fail: it prints a table.
//!
//! Each server gets two phases, each on 8 fresh TCP clients on 127.0.0.1:
//! - flood: every client sends 10,000 lines as fast as it can;
//! - paced: every client sends 1,000 lines, one per millisecond.
//!
//! Every line carries its sender, a sequence number and its send time (nanoseconds since a
//! base `Instant` shared by all threads). Every client has its own receiver thread that reads
//! continuously (the board disconnects a client with more than 64 KiB waiting for it) and
//! records when each line arrived. A line's latency is from its send until the last of its
//! receivers got it. Deliveries/s counts the lines received by all clients over the wall time
//! from the first send to the last line received.
//!
//! A client the server closes mid-phase is reported with what its receiver saw; for the board,
//! with the board's own console line about it (the bench reads the board's serial pty).
//!
//! Every wait has a deadline; a phase that runs out of time reports how far it got.
//! `ncat` missing from PATH skips the peer with a message.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::table::{Table, fmt_latency, fmt_mib, fmt_ratio};
use support::{Bench, KillOnDrop, find_on_path, nanos, peak_rss_kib, percentile};

const CLIENTS: usize = 8;
/// Every line is this long, `\n` included. ncat relays the chunks it reads, not lines; with a
/// fixed power-of-two length its chunks mostly end at line ends. A line that still arrives
/// mixed with another sender's bytes is counted as damaged.
const LINE_LEN: usize = 64;
/// Start of the payload of a benchmark line: `m<sender> <seq> <send ns> ....`.
const DATA_MARK: u8 = b'm';
/// Start of the payload of a connection handshake line: `hello <client>`.
const HELLO: &str = "hello";

const FLOOD: PhaseSpec = PhaseSpec {
    name: "flood",
    lines: 10_000,
    pace: None,
    deadline: Duration::from_secs(45),
};
const PACED: PhaseSpec = PhaseSpec {
    name: "paced",
    lines: 1_000,
    pace: Some(Duration::from_millis(1)),
    deadline: Duration::from_secs(20),
};

/// For a server to start and accept connections.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// For one client's handshake (its hello relayed back).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
const HANDSHAKE_ATTEMPTS: usize = 20;
/// Once every sender is done, a phase ends when nothing arrived for this long.
const QUIET: Duration = Duration::from_secs(2);
/// Socket timeouts: blocked reads recheck the stop flag; blocked writes give up.
const READ_POLL: Duration = Duration::from_millis(100);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const RECEIVE_BUFFER: usize = 64 * 1024;

fn main() {
    let bench = Bench::start(&format!(
        "relay benchmark: {CLIENTS} clients on 127.0.0.1, {LINE_LEN}-byte lines"
    ));
    let base = Instant::now();
    print_context();

    let mut reports = Vec::new();
    match Server::espchat() {
        Ok(server) => reports.push(run_server(&server, base)),
        Err(error) => println!("espchat: cannot start the virtual board: {error}"),
    }
    match find_on_path("ncat") {
        None => {
            println!("ncat: not on PATH, peer relay skipped (Debian/Ubuntu: apt-get install ncat)")
        }
        Some(ncat) => match Server::ncat(&ncat) {
            Ok(server) => reports.push(run_server(&server, base)),
            Err(error) => println!("ncat: cannot start the broker, peer skipped: {error}"),
        },
    }

    print_table(&reports);
    bench.finish();
}

// ---------------------------------------------------------------------------------------------
// Servers

/// A relay under test: its process, where it listens, and how it relays.
struct Server {
    name: &'static str,
    process: KillOnDrop,
    addr: SocketAddr,
    /// espchat relays a line to its sender too; ncat --broker only to the others.
    echoes_sender: bool,
    /// Bytes of one benchmark line as relayed.
    relayed_line_len: usize,
    /// The server's own account of the clients it dropped as too slow: espchat's board logs
    /// them on its serial console, ncat keeps none.
    dropped: Arc<Mutex<Vec<String>>>,
    /// Reads the board's stdout to its end.
    drain: Option<JoinHandle<()>>,
}

impl Server {
    /// `espchat board`, the firmware's chat server on the virtual board.
    fn espchat() -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_espchat"))
            .args(["board", "--tcp-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", env!("CARGO_BIN_EXE_espchat")))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let process = KillOnDrop(child);
        // Reads stdout to its end (the board's exit), passing each line on while anyone listens.
        let (drain, lines_rx) = support::forward_lines(stdout);
        let mut board = Server {
            name: "espchat",
            process,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            echoes_sender: true,
            // `Client N: ` + the line + `\r` before its `\n`.
            relayed_line_len: "Client 1: ".len() + LINE_LEN + 1,
            dropped: Arc::default(),
            drain: Some(drain),
        };
        let deadline = Instant::now() + START_DEADLINE;
        let mut first = Vec::new();
        while first.len() < 2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => first.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no `tcp:` line within {START_DEADLINE:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("it exited; stdout was {first:?}"));
                }
            }
        }
        if !first[0].starts_with("serial: ") {
            return Err(format!("unexpected first line {:?}", first[0]));
        }
        let addr = first[1]
            .strip_prefix("tcp: ")
            .and_then(|addr| addr.parse::<SocketAddr>().ok())
            .ok_or_else(|| format!("unexpected second line {:?}", first[1]))?;
        if !addr.ip().is_loopback() {
            return Err(format!("the board listens on {addr}, not on 127.0.0.1"));
        }
        board.addr = addr;
        let serial = PathBuf::from(&first[0]["serial: ".len()..]);
        if let Err(error) = watch_console(&serial, Arc::clone(&board.dropped)) {
            println!("espchat: {error}; its own log of dropped clients will be missing");
        }
        Ok(board)
    }

    /// `ncat --broker`, the peer.
    fn ncat(ncat: &Path) -> Result<Server, String> {
        let (process, addr) = support::ncat_broker(ncat, Stdio::null(), START_DEADLINE)?;
        Ok(Server {
            name: "ncat",
            process,
            addr,
            echoes_sender: false,
            relayed_line_len: LINE_LEN,
            dropped: Arc::default(),
            drain: None,
        })
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// What the server logged about clients it dropped as too slow, so far.
    fn dropped_log(&self) -> Vec<String> {
        self.dropped
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
        // The server is gone, so the board's stdout ends and the drain thread returns.
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}

/// Reads the board's serial console (a raw pty) until the board exits, keeping the lines
/// where its firmware says it dropped a client for not reading.
fn watch_console(serial: &Path, dropped_log: Arc<Mutex<Vec<String>>>) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let console = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open(serial)
        .map_err(|error| format!("cannot open the console {}: {error}", serial.display()))?;
    // Ends when the board exits and its pty hangs up (EIO) or closes.
    support::on_each_line(console, move |line| {
        let text = String::from_utf8_lossy(line);
        if let Some(at) = text.find("stopped reading") {
            let start = text[..at].rfind("client ").unwrap_or(at);
            let entry: String = text[start..].chars().filter(|c| !c.is_control()).collect();
            if let Ok(mut log) = dropped_log.lock() {
                log.push(entry);
            }
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phases

struct PhaseSpec {
    name: &'static str,
    lines: usize,
    pace: Option<Duration>,
    deadline: Duration,
}

struct ServerReport {
    name: &'static str,
    echoes_sender: bool,
    flood: Result<PhaseResult, String>,
    paced: Result<PhaseResult, String>,
    peak_rss_kib: Option<u64>,
}

fn run_server(server: &Server, base: Instant) -> ServerReport {
    println!(
        "{}: running on {} (pid {})...",
        server.name,
        server.addr,
        server.pid()
    );
    let phase = |spec: &PhaseSpec| {
        let logged = server.dropped_log().len();
        let result = run_phase(server, spec, base);
        print_phase_progress(server, spec, &result);
        // The console is asynchronous: give its last lines a moment.
        thread::sleep(Duration::from_millis(100));
        for entry in server.dropped_log().iter().skip(logged) {
            println!("    ! server console: {entry}");
        }
        result
    };
    let flood = phase(&FLOOD);
    let paced = phase(&PACED);
    ServerReport {
        name: server.name,
        echoes_sender: server.echoes_sender,
        flood,
        paced,
        peak_rss_kib: peak_rss_kib(server.pid()),
    }
}

/// What all threads of one phase share.
struct Shared {
    base: Instant,
    lines: usize,
    stop: AtomicBool,
    /// Set once the senders start; server notices before that belong to the previous phase.
    running: AtomicBool,
    /// Benchmark lines received, by all receivers together.
    delivered: AtomicU64,
    /// When the last benchmark line arrived (ns since `base`).
    last_receipt_ns: AtomicU64,
    /// Bit k: receiver 0 saw client k's hello.
    hellos_at_first: AtomicU32,
    /// Receivers whose connection ended (closed by the server or failed).
    ended: [AtomicBool; CLIENTS],
    senders_done: AtomicUsize,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        nanos(self.base.elapsed())
    }
}

struct PhaseResult {
    lines_per_sender: usize,
    receivers_per_line: usize,
    sent: u64,
    delivered: u64,
    /// First send to last receipt.
    wall: Duration,
    /// Latencies of the lines that reached all their receivers, sorted, in ns.
    latencies: Vec<u64>,
    garbled: u64,
    garbled_example: Option<String>,
    duplicates: u64,
    /// `Client N disconnected` notices seen during the phase.
    disconnect_notices: u64,
    /// Clients whose connection the server ended during the phase.
    drops: Vec<DroppedClient>,
    send_errors: Vec<String>,
    timed_out: bool,
    elapsed: Duration,
}

impl PhaseResult {
    fn deliveries_per_sec(&self) -> f64 {
        self.delivered as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    fn percentile(&self, p: f64) -> Option<u64> {
        percentile(&self.latencies, p)
    }
    fn all_complete(&self) -> bool {
        self.latencies.len() == CLIENTS * self.lines_per_sender
    }
}

fn run_phase(server: &Server, spec: &PhaseSpec, base: Instant) -> Result<PhaseResult, String> {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        base,
        lines: spec.lines,
        stop: AtomicBool::new(false),
        running: AtomicBool::new(false),
        delivered: AtomicU64::new(0),
        last_receipt_ns: AtomicU64::new(0),
        hellos_at_first: AtomicU32::new(0),
        ended: Default::default(),
        senders_done: AtomicUsize::new(0),
    });
    let echoes = server.echoes_sender;
    let receivers_per_line = if echoes { CLIENTS } else { CLIENTS - 1 };

    let mut clients: Vec<(TcpStream, JoinHandle<ReceiverStats>)> = Vec::new();
    let connected = connect_all(server, &shared, &mut clients);
    let streams: Vec<TcpStream> = clients
        .iter()
        .filter_map(|(stream, _)| stream.try_clone().ok())
        .collect();
    if let Err(error) = connected.and_then(|()| {
        (streams.len() == clients.len())
            .then_some(())
            .ok_or_else(|| "cannot clone a client socket".to_owned())
    }) {
        finish(&shared, &streams, clients);
        return Err(error);
    }

    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let mut senders = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let stream = stream.try_clone().map_err(|error| error.to_string());
        let shared = Arc::clone(&shared);
        let barrier = Arc::clone(&barrier);
        let pace = spec.pace;
        let deadline = started + spec.deadline;
        senders.push(thread::spawn(move || {
            let stats = match stream {
                Ok(stream) => send_lines(stream, index, pace, deadline, &shared, &barrier),
                Err(error) => {
                    barrier.wait();
                    SenderStats::failed(error)
                }
            };
            shared.senders_done.fetch_add(1, Ordering::SeqCst);
            stats
        }));
    }
    shared.running.store(true, Ordering::SeqCst);
    barrier.wait();

    // Wait for every expected line, for the deadline, or for a lull after the last send.
    let expected_if_all_sent = (CLIENTS * spec.lines * receivers_per_line) as u64;
    let deadline = started + spec.deadline;
    let mut timed_out = false;
    let mut last_count = 0;
    let mut last_change = Instant::now();
    loop {
        let count = shared.delivered.load(Ordering::SeqCst);
        if count >= expected_if_all_sent {
            break;
        }
        let now = Instant::now();
        if count != last_count {
            last_count = count;
            last_change = now;
        }
        let senders_done = shared.senders_done.load(Ordering::SeqCst) == CLIENTS;
        if senders_done && now.duration_since(last_change) > QUIET {
            break;
        }
        if now > deadline {
            timed_out = true;
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }

    let sender_stats: Vec<SenderStats> = {
        shared.stop.store(true, Ordering::SeqCst);
        senders
            .into_iter()
            .map(|sender| {
                sender
                    .join()
                    .unwrap_or_else(|_| SenderStats::failed("thread panicked".to_owned()))
            })
            .collect()
    };
    let receiver_stats = finish(&shared, &streams, clients);

    // Merge: a line's latency is from its send to its last receipt.
    let lines = spec.lines;
    let sent: u64 = sender_stats
        .iter()
        .map(|stats| stats.send_ns.len() as u64)
        .sum();
    let mut latencies = Vec::with_capacity(CLIENTS * lines);
    for (sender, stats) in sender_stats.iter().enumerate() {
        for (seq, &send_ns) in stats.send_ns.iter().enumerate() {
            let slot = sender * lines + seq;
            let last_receipt = receiver_stats
                .iter()
                .enumerate()
                .filter(|&(receiver, _)| echoes || receiver != sender)
                .map(|(_, received)| received.receipt_ns[slot])
                .max();
            // Lines that missed a receiver have no latency; `done` in the table counts them.
            if let Some(receipt) = last_receipt
                && receipt != NOT_RECEIVED
            {
                latencies.push(receipt.saturating_sub(send_ns));
            }
        }
    }
    latencies.sort_unstable();
    let first_ns = sender_stats
        .iter()
        .filter_map(|stats| stats.send_ns.first().copied())
        .min()
        .unwrap_or(0);
    let last_ns = shared.last_receipt_ns.load(Ordering::SeqCst);
    let drops = receiver_stats
        .iter()
        .enumerate()
        .filter_map(|(client, stats)| {
            let end = stats.end.as_ref()?;
            // How many lines the best-served other client had by the time this one was dropped.
            let best_other = receiver_stats
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != client)
                .map(|(_, other)| {
                    other
                        .receipt_ns
                        .iter()
                        .filter(|&&receipt| receipt <= end.at_ns)
                        .count() as u64
                })
                .max()
                .unwrap_or(0);
            Some(DroppedClient {
                client: client + 1,
                after: Duration::from_nanos(end.at_ns.saturating_sub(first_ns)),
                reason: end.reason.clone(),
                received: stats.data_lines,
                best_other,
                idle: end
                    .last_data_ns
                    .map(|last| Duration::from_nanos(end.at_ns.saturating_sub(last))),
                drained: end.last_read_drained,
            })
        })
        .collect();
    Ok(PhaseResult {
        lines_per_sender: lines,
        receivers_per_line,
        sent,
        delivered: receiver_stats.iter().map(|stats| stats.data_lines).sum(),
        wall: Duration::from_nanos(last_ns.saturating_sub(first_ns)),
        latencies,
        garbled: receiver_stats.iter().map(|stats| stats.garbled).sum(),
        garbled_example: receiver_stats
            .iter()
            .find_map(|stats| stats.garbled_example.clone()),
        duplicates: receiver_stats.iter().map(|stats| stats.duplicates).sum(),
        disconnect_notices: receiver_stats
            .iter()
            .map(|stats| stats.disconnect_notices)
            .sum(),
        drops,
        send_errors: sender_stats
            .iter()
            .enumerate()
            .filter_map(|(index, stats)| {
                stats
                    .error
                    .as_ref()
                    .map(|error| format!("sender {}: {error}", index + 1))
            })
            .collect(),
        timed_out,
        elapsed: started.elapsed(),
    })
}

/// A client the server closed mid-phase, and what its receiver saw up to then.
struct DroppedClient {
    client: usize,
    /// Since the phase's first send.
    after: Duration,
    reason: String,
    /// Benchmark lines this client had received.
    received: u64,
    /// The most any other client had received by then.
    best_other: u64,
    /// From its last benchmark data to the drop.
    idle: Option<Duration>,
    /// Whether its last read before the drop emptied the socket (it was waiting for data).
    drained: bool,
}

/// Connects the clients one by one. Client k counts as connected (the server has accepted it
/// and relays to it) once its `hello k` reached client 0; ncat does not relay client 0's own
/// hello, and for it client 0 counts once client 1's hello reached it.
fn connect_all(
    server: &Server,
    shared: &Arc<Shared>,
    clients: &mut Vec<(TcpStream, JoinHandle<ReceiverStats>)>,
) -> Result<(), String> {
    for index in 0..CLIENTS {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (stream, receiver) = connect_client(server.addr, index, shared)?;
            let confirmed_by_first = index > 0 || server.echoes_sender;
            let deadline = Instant::now() + HANDSHAKE_DEADLINE;
            let outcome = loop {
                if !confirmed_by_first {
                    break Ok(());
                }
                if shared.hellos_at_first.load(Ordering::SeqCst) & (1 << index) != 0 {
                    break Ok(());
                }
                if shared.ended[index].load(Ordering::SeqCst) {
                    // E.g. `server full`: the previous phase's clients are not gone yet.
                    break Err("closed by the server".to_owned());
                }
                if Instant::now() > deadline {
                    break Err(format!("hello not relayed within {HANDSHAKE_DEADLINE:?}"));
                }
                thread::sleep(Duration::from_millis(1));
            };
            match outcome {
                Ok(()) => {
                    clients.push((stream, receiver));
                    break;
                }
                Err(error) => {
                    let _ = stream.shutdown(Shutdown::Both);
                    let _ = receiver.join();
                    shared.ended[index].store(false, Ordering::SeqCst);
                    if attempt >= HANDSHAKE_ATTEMPTS {
                        return Err(format!(
                            "client {} could not join after {attempt} attempts: {error}",
                            index + 1
                        ));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    Ok(())
}

fn connect_client(
    addr: SocketAddr,
    index: usize,
    shared: &Arc<Shared>,
) -> Result<(TcpStream, JoinHandle<ReceiverStats>), String> {
    let io = |error: std::io::Error| format!("client {}: {error}", index + 1);
    let mut stream = TcpStream::connect_timeout(&addr, START_DEADLINE).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    stream.set_read_timeout(Some(READ_POLL)).map_err(io)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io)?;
    let reader = stream.try_clone().map_err(io)?;
    let receiver = {
        let shared = Arc::clone(shared);
        thread::spawn(move || receive_lines(reader, index, &shared))
    };
    if let Err(error) = stream.write_all(format!("{HELLO} {index}\n").as_bytes()) {
        let _ = stream.shutdown(Shutdown::Both);
        let _ = receiver.join();
        return Err(io(error));
    }
    Ok((stream, receiver))
}

/// Stops the receivers and closes the connections; returns the receivers' records.
fn finish(
    shared: &Shared,
    streams: &[TcpStream],
    clients: Vec<(TcpStream, JoinHandle<ReceiverStats>)>,
) -> Vec<ReceiverStats> {
    shared.stop.store(true, Ordering::SeqCst);
    for stream in streams {
        let _ = stream.shutdown(Shutdown::Both);
    }
    clients
        .into_iter()
        .map(|(stream, receiver)| {
            let _ = stream.shutdown(Shutdown::Both);
            receiver
                .join()
                .unwrap_or_else(|_| ReceiverStats::empty(shared.lines))
        })
        .collect()
}

struct SenderStats {
    /// Send time of each line sent (ns since the base), by sequence number.
    send_ns: Vec<u64>,
    error: Option<String>,
}

impl SenderStats {
    fn failed(error: String) -> SenderStats {
        SenderStats {
            send_ns: Vec::new(),
            error: Some(error),
        }
    }
}

fn send_lines(
    mut stream: TcpStream,
    index: usize,
    pace: Option<Duration>,
    deadline: Instant,
    shared: &Shared,
    barrier: &Barrier,
) -> SenderStats {
    let mut stats = SenderStats {
        send_ns: Vec::with_capacity(shared.lines),
        error: None,
    };
    let mut line = [b'.'; LINE_LEN];
    barrier.wait();
    // Paced senders are spread over the period so they do not all send at the same instant.
    let start = Instant::now() + pace.map_or(Duration::ZERO, |pace| pace * index as u32 / 8);
    for seq in 0..shared.lines {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(pace) = pace {
            let due = start + pace * seq as u32;
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                thread::sleep(wait);
            }
        }
        let now = Instant::now();
        if now > deadline {
            break;
        }
        let send_ns = nanos(now.duration_since(shared.base));
        encode_line(&mut line, index, seq, send_ns);
        if let Err(error) = stream.write_all(&line) {
            stats.error = Some(format!("after {} lines: {error}", stats.send_ns.len()));
            break;
        }
        stats.send_ns.push(send_ns);
    }
    stats
}

/// `m<sender> <seq> <send ns> ` padded with dots to `LINE_LEN - 1`, then `\n`.
fn encode_line(line: &mut [u8; LINE_LEN], sender: usize, seq: usize, send_ns: u64) {
    line.fill(b'.');
    let mut head = &mut line[..LINE_LEN - 1];
    // At most 1 + 1 + 1 + 20 + 1 + 20 + 1 bytes: always fits.
    let _ = write!(head, "m{sender} {seq} {send_ns} ");
    line[LINE_LEN - 1] = b'\n';
}

const NOT_RECEIVED: u64 = u64::MAX;

struct ReceiverStats {
    /// Per line (`sender * lines + seq`): when it arrived (ns since the base), or
    /// `NOT_RECEIVED`.
    receipt_ns: Vec<u64>,
    data_lines: u64,
    garbled: u64,
    garbled_example: Option<String>,
    duplicates: u64,
    disconnect_notices: u64,
    /// Set when the server closed the connection (or it failed) before the phase ended.
    end: Option<End>,
}

struct End {
    at_ns: u64,
    reason: String,
    last_data_ns: Option<u64>,
    last_read_drained: bool,
}

impl ReceiverStats {
    fn empty(lines: usize) -> ReceiverStats {
        ReceiverStats {
            receipt_ns: vec![NOT_RECEIVED; CLIENTS * lines],
            data_lines: 0,
            garbled: 0,
            garbled_example: None,
            duplicates: 0,
            disconnect_notices: 0,
            end: None,
        }
    }
}

fn receive_lines(mut stream: TcpStream, index: usize, shared: &Shared) -> ReceiverStats {
    let mut stats = ReceiverStats::empty(shared.lines);
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut filled = 0;
    let mut last_data_ns = None;
    let mut last_read_drained = false;
    // Bounded by the phase: reads time out every READ_POLL to check `stop`, and the phase
    // shuts the socket down at its end.
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if filled == buf.len() {
            // A line longer than the buffer: not ours, drop it.
            stats.garbled += 1;
            stats
                .garbled_example
                .get_or_insert_with(|| "(a line over 64 KiB)".to_owned());
            filled = 0;
        }
        let space = buf.len() - filled;
        let result = stream.read(&mut buf[filled..]);
        let now_ns = shared.now_ns();
        let n = match result {
            Ok(n) if n > 0 => n,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            ended => {
                if !shared.stop.load(Ordering::SeqCst) {
                    stats.end = Some(End {
                        at_ns: now_ns,
                        reason: match ended {
                            Err(error) => error.to_string(),
                            Ok(_) => "closed".to_owned(),
                        },
                        last_data_ns,
                        last_read_drained,
                    });
                    shared.ended[index].store(true, Ordering::SeqCst);
                }
                break;
            }
        };
        last_read_drained = n < space;
        filled += n;
        let before = stats.data_lines;
        let mut start = 0;
        while let Some(end) = buf[start..filled].iter().position(|&byte| byte == b'\n') {
            let line = &buf[start..start + end];
            start += end + 1;
            handle_line(line, index, now_ns, shared, &mut stats);
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        let new = stats.data_lines - before;
        if new > 0 {
            last_data_ns = Some(now_ns);
            shared.last_receipt_ns.fetch_max(now_ns, Ordering::SeqCst);
            shared.delivered.fetch_add(new, Ordering::SeqCst);
        }
    }
    stats
}

/// One received line, without its `\n`: espchat's `Client N: text\r` or ncat's `text`.
fn handle_line(line: &[u8], index: usize, now_ns: u64, shared: &Shared, stats: &mut ReceiverStats) {
    let raw = line;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let payload = match line.strip_prefix(b"Client ") {
        Some(rest) => match rest.windows(2).position(|pair| pair == b": ") {
            Some(colon) => &rest[colon + 2..],
            // `Client N connected` / `Client N disconnected`.
            None => {
                if rest.ends_with(b" disconnected")
                    && shared.running.load(Ordering::Relaxed)
                    && !shared.stop.load(Ordering::Relaxed)
                {
                    stats.disconnect_notices += 1;
                }
                return;
            }
        },
        None => line,
    };
    if let Some(client) = payload.strip_prefix(HELLO.as_bytes()) {
        if index == 0
            && let Ok(client) = std::str::from_utf8(client)
            && let Ok(client) = client.trim().parse::<u32>()
            && (client as usize) < CLIENTS
        {
            shared
                .hellos_at_first
                .fetch_or(1 << client, Ordering::SeqCst);
        }
        return;
    }
    match parse_data(payload, shared.lines) {
        Some((sender, seq)) => {
            let slot = &mut stats.receipt_ns[sender * shared.lines + seq];
            if *slot == NOT_RECEIVED {
                *slot = now_ns;
                stats.data_lines += 1;
            } else {
                stats.duplicates += 1;
            }
        }
        // Anything else during a phase: a damaged benchmark line (ncat relays bytes, not lines)
        // or a server message (`server full ...`, `notice: ...`).
        None if shared.running.load(Ordering::Relaxed) => {
            stats.garbled += 1;
            if stats.garbled_example.is_none() {
                let shown = &raw[..raw.len().min(2 * LINE_LEN)];
                stats.garbled_example =
                    Some(String::from_utf8_lossy(shown).escape_debug().to_string());
            }
        }
        None => {}
    }
}

/// A whole, undamaged benchmark payload (`encode_line` without its `\n`): sender and sequence.
fn parse_data(payload: &[u8], lines: usize) -> Option<(usize, usize)> {
    if payload.len() != LINE_LEN - 1 || payload.first() != Some(&DATA_MARK) {
        return None;
    }
    let text = std::str::from_utf8(&payload[1..]).ok()?;
    let mut fields = text.splitn(4, ' ');
    let sender: usize = fields.next()?.parse().ok()?;
    let seq: usize = fields.next()?.parse().ok()?;
    // The send time is the sender's record of it too; here it only has to be intact.
    let _send_ns: u64 = fields.next()?.parse().ok()?;
    let padding = fields.next()?;
    (sender < CLIENTS && seq < lines && padding.bytes().all(|byte| byte == b'.'))
        .then_some((sender, seq))
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_context() {
    println!(
        "load: flood {} lines/client as fast as possible, then paced {} lines/client, one per {:?}",
        FLOOD.lines,
        PACED.lines,
        PACED.pace.unwrap_or_default()
    );
    println!(
        "note: the load generator (8 sender + 8 receiver threads) shares the CPUs with the server"
    );
    println!();
}

fn print_phase_progress(server: &Server, spec: &PhaseSpec, result: &Result<PhaseResult, String>) {
    let name = server.name;
    let result = match result {
        Err(error) => {
            println!("  {name} {}: FAILED: {error}", spec.name);
            return;
        }
        Ok(result) => result,
    };
    println!(
        "  {name} {}: sent {}/{} lines, {} deliveries of {} expected, {}/{} lines reached all \
         their receivers; phase took {:.2} s{}",
        spec.name,
        result.sent,
        CLIENTS * result.lines_per_sender,
        result.delivered,
        CLIENTS * result.lines_per_sender * result.receivers_per_line,
        result.latencies.len(),
        CLIENTS * result.lines_per_sender,
        result.elapsed.as_secs_f64(),
        if result.timed_out {
            format!(" -- DEADLINE {:?} HIT, partial result", spec.deadline)
        } else {
            String::new()
        }
    );
    let mut drops: Vec<&DroppedClient> = result.drops.iter().collect();
    drops.sort_by_key(|dropped| dropped.after);
    for dropped in drops {
        let behind = dropped.best_other.saturating_sub(dropped.received);
        println!(
            "    ! client {} dropped by the server {} into the phase (connection {}): it had \
             received {} lines, the best-served other client {} ({} lines = {:.0} KiB behind); {}",
            dropped.client,
            fmt_latency(Some(nanos(dropped.after))),
            dropped.reason,
            dropped.received,
            dropped.best_other,
            behind,
            (behind * server.relayed_line_len as u64) as f64 / 1024.0,
            match (dropped.idle, dropped.drained) {
                // Data arrives in order before the close: after a read that emptied the socket,
                // a close read next means the server sent nothing in between.
                (Some(idle), true) => format!(
                    "it had read all it was sent: its last read, {} before the close, emptied its \
                     socket and nothing more came",
                    fmt_latency(Some(nanos(idle)))
                ),
                (Some(idle), false) => format!(
                    "its last read, {} before the close, filled its buffer: more was waiting",
                    fmt_latency(Some(nanos(idle)))
                ),
                (None, _) => "it had not received any benchmark line".to_owned(),
            }
        );
    }
    let mut problems = Vec::new();
    let expected = result.sent * result.receivers_per_line as u64;
    if result.delivered < expected {
        problems.push(format!(
            "{} of the deliveries of the lines sent never arrived",
            expected - result.delivered
        ));
    }
    if result.garbled > 0 {
        problems.push(format!(
            "{} damaged or unrecognised lines, e.g. \"{}\"",
            result.garbled,
            result.garbled_example.as_deref().unwrap_or("")
        ));
    }
    if result.duplicates > 0 {
        problems.push(format!("{} duplicate lines", result.duplicates));
    }
    if result.disconnect_notices > 0 {
        problems.push(format!(
            "{} `Client N disconnected` notices received",
            result.disconnect_notices
        ));
    }
    problems.extend(result.send_errors.iter().cloned());
    for problem in problems {
        println!("    ! {problem}");
    }
}

fn print_table(reports: &[ServerReport]) {
    let mut table = Table::new([
        "server",
        "deliveries/s",
        "flood done",
        "flood p50",
        "flood p99",
        "paced done",
        "paced p50",
        "paced p99",
        "peak RSS",
    ]);
    let partial = reports.iter().any(|report| {
        [&report.flood, &report.paced]
            .into_iter()
            .any(|phase| phase.as_ref().is_ok_and(|phase| !phase.all_complete()))
    });
    for report in reports {
        let flood = report.flood.as_ref().ok();
        let paced = report.paced.as_ref().ok();
        let latency = |phase: Option<&PhaseResult>, p: f64| {
            let Some(phase) = phase else {
                return "-".to_owned();
            };
            let mark = if phase.all_complete() { "" } else { "*" };
            format!("{}{mark}", fmt_latency(phase.percentile(p)))
        };
        table.row([
            report.name.to_owned(),
            flood.map_or("-".to_owned(), |flood| {
                let mark = if flood.all_complete() { "" } else { "*" };
                format!("{:.0}{mark}", flood.deliveries_per_sec())
            }),
            fmt_done(flood),
            latency(flood, 50.0),
            latency(flood, 99.0),
            fmt_done(paced),
            latency(paced, 50.0),
            latency(paced, 99.0),
            report.peak_rss_kib.map_or("-".to_owned(), fmt_mib),
        ]);
    }
    if let [espchat, ncat] = reports
        && espchat.name == "espchat"
        && ncat.name == "ncat"
    {
        fn flood(report: &ServerReport) -> Option<&PhaseResult> {
            report.flood.as_ref().ok()
        }
        fn paced(report: &ServerReport) -> Option<&PhaseResult> {
            report.paced.as_ref().ok()
        }
        let ratio = |phase: fn(&ServerReport) -> Option<&PhaseResult>,
                     value: fn(&PhaseResult) -> Option<f64>| {
            fmt_ratio(phase(espchat).and_then(value), phase(ncat).and_then(value))
        };
        let p50 = |phase: &PhaseResult| phase.percentile(50.0).map(|ns| ns as f64);
        let p99 = |phase: &PhaseResult| phase.percentile(99.0).map(|ns| ns as f64);
        let rss = |report: &ServerReport| report.peak_rss_kib.map(|kib| kib as f64);
        table.row([
            "esp/ncat".to_owned(),
            ratio(flood, |phase| Some(phase.deliveries_per_sec())),
            String::new(),
            ratio(flood, p50),
            ratio(flood, p99),
            String::new(),
            ratio(paced, p50),
            ratio(paced, p99),
            fmt_ratio(rss(espchat), rss(ncat)),
        ]);
        table.note(
            "(esp/ncat: espchat's value / ncat's; above 1x = more deliveries/s, or higher latency)",
        );
    }
    table.print();
    println!();
    for report in reports {
        let receivers = if report.echoes_sender {
            format!("all {CLIENTS} clients, the sender included, as `Client N: text\\r\\n`")
        } else {
            format!(
                "the {} other clients only, bytes as sent (`text\\n`, no prefix)",
                CLIENTS - 1
            )
        };
        println!("* {} relays each line to {receivers}.", report.name);
    }
    println!(
        "  The receivers parse both formats; deliveries count lines received, per receiver.
* deliveries/s: benchmark lines received by all clients together / time from the
  flood's first send to its last receipt.
* done: share of the phase's lines that reached every one of their receivers.
* latency: from a line's send until the last of its receivers got it."
    );
    if partial {
        println!(
            "  *: the phase lost lines (the `!` lines above say how): deliveries/s counts what
  arrived, the latencies cover only the lines that reached all their receivers."
        );
    }
    println!("* peak RSS: VmHWM of the server process after both phases.");
}

fn fmt_done(phase: Option<&PhaseResult>) -> String {
    phase.map_or("-".to_owned(), |phase| {
        if phase.all_complete() {
            return "100%".to_owned();
        }
        // Rounded down, so that an incomplete phase never shows 100%.
        let total = (CLIENTS * phase.lines_per_sender) as f64;
        let percent = 100.0 * phase.latencies.len() as f64 / total;
        format!("{:.2}%", (percent * 100.0).floor() / 100.0)
    })
}
