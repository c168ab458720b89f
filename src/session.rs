//! The session core: what a session decides, whichever face shows it.
//!
//! Sans-IO, in the spirit of `firmware/core`'s `Server` and the ROM `Loader`: the faces (the
//! TUI in `tui.rs`, line mode in `headless.rs`) tell it what happened ([`Session::event`],
//! [`Session::command`], [`Session::tick`]) and carry out the [`Do`]s it answers with, mostly
//! through [`Actors`]. It never touches a port, a socket, a clock or the screen, so the policy is
//! tested with plain events (`session/tests.rs`). What it decides:
//!
//! - where the chat panes connect: the board's address as its console shows it, merged line by
//!   line, with a short grace for the port when only the IP came (many firmwares print only
//!   the IP: then the lab's 5000);
//! - when pane actors open: once that address is known, in pane order (pane N is the server's
//!   client N); lines typed for a pane before then are held here and delivered in order;
//! - when to store Wi-Fi credentials: once after a flash, when the firmware reads its console;
//! - when to ask the board for its address: once, when our firmware is on the console but its
//!   address has not been seen a while after the output stopped (the boot log went to nobody);
//! - which pane a connection accepted by the listener becomes (`espchat listen`): the next
//!   number, as a pane the user opens;
//! - when a session that was told to finish is done: its panes have delivered what was typed,
//!   or a deadline says why not.

mod actors;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub use self::actors::Actors;
use crate::chat::{ChatEvent, PaneCommand, PaneId, QUEUE_LINES};
use espchat_core::{BoardCommand, LedSetting};

use crate::config::WifiCredentials;
use crate::event::Event;
use crate::listen::ListenEvent;
use crate::serial::{
    BoardAddress, ConsoleOutput, SerialCommand, SerialEvent, firmware_lacks_credentials,
    firmware_reads_console,
};

/// Once the board's IP is known, how long to wait for its server's port before assuming 5000.
pub const PORT_GRACE: Duration = Duration::from_secs(1);
/// How long the console must be quiet, with our firmware on it and no address seen, before the
/// session asks the board for its address (`ip`): long enough for a booting board to print it.
pub const ASK_ADDRESS_QUIET: Duration = Duration::from_secs(3);
/// The console command of our firmware that prints its address lines again (docs/contract.md
/// §4).
const ASK_ADDRESS: &str = "ip";
/// A connection that the server has not greeted counts as accepted after this long.
pub const ACCEPT_SETTLE: Duration = Duration::from_millis(500);
/// After the session is told to finish, the longest wait for the panes to deliver their lines.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(10);
/// Why a line held for a pane that never opened was not sent.
const HELD_FULL: &str = "no chat pane yet and 256 lines waiting";
const CLOSED_EARLY: &str = "closed before it could be sent";

/// How a session starts.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Chat panes from the start, numbered 1..=panes.
    pub panes: usize,
    pub server: Server,
    /// Stored on the board once after each flash, when its firmware reads the console.
    pub wifi: Option<WifiCredentials>,
    /// The LED to store on the board, likewise (`led ...`).
    pub led: Option<LedSetting>,
    /// The board was flashed just before the session began (line mode flashes first).
    pub flashed: bool,
    /// How long the console may take to show the board's address before the session gives up
    /// (line mode's flash-and-connect); `None` waits as long as the user does.
    pub ip_timeout: Option<Duration>,
    /// Connect to whatever address the console shows, public ones too. Otherwise only
    /// addresses a board on a local network can have are taken on the console's word.
    pub any_address: bool,
}

impl SessionConfig {
    /// Something to store on the board once its firmware reads the console.
    fn provisions(&self) -> bool {
        self.wifi.is_some() || self.led.is_some()
    }
}

/// Where the chat panes connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Server {
    /// The board's own server, at the address its console shows.
    Board,
    /// A server named on the command line (`espchat connect`).
    Fixed { host: String, port: u16 },
    /// None: the panes are connections a listener accepted (`espchat listen`).
    None,
}

/// What the user asked for, from a key or a stdin line.
#[derive(Debug)]
pub enum UserCommand {
    /// A line for one chat pane.
    Send(PaneId, String),
    /// A line for every chat pane.
    SendAll(String),
    Serial(SerialCommand),
    OpenPane,
    ClosePane(PaneId),
    Flash,
    /// Restart the board (pulse its reset line).
    ResetBoard,
    /// Connect to this public address, which the console showed (the user said yes).
    AllowAddress(Ipv4Addr),
    /// Listen for connections (the TUI's listen pane), and have our firmware connect to it.
    Listen,
    StopListening,
    /// A line for every connection the listener accepted.
    SendAccepted(String),
    /// No more input (end of stdin, `@quit`, quitting the TUI): deliver what is queued, then
    /// report [`Do::Finished`].
    Finish,
}

/// What the face must do: carried out in the order given.
#[derive(Debug, PartialEq)]
pub enum Do {
    /// Start the actor of a chat pane, connecting to this server.
    OpenPane {
        id: PaneId,
        host: String,
        port: u16,
    },
    /// Start the actor of a chat pane on the connection the listener accepted under `token`.
    AdoptPane {
        id: PaneId,
        token: u64,
    },
    /// Close the connection the listener accepted under `token`: the session is finishing.
    DropAccepted(u64),
    /// Listen on the default address, unless listening already; with `board`, the address of
    /// our firmware's board: tell it to connect (`connect HOST PORT` on its console).
    Listen {
        board: Option<Ipv4Addr>,
    },
    StopListening,
    /// The listener is up (the actors' answer to [`Do::Listen`]).
    Listening(ListenReport),
    Pane(PaneId, PaneCommand),
    Serial(SerialCommand),
    /// The console lets go of the port, then the image is flashed; flashing reports through
    /// [`Event::Flash`] and [`Event::FlashDone`].
    Flash,
    /// Open the serial console again (after a flash).
    OpenConsole,
    /// The user opened a pane: show it (its actor opens once the server is known).
    ShowPane(PaneId),
    /// Show this as if the pane's actor had reported it (a held line that will not be sent,
    /// a pane closed before its actor opened).
    Report(PaneId, ChatEvent),
    Notice(Notice),
    /// The session was told to finish and everything is delivered (or a deadline passed).
    Finished,
    /// The session cannot go on; the face stops with this message as its error.
    Fail(String),
}

/// Something the user should know, worded by each face.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// The Wi-Fi credentials for this network went to the board (the password is never shown).
    ProvisionSent { ssid: String },
    /// The firmware says it has no Wi-Fi credentials, and the session has none to give it.
    NoCredentials,
    /// Finishing took longer than [`CLOSE_DEADLINE`]: lines may not have been delivered.
    PanesTooSlow,
    /// The serial console could not be opened again after a flash.
    ConsoleFailed(String),
    /// The console shows a public address: the panes connect only once the user allows it
    /// ([`UserCommand::AllowAddress`]), since any device can print any address.
    PublicAddress(Ipv4Addr),
    /// The listener could not start.
    ListenFailed(String),
}

/// Where the listener is, for the listen pane.
#[derive(Debug, PartialEq, Eq)]
pub struct ListenReport {
    pub addr: std::net::SocketAddr,
    /// This computer's addresses a board can connect to.
    pub reachable: Vec<crate::listen::HostAddress>,
    /// Where the board was told to connect, if it was.
    pub told: Option<std::net::SocketAddr>,
}

/// The listen pane's id: pane ids of connections start at 1.
pub const LISTEN_PANE: PaneId = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PaneState {
    /// No actor yet: the server is not known.
    Waiting,
    /// Its actor runs.
    Open,
    /// Its actor was told to deliver what is queued and stop.
    Closing,
    /// Its actor stopped (or it never had one).
    Closed,
}

#[derive(Debug)]
struct Pane {
    id: PaneId,
    state: PaneState,
    /// Its server has been heard from since the pane opened (or it failed to connect).
    tried: bool,
    /// When its connection was made, until `tried`.
    connected_at: Option<Instant>,
    /// A listener accepted its connection: it follows no server address.
    accepted: bool,
}

/// The policy of one session (see the module's comment).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    panes: Vec<Pane>,
    next_pane: PaneId,
    /// The board's address as the console has told it so far.
    address: BoardAddress,
    /// When the port grace for a known IP ends.
    port_grace: Option<Instant>,
    /// Where the pane actors connect, once known.
    target: Option<(String, u16)>,
    /// Lines for panes whose actor is not open yet, in the order they were typed.
    held: VecDeque<(PaneId, String)>,
    provision_pending: bool,
    no_credentials: bool,
    /// The console is open (between its `Opened` and a loss or a flash).
    console_open: bool,
    /// When the console last showed something.
    console_heard: Option<Instant>,
    /// The console showed a line of our firmware (`espchat:`), so it takes our commands.
    our_firmware: bool,
    /// The board was asked for its address (once a session).
    asked_address: bool,
    /// What the ROM or bootloader said when the app did not boot (`invalid header: ...`).
    boot_failure: Option<String>,
    flashing: bool,
    ip_deadline: Option<Instant>,
    /// A public address the user allowed.
    allowed: Option<Ipv4Addr>,
    /// The public address the user was last asked about.
    asked: Option<Ipv4Addr>,
    /// Since when the session has been finishing (delivering, once the panes could open).
    finishing: Option<Instant>,
    finished: bool,
}

impl Session {
    /// A session, and what to do at once (open the panes of a fixed server).
    pub fn start(config: SessionConfig, now: Instant) -> (Session, Vec<Do>) {
        let target = match &config.server {
            Server::Board | Server::None => None,
            Server::Fixed { host, port } => Some((host.clone(), *port)),
        };
        let mut session = Session {
            panes: (1..=config.panes)
                .map(|id| Pane {
                    id,
                    state: PaneState::Waiting,
                    tried: false,
                    connected_at: None,
                    accepted: false,
                })
                .collect(),
            next_pane: config.panes + 1,
            address: BoardAddress::default(),
            port_grace: None,
            target: None,
            held: VecDeque::new(),
            provision_pending: config.flashed && config.provisions(),
            no_credentials: false,
            console_open: false,
            console_heard: None,
            our_firmware: false,
            asked_address: false,
            boot_failure: None,
            flashing: false,
            ip_deadline: config.ip_timeout.map(|timeout| now + timeout),
            allowed: None,
            asked: None,
            finishing: None,
            finished: false,
            config,
        };
        let mut out = Vec::new();
        if let Some(target) = target {
            session.set_target(target, now, &mut out);
        }
        (session, out)
    }

    /// The ids of the panes that are not closed, in order.
    pub fn pane_ids(&self) -> impl Iterator<Item = PaneId> + '_ {
        self.panes
            .iter()
            .filter(|pane| !matches!(pane.state, PaneState::Closing | PaneState::Closed))
            .map(|pane| pane.id)
    }

    /// Where the chat panes connect, once it is settled (the board's address taken, its
    /// port known or the grace for it over).
    pub fn target(&self) -> Option<(&str, u16)> {
        self.target
            .as_ref()
            .map(|(host, port)| (host.as_str(), *port))
    }

    /// The board's address as far as the console has told it.
    pub fn address(&self) -> BoardAddress {
        self.address
    }

    /// The next moment [`Session::tick`] has something to do, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let close = self
            .finishing
            .filter(|_| self.ip_deadline.is_none())
            .map(|since| since + CLOSE_DEADLINE);
        let settle = self
            .panes
            .iter()
            .filter(|pane| !pane.tried && self.finishing.is_some())
            .filter_map(|pane| pane.connected_at)
            .min()
            .map(|at| at + ACCEPT_SETTLE);
        [
            self.port_grace,
            self.ip_deadline,
            close,
            settle,
            self.ask_address_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// An engine event, as every actor reports it.
    pub fn event(&mut self, event: &Event, now: Instant) -> Vec<Do> {
        let mut out = Vec::new();
        match event {
            Event::Serial(SerialEvent::Address(change)) => {
                self.address.merge(*change);
                if self.address.ip.is_some() && self.address.port.is_none() {
                    self.port_grace.get_or_insert(now + PORT_GRACE);
                }
                self.settle_target(now, &mut out);
            }
            Event::Serial(SerialEvent::Opened { .. }) => {
                self.console_open = true;
                self.console_heard = Some(now);
            }
            Event::Serial(SerialEvent::Lost { .. }) => self.console_open = false,
            Event::Serial(SerialEvent::Output(ConsoleOutput::Partial(_))) => {
                self.console_heard = Some(now);
            }
            Event::Serial(SerialEvent::Output(ConsoleOutput::Line(line))) => {
                self.console_heard = Some(now);
                let text = line.text();
                let ours = firmware_reads_console(&text);
                self.our_firmware |= ours;
                if self.provision_pending && ours {
                    self.provision_pending = false;
                    // First the LED: its command is carried out at once; joining a network
                    // takes the board a while.
                    if let Some(led) = self.config.led {
                        let command = BoardCommand::Led(led).to_string();
                        out.push(Do::Serial(SerialCommand::FreshLine(command)));
                    }
                    if let Some(wifi) = &self.config.wifi {
                        // The board prints its address once it has joined this network.
                        self.asked_address = true;
                        out.push(Do::Serial(SerialCommand::FreshLine(wifi.console_command())));
                        out.push(Do::Notice(Notice::ProvisionSent {
                            ssid: wifi.ssid.clone(),
                        }));
                    }
                } else if self.config.wifi.is_none() && firmware_lacks_credentials(&text) {
                    self.no_credentials = true;
                    out.push(Do::Notice(Notice::NoCredentials));
                } else if let Some(failure) = boot_failure(&text) {
                    self.boot_failure = Some(failure.to_owned());
                }
            }
            Event::Chat(id, ChatEvent::Closed) => {
                if let Some(pane) = self.panes.iter_mut().find(|pane| pane.id == *id) {
                    pane.state = PaneState::Closed;
                }
            }
            Event::Chat(
                id,
                event @ (ChatEvent::Connected { .. }
                | ChatEvent::Output(_)
                | ChatEvent::Disconnected { .. }),
            ) => {
                if let Some(pane) = self.panes.iter_mut().find(|pane| pane.id == *id) {
                    // A connection is not yet a client: the server may not have accepted it
                    // (it sits in the listen backlog). A greeting, or a moment, says it has.
                    match event {
                        ChatEvent::Connected { .. } => pane.connected_at = Some(now),
                        _ => pane.tried = true,
                    }
                }
                self.close_when_tried(&mut out);
            }
            Event::Listen(ListenEvent::Accepted { token, .. }) => {
                if self.finishing.is_some() {
                    out.push(Do::DropAccepted(*token));
                } else {
                    let id = self.next_pane;
                    self.next_pane += 1;
                    self.panes.push(Pane {
                        id,
                        state: PaneState::Open,
                        // Nobody waits for it to become a client: it is one.
                        tried: true,
                        connected_at: None,
                        accepted: true,
                    });
                    out.push(Do::ShowPane(id));
                    out.push(Do::AdoptPane { id, token: *token });
                }
            }
            Event::FlashDone(result) => {
                self.flashing = false;
                // Whatever the board runs now has yet to show itself.
                self.our_firmware = false;
                self.provision_pending = result.is_ok() && self.config.provisions();
                out.push(Do::OpenConsole);
            }
            _ => {}
        }
        self.check_finished(&mut out);
        out
    }

    /// What the user asked for.
    pub fn command(&mut self, command: UserCommand, now: Instant) -> Vec<Do> {
        let mut out = Vec::new();
        match command {
            UserCommand::Send(id, text) => self.send(id, text, &mut out),
            UserCommand::SendAll(text) => {
                let ids: Vec<PaneId> = self.pane_ids().collect();
                for id in ids {
                    self.send(id, text.clone(), &mut out);
                }
            }
            UserCommand::Serial(command) => out.push(Do::Serial(command)),
            UserCommand::ResetBoard => out.push(Do::Serial(SerialCommand::Reset)),
            UserCommand::AllowAddress(ip) => {
                self.allowed = Some(ip);
                self.settle_target(now, &mut out);
            }
            UserCommand::OpenPane => {
                let id = self.next_pane;
                self.next_pane += 1;
                self.panes.push(Pane {
                    id,
                    state: PaneState::Waiting,
                    tried: false,
                    connected_at: None,
                    accepted: false,
                });
                out.push(Do::ShowPane(id));
                if let Some((host, port)) = self.target.clone() {
                    self.open(id, host, port, &mut out);
                }
            }
            UserCommand::ClosePane(id) => self.close(id, &mut out),
            UserCommand::Listen => {
                // Only our firmware takes `connect`; another one may take it for something else.
                let ours = self.config.server == Server::Board && self.our_firmware;
                let board = self.address.ip.filter(|_| ours && self.console_open);
                out.push(Do::Listen { board });
            }
            UserCommand::StopListening => out.push(Do::StopListening),
            UserCommand::SendAccepted(text) => {
                let ids: Vec<PaneId> = self
                    .panes
                    .iter()
                    .filter(|pane| pane.accepted && pane.state == PaneState::Open)
                    .map(|pane| pane.id)
                    .collect();
                if ids.is_empty() {
                    out.push(dropped(LISTEN_PANE, text, "nothing has connected yet"));
                } else {
                    for id in ids {
                        self.send(id, text.clone(), &mut out);
                    }
                }
            }
            UserCommand::Flash => {
                if !self.flashing {
                    self.flashing = true;
                    // The console lets go of the port for the flash.
                    self.console_open = false;
                    out.push(Do::Flash);
                }
            }
            UserCommand::Finish => {
                if self.finishing.is_none() {
                    self.finishing = Some(now);
                    // Panes still waiting for the board's address keep their lines until the
                    // address comes, unless the IP timeout is not there to end the wait.
                    if self.ip_deadline.is_none() {
                        let waiting: Vec<PaneId> = self
                            .panes
                            .iter()
                            .filter(|pane| pane.state == PaneState::Waiting)
                            .map(|pane| pane.id)
                            .collect();
                        for id in waiting {
                            self.close(id, &mut out);
                        }
                    }
                    self.close_when_tried(&mut out);
                }
            }
        }
        self.check_finished(&mut out);
        out
    }

    /// Time passed: the port grace, asking for the address, the IP timeout, the finishing
    /// deadline.
    pub fn tick(&mut self, now: Instant) -> Vec<Do> {
        let mut out = Vec::new();
        self.settle_target(now, &mut out);
        if self.ask_address_at().is_some_and(|at| now >= at) {
            self.asked_address = true;
            out.push(Do::Serial(SerialCommand::FreshLine(ASK_ADDRESS.to_owned())));
        }
        for pane in &mut self.panes {
            if pane
                .connected_at
                .is_some_and(|at| now >= at + ACCEPT_SETTLE)
            {
                pane.tried = true;
            }
        }
        self.close_when_tried(&mut out);
        if self.ip_deadline.is_some_and(|deadline| now >= deadline) {
            self.ip_deadline = None;
            self.finished = true;
            out.push(Do::Fail(self.no_address_hint()));
            return out;
        }
        if !self.finished
            && self.ip_deadline.is_none()
            && self
                .finishing
                .is_some_and(|since| now >= since + CLOSE_DEADLINE)
        {
            self.finished = true;
            out.push(Do::Notice(Notice::PanesTooSlow));
            out.push(Do::Finished);
        }
        self.check_finished(&mut out);
        out
    }

    /// When to ask the board for its address, if the session would: our firmware is on the
    /// open console, its address has not been seen, and the console has been quiet for
    /// [`ASK_ADDRESS_QUIET`] by then. A board that booted before the console opened printed
    /// its address to nobody; one that is still booting prints it before the quiet ends.
    /// Only our firmware is asked: another one may take `ip` for something else.
    fn ask_address_at(&self) -> Option<Instant> {
        let ask = self.config.server == Server::Board
            && !self.asked_address
            && self.console_open
            && self.our_firmware
            && !self.flashing
            && self.address.ip.is_none();
        if !ask {
            return None;
        }
        self.console_heard.map(|heard| heard + ASK_ADDRESS_QUIET)
    }

    /// Why no address came, as far as the console tells, and what to do.
    fn no_address_hint(&self) -> String {
        if let Some(failure) = &self.boot_failure {
            let cause = if failure.starts_with("invalid header") {
                "the ROM finds no bootloader at the start of the flash (erased flash, or a .bin \
                 written without one)"
            } else if failure.contains("partition table") {
                "the bootloader finds no partition table at 0x8000 (erased, or overwritten)"
            } else {
                "the app is not a valid image for this chip (corrupt, or built for another one)"
            };
            format!(
                "the board does not boot its app: the console shows \"{failure}\": {cause}; run \
                 without IMAGE for the bundled espchat firmware, or flash an ELF (both bring a \
                 bootloader and a partition table), or a .bin with --bootloader and \
                 --partition-table"
            )
        } else if let Some(ip) = self.asked {
            format!(
                "the console showed only a public address, {ip}: espchat does not connect to one \
                 on a console line's word (any device can print any address); if it is the \
                 board's, run again with --any-address"
            )
        } else if self.no_credentials {
            "the board has no Wi-Fi credentials, so it has no IP address: run again with \
             --wifi-ssid NAME --wifi-password PASSWORD (or type: @serial wifi NAME PASSWORD)"
                .to_owned()
        } else {
            let timeout = self.config.ip_timeout.unwrap_or_default().as_secs();
            format!(
                "no IP address on the board's console within {timeout} s: check that its \
                 Wi-Fi network is in reach and the password is right (the console above shows \
                 what it tried), or wait longer with --ip-timeout"
            )
        }
    }

    /// Points the panes at the board's address once it is settled: the port known, or the
    /// grace for it over.
    fn settle_target(&mut self, now: Instant, out: &mut Vec<Do>) {
        if self.config.server != Server::Board {
            return;
        }
        let Some(ip) = self.address.ip else { return };
        let port = match self.address.port {
            Some(port) => port,
            None if self.port_grace.is_some_and(|until| now >= until) => espchat_core::PORT,
            None => return,
        };
        self.port_grace = None;
        if !self.config.any_address && !is_local(ip) && self.allowed != Some(ip) {
            if self.asked != Some(ip) {
                self.asked = Some(ip);
                out.push(Do::Notice(Notice::PublicAddress(ip)));
            }
            return;
        }
        let target = (ip.to_string(), port);
        if self.target.as_ref() != Some(&target) {
            self.set_target(target, now, out);
        }
    }

    fn set_target(&mut self, (host, port): (String, u16), now: Instant, out: &mut Vec<Do>) {
        self.ip_deadline = None;
        self.target = Some((host.clone(), port));
        let mut opened = Vec::new();
        for pane in self.panes.iter_mut().filter(|pane| !pane.accepted) {
            match pane.state {
                PaneState::Waiting => {
                    pane.state = PaneState::Open;
                    pane.tried = false;
                    pane.connected_at = None;
                    opened.push(pane.id);
                    out.push(Do::OpenPane {
                        id: pane.id,
                        host: host.clone(),
                        port,
                    });
                }
                PaneState::Open => {
                    pane.tried = false;
                    pane.connected_at = None;
                    out.push(Do::Pane(
                        pane.id,
                        PaneCommand::Retarget {
                            host: host.clone(),
                            port,
                        },
                    ))
                }
                PaneState::Closing | PaneState::Closed => {}
            }
        }
        // What was typed while they waited, in the order it was typed.
        for (id, line) in std::mem::take(&mut self.held) {
            if opened.contains(&id) {
                out.push(Do::Pane(id, PaneCommand::Send(line)));
            }
        }
        if self.finishing.is_some() {
            // Delivery starts now: the deadline counts from here, not from the end of input.
            self.finishing = Some(now);
        }
    }

    /// A finishing session closes its open panes once each is a client of its server (or
    /// could not become one): a pane that closed early would free its client number, and a
    /// pane still connecting after it would take that number instead of its own (the lab's
    /// LED rule depends on pane N being client N).
    fn close_when_tried(&mut self, out: &mut Vec<Do>) {
        if self.finishing.is_none() {
            return;
        }
        let open = || {
            self.panes
                .iter()
                .filter(|pane| pane.state == PaneState::Open)
        };
        if !open().all(|pane| pane.tried) {
            return;
        }
        let ids: Vec<PaneId> = open().map(|pane| pane.id).collect();
        for id in ids {
            self.close(id, out);
        }
    }

    fn open(&mut self, id: PaneId, host: String, port: u16, out: &mut Vec<Do>) {
        if let Some(pane) = self.panes.iter_mut().find(|pane| pane.id == id) {
            pane.state = PaneState::Open;
            pane.tried = false;
            pane.connected_at = None;
            out.push(Do::OpenPane { id, host, port });
        }
    }

    fn state(&self, id: PaneId) -> Option<PaneState> {
        self.panes
            .iter()
            .find(|pane| pane.id == id)
            .map(|pane| pane.state)
    }

    fn send(&mut self, id: PaneId, text: String, out: &mut Vec<Do>) {
        match self.state(id) {
            Some(PaneState::Open) => out.push(Do::Pane(id, PaneCommand::Send(text))),
            Some(PaneState::Waiting) if self.held.len() < QUEUE_LINES => {
                self.held.push_back((id, text));
            }
            Some(PaneState::Waiting) => out.push(dropped(id, text, HELD_FULL)),
            Some(PaneState::Closing | PaneState::Closed) | None => {
                out.push(dropped(id, text, CLOSED_EARLY));
            }
        }
    }

    /// Closes a pane: its actor sends what is queued first; lines held for a pane that never
    /// opened are reported as not sent.
    fn close(&mut self, id: PaneId, out: &mut Vec<Do>) {
        let Some(pane) = self.panes.iter_mut().find(|pane| pane.id == id) else {
            return;
        };
        match pane.state {
            PaneState::Open => {
                pane.state = PaneState::Closing;
                out.push(Do::Pane(id, PaneCommand::Close));
            }
            PaneState::Waiting => {
                pane.state = PaneState::Closed;
                let (held, kept) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|(pane, _)| *pane == id);
                self.held = kept;
                for (_, line) in held {
                    out.push(dropped(id, line, CLOSED_EARLY));
                }
                out.push(Do::Report(id, ChatEvent::Closed));
            }
            PaneState::Closing | PaneState::Closed => {}
        }
    }

    fn check_finished(&mut self, out: &mut Vec<Do>) {
        if self.finished || self.finishing.is_none() {
            return;
        }
        let settled = self
            .panes
            .iter()
            .all(|pane| pane.state == PaneState::Closed);
        if settled {
            self.finished = true;
            out.push(Do::Finished);
        }
    }
}

fn dropped(id: PaneId, line: String, reason: &'static str) -> Do {
    Do::Report(id, ChatEvent::Dropped { line, reason })
}

/// Whether a board on a local network can have this address: loopback, private (RFC 1918),
/// link-local, or shared (carrier-grade NAT, RFC 6598).
fn is_local(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    ip.is_loopback() || ip.is_private() || ip.is_link_local() || shared
}

/// The words of an ESP ROM or bootloader that did not boot the app, if the line holds them.
fn boot_failure(line: &str) -> Option<&str> {
    // Every console line comes here: each of the phrases holds one of these words, found by
    // SIMD search, so most lines are done with two quick scans.
    static WORDS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
        std::sync::LazyLock::new(|| {
            [
                memchr::memmem::Finder::new("invalid"),
                memchr::memmem::Finder::new("ailed"),
            ]
        });
    if WORDS
        .iter()
        .all(|word| word.find(line.as_bytes()).is_none())
    {
        return None;
    }
    [
        "invalid header",
        "invalid magic byte",
        "checksum failed",
        "image hash failed",
        "image invalid",
        "Failed to verify partition table",
    ]
    .into_iter()
    .find_map(|words| line.find(words).map(|start| line[start..].trim_end()))
}
