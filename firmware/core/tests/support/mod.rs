//! What the server's tests share: its outputs as owned values, and the recorder that makes them.

use espchat_core::Output;

/// An [`Output`] as an owned value, so tests can keep and compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Send(u8, String),
    Close(u8),
    Led(bool),
    Log(String),
}

/// Records every output into `events`; a send that is not UTF-8 fails the test right there.
pub fn record(events: &mut Vec<Event>) -> impl FnMut(Output<'_>) + '_ {
    |output| {
        events.push(match output {
            Output::Send { to, bytes } => Event::Send(
                to.get(),
                String::from_utf8(bytes.to_vec()).expect("the server sends UTF-8"),
            ),
            Output::Close(id) => Event::Close(id.get()),
            Output::Led(on) => Event::Led(on),
            Output::Log(line) => Event::Log(line.to_owned()),
        })
    }
}
