//! Reading flash back: SPI_FLASH_MD5, the ROM's READ_FLASH_SLOW and the stub's streamed
//! READ_FLASH with its acknowledgements.

use md5::{Digest, Md5};

use super::{Done, Loader, LoaderEvent, Outcome, Then};
use crate::board::rom::protocol::{Mode, RomError, words};
use crate::board::rom::slip;
use crate::flash::SECTOR_SIZE;

/// ROM READ_FLASH_SLOW answers at most this many bytes, always in a buffer of this size.
const READ_SLOW_BLOCK: usize = 64;

/// The stub's READ_FLASH reads through a one-sector buffer.
const MAX_READ_BLOCK: u32 = SECTOR_SIZE as u32;

/// A stub READ_FLASH in progress: data frames go out, acknowledgements come in.
pub(super) struct ReadFlash {
    addr: u32,
    len: u32,
    block_size: u32,
    max_in_flight: u32,
    sent: u32,
    acked: u32,
    md5: Md5,
}

impl Loader {
    /// `addr, size, 0, 0`. The ROM answers 32 lowercase hex digits, the stub 16 raw bytes.
    pub(super) fn flash_md5(&mut self, data: &[u8]) -> Outcome {
        let [addr, size] = words(data).ok_or(RomError::InvalidMessage)?;
        let bytes = self
            .flash
            .read(addr, size as usize)
            .ok_or(RomError::FlashRead)?;
        let digest: [u8; 16] = Md5::digest(bytes).into();
        Ok(Done::data(match self.mode {
            Mode::Rom => digest.iter().flat_map(|b| hex_digits(*b)).collect(),
            Mode::Stub => digest.to_vec(),
        }))
    }

    /// `addr, len[, block_size, max_in_flight]`, len at most 64. The answer is always a
    /// 64-byte buffer; bytes past `len` are zero.
    pub(super) fn read_flash_slow(&mut self, data: &[u8]) -> Outcome {
        let [addr, len] = words(data).ok_or(RomError::InvalidMessage)?;
        if len as usize > READ_SLOW_BLOCK {
            return Err(RomError::InvalidMessage);
        }
        let bytes = self
            .flash
            .read(addr, len as usize)
            .ok_or(RomError::FlashRead)?;
        let mut block = vec![0; READ_SLOW_BLOCK];
        block[..bytes.len()].copy_from_slice(bytes);
        Ok(Done::data(block))
    }

    /// `addr, len, block_size, max_in_flight`. The OK reply goes first, then data frames of
    /// `block_size` bytes, never more than `max_in_flight` bytes unacknowledged (but always at
    /// least one frame); the host acknowledges with the total it has received as a u32 frame;
    /// when everything is acknowledged the stub sends the MD5 of the data as a 16-byte frame.
    pub(super) fn read_flash_begin(&mut self, data: &[u8]) -> Outcome {
        if data.len() != 16 {
            return Err(RomError::InvalidMessage);
        }
        let [addr, len, block_size, max_in_flight] = words(data).ok_or(RomError::InvalidMessage)?;
        // The stub's buffer is one sector; it would hang on a larger block.
        if block_size == 0 || block_size > MAX_READ_BLOCK {
            return Err(RomError::InvalidMessage);
        }
        self.flash
            .read(addr, len as usize)
            .ok_or(RomError::FlashRead)?;
        self.reading = Some(ReadFlash {
            addr,
            len,
            block_size,
            max_in_flight,
            sent: 0,
            acked: 0,
            md5: Md5::new(),
        });
        Ok(Done::then(Then::StreamFlash))
    }

    pub(super) fn read_flash_pump(&mut self, out: &mut impl FnMut(LoaderEvent)) {
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        while reading.sent < reading.len
            && reading.sent - reading.acked.min(reading.sent) < reading.max_in_flight.max(1)
        {
            let n = (reading.len - reading.sent).min(reading.block_size);
            let Some(bytes) = self.flash.read(reading.addr + reading.sent, n as usize) else {
                break;
            };
            reading.md5.update(bytes);
            out(LoaderEvent::Reply(slip::encode(bytes)));
            reading.sent += n;
        }
        if reading.acked >= reading.len {
            self.read_flash_finish(out);
        }
    }

    pub(super) fn read_flash_ack(&mut self, packet: &[u8], out: &mut impl FnMut(LoaderEvent)) {
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        // Anything but a 4-byte acknowledgement ends the transfer, as in the stub.
        let Ok(ack) = <[u8; 4]>::try_from(packet) else {
            self.read_flash_finish(out);
            return;
        };
        reading.acked = u32::from_le_bytes(ack);
        if reading.acked > reading.sent {
            self.read_flash_finish(out);
            return;
        }
        self.read_flash_pump(out);
    }

    fn read_flash_finish(&mut self, out: &mut impl FnMut(LoaderEvent)) {
        if let Some(reading) = self.reading.take() {
            let digest: [u8; 16] = reading.md5.finalize().into();
            out(LoaderEvent::Reply(slip::encode(&digest)));
        }
    }
}

fn hex_digits(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xF)],
    ]
}

#[cfg(test)]
mod tests {
    use crate::board::rom::loader::LoaderEvent;
    use crate::board::rom::loader::tests::{Host, app_image, le, md5_of, unslip};
    use crate::board::rom::protocol::op;
    use crate::board::rom::slip;

    #[test]
    fn stub_read_flash_streams_blocks_waits_for_acks_and_ends_with_md5() {
        let mut host = Host::stub();
        let image = app_image(10_000);
        host.loader.flash.write(0x3000, &image).unwrap();
        // esptool and espflash: block 0x1000, max_in_flight 64 (bytes): one frame at a time.
        let (packets, _) = host.exchange(op::READ_FLASH, 0, &le(&[0x3000, 10_000, 0x1000, 64]));
        assert_eq!(packets.len(), 2, "reply and first block");
        assert_eq!(packets[0], [1, 0xD2, 2, 0, 0, 0, 0, 0, 0, 0]);
        let mut data = packets[1].clone();
        loop {
            let events = host.feed(&slip::encode(&(data.len() as u32).to_le_bytes()));
            let packets: Vec<_> = events
                .iter()
                .flat_map(|e| match e {
                    LoaderEvent::Reply(w) => unslip(w),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(packets.len(), 1);
            if data.len() == image.len() {
                assert_eq!(packets[0], md5_of(&image));
                break;
            }
            data.extend_from_slice(&packets[0]);
        }
        assert_eq!(data, image);
        // Back to commands.
        host.ok(op::READ_REG, &le(&[0x4000_1000]));

        // A generous window sends everything at once.
        let (packets, _) =
            host.exchange(op::READ_FLASH, 0, &le(&[0x3000, 10_000, 0x1000, 0x10000]));
        assert_eq!(packets.len(), 4);
        let (packets, _) = host.exchange(0, 0, &[]); // not an ack: ends the read
        assert_eq!(packets, [md5_of(&image)]);
    }
}
