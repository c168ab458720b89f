//! A chat pane: one TCP connection to the board's chat server, kept alive.
//!
//! The pane owns its socket in one task. Lines the user types while it is disconnected wait in
//! a bounded queue and go out, in order, once it is connected again; when the queue is full the
//! pane says which line it dropped. When the server closes or resets the connection (a board
//! reboot), the pane reconnects with capped exponential backoff and jitter.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::event::Event;
use crate::serial::decode::{ConsoleDecoder, ConsoleOutput};

/// Time between opening one pane and the next, when several open together.
pub const PANE_STAGGER: Duration = Duration::from_millis(10);
/// Lines kept while disconnected.
pub const QUEUE_LINES: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// After the last line is sent on close, how long to wait for the server's last words.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Panes are numbered from 1, as the headless `@N` commands and `chatN` sources are.
pub type PaneId = usize;

#[derive(Debug)]
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

#[derive(Debug)]
pub enum ChatEvent {
    Connecting {
        addr: String,
    },
    Connected {
        addr: String,
    },
    Output(ConsoleOutput),
    /// The connection ended or could not be made.
    Disconnected {
        reason: String,
    },
    Reconnecting {
        after: Duration,
    },
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

impl ChatPane {
    pub fn spawn(id: PaneId, host: String, port: u16, events: mpsc::Sender<Event>) -> ChatPane {
        Self::spawn_after(Duration::ZERO, id, host, port, events)
    }

    /// A pane that connects after `delay`; what is sent to it meanwhile waits in its queue.
    /// Panes opened together are spread out like this: a server with a small accept backlog
    /// (ncat's is 10, a microcontroller's a few) overflows when dozens of connections arrive at
    /// once, and with SYN cookies a pane then looks connected although it was never accepted.
    pub fn spawn_after(
        delay: Duration,
        id: PaneId,
        host: String,
        port: u16,
        events: mpsc::Sender<Event>,
    ) -> ChatPane {
        let (commands, command_rx) = mpsc::channel(QUEUE_LINES);
        let pane = Pane {
            id,
            host,
            port,
            queue: VecDeque::new(),
            events,
            closing: false,
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            pane.run(command_rx).await;
        });
        ChatPane { commands }
    }

    /// False when the pane has stopped.
    pub async fn send(&self, command: PaneCommand) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

struct Pane {
    id: PaneId,
    host: String,
    port: u16,
    /// Lines not yet fully written to a connection, oldest first.
    queue: VecDeque<String>,
    events: mpsc::Sender<Event>,
    closing: bool,
}

/// How a connection ended.
enum End {
    /// Lost or refused; try again.
    Retry(String),
    /// Go to the new address now.
    Retarget,
    /// Done (closed on request, or the front end is gone).
    Stop,
}

impl Pane {
    async fn run(mut self, mut commands: mpsc::Receiver<PaneCommand>) {
        let mut failures: u32 = 0;
        loop {
            let addr = format!("{}:{}", self.host, self.port);
            if !self
                .emit(ChatEvent::Connecting { addr: addr.clone() })
                .await
            {
                return;
            }
            let end = match self.connect(&addr, &mut commands).await {
                Ok(Some(stream)) => {
                    failures = 0;
                    if !self.emit(ChatEvent::Connected { addr: addr.clone() }).await {
                        return;
                    }
                    self.serve(stream, &mut commands).await
                }
                Ok(None) => End::Retarget,
                Err(end) => end,
            };
            let reason = match end {
                End::Stop => break,
                End::Retarget => continue,
                End::Retry(reason) => reason,
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
        for line in std::mem::take(&mut self.queue) {
            self.emit(ChatEvent::Dropped {
                line,
                reason: "closed before it could be sent",
            })
            .await;
        }
        self.emit(ChatEvent::Closed).await;
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
                command = commands.recv() => {
                    let retarget = self.command(command).await;
                    if self.closing {
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
                let changed = host != self.host || port != self.port;
                self.host = host;
                self.port = port;
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
                        return self.lost(&mut decoder, describe(&error)).await;
                    }
                    match stream.try_read(&mut buf) {
                        Ok(0) => {
                            let end = self.lost(&mut decoder, "the server closed the connection".into()).await;
                            return if self.closing && !pending { End::Stop } else { end };
                        }
                        Ok(n) => {
                            if !self.output(&mut decoder, &buf[..n]).await {
                                return End::Stop;
                            }
                        }
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        Err(error) => return self.lost(&mut decoder, describe(&error)).await,
                    }
                }
                ready = stream.writable(), if pending => {
                    if let Err(error) = ready {
                        return self.lost(&mut decoder, describe(&error)).await;
                    }
                    match write_queue(&stream, &mut self.queue, &mut written) {
                        Ok(()) => {}
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                        // A partly written line stays queued and goes again whole on the next
                        // connection: the server drops unfinished lines of a closed one.
                        Err(error) => return self.lost(&mut decoder, describe(&error)).await,
                    }
                }
                command = commands.recv(), if !self.closing => match command {
                    Some(PaneCommand::Send(line)) => self.enqueue(line).await,
                    Some(PaneCommand::Retarget { host, port }) => {
                        if host != self.host || port != self.port {
                            self.host = host;
                            self.port = port;
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

    async fn lost(&mut self, decoder: &mut ConsoleDecoder, reason: String) -> End {
        self.flush(decoder).await;
        End::Retry(reason)
    }

    async fn output(&self, decoder: &mut ConsoleDecoder, bytes: &[u8]) -> bool {
        let mut outputs = Vec::new();
        decoder.feed(bytes, &mut |output| outputs.push(output));
        for output in outputs {
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
fn write_queue(
    stream: &TcpStream,
    queue: &mut VecDeque<String>,
    written: &mut usize,
) -> io::Result<()> {
    while let Some(line) = queue.front() {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        while *written < bytes.len() {
            *written += stream.try_write(&bytes[*written..])?;
        }
        queue.pop_front();
        *written = 0;
    }
    Ok(())
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
fn describe(error: &io::Error) -> String {
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
