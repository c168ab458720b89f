//! Consoles behind the network, named as ESP-IDF's monitor and PlatformIO name them:
//! `socket://HOST:PORT` (raw TCP: ser2net's raw mode, esp-link, a Wokwi-style bridge) and
//! `rfc2217://HOST:PORT` (RFC 2217, serial over Telnet: the baud is set and DTR/RTS switched
//! on the far side, so `reset` works as on a local port).
//!
//! RFC 2217's Telnet framing is parsed and written with `rfc2217-rs` (esp-rs); what is ours is
//! the client's side of the conversation: which options it asks for, and what it answers.

use std::io;
use std::net::{SocketAddr, TcpStream as StdStream, ToSocketAddrs as _};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rfc2217_rs::negotiation::{Intent, Negotiation, Option as TelnetOption};
use rfc2217_rs::parser::{Event as TelnetEvent, Parser};
use rfc2217_rs::subnegotiation::Subnegotiation;
use tokio::net::TcpStream;

use super::port::PortError;

/// How long connecting to the console's server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Telnet's escape byte: a data byte of this value is sent twice.
const IAC: u8 = 255;
/// RFC 2217 SET-CONTROL values.
const DTR_OFF: u8 = 9;
const RTS_ON: u8 = 11;
const RTS_OFF: u8 = 12;

/// A console URL's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Socket,
    Rfc2217,
}

/// `socket://HOST:PORT` or `rfc2217://HOST:PORT`, if `path` is one: the kind and `HOST:PORT`.
pub fn console_url(path: &Path) -> Option<(Scheme, &str)> {
    let text = path.to_str()?;
    if let Some(rest) = text.strip_prefix("socket://") {
        Some((Scheme::Socket, rest))
    } else {
        text.strip_prefix("rfc2217://")
            .map(|rest| (Scheme::Rfc2217, rest))
    }
}

/// A console over TCP.
pub struct NetPort {
    stream: TcpStream,
    /// RFC 2217's side of the conversation; `None` for raw `socket://`.
    telnet: Option<Mutex<Parser>>,
}

impl NetPort {
    /// Connects (bounded by [`CONNECT_TIMEOUT`]); for RFC 2217 asks for the options and sets
    /// the baud rate and 8N1 on the far side. Needs a tokio runtime.
    pub fn open(
        path: &Path,
        scheme: Scheme,
        address: &str,
        baud: u32,
    ) -> Result<NetPort, PortError> {
        let fail = |message: String| PortError::Other {
            path: path.to_owned(),
            message,
        };
        let addr: SocketAddr = address
            .to_socket_addrs()
            .map_err(|error| fail(format!("{address:?} is not HOST:PORT ({error})")))?
            .next()
            .ok_or_else(|| fail(format!("no address for {address}")))?;
        let server = match scheme {
            Scheme::Socket => "ser2net, esp-link or the bridge",
            Scheme::Rfc2217 => "the RFC 2217 server (ser2net with telnet, esp_rfc2217_server)",
        };
        let stream = StdStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|error| {
            fail(format!(
                "cannot connect to {addr}: {error} (is {server} running there?)"
            ))
        })?;
        let _ = stream.set_nodelay(true);
        let setup = |error: io::Error| fail(error.to_string());
        stream.set_nonblocking(true).map_err(setup)?;
        let stream = TcpStream::from_std(stream).map_err(setup)?;
        let port = NetPort {
            stream,
            telnet: (scheme == Scheme::Rfc2217).then(|| Mutex::new(Parser::new())),
        };
        if port.telnet.is_some() {
            let mut hello = Vec::new();
            for (intent, option) in [
                (Intent::Will, TelnetOption::Binary),
                (Intent::Do, TelnetOption::Binary),
                (Intent::Will, TelnetOption::SuppressGoAhead),
                (Intent::Do, TelnetOption::SuppressGoAhead),
                (Intent::Will, TelnetOption::ComPort),
            ] {
                push_negotiation(&mut hello, intent, option);
            }
            for setting in [
                Subnegotiation::SetBaudRate(baud),
                Subnegotiation::SetDataSize(8),
                // 1: no parity; 1: one stop bit.
                Subnegotiation::SetParity(1),
                Subnegotiation::SetStopSize(1),
            ] {
                push_subnegotiation(&mut hello, &setting);
            }
            port.try_send_all(&hello).map_err(setup)?;
        }
        Ok(port)
    }

    /// Reads console bytes (Telnet framing taken out for RFC 2217); 0 when the server hung
    /// up.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.stream.readable().await?;
            let n = match self.stream.try_read(buf) {
                Ok(0) => return Ok(0),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            };
            let Some(telnet) = &self.telnet else {
                return Ok(n);
            };
            let mut answers = Vec::new();
            let data = {
                let mut parser = telnet.lock().unwrap_or_else(PoisonError::into_inner);
                unframe(&mut parser, buf, n, &mut answers)
            };
            if !answers.is_empty() {
                self.try_send_all(&answers)?;
            }
            if data > 0 {
                return Ok(data);
            }
        }
    }

    /// Writes console bytes (0xFF doubled for RFC 2217).
    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        if self.telnet.is_some() && bytes.contains(&IAC) {
            self.send_raw(&escape(bytes)).await
        } else {
            self.send_raw(bytes).await
        }
    }

    /// The ESP auto-reset over RFC 2217: DTR off, RTS on for `pulse`, RTS off.
    pub async fn reset(&self, pulse: Duration) -> Result<(), String> {
        if self.telnet.is_none() {
            return Err("a socket:// console carries no DTR/RTS (rfc2217:// does)".to_owned());
        }
        let control = |value| {
            let mut bytes = Vec::new();
            push_subnegotiation(&mut bytes, &Subnegotiation::SetControl(value));
            bytes
        };
        let mut start = control(DTR_OFF);
        start.extend(control(RTS_ON));
        self.send_raw(&start)
            .await
            .map_err(|error| error.to_string())?;
        tokio::time::sleep(pulse).await;
        self.send_raw(&control(RTS_OFF))
            .await
            .map_err(|error| error.to_string())
    }

    /// Bytes as they are: data already escaped, or Telnet commands.
    async fn send_raw(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(bytes) {
                Ok(written) => bytes = &bytes[written..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// A few bytes of Telnet answers or set-up, from a non-async context: the socket's buffer
    /// takes them at once (a full buffer means the server stopped reading: an error). Sent on
    /// the descriptor itself: tokio's `try_write` waits for a readiness event a fresh socket
    /// has not had yet.
    fn try_send_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        let socket = socket2::SockRef::from(&self.stream);
        for _ in 0..100 {
            if bytes.is_empty() {
                return Ok(());
            }
            match socket.send(bytes) {
                Ok(written) => bytes = &bytes[written..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the RFC 2217 server does not take the Telnet set-up",
        ))
    }
}

/// Takes the Telnet framing out of `buf[..n]` in place; returns how many data bytes are left
/// at its start. Requests the client does not take are refused in `answers`.
fn unframe(parser: &mut Parser, buf: &mut [u8], n: usize, answers: &mut Vec<u8>) -> usize {
    let mut data = 0;
    for i in 0..n {
        match parser.process_byte(buf[i]) {
            Ok(Some(TelnetEvent::Data(byte))) => {
                buf[data] = byte;
                data += 1;
            }
            Ok(Some(TelnetEvent::Negotiation(negotiation))) => {
                refuse_unknown(&negotiation, answers);
            }
            // Notifications (line and modem state) and commands say nothing the console needs.
            Ok(_) => {}
            Err(_) => parser.reset(),
        }
    }
    data
}

/// What the client agrees to it asked for itself; anything else a server wants is refused
/// (an answer to an answer would loop, so only unknown options get one).
fn refuse_unknown(negotiation: &Negotiation, answers: &mut Vec<u8>) {
    let known = matches!(
        negotiation.option,
        TelnetOption::Binary | TelnetOption::SuppressGoAhead | TelnetOption::ComPort
    ) || (negotiation.option == TelnetOption::Echo
        && negotiation.intent == Intent::Will);
    if known {
        return;
    }
    let answer = match negotiation.intent {
        Intent::Do => Intent::Wont,
        Intent::Will => Intent::Dont,
        Intent::Wont | Intent::Dont => return,
    };
    push_negotiation(answers, answer, negotiation.option);
}

fn push_negotiation(out: &mut Vec<u8>, intent: Intent, option: TelnetOption) {
    let mut buf = [0u8; rfc2217_rs::negotiation::SIZE];
    Negotiation { intent, option }.serialize(&mut buf);
    out.extend_from_slice(&buf);
}

fn push_subnegotiation(out: &mut Vec<u8>, setting: &Subnegotiation) {
    let mut buf = [0u8; rfc2217_rs::subnegotiation::MAX_SIZE];
    let len = setting.serialize_client(&mut buf);
    out.extend_from_slice(&buf[..len]);
}

fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &byte in bytes {
        out.push(byte);
        if byte == IAC {
            out.push(IAC);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_kind() {
        assert_eq!(
            console_url(Path::new("socket://127.0.0.1:4000")),
            Some((Scheme::Socket, "127.0.0.1:4000"))
        );
        assert_eq!(
            console_url(Path::new("rfc2217://lab-pi:4001")),
            Some((Scheme::Rfc2217, "lab-pi:4001"))
        );
        assert_eq!(console_url(Path::new("/dev/ttyUSB0")), None);
    }

    #[test]
    fn telnet_framing_comes_out_and_data_ff_survives() {
        let mut parser = Parser::new();
        // Data, an escaped 0xFF, a DO for an option the client does not take (TERMINAL-TYPE,
        // 24), a notification, data.
        let mut buf = b"ab\xff\xffc\xff\xfd\x18\xff\xfa\x2c\x6b\x30\xff\xf0d".to_vec();
        let n = buf.len();
        let mut answers = Vec::new();
        let data = unframe(&mut parser, &mut buf, n, &mut answers);
        assert_eq!(&buf[..data], b"ab\xffcd");
        assert_eq!(answers, [IAC, 252, 24], "WONT TERMINAL-TYPE");
        assert_eq!(escape(b"\x01\xff\x02"), b"\x01\xff\xff\x02");
    }
}
