//! The config file: TOML at the platform's config dir (`~/.config/espchat/config.toml` on
//! Linux) or at `--config PATH`. Every setting has a default in code; the file overrides it,
//! the environment overrides the file, and flags override everything. `assets/config.toml` is
//! the documented example.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::ValueEnum as _;
use serde::Deserialize;
use toml::{Spanned, Value};

use crate::app::keys::KeyTable;
use crate::serial::LineEnding;

/// The console's speed when nothing names one.
pub const DEFAULT_BAUD: u32 = 115_200;
/// Baud rates espchat accepts anywhere (a UART at 300 baud up to a 10 Mbaud USB bridge).
pub const BAUD_RANGE: std::ops::RangeInclusive<u32> = 300..=10_000_000;
/// Chat panes: the server has 8 slots, more panes are for testing other servers.
pub const CLIENTS_RANGE: std::ops::RangeInclusive<u16> = 1..=64;

/// The file as written. Unknown keys are refused, so a typo does not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    // Values of any type: a wrong one gets the same message as a wrong value, which says
    // what to write, rather than serde's "expected i64".
    port: Option<Spanned<Value>>,
    baud: Option<Spanned<Value>>,
    flash_baud: Option<Spanned<Value>>,
    clients: Option<Spanned<Value>>,
    line_ending: Option<Spanned<Value>>,
    wifi: Option<Wifi>,
    #[serde(default)]
    keys: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wifi {
    ssid: Spanned<String>,
    password: Option<Spanned<Value>>,
}

/// A network to store on the board. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct WifiCredentials {
    pub ssid: String,
    pub password: String,
}

impl WifiCredentials {
    /// The board's console command that stores them (docs/contract.md §4), quoted so that spaces and
    /// quotes survive.
    pub fn console_command(&self) -> String {
        format!("wifi {} {}", quote(&self.ssid), quote(&self.password))
    }

    /// Refuses what the board would refuse, with the board's own parser and words; the
    /// password is never part of the message.
    pub fn check(&self) -> Result<(), String> {
        match espchat_core::ConsoleCommand::parse(&self.console_command()) {
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// A word for the board's console parser: double quotes, with `"` and `\` escaped.
fn quote(word: &str) -> String {
    format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
}

impl fmt::Debug for WifiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WifiCredentials")
            .field("ssid", &self.ssid)
            .field("password", &"<hidden>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The IO error is part of the message, not a source: a source would print it twice.
    #[error("cannot read the config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "the config file {} is over {} KiB: that is not a config file (espchat's are a few \
         hundred bytes; see assets/config.toml)",
        path.display(),
        MAX_FILE_BYTES / 1024
    )]
    TooLarge { path: PathBuf },
    #[error("config file {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{name}={value:?} is not a baud rate: use {} to {}, e.g. 115200 or 921600", BAUD_RANGE.start(), BAUD_RANGE.end())]
    EnvironmentBaud { name: &'static str, value: String },
    /// Flags that do not go together.
    #[error("{0}")]
    Usage(String),
}

/// A config file is read up to this size: `--config /dev/zero` must not fill the memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The file's text, or `None` when it is larger than [`MAX_FILE_BYTES`].
fn read_capped(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= MAX_FILE_BYTES).then_some(text))
}

/// The settings from the file, checked, with the key table built.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file that was read; `None`: there was none, all defaults.
    pub path: Option<PathBuf>,
    port: Option<PathBuf>,
    baud: Option<u32>,
    flash_baud: Option<u32>,
    clients: Option<u16>,
    line_ending: Option<LineEnding>,
    wifi: Option<WifiCredentials>,
    pub keys: KeyTable,
    /// Things to tell the user that do not stop espchat (a password others can read).
    pub warnings: Vec<String>,
}

/// Reads a variable of the process environment; empty counts as unset, as in espflash.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

impl Config {
    /// Where the file is looked for when `--config` does not say.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "espchat")
            .map(|dirs| dirs.config_dir().join("config.toml"))
    }

    /// `--config PATH` must exist; the default file may be missing (all defaults then).
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, required) = match explicit {
            Some(path) => (path.to_owned(), true),
            None => match Self::default_path() {
                Some(path) => (path, false),
                None => return Ok(Config::default()),
            },
        };
        let text = match read_capped(&path) {
            Ok(Some(text)) => text,
            Ok(None) => return Err(ConfigError::TooLarge { path }),
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(error) => return Err(ConfigError::Read { path, error }),
        };
        let mut config = Self::parse(&text, &path)?;
        if config.has_password() && readable_by_others(&path) {
            config.warnings.push(format!(
                "{} holds a Wi-Fi password and other users can read it; fix: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
        Ok(config)
    }

    /// Checks `text` as the config file at `path` (named in the errors).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: File = toml::from_str(text).map_err(|error| invalid(toml_error(text, &error)))?;
        // `line N: key = value ...`: the value as written, and what to write instead.
        let at = |span: std::ops::Range<usize>| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let value = text.get(span).unwrap_or("?");
            move |key: &str, fix: &str| invalid(format!("line {line}: {key} = {value} {fix}"))
        };

        let port = match &file.port {
            Some(port) => match port.get_ref().as_str().map(str::trim) {
                Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
                _ => {
                    return Err(at(port.span())(
                        "port",
                        "is not a serial port: write one in quotes, e.g. \"/dev/ttyUSB0\", or remove the line to find the board by itself",
                    ));
                }
            },
            None => None,
        };
        let baud_of =
            |key: &str, value: &Option<Spanned<Value>>| -> Result<Option<u32>, ConfigError> {
                let Some(value) = value else { return Ok(None) };
                match value
                    .get_ref()
                    .as_integer()
                    .and_then(|baud| u32::try_from(baud).ok())
                {
                    Some(baud) if BAUD_RANGE.contains(&baud) => Ok(Some(baud)),
                    _ => Err(at(value.span())(
                        key,
                        &format!(
                            "is not a baud rate: use {} to {}, e.g. 115200 or 921600",
                            BAUD_RANGE.start(),
                            BAUD_RANGE.end()
                        ),
                    )),
                }
            };
        let baud = baud_of("baud", &file.baud)?;
        let flash_baud = baud_of("flash-baud", &file.flash_baud)?;
        let clients = match &file.clients {
            Some(value) => match value
                .get_ref()
                .as_integer()
                .and_then(|n| u16::try_from(n).ok())
            {
                Some(clients) if CLIENTS_RANGE.contains(&clients) => Some(clients),
                _ => {
                    return Err(at(value.span())(
                        "clients",
                        &format!(
                            "is not a number of chat panes: use {} to {}, e.g. 2 for the lab",
                            CLIENTS_RANGE.start(),
                            CLIENTS_RANGE.end()
                        ),
                    ));
                }
            },
            None => None,
        };
        let line_ending = match &file.line_ending {
            Some(value) => Some(
                value
                    .get_ref()
                    .as_str()
                    .and_then(|ending| LineEnding::from_str(ending.trim(), true).ok())
                    .ok_or_else(|| {
                        at(value.span())(
                            "line-ending",
                            "is not a line ending: use \"crlf\", \"lf\" or \"cr\"",
                        )
                    })?,
            ),
            None => None,
        };
        let wifi = match file.wifi {
            Some(Wifi { ssid, password }) => {
                let span = ssid.span();
                let password = match password {
                    None => String::new(),
                    Some(password) => match password.into_inner() {
                        Value::String(password) => password,
                        _ => {
                            return Err(invalid(
                                "[wifi] password is not text: write it in quotes, e.g. password = \"lab-password\"".into(),
                            ));
                        }
                    },
                };
                let credentials = WifiCredentials {
                    ssid: ssid.into_inner(),
                    password,
                };
                // The board's message never quotes the password, and neither does this one.
                credentials.check().map_err(|message| {
                    at(span)(
                        "[wifi] ssid",
                        &format!("with its password is refused: {message}"),
                    )
                })?;
                Some(credentials)
            }
            None => None,
        };
        let mut keys = KeyTable::default();
        for (action, chord) in &file.keys {
            keys.rebind(action, chord.get_ref()).map_err(|error| {
                at(chord.span())(&format!("[keys] {action}"), &format!("is refused: {error}"))
            })?;
        }
        keys.check()
            .map_err(|error| invalid(format!("[keys]: {error}")))?;

        Ok(Config {
            path: Some(path.to_owned()),
            port,
            baud,
            flash_baud,
            clients,
            line_ending,
            wifi,
            keys,
            warnings: Vec::new(),
        })
    }

    fn has_password(&self) -> bool {
        self.wifi
            .as_ref()
            .is_some_and(|wifi| !wifi.password.is_empty())
    }

    /// `-p`, then `ESPCHAT_PORT` / `ESPFLASH_PORT`, then the file; `None`: find the board.
    pub fn port(
        &self,
        flag: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Option<PathBuf> {
        flag.or_else(|| {
            ["ESPCHAT_PORT", "ESPFLASH_PORT"]
                .iter()
                .find_map(|name| env(name))
                .map(PathBuf::from)
        })
        .or_else(|| self.port.clone())
    }

    /// The serial console's speed: `-b`, then `ESPCHAT_BAUD` / `ESPFLASH_BAUD`, then `baud`
    /// in the file, then 115200.
    pub fn console_baud(
        &self,
        flag: Option<u32>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<u32, ConfigError> {
        Ok(match flag {
            Some(baud) => baud,
            None => env_baud(env)?.or(self.baud).unwrap_or(DEFAULT_BAUD),
        })
    }

    /// The speed to flash at: `-b`, then `ESPCHAT_BAUD` / `ESPFLASH_BAUD`, then `flash-baud` in
    /// the file; `None`: stay at the ROM loader's 115200.
    pub fn flash_baud(
        &self,
        flag: Option<u32>,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Option<u32>, ConfigError> {
        Ok(match flag {
            Some(baud) => Some(baud),
            None => env_baud(env)?.or(self.flash_baud),
        })
    }

    /// The console's speed after flashing, where `-b` and the environment name the flashing
    /// speed: the flag, then `baud` in the file, then 115200.
    pub fn monitor_baud(&self, flag: Option<u32>) -> u32 {
        flag.or(self.baud).unwrap_or(DEFAULT_BAUD)
    }

    /// Chat panes: the flag, then the file, then the command's own default.
    pub fn clients(&self, flag: Option<u16>, default: u16) -> u16 {
        flag.or(self.clients).unwrap_or(default)
    }

    /// What Enter sends to the board: the flag, then the file, then CRLF.
    pub fn line_ending(&self, flag: Option<LineEnding>) -> LineEnding {
        flag.or(self.line_ending).unwrap_or_default()
    }

    /// The network to store on the board: `--wifi-ssid` / `--wifi-password` (or their
    /// environment variables, which clap reads), then `[wifi]` in the file. A password from
    /// the file is only used with the file's network.
    /// A password flag without a network goes with the file's network.
    pub fn wifi(
        &self,
        ssid: Option<String>,
        password: Option<String>,
    ) -> Result<Option<WifiCredentials>, ConfigError> {
        let file = self.wifi.as_ref();
        let credentials = match (ssid, password) {
            (None, None) => return Ok(self.wifi.clone()),
            (Some(ssid), Some(password)) => WifiCredentials { ssid, password },
            (Some(ssid), None) => {
                let password = file
                    .filter(|file| file.ssid == ssid)
                    .map(|file| file.password.clone())
                    .unwrap_or_default();
                WifiCredentials { ssid, password }
            }
            (None, Some(password)) => match file {
                Some(file) => WifiCredentials {
                    ssid: file.ssid.clone(),
                    password,
                },
                None => {
                    return Err(ConfigError::Usage(
                        "--wifi-password needs --wifi-ssid (or `ssid` under [wifi] in the config file)".into(),
                    ));
                }
            },
        };
        credentials.check().map_err(|message| {
            ConfigError::Usage(format!("--wifi-ssid/--wifi-password: {message}"))
        })?;
        Ok(Some(credentials))
    }
}

fn env_baud(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Option<u32>, ConfigError> {
    for name in ["ESPCHAT_BAUD", "ESPFLASH_BAUD"] {
        if let Some(value) = env(name) {
            let value = value.to_string_lossy().into_owned();
            return match value.trim().parse::<u32>() {
                Ok(baud) if BAUD_RANGE.contains(&baud) => Ok(Some(baud)),
                _ => Err(ConfigError::EnvironmentBaud { name, value }),
            };
        }
    }
    Ok(None)
}

/// toml's message with its line, and the line itself unless it may hold a password: a
/// mistyped key or a broken string in `[wifi]` must not put the password on the screen.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(span) = error.span() else {
        return message.to_owned();
    };
    let number = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().take(number).collect();
    let secret = |line: &str| {
        let line = line.to_ascii_lowercase();
        line.contains("wifi") || line.contains("pass")
    };
    let in_wifi = lines
        .iter()
        .rev()
        .find(|line| line.trim_start().starts_with('['))
        .is_some_and(|header| secret(header));
    match lines.last() {
        Some(line) if in_wifi || secret(line) => {
            format!(
                "line {number}: {message} (the line is not shown: it may hold the Wi-Fi password)"
            )
        }
        Some(line) => format!("line {number}: {message}: {}", line.trim()),
        None => format!("line {number}: {message}"),
    }
}

/// Group or others may read it.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o044 != 0)
}

/// Windows has no mode bits: the config lives in the user's profile (AppData), which its ACL
/// keeps to the user.
#[cfg(windows)]
fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests;
