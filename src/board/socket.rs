//! The virtual board's serial port as a TCP port on 127.0.0.1, for where there are no ptys
//! (Windows) or a tool takes `socket://` ports (esptool, ESP-IDF's monitor): a client connects
//! where it would open a tty, and leaving is closing it. One client at a time, as a tty opened
//! exclusively: another is told the port is busy and let go.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// What a second client reads before it is let go.
const BUSY: &[u8] = b"[virtual board: the serial port is in use by another client]\r\n";

pub struct Socket {
    /// `socket://127.0.0.1:PORT`: what clients open.
    path: PathBuf,
    /// Taken by [`Socket::keep_reopenable`], which accepts the clients.
    listener: Mutex<Option<TcpListener>>,
    client: watch::Sender<Option<Arc<TcpStream>>>,
    /// Signalled each time a client leaves.
    closes: Notify,
    close_events: AtomicU64,
}

impl Socket {
    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub async fn open(port: u16) -> io::Result<Arc<Socket>> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address: SocketAddr = listener.local_addr()?;
        Ok(Arc::new(Socket {
            path: PathBuf::from(format!("socket://{address}")),
            listener: Mutex::new(Some(listener)),
            client: watch::Sender::new(None),
            closes: Notify::new(),
            close_events: AtomicU64::new(0),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Resolves when a client leaves, or has left since the last call.
    pub async fn closed(&self) {
        self.closes.notified().await;
    }

    /// How many clients have left so far. There is one client at a time, so each leaving lets
    /// go of the port: this is also the number of the last close that did.
    pub fn close_events(&self) -> u64 {
        self.close_events.load(Ordering::Relaxed)
    }

    /// The client connected now, once there is one.
    async fn client(&self) -> Arc<TcpStream> {
        let mut client = self.client.subscribe();
        let connected = client.wait_for(Option::is_some).await;
        match connected.as_deref() {
            Ok(Some(stream)) => Arc::clone(stream),
            // The sender lives in `self`, and `wait_for` returned a connected client.
            _ => unreachable!("a connected client"),
        }
    }

    /// `stream`'s client is gone (it hung up, or its connection failed): the port is free.
    fn left(&self, stream: &Arc<TcpStream>) {
        let was_current = self.client.send_if_modified(|client| {
            let current = client.as_ref().is_some_and(|now| Arc::ptr_eq(now, stream));
            if current {
                *client = None;
            }
            current
        });
        if was_current {
            let number = self.close_events.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!("console socket: client {number} left");
            self.closes.notify_one();
        }
    }

    /// Reads bytes a client wrote, waiting for a client when there is none.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let stream = self.client().await;
            if stream.readable().await.is_err() {
                self.left(&stream);
                continue;
            }
            match stream.try_read(buf) {
                Ok(0) => self.left(&stream),
                Ok(n) => return Ok(n),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.left(&stream),
            }
        }
    }

    /// Drops the bytes the client wrote that nobody has read yet; returns how many.
    pub fn discard_input(&self) -> usize {
        let Some(stream) = self.client.borrow().clone() else {
            return 0;
        };
        let mut buf = [0u8; 4096];
        let mut dropped = 0;
        while let Ok(n @ 1..) = stream.try_read(&mut buf) {
            dropped += n;
        }
        dropped
    }

    /// Writes `bytes` to the client, waiting for one when there is none: like a pty's buffer,
    /// the boot log waits for the first client. Bytes a client leaves in the middle of are
    /// lost, as a UART's with nobody at the other end.
    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.client().await;
        let mut rest = bytes;
        while !rest.is_empty() {
            let written = match stream.writable().await {
                Ok(()) => stream.try_write(rest),
                Err(error) => Err(error),
            };
            match written {
                Ok(n) => rest = &rest[n..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.left(&stream);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Accepts clients, one at a time; runs until the board stops.
    pub fn keep_reopenable(
        self: &Arc<Self>,
    ) -> io::Result<impl Future<Output = io::Result<()>> + use<>> {
        let listener = self
            .listener
            .lock()
            .ok()
            .and_then(|mut listener| listener.take())
            .ok_or_else(|| io::Error::other("the console socket is served already"))?;
        let socket = Arc::clone(self);
        Ok(async move {
            loop {
                let (stream, peer) = listener.accept().await?;
                if socket.client.borrow().is_some() {
                    tracing::debug!("console socket: {peer} refused, the port is in use");
                    // A fresh connection's buffer takes the line at once; it is closed next.
                    let _ = stream.try_write(BUSY);
                    continue;
                }
                // Console lines and loader frames go out as they are written.
                let _ = stream.set_nodelay(true);
                tracing::debug!("console socket: {peer} connected");
                socket.client.send_replace(Some(Arc::new(stream)));
            }
        })
    }
}
