//! The flash layout around the app: the bootloader and partition table a user gives for a
//! `.bin` (`--bootloader`, `--partition-table`, as espflash has them), and what the board held
//! before. A partition table with an `otadata` partition (Arduino's, ESP-IDF's OTA tables) lets
//! the bootloader boot whichever app otadata names, say `app1`, and not the app just written to
//! the first app partition: so when we write a partition table or an app at 0x10000, the old
//! table is read and its otadata erased.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use esp_idf_part::{DataType, PartitionTable, SubType, Type};
use espflash::command::{Command, CommandResponseValue, CommandType};
use espflash::connection::Connection;
use espflash::flasher::Flasher;
use espflash::image_format::Segment;
use espflash::target::Chip;

use super::format::{DEFAULT_APP_ADDRESS, IMAGE_MAGIC};
use super::{FlashError, bin_target, chip_name};

/// Where ESP-IDF's bootloader reads the partition table.
pub const PARTITION_TABLE_ADDRESS: u32 = 0x8000;
/// The bytes a partition table may take there (ESP-IDF's `ESP_PARTITION_TABLE_MAX_LEN`).
pub const PARTITION_TABLE_LEN: u32 = 0xC00;

/// Files that take the place of the bootloader and the partition table espflash would write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parts {
    /// A 2nd-stage bootloader `.bin` (ESP image format).
    pub bootloader: Option<PathBuf>,
    /// A partition table, CSV or binary (as ESP-IDF's `gen_esp32part.py` writes it).
    pub partition_table: Option<PathBuf>,
}

/// [`Parts`] read and checked, before any board is touched.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadedParts {
    pub bootloader: Option<(PathBuf, Vec<u8>)>,
    /// The path given and the table in binary form.
    pub partition_table: Option<(PathBuf, Vec<u8>)>,
}

impl Parts {
    pub(crate) fn load(&self) -> Result<LoadedParts, FlashError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| FlashError::ReadImage {
                path: path.to_owned(),
                error,
            })
        };
        let bootloader = match &self.bootloader {
            Some(path) => {
                let data = read(path)?;
                if data.first() != Some(&IMAGE_MAGIC) {
                    return Err(FlashError::NotAnImage {
                        image: path.display().to_string(),
                        reason: format!(
                            "a bootloader starts with the ESP image magic byte 0xE9, this file \
                             with {}",
                            data.first()
                                .map_or("nothing (it is empty)".to_owned(), |b| format!(
                                    "0x{b:02x}"
                                ))
                        ),
                    });
                }
                Some((path.clone(), data))
            }
            None => None,
        };
        let partition_table = match &self.partition_table {
            Some(path) => {
                let table = parse_table(read(path)?).map_err(|reason| FlashError::NotAnImage {
                    image: path.display().to_string(),
                    reason: format!("it is not a partition table: {reason}"),
                })?;
                let binary = table.to_bin().map_err(|error| FlashError::NotAnImage {
                    image: path.display().to_string(),
                    reason: format!("its partition table cannot be written: {error}"),
                })?;
                Some((path.clone(), binary))
            }
            None => None,
        };
        Ok(LoadedParts {
            bootloader,
            partition_table,
        })
    }
}

impl LoadedParts {
    pub fn bootloader_path(&self) -> Option<&Path> {
        self.bootloader.as_ref().map(|(path, _)| path.as_path())
    }

    pub fn partition_table_path(&self) -> Option<&Path> {
        self.partition_table
            .as_ref()
            .map(|(path, _)| path.as_path())
    }

    /// The bootloader must be for the board's chip.
    pub fn check_chip(&self, chip: Chip) -> Result<(), FlashError> {
        if let Some((path, data)) = &self.bootloader {
            let target = bin_target(data);
            if !target.fits(chip) {
                return Err(FlashError::NotAnImage {
                    image: path.display().to_string(),
                    reason: format!(
                        "it is a bootloader for {}, and the board is an {}",
                        target.describe(),
                        chip_name(chip)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The segments for a raw image: the bootloader at the chip's boot address, the table at
    /// 0x8000.
    pub fn segments(&self, chip: Chip) -> Vec<Segment<'_>> {
        let bootloader = self.bootloader.iter().map(|(_, data)| Segment {
            addr: chip.boot_address(),
            data: Cow::Borrowed(data.as_slice()),
        });
        let table = self.partition_table.iter().map(|(_, data)| Segment {
            addr: PARTITION_TABLE_ADDRESS,
            data: Cow::Borrowed(data.as_slice()),
        });
        bootloader.chain(table).collect()
    }
}

/// A partition table in CSV or binary form. esp-idf-part decides by the first two bytes.
pub fn parse_table(data: Vec<u8>) -> Result<PartitionTable, String> {
    if data.len() < 2 {
        return Err("it is empty".to_owned());
    }
    PartitionTable::try_from(data).map_err(|error| error.to_string())
}

/// A binary partition table as the bootloader reads it at 0x8000: entries up to the first
/// erased one. `None` when there is none (erased flash, garbage).
pub fn table_in_flash(bytes: &[u8]) -> Option<PartitionTable> {
    if !bytes.starts_with(&[0xAA, 0x50]) {
        return None;
    }
    let whole = bytes.len() - bytes.len() % 32;
    PartitionTable::try_from_bytes(&bytes[..whole]).ok()
}

/// The `otadata` partition of a table, as (offset, size).
pub fn otadata(table: &PartitionTable) -> Option<(u32, u32)> {
    table
        .find_by_subtype(Type::Data, SubType::Data(DataType::Ota))
        .map(|partition| (partition.offset(), partition.size()))
}

/// Whether writing `segments` changes which app the bootloader starts: a new partition table,
/// or an app written where the first app partition usually is.
pub fn writes_layout(segments: &[Segment<'_>]) -> bool {
    segments
        .iter()
        .any(|segment| matches!(segment.addr, PARTITION_TABLE_ADDRESS | DEFAULT_APP_ADDRESS))
}

/// The old partition table's otadata, as a segment of erased bytes to write (so that the
/// bootloader falls back to the factory app or ota_0), unless a segment to be written covers
/// part of it (a new layout that puts something else there writes it anyway).
pub fn otadata_erase(old_table: &[u8], segments: &[Segment<'_>]) -> Option<Segment<'static>> {
    let (offset, size) = otadata(&table_in_flash(old_table)?)?;
    let end = u64::from(offset) + u64::from(size);
    let overlaps = segments.iter().any(|segment| {
        let start = u64::from(segment.addr);
        start < end && u64::from(offset) < start + segment.data.len() as u64
    });
    (!overlaps && size > 0).then(|| Segment {
        addr: offset,
        data: Cow::Owned(vec![0xFF; size as usize]),
    })
}

/// Reads the partition table sector from the board: the stub's READ_FLASH (espflash's
/// `read_flash`, which writes what it reads to a file) or the ROM's READ_FLASH_SLOW, 64 bytes
/// per command. The latter is ours: espflash 4.7's `read_flash_rom` adds the bytes read so far
/// to the address again at each block, so from the third block on it reads the wrong place.
pub fn read_table(flasher: &mut Flasher, rom_mode: bool) -> Result<Vec<u8>, String> {
    if rom_mode {
        return read_rom(
            flasher.connection(),
            PARTITION_TABLE_ADDRESS,
            PARTITION_TABLE_LEN,
        );
    }
    let file = tempfile::NamedTempFile::new().map_err(|error| error.to_string())?;
    let path = file.path().to_owned();
    flasher
        .read_flash(
            PARTITION_TABLE_ADDRESS,
            PARTITION_TABLE_LEN,
            0x1000,
            64,
            path,
        )
        .map_err(|error| super::espflash_message(&error))?;
    std::fs::read(file.path()).map_err(|error| error.to_string())
}

/// READ_FLASH_SLOW answers 64 bytes per command, whatever the size asked.
fn read_rom(connection: &mut Connection, address: u32, len: u32) -> Result<Vec<u8>, String> {
    const BLOCK: u32 = 64;
    let mut data = Vec::with_capacity(len as usize);
    for offset in (address..address + len).step_by(BLOCK as usize) {
        let response = connection
            .with_timeout(CommandType::ReadFlashSlow.timeout(), |connection| {
                connection.command(Command::ReadFlashSlow {
                    offset,
                    size: BLOCK,
                    block_size: BLOCK,
                    max_in_flight: 1,
                })
            })
            .map_err(|error| super::espflash_message(&error))?;
        let CommandResponseValue::Vector(block) = response else {
            return Err(format!("READ_FLASH_SLOW at {offset:#x} answered no data"));
        };
        let wanted = (address + len - offset).min(BLOCK) as usize;
        let block = block.get(..wanted).ok_or_else(|| {
            format!(
                "READ_FLASH_SLOW at {offset:#x} answered {} bytes",
                block.len()
            )
        })?;
        data.extend_from_slice(block);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arduino-ESP32's default.csv (4 MB boards).
    pub const ARDUINO_CSV: &str = include_str!("../../tests/data/arduino-default.csv");

    fn arduino_table() -> Vec<u8> {
        let mut sector = parse_table(ARDUINO_CSV.as_bytes().to_vec())
            .unwrap()
            .to_bin()
            .unwrap();
        sector.resize(PARTITION_TABLE_LEN as usize, 0xFF);
        sector
    }

    fn segment(addr: u32, len: usize) -> Segment<'static> {
        Segment {
            addr,
            data: Cow::Owned(vec![0; len]),
        }
    }

    #[test]
    fn the_otadata_of_an_arduino_table_is_erased() {
        let erase = otadata_erase(&arduino_table(), &[segment(0x10000, 0x1000)]).unwrap();
        assert_eq!(erase.addr, 0xe000);
        assert_eq!(erase.data.len(), 0x2000);
        assert!(erase.data.iter().all(|&byte| byte == 0xFF));
    }

    #[test]
    fn a_table_without_otadata_or_no_table_erases_nothing() {
        let factory = "nvs,data,nvs,0x9000,0x6000,\nfactory,app,factory,0x10000,0x3f0000,\n";
        let mut sector = parse_table(factory.as_bytes().to_vec())
            .unwrap()
            .to_bin()
            .unwrap();
        sector.resize(PARTITION_TABLE_LEN as usize, 0xFF);
        assert!(otadata_erase(&sector, &[]).is_none());
        assert!(otadata_erase(&[0xFF; PARTITION_TABLE_LEN as usize], &[]).is_none());
        assert!(otadata_erase(&[0xAA, 0x50, 1, 2], &[]).is_none());
    }

    #[test]
    fn otadata_that_a_new_segment_covers_is_left_to_that_segment() {
        assert!(otadata_erase(&arduino_table(), &[segment(0xd000, 0x2000)]).is_none());
        assert!(otadata_erase(&arduino_table(), &[segment(0xf000, 0x1000)]).is_none());
        assert!(otadata_erase(&arduino_table(), &[segment(0x10000, 0x1000)]).is_some());
    }

    #[test]
    fn only_a_table_or_an_app_at_0x10000_changes_the_layout() {
        assert!(writes_layout(&[segment(0x8000, 0xc00)]));
        assert!(writes_layout(&[segment(0x10000, 0x100)]));
        assert!(!writes_layout(&[segment(0x200000, 0x100)]));
    }

    #[test]
    fn a_partition_table_file_must_parse() {
        assert!(parse_table(ARDUINO_CSV.as_bytes().to_vec()).is_ok());
        assert!(parse_table(b"not,a,table\n".to_vec()).is_err());
        assert!(parse_table(Vec::new()).is_err());
        assert!(parse_table(arduino_table()).is_ok());
    }
}
