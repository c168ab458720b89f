//! The serial consoles: USB-Serial-JTAG and UART0 both take the commands of docs/contract.md §4.
//! What is typed is echoed (a Wi-Fi password as `*`) and Backspace/DEL edit the line, so
//! `picocom` and `espflash monitor` users see their typos.

use embassy_sync::{blocking_mutex::raw::NoopRawMutex, mutex::Mutex};
use embassy_time::Timer;
use embedded_io_async::Read;
use esp_hal::Async;
use esp_hal::uart::UartRx;
use esp_hal::usb::usb_serial_jtag::UsbSerialJtagRx;
use espchat_core::BLINK_SECS;
use espchat_core::{BoardCommand, LineEditor};
use espchat_records::LedSetting;

use crate::board::CHIP;
use crate::bridge::Link;
use crate::chat::Chat;
use crate::settings::Settings;
use crate::{led, network};

/// Bytes taken from the console per read.
const READ: usize = 64;

type SharedSettings = Mutex<NoopRawMutex, Settings>;

#[embassy_executor::task]
pub async fn usb(
    input: UsbSerialJtagRx<'static, Async>,
    chat: &'static Chat,
    link: &'static Link,
    settings: &'static SharedSettings,
) {
    console(input, chat, link, settings).await
}

#[embassy_executor::task]
pub async fn uart(
    input: UartRx<'static, Async>,
    chat: &'static Chat,
    link: &'static Link,
    settings: &'static SharedSettings,
) {
    console(input, chat, link, settings).await
}

async fn console(mut input: impl Read, chat: &Chat, link: &Link, settings: &SharedSettings) {
    // The same sanitizer as for chat clients (bounded lines, no control characters), with
    // Backspace and echo.
    let mut editor = LineEditor::new();
    let mut buf = [0u8; READ];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(n) => n,
            // A framing error or a dropped USB host: the next read starts afresh.
            Err(_) => continue,
        };
        // A byte at a time, so each command is carried out before the next line is read
        // (no queue of commands in RAM); the echo is as fine-grained as typing.
        for byte in &buf[..n] {
            let mut command = None;
            editor.feed(
                core::slice::from_ref(byte),
                &mut |text| esp_println::print!("{text}"),
                &mut |line| {
                    // While the board is a client (`connect`), what is typed goes to its server.
                    if !link.console(&line.text) {
                        command = chat.console(&line.text);
                    }
                },
            );
            if let Some(command) = command {
                carry_out(command, link, settings).await;
            }
        }
    }
}

async fn carry_out(command: BoardCommand, link: &Link, settings: &SharedSettings) {
    match command {
        BoardCommand::Wifi(credentials) => {
            // The command's Display shows the SSID only.
            match settings.lock().await.store(&credentials).await {
                Ok(()) => say!("{} stored", BoardCommand::Wifi(credentials.clone())),
                Err(error) => say!("{error}; using the new credentials until reboot"),
            }
            network::use_credentials(credentials);
        }
        BoardCommand::Led(LedSetting::Gpio(pin)) => {
            if let Err(error) = CHIP.check_led_pin(pin.pin) {
                say!("led {}: {error}", pin.pin);
                return;
            }
            match settings.lock().await.store(&LedSetting::Gpio(pin)).await {
                Ok(()) => say!("{} stored", BoardCommand::Led(LedSetting::Gpio(pin))),
                Err(error) => say!("{error}; using the LED pin until reboot"),
            }
            led::use_pin(pin);
        }
        // The RMT and GPIO8 went to the plain LED's driver at boot or are held by it now: the
        // RGB LED comes back with the next start.
        BoardCommand::Led(LedSetting::Rgb) => {
            match settings.lock().await.store(&LedSetting::Rgb).await {
                Ok(()) => say!("led rgb stored; the RGB LED takes over after reboot"),
                Err(error) => say!("{error}; the LED setting is unchanged"),
            }
        }
        BoardCommand::Address => network::say_address(),
        // esp-backtrace prints the panic and its backtrace; `custom_halt` then reboots.
        BoardCommand::Panic => panic!("panic requested on the console"),
        BoardCommand::Reboot => {
            say!("rebooting");
            // Lets the line leave the console before the reset.
            Timer::after_millis(50).await;
            esp_hal::system::software_reset();
        }
        command @ (BoardCommand::Connect(_) | BoardCommand::Disconnect) => link.command(command),
        BoardCommand::Blink => {
            say!("blink: the LED flashes for {BLINK_SECS} s");
            led::blink();
        }
    }
}
