//! Finding and opening serial ports, with errors that name the cause and the fix.

use std::fmt;
use std::path::{Path, PathBuf};

use serialport::SerialPortType;

use super::tty::{self, NativePort};

/// USB identity of a port: enough to find the same board again at another path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbIdentity {
    pub vid: u16,
    pub pid: u16,
    pub serial_number: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
}

impl UsbIdentity {
    /// Same device: VID, PID and (when the device has one) serial number.
    pub fn same_device(&self, other: &UsbIdentity) -> bool {
        self.vid == other.vid && self.pid == other.pid && self.serial_number == other.serial_number
    }

    /// The USB-UART bridge or USB interface, when it is one ESP boards use.
    pub fn esp_bridge(&self) -> Option<&'static str> {
        ESP_BRIDGES
            .iter()
            .find(|(vid, pid, _)| *vid == self.vid && *pid == self.pid)
            .map(|(_, _, name)| *name)
    }
}

/// USB interfaces found on ESP development boards, most specific first.
const ESP_BRIDGES: &[(u16, u16, &str)] = &[
    (0x303a, 0x1001, "Espressif USB-Serial/JTAG"),
    (0x303a, 0x0002, "Espressif USB CDC"),
    (0x10c4, 0xea60, "Silicon Labs CP210x"),
    (0x1a86, 0x7523, "WCH CH340"),
    (0x1a86, 0x55d4, "WCH CH9102"),
    (0x1a86, 0x55d3, "WCH CH343"),
    (0x0403, 0x6001, "FTDI FT232R"),
    (0x0403, 0x6010, "FTDI FT2232 (ESP-Prog)"),
    (0x0403, 0x6015, "FTDI FT231X"),
];

/// One serial port of this machine.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub path: PathBuf,
    pub usb: Option<UsbIdentity>,
}

impl PortInfo {
    pub fn esp_bridge(&self) -> Option<&'static str> {
        self.usb.as_ref().and_then(UsbIdentity::esp_bridge)
    }
}

/// The serial ports of this machine, ESP-looking ones first.
pub fn list_ports() -> Result<Vec<PortInfo>, PortError> {
    let ports =
        serialport::available_ports().map_err(|error| PortError::List(error.to_string()))?;
    let mut ports: Vec<PortInfo> = ports
        .into_iter()
        .map(|port| PortInfo {
            path: PathBuf::from(port.port_name),
            usb: match port.port_type {
                SerialPortType::UsbPort(usb) => Some(UsbIdentity {
                    vid: usb.vid,
                    pid: usb.pid,
                    serial_number: usb.serial_number,
                    manufacturer: usb.manufacturer,
                    product: usb.product,
                }),
                _ => None,
            },
        })
        .collect();
    ports.sort_by_key(|port| {
        (
            port.esp_bridge().is_none(),
            port.usb.is_none(),
            port.path.clone(),
        )
    });
    Ok(ports)
}

/// Picks the board's port when none was named: the only ESP-looking port, or the only USB
/// serial port.
pub fn detect_port() -> Result<PortInfo, PortError> {
    let ports = list_ports()?;
    let esp: Vec<&PortInfo> = ports
        .iter()
        .filter(|port| port.esp_bridge().is_some())
        .collect();
    let usb: Vec<&PortInfo> = ports.iter().filter(|port| port.usb.is_some()).collect();
    let candidates = if esp.is_empty() { usb } else { esp };
    match candidates.as_slice() {
        [only] => Ok((*only).clone()),
        [] => Err(PortError::NoneFound),
        several => Err(PortError::Ambiguous(
            several.iter().map(|port| port.path.clone()).collect(),
        )),
    }
}

/// The USB identity of the port at `path`, if enumeration knows it (resolving symlinks on
/// Unix; COM port names in any case on Windows).
pub fn identity_of(path: &Path) -> Option<UsbIdentity> {
    list_ports().ok()?.into_iter().find_map(|port| {
        if tty::same_port(path, &port.path) {
            port.usb
        } else {
            None
        }
    })
}

/// The path at which a device with this identity is attached now.
pub fn find_identity(identity: &UsbIdentity) -> Option<PathBuf> {
    list_ports().ok()?.into_iter().find_map(|port| {
        let same = port
            .usb
            .as_ref()
            .is_some_and(|usb| usb.same_device(identity));
        same.then_some(port.path)
    })
}

/// Opens a port for the console or for flashing: raw, 8N1, no flow control, exclusive.
pub fn open(path: &Path, baud: u32) -> Result<NativePort, PortError> {
    let name = path.to_string_lossy();
    serialport::new(name, baud)
        .flow_control(serialport::FlowControl::None)
        .timeout(std::time::Duration::from_millis(100))
        .open_native()
        .map_err(|error| PortError::from_open(path, error))
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(
        "no serial port found: plug in the board (a data USB cable, not a charge-only one), \
         name it with -p PORT, or start a virtual one with `espchat board`"
    )]
    NoneFound,
    #[error("several serial ports could be the board ({}); choose one with -p PORT", list(.0))]
    Ambiguous(Vec<PathBuf>),
    #[error("serial port {}: not found (check the path; `espchat ports` lists the ports)", .0.display())]
    NotFound(PathBuf),
    #[error("serial port {}: busy{} (close the other program, then try again)", path.display(), holder.as_ref().map(|h| format!(", used by {h}")).unwrap_or_default())]
    Busy {
        path: PathBuf,
        holder: Option<Holder>,
    },
    #[error(
        "serial port {}: permission denied ({})",
        .0.display(),
        tty::PERMISSION_FIX
    )]
    PermissionDenied(PathBuf),
    #[error(
        "serial port {}: not a serial port ({what}); name the board's port with -p PORT, e.g. \
         {} (`espchat ports` lists the ports)",
        path.display(),
        tty::EXAMPLE_PORTS
    )]
    NotASerialPort { path: PathBuf, what: &'static str },
    #[error("serial port {}: {message}", path.display())]
    Other { path: PathBuf, message: String },
    #[error("cannot list serial ports: {0}")]
    List(String),
}

impl PortError {
    pub(super) fn from_open(path: &Path, error: serialport::Error) -> PortError {
        use serialport::ErrorKind;
        match error.kind() {
            ErrorKind::NoDevice if tty::missing(path) => PortError::NotFound(path.to_owned()),
            ErrorKind::NoDevice => PortError::Busy {
                path: path.to_owned(),
                holder: holder_of(path),
            },
            ErrorKind::Io(std::io::ErrorKind::NotFound) => PortError::NotFound(path.to_owned()),
            ErrorKind::Io(std::io::ErrorKind::PermissionDenied) => {
                PortError::PermissionDenied(path.to_owned())
            }
            _ => match not_a_tty(path, &error) {
                Some(what) => PortError::NotASerialPort {
                    path: path.to_owned(),
                    what,
                },
                None => PortError::Other {
                    path: path.to_owned(),
                    message: error.to_string(),
                },
            },
        }
    }
}

/// What `path` is instead of a terminal device, when opening it failed for that reason (a file
/// or directory, or a device without a tty's ioctls: ENOTTY, "Not a typewriter").
fn not_a_tty(path: &Path, error: &serialport::Error) -> Option<&'static str> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Some("it is a directory"),
        Ok(meta) if meta.is_file() => Some("it is a regular file"),
        _ if tty::not_a_terminal(error) => Some("it is not a terminal device"),
        _ => None,
    }
}

/// A process that has a device open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {})", self.command, self.pid)
    }
}

/// Finds a process holding `path` open, from /proc. Best effort: other users' processes are
/// not readable without privileges. A pty's master side (a virtual board, which keeps its own
/// end of the port open for its whole life) is not the holder: the program that opened the
/// port as a client is.
pub fn holder_of(path: &Path) -> Option<Holder> {
    let device = std::fs::canonicalize(path).ok()?;
    let pty_index = device
        .strip_prefix("/dev/pts")
        .ok()
        .and_then(|number| number.to_str()?.parse::<u32>().ok());
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let mut holds = false;
        let mut owns_pty = false;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target == device {
                holds = true;
            } else if target == Path::new("/dev/ptmx") && pty_index.is_some() {
                owns_pty |= pty_index == master_index(&entry.path(), &fd.file_name());
            }
        }
        if !holds || owns_pty {
            continue;
        }
        let command = std::fs::read_to_string(entry.path().join("comm"))
            .map(|comm| comm.trim().to_owned())
            .unwrap_or_else(|_| "another program".to_owned());
        return Some(Holder { pid, command });
    }
    None
}

/// The pty number a `/dev/ptmx` descriptor is the master of (`tty-index` in its fdinfo).
fn master_index(process: &Path, fd: &std::ffi::OsStr) -> Option<u32> {
    let info = std::fs::read_to_string(process.join("fdinfo").join(fd)).ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("tty-index:"))
        .and_then(|index| index.trim().parse().ok())
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Windows reports a missing COM port and one another program holds alike (the open fails for
/// want of the device): the port list tells them apart. Wine lists COM1 and nothing past it.
#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;

    fn no_device() -> serialport::Error {
        serialport::Error::new(serialport::ErrorKind::NoDevice, "Access is denied.")
    }

    #[test]
    fn a_listed_com_port_that_will_not_open_is_busy() {
        let listed = list_ports().unwrap();
        let Some(port) = listed.first() else {
            panic!("no COM port listed to try");
        };
        let error = PortError::from_open(&port.path, no_device());
        assert!(matches!(error, PortError::Busy { .. }), "{error:?}");
        assert!(
            error.to_string().contains("close the other program"),
            "{error}"
        );
    }

    #[test]
    fn com_port_names_match_in_any_case_and_with_the_device_prefix() {
        assert!(tty::same_port(Path::new("com3"), Path::new("COM3")));
        assert!(tty::same_port(Path::new(r"\\.\COM12"), Path::new("COM12")));
        assert!(!tty::same_port(Path::new("COM1"), Path::new("COM12")));
    }

    #[test]
    fn an_unlisted_com_port_is_not_found() {
        let error = PortError::from_open(Path::new("COM199"), no_device());
        assert!(matches!(error, PortError::NotFound(_)), "{error:?}");
    }
}
