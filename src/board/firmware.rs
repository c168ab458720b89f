//! The espchat firmware as the virtual board runs it: the boot log, the console, and a tokio
//! TCP server on 127.0.0.1 driving `espchat-core`, the code the real firmware runs.
//!
//! Slow clients: at most [`SEND_BUFFER_BYTES`] may wait for a client, on top of a small kernel
//! send buffer (like the few KiB an embassy-net socket has). A client that stops reading until
//! that is full is disconnected, and everyone sees `Client N disconnected`. The others never
//! wait for it, and no client ever misses a line without knowing it.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use espchat_core::{
    BoardCommand, ClientId, Disconnect, Full, LineReader, MAX_CLIENTS, Output, Server,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::BoardError;
use super::pty::Pty;

/// Bytes waiting for one client (beyond the kernel's buffer) before it counts as too slow.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;
/// Kernel send buffer per client. Small, like a microcontroller's socket buffer, so a client
/// that stops reading is noticed after a few hundred lines rather than megabytes.
const SOCKET_SEND_BUFFER: usize = 16 * 1024;
/// How long a closing connection may take to deliver what is queued for it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Console lines waiting for the pty; past this (nobody reading the port) lines are dropped.
const CONSOLE_QUEUE_LINES: usize = 1024;

/// The simulated network the board "joins" at boot.
pub const DEFAULT_SSID: &str = "espchat-virtual";

const ROM_BANNER: &[&str] = &["ESP-ROM:esp32c3-api1-20210207", "Build:Feb  7 2021"];
const ROM_BOOT: &[&str] = &[
    "SPIWP:0xee",
    "mode:DIO, clock div:1",
    "load:0x3fcd5820,len:0x1714",
    "load:0x403cc710,len:0x968",
    "load:0x403ce710,len:0x2f9c",
    "entry 0x403cc710",
];
const BOOTLOADER: &[&str] = &[
    "boot: ESP-IDF v5.3 2nd stage bootloader",
    "boot: chip revision: v0.4",
    "boot.esp32c3: SPI Speed      : 40MHz",
    "boot.esp32c3: SPI Mode       : DIO",
    "boot.esp32c3: SPI Flash Size : 4MB",
    "boot: Partition Table:",
    "boot: ## Label            Usage          Type ST Offset   Length",
    "boot:  0 nvs              WiFi data        01 02 00009000 00006000",
    "boot:  1 phy_init         RF data          01 01 0000f000 00001000",
    "boot:  2 factory          factory app      00 00 00010000 003f0000",
    "boot: End of partition table",
    "boot: Loaded app from partition at offset 0x10000",
];

/// Why the chip (re)started, as the ROM prints it.
#[derive(Clone, Copy)]
enum Reset {
    PowerOn,
    Software,
}

/// What a connection task reports.
enum NetEvent {
    Data {
        id: ClientId,
        token: u64,
        bytes: Bytes,
    },
    Closed {
        id: ClientId,
        token: u64,
    },
}

struct Connection {
    /// Tells this connection's events apart from those of an earlier client with the same id.
    token: u64,
    queue: mpsc::UnboundedSender<Bytes>,
    /// Bytes in `queue` and not yet written to the socket: bounded by [`SEND_BUFFER_BYTES`].
    queued: Arc<AtomicUsize>,
    reader: AbortHandle,
    writer: AbortHandle,
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
}

/// An `Output` of the core, owned so it can be carried out after the core call returns.
enum Action {
    Send(ClientId, Bytes),
    Close(ClientId),
    Log(String),
}

/// The serial console as the firmware sees it: lines out, with ESP-IDF style prefixes.
#[derive(Clone)]
pub struct Console {
    queue: mpsc::Sender<Bytes>,
    dropped: Arc<AtomicU64>,
    boot: Instant,
}

impl Console {
    fn raw(&self, line: &str) {
        self.push(format!("{line}\r\n"));
    }

    /// An ESP-IDF style info line: `I (ms) tag: text`.
    fn info(&self, tag: &str, text: impl fmt::Display) {
        let ms = self.boot.elapsed().as_millis();
        self.push(format!("I ({ms}) {tag}: {text}\r\n"));
    }

    fn log(&self, text: impl fmt::Display) {
        self.info("espchat", text);
    }

    fn push(&self, line: String) {
        if self.queue.try_send(Bytes::from(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the console tasks on the pty; returns the console handle and the stream of bytes
/// clients type.
pub fn console(pty: &Arc<Pty>) -> (Console, mpsc::Receiver<Bytes>) {
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(CONSOLE_QUEUE_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    let writer_pty = Arc::clone(pty);
    let writer_dropped = Arc::clone(&dropped);
    tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            let lost = writer_dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                let notice = format!(
                    "[virtual board: {lost} console lines dropped while nobody read the port]\r\n"
                );
                if writer_pty.write_all(notice.as_bytes()).await.is_err() {
                    break;
                }
            }
            if let Err(error) = writer_pty.write_all(&line).await {
                tracing::warn!("serial console write failed: {error}");
                break;
            }
        }
    });

    let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
    let reader_pty = Arc::clone(pty);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            match reader_pty.read(&mut buf).await {
                Ok(0) => continue,
                Ok(n) => {
                    if in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!("serial console read failed: {error}");
                    break;
                }
            }
        }
    });

    let console = Console {
        queue: out_tx,
        dropped,
        boot: Instant::now(),
    };
    (console, in_rx)
}

/// The firmware's state between events.
pub struct Firmware {
    server: Server,
    connections: [Option<Connection>; MAX_CLIENTS],
    next_token: u64,
    console: Console,
    console_line: LineReader,
    listener: Option<TcpListener>,
    port: u16,
    ssid: String,
    net_tx: mpsc::Sender<NetEvent>,
    net_rx: mpsc::Receiver<NetEvent>,
}

impl Firmware {
    /// Binds the chat port (0: a free one, kept across reboots) and prints the power-on boot.
    pub async fn start(console: Console, tcp_port: u16) -> Result<Firmware, BoardError> {
        let listener = bind(tcp_port).await?;
        let port = listener
            .local_addr()
            .map_err(|source| BoardError::Bind {
                port: tcp_port,
                source,
            })?
            .port();
        let (net_tx, net_rx) = mpsc::channel(64);
        let mut firmware = Firmware {
            server: Server::new(),
            connections: Default::default(),
            next_token: 0,
            console,
            console_line: LineReader::new(),
            listener: Some(listener),
            port,
            ssid: DEFAULT_SSID.to_owned(),
            net_tx,
            net_rx,
        };
        firmware.boot(Reset::PowerOn);
        Ok(firmware)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `stop` fires or the console goes away.
    pub async fn run(
        mut self,
        mut console_in: mpsc::Receiver<Bytes>,
        mut stop: oneshot::Receiver<()>,
    ) {
        loop {
            tokio::select! {
                _ = &mut stop => break,
                bytes = console_in.recv() => match bytes {
                    Some(bytes) => self.console_input(&bytes).await,
                    None => break,
                },
                accepted = accept(&self.listener) => match accepted {
                    Ok((stream, peer)) => self.accept(stream, peer),
                    Err(error) => tracing::warn!("accept failed: {error}"),
                },
                Some(event) = self.net_rx.recv() => self.net_event(event),
            }
            // Let the connection tasks write what this event queued before taking the next:
            // a client is slow when it does not read, not when this loop runs ahead of it.
            tokio::task::yield_now().await;
        }
        for connection in self.connections.iter_mut().filter_map(Option::take) {
            connection.close(false);
        }
    }

    fn boot(&mut self, reset: Reset) {
        let console = &self.console;
        for line in ROM_BANNER {
            console.raw(line);
        }
        console.raw(match reset {
            Reset::PowerOn => "rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)",
            Reset::Software => "rst:0xc (RTC_SW_CPU_RST),boot:0xc (SPI_FAST_FLASH_BOOT)",
        });
        if let Reset::Software = reset {
            console.raw("Saved PC:0x40381a4e");
        }
        for line in ROM_BOOT {
            console.raw(line);
        }
        for line in BOOTLOADER {
            let (tag, text) = line.split_once(": ").unwrap_or(("boot", line));
            console.info(tag, text);
        }
        console.log(format_args!(
            "espchat {} on a virtual ESP32-C3 (chat server: espchat-core)",
            env!("CARGO_PKG_VERSION")
        ));
        self.join_wifi();
    }

    /// The virtual board's network is always there: "joining" it prints what a real board
    /// prints once DHCP answers.
    fn join_wifi(&self) {
        self.console
            .log(format_args!("wifi connecting to \"{}\"", self.ssid));
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

    async fn reboot(&mut self) {
        for connection in self.connections.iter_mut().filter_map(Option::take) {
            connection.close(false);
        }
        self.server = Server::new();
        self.console_line = LineReader::new();
        // A rebooting chip refuses connections until its server is up again.
        self.listener = None;
        self.console.boot = Instant::now();
        self.listener = match bind(self.port).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                self.console.log(format_args!("cannot listen: {error}"));
                None
            }
        };
        self.boot(Reset::Software);
    }

    async fn console_input(&mut self, bytes: &[u8]) {
        // Terminals send CR for Enter; the line reader ends lines at LF.
        for chunk in bytes.split_inclusive(|&b| b == b'\r') {
            let mut input = chunk;
            let cr = input.last() == Some(&b'\r');
            if cr {
                input = &input[..input.len() - 1];
            }
            let mut lines = Vec::new();
            while let Some(line) = self.console_line.next_line(&mut input) {
                lines.push(line);
            }
            if cr {
                let mut end: &[u8] = b"\n";
                lines.extend(self.console_line.next_line(&mut end));
            }
            for line in lines {
                self.console_command(&line.text).await;
            }
        }
    }

    async fn console_command(&mut self, line: &str) {
        let mut actions = Vec::new();
        let command = self.server.console(line, &mut collect(&mut actions));
        self.apply(actions);
        match command {
            Some(BoardCommand::Wifi(credentials)) => {
                self.ssid = credentials.ssid.as_str().to_owned();
                self.join_wifi();
            }
            Some(BoardCommand::Led(led)) => {
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
            Some(BoardCommand::Reboot) => self.reboot().await,
            None => {}
        }
    }

    fn accept(&mut self, stream: TcpStream, peer: SocketAddr) {
        let mut actions = Vec::new();
        match self.server.connect(peer, &mut collect(&mut actions)) {
            Ok(id) => {
                let token = self.next_token;
                self.next_token += 1;
                let connection = spawn_connection(stream, id, token, self.net_tx.clone());
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

    fn net_event(&mut self, event: NetEvent) {
        let (id, token) = match &event {
            NetEvent::Data { id, token, .. } | NetEvent::Closed { id, token } => (*id, *token),
        };
        let current = self.connections[usize::from(id.get()) - 1]
            .as_ref()
            .is_some_and(|connection| connection.token == token);
        if !current {
            return;
        }
        let mut actions = Vec::new();
        match event {
            NetEvent::Data { bytes, .. } => {
                self.server.receive(id, &bytes, &mut collect(&mut actions));
            }
            NetEvent::Closed { .. } => {
                self.server
                    .disconnect(id, Disconnect::Closed, &mut collect(&mut actions));
            }
        }
        self.apply(actions);
    }

    /// Carries out the core's outputs; disconnects clients whose queue overflowed, which
    /// produces more outputs, until none are left.
    fn apply(&mut self, mut actions: Vec<Action>) {
        // Too-slow clients are dropped without delivering their backlog.
        let mut dropped = Vec::new();
        loop {
            let mut too_slow = Vec::new();
            let mut gone = Vec::new();
            for action in actions.drain(..) {
                match action {
                    Action::Send(id, bytes) => {
                        let Some(connection) = &self.connections[usize::from(id.get()) - 1] else {
                            continue;
                        };
                        let len = bytes.len();
                        if connection.queued.load(Ordering::Relaxed) + len > SEND_BUFFER_BYTES {
                            too_slow.push(id);
                        } else if connection.queue.send(bytes).is_ok() {
                            connection.queued.fetch_add(len, Ordering::Relaxed);
                        } else {
                            gone.push(id);
                        }
                    }
                    Action::Close(id) => {
                        if let Some(connection) = self.connections[usize::from(id.get()) - 1].take()
                        {
                            connection.close(!dropped.contains(&id));
                        }
                    }
                    Action::Log(line) => self.console.log(line),
                }
            }
            if too_slow.is_empty() && gone.is_empty() {
                return;
            }
            dropped.extend_from_slice(&too_slow);
            let mut out = collect(&mut actions);
            for id in too_slow {
                self.server.disconnect(id, Disconnect::TooSlow, &mut out);
            }
            for id in gone {
                self.server.disconnect(id, Disconnect::Closed, &mut out);
            }
        }
    }
}

/// An output sink that keeps owned copies; a broadcast shares one buffer between clients.
fn collect(actions: &mut Vec<Action>) -> impl FnMut(Output<'_>) + '_ {
    let mut last: Option<Bytes> = None;
    move |output| {
        let action = match output {
            Output::Send { to, bytes } => {
                let shared = match &last {
                    Some(previous) if previous.as_ref() == bytes => previous.clone(),
                    _ => Bytes::copy_from_slice(bytes),
                };
                last = Some(shared.clone());
                Action::Send(to, shared)
            }
            Output::Close(id) => Action::Close(id),
            // The virtual board has no LED to drive; the core's `led on|off` log line shows it.
            Output::Led(_) => return,
            Output::Log(line) => Action::Log(line.to_owned()),
        };
        actions.push(action);
    }
}

async fn bind(port: u16) -> Result<TcpListener, BoardError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|source| BoardError::Bind { port, source })
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
    events: mpsc::Sender<NetEvent>,
) -> Connection {
    let _ = stream.set_nodelay(true);
    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SOCKET_SEND_BUFFER);
    let (read_half, write_half) = stream.into_split();
    let (queue, lines) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let reader = tokio::spawn(read_client(read_half, id, token, events.clone()));
    let writer = tokio::spawn(write_client(
        write_half,
        lines,
        Arc::clone(&queued),
        id,
        token,
        events,
    ));
    Connection {
        token,
        queue,
        queued,
        reader: reader.abort_handle(),
        writer: writer.abort_handle(),
    }
}

async fn read_client(
    mut socket: OwnedReadHalf,
    id: ClientId,
    token: u64,
    events: mpsc::Sender<NetEvent>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let event = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => NetEvent::Closed { id, token },
            Ok(n) => NetEvent::Data {
                id,
                token,
                bytes: Bytes::copy_from_slice(&buf[..n]),
            },
        };
        let closed = matches!(event, NetEvent::Closed { .. });
        // A full channel holds this reader back: a flooding client waits, the others do not.
        if events.send(event).await.is_err() || closed {
            return;
        }
    }
}

async fn write_client(
    mut socket: OwnedWriteHalf,
    mut lines: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    id: ClientId,
    token: u64,
    events: mpsc::Sender<NetEvent>,
) {
    let mut batch = Vec::with_capacity(16 * 1024);
    while let Some(line) = lines.recv().await {
        batch.clear();
        batch.extend_from_slice(&line);
        while batch.len() < 16 * 1024 {
            match lines.try_recv() {
                Ok(line) => batch.extend_from_slice(&line),
                Err(_) => break,
            }
        }
        if socket.write_all(&batch).await.is_err() {
            let _ = events.send(NetEvent::Closed { id, token }).await;
            return;
        }
        queued.fetch_sub(batch.len(), Ordering::Relaxed);
    }
    let _ = socket.shutdown().await;
}
