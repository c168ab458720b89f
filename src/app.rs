//! The TUI's state and its one place of change, [`App::update`]. No IO here: what must happen
//! outside (bytes to the board, a line to a server, a flash) comes back as [`Command`]s for the
//! runtime loop to carry out, so every behaviour is testable with plain `#[test]`s.

mod chat_view;
mod flash_progress;
pub mod input;
pub mod keys;
pub mod layout;
pub mod scrollback;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect, Size};

pub use self::chat_view::{ChatView, Connection};
pub use self::flash_progress::FlashProgress;
use self::input::InputLine;
use self::keys::{Action, KeyTable, Scope, StrayKeys, key_to_bytes, paste_to_bytes};
use self::scrollback::Scrollback;
use crate::chat::PaneId;
use crate::event::Event;
use crate::flash::FlashEvent;
use crate::listen::ListenEvent;
use crate::serial::decode::{Color, Style};
use crate::serial::{BoardAddress, ConsoleOutput, SerialCommand, SerialEvent, StyledLine};
use crate::session::{LISTEN_PANE, ListenReport};
use crate::trace::TraceLine;

/// Beyond this the panes are too small to read; the board serves 8 clients anyway.
pub const MAX_PANES: usize = 16;
/// Lines a mouse wheel notch scrolls.
const WHEEL_LINES: usize = 3;

#[derive(Clone, Debug)]
pub struct AppConfig {
    /// Chat panes shown at start (ids 1..=panes), waiting for the board's address.
    pub panes: usize,
    /// False under NO_COLOR: modifiers (bold, reverse) only.
    pub color: bool,
    pub timestamps: bool,
    pub keys: KeyTable,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            panes: 2,
            color: true,
            timestamps: false,
            keys: KeyTable::default(),
        }
    }
}

/// What the app asks of the session (the app never does IO itself): the session core's
/// [`UserCommand`], the same commands line mode turns stdin lines into.
pub use crate::session::UserCommand as Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Serial,
    /// Index into the chat panes (not the id).
    Chat(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmQuit,
    /// The console showed a public address: connect the chat panes to it?
    ConfirmAddress(std::net::Ipv4Addr),
}

/// What the app knows of the board, for the status line and the console's title: its port,
/// chip and address, and the LED as its console reported them.
#[derive(Clone, Debug, Default)]
pub struct BoardStatus {
    pub port: Option<String>,
    pub baud: Option<u32>,
    pub chip: Option<String>,
    pub address: BoardAddress,
    pub led: Option<bool>,
    /// Why the serial port was lost, until it is opened again.
    pub lost: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub focus: Focus,
    pub query: InputLine,
    /// The query is still being typed.
    pub editing: bool,
    /// The current match's sequence number in the scrollback.
    pub current: Option<u64>,
    pub matches: usize,
}

/// The TUI's whole state: the board as the console told it, the serial scrollback, the chat
/// panes, focus, overlays, search and flash progress, the key table and the terminal's size.
/// The runtime feeds it terminal input ([`App::handle_key_at`], [`App::handle_paste`],
/// [`App::handle_mouse`], [`App::resize`]), engine events ([`App::handle_event`]) and the clock ([`App::tick`]), and
/// carries out the [`Command`]s it returns; `ui` draws it and changes nothing.
pub struct App {
    pub(crate) color: bool,
    pub(crate) timestamps: bool,
    pub(crate) hex: bool,
    pub(crate) keys: KeyTable,
    pub(crate) board: BoardStatus,
    pub(crate) serial: Scrollback,
    pub(crate) panes: Vec<ChatView>,
    pub(crate) focus: Focus,
    pub(crate) overlay: Option<Overlay>,
    /// The prefix was pressed in the serial console: the next key is for the app.
    pub(crate) prefix: bool,
    /// Drops what the terminal reader made keys of by mistake ([`App::handle_key_at`]).
    stray: StrayKeys,
    pub(crate) search: Option<Search>,
    pub(crate) flash: Option<FlashProgress>,
    pub(crate) hint: Option<String>,
    /// The hint is about finding the board's address: it goes once the address is known.
    hint_until_address: bool,
    pub(crate) now: Option<Instant>,
    epoch: Option<Instant>,
    quit: bool,
    /// The terminal's size as the runtime last told it ([`App::resize`]), so that a click
    /// finds the pane under the pointer and PgUp scrolls by the pane's real height.
    area: Rect,
}

impl App {
    pub fn new(config: AppConfig) -> App {
        let panes = (1..=config.panes.min(MAX_PANES))
            .map(ChatView::new)
            .collect();
        App {
            color: config.color,
            timestamps: config.timestamps,
            hex: false,
            keys: config.keys,
            board: BoardStatus::default(),
            serial: Scrollback::default(),
            panes,
            focus: Focus::Serial,
            overlay: None,
            prefix: false,
            stray: StrayKeys::default(),
            search: None,
            flash: None,
            hint: None,
            hint_until_address: false,
            now: None,
            epoch: None,
            quit: false,
            // Until the runtime tells the size: a common terminal's.
            area: Rect::new(0, 0, 120, 40),
        }
    }

    /// The terminal's size: at start and on every resize.
    pub fn resize(&mut self, size: Size) {
        self.area = Rect::new(0, 0, size.width, size.height);
    }

    /// The serial port path and chip name, for the status line.
    pub fn set_board(&mut self, port: String, chip: Option<String>) {
        self.board.port = Some(port);
        self.board.chip = chip;
    }

    /// The clock: event times (timestamps, flash rate, reconnect countdowns) are the last tick's,
    /// so rendering and tests are deterministic.
    pub fn tick(&mut self, now: Instant) {
        self.epoch.get_or_insert(now);
        self.now = Some(now);
    }

    fn elapsed(&self) -> Option<Duration> {
        Some(self.now?.saturating_duration_since(self.epoch?))
    }

    /// The user quit (and confirmed, while a flash ran): the runtime ends its loop.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// A one-line hint shown until the next key.
    /// Asks whether the chat panes may connect to a public address the console showed.
    pub fn ask_address(&mut self, ip: std::net::Ipv4Addr) {
        self.overlay = Some(Overlay::ConfirmAddress(ip));
    }

    pub fn hint(&mut self, text: String) {
        self.hint = Some(text);
        self.hint_until_address = false;
    }

    /// A hint shown until the next key or until the board's address is known.
    pub fn hint_until_address(&mut self, text: String) {
        self.hint = Some(text);
        self.hint_until_address = true;
    }

    pub fn focus(&self) -> Focus {
        self.focus
    }

    pub fn panes(&self) -> &[ChatView] {
        &self.panes
    }

    pub fn board(&self) -> &BoardStatus {
        &self.board
    }

    pub fn flash_progress(&self) -> Option<&FlashProgress> {
        self.flash.as_ref()
    }

    pub fn overlay(&self) -> Option<Overlay> {
        self.overlay
    }

    /// The listener is up: the listen pane shows where boards connect, and gets the focus.
    pub fn listening(&mut self, report: &ListenReport) {
        let at = self.elapsed();
        let port = report.addr.port();
        let first = report
            .reachable
            .first()
            .map(|address| std::net::SocketAddr::new(address.ip, port));
        let shown = report.told.or(first).unwrap_or(report.addr);
        let index = match self.panes.iter().position(|pane| pane.id == LISTEN_PANE) {
            Some(index) => index,
            None => {
                self.panes.push(ChatView::new(LISTEN_PANE));
                self.listen_note(format!("listening on {}", report.addr), 2, at);
                for address in &report.reachable {
                    let text = format!(
                        "a board can connect to {} ({})",
                        std::net::SocketAddr::new(address.ip, port),
                        address.interface
                    );
                    self.listen_note(text, 2, at);
                }
                self.listen_note(
                    "each connection becomes a pane; what is typed here goes to all of them"
                        .to_owned(),
                    2,
                    at,
                );
                self.panes.len() - 1
            }
        };
        self.panes[index].connection = Connection::Listening(shown.to_string());
        if let Some(told) = report.told {
            let text = format!("told the board: connect {} {}", told.ip(), told.port());
            self.listen_note(text, 2, at);
        }
        self.focus = Focus::Chat(index);
    }

    /// A line in the listen pane, or in the console when there is none (`espchat listen`
    /// has no screen).
    fn listen_note(&mut self, text: String, color: u8, at: Option<Duration>) {
        let text = styled(text, note_style(color));
        match self.panes.iter_mut().find(|pane| pane.id == LISTEN_PANE) {
            Some(pane) => pane.scrollback.push_note(text, at),
            None => self.serial.push_note(text, at),
        }
    }

    pub fn pane_opened(&mut self, id: PaneId) {
        if self.panes.iter().any(|p| p.id == id) {
            return;
        }
        self.panes.push(ChatView::new(id));
        self.focus = Focus::Chat(self.panes.len() - 1);
    }

    pub fn handle_event(&mut self, event: &Event) {
        let at = self.elapsed();
        match event {
            Event::Serial(event) => self.serial_event(event, at),
            Event::Chat(id, event) => {
                let now = self.now;
                if let Some(pane) = self.panes.iter_mut().find(|p| p.id == *id) {
                    pane.event(event, at, now);
                }
            }
            Event::Flash(event) => self.flash_event(event, at),
            Event::FlashDone(result) => {
                self.flash = None;
                let (text, style) = match result {
                    Ok((bytes, seconds)) => (
                        format!("flash: done, {bytes} bytes in {seconds:.2} s"),
                        note_style(2),
                    ),
                    Err(message) => (format!("flash failed: {message}"), note_style(1)),
                };
                self.serial.push_note(styled(text, style), at);
            }
            Event::Listen(ListenEvent::Accepted { peer, .. }) => {
                self.listen_note(format!("connection from {peer}: a pane of its own"), 2, at);
            }
            Event::Listen(ListenEvent::Refused { peer, max }) => {
                let text = format!("refused {peer}: {max} connections are open, the most");
                self.listen_note(text, 1, at);
            }
            Event::Listen(ListenEvent::Problem(message)) => {
                self.listen_note(message.clone(), 1, at)
            }
        }
    }

    fn serial_event(&mut self, event: &SerialEvent, at: Option<Duration>) {
        match event {
            SerialEvent::Opened { path, baud } => {
                self.board.port = Some(path.display().to_string());
                self.board.baud = Some(*baud);
                self.board.lost = None;
            }
            SerialEvent::Output(ConsoleOutput::Line(line)) => self.serial.push(line.clone(), at),
            SerialEvent::Output(ConsoleOutput::Partial(line)) => {
                self.serial.set_partial(line.clone())
            }
            SerialEvent::Address(change) => {
                self.board.address.merge(*change);
                if change.ip.is_some() && std::mem::take(&mut self.hint_until_address) {
                    self.hint = None;
                }
            }
            SerialEvent::Led(on) => self.board.led = Some(*on),
            // Under the line that held the address, dimmed: espchat's, not the device's.
            SerialEvent::Trace(lines) => {
                for line in lines {
                    let style = match line {
                        TraceLine::Frame(_) => Style {
                            dim: true,
                            ..Style::default()
                        },
                        TraceLine::Note(_) => note_style(3),
                    };
                    self.serial
                        .push_note(styled(format!("  ↳ {line}"), style), at);
                }
            }
            SerialEvent::Lost { path, reason } => {
                self.board.lost = Some(reason.clone());
                let text = format!("serial port {} lost: {reason}", path.display());
                self.serial.push_note(styled(text, note_style(1)), at);
            }
            SerialEvent::Problem(message) => {
                self.serial
                    .push_note(styled(message.clone(), note_style(1)), at);
            }
        }
    }

    fn flash_event(&mut self, event: &FlashEvent, at: Option<Duration>) {
        let now = self.now;
        let flash = self.flash.get_or_insert_with(FlashProgress::default);
        match event {
            FlashEvent::Connecting { .. } => flash.phase = "connecting",
            FlashEvent::Connected { chip, .. } => {
                flash.phase = "connected";
                self.board.chip = Some(crate::flash::chip_name(*chip));
            }
            FlashEvent::Segment { address, total } => {
                *flash = FlashProgress {
                    phase: "writing",
                    address: Some(*address),
                    done: 0,
                    total: *total,
                    segment_start: now,
                    progress_at: now,
                };
            }
            FlashEvent::Progress {
                address,
                done,
                total,
            } => {
                flash.phase = "writing";
                flash.address = Some(*address);
                flash.done = *done;
                flash.total = *total;
                flash.progress_at = now;
                if flash.segment_start.is_none() {
                    flash.segment_start = now;
                }
            }
            FlashEvent::Verifying { address } => {
                flash.phase = "verifying";
                flash.address = Some(*address);
            }
            FlashEvent::SegmentDone { .. } => flash.done = flash.total,
            // The note below says it; the erase follows as a segment.
            FlashEvent::OldOtadata { .. } | FlashEvent::NoPartitionTable => {}
            FlashEvent::Done { .. } => flash.phase = "done",
        }
        // The console keeps the story of the flash; the gauge shows only the present.
        if !matches!(event, FlashEvent::Progress { .. })
            && let Some(text) = event.status_line()
        {
            self.serial
                .push_note(styled(format!("flash: {text}"), note_style(6)), at);
        }
    }

    /// Which part of the key table the focused pane listens to.
    fn scope(&self) -> Scope {
        match self.focus {
            Focus::Serial if self.prefix => Scope::Prefix,
            Focus::Serial => Scope::Serial,
            Focus::Chat(_) => Scope::Chat,
        }
    }

    fn focused_input_empty(&self) -> bool {
        match self.focus {
            Focus::Chat(i) => self.panes.get(i).is_none_or(|p| p.input.is_empty()),
            Focus::Serial => true,
        }
    }

    /// The action a key means in the current mode, if any.
    pub fn key_action(&self, key: KeyEvent) -> Option<Action> {
        if let Some(overlay) = self.overlay {
            return match (overlay, key.code) {
                (Overlay::ConfirmQuit, KeyCode::Char('y' | 'Y')) => Some(Action::ConfirmQuit(true)),
                (Overlay::ConfirmQuit, _) => Some(Action::ConfirmQuit(false)),
                (Overlay::ConfirmAddress(_), KeyCode::Char('y' | 'Y')) => {
                    Some(Action::ConfirmAddress(true))
                }
                (Overlay::ConfirmAddress(_), _) => Some(Action::ConfirmAddress(false)),
                // Like `less`: any key closes the help.
                (Overlay::Help, _) => Some(Action::CloseOverlay),
            };
        }
        let plain = !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        if let Some(search) = &self.search {
            if search.editing {
                return match self.keys.lookup(Scope::SearchQuery, &key, true) {
                    Some(action) => Some(action.clone()),
                    None => line_edit(key.code, plain),
                };
            }
            if let Some(action) = self.keys.lookup(Scope::SearchMatches, &key, true) {
                return Some(action.clone());
            }
        }
        let input_empty = self.focused_input_empty();
        let scope = self.scope();
        if scope == Scope::Prefix {
            return Some(match self.keys.lookup(Scope::Prefix, &key, true) {
                Some(action) => action.clone(),
                // tio's rule: anything else after the prefix (the prefix itself included)
                // goes to the board, so every byte stays reachable.
                None => Action::SerialBytes(key_to_bytes(key)?),
            });
        }
        if let Some(action) = self
            .keys
            .lookup(scope, &key, input_empty)
            .or_else(|| self.keys.lookup(Scope::Global, &key, input_empty))
        {
            return Some(action.clone());
        }
        match self.focus {
            Focus::Serial => key_to_bytes(key).map(Action::SerialBytes),
            Focus::Chat(_) => match key.code {
                KeyCode::Up => Some(Action::HistoryPrev),
                KeyCode::Down => Some(Action::HistoryNext),
                KeyCode::Enter => Some(Action::Submit),
                code => line_edit(code, plain),
            },
        }
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.hint = None;
        let was_prefix = self.prefix;
        let commands = match self.key_action(key) {
            Some(action) => self.update(action),
            None => Vec::new(),
        };
        // The prefix reaches one key only, whatever that key did.
        if was_prefix {
            self.prefix = false;
        }
        commands
    }

    /// A key from the terminal, read at `at` (keys of one read: one instant):
    /// [`App::handle_key`], unless it is the rest of a key sequence the terminal reader lost
    /// ([`StrayKeys`]), which never turns into text.
    pub fn handle_key_at(&mut self, key: KeyEvent, at: Instant) -> Vec<Command> {
        if key.kind != KeyEventKind::Release && self.stray.is_stray(&key, at) {
            return Vec::new();
        }
        self.handle_key(key)
    }

    /// Text pasted into the terminal (bracketed paste), in one piece: into the chat pane's
    /// input line or the search query, or to the board from the serial console. Nothing is
    /// sent until Enter, except in the serial console, where it goes as typed keys would.
    pub fn handle_paste(&mut self, text: String) -> Vec<Command> {
        // An overlay waits for a key: a paste answers no question.
        if self.overlay.is_some() {
            return Vec::new();
        }
        self.hint = None;
        self.prefix = false;
        self.update(Action::Paste(text))
    }

    /// A click focuses the pane under the pointer; the wheel scrolls it.
    pub fn handle_mouse(&mut self, mouse: MouseEvent) -> Vec<Command> {
        let layout = layout::layout(self.area, self);
        let at = Position::new(mouse.column, mouse.row);
        let target = if layout.serial.contains(at) {
            Some(Focus::Serial)
        } else {
            layout
                .panes
                .iter()
                .position(|r| r.contains(at))
                .map(Focus::Chat)
        };
        let Some(target) = target else {
            return Vec::new();
        };
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) if self.overlay.is_none() => {
                self.set_focus(target);
            }
            MouseEventKind::ScrollUp => self.scrollback_mut(target).scroll_up(WHEEL_LINES),
            MouseEventKind::ScrollDown => self.scrollback_mut(target).scroll_down(WHEEL_LINES),
            _ => {}
        }
        Vec::new()
    }

    fn scrollback_mut(&mut self, focus: Focus) -> &mut Scrollback {
        match focus {
            Focus::Chat(i) if i < self.panes.len() => &mut self.panes[i].scrollback,
            _ => &mut self.serial,
        }
    }

    pub(crate) fn scrollback(&self, focus: Focus) -> &Scrollback {
        match focus {
            Focus::Chat(i) if i < self.panes.len() => &self.panes[i].scrollback,
            _ => &self.serial,
        }
    }

    fn set_focus(&mut self, focus: Focus) {
        if self.focus != focus {
            self.search = None;
            self.prefix = false;
        }
        self.focus = focus;
    }

    /// Lines a page scroll moves in the focused pane: what fills its rows from the line at the
    /// bottom of the view, back (`older`) or forward, less one line of overlap so the reader
    /// keeps their place. Long lines wrap over several rows: counting lines by the pane's
    /// height would skip some.
    fn page(&self, older: bool) -> usize {
        let layout = layout::layout(self.area, self);
        let (rect, chrome) = match self.focus {
            // Borders; a chat pane has its input line too.
            Focus::Serial => (layout.serial, 2),
            Focus::Chat(i) => (layout.panes.get(i).copied().unwrap_or(layout.serial), 3),
        };
        let width = usize::from(rect.width.saturating_sub(2)).max(1);
        let height = usize::from(rect.height.saturating_sub(chrome)).max(1);
        let lines =
            self.scrollback(self.focus)
                .lines_in_rows(width, height, self.timestamps, older);
        lines.saturating_sub(1).max(1)
    }

    pub fn update(&mut self, action: Action) -> Vec<Command> {
        let mut commands = Vec::new();
        match action {
            Action::FocusNext => {
                let next = match self.focus {
                    Focus::Serial if self.panes.is_empty() => Focus::Serial,
                    Focus::Serial => Focus::Chat(0),
                    Focus::Chat(i) if i + 1 < self.panes.len() => Focus::Chat(i + 1),
                    Focus::Chat(_) => Focus::Serial,
                };
                self.set_focus(next);
            }
            Action::FocusPrev => {
                let prev = match self.focus {
                    Focus::Serial if self.panes.is_empty() => Focus::Serial,
                    Focus::Serial => Focus::Chat(self.panes.len() - 1),
                    Focus::Chat(0) => Focus::Serial,
                    Focus::Chat(i) => Focus::Chat(i - 1),
                };
                self.set_focus(prev);
            }
            Action::FocusPane(0) => self.set_focus(Focus::Serial),
            Action::FocusPane(n) => {
                if n <= self.panes.len() {
                    self.set_focus(Focus::Chat(n - 1));
                }
            }
            Action::NewPane => {
                if self.panes.len() < MAX_PANES {
                    commands.push(Command::OpenPane);
                } else {
                    self.hint = Some(format!("at most {MAX_PANES} chat panes"));
                }
            }
            Action::Listen => commands.push(Command::Listen),
            Action::ClosePane => {
                if let Focus::Chat(i) = self.focus
                    && i < self.panes.len()
                {
                    let pane = self.panes.remove(i);
                    commands.push(if pane.id == LISTEN_PANE {
                        Command::StopListening
                    } else {
                        Command::ClosePane(pane.id)
                    });
                    self.search = None;
                    self.focus = match i.checked_sub(1) {
                        Some(prev) => Focus::Chat(prev),
                        None if !self.panes.is_empty() => Focus::Chat(0),
                        None => Focus::Serial,
                    };
                }
            }
            Action::Flash => {
                if self.flash.is_some() {
                    self.hint = Some("a flash is already running".into());
                } else {
                    self.flash = Some(FlashProgress {
                        phase: "starting",
                        ..FlashProgress::default()
                    });
                    commands.push(Command::Flash);
                }
            }
            Action::ResetBoard => commands.push(Command::ResetBoard),
            Action::ToggleTimestamps => self.timestamps = !self.timestamps,
            Action::ToggleHex => {
                self.hex = !self.hex;
                commands.push(Command::Serial(SerialCommand::Hex(self.hex)));
            }
            Action::ScrollUp => {
                let page = self.page(true);
                self.scrollback_mut(self.focus).scroll_up(page);
            }
            Action::ScrollDown => {
                let page = self.page(false);
                self.scrollback_mut(self.focus).scroll_down(page);
            }
            Action::Search => {
                self.search = Some(Search {
                    focus: self.focus,
                    query: InputLine::default(),
                    editing: true,
                    current: None,
                    matches: 0,
                });
            }
            Action::SearchNext => self.search_step(true),
            Action::SearchPrev => self.search_step(false),
            Action::Clear => {
                self.scrollback_mut(self.focus).clear();
                self.search = None;
            }
            Action::Help => self.overlay = Some(Overlay::Help),
            Action::Quit => {
                if self.flash.is_some() {
                    self.overlay = Some(Overlay::ConfirmQuit);
                } else {
                    self.quit = true;
                }
            }
            Action::Prefix => self.prefix = true,
            Action::ConfirmQuit(yes) => {
                self.overlay = None;
                if yes {
                    self.quit = true;
                }
            }
            Action::ConfirmAddress(yes) => {
                if let Some(Overlay::ConfirmAddress(ip)) = self.overlay.take() {
                    if yes {
                        commands.push(Command::AllowAddress(ip));
                    } else {
                        self.hint(format!(
                            "not connecting to {ip}; the chat panes wait for a local address"
                        ));
                    }
                }
            }
            Action::CloseOverlay => self.overlay = None,
            Action::SerialBytes(bytes) => {
                self.serial.follow();
                commands.push(Command::Serial(SerialCommand::Bytes(bytes)));
            }
            Action::Paste(text) => {
                let query = self.search.as_ref().is_some_and(|s| s.editing);
                if let Some(input) = self.active_input() {
                    if !input.paste(&text, !query) {
                        self.hint = Some(format!(
                            "paste cut: a line holds at most {} bytes",
                            input::MAX_BYTES
                        ));
                    }
                    self.count_matches();
                } else if self.focus == Focus::Serial {
                    let (bytes, whole) = paste_to_bytes(&text, input::MAX_BYTES);
                    if !whole {
                        self.hint = Some(format!(
                            "paste cut: at most {} bytes go to the board at once",
                            input::MAX_BYTES
                        ));
                    }
                    if !bytes.is_empty() {
                        self.serial.follow();
                        commands.push(Command::Serial(SerialCommand::Bytes(bytes)));
                    }
                }
            }
            Action::Submit => {
                if let Some(search) = &mut self.search
                    && search.editing
                {
                    search.editing = false;
                    let focus = search.focus;
                    let from = self.scrollback(focus).len();
                    self.search_from(from, true);
                } else if let Focus::Chat(i) = self.focus
                    && let Some(pane) = self.panes.get_mut(i)
                {
                    // A pasted line break stays in the input line: each line goes as a line.
                    let text = pane.input.submit();
                    pane.scrollback.follow();
                    for line in text.split('\n') {
                        // The listen pane speaks to every connection it accepted.
                        commands.push(if pane.id == LISTEN_PANE {
                            Command::SendAccepted(line.to_owned())
                        } else {
                            Command::Send(pane.id, line.to_owned())
                        });
                    }
                }
            }
            Action::Cancel => {
                if let Some(search) = self.search.take()
                    && search.editing
                {
                    self.scrollback_mut(search.focus).follow();
                }
            }
            edit => {
                if let Some(input) = self.active_input() {
                    match edit {
                        Action::Insert(c) => input.insert(c),
                        Action::DeleteBack => input.delete_back(),
                        Action::DeleteForward => input.delete_forward(),
                        Action::CursorLeft => input.left(),
                        Action::CursorRight => input.right(),
                        Action::CursorHome => input.home(),
                        Action::CursorEnd => input.end(),
                        Action::HistoryPrev => input.history_prev(),
                        Action::HistoryNext => input.history_next(),
                        _ => {}
                    }
                }
                self.count_matches();
            }
        }
        commands
    }

    /// Counting as the query is typed tells early whether it finds anything.
    fn count_matches(&mut self) {
        if let Some(search) = &self.search
            && search.editing
        {
            let matches = self.scrollback(search.focus).count(search.query.text());
            if let Some(search) = &mut self.search {
                search.matches = matches;
            }
        }
    }

    /// The line that editing keys change: the search query while it is typed, else the focused
    /// chat pane's input.
    fn active_input(&mut self) -> Option<&mut InputLine> {
        if let Some(search) = &mut self.search
            && search.editing
        {
            return Some(&mut search.query);
        }
        match self.focus {
            Focus::Chat(i) => self.panes.get_mut(i).map(|p| &mut p.input),
            Focus::Serial => None,
        }
    }

    fn search_step(&mut self, older: bool) {
        let Some(search) = &self.search else { return };
        let sb = self.scrollback(search.focus);
        let from = match search.current.and_then(|seq| sb.index_of(seq)) {
            Some(index) => index,
            None if older => sb.len(),
            None => return,
        };
        self.search_from(from, older);
    }

    fn search_from(&mut self, from: usize, older: bool) {
        let Some(search) = &mut self.search else {
            return;
        };
        let focus = search.focus;
        let query = search.query.text().to_owned();
        let sb = match focus {
            Focus::Chat(i) if i < self.panes.len() => &mut self.panes[i].scrollback,
            _ => &mut self.serial,
        };
        search.matches = sb.count(&query);
        if let Some(index) = sb.find(&query, from, older) {
            search.current = Some(sb.seq(index));
            sb.reveal(index);
        } else {
            self.hint = Some(if search.matches == 0 {
                format!("not found: {query}")
            } else if older {
                "no older match".into()
            } else {
                "no newer match".into()
            });
        }
    }
}

/// Our own notes in a pane (connected, flash done) look different from what devices say:
/// italic and dim, coloured by `color` (a basic ANSI index) when colours are on.
fn note_style(color: u8) -> Style {
    Style {
        fg: Some(Color::Indexed(color)),
        italic: true,
        dim: color == 6,
        ..Style::default()
    }
}

fn styled(text: String, style: Style) -> StyledLine {
    StyledLine::new(text, style)
}

/// The keys that edit an input line (a chat pane's, or the search query). `plain`: no Ctrl or
/// Alt, so a character is typed.
fn line_edit(code: KeyCode, plain: bool) -> Option<Action> {
    Some(match code {
        KeyCode::Char(c) if plain => Action::Insert(c),
        KeyCode::Backspace => Action::DeleteBack,
        KeyCode::Delete => Action::DeleteForward,
        KeyCode::Left => Action::CursorLeft,
        KeyCode::Right => Action::CursorRight,
        KeyCode::Home => Action::CursorHome,
        KeyCode::End => Action::CursorEnd,
        _ => return None,
    })
}
