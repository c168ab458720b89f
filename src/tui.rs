//! The TUI runtime: the terminal, the one event loop, and the actors the [`App`] commands.
//!
//! Everything that changes the screen arrives as an [`Event`] (engine) or a terminal event
//! (keys, mouse, resize); the App turns them into state and [`Command`]s, and the [`Session`]
//! carries the commands out on the actors. The App itself never does IO.

use std::io;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use ratatui::crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream,
};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use crate::app::{App, Command};
use crate::chat::{ChatPane, PaneCommand, PaneId, PaneLine};
use crate::config::WifiCredentials;
use crate::event::Event;
use crate::flash::{self, FlashImage, FlashOptions};
use crate::serial::{
    BoardAddress, ConsoleOutput, SerialCommand, SerialConsole, SerialEvent, SerialOptions,
    firmware_lacks_credentials, firmware_reads_console,
};

/// Redraws at most this often while events stream in (a fast console), and at least this often
/// while something time-based is shown (a gauge's ETA, a reconnect countdown).
const FRAME: Duration = Duration::from_millis(33);
const IDLE_FRAME: Duration = Duration::from_millis(250);
/// How long the console may take to let go of the port before a flash.
const CONSOLE_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Puts the terminal in raw mode on the alternate screen with mouse reporting, and restores it
/// when dropped: on return, on error, and, through the panic hook, on panic.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<(TerminalGuard, ratatui::DefaultTerminal)> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(io::stdout(), DisableMouseCapture);
            ratatui::restore();
            previous(info);
        }));
        let terminal = ratatui::try_init()?;
        let guard = TerminalGuard;
        execute!(io::stdout(), EnableMouseCapture)?;
        Ok((guard, terminal))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(io::stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// The actors behind the screen, and what the runtime knows about the board.
pub struct Session {
    events: mpsc::Sender<Event>,
    /// How the console is (re)opened.
    serial_options: SerialOptions,
    serial: Option<SerialConsole>,
    panes: Vec<(PaneId, ChatPane)>,
    /// Panes connect in the order they were opened, so pane N is the server's client N.
    line: PaneLine,
    next_pane: PaneId,
    address: BoardAddress,
    flashing: bool,
    flash_options: FlashOptions,
    /// What a flash writes: the bundled firmware unless the command named an image.
    image: std::sync::Arc<FlashImage>,
    /// Stored on the board after each flash, once its firmware reads the console.
    wifi: Option<WifiCredentials>,
    provision_pending: bool,
}

impl Session {
    /// A session with chat panes 1..=`clients` (the App shows them from the start): they
    /// connect once the console shows the board's address, and what is typed into them before
    /// waits in their queues. Needs the tokio runtime (the panes are tasks).
    pub fn new(
        events: mpsc::Sender<Event>,
        serial_options: SerialOptions,
        clients: usize,
        flash_options: FlashOptions,
    ) -> Session {
        let mut line = PaneLine::new();
        let panes = (1..=clients)
            .map(|id| (id, line.spawn_waiting(id, events.clone())))
            .collect();
        Session {
            events,
            serial_options,
            serial: None,
            panes,
            line,
            next_pane: clients + 1,
            address: BoardAddress::default(),
            flashing: false,
            flash_options,
            image: std::sync::Arc::new(FlashImage::Bundled),
            wifi: None,
            provision_pending: false,
        }
    }

    /// What the flash key (and [`Session::start_flash`]) writes, instead of the bundled firmware.
    pub fn flash_image(&mut self, image: FlashImage) {
        self.image = std::sync::Arc::new(image);
    }

    /// After each flash from the TUI, store these Wi-Fi credentials on the board (over the
    /// console, as `flash-and-connect` does; the password is never shown).
    pub fn provision_after_flash(&mut self, wifi: Option<WifiCredentials>) {
        self.wifi = wifi;
    }

    /// Opens the serial console (again, after a flash).
    pub fn open_console(&mut self) -> Result<(), crate::serial::port::PortError> {
        let console = SerialConsole::open(self.serial_options.clone(), self.events.clone())?;
        self.serial = Some(console);
        Ok(())
    }

    /// Flashes the image (the bundled firmware for the board's chip, unless another was set).
    /// The console lets go of the port first; it comes back when flashing ends.
    pub async fn start_flash(&mut self) {
        if self.flashing {
            return;
        }
        self.flashing = true;
        if let Some(serial) = self.serial.take() {
            // A console stuck in a write must not stop the flash from starting; the flasher
            // then reports the port busy.
            let _ = tokio::time::timeout(CONSOLE_CLOSE_WAIT, serial.close()).await;
        }
        let options = self.flash_options.clone();
        let image = self.image.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let result = flash::flash(&options, &image, &mut |event| {
                let _ = events.blocking_send(Event::Flash(event));
            });
            let done = result
                .map(|report| (report.bytes, report.seconds))
                .map_err(|error| error.to_string());
            let _ = events.blocking_send(Event::FlashDone(done));
        });
    }

    /// Carries out what the App asked for.
    pub async fn execute(&mut self, commands: Vec<Command>, app: &mut App) {
        for command in commands {
            match command {
                Command::Serial(command) => {
                    // A console reopened after a flash keeps the view the user chose.
                    if let SerialCommand::Hex(hex) = command {
                        self.serial_options.hex = hex;
                    }
                    if let Some(serial) = &self.serial {
                        serial.send(command).await;
                    }
                }
                Command::Chat(id, command) => {
                    if let Some((_, pane)) = self.panes.iter().find(|(pane_id, _)| *pane_id == id) {
                        pane.send(command).await;
                    }
                }
                Command::OpenPane => self.open_pane(app),
                Command::ClosePane(id) => {
                    if let Some(index) = self.panes.iter().position(|(pane_id, _)| *pane_id == id) {
                        let (_, pane) = self.panes.remove(index);
                        pane.send(PaneCommand::Close).await;
                    }
                }
                Command::Flash => self.start_flash().await,
                Command::ResetBoard => {
                    if let Some(serial) = &self.serial {
                        serial.send(SerialCommand::Reset).await;
                    }
                }
            }
        }
    }

    /// What the runtime itself does with engine events: point the panes at the board's
    /// address when it shows up or changes, provision Wi-Fi after a flash, and give the port
    /// back to the console after a flash.
    pub async fn observe(&mut self, event: &Event, app: &mut App) {
        match event {
            Event::Serial(SerialEvent::Address(change)) => {
                let before = self.address;
                self.address.ip = change.ip.or(self.address.ip);
                self.address.port = change.port.or(self.address.port);
                if self.address != before
                    && let Some((host, port)) = self.target()
                {
                    for (_, pane) in &self.panes {
                        pane.send(PaneCommand::Retarget {
                            host: host.clone(),
                            port,
                        })
                        .await;
                    }
                }
            }
            Event::Serial(SerialEvent::Output(ConsoleOutput::Line(line))) => {
                let text = line.plain();
                if self.provision_pending
                    && firmware_reads_console(&text)
                    && let (Some(wifi), Some(serial)) = (&self.wifi, &self.serial)
                {
                    self.provision_pending = false;
                    serial
                        .send(SerialCommand::FreshLine(wifi.console_command()))
                        .await;
                    app.hint(format!(
                        "sent the Wi-Fi credentials for \"{}\" to the board",
                        wifi.ssid
                    ));
                } else if self.wifi.is_none() && firmware_lacks_credentials(&text) {
                    app.hint(
                        "the board has no Wi-Fi credentials: type `wifi SSID PASSWORD` in the serial console, or add [wifi] to the config file and flash again"
                            .into(),
                    );
                }
            }
            Event::FlashDone(result) => {
                self.flashing = false;
                self.provision_pending = result.is_ok() && self.wifi.is_some();
                if let Err(error) = self.open_console() {
                    app.hint(format!("cannot reopen the serial console: {error}"));
                }
            }
            _ => {}
        }
    }

    fn target(&self) -> Option<(String, u16)> {
        let ip = self.address.ip?;
        Some((
            ip.to_string(),
            self.address.port.unwrap_or(espchat_core::PORT),
        ))
    }

    /// Opens a pane to the board's server, or one that waits for its address.
    fn open_pane(&mut self, app: &mut App) {
        let id = self.next_pane;
        self.next_pane += 1;
        let events = self.events.clone();
        let pane = match self.target() {
            Some((host, port)) => self.line.spawn(id, host, port, events),
            None => self.line.spawn_waiting(id, events),
        };
        self.panes.push((id, pane));
        app.pane_opened(id);
    }

    async fn shutdown(self) {
        for (_, pane) in &self.panes {
            pane.send(PaneCommand::Close).await;
        }
    }
}

/// Runs the TUI until the App quits.
pub async fn run(
    mut app: App,
    mut session: Session,
    mut events: mpsc::Receiver<Event>,
) -> anyhow::Result<()> {
    let (guard, mut terminal) = TerminalGuard::enter()?;
    let mut input = EventStream::new();
    app.resize(terminal.size()?);
    let mut dirty = true;
    let mut last_draw = Instant::now() - IDLE_FRAME;
    loop {
        if dirty && last_draw.elapsed() >= FRAME || last_draw.elapsed() >= IDLE_FRAME {
            app.tick(Instant::now());
            terminal.draw(|frame| frame.render_widget(&app, frame.area()))?;
            dirty = false;
            last_draw = Instant::now();
        }
        let wait = if dirty { FRAME } else { IDLE_FRAME }.saturating_sub(last_draw.elapsed());
        tokio::select! {
            input_event = input.next() => {
                let Some(Ok(input_event)) = input_event else { break };
                let commands = match input_event {
                    TermEvent::Key(key) => app.handle_key(key),
                    TermEvent::Mouse(mouse) => app.handle_mouse(mouse),
                    TermEvent::Resize(width, height) => {
                        app.resize(ratatui::layout::Size::new(width, height));
                        Vec::new()
                    }
                    _ => Vec::new(),
                };
                session.execute(commands, &mut app).await;
                dirty = true;
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                session.observe(&event, &mut app).await;
                app.handle_event(&event);
                // A fast console: take what else is waiting before drawing.
                for _ in 0..1024 {
                    let Ok(event) = events.try_recv() else { break };
                    session.observe(&event, &mut app).await;
                    app.handle_event(&event);
                }
                dirty = true;
            }
            () = tokio::time::sleep(wait) => {}
        }
        if app.should_quit() {
            break;
        }
    }
    drop(guard);
    session.shutdown().await;
    Ok(())
}
