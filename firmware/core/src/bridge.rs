//! The board as a TCP client: seed 004's serial-to-TCP bridge, as the console commands
//! `connect <host> [port]` and `disconnect` (docs/contract.md §4).
//!
//! Sans-IO like [`crate::Server`]: the glue (embassy-net on the firmware, tokio on the virtual
//! board) opens the connection, keeps the timer and moves the bytes; the bridge decides what
//! happens and what the console says. While it is on, every console line but `disconnect`
//! goes over the connection; every line that comes back is printed as `received: <text>`. A
//! server that is not up, or that goes away, is tried again after 1, 2, 4 ... up to 30 s,
//! until `disconnect`.

use core::fmt::{self, Write as _};

use heapless::String;

use crate::line::{LineReader, MAX_LINE};

/// Longest host name `connect` takes (an IPv4 address is at most 15).
pub const HOST_MAX: usize = 64;
/// The port `connect` uses when none is given: `espchat listen`'s, the classic examples'.
pub const BRIDGE_PORT: u16 = 8888;
/// The first wait before trying again, and the longest.
const BACKOFF_FIRST_SECS: u32 = 1;
const BACKOFF_MAX_SECS: u32 = 30;
/// A console line sent over the connection, with its `\n`.
const SEND_MAX: usize = MAX_LINE + 1;
/// A log line: `received: ` and a relayed line, or a host, a port and a reason.
const LOG_LINE: usize = MAX_LINE + 64;

/// Where the board connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String<HOST_MAX>,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What the glue must do for the bridge, in the order given.
#[derive(Debug, PartialEq, Eq)]
pub enum BridgeOutput<'a> {
    /// Open a connection to the target now; report [`Bridge::connected`] or
    /// [`Bridge::failed`].
    Connect(&'a Target),
    /// Call [`Bridge::retry`] after this many seconds.
    RetryAfter(u32),
    /// Write these bytes to the connection.
    Send(&'a [u8]),
    /// Close the connection, or give up the attempt in progress, and forget any retry.
    Close,
    /// A console log line, printed as `espchat: <line>`.
    Log(&'a str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Off,
    Connecting,
    Connected,
    /// Until the retry timer fires.
    Waiting,
}

/// The bridge's state (see the module's comment).
pub struct Bridge {
    target: Option<Target>,
    state: State,
    /// Attempts that failed in a row.
    failures: u32,
    reader: LineReader,
}

impl Default for Bridge {
    fn default() -> Self {
        Self::new()
    }
}

impl Bridge {
    pub fn new() -> Self {
        Bridge {
            target: None,
            state: State::Off,
            failures: 0,
            reader: LineReader::new(),
        }
    }

    /// Whether console lines go to the bridge ([`Bridge::console`]).
    pub fn is_on(&self) -> bool {
        self.state != State::Off
    }

    /// Connected, or trying to.
    pub fn target(&self) -> Option<&Target> {
        self.target.as_ref().filter(|_| self.is_on())
    }

    /// `connect <host> [port]`: connects, after closing what the bridge had.
    pub fn connect(&mut self, target: Target, out: &mut impl FnMut(BridgeOutput<'_>)) {
        if self.is_on() {
            out(BridgeOutput::Close);
            if let Some(old) = &self.target {
                log(out, format_args!("disconnected from {old}"));
            }
        }
        self.reader = LineReader::new();
        self.failures = 0;
        self.state = State::Connecting;
        let target = self.target.insert(target);
        log(out, format_args!("connecting to {target}"));
        out(BridgeOutput::Connect(target));
    }

    /// The connection is made.
    pub fn connected(&mut self, out: &mut impl FnMut(BridgeOutput<'_>)) {
        let Some(target) = self
            .target
            .as_ref()
            .filter(|_| self.state == State::Connecting)
        else {
            return;
        };
        self.state = State::Connected;
        self.failures = 0;
        log(out, format_args!("connected to {target}"));
    }

    /// The attempt to connect failed (refused, no route, timed out): try again later.
    pub fn failed(&mut self, reason: &str, out: &mut impl FnMut(BridgeOutput<'_>)) {
        let Some(target) = self
            .target
            .as_ref()
            .filter(|_| self.state == State::Connecting)
        else {
            return;
        };
        self.failures = self.failures.saturating_add(1);
        let secs = backoff_secs(self.failures);
        self.state = State::Waiting;
        log(
            out,
            format_args!("cannot connect to {target}: {reason}; trying again in {secs} s"),
        );
        out(BridgeOutput::RetryAfter(secs));
    }

    /// The connection ended (the server closed or reset it): connect again after a while.
    pub fn closed(&mut self, reason: &str, out: &mut impl FnMut(BridgeOutput<'_>)) {
        if self.state != State::Connected {
            return;
        }
        self.flush(out);
        let Some(target) = &self.target else { return };
        self.failures = 1;
        let secs = backoff_secs(self.failures);
        self.state = State::Waiting;
        log(out, format_args!("disconnected from {target}"));
        log(out, format_args!("{reason}; connecting again in {secs} s"));
        out(BridgeOutput::RetryAfter(secs));
    }

    /// The retry timer fired.
    pub fn retry(&mut self, out: &mut impl FnMut(BridgeOutput<'_>)) {
        let Some(target) = self
            .target
            .as_ref()
            .filter(|_| self.state == State::Waiting)
        else {
            return;
        };
        self.state = State::Connecting;
        out(BridgeOutput::Connect(target));
    }

    /// Bytes from the server: each complete line is printed.
    pub fn received(&mut self, mut bytes: &[u8], out: &mut impl FnMut(BridgeOutput<'_>)) {
        if self.state != State::Connected {
            return;
        }
        while let Some(line) = self.reader.next_line(&mut bytes) {
            log(out, format_args!("received: {}", line.text));
        }
    }

    /// A line typed on the console. False when the bridge is off and the line is a command
    /// for the board; true when the bridge took it.
    pub fn console(&mut self, line: &str, out: &mut impl FnMut(BridgeOutput<'_>)) -> bool {
        if !self.is_on() {
            return false;
        }
        if line.trim().eq_ignore_ascii_case("disconnect") {
            self.disconnect(out);
            return true;
        }
        let Some(target) = &self.target else {
            return false;
        };
        if self.state == State::Connected {
            let mut bytes = heapless::Vec::<u8, SEND_MAX>::new();
            let cut = floor_char_boundary(line, MAX_LINE);
            // Fits: at most MAX_LINE bytes and the `\n`.
            let _ = bytes.extend_from_slice(&line.as_bytes()[..cut]);
            let _ = bytes.push(b'\n');
            out(BridgeOutput::Send(&bytes));
        } else {
            log(
                out,
                format_args!(
                    "not sent, not connected to {target} yet (type disconnect to stop trying): \
                     {line}"
                ),
            );
        }
        true
    }

    /// `disconnect`: closes the connection and stops trying.
    pub fn disconnect(&mut self, out: &mut impl FnMut(BridgeOutput<'_>)) {
        if !self.is_on() {
            log(
                out,
                format_args!("not connected; connect <host> [port] first"),
            );
            return;
        }
        if self.state == State::Connected {
            self.flush(out);
        }
        self.state = State::Off;
        out(BridgeOutput::Close);
        if let Some(target) = &self.target {
            log(out, format_args!("disconnected from {target}"));
        }
    }

    /// What the server sent without a line end, before the connection goes.
    fn flush(&mut self, out: &mut impl FnMut(BridgeOutput<'_>)) {
        let mut end: &[u8] = b"\n";
        if self.reader.pending() > 0
            && let Some(line) = self.reader.next_line(&mut end)
        {
            log(out, format_args!("received: {}", line.text));
        }
        self.reader = LineReader::new();
    }
}

/// The wait after the n-th failure in a row: 1, 2, 4 ... 30 s.
fn backoff_secs(failures: u32) -> u32 {
    let doublings = failures.saturating_sub(1).min(5);
    (BACKOFF_FIRST_SECS << doublings).min(BACKOFF_MAX_SECS)
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

fn log(out: &mut impl FnMut(BridgeOutput<'_>), line: fmt::Arguments<'_>) {
    let mut text = String::<LOG_LINE>::new();
    // Bounded parts; should one ever overflow, the line is cut.
    let _ = text.write_fmt(line);
    out(BridgeOutput::Log(&text));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String as Owned, ToString as _};
    use std::vec::Vec;

    /// What the bridge asked for, as text.
    fn run(f: impl FnOnce(&mut dyn FnMut(BridgeOutput<'_>))) -> Vec<Owned> {
        let mut seen = Vec::new();
        f(&mut |output| {
            seen.push(match output {
                BridgeOutput::Connect(target) => std::format!("connect {target}"),
                BridgeOutput::RetryAfter(secs) => std::format!("retry {secs}"),
                BridgeOutput::Send(bytes) => {
                    std::format!("send {:?}", std::str::from_utf8(bytes).unwrap())
                }
                BridgeOutput::Close => "close".to_string(),
                BridgeOutput::Log(line) => std::format!("log {line}"),
            })
        });
        seen
    }

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: String::try_from(host).unwrap(),
            port,
        }
    }

    #[test]
    fn lines_go_both_ways_once_connected() {
        let mut bridge = Bridge::new();
        assert!(!bridge.is_on());
        assert_eq!(
            run(|out| bridge.connect(target("192.168.1.20", 8888), &mut |o| out(o))),
            [
                "log connecting to 192.168.1.20:8888",
                "connect 192.168.1.20:8888"
            ]
        );
        assert_eq!(
            run(|out| bridge.connected(&mut |o| out(o))),
            ["log connected to 192.168.1.20:8888"]
        );
        let mut taken = false;
        assert_eq!(
            run(|out| taken = bridge.console("hello server", &mut |o| out(o))),
            ["send \"hello server\\n\""]
        );
        assert!(taken);
        // Lines from the server, however the reads cut them, sanitized.
        assert_eq!(
            run(|out| bridge.received(b"Hello Wor", &mut |o| out(o))),
            [] as [&str; 0]
        );
        assert_eq!(
            run(|out| bridge.received(b"ld\r\n\x1b[31mred\x1b[0m\nrest", &mut |o| out(o))),
            ["log received: Hello World", "log received: red"]
        );
        // `disconnect` ends it: the unfinished line is shown, the console is the board's again.
        assert_eq!(
            run(|out| taken = bridge.console(" Disconnect ", &mut |o| out(o))),
            [
                "log received: rest",
                "close",
                "log disconnected from 192.168.1.20:8888"
            ]
        );
        assert!(taken && !bridge.is_on());
        assert_eq!(
            run(|out| taken = bridge.console("status", &mut |o| out(o))),
            [] as [&str; 0]
        );
        assert!(!taken, "a command for the board once the bridge is off");
    }

    #[test]
    fn a_server_that_is_not_up_is_tried_again_with_growing_waits() {
        let mut bridge = Bridge::new();
        run(|out| bridge.connect(target("10.0.0.2", 3333), &mut |o| out(o)));
        let mut waits = Vec::new();
        for _ in 0..8 {
            let seen = run(|out| bridge.failed("connection refused", &mut |o| out(o)));
            let secs: u32 = seen
                .last()
                .unwrap()
                .strip_prefix("retry ")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(
                seen[0],
                std::format!(
                    "log cannot connect to 10.0.0.2:3333: connection refused; trying again in {secs} s"
                )
            );
            waits.push(secs);
            assert_eq!(
                run(|out| bridge.retry(&mut |o| out(o))),
                ["connect 10.0.0.2:3333"]
            );
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        // A line typed meanwhile is not lost silently.
        assert_eq!(
            run(|out| {
                bridge.console("early", &mut |o| out(o));
            }),
            [
                "log not sent, not connected to 10.0.0.2:3333 yet (type disconnect to stop trying): early"
            ]
        );
        // Connected at last: the waits start over.
        run(|out| bridge.connected(&mut |o| out(o)));
        assert_eq!(
            run(|out| bridge.closed("the server closed the connection", &mut |o| out(o))),
            [
                "log disconnected from 10.0.0.2:3333",
                "log the server closed the connection; connecting again in 1 s",
                "retry 1"
            ]
        );
        // A stale timer after `disconnect` does nothing.
        run(|out| bridge.disconnect(&mut |o| out(o)));
        assert_eq!(run(|out| bridge.retry(&mut |o| out(o))), [] as [&str; 0]);
        assert_eq!(
            run(|out| bridge.disconnect(&mut |o| out(o))),
            ["log not connected; connect <host> [port] first"]
        );
    }

    #[test]
    fn connecting_elsewhere_closes_the_old_connection_first() {
        let mut bridge = Bridge::new();
        run(|out| bridge.connect(target("127.0.0.1", 1000), &mut |o| out(o)));
        run(|out| bridge.connected(&mut |o| out(o)));
        assert_eq!(
            run(|out| bridge.connect(target("127.0.0.1", 2000), &mut |o| out(o))),
            [
                "close",
                "log disconnected from 127.0.0.1:1000",
                "log connecting to 127.0.0.1:2000",
                "connect 127.0.0.1:2000"
            ]
        );
        // An answer for the old attempt's state does not count twice.
        run(|out| bridge.connected(&mut |o| out(o)));
        assert_eq!(
            run(|out| bridge.connected(&mut |o| out(o))),
            [] as [&str; 0]
        );
    }
}
