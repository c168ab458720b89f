//! The TUI face: the terminal, the one event loop, and the screen's share of the session.
//!
//! Everything that changes the screen arrives as an [`Event`] (engine) or a terminal event
//! (keys, mouse, resize). The [`App`] turns them into state and commands; what a command means
//! for the session (which pane actor gets a line, when Wi-Fi is provisioned) is the
//! [`Session`] core's, shared with line mode, and [`Actors`] carry its decisions out. The App
//! itself never does IO.
//!
//! A signal that ends the process (SIGTERM, SIGINT, SIGHUP, SIGQUIT, ...) ends the loop like a
//! quit, so the terminal is restored, and the process then dies of the signal (`tui/signals.rs`).

mod signals;

use std::io;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream,
};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use crate::app::App;
use crate::event::Event;
use crate::session::{Actors, Do, Notice, Session, SessionConfig, UserCommand};

use self::signals::Ending;

/// Redraws at most this often while events stream in (a fast console), and at least this often
/// while something time-based is shown (a gauge's ETA, a reconnect countdown).
const FRAME: Duration = Duration::from_millis(33);
const IDLE_FRAME: Duration = Duration::from_millis(250);

/// Puts the terminal in raw mode on the alternate screen with mouse reporting and bracketed
/// paste, and restores it when dropped: on return, on error, on a signal (the loop ends), and,
/// through the panic hook, on panic. Restoring shows the cursor itself: ratatui's `Terminal`
/// would only on its own drop, which a process dying of a signal never reaches.
struct TerminalGuard;

/// Everything [`TerminalGuard::enter`] changed, undone; errors are ignored, as the terminal
/// may be gone (SIGHUP).
fn restore_terminal() {
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        Show
    );
    ratatui::restore();
}

impl TerminalGuard {
    fn enter() -> io::Result<(TerminalGuard, ratatui::DefaultTerminal)> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        let terminal = ratatui::try_init()?;
        let guard = TerminalGuard;
        // Bracketed paste: a paste arrives as one event, not as thousands of keys. crossterm
        // reads 1 KiB at a time and waits for the terminal to become readable again (edge-
        // triggered) once it has an event: the rest of a long raw paste waited for new keys.
        // A bracketed paste is read to its end marker in one go.
        execute!(io::stdout(), EnableMouseCapture, EnableBracketedPaste)?;
        Ok((guard, terminal))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// The screen's share of the session: what the actors left for the face to do.
struct Face {
    session: Session,
    actors: Actors,
}

impl Face {
    async fn carry_out(&mut self, dos: Vec<Do>, app: &mut App) {
        for action in self.actors.carry_out(dos).await {
            match action {
                Do::ShowPane(id) => app.pane_opened(id),
                Do::Report(id, event) => app.handle_event(&Event::Chat(id, event)),
                Do::Notice(Notice::PublicAddress(ip)) => app.ask_address(ip),
                Do::Listening(report) => app.listening(&report),
                Do::Notice(notice) => app.hint(hint(notice)),
                _ => {}
            }
        }
    }

    async fn command(&mut self, command: UserCommand, app: &mut App) {
        let dos = self.session.command(command, Instant::now());
        self.carry_out(dos, app).await;
    }

    async fn event(&mut self, event: &Event, app: &mut App) {
        let dos = self.session.event(event, Instant::now());
        self.carry_out(dos, app).await;
        app.handle_event(event);
    }

    async fn tick(&mut self, app: &mut App) {
        let now = Instant::now();
        if self.session.next_deadline().is_some_and(|due| now >= due) {
            let dos = self.session.tick(now);
            self.carry_out(dos, app).await;
        }
    }
}

/// A notice, as the TUI's hint line says it.
fn hint(notice: Notice) -> String {
    match notice {
        Notice::ProvisionSent { ssid } => {
            format!("sent the Wi-Fi credentials for \"{ssid}\" to the board")
        }
        Notice::NoCredentials => "the board has no Wi-Fi credentials: type `wifi SSID PASSWORD` in the serial console, or add [wifi] to the config file and flash again".to_owned(),
        Notice::PanesTooSlow => "chat panes did not finish in time".to_owned(),
        Notice::ConsoleFailed(error) => format!("cannot reopen the serial console: {error}"),
        Notice::PublicAddress(ip) => format!("not connecting to the public address {ip}"),
        Notice::ListenFailed(error) => error,
    }
}

/// What one terminal event asks of the session; `at`: when it was read.
fn terminal_event(app: &mut App, event: TermEvent, at: Instant) -> Vec<UserCommand> {
    match event {
        TermEvent::Key(key) => app.handle_key_at(key, at),
        TermEvent::Mouse(mouse) => app.handle_mouse(mouse),
        TermEvent::Paste(text) => app.handle_paste(text),
        TermEvent::Resize(width, height) => {
            app.resize(ratatui::layout::Size::new(width, height));
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The next terminal event if one was read already, without waiting. Unlike `now_or_never`,
/// this polls with the loop's own waker, which `EventStream` keeps for the next input.
async fn ready(input: &mut EventStream) -> Poll<Option<io::Result<TermEvent>>> {
    std::future::poll_fn(|cx| Poll::Ready(input.poll_next_unpin(cx))).await
}

/// Runs the TUI until the App quits. `first` is what the session does before the first frame
/// (e.g. [`UserCommand::Flash`]).
pub async fn run(
    mut app: App,
    config: SessionConfig,
    actors: Actors,
    first: Option<UserCommand>,
    mut events: mpsc::Receiver<Event>,
) -> anyhow::Result<()> {
    // From here on a signal no longer kills the process outright: it ends the loop below.
    let mut ending = Ending::catch()?;
    let (session, start) = Session::start(config, Instant::now());
    let mut face = Face { session, actors };
    face.carry_out(start, &mut app).await;
    if let Some(command) = first {
        let dos = face.session.command(command, Instant::now());
        face.carry_out(dos, &mut app).await;
    }
    let (guard, mut terminal) = TerminalGuard::enter()?;
    let mut input = EventStream::new();
    app.resize(terminal.size()?);
    let mut dirty = true;
    let mut last_draw = Instant::now() - IDLE_FRAME;
    let mut ended_by = None;
    loop {
        face.tick(&mut app).await;
        if dirty && last_draw.elapsed() >= FRAME || last_draw.elapsed() >= IDLE_FRAME {
            app.tick(Instant::now());
            terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
            dirty = false;
            last_draw = Instant::now();
        }
        let mut wait = if dirty { FRAME } else { IDLE_FRAME }.saturating_sub(last_draw.elapsed());
        if let Some(due) = face.session.next_deadline() {
            wait = wait.min(due.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            input_event = input.next() => {
                let Some(Ok(mut input_event)) = input_event else { break };
                // What was read together is taken together, before drawing, and stamped with
                // one instant: that tells the keys of one read from typing (App::handle_key_at).
                let at = Instant::now();
                let mut closed = false;
                for _ in 0..1024 {
                    for command in terminal_event(&mut app, input_event, at) {
                        face.command(command, &mut app).await;
                    }
                    match ready(&mut input).await {
                        Poll::Ready(Some(Ok(next))) => input_event = next,
                        Poll::Pending => break,
                        Poll::Ready(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                dirty = true;
                if closed {
                    break;
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                face.event(&event, &mut app).await;
                // A fast console: take what else is waiting before drawing.
                for _ in 0..1024 {
                    let Ok(event) = events.try_recv() else { break };
                    face.event(&event, &mut app).await;
                }
                dirty = true;
            }
            caught = ending.recv() => {
                ended_by = Some(caught);
                break;
            }
            () = tokio::time::sleep(wait) => {}
        }
        if app.should_quit() {
            break;
        }
    }
    // Stop reading the terminal before handing it back: what is typed next is the shell's.
    drop(input);
    drop(guard);
    // The panes send what is queued and close; the process does not wait for them.
    let dos = face.session.command(UserCommand::Finish, Instant::now());
    face.actors.carry_out(dos).await;
    if let Some(caught) = ended_by {
        signals::die_of(caught);
    }
    Ok(())
}
