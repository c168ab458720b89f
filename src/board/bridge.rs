//! The virtual board as a TCP client (`connect <host> [port]`): `espchat-core`'s [`Bridge`],
//! as the firmware runs it, with tokio sockets. The virtual board is this computer, so it
//! connects only to this computer: loopback addresses and `localhost`.

use std::net::IpAddr;
use std::time::Duration;

use espchat_core::{BoardCommand, Bridge, BridgeOutput, Target};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::console::Console;

/// As long as the firmware's socket waits for a handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the connection task reports, tagged with the attempt it belongs to.
enum Report {
    Connected,
    Failed(String),
    Received(Vec<u8>),
    Closed(String),
}

/// An output of the core, owned so it can be carried out after the core call returns.
enum Step {
    Connect(Target),
    Retry(u32),
    Send(Vec<u8>),
    Close,
    Log(String),
}

/// Something for [`BoardBridge::handle`]: a report of the connection, or the retry timer.
pub struct Wake(Option<(u64, Report)>);

pub struct BoardBridge {
    bridge: Bridge,
    /// The attempt whose reports count; earlier ones' are ignored.
    attempt: u64,
    task: Option<AbortHandle>,
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    retry_at: Option<Instant>,
    reports_tx: mpsc::Sender<(u64, Report)>,
    reports_rx: mpsc::Receiver<(u64, Report)>,
}

impl BoardBridge {
    pub fn new() -> BoardBridge {
        let (reports_tx, reports_rx) = mpsc::channel(64);
        BoardBridge {
            bridge: Bridge::new(),
            attempt: 0,
            task: None,
            writer: None,
            retry_at: None,
            reports_tx,
            reports_rx,
        }
    }

    /// A console line: true when the bridge took it (it is on), false when it is a command
    /// for the board.
    pub fn console(&mut self, line: &str, console: &Console) -> bool {
        let mut steps = Vec::new();
        let taken = self.bridge.console(line, &mut collect(&mut steps));
        self.apply(steps, console);
        taken
    }

    /// `connect` and `disconnect`.
    pub fn command(&mut self, command: BoardCommand, console: &Console) {
        let mut steps = Vec::new();
        match command {
            BoardCommand::Connect(target) if !is_this_computer(&target.host) => {
                console.log(format_args!(
                    "connect {}: the virtual board is this computer and connects only to it: \
                     use 127.0.0.1 (e.g. espchat listen 127.0.0.1:{} in another terminal)",
                    target.host, target.port
                ));
            }
            BoardCommand::Connect(target) => self.bridge.connect(target, &mut collect(&mut steps)),
            BoardCommand::Disconnect => self.bridge.disconnect(&mut collect(&mut steps)),
            _ => {}
        }
        self.apply(steps, console);
    }

    /// The next report of the connection, or the retry timer. Cancel-safe.
    pub async fn next(&mut self) -> Wake {
        let retry = async {
            match self.retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(report) = self.reports_rx.recv() => Wake(Some(report)),
            () = retry => Wake(None),
        }
    }

    pub fn handle(&mut self, Wake(report): Wake, console: &Console) {
        let mut steps = Vec::new();
        let mut out = collect(&mut steps);
        match report {
            None => {
                self.retry_at = None;
                self.bridge.retry(&mut out);
            }
            Some((attempt, _)) if attempt != self.attempt => {}
            Some((_, Report::Connected)) => self.bridge.connected(&mut out),
            Some((_, Report::Failed(reason))) => self.bridge.failed(&reason, &mut out),
            Some((_, Report::Received(bytes))) => self.bridge.received(&bytes, &mut out),
            Some((_, Report::Closed(reason))) => self.bridge.closed(&reason, &mut out),
        }
        drop(out);
        self.apply(steps, console);
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.writer = None;
        self.retry_at = None;
        self.attempt += 1;
    }

    fn apply(&mut self, steps: Vec<Step>, console: &Console) {
        for step in steps {
            match step {
                Step::Connect(target) => {
                    self.stop();
                    let (writer, outgoing) = mpsc::unbounded_channel();
                    self.writer = Some(writer);
                    let task =
                        tokio::spawn(run(target, self.attempt, outgoing, self.reports_tx.clone()));
                    self.task = Some(task.abort_handle());
                }
                Step::Retry(secs) => {
                    self.retry_at = Some(Instant::now() + Duration::from_secs(secs.into()));
                }
                Step::Send(bytes) => {
                    if let Some(writer) = &self.writer {
                        let _ = writer.send(bytes);
                    }
                }
                Step::Close => self.stop(),
                Step::Log(line) => console.log(line),
            }
        }
    }
}

/// The board resets or stops: the connection goes with it.
impl Drop for BoardBridge {
    fn drop(&mut self) {
        self.stop();
    }
}

fn collect(steps: &mut Vec<Step>) -> impl FnMut(BridgeOutput<'_>) + '_ {
    move |output| {
        steps.push(match output {
            BridgeOutput::Connect(target) => Step::Connect(target.clone()),
            BridgeOutput::RetryAfter(secs) => Step::Retry(secs),
            BridgeOutput::Send(bytes) => Step::Send(bytes.to_vec()),
            BridgeOutput::Close => Step::Close,
            BridgeOutput::Log(line) => Step::Log(line.to_owned()),
        })
    }
}

fn is_this_computer(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One attempt: connect, then move bytes both ways until the connection ends.
async fn run(
    target: Target,
    attempt: u64,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    reports: mpsc::Sender<(u64, Report)>,
) {
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let connect = TcpStream::connect((host, target.port));
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            let _ = reports
                .send((attempt, Report::Failed(describe(&error))))
                .await;
            return;
        }
        Err(_) => {
            let reason = "no answer".to_owned();
            let _ = reports.send((attempt, Report::Failed(reason))).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    if reports.send((attempt, Report::Connected)).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; 1024];
    let reason = loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) => break "the server closed the connection".to_owned(),
                Ok(n) => {
                    if reports.send((attempt, Report::Received(buf[..n].to_vec()))).await.is_err() {
                        return;
                    }
                }
                Err(error) => break describe(&error),
            },
            Some(bytes) = outgoing.recv() => {
                if let Err(error) = writer.write_all(&bytes).await {
                    break describe(&error);
                }
            }
        }
    };
    let _ = reports.send((attempt, Report::Closed(reason))).await;
}

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        _ => error.to_string(),
    }
}
