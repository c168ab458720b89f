//! The headless line mode (CONTRACT.md §2): the engine without a screen, for scripts, CI and
//! screen readers. One event per stdout line, `SOURCE| data` or `SOURCE! status`; commands on
//! stdin: `@N text`, `@all text`, `@serial text`, `@quit`.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::chat::{ChatEvent, ChatPane, PaneCommand, PaneId, PaneLine, QUEUE_LINES};
use crate::config::WifiCredentials;
use crate::event::Event;
use crate::serial::{
    BoardAddress, ConsoleOutput, SerialCommand, SerialConsole, SerialEvent, StyledLine,
    firmware_lacks_credentials, firmware_reads_console,
};

/// An unfinished line (a prompt, a server that sends no newline) is printed once nothing has
/// been added to it for this long.
const PARTIAL_IDLE: Duration = Duration::from_millis(150);
/// Events printed before stdout is flushed, at most: a fast console costs one write per batch,
/// not one per line.
const EVENT_BATCH: usize = 256;
/// Once the board's IP is known, how long to wait for its server's port before assuming 5000
/// (many firmwares print only the IP).
const PORT_GRACE: Duration = Duration::from_secs(1);
/// The longest wait for panes to deliver their last lines after end of input.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// What the line mode drives.
pub struct Headless {
    pub serial: Option<SerialConsole>,
    pub panes: Vec<ChatPane>,
    pub events: mpsc::Receiver<Event>,
    /// Prefix console lines with the time they were received.
    pub timestamps: bool,
    /// Open the chat panes once the console shows the board's address.
    pub auto_connect: Option<AutoConnect>,
}

/// flash-and-connect's panes: opened when the console shows the board's address, retargeted
/// when it changes.
pub struct AutoConnect {
    pub clients: usize,
    /// Wi-Fi credentials to store on the board once its firmware is up.
    pub provision: Option<WifiCredentials>,
    /// How long to wait for the address before giving up with a hint.
    pub ip_timeout: Duration,
    /// Where the panes report.
    pub events: mpsc::Sender<Event>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    #[error("cannot write to stdout: {0}")]
    Stdout(#[from] io::Error),
    /// The board never showed its address.
    #[error("{0}")]
    NoAddress(String),
}

/// Whether a command line is for the chat panes (`@N …`, `@all …`).
fn is_for_panes(line: &str) -> bool {
    let target = line.split(' ').next().unwrap_or_default();
    target == "@all"
        || target
            .strip_prefix('@')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Why no address came, as far as the console tells, and what to do.
fn no_address_hint(timeout_secs: u64, no_credentials: bool) -> String {
    if no_credentials {
        "the board has no Wi-Fi credentials, so it has no IP address: run again with \
         --wifi-ssid NAME --wifi-password PASSWORD (or type: @serial wifi NAME PASSWORD)"
            .to_owned()
    } else {
        format!(
            "no IP address on the board's console within {timeout_secs} s: check that its \
             Wi-Fi network is in reach and the password is right (the console above shows what \
             it tried), or wait longer with --ip-timeout"
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Serial,
    Chat(PaneId),
}

impl Source {
    fn name(self) -> String {
        match self {
            Source::Serial => "serial".to_owned(),
            Source::Chat(id) => format!("chat{id}"),
        }
    }
}

/// An unfinished line: its latest text, when it last changed, and how much of it was printed.
struct Partial {
    source: Source,
    text: String,
    changed: Instant,
    printed: usize,
}

impl Headless {
    /// Runs until end of input, `@quit`, or Ctrl-C. Returns when everything queued is sent.
    pub async fn run(mut self) -> Result<(), HeadlessError> {
        let mut out = Printer {
            stdout: io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            partials: Vec::new(),
            timestamps: self.timestamps,
        };
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut input = Vec::new();
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut tick = tokio::time::interval(PARTIAL_IDLE / 2);
        let mut open_panes = self.panes.len();
        let mut closing: Option<Instant> = None;
        // flash-and-connect: the panes open when the console shows the board's address.
        let mut ip_deadline = self
            .auto_connect
            .as_ref()
            .map(|auto| Instant::now() + auto.ip_timeout);
        let mut address = BoardAddress::default();
        // Once the IP is known, how long to wait for a port before assuming the lab's 5000.
        let mut port_grace: Option<Instant> = None;
        let mut no_credentials = false;
        // Lines for panes that are not open yet.
        let mut pending: Vec<String> = Vec::new();
        loop {
            if closing.is_some() && open_panes == 0 && ip_deadline.is_none() {
                break;
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => {
                        // Whatever else is queued goes out with it, in one write to stdout.
                        let mut next = Some(event);
                        let mut batch = 0;
                        while let Some(event) = next.take() {
                            match &event {
                                Event::Chat(_, ChatEvent::Closed) => open_panes -= 1,
                                Event::Serial(SerialEvent::Output(ConsoleOutput::Line(line))) => {
                                    let text = line.plain();
                                    no_credentials |= firmware_lacks_credentials(&text);
                                    if firmware_reads_console(&text)
                                        && let Some(wifi) = self.auto_connect.as_mut().and_then(|auto| auto.provision.take())
                                        && let Some(serial) = &self.serial
                                    {
                                        out.status("serial", &format!("sending the Wi-Fi credentials for \"{}\"", wifi.ssid))?;
                                        serial.send(SerialCommand::FreshLine(wifi.console_command())).await;
                                    }
                                }
                                Event::Serial(SerialEvent::Address(change)) => {
                                    address.ip = change.ip.or(address.ip);
                                    address.port = change.port.or(address.port);
                                }
                                _ => {}
                            }
                            out.event(event)?;
                            batch += 1;
                            if batch < EVENT_BATCH {
                                next = self.events.try_recv().ok();
                            }
                        }
                        if address.ip.is_some() && address.port.is_none() && port_grace.is_none() {
                            port_grace = Some(Instant::now() + PORT_GRACE);
                        }
                        let port_settled = address.port.is_some()
                            || port_grace.is_some_and(|until| Instant::now() >= until);
                        if let (true, Some(ip), true) = (self.auto_connect.is_some(), address.ip, port_settled) {
                            let port = address.port.unwrap_or(espchat_core::PORT);
                            if self.panes.is_empty() {
                                open_panes = self.open_auto_panes(ip, port, &mut pending, closing.is_some(), &mut out).await?;
                                ip_deadline = None;
                            } else {
                                for pane in &self.panes {
                                    pane.send(PaneCommand::Retarget { host: ip.to_string(), port }).await;
                                }
                            }
                        }
                    }
                    None => break,
                },
                read = stdin.read_until(b'\n', &mut input), if closing.is_none() => {
                    let done = match read {
                        Ok(0) | Err(_) => true,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&input).trim_end_matches(['\r', '\n']).to_owned();
                            input.clear();
                            if ip_deadline.is_some() && is_for_panes(&line) {
                                if pending.len() < QUEUE_LINES {
                                    pending.push(line);
                                } else {
                                    out.error(&format!("not sent (no chat pane yet and {QUEUE_LINES} lines waiting): {}", clean(&line)))?;
                                }
                                false
                            } else {
                                self.command(&line, &mut out).await?
                            }
                        }
                    };
                    if done {
                        closing = Some(Instant::now());
                        self.close_panes().await;
                    }
                },
                _ = interrupt.recv() => break,
                _ = tick.tick() => {
                    out.stale_partials()?;
                    if self.panes.is_empty()
                        && self.auto_connect.is_some()
                        && let (Some(ip), Some(until)) = (address.ip, port_grace)
                        && Instant::now() >= until
                    {
                        // The firmware named no port: the lab's server listens on 5000.
                        open_panes = self
                            .open_auto_panes(ip, espchat_core::PORT, &mut pending, closing.is_some(), &mut out)
                            .await?;
                        ip_deadline = None;
                    }
                    if ip_deadline.is_some_and(|deadline| Instant::now() > deadline) {
                        let timeout = self.auto_connect.as_ref().map_or(0, |auto| auto.ip_timeout.as_secs());
                        let message = no_address_hint(timeout, no_credentials);
                        out.error(&message)?;
                        out.flush()?;
                        return Err(HeadlessError::NoAddress(message));
                    }
                    if ip_deadline.is_none() && closing.is_some_and(|since| since.elapsed() > CLOSE_DEADLINE) {
                        out.status(Source::Serial.name().as_str(), "stopping: chat panes did not finish in time")?;
                        break;
                    }
                }
            }
            out.flush()?;
        }
        out.all_partials()?;
        Ok(out.flush()?)
    }

    /// flash-and-connect: opens the panes to the board's server, sends what was typed for them
    /// meanwhile, and closes them again at once when input has ended. Returns how many opened.
    async fn open_auto_panes(
        &mut self,
        ip: std::net::Ipv4Addr,
        port: u16,
        pending: &mut Vec<String>,
        closing: bool,
        out: &mut Printer,
    ) -> Result<usize, HeadlessError> {
        let Some(auto) = &self.auto_connect else {
            return Ok(0);
        };
        let mut line = PaneLine::new();
        self.panes = (1..=auto.clients)
            .map(|id| line.spawn(id, ip.to_string(), port, auto.events.clone()))
            .collect();
        for line in std::mem::take(pending) {
            self.command(&line, out).await?;
        }
        if closing {
            self.close_panes().await;
        }
        Ok(self.panes.len())
    }

    async fn close_panes(&self) {
        for pane in &self.panes {
            pane.send(PaneCommand::Close).await;
        }
    }

    /// One stdin line. True on `@quit`.
    async fn command(&mut self, line: &str, out: &mut Printer) -> io::Result<bool> {
        let (target, text) = match line.split_once(' ') {
            Some((target, text)) => (target, text),
            None => (line, ""),
        };
        match target {
            "@quit" => return Ok(true),
            "@serial" => match &self.serial {
                Some(serial) => {
                    serial.send(SerialCommand::Line(text.to_owned())).await;
                }
                None => out.error("no serial console in this mode; @serial is for monitor")?,
            },
            "@all" => {
                for pane in &self.panes {
                    pane.send(PaneCommand::Send(text.to_owned())).await;
                }
                if self.panes.is_empty() {
                    out.error("no chat panes in this mode")?;
                }
            }
            _ => {
                let pane = target
                    .strip_prefix('@')
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|index| self.panes.get(index));
                match pane {
                    Some(pane) => {
                        pane.send(PaneCommand::Send(text.to_owned())).await;
                    }
                    None if line.trim().is_empty() => {}
                    None => out.error(&format!(
                        "unknown command {:?}: use @1..@{} text, @all text, @serial text or @quit",
                        crate::serial::decode::sanitize(target.as_bytes()),
                        self.panes.len().max(1)
                    ))?,
                }
            }
        }
        Ok(false)
    }
}

struct Printer {
    stdout: io::BufWriter<io::Stdout>,
    partials: Vec<Partial>,
    timestamps: bool,
}

impl Printer {
    fn event(&mut self, event: Event) -> io::Result<()> {
        match event {
            Event::Serial(event) => self.serial(event),
            Event::Chat(id, event) => self.chat(id, event),
            Event::Flash(event) => match event.status_line() {
                Some(line) => self.status("flash", &line),
                None => Ok(()),
            },
            Event::FlashDone(Ok(_)) => Ok(()),
            Event::FlashDone(Err(message)) => self.error(&message),
        }
    }

    fn serial(&mut self, event: SerialEvent) -> io::Result<()> {
        match event {
            SerialEvent::Opened { path, baud } => self.status(
                "serial",
                &format!("opened {} at {baud} baud", path.display()),
            ),
            SerialEvent::Output(output) => self.output(Source::Serial, output),
            SerialEvent::Address(change) => {
                if let Some(ip) = change.ip {
                    self.status("board", &format!("ip {ip}"))?;
                }
                if let Some(port) = change.port {
                    self.status("board", &format!("port {port}"))?;
                }
                Ok(())
            }
            SerialEvent::Led(on) => self.status("board", if on { "led on" } else { "led off" }),
            SerialEvent::Lost { path, reason } => self.status(
                "serial",
                &format!(
                    "lost {}: {reason}; waiting for it to come back",
                    path.display()
                ),
            ),
            SerialEvent::Problem(message) => self.error(&message),
        }
    }

    fn chat(&mut self, id: PaneId, event: ChatEvent) -> io::Result<()> {
        let source = Source::Chat(id).name();
        match event {
            // Every attempt would print one; connected/disconnected say what matters.
            ChatEvent::Connecting { .. } => Ok(()),
            ChatEvent::Connected { addr } => self.status(&source, &format!("connected {addr}")),
            ChatEvent::Output(output) => self.output(Source::Chat(id), output),
            ChatEvent::Disconnected { reason } => {
                self.status(&source, &format!("disconnected: {reason}"))
            }
            ChatEvent::Reconnecting { after } => self.status(
                &source,
                &format!("reconnecting in {:.1} s", after.as_secs_f64()),
            ),
            ChatEvent::Dropped { line, reason } => {
                let line = clean(&line);
                self.status(&source, &format!("not sent ({reason}): {line}"))
            }
            ChatEvent::Closed => self.status(&source, "closed"),
        }
    }

    fn output(&mut self, source: Source, output: ConsoleOutput) -> io::Result<()> {
        match output {
            ConsoleOutput::Line(line) => {
                let text = line.plain();
                let printed = match self.partials.iter().position(|p| p.source == source) {
                    Some(index) => self.partials.swap_remove(index).printed,
                    None => 0,
                };
                // The start of this line went out already as an unfinished line: print the rest.
                let rest = if printed > 0 && text.is_char_boundary(printed) && printed <= text.len()
                {
                    &text[printed..]
                } else {
                    &text
                };
                if printed > 0 && rest.is_empty() {
                    return Ok(());
                }
                self.data(source, rest)
            }
            ConsoleOutput::Partial(line) => {
                self.partial(source, &line);
                Ok(())
            }
        }
    }

    fn partial(&mut self, source: Source, line: &StyledLine) {
        let text = line.plain();
        match self.partials.iter_mut().find(|p| p.source == source) {
            Some(partial) => {
                // A redrawn line (bare CR) may be shorter than what was printed.
                if !text.starts_with(&partial.text[..partial.printed.min(partial.text.len())]) {
                    partial.printed = 0;
                }
                partial.text = text;
                partial.changed = Instant::now();
            }
            None => self.partials.push(Partial {
                source,
                text,
                changed: Instant::now(),
                printed: 0,
            }),
        }
    }

    fn stale_partials(&mut self) -> io::Result<()> {
        self.print_partials(|partial| partial.changed.elapsed() >= PARTIAL_IDLE)
    }

    fn all_partials(&mut self) -> io::Result<()> {
        self.print_partials(|_| true)
    }

    fn print_partials(&mut self, due: impl Fn(&Partial) -> bool) -> io::Result<()> {
        let mut lines = Vec::new();
        for partial in &mut self.partials {
            if partial.printed < partial.text.len() && due(partial) {
                let start = if partial.text.is_char_boundary(partial.printed) {
                    partial.printed
                } else {
                    0
                };
                lines.push((partial.source, partial.text[start..].to_owned()));
                partial.printed = partial.text.len();
            }
        }
        for (source, text) in lines {
            self.data(source, &text)?;
        }
        Ok(())
    }

    fn data(&mut self, source: Source, text: &str) -> io::Result<()> {
        let text = clean(text);
        if self.timestamps && source == Source::Serial {
            let now = crate::serial::humantime_now();
            writeln!(self.stdout, "{}| {now} {text}", source.name())
        } else {
            writeln!(self.stdout, "{}| {text}", source.name())
        }
    }

    fn status(&mut self, source: &str, text: &str) -> io::Result<()> {
        writeln!(self.stdout, "{source}! {}", clean(text))
    }

    fn error(&mut self, text: &str) -> io::Result<()> {
        self.status("error", text)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()
    }
}

/// The last guard before stdout: no control character of any kind gets through, whatever an
/// earlier stage let pass.
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}
