//! A chat pane: one TCP connection to the board's chat server, kept alive.
//!
//! The pane owns its socket in one task. Lines the user types while it is disconnected wait in
//! a bounded queue and go out, in order, once it is connected again; when the queue is full the
//! pane says which line it dropped. When the server closes or resets the connection (a board
//! reboot), the pane reconnects with capped exponential backoff and jitter.
//!
//! Panes opened together ([`PaneLine`]) connect in order, each once the one before it is
//! connected: the server numbers clients in the order it accepts them, and the lab's rule
//! (client 1 switches the LED on, client 2 off) needs pane N to be client N again after every
//! reboot, not whichever pane's jitter ran out first.
//!
//! A pane may also hold a connection that a listener accepted (`espchat listen`, the board as
//! the client): it serves that one connection and closes when the peer does.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::event::Event;
use crate::listen::{Accepted, TcpAccepted};
use crate::serial::decode::{ConsoleDecoder, ConsoleOutput};

/// Lines kept while disconnected.
pub const QUEUE_LINES: usize = 256;
/// How the chat server turns a client away when all its places are taken (docs/contract.md §3).
const SERVER_FULL: &str = "server full";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// After the last line is sent on close, how long to wait for the server's last words.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a pane waits for the one before it to connect before it goes ahead anyway: a pane
/// that cannot connect must not keep the others out.
const TURN_WAIT: Duration = Duration::from_secs(3);

/// Panes are numbered from 1, as the headless `@N` commands and `chatN` sources are.
pub type PaneId = usize;

#[derive(Debug, PartialEq, Eq)]
pub enum PaneCommand {
    Send(String),
    /// Connect to another address (the board got a new IP).
    Retarget {
        host: String,
        port: u16,
    },
    /// Send what is queued, close, and stop.
    Close,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ChatEvent {
    Connecting {
        addr: String,
    },
    Connected {
        addr: String,
    },
    /// A listener accepted this connection from `peer`; the pane ends with it.
    Accepted {
        peer: String,
    },
    Output(ConsoleOutput),
    /// The connection ended or could not be made.
    Disconnected {
        reason: String,
    },
    Reconnecting {
        after: Duration,
    },
    /// Something the user should know about the pane (a line cut to fit a datagram).
    Note(String),
    /// A typed line that will not be sent.
    Dropped {
        line: String,
        reason: &'static str,
    },
    /// The pane stopped after [`PaneCommand::Close`].
    Closed,
}

#[derive(Clone)]
pub struct ChatPane {
    commands: mpsc::Sender<PaneCommand>,
}

/// Opens panes that connect in the order they were opened (see the module's comment).
#[derive(Default)]
pub struct PaneLine {
    /// Whether the last pane opened is connected; `None` before the first.
    last: Option<watch::Receiver<bool>>,
}

impl PaneLine {
    pub fn new() -> PaneLine {
        PaneLine::default()
    }

    /// A pane that connects once the pane opened before it is connected (or closed, or after
    /// a few seconds of waiting). What is sent to it meanwhile waits in its queue.
    ///
    /// One connection at a time also spares the server's accept backlog (ncat's is 10, a
    /// microcontroller's a few): dozens of connections at once overflow it, and with SYN
    /// cookies a pane then looks connected although it was never accepted.
    pub fn spawn(
        &mut self,
        id: PaneId,
        host: String,
        port: u16,
        events: mpsc::Sender<Event>,
    ) -> ChatPane {
        let (connected, next) = watch::channel(false);
        let previous = self.last.replace(next);
        ChatPane::start(id, (host, port), events, previous, Some(connected))
    }
}

impl ChatPane {
    /// A pane on its own, connecting at once.
    pub fn spawn(id: PaneId, host: String, port: u16, events: mpsc::Sender<Event>) -> ChatPane {
        Self::start(id, (host, port), events, None, None)
    }

    /// A pane for a connection a listener accepted: it serves that connection, then closes
    /// (a peer that connects again is a new pane). Its place among the listener's connections
    /// is given back when it ends.
    pub fn adopt(id: PaneId, accepted: Accepted, events: mpsc::Sender<Event>) -> ChatPane {
        let TcpAccepted {
            stream,
            peer,
            permit,
        } = match accepted {
            Accepted::Tcp(accepted) => accepted,
            Accepted::Udp(peer) => return crate::udp::spawn_peer(id, peer, events),
        };
        let (commands, command_rx) = mpsc::channel(QUEUE_LINES);
        let pane = Pane {
            id,
            target: (peer.ip().to_string(), peer.port()),
            queue: VecDeque::new(),
            events,
            closing: false,
            previous: None,
            connected: None,
            accepted: true,
        };
        tokio::spawn(async move {
            pane.run_accepted(stream, peer.to_string(), command_rx)
                .await;
            drop(permit);
        });
        ChatPane { commands }
    }

    fn start(
        id: PaneId,
        target: (String, u16),
        events: mpsc::Sender<Event>,
        previous: Option<watch::Receiver<bool>>,
        connected: Option<watch::Sender<bool>>,
    ) -> ChatPane {
        let (commands, command_rx) = mpsc::channel(QUEUE_LINES);
        let pane = Pane {
            id,
            target,
            queue: VecDeque::new(),
            events,
            closing: false,
            previous,
            connected,
            accepted: false,
        };
        tokio::spawn(pane.run(command_rx));
        ChatPane { commands }
    }

    /// A pane whose commands go to a task of another kind (a UDP pane); its receiving end.
    pub(crate) fn channel() -> (ChatPane, mpsc::Receiver<PaneCommand>) {
        let (commands, command_rx) = mpsc::channel(QUEUE_LINES);
        (ChatPane { commands }, command_rx)
    }

    /// False when the pane has stopped.
    pub async fn send(&self, command: PaneCommand) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

struct Pane {
    id: PaneId,
    /// The server: host and port.
    target: (String, u16),
    /// Lines not yet fully written to a connection, oldest first.
    queue: VecDeque<String>,
    events: mpsc::Sender<Event>,
    closing: bool,
    /// Whether the pane opened before this one is connected: this one waits for it.
    previous: Option<watch::Receiver<bool>>,
    /// Tells the pane opened after this one whether this one is connected.
    connected: Option<watch::Sender<bool>>,
    /// The connection was accepted by a listener: the peer is a client, not a server, and
    /// the pane never reconnects.
    accepted: bool,
}

/// How a connection ended.
enum End {
    /// Lost or refused; try again.
    Retry(String),
    /// The server said it has no place for this client: as a failed connect, the wait before
    /// the next try grows.
    Refused(String),
    /// Go to the new address now.
    Retarget,
    /// Done (closed on request, or the front end is gone).
    Stop,
}

impl Pane {
    async fn run(mut self, mut commands: mpsc::Receiver<PaneCommand>) {
        let mut failures: u32 = 0;
        loop {
            let (host, port) = &self.target;
            let addr = format!("{host}:{port}");
            if !self
                .emit(ChatEvent::Connecting { addr: addr.clone() })
                .await
            {
                return;
            }
            if !self.wait_for_turn(&mut commands).await {
                break;
            }
            let end = match self.connect(&addr, &mut commands).await {
                Ok(Some(stream)) => {
                    self.set_connected(true);
                    if !self.emit(ChatEvent::Connected { addr: addr.clone() }).await {
                        return;
                    }
                    let end = self.serve(stream, &mut commands).await;
                    self.set_connected(false);
                    if !matches!(end, End::Refused(_)) {
                        failures = 0;
                    }
                    end
                }
                Ok(None) => End::Retarget,
                Err(end) => end,
            };
            let reason = match end {
                End::Stop => break,
                End::Retarget => continue,
                End::Retry(reason) => reason,
                End::Refused(reason) => format!("refused: {reason}"),
            };
            if !self.emit(ChatEvent::Disconnected { reason }).await {
                return;
            }
            if self.closing {
                break;
            }
            failures = failures.saturating_add(1);
            let after = backoff(failures);
            if !self.emit(ChatEvent::Reconnecting { after }).await {
                return;
            }
            if !self.wait(after, &mut commands).await {
                break;
            }
        }
        self.close().await;
    }

    /// Serves a connection a listener accepted, until it ends or the pane is closed.
    async fn run_accepted(
        mut self,
        stream: TcpStream,
        peer: String,
        mut commands: mpsc::Receiver<PaneCommand>,
    ) {
        if !self.emit(ChatEvent::Accepted { peer }).await {
            return;
        }
        match self.serve(stream, &mut commands).await {
            End::Retry(reason) | End::Refused(reason) => {
                self.emit(ChatEvent::Disconnected { reason }).await;
            }
            End::Retarget | End::Stop => {}
        }
        // What is typed from now on is not for this connection: the session learns that
        // the pane closed from the event below.
        commands.close();
        while let Ok(command) = commands.try_recv() {
            if let PaneCommand::Send(line) = command {
                self.queue.push_back(line);
            }
        }
        self.close().await;
    }

    /// Reports what was not sent, and that the pane stopped.
    async fn close(&mut self) {
        for line in std::mem::take(&mut self.queue) {
            self.emit(ChatEvent::Dropped {
                line,
                reason: "closed before it could be sent",
            })
            .await;
        }
        self.emit(ChatEvent::Closed).await;
    }

    /// Waits until the pane before this one is connected, it is closed, or [`TURN_WAIT`] has
    /// passed, taking commands meanwhile. False when this pane should stop.
    async fn wait_for_turn(&mut self, commands: &mut mpsc::Receiver<PaneCommand>) -> bool {
        let Some(mut previous) = self.previous.take() else {
            return !self.closing || !self.queue.is_empty();
        };
        let deadline = tokio::time::sleep(TURN_WAIT);
        tokio::pin!(deadline);
        // Whether the pane before is still there to wait for next time.
        let still_open = loop {
            tokio::select! {
                // The guard `wait_for` returns is not Send: only the bool leaves this block.
                open = async { previous.wait_for(|connected| *connected).await.is_ok() } => break open,
                () = &mut deadline => break true,
                command = commands.recv(), if !self.closing => {
                    self.command(command).await;
                    if self.closing && self.queue.is_empty() {
                        return false;
                    }
                }
            }
        };
        if still_open {
            self.previous = Some(previous);
        }
        // Closed while waiting its turn: it still connects once to deliver what was queued.
        !self.closing || !self.queue.is_empty()
    }

    fn set_connected(&self, connected: bool) {
        if let Some(sender) = &self.connected {
            sender.send_replace(connected);
        }
    }

    /// Connects, still taking commands meanwhile. `Ok(None)`: retargeted while connecting.
    async fn connect(
        &mut self,
        addr: &str,
        commands: &mut mpsc::Receiver<PaneCommand>,
    ) -> Result<Option<TcpStream>, End> {
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr));
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => {
                    return match result {
                        Ok(Ok(stream)) => {
                            let _ = stream.set_nodelay(true);
                            Ok(Some(stream))
                        }
                        Ok(Err(error)) => Err(End::Retry(describe(&error))),
                        Err(_) => Err(End::Retry(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
                    };
                }
                command = commands.recv(), if !self.closing => {
                    if self.command(command).await {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Waits out a backoff, taking commands. False when the pane should stop.
    async fn wait(&mut self, after: Duration, commands: &mut mpsc::Receiver<PaneCommand>) -> bool {
        let sleep = tokio::time::sleep(after);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                command = commands.recv(), if !self.closing => {
                    let retarget = self.command(command).await;
                    // Closed during a backoff: one more attempt delivers what is queued.
                    if self.closing && self.queue.is_empty() {
                        return false;
                    }
                    if retarget {
                        return true;
                    }
                }
            }
        }
    }

    /// Handles a command while not connected. True when the address changed.
    async fn command(&mut self, command: Option<PaneCommand>) -> bool {
        match command {
            Some(PaneCommand::Send(line)) => {
                self.enqueue(line).await;
                false
            }
            Some(PaneCommand::Retarget { host, port }) => {
                let target = (host, port);
                let changed = target != self.target;
                self.target = target;
                changed
            }
            Some(PaneCommand::Close) | None => {
                self.closing = true;
                false
            }
        }
    }

    async fn enqueue(&mut self, line: String) {
        if self.queue.len() >= QUEUE_LINES {
            self.emit(ChatEvent::Dropped {
                line,
                reason: "the send queue is full",
            })
            .await;
        } else {
            self.queue.push_back(line);
        }
    }

    /// Runs one connection: reads and writes without ever blocking on either.
    async fn serve(
        &mut self,
        stream: TcpStream,
        commands: &mut mpsc::Receiver<PaneCommand>,
    ) -> End {
        let mut decoder = ConsoleDecoder::new(ConsoleDecoder::DEFAULT_MAX_LINE);
        let mut buf = vec![0u8; 16 * 1024];
        // Bytes of the queue's first line already written.
        let mut written = 0;
        // Until the server's first line, what was sent may go to a server that turns this
        // client away (`server full`): such lines go back to the queue.
        // A client that connected here is in from the start.
        let mut greeting = if self.accepted {
            Greeting::Heard
        } else {
            Greeting::Awaited(Vec::new())
        };
        let mut half_closed = false;
        let grace = tokio::time::sleep(Duration::MAX);
        tokio::pin!(grace);
        loop {
            let pending = !self.queue.is_empty();
            if self.closing && !pending && !half_closed {
                // Everything is sent: half-close and listen for the server's last words.
                if let Err(error) = shutdown_write(&stream) {
                    return End::Retry(describe(&error));
                }
                half_closed = true;
                grace
                    .as_mut()
                    .reset(tokio::time::Instant::now() + CLOSE_GRACE);
            }
            tokio::select! {
                ready = stream.readable() => {
                    if let Err(error) = ready {
                        return self.lost(&mut decoder, describe(&error), greeting).await;
                    }
                    match stream.try_read(&mut buf) {
                        Ok(0) => {
                            let peer = if self.accepted { "client" } else { "server" };
                            let end = self.lost(&mut decoder, format!("the {peer} closed the connection"), greeting).await;
                            return match end {
                                End::Retry(_) if self.closing && !pending => End::Stop,
                                end => end,
                            };
                        }
                        Ok(n) => {
                            if !self.output(&mut decoder, &buf[..n], &mut greeting).await {
                                return End::Stop;
                            }
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        Err(error) => return self.lost(&mut decoder, describe(&error), greeting).await,
                    }
                }
                // Nothing more goes to a server that has turned this client away.
                ready = stream.writable(), if pending && !matches!(greeting, Greeting::Refused(..)) => {
                    if let Err(error) = ready {
                        return self.lost(&mut decoder, describe(&error), greeting).await;
                    }
                    match write_queue(&stream, &mut self.queue, &mut written, &mut greeting) {
                        Ok(()) => {}
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        // A partly written line stays queued and goes again whole on the next
                        // connection: the server drops unfinished lines of a closed one.
                        Err(error) => return self.lost(&mut decoder, describe(&error), greeting).await,
                    }
                }
                command = commands.recv(), if !self.closing => match command {
                    Some(PaneCommand::Send(line)) => self.enqueue(line).await,
                    Some(PaneCommand::Retarget { host, port }) => {
                        let target = (host, port);
                        if target != self.target {
                            self.target = target;
                            self.flush(&mut decoder).await;
                            return End::Retarget;
                        }
                    }
                    Some(PaneCommand::Close) | None => self.closing = true,
                },
                () = &mut grace => {
                    self.flush(&mut decoder).await;
                    return End::Stop;
                }
            }
        }
    }

    /// The connection ended. A server that turned this client away gets what was sent to it
    /// again, on the next connection (it may reset rather than close: it never read the lines).
    async fn lost(
        &mut self,
        decoder: &mut ConsoleDecoder,
        reason: String,
        greeting: Greeting,
    ) -> End {
        self.flush(decoder).await;
        match greeting {
            Greeting::Refused(refusal, sent) => {
                self.requeue(sent);
                End::Refused(refusal)
            }
            Greeting::Awaited(_) | Greeting::Heard => End::Retry(reason),
        }
    }

    /// Lines sent to a server that refused this client go first again, in their order.
    fn requeue(&mut self, sent: Vec<String>) {
        for line in sent.into_iter().rev() {
            self.queue.push_front(line);
        }
        while self.queue.len() > QUEUE_LINES {
            self.queue.pop_back();
        }
    }

    async fn output(
        &self,
        decoder: &mut ConsoleDecoder,
        bytes: &[u8],
        greeting: &mut Greeting,
    ) -> bool {
        let mut outputs = Vec::new();
        decoder.feed(bytes, &mut |output| outputs.push(output));
        for output in outputs {
            if let (ConsoleOutput::Line(line), Greeting::Awaited(sent)) = (&output, &mut *greeting)
            {
                let text = line.plain();
                *greeting = if text.starts_with(SERVER_FULL) {
                    Greeting::Refused(text, std::mem::take(sent))
                } else {
                    Greeting::Heard
                };
            }
            if !self.emit(ChatEvent::Output(output)).await {
                return false;
            }
        }
        true
    }

    async fn flush(&self, decoder: &mut ConsoleDecoder) {
        let mut outputs = Vec::new();
        decoder.flush(&mut |output| outputs.push(output));
        for output in outputs {
            self.emit(ChatEvent::Output(output)).await;
        }
    }

    async fn emit(&self, event: ChatEvent) -> bool {
        self.events.send(Event::Chat(self.id, event)).await.is_ok()
    }
}

/// Writes queued lines (each with `\n`, as `nc` sends them) until done or the socket is full.
/// Lines written before the server's greeting are kept in it.
fn write_queue(
    stream: &TcpStream,
    queue: &mut VecDeque<String>,
    written: &mut usize,
    greeting: &mut Greeting,
) -> io::Result<()> {
    while let Some(line) = queue.front() {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        while *written < bytes.len() {
            *written += stream.try_write(&bytes[*written..])?;
        }
        if let (Some(line), Greeting::Awaited(sent)) = (queue.pop_front(), &mut *greeting) {
            sent.push(line);
            // A server that never speaks first: stop keeping copies.
            if sent.len() >= QUEUE_LINES {
                *greeting = Greeting::Heard;
            }
        }
        *written = 0;
    }
    Ok(())
}

/// The server's first words on a connection.
enum Greeting {
    /// Nothing yet; the lines sent so far.
    Awaited(Vec<String>),
    /// It turned this client away, saying why; the lines sent before that.
    Refused(String, Vec<String>),
    /// Anything else: this client is in.
    Heard,
}

fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write)
}

/// The n-th wait: 250 ms doubling up to 5 s, each within ±25 % so that panes (and classmates)
/// do not all knock at the same instant.
fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}

/// An IO error in the words `nc` users know.
pub(crate) fn describe(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        io::ErrorKind::BrokenPipe => "connection closed by the server".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt as _;

    /// Accepts `count` connections; the first line each sent, in the order accepted. The
    /// connections are closed when it returns, all at once, as a rebooting board closes them.
    async fn accept_lines(listener: &tokio::net::TcpListener, count: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut open = Vec::new();
        for _ in 0..count {
            let accept = async {
                let (stream, _) = listener.accept().await.unwrap();
                let mut reader = tokio::io::BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).await.unwrap();
                (line, reader)
            };
            let (line, stream) = tokio::time::timeout(Duration::from_secs(20), accept)
                .await
                .expect("a connection");
            lines.push(line.trim_end().to_owned());
            open.push(stream);
        }
        lines
    }

    #[tokio::test]
    async fn panes_in_a_line_connect_in_order_after_every_reboot() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (events, mut event_rx) = mpsc::channel(1024);
        let mut line = PaneLine::new();
        let panes: Vec<ChatPane> = (1..=6)
            .map(|id| line.spawn(id, "127.0.0.1".into(), port, events.clone()))
            .collect();
        for round in ["boot", "reboot", "again"] {
            for (id, pane) in (1..=6).zip(&panes) {
                pane.send(PaneCommand::Send(format!("{round} {id}"))).await;
            }
            // The server numbers clients as it accepts them: pane N must come N-th, also when
            // all of them reconnect after their own (jittered) backoff.
            let expected: Vec<String> = (1..=6).map(|id| format!("{round} {id}")).collect();
            assert_eq!(accept_lines(&listener, 6).await, expected);
            // The next round's lines go out once every pane knows its connection is gone
            // (a line written into a connection the server just closed is lost, as with nc).
            let mut down = 0;
            while down < 6 {
                let event = tokio::time::timeout(Duration::from_secs(20), event_rx.recv())
                    .await
                    .expect("an event")
                    .expect("panes running");
                if let Event::Chat(_, ChatEvent::Disconnected { .. }) = event {
                    down += 1;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_pane_that_cannot_connect_does_not_hold_up_the_next() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = closed.local_addr().unwrap().port();
        drop(closed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (events, mut event_rx) = mpsc::channel(1024);
        tokio::spawn(async move { while event_rx.recv().await.is_some() {} });
        let mut line = PaneLine::new();
        let _first = line.spawn(1, "127.0.0.1".into(), refused, events.clone());
        let second = line.spawn(2, "127.0.0.1".into(), port, events.clone());
        second.send(PaneCommand::Send("pane 2".into())).await;
        let lines = tokio::time::timeout(TURN_WAIT * 3, accept_lines(&listener, 1))
            .await
            .expect("pane 2 connects although pane 1 cannot");
        assert_eq!(lines, ["pane 2"]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        for (failures, base_ms) in [
            (1, 250.0),
            (2, 500.0),
            (3, 1000.0),
            (5, 4000.0),
            (6, 5000.0),
            (40, 5000.0),
        ] {
            for _ in 0..100 {
                let wait = backoff(failures).as_secs_f64() * 1000.0;
                assert!(
                    wait >= base_ms * 0.75 - 1e-6 && wait <= base_ms * 1.25 + 1e-6,
                    "failure {failures}: {wait} ms not within 25 % of {base_ms}"
                );
            }
        }
    }
}
