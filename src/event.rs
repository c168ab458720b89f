//! The one inbound event type: every actor reports through it, every front end consumes it.

use crate::chat::{ChatEvent, PaneId};
use crate::serial::SerialEvent;

#[derive(Debug)]
pub enum Event {
    Serial(SerialEvent),
    Chat(PaneId, ChatEvent),
}
