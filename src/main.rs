use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _};
use espchat::board::{Board, BoardConfig};
use espchat::config::{self, Config, ConfigError, WifiCredentials, process_env};
use espchat::flash::{self, FlashEvent, FlashImage, FlashOptions};
use espchat::headless::Headless;
use espchat::serial::port::{self, PortInfo};
use espchat::serial::{LineEnding, SerialOptions};
use espchat::session::{Actors, Server, SessionConfig, UserCommand};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

mod cli;

use cli::{
    BoardArgs, Cli, Command, ConnectArgs, DemoArgs, FlashAndConnectArgs, FlashArgs, GlobalArgs,
    MonitorArgs, SaveImageArgs, TuiArgs,
};

fn main() -> ExitCode {
    let matches = Cli::command().after_help(settings_help()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ESPCHAT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let command = cli.command.unwrap_or(Command::Tui(TuiArgs::default()));
    let result = match command {
        // The virtual board and the port list need no settings: a broken config file must
        // not stop them.
        Command::Board(args) => run_board(args),
        Command::Ports => list_ports(),
        Command::SaveImage(args) => save_image(args),
        Command::Tui(args) => {
            with_config(cli.global, |config, global| run_tui(args, config, global))
        }
        Command::Demo(args) => {
            with_config(cli.global, |config, global| run_demo(args, config, global))
        }
        Command::Monitor(args) => with_config(cli.global, |config, global| {
            run_monitor(args, config, global)
        }),
        Command::Connect(args) => with_config(cli.global, |config, _| run_connect(args, config)),
        Command::Flash(args) => {
            with_config(cli.global, |config, global| run_flash(args, config, global))
        }
        Command::FlashAndConnect(args) => with_config(cli.global, |config, global| {
            run_flash_and_connect(args, config, global)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("espchat: {error:#}");
            // A bad setting is a usage error, as a bad flag is (CONTRACT §1).
            if error.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The end of `--help`: where settings come from, with this machine's config path.
fn settings_help() -> String {
    let path = Config::default_path().map_or_else(
        || "(no config directory on this system; use --config)".to_owned(),
        |path| path.display().to_string(),
    );
    format!(
        "Settings: flags win over the environment (ESPCHAT_PORT, ESPCHAT_BAUD, ESPCHAT_WIFI_SSID, \
         ESPCHAT_WIFI_PASSWORD), which wins over the config file, which wins over defaults.\n\
         Config file: {path}"
    )
}

/// Runs a command with the settings of the config file (`--config`, or the default one).
fn with_config(
    global: GlobalArgs,
    run: impl FnOnce(&Config, GlobalArgs) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let config = Config::load(global.config.as_deref())?;
    for warning in &config.warnings {
        eprintln!("espchat: warning: {warning}");
    }
    run(&config, global)
}

/// Runs a command's async part. The runtime is then left to wind down in the background: a
/// read of stdin that never returns (the terminal stays open after `@quit`) must not keep the
/// process alive.
fn block_on(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(command);
    runtime.shutdown_background();
    result
}

fn run_board(args: BoardArgs) -> anyhow::Result<()> {
    block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        let mut board = Board::start(BoardConfig {
            tcp_port: args.tcp_port,
            link: args.link,
            blank: args.blank,
            flash_file: args.flash_file,
            throttle: !args.no_throttle,
        })
        .await?;
        let serial = board.serial_path().display().to_string();
        let port = board.tcp_port();
        // Scripts read these lines; a closed stdout must not stop the board.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "serial: {serial}");
        let _ = writeln!(stdout, "tcp: 127.0.0.1:{port}");
        let _ = stdout.flush();
        drop(stdout);
        eprintln!(
            "virtual ESP32-C3 running. Console: picocom {serial}   Chat: nc 127.0.0.1 {port}   Stop: Ctrl-C"
        );
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
            _ = board.wait() => anyhow::bail!("the virtual board's serial console failed"),
        }
        board.stop().await;
        Ok(())
    })
}

fn list_ports() -> anyhow::Result<()> {
    let ports = port::list_ports()?;
    if ports.is_empty() {
        println!(
            "No serial ports found. Plug in the board (with a data USB cable), or run `espchat board` for a virtual one."
        );
        return Ok(());
    }
    println!(
        "{:<20} {:<9} {:<24} {:<28} {:<16} ESP?",
        "PORT", "VID:PID", "MANUFACTURER", "PRODUCT", "SERIAL"
    );
    for PortInfo { path, usb } in &ports {
        let esp = usb.as_ref().and_then(|usb| usb.esp_bridge());
        match usb {
            Some(usb) => println!(
                "{:<20} {:04x}:{:04x} {:<24} {:<28} {:<16} {}",
                path.display(),
                usb.vid,
                usb.pid,
                usb.manufacturer.as_deref().unwrap_or("-"),
                usb.product.as_deref().unwrap_or("-"),
                usb.serial_number.as_deref().unwrap_or("-"),
                esp.map(|name| format!("yes ({name})"))
                    .unwrap_or_else(|| "-".into()),
            ),
            None => println!(
                "{:<20} {:<9} {:<24} {:<28} {:<16} -",
                path.display(),
                "-",
                "-",
                "-",
                "-"
            ),
        }
    }
    Ok(())
}

/// The port from the flag, the environment or the config file, or the one board found.
fn serial_path(config: &Config, flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = config.port(flag, &process_env) {
        return Ok(path);
    }
    Ok(port::detect_port()?.path)
}

fn run_monitor(args: MonitorArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let path = serial_path(config, args.serial.port)?;
    let baud = config.console_baud(args.serial.baud, &process_env)?;
    let serial = SerialOptions {
        hex: args.hex,
        ..console(path, baud, config.line_ending(args.line_ending), &global)
    };
    let session = SessionConfig {
        panes: 0,
        server: Server::Board,
        wifi: None,
        flashed: false,
        ip_timeout: None,
    };
    block_on(line_mode_session(session, Some(serial), args.timestamps))
}

fn run_connect(args: ConnectArgs, config: &Config) -> anyhow::Result<()> {
    let (host, port) = parse_server(&args.server)?;
    let session = SessionConfig {
        panes: usize::from(config.clients(args.clients, 1)),
        server: Server::Fixed { host, port },
        wifi: None,
        flashed: false,
        ip_timeout: None,
    };
    block_on(line_mode_session(session, None, false))
}

fn run_flash(args: FlashArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    // The image is checked before any board is touched.
    let image = match &args.image {
        Some(path) => FlashImage::from_file(path, None)?,
        None => FlashImage::Bundled,
    };
    let options = FlashOptions {
        chip: args.chip,
        baud: config.flash_baud(args.baud, &process_env)?,
        use_stub: !args.no_stub,
        before: args.before,
        after: args.after,
        ..FlashOptions::new(serial_path(config, args.port)?)
    };
    let report = if line_mode(&global) {
        flash_lines(&options, &image)?
    } else {
        flash_bar(&options, &image)?
    };
    if !line_mode(&global) {
        println!(
            "Flashed {} bytes to the {} in {:.1} s.",
            report.bytes,
            flash::chip_name(report.chip),
            report.seconds
        );
    }
    Ok(())
}

/// How a board's console is opened: at `baud`, lines ended as configured, logged if asked.
fn console(path: PathBuf, baud: u32, line_ending: LineEnding, global: &GlobalArgs) -> SerialOptions {
    SerialOptions {
        path,
        baud,
        line_ending,
        hex: false,
        log_file: global.log_file.clone(),
    }
}

/// The session of a board's console with `clients` chat panes to its server.
fn board_session(clients: u16, wifi: Option<WifiCredentials>, flashed: bool) -> SessionConfig {
    SessionConfig {
        panes: usize::from(clients),
        server: Server::Board,
        wifi,
        flashed,
        ip_timeout: None,
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
}

/// The TUI on one board: console, chat panes, flashing on a key.
async fn tui_session(tui: TuiSession, config: &Config) -> anyhow::Result<()> {
    let (events_tx, events) = mpsc::channel(4096);
    let port = tui.serial.path.display().to_string();
    let mut actors = Actors::new(events_tx)
        .with_console(tui.serial)
        .with_flasher(tui.flash, tui.image);
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
    espchat::tui::run(app, tui.session, actors, first, events).await
}

/// A key's chord as the screen names it.
fn chord(config: &Config, action: espchat::app::keys::Action) -> String {
    config
        .keys
        .chord_for(&action)
        .map_or_else(|| "-".to_owned(), |chord| chord.to_string())
}

fn run_tui(args: TuiArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let clients = config.clients(args.clients, 2);
    let port = match config.port(args.serial.port, &process_env) {
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
    let serial = console(port.clone(), baud, config.line_ending(None), &global);
    if line_mode(&global) {
        let session = SessionConfig {
            ip_timeout: Some(Duration::from_secs(cli::IP_TIMEOUT_SECS)),
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
        session: board_session(clients, config.wifi(None, None)?, false),
        flash_first: false,
        chip: None,
        hint,
        hint_until_address: true,
    };
    block_on(tui_session(tui, config))
}

/// The main job on the embedded default: a virtual board in this process, flashed, booted,
/// its IP read from its console, panes opened.
fn run_demo(args: DemoArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    let clients = config.clients(args.clients, 2);
    block_on(async move {
        let board = Board::start(BoardConfig {
            tcp_port: 0,
            link: None,
            blank: true,
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
        let serial = console(port, config::DEFAULT_BAUD, config.line_ending(None), &global);
        let result = if line_mode(&global) {
            let options = flash.clone();
            tokio::task::spawn_blocking(move || flash_lines(&options, &FlashImage::Bundled))
                .await??;
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
                flash_first: true,
                chip: Some("ESP32-C3 (virtual)".to_owned()),
                hint: format!("espchat demo: flashing the virtual board, then chat panes open. Type `on` in pane 1, `off` in pane 2, and watch the LED.{quit}"),
                hint_until_address: false,
            };
            tui_session(tui, config).await
        };
        board.stop().await;
        result
    })
}

/// The one-shot: flash, then the console, then chat panes to the address it shows.
fn run_flash_and_connect(
    args: FlashAndConnectArgs,
    config: &Config,
    global: GlobalArgs,
) -> anyhow::Result<()> {
    // Everything the user gave is checked before the board is touched.
    let wifi = config.wifi(args.wifi_ssid, args.wifi_password)?;
    let path = serial_path(config, args.flash.port.clone())?;
    let image = match &args.flash.image {
        Some(image) => FlashImage::from_file(image, None)?,
        None => FlashImage::Bundled,
    };
    let flash = FlashOptions {
        chip: args.flash.chip,
        baud: config.flash_baud(args.flash.baud, &process_env)?,
        use_stub: !args.flash.no_stub,
        before: args.flash.before,
        after: args.flash.after,
        ..FlashOptions::new(path.clone())
    };
    let baud = config.monitor_baud(args.monitor_baud);
    let serial = console(path.clone(), baud, config.line_ending(None), &global);
    let clients = config.clients(args.clients, 2);
    if line_mode(&global) {
        flash_lines(&flash, &image)?;
        let session = SessionConfig {
            ip_timeout: Some(Duration::from_secs(args.ip_timeout)),
            ..board_session(clients, wifi, true)
        };
        return block_on(line_mode_session(session, Some(serial), false));
    }
    // On a terminal: the demo's flow on the real board, in the TUI. A port that is not there
    // is said before the screen switches (other port errors show in the console pane).
    if !path.exists() {
        return Err(port::PortError::NotFound(path).into());
    }
    let tui = TuiSession {
        serial,
        flash,
        image,
        session: board_session(clients, wifi, false),
        flash_first: true,
        chip: None,
        hint: "flashing, then the chat panes open once the board's console shows its IP"
            .to_owned(),
        hint_until_address: true,
    };
    block_on(tui_session(tui, config))
}

/// The line mode of CONTRACT §2: asked for, or stdout is not a terminal.
fn line_mode(global: &GlobalArgs) -> bool {
    global.headless || !std::io::stdout().is_terminal()
}

fn save_image(args: SaveImageArgs) -> anyhow::Result<()> {
    let elf =
        std::fs::read(&args.elf).with_context(|| format!("cannot read {}", args.elf.display()))?;
    let app = flash::app_image(&elf, args.chip)?;
    std::fs::write(&args.output, &app)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("{}: {} bytes", args.output.display(), app.len());
    Ok(())
}

/// Headless: `flash! …` lines (CONTRACT §2), one per percent.
fn flash_lines(options: &FlashOptions, image: &FlashImage) -> anyhow::Result<flash::FlashReport> {
    let mut stdout = std::io::stdout().lock();
    let mut last = String::new();
    Ok(flash::flash(options, image, &mut |event| {
        if let Some(line) = event.status_line()
            && line != last
        {
            let _ = writeln!(stdout, "flash! {line}");
            let _ = stdout.flush();
            last = line;
        }
    })?)
}

/// On a terminal: a progress bar per segment, with bytes/s and time left.
fn flash_bar(options: &FlashOptions, image: &FlashImage) -> anyhow::Result<flash::FlashReport> {
    use indicatif::{ProgressBar, ProgressStyle};
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:40.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let result = flash::flash(options, image, &mut |event| match event {
        FlashEvent::Connected {
            chip, flash_size, ..
        } => println!(
            "Connected: {}, {} flash",
            flash::chip_name(chip),
            flash::format_size(flash_size)
        ),
        FlashEvent::Segment { address, total } => {
            let segment = ProgressBar::new(total).with_style(style.clone());
            segment.set_message(format!("0x{address:x}"));
            bar = Some(segment);
        }
        FlashEvent::Progress { done, .. } => {
            if let Some(bar) = &bar {
                bar.set_position(done);
            }
        }
        FlashEvent::Verifying { address } => {
            if let Some(bar) = &bar {
                bar.set_message(format!("verify 0x{address:x}"));
            }
        }
        FlashEvent::SegmentDone { address, skipped } => {
            if let Some(bar) = bar.take() {
                if skipped {
                    bar.finish_with_message(format!("0x{address:x} unchanged, skipped"));
                } else {
                    bar.finish_with_message(format!("0x{address:x}"));
                }
            }
        }
        _ => {}
    });
    if let Some(bar) = bar.take() {
        bar.abandon();
    }
    Ok(result?)
}

/// `HOST`, `HOST:PORT`, `[IPv6]:PORT` or a bare IPv6 address; the port defaults to 5000.
fn parse_server(server: &str) -> anyhow::Result<(String, u16)> {
    let bad = || {
        anyhow::anyhow!(
            "{server:?} is not HOST or HOST:PORT (e.g. 192.168.1.42 or 192.168.1.42:5000)"
        )
    };
    if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().map_err(|_| bad())?,
            None if after.is_empty() => espchat_core::PORT,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match server.split_once(':') {
        Some((host, port)) if !port.contains(':') => {
            let port = port.parse().map_err(|_| bad())?;
            if host.is_empty() {
                return Err(bad());
            }
            Ok((host.to_owned(), port))
        }
        // More than one colon: a bare IPv6 address.
        Some(_) => Ok((server.to_owned(), espchat_core::PORT)),
        None if server.is_empty() => Err(bad()),
        None => Ok((server.to_owned(), espchat_core::PORT)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_server;

    #[test]
    fn server_addresses() {
        assert_eq!(
            parse_server("192.168.1.42").unwrap(),
            ("192.168.1.42".into(), 5000)
        );
        assert_eq!(
            parse_server("127.0.0.1:7000").unwrap(),
            ("127.0.0.1".into(), 7000)
        );
        assert_eq!(parse_server("[::1]:7000").unwrap(), ("::1".into(), 7000));
        assert_eq!(parse_server("[::1]").unwrap(), ("::1".into(), 5000));
        assert_eq!(parse_server("::1").unwrap(), ("::1".into(), 5000));
        assert!(parse_server("host:port").is_err());
        assert!(parse_server(":5000").is_err());
        assert!(parse_server("").is_err());
    }
}
