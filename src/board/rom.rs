//! The virtual board's ROM serial bootloader: what an ESP32-C3 in download mode speaks on its
//! UART, so that espflash, esptool and espchat can flash the board.
//!
//! This module does no IO. [`Loader::feed`] takes the bytes the host wrote and reports, through
//! a callback, the replies to write back and what the board must do (change baud rate, boot).
//! In app mode the board watches the serial input with a [`SyncDetector`]: a SYNC request is
//! what a flashing tool sends right after resetting the chip into download mode, so on a pty,
//! which has no DTR/RTS lines, it stands in for the reset.
//!
//! Protocol facts and how they were checked: `docs/rom-protocol.md`, espflash 4.7
//! (`src/connection/mod.rs`, `src/command.rs`, `src/flasher/mod.rs`,
//! `src/target/flash_target/esp32.rs`) and esptool 5.6 (`esptool/loader.py`).

mod flash;
mod loader;
mod protocol;
mod registers;
mod slip;

/// Erase granularity of the SPI flash, and of every erase the loader does.
pub use crate::flash::SECTOR_SIZE;
pub use flash::{DEFAULT_SIZE as DEFAULT_FLASH_SIZE, Flash, FlashError};
pub use loader::{INITIAL_BAUD, Loader, LoaderEvent};
pub use registers::mac_for_port;

/// Whether `packet`, a SLIP frame's contents (delimiters and escapes removed), is a SYNC
/// request.
pub fn is_sync_frame(packet: &[u8]) -> bool {
    protocol::is_sync_packet(packet)
}

/// Finds a SYNC request in the raw serial input of an app-mode board.
///
/// Memory is bounded: frames longer than a SYNC request are dropped as they arrive.
#[derive(Debug)]
pub struct SyncDetector {
    decoder: slip::SlipDecoder,
}

/// A SYNC request is 8 header bytes and 36 payload bytes.
const SYNC_PACKET_LEN: usize = 44;

impl Default for SyncDetector {
    fn default() -> Self {
        SyncDetector {
            decoder: slip::SlipDecoder::new(SYNC_PACKET_LEN),
        }
    }
}

impl SyncDetector {
    /// Scans `bytes`; returns the index just past the first SYNC frame completed in them.
    /// The board then switches to a [`Loader`], calls [`Loader::answer_sync`] and feeds it the
    /// rest, `&bytes[end..]`.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        bytes
            .iter()
            .enumerate()
            .find_map(|(i, &byte)| match self.decoder.push(byte) {
                Some(slip::Decoded::Packet(packet)) if is_sync_frame(&packet) => Some(i + 1),
                _ => None,
            })
    }

    /// Forgets a partly received frame.
    pub fn reset(&mut self) {
        self.decoder.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync_wire() -> Vec<u8> {
        let mut packet = vec![0, protocol::op::SYNC, 36, 0, 0, 0, 0, 0];
        packet.extend_from_slice(&protocol::SYNC_PAYLOAD);
        slip::encode(&packet)
    }

    #[test]
    fn detector_finds_a_sync_split_anywhere_in_console_noise() {
        let mut wire = b"hello\r\n\xC0junk\xC0".to_vec();
        let sync_start = wire.len();
        wire.extend(sync_wire());
        let end = wire.len();
        wire.extend_from_slice(b"after");
        for split in 0..wire.len() {
            let mut detector = SyncDetector::default();
            let found = match detector.feed(&wire[..split]) {
                Some(i) => Some(i),
                None => detector.feed(&wire[split..]).map(|i| i + split),
            };
            assert_eq!(
                found,
                Some(end),
                "split at {split} (sync starts at {sync_start})"
            );
        }
    }

    #[test]
    fn detector_ignores_other_frames_and_long_lines() {
        let mut detector = SyncDetector::default();
        assert_eq!(detector.feed(&[b'x'; 10_000]), None);
        let mut read_reg = vec![0, protocol::op::READ_REG, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        read_reg = slip::encode(&read_reg);
        assert_eq!(detector.feed(&read_reg), None);
        assert!(is_sync_frame(&slip_payload(&sync_wire())));
    }

    fn slip_payload(wire: &[u8]) -> Vec<u8> {
        let mut decoder = slip::SlipDecoder::new(1024);
        wire.iter()
            .find_map(|&b| match decoder.push(b) {
                Some(slip::Decoded::Packet(p)) => Some(p),
                _ => None,
            })
            .unwrap()
    }
}
