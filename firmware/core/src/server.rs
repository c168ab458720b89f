//! The chat server of docs/contract.md §3, driven by events and answering with [`Output`]s.

use core::fmt::{self, Write as _};
use core::net::SocketAddr;
use core::num::NonZeroU8;

use heapless::String;

use crate::console::{BoardCommand, CONSOLE_HELP, ConsoleCommand, ConsoleError, Policy};
use crate::line::{LineReader, MAX_LINE};

/// Clients served at once; one more is refused with [`Full::LINE`].
pub const MAX_CLIENTS: usize = 8;

/// The TCP port of the chat server.
pub const PORT: u16 = 5000;

/// Longest line the server sends: `Client N: ` + a full line + `\r\n`, with room to spare.
const OUT_LINE: usize = MAX_LINE + 32;

/// A connected client's number, 1 to [`MAX_CLIENTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(NonZeroU8);

impl ClientId {
    pub fn new(id: u8) -> Option<Self> {
        if usize::from(id) <= MAX_CLIENTS {
            NonZeroU8::new(id).map(ClientId)
        } else {
            None
        }
    }

    pub fn get(self) -> u8 {
        self.0.get()
    }

    fn index(self) -> usize {
        usize::from(self.0.get()) - 1
    }

    fn from_index(index: usize) -> Self {
        // Indexes come from the fixed client table, so they are below MAX_CLIENTS (< 255).
        ClientId(NonZeroU8::MIN.saturating_add(index as u8))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the server asks its IO glue to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// Send these bytes (one or more whole lines ending in `\r\n`) to a client.
    Send { to: ClientId, bytes: &'a [u8] },
    /// Close this client's connection; it is no longer part of the chat.
    Close(ClientId),
    /// Switch the LED.
    Led(bool),
    /// A console log line, without prefix: the glue prints it as `espchat: <line>`.
    Log(&'a str),
}

/// The server is full: send [`Full::LINE`] to the new connection and close it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl Full {
    pub const LINE: &'static [u8] = b"server full (8 clients)\r\n";
}

/// Why a client left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// The client closed the connection, or it failed.
    Closed,
    /// The client stopped reading and the glue's send buffer for it is full. The server's last
    /// `Send` to it, just before its `Close`, is [`Disconnect::TOO_SLOW_LINE`]: the glue drops
    /// what is still queued for it, finishes the line the client is in the middle of if it can,
    /// and sends that notice, best effort, before closing. So the cut is visible.
    TooSlow,
}

impl Disconnect {
    pub const TOO_SLOW_LINE: &'static [u8] = b"notice: disconnected: you stopped reading\r\n";
}

struct Client {
    peer: SocketAddr,
    reader: LineReader,
}

/// The chat server's whole state: up to [`MAX_CLIENTS`] clients, the LED, the policy.
#[derive(Default)]
pub struct Server {
    clients: [Option<Client>; MAX_CLIENTS],
    led: bool,
    policy: Policy,
}

impl Server {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn led(&self) -> bool {
        self.led
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The ids of the connected clients, in order.
    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.clients
            .iter()
            .enumerate()
            .filter(|(_, client)| client.is_some())
            .map(|(index, _)| ClientId::from_index(index))
    }

    /// The id the next connection will get (the smallest free one), or `None` when full. IO glue
    /// that must route the newcomer's own `Client N connected` before [`Server::connect`]
    /// returns can look it up here.
    pub fn next_id(&self) -> Option<ClientId> {
        self.clients
            .iter()
            .position(Option::is_none)
            .map(ClientId::from_index)
    }

    /// A connection arrived from `peer`. It gets the smallest free id, or [`Full`].
    pub fn connect(
        &mut self,
        peer: SocketAddr,
        out: &mut impl FnMut(Output<'_>),
    ) -> Result<ClientId, Full> {
        let Some(id) = self.next_id() else {
            log(
                out,
                format_args!("connection from {peer} refused: server full ({MAX_CLIENTS} clients)"),
            );
            return Err(Full);
        };
        self.clients[id.index()] = Some(Client {
            peer,
            reader: LineReader::new(),
        });
        log(out, format_args!("client {id} connected from {peer}"));
        self.broadcast(out, format_args!("Client {id} connected"));
        Ok(id)
    }

    /// Bytes arrived from a client: relay every line they complete and act on commands.
    pub fn receive(&mut self, id: ClientId, mut bytes: &[u8], out: &mut impl FnMut(Output<'_>)) {
        loop {
            let Some(client) = self.clients[id.index()].as_mut() else {
                return;
            };
            let Some(line) = client.reader.next_line(&mut bytes) else {
                return;
            };
            self.broadcast(out, format_args!("Client {id}: {}", line.text));
            if line.cut {
                send(
                    out,
                    id,
                    format_args!("notice: line cut to {MAX_LINE} bytes"),
                );
            }
            self.command(id, line.text.trim(), out);
        }
    }

    /// A client left (see [`Disconnect`]); the others are told.
    pub fn disconnect(&mut self, id: ClientId, why: Disconnect, out: &mut impl FnMut(Output<'_>)) {
        if self.clients[id.index()].take().is_none() {
            return;
        }
        if why == Disconnect::TooSlow {
            out(Output::Send {
                to: id,
                bytes: Disconnect::TOO_SLOW_LINE,
            });
        }
        out(Output::Close(id));
        if why == Disconnect::TooSlow {
            log(
                out,
                format_args!("client {id} stopped reading; closing its connection"),
            );
        }
        log(out, format_args!("client {id} disconnected"));
        self.broadcast(out, format_args!("Client {id} disconnected"));
    }

    /// A line typed on the serial console. Commands the server cannot carry out itself
    /// (Wi-Fi, LED pin, reboot, the address) are returned for the board to handle; `status`
    /// logs the server's part and returns [`BoardCommand::Address`] for the board's.
    pub fn console(
        &mut self,
        line: &str,
        out: &mut impl FnMut(Output<'_>),
    ) -> Option<BoardCommand> {
        match ConsoleCommand::parse(line) {
            Ok(ConsoleCommand::Board(command)) => return Some(command),
            Ok(ConsoleCommand::Status) => {
                log(out, format_args!("{}", self.status()));
                for (index, client) in self.clients.iter().enumerate() {
                    if let Some(client) = client {
                        let id = ClientId::from_index(index);
                        log(out, format_args!("client {id} at {}", client.peer));
                    }
                }
                return Some(BoardCommand::Address);
            }
            Ok(ConsoleCommand::Policy(policy)) => {
                self.policy = policy;
                log(out, format_args!("policy {policy}"));
            }
            Ok(ConsoleCommand::Help) => {
                for line in CONSOLE_HELP {
                    out(Output::Log(line));
                }
            }
            Err(ConsoleError::Empty) => {}
            Err(error) => log(out, format_args!("{error}")),
        }
        None
    }

    fn command(&mut self, id: ClientId, text: &str, out: &mut impl FnMut(Output<'_>)) {
        if text.eq_ignore_ascii_case("on") {
            self.switch_led(id, true, out);
        } else if text.eq_ignore_ascii_case("off") {
            self.switch_led(id, false, out);
        } else if text.eq_ignore_ascii_case("status") {
            send(out, id, format_args!("{}", self.status()));
        } else if text.eq_ignore_ascii_case("help") {
            send(
                out,
                id,
                format_args!("commands: on, off (switch the LED), status, help"),
            );
            match self.policy {
                Policy::Lab => send(
                    out,
                    id,
                    format_args!(
                        "policy lab: only Client 1 may switch the LED on, only Client 2 may switch it off"
                    ),
                ),
                Policy::Open => send(
                    out,
                    id,
                    format_args!("policy open: any client may switch the LED"),
                ),
            }
        }
    }

    fn switch_led(&mut self, id: ClientId, on: bool, out: &mut impl FnMut(Output<'_>)) {
        // The lab exercise: client 1 switches on, client 2 switches off.
        let allowed_id = if on { 1 } else { 2 };
        let state = if on { "on" } else { "off" };
        if self.policy == Policy::Lab && id.get() != allowed_id {
            send(
                out,
                id,
                format_args!("denied: only Client {allowed_id} may switch the LED {state}"),
            );
            return;
        }
        self.led = on;
        out(Output::Led(on));
        log(out, format_args!("led {state}"));
        self.broadcast(out, format_args!("LED {state} (Client {id})"));
    }

    fn status(&self) -> impl fmt::Display + '_ {
        struct Status<'a>(&'a Server);
        impl fmt::Display for Status<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let server = self.0;
                let led = if server.led { "on" } else { "off" };
                write!(f, "LED is {led}; clients: ")?;
                let mut clients = server.clients().peekable();
                if clients.peek().is_none() {
                    f.write_str("none")?;
                }
                for (n, id) in clients.enumerate() {
                    if n > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{id}")?;
                }
                write!(f, "; policy {}", server.policy)
            }
        }
        Status(self)
    }

    fn broadcast(&self, out: &mut impl FnMut(Output<'_>), line: fmt::Arguments<'_>) {
        let line = format_line(line);
        for id in self.clients() {
            out(Output::Send {
                to: id,
                bytes: line.as_bytes(),
            });
        }
    }
}

fn send(out: &mut impl FnMut(Output<'_>), to: ClientId, line: fmt::Arguments<'_>) {
    let line = format_line(line);
    out(Output::Send {
        to,
        bytes: line.as_bytes(),
    });
}

fn log(out: &mut impl FnMut(Output<'_>), line: fmt::Arguments<'_>) {
    let mut text = String::<OUT_LINE>::new();
    // Log lines are short and made of bounded parts; should one ever overflow, it is cut.
    let _ = text.write_fmt(line);
    out(Output::Log(&text));
}

/// One protocol line with its `\r\n`. Relayed text is at most [`MAX_LINE`] bytes, so every line
/// fits; the `\r\n` is written last and always present.
fn format_line(line: fmt::Arguments<'_>) -> String<OUT_LINE> {
    let mut text = String::<OUT_LINE>::new();
    let _ = text.write_fmt(line);
    text.truncate(floor_char_boundary(&text, OUT_LINE - 2));
    let _ = text.push_str("\r\n");
    text
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}
