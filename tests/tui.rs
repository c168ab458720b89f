//! The TUI end to end, in a real terminal: tmux runs `espchat demo` in a shell, a test types
//! into it and reads the screen (NO_COLOR, empty config).
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;
#[path = "support/tmux.rs"]
mod tmux;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tmux::{Session, Tmux};

const DEADLINE: Duration = Duration::from_secs(60);

/// A tmux server of the test's own: tests run in parallel threads of one process.
fn own_tmux() -> Tmux {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    Tmux::new(format!("espchat-test-{}-{number}", std::process::id()))
}

/// A shell in tmux with NO_COLOR set; the test types into it and reads its screen.
struct Shell<'a>(Session<'a>);

impl<'a> Shell<'a> {
    fn start(tmux: &'a Tmux, width: u16, height: u16) -> Shell<'a> {
        let session = tmux.start(
            "shell",
            (width, height),
            "env NO_COLOR=1 TERM=xterm-256color bash --norc --noprofile",
        );
        Shell(session.expect("a shell in tmux"))
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0.name];
        args.extend_from_slice(keys);
        self.0.tmux.run(&args).expect("tmux send-keys");
    }

    fn screen(&self) -> String {
        self.0.screen()
    }

    /// Types `espchat ARGS` into the shell, with `home` as its config dir.
    fn run_espchat(&self, home: &std::path::Path, args: &str) {
        let command = format!(
            "XDG_CONFIG_HOME={} {} {args}",
            home.display(),
            env!("CARGO_BIN_EXE_espchat")
        );
        self.keys(&[&command, "Enter"]);
    }

    /// Runs `espchat demo` with an empty config and waits for both chat panes; the config dir
    /// lives as long as the returned guard.
    fn demo_with_both_panes(&self) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        self.run_espchat(home.path(), "demo");
        self.wait("both panes connected", |screen| {
            screen.contains("Client 2 connected")
        });
        home
    }

    /// Presses `quit` and waits for the shell to report exit status 0; returns the screen.
    fn quit_with(&self, quit: &str) -> String {
        self.keys(&[quit]);
        self.wait_for_shell();
        self.keys(&["echo exit=$?", "Enter"]);
        self.wait("the shell back", |screen| screen.contains("exit=0"))
    }

    /// Waits until the shell has the terminal again: keys typed while espchat is still ending
    /// are not the shell's.
    fn wait_for_shell(&self) {
        let end = Instant::now() + DEADLINE;
        while self.foreground() != "bash" {
            assert!(
                Instant::now() < end,
                "espchat did not end; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The name of the program in the pane's foreground.
    fn foreground(&self) -> String {
        display(self, "#{pane_current_command}")
    }

    /// Polls the screen until `condition` holds, with a deadline.
    fn wait(&self, what: &str, condition: impl Fn(&str) -> bool) -> String {
        let poll = Duration::from_millis(100);
        match self.0.wait_for(Instant::now(), DEADLINE, poll, condition) {
            Ok((_, screen)) => screen,
            Err(error) => panic!("no {what}: {error}"),
        }
    }
}

#[test]
fn demo_flashes_finds_the_ip_chats_switches_the_led_and_quits_cleanly() {
    let server = own_tmux();
    let shell = Shell::start(&server, 140, 45);
    let config = tempfile::tempdir().unwrap();
    shell.run_espchat(config.path(), "demo --clients 2");

    shell.wait("IP on the status line", |screen| {
        screen.contains("127.0.0.1:")
    });
    shell.wait("both panes connected", |screen| {
        screen.contains("Client 2 connected")
    });
    // Focus starts in chat pane 1: client 1 may switch the LED on.
    shell.keys(&["on", "Enter"]);
    shell.wait("the LED switched on", |screen| {
        screen.contains("LED on (Client 1)")
    });

    let screen = shell.quit_with("C-q");
    assert!(
        !screen.contains("Client 1 connected"),
        "the TUI left its screen behind:\n{screen}"
    );
}

#[test]
fn demo_decodes_the_boards_panic_under_its_backtrace() {
    let server = own_tmux();
    let shell = Shell::start(&server, 160, 50);
    let _home = shell.demo_with_both_panes();
    // The console (M-0): the virtual board panics as the firmware does, with real addresses,
    // and reboots; the panes come back.
    shell.keys(&["M-0"]);
    shell.keys(&["panic", "Enter"]);
    // The panes lose the server when it reboots: the panic's lines were all printed before.
    shell.wait("the reboot after the panic", |screen| {
        screen.contains("disconnected: the server closed the connection")
    });
    // The reboot's log pushed the backtrace up: the console's search finds it, decoded. (The
    // panes may have reconnected once at the start, too: search again until it is there.)
    let decoded =
        |screen: &str| screen.contains("espchat_firmware::chat::Chat::console at src/chat.rs:");
    let end = Instant::now() + DEADLINE;
    let screen = loop {
        shell.keys(&["C-t", "/"]);
        shell.keys(&["Chat::console at", "Enter"]);
        match shell.0.wait_for(
            Instant::now(),
            Duration::from_secs(2),
            Duration::from_millis(100),
            decoded,
        ) {
            Ok((_, screen)) => break screen,
            Err(error) if Instant::now() > end => panic!("no decoded frame: {error}"),
            Err(_) => shell.keys(&["Escape"]),
        }
    };
    assert!(screen.contains("↳ 0x4207"), "{screen}");
    shell.quit_with("C-q");
}

#[test]
fn the_config_file_sets_the_panes_and_rebinds_quit() {
    let server = own_tmux();
    let shell = Shell::start(&server, 140, 45);
    let (home, _) = support::config_home("clients = 3\n\n[keys]\nquit = \"ctrl-x\"\n", 0o600);
    shell.run_espchat(home.path(), "demo");

    // Three panes, as the file says, and the footer names the new key.
    shell.wait("three panes connected", |screen| {
        screen.contains("Client 3 connected")
    });
    // The footer and the first-run hint name the new key.
    shell.wait("the new quit key in the footer", |screen| {
        let footer = screen.trim_end().lines().last().unwrap_or_default();
        footer.contains("^X  quit") && !footer.contains("^Q")
    });
    shell.wait("the new quit key in the hint", |screen| {
        screen.contains("Ctrl-X quits.")
    });
    // Ctrl-Q is no longer quit: the TUI still chats after it.
    shell.keys(&["C-q"]);
    shell.keys(&["still here", "Enter"]);
    shell.wait("the chat going on", |screen| {
        screen.contains("Client 1: still here")
    });
    shell.quit_with("C-x");
}

#[test]
fn tui_on_a_board_finds_its_ip_again_after_a_reboot() {
    let board = support::BoardProcess::start(&[]);
    let server = own_tmux();
    let shell = Shell::start(&server, 140, 45);
    let home = tempfile::tempdir().unwrap();
    shell.run_espchat(home.path(), &format!("tui -p {}", board.serial.display()));
    shell.wait("both panes connected", |screen| {
        screen.contains("Client 2 connected")
    });
    // Reboot the board from its console (a pty has no reset lines): the panes lose the
    // server, the console shows the address again, and they come back.
    shell.keys(&["M-0"]);
    shell.keys(&["reboot", "Enter"]);
    shell.wait("the panes losing the server", |screen| {
        screen.contains("disconnected: the server closed the connection")
    });
    shell.keys(&["M-1"]);
    shell.keys(&["back again", "Enter"]);
    shell.wait("the chat after the reboot", |screen| {
        screen.contains("Client 1: back again")
    });
    shell.quit_with("C-q");
}

#[test]
fn tui_flashes_a_blank_board_with_f5_stores_wifi_and_keeps_early_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _flash_file) = support::BoardProcess::blank(dir.path());
    let (home, _) = support::config_home(
        "[wifi]\nssid = \"lab net\"\npassword = \"zebra-stripes\"\n",
        0o600,
    );
    let server = own_tmux();
    let shell = Shell::start(&server, 140, 45);
    shell.run_espchat(home.path(), &format!("tui -p {}", board.serial.display()));
    // An erased board boot-loops; F5 flashes the bundled firmware.
    shell.wait("the blank board's boot loop", |screen| {
        screen.contains("invalid header")
    });
    // Typed into pane 1 while there is no server yet: it waits for one.
    shell.keys(&["early bird", "Enter"]);
    shell.keys(&["F5"]);
    shell.wait("the board storing the network", |screen| {
        screen.contains("wifi connecting to \"lab net\"")
    });
    let screen = shell.wait("both panes connected", |screen| {
        screen.contains("Client 2 connected")
    });
    assert!(
        !screen.contains("zebra"),
        "the password is on screen:\n{screen}"
    );
    shell.wait("the line typed before the board had an address", |screen| {
        screen.contains("Client 1: early bird")
    });
    shell.quit_with("C-q");
}

#[test]
fn flash_and_connect_on_a_terminal_is_the_tui() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _flash_file) = support::BoardProcess::blank(dir.path());
    let server = own_tmux();
    let shell = Shell::start(&server, 140, 45);
    let home = tempfile::tempdir().unwrap();
    shell.run_espchat(
        home.path(),
        &format!(
            "flash-and-connect -p {} --clients 3 --wifi-ssid lab --wifi-password zebra-stripes",
            board.serial.display()
        ),
    );
    shell.wait("the board storing the network", |screen| {
        screen.contains("wifi connecting to \"lab\"")
    });
    shell.wait("three panes connected", |screen| {
        screen.contains("Client 3 connected") && screen.contains("chat 3 — connected")
    });
    shell.keys(&["on", "Enter"]);
    shell.wait("the LED switched on", |screen| {
        screen.contains("LED on (Client 1)")
    });
    // The password is on the command line, and in the shell's echo of it; the TUI's own
    // screen never shows it.
    let screen = shell.screen();
    assert!(
        !screen.contains("zebra"),
        "the password is on screen:\n{screen}"
    );
    shell.quit_with("C-q");
}

#[test]
fn demo_in_line_mode_for_scripts() {
    let mut demo = support::HeadlessProcess::start(&["demo", "--headless", "--clients", "2"]);
    demo.wait_for("flash! done ");
    assert_eq!(demo.wait_for("board! ip "), "board! ip 127.0.0.1");
    demo.wait_all(&["chat1! connected 127.0.0.1:", "chat2! connected 127.0.0.1:"]);
    demo.send("@1 on");
    demo.wait_for("board! led on");
    demo.send("@quit");
    let status = demo.wait_exit();
    assert!(status.success(), "{status}: {}", demo.stderr());
}

/// `tmux display -p FORMAT` in the test's pane: the terminal's modes as tmux sees them.
fn display(shell: &Shell, format: &str) -> String {
    let output = shell
        .0
        .tmux
        .run(&["display", "-p", "-t", &shell.0.name, format])
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The espchat process the pane's shell started (its child, once it has exec'd espchat).
fn espchat_pid(tmux: &Shell) -> nix::unistd::Pid {
    let shell = display(tmux, "#{pane_pid}");
    let end = Instant::now() + DEADLINE;
    loop {
        let child = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .find_map(|entry| {
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
                let (head, tail) = stat.rsplit_once(") ")?;
                let ppid = tail.split_whitespace().nth(1)?;
                if ppid != shell || !head.ends_with("(espchat") {
                    return None;
                }
                head.split(' ').next()?.parse().ok()
            });
        if let Some(pid) = child {
            return nix::unistd::Pid::from_raw(pid);
        }
        assert!(Instant::now() < end, "no espchat process under the shell");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` to the TUI and checks that the terminal is as the shell left it: main
/// screen, no mouse reporting, the cursor shown, and the conventional exit status 128+N.
fn signal_restores_the_terminal(signal: nix::sys::signal::Signal) {
    let server = own_tmux();
    let tmux = Shell::start(&server, 140, 45);
    let _home = tmux.demo_with_both_panes();
    assert_eq!(
        display(&tmux, "#{alternate_on} #{mouse_any_flag} #{cursor_flag}"),
        "1 1 0"
    );
    nix::sys::signal::kill(espchat_pid(&tmux), signal).unwrap();
    let status = format!("exit={}", 128 + signal as i32);
    tmux.wait_for_shell();
    tmux.keys(&["echo exit=$?", "Enter"]);
    let screen = tmux.wait("the shell back", |screen| {
        screen.lines().any(|line| line.starts_with("exit="))
    });
    assert!(screen.contains(&status), "not {status}:\n{screen}");
    assert_eq!(
        display(&tmux, "#{alternate_on} #{mouse_any_flag} #{cursor_flag}"),
        "0 0 1",
        "{signal} left the terminal as the TUI had it"
    );
}

#[test]
fn sigterm_restores_the_terminal() {
    signal_restores_the_terminal(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn sigint_restores_the_terminal() {
    signal_restores_the_terminal(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sighup_restores_the_terminal() {
    signal_restores_the_terminal(nix::sys::signal::Signal::SIGHUP);
}

#[test]
fn sigusr1_restores_the_terminal() {
    // Any signal that ends a process by default, not only the usual three.
    signal_restores_the_terminal(nix::sys::signal::Signal::SIGUSR1);
}

/// Pastes `text` into the pane in one write, as a terminal does: `bracketed` wraps it in the
/// bracketed-paste markers when the program asked for them (tmux's `paste-buffer -p`).
fn paste(shell: &Shell, text: &str, bracketed: bool) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let path = file.path().to_str().unwrap();
    shell
        .0
        .tmux
        .run(&["load-buffer", "-b", "test", path])
        .unwrap();
    let mut args = vec!["paste-buffer", "-b", "test", "-t", &shell.0.name];
    if bracketed {
        args.push("-p");
    }
    shell.0.tmux.run(&args).unwrap();
}

#[test]
fn a_long_paste_then_enter_is_sent_at_once() {
    let server = own_tmux();
    let tmux = Shell::start(&server, 140, 45);
    let _home = tmux.demo_with_both_panes();
    // Over the 1 KiB crossterm reads at a time: the rest of the paste used to wait in the
    // terminal until two more keys came.
    let text = format!("pasted-{}", "x".repeat(4000));
    paste(&tmux, &text, true);
    tmux.keys(&["Enter"]);
    // The board cuts the line to 256 bytes and says so to the sender.
    tmux.wait("the pasted line at the board", |screen| {
        screen.contains("Client 1: pasted-xxxx") && screen.contains("line cut to 256 bytes")
    });
    tmux.quit_with("C-q");
}

#[test]
fn escape_then_f11_types_nothing() {
    let server = own_tmux();
    let tmux = Shell::start(&server, 140, 45);
    let _home = tmux.demo_with_both_panes();
    // In one read, ESC ESC [ 2 3 ~ is Esc to crossterm, then `[23~` as four typed keys.
    paste(&tmux, "\x1b\x1b[23~", false);
    tmux.keys(&["Escape", "F11"]);
    tmux.keys(&["after escape", "Enter"]);
    let screen = tmux.wait("the line at the board", |screen| {
        screen
            .lines()
            .any(|line| line.contains("Client 1:") && line.contains("after escape"))
    });
    let line = screen
        .lines()
        .find(|line| line.contains("Client 1:") && line.contains("after escape"))
        .unwrap_or_default();
    assert!(
        line.contains("Client 1: after escape"),
        "a key sequence became text:\n{screen}"
    );
    tmux.quit_with("C-q");
}

#[test]
fn pasted_lines_go_line_by_line_to_a_pane_and_to_the_console() {
    let server = own_tmux();
    let tmux = Shell::start(&server, 140, 45);
    let _home = tmux.demo_with_both_panes();
    // Into chat pane 1: the lines wait in the input line for Enter, then go one by one.
    paste(&tmux, "on\nstatus\n", true);
    tmux.keys(&["Enter"]);
    tmux.wait("both lines answered", |screen| {
        screen.contains("LED on (Client 1)") && screen.contains("LED is on; clients: 1,2")
    });
    // Into the serial console: to the board as typed, each line break an Enter.
    tmux.keys(&["M-0"]);
    paste(&tmux, "policy open\nstatus\n", true);
    tmux.wait("the console's answer", |screen| {
        screen.contains("espchat: LED is on; clients: 1,2; policy open")
    });
    tmux.quit_with("C-q");
}

/// Seed 004's exercise in the TUI: F9 opens the listen pane and tells our firmware to connect
/// to it; the board's connection is a pane whose lines reach the board's console and back.
#[test]
fn f9_opens_a_listen_pane_and_the_board_connects_to_it() {
    let server = own_tmux();
    let shell = Shell::start(&server, 160, 50);
    let _home = shell.demo_with_both_panes();
    shell.keys(&["F9"]);
    let screen = shell.wait("the board told where to connect", |screen| {
        screen.contains("told the board: connect 127.0.0.1 ")
    });
    assert!(
        screen.contains("listen — boards connect to 127.0.0.1:"),
        "{screen}"
    );
    // The board's connection becomes pane 3, which takes the focus.
    shell.wait("the board's connection as a pane", |screen| {
        screen.contains("chat 3 — connected from 127.0.0.1:")
    });
    shell.keys(&["hello board", "Enter"]);
    shell.wait("the line on the board's console", |screen| {
        screen.contains("espchat: received: hello board")
    });
    // From the console (Alt-0), typed to the board, over its connection, into pane 3.
    shell.keys(&["M-0"]);
    shell.keys(&["from the console", "Enter"]);
    // Twice on screen: the console's echo of what was typed, and pane 3's line from the board.
    shell.wait("the console's line in pane 3", |screen| {
        screen.matches("from the console").count() >= 2
    });
    shell.quit_with("C-q");
}

/// Issue 15 item 4: several boards on one screen. The bar lists both with their addresses;
/// F2 shows the other board, whose console and panes ran all along; what is typed goes to the
/// shown board only; F3 comes back to the first one, its scrollback kept.
#[test]
fn two_boards_on_one_screen_switch_with_f2_and_keep_running() {
    let first = support::BoardProcess::start(&[]);
    let second = support::BoardProcess::start(&[]);
    let server = own_tmux();
    let shell = Shell::start(&server, 160, 45);
    let home = tempfile::tempdir().unwrap();
    shell.run_espchat(
        home.path(),
        &format!(
            "tui -p {} -p {}",
            first.serial.display(),
            second.serial.display()
        ),
    );
    // Both boards' addresses in the bar: the second one's found while the first was shown.
    let name = |board: &support::BoardProcess| {
        board
            .serial
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    shell.wait("both boards up in the bar", |screen| {
        let bar = screen.lines().next().unwrap_or_default();
        bar.contains(&format!(" 1 {} 127.0.0.1:{} ", name(&first), first.port))
            && bar.contains(&format!(" 2 {} 127.0.0.1:{} ", name(&second), second.port))
    });
    shell.wait("the first board's panes", |screen| {
        screen.contains("Client 2 connected") && screen.contains(&first.port.to_string())
    });
    shell.keys(&["on", "Enter"]);
    shell.wait("the first board's LED", |screen| {
        screen.contains("LED on (Client 1)")
    });
    shell.keys(&["F2"]);
    // Its console and panes ran while it was not shown; its LED was not switched. (Waited for
    // as a whole: tmux may show a frame half drawn.)
    shell.wait("the second board shown, as it is", |screen| {
        screen.contains(&format!("serial {}", second.serial.display()))
            && screen.contains(&format!("listening on 127.0.0.1:{}", second.port))
            && screen.contains("Client 2 connected")
            && !screen.contains("LED on (Client 1)")
    });
    shell.keys(&["hello second", "Enter"]);
    shell.wait("a line on the second board", |screen| {
        screen.contains("Client 1: hello second")
    });
    shell.keys(&["F3"]);
    shell.wait("the first board again, its scrollback kept", |screen| {
        screen.contains(&format!("serial {}", first.serial.display()))
            && screen.contains("LED on (Client 1)")
            && !screen.contains("hello second")
    });
    shell.quit_with("C-q");
}
