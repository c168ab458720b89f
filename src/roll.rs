//! The roll-call of a class of boards: every board's console watched at once, each by a
//! session of its own (the same core as one board's: provisioning, asking for the address,
//! the IP timeout and its hint), reporting when its board is up, or why not. A board can be
//! asked to `blink` so that people find it on the table.

use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::event::Event;
use crate::serial::{ConsoleOutput, SerialCommand, SerialEvent, SerialOptions};
use crate::session::{Actors, Do, Notice, Session, SessionConfig};

/// One board of the roll.
#[derive(Clone, Debug)]
pub struct RollBoard {
    pub port: PathBuf,
    /// From the ROM loader (flashing or probing), when it answered.
    pub mac: Option<String>,
    pub serial: SerialOptions,
}

/// What the roll-call reports, per board (`index` into the boards given).
#[derive(Debug, PartialEq, Eq)]
pub enum RollEvent {
    /// The board's chat server is at `host:port`.
    Up {
        index: usize,
        host: String,
        port: u16,
    },
    /// It did not come up: why, as far as its console tells.
    Failed { index: usize, reason: String },
    /// Something worth a line: credentials sent, the board blinking.
    Note { index: usize, text: String },
}

/// Asks a board of the roll to do something.
#[derive(Clone, Copy, Debug)]
pub enum RollCommand {
    Blink,
}

/// The running roll-call: its reports, and a way to each board.
pub struct Roll {
    pub events: mpsc::Receiver<RollEvent>,
    boards: Vec<mpsc::Sender<RollCommand>>,
}

impl Roll {
    /// Starts watching every board's console; each session is started from `config` (no
    /// panes: the roll only needs the address). Needs a tokio runtime.
    pub fn start(boards: Vec<RollBoard>, config: SessionConfig) -> Roll {
        let (events_tx, events) = mpsc::channel(256);
        let boards = boards
            .into_iter()
            .enumerate()
            .map(|(index, board)| {
                let (commands_tx, commands) = mpsc::channel(8);
                let config = SessionConfig {
                    panes: 0,
                    ..config.clone()
                };
                tokio::spawn(watch(index, board, config, events_tx.clone(), commands));
                commands_tx
            })
            .collect();
        Roll { events, boards }
    }

    /// False when there is no such board or it stopped.
    pub async fn command(&self, index: usize, command: RollCommand) -> bool {
        match self.boards.get(index) {
            Some(board) => board.send(command).await.is_ok(),
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.boards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.boards.is_empty()
    }
}

/// One board: its console and session, until the roll ends (its command channel closes).
async fn watch(
    index: usize,
    board: RollBoard,
    config: SessionConfig,
    report: mpsc::Sender<RollEvent>,
    mut commands: mpsc::Receiver<RollCommand>,
) {
    let (events_tx, mut events) = mpsc::channel(1024);
    let mut actors = Actors::new(events_tx).with_console(board.serial);
    if let Err(error) = actors.open_console() {
        let reason = error.to_string();
        let _ = report.send(RollEvent::Failed { index, reason }).await;
        return;
    }
    let (mut session, start) = Session::start(config, Instant::now());
    let mut done = false;
    let mut dos = start;
    loop {
        for action in actors.carry_out(std::mem::take(&mut dos)).await {
            let event = match action {
                Do::Fail(reason) if !done => RollEvent::Failed { index, reason },
                Do::Notice(Notice::ProvisionSent { ssid }) => RollEvent::Note {
                    index,
                    text: format!("sending the Wi-Fi credentials for \"{ssid}\""),
                },
                Do::Notice(Notice::PublicAddress(ip)) => RollEvent::Note {
                    index,
                    text: format!(
                        "the console shows a public address, {ip}: not taken (--any-address)"
                    ),
                },
                _ => continue,
            };
            done |= matches!(event, RollEvent::Failed { .. });
            if report.send(event).await.is_err() {
                return;
            }
        }
        if !done && let Some((host, port)) = session.target() {
            done = true;
            let up = RollEvent::Up {
                index,
                host: host.to_owned(),
                port,
            };
            if report.send(up).await.is_err() {
                return;
            }
        }
        let deadline = session.next_deadline();
        let wait = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                if let Some(text) = blinking(&event) {
                    let note = RollEvent::Note { index, text };
                    if report.send(note).await.is_err() {
                        return;
                    }
                }
                dos = session.event(&event, Instant::now());
            }
            () = wait => dos = session.tick(Instant::now()),
            command = commands.recv() => match command {
                Some(RollCommand::Blink) => {
                    let blink = SerialCommand::FreshLine("blink".to_owned());
                    dos = vec![Do::Serial(blink)];
                }
                None => break,
            },
        }
    }
    actors.close_console().await;
}

/// The board's answer to `blink` (docs/contract.md §4), without its log prefix.
fn blinking(event: &Event) -> Option<String> {
    let Event::Serial(SerialEvent::Output(ConsoleOutput::Line(line))) = event else {
        return None;
    };
    let text = line.text();
    let at = text.find("espchat: blink: ")?;
    Some(text[at + "espchat: ".len()..].trim_end().to_owned())
}
