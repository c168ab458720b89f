//! ESP app images as the 2nd-stage bootloader checks them: the header (magic 0xE9, chip id),
//! the segments, the XOR checksum, the appended SHA-256, and the app descriptor
//! (`esp_app_desc_t`, magic 0xABCD5432) that names the project and its version.

use sha2::{Digest, Sha256};

pub use crate::flash::format::ESP32C3_CHIP_ID;
use crate::flash::format::{IMAGE_CHIP_ID_OFFSET, IMAGE_HEADER_LEN, IMAGE_MAGIC, image_chip_id};

/// Where the app lives in the default partition table.
pub const APP_OFFSET: u32 = crate::flash::DEFAULT_APP_ADDRESS;
/// The project name espchat's firmware puts in its app descriptor.
pub const ESPCHAT_PROJECT: &str = "espchat-firmware";

const SEGMENT_HEADER_LEN: usize = 8;
const MAX_SEGMENTS: usize = 16;
const CHECKSUM_SEED: u8 = 0xEF;
const APP_DESC_MAGIC: u32 = 0xABCD_5432;

/// What an app image says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppImage {
    pub entry: u32,
    pub segments: Vec<Segment>,
    /// Bytes from the header to the checksum (and the hash, when appended).
    pub len: usize,
    pub hash_appended: bool,
    pub desc: Option<AppDesc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub load_addr: u32,
    pub len: u32,
    /// Where the segment's data starts, from the start of the image.
    pub offset: usize,
}

/// `esp_app_desc_t`, the fields a bootloader prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppDesc {
    pub project: String,
    pub version: String,
    pub idf_version: String,
    pub date: String,
    pub time: String,
}

impl AppImage {
    pub fn is_espchat(&self) -> bool {
        self.desc
            .as_ref()
            .is_some_and(|desc| desc.project == ESPCHAT_PROJECT)
    }
}

/// Why an image does not boot, in the words of the ROM or the bootloader.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The ROM prints `invalid header: 0x…` with the first word it read.
    #[error("invalid header: 0x{0:08x}")]
    Magic(u32),
    #[error("mismatch chip ID, expected {expected}, found {found}")]
    Chip { expected: u16, found: u16 },
    #[error("image has {0} segments (at most 16)")]
    SegmentCount(u8),
    #[error("segment {index} (length 0x{len:x}) runs past the end of the flash")]
    Truncated { index: usize, len: u32 },
    #[error("checksum failed: calculated 0x{calculated:02x}, read 0x{stored:02x}")]
    Checksum { calculated: u8, stored: u8 },
    #[error("image hash failed: the appended SHA-256 does not match")]
    Hash,
}

/// Checks the image at the start of `bytes` (the flash from the app's offset on) for an ESP32-C3.
pub fn inspect(bytes: &[u8]) -> Result<AppImage, ImageError> {
    inspect_for(bytes, Some(ESP32C3_CHIP_ID))
}

/// Checks the image at the start of `bytes` as a bootloader would, for the chip of `chip_id`
/// or, with `None`, for whichever chip its header names.
pub fn inspect_for(bytes: &[u8], chip_id: Option<u16>) -> Result<AppImage, ImageError> {
    let word = |at: usize| {
        bytes.get(at..at + 4).map_or(0xFFFF_FFFF, |b| {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let Some(chip) = image_chip_id(bytes) else {
        return Err(ImageError::Magic(word(0)));
    };
    let count = bytes[1];
    if usize::from(count) > MAX_SEGMENTS || count == 0 {
        return Err(ImageError::SegmentCount(count));
    }
    if let Some(expected) = chip_id
        && chip != expected
    {
        return Err(ImageError::Chip {
            expected,
            found: chip,
        });
    }
    let hash_appended = bytes[23] == 1;
    let mut segments = Vec::with_capacity(usize::from(count));
    let mut at = IMAGE_HEADER_LEN;
    let mut checksum = CHECKSUM_SEED;
    for index in 0..usize::from(count) {
        let load_addr = word(at);
        let len = word(at + 4);
        let start = at + SEGMENT_HEADER_LEN;
        let data = usize::try_from(len)
            .ok()
            .and_then(|len| bytes.get(start..start.checked_add(len)?))
            .ok_or(ImageError::Truncated { index, len })?;
        checksum = data.iter().fold(checksum, |sum, byte| sum ^ byte);
        segments.push(Segment {
            load_addr,
            len,
            offset: start,
        });
        at = start + data.len();
    }
    // The checksum byte ends a 16-byte block.
    let checksum_at = at + (15 - at % 16);
    let stored = *bytes.get(checksum_at).ok_or(ImageError::Truncated {
        index: segments.len(),
        len: 0,
    })?;
    if stored != checksum {
        return Err(ImageError::Checksum {
            calculated: checksum,
            stored,
        });
    }
    let mut len = checksum_at + 1;
    if hash_appended {
        let hash = bytes.get(len..len + 32).ok_or(ImageError::Hash)?;
        if Sha256::digest(&bytes[..len]).as_slice() != hash {
            return Err(ImageError::Hash);
        }
        len += 32;
    }
    let desc = segments.iter().find_map(|segment| {
        app_desc(&bytes[segment.offset..segment.offset + segment.len as usize])
    });
    Ok(AppImage {
        entry: word(4),
        segments,
        len,
        hash_appended,
        desc,
    })
}

/// The app descriptor at the start of a segment's data, if it is there.
fn app_desc(data: &[u8]) -> Option<AppDesc> {
    if data.len() < 176
        || u32::from_le_bytes([data[0], data[1], data[2], data[3]]) != APP_DESC_MAGIC
    {
        return None;
    }
    let text = |from: usize, len: usize| {
        let field = &data[from..from + len];
        let end = field.iter().position(|&b| b == 0).unwrap_or(len);
        crate::serial::decode::sanitize(&field[..end])
    };
    Some(AppDesc {
        version: text(16, 32),
        project: text(48, 32),
        time: text(80, 16),
        date: text(96, 16),
        idf_version: text(112, 32),
    })
}

/// Builds a valid ESP32-C3 app image with an app descriptor: for tests, and for a board whose
/// flash should hold an app without a firmware build at hand.
pub fn build(project: &str, version: &str, payload: &[u8]) -> Vec<u8> {
    let mut desc = vec![0u8; 256];
    desc[..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
    put(&mut desc[16..48], version);
    put(&mut desc[48..80], project);
    put(&mut desc[80..96], "00:00:00");
    put(&mut desc[96..112], "Jan  1 2026");
    put(&mut desc[112..144], "esp-hal");
    // DROM (descriptor first, as the linker places it) and IROM segments.
    let segments: [(u32, Vec<u8>); 2] = [(0x3C00_0020, desc), (0x4200_0020, pad4(payload))];
    let mut image = vec![0u8; IMAGE_HEADER_LEN];
    image[0] = IMAGE_MAGIC;
    image[1] = segments.len() as u8;
    image[2] = 2; // DIO
    image[3] = 0x2F; // 4 MB, 80 MHz
    image[4..8].copy_from_slice(&0x4200_0020u32.to_le_bytes());
    image[IMAGE_CHIP_ID_OFFSET..IMAGE_CHIP_ID_OFFSET + 2]
        .copy_from_slice(&ESP32C3_CHIP_ID.to_le_bytes());
    image[23] = 1; // SHA-256 appended
    let mut checksum = CHECKSUM_SEED;
    for (addr, data) in &segments {
        image.extend_from_slice(&addr.to_le_bytes());
        image.extend_from_slice(&(data.len() as u32).to_le_bytes());
        image.extend_from_slice(data);
        checksum = data.iter().fold(checksum, |sum, byte| sum ^ byte);
    }
    let pad = 15 - image.len() % 16;
    image.extend(std::iter::repeat_n(0, pad));
    image.push(checksum);
    let hash = Sha256::digest(&image);
    image.extend_from_slice(&hash);
    image
}

fn put(field: &mut [u8], text: &str) {
    let len = text.len().min(field.len() - 1);
    field[..len].copy_from_slice(&text.as_bytes()[..len]);
}

fn pad4(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    data.resize(data.len().div_ceil(4) * 4, 0);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_image_inspects_cleanly() {
        let image = build(ESPCHAT_PROJECT, "0.1.0", b"chat");
        let app = inspect(&image).unwrap();
        assert!(app.is_espchat());
        assert_eq!(app.len, image.len());
        assert_eq!(app.segments.len(), 2);
        assert!(app.hash_appended);
        let desc = app.desc.unwrap();
        assert_eq!(
            (desc.project.as_str(), desc.version.as_str()),
            (ESPCHAT_PROJECT, "0.1.0")
        );
    }

    #[test]
    fn a_foreign_app_is_valid_but_not_espchat() {
        let app = inspect(&build("hello-world", "1.0", b"hi")).unwrap();
        assert!(!app.is_espchat());
    }

    #[test]
    fn erased_flash_is_an_invalid_header() {
        assert_eq!(inspect(&[0xFF; 64]), Err(ImageError::Magic(0xFFFF_FFFF)));
        assert_eq!(
            ImageError::Magic(0xFFFF_FFFF).to_string(),
            "invalid header: 0xffffffff"
        );
    }

    #[test]
    fn corruption_is_found() {
        let image = build(ESPCHAT_PROJECT, "0.1.0", &[7u8; 1000]);
        let mut chip = image.clone();
        chip[12] = 9;
        assert_eq!(
            inspect(&chip),
            Err(ImageError::Chip {
                expected: 5,
                found: 9
            })
        );
        let mut data = image.clone();
        data[600] ^= 0x55;
        assert!(matches!(inspect(&data), Err(ImageError::Checksum { .. })));
        let mut hash = image.clone();
        let last = hash.len() - 1;
        hash[last] ^= 1;
        assert_eq!(inspect(&hash), Err(ImageError::Hash));
        assert!(matches!(
            inspect(&image[..500]),
            Err(ImageError::Truncated { .. })
        ));
        let mut count = image.clone();
        count[1] = 40;
        assert_eq!(inspect(&count), Err(ImageError::SegmentCount(40)));
    }
}
