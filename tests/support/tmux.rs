//! A tmux server of our own and the sessions in it: start a program at a given size, read its
//! screen, wait for something to show. Shared by the TUI tests (tests/tui.rs) and the TUI
//! bench (benches/tui.rs), which include this file by path; each adds what only it needs.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A tmux server on its own socket, without a config file, killed when dropped.
pub struct Tmux {
    socket: String,
    /// The socket file, known once the server runs: tmux 3.3 leaves it behind when the server
    /// ends (the last session closed, or kill-server).
    socket_path: OnceCell<PathBuf>,
}

impl Tmux {
    /// A server on the socket `socket` (`tmux -L`); it starts with the first session.
    pub fn new(socket: String) -> Tmux {
        Tmux {
            socket,
            socket_path: OnceCell::new(),
        }
    }

    /// Runs `tmux ARGS` against this server; its output if it succeeded.
    pub fn run(&self, args: &[&str]) -> Result<Output, String> {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("tmux: {error} (apt-get install tmux)"))?;
        if !output.status.success() {
            return Err(format!(
                "tmux {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(output)
    }

    /// A detached session `name` at `width`x`height` running `command` (a shell command line)
    /// in place of a shell. Its pane stays when the program exits, to show why.
    pub fn start(
        &self,
        name: &str,
        (width, height): (u16, u16),
        command: &str,
    ) -> Result<Session<'_>, String> {
        let (w, h) = (width.to_string(), height.to_string());
        self.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &w,
            "-y",
            &h,
            &format!("exec {command}"),
        ])?;
        if self.socket_path.get().is_none()
            && let Ok(output) = self.run(&["display-message", "-p", "#{socket_path}"])
        {
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if !path.is_empty() {
                let _ = self.socket_path.set(PathBuf::from(path));
            }
        }
        let _ = self.run(&["set-option", "-t", name, "remain-on-exit", "on"]);
        let pid = String::from_utf8_lossy(
            &self
                .run(&["list-panes", "-t", name, "-F", "#{pane_pid}"])?
                .stdout,
        )
        .trim()
        .parse()
        .map_err(|error| format!("pane pid: {error}"))?;
        Ok(Session {
            tmux: self,
            name: name.to_owned(),
            pid,
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(socket) = self.socket_path.get() {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// A tmux session running one program; killed when dropped (the program by pid too, should
/// the hang-up not end it).
pub struct Session<'a> {
    pub tmux: &'a Tmux,
    pub name: String,
    /// The program's process id.
    pub pid: u32,
}

impl Session<'_> {
    /// The visible screen, as text.
    pub fn screen(&self) -> String {
        self.tmux
            .run(&["capture-pane", "-p", "-t", &self.name])
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Whether the program has exited (its pane kept, dead).
    pub fn dead_in_tmux(&self) -> bool {
        self.tmux
            .run(&["list-panes", "-t", &self.name, "-F", "#{pane_dead}"])
            .is_ok_and(|output| output.stdout.starts_with(b"1"))
    }

    /// Polls the screen every `pause` until `found` says yes: the time since `start` when it
    /// did, and that screen. An error once the program exited or `deadline` (from `start`)
    /// passed.
    pub fn wait_for(
        &self,
        start: Instant,
        deadline: Duration,
        pause: Duration,
        found: impl Fn(&str) -> bool,
    ) -> Result<(Duration, String), String> {
        loop {
            let screen = self.screen();
            if found(&screen) {
                return Ok((start.elapsed(), screen));
            }
            if self.dead_in_tmux() {
                return Err(format!(
                    "the program exited; its screen:\n{}",
                    screen.trim_end()
                ));
            }
            if start.elapsed() > deadline {
                return Err(format!(
                    "not within {deadline:?}; the screen:\n{}",
                    screen.trim_end()
                ));
            }
            thread::sleep(pause);
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.tmux.run(&["kill-session", "-t", &self.name]);
        let gone_by = Instant::now() + Duration::from_secs(3);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < gone_by {
            thread::sleep(Duration::from_millis(10));
        }
        if let Ok(pid) = i32::try_from(self.pid)
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
