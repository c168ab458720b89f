//! What ESP chips expect of their flash and of the images in it. The flasher checks images
//! against these facts and the virtual board emulates them, so each is written down once, here.

/// Where the app lives in the default partition table, and where a `.bin` goes when no address
/// is given.
pub const DEFAULT_APP_ADDRESS: u32 = 0x10000;

/// Flash is erased in 4 KiB sectors; the ROM loader erases from the start address.
pub const SECTOR_SIZE: usize = 0x1000;

/// The first byte of every ESP image (`esp_image_header_t.magic`): app, bootloader, or a merged
/// image that starts with the bootloader.
pub const IMAGE_MAGIC: u8 = 0xE9;

/// `esp_image_header_t` (8 bytes) + the extended header (16 bytes).
pub const IMAGE_HEADER_LEN: usize = 24;

/// Where the image header keeps `chip_id`, a little-endian u16.
pub const IMAGE_CHIP_ID_OFFSET: usize = 12;

/// The ESP32-C3's chip id (`esp_chip_id_t`): in an image header, and in the ROM loader's
/// GET_SECURITY_INFO answer.
pub const ESP32C3_CHIP_ID: u16 = 5;

/// The chip an ESP image at the start of `data` was built for, or `None` if `data` does not
/// start with an image header.
pub fn image_chip_id(data: &[u8]) -> Option<u16> {
    if data.len() < IMAGE_HEADER_LEN || data[0] != IMAGE_MAGIC {
        return None;
    }
    Some(u16::from_le_bytes([
        data[IMAGE_CHIP_ID_OFFSET],
        data[IMAGE_CHIP_ID_OFFSET + 1],
    ]))
}

#[cfg(test)]
mod tests {
    use espflash::target::Chip;

    use super::*;

    #[test]
    fn the_chip_id_is_the_one_espflash_knows() {
        assert_eq!(Chip::Esp32c3.id(), ESP32C3_CHIP_ID);
    }

    #[test]
    fn the_chip_id_comes_from_a_whole_header_only() {
        let mut header = [0u8; IMAGE_HEADER_LEN];
        header[0] = IMAGE_MAGIC;
        header[IMAGE_CHIP_ID_OFFSET..][..2].copy_from_slice(&0x0102u16.to_le_bytes());
        assert_eq!(image_chip_id(&header), Some(0x0102));
        assert_eq!(image_chip_id(&header[..IMAGE_HEADER_LEN - 1]), None);
        header[0] = 0x7F;
        assert_eq!(image_chip_id(&header), None);
    }
}
