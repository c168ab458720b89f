//! The one inbound event type: every actor reports through it, every front end consumes it.

use crate::chat::{ChatEvent, PaneId};
use crate::flash::FlashEvent;
use crate::listen::ListenEvent;
use crate::serial::SerialEvent;

/// What an actor reports: the console (bytes decoded into lines, the board's address, its LED,
/// a lost port), a chat pane (connection state, lines from the server), the flasher (progress,
/// the result). All actors of a session share one bounded channel of these; each face gives
/// every event to the session core first (`Session::event`), then shows it.
#[derive(Debug)]
pub enum Event {
    Serial(SerialEvent),
    Chat(PaneId, ChatEvent),
    Flash(FlashEvent),
    /// Flashing ended: `Ok` with bytes and seconds, or the error's message.
    FlashDone(Result<(u64, f64), String>),
    /// The listener (`espchat listen`, a listen pane) accepted or turned away a connection.
    Listen(ListenEvent),
}
