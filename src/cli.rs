//! The command line (docs/contract.md §1). Commands arrive here as their issues land.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use espchat::flash::{After, Before, Chip};
use espchat::serial::LineEnding;

/// How long line mode waits for the board's IP address on its console, unless told otherwise.
pub const IP_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Parser)]
#[command(
    name = "espchat",
    version,
    about = "Flash an ESP32, read its IP from the serial console, and chat with its TCP server",
    long_about = None,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do [default: tui]
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Line mode for scripts: one event per line on stdout, commands on stdin (@1 text,
    /// @all text, @serial text, @quit). Also chosen when stdout is not a terminal; monitor
    /// and connect always use it.
    #[arg(long, global = true)]
    pub headless: bool,
    /// Append the sanitized serial console, with timestamps, to this file
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Read settings from this TOML file instead of the default one (`espchat --help` names it)
    #[arg(long, global = true, value_name = "PATH", env = "ESPCHAT_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The TUI on a board: serial console, flash on a key, chat panes once its IP is known
    Tui(TuiArgs),
    /// The main job on the virtual board: flash it, read its IP from the console, open chat panes
    #[command(
        after_help = "Starts a virtual ESP32-C3 in this process, erased, flashes the bundled \
                            espchat firmware into it over the ROM protocol (paced like a real \
                            UART), waits for its IP on the console and opens the chat panes. \
                            Type `on` in pane 1 and `off` in pane 2. Ctrl-Q quits."
    )]
    Demo(DemoArgs),
    /// Run a virtual ESP32-C3: a pty (or a TCP port) as its serial port, the espchat chat server
    /// on 127.0.0.1
    #[command(
        after_help = "Prints `serial: /dev/pts/N` first. Talk to it with e.g.\n  \
                      picocom /dev/pts/N        (the console: try `status` or `help`)\n  \
                      nc 127.0.0.1 5000         (a chat client; open several)\n\
                      Flash it like a real ESP32-C3 (it speaks the ROM loader protocol), e.g.\n  \
                      esptool --chip esp32c3 -p /dev/pts/N --before no-reset write-flash 0x10000 app.bin\n\
                      With --console-tcp P (always on Windows, which has no ptys) it prints\n\
                      `serial: socket://127.0.0.1:P`: open that with espchat -p or esptool -p.\n\
                      Stops on Ctrl-C or SIGTERM."
    )]
    Board(BoardArgs),
    /// List serial ports, marking the ones that look like ESP boards
    #[command(
        after_help = "With --probe, each ESP-looking port (or each -p PORT) is asked by its \
                      ROM loader what it is, all at once; the board is reset back into its app \
                      afterwards (on a pty, closing the port does that). A busy or silent port \
                      is listed with the reason, and the others are still probed."
    )]
    Ports(PortsArgs),
    /// Serial console only: what the board prints, and what you type (@serial text)
    #[command(
        after_help = "Reports the board's address as `board! ip …` / `board! port …` when \
                            its console shows it. Reopens the port by itself when the board \
                            resets or is plugged in again."
    )]
    Monitor(MonitorArgs),
    /// Chat panes only: N connections to a chat server (the board's, or any line-based one)
    #[command(
        after_help = "Send with `@1 text`, `@2 text`, `@all text`; end of input (Ctrl-D) or \
                            `@quit` sends what is queued and exits. Panes reconnect by themselves \
                            when the server restarts."
    )]
    Connect(ConnectArgs),
    /// The computer as the server: each connection a board (or anyone) makes becomes a chat pane
    #[command(
        after_help = "For labs where the board is the TCP client (MicroPython's socket client, \
                      ESP-IDF's tcp_client, Arduino's WiFiClient): put one of the addresses it \
                      prints into the board's code. Each connection is a pane: `chatN! \
                      accepted from IP:PORT`, then `chatN|` lines; answer with `@N text` or \
                      `@all text`. End of input (Ctrl-D) or `@quit` sends what is queued, \
                      closes the connections and exits.\n\n\
                      espchat listen                 every IPv4 address, port 8888\n\
                      espchat listen 3333            port 3333\n\
                      espchat listen 127.0.0.1:0     loopback only, any free port"
    )]
    Listen(ListenArgs),
    /// Flash an .elf or .bin to the board through its ROM loader, with progress
    #[command(
        after_help = "An .elf (and the bundled firmware) is written as espflash does: \
                      bootloader, partition table and app. A .bin is written as it is at \
                      0x10000, with --bootloader and --partition-table when given. When the \
                      board's old partition table has an otadata partition (Arduino, ESP-IDF \
                      OTA), it is erased, so the bootloader starts what was written. On a pty \
                      (e.g. `espchat board`) there are no DTR/RTS lines: the resets default to \
                      no-reset."
    )]
    Flash(FlashArgs),
    /// The one-shot: flash, provision Wi-Fi if asked, read the IP from the console, open chat panes
    #[command(
        after_help = "On a terminal it runs in the TUI (as `espchat demo` does on the virtual \
                            board). In line mode (--headless, or stdout not a terminal) it prints \
                            the events (flash!, serial|, board! ip, chatN|), takes @1 text, @all \
                            text, @serial text, @quit on stdin, and gives up with a hint when no \
                            IP shows up on the console within --ip-timeout. Lines typed before \
                            the panes are open wait for them.\n\n\
                            With several boards (-p A -p B ..., or --all): the roll-call. All \
                            are flashed at once, provisioned and watched, and each is listed \
                            as it comes up (roll! K PORT MAC HOST:PORT), or why not; --roster \
                            FILE keeps the list as CSV, and @blink K has board K flash its LED."
    )]
    FlashAndConnect(FlashAndConnectArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell
    #[command(
        after_help = "bash:       espchat completions bash > ~/.local/share/bash-completion/completions/espchat\n\
                      zsh:        espchat completions zsh > ~/.zfunc/_espchat   (with fpath+=~/.zfunc)\n\
                      fish:       espchat completions fish > ~/.config/fish/completions/espchat.fish\n\
                      PowerShell: espchat completions powershell >> $PROFILE"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one per command into DIR
    #[command(after_help = "espchat man | man -l -        read it now\n\
                      espchat man ~/.local/share/man/man1   espchat.1, espchat-flash.1, ...")]
    Man {
        /// Write espchat.1 and espchat-COMMAND.1 here instead of printing espchat.1
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PortsArgs {
    /// Ask each board's ROM loader for its chip, revision, MAC and flash size
    #[arg(long)]
    pub probe: bool,
    /// Probe this port (repeat for more) [default: every ESP-looking port]
    #[arg(short, long, value_name = "PORT", requires = "probe")]
    pub port: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BoardArgs {
    /// TCP port of the chat server on 127.0.0.1 (0 picks a free port)
    #[arg(long, value_name = "PORT", default_value_t = espchat_core::PORT)]
    pub tcp_port: u16,
    /// Also make a symlink at PATH to the serial port (removed on exit; a pty's only)
    #[arg(long, value_name = "PATH", conflicts_with = "console_tcp")]
    pub link: Option<PathBuf>,
    /// Serve the serial port on 127.0.0.1:PORT instead of a pty (0 picks a free port): open it
    /// as -p socket://127.0.0.1:PORT. The only kind on Windows, where 0 is the default
    #[arg(long, value_name = "PORT")]
    pub console_tcp: Option<u16>,
    /// Start with erased flash (a board fresh from the factory) instead of the espchat firmware
    #[arg(long)]
    pub blank: bool,
    /// Keep the 4 MB flash in FILE across runs (created if missing)
    #[arg(long, value_name = "FILE")]
    pub flash_file: Option<PathBuf>,
    /// Do not pace flashing like a real UART at the client's baud rate (for fast tests)
    #[arg(long)]
    pub no_throttle: bool,
}

#[derive(Debug, Args, Default)]
pub struct SerialArgs {
    /// Serial port, or socket://HOST:PORT, rfc2217://HOST:PORT; `tui` takes several (-p A -p B:
    /// one screen, F2/F3 switch boards) [default: $ESPCHAT_PORT, $ESPFLASH_PORT, `port` in the
    /// config file, or the one ESP board found]
    #[arg(short, long, value_name = "PORT")]
    pub port: Vec<PathBuf>,
    /// Baud rate [default: $ESPCHAT_BAUD, $ESPFLASH_BAUD, `baud` in the config file, or 115200]
    #[arg(
        short,
        long,
        value_name = "BAUD",
        value_parser = clap::value_parser!(u32).range(300..=10_000_000)
    )]
    pub baud: Option<u32>,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub serial: SerialArgs,
    /// What Enter sends after a line typed to the board [default: `line-ending` in the config
    /// file, or crlf]
    #[arg(long, value_enum, value_name = "ENDING")]
    pub line_ending: Option<LineEnding>,
    /// Show the bytes as a hex dump instead of text
    #[arg(long)]
    pub hex: bool,
    /// Prefix each console line with the time it arrived (UTC)
    #[arg(long)]
    pub timestamps: bool,
    /// The app's ELF, to decode crash backtraces on the console into function, file and line
    /// (`trace!` lines)
    #[arg(long, value_name = "PATH")]
    pub elf: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The chat server: HOST or HOST:PORT (default port 5000), e.g. 192.168.1.42
    #[arg(value_name = "HOST[:PORT]", value_parser = parse_server)]
    pub server: (String, u16),
    /// How many chat panes (connections) to open [default: `clients` in the config file, or 1]
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clients: Option<u16>,
    /// UDP instead of TCP: each line typed goes as one datagram (with its newline, as `nc -u`
    /// sends it), and each datagram received is shown as lines
    #[arg(long)]
    pub udp: bool,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to listen: PORT, HOST:PORT or [IPV6]:PORT; 0 picks a free port
    #[arg(
        value_name = "[HOST:]PORT",
        default_value = "0.0.0.0:8888",
        value_parser = espchat::listen::parse_listen_addr
    )]
    pub addr: std::net::SocketAddr,
    /// Connections open at once; more are told so and closed
    #[arg(long, value_name = "N", default_value_t = espchat::listen::DEFAULT_MAX,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u16).range(1..=1024), usize::from))]
    pub max_clients: usize,
    /// UDP instead of TCP: each address that sends a datagram becomes a pane; each line typed
    /// there goes back to it as one datagram
    #[arg(long)]
    pub udp: bool,
}

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// An ESP32 .elf (written with bootloader and partition table), or a .bin to write at
    /// 0x10000 [default: the bundled espchat firmware for the detected chip: ESP32-C3 or
    /// ESP32-C6, as an ELF]
    #[arg(value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// Serial port; `flash` takes several (-p A -p B), written at once [default: $ESPCHAT_PORT,
    /// $ESPFLASH_PORT, `port` in the config file, or the one ESP board found]
    #[arg(short, long, value_name = "PORT")]
    pub port: Vec<PathBuf>,
    /// Flash every ESP-looking port at once (`espchat ports` marks them)
    #[arg(long, conflicts_with = "port")]
    pub all: bool,
    /// The chip the board must be, e.g. esp32c3 [default: detected]
    #[arg(short, long, value_name = "CHIP", value_parser = espchat::flash::parse_chip)]
    pub chip: Option<Chip>,
    /// Baud rate to switch to once connected (the ROM loader starts at 115200)
    /// [default: $ESPCHAT_BAUD, $ESPFLASH_BAUD, `flash-baud` in the config file, or none]
    #[arg(
        short,
        long,
        value_name = "BAUD",
        value_parser = clap::value_parser!(u32).range(9600..=10_000_000)
    )]
    pub baud: Option<u32>,
    /// Talk to the ROM loader only, without uploading espflash's faster RAM stub
    #[arg(long)]
    pub no_stub: bool,
    /// With --no-stub: send the image as it is (FLASH_DATA), not deflated. By default the ROM
    /// loader gets it compressed (FLASH_DEFL_*) wherever that is shorter [the stub always
    /// compresses]
    #[arg(long, requires = "no_stub")]
    pub no_compress: bool,
    /// How to get the board into download mode [default: default-reset, no-reset on a pty]
    #[arg(long, value_enum, value_name = "R")]
    pub before: Option<Before>,
    /// What to do after flashing [default: hard-reset, no-reset on a pty]
    #[arg(long, value_enum, value_name = "R")]
    pub after: Option<After>,
    /// Write a .bin even if it is not a bootable app image (bad magic, checksum or hash)
    #[arg(long)]
    pub force: bool,
    /// A 2nd-stage bootloader .bin to write at the chip's boot address (0x0; 0x1000 on the
    /// ESP32 and ESP32-S2) [default: espflash's for an ELF, none for a .bin]
    #[arg(long, value_name = "FILE")]
    pub bootloader: Option<PathBuf>,
    /// A partition table (CSV or binary) to write at 0x8000; an ELF's app goes to its factory
    /// (or first OTA) partition [default: espflash's for an ELF, none for a .bin]
    #[arg(long, value_name = "FILE")]
    pub partition_table: Option<PathBuf>,
    /// Give up when writing makes no progress for this many seconds (erasing and verifying
    /// may take 30 s more per MB)
    #[arg(long, value_name = "SECS", default_value_t = espchat::flash::STALL_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: u64,
}

#[derive(Debug, Args)]
pub struct FlashAndConnectArgs {
    #[command(flatten)]
    pub flash: FlashArgs,
    /// How many chat panes to open (the lab: client 1 switches the LED on, client 2 off)
    /// [default: `clients` in the config file, or 2]
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clients: Option<u16>,
    /// Wi-Fi network to store on the board, sent over the console [default: [wifi] in the
    /// config file]
    #[arg(long, value_name = "SSID", env = "ESPCHAT_WIFI_SSID")]
    pub wifi_ssid: Option<String>,
    /// Its password, never shown or logged (the environment variable keeps it out of `ps`)
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "ESPCHAT_WIFI_PASSWORD",
        hide_env_values = true
    )]
    pub wifi_password: Option<String>,
    /// The LED the firmware drives, stored on the board over the console after flashing:
    /// `rgb` (the WS2812 on GPIO8 of Espressif's DevKits, the firmware's default) or a plain
    /// LED, `PIN [active-low]` (the ESP32-C3 SuperMini: `8 active-low`)
    #[arg(long, value_name = "LED", env = "ESPCHAT_LED", value_parser = parse_led)]
    pub led: Option<espchat_core::LedSetting>,
    /// Seconds to wait for the board's IP address on the console (line mode)
    #[arg(long, value_name = "SECS", default_value_t = IP_TIMEOUT_SECS)]
    pub ip_timeout: u64,
    /// Baud rate of the board's console after flashing [default: `baud` in the config file,
    /// or 115200]
    #[arg(
        long,
        value_name = "BAUD",
        value_parser = clap::value_parser!(u32).range(300..=10_000_000)
    )]
    pub monitor_baud: Option<u32>,
    /// The app's ELF, to decode crash backtraces on the console into function, file and line
    /// [default: the ELF just flashed, or the bundled firmware's symbols after flashing it]
    #[arg(long, value_name = "PATH")]
    pub elf: Option<PathBuf>,
    /// Connect to a public address the console shows, too; by default the chat panes go only
    /// to local ones (private, link-local, loopback) on a console line's word, since any device
    /// can print any address (the TUI asks)
    #[arg(long)]
    pub any_address: bool,
    /// Do not flash: provision (Wi-Fi, LED) and watch the boards as they run
    #[arg(long)]
    pub no_flash: bool,
    /// With several boards (-p A -p B, --all): write the roll (board, port, MAC, address) to
    /// this CSV file once every board is up or has failed
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct TuiArgs {
    #[command(flatten)]
    pub serial: SerialArgs,
    /// Chat panes to open once the board's IP is known [default: `clients` in the config file,
    /// or 2]
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clients: Option<u16>,
    /// Connect to a public address the console shows, too; by default the chat panes go only
    /// to local ones (private, link-local, loopback) on a console line's word, since any device
    /// can print any address (the TUI asks)
    #[arg(long)]
    pub any_address: bool,
    /// The app's ELF, to decode crash backtraces on the console into function, file and line
    /// [default: after a flash from the TUI, the bundled firmware's symbols]
    #[arg(long, value_name = "PATH")]
    pub elf: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Chat panes to open [default: `clients` in the config file, or 2]
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub clients: Option<u16>,
}

/// `HOST`, `HOST:PORT`, `[IPv6]:PORT` or a bare IPv6 address; the port defaults to 5000.
pub fn parse_server(server: &str) -> Result<(String, u16), String> {
    let bad =
        || format!("{server:?} is not HOST or HOST:PORT (e.g. 192.168.1.42 or 192.168.1.42:5000)");
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

/// `--led`: the words of the firmware's own `led` command.
fn parse_led(spec: &str) -> Result<espchat_core::LedSetting, String> {
    match espchat_core::ConsoleCommand::parse(&format!("led {}", spec.replace(',', " "))) {
        Ok(espchat_core::ConsoleCommand::Board(espchat_core::BoardCommand::Led(setting))) => {
            Ok(setting)
        }
        Ok(_) => Err("expected rgb, or a GPIO number and maybe active-low".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_led, parse_server};
    use espchat_core::{LedPin, LedSetting};

    #[test]
    fn led_settings_in_the_firmwares_words() {
        let supermini = LedSetting::Gpio(LedPin {
            pin: 8,
            active_low: true,
        });
        assert_eq!(parse_led("8,active-low"), Ok(supermini));
        assert_eq!(parse_led("8 active-low"), Ok(supermini));
        assert_eq!(parse_led("rgb"), Ok(LedSetting::Rgb));
        assert!(parse_led("eight").unwrap_err().contains("GPIO number"));
        assert!(parse_led("").is_err());
    }

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
