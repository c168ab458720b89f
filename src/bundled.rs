//! The espchat firmware built into this binary, so that `espchat flash`, `demo` and the virtual
//! board need no embedded toolchain. `scripts/bundle-firmware` regenerates it from `firmware/`;
//! CI fails when the firmware's sources changed since.

use std::sync::OnceLock;

use espflash::target::Chip;

/// The ESP32-C3 firmware as an ELF that holds what flashing needs (sections and espflash's
/// metadata, no symbols): flashed as any ELF is, bootloader, partition table and app.
pub const ESP32C3_ELF: &[u8] = include_bytes!("../assets/firmware/espchat-esp32c3.elf");
/// The ESP32-C6 firmware, likewise.
pub const ESP32C6_ELF: &[u8] = include_bytes!("../assets/firmware/espchat-esp32c6.elf");

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

/// The bundled firmware's ELF for `chip`, if espchat bundles one.
pub fn elf_for(chip: Chip) -> Option<&'static [u8]> {
    match chip {
        Chip::Esp32c3 => Some(ESP32C3_ELF),
        Chip::Esp32c6 => Some(ESP32C6_ELF),
        _ => None,
    }
}

/// The app image (what goes at 0x10000) that flashing makes of the bundled ELF for `chip`, for a
/// 4 MB flash, made once.
pub fn app_for(chip: Chip) -> Option<&'static [u8]> {
    static C3: OnceLock<Vec<u8>> = OnceLock::new();
    static C6: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match chip {
        Chip::Esp32c3 => &C3,
        Chip::Esp32c6 => &C6,
        _ => return None,
    };
    let elf = elf_for(chip)?;
    Some(cell.get_or_init(|| {
        // The bundle is checked by this crate's tests: a failure is a broken build.
        crate::flash::app_image(elf, chip).expect("the bundled firmware ELF converts")
    }))
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
        let c3 = app_for(Chip::Esp32c3).unwrap();
        let app = image::inspect_for(c3, Some(Chip::Esp32c3.id())).expect("a valid ESP32-C3 app");
        assert!(app.is_espchat(), "{:?}", app.desc);
        assert_eq!(app.len, c3.len());
    }

    #[test]
    fn the_c6_image_is_an_espchat_app_for_the_c6() {
        let c6 = app_for(Chip::Esp32c6).unwrap();
        let app = image::inspect_for(c6, Some(Chip::Esp32c6.id())).expect("a valid ESP32-C6 app");
        assert!(app.is_espchat(), "{:?}", app.desc);
    }

    #[test]
    fn the_bundled_elfs_name_their_chips() {
        use crate::flash::{ImageTarget, elf_target};
        assert_eq!(
            elf_target(ESP32C3_ELF),
            Ok(ImageTarget::Chip(Chip::Esp32c3))
        );
        assert_eq!(
            elf_target(ESP32C6_ELF),
            Ok(ImageTarget::Chip(Chip::Esp32c6))
        );
    }
}
