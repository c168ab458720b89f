//! Flashing through the ESP ROM serial bootloader, on the espflash library: open the port,
//! reset the board into download mode (or not, on a pty), connect, detect the chip, check the
//! image against it, and write it with progress reported as [`FlashEvent`]s.
//!
//! Everything here blocks (espflash is synchronous): the TUI runs it in `spawn_blocking` and
//! forwards the events. The serial console must have closed the port first; espflash takes it
//! exclusively.

mod error;
pub mod format;
mod image;
pub mod layout;
mod progress;
mod rom_deflate;
mod watchdog;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use espflash::connection::{Connection, ResetAfterOperation, ResetBeforeOperation};
pub use espflash::flasher::FlashSize;
use espflash::flasher::Flasher;
pub use espflash::target::Chip;
use espflash::target::XtalFrequency;
use serialport::{SerialPort as _, UsbPortInfo};

pub use self::error::FlashError;
use self::error::{BOOT_BUTTON_FIX, NO_RESET_LINES_FIX, RESET_NEEDS_LINES_FIX};
pub use self::format::{DEFAULT_APP_ADDRESS, SECTOR_SIZE};
pub use self::image::{
    Arch, FlashImage, ImageTarget, app_image, bin_target, elf_target, parse_chip,
};
pub use self::layout::Parts;
use self::progress::{Position, Tracker};
pub use self::rom_deflate::deflate;
pub use self::watchdog::STALL_TIMEOUT;
use self::watchdog::{Watchdog, allowance};
use crate::serial::{NativePort, port};

/// The ROM loader detects the baud rate from SYNC at this rate; `-b` switches after connecting.
pub const ROM_BAUD: u32 = 115_200;

/// How the board gets into download mode before flashing (`--before`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Before {
    /// Pulse DTR/RTS as the auto-reset circuit of a dev board expects
    DefaultReset,
    /// Send SYNC to a board already in download mode (the only way on a pty)
    NoReset,
    /// Neither reset nor SYNC: the loader is already synced (needs -c CHIP)
    NoResetNoSync,
    /// The reset sequence of the chip's built-in USB-Serial/JTAG
    UsbReset,
}

/// What happens to the board after flashing (`--after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum After {
    /// Reset through RTS so the new firmware starts
    HardReset,
    /// No reset line is touched (the ROM loader still reboots into the app after writing)
    NoReset,
    /// Stay in the flasher stub
    NoResetNoStub,
    /// Reset through the chip's watchdog (for USB-Serial/JTAG and USB-OTG)
    WatchdogReset,
}

impl Before {
    fn needs_modem_lines(self) -> bool {
        matches!(self, Before::DefaultReset | Before::UsbReset)
    }
}

impl From<Before> for ResetBeforeOperation {
    fn from(before: Before) -> Self {
        match before {
            Before::DefaultReset => ResetBeforeOperation::DefaultReset,
            Before::NoReset => ResetBeforeOperation::NoReset,
            Before::NoResetNoSync => ResetBeforeOperation::NoResetNoSync,
            Before::UsbReset => ResetBeforeOperation::UsbReset,
        }
    }
}

impl From<After> for ResetAfterOperation {
    fn from(after: After) -> Self {
        match after {
            After::HardReset => ResetAfterOperation::HardReset,
            After::NoReset => ResetAfterOperation::NoReset,
            After::NoResetNoStub => ResetAfterOperation::NoResetNoStub,
            After::WatchdogReset => ResetAfterOperation::WatchdogReset,
        }
    }
}

impl fmt::Display for Before {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        value_name(self, f)
    }
}

impl fmt::Display for After {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        value_name(self, f)
    }
}

/// The name users type: `no-reset`.
fn value_name(value: &impl clap::ValueEnum, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match value.to_possible_value() {
        Some(value) => f.write_str(value.get_name()),
        None => Ok(()),
    }
}

/// How to flash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlashOptions {
    pub port: PathBuf,
    /// The chip the board must be; `None` detects it.
    pub chip: Option<Chip>,
    /// Switch to this baud rate after connecting (only rates above 115200 switch).
    pub baud: Option<u32>,
    /// Upload espflash's RAM stub first: faster, compressed writes.
    pub use_stub: bool,
    /// Without the stub: send each segment deflated (FLASH_DEFL_*) when that is shorter and
    /// the chip's ROM loader takes it. espflash's stub always compresses.
    pub compress: bool,
    /// `None`: DTR/RTS reset on a real port, `no-reset` on a port without modem lines (pty).
    pub before: Option<Before>,
    /// `None`: `hard-reset` on a real port, `no-reset` on a port without modem lines (pty).
    pub after: Option<After>,
    /// Compare the flash's MD5 with the image after writing each segment.
    pub verify: bool,
    /// Skip segments whose MD5 already matches.
    pub skip_unchanged: bool,
    /// Give up when writing makes no progress for this long (erasing and verifying a segment
    /// may take longer: 30 s more per MB).
    pub stall_timeout: Duration,
    /// Write a `.bin` app image even when it would not boot (bad magic, checksum, hash...).
    pub force: bool,
    /// A bootloader and partition table of the user's, instead of espflash's (ELF) or none
    /// (`.bin`).
    pub parts: Parts,
}

impl FlashOptions {
    /// espflash's defaults: stub, verify, skip unchanged segments, resets chosen for the port.
    pub fn new(port: impl Into<PathBuf>) -> Self {
        FlashOptions {
            port: port.into(),
            chip: None,
            baud: None,
            use_stub: true,
            compress: true,
            before: None,
            after: None,
            verify: true,
            skip_unchanged: true,
            stall_timeout: STALL_TIMEOUT,
            force: false,
            parts: Parts::default(),
        }
    }
}

/// What the board told us about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChipInfo {
    pub chip: Chip,
    /// (major, minor), from the eFuses.
    pub revision: Option<(u32, u32)>,
    /// Bytes of SPI flash.
    pub flash_size: u32,
    pub mac: Option<String>,
}

impl fmt::Display for ChipInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", chip_name(self.chip))?;
        if let Some((major, minor)) = self.revision {
            write!(f, " (revision v{major}.{minor})")?;
        }
        write!(f, ", {} flash", format_size(self.flash_size))?;
        if let Some(mac) = &self.mac {
            write!(f, ", MAC {mac}")?;
        }
        Ok(())
    }
}

/// Progress of [`flash`], in order: `Connecting`, `Connected`, then per segment `Segment`,
/// `Progress`..., `Verifying`, `SegmentDone`, and `Done` at the end.
#[derive(Clone, Debug, PartialEq)]
pub enum FlashEvent {
    /// The port is open; these are the resets that will be used.
    Connecting {
        port: PathBuf,
        before: Before,
        after: After,
    },
    Connected {
        chip: Chip,
        flash_size: u32,
        mac: Option<String>,
    },
    /// Writing `total` bytes at `address` starts (or, when unchanged, is skipped).
    Segment {
        address: u32,
        total: u64,
    },
    /// `done` of the segment's `total` bytes are written. Comes once per block (1 KiB from the
    /// ROM loader): a front end shows it when the percentage changes.
    Progress {
        address: u32,
        done: u64,
        total: u64,
    },
    Verifying {
        address: u32,
    },
    /// The board's old partition table has an otadata partition at `address`, which could make
    /// its bootloader start another app than the one written: it is erased (as a segment of
    /// erased bytes, which follows).
    OldOtadata {
        address: u32,
        size: u32,
    },
    /// An app goes to 0x10000 without a partition table, and the board has none (erased
    /// flash): the bootloader will not find the app.
    NoPartitionTable,
    SegmentDone {
        address: u32,
        skipped: bool,
    },
    /// Everything is written; `bytes` excludes skipped segments.
    Done {
        bytes: u64,
        seconds: f64,
    },
}

impl FlashEvent {
    /// The status text of the headless line mode (`flash! TEXT`, docs/contract.md §2), if the event
    /// has one. `Progress` repeats the same text within a percent: print it when it changes.
    pub fn status_line(&self) -> Option<String> {
        Some(match self {
            FlashEvent::Connecting {
                port,
                before,
                after,
            } => format!(
                "connecting to {} (before: {before}, after: {after})",
                port.display()
            ),
            FlashEvent::Connected {
                chip,
                flash_size,
                mac,
            } => {
                let mut line = format!(
                    "connected: {}, {} flash",
                    chip_name(*chip),
                    format_size(*flash_size)
                );
                if let Some(mac) = mac {
                    line.push_str(&format!(", MAC {mac}"));
                }
                line
            }
            FlashEvent::Progress {
                address,
                done,
                total,
            } => format!("{address:#x} {}%", percent(*done, *total)),
            FlashEvent::Verifying { address } => format!("{address:#x} verifying"),
            FlashEvent::OldOtadata { address, size } => format!(
                "erasing the old partition table's otadata at {address:#x} ({}): it could \
                 make the bootloader start another app",
                format_size(*size)
            ),
            FlashEvent::NoPartitionTable => "warning: the board has no partition table at 0x8000 \
                 (erased flash?), so its bootloader will not find an app at 0x10000: flash an ELF \
                 or the bundled firmware, or add --bootloader and --partition-table"
                .to_owned(),
            FlashEvent::SegmentDone {
                address,
                skipped: true,
            } => format!("{address:#x} unchanged, skipped"),
            // The percentages say it: no line for the start and end of a segment.
            FlashEvent::Segment { .. } | FlashEvent::SegmentDone { .. } => return None,
            FlashEvent::Done { bytes, seconds } => format!("done {bytes} bytes in {seconds:.2} s"),
        })
    }
}

fn percent(done: u64, total: u64) -> u64 {
    (done * 100).checked_div(total).unwrap_or(100)
}

/// The result of a successful [`flash`].
#[derive(Clone, Debug, PartialEq)]
pub struct FlashReport {
    pub chip: Chip,
    pub mac: Option<String>,
    pub flash_size: u32,
    /// Bytes written (segments skipped as unchanged not counted).
    pub bytes: u64,
    pub skipped: u64,
    /// Time spent writing, without connecting.
    pub seconds: f64,
}

/// Flashes `image` to the board on `options.port`. Blocking.
pub fn flash(
    options: &FlashOptions,
    image: &FlashImage,
    progress: &mut impl FnMut(FlashEvent),
) -> Result<FlashReport, FlashError> {
    image.check("the image")?;
    let parts = options.parts.load()?;
    let mut board = Board::connect(options, options.use_stub, progress)?;
    let info = board.info.clone();
    let port = &options.port;
    progress(FlashEvent::Connected {
        chip: info.chip,
        flash_size: info.flash_size,
        mac: info.mac.clone(),
    });

    let target = image.target();
    if !target.fits(info.chip) {
        return Err(FlashError::WrongChip {
            port: port.clone(),
            image: target.describe(),
            board: chip_name(info.chip),
        });
    }
    if !options.force {
        image.check_app("the image", info.chip)?;
    }
    parts.check_chip(info.chip)?;
    let mut segments = image.segments(info.chip, board.flash_size, board.xtal, &parts)?;
    // espflash compresses only for its stub, which it leaves out in Secure Download Mode.
    let rom_mode = !options.use_stub || board.flasher.secure_download_mode();
    if layout::writes_layout(&segments) {
        match layout::read_table(&mut board.flasher, rom_mode) {
            Ok(old) => {
                let table_written = segments
                    .iter()
                    .any(|segment| segment.addr == layout::PARTITION_TABLE_ADDRESS);
                if !table_written && layout::table_in_flash(&old).is_none() {
                    progress(FlashEvent::NoPartitionTable);
                }
                if let Some(erase) = layout::otadata_erase(&old, &segments) {
                    progress(FlashEvent::OldOtadata {
                        address: erase.addr,
                        size: erase.data.len() as u32,
                    });
                    segments.push(erase);
                }
            }
            // Secure Download Mode forbids reading; the write itself may still work.
            Err(error) => tracing::warn!("cannot read the board's partition table: {error}"),
        }
    }
    for segment in &segments {
        let size = segment.data.len() as u64;
        let end = u64::from(segment.addr) + size;
        if end > u64::from(info.flash_size) {
            return Err(FlashError::TooLarge {
                address: segment.addr,
                size,
                end,
                flash: format_size(info.flash_size),
            });
        }
    }

    let plan: Vec<(u32, u64)> = segments
        .iter()
        .map(|segment| (segment.addr, segment.data.len() as u64))
        .collect();
    let rom_compressed = rom_mode && options.compress && rom_deflate::rom_deflates(info.chip);
    let largest = plan.iter().map(|&(_, len)| len).max().unwrap_or(0);
    let stall = options.stall_timeout;
    let (watchdog, beats) = Watchdog::new(board.watched, allowance(stall, largest));
    let started = Instant::now();
    let (written, position, bytes, skipped) = std::thread::scope(|scope| {
        scope.spawn(|| watchdog.run());
        let emit = &mut *progress;
        // Each event is progress; erasing or hashing a segment may be silent for longer.
        let mut beating = move |event: FlashEvent| {
            let allowed = match &event {
                FlashEvent::Progress { done, total, .. } if done < total => stall,
                _ => allowance(stall, largest),
            };
            beats.beat(allowed);
            emit(event);
        };
        let mut tracker = Tracker::new(plan, &mut beating);
        let written = if rom_compressed {
            rom_deflate::write_segments(
                &mut board.flasher,
                &segments,
                options.verify,
                options.skip_unchanged,
                &mut tracker,
            )
        } else {
            board.flasher.write_bins_to_flash(&segments, &mut tracker)
        };
        // Dropping the beats (with `beating`) ends the watchdog.
        (
            written,
            tracker.position(),
            tracker.written,
            tracker.skipped,
        )
    });
    let seconds = started.elapsed().as_secs_f64();
    if let Err(error) = written {
        if watchdog.stalled() {
            return Err(FlashError::Stalled {
                port: port.clone(),
                seconds: stall.as_secs(),
                at: position.map(|position| (position.address, position.done, position.total)),
            });
        }
        return Err(write_error(port, position, error));
    }
    progress(FlashEvent::Done { bytes, seconds });
    Ok(FlashReport {
        chip: info.chip,
        mac: info.mac.clone(),
        flash_size: info.flash_size,
        bytes,
        skipped,
        seconds,
    })
}

/// Connects to the board's ROM loader, reads what it is, and lets it go (reset per
/// `options.after`; on a pty it stays in the loader). Blocking.
pub fn detect_chip(options: &FlashOptions) -> Result<ChipInfo, FlashError> {
    let mut board = Board::connect(options, false, &mut |_| {})?;
    let chip = board.info.chip;
    if let Err(error) = board.flasher.connection().reset_after(false, chip) {
        tracing::debug!("reset after chip detection failed: {error}");
    }
    Ok(board.info)
}

/// Whether the port has modem lines (DTR/RTS/CTS...). A pty does not: the ioctls fail with
/// ENOTTY, so espflash's resets would fail too.
pub fn has_modem_lines(serial: &mut NativePort) -> bool {
    serial.read_clear_to_send().is_ok()
}

/// The resets to use: what was asked for, else what the port allows.
pub fn resets_for(options: &FlashOptions, modem_lines: bool) -> (Before, After) {
    let before = options.before.unwrap_or(if modem_lines {
        Before::DefaultReset
    } else {
        Before::NoReset
    });
    let after = options.after.unwrap_or(if modem_lines {
        After::HardReset
    } else {
        After::NoReset
    });
    (before, after)
}

/// A connected ROM loader (or stub) and what it told us.
struct Board {
    flasher: Flasher,
    /// The port, as the watchdog sees it (it is inside `flasher`).
    watched: watchdog::Port,
    info: ChipInfo,
    flash_size: FlashSize,
    xtal: XtalFrequency,
}

impl Board {
    fn connect(
        options: &FlashOptions,
        use_stub: bool,
        progress: &mut impl FnMut(FlashEvent),
    ) -> Result<Board, FlashError> {
        let port = &options.port;
        if crate::serial::net::console_url(port).is_some() {
            return Err(FlashError::NetworkPort(port.clone()));
        }
        let mut serial = port::open(port, ROM_BAUD)?;
        let modem_lines = has_modem_lines(&mut serial);
        let watched = watchdog::Port::of(&serial);
        let (before, after) = resets_for(options, modem_lines);
        if before == Before::NoResetNoSync && options.chip.is_none() {
            return Err(FlashError::NeedChip);
        }
        progress(FlashEvent::Connecting {
            port: port.clone(),
            before,
            after,
        });
        let connection = Connection::new(
            serial,
            usb_port_info(port),
            after.into(),
            before.into(),
            ROM_BAUD,
        );
        let mut flasher = Flasher::connect(
            connection,
            use_stub,
            options.verify,
            options.skip_unchanged,
            options.chip,
            options.baud,
        )
        .map_err(|error| connect_error(port, before, modem_lines, error))?;

        let chip = flasher.chip();
        // espflash keeps the detected size to itself; detecting again is a few register reads.
        // Without SYNC nothing was attached, so assume what espflash assumes.
        let flash_size = if before == Before::NoResetNoSync {
            FlashSize::default()
        } else {
            flasher
                .flash_detect()
                .map_err(|error| connect_error(port, before, modem_lines, error))?
                .unwrap_or_default()
        };
        let xtal = chip
            .xtal_frequency(flasher.connection())
            .unwrap_or(chip.default_xtal_frequency());
        let (revision, mac) = if flasher.secure_download_mode() {
            (None, None)
        } else {
            (
                chip.revision(flasher.connection()).ok(),
                chip.mac_address(flasher.connection()).ok(),
            )
        };
        Ok(Board {
            flasher,
            watched,
            info: ChipInfo {
                chip,
                revision,
                flash_size: flash_size.size(),
                mac,
            },
            flash_size,
            xtal,
        })
    }
}

/// espflash picks the reset sequence by USB PID (0x1001: the chip's own USB-Serial/JTAG).
fn usb_port_info(path: &Path) -> UsbPortInfo {
    let usb = port::identity_of(path);
    UsbPortInfo {
        vid: usb.as_ref().map_or(0, |usb| usb.vid),
        pid: usb.as_ref().map_or(0, |usb| usb.pid),
        serial_number: usb.as_ref().and_then(|usb| usb.serial_number.clone()),
        manufacturer: usb.as_ref().and_then(|usb| usb.manufacturer.clone()),
        product: usb.and_then(|usb| usb.product),
    }
}

fn connect_error(
    port: &Path,
    before: Before,
    modem_lines: bool,
    error: espflash::Error,
) -> FlashError {
    use espflash::Error;
    let port = port.to_owned();
    match error {
        Error::Connection(cause) if is_no_answer(&*cause) => FlashError::NoAnswer {
            port,
            fix: match (modem_lines, before.needs_modem_lines()) {
                (true, _) => BOOT_BUTTON_FIX,
                (false, true) => RESET_NEEDS_LINES_FIX,
                (false, false) => NO_RESET_LINES_FIX,
            },
        },
        Error::Connection(cause) => FlashError::ConnectFailed {
            port,
            cause: espflash_message(&*cause),
        },
        Error::ChipMismatch(given, detected) => FlashError::ChipMismatch {
            port,
            given: pretty_chip(&given),
            detected: pretty_chip(&detected),
            detected_arg: detected,
        },
        Error::ChipDetectError(message) => FlashError::UnknownChip { port, message },
        Error::ChipNotProvided => FlashError::NeedChip,
        error => FlashError::Espflash {
            context: format!("connecting to the board on {}", port.display()),
            message: espflash_message(&error),
        },
    }
}

/// espflash's connection errors are private types: their messages are what is public.
fn is_no_answer(cause: &(dyn std::error::Error + 'static)) -> bool {
    let text = cause.to_string();
    [
        "Failed to connect to the device",
        "Download mode successfully detected, but getting no sync reply",
        "Wrong boot mode detected",
    ]
    .iter()
    .any(|known| text.starts_with(known))
}

fn write_error(port: &Path, position: Option<Position>, error: espflash::Error) -> FlashError {
    use espflash::Error;
    let port = port.to_owned();
    match (error, position) {
        (Error::VerifyFailed, Some(position)) => FlashError::VerifyFailed {
            address: position.address,
        },
        (Error::Connection(cause) | Error::Flashing(cause), Some(position)) => {
            FlashError::ConnectionLost {
                port,
                address: position.address,
                done: position.done,
                total: position.total,
                cause: espflash_message(&*cause),
            }
        }
        (error, None) => FlashError::FinishFailed {
            port,
            cause: espflash_message(&error),
        },
        (error, Some(position)) => FlashError::Espflash {
            context: format!(
                "writing at {:#x} failed after {} of {} bytes",
                position.address, position.done, position.total
            ),
            message: espflash_message(&error),
        },
    }
}

/// An error and its sources on one line, without the repetitions espflash's wrappers add.
pub(crate) fn espflash_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// `ESP32-C3` for espflash's `esp32c3`.
pub fn chip_name(chip: Chip) -> String {
    pretty_chip(&chip.to_string())
}

fn pretty_chip(name: &str) -> String {
    let upper = name.to_uppercase();
    match upper.strip_prefix("ESP32") {
        Some(variant) if !variant.is_empty() => format!("ESP32-{variant}"),
        _ => upper,
    }
}

/// `4 MB`, `512 KB`: flash sizes are powers of two.
pub fn format_size(bytes: u32) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MB", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{} KB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests;
