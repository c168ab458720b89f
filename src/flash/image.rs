//! What can be flashed, and what can be checked about it without a board: an ESP32 ELF (espflash
//! turns it into bootloader, partition table and app) or raw bytes at a flash address.

use std::borrow::Cow;
use std::path::Path;

use espflash::flasher::{FlashData, FlashSettings, FlashSize};
use espflash::image_format::idf::IdfBootloaderFormat;
use espflash::image_format::{Metadata, Segment};
use espflash::target::{Chip, XtalFrequency};

use super::format::{DEFAULT_APP_ADDRESS, IMAGE_MAGIC, SECTOR_SIZE, image_chip_id};
use super::layout::LoadedParts;
use super::{FlashError, chip_name, espflash_message};

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELF32_HEADER_LEN: usize = 52;
const EM_XTENSA: u16 = 94;
const EM_RISCV: u16 = 243;

/// The chips espflash 4.7 knows, for lookups by name and by image chip id.
const CHIPS: [Chip; 12] = [
    Chip::Esp32,
    Chip::Esp32c2,
    Chip::Esp32c3,
    Chip::Esp32c5,
    Chip::Esp32c6,
    Chip::Esp32c61,
    Chip::Esp32h2,
    Chip::Esp32h4,
    Chip::Esp32p4,
    Chip::Esp32s2,
    Chip::Esp32s3,
    Chip::Esp32s31,
];

/// An image to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlashImage {
    /// An ELF built for an ESP32 chip: written as bootloader (at the chip's boot address),
    /// partition table (0x8000) and app (0x10000), as `espflash flash` does.
    Elf(Vec<u8>),
    /// Raw bytes written as they are at `address` (a multiple of 4 KiB).
    Bin { data: Vec<u8>, address: u32 },
    /// The espchat firmware bundled in this binary, for whichever chip the board turns out to be.
    Bundled,
}

/// The processor family an ELF was built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Xtensa,
    RiscV,
}

impl Arch {
    pub fn of(chip: Chip) -> Arch {
        match chip {
            Chip::Esp32 | Chip::Esp32s2 | Chip::Esp32s3 => Arch::Xtensa,
            _ => Arch::RiscV,
        }
    }
}

/// What an image says about the chip it was built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageTarget {
    /// Named in the image (ELF metadata or the app header's chip id).
    Chip(Chip),
    /// Only the processor family is known (an ELF without espflash metadata).
    Arch(Arch),
    /// Raw data: nothing to check.
    Unknown,
}

impl ImageTarget {
    pub fn fits(self, chip: Chip) -> bool {
        match self {
            ImageTarget::Chip(target) => target == chip,
            ImageTarget::Arch(arch) => arch == Arch::of(chip),
            ImageTarget::Unknown => true,
        }
    }

    /// For messages: "the ESP32-C6", "an Xtensa chip (ESP32, ESP32-S2 or ESP32-S3)".
    pub fn describe(self) -> String {
        match self {
            ImageTarget::Chip(chip) => format!("the {}", chip_name(chip)),
            ImageTarget::Arch(Arch::Xtensa) => {
                "an Xtensa chip (ESP32, ESP32-S2 or ESP32-S3)".to_owned()
            }
            ImageTarget::Arch(Arch::RiscV) => {
                "a RISC-V chip (ESP32-C2, -C3, -C5, -C6, -H2, -P4, ...)".to_owned()
            }
            ImageTarget::Unknown => "any chip".to_owned(),
        }
    }
}

impl FlashImage {
    /// Reads an image file. An ELF is recognised by its header; anything else is a `.bin`,
    /// which must be named `*.bin` or start like an ESP app image (0xE9). `address` applies to
    /// a `.bin` only (default [`DEFAULT_APP_ADDRESS`]).
    pub fn from_file(path: &Path, address: Option<u32>) -> Result<FlashImage, FlashError> {
        let data = std::fs::read(path).map_err(|error| FlashError::ReadImage {
            path: path.to_owned(),
            error,
        })?;
        let is_bin_name = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("bin"));
        FlashImage::from_bytes(&path.display().to_string(), data, is_bin_name, address)
    }

    /// Like [`FlashImage::from_file`] for bytes from elsewhere. `name` is for messages;
    /// `bin` says the caller knows the bytes are raw flash contents.
    pub fn from_bytes(
        name: &str,
        data: Vec<u8>,
        bin: bool,
        address: Option<u32>,
    ) -> Result<FlashImage, FlashError> {
        let not_an_image = |reason: String| FlashError::NotAnImage {
            image: name.to_owned(),
            reason,
        };
        if data.starts_with(ELF_MAGIC) {
            let image = FlashImage::Elf(data);
            image.check(name)?;
            return Ok(image);
        }
        if data.is_empty() {
            return Err(not_an_image("the file is empty".to_owned()));
        }
        if !bin && data[0] != IMAGE_MAGIC {
            return Err(not_an_image(format!(
                "it has neither an ELF header nor the ESP image magic byte 0xE9 (it starts \
                 with 0x{:02x}); to write raw bytes anyway, name the file *.bin",
                data[0]
            )));
        }
        let image = FlashImage::Bin {
            data,
            address: address.unwrap_or(DEFAULT_APP_ADDRESS),
        };
        image.check(name)?;
        Ok(image)
    }

    /// The checks that need no board: a well-formed ESP32 ELF, a sector-aligned address.
    /// [`super::flash`] runs them again, with "the image" as the name.
    pub fn check(&self, name: &str) -> Result<(), FlashError> {
        match self {
            FlashImage::Elf(data) => {
                let target = elf_target(data).map_err(|reason| FlashError::NotAnImage {
                    image: name.to_owned(),
                    reason,
                })?;
                // A trial conversion finds what the header check cannot: a truncated or
                // corrupt ELF. The chip only picks the bootloader, so any of the family does.
                let chip = match target {
                    ImageTarget::Chip(chip) => chip,
                    ImageTarget::Arch(Arch::Xtensa) => Chip::Esp32,
                    _ => Chip::Esp32c3,
                };
                let flash_data = flash_data(chip, FlashSize::_4Mb, chip.default_xtal_frequency());
                IdfBootloaderFormat::new(data, &flash_data, None, None, None, None)
                    .map(|_| ())
                    .map_err(|error| elf_error(name, error))
            }
            FlashImage::Bin { data, address } => {
                if data.is_empty() {
                    return Err(FlashError::NotAnImage {
                        image: name.to_owned(),
                        reason: "the file is empty".to_owned(),
                    });
                }
                if !address.is_multiple_of(SECTOR_SIZE as u32) {
                    return Err(FlashError::Unaligned {
                        image: name.to_owned(),
                        address: *address,
                    });
                }
                Ok(())
            }
            FlashImage::Bundled => Ok(()),
        }
    }

    /// What a bootloader would check of an app image before booting it: the magic byte, the
    /// segment table, the chip id, the checksum, the appended SHA-256. Applies to a `.bin`
    /// written at the app address; other images pass (espflash builds an ELF's app itself).
    pub fn check_app(&self, name: &str, chip: Chip) -> Result<(), FlashError> {
        let FlashImage::Bin { data, address } = self else {
            return Ok(());
        };
        if *address != DEFAULT_APP_ADDRESS {
            return Ok(());
        }
        crate::board::image::inspect_for(data, Some(chip.id()))
            .map(|_| ())
            .map_err(|error| FlashError::BadApp {
                image: name.to_owned(),
                reason: match error {
                    crate::board::image::ImageError::Truncated { index, len } => {
                        format!("segment {index} (length 0x{len:x}) runs past the end of the file")
                    }
                    error => error.to_string(),
                },
            })
    }

    /// The chip the image was built for, as far as it says.
    pub fn target(&self) -> ImageTarget {
        match self {
            FlashImage::Elf(data) => elf_target(data).unwrap_or(ImageTarget::Unknown),
            FlashImage::Bin { data, .. } => bin_target(data),
            // Chosen for the chip once it is known; `segments` says when there is none.
            FlashImage::Bundled => ImageTarget::Unknown,
        }
    }

    /// The segments to write for `chip` with `flash_size` of flash, in order.
    pub(crate) fn segments<'a>(
        &'a self,
        chip: Chip,
        flash_size: FlashSize,
        xtal: XtalFrequency,
        parts: &'a LoadedParts,
    ) -> Result<Vec<Segment<'a>>, FlashError> {
        let elf = match self {
            FlashImage::Elf(data) => data.as_slice(),
            FlashImage::Bundled => crate::bundled::elf_for(chip)
                .ok_or_else(|| FlashError::NoBundledImage(chip_name(chip)))?,
            FlashImage::Bin { data, address } => {
                // The ROM writes whole words: pad as espflash's `write_bin_to_flash` does.
                let mut data = Cow::Borrowed(data.as_slice());
                let rest = data.len() % 4;
                if rest != 0 {
                    data.to_mut().extend(std::iter::repeat_n(0xFF, 4 - rest));
                }
                let mut segments = parts.segments(chip);
                segments.push(Segment {
                    addr: *address,
                    data,
                });
                return Ok(segments);
            }
        };
        // Bootloader, partition table, app: what `espflash flash` writes for an ELF.
        let format = IdfBootloaderFormat::new(
            elf,
            &flash_data(chip, flash_size, xtal),
            parts.partition_table_path(),
            parts.bootloader_path(),
            None,
            None,
        )
        .map_err(|error| match error {
            espflash::Error::ElfTooBig(app, partition) => {
                FlashError::AppTooLarge { app, partition }
            }
            error => elf_error("the image", error),
        })?;
        Ok(format.flash_segments().collect())
    }
}

/// The app image (what goes at 0x10000) espflash makes of an ELF for `chip`, with 4 MB flash
/// and a 40 MHz crystal in its header: the conversion `flash()` does, for bundling firmware.
pub fn app_image(elf: &[u8], chip: Chip) -> Result<Vec<u8>, FlashError> {
    let flash_data = flash_data(chip, FlashSize::_4Mb, XtalFrequency::_40Mhz);
    let format = IdfBootloaderFormat::new(elf, &flash_data, None, None, None, None)
        .map_err(|error| elf_error("the ELF", error))?;
    Ok(format
        .ota_segments()
        .next()
        .map(|segment| segment.data.into_owned())
        .unwrap_or_default())
}

fn flash_data(chip: Chip, size: FlashSize, xtal: XtalFrequency) -> FlashData {
    FlashData::new(
        FlashSettings::new(None, Some(size), None),
        0,
        None,
        chip,
        xtal,
    )
}

fn elf_error(name: &str, error: espflash::Error) -> FlashError {
    FlashError::NotAnImage {
        image: name.to_owned(),
        reason: espflash_message(&error),
    }
}

/// Checks the ELF header and reads the target: the chip from espflash's metadata section
/// (esp-hal writes it), else the processor family from `e_machine`.
pub fn elf_target(data: &[u8]) -> Result<ImageTarget, String> {
    if !data.starts_with(ELF_MAGIC) {
        return Err("it has no ELF header".to_owned());
    }
    if data.len() < ELF32_HEADER_LEN {
        return Err("the ELF header is cut short".to_owned());
    }
    if data[4] != 1 {
        return Err("it is a 64-bit ELF; ESP32 programs are 32-bit".to_owned());
    }
    if data[5] != 1 {
        return Err("it is a big-endian ELF; ESP32 programs are little-endian".to_owned());
    }
    let arch = match u16::from_le_bytes([data[18], data[19]]) {
        EM_XTENSA => Arch::Xtensa,
        EM_RISCV => Arch::RiscV,
        machine => {
            return Err(format!(
                "it is an ELF for another processor (e_machine {machine}), not for an ESP32 \
                 (Xtensa 94 or RISC-V 243)"
            ));
        }
    };
    let named = Metadata::from_bytes(Some(data))
        .chip_name()
        .and_then(|name| parse_chip(name).ok());
    Ok(match named {
        Some(chip) => ImageTarget::Chip(chip),
        None => ImageTarget::Arch(arch),
    })
}

/// An ESP image header (app or bootloader, or a merged image starting with the bootloader)
/// names its chip; other raw data does not.
pub fn bin_target(data: &[u8]) -> ImageTarget {
    let Some(id) = image_chip_id(data) else {
        return ImageTarget::Unknown;
    };
    CHIPS
        .iter()
        .find(|chip| chip.id() == id)
        .map_or(ImageTarget::Unknown, |&chip| ImageTarget::Chip(chip))
}

/// A chip name as users write it: `esp32c3`, `ESP32-C3`, `esp32_c3`.
pub fn parse_chip(name: &str) -> Result<Chip, String> {
    let wanted: String = name
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    CHIPS
        .iter()
        .copied()
        .find(|chip| chip.to_string() == wanted)
        .ok_or_else(|| {
            format!(
                "unknown chip {name:?}; one of: {}",
                CHIPS.map(|chip| chip.to_string()).join(", ")
            )
        })
}
