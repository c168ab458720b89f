//! The chat on TCP port 5000: one listener task per client slot, all feeding one
//! [`espchat_core::Server`] through the [`Switchboard`] (host-tested in `firmware/records`).
//!
//! Back-pressure: drop, never wait. The server is synchronous: a line from one client produces
//! a `Send` for every client at once. Each slot has a small outbox (a byte pipe) that its own
//! task drains into the socket's transmit buffer. A `Send` that does not fit in a client's
//! outbox means that client has stopped reading (its 4 KiB socket buffer and its 1 KiB outbox
//! are both full): it is disconnected with `Disconnect::TooSlow`, as the virtual board does past
//! 64 KiB, and the others never wait for it. A line is queued whole or not at all. The dropped
//! client's task then drops its outbox, finishes the line the socket has part of and sends the
//! server's `notice: disconnected: you stopped reading`, best effort within [`LINGER`], before
//! it closes: should the client read again, it sees why it was cut rather than half a line.
//!
//! There are [`MAX_CLIENTS`] + 1 slots: the extra one lets the ninth client hear
//! `server full (8 clients)` before it is closed, as docs/contract.md §3 says.

use core::cell::RefCell;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use embassy_futures::select::{Either, Either4, select, select4};
use embassy_futures::yield_now;
use embassy_net::tcp::{State, TcpReader, TcpSocket, TcpWriter};
use embassy_sync::blocking_mutex::{Mutex, raw::NoopRawMutex};
use embassy_sync::pipe::Pipe;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer, with_timeout};
use espchat_core::{BoardCommand, ClientId, Full, MAX_CLIENTS, PORT};
use espchat_records::{BoardOutput, Outbox, Sending, Switchboard};
use heapless::Vec;

use crate::network::{NETWORK, NetworkReceiver, Stacks};

/// Listener tasks: one per client, and one to turn the ninth away politely.
pub const SLOTS: usize = MAX_CLIENTS + 1;

/// Per-client queue in front of the socket: a few full protocol lines.
const OUTBOX: usize = 1024;
/// What a slot's task moves from its outbox into its socket at a time.
const CHUNK: usize = 512;
/// The server's last words to a client it drops (its notice, 43 bytes).
const LAST_WORDS: usize = 64;
/// The rest of a line in progress (a protocol line is at most 288 bytes) and the last words.
const GOODBYE: usize = 384;
const SOCKET_RX: usize = 1024;
/// With the outbox, what a client may fall behind before it is dropped.
const SOCKET_TX: usize = 4096;
/// A peer that vanished (out of Wi-Fi range) is noticed by keep-alives going unanswered.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long a closing connection may take to send what is left.
const LINGER: Duration = Duration::from_secs(2);

pub struct Chat {
    switchboard: Mutex<NoopRawMutex, RefCell<Switchboard>>,
    slots: [Slot; SLOTS],
}

/// What the session task of one slot reads from.
struct Slot {
    outbox: Pipe<NoopRawMutex, OUTBOX>,
    /// Set when the server closed this slot's client.
    closed: Signal<NoopRawMutex, ()>,
    /// What the server said to its client as it dropped it for not reading.
    last_words: Mutex<NoopRawMutex, RefCell<Vec<u8, LAST_WORDS>>>,
}

impl Outbox for Slot {
    fn room(&self) -> usize {
        self.outbox.free_capacity()
    }

    fn push(&self, bytes: &[u8]) {
        // The switchboard checked the room, and only it writes to outboxes.
        let _ = self.outbox.try_write(bytes);
    }

    fn cut_off(&self, last: &[u8]) {
        self.last_words.lock(|words| {
            // Best effort: last words that do not fit are not said.
            let _ = words.borrow_mut().extend_from_slice(last);
        });
    }

    fn close(&self) {
        self.closed.signal(());
    }
}

fn board(output: BoardOutput<'_>) {
    match output {
        BoardOutput::Led(on) => crate::led::show(on),
        BoardOutput::Log(line) => say!("{line}"),
    }
}

impl Chat {
    pub fn new() -> Self {
        Self {
            switchboard: Mutex::new(RefCell::new(Switchboard::new())),
            slots: core::array::from_fn(|_| Slot {
                outbox: Pipe::new(),
                closed: Signal::new(),
                last_words: Mutex::new(RefCell::new(Vec::new())),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Switchboard, &[Slot]) -> R) -> R {
        self.switchboard
            .lock(|switchboard| f(&mut switchboard.borrow_mut(), &self.slots))
    }

    /// A console line, for the server; what only the board can do comes back.
    pub fn console(&self, line: &str) -> Option<BoardCommand> {
        self.with(|switchboard, slots| switchboard.console(line, slots, &mut board))
    }

    /// One accepted connection, from its first line to its close.
    async fn serve(&self, slot: usize, socket: &mut TcpSocket<'_>, network: &mut NetworkReceiver) {
        let io = &self.slots[slot];
        io.outbox.clear();
        io.closed.reset();
        io.last_words.lock(|words| words.borrow_mut().clear());
        let peer = socket.remote_endpoint().map_or(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            |endpoint| SocketAddr::new(endpoint.addr.into(), endpoint.port),
        );
        let id = match self
            .with(|switchboard, slots| switchboard.connect(slot, peer, slots, &mut board))
        {
            Ok(id) => id,
            Err(Full) => {
                let _ = with_timeout(LINGER, write_all(socket, Full::LINE)).await;
                socket.close();
                let _ = with_timeout(LINGER, socket.flush()).await;
                return;
            }
        };
        let mut sending = Sending::new();
        let end = {
            let (mut reader, mut writer) = socket.split();
            select4(
                self.read_lines(slot, id, &mut reader),
                send_outbox(&io.outbox, &mut writer, &mut sending),
                io.closed.wait(),
                network.changed(),
            )
            .await
        };
        match end {
            // The server dropped it for not reading: its backlog goes, its line is finished.
            Either4::Third(()) => {
                let goodbye: Vec<u8, GOODBYE> = io.last_words.lock(|words| {
                    sending.last_words(|buf| io.outbox.try_read(buf).unwrap_or(0), &words.borrow())
                });
                let _ = with_timeout(LINGER, write_all(socket, &goodbye)).await;
                socket.close();
                if with_timeout(LINGER, socket.flush()).await.is_err() {
                    // It did not read again: reset it rather than leave it hanging.
                    socket.abort();
                }
            }
            _ => {
                self.with(|switchboard, slots| switchboard.leave(slot, id, slots, &mut board));
                socket.close();
            }
        }
        let _ = with_timeout(LINGER, socket.flush()).await;
    }

    async fn read_lines(&self, slot: usize, id: ClientId, reader: &mut TcpReader<'_>) {
        let mut buf = [0u8; 256];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // One line at a time, letting the other slots move their outboxes into their
            // sockets in between: a burst of short lines must not overflow a reader that keeps up.
            let mut bytes = &buf[..n];
            while !bytes.is_empty() {
                let end = bytes
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |at| at + 1);
                let line = &bytes[..end];
                self.with(|switchboard, slots| {
                    switchboard.receive(slot, id, line, slots, &mut board)
                });
                bytes = &bytes[end..];
                yield_now().await;
            }
        }
    }
}

/// Moves the outbox into the socket. Cancel-safe: `sending` keeps what the socket took.
async fn send_outbox(
    outbox: &Pipe<NoopRawMutex, OUTBOX>,
    writer: &mut TcpWriter<'_>,
    sending: &mut Sending<CHUNK>,
) {
    loop {
        if sending.is_done() {
            let n = outbox.read(sending.space()).await;
            sending.filled(n);
        }
        match writer.write(sending.unwritten()).await {
            Ok(0) | Err(_) => return,
            Ok(written) => sending.wrote(written),
        }
    }
}

async fn write_all(socket: &mut TcpSocket<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match socket.write(bytes).await {
            Ok(0) | Err(_) => return,
            Ok(written) => bytes = &bytes[written..],
        }
    }
}

/// Accepts connections on port 5000 of whichever network is up, and serves them one at a time.
#[embassy_executor::task(pool_size = SLOTS)]
pub async fn listener(slot: usize, chat: &'static Chat, stacks: Stacks) {
    let mut rx = [0u8; SOCKET_RX];
    let mut tx = [0u8; SOCKET_TX];
    let Some(mut network) = NETWORK.receiver() else {
        say!("chat slot {slot}: no network receiver left");
        return;
    };
    loop {
        let current = network.get_and(|network| network.is_up()).await;
        let Some(stack) = stacks.serving(current) else {
            continue;
        };
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_keep_alive(Some(KEEP_ALIVE));
        socket.set_timeout(Some(TIMEOUT));
        match select(socket.accept(PORT), network.changed()).await {
            // `accept` also returns for a handshake that ended half-way (reset, timed out):
            // only an established connection (or one its client already half-closed) is a
            // client to announce.
            Either::First(Ok(())) if is_client(socket.state()) => {
                chat.serve(slot, &mut socket, &mut network).await
            }
            Either::First(Ok(())) => socket.abort(),
            // Accepting fails only on a socket in the wrong state; do not spin on it.
            Either::First(Err(_)) => Timer::after_millis(100).await,
            Either::Second(_) => {}
        }
    }
}

fn is_client(state: State) -> bool {
    matches!(state, State::Established | State::CloseWait)
}
