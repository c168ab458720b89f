//! Writing flash: FLASH_BEGIN, FLASH_DATA and FLASH_END, and the same with a zlib stream
//! (FLASH_DEFL_*). The ROM erases the whole region at BEGIN, the stub sector by sector just
//! ahead of the data.

use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::{Done, Loader, LoaderEvent, Outcome, Then};
use crate::board::rom::flash::Flash;
use crate::board::rom::protocol::{Mode, RomError, words};
use crate::flash::SECTOR_SIZE;

/// A FLASH_BEGIN or FLASH_DEFL_BEGIN session.
pub(super) struct Download {
    offset: u32,
    blocks: u32,
    block_size: u32,
    next_seq: u32,
    /// Flash address the next decompressed byte goes to (deflate sessions).
    write_pos: u64,
    /// End of the highest byte written, for the `Flashed` event.
    written_end: u64,
    /// The stub erases sector by sector just ahead of the data; the ROM erased at BEGIN.
    erase_lazily: bool,
    erased_to: u64,
    inflate: Option<Inflate>,
    reported: bool,
}

struct Inflate {
    state: Box<InflateState>,
    buf: Vec<u8>,
    done: bool,
}

impl Loader {
    /// `size, blocks, block_size, offset[, encrypted]`. The ROM erases `size` bytes from
    /// `offset` now (esptool sends the exact size, espflash a whole number of sectors; for
    /// FLASH_DEFL_BEGIN esptool rounds to 1 KiB); the stub erases as data arrives.
    pub(super) fn flash_begin(&mut self, data: &[u8], deflate: bool) -> Outcome {
        if !matches!(data.len(), 16 | 20) {
            return Err(RomError::InvalidMessage);
        }
        let [size, blocks, block_size, offset] = words(data).ok_or(RomError::InvalidMessage)?;
        if data.len() == 20 && words::<5>(data).is_some_and(|w| w[4] != 0) {
            // Encrypted writes need keys the virtual chip does not have.
            return Err(RomError::FailedToAct);
        }
        if blocks > 0 && block_size == 0 {
            return Err(RomError::InvalidMessage);
        }
        let erase_lazily = self.mode == Mode::Stub;
        if !erase_lazily {
            self.flash
                .erase_region(offset, size as usize)
                .map_err(|_| RomError::FailedToAct)?;
        } else if offset as usize > self.flash.size() {
            return Err(RomError::FailedToAct);
        }
        let sector_start = u64::from(offset) / SECTOR_SIZE as u64 * SECTOR_SIZE as u64;
        self.download = Some(Download {
            offset,
            blocks,
            block_size,
            next_seq: 0,
            write_pos: u64::from(offset),
            written_end: u64::from(offset),
            erase_lazily,
            erased_to: sector_start,
            inflate: deflate.then(|| Inflate {
                state: InflateState::new_boxed(DataFormat::Zlib),
                buf: vec![0; 32 * 1024],
                done: false,
            }),
            reported: false,
        });
        Ok(Done::ok())
    }

    pub(super) fn flash_data(&mut self, checksum: u32, data: &[u8]) -> Outcome {
        let Some(download) = self.download.as_mut().filter(|d| d.inflate.is_none()) else {
            return Err(RomError::FailedToAct);
        };
        let (payload, seq) = download.block(checksum, data)?;
        let addr = u64::from(download.offset) + u64::from(seq) * u64::from(download.block_size);
        download.program(&mut self.flash, addr, payload)?;
        download.next_seq += 1;
        Ok(Done::then(download.report_if_complete(false)))
    }

    pub(super) fn flash_defl_data(&mut self, checksum: u32, data: &[u8]) -> Outcome {
        let Some(download) = self.download.as_mut().filter(|d| d.inflate.is_some()) else {
            return Err(RomError::FailedToAct);
        };
        let (payload, _) = download.block(checksum, data)?;
        download.next_seq += 1;
        download.inflate_into(&mut self.flash, payload)?;
        let stream_done = download.inflate.as_ref().is_some_and(|i| i.done);
        Ok(Done::then(download.report_if_complete(stream_done)))
    }

    /// One u32: 0 reboots, 1 "runs user code". The ROM leaves the loader either way (which is
    /// why esptool never sends FLASH_END to the ROM unless it means to leave); the stub stays
    /// on 1.
    pub(super) fn flash_end(&mut self, data: &[u8]) -> Outcome {
        let [flag] = words(data).ok_or(RomError::InvalidMessage)?;
        let download = self.download.take();
        if download.is_some_and(|d| d.inflate.is_some_and(|i| !i.done)) {
            // The zlib stream stopped short. What was decompressed is in flash, as on the
            // chip, but the host should know.
            return Err(RomError::Deflate);
        }
        let leave = self.mode == Mode::Rom || flag == 0;
        Ok(Done::then(if leave {
            Then::Emit(LoaderEvent::Reboot)
        } else {
            Then::Nothing
        }))
    }
}

impl Download {
    /// The payload of the session's next data packet, checked (see [`Loader::data_block`]).
    fn block<'a>(&self, checksum: u32, data: &'a [u8]) -> Result<(&'a [u8], u32), RomError> {
        Loader::data_block(checksum, data, self.next_seq, self.blocks, self.block_size)
    }

    /// Programs `bytes` at `addr`, erasing ahead first when the stub is flashing. Bytes past
    /// the end of the flash are dropped if they are 0xFF (padding of a last block), an error
    /// otherwise.
    fn program(&mut self, flash: &mut Flash, addr: u64, bytes: &[u8]) -> Result<(), RomError> {
        let flash_size = flash.size() as u64;
        let end = addr + bytes.len() as u64;
        let fits = end.min(flash_size).saturating_sub(addr) as usize;
        if bytes[fits..].iter().any(|&b| b != 0xFF) {
            return Err(RomError::FlashWrite);
        }
        let bytes = &bytes[..fits];
        if bytes.is_empty() {
            return Ok(());
        }
        let end = addr + bytes.len() as u64;
        if self.erase_lazily && end > self.erased_to {
            let erase_end = end.next_multiple_of(SECTOR_SIZE as u64).min(flash_size);
            let start = self
                .erased_to
                .max(addr / SECTOR_SIZE as u64 * SECTOR_SIZE as u64);
            flash
                .erase_region(start as u32, (erase_end - start) as usize)
                .map_err(|_| RomError::FlashWrite)?;
            self.erased_to = erase_end;
        }
        flash
            .write(addr as u32, bytes)
            .map_err(|_| RomError::FlashWrite)?;
        self.written_end = self.written_end.max(end);
        Ok(())
    }

    /// Feeds a block of the zlib stream and writes what it decompresses to.
    fn inflate_into(&mut self, flash: &mut Flash, mut input: &[u8]) -> Result<(), RomError> {
        let Some(mut inflater) = self.inflate.take() else {
            return Err(RomError::FailedToAct);
        };
        let result = (|| {
            while !inflater.done {
                let step = inflate(&mut inflater.state, input, &mut inflater.buf, MZFlush::None);
                input = &input[step.bytes_consumed..];
                let produced = step.bytes_written;
                let buf = std::mem::take(&mut inflater.buf);
                let written = self.program(flash, self.write_pos, &buf[..produced]);
                inflater.buf = buf;
                written?;
                self.write_pos += produced as u64;
                match step.status {
                    Ok(MZStatus::StreamEnd) => inflater.done = true,
                    Ok(_) | Err(MZError::Buf) => {
                        if step.bytes_consumed == 0 && produced == 0 {
                            // Needs more input (or more output room, which the next round
                            // has since the buffer was emptied).
                            break;
                        }
                    }
                    Err(_) => return Err(RomError::Deflate),
                }
            }
            Ok(())
        })();
        self.inflate = Some(inflater);
        result
    }

    /// The `Flashed` event once the last block is in (or the zlib stream has ended).
    fn report_if_complete(&mut self, stream_done: bool) -> Then {
        if self.reported || !(stream_done || self.next_seq >= self.blocks) {
            return Then::Nothing;
        }
        self.reported = true;
        Then::Emit(LoaderEvent::Flashed {
            addr: self.offset,
            len: (self.written_end - u64::from(self.offset)) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use miniz_oxide::deflate::compress_to_vec_zlib;

    use crate::board::rom::loader::LoaderEvent;
    use crate::board::rom::loader::tests::{
        APP_ADDR, Host, ROM_BLOCK, STUB_BLOCK, app_image, data_packet, frame, le, md5_of,
        parse_response,
    };
    use crate::board::rom::protocol::{self, op};
    use crate::flash::SECTOR_SIZE;

    #[test]
    fn espflash_rom_sequence_writes_100_kib_byte_exact() {
        let mut host = Host::new();
        // Something below and above the app that must survive.
        host.loader.flash.write(APP_ADDR - 1, &[0x12]).unwrap();
        host.connect_like_espflash();
        let image = app_image(100 * 1024 + 123);
        let before = host.md5(APP_ADDR, image.len() as u32);
        assert_ne!(before, md5_of(&image));
        host.flash_plain(APP_ADDR, &image, ROM_BLOCK, false);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        let flash = host.loader.flash().as_bytes();
        assert_eq!(&flash[APP_ADDR as usize..][..image.len()], &image[..]);
        assert_eq!(flash[APP_ADDR as usize - 1], 0x12);
        let end = APP_ADDR as usize + image.len();
        assert!(flash[end..end + 0x10000].iter().all(|&b| b == 0xFF));
        assert_eq!(
            host.events,
            [LoaderEvent::Flashed {
                addr: APP_ADDR,
                len: image.len().div_ceil(ROM_BLOCK) as u32 * ROM_BLOCK as u32
            }]
        );
        let (packets, others) = host.exchange(op::FLASH_END, 0, &le(&[0]));
        assert_eq!(packets.len(), 1);
        assert_eq!(others, [LoaderEvent::Reboot]);
        assert!(host.loader.is_halted());
        assert!(
            host.feed(&frame(op::SYNC, 0, &protocol::SYNC_PAYLOAD))
                .is_empty()
        );
    }

    #[test]
    fn esptool_rom_sequence_with_exact_size_and_rewrite_over_old_data() {
        let mut host = Host::new();
        host.connect_like_espflash();
        // An older, longer app is there already: FLASH_BEGIN must erase before writing.
        host.flash_plain(APP_ADDR, &vec![0x5A; 150 * 1024], ROM_BLOCK, true);
        let image = app_image(100 * 1024 + 5);
        host.flash_plain(APP_ADDR, &image, ROM_BLOCK, true);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        // The old app past the erased sectors is untouched, as on the chip.
        let erased_end = APP_ADDR as usize + image.len().next_multiple_of(SECTOR_SIZE);
        assert_eq!(host.loader.flash().as_bytes()[erased_end], 0x5A);
    }

    #[test]
    fn deflate_download_in_rom_mode_with_1_kib_blocks() {
        let mut host = Host::new();
        host.connect_like_espflash();
        let image = app_image(100 * 1024);
        host.flash_deflate(APP_ADDR, &image, ROM_BLOCK);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        assert_eq!(
            host.events,
            [LoaderEvent::Flashed {
                addr: APP_ADDR,
                len: image.len() as u32
            }]
        );
    }

    #[test]
    fn deflate_download_in_stub_mode_with_16_kib_blocks() {
        let mut host = Host::stub();
        host.connect_like_espflash();
        // Random-ish data so that the compressed stream spans several 16 KiB blocks.
        let mut x = 1u32;
        let image: Vec<u8> = (0..100 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 40) as u8
            })
            .collect();
        host.flash_deflate(APP_ADDR, &image, STUB_BLOCK);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        assert!(compress_to_vec_zlib(&image, 9).len() > 2 * STUB_BLOCK);
        // espflash ends a stub download with FLASH_DEFL_END(1): the stub stays.
        let (packets, others) = host.exchange(op::FLASH_DEFL_END, 0, &le(&[1]));
        assert_eq!(packets.len(), 1);
        assert_eq!(parse_response(&packets[0]).status, 0);
        assert!(others.is_empty());
        // A stub download of uncompressed data (16 KiB blocks) works too.
        let image = app_image(40_000);
        host.flash_plain(0x20000, &image, STUB_BLOCK, false);
        assert_eq!(host.md5(0x20000, image.len() as u32), md5_of(&image));
    }

    #[test]
    fn bad_checksum_is_refused_and_nothing_is_written() {
        let mut host = Host::new();
        host.ok(op::FLASH_BEGIN, &le(&[0x1000, 1, 0x400, APP_ADDR, 0]));
        let (checksum, data) = data_packet(0, &[0x00; 0x400]);
        let r = host.command(op::FLASH_DATA, checksum ^ 1, &data);
        assert_eq!((r.status, r.error), (1, 0x07));
        assert!(host.loader.flash().as_bytes().iter().all(|&b| b == 0xFF));
        // The same block resent with the right checksum is accepted (sequence not advanced).
        let r = host.command(op::FLASH_DATA, checksum, &data);
        assert_eq!((r.status, r.error), (0, 0));
        assert_eq!(host.loader.flash().as_bytes()[APP_ADDR as usize], 0);
    }

    #[test]
    fn bad_deflate_stream_gets_0x0b() {
        let mut host = Host::new();
        host.ok(op::FLASH_DEFL_BEGIN, &le(&[0x1000, 1, 0x400, APP_ADDR, 0]));
        let (checksum, data) = data_packet(0, &[0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF]);
        let r = host.command(op::FLASH_DEFL_DATA, checksum, &data);
        assert_eq!((r.status, r.error), (1, 0x0B));
        // Not a zlib header at all.
        host.ok(op::FLASH_DEFL_BEGIN, &le(&[0x1000, 1, 0x400, APP_ADDR, 0]));
        let (checksum, data) = data_packet(0, b"hello, world");
        assert_eq!(
            host.command(op::FLASH_DEFL_DATA, checksum, &data).error,
            0x0B
        );
    }

    #[test]
    fn truncated_deflate_stream_fails_at_defl_end() {
        let mut host = Host::stub();
        let compressed = compress_to_vec_zlib(&app_image(5000), 6);
        host.ok(op::FLASH_DEFL_BEGIN, &le(&[5000, 1, 0x4000, APP_ADDR]));
        let (checksum, data) = data_packet(0, &compressed[..compressed.len() / 2]);
        assert_eq!(host.command(op::FLASH_DEFL_DATA, checksum, &data).status, 0);
        assert_eq!(host.command(op::FLASH_DEFL_END, 0, &le(&[1])).error, 0x0B);
    }

    #[test]
    fn stub_erases_as_it_writes_and_writes_are_nor() {
        let mut host = Host::stub();
        host.loader.flash.write(0x11000, &[0x00; 4]).unwrap();
        host.loader.flash.write(0x20000, &[0x00; 4]).unwrap();
        host.flash_plain(0x10000, &[0xAB; 0x1800], 0x1800, false);
        let flash = host.loader.flash().as_bytes();
        assert!(flash[0x10000..0x11800].iter().all(|&b| b == 0xAB));
        assert!(
            flash[0x11800..0x12000].iter().all(|&b| b == 0xFF),
            "second sector erased"
        );
        assert_eq!(flash[0x20000], 0, "untouched past the data");
    }
}
