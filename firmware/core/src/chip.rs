//! The chips espchat runs on, and which GPIOs a plain LED may use on each (`led <pin>`).
//!
//! The console parser reads any pin number; the board, which knows its chip, checks it here
//! before driving the pin. The firmware and the virtual board (an ESP32-C3) share these rules.

use core::fmt;

/// The chips the firmware is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chip {
    Esp32c3,
    Esp32c6,
}

/// Why a pin cannot drive a plain LED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinError {
    /// The chip has no such GPIO.
    NoSuchPin { chip: Chip },
    /// The pin is wired to the SPI flash the firmware runs from.
    Flash,
    /// The pin is the USB-Serial-JTAG port (the console and flashing).
    Usb,
    /// The pin is UART0, the other console.
    Console,
}

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinError::NoSuchPin { chip } => {
                write!(f, "the {chip} has GPIO 0 to {}", chip.last_gpio())
            }
            PinError::Flash => f.write_str("that pin belongs to the SPI flash"),
            PinError::Usb => f.write_str("that pin is the USB port (console and flashing)"),
            PinError::Console => f.write_str("that pin is the UART0 console"),
        }
    }
}

impl core::error::Error for PinError {}

impl fmt::Display for Chip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Chip {
    /// The GPIO of the DevKit's RGB LED.
    pub const RGB_LED_PIN: u8 = 8;

    /// The chip's name as Espressif writes it.
    pub fn name(self) -> &'static str {
        match self {
            Chip::Esp32c3 => "ESP32-C3",
            Chip::Esp32c6 => "ESP32-C6",
        }
    }

    /// The highest GPIO number.
    pub fn last_gpio(self) -> u8 {
        match self {
            Chip::Esp32c3 => 21,
            Chip::Esp32c6 => 30,
        }
    }

    /// Whether `pin` may drive a plain LED: taking any of the refused pins would cut the board
    /// off from its flash or its consoles.
    pub fn check_led_pin(self, pin: u8) -> Result<(), PinError> {
        if pin > self.last_gpio() {
            return Err(PinError::NoSuchPin { chip: self });
        }
        match (self, pin) {
            // GPIO11 is VDD_SPI unless an eFuse says otherwise; 12-17 are the flash bus.
            (Chip::Esp32c3, 11..=17) | (Chip::Esp32c6, 24..=30) => Err(PinError::Flash),
            (Chip::Esp32c3, 18 | 19) | (Chip::Esp32c6, 12 | 13) => Err(PinError::Usb),
            (Chip::Esp32c3, 20 | 21) | (Chip::Esp32c6, 16 | 17) => Err(PinError::Console),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_led_pins_are_allowed() {
        for chip in [Chip::Esp32c3, Chip::Esp32c6] {
            for pin in [0, 2, 3, 4, 5, Chip::RGB_LED_PIN, 9, 10] {
                assert_eq!(chip.check_led_pin(pin), Ok(()), "{chip:?} GPIO{pin}");
            }
        }
        assert_eq!(Chip::Esp32c6.check_led_pin(15), Ok(()));
        assert_eq!(Chip::Esp32c6.check_led_pin(23), Ok(()));
    }

    #[test]
    fn pins_past_the_last_gpio_are_refused() {
        let c3 = Chip::Esp32c3;
        let c6 = Chip::Esp32c6;
        assert_eq!(c3.check_led_pin(22), Err(PinError::NoSuchPin { chip: c3 }));
        assert_eq!(c3.check_led_pin(99), Err(PinError::NoSuchPin { chip: c3 }));
        assert_eq!(c3.check_led_pin(255), Err(PinError::NoSuchPin { chip: c3 }));
        assert_eq!(c6.check_led_pin(31), Err(PinError::NoSuchPin { chip: c6 }));
    }

    #[test]
    fn flash_usb_and_console_pins_are_refused() {
        let c3 = Chip::Esp32c3;
        assert_eq!(c3.check_led_pin(11), Err(PinError::Flash));
        assert_eq!(c3.check_led_pin(17), Err(PinError::Flash));
        assert_eq!(c3.check_led_pin(18), Err(PinError::Usb));
        assert_eq!(c3.check_led_pin(20), Err(PinError::Console));
        let c6 = Chip::Esp32c6;
        assert_eq!(c6.check_led_pin(24), Err(PinError::Flash));
        assert_eq!(c6.check_led_pin(30), Err(PinError::Flash));
        assert_eq!(c6.check_led_pin(12), Err(PinError::Usb));
        assert_eq!(c6.check_led_pin(17), Err(PinError::Console));
    }

    #[test]
    fn a_pin_the_chip_lacks_is_refused_with_the_chip_and_its_range() {
        let shown = |chip: Chip| std::format!("{}", chip.check_led_pin(99).unwrap_err());
        assert_eq!(shown(Chip::Esp32c3), "the ESP32-C3 has GPIO 0 to 21");
        assert_eq!(shown(Chip::Esp32c6), "the ESP32-C6 has GPIO 0 to 30");
    }
}
