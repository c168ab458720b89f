//! The headless line mode (docs/contract.md §2): the engine without a screen, for scripts, CI and
//! screen readers. One event per stdout line, `SOURCE| data` or `SOURCE! status`; commands on
//! stdin: `@N text`, `@all text`, `@serial text`, `@quit`.
//!
//! This face only turns stdin lines into [`UserCommand`]s and events into lines; what the
//! session decides (where the panes connect, what happens to lines typed early, when it is
//! done) is the [`Session`] core's, shared with the TUI.

mod boards;

use std::io::{self, Write};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::chat::{ChatEvent, PaneId};
use crate::event::Event;
use crate::listen::ListenEvent;
use crate::serial::{ConsoleOutput, SerialCommand, SerialEvent, StyledLine};
use crate::session::{Actors, Do, Notice, Session, SessionConfig, UserCommand};
use crate::trace::TraceLine;

/// An unfinished line (a prompt, a server that sends no newline) is printed once nothing has
/// been added to it for this long.
const PARTIAL_IDLE: Duration = Duration::from_millis(150);
/// Events printed before stdout is flushed, at most: a fast console costs one write per batch,
/// not one per line.
const EVENT_BATCH: usize = 256;

pub use self::boards::{HeadlessBoard, run_boards};

/// What the line mode drives: a session, its actors, and the channel they report to.
pub struct Headless {
    pub session: SessionConfig,
    pub actors: Actors,
    pub events: mpsc::Receiver<Event>,
    /// Prefix console lines with the time they were received.
    pub timestamps: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    #[error("cannot write to stdout")]
    Stdout(#[from] io::Error),
    /// The board never showed its address.
    #[error("{0}")]
    NoAddress(String),
}

/// What the face does after carrying out the session's decisions.
enum Next {
    Go,
    Stop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Serial,
    Chat(PaneId),
}

/// An unfinished line: its latest text, when it last changed, and how much of it was printed.
struct Partial {
    source: Source,
    text: String,
    changed: Instant,
    printed: usize,
}

impl Headless {
    /// Runs until end of input or `@quit` (once everything queued is delivered), or Ctrl-C.
    pub async fn run(mut self) -> Result<(), HeadlessError> {
        let mut out = Printer::new(
            io::BufWriter::with_capacity(64 * 1024, io::stdout()),
            self.timestamps,
            None,
        );
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut input = Vec::new();
        let mut interrupt = crate::signals::Interrupt::catch()?;
        let mut tick = tokio::time::interval(PARTIAL_IDLE / 2);
        let (mut session, start) = Session::start(self.session.clone(), Instant::now());
        let mut input_open = true;
        let mut next = self.carry_out(start, &mut out).await?;
        while let Next::Go = next {
            tokio::select! {
                event = self.events.recv() => {
                    let Some(event) = event else { break };
                    // Whatever else is queued goes out with it, in one write to stdout.
                    let mut event = Some(event);
                    let mut batch = 0;
                    while let Some(current) = event.take() {
                        let dos = session.event(&current, Instant::now());
                        next = self.carry_out(dos, &mut out).await?;
                        out.event(current)?;
                        batch += 1;
                        if batch < EVENT_BATCH && matches!(next, Next::Go) {
                            event = self.events.try_recv().ok();
                        }
                    }
                }
                read = stdin.read_until(b'\n', &mut input), if input_open => {
                    let command = match read {
                        Ok(0) | Err(_) => Some(UserCommand::Finish),
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&input).trim_end_matches(['\r', '\n']).to_owned();
                            input.clear();
                            self.parse(&line, &session, &mut out)?
                        }
                    };
                    if let Some(command) = command {
                        input_open &= !matches!(command, UserCommand::Finish);
                        let dos = session.command(command, Instant::now());
                        next = self.carry_out(dos, &mut out).await?;
                    }
                },
                _ = interrupt.recv() => break,
                _ = tick.tick() => {
                    out.stale_partials()?;
                    let dos = session.tick(Instant::now());
                    next = self.carry_out(dos, &mut out).await?;
                }
            }
            out.flush()?;
        }
        // The console's last words (a line it could not send, a last short hex row) come
        // once it has stopped.
        self.actors.close_console().await;
        while let Ok(event) = self.events.try_recv() {
            out.event(event)?;
        }
        out.all_partials()?;
        Ok(out.flush()?)
    }

    /// Carries out the session's decisions; prints what is for the user.
    async fn carry_out(
        &mut self,
        dos: Vec<Do>,
        out: &mut Printer<impl Write>,
    ) -> Result<Next, HeadlessError> {
        carry_out(&mut self.actors, dos, out).await
    }

    /// One stdin line as a command for the session; errors are printed here.
    fn parse(
        &self,
        line: &str,
        session: &Session,
        out: &mut Printer<impl Write>,
    ) -> io::Result<Option<UserCommand>> {
        let (target, text) = match line.split_once(' ') {
            Some((target, text)) => (target, text.to_owned()),
            None => (line, String::new()),
        };
        let panes: Vec<PaneId> = session.pane_ids().collect();
        let command = match target {
            "@quit" => UserCommand::Finish,
            "@serial" if self.actors.has_console() => {
                UserCommand::Serial(SerialCommand::Line(text))
            }
            "@all" if !panes.is_empty() => UserCommand::SendAll(text),
            _ if line.trim().is_empty() => return Ok(None),
            _ => match pane_number(target).filter(|id| panes.contains(id)) {
                Some(id) => UserCommand::Send(id, text),
                None => {
                    out.error(&format!(
                        "unknown command {:?}: use {}",
                        crate::serial::decode::sanitize(target.as_bytes()),
                        self.valid_commands(&panes)
                    ))?;
                    return Ok(None);
                }
            },
        };
        Ok(Some(command))
    }

    /// The commands this session takes, for an error message.
    fn valid_commands(&self, panes: &[PaneId]) -> String {
        let mut valid = Vec::new();
        match panes {
            [] => {}
            [one] => valid.push(format!("@{one} text")),
            [first, .., last] => valid.push(format!("@{first}..@{last} text")),
        }
        if !panes.is_empty() {
            valid.push("@all text".to_owned());
        }
        if self.actors.has_console() {
            valid.push("@serial text".to_owned());
        }
        valid.push("@quit".to_owned());
        valid.join(", ")
    }
}

/// Carries out a session's decisions with its actors; prints what is for the user.
async fn carry_out(
    actors: &mut Actors,
    dos: Vec<Do>,
    out: &mut Printer<impl Write>,
) -> Result<Next, HeadlessError> {
    let mut next = Next::Go;
    for action in actors.carry_out(dos).await {
        match action {
            Do::Report(id, event) => out.chat(id, event)?,
            Do::Notice(Notice::ProvisionSent { ssid }) => out.status(
                "serial",
                &format!("sending the Wi-Fi credentials for \"{ssid}\""),
            )?,
            // Said, with its fix, if no address comes (`Do::Fail`).
            Do::Notice(Notice::NoCredentials) => {}
            Do::Notice(Notice::PanesTooSlow) => {
                out.status("serial", "stopping: chat panes did not finish in time")?;
            }
            Do::Notice(Notice::ConsoleFailed(error)) => out.error(&error)?,
            Do::Notice(Notice::PublicAddress(ip)) => out.status(
                "board",
                &format!(
                    "not connecting to {ip}: a public address, and any device can print \
                         one (add --any-address if it is the board's)"
                ),
            )?,
            Do::Finished => next = Next::Stop,
            Do::Fail(message) => {
                out.error(&message)?;
                out.flush()?;
                return Err(HeadlessError::NoAddress(message));
            }
            _ => {}
        }
    }
    Ok(next)
}

/// `@N` with N a pane number as the contract writes it: decimal digits, no sign, no leading
/// zero.
fn pane_number(target: &str) -> Option<PaneId> {
    let digits = target.strip_prefix('@')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

struct Printer<W: Write> {
    stdout: W,
    partials: Vec<Partial>,
    timestamps: bool,
    /// With several boards, this printer's board number (from 1): its sources are numbered
    /// (`serial2|`, `board2!`, `chat2.1|`).
    board: Option<usize>,
}

impl<W: Write> Printer<W> {
    fn new(stdout: W, timestamps: bool, board: Option<usize>) -> Printer<W> {
        Printer {
            stdout,
            partials: Vec::new(),
            timestamps,
            board,
        }
    }

    /// `serial`, `chat3`; with several boards `serial2`, `chat2.3`.
    fn source_name(&self, source: Source) -> String {
        match (source, self.board) {
            (Source::Serial, None) => "serial".to_owned(),
            (Source::Serial, Some(board)) => format!("serial{board}"),
            (Source::Chat(id), None) => format!("chat{id}"),
            (Source::Chat(id), Some(board)) => format!("chat{board}.{id}"),
        }
    }

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
            // The pane it becomes says `accepted from`.
            Event::Listen(ListenEvent::Accepted { .. }) => Ok(()),
            Event::Listen(ListenEvent::Refused { peer, max }) => self.status(
                "listen",
                &format!("refused {peer}: {max} connections are open, the most (--max-clients)"),
            ),
            Event::Listen(ListenEvent::Problem(message)) => self.status("listen", &message),
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
            SerialEvent::Trace(lines) => {
                for line in lines {
                    match line {
                        // Rendered without control characters already, once per address.
                        TraceLine::Frame(text) => {
                            let source = self.numbered("trace");
                            self.stdout.write_all(source.as_bytes())?;
                            self.stdout.write_all(b"! ")?;
                            self.stdout.write_all(text.as_bytes())?;
                            self.stdout.write_all(b"\n")?;
                        }
                        TraceLine::Note(text) => self.status("trace", &text)?,
                    }
                }
                Ok(())
            }
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
        let source = self.source_name(Source::Chat(id));
        match event {
            // Every attempt would print one; connected/disconnected say what matters.
            ChatEvent::Connecting { .. } => Ok(()),
            ChatEvent::Connected { addr } => self.line(&source, &format!("connected {addr}")),
            ChatEvent::Accepted { peer } => self.line(&source, &format!("accepted from {peer}")),
            ChatEvent::Output(output) => self.output(Source::Chat(id), output),
            ChatEvent::Disconnected { reason } => {
                self.line(&source, &format!("disconnected: {reason}"))
            }
            ChatEvent::Reconnecting { after } => self.status(
                &source,
                &format!("reconnecting in {:.1} s", after.as_secs_f64()),
            ),
            ChatEvent::Note(text) => self.line(&source, &text),
            ChatEvent::Dropped { line, reason } => {
                let line = clean(&line);
                self.line(&source, &format!("not sent ({reason}): {line}"))
            }
            ChatEvent::Closed => self.line(&source, "closed"),
        }
    }

    fn output(&mut self, source: Source, output: ConsoleOutput) -> io::Result<()> {
        match output {
            ConsoleOutput::Line(line) => {
                let text = line.text();
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
        let name = self.source_name(source);
        if self.timestamps && source == Source::Serial {
            let now = crate::serial::humantime_now();
            writeln!(self.stdout, "{name}| {now} {text}")
        } else {
            writeln!(self.stdout, "{name}| {text}")
        }
    }

    /// `serial`, `board`, `error`...; with several boards numbered: `board2`.
    fn numbered(&self, kind: &str) -> String {
        match self.board {
            Some(board) => format!("{kind}{board}"),
            None => kind.to_owned(),
        }
    }

    /// A status line of a source of this board (`serial`, `board`, `flash`, `trace`...).
    fn status(&mut self, kind: &str, text: &str) -> io::Result<()> {
        let source = self.numbered(kind);
        self.line(&source, text)
    }

    /// A status line of a source named in full.
    fn line(&mut self, source: &str, text: &str) -> io::Result<()> {
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
