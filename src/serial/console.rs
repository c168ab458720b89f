//! The serial console actor: one task owning the port. It decodes what the board prints,
//! watches it for the board's address, writes what the user types, and reopens the port when
//! it vanishes (USB unplug, a native-USB board re-enumerating on reset, a virtual board
//! restarting) at the same path or wherever the same USB device shows up again.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use memchr::memmem::Finder;
use tokio::sync::{mpsc, watch};

use super::decode::{ConsoleDecoder, ConsoleOutput, HexDump, Style, StyledLine};
use super::ip_watcher::{BoardAddress, IpWatcher};
use super::net::{NetPort, console_url};
use super::port::{self, PortError, UsbIdentity};
use super::tty::Tty;
use crate::event::Event;
use crate::trace::{Decoding, TraceLine, Tracer};

/// How often a vanished port is looked for.
const REOPEN_INTERVAL: Duration = Duration::from_millis(200);
/// How long a shorter hex row waits for more bytes before it is shown as it is.
const HEX_ROW_IDLE: Duration = Duration::from_millis(200);
/// How long the reset line is held.
const RESET_PULSE: Duration = Duration::from_millis(100);

/// What Enter sends after a typed line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LineEnding {
    #[default]
    Crlf,
    Lf,
    Cr,
}

impl LineEnding {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Crlf => b"\r\n",
            LineEnding::Lf => b"\n",
            LineEnding::Cr => b"\r",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SerialOptions {
    pub path: PathBuf,
    pub baud: u32,
    pub line_ending: LineEnding,
    pub hex: bool,
    /// Sanitized console lines are appended here, with timestamps.
    pub log_file: Option<PathBuf>,
    /// Crash addresses decoded under the lines that hold them, when there is an ELF.
    pub decoding: Decoding,
}

/// What the front end asks of the console.
#[derive(Debug, PartialEq, Eq)]
pub enum SerialCommand {
    /// A typed line; the line ending is added.
    Line(String),
    /// A line that must start on a fresh line: a line ending goes first, so that bytes the
    /// device holds from before (boot noise, the tail of a flasher's last packet) end as a
    /// line of their own instead of spoiling this one.
    FreshLine(String),
    /// Keys as they are, e.g. Ctrl-C.
    Bytes(Vec<u8>),
    /// Pulse the reset line (EN via RTS) to restart the board.
    Reset,
    Hex(bool),
    /// Let go of the port and stop (see [`SerialConsole::close`]).
    Close,
}

/// What the console reports.
#[derive(Debug)]
pub enum SerialEvent {
    Opened {
        path: PathBuf,
        baud: u32,
    },
    Output(ConsoleOutput),
    /// The board's address changed (only the changed fields are set).
    Address(BoardAddress),
    /// The board logged `led on` / `led off`.
    Led(bool),
    /// Crash addresses decoded (or a word about decoding), right after the line holding them.
    Trace(Vec<TraceLine>),
    Lost {
        path: PathBuf,
        reason: String,
    },
    /// Something the user asked for could not be done; the console goes on.
    Problem(String),
}

/// Handle to a running console.
#[derive(Clone)]
pub struct SerialConsole {
    commands: mpsc::Sender<SerialCommand>,
    /// Closed (its sender dropped) once the actor has stopped and the port is closed.
    stopped: watch::Receiver<()>,
}

impl SerialConsole {
    /// Opens the port (failing at once with a clear error if it cannot) and starts the actor.
    pub fn open(
        options: SerialOptions,
        events: mpsc::Sender<Event>,
    ) -> Result<SerialConsole, PortError> {
        let port = Port::open(&options.path, options.baud)?;
        let identity = port::identity_of(&options.path);
        let log = match &options.log_file {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| PortError::Other {
                        path: path.clone(),
                        message: format!("cannot open the log file: {error}"),
                    })?,
            ),
            None => None,
        };
        let (commands, command_rx) = mpsc::channel(64);
        let actor = Actor {
            text: ConsoleDecoder::new(ConsoleDecoder::DEFAULT_MAX_LINE),
            hex: options.hex.then(HexDump::new),
            watcher: IpWatcher::new(),
            tracer: options.decoding.start(),
            log,
            identity,
            options,
            events,
        };
        let (stopped_tx, stopped) = watch::channel(());
        tokio::spawn(async move {
            // `run` owns the port: it is closed when `run` returns, before this sender goes.
            actor.run(port, command_rx).await;
            drop(stopped_tx);
        });
        Ok(SerialConsole { commands, stopped })
    }

    /// Stops the console and returns once the port is closed, so that another program (the
    /// flasher) can open it: the port is opened exclusively (TIOCEXCL), and merely dropping
    /// the handle would leave it open until the actor next runs.
    pub async fn close(mut self) {
        let _ = self.commands.send(SerialCommand::Close).await;
        while self.stopped.changed().await.is_ok() {}
    }

    /// Sends a command; false when the console has stopped.
    pub async fn send(&self, command: SerialCommand) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

struct Actor {
    options: SerialOptions,
    identity: Option<UsbIdentity>,
    /// The text of the console: always decoded, since the IP watcher, the LED and the log
    /// read it whatever the view.
    text: ConsoleDecoder,
    /// The hex view, when it is on: then it is what the console shows.
    hex: Option<HexDump>,
    watcher: IpWatcher,
    /// Decodes crash addresses, when the console has an ELF.
    tracer: Option<Tracer>,
    log: Option<std::fs::File>,
    events: mpsc::Sender<Event>,
}

impl Actor {
    async fn run(mut self, port: Port, mut commands: mpsc::Receiver<SerialCommand>) {
        let mut port = Some(port);
        if !self
            .emit(SerialEvent::Opened {
                path: self.options.path.clone(),
                baud: self.options.baud,
            })
            .await
        {
            return;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let Some(open) = port.as_mut() else {
                // The port is gone: look for it again while still answering commands.
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(SerialCommand::Close) | None => return,
                        Some(command) => {
                            if !self.refuse(command).await { return; }
                        }
                    },
                    () = tokio::time::sleep(REOPEN_INTERVAL) => {
                        if let Some((reopened, path)) = self.reopen() {
                            port = Some(reopened);
                            if !self.emit(SerialEvent::Opened { path, baud: self.options.baud }).await {
                                return;
                            }
                        }
                    }
                }
                continue;
            };
            tokio::select! {
                read = open.read(&mut buf) => match read {
                    Ok(n) if n > 0 => {
                        if !self.decode(&buf[..n]).await { return; }
                    }
                    result => {
                        let reason = match result {
                            Ok(_) => "the device hung up".to_owned(),
                            Err(error) => error.to_string(),
                        };
                        port = None;
                        if !self.lost(reason).await { return; }
                    }
                },
                // A row of the hex view is shown once 16 bytes are in, or when the device has
                // been quiet for a moment: the last bytes it printed do not wait for more.
                () = tokio::time::sleep(HEX_ROW_IDLE), if self.hex.as_ref().is_some_and(HexDump::pending) => {
                    if !self.flush_hex().await { return; }
                }
                command = commands.recv() => match command {
                    Some(SerialCommand::Close) | None => {
                        self.flush_hex().await;
                        return;
                    }
                    Some(command) => {
                        let typed = is_typed(&command);
                        if let Err(error) = self.execute(open, command).await {
                            port = None;
                            if !self.lost(error.to_string()).await { return; }
                            // The write failed with the port: what was typed did not go out.
                            if typed && !self.emit(SerialEvent::Problem(self.not_sent())).await {
                                return;
                            }
                        }
                    }
                },
            }
        }
    }

    async fn execute(&mut self, port: &mut Port, command: SerialCommand) -> io::Result<()> {
        match command {
            SerialCommand::Line(line) => {
                let mut bytes = line.into_bytes();
                bytes.extend_from_slice(self.options.line_ending.bytes());
                port.write_all(&bytes).await
            }
            SerialCommand::FreshLine(line) => {
                let ending = self.options.line_ending.bytes();
                let mut bytes = ending.to_vec();
                bytes.extend_from_slice(line.as_bytes());
                bytes.extend_from_slice(ending);
                port.write_all(&bytes).await
            }
            SerialCommand::Bytes(bytes) => port.write_all(&bytes).await,
            SerialCommand::Reset => {
                if let Err(error) = port.reset().await {
                    self.emit(SerialEvent::Problem(format!(
                        "cannot reset the board from {}: {error} (no DTR/RTS on this port; press the \
                         board's RESET button)",
                        self.options.path.display()
                    )))
                    .await;
                }
                Ok(())
            }
            SerialCommand::Hex(hex) => {
                self.set_hex(hex).await;
                Ok(())
            }
            // Handled by the loop, which stops.
            SerialCommand::Close => Ok(()),
        }
    }

    /// A command while the port is gone: nothing can be sent, and the user is told.
    async fn refuse(&mut self, command: SerialCommand) -> bool {
        match command {
            SerialCommand::Hex(hex) => {
                self.set_hex(hex).await;
                true
            }
            SerialCommand::Close => true,
            SerialCommand::Line(_)
            | SerialCommand::FreshLine(_)
            | SerialCommand::Bytes(_)
            | SerialCommand::Reset => self.emit(SerialEvent::Problem(self.not_sent())).await,
        }
    }

    fn not_sent(&self) -> String {
        format!(
            "not sent: serial port {} is gone (waiting for it to come back)",
            self.options.path.display()
        )
    }

    async fn lost(&mut self, reason: String) -> bool {
        self.flush().await;
        self.emit(SerialEvent::Lost {
            path: self.options.path.clone(),
            reason,
        })
        .await
    }

    /// The port again: at its path, or wherever the same USB device is attached now.
    fn reopen(&mut self) -> Option<(Port, PathBuf)> {
        if let Ok(port) = Port::open(&self.options.path, self.options.baud) {
            return Some((port, self.options.path.clone()));
        }
        let identity = self.identity.as_ref()?;
        let path = port::find_identity(identity)?;
        let port = Port::open(&path, self.options.baud).ok()?;
        self.options.path = path.clone();
        Some((port, path))
    }

    async fn decode(&mut self, bytes: &[u8]) -> bool {
        let mut text = Vec::new();
        self.text.feed(bytes, &mut |output| text.push(output));
        let mut hex = Vec::new();
        if let Some(dump) = &mut self.hex {
            dump.feed(bytes, &mut |line| {
                hex.push(ConsoleOutput::Line(StyledLine::new(line, Style::default())))
            });
        }
        self.forward(text, hex).await
    }

    /// Switches the view; the text underneath goes on being read.
    async fn set_hex(&mut self, on: bool) -> bool {
        match (on, self.hex.take()) {
            (true, dump) => {
                self.hex = Some(dump.unwrap_or_else(HexDump::new));
                true
            }
            (false, Some(mut dump)) => {
                let mut hex = Vec::new();
                dump.flush(&mut |line| {
                    hex.push(ConsoleOutput::Line(StyledLine::new(line, Style::default())))
                });
                self.forward(Vec::new(), hex).await
            }
            (false, None) => true,
        }
    }

    /// Shows the shorter last row of the hex view, if any.
    async fn flush_hex(&mut self) -> bool {
        let mut hex = Vec::new();
        if let Some(dump) = &mut self.hex {
            dump.flush(&mut |line| {
                hex.push(ConsoleOutput::Line(StyledLine::new(line, Style::default())))
            });
        }
        self.forward(Vec::new(), hex).await
    }

    async fn flush(&mut self) -> bool {
        let mut text = Vec::new();
        self.text.flush(&mut |output| text.push(output));
        let mut hex = Vec::new();
        if let Some(dump) = &mut self.hex {
            dump.flush(&mut |line| {
                hex.push(ConsoleOutput::Line(StyledLine::new(line, Style::default())))
            });
        }
        self.forward(text, hex).await
    }

    /// Reports what the console shows (the text, or the hex view when it is on), and then
    /// what the text told about the board (so `board! ip` follows the console output it came
    /// from, in line mode).
    async fn forward(&mut self, text: Vec<ConsoleOutput>, hex: Vec<ConsoleOutput>) -> bool {
        let shown_as_text = self.hex.is_none();
        for line in hex {
            if !self.emit(SerialEvent::Output(line)).await {
                return false;
            }
        }
        for output in text {
            let mut findings = Vec::new();
            let mut traces = Vec::new();
            if let ConsoleOutput::Line(line) = &output {
                let text = line.text();
                self.write_log(&text);
                let change = self.watcher.line(&text);
                if change.ip.is_some() || change.port.is_some() {
                    findings.push(SerialEvent::Address(change));
                }
                findings.extend(led_line(&text).map(SerialEvent::Led));
                if let Some(tracer) = &mut self.tracer {
                    traces = tracer.line(&text).await;
                }
            }
            if shown_as_text && !self.emit(SerialEvent::Output(output)).await {
                return false;
            }
            // The decoded addresses go right under their line, before what else it said.
            let traces = (!traces.is_empty()).then_some(SerialEvent::Trace(traces));
            for finding in traces.into_iter().chain(findings) {
                if !self.emit(finding).await {
                    return false;
                }
            }
        }
        true
    }

    fn write_log(&mut self, text: &str) {
        let Some(file) = &mut self.log else { return };
        let now = humantime_now();
        if let Err(error) = writeln!(file, "{now} {text}") {
            tracing::warn!("log file write failed: {error}; logging stops");
            self.log = None;
        }
    }

    /// False when the front end is gone: the actor then stops quietly.
    async fn emit(&self, event: SerialEvent) -> bool {
        self.events.send(Event::Serial(event)).await.is_ok()
    }
}

/// Bytes for the device: what the user typed.
fn is_typed(command: &SerialCommand) -> bool {
    matches!(
        command,
        SerialCommand::Line(_) | SerialCommand::FreshLine(_) | SerialCommand::Bytes(_)
    )
}

/// The espchat firmware logs with an `espchat:` tag: once one shows, it reads its console,
/// and Wi-Fi credentials sent now are taken.
pub fn firmware_reads_console(text: &str) -> bool {
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("espchat:"));
    FINDER.find(text.as_bytes()).is_some()
}

/// The firmware says it has no Wi-Fi credentials stored (and so will get no IP address).
pub fn firmware_lacks_credentials(text: &str) -> bool {
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("no wifi credentials"));
    FINDER.find(text.as_bytes()).is_some()
}

/// `espchat: led on` / `espchat: led off` (docs/contract.md §4), with any log prefix.
fn led_line(text: &str) -> Option<bool> {
    let text = text.trim_end();
    if text.ends_with("espchat: led on") {
        Some(true)
    } else if text.ends_with("espchat: led off") {
        Some(false)
    } else {
        None
    }
}

/// UTC wall-clock time as `2026-11-22T10:57:01.123Z`, for log files.
pub fn humantime_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// An open port, readable and writable without blocking the runtime: a local serial port, or
/// a console behind the network (`socket://`, `rfc2217://`).
enum Port {
    Tty(Tty),
    Net(Box<NetPort>),
}

impl Port {
    fn open(path: &Path, baud: u32) -> Result<Port, PortError> {
        if let Some((scheme, address)) = console_url(path) {
            return NetPort::open(path, scheme, address, baud).map(|net| Port::Net(Box::new(net)));
        }
        Tty::open(path, baud).map(Port::Tty)
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Port::Tty(tty) => tty.read(buf).await,
            Port::Net(net) => net.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Port::Tty(tty) => tty.write_all(bytes).await,
            Port::Net(net) => net.write_all(bytes).await,
        }
    }

    /// The auto-reset circuit of ESP boards: RTS low pulls EN low; DTR stays high so the chip
    /// boots the app, not the ROM loader.
    async fn reset(&mut self) -> Result<(), String> {
        match self {
            Port::Tty(tty) => {
                let text = |error: serialport::Error| error.to_string();
                let port = tty.lines();
                port.write_data_terminal_ready(false).map_err(text)?;
                port.write_request_to_send(true).map_err(text)?;
                tokio::time::sleep(RESET_PULSE).await;
                tty.lines().write_request_to_send(false).map_err(text)
            }
            Port::Net(net) => net.reset(RESET_PULSE).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn led_lines_with_any_prefix() {
        assert_eq!(led_line("I (2358) espchat: led on"), Some(true));
        assert_eq!(led_line("INFO - espchat: led off"), Some(false));
        assert_eq!(led_line("espchat: led on GPIO8 (active-high)"), None);
        assert_eq!(led_line("Client 1: espchat: led onward"), None);
    }

    /// On a pty: Unix only.
    #[cfg(unix)]
    mod on_a_pty {
        use super::*;

        /// A pty to stand for a board, and the console options that open its port.
        fn pty_console() -> (nix::pty::OpenptyResult, SerialOptions) {
            let pty = nix::pty::openpty(None, None).unwrap();
            let options = SerialOptions {
                path: nix::unistd::ttyname(&pty.slave).unwrap(),
                baud: 115_200,
                line_ending: LineEnding::Crlf,
                hex: false,
                log_file: None,
                decoding: Default::default(),
            };
            (pty, options)
        }

        #[tokio::test]
        async fn a_fresh_line_ends_what_the_device_holds_first() {
            use std::io::Read as _;
            let (pty, options) = pty_console();
            let (events, _event_rx) = mpsc::channel(64);
            let console = SerialConsole::open(options, events).unwrap();
            console
                .send(SerialCommand::FreshLine("wifi lab".into()))
                .await;
            console.send(SerialCommand::Line("status".into())).await;
            console.close().await;
            // Non-blocking reads with a deadline: a missing byte fails the test instead of hanging it.
            let flags = nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
            let flags =
                nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
            let mut master = std::fs::File::from(pty.master);
            let mut buf = vec![0u8; 64];
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while got.len() < b"\r\nwifi lab\r\nstatus\r\n".len()
                && std::time::Instant::now() < deadline
            {
                match master.read(&mut buf) {
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(error) => panic!("reading the pty: {error}"),
                }
            }
            assert_eq!(got, b"\r\nwifi lab\r\nstatus\r\n");
        }

        #[tokio::test]
        async fn closing_lets_go_of_the_port_before_it_returns() {
            let pty = nix::pty::openpty(None, None).unwrap();
            let path = nix::unistd::ttyname(&pty.slave).unwrap();
            let options = SerialOptions {
                path: path.clone(),
                baud: 115_200,
                line_ending: LineEnding::Crlf,
                hex: false,
                log_file: None,
                decoding: Default::default(),
            };
            let (events, _event_rx) = mpsc::channel(64);
            for _ in 0..20 {
                let console = SerialConsole::open(options.clone(), events.clone()).unwrap();
                // The port is exclusive while the console has it...
                assert!(matches!(
                    Port::open(&path, 115_200),
                    Err(PortError::Busy { .. })
                ));
                console.close().await;
                // ...and free the moment close returns, as the flasher needs it.
                drop(Port::open(&path, 115_200).expect("the port is free after close"));
            }
        }

        /// Issue 16, item 1: a line typed as the port vanishes is reported as not sent, whether
        /// the console notices the loss first or finds out by failing to write it.
        #[tokio::test]
        async fn a_line_whose_write_fails_with_the_port_is_reported_not_sent() {
            for run in 1..=20 {
                let (pty, options) = pty_console();
                let (events, mut event_rx) = mpsc::channel(64);
                let console = SerialConsole::open(options, events).unwrap();
                // The port hangs up before the actor first runs: reading and writing both fail.
                drop(pty);
                console.send(SerialCommand::Line("status".into())).await;
                let mut reported = false;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while !reported {
                    let event = tokio::time::timeout_at(deadline, event_rx.recv()).await;
                    match event {
                        Ok(Some(Event::Serial(SerialEvent::Problem(message)))) => {
                            assert!(message.starts_with("not sent: "), "{message}");
                            reported = true;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => {
                            panic!("run {run}: the line was dropped without a word")
                        }
                    }
                }
                console.close().await;
            }
        }
    }
}
