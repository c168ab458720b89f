//! TEMPORARY stand-in with the agreed API; replaced by the real watcher.
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoardAddress {
    pub ip: Option<Ipv4Addr>,
    pub port: Option<u16>,
}

#[derive(Debug, Default)]
pub struct IpWatcher {
    current: BoardAddress,
}

impl IpWatcher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn line(&mut self, line: &str) -> BoardAddress {
        let mut change = BoardAddress::default();
        if let Some(rest) = line.split("got ip: ").nth(1) {
            if let Ok(ip) = rest.trim().parse() {
                if self.current.ip != Some(ip) {
                    self.current.ip = Some(ip);
                    change.ip = Some(ip);
                }
            }
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            if let Some(port) = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok()) {
                if self.current.port != Some(port) {
                    self.current.port = Some(port);
                    change.port = Some(port);
                }
            }
        }
        change
    }
    pub fn address(&self) -> BoardAddress {
        self.current
    }
}
