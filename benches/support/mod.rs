//! What the benchmark binaries (relay, ingest, panes, flashing, tui) have in common: the
//! machine context, /proc readers, finding programs, child processes, line readers, and their
//! result tables (`table`).

#![allow(dead_code)]

pub mod table;

use std::io::{BufRead as _, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

// ---------------------------------------------------------------------------------------------
// The machine

/// `machine: nproc N, CPU model, Linux release`.
pub fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("machine: nproc {cpus}, {model}, Linux {kernel}")
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| text.split(' ').take(3).collect::<Vec<_>>().join(" "),
    )
}

/// One run of a bench, framing its report: the title, the machine and its load at the start;
/// at the end, how long the run took and the load then (the machine is shared).
pub struct Bench {
    started: Instant,
}

impl Bench {
    pub fn start(title: &str) -> Bench {
        let started = Instant::now();
        println!("{title}");
        println!("{}", machine());
        println!(
            "load average (1, 5, 15 min) at the start: {}",
            load_average()
        );
        Bench { started }
    }

    pub fn finish(self) {
        println!();
        println!(
            "bench took {:.1} s; load average (1, 5, 15 min) at the end: {}",
            self.started.elapsed().as_secs_f64(),
            load_average()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// A numeric field of /proc/PID/`file` (`status`, `smaps_rollup`, `io`), the line starting
/// with `name`, a trailing `kB` dropped.
pub fn proc_field(pid: u32, file: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// VmHWM (peak resident set) of a live process, in KiB.
/// utime + stime of all the process's threads, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain anything, spaces and parentheses included: skip past it.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|&ticks| ticks > 0)?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_field(pid, "status", "VmHWM:")
}

// ---------------------------------------------------------------------------------------------
// Programs and processes

/// An executable file: `program` itself if it is a path, else the first match on PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |candidate: &Path| {
        candidate
            .metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program)).then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

/// A child process that is killed and reaped when dropped (also on panic).
pub struct KillOnDrop(pub Child);

impl Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `stdout` (of `espchat board`, say) to its end, passing each line on, trailing
/// whitespace trimmed (invalid UTF-8 replaced), while anyone listens. The thread ends with the
/// stream.
pub fn forward_lines(
    stdout: impl Read + Send + 'static,
) -> (JoinHandle<()>, mpsc::Receiver<String>) {
    let (lines_tx, lines_rx) = mpsc::channel();
    let drain = on_each_line(stdout, move |line| {
        let _ = lines_tx.send(String::from_utf8_lossy(line).trim_end().to_owned());
    });
    (drain, lines_rx)
}

/// Reads `stream` line by line until it ends or fails, handing each line (its `\n`
/// included, bytes as read) to `handle` as soon as it is complete.
pub fn on_each_line(
    stream: impl Read + Send + 'static,
    mut handle: impl FnMut(&[u8]) + Send + 'static,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => handle(&line),
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Ptys

/// A pty pair standing in for a serial port: the master non-blocking (the bench writes the
/// device's side into it), the slave raw and held open by the bench (never read) so that the
/// program under test can open it by `path`, and the bench can see its input queue.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub path: PathBuf,
}

impl Pty {
    pub fn open() -> Result<Pty, String> {
        let pty = nix::pty::openpty(None, None).map_err(|error| format!("openpty: {error}"))?;
        let mut termios = tcgetattr(&pty.slave).map_err(|error| format!("tcgetattr: {error}"))?;
        cfmakeraw(&mut termios);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &termios)
            .map_err(|error| format!("tcsetattr: {error}"))?;
        let path = nix::unistd::ttyname(&pty.slave).map_err(|error| format!("ttyname: {error}"))?;
        fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|error| format!("O_NONBLOCK on the master: {error}"))?;
        Ok(Pty {
            master: pty.master,
            slave: pty.slave,
            path,
        })
    }
}

/// Bytes in a pty slave's input queue, read by nobody yet.
pub fn queued(slave: &OwnedFd) -> Result<i32, Errno> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid for the call.
    let result = unsafe { libc::ioctl(slave.as_raw_fd(), libc::FIONREAD, &mut count) };
    if result < 0 {
        return Err(Errno::last());
    }
    Ok(count)
}

// ---------------------------------------------------------------------------------------------
// Listening servers

/// A free port on 127.0.0.1: bind port 0, note it, close it.
pub fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("cannot find a free port: {error}"))?
        .port())
}

/// How waiting for a server to accept connections ended.
pub enum Accepting {
    Yes,
    /// The server exited first, with this status.
    Exited(String),
    TimedOut,
}

/// Tries to connect to `addr` every 20 ms until it works, `exited` reports the server's
/// exit status, or `deadline` passes. The probe connection is closed again right away.
pub fn wait_accepting(
    addr: SocketAddr,
    deadline: Instant,
    mut exited: impl FnMut() -> Option<String>,
) -> Accepting {
    loop {
        if let Some(status) = exited() {
            return Accepting::Exited(status);
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Accepting::Yes;
        }
        if Instant::now() > deadline {
            return Accepting::TimedOut;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `ncat --broker` listening on a free port of 127.0.0.1, once it accepts connections (or an
/// error after `within`); `stdin` is what its standard input is.
pub fn ncat_broker(
    ncat: &Path,
    stdin: Stdio,
    within: Duration,
) -> Result<(KillOnDrop, SocketAddr), String> {
    let port = free_port()?;
    let child = Command::new(ncat)
        .args(["--broker", "--listen", "127.0.0.1", &port.to_string()])
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", ncat.display()))?;
    let mut process = KillOnDrop(child);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let exited = || Some(process.0.try_wait().ok()??.to_string());
    match wait_accepting(addr, Instant::now() + within, exited) {
        // That probe connection is closed again right away; ncat drops it.
        Accepting::Yes => Ok((process, addr)),
        Accepting::Exited(status) => {
            Err(format!("it exited ({status}) before accepting connections"))
        }
        Accepting::TimedOut => Err(format!("not accepting on {addr} within {within:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers

pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// ESP-IDF style console output: coloured `I`/`W`/`E` log lines from the usual components
/// mixed with plain `printf` lines (boot ROM, heap reports, hex dumps, chat traffic), `\r\n`
/// line ends, about 80 bytes a line. Deterministic (fixed seed). Without `addresses`, no IPv4
/// address appears anywhere (a TUI would open chat panes to one).
pub fn esp_log_text(bytes: usize, addresses: bool) -> Vec<u8> {
    const TAGS: &[&str] = &[
        "wifi",
        "wifi_init",
        "esp_netif_handlers",
        "espchat",
        "phy_init",
        "heap_init",
        "spi_flash",
        "cpu_start",
        "system_api",
        "chat_server",
        "nvs",
        "gpio",
    ];
    const INFO: &[&str] = &[
        "client {n} disconnected after {n} lines",
        "relayed {n} bytes from client {n} to {n} clients in {n} us",
        "state: assoc -> run (0x{n}), rssi -{n} dBm",
        "At 3FC9{n} len 000{n} ({n} KiB): DRAM",
        "free heap: {n} bytes, largest free block {n}, min free {n}",
        "led on (client {n}), gpio {n} level 1, policy lab, {n} clients",
        "rx queue depth {n}, tx queue depth {n}, dropped 0",
    ];
    const WARN: &[&str] = &[
        "client {n} is slow: {n} bytes waiting, holding new lines",
        "beacon timeout, rssi -{n} dBm, retry {n}/5",
        "line from client {n} cut to 256 bytes",
    ];
    const ERROR: &[&str] = &[
        "accept failed: errno {n} (ENFILE), retrying in {n} ms",
        "client {n} dropped: took nothing for 2 s with {n} bytes waiting",
    ];
    const PLAIN: &[&str] = &[
        "Client {n}: hello from the lab bench, message number {n} of the day",
        "Client {n}: on (switching the LED for the lab demo, attempt {n})",
        "LED on (Client {n}), requested at uptime {n} ms",
        "ets Jul 29 2019 12:21:46",
        "rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)",
        "load:0x3fcd5820,len:0x{n}",
        "3fc8{n}: 00 11 22 33 44 55 66 77  88 99 aa bb cc dd ee ff  |..\"3DUfw........|",
        "Task watchdog: {n} ticks, idle0 {n}%, chat {n}%, wifi {n}%",
    ];
    const WITH_ADDRESSES: &[&str] = &[
        "client {n} connected from 192.168.1.{n}:5{n}",
        "sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1",
        "listening on 192.168.1.42:5000",
    ];
    const WITHOUT_ADDRESSES: &[&str] = &["client {n} connected, {n} clients now, queue depth {n}"];
    let extra = if addresses {
        WITH_ADDRESSES
    } else {
        WITHOUT_ADDRESSES
    };
    let info: Vec<&str> = INFO.iter().chain(extra).copied().collect();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut fill = |template: &str, out: &mut Vec<u8>| {
        let mut parts = template.split("{n}");
        if let Some(first) = parts.next() {
            out.extend_from_slice(first.as_bytes());
        }
        for part in parts {
            out.extend_from_slice(rng.u32(1..100_000).to_string().as_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    };
    let mut text = Vec::with_capacity(bytes + 256);
    let mut millis: u64 = 312;
    let mut pick = fastrand::Rng::with_seed(0xe5b);
    while text.len() < bytes {
        millis += pick.u64(0..40);
        let roll = pick.u32(0..100);
        let (colour, level, messages) = match roll {
            0..55 => ("32", "I", info.as_slice()),
            55..65 => ("33", "W", WARN),
            65..70 => ("31", "E", ERROR),
            _ => ("", "", PLAIN),
        };
        let message = messages[pick.usize(0..messages.len())];
        if level.is_empty() {
            fill(message, &mut text);
            text.extend_from_slice(b"\r\n");
        } else {
            let tag = TAGS[pick.usize(0..TAGS.len())];
            text.extend_from_slice(
                format!("\x1b[0;{colour}m{level} ({millis}) {tag}: ").as_bytes(),
            );
            fill(message, &mut text);
            text.extend_from_slice(b"\x1b[0m\r\n");
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------
// esptool and the virtual board, for the flashing benches

/// esptool (PyPI) as found on this machine.
pub struct Esptool {
    pub path: PathBuf,
    pub version: String,
}

/// esptool through $ESPTOOL, /tmp/esptool-venv, target/ci-venv (where CI installs it) or PATH.
pub fn find_esptool() -> Option<Esptool> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = std::env::var_os("ESPTOOL")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("/tmp/esptool-venv/bin/esptool"),
            manifest.join("target/ci-venv/bin/esptool"),
        ])
        .chain(find_on_path("esptool"))
        .chain(find_on_path("esptool.py"));
    for path in candidates {
        if !path.is_file() {
            continue;
        }
        let Ok(output) = Command::new(&path)
            .arg("version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        if !output.status.success() {
            continue;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let version = text
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .unwrap_or("unknown version")
            .to_owned();
        return Some(Esptool { path, version });
    }
    None
}

/// How long a virtual board may take to start or to stop.
pub const BOARD_DEADLINE: Duration = Duration::from_secs(10);

/// `espchat board --blank --flash-file F`: killed and reaped when dropped (also on panic).
pub struct VirtualBoard {
    pub serial: PathBuf,
    child: Child,
    drain: Option<JoinHandle<()>>,
}

impl VirtualBoard {
    pub fn start(flash_file: &Path) -> Result<VirtualBoard, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_espchat"))
            .args(["board", "--tcp-port", "0", "--blank", "--flash-file"])
            .arg(flash_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", env!("CARGO_BIN_EXE_espchat")))?;
        // Reads stdout until the board exits, passing lines on while anyone listens.
        let (drain, lines_rx) = match child.stdout.take() {
            Some(stdout) => {
                let (drain, lines_rx) = forward_lines(stdout);
                (Some(drain), lines_rx)
            }
            None => (None, mpsc::channel().1),
        };
        let mut board = VirtualBoard {
            child,
            serial: PathBuf::new(),
            drain,
        };
        let first = match lines_rx.recv_timeout(BOARD_DEADLINE) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("no `serial:` line within {BOARD_DEADLINE:?}"));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the board exited before printing its pty".to_owned());
            }
        };
        let serial = first
            .strip_prefix("serial: ")
            .ok_or_else(|| format!("unexpected first line {first:?}"))?;
        board.serial = PathBuf::from(serial);
        Ok(board)
    }

    /// SIGTERM: the board saves its flash to its flash file and exits.
    pub fn stop(mut self) -> Result<(), String> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(|_| "pid out of range")?;
        // SAFETY: signals our own child, not yet reaped (`self` owns it), so the pid is its.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(format!(
                "cannot signal the board: {}",
                std::io::Error::last_os_error()
            ));
        }
        let deadline = Instant::now() + BOARD_DEADLINE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("the board exited with {status}")),
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!(
                        "the board did not exit within {BOARD_DEADLINE:?} of SIGTERM"
                    ));
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(error) => return Err(format!("cannot wait for the board: {error}")),
            }
        }
    }
}

impl Drop for VirtualBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The board is gone, so its stdout ends and the drain thread returns.
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }
}
