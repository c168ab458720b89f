//! The commands a board accepts on its serial console (docs/contract.md §4).
//!
//! One line, one command; words are separated by spaces, and double quotes group a word that
//! contains spaces (`wifi "my net" secret`). Inside quotes, `\"` and `\\` stand for `"` and `\`.

use core::fmt;

use heapless::String;

use crate::bridge::{BRIDGE_PORT, HOST_MAX, Target};

/// Longest SSID 802.11 allows, in bytes.
pub const SSID_MAX: usize = 32;
/// WPA2 passphrases are 8 to 63 characters; 64 hex digits are a raw key.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 64;
/// Longest single word the parser keeps.
const WORD_MAX: usize = 64;

/// Who may switch the LED.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// The lab exercise: only client 1 may switch it on, only client 2 may switch it off.
    #[default]
    Lab,
    /// Any client may switch it either way.
    Open,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Lab => "lab",
            Policy::Open => "open",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Wi-Fi station credentials. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct WifiCredentials {
    pub ssid: String<SSID_MAX>,
    /// Empty for an open network.
    pub password: String<PASSWORD_MAX>,
}

impl fmt::Debug for WifiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WifiCredentials")
            .field("ssid", &self.ssid.as_str())
            .field("password", &"********")
            .finish()
    }
}

/// A plain GPIO LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedPin {
    pub pin: u8,
    pub active_low: bool,
}

/// The LED a board drives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LedSetting {
    /// The DevKit's addressable RGB LED (WS2812 on GPIO8): the default (`led rgb`).
    #[default]
    Rgb,
    /// A plain LED on a GPIO (`led <pin> [active-low]`).
    Gpio(LedPin),
}

impl LedSetting {
    /// What the board says of its LED at boot (`led: ...`), naming the other choice: the
    /// default suits Espressif's DevKits, and the ESP32-C3 SuperMini's plain LED on the same pin
    /// needs a command (the WS2812 signal, low when idle, leaves an active-low LED lit).
    pub fn describe(self) -> impl fmt::Display {
        LedDescription(self)
    }
}

struct LedDescription(LedSetting);

impl fmt::Display for LedDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            LedSetting::Rgb => f.write_str(
                "the RGB LED (WS2812 on GPIO8, as on the ESP32-C3/C6 DevKits); a plain LED \
                 instead, like the ESP32-C3 SuperMini's: led 8 active-low",
            ),
            LedSetting::Gpio(LedPin { pin, active_low }) => {
                write!(f, "a plain LED on GPIO{pin}")?;
                if active_low {
                    f.write_str(", active-low")?;
                }
                f.write_str(" (the RGB LED: led rgb)")
            }
        }
    }
}

/// Commands that need the board itself (radio, pins, reset); the chat server cannot carry them
/// out, so [`crate::Server::console`] hands them back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardCommand {
    Wifi(WifiCredentials),
    Led(LedSetting),
    Reboot,
    /// Print where the chat is served again, as the board did when its network came up
    /// (`got ip: A`, `listening on A:P`): a host tool that missed the boot log asks with `ip`.
    /// Only the board knows its address, so `status` asks for this too.
    Address,
    /// Crash on purpose: shows what a panic prints, and lets a host tool decode it.
    Panic,
    /// Flash the LED for [`BLINK_SECS`] so that people find this board on a table of them.
    Blink,
    /// Become a TCP client of this server ([`crate::Bridge`]).
    Connect(Target),
    /// Close the bridge's connection.
    Disconnect,
}

/// How long `blink` flashes the LED.
pub const BLINK_SECS: u32 = 5;

impl fmt::Display for BoardCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoardCommand::Wifi(credentials) if credentials.password.is_empty() => {
                write!(f, "wifi \"{}\" (open network)", credentials.ssid)
            }
            BoardCommand::Wifi(credentials) => write!(f, "wifi \"{}\" ********", credentials.ssid),
            BoardCommand::Led(LedSetting::Rgb) => f.write_str("led rgb"),
            BoardCommand::Led(LedSetting::Gpio(LedPin { pin, active_low })) => {
                write!(f, "led {pin}")?;
                if *active_low {
                    f.write_str(" active-low")?;
                }
                Ok(())
            }
            BoardCommand::Reboot => f.write_str("reboot"),
            BoardCommand::Address => f.write_str("ip"),
            BoardCommand::Panic => f.write_str("panic"),
            BoardCommand::Blink => f.write_str("blink"),
            BoardCommand::Connect(target) => write!(f, "connect {} {}", target.host, target.port),
            BoardCommand::Disconnect => f.write_str("disconnect"),
        }
    }
}

/// One parsed console line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleCommand {
    Board(BoardCommand),
    Status,
    Policy(Policy),
    Help,
}

/// Why a console line is not a command. The messages are printed on the console as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleError {
    /// A blank line: not an error worth printing.
    Empty,
    Unknown(String<16>),
    Usage(&'static str),
    UnterminatedQuote,
    SsidLength,
    PasswordLength,
    Pin,
    Policy,
    Port,
    Host,
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::Empty => f.write_str("empty command"),
            ConsoleError::Unknown(word) => {
                write!(f, "unknown command \"{word}\"; type help for the list")
            }
            ConsoleError::Usage(usage) => write!(f, "usage: {usage}"),
            ConsoleError::UnterminatedQuote => f.write_str("missing closing quote (\")"),
            ConsoleError::SsidLength => write!(f, "the SSID must be 1 to {SSID_MAX} bytes"),
            ConsoleError::PasswordLength => write!(
                f,
                "the Wi-Fi password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters, \
                 or \"\" for an open network"
            ),
            ConsoleError::Pin => {
                f.write_str("the LED pin must be a GPIO number, e.g. led 8 (or led rgb)")
            }
            ConsoleError::Policy => f.write_str("policy must be lab or open, e.g. policy open"),
            ConsoleError::Port => {
                f.write_str("the port must be 1 to 65535, e.g. connect 192.168.1.20 8888")
            }
            ConsoleError::Host => write!(
                f,
                "the host must be 1 to {HOST_MAX} bytes, e.g. 192.168.1.20"
            ),
        }
    }
}

impl core::error::Error for ConsoleError {}

const USAGE_WIFI: &str = "wifi <ssid> <password>  (quote words with spaces: wifi \"my net\" pass)";
const USAGE_LED: &str = "led <pin> [active-low]  or  led rgb";
const USAGE_POLICY: &str = "policy lab|open";
const USAGE_CONNECT: &str = "connect <host> [port]  (port 8888 if left out)";

/// The console help, one line each.
pub const CONSOLE_HELP: [&str; 11] = [
    "commands:",
    "  wifi <ssid> <password>   store Wi-Fi credentials and reconnect",
    "  ip                       the board's address and chat port again",
    "  status                   LED, clients, policy and the address",
    "  policy lab|open          who may switch the LED",
    "  led <pin> [active-low]   drive a plain GPIO LED (led rgb: the RGB LED)",
    "  blink                    flash the LED for 5 s: which board is this?",
    "  connect <host> [port]    be a TCP client: typed lines go there (port 8888)",
    "  disconnect               close that connection; the console takes commands again",
    "  panic                    crash on purpose: the backtrace, then a reboot",
    "  reboot | help",
];

impl ConsoleCommand {
    pub fn parse(line: &str) -> Result<Self, ConsoleError> {
        // What a UART holds from before the command (a flashing tool's last bytes, boot noise)
        // arrives decoded as U+FFFD or control characters: it is not part of the command.
        let line =
            line.trim_start_matches(|c: char| c == char::REPLACEMENT_CHARACTER || c.is_control());
        let mut words = Words { rest: line };
        let Some(command) = words.next() else {
            return Err(ConsoleError::Empty);
        };
        let command = command.map_err(|_| ConsoleError::Unknown(String::new()))?;
        let command = match command.to_ascii_lowercase_word() {
            Some(word) => word,
            None => return Err(ConsoleError::Unknown(prefix(&command))),
        };
        let parsed = match command.as_str() {
            "wifi" => ConsoleCommand::Board(BoardCommand::Wifi(parse_wifi(&mut words)?)),
            "led" => ConsoleCommand::Board(BoardCommand::Led(parse_led(&mut words)?)),
            "policy" => {
                let word = words.next().ok_or(ConsoleError::Usage(USAGE_POLICY))?;
                let word = word.map_err(|_| ConsoleError::Policy)?;
                let policy = match word.to_ascii_lowercase_word().as_deref() {
                    Some("lab") => Policy::Lab,
                    Some("open") => Policy::Open,
                    _ => return Err(ConsoleError::Policy),
                };
                ConsoleCommand::Policy(policy)
            }
            "status" => ConsoleCommand::Status,
            "ip" => ConsoleCommand::Board(BoardCommand::Address),
            "reboot" | "restart" => ConsoleCommand::Board(BoardCommand::Reboot),
            "panic" => ConsoleCommand::Board(BoardCommand::Panic),
            "blink" => ConsoleCommand::Board(BoardCommand::Blink),
            "connect" => ConsoleCommand::Board(BoardCommand::Connect(parse_target(&mut words)?)),
            "disconnect" => ConsoleCommand::Board(BoardCommand::Disconnect),
            "help" | "?" => ConsoleCommand::Help,
            _ => return Err(ConsoleError::Unknown(prefix(&command))),
        };
        let usage = match &parsed {
            ConsoleCommand::Board(BoardCommand::Wifi(_)) => USAGE_WIFI,
            ConsoleCommand::Board(BoardCommand::Led(_)) => USAGE_LED,
            ConsoleCommand::Policy(_) => USAGE_POLICY,
            ConsoleCommand::Board(BoardCommand::Reboot) => "reboot",
            ConsoleCommand::Board(BoardCommand::Address) => "ip",
            ConsoleCommand::Board(BoardCommand::Panic) => "panic",
            ConsoleCommand::Board(BoardCommand::Blink) => "blink",
            ConsoleCommand::Board(BoardCommand::Connect(_)) => USAGE_CONNECT,
            ConsoleCommand::Board(BoardCommand::Disconnect) => "disconnect",
            ConsoleCommand::Status => "status",
            ConsoleCommand::Help => "help",
        };
        match words.next() {
            None => Ok(parsed),
            Some(_) => Err(ConsoleError::Usage(usage)),
        }
    }
}

fn parse_wifi(words: &mut Words<'_>) -> Result<WifiCredentials, ConsoleError> {
    let ssid = match words.next() {
        None => return Err(ConsoleError::Usage(USAGE_WIFI)),
        Some(Err(WordError::UnterminatedQuote)) => return Err(ConsoleError::UnterminatedQuote),
        Some(Err(WordError::TooLong)) => return Err(ConsoleError::SsidLength),
        Some(Ok(word)) => word,
    };
    let ssid = String::try_from(ssid.as_str()).map_err(|_| ConsoleError::SsidLength)?;
    if ssid.is_empty() {
        return Err(ConsoleError::SsidLength);
    }
    let password = match words.next() {
        None => String::new(),
        Some(Err(WordError::UnterminatedQuote)) => return Err(ConsoleError::UnterminatedQuote),
        Some(Err(WordError::TooLong)) => return Err(ConsoleError::PasswordLength),
        Some(Ok(word)) => word,
    };
    if !password.is_empty() && password.len() < PASSWORD_MIN {
        return Err(ConsoleError::PasswordLength);
    }
    Ok(WifiCredentials { ssid, password })
}

/// `<host> [port]`, or `<host>:<port>` as `nc` users write it.
fn parse_target(words: &mut Words<'_>) -> Result<Target, ConsoleError> {
    let first = words
        .next()
        .ok_or(ConsoleError::Usage(USAGE_CONNECT))?
        .map_err(|_| ConsoleError::Host)?;
    let second = match words.next() {
        None => None,
        Some(Ok(word)) => Some(word),
        Some(Err(_)) => return Err(ConsoleError::Port),
    };
    let (host, port) = match (first.rsplit_once(':'), second.as_deref()) {
        // One colon: host:port. More: an IPv6 address.
        (Some((host, port)), None) if !host.contains(':') => (host, Some(port)),
        (Some((host, _)), Some(_)) if !host.contains(':') => {
            return Err(ConsoleError::Usage(USAGE_CONNECT));
        }
        (_, port) => (first.as_str(), port),
    };
    let port = match port {
        None => BRIDGE_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&port| port != 0)
            .ok_or(ConsoleError::Port)?,
    };
    if host.is_empty() {
        return Err(ConsoleError::Host);
    }
    let host = String::try_from(host).map_err(|_| ConsoleError::Host)?;
    Ok(Target { host, port })
}

fn parse_led(words: &mut Words<'_>) -> Result<LedSetting, ConsoleError> {
    let word = words.next().ok_or(ConsoleError::Usage(USAGE_LED))?;
    let word = word.map_err(|_| ConsoleError::Pin)?;
    if word.eq_ignore_ascii_case("rgb") {
        return Ok(LedSetting::Rgb);
    }
    let pin = word.parse::<u8>().map_err(|_| ConsoleError::Pin)?;
    let active_low = match words.next() {
        None => false,
        Some(Ok(word)) => match word.to_ascii_lowercase_word().as_deref() {
            Some("active-low") => true,
            Some("active-high") => false,
            _ => return Err(ConsoleError::Usage(USAGE_LED)),
        },
        Some(Err(_)) => return Err(ConsoleError::Usage(USAGE_LED)),
    };
    Ok(LedSetting::Gpio(LedPin { pin, active_low }))
}

fn prefix(word: &str) -> String<16> {
    let mut out = String::new();
    for c in word.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

type Word = String<WORD_MAX>;

trait LowercaseWord {
    /// The word in ASCII lower case, if it is short enough to be a keyword.
    fn to_ascii_lowercase_word(&self) -> Option<String<16>>;
}

impl LowercaseWord for Word {
    fn to_ascii_lowercase_word(&self) -> Option<String<16>> {
        let mut out = String::try_from(self.as_str()).ok()?;
        out.make_ascii_lowercase();
        Some(out)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum WordError {
    UnterminatedQuote,
    TooLong,
}

/// Where the secret part of a (possibly unfinished) console line starts: everything after the
/// SSID of a `wifi` command, in bytes from the start of `line`. `None` for other commands.
pub(crate) fn secret_start(line: &str) -> Option<usize> {
    let command =
        line.trim_start_matches(|c: char| c == char::REPLACEMENT_CHARACTER || c.is_control());
    let mut words = Words { rest: command };
    let keyword = words.next()?.ok()?.to_ascii_lowercase_word()?;
    if keyword != "wifi" {
        return None;
    }
    // The SSID; unfinished (no space after it yet), it leaves nothing behind.
    let _ = words.next()?;
    Some(line.len() - words.rest.len())
}

/// Splits a line into words, shell-style: spaces separate, double quotes group.
struct Words<'a> {
    rest: &'a str,
}

impl Iterator for Words<'_> {
    type Item = Result<Word, WordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rest = self.rest.trim_start();
        if self.rest.is_empty() {
            return None;
        }
        let mut word = Word::new();
        let mut too_long = false;
        let mut quoted = false;
        let mut chars = self.rest.char_indices();
        let mut end = self.rest.len();
        while let Some((at, c)) = chars.next() {
            let literal = match c {
                '"' => {
                    quoted = !quoted;
                    continue;
                }
                '\\' if quoted => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => escaped,
                    Some((_, other)) => {
                        too_long |= word.push('\\').is_err();
                        other
                    }
                    None => '\\',
                },
                c if c.is_whitespace() && !quoted => {
                    end = at;
                    break;
                }
                c => c,
            };
            too_long |= word.push(literal).is_err();
        }
        self.rest = &self.rest[end..];
        Some(if quoted {
            self.rest = "";
            Err(WordError::UnterminatedQuote)
        } else if too_long {
            Err(WordError::TooLong)
        } else {
            Ok(word)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wifi(ssid: &str, password: &str) -> ConsoleCommand {
        ConsoleCommand::Board(BoardCommand::Wifi(WifiCredentials {
            ssid: ssid.try_into().unwrap(),
            password: password.try_into().unwrap(),
        }))
    }

    #[test]
    fn wifi_with_plain_and_quoted_words() {
        assert_eq!(
            ConsoleCommand::parse("wifi labnet secret123"),
            Ok(wifi("labnet", "secret123"))
        );
        assert_eq!(
            ConsoleCommand::parse("  WIFI \"my net\" \"pass word\"  "),
            Ok(wifi("my net", "pass word"))
        );
        assert_eq!(
            ConsoleCommand::parse(r#"wifi "say \"hi\"" back\slash"#),
            Ok(wifi("say \"hi\"", "back\\slash"))
        );
    }

    #[test]
    fn wifi_open_network() {
        assert_eq!(ConsoleCommand::parse("wifi cafe"), Ok(wifi("cafe", "")));
        assert_eq!(
            ConsoleCommand::parse("wifi cafe \"\""),
            Ok(wifi("cafe", ""))
        );
    }

    #[test]
    fn wifi_errors() {
        assert_eq!(
            ConsoleCommand::parse("wifi"),
            Err(ConsoleError::Usage(USAGE_WIFI))
        );
        assert_eq!(
            ConsoleCommand::parse("wifi \"my net secret"),
            Err(ConsoleError::UnterminatedQuote)
        );
        assert_eq!(
            ConsoleCommand::parse("wifi net short"),
            Err(ConsoleError::PasswordLength)
        );
        let long_ssid = "wifi 123456789012345678901234567890123 password";
        assert_eq!(
            ConsoleCommand::parse(long_ssid),
            Err(ConsoleError::SsidLength)
        );
        let long_password = std::format!("wifi net {}", "p".repeat(65));
        assert_eq!(
            ConsoleCommand::parse(&long_password),
            Err(ConsoleError::PasswordLength)
        );
        assert_eq!(
            ConsoleCommand::parse("wifi \"\" password"),
            Err(ConsoleError::SsidLength)
        );
        assert_eq!(
            ConsoleCommand::parse("wifi a bbbbbbbb extra"),
            Err(ConsoleError::Usage(USAGE_WIFI))
        );
    }

    #[test]
    fn password_is_never_shown() {
        let ConsoleCommand::Board(command) =
            ConsoleCommand::parse("wifi net hunter2hunter2").unwrap()
        else {
            panic!("not a board command");
        };
        let shown = std::format!("{command} {command:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("\"net\""), "{shown}");
    }

    #[test]
    fn policy() {
        assert_eq!(
            ConsoleCommand::parse("policy open"),
            Ok(ConsoleCommand::Policy(Policy::Open))
        );
        assert_eq!(
            ConsoleCommand::parse("policy LAB"),
            Ok(ConsoleCommand::Policy(Policy::Lab))
        );
        assert_eq!(
            ConsoleCommand::parse("policy closed"),
            Err(ConsoleError::Policy)
        );
        assert_eq!(
            ConsoleCommand::parse("policy"),
            Err(ConsoleError::Usage(USAGE_POLICY))
        );
    }

    #[test]
    fn the_led_says_what_it_is_and_how_to_change_it() {
        let rgb = std::format!("{}", LedSetting::Rgb.describe());
        assert!(rgb.starts_with("the RGB LED (WS2812 on GPIO8"), "{rgb}");
        assert!(rgb.ends_with("SuperMini's: led 8 active-low"), "{rgb}");
        // The hint is a command the parser takes.
        let hint = rgb.rsplit(": ").next().unwrap();
        assert_eq!(
            ConsoleCommand::parse(hint),
            Ok(ConsoleCommand::Board(BoardCommand::Led(LedSetting::Gpio(
                LedPin {
                    pin: 8,
                    active_low: true
                }
            ))))
        );
        let plain = LedSetting::Gpio(LedPin {
            pin: 8,
            active_low: true,
        });
        assert_eq!(
            std::format!("{}", plain.describe()),
            "a plain LED on GPIO8, active-low (the RGB LED: led rgb)"
        );
    }

    #[test]
    fn blink() {
        assert_eq!(
            ConsoleCommand::parse("blink"),
            Ok(ConsoleCommand::Board(BoardCommand::Blink))
        );
        assert_eq!(std::format!("{}", BoardCommand::Blink), "blink");
        assert!(
            CONSOLE_HELP
                .iter()
                .any(|line| line.trim_start().starts_with("blink"))
        );
    }

    #[test]
    fn connect() {
        let target = |host: &str, port| {
            Ok(ConsoleCommand::Board(BoardCommand::Connect(Target {
                host: String::try_from(host).unwrap(),
                port,
            })))
        };
        assert_eq!(
            ConsoleCommand::parse("connect 192.168.1.20 3333"),
            target("192.168.1.20", 3333)
        );
        assert_eq!(
            ConsoleCommand::parse("Connect 192.168.1.20:3333"),
            target("192.168.1.20", 3333)
        );
        assert_eq!(
            ConsoleCommand::parse("connect mypc.local"),
            target("mypc.local", 8888)
        );
        assert_eq!(
            ConsoleCommand::parse("connect fe80::1 9000"),
            target("fe80::1", 9000)
        );
        for (line, error) in [
            ("connect", ConsoleError::Usage(USAGE_CONNECT)),
            ("connect 10.0.0.1 0", ConsoleError::Port),
            ("connect 10.0.0.1 70000", ConsoleError::Port),
            ("connect 10.0.0.1:x", ConsoleError::Port),
            ("connect :5000", ConsoleError::Host),
            ("connect 10.0.0.1:1 2", ConsoleError::Usage(USAGE_CONNECT)),
            ("connect 10.0.0.1 1 2", ConsoleError::Usage(USAGE_CONNECT)),
        ] {
            assert_eq!(ConsoleCommand::parse(line), Err(error), "{line}");
        }
        assert_eq!(
            ConsoleCommand::parse("disconnect"),
            Ok(ConsoleCommand::Board(BoardCommand::Disconnect))
        );
        let command = BoardCommand::Connect(Target {
            host: String::try_from("10.0.0.1").unwrap(),
            port: 5,
        });
        assert_eq!(std::format!("{command}"), "connect 10.0.0.1 5");
    }

    #[test]
    fn led() {
        let led = |pin, active_low| {
            Ok(ConsoleCommand::Board(BoardCommand::Led(LedSetting::Gpio(
                LedPin { pin, active_low },
            ))))
        };
        assert_eq!(ConsoleCommand::parse("led 8 active-low"), led(8, true));
        assert_eq!(ConsoleCommand::parse("led 2"), led(2, false));
        assert_eq!(ConsoleCommand::parse("led 2 active-high"), led(2, false));
        assert_eq!(ConsoleCommand::parse("led eight"), Err(ConsoleError::Pin));
        assert_eq!(ConsoleCommand::parse("led 300"), Err(ConsoleError::Pin));
        assert_eq!(
            ConsoleCommand::parse("led 8 dim"),
            Err(ConsoleError::Usage(USAGE_LED))
        );
        assert_eq!(
            ConsoleCommand::parse("led RGB"),
            Ok(ConsoleCommand::Board(BoardCommand::Led(LedSetting::Rgb)))
        );
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ConsoleCommand::parse("status"), Ok(ConsoleCommand::Status));
        // Noise the UART held from before: a flasher's last SLIP bytes, decoded.
        assert_eq!(
            ConsoleCommand::parse("\u{fffd}\u{fffd}status"),
            Ok(ConsoleCommand::Status)
        );
        assert_eq!(
            ConsoleCommand::parse("\u{fffd}\u{1b}policy open"),
            Ok(ConsoleCommand::Policy(Policy::Open))
        );
        assert_eq!(ConsoleCommand::parse("Help"), Ok(ConsoleCommand::Help));
        assert_eq!(
            ConsoleCommand::parse("reboot"),
            Ok(ConsoleCommand::Board(BoardCommand::Reboot))
        );
        assert_eq!(
            ConsoleCommand::parse("panic"),
            Ok(ConsoleCommand::Board(BoardCommand::Panic))
        );
        assert_eq!(
            ConsoleCommand::parse("panic now"),
            Err(ConsoleError::Usage("panic"))
        );
        assert_eq!(
            ConsoleCommand::parse("status now"),
            Err(ConsoleError::Usage("status"))
        );
        assert_eq!(
            ConsoleCommand::parse("\u{fffd}IP"),
            Ok(ConsoleCommand::Board(BoardCommand::Address))
        );
        assert_eq!(
            ConsoleCommand::parse("ip 1.2.3.4"),
            Err(ConsoleError::Usage("ip"))
        );
    }

    #[test]
    fn blank_and_unknown() {
        assert_eq!(ConsoleCommand::parse("   "), Err(ConsoleError::Empty));
        let err = ConsoleCommand::parse("flash now").unwrap_err();
        assert_eq!(
            std::format!("{err}"),
            "unknown command \"flash\"; type help for the list"
        );
        let long = ConsoleCommand::parse("abcdefghijklmnopqrstuvwxyz").unwrap_err();
        assert_eq!(
            long,
            ConsoleError::Unknown("abcdefghijklmnop".try_into().unwrap())
        );
    }
}
