//! The espchat firmware as the virtual board runs it: the boot log, the console, and a tokio
//! TCP server on 127.0.0.1 driving `espchat-core`, the code the real firmware runs.
//!
//! Slow clients: this is flow control first, and a disconnect only for a client that has
//! stopped. When more than [`SEND_BACKLOG`] bytes wait for any client (on top of a small kernel
//! send buffer, like the few KiB of an embassy-net socket), the server stops taking new lines
//! until that client catches up, so TCP slows the senders down and no line is lost. A client
//! that has taken nothing for [`STALL_TIMEOUT`] while over the limit is disconnected, and everyone
//! sees `Client N disconnected`: one client that never reads holds the chat up for at most that
//! long, and no client ever misses a line without knowing it. The dropped client itself gets the
//! rest of the line it is in the middle of and the core's last notice (`notice: disconnected:
//! you stopped reading`), best effort: should it read again within [`DRAIN_TIMEOUT`], it sees
//! why it was cut rather than half a line.
//!
//! (A fixed backlog limit alone was not enough: under a flood from 8 senders on 2 cores, healthy
//! readers fell 64 KiB behind and were dropped. The relay benchmark shows it.)

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use espchat_core::{
    BLINK_SECS, BoardCommand, Chip, ClientId, Disconnect, Full, LedSetting, LineEditor,
    MAX_CLIENTS, Output, Server,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::bridge::BoardBridge;
use super::console::Console;

/// Bytes waiting for one client (beyond the kernel's buffer) above which the server stops
/// taking new lines until it catches up.
pub const SEND_BACKLOG: usize = 64 * 1024;
/// A client over [`SEND_BACKLOG`] that has taken no bytes for this long is disconnected.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often stalled clients are looked for while input is paused.
const STALL_CHECK: Duration = Duration::from_millis(100);
/// A safety net that is never reached while flow control works: one event's output is far
/// smaller (at most about 50 KiB per client for 4 KiB of input).
const HARD_BACKLOG: usize = 1024 * 1024;
/// Kernel send buffer per client. Small, like a microcontroller's socket buffer, so a client
/// that stops reading is noticed after a few hundred lines rather than megabytes.
const SOCKET_SEND_BUFFER: usize = 16 * 1024;
/// How long a closing connection may take to deliver what is queued for it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The simulated network the board "joins" at boot.
pub const DEFAULT_SSID: &str = "espchat-virtual";

/// What a client sent, in order: bytes, then the end of its input. On a bounded channel: its
/// back-pressure is the flow control.
struct Received {
    id: ClientId,
    token: u64,
    /// Empty at the end of input (the client closed, or reading failed).
    bytes: Bytes,
}

/// A writer failed: the connection is dead. On its own channel, so it is seen even while
/// input is paused.
struct Gone {
    id: ClientId,
    token: u64,
}

struct Connection {
    /// Tells this connection's events apart from those of an earlier client with the same id.
    token: u64,
    queue: mpsc::UnboundedSender<Bytes>,
    /// Bytes in `queue` and not yet written to the socket.
    queued: Arc<AtomicUsize>,
    /// When the writer last finished a write, in milliseconds since the board's epoch.
    written_at: Arc<AtomicU64>,
    /// Since when the backlog has been over [`SEND_BACKLOG`].
    over_since: Option<Instant>,
    reader: AbortHandle,
    writer: AbortHandle,
    /// Tells the writer its client is dropped for not reading, with the core's last words to it.
    cut_off: oneshot::Sender<Bytes>,
}

impl Connection {
    /// Stops reading; lets the writer deliver what is queued (bounded by [`DRAIN_TIMEOUT`]),
    /// or drops it at once.
    fn close(self, drain: bool) {
        self.reader.abort();
        if drain {
            let writer = self.writer;
            tokio::spawn(async move {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
                writer.abort();
            });
        } else {
            self.writer.abort();
        }
    }

    /// Dropped for not reading: its backlog is discarded, and the writer finishes the line in
    /// progress, sends `last` and closes, within [`DRAIN_TIMEOUT`].
    fn cut_off(self, last: Vec<u8>) {
        self.reader.abort();
        if self.cut_off.send(Bytes::from(last)).is_err() {
            // The writer has already ended: the connection is dead.
            self.writer.abort();
        }
    }
}

/// An `Output` of the core, owned so it can be carried out after the core call returns.
enum Action {
    Send(ClientId, Vec<u8>),
    Close(ClientId),
    Log(String),
}

/// The firmware's state between events.
pub struct Firmware {
    server: Server,
    connections: [Option<Connection>; MAX_CLIENTS],
    next_token: u64,
    console: Console,
    console_line: LineEditor,
    listener: Option<TcpListener>,
    port: u16,
    ssid: String,
    received_tx: mpsc::Sender<Received>,
    received_rx: mpsc::Receiver<Received>,
    gone_tx: mpsc::UnboundedSender<Gone>,
    gone_rx: mpsc::UnboundedReceiver<Gone>,
    /// Reference point for the writers' progress stamps.
    epoch: Instant,
    /// Signalled by a writer whose backlog fell back under [`SEND_BACKLOG`]: input resumes.
    drained: Arc<Notify>,
    /// The board as a TCP client (`connect`).
    bridge: BoardBridge,
}

impl Firmware {
    /// The app starts: it joins the (simulated) network and serves the chat on `port`.
    pub async fn start(console: Console, port: u16) -> Firmware {
        let (received_tx, received_rx) = mpsc::channel(64);
        let (gone_tx, gone_rx) = mpsc::unbounded_channel();
        console.log(format_args!(
            "espchat {} on a virtual ESP32-C3 (chat server: espchat-core)",
            env!("CARGO_PKG_VERSION")
        ));
        let listener = match bind(port).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                console.log(format_args!("cannot listen: {error}"));
                None
            }
        };
        let firmware = Firmware {
            server: Server::new(),
            connections: Default::default(),
            next_token: 0,
            console,
            console_line: LineEditor::new(),
            listener,
            port,
            ssid: DEFAULT_SSID.to_owned(),
            received_tx,
            received_rx,
            gone_tx,
            gone_rx,
            epoch: Instant::now(),
            drained: Arc::new(Notify::new()),
            bridge: BoardBridge::new(),
        };
        firmware.join_wifi();
        firmware
    }

    /// Waits for the next network event and handles it. Cancel-safe: the chip races it
    /// against its own events, and nothing is lost when another one wins.
    pub async fn step(&mut self) {
        tokio::select! {
            accepted = accept(&self.listener) => match accepted {
                Ok((stream, peer)) => self.accept(stream, peer),
                Err(error) => tracing::warn!("accept failed: {error}"),
            },
            Some(received) = self.received_rx.recv(), if !self.backlogged() => {
                self.received(received);
            }
            Some(gone) = self.gone_rx.recv() => self.gone(gone),
            () = self.drained.notified(), if self.backlogged() => {}
            () = tokio::time::sleep(STALL_CHECK), if self.backlogged() => self.drop_stalled(),
            wake = self.bridge.next() => self.bridge.handle(wake, &self.console),
        }
    }

    /// The chip resets or enters the loader: every connection drops, the server goes away.
    pub fn shutdown(mut self) {
        for connection in self.connections.iter_mut().filter_map(Option::take) {
            connection.close(false);
        }
    }

    /// The virtual board's network is always there: "joining" it prints what a real board
    /// prints once DHCP answers.
    fn join_wifi(&self) {
        // The virtual board keeps no LED setting across boots: the default, as a fresh board.
        self.console
            .log(format_args!("led: {}", LedSetting::Rgb.describe()));
        self.console
            .log(format_args!("wifi connecting to \"{}\"", self.ssid));
        self.say_address();
    }

    /// Where the chat is served: at boot, and again for the `ip` and `status` commands.
    fn say_address(&self) {
        self.console
            .log(format_args!("got ip: {}", Ipv4Addr::LOCALHOST));
        if self.listener.is_some() {
            self.console.log(format_args!(
                "listening on {}:{}",
                Ipv4Addr::LOCALHOST,
                self.port
            ));
        }
    }

    /// What a client typed on the console, echoed as the firmware echoes it (the Wi-Fi
    /// password as `*`). Returns true when it asked for a reboot, which is the chip's to do.
    pub fn console_input(&mut self, bytes: &[u8]) -> bool {
        let mut lines = Vec::new();
        let console = &self.console;
        self.console_line
            .feed(bytes, &mut |text| console.echo(text), &mut |line| {
                lines.push(line)
            });
        let mut reboot = false;
        for line in lines {
            reboot |= self.console_command(&line.text);
        }
        reboot
    }

    fn console_command(&mut self, line: &str) -> bool {
        // While the board is a client, what is typed goes to its server.
        if self.bridge.console(line, &self.console) {
            return false;
        }
        let mut actions = Vec::new();
        let command = self.server.console(line, &mut collect(&mut actions));
        self.apply(actions);
        match command {
            Some(BoardCommand::Wifi(credentials)) => {
                self.ssid = credentials.ssid.as_str().to_owned();
                self.join_wifi();
            }
            Some(BoardCommand::Led(LedSetting::Gpio(led))) => {
                // The firmware's own check, for the chip this board is.
                if let Err(error) = Chip::Esp32c3.check_led_pin(led.pin) {
                    self.console.log(format_args!("led {}: {error}", led.pin));
                    return false;
                }
                let polarity = if led.active_low {
                    "active-low"
                } else {
                    "active-high"
                };
                self.console.log(format_args!(
                    "led on GPIO{} ({polarity}); the virtual board shows it in its log",
                    led.pin
                ));
            }
            Some(BoardCommand::Led(LedSetting::Rgb)) => {
                self.console
                    .log("led: the RGB LED; the virtual board shows it in its log");
            }
            Some(BoardCommand::Reboot) => return true,
            Some(BoardCommand::Blink) => self.console.log(format_args!(
                "blink: the LED flashes for {BLINK_SECS} s; the virtual board shows it in its log"
            )),
            Some(BoardCommand::Address) => self.say_address(),
            Some(command @ (BoardCommand::Connect(_) | BoardCommand::Disconnect)) => {
                self.bridge.command(command, &self.console);
            }
            // As the firmware: esp-backtrace's report, then a software reset.
            Some(BoardCommand::Panic) => {
                for line in super::panic::panic_lines() {
                    self.console.raw(line);
                }
                return true;
            }
            None => {}
        }
        false
    }

    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        let mut actions = Vec::new();
        match self.server.connect(peer, &mut collect(&mut actions)) {
            Ok(id) => {
                let token = self.next_token;
                self.next_token += 1;
                let connection = spawn_connection(
                    stream,
                    id,
                    token,
                    self.received_tx.clone(),
                    self.gone_tx.clone(),
                    Progress {
                        queued: Arc::new(AtomicUsize::new(0)),
                        written_at: Arc::new(AtomicU64::new(0)),
                        epoch: self.epoch,
                        drained: Arc::clone(&self.drained),
                    },
                );
                self.connections[usize::from(id.get()) - 1] = Some(connection);
            }
            Err(Full) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let refuse = async {
                        stream.write_all(Full::LINE).await?;
                        stream.shutdown().await
                    };
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, refuse).await;
                });
            }
        }
        self.apply(actions);
    }

    fn received(&mut self, Received { id, token, bytes }: Received) {
        if bytes.is_empty() {
            return self.gone(Gone { id, token });
        }
        if !self.is_current(id, token) {
            return;
        }
        let mut actions = Vec::new();
        self.server.receive(id, &bytes, &mut collect(&mut actions));
        self.apply(actions);
    }

    fn gone(&mut self, Gone { id, token }: Gone) {
        if !self.is_current(id, token) {
            return;
        }
        let mut actions = Vec::new();
        self.server
            .disconnect(id, Disconnect::Closed, &mut collect(&mut actions));
        self.apply(actions);
    }

    /// Events of a connection that was replaced (same id, a new client) are stale.
    fn is_current(&self, id: ClientId, token: u64) -> bool {
        self.connections[usize::from(id.get()) - 1]
            .as_ref()
            .is_some_and(|connection| connection.token == token)
    }

    /// Whether some client has more than [`SEND_BACKLOG`] waiting: input pauses until it
    /// catches up.
    fn backlogged(&self) -> bool {
        self.connections
            .iter()
            .flatten()
            .any(|connection| connection.queued.load(Ordering::Relaxed) > SEND_BACKLOG)
    }

    /// Disconnects clients that have been over the backlog limit without taking a byte for
    /// [`STALL_TIMEOUT`].
    fn drop_stalled(&mut self) {
        let now = Instant::now();
        let mut stalled = Vec::new();
        for (index, slot) in self.connections.iter_mut().enumerate() {
            let Some(connection) = slot else { continue };
            if connection.queued.load(Ordering::Relaxed) <= SEND_BACKLOG {
                connection.over_since = None;
                continue;
            }
            let over_since = *connection.over_since.get_or_insert(now);
            let written_at =
                self.epoch + Duration::from_millis(connection.written_at.load(Ordering::Relaxed));
            if now.duration_since(over_since.max(written_at)) >= STALL_TIMEOUT {
                stalled.extend(u8::try_from(index + 1).ok().and_then(ClientId::new));
            }
        }
        self.drop_too_slow(stalled);
    }

    fn drop_too_slow(&mut self, clients: Vec<ClientId>) {
        for id in clients {
            let mut actions = Vec::new();
            self.server
                .disconnect(id, Disconnect::TooSlow, &mut collect(&mut actions));
            // What the core sends the leaver (its notice) replaces the backlog, which is why it
            // goes; its `Close` then finds the connection already taken.
            let mut last = Vec::new();
            actions.retain(|action| match action {
                Action::Send(to, bytes) if *to == id => {
                    last.extend_from_slice(bytes);
                    false
                }
                _ => true,
            });
            if let Some(connection) = self.connections[usize::from(id.get()) - 1].take() {
                connection.cut_off(last);
            }
            self.apply(actions);
        }
    }

    /// Carries out the core's outputs. What one event sends to a client goes to its writer as
    /// one buffer: a broadcast of 60 lines is 8 queue operations, not 480.
    fn apply(&mut self, actions: Vec<Action>) {
        let mut outgoing: [Vec<u8>; MAX_CLIENTS] = Default::default();
        let mut too_slow = Vec::new();
        let mut gone = Vec::new();
        for action in actions {
            match action {
                Action::Send(id, bytes) => {
                    outgoing[usize::from(id.get()) - 1].extend_from_slice(&bytes)
                }
                Action::Close(id) => {
                    let index = usize::from(id.get()) - 1;
                    if let Some(connection) = self.connections[index].take() {
                        // What was sent before the close still goes out (a half-closing client
                        // gets its own last line back).
                        let last = std::mem::take(&mut outgoing[index]);
                        connection.queued.fetch_add(last.len(), Ordering::Relaxed);
                        let _ = connection.queue.send(Bytes::from(last));
                        connection.close(true);
                    }
                }
                Action::Log(line) => self.console.log(line),
            }
        }
        for (index, bytes) in outgoing.into_iter().enumerate() {
            let Some(connection) = &self.connections[index] else {
                continue;
            };
            if bytes.is_empty() {
                continue;
            }
            let Some(id) = u8::try_from(index + 1).ok().and_then(ClientId::new) else {
                continue;
            };
            let len = bytes.len();
            if connection.queued.load(Ordering::Relaxed) + len > HARD_BACKLOG {
                too_slow.push(id);
            } else if connection.queue.send(Bytes::from(bytes)).is_ok() {
                connection.queued.fetch_add(len, Ordering::Relaxed);
            } else {
                gone.push(id);
            }
        }
        self.drop_too_slow(too_slow);
        for id in gone {
            let mut actions = Vec::new();
            self.server
                .disconnect(id, Disconnect::Closed, &mut collect(&mut actions));
            self.apply(actions);
        }
    }
}

/// An output sink that keeps owned copies.
fn collect(actions: &mut Vec<Action>) -> impl FnMut(Output<'_>) + '_ {
    move |output| {
        let action = match output {
            Output::Send { to, bytes } => Action::Send(to, bytes.to_vec()),
            Output::Close(id) => Action::Close(id),
            // The virtual board has no LED to drive; the core's `led on|off` log line shows it.
            Output::Led(_) => return,
            Output::Log(line) => Action::Log(line.to_owned()),
        };
        actions.push(action);
    }
}
async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await
}

/// Waits for a connection, or forever while the server is down (during a reboot).
async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

fn spawn_connection(
    stream: TcpStream,
    id: ClientId,
    token: u64,
    received: mpsc::Sender<Received>,
    gone: mpsc::UnboundedSender<Gone>,
    progress: Progress,
) -> Connection {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SOCKET_SEND_BUFFER);
    let (read_half, write_half) = stream.into_split();
    let (queue, lines) = mpsc::unbounded_channel();
    let (cut_off, cut_off_rx) = oneshot::channel();
    let queued = Arc::clone(&progress.queued);
    let written_at = Arc::clone(&progress.written_at);
    let reader = tokio::spawn(read_client(read_half, id, token, received));
    let writer = tokio::spawn(write_client(
        write_half,
        lines,
        cut_off_rx,
        progress,
        Gone { id, token },
        gone,
    ));
    Connection {
        token,
        queue,
        queued,
        written_at,
        over_since: None,
        reader: reader.abort_handle(),
        writer: writer.abort_handle(),
        cut_off,
    }
}

async fn read_client(
    mut socket: OwnedReadHalf,
    id: ClientId,
    token: u64,
    received: mpsc::Sender<Received>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let bytes = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => Bytes::new(),
            Ok(n) => Bytes::copy_from_slice(&buf[..n]),
        };
        let end = bytes.is_empty();
        // While input is paused or busy this waits, and so, through TCP, does the client.
        if received.send(Received { id, token, bytes }).await.is_err() || end {
            return;
        }
    }
}

/// What a writer tells the board: bytes still waiting, when it last wrote, and that its
/// backlog fell back under the limit.
struct Progress {
    queued: Arc<AtomicUsize>,
    written_at: Arc<AtomicU64>,
    epoch: Instant,
    drained: Arc<Notify>,
}

async fn write_client(
    mut socket: OwnedWriteHalf,
    mut lines: mpsc::UnboundedReceiver<Bytes>,
    cut_off: oneshot::Receiver<Bytes>,
    progress: Progress,
    me: Gone,
    gone: mpsc::UnboundedSender<Gone>,
) {
    let mut cut_off = Some(cut_off);
    // Whole lines, as the core sends them; the socket has taken `written` bytes of them.
    let mut batch = Vec::with_capacity(16 * 1024);
    let mut written = 0;
    loop {
        if written == batch.len() {
            let line = tokio::select! {
                biased;
                last = cut_off_signal(&mut cut_off) => return say_last(socket, &[], &last).await,
                line = lines.recv() => line,
            };
            let Some(line) = line else { break };
            batch.clear();
            written = 0;
            batch.extend_from_slice(&line);
            while batch.len() < 16 * 1024 {
                match lines.try_recv() {
                    Ok(line) => batch.extend_from_slice(&line),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
        }
        // A write that does not complete takes nothing, so the cut-off can interrupt it.
        tokio::select! {
            biased;
            last = cut_off_signal(&mut cut_off) => {
                return say_last(socket, rest_of_line(&batch, written), &last).await;
            }
            result = socket.write(&batch[written..]) => match result {
                Ok(n) if n > 0 => written += n,
                _ => {
                    let _ = gone.send(me);
                    return;
                }
            },
        }
        if written < batch.len() {
            continue;
        }
        let before = progress.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        if before > SEND_BACKLOG && before - batch.len() <= SEND_BACKLOG {
            progress.drained.notify_one();
        }
        let now = u64::try_from(progress.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        progress.written_at.store(now, Ordering::Relaxed);
    }
    let _ = socket.shutdown().await;
}

/// The last words to a client dropped for not reading, when they come. Never, if its connection
/// is closed another way (the sender is dropped unused).
async fn cut_off_signal(cut_off: &mut Option<oneshot::Receiver<Bytes>>) -> Bytes {
    if let Some(receiver) = cut_off
        && let Ok(last) = receiver.await
    {
        return last;
    }
    *cut_off = None;
    std::future::pending().await
}

/// What finishes the line the socket has taken part of: the unwritten bytes up to its `\n`.
/// Empty when the socket took whole lines only.
fn rest_of_line(batch: &[u8], written: usize) -> &[u8] {
    if written == 0 || batch.get(written - 1) == Some(&b'\n') {
        return &[];
    }
    let unwritten = &batch[written..];
    let end = unwritten
        .iter()
        .position(|&b| b == b'\n')
        .map_or(unwritten.len(), |at| at + 1);
    &unwritten[..end]
}

/// Best effort, bounded by [`DRAIN_TIMEOUT`]: the client gets them only if it reads again.
async fn say_last(mut socket: OwnedWriteHalf, rest_of_line: &[u8], last: &[u8]) {
    let goodbye = async {
        socket.write_all(rest_of_line).await?;
        socket.write_all(last).await?;
        socket.shutdown().await
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, goodbye).await;
}
