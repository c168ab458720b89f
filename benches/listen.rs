//! Listen benchmark: 64 boards connected to this computer at once, as in a lab where every
//! student's board is the TCP client of the teacher's machine. `espchat listen` against
//! `ncat -l -k` (the same job: every client's lines to stdout, stdin to every client), in one
//! run, on 127.0.0.1. Numbers, not pass/fail: it prints a table.
//!
//! - In: the 64 clients take turns sending a numbered line, one every 2 ms; a line's latency
//!   is from just before the bench writes it to the client's socket until the bench has read
//!   it from the listener's stdout (`chatN| in K` from espchat, `in K` from ncat).
//! - Out: the bench writes a numbered line to the listener's stdin every 5 ms (`@all out K`
//!   for espchat, `out K` for ncat, which sends its stdin to every client); its latency is
//!   until the last of the 64 clients has read it.
//! - Memory: the listener's VmRSS with the 64 connections open after both phases, and its
//!   VmHWM.
//!
//! Why not `ncat --broker`: a broker relays the clients to each other and has no stdin or
//! stdout side; nobody at the computer reads or answers the boards, which is the job here.
//! Every wait has a deadline; `ncat` missing from PATH skips it with a message.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::table::{Table, fmt_latency, fmt_mib, fmt_ratio};
use support::{
    Accepting, Bench, KillOnDrop, find_on_path, free_port, nanos, on_each_line, percentile,
    proc_field, wait_accepting,
};

const CLIENTS: usize = 64;
/// Lines in, in turns over the clients...
const IN_LINES: usize = 640;
/// ...one every this long.
const IN_PACE: Duration = Duration::from_millis(2);
/// Lines out to every client...
const OUT_LINES: usize = 200;
/// ...one every this long.
const OUT_PACE: Duration = Duration::from_millis(5);
/// Lines of each kind sent first and not measured (fresh connections wait for delayed ACKs).
const WARMUP: usize = 20;
const START_DEADLINE: Duration = Duration::from_secs(20);
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// When each numbered line was seen, in ns since the bench's base instant.
type Seen = Arc<Mutex<HashMap<u64, Vec<u64>>>>;

fn main() {
    let bench = Bench::start(&format!(
        "listen benchmark: {CLIENTS} clients connected to one listener on 127.0.0.1"
    ));
    let base = Instant::now();
    let Some(ncat) = find_on_path("ncat") else {
        println!("ncat: not on PATH, benchmark skipped (Debian/Ubuntu: apt-get install ncat)");
        return;
    };
    let espchat = Path::new(env!("CARGO_BIN_EXE_espchat"));
    let mut reports = Vec::new();
    for side in [Side::Espchat, Side::Ncat] {
        let program = match side {
            Side::Espchat => espchat,
            Side::Ncat => ncat.as_path(),
        };
        match run(side, program, base) {
            Ok(report) => reports.push(report),
            Err(error) => println!("{}: FAILED: {error}", side.name()),
        }
    }
    print_table(&reports);
    bench.finish();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Espchat,
    Ncat,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Espchat => "espchat listen",
            Side::Ncat => "ncat -l -k",
        }
    }

    fn command(self, program: &Path, port: u16) -> Command {
        let mut command = Command::new(program);
        match self {
            Side::Espchat => command.args([
                "listen",
                &format!("127.0.0.1:{port}"),
                "--headless",
                // The bench's probe for a listening port is a connection too.
                "--max-clients",
                &(CLIENTS + 1).to_string(),
            ]),
            Side::Ncat => command.args(["-l", "-k", "127.0.0.1", &port.to_string()]),
        };
        command
    }

    /// The line the listener's stdin takes to send `text` to every client.
    fn to_everyone(self, text: &str) -> String {
        match self {
            Side::Espchat => format!("@all {text}\n"),
            Side::Ncat => format!("{text}\n"),
        }
    }
}

struct Report {
    side: Side,
    in_ns: Vec<u64>,
    out_ns: Vec<u64>,
    lost_in: usize,
    lost_out: usize,
    rss_kib: u64,
    hwm_kib: u64,
}

fn run(side: Side, program: &Path, base: Instant) -> Result<Report, String> {
    let port = free_port()?;
    let mut child = side
        .command(program, port)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", program.display()))?;
    let mut stdin: ChildStdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut process = KillOnDrop(child);
    let pid = process.id();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let exited = || Some(process.0.try_wait().ok()??.to_string());
    match wait_accepting(addr, Instant::now() + START_DEADLINE, exited) {
        Accepting::Yes => {}
        Accepting::Exited(status) => return Err(format!("exited ({status})")),
        Accepting::TimedOut => return Err("not accepting".into()),
    }

    // What the listener prints: `in K` lines, and (espchat) its `accepted` lines.
    let heard: Seen = Arc::default();
    let accepted = Arc::new(Mutex::new(0usize));
    {
        let heard = heard.clone();
        let accepted = accepted.clone();
        on_each_line(stdout, move |line| {
            let at = nanos(base.elapsed());
            let text = String::from_utf8_lossy(line);
            if text.contains("accepted from") {
                *accepted.lock().unwrap() += 1;
            }
            if let Some(k) = number_after(&text, "in ") {
                heard.lock().unwrap().entry(k).or_default().push(at);
            }
        });
    }
    // The clients, each read by a thread of its own.
    let got: Seen = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let stream = TcpStream::connect(addr).map_err(|error| format!("connect: {error}"))?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        let got = got.clone();
        let reader = stream.try_clone().map_err(|error| error.to_string())?;
        on_each_line(reader, move |line| {
            let at = nanos(base.elapsed());
            if let Some(k) = number_after(&String::from_utf8_lossy(line), "out ") {
                got.lock().unwrap().entry(k).or_default().push(at);
            }
        });
        clients.push(stream);
    }
    if side == Side::Espchat {
        // The 64 and the probe that found the port open.
        wait_until("64 panes", || *accepted.lock().unwrap() > CLIENTS)?;
    }

    // In: the clients take turns.
    let mut in_sent = HashMap::new();
    for k in 0..(WARMUP + IN_LINES) as u64 {
        let client = &mut clients[k as usize % CLIENTS];
        in_sent.insert(k, nanos(base.elapsed()));
        client
            .write_all(format!("in {k}\n").as_bytes())
            .map_err(|error| format!("client send: {error}"))?;
        thread::sleep(IN_PACE);
    }
    let last_in = (WARMUP + IN_LINES - 1) as u64;
    let _ = wait_until("the last line in", || {
        heard.lock().unwrap().contains_key(&last_in)
    });

    // Out: to every client.
    let mut out_sent = HashMap::new();
    for k in 0..(WARMUP + OUT_LINES) as u64 {
        out_sent.insert(k, nanos(base.elapsed()));
        stdin
            .write_all(side.to_everyone(&format!("out {k}")).as_bytes())
            .map_err(|error| format!("stdin: {error}"))?;
        stdin.flush().map_err(|error| error.to_string())?;
        thread::sleep(OUT_PACE);
    }
    let last_out = (WARMUP + OUT_LINES - 1) as u64;
    let _ = wait_until("the last line out", || {
        got.lock()
            .unwrap()
            .get(&last_out)
            .is_some_and(|seen| seen.len() == CLIENTS)
    });

    let rss_kib = proc_field(pid, "status", "VmRSS:").unwrap_or(0);
    let hwm_kib = proc_field(pid, "status", "VmHWM:").unwrap_or(0);
    let measured = |k: &u64| *k >= WARMUP as u64;
    let heard = heard.lock().unwrap();
    let mut in_ns: Vec<u64> = in_sent
        .iter()
        .filter(|(k, _)| measured(k))
        .filter_map(|(k, sent)| Some(heard.get(k)?.first()?.saturating_sub(*sent)))
        .collect();
    let got = got.lock().unwrap();
    let mut out_ns: Vec<u64> = out_sent
        .iter()
        .filter(|(k, _)| measured(k))
        .filter_map(|(k, sent)| {
            let seen = got.get(k).filter(|seen| seen.len() == CLIENTS)?;
            Some(seen.iter().max()?.saturating_sub(*sent))
        })
        .collect();
    in_ns.sort_unstable();
    out_ns.sort_unstable();
    Ok(Report {
        side,
        lost_in: IN_LINES - in_ns.len(),
        lost_out: OUT_LINES - out_ns.len(),
        in_ns,
        out_ns,
        rss_kib,
        hwm_kib,
    })
}

/// The number after `prefix` at the end of a line (`chat3| in 17`, `out 5`).
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let text = text.trim_end();
    let at = text.rfind(prefix)?;
    text[at + prefix.len()..].parse().ok()
}

fn wait_until(what: &str, done: impl Fn() -> bool) -> Result<(), String> {
    let end = Instant::now() + DRAIN_DEADLINE;
    while !done() {
        if Instant::now() > end {
            return Err(format!("no {what} within {DRAIN_DEADLINE:?}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn print_table(reports: &[Report]) {
    let mut table = Table::new([
        "listener", "in p50", "in p99", "out p50", "out p99", "lost", "RSS", "peak RSS",
    ]);
    for report in reports {
        table.row([
            report.side.name().to_owned(),
            fmt_latency(percentile(&report.in_ns, 50.0)),
            fmt_latency(percentile(&report.in_ns, 99.0)),
            fmt_latency(percentile(&report.out_ns, 50.0)),
            fmt_latency(percentile(&report.out_ns, 99.0)),
            format!("{}/{}", report.lost_in, report.lost_out),
            fmt_mib(report.rss_kib),
            fmt_mib(report.hwm_kib),
        ]);
    }
    let find = |side| reports.iter().find(|report| report.side == side);
    if let (Some(espchat), Some(ncat)) = (find(Side::Espchat), find(Side::Ncat)) {
        let p99 = |ns: &[u64]| percentile(ns, 99.0).map(|v| v as f64);
        table.gap();
        table.note(format!(
            "espchat / ncat: in p99 {}, out p99 {}, RSS {}",
            fmt_ratio(p99(&espchat.in_ns), p99(&ncat.in_ns)),
            fmt_ratio(p99(&espchat.out_ns), p99(&ncat.out_ns)),
            fmt_ratio(Some(espchat.rss_kib as f64), Some(ncat.rss_kib as f64)),
        ));
    }
    table.note(format!(
        "{CLIENTS} clients; in: {IN_LINES} lines, one every {IN_PACE:?} in turns over the \
         clients, until read from the listener's stdout; out: {OUT_LINES} lines to the \
         listener's stdin, one every {OUT_PACE:?}, until the last client read it; the first \
         {WARMUP} of each not measured. lost: lines in/out never seen (by every client)."
    ));
    table.note(
        "RSS: the listener's VmRSS with every connection open after both phases; peak RSS its \
         VmHWM. espchat listen also decodes and sanitizes every line; ncat copies bytes.",
    );
    table.print();
}
