//! Compressed writes through the chip's ROM loader (FLASH_DEFL_BEGIN/DATA/END), which espflash
//! 4.7 sends only to its RAM stub: with `use_stub == false` it always writes FLASH_DATA blocks.
//! Boards that must not run the stub (secure boot, flash encryption, a stub that misbehaves)
//! then send every byte of the image; their ROM takes a zlib stream as esptool sends it.
//!
//! Only what espflash lacks is here: the segment loop of its `Esp32Target` with deflate in ROM
//! mode. The commands, their framing, replies and timeouts are espflash's (`Command`,
//! `Connection`, `CommandType::timeout_for_size`); a segment deflate cannot shrink goes through
//! espflash's own ROM path (`Esp32Target::write_segment`).

use std::io::Write as _;

use espflash::command::{Command, CommandType};
use espflash::connection::Connection;
use espflash::flasher::{Flasher, SpiAttachParams};
use espflash::image_format::Segment;
use espflash::target::{Chip, Esp32Target, FlashTarget as _, ProgressCallbacks};
use flate2::write::ZlibEncoder;
use flate2::{Compression, Decompress, FlushDecompress};
use md5::{Digest as _, Md5};

use super::format::SECTOR_SIZE;

/// Whether the chip's ROM loader takes FLASH_DEFL_*. esptool sends them to every ESP32-family
/// ROM (only the ESP8266's lacks them, and espflash 4 does not support that chip); a chip
/// espflash adds later is written raw until it is checked here.
pub fn rom_deflates(chip: Chip) -> bool {
    matches!(
        chip,
        Chip::Esp32
            | Chip::Esp32c2
            | Chip::Esp32c3
            | Chip::Esp32c5
            | Chip::Esp32c6
            | Chip::Esp32c61
            | Chip::Esp32h2
            | Chip::Esp32h4
            | Chip::Esp32p4
            | Chip::Esp32s2
            | Chip::Esp32s3
            | Chip::Esp32s31
    )
}

/// Writes `segments` through the ROM loader as [`Flasher::write_bins_to_flash`] does in ROM
/// mode (skip unchanged, verify, the same progress callbacks, FLASH_END with reboot and the
/// reset after), but sends each segment as a zlib stream when that is shorter.
///
/// Progress counts uncompressed bytes: `init(address, segment length)`, then `update(bytes)`
/// with the bytes the acknowledged blocks decompress to.
pub fn write_segments(
    flasher: &mut Flasher,
    segments: &[Segment<'_>],
    verify: bool,
    skip_unchanged: bool,
    progress: &mut dyn ProgressCallbacks,
) -> Result<(), espflash::Error> {
    let secure = flasher.secure_download_mode();
    // Secure Download Mode forbids reading flash, SPI_FLASH_MD5 included (espflash drops both
    // too).
    let (verify, skip_unchanged) = if secure {
        (false, false)
    } else {
        (verify, skip_unchanged)
    };
    // espflash's flash target `begin`: SPI_ATTACH with the SPI pins it detected while
    // connecting, and on USB-Serial/JTAG the RTC watchdog off. The detected pins are private
    // to the flasher; this method is the public way to that `begin`.
    flasher.disable_watchdog()?;
    let mut writer = RomWriter::new(flasher.chip(), verify, skip_unchanged);
    let connection = flasher.connection();
    for segment in segments {
        writer.write_segment(connection, segment.borrow(), progress)?;
    }
    writer.finish(connection, secure)
}

/// Which download the loader is in, for the command that ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Download {
    Raw,
    Deflate,
}

struct RomWriter {
    chip: Chip,
    verify: bool,
    skip_unchanged: bool,
    /// espflash's ROM-mode target, for segments deflate cannot shrink. It gets
    /// `skip_unchanged == false`: this writer has checked that already.
    raw: Esp32Target,
    /// The download the last written segment began, if any.
    download: Option<Download>,
}

impl RomWriter {
    fn new(chip: Chip, verify: bool, skip_unchanged: bool) -> Self {
        RomWriter {
            chip,
            verify,
            skip_unchanged,
            // The SPI pins only matter to `begin`, which this target never runs.
            raw: Esp32Target::new(chip, SpiAttachParams::default(), false, verify, false),
            download: None,
        }
    }

    fn write_segment(
        &mut self,
        connection: &mut Connection,
        segment: Segment<'_>,
        progress: &mut dyn ProgressCallbacks,
    ) -> Result<(), espflash::Error> {
        let addr = segment.addr;
        let data: &[u8] = &segment.data;
        let md5: [u8; 16] = Md5::digest(data).into();
        if self.skip_unchanged && flash_md5(connection, addr, data.len())? == md5 {
            tracing::debug!("segment at {addr:#x} unchanged, skipped");
            progress.finish(true);
            return Ok(());
        }

        let compressed = deflate(data)?;
        if compressed.len() >= data.len() {
            self.download = Some(Download::Raw);
            return self.raw.write_segment(connection, segment, progress);
        }
        tracing::debug!(
            "segment at {addr:#x}: {} bytes, {} compressed",
            data.len(),
            compressed.len()
        );

        let block_size = self.chip.flash_write_size();
        let blocks = compressed.chunks(block_size);
        // The ROM erases the region at FLASH_DEFL_BEGIN, so it wants the size to erase (esptool
        // rounds it up to 1 KiB, espflash's FLASH_BEGIN to whole sectors: the ROM erases whole
        // sectors either way). The stub would want the exact length instead.
        let erase_size = data.len().next_multiple_of(SECTOR_SIZE) as u32;
        progress.init(addr, data.len());
        connection.with_timeout(
            CommandType::FlashDeflBegin.timeout_for_size(erase_size),
            |connection| {
                connection.command(Command::FlashDeflBegin {
                    size: erase_size,
                    blocks: blocks.len() as u32,
                    block_size: block_size as u32,
                    offset: addr,
                    // The ESP32's ROM takes no `encrypted` word; the others take it (0 here).
                    supports_encryption: self.chip != Chip::Esp32,
                })
            },
        )?;
        self.download = Some(Download::Deflate);

        let mut unpacked = Unpacked::new();
        for (sequence, block) in blocks.enumerate() {
            // What the block decompresses to: the ROM's work for it, and the progress it is.
            let bytes = unpacked.feed(block);
            connection.with_timeout(
                CommandType::FlashDeflData.timeout_for_size(bytes as u32),
                |connection| {
                    connection.command(Command::FlashDeflData {
                        data: block,
                        pad_to: 0,
                        pad_byte: 0xFF,
                        sequence: sequence as u32,
                    })
                },
            )?;
            progress.update(unpacked.total().min(data.len()));
        }

        if self.verify {
            progress.verifying();
            if flash_md5(connection, addr, data.len())? != md5 {
                return Err(espflash::Error::VerifyFailed);
            }
        }
        progress.finish(false);
        Ok(())
    }

    /// What espflash's `Esp32Target::finish(reboot = true)` does in ROM mode, with the end
    /// command of the download in progress: the ROM leaves the loader and boots, then the
    /// reset asked for with `--after`.
    fn finish(&mut self, connection: &mut Connection, secure: bool) -> Result<(), espflash::Error> {
        if let Some(download) = self.download {
            let (command, kind) = match download {
                Download::Raw => (Command::FlashEnd { reboot: true }, CommandType::FlashEnd),
                Download::Deflate => (
                    Command::FlashDeflEnd { reboot: true },
                    CommandType::FlashDeflEnd,
                ),
            };
            match connection.with_timeout(kind.timeout(), |connection| connection.command(command))
            {
                Ok(_) => {}
                // As espflash: in Secure Download Mode the ROM may refuse to boot an unsigned
                // image after writing it; the data is written.
                Err(espflash::Error::RomError(_)) if secure => {}
                Err(error) => return Err(error),
            }
        }
        if !secure {
            connection.reset_after(false, self.chip)?;
        }
        Ok(())
    }
}

/// The ROM's MD5 of `len` bytes of flash at `addr`.
fn flash_md5(
    connection: &mut Connection,
    addr: u32,
    len: usize,
) -> Result<[u8; 16], espflash::Error> {
    let md5: u128 = connection.with_timeout(
        CommandType::FlashMd5.timeout_for_size(len as u32),
        |connection| {
            connection
                .command(Command::FlashMd5 {
                    offset: addr,
                    size: len as u32,
                })?
                .try_into()
        },
    )?;
    Ok(md5.to_be_bytes())
}

/// zlib's best (level 9), as esptool and espflash's stub path send it.
pub fn deflate(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Inflates the stream as it is sent, to count what each block decompresses to.
struct Unpacked {
    inflater: Decompress,
    out: Vec<u8>,
}

impl Unpacked {
    fn new() -> Self {
        Unpacked {
            inflater: Decompress::new(true),
            out: vec![0; 32 * 1024],
        }
    }

    /// Bytes decompressed so far.
    fn total(&self) -> usize {
        self.inflater.total_out() as usize
    }

    /// Feeds the next piece of the stream; returns the bytes it decompressed to.
    fn feed(&mut self, mut input: &[u8]) -> usize {
        let before = self.total();
        loop {
            let (read, written) = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(input, &mut self.out, FlushDecompress::None);
            let consumed = (self.inflater.total_in() - read) as usize;
            let produced = self.inflater.total_out() - written;
            input = &input[consumed..];
            // Done with this piece once nothing moves: it needs more input, or the stream
            // ended (or is broken, which the ROM will report).
            if status.is_err() || consumed == 0 && produced == 0 {
                break;
            }
        }
        self.total() - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_a_stream_decompress_to_the_whole_input() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x3F)
            .collect();
        let compressed = deflate(&data).unwrap();
        assert!(compressed.len() < data.len() / 2, "{}", compressed.len());
        let mut unpacked = Unpacked::new();
        let per_block: Vec<usize> = compressed
            .chunks(1024)
            .map(|block| unpacked.feed(block))
            .collect();
        assert_eq!(unpacked.total(), data.len());
        assert_eq!(per_block.iter().sum::<usize>(), data.len());
        // Progress moves along the way, not all at the end.
        assert!(per_block[..per_block.len() / 2].iter().sum::<usize>() > data.len() / 4);
    }
}
