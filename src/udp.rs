//! UDP panes, for the labs that use datagrams (seed 000 starts from `nc -u`): one datagram per
//! typed line (the line and `\n`, as `nc -u` sends it), and every datagram received shown as
//! lines in the pane.
//!
//! `espchat connect --udp` sends to one server from a socket of its own; `espchat listen
//! --udp` shares one socket among its peers: each address that sends a datagram becomes a
//! pane, as an accepted connection does, and what is typed there goes back to that address.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::chat::{ChatEvent, ChatPane, PaneCommand, PaneId, describe};
use crate::event::Event;
use crate::listen::{Accepted, ListenError, ListenEvent, Listening, Parked};
use crate::serial::decode::ConsoleDecoder;

/// The largest UDP payload over IPv4: longer lines are cut to it, and the pane says so.
pub const MAX_DATAGRAM: usize = 65_507;
/// Datagrams from one peer that wait for its pane; more are dropped, as a full socket would.
const INBOX: usize = 256;
/// Peers turned away that are remembered, so each is said once while the listener is full.
const REFUSED_KEPT: usize = 64;

/// A peer of a UDP listener, as its pane gets it: the shared socket, the peer's address, and
/// the datagrams it sends.
#[derive(Debug)]
pub struct UdpPeer {
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    inbox: mpsc::Receiver<Bytes>,
    permit: OwnedSemaphorePermit,
}

/// Where a pane's datagrams go and come from.
enum Side {
    /// Its own socket, connected to the server (`connect --udp`), and a datagram's room.
    Own(UdpSocket, Vec<u8>),
    /// A listener's socket, and the datagrams of one peer.
    Shared {
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
        inbox: mpsc::Receiver<Bytes>,
    },
}

/// A pane that sends datagrams to `host:port` (resolved once, at the start).
pub fn spawn_connected(
    id: PaneId,
    host: String,
    port: u16,
    events: mpsc::Sender<Event>,
) -> ChatPane {
    let (pane, commands) = ChatPane::channel();
    tokio::spawn(async move {
        let addr = format!("{host}:{port}");
        let side = match own_socket(&addr).await {
            Ok(socket) => Side::Own(socket, vec![0u8; MAX_DATAGRAM + 1]),
            Err(error) => {
                let reason = format!("cannot send to {addr}: {}", describe(&error));
                let _ = events
                    .send(Event::Chat(id, ChatEvent::Disconnected { reason }))
                    .await;
                closed(id, commands, &events).await;
                return;
            }
        };
        let addr = format!("{addr} (udp)");
        if events
            .send(Event::Chat(id, ChatEvent::Connected { addr }))
            .await
            .is_ok()
        {
            run(id, side, commands, &events).await;
        }
    });
    pane
}

/// A pane for a listener's peer.
pub fn spawn_peer(id: PaneId, peer: UdpPeer, events: mpsc::Sender<Event>) -> ChatPane {
    let (pane, commands) = ChatPane::channel();
    tokio::spawn(async move {
        let UdpPeer {
            socket,
            peer,
            inbox,
            permit,
        } = peer;
        let accepted = ChatEvent::Accepted {
            peer: format!("{peer} (udp)"),
        };
        if events.send(Event::Chat(id, accepted)).await.is_ok() {
            let side = Side::Shared {
                socket,
                peer,
                inbox,
            };
            run(id, side, commands, &events).await;
        }
        drop(permit);
    });
    pane
}

async fn own_socket(addr: &str) -> io::Result<UdpSocket> {
    let target = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for it"))?;
    let any: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// Moves datagrams both ways until the pane is closed.
async fn run(
    id: PaneId,
    mut side: Side,
    mut commands: mpsc::Receiver<PaneCommand>,
    events: &mpsc::Sender<Event>,
) {
    let emit = |event| events.send(Event::Chat(id, event));
    loop {
        let received = async {
            match &mut side {
                Side::Own(socket, buf) => socket
                    .recv(buf)
                    .await
                    .map(|n| Some(Bytes::copy_from_slice(&buf[..n]))),
                // The listener received it already.
                Side::Shared { inbox, .. } => Ok(inbox.recv().await),
            }
        };
        tokio::select! {
            received = received => match received {
                Ok(Some(bytes)) => {
                    if !show(&bytes, &emit).await {
                        return;
                    }
                }
                // The listener is gone.
                Ok(None) => break,
                // A connected UDP socket hears the ICMP "port unreachable" of an earlier send.
                Err(error) => {
                    let reason = match error.kind() {
                        io::ErrorKind::ConnectionRefused => {
                            "nothing listens there (port unreachable); still sending".to_owned()
                        }
                        _ => describe(&error),
                    };
                    if emit(ChatEvent::Note(reason)).await.is_err() {
                        return;
                    }
                }
            },
            command = commands.recv() => match command {
                Some(PaneCommand::Send(line)) => {
                    let mut datagram = line.into_bytes();
                    datagram.push(b'\n');
                    if datagram.len() > MAX_DATAGRAM {
                        datagram.truncate(MAX_DATAGRAM);
                        let note = format!(
                            "line cut to {MAX_DATAGRAM} bytes, the most a UDP datagram holds"
                        );
                        if emit(ChatEvent::Note(note)).await.is_err() {
                            return;
                        }
                    }
                    let sent = match &side {
                        Side::Own(socket, _) => socket.send(&datagram).await,
                        Side::Shared { socket, peer, .. } => socket.send_to(&datagram, *peer).await,
                    };
                    if let Err(error) = sent {
                        let note = format!("not sent: {}", describe(&error));
                        if emit(ChatEvent::Note(note)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(PaneCommand::Retarget { .. }) => {}
                Some(PaneCommand::Close) | None => break,
            },
        }
    }
    let _ = emit(ChatEvent::Closed).await;
}

/// One datagram as lines: its last line ends with it, newline or not.
async fn show<F, Fut>(bytes: &[u8], emit: &F) -> bool
where
    F: Fn(ChatEvent) -> Fut,
    Fut: std::future::Future<Output = Result<(), mpsc::error::SendError<Event>>>,
{
    let mut decoder = ConsoleDecoder::new(ConsoleDecoder::DEFAULT_MAX_LINE);
    let mut outputs = Vec::new();
    decoder.feed(bytes, &mut |output| outputs.push(output));
    decoder.flush(&mut |output| outputs.push(output));
    for output in outputs {
        if emit(ChatEvent::Output(output)).await.is_err() {
            return false;
        }
    }
    true
}

/// Reports a pane that stopped before it began.
async fn closed(
    id: PaneId,
    mut commands: mpsc::Receiver<PaneCommand>,
    events: &mpsc::Sender<Event>,
) {
    commands.close();
    while let Ok(command) = commands.try_recv() {
        if let PaneCommand::Send(line) = command {
            let dropped = ChatEvent::Dropped {
                line,
                reason: "closed before it could be sent",
            };
            let _ = events.send(Event::Chat(id, dropped)).await;
        }
    }
    let _ = events.send(Event::Chat(id, ChatEvent::Closed)).await;
}

/// A bound UDP socket, not yet receiving.
pub struct UdpListener {
    socket: std::net::UdpSocket,
    addr: SocketAddr,
}

impl UdpListener {
    /// Binds at once, so that a port in use is said before anything starts.
    pub fn bind(addr: SocketAddr) -> Result<UdpListener, ListenError> {
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|error| ListenError::new(addr, error))?;
        let addr = socket
            .local_addr()
            .map_err(|error| ListenError::Other(addr, error))?;
        socket
            .set_nonblocking(true)
            .map_err(|error| ListenError::Other(addr, error))?;
        Ok(UdpListener { socket, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts receiving: each new peer (at most `max` at once) is reported as accepted.
    pub fn start(self, max: usize, events: mpsc::Sender<Event>) -> io::Result<Listening> {
        let socket = Arc::new(UdpSocket::from_std(self.socket)?);
        let parked: Parked = Arc::default();
        let task = tokio::spawn(receive(
            socket,
            Arc::new(Semaphore::new(max)),
            max,
            parked.clone(),
            events,
        ));
        Ok(Listening::new(self.addr, parked, task))
    }
}

async fn receive(
    socket: Arc<UdpSocket>,
    places: Arc<Semaphore>,
    max: usize,
    parked: Parked,
    events: mpsc::Sender<Event>,
) {
    let mut peers: HashMap<SocketAddr, mpsc::Sender<Bytes>> = HashMap::new();
    let mut token = 0;
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    // Peers turned away are said once each, until a place frees.
    let mut refused: Vec<SocketAddr> = Vec::new();
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // An ICMP error for an earlier send_to (the peer went away): not this socket's end.
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(error) => {
                let problem = ListenEvent::Problem(format!("cannot receive: {error}"));
                if events.send(Event::Listen(problem)).await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut bytes = Bytes::copy_from_slice(&buf[..n]);
        if let Some(inbox) = peers.get(&peer) {
            match inbox.try_send(bytes) {
                // A pane that does not keep up loses datagrams, as a full socket buffer would.
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => continue,
                // Its pane closed: the peer is new again.
                Err(mpsc::error::TrySendError::Closed(returned)) => bytes = returned,
            }
        }
        let place = places.clone().try_acquire_owned().ok();
        let event = match place {
            Some(permit) => {
                // Peers whose panes closed and who sent nothing since go.
                peers.retain(|_, inbox| !inbox.is_closed());
                let (sender, inbox) = mpsc::channel(INBOX);
                let _ = sender.try_send(bytes);
                peers.insert(peer, sender);
                token += 1;
                let accepted = Accepted::Udp(UdpPeer {
                    socket: socket.clone(),
                    peer,
                    inbox,
                    permit,
                });
                parked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(token, accepted);
                refused.retain(|refused| *refused != peer);
                ListenEvent::Accepted { token, peer }
            }
            None if refused.contains(&peer) => continue,
            None => {
                if refused.len() == REFUSED_KEPT {
                    refused.remove(0);
                }
                refused.push(peer);
                ListenEvent::Refused { peer, max }
            }
        };
        if events.send(Event::Listen(event)).await.is_err() {
            return;
        }
    }
}
