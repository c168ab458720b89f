//! The computer as the server, for labs where the board is the client (seed 002's MicroPython
//! client, seed 004's tcp_client): a TCP listener whose accepted connections become chat panes.
//!
//! The listener task only accepts. Each accepted connection is parked under a token and
//! reported ([`ListenEvent::Accepted`]); the session core numbers it as a pane and the actors
//! adopt it ([`Listening::take`]), so a pane is numbered in one place whether it connected out
//! or was accepted. At most `max` connections are open at once: a permit travels with each
//! into its pane, and a connection beyond that gets one line saying so and is closed.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::event::Event;
use crate::udp::UdpPeer;

/// The port of the classic client examples (seed 002's MicroPython client, Processing's server).
pub const DEFAULT_PORT: u16 = 8888;
/// Connections open at once by default; the rest are turned away.
pub const DEFAULT_MAX: usize = 64;
/// After an accept error (too many open files), the pause before the next accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long a turned-away client may take to be told so.
const REFUSE_WRITE: Duration = Duration::from_millis(500);

/// What the listener reports.
#[derive(Debug)]
pub enum ListenEvent {
    /// A connection was accepted and waits under `token` for its pane.
    Accepted { token: u64, peer: SocketAddr },
    /// A connection was turned away: `max` connections are open.
    Refused { peer: SocketAddr, max: usize },
    /// Accepting failed (the listener goes on after a pause).
    Problem(String),
}

/// What a listener hands to a pane: a TCP connection, or a UDP peer.
#[derive(Debug)]
pub enum Accepted {
    Tcp(TcpAccepted),
    Udp(UdpPeer),
}

/// An accepted connection, and its place among the `max` open at once.
#[derive(Debug)]
pub struct TcpAccepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub permit: OwnedSemaphorePermit,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "cannot listen on {0}: the port is in use (another `espchat listen`, `nc -l` or a \
         server): choose another, e.g. `espchat listen {next}`, or 0 for any free one",
        next = next_port(.0)
    )]
    InUse(SocketAddr),
    #[error(
        "cannot listen on {0}: ports below 1024 need administrator rights: choose one from \
         1024 up, e.g. {DEFAULT_PORT}"
    )]
    Privileged(SocketAddr),
    #[error(
        "cannot listen on {0}: {1} is not an address of this computer: leave the host out \
         (every address) or name one that `ip addr` lists"
    )]
    NotHere(SocketAddr, IpAddr),
    #[error("cannot listen on {0}: {1}")]
    Other(SocketAddr, io::Error),
}

impl ListenError {
    /// Why binding `addr` failed, with the fix.
    pub fn new(addr: SocketAddr, error: io::Error) -> ListenError {
        match error.kind() {
            io::ErrorKind::AddrInUse => ListenError::InUse(addr),
            io::ErrorKind::PermissionDenied if addr.port() < 1024 => ListenError::Privileged(addr),
            io::ErrorKind::AddrNotAvailable => ListenError::NotHere(addr, addr.ip()),
            _ => ListenError::Other(addr, error),
        }
    }
}

fn next_port(addr: &SocketAddr) -> u16 {
    addr.port().checked_add(1).unwrap_or(DEFAULT_PORT)
}

/// A bound listener, not yet accepting.
pub struct Listener {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// Binds at once, so that a port in use is said before anything starts.
    pub fn bind(addr: SocketAddr) -> Result<Listener, ListenError> {
        let listener =
            std::net::TcpListener::bind(addr).map_err(|error| ListenError::new(addr, error))?;
        let addr = listener
            .local_addr()
            .map_err(|error| ListenError::Other(addr, error))?;
        listener
            .set_nonblocking(true)
            .map_err(|error| ListenError::Other(addr, error))?;
        Ok(Listener { listener, addr })
    }

    /// Where it listens (the port chosen, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts accepting, at most `max` connections open at once; reports to `events`. Needs
    /// a tokio runtime.
    pub fn start(self, max: usize, events: mpsc::Sender<Event>) -> io::Result<Listening> {
        let listener = TcpListener::from_std(self.listener)?;
        let parked: Parked = Arc::default();
        let task = tokio::spawn(accept(
            listener,
            Arc::new(Semaphore::new(max)),
            max,
            parked.clone(),
            events,
        ));
        Ok(Listening::new(self.addr, parked, task))
    }
}

pub(crate) type Parked = Arc<Mutex<HashMap<u64, Accepted>>>;

/// A listener that accepts; it stops when dropped.
pub struct Listening {
    addr: SocketAddr,
    parked: Parked,
    task: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// A listener's task, with the map where it parks what it accepts.
    pub(crate) fn new(
        addr: SocketAddr,
        parked: Parked,
        task: tokio::task::JoinHandle<()>,
    ) -> Listening {
        Listening { addr, parked, task }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connection accepted under `token`, for its pane (once).
    pub fn take(&self, token: u64) -> Option<Accepted> {
        self.parked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    places: Arc<Semaphore>,
    max: usize,
    parked: Parked,
    events: mpsc::Sender<Event>,
) {
    let mut token = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                let problem = ListenEvent::Problem(format!("cannot accept a connection: {error}"));
                if events.send(Event::Listen(problem)).await.is_err() {
                    return;
                }
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let event = match places.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = stream.set_nodelay(true);
                token += 1;
                parked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        token,
                        Accepted::Tcp(TcpAccepted {
                            stream,
                            peer,
                            permit,
                        }),
                    );
                ListenEvent::Accepted { token, peer }
            }
            Err(_) => {
                tokio::spawn(turn_away(stream, max));
                ListenEvent::Refused { peer, max }
            }
        };
        if events.send(Event::Listen(event)).await.is_err() {
            return;
        }
    }
}

/// Tells a client there is no place for it, and closes.
async fn turn_away(mut stream: TcpStream, max: usize) {
    let line = format!("espchat: full ({max} connections open), try again later\r\n");
    let _ = tokio::time::timeout(REFUSE_WRITE, stream.write_all(line.as_bytes())).await;
}

/// An address of this computer and the interface that has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddress {
    pub ip: IpAddr,
    pub interface: String,
}

/// The addresses a board on the network can reach a listener bound to `bound` at: the bound
/// address itself, or for an unspecified one (0.0.0.0, ::) every non-loopback address of its
/// family (IPv4 also for `::`, which takes both), link-local IPv6 ones last.
pub fn reachable_at(bound: IpAddr) -> io::Result<Vec<HostAddress>> {
    if !bound.is_unspecified() {
        return Ok(vec![HostAddress {
            ip: bound,
            interface: interface_of(bound)?.unwrap_or_default(),
        }]);
    }
    let mut found: Vec<HostAddress> = if_addrs::get_if_addrs()?
        .into_iter()
        .filter(|interface| !interface.is_loopback() && interface.is_oper_up())
        .filter(|interface| bound.is_ipv6() || interface.ip().is_ipv4())
        .map(|interface| HostAddress {
            ip: interface.ip(),
            interface: interface.name,
        })
        .collect();
    found.sort_by_key(|address| (address.ip.is_ipv6(), is_link_local(address.ip)));
    found.dedup();
    Ok(found)
}

fn interface_of(ip: IpAddr) -> io::Result<Option<String>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .find(|interface| interface.ip() == ip)
        .map(|interface| interface.name))
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => ip.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// The address of this computer that a board at `board` reaches: loopback for a board on
/// this computer (the virtual board), else the IPv4 address of the interface whose subnet
/// holds the board's address.
pub fn address_for(board: Ipv4Addr) -> io::Result<Option<Ipv4Addr>> {
    if board.is_loopback() {
        return Ok(Some(Ipv4Addr::LOCALHOST));
    }
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .find_map(|interface| match interface.addr {
            if_addrs::IfAddr::V4(v4) => {
                let mask = u32::from(v4.netmask);
                (u32::from(v4.ip) & mask == u32::from(board) & mask && !v4.ip.is_loopback())
                    .then_some(v4.ip)
            }
            if_addrs::IfAddr::V6(_) => None,
        }))
}

/// `listen`'s address: `PORT`, `HOST:PORT`, `[V6]:PORT` or `HOST` (then the default port).
/// An address without a host listens on every IPv4 address (0.0.0.0).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let bad =
        || format!("{text:?} is not [HOST:]PORT (e.g. 8888, 0.0.0.0:8888, 127.0.0.1:0, [::]:8888)");
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let host = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    host.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse_as_the_issue_writes_them() {
        for (text, expected) in [
            ("8888", "0.0.0.0:8888"),
            ("0", "0.0.0.0:0"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:9000", "[::1]:9000"),
            ("[::]", "[::]:8888"),
            ("192.168.1.20", "192.168.1.20:8888"),
        ] {
            assert_eq!(parse_listen_addr(text).unwrap().to_string(), expected);
        }
        for bad in ["", "host:1", "70000", "1.2.3.4:70000", ":"] {
            assert!(parse_listen_addr(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[tokio::test]
    async fn a_port_in_use_is_named_with_a_fix() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = Listener::bind(addr)
            .err()
            .expect("the port is taken")
            .to_string();
        assert!(error.contains(&addr.to_string()), "{error}");
        assert!(error.contains("in use"), "{error}");
        assert!(error.contains("espchat listen"), "{error}");
    }

    #[tokio::test]
    async fn connections_beyond_the_most_are_told_and_closed() {
        use tokio::io::AsyncReadExt as _;
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr();
        let (events, mut event_rx) = mpsc::channel(16);
        let listening = listener.start(2, events).unwrap();
        let mut clients = Vec::new();
        let mut panes = Vec::new();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).await.unwrap());
            let event = event_rx.recv().await.unwrap();
            let Event::Listen(ListenEvent::Accepted { token, .. }) = event else {
                panic!("not accepted: {event:?}");
            };
            panes.push(listening.take(token).expect("parked"));
            assert!(matches!(panes.last(), Some(Accepted::Tcp(_))));
        }
        let mut third = TcpStream::connect(addr).await.unwrap();
        let event = event_rx.recv().await.unwrap();
        assert!(
            matches!(event, Event::Listen(ListenEvent::Refused { max: 2, .. })),
            "{event:?}"
        );
        let mut told = String::new();
        tokio::time::timeout(Duration::from_secs(10), third.read_to_string(&mut told))
            .await
            .expect("closed")
            .unwrap();
        assert_eq!(
            told,
            "espchat: full (2 connections open), try again later\r\n"
        );
        // A pane that ends gives its place back.
        panes.pop();
        let _fourth = TcpStream::connect(addr).await.unwrap();
        let event = event_rx.recv().await.unwrap();
        let Event::Listen(ListenEvent::Accepted { token, .. }) = event else {
            panic!("not accepted after a place was freed: {event:?}");
        };
        assert!(listening.take(token).is_some());
        assert!(listening.take(token).is_none(), "taken twice");
    }

    #[test]
    fn this_computer_is_reachable_on_its_own_addresses() {
        let loopback = reachable_at(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        assert_eq!(loopback.len(), 1);
        assert_eq!(loopback[0].ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(!loopback[0].interface.is_empty(), "{loopback:?}");
        for address in reachable_at(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).unwrap() {
            assert!(
                address.ip.is_ipv4() && !address.ip.is_loopback(),
                "{address:?}"
            );
        }
        assert_eq!(
            address_for(Ipv4Addr::new(127, 0, 0, 1)).unwrap(),
            Some(Ipv4Addr::LOCALHOST)
        );
    }
}
