//! What can go wrong while flashing, each in one line that names the cause and the fix.

use std::path::PathBuf;

use crate::serial::port::PortError;

/// The fix for a board that does not answer, on a port with DTR/RTS.
pub(super) const BOOT_BUTTON_FIX: &str =
    "hold BOOT, tap RESET, release BOOT to enter download mode, then try again";
/// The fix on a port without modem lines (a pty), where espchat cannot reset the board.
pub(super) const NO_RESET_LINES_FIX: &str = "the port has no DTR/RTS lines (a pty?), so espchat \
     cannot reset the board: check that the program behind it (e.g. `espchat board`) is running \
     or put the board into download mode yourself, then try again";
/// The fix when a reset through DTR/RTS was asked for on a port that has no such lines.
pub(super) const RESET_NEEDS_LINES_FIX: &str = "the port has no DTR/RTS lines (a pty?) for \
     --before default-reset or usb-reset: use --before no-reset (or leave --before out)";

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// Opening the port: not found, busy, permission denied (the console's messages).
    #[error(transparent)]
    Port(#[from] PortError),

    // The OS error is part of the message, so it is no `source`: `{error:#}` would say it twice.
    #[error("cannot read {}: {error} (check the path)", path.display())]
    ReadImage {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{image} is not an ESP32 ELF or .bin image: {reason}")]
    NotAnImage { image: String, reason: String },

    #[error(
        "{image} is not a bootable app image ({reason}): the board would not start it; check \
         the file (is the build or the download complete?), or pass --force to write it anyway"
    )]
    BadApp { image: String, reason: String },

    #[error(
        "espchat bundles its firmware for the ESP32-C3 and ESP32-C6, not for the {0}: give an \
         IMAGE (build the firmware for your chip, see firmware/README.md)"
    )]
    NoBundledImage(String),

    #[error(
        "{image}: flash address {address:#x} is not a multiple of 0x1000 (a 4 KiB flash \
         sector): give an aligned address such as 0x10000"
    )]
    Unaligned { image: String, address: u32 },

    #[error("no answer from the board's ROM loader on {}: {fix}", port.display())]
    NoAnswer { port: PathBuf, fix: &'static str },

    #[error(
        "the board's ROM loader on {} stopped answering while connecting ({cause}): {}",
        port.display(),
        BOOT_BUTTON_FIX
    )]
    ConnectFailed { port: PathBuf, cause: String },

    #[error(
        "the board on {} is an {detected}, not the {given} given with -c: use -c {detected_arg} \
         or leave -c out to detect the chip",
        port.display()
    )]
    ChipMismatch {
        port: PathBuf,
        given: String,
        detected: String,
        detected_arg: String,
    },

    #[error(
        "the board on {} answered, but its chip is not one espflash knows ({message}): check \
         that it is an ESP32-family chip, reset it into download mode and try again",
        port.display()
    )]
    UnknownChip { port: PathBuf, message: String },

    #[error(
        "--before no-reset-no-sync skips chip detection, so the chip must be named: add -c \
         (e.g. -c esp32c3)"
    )]
    NeedChip,

    #[error(
        "{} is a console behind the network: espchat flashes through a local serial port only \
         (the espflash library opens the port itself); flash the board where it is plugged in \
         (`espchat flash -p /dev/ttyUSB0` on that computer), then watch it from here with \
         `espchat monitor -p {}` or `flash-and-connect --no-flash -p {}`",
        .0.display(), .0.display(), .0.display()
    )]
    NetworkPort(std::path::PathBuf),

    #[error(
        "the image was built for {image}, but the board on {} is an {board}: flash an image \
         built for the {board} (for espchat's firmware, leave out IMAGE to use the bundled one)",
        port.display()
    )]
    WrongChip {
        port: PathBuf,
        image: String,
        board: String,
    },

    #[error(
        "the image ({size} bytes at {address:#x}, ending at {end:#x}) does not fit the board's \
         {flash} flash: use a smaller image or a board with more flash"
    )]
    TooLarge {
        address: u32,
        size: u64,
        end: u64,
        flash: String,
    },

    #[error(
        "the app ({app} bytes) is larger than the app partition ({partition} bytes) of the \
         default partition table: make the app smaller (e.g. build with --release)"
    )]
    AppTooLarge { app: u32, partition: u32 },

    #[error(
        "connection to the board on {} lost while writing at {address:#x}: {done} of {total} \
         bytes written ({cause}); check the cable, put the board into download mode and flash \
         again",
        port.display()
    )]
    ConnectionLost {
        port: PathBuf,
        address: u32,
        done: u64,
        total: u64,
        cause: String,
    },

    #[error(
        "flashing the board on {} made no progress for {seconds} s{}: the board stopped \
         answering (did it reset, or did another program use the port?); put the board into \
         download mode and flash again",
        port.display(),
        match at {
            Some((address, done, total)) => format!(
                " while writing at {address:#x} ({done} of {total} bytes written)"
            ),
            None => " while finishing".to_owned(),
        }
    )]
    Stalled {
        port: PathBuf,
        seconds: u64,
        /// Address, bytes done and total of the segment being written.
        at: Option<(u32, u64, u64)>,
    },

    #[error(
        "verification failed at {address:#x}: the board's flash does not hold what was \
         written; flash again, at a lower baud rate (-b 115200) if it happens again"
    )]
    VerifyFailed { address: u32 },

    #[error(
        "everything was written to the board on {}, but finishing failed ({cause}): press the \
         board's RESET button to start it (on a port without DTR/RTS use --after no-reset)",
        port.display()
    )]
    FinishFailed { port: PathBuf, cause: String },

    /// Anything else, with espflash's own message.
    #[error("{context}: {message}")]
    Espflash { context: String, message: String },
}
