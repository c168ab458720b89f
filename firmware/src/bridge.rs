//! The board as a TCP client (`connect <host> [port]`, seed 004's serial-to-TCP bridge):
//! `espchat-core`'s [`Bridge`] decides, this task moves the bytes over embassy-net.
//!
//! The console task hands lines to the bridge ([`Link::console`]); what the bridge asks for
//! that needs the socket (connect, send, close, wait and retry) goes to the bridge task as a
//! [`Request`] through a small channel, in order. The firmware has no DNS resolver: the host
//! is an IPv4 address, as the seed's examples write it.

use core::cell::RefCell;
use core::net::Ipv4Addr;

use embassy_futures::select::{Either, select};
use embassy_net::tcp::TcpSocket;
use embassy_sync::blocking_mutex::{Mutex, raw::NoopRawMutex};
use embassy_sync::channel::Channel;
use embassy_time::{Duration, Timer, with_timeout};
use espchat_core::{BoardCommand, Bridge, BridgeOutput, MAX_LINE};
use heapless::Vec;

use crate::network::{NETWORK, Network, Stacks};

/// Requests queued for the bridge task; a console line is at most one.
const REQUESTS: usize = 8;
/// A console line and its `\n`.
const SEND_MAX: usize = MAX_LINE + 1;
const SOCKET_RX: usize = 1024;
const SOCKET_TX: usize = 1024;
/// As long as a desktop's connect waits for a server that does not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that vanished (out of Wi-Fi range) is noticed by keep-alives going unanswered.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long closing may take to send what is left.
const LINGER: Duration = Duration::from_secs(2);

// A queued line is the common request; the channel's few slots hold it in place, no heap.
#[allow(clippy::large_enum_variant)]
enum Request {
    Connect(Ipv4Addr, u16),
    Send(Vec<u8, SEND_MAX>),
    Close,
    /// Wait this many seconds, then tell the bridge to try again.
    Retry(u32),
}

/// The bridge and the way to its task.
pub struct Link {
    bridge: Mutex<NoopRawMutex, RefCell<Bridge>>,
    requests: Channel<NoopRawMutex, Request, REQUESTS>,
}

impl Link {
    pub fn new() -> Self {
        Link {
            bridge: Mutex::new(RefCell::new(Bridge::new())),
            requests: Channel::new(),
        }
    }

    /// A console line: true when the bridge is on and took it.
    pub fn console(&self, line: &str) -> bool {
        self.with(|bridge, mut out| bridge.console(line, &mut out))
    }

    /// `connect` and `disconnect`.
    pub fn command(&self, command: BoardCommand) {
        match command {
            BoardCommand::Connect(target) => {
                if target.host.parse::<Ipv4Addr>().is_err() {
                    say!(
                        "connect {}: give the computer's IPv4 address (the firmware has no DNS), \
                         e.g. connect 192.168.1.20 {}",
                        target.host,
                        target.port
                    );
                    return;
                }
                self.with(|bridge, mut out| bridge.connect(target, &mut out));
            }
            BoardCommand::Disconnect => self.with(|bridge, mut out| bridge.disconnect(&mut out)),
            _ => {}
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Bridge, &mut dyn FnMut(BridgeOutput<'_>)) -> R) -> R {
        self.bridge
            .lock(|bridge| f(&mut bridge.borrow_mut(), &mut |output| self.carry(output)))
    }

    fn carry(&self, output: BridgeOutput<'_>) {
        let request = match output {
            BridgeOutput::Log(line) => {
                say!("{line}");
                return;
            }
            BridgeOutput::Connect(target) => match target.host.parse() {
                Ok(ip) => Request::Connect(ip, target.port),
                // `command` let only IPv4 addresses through.
                Err(_) => return,
            },
            BridgeOutput::Send(bytes) => match Vec::from_slice(bytes) {
                Ok(bytes) => Request::Send(bytes),
                Err(_) => return,
            },
            BridgeOutput::Close => Request::Close,
            BridgeOutput::RetryAfter(secs) => Request::Retry(secs),
        };
        if self.requests.try_send(request).is_err() {
            say!("not sent: the connection is busy, type more slowly");
        }
    }
}

/// Carries out the bridge's requests, one connection at a time.
#[embassy_executor::task]
pub async fn run(link: &'static Link, stacks: Stacks) {
    let mut rx = [0u8; SOCKET_RX];
    let mut tx = [0u8; SOCKET_TX];
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => link.requests.receive().await,
        };
        match request {
            Request::Connect(ip, port) => {
                next = connect(link, stacks, ip, port, &mut rx, &mut tx).await;
            }
            Request::Retry(secs) => {
                match select(Timer::after_secs(secs.into()), link.requests.receive()).await {
                    Either::First(()) => link.with(|bridge, mut out| bridge.retry(&mut out)),
                    // `disconnect` or another `connect` during the wait.
                    Either::Second(request) => next = Some(request),
                }
            }
            // Nothing is open.
            Request::Send(_) | Request::Close => {}
        }
    }
}

/// One attempt, and the connection it makes until it ends. Returns a request that ended it
/// (another `connect`) for the caller to carry out.
async fn connect(
    link: &Link,
    stacks: Stacks,
    ip: Ipv4Addr,
    port: u16,
    rx: &mut [u8],
    tx: &mut [u8],
) -> Option<Request> {
    let network = NETWORK.try_get().unwrap_or(Network::Down);
    let Some(stack) = stacks.serving(network) else {
        link.with(|bridge, mut out| bridge.failed("wifi is not connected yet", &mut out));
        return None;
    };
    let mut socket = TcpSocket::new(stack, rx, tx);
    socket.set_timeout(Some(CONNECT_TIMEOUT));
    let attempt = select(socket.connect((ip, port)), link.requests.receive()).await;
    match attempt {
        Either::First(Ok(())) => {}
        Either::First(Err(error)) => {
            let reason = match error {
                embassy_net::tcp::ConnectError::ConnectionReset => "connection refused",
                embassy_net::tcp::ConnectError::TimedOut => "no answer",
                embassy_net::tcp::ConnectError::NoRoute => "no route to it",
                embassy_net::tcp::ConnectError::InvalidState => "socket busy",
            };
            socket.abort();
            link.with(|bridge, mut out| bridge.failed(reason, &mut out));
            return None;
        }
        Either::Second(request) => {
            socket.abort();
            return Some(request);
        }
    }
    socket.set_timeout(None);
    socket.set_keep_alive(Some(KEEP_ALIVE));
    link.with(|bridge, mut out| bridge.connected(&mut out));
    let mut buf = [0u8; 256];
    let next = loop {
        match select(socket.read(&mut buf), link.requests.receive()).await {
            Either::First(Ok(0)) => {
                link.with(|bridge, mut out| {
                    bridge.closed("the server closed the connection", &mut out)
                });
                break None;
            }
            Either::First(Err(_)) => {
                link.with(|bridge, mut out| bridge.closed("the connection was reset", &mut out));
                break None;
            }
            Either::First(Ok(n)) => {
                link.with(|bridge, mut out| bridge.received(&buf[..n], &mut out))
            }
            Either::Second(Request::Send(bytes)) => {
                if write_all(&mut socket, &bytes).await.is_err() {
                    link.with(|bridge, mut out| {
                        bridge.closed("the connection was reset", &mut out)
                    });
                    break None;
                }
            }
            Either::Second(Request::Close) => break None,
            Either::Second(Request::Retry(_)) => {}
            Either::Second(request @ Request::Connect(..)) => break Some(request),
        }
    };
    socket.close();
    if with_timeout(LINGER, socket.flush()).await.is_err() {
        socket.abort();
    }
    next
}

async fn write_all(socket: &mut TcpSocket<'_>, mut bytes: &[u8]) -> Result<(), ()> {
    while !bytes.is_empty() {
        match socket.write(bytes).await {
            Ok(0) | Err(_) => return Err(()),
            Ok(written) => bytes = &bytes[written..],
        }
    }
    Ok(())
}
