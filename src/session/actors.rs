//! The actors a session drives: the serial console, the chat panes, the flasher. Both faces
//! carry out the session core's [`Do`]s here, so opening a pane or reopening the console after
//! a flash is written once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use espflash::target::Chip;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Do, ListenReport, Notice};
use crate::chat::{ChatEvent, ChatPane, PaneCommand, PaneId, PaneLine};
use crate::event::Event;
use crate::flash::{self, FlashImage, FlashOptions};
use crate::listen::{self, Listener, Listening};
use crate::serial::port::PortError;
use crate::serial::{SerialCommand, SerialConsole, SerialOptions};
use crate::udp::UdpListener;

/// Connections a listener started from the TUI takes at once: the panes the screen holds.
const LISTEN_PANES: usize = crate::app::MAX_PANES;
/// How long the console may take to let go of the port before a flash.
const CONSOLE_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The running actors of one session, all reporting to one [`Event`] channel.
pub struct Actors {
    events: mpsc::Sender<Event>,
    /// How the console is (re)opened; `None` when the session has no console (`connect`).
    serial_options: Option<SerialOptions>,
    serial: Option<SerialConsole>,
    panes: Vec<(PaneId, ChatPane)>,
    /// Panes connect in the order they were opened, so pane N is the server's client N.
    line: PaneLine,
    flash_options: Option<FlashOptions>,
    /// What a flash writes: the bundled firmware unless the command named an image.
    image: Arc<FlashImage>,
    /// The chip the last flash wrote to, until the console reopens and decodes with its
    /// symbols.
    flashed: Arc<Mutex<Option<Chip>>>,
    /// The listener whose connections become panes, once one was started.
    listening: Option<Listening>,
    /// Where [`Do::Listen`] listens.
    listen_addr: SocketAddr,
    /// The panes send datagrams (`connect --udp`), not lines over TCP.
    udp: bool,
}

impl Actors {
    /// Actors that report to `events`; none runs yet.
    pub fn new(events: mpsc::Sender<Event>) -> Actors {
        Actors {
            events,
            serial_options: None,
            serial: None,
            panes: Vec::new(),
            line: PaneLine::new(),
            flash_options: None,
            image: Arc::new(FlashImage::Bundled),
            flashed: Arc::default(),
            listening: None,
            listen_addr: SocketAddr::from(([0, 0, 0, 0], listen::DEFAULT_PORT)),
            udp: false,
        }
    }

    /// Panes send datagrams to their server (`connect --udp`).
    pub fn with_udp(mut self) -> Actors {
        self.udp = true;
        self
    }

    /// Starts receiving datagrams on `listener`; each peer becomes a pane once the session
    /// numbers it (at most `max` at once).
    pub fn listen_udp(&mut self, listener: UdpListener, max: usize) -> std::io::Result<()> {
        self.listening = Some(listener.start(max, self.events.clone())?);
        Ok(())
    }

    /// Where [`Do::Listen`] listens (0.0.0.0:8888 unless told); when that port is taken, any
    /// free port of the same address.
    pub fn with_listen_addr(mut self, addr: SocketAddr) -> Actors {
        self.listen_addr = addr;
        self
    }

    /// Starts accepting connections on `listener` (at most `max` open at once); each becomes
    /// a pane once the session numbers it. A listener started before is stopped.
    pub fn listen(&mut self, listener: Listener, max: usize) -> std::io::Result<()> {
        self.listening = Some(listener.start(max, self.events.clone())?);
        Ok(())
    }

    /// Listens on [`Actors::with_listen_addr`]'s address, or on any free port of it when that
    /// one is taken; keeps a listener that runs already. Returns where it listens.
    fn listen_default(&mut self) -> Result<SocketAddr, String> {
        if let Some(listening) = &self.listening {
            return Ok(listening.local_addr());
        }
        let listener = match Listener::bind(self.listen_addr) {
            Err(listen::ListenError::InUse(_)) => {
                Listener::bind(SocketAddr::new(self.listen_addr.ip(), 0))
            }
            bound => bound,
        }
        .map_err(|error| error.to_string())?;
        let addr = listener.local_addr();
        self.listen(listener, LISTEN_PANES)
            .map_err(|error| format!("cannot listen: {error}"))?;
        Ok(addr)
    }

    /// Where the listener is; with `board`, tells the board to connect to this computer's
    /// address on its network.
    async fn tell_board(
        &self,
        addr: SocketAddr,
        board: Option<std::net::Ipv4Addr>,
    ) -> ListenReport {
        let host = board.and_then(|board| listen::address_for(board).ok().flatten());
        let mut told = None;
        if let (Some(host), Some(serial)) = (host, &self.serial) {
            let command = format!("connect {host} {}", addr.port());
            serial.send(SerialCommand::FreshLine(command)).await;
            told = Some(SocketAddr::from((host, addr.port())));
        }
        ListenReport {
            addr,
            reachable: listen::reachable_at(addr.ip()).unwrap_or_default(),
            told,
        }
    }

    /// The listener, once started.
    pub fn listening(&self) -> Option<&Listening> {
        self.listening.as_ref()
    }

    /// The console of the session, opened with [`Actors::open_console`] (and again after each
    /// flash).
    pub fn with_console(mut self, options: SerialOptions) -> Actors {
        self.serial_options = Some(options);
        self
    }

    /// How [`Do::Flash`] flashes, and what.
    pub fn with_flasher(mut self, options: FlashOptions, image: FlashImage) -> Actors {
        self.flash_options = Some(options);
        self.image = Arc::new(image);
        self
    }

    /// Whether the session has a serial console (open or not).
    pub fn has_console(&self) -> bool {
        self.serial_options.is_some()
    }

    /// Opens the serial console (again, after a flash). Fails at once with a clear error when
    /// the port cannot be opened.
    pub fn open_console(&mut self) -> Result<(), PortError> {
        let flashed = self.flashed.lock().map_or(None, |mut chip| chip.take());
        if let (Some(options), Some(chip)) = (&mut self.serial_options, flashed) {
            options.decoding.flashed(&self.image, chip);
        }
        if let Some(options) = &self.serial_options {
            self.serial = Some(SerialConsole::open(options.clone(), self.events.clone())?);
        }
        Ok(())
    }

    /// Lets go of the serial console and waits (bounded) until it has stopped, so that what it
    /// reported last (a line it could not send, the last hex row) is in the event channel.
    pub async fn close_console(&mut self) {
        if let Some(serial) = self.serial.take() {
            let _ = tokio::time::timeout(CONSOLE_CLOSE_WAIT, serial.close()).await;
        }
    }

    /// Carries out what the session decided. What only the face can do (show a pane, a
    /// notice, a report, the end) comes back, in order.
    pub async fn carry_out(&mut self, dos: Vec<Do>) -> Vec<Do> {
        let mut left = Vec::new();
        for action in dos {
            match action {
                Do::OpenPane { id, host, port } => {
                    let pane = if self.udp {
                        crate::udp::spawn_connected(id, host, port, self.events.clone())
                    } else {
                        self.line.spawn(id, host, port, self.events.clone())
                    };
                    self.panes.push((id, pane));
                }
                Do::AdoptPane { id, token } => {
                    match self.listening.as_ref().and_then(|l| l.take(token)) {
                        Some(accepted) => {
                            let pane = ChatPane::adopt(id, accepted, self.events.clone());
                            self.panes.push((id, pane));
                        }
                        None => left.push(Do::Report(id, ChatEvent::Closed)),
                    }
                }
                Do::Listen { board } => match self.listen_default() {
                    Ok(addr) => left.push(Do::Listening(self.tell_board(addr, board).await)),
                    Err(error) => left.push(Do::Notice(Notice::ListenFailed(error))),
                },
                Do::StopListening => self.listening = None,
                Do::DropAccepted(token) => {
                    if let Some(listening) = &self.listening {
                        drop(listening.take(token));
                    }
                }
                Do::Pane(id, command) => {
                    if let Some((_, pane)) = self.panes.iter().find(|(pane_id, _)| *pane_id == id) {
                        // A pane whose connection ended on its own (an accepted one) may be
                        // gone before the session hears that it closed.
                        let line = match &command {
                            PaneCommand::Send(line) => Some(line.clone()),
                            _ => None,
                        };
                        if let (false, Some(line)) = (pane.send(command).await, line) {
                            left.push(Do::Report(
                                id,
                                ChatEvent::Dropped {
                                    line,
                                    reason: "closed before it could be sent",
                                },
                            ));
                        }
                    }
                }
                Do::Serial(command) => {
                    // A console reopened after a flash keeps the view the user chose.
                    if let (SerialCommand::Hex(hex), Some(options)) =
                        (&command, &mut self.serial_options)
                    {
                        options.hex = *hex;
                    }
                    if let Some(serial) = &self.serial {
                        serial.send(command).await;
                    }
                }
                Do::Flash => self.flash().await,
                Do::OpenConsole => {
                    if let Err(error) = self.open_console() {
                        left.push(Do::Notice(Notice::ConsoleFailed(error.to_string())));
                    }
                }
                other => left.push(other),
            }
        }
        left
    }

    /// The console lets go of the port, then the image is flashed in a blocking task that
    /// reports through the event channel.
    async fn flash(&mut self) {
        let Some(options) = self.flash_options.clone() else {
            return;
        };
        if let Some(serial) = self.serial.take() {
            // A console stuck in a write must not stop the flash from starting; the flasher
            // then reports the port busy.
            let _ = tokio::time::timeout(CONSOLE_CLOSE_WAIT, serial.close()).await;
        }
        let image = self.image.clone();
        let events = self.events.clone();
        let flashed = self.flashed.clone();
        tokio::task::spawn_blocking(move || {
            let result = flash::flash(&options, &image, &mut |event| {
                let _ = events.blocking_send(Event::Flash(event));
            });
            if let Ok(report) = &result {
                *flashed.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.chip);
            }
            let done = result
                .map(|report| (report.bytes, report.seconds))
                .map_err(|error| error.to_string());
            let _ = events.blocking_send(Event::FlashDone(done));
        });
    }
}
