//! The one inbound event type: every actor reports through it, every front end consumes it.

use crate::chat::{ChatEvent, PaneId};
use crate::flash::FlashEvent;
use crate::serial::SerialEvent;

#[derive(Debug)]
pub enum Event {
    Serial(SerialEvent),
    Chat(PaneId, ChatEvent),
    Flash(FlashEvent),
    /// Flashing ended: `Ok` with bytes and seconds, or the error's message.
    FlashDone(Result<(u64, f64), String>),
}
