//! The board's UART as its software sees it: lines out (ESP-IDF style), raw bytes out for the
//! ROM loader, and what clients type.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::port::Port;

/// Console lines waiting for the pty; past this (nobody reading the port) lines are dropped,
/// as a UART's output is lost when nothing listens.
const CONSOLE_QUEUE_LINES: usize = 1024;

/// Output to the serial port, shared by the ROM, the bootloader and the app.
#[derive(Clone)]
pub struct Console {
    queue: mpsc::Sender<Bytes>,
    dropped: Arc<AtomicU64>,
    epoch: Instant,
    /// When the chip last started, in ms since `epoch`: log timestamps count from there.
    boot_at: Arc<AtomicU64>,
}

impl Console {
    /// A line as it is, e.g. the ROM's.
    pub fn raw(&self, line: &str) {
        self.push(format!("{line}\r\n"));
    }

    /// What the app echoes of a typed line: as it is, no line end of its own.
    pub fn echo(&self, text: &str) {
        if !text.is_empty() {
            self.push(text.to_owned());
        }
    }

    /// An ESP-IDF style info line: `I (ms) tag: text`.
    pub fn info(&self, tag: &str, text: impl fmt::Display) {
        self.push(format!("I ({}) {tag}: {text}\r\n", self.uptime_ms()));
    }

    /// An ESP-IDF style error line: `E (ms) tag: text`.
    pub fn error(&self, tag: &str, text: impl fmt::Display) {
        self.push(format!("E ({}) {tag}: {text}\r\n", self.uptime_ms()));
    }

    /// The firmware's own lines: `I (ms) espchat: text`.
    pub fn log(&self, text: impl fmt::Display) {
        self.info("espchat", text);
    }

    /// Bytes that must not be lost (the ROM loader's replies): waits for room.
    pub async fn write(&self, bytes: Vec<u8>) {
        let _ = self.queue.send(Bytes::from(bytes)).await;
    }

    /// The chip (re)starts: log timestamps start again from 0.
    pub fn restart_clock(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.boot_at.store(now, Ordering::Relaxed);
    }

    fn uptime_ms(&self) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(self.boot_at.load(Ordering::Relaxed))
    }

    fn push(&self, line: String) {
        if self.queue.try_send(Bytes::from(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Starts the console tasks on the pty; returns the console handle and the stream of bytes
/// clients type.
pub fn start(port: &Port) -> (Console, mpsc::Receiver<Bytes>) {
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(CONSOLE_QUEUE_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    let writer = port.clone();
    let writer_dropped = Arc::clone(&dropped);
    tokio::spawn(async move {
        while let Some(line) = out_rx.recv().await {
            let lost = writer_dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                let notice = format!(
                    "[virtual board: {lost} console lines dropped while nobody read the port]\r\n"
                );
                if writer.write_all(notice.as_bytes()).await.is_err() {
                    break;
                }
            }
            if let Err(error) = writer.write_all(&line).await {
                tracing::warn!("serial console write failed: {error}");
                break;
            }
        }
    });

    let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
    let reader = port.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => continue,
                Ok(n) => {
                    if in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!("serial console read failed: {error}");
                    break;
                }
            }
        }
    });

    let console = Console {
        queue: out_tx,
        dropped,
        epoch: Instant::now(),
        boot_at: Arc::new(AtomicU64::new(0)),
    };
    (console, in_rx)
}
