//! What differs between the chips: the console pins and the name.

use espchat_records::Chip;

#[cfg(all(feature = "esp32c3", feature = "esp32c6"))]
compile_error!(
    "choose one chip: --features esp32c3 (the default) or --no-default-features --features esp32c6"
);
#[cfg(not(any(feature = "esp32c3", feature = "esp32c6")))]
compile_error!("choose a chip: --features esp32c3 or --features esp32c6");

#[cfg(feature = "esp32c3")]
pub const CHIP: Chip = Chip::Esp32c3;
#[cfg(feature = "esp32c3")]
pub const CHIP_NAME: &str = "ESP32-C3";

#[cfg(feature = "esp32c6")]
pub const CHIP: Chip = Chip::Esp32c6;
#[cfg(feature = "esp32c6")]
pub const CHIP_NAME: &str = "ESP32-C6";

/// UART0's RX pin, the one the DevKit's USB-UART bridge drives.
#[cfg(feature = "esp32c3")]
macro_rules! uart0_rx {
    ($peripherals:ident) => {
        $peripherals.GPIO20
    };
}
#[cfg(feature = "esp32c6")]
macro_rules! uart0_rx {
    ($peripherals:ident) => {
        $peripherals.GPIO17
    };
}
pub(crate) use uart0_rx;
