//! A chat pane's state on screen, changed by its connection's events.

use std::time::{Duration, Instant};

use super::input::InputLine;
use super::scrollback::Scrollback;
use super::{note_style, styled};
use crate::chat::{ChatEvent, PaneId};
use crate::serial::ConsoleOutput;

/// A chat pane's connection, as its events told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// No address to connect to yet.
    Waiting,
    Connecting(String),
    Connected(String),
    Disconnected(String),
    Reconnecting {
        after: Duration,
        since: Option<Instant>,
    },
    Closed,
    /// The listen pane: connections to this address become panes.
    Listening(String),
}

/// A chat pane as the screen shows it: its connection, what the server said, and the line
/// being typed. The TCP connection behind it is a `chat::ChatPane`, owned by the runtime.
#[derive(Clone, Debug)]
pub struct ChatView {
    pub id: PaneId,
    pub connection: Connection,
    pub scrollback: Scrollback,
    pub input: InputLine,
}

impl ChatView {
    pub fn new(id: PaneId) -> Self {
        Self {
            id,
            connection: Connection::Waiting,
            scrollback: Scrollback::default(),
            input: InputLine::default(),
        }
    }

    pub(super) fn event(&mut self, event: &ChatEvent, at: Option<Duration>, now: Option<Instant>) {
        match event {
            ChatEvent::Connecting { addr } => {
                self.connection = Connection::Connecting(addr.clone())
            }
            ChatEvent::Connected { addr } => {
                self.connection = Connection::Connected(addr.clone());
                self.scrollback
                    .push_note(styled(format!("connected to {addr}"), note_style(2)), at);
            }
            ChatEvent::Accepted { peer } => {
                self.connection = Connection::Connected(format!("from {peer}"));
                self.scrollback
                    .push_note(styled(format!("accepted from {peer}"), note_style(2)), at);
            }
            ChatEvent::Output(ConsoleOutput::Line(line)) => self.scrollback.push(line.clone(), at),
            ChatEvent::Output(ConsoleOutput::Partial(line)) => {
                self.scrollback.set_partial(line.clone())
            }
            ChatEvent::Disconnected { reason } => {
                self.connection = Connection::Disconnected(reason.clone());
                self.scrollback
                    .push_note(styled(format!("disconnected: {reason}"), note_style(1)), at);
            }
            ChatEvent::Reconnecting { after } => {
                self.connection = Connection::Reconnecting {
                    after: *after,
                    since: now,
                }
            }
            ChatEvent::Note(text) => {
                self.scrollback
                    .push_note(styled(text.clone(), note_style(3)), at);
            }
            ChatEvent::Dropped { line, reason } => {
                let text = format!("not sent: {line} ({reason})");
                self.scrollback.push_note(styled(text, note_style(1)), at);
            }
            ChatEvent::Closed => self.connection = Connection::Closed,
        }
    }

    /// The state in words, for the border title and the status line.
    pub fn connection_text(&self, now: Option<Instant>) -> String {
        match &self.connection {
            Connection::Waiting => "waiting for the board's address".into(),
            Connection::Connecting(addr) => format!("connecting to {addr}"),
            Connection::Connected(addr) => format!("connected {addr}"),
            Connection::Listening(addr) => format!("boards connect to {addr}"),
            Connection::Disconnected(reason) => format!("disconnected: {reason}"),
            Connection::Reconnecting { after, since } => {
                let waited = match (now, since) {
                    (Some(now), Some(since)) => now.saturating_duration_since(*since),
                    _ => Duration::ZERO,
                };
                let left = after.saturating_sub(waited).as_secs_f64().ceil();
                format!("reconnecting in {left:.0}s")
            }
            Connection::Closed => "closed".into(),
        }
    }
}
