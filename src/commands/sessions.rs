//! The commands that run a session: `monitor`, `connect`, `tui`, `demo`, `flash-and-connect`.
//! Each builds a [`SessionConfig`] and runs it in one of the two faces.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use espchat::board::{Board, BoardConfig, SerialKind};
use espchat::config::{self, Config, WifiCredentials, process_env};
use espchat::flash::{FlashImage, FlashOptions};
use espchat::headless::{Headless, HeadlessBoard};
use espchat::listen::{self, Listener};
use espchat::serial::port;
use espchat::serial::{LineEnding, SerialOptions};
use espchat::session::{Actors, Server, SessionConfig, UserCommand};
use espchat::trace::Decoding;
use espchat::tui::BoardScreen;
use espchat::udp::UdpListener;
use tokio::sync::mpsc;

use super::flashing::{flash_lines, flash_options};
use super::{block_on, line_mode, serial_path};
use crate::cli::{
    self, ConnectArgs, DemoArgs, FlashAndConnectArgs, GlobalArgs, ListenArgs, MonitorArgs, TuiArgs,
};

pub fn run_monitor(args: MonitorArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let baud = config.console_baud(args.serial.baud, &process_env)?;
    if args.serial.port.len() > 1 {
        let decoding = Decoding::from_elf(args.elf).map_err(anyhow::Error::msg)?;
        let line_ending = config.line_ending(args.line_ending);
        let boards = consoles(args.serial.port, baud, line_ending, &decoding, &global)
            .map(|serial| {
                let serial = SerialOptions {
                    hex: args.hex,
                    ..serial
                };
                (boardless(Server::Board, 0), serial)
            })
            .collect();
        return block_on(line_mode_boards(boards, args.timestamps));
    }
    let path = serial_path(config, args.serial.port.into_iter().next())?;
    let serial = SerialOptions {
        hex: args.hex,
        decoding: Decoding::from_elf(args.elf).map_err(anyhow::Error::msg)?,
        ..console(path, baud, config.line_ending(args.line_ending), &global)
    };
    let session = SessionConfig {
        panes: 0,
        server: Server::Board,
        wifi: None,
        led: None,
        flashed: false,
        ip_timeout: None,
        any_address: false,
    };
    block_on(line_mode_session(session, Some(serial), args.timestamps))
}

pub fn run_connect(args: ConnectArgs, config: &Config) -> anyhow::Result<()> {
    let (host, port) = args.server;
    let panes = usize::from(config.clients(args.clients, 1));
    let session = boardless(Server::Fixed { host, port }, panes);
    block_on(async move {
        let (events_tx, events) = mpsc::channel(1024);
        let mut actors = Actors::new(events_tx);
        if args.udp {
            actors = actors.with_udp();
        }
        headless(session, actors, events, false).await
    })
}

pub fn run_listen(args: ListenArgs) -> anyhow::Result<()> {
    // A port in use is said before anything starts.
    enum Bound {
        Tcp(Listener),
        Udp(UdpListener),
    }
    let (bound, addr) = if args.udp {
        let listener = UdpListener::bind(args.addr)?;
        let addr = listener.local_addr();
        (Bound::Udp(listener), addr)
    } else {
        let listener = Listener::bind(args.addr)?;
        let addr = listener.local_addr();
        (Bound::Tcp(listener), addr)
    };
    let session = boardless(Server::None, 0);
    block_on(async move {
        let (events_tx, events) = mpsc::channel(1024);
        let mut actors = Actors::new(events_tx);
        match bound {
            Bound::Tcp(listener) => actors.listen(listener, args.max_clients)?,
            Bound::Udp(listener) => actors.listen_udp(listener, args.max_clients)?,
        }
        for line in listen_lines(addr, args.udp) {
            println!("listen! {line}");
        }
        headless(session, actors, events, false).await
    })
}

/// The consoles of several boards, alike but for their port.
fn consoles<'a>(
    ports: Vec<PathBuf>,
    baud: u32,
    line_ending: LineEnding,
    decoding: &'a Decoding,
    global: &'a GlobalArgs,
) -> impl Iterator<Item = SerialOptions> + 'a {
    ports.into_iter().map(move |path| SerialOptions {
        decoding: decoding.clone(),
        ..console(path, baud, line_ending, global)
    })
}

/// A session with no board: its panes go to `server`, or come from a listener.
fn boardless(server: Server, panes: usize) -> SessionConfig {
    SessionConfig {
        panes,
        server,
        wifi: None,
        led: None,
        flashed: false,
        ip_timeout: None,
        any_address: false,
    }
}

/// What `listen` says first: where it listens, and the addresses a board can connect to.
fn listen_lines(addr: std::net::SocketAddr, udp: bool) -> Vec<String> {
    let what = if udp { " (udp)" } else { "" };
    let mut lines = vec![format!("listening on {addr}{what}")];
    match listen::reachable_at(addr.ip()) {
        Ok(addresses) if addresses.is_empty() => lines.push(
            "this computer has no network address besides loopback: a board cannot reach it \
             until it joins the board's network"
                .to_owned(),
        ),
        Ok(addresses) => {
            for address in addresses {
                let at = std::net::SocketAddr::new(address.ip, addr.port());
                lines.push(format!(
                    "a board can connect to {at} ({})",
                    address.interface
                ));
            }
        }
        Err(error) => lines.push(format!("cannot list this computer's addresses: {error}")),
    }
    lines
}

/// How a board's console is opened: at `baud`, lines ended as configured, logged if asked.
fn console(
    path: PathBuf,
    baud: u32,
    line_ending: LineEnding,
    global: &GlobalArgs,
) -> SerialOptions {
    SerialOptions {
        path,
        baud,
        line_ending,
        hex: false,
        log_file: global.log_file.clone(),
        decoding: Default::default(),
    }
}

/// The session of a board's console with `clients` chat panes to its server.
fn board_session(clients: u16, wifi: Option<WifiCredentials>, flashed: bool) -> SessionConfig {
    SessionConfig {
        panes: usize::from(clients),
        server: Server::Board,
        wifi,
        led: None,
        flashed,
        ip_timeout: None,
        any_address: false,
    }
}

/// Line mode: a session on stdin and stdout until input ends.
async fn line_mode_session(
    session: SessionConfig,
    serial: Option<SerialOptions>,
    timestamps: bool,
) -> anyhow::Result<()> {
    let (events_tx, events) = mpsc::channel(1024);
    let mut actors = Actors::new(events_tx);
    if let Some(serial) = serial {
        actors = actors.with_console(serial);
        actors.open_console()?;
    }
    headless(session, actors, events, timestamps).await
}

/// Line mode with several boards: a session and a console each, numbered sources.
async fn line_mode_boards(
    boards: Vec<(SessionConfig, SerialOptions)>,
    timestamps: bool,
) -> anyhow::Result<()> {
    let mut headless = Vec::new();
    for (session, serial) in boards {
        let (events_tx, events) = mpsc::channel(1024);
        let mut actors = Actors::new(events_tx).with_console(serial);
        actors.open_console()?;
        headless.push(HeadlessBoard {
            session,
            actors,
            events,
        });
    }
    espchat::headless::run_boards(headless, timestamps).await?;
    Ok(())
}

/// Runs `session` with `actors` in line mode until input ends.
async fn headless(
    session: SessionConfig,
    actors: Actors,
    events: mpsc::Receiver<espchat::event::Event>,
    timestamps: bool,
) -> anyhow::Result<()> {
    Headless {
        session,
        actors,
        events,
        timestamps,
    }
    .run()
    .await?;
    Ok(())
}

/// What a TUI session is about: its board, and what the screen says until the panes open.
struct TuiSession {
    serial: SerialOptions,
    flash: FlashOptions,
    image: FlashImage,
    session: SessionConfig,
    /// Flash before anything else (demo, flash-and-connect); otherwise open the console.
    flash_first: bool,
    chip: Option<String>,
    hint: String,
    /// The hint goes once the board's address is known (else it stays until the next one).
    hint_until_address: bool,
    /// Where the listen pane (F9) listens.
    listen: std::net::SocketAddr,
}

/// Where the listen pane listens for a board on the network: every IPv4 address, the port of
/// the classic client examples.
const LISTEN_ON_THE_NETWORK: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    listen::DEFAULT_PORT,
);

/// The TUI on one board: console, chat panes, flashing on a key.
async fn tui_session(tui: TuiSession, config: &Config) -> anyhow::Result<()> {
    let board = board_screen(tui, config)?;
    espchat::tui::run_boards(vec![board]).await
}

/// One board's screen: its actors (the console opened, unless it flashes first) and its App.
fn board_screen(tui: TuiSession, config: &Config) -> anyhow::Result<BoardScreen> {
    let (events_tx, events) = mpsc::channel(4096);
    let port = tui.serial.path.display().to_string();
    let mut actors = Actors::new(events_tx)
        .with_console(tui.serial)
        .with_flasher(tui.flash, tui.image)
        .with_listen_addr(tui.listen);
    let first = if tui.flash_first {
        Some(UserCommand::Flash)
    } else {
        // A port that cannot be opened is said before the screen switches.
        actors.open_console()?;
        None
    };
    // The panes show from the start, waiting for the board's address; typing goes to pane 1.
    let mut app = espchat::app::App::new(espchat::app::AppConfig {
        panes: tui.session.panes,
        color: process_env("NO_COLOR").is_none(),
        timestamps: false,
        keys: config.keys.clone(),
    });
    app.update(espchat::app::keys::Action::FocusPane(1));
    app.set_board(port, tui.chip);
    if tui.hint_until_address {
        app.hint_until_address(tui.hint);
    } else {
        app.hint(tui.hint);
    }
    Ok(BoardScreen {
        app,
        config: tui.session,
        actors,
        first,
        events,
    })
}

/// `tui -p A -p B ...`: every board on one screen, one shown at a time.
fn run_tui_boards(args: TuiArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let clients = config.clients(args.clients, 2);
    let baud = config.console_baud(args.serial.baud, &process_env)?;
    let decoding = Decoding::from_elf(args.elf).map_err(anyhow::Error::msg)?;
    let wifi = config.wifi(None, None)?;
    let flash_baud = config.flash_baud(None, &process_env)?;
    block_on(async move {
        let mut boards = Vec::new();
        for port in args.serial.port {
            let serial = SerialOptions {
                decoding: decoding.clone(),
                ..console(port.clone(), baud, config.line_ending(None), &global)
            };
            let tui = TuiSession {
                serial,
                flash: FlashOptions {
                    baud: flash_baud,
                    ..FlashOptions::new(port)
                },
                image: FlashImage::Bundled,
                session: SessionConfig {
                    any_address: args.any_address,
                    ..board_session(clients, wifi.clone(), false)
                },
                flash_first: false,
                chip: None,
                hint: "F2 and F3 show the next and the previous board; each keeps its console \
                       and panes running"
                    .to_owned(),
                hint_until_address: true,
                listen: LISTEN_ON_THE_NETWORK,
            };
            boards.push(board_screen(tui, config)?);
        }
        espchat::tui::run_boards(boards).await
    })
}

/// A key's chord as the screen names it.
fn chord(config: &Config, action: espchat::app::keys::Action) -> String {
    config
        .keys
        .chord_for(&action)
        .map_or_else(|| "-".to_owned(), |chord| chord.to_string())
}

pub fn run_tui(args: TuiArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let clients = config.clients(args.clients, 2);
    if args.serial.port.len() > 1 {
        if !line_mode(&global) {
            return run_tui_boards(args, config, global);
        }
        let baud = config.console_baud(args.serial.baud, &process_env)?;
        let decoding = Decoding::from_elf(args.elf).map_err(anyhow::Error::msg)?;
        let line_ending = config.line_ending(None);
        let boards = consoles(args.serial.port, baud, line_ending, &decoding, &global)
            .map(|serial| {
                let session = SessionConfig {
                    ip_timeout: Some(Duration::from_secs(cli::IP_TIMEOUT_SECS)),
                    any_address: args.any_address,
                    ..board_session(clients, None, false)
                };
                (session, serial)
            })
            .collect();
        return block_on(line_mode_boards(boards, false));
    }
    let port = match config.port(args.serial.port.into_iter().next(), &process_env) {
        Some(port) => port,
        None => match port::detect_port() {
            Ok(found) => found.path,
            Err(port::PortError::NoneFound) => {
                eprintln!(
                    "No ESP board found on a serial port (plug one in with a data USB cable, or name it with -p)."
                );
                if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
                    eprint!("Start the virtual board instead (espchat demo)? [Y/n] ");
                    let mut answer = String::new();
                    std::io::stdin().read_line(&mut answer)?;
                    if matches!(answer.trim(), "" | "y" | "Y" | "yes") {
                        let demo = DemoArgs {
                            clients: Some(clients),
                        };
                        return run_demo(demo, config, global);
                    }
                }
                anyhow::bail!("no board: run `espchat demo` for the virtual one");
            }
            Err(error) => return Err(error.into()),
        },
    };
    let baud = config.console_baud(args.serial.baud, &process_env)?;
    let serial = SerialOptions {
        decoding: Decoding::from_elf(args.elf).map_err(anyhow::Error::msg)?,
        ..console(port.clone(), baud, config.line_ending(None), &global)
    };
    if line_mode(&global) {
        let session = SessionConfig {
            ip_timeout: Some(Duration::from_secs(cli::IP_TIMEOUT_SECS)),
            any_address: args.any_address,
            ..board_session(clients, None, false)
        };
        return block_on(line_mode_session(session, Some(serial), false));
    }
    let flash = FlashOptions {
        baud: config.flash_baud(None, &process_env)?,
        ..FlashOptions::new(port)
    };
    // A board that booted before espchat opened its port printed its IP to nobody.
    let hint = format!(
        "The chat panes open once the console shows the board's IP: {} resets the board (its boot log shows it), {} flashes the espchat firmware.",
        chord(config, espchat::app::keys::Action::ResetBoard),
        chord(config, espchat::app::keys::Action::Flash),
    );
    let tui = TuiSession {
        serial,
        flash,
        image: FlashImage::Bundled,
        session: SessionConfig {
            any_address: args.any_address,
            ..board_session(clients, config.wifi(None, None)?, false)
        },
        flash_first: false,
        chip: None,
        hint,
        hint_until_address: true,
        listen: LISTEN_ON_THE_NETWORK,
    };
    block_on(tui_session(tui, config))
}

/// What the demo says where it cannot flash the virtual board.
const NOT_FLASHED: &str = "espchat demo: this system has no ptys, so the virtual board's serial \
    port is a TCP port, which espflash cannot flash through; the board starts with the espchat \
    firmware in its flash, as after its first flash. (`espchat board` with esptool \
    --port socket://... flashes it; real boards flash as everywhere.)";

/// The main job on the embedded default: a virtual board in this process, flashed, booted,
/// its IP read from its console, panes opened.
pub fn run_demo(args: DemoArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let clients = config.clients(args.clients, 2);
    block_on(async move {
        // Where there are no ptys the board's port is a TCP one, which espflash cannot flash
        // through: the board starts with the firmware in its flash, as after its first flash.
        let serial_kind = SerialKind::default();
        let flashable = serial_kind == SerialKind::Pty;
        let board = Board::start(BoardConfig {
            tcp_port: 0,
            serial: serial_kind,
            link: None,
            blank: flashable,
            flash_file: None,
            throttle: true,
        })
        .await?;
        let port = board.serial_path().to_owned();
        // 921600 baud once the stub runs, as on a real board: the bundled firmware takes some
        // 4 s instead of half a minute at the ROM's 115200.
        let flash = FlashOptions {
            baud: Some(921_600),
            ..FlashOptions::new(port.clone())
        };
        // The virtual board's console runs at 115200 whatever the config says of real ones.
        let serial = console(
            port,
            config::DEFAULT_BAUD,
            config.line_ending(None),
            &global,
        );
        let result = if line_mode(&global) {
            let mut serial = serial;
            if flashable {
                let options = flash.clone();
                let report = tokio::task::spawn_blocking(move || {
                    flash_lines(&options, &FlashImage::Bundled)
                })
                .await??;
                serial.decoding.flashed(&FlashImage::Bundled, report.chip);
            } else {
                eprintln!("{NOT_FLASHED}");
                serial
                    .decoding
                    .flashed(&FlashImage::Bundled, espchat::flash::Chip::Esp32c3);
            }
            let session = SessionConfig {
                ip_timeout: Some(Duration::from_secs(cli::IP_TIMEOUT_SECS)),
                ..board_session(clients, None, true)
            };
            line_mode_session(session, Some(serial), false).await
        } else {
            let quit = config
                .keys
                .chord_for(&espchat::app::keys::Action::Quit)
                .map_or_else(String::new, |chord| format!(" {chord} quits."));
            let tui = TuiSession {
                serial,
                flash,
                image: FlashImage::Bundled,
                session: board_session(clients, None, false),
                flash_first: flashable,
                chip: Some("ESP32-C3 (virtual)".to_owned()),
                hint: if flashable {
                    format!(
                        "espchat demo: flashing the virtual board, then chat panes open. Type `on` in pane 1, `off` in pane 2, and watch the LED.{quit}"
                    )
                } else {
                    format!(
                        "espchat demo: the virtual board boots, then chat panes open. Type `on` in pane 1, `off` in pane 2, and watch the LED.{quit}"
                    )
                },
                hint_until_address: false,
                // The virtual board is this computer: nothing else needs to reach the listener.
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], listen::DEFAULT_PORT)),
            };
            tui_session(tui, config).await
        };
        board.stop().await;
        result
    })
}

/// The one-shot: flash, then the console, then chat panes to the address it shows.
pub fn run_flash_and_connect(
    args: FlashAndConnectArgs,
    config: &Config,
    global: GlobalArgs,
) -> anyhow::Result<()> {
    // Everything the user gave is checked before the board is touched.
    let wifi = config.wifi(args.wifi_ssid.clone(), args.wifi_password.clone())?;
    if args.flash.all || args.flash.port.len() > 1 || args.roster.is_some() {
        return super::roll::run_roll_call(args, wifi, config, &global);
    }
    let path = serial_path(config, args.flash.port.first().cloned())?;
    let image = match &args.flash.image {
        Some(image) => FlashImage::from_file(image, None)?,
        None => FlashImage::Bundled,
    };
    let flash = FlashOptions {
        port: path.clone(),
        ..flash_options(&args.flash, config)?
    };
    let baud = config.monitor_baud(args.monitor_baud);
    let mut serial = SerialOptions {
        decoding: Decoding::from_elf(args.elf).map_err(anyhow::Error::msg)?,
        ..console(path.clone(), baud, config.line_ending(None), &global)
    };
    let clients = config.clients(args.clients, 2);
    if line_mode(&global) {
        if !args.no_flash {
            let report = flash_lines(&flash, &image)?;
            serial.decoding.flashed(&image, report.chip);
        }
        let session = SessionConfig {
            ip_timeout: Some(Duration::from_secs(args.ip_timeout)),
            any_address: args.any_address,
            led: args.led,
            ..board_session(clients, wifi, true)
        };
        return block_on(line_mode_session(session, Some(serial), false));
    }
    // On a terminal: the demo's flow on the real board, in the TUI. A port that is not there
    // is said before the screen switches (other port errors show in the console pane).
    if espchat::serial::net::console_url(&path).is_none() && !path.exists() {
        return Err(port::PortError::NotFound(path).into());
    }
    let tui = TuiSession {
        serial,
        flash,
        image,
        session: SessionConfig {
            any_address: args.any_address,
            led: args.led,
            // Without a flash, what is asked is stored once the firmware shows itself.
            ..board_session(clients, wifi, args.no_flash)
        },
        flash_first: !args.no_flash,
        chip: None,
        hint: if args.no_flash {
            "the chat panes open once the board's console shows its IP".to_owned()
        } else {
            "flashing, then the chat panes open once the board's console shows its IP".to_owned()
        },
        hint_until_address: true,
        listen: LISTEN_ON_THE_NETWORK,
    };
    block_on(tui_session(tui, config))
}
