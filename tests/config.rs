//! The config file end to end: found at the platform's config dir, or named with `--config`;
//! defaults < file < environment < flags; bad values stop espchat with exit status 2 and a
//! message that quotes them; Wi-Fi credentials from the file reach the board and nowhere else.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::path::Path;
use std::process::Stdio;

use support::{BoardProcess, HeadlessProcess, config_home};

/// Runs `espchat args` to its end with stdin closed; (status code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &Path)]) -> (Option<i32>, String, String) {
    let output = support::espchat()
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_os_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_bad_value_is_a_usage_error_that_quotes_it_and_names_the_fix() {
    let (home, file) = config_home("# lab bench\nclients = 2\nbaud = 12\n", 0o600);
    let (code, stdout, stderr) = run(
        &["monitor", "-p", "/dev/null"],
        &[("XDG_CONFIG_HOME", home.path())],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "");
    let expected = format!(
        "espchat: config file {}: line 3: baud = 12 is not a baud rate: use 300 to 10000000, e.g. 115200 or 921600",
        file.display()
    );
    assert_eq!(stderr.trim_end(), expected);

    // A typo in a key is caught too, with the keys that exist.
    let (home, _) = config_home("clints = 3\n", 0o600);
    let (code, _, stderr) = run(
        &["connect", "127.0.0.1"],
        &[("XDG_CONFIG_HOME", home.path())],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("clints"), "{stderr}");
    assert!(stderr.contains("clients"), "{stderr}");
}

#[test]
fn a_named_config_file_must_exist_but_the_default_one_need_not() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-config.toml");
    let (code, _, stderr) = run(
        &[
            "--config",
            missing.to_str().unwrap(),
            "connect",
            "127.0.0.1",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the config file {}",
            missing.display()
        )),
        "{stderr}"
    );
    // `espchat board` reads no settings: a broken config file does not stop it.
    let (home, _) = config_home("baud = \"fast\"\n", 0o600);
    let mut board = support::espchat();
    board
        .args(["board", "--tcp-port", "0"])
        .env("XDG_CONFIG_HOME", home.path());
    let board = BoardProcess::start_command(board);
    assert!(board.serial.exists());
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let board = BoardProcess::start(&[]);
    let (home, _) = config_home("port = \"/dev/ttyUSB-from-file\"\n", 0o600);
    let home = home.path();
    let env_port = Path::new("/dev/ttyUSB-from-env");

    let (code, _, stderr) = run(&["monitor"], &[("XDG_CONFIG_HOME", home)]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("/dev/ttyUSB-from-file: not found"),
        "{stderr}"
    );

    let (code, _, stderr) = run(
        &["monitor"],
        &[("XDG_CONFIG_HOME", home), ("ESPCHAT_PORT", env_port)],
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("/dev/ttyUSB-from-env: not found"),
        "{stderr}"
    );

    let serial = board.serial.to_str().unwrap();
    let mut monitor = HeadlessProcess::start_with_env(
        &["monitor", "-p", serial],
        &[
            ("XDG_CONFIG_HOME", home.to_str().unwrap()),
            ("ESPCHAT_PORT", "/dev/ttyUSB-from-env"),
        ],
    );
    monitor.wait_for(&format!("serial! opened {serial}"));
    monitor.send("@quit");
    assert!(monitor.wait_exit().success(), "{}", monitor.stderr());
}

#[test]
fn flash_and_connect_takes_port_clients_and_wifi_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _flash_file) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().unwrap();
    let password = "hunter2hunter2";
    // Readable by everyone: espchat goes on, and says how to fix it.
    let (home, file) = config_home(
        &format!(
            "port = \"{serial}\"\nclients = 3\n\n[wifi]\nssid = \"lab net\"\npassword = \"{password}\"\n"
        ),
        0o644,
    );
    let mut oneshot = HeadlessProcess::start_with_env(
        &["flash-and-connect", "--headless"],
        &[("XDG_CONFIG_HOME", home.path().to_str().unwrap())],
    );
    oneshot.wait_for("flash! done ");
    let sent = oneshot.wait_for("serial! sending the Wi-Fi credentials");
    assert_eq!(
        sent,
        "serial! sending the Wi-Fi credentials for \"lab net\""
    );
    // The board takes them (the panes may connect before or after it says so).
    oneshot.wait_all(&[
        "espchat: wifi connecting to \"lab net\"",
        "chat1! connected 127.0.0.1:",
        "chat2! connected 127.0.0.1:",
        "chat3! connected 127.0.0.1:",
    ]);
    oneshot.send("@quit");
    let status = oneshot.wait_exit();
    let stderr = oneshot.stderr();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: {} holds a Wi-Fi password and other users can read it; fix: chmod 600",
            file.display()
        )),
        "{stderr}"
    );
    let everything = format!("{}\n{stderr}", oneshot.all_stdout().join("\n"));
    assert!(
        !everything.contains(password),
        "the password was shown:\n{everything}"
    );
}

/// A --config that is not a config file: a device that never ends, a directory. Each is a
/// usage error that says so once, without reading without end.
#[test]
fn a_config_path_that_is_no_file_is_refused_with_one_clear_message() {
    let (code, _, stderr) = run(&["--config", "/dev/zero", "connect", "127.0.0.1"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("the config file /dev/zero is over 1024 KiB"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(
        &[
            "--config",
            dir.path().to_str().unwrap(),
            "connect",
            "127.0.0.1",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
}
