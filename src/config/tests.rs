use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::*;

const EXAMPLE: &str = include_str!("../../assets/config.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/home/me/.config/espchat/config.toml"))
}

/// The message for `text`, without the file name in front.
fn error(text: &str) -> String {
    let message = parse(text).unwrap_err().to_string();
    message
        .strip_prefix("config file /home/me/.config/espchat/config.toml: ")
        .unwrap_or(&message)
        .to_owned()
}

/// An environment for the precedence tests: only these variables are set.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), OsString::from(value)))
        .collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn the_example_file_states_the_real_defaults() {
    let config = parse(EXAMPLE).unwrap();
    let default = Config::default();
    let none = env(&[]);
    assert_eq!(config.keys, default.keys);
    assert_eq!(
        config.console_baud(None, &none).unwrap(),
        default.console_baud(None, &none).unwrap()
    );
    assert_eq!(config.clients(None, 2), default.clients(None, 2));
    assert_eq!(config.line_ending(None), default.line_ending(None));
    assert_eq!(config.port(None, &none), None);
    assert_eq!(config.flash_baud(None, &none).unwrap(), None);
    assert_eq!(config.wifi(None, None).unwrap(), None);
}

#[test]
fn every_commented_setting_in_the_example_is_valid() {
    // `# key = value` and `# [table]` lines are settings; other comments are prose.
    let uncommented: String = EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(setting)
                if setting.starts_with('[')
                    || setting
                        .split_once(" = ")
                        .is_some_and(|(key, _)| !key.contains(' ')) =>
            {
                setting
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = parse(&uncommented).unwrap();
    let none = env(&[]);
    assert_eq!(
        config.port(None, &none),
        Some(PathBuf::from("/dev/ttyUSB0"))
    );
    assert_eq!(config.flash_baud(None, &none).unwrap(), Some(921_600));
    assert_eq!(
        config.wifi(None, None).unwrap(),
        Some(WifiCredentials {
            ssid: "lab".into(),
            password: "lab-password".into()
        })
    );
}

#[test]
fn the_example_names_every_key_the_file_can_rebind() {
    let table = KeyTable::default();
    let names: Vec<&str> = table
        .bindings
        .iter()
        .map(|b| b.name)
        .filter(|name| !name.is_empty())
        .collect();
    for name in [
        "prefix",
        "search-find",
        "search-cancel",
        "search-older",
        "search-newer",
        "search-done",
    ] {
        assert!(names.contains(&name), "{name} cannot be rebound");
    }
    for name in names {
        let setting = format!("{name} = ");
        assert!(
            EXAMPLE.lines().any(|line| line.starts_with(&setting)),
            "the example does not show {name}"
        );
    }
}

#[test]
fn keys_rebind_the_prefix_and_the_search_keys() {
    use crate::app::keys::{Action, KeyChord, Scope};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let config = parse(
        "[keys]\nprefix = \"ctrl-a\"\nsearch-find = \"tab\"\nsearch-cancel = \"ctrl-g\"\nsearch-older = \"j\"\nsearch-newer = \"k\"\nsearch-done = \"q\"\n",
    )
    .unwrap();
    assert_eq!(config.keys.prefix(), Some(KeyChord::ctrl('a')));
    let lookup = |scope, code, modifiers| {
        config
            .keys
            .lookup(scope, &KeyEvent::new(code, modifiers), true)
            .cloned()
    };
    let none = KeyModifiers::NONE;
    let ctrl = KeyModifiers::CONTROL;
    assert_eq!(
        lookup(Scope::Serial, KeyCode::Char('a'), ctrl),
        Some(Action::Prefix)
    );
    assert_eq!(lookup(Scope::Serial, KeyCode::Char('t'), ctrl), None);
    assert_eq!(
        lookup(Scope::SearchQuery, KeyCode::Tab, none),
        Some(Action::Submit)
    );
    assert_eq!(lookup(Scope::SearchQuery, KeyCode::Enter, none), None);
    assert_eq!(
        lookup(Scope::SearchQuery, KeyCode::Char('g'), ctrl),
        Some(Action::Cancel)
    );
    assert_eq!(
        lookup(Scope::SearchMatches, KeyCode::Char('j'), none),
        Some(Action::SearchNext)
    );
    assert_eq!(lookup(Scope::SearchMatches, KeyCode::Char('n'), none), None);
    assert_eq!(
        lookup(Scope::SearchMatches, KeyCode::Char('k'), none),
        Some(Action::SearchPrev)
    );
    assert_eq!(
        lookup(Scope::SearchMatches, KeyCode::Char('q'), none),
        Some(Action::Cancel)
    );
    // A plain key cannot end the query: it would type into it.
    assert_eq!(
        error("[keys]\nsearch-find = \"x\""),
        "line 2: [keys] search-find = \"x\" is refused: x would no longer reach the search query: bind search-find to a chord with ctrl- or alt-, or to an F-key"
    );
    assert_eq!(
        error("[keys]\nsearch-older = \"N\""),
        "[keys]: N is bound to both search-older and search-newer: give one of them another key"
    );
}

#[test]
fn defaults_then_file_then_environment_then_flags() {
    let file = parse(
        "port = \"/dev/file\"\nbaud = 57600\nflash-baud = 460800\nclients = 3\nline-ending = \"lf\"\n",
    )
    .unwrap();
    let empty = Config::default();
    let none = env(&[]);
    let set = env(&[
        ("ESPCHAT_PORT", "/dev/env"),
        ("ESPCHAT_BAUD", "230400"),
        ("ESPFLASH_PORT", "/dev/espflash"),
        ("ESPFLASH_BAUD", "1"),
    ]);
    let espflash = env(&[
        ("ESPFLASH_PORT", "/dev/espflash"),
        ("ESPFLASH_BAUD", "1500000"),
    ]);

    // Port.
    assert_eq!(empty.port(None, &none), None);
    assert_eq!(file.port(None, &none), Some("/dev/file".into()));
    assert_eq!(file.port(None, &espflash), Some("/dev/espflash".into()));
    assert_eq!(file.port(None, &set), Some("/dev/env".into()));
    assert_eq!(
        file.port(Some("/dev/flag".into()), &set),
        Some("/dev/flag".into())
    );
    // The console's speed.
    assert_eq!(empty.console_baud(None, &none).unwrap(), 115_200);
    assert_eq!(file.console_baud(None, &none).unwrap(), 57_600);
    assert_eq!(file.console_baud(None, &espflash).unwrap(), 1_500_000);
    assert_eq!(file.console_baud(None, &set).unwrap(), 230_400);
    assert_eq!(file.console_baud(Some(9600), &set).unwrap(), 9600);
    // Flashing speed.
    assert_eq!(empty.flash_baud(None, &none).unwrap(), None);
    assert_eq!(file.flash_baud(None, &none).unwrap(), Some(460_800));
    assert_eq!(file.flash_baud(None, &set).unwrap(), Some(230_400));
    assert_eq!(file.flash_baud(Some(921_600), &set).unwrap(), Some(921_600));
    // After flashing, the console: the flag, then the file (the environment names flashing).
    assert_eq!(empty.monitor_baud(None), 115_200);
    assert_eq!(file.monitor_baud(None), 57_600);
    assert_eq!(file.monitor_baud(Some(74_880)), 74_880);
    // Panes and line ending.
    assert_eq!(empty.clients(None, 2), 2);
    assert_eq!(empty.clients(None, 1), 1);
    assert_eq!(file.clients(None, 2), 3);
    assert_eq!(file.clients(Some(5), 2), 5);
    assert_eq!(empty.line_ending(None), LineEnding::Crlf);
    assert_eq!(file.line_ending(None), LineEnding::Lf);
    assert_eq!(file.line_ending(Some(LineEnding::Cr)), LineEnding::Cr);
}

#[test]
fn a_bad_environment_baud_is_named() {
    let bad = env(&[("ESPCHAT_BAUD", "fast")]);
    let message = Config::default()
        .console_baud(None, &bad)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "ESPCHAT_BAUD=\"fast\" is not a baud rate: use 300 to 10000000, e.g. 115200 or 921600"
    );
    // A flag makes the variable irrelevant.
    assert_eq!(
        Config::default().console_baud(Some(9600), &bad).unwrap(),
        9600
    );
}

#[test]
fn errors_quote_the_value_its_line_and_the_fix() {
    assert_eq!(
        error("clients = 2\nbaud = 12\n"),
        "line 2: baud = 12 is not a baud rate: use 300 to 10000000, e.g. 115200 or 921600"
    );
    assert_eq!(
        error("flash-baud = -5"),
        "line 1: flash-baud = -5 is not a baud rate: use 300 to 10000000, e.g. 115200 or 921600"
    );
    assert_eq!(
        error("clients = 0"),
        "line 1: clients = 0 is not a number of chat panes: use 1 to 64, e.g. 2 for the lab"
    );
    assert_eq!(
        error("\n\nline-ending = \"crlf2\""),
        "line 3: line-ending = \"crlf2\" is not a line ending: use \"crlf\", \"lf\" or \"cr\""
    );
    assert!(error("port = \"\"").starts_with("line 1: port = \"\" is not a serial port"));
    assert_eq!(
        error("baud = \"fast\""),
        "line 1: baud = \"fast\" is not a baud rate: use 300 to 10000000, e.g. 115200 or 921600"
    );
    assert!(
        error("port = 3").starts_with("line 1: port = 3 is not a serial port: write one in quotes")
    );
    assert_eq!(
        error("[keys]\nquit = \"hyper-z\""),
        "line 2: [keys] quit = \"hyper-z\" is refused: \"hyper-z\" is not a key: write it like ctrl-q, alt-1, f5, shift-tab or pgup"
    );
    assert!(
        error("[keys]\ndance = \"f9\"")
            .contains("\"dance\" is not an action: use one of quit, help,")
    );
    assert_eq!(
        error("[keys]\nclear = \"x\""),
        "line 2: [keys] clear = \"x\" is refused: x would no longer reach the chat input line: bind clear to a chord with ctrl- or alt-, or to an F-key"
    );
    assert_eq!(
        error("[keys]\nhex = \"f5\""),
        "[keys]: F5 is bound to both flash and hex: give one of them another key"
    );
}

#[test]
fn toml_mistakes_show_where_and_what() {
    // Unknown keys are refused with the list of known ones.
    let message = error("clints = 3");
    assert!(message.contains("clints"), "{message}");
    assert!(message.contains("clients"), "{message}");
    // Syntax: toml's own message, with the line and the text...
    assert_eq!(
        error("clients = 2\nbaud = 115200 115200\n"),
        "line 2: string values must be quoted, expected literal string: baud = 115200 115200"
    );
    // ...unless the line holds a password.
    for text in [
        "[wifi]\nssid = \"lab\"\npassword = \"zebra-\nstripes\"\n",
        "[wifi]\nssid = \"lab\"\npasword = \"zebra-stripes\"\n",
        "wifi = { ssid = \"lab\", pasword = \"zebra-stripes\" }\n",
    ] {
        let message = error(text);
        assert!(
            message.ends_with("(the line is not shown: it may hold the Wi-Fi password)"),
            "{message}"
        );
        assert!(!message.contains("stripes"), "{message}");
    }
    let message = error("[wifi]\nssid = \"lab\"\npassword = 12345678\n");
    assert!(
        message.starts_with("[wifi] password is not text"),
        "{message}"
    );
    assert!(!message.contains("12345678"), "{message}");
    let message = error("[wifi\nssid = 1");
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn wifi_words_survive_the_boards_console_parser() {
    use espchat_core::{BoardCommand, ConsoleCommand};
    for (ssid, password) in [
        ("lab", "secret123"),
        ("my \"net\"", "back\\slash pass"),
        ("cafe", ""),
    ] {
        let credentials = WifiCredentials {
            ssid: ssid.into(),
            password: password.into(),
        };
        let line = credentials.console_command();
        let Ok(ConsoleCommand::Board(BoardCommand::Wifi(parsed))) = ConsoleCommand::parse(&line)
        else {
            panic!("{line:?} did not parse");
        };
        assert_eq!(
            (parsed.ssid.as_str(), parsed.password.as_str()),
            (ssid, password)
        );
        assert!(credentials.check().is_ok());
    }
}

#[test]
fn wifi_passwords_are_checked_but_never_shown() {
    let message = error("[wifi]\nssid = \"lab\"\npassword = \"short7\"\n");
    assert_eq!(
        message,
        "line 2: [wifi] ssid = \"lab\" with its password is refused: the Wi-Fi password must be 8 to 64 characters, or \"\" for an open network"
    );
    let config = parse("[wifi]\nssid = \"lab\"\npassword = \"lab-password\"\n").unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("lab-password"), "{shown}");
    let too_long = "x".repeat(33);
    assert!(error(&format!("[wifi]\nssid = \"{too_long}\"\n")).contains("1 to 32 bytes"));
}

#[test]
fn wifi_flags_and_the_file() {
    let file = parse("[wifi]\nssid = \"lab\"\npassword = \"lab-password\"\n").unwrap();
    let credentials = |ssid: &str, password: &str| {
        Some(WifiCredentials {
            ssid: ssid.into(),
            password: password.into(),
        })
    };
    assert_eq!(
        file.wifi(None, None).unwrap(),
        credentials("lab", "lab-password")
    );
    // The file's password goes with the file's network only.
    assert_eq!(
        file.wifi(Some("lab".into()), None).unwrap(),
        credentials("lab", "lab-password")
    );
    assert_eq!(
        file.wifi(Some("cafe".into()), None).unwrap(),
        credentials("cafe", "")
    );
    assert_eq!(
        file.wifi(None, Some("new-password".into())).unwrap(),
        credentials("lab", "new-password")
    );
    assert_eq!(
        file.wifi(Some("home".into()), Some("home-password".into()))
            .unwrap(),
        credentials("home", "home-password")
    );
    let empty = Config::default();
    assert_eq!(empty.wifi(None, None).unwrap(), None);
    assert!(
        empty
            .wifi(None, Some("lonely-password".into()))
            .unwrap_err()
            .to_string()
            .contains("--wifi-password needs --wifi-ssid")
    );
    let message = empty
        .wifi(Some("lab".into()), Some("short".into()))
        .unwrap_err()
        .to_string();
    assert!(message.contains("8 to 64 characters"), "{message}");
    assert!(!message.contains("short\""), "{message}");
}

#[cfg(unix)]
#[test]
fn loading_warns_when_others_can_read_a_password() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[wifi]\nssid = \"lab\"\npassword = \"lab-password\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = Config::load(Some(&path)).unwrap();
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("chmod 600"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Config::load(Some(&path)).unwrap().warnings.is_empty());
    // No password, nothing to protect.
    std::fs::write(&path, "clients = 3\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Config::load(Some(&path)).unwrap().warnings.is_empty());
    // A named file that is missing is an error; it is named.
    let missing = dir.path().join("missing.toml");
    let message = Config::load(Some(&missing)).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "cannot read the config file {}",
            missing.display()
        )),
        "{message}"
    );
}
