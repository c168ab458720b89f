//! The LED: the DevKit's RGB LED (WS2812 on GPIO8, driven by the RMT) or a plain LED on any
//! free GPIO, chosen with `led <pin> [active-low]`.

use embassy_futures::select::{Either3, select3};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Timer};
use esp_hal::Async;
use esp_hal::gpio::{AnyPin, Level, Output, OutputConfig};
use esp_hal::peripherals::{GPIO8, RMT};
use esp_hal::rmt::Rmt;
use esp_hal::time::Rate;
use esp_hal_smartled::{RmtSmartLeds, buffer_size, color_order};
use espchat_core::BLINK_SECS;
use espchat_core::LedPin;
use espchat_records::LedSetting;
use smart_leds_trait::{RGB8, SmartLedsWriteAsync};

use crate::board::CHIP;

static STATE: Signal<CriticalSectionRawMutex, bool> = Signal::new();
static PIN: Signal<CriticalSectionRawMutex, LedPin> = Signal::new();
static BLINK: Signal<CriticalSectionRawMutex, ()> = Signal::new();

/// Half a blink period: 4 flashes a second, easy to spot across a table.
const BLINK_HALF: Duration = Duration::from_millis(125);

/// Dim white: bright enough to see across a lab bench, not enough to dazzle.
const RGB_ON: RGB8 = RGB8 {
    r: 24,
    g: 24,
    b: 24,
};
const RGB_OFF: RGB8 = RGB8 { r: 0, g: 0, b: 0 };

/// Switches the LED (the server's `Output::Led`).
pub fn show(on: bool) {
    STATE.signal(on);
}

/// Flashes the LED for `BLINK_SECS`, then shows the switched state again.
pub fn blink() {
    BLINK.signal(());
}

/// Moves the LED to a plain GPIO (already checked with `Chip::check_led_pin`).
pub fn use_pin(pin: LedPin) {
    PIN.signal(pin);
}

type RgbLed = RmtSmartLeds<'static, { buffer_size::<RGB8>(1) }, Async, RGB8, color_order::Grb>;

pub enum Driver {
    Rgb(RgbLed),
    Gpio {
        output: Output<'static>,
        active_low: bool,
    },
    None,
}

impl Driver {
    pub fn new(setting: LedSetting, rmt: RMT<'static>, gpio8: GPIO8<'static>) -> Self {
        match setting {
            LedSetting::Rgb => {
                let rate = Rate::from_mhz(80);
                let led = Rmt::new(rmt, rate).map_err(|_| ()).and_then(|rmt| {
                    RgbLed::new(
                        esp_hal_smartled::WS2812_TIMING,
                        rmt.into_async().channel0,
                        gpio8,
                        rate,
                    )
                    .map_err(|_| ())
                });
                match led {
                    Ok(led) => Driver::Rgb(led),
                    Err(()) => {
                        say!("led: the RGB LED driver failed to start");
                        Driver::None
                    }
                }
            }
            LedSetting::Gpio(pin) => Self::gpio(pin),
        }
    }

    fn gpio(pin: LedPin) -> Self {
        if CHIP.check_led_pin(pin.pin).is_err() {
            return Driver::None;
        }
        // SAFETY: the pin passed `check_led_pin`, so it exists and is none of the flash, USB or
        // console pins; the previous driver (the RGB LED's GPIO8 or an older plain pin) was
        // dropped before this call, so no other driver holds it.
        let pin_peripheral = unsafe { AnyPin::steal(pin.pin) };
        let output = Output::new(
            pin_peripheral,
            Level::from(pin.active_low),
            OutputConfig::default(),
        );
        Driver::Gpio {
            output,
            active_low: pin.active_low,
        }
    }

    async fn show(&mut self, on: bool) {
        match self {
            Driver::Rgb(led) => {
                let color = if on { RGB_ON } else { RGB_OFF };
                if led.write([color]).await.is_err() {
                    say!("led: writing the RGB LED failed");
                }
            }
            Driver::Gpio { output, active_low } => output.set_level(Level::from(on != *active_low)),
            Driver::None => {}
        }
    }
}

#[embassy_executor::task]
pub async fn run(mut driver: Driver) {
    let mut on = false;
    driver.show(on).await;
    loop {
        match select3(STATE.wait(), PIN.wait(), BLINK.wait()).await {
            Either3::First(state) => on = state,
            Either3::Third(()) => {
                // The chat may switch the LED meanwhile: that state shows once blinking ends.
                let end = Instant::now() + Duration::from_secs(u64::from(BLINK_SECS));
                let mut lit = !on;
                while Instant::now() < end {
                    driver.show(lit).await;
                    lit = !lit;
                    Timer::after(BLINK_HALF).await;
                    if let Some(state) = STATE.try_take() {
                        on = state;
                    }
                }
            }
            Either3::Second(pin) => {
                // An addressable LED keeps its colour when nothing drives it any more, and a
                // plain LED keeps its level: the old one goes dark before it is let go.
                driver.show(false).await;
                // Release the old pin (and the RMT) before taking the new one.
                drop(core::mem::replace(&mut driver, Driver::None));
                driver = Driver::gpio(pin);
            }
        }
        driver.show(on).await;
    }
}
