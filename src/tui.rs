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

use std::io;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use ratatui::buffer::Buffer;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream, KeyCode, KeyEventKind,
};
use ratatui::crossterm::execute;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::Widget;
use tokio::sync::mpsc;

use crate::app::App;
use crate::event::Event;
use crate::session::{Actors, Do, Notice, Session, SessionConfig, UserCommand};

use crate::signals::{self, Ending};

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

/// One board's share of the screen: its App, its session and actors, and their events.
pub struct BoardScreen {
    pub app: App,
    pub config: SessionConfig,
    pub actors: Actors,
    /// What the session does before the first frame (e.g. [`UserCommand::Flash`]).
    pub first: Option<UserCommand>,
    pub events: mpsc::Receiver<Event>,
}

/// Runs the TUI until the App quits. `first` is what the session does before the first frame
/// (e.g. [`UserCommand::Flash`]).
pub async fn run(
    app: App,
    config: SessionConfig,
    actors: Actors,
    first: Option<UserCommand>,
    events: mpsc::Receiver<Event>,
) -> anyhow::Result<()> {
    run_boards(vec![BoardScreen {
        app,
        config,
        actors,
        first,
        events,
    }])
    .await
}

/// The key that shows the next board of several, and the previous one.
const NEXT_BOARD: KeyCode = KeyCode::F(2);
const PREVIOUS_BOARD: KeyCode = KeyCode::F(3);

/// Runs the TUI on several boards at once (one: the screen as always): each has its own
/// session, console and panes, all running; one is shown, under a line that lists them all
/// (F2 and F3 switch).
pub async fn run_boards(boards: Vec<BoardScreen>) -> anyhow::Result<()> {
    // From here on a signal no longer kills the process outright: it ends the loop below.
    let mut ending = Ending::catch()?;
    let many = boards.len() > 1;
    let (merged_tx, mut events) = mpsc::channel::<(usize, Event)>(4096);
    let mut faces = Vec::new();
    let mut apps = Vec::new();
    for (index, board) in boards.into_iter().enumerate() {
        let BoardScreen {
            mut app,
            config,
            actors,
            first,
            events: mut board_events,
        } = board;
        let (session, start) = Session::start(config, Instant::now());
        let mut face = Face { session, actors };
        face.carry_out(start, &mut app).await;
        if let Some(command) = first {
            let dos = face.session.command(command, Instant::now());
            face.carry_out(dos, &mut app).await;
        }
        let merged = merged_tx.clone();
        tokio::spawn(async move {
            while let Some(event) = board_events.recv().await {
                if merged.send((index, event)).await.is_err() {
                    return;
                }
            }
        });
        faces.push(face);
        apps.push(app);
    }
    drop(merged_tx);
    let mut shown = 0;
    let (guard, mut terminal) = TerminalGuard::enter()?;
    let mut input = EventStream::new();
    let mut size = terminal.size()?;
    for app in &mut apps {
        app.resize(app_size(size, many));
    }
    let mut dirty = true;
    let mut last_draw = Instant::now() - IDLE_FRAME;
    let mut ended_by = None;
    loop {
        for (face, app) in faces.iter_mut().zip(&mut apps) {
            face.tick(app).await;
        }
        if dirty && last_draw.elapsed() >= FRAME || last_draw.elapsed() >= IDLE_FRAME {
            for app in &mut apps {
                app.tick(Instant::now());
            }
            terminal.draw(|frame| {
                let area = frame.area();
                if many {
                    let (bar, rest) = split_bar(area);
                    frame.render_widget(BoardBar { apps: &apps, shown }, bar);
                    frame.render_widget(&apps[shown], rest);
                } else {
                    frame.render_widget(&apps[shown], area);
                }
            })?;
            dirty = false;
            last_draw = Instant::now();
        }
        let mut wait = if dirty { FRAME } else { IDLE_FRAME }.saturating_sub(last_draw.elapsed());
        if let Some(due) = faces.iter().filter_map(|f| f.session.next_deadline()).min() {
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
                    match switch_board(&input_event, many) {
                        Some(step) => shown = (shown + step.wrapping_add(apps.len())) % apps.len(),
                        None => {
                            if let TermEvent::Resize(width, height) = input_event {
                                size = ratatui::layout::Size::new(width, height);
                                for app in &mut apps {
                                    app.resize(app_size(size, many));
                                }
                            } else {
                                let event = shift_mouse(input_event, many);
                                for command in terminal_event(&mut apps[shown], event, at) {
                                    faces[shown].command(command, &mut apps[shown]).await;
                                }
                            }
                        }
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
                let Some((index, event)) = event else { break };
                faces[index].event(&event, &mut apps[index]).await;
                // A fast console: take what else is waiting before drawing.
                for _ in 0..1024 {
                    let Ok((index, event)) = events.try_recv() else { break };
                    faces[index].event(&event, &mut apps[index]).await;
                }
                dirty = true;
            }
            caught = ending.recv() => {
                ended_by = Some(caught);
                break;
            }
            () = tokio::time::sleep(wait) => {}
        }
        if apps[shown].should_quit() {
            break;
        }
    }
    // Stop reading the terminal before handing it back: what is typed next is the shell's.
    drop(input);
    drop(guard);
    // The panes send what is queued and close; the process does not wait for them.
    for face in &mut faces {
        let dos = face.session.command(UserCommand::Finish, Instant::now());
        face.actors.carry_out(dos).await;
    }
    if let Some(caught) = ended_by {
        signals::die_of(caught);
    }
    Ok(())
}

/// The App's share of the terminal: all of it, or all but the board bar.
fn app_size(size: ratatui::layout::Size, many: bool) -> ratatui::layout::Size {
    if many {
        ratatui::layout::Size::new(size.width, size.height.saturating_sub(1))
    } else {
        size
    }
}

fn split_bar(area: Rect) -> (Rect, Rect) {
    let bar = Rect {
        height: 1.min(area.height),
        ..area
    };
    let rest = Rect {
        y: area.y + bar.height,
        height: area.height - bar.height,
        ..area
    };
    (bar, rest)
}

/// +1 (next) or -1 (previous) as `usize` steps around the list, for the board keys.
fn switch_board(event: &TermEvent, many: bool) -> Option<usize> {
    let TermEvent::Key(key) = event else {
        return None;
    };
    if !many || key.kind == KeyEventKind::Release {
        return None;
    }
    match key.code {
        code if code == NEXT_BOARD => Some(1),
        code if code == PREVIOUS_BOARD => Some(usize::MAX),
        _ => None,
    }
}

/// The App sees its own area from row 0: under the board bar, mouse rows move up one.
fn shift_mouse(event: TermEvent, many: bool) -> TermEvent {
    match event {
        TermEvent::Mouse(mut mouse) if many => {
            mouse.row = mouse.row.saturating_sub(1);
            TermEvent::Mouse(mouse)
        }
        other => other,
    }
}

/// The line over the screen with several boards: each board's number, port, address (or what
/// it waits for), the shown one reversed.
struct BoardBar<'a> {
    apps: &'a [App],
    shown: usize,
}

impl Widget for BoardBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let mut x = area.x;
        for (index, app) in self.apps.iter().enumerate() {
            let board = app.board();
            let port = board.port.as_deref().unwrap_or("?");
            let port = port.rsplit('/').next().unwrap_or(port);
            let state = match (board.address.ip, board.address.port, &board.lost) {
                (_, _, Some(_)) => "lost".to_owned(),
                (Some(ip), Some(tcp), None) => format!("{ip}:{tcp}"),
                (Some(ip), None, None) => ip.to_string(),
                (None, _, None) => "no ip yet".to_owned(),
            };
            let text = format!(" {} {port} {state} ", index + 1);
            let style = if index == self.shown {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            let width = area.right().saturating_sub(x);
            if width == 0 {
                break;
            }
            let (end, _) = buf.set_stringn(x, area.y, &text, usize::from(width), style);
            x = end;
        }
        let hint = " F2/F3 board ";
        let width = u16::try_from(hint.len()).unwrap_or(u16::MAX);
        if area.right().saturating_sub(x) > width {
            buf.set_string(area.right() - width, area.y, hint, Style::default());
        }
    }
}
