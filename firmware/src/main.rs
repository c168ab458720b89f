//! espchat on the ESP32-C3 and ESP32-C6: the chat server of `espchat-core` on TCP port 5000,
//! over Wi-Fi (station with DHCP, or its own access point), with the LED and a serial console.
//!
//! This crate is board glue only: the chat rules live in `firmware/core`, the flash records and
//! board rules in `firmware/records`, both tested on the host.
#![no_std]
#![no_main]

/// Prints a console line of docs/contract.md §4: `espchat: <text>`.
macro_rules! say {
    ($($arg:tt)*) => {
        esp_println::println!("espchat: {}", format_args!($($arg)*))
    };
}

mod board;
mod bridge;
mod chat;
mod console;
mod led;
mod network;
mod settings;

use embassy_executor::Spawner;
use embassy_sync::{blocking_mutex::raw::NoopRawMutex, mutex::Mutex};
use esp_backtrace as _;
use esp_hal::usb::usb_serial_jtag::UsbSerialJtag;
use esp_hal::{clock::CpuClock, rng::Rng, timer::timg::TimerGroup, uart::UartRx};
use esp_radio::wifi::{ControllerConfig, Interface, WifiController};
use esp_storage::FlashStorage;
use espchat_core::WifiCredentials;
use espchat_records::{LedSetting, access_point_ssid};
use static_cell::StaticCell;

use crate::bridge::Link;
use crate::chat::{Chat, SLOTS};
use crate::settings::Settings;

esp_bootloader_esp_idf::esp_app_desc!();

/// After a panic and its backtrace (esp-backtrace's `custom-halt`): start again, as ESP-IDF
/// apps do, so a crashed chat server comes back by itself.
#[unsafe(no_mangle)]
fn custom_halt() -> ! {
    esp_hal::system::software_reset()
}

const POOL: &str = "task pool sized for every spawn";

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi driver allocates (about 50-60 KiB); the RAM the ROM bootloader used is free now.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 32 * 1024);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);

    say!(
        "espchat firmware {} on {}",
        env!("CARGO_PKG_VERSION"),
        board::CHIP_NAME
    );

    static SETTINGS: StaticCell<Mutex<NoopRawMutex, Settings>> = StaticCell::new();
    let mut settings = Settings::new(FlashStorage::new(peripherals.FLASH));
    let credentials = match settings.load::<WifiCredentials>().await {
        Some(stored) => Some(stored),
        None => network::build_time_credentials(),
    };
    let led_setting = settings.load::<LedSetting>().await.unwrap_or_default();
    let settings = SETTINGS.init(Mutex::new(settings));

    say!("led: {}", led_setting.describe());
    let led = led::Driver::new(led_setting, peripherals.RMT, peripherals.GPIO8);
    spawner.spawn(led::run(led).expect(POOL));

    static CHAT: StaticCell<Chat> = StaticCell::new();
    let chat: &'static Chat = CHAT.init(Chat::new());
    static LINK: StaticCell<Link> = StaticCell::new();
    let link: &'static Link = LINK.init(Link::new());

    let usb = UsbSerialJtag::new(peripherals.USB_DEVICE).into_async();
    let (usb_rx, _usb_tx) = usb.split();
    spawner.spawn(console::usb(usb_rx, chat, link, settings).expect(POOL));
    match UartRx::new(peripherals.UART0, esp_hal::uart::Config::default()) {
        Ok(uart) => {
            let uart = uart.with_rx(board::uart0_rx!(peripherals)).into_async();
            spawner.spawn(console::uart(uart, chat, link, settings).expect(POOL));
        }
        Err(error) => say!("UART0 console unavailable: {error:?}"),
    }

    let station = Interface::station();
    let access_point = Interface::access_point();
    let ap_ssid = access_point_ssid(access_point.mac_address());
    match WifiController::new(peripherals.WIFI, ControllerConfig::default()) {
        Ok(controller) => {
            let rng = Rng::new();
            let seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
            let (stacks, runners) = network::stacks(station, access_point, seed);
            for runner in runners {
                spawner.spawn(network::run(runner).expect(POOL));
            }
            spawner.spawn(network::radio(controller, stacks, ap_ssid, credentials).expect(POOL));
            spawner.spawn(network::dhcp_server(stacks.access_point).expect(POOL));
            spawner.spawn(bridge::run(link, stacks).expect(POOL));
            for slot in 0..SLOTS {
                spawner.spawn(chat::listener(slot, chat, stacks).expect(POOL));
            }
        }
        // Without the radio there is no chat, but the console still answers (status, reboot).
        Err(error) => say!("wifi unavailable: {error:?}"),
    }

    loop {
        embassy_time::Timer::after_secs(3600).await;
    }
}
