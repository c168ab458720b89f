//! Local serial ports on Windows: COM ports through `tokio-serial`, which opens them for
//! overlapped IO and drives them on tokio's reactor. A plain (synchronous) handle would not
//! do: Windows serializes IO on such a handle, so a read waiting for the board would hold up
//! every line typed until the board printed something.

use std::io;
use std::path::Path;

use tokio::io::AsyncWriteExt as _;
use tokio_serial::{SerialPortBuilderExt as _, SerialStream};

use super::port::PortError;

/// The port type espflash flashes through.
pub type NativePort = serialport::COMPort;

/// Port names to give as examples in errors.
pub const EXAMPLE_PORTS: &str = "COM3 or COM4";

/// What to do when opening a port is not permitted.
pub const PERMISSION_FIX: &str = "another program may have it open: close it, then try again";

/// Windows has no terminal ioctls to be missing.
pub fn not_a_terminal(_error: &serialport::Error) -> bool {
    false
}

/// Whether a port that could not be opened for want of the device is simply not there:
/// Windows reports a missing COM port and one another program holds with the same error
/// kind, so the port list tells them apart.
pub fn missing(path: &Path) -> bool {
    serialport::available_ports().is_ok_and(|ports| {
        !ports
            .iter()
            .any(|port| same_port(path, Path::new(&port.port_name)))
    })
}

/// Whether `given` (what the user named: `com3`, `\\.\COM3`) is the port enumeration listed
/// as `listed`: Windows device names are not files to resolve, and their case does not matter.
pub fn same_port(given: &Path, listed: &Path) -> bool {
    let bare = |path: &Path| {
        let name = path.to_string_lossy().into_owned();
        match name.strip_prefix(r"\\.\") {
            Some(bare) => bare.to_owned(),
            None => name,
        }
    };
    bare(given).eq_ignore_ascii_case(&bare(listed))
}

/// An open COM port.
pub struct Tty(SerialStream);

impl Tty {
    pub fn open(path: &Path, baud: u32) -> Result<Tty, PortError> {
        tokio_serial::new(path.to_string_lossy(), baud)
            .flow_control(serialport::FlowControl::None)
            .open_native_async()
            .map(Tty)
            .map_err(|error| PortError::from_open(path, error))
    }

    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.0.readable().await?;
            match self.0.try_read(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes).await?;
        self.0.flush().await
    }

    /// The port's modem lines and settings.
    pub fn lines(&mut self) -> &mut dyn serialport::SerialPort {
        &mut self.0
    }
}
