//! The espchat firmware images built into this binary, so that `espchat flash`, `demo` and the
//! virtual board need no embedded toolchain. `scripts/bundle-firmware` regenerates them from
//! `firmware/`; CI fails when the firmware's sources changed since.

use espflash::target::Chip;

/// The app image (for 0x10000) of the ESP32-C3 firmware.
pub const ESP32C3: &[u8] = include_bytes!("../assets/firmware/espchat-esp32c3.bin");
/// The app image (for 0x10000) of the ESP32-C6 firmware.
pub const ESP32C6: &[u8] = include_bytes!("../assets/firmware/espchat-esp32c6.bin");

/// The ESP32-C3 firmware's symbols: its ELF without code, with symbols and line tables
/// (inlined frames too), zlib-compressed, for decoding its backtraces.
pub const ESP32C3_SYMBOLS: &[u8] =
    include_bytes!("../assets/firmware/espchat-esp32c3.symbols.zlib");
/// The ESP32-C6 firmware's symbols.
pub const ESP32C6_SYMBOLS: &[u8] =
    include_bytes!("../assets/firmware/espchat-esp32c6.symbols.zlib");

/// The symbols of the bundled firmware expand to about this; more means damage.
const SYMBOLS_LIMIT: usize = 32 << 20;

/// Where the app image goes in the default partition table.
pub const APP_ADDRESS: u32 = crate::flash::DEFAULT_APP_ADDRESS;

/// The bundled app image for `chip`, if espchat bundles one.
pub fn app_for(chip: Chip) -> Option<&'static [u8]> {
    match chip {
        Chip::Esp32c3 => Some(ESP32C3),
        Chip::Esp32c6 => Some(ESP32C6),
        _ => None,
    }
}

/// The bundled firmware's symbols (an ELF) for `chip`, if espchat bundles a firmware for it.
pub fn symbols_for(chip: Chip) -> Option<Result<Vec<u8>, String>> {
    let packed = match chip {
        Chip::Esp32c3 => ESP32C3_SYMBOLS,
        Chip::Esp32c6 => ESP32C6_SYMBOLS,
        _ => return None,
    };
    Some(
        miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(packed, SYMBOLS_LIMIT)
            .map_err(|error| format!("{:?}", error.status)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::image;

    #[test]
    fn the_c3_image_is_an_espchat_app_the_bootloader_accepts() {
        let app = image::inspect(ESP32C3).expect("a valid ESP32-C3 app image");
        assert!(app.is_espchat(), "{:?}", app.desc);
        assert_eq!(app.len, ESP32C3.len());
    }

    #[test]
    fn the_c6_image_is_an_app_image_for_the_c6() {
        assert_eq!(ESP32C6[0], 0xE9, "image magic");
        assert_eq!(
            u16::from_le_bytes([ESP32C6[12], ESP32C6[13]]),
            13,
            "ESP32-C6 chip id"
        );
    }
}
