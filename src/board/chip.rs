//! The virtual ESP32-C3 itself: what runs depends on what is in its flash and on how it was
//! started. Power on or reset: the ROM loads the bootloader at 0x0, which reads the partition
//! table at 0x8000 and boots the app partition otadata names (or the factory app, or ota_0),
//! as `boot` works out; an espchat image runs the chat firmware, any other app runs without a
//! chat server. Erased flash leaves the ROM in its `invalid header` boot loop, a missing
//! table or app the bootloader in its own. A
//! SYNC request on the serial port puts it into the ROM loader (on a pty there is no DTR/RTS
//! to do that), where flashing tools write the flash; leaving the loader reboots it.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::boot;
use super::console::Console;
use super::firmware::Firmware;
use super::image::{self, ImageError};
use super::port::Port;
use super::rom::{Flash, INITIAL_BAUD, Loader, LoaderEvent, SyncDetector, mac_for_port};
use super::uart::UartLine;
use crate::flash::layout::PARTITION_TABLE_ADDRESS;

const ROM_BANNER: &[&str] = &["ESP-ROM:esp32c3-api1-20210207", "Build:Feb  7 2021"];
/// What the ROM prints before the bootloader's segments and entry.
const ROM_LOAD: &[&str] = &["SPIWP:0xee", "mode:DIO, clock div:1"];
const BOOTLOADER: &[&str] = &[
    "boot: ESP-IDF v5.3 2nd stage bootloader",
    "boot: chip revision: v0.3",
    "boot.esp32c3: SPI Speed      : 40MHz",
    "boot.esp32c3: SPI Mode       : DIO",
    "boot.esp32c3: SPI Flash Size : 4MB",
];
/// How often a chip with nothing to boot retries (and prints its complaint again).
const BOOT_LOOP: Duration = Duration::from_secs(1);

/// Why the chip (re)started, as the ROM prints it.
#[derive(Clone, Copy)]
pub enum Reset {
    PowerOn,
    Software,
}

/// How the chip runs.
pub struct ChipConfig {
    /// TCP port of the chat server (already chosen: the same across reboots).
    pub tcp_port: u16,
    pub flash: Flash,
    /// Where the flash is kept between runs.
    pub flash_file: Option<PathBuf>,
    /// Pace the loader's traffic like a UART at the current baud rate.
    pub throttle: bool,
}

enum Mode {
    /// The chat firmware is running.
    App(Box<Firmware>),
    /// An app without a chat server is running: it ignores the console.
    ForeignApp,
    /// The ROM loader has the port.
    Loader(Box<Loader>),
    /// Nothing to boot: the chip retries (printing why each time) until it is flashed.
    BootLoop,
}

pub struct Chip {
    console: Console,
    /// What clients type.
    console_in: mpsc::Receiver<Bytes>,
    port: Port,
    config: ChipConfig,
    /// The flash, except while the loader holds it.
    flash: Option<Flash>,
    mode: Mode,
    sync: SyncDetector,
    /// The simulated UART line, when pacing.
    uart: UartLine,
    /// The port's close count when the loader took over.
    closes_at_loader: u64,
}

impl Chip {
    pub fn new(
        console: Console,
        console_in: mpsc::Receiver<Bytes>,
        port: Port,
        mut config: ChipConfig,
    ) -> Chip {
        let flash = std::mem::replace(&mut config.flash, Flash::new_erased(0));
        Chip {
            console,
            console_in,
            port,
            config,
            flash: Some(flash),
            mode: Mode::ForeignApp,
            sync: SyncDetector::default(),
            uart: UartLine::new(),
            closes_at_loader: 0,
        }
    }

    /// Power on: the ROM boots what the flash holds. When this returns, an espchat app is
    /// listening already.
    pub async fn power_on(&mut self) {
        self.boot(Reset::PowerOn).await;
    }

    /// Runs (after [`Chip::power_on`]) until `stop` fires or the console fails.
    pub async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let port = self.port.clone();
        loop {
            let boot_loop = matches!(self.mode, Mode::BootLoop);
            tokio::select! {
                _ = &mut stop => break,
                bytes = self.console_in.recv() => match bytes {
                    Some(bytes) => self.input(&bytes).await,
                    None => break,
                },
                // A real DevKit resets when the flashing tool closes the port and DTR/RTS drop;
                // a loader left without FLASH_END (esptool --after no-reset) boots the app then.
                () = port.closed() => {
                    if matches!(self.mode, Mode::Loader(_)) && port.close_count() > self.closes_at_loader {
                        self.leave_loader().await;
                    }
                }
                () = app_step(&mut self.mode) => {}
                () = tokio::time::sleep(BOOT_LOOP), if boot_loop => self.boot(Reset::Software).await,
            }
        }
        self.power_off();
    }

    async fn boot(&mut self, reset: Reset) {
        if let Mode::App(firmware) = std::mem::replace(&mut self.mode, Mode::ForeignApp) {
            firmware.shutdown();
        }
        self.sync.reset();
        let console = self.console.clone();
        console.restart_clock();
        for line in ROM_BANNER {
            console.raw(line);
        }
        console.raw(match reset {
            Reset::PowerOn => "rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)",
            Reset::Software => "rst:0xc (RTC_SW_CPU_RST),boot:0xc (SPI_FAST_FLASH_BOOT)",
        });
        if let Reset::Software = reset {
            console.raw("Saved PC:0x40381a4e");
        }
        let flash = self.flash.as_ref().map(Flash::as_bytes).unwrap_or_default();
        // The ROM loads the 2nd-stage bootloader, or loops complaining about what it found.
        let loader = match boot::bootloader(flash) {
            Ok(loader) => loader,
            Err(error) => {
                console.raw(&error.to_string());
                self.mode = Mode::BootLoop;
                return;
            }
        };
        for line in ROM_LOAD {
            console.raw(line);
        }
        for segment in &loader.segments {
            console.raw(&format!(
                "load:0x{:08x},len:0x{:x}",
                segment.load_addr, segment.len
            ));
        }
        console.raw(&format!("entry 0x{:08x}", loader.entry));
        for line in BOOTLOADER {
            let (tag, text) = line.split_once(": ").unwrap_or(("boot", line));
            console.info(tag, text);
        }
        let Some(table) = boot::partition_table(flash) else {
            let magic = flash
                .get(PARTITION_TABLE_ADDRESS as usize..)
                .and_then(|bytes| bytes.get(..2))
                .map_or(0xFFFF, |bytes| u16::from_le_bytes([bytes[0], bytes[1]]));
            console.error(
                "flash_parts",
                format_args!("partition 0 invalid magic number 0x{magic:x}"),
            );
            console.error("boot", "Failed to verify partition table");
            console.error("boot", "load partition table error!");
            self.mode = Mode::BootLoop;
            return;
        };
        console.info("boot", "Partition Table:");
        console.info(
            "boot",
            "## Label            Usage          Type ST Offset   Length",
        );
        for (index, partition) in table.partitions().iter().enumerate() {
            console.info("boot", boot::table_line(index, partition));
        }
        console.info("boot", "End of partition table");
        let mut booted = None;
        for (partition, _) in boot::app_order(&table, flash) {
            let offset = partition.offset();
            let bytes = flash
                .get(offset as usize..)
                .map(|rest| &rest[..rest.len().min(partition.size() as usize)])
                .unwrap_or_default();
            match image::inspect(bytes) {
                Ok(image) => {
                    booted = Some((offset, image));
                    break;
                }
                Err(ImageError::Magic(_)) => {
                    console.error(
                        "esp_image",
                        format_args!(
                            "image at 0x{offset:x} has invalid magic byte (nothing flashed here?)"
                        ),
                    );
                    console.error("boot", boot::not_bootable(&partition));
                }
                Err(error) => {
                    console.error("esp_image", format_args!("image at 0x{offset:x}: {error}"));
                    console.error("boot", boot::not_bootable(&partition));
                }
            }
        }
        let Some((offset, image)) = booted else {
            console.error("boot", "No bootable app partitions in the partition table");
            self.mode = Mode::BootLoop;
            return;
        };
        for (n, segment) in image.segments.iter().enumerate() {
            console.info(
                "esp_image",
                format_args!(
                    "segment {n}: paddr={:08x} vaddr={:08x} size={:05x} ({:6}) load",
                    offset as usize + segment.offset,
                    segment.load_addr,
                    segment.len,
                    segment.len
                ),
            );
        }
        console.info(
            "boot",
            format_args!("Loaded app from partition at offset 0x{offset:x}"),
        );
        if let Some(desc) = &image.desc {
            let compiled = format!("{} {}", desc.date, desc.time);
            let fields = [
                ("Project name:     ", desc.project.as_str()),
                ("App version:      ", desc.version.as_str()),
                ("Compile time:     ", compiled.trim()),
                ("ESP-IDF:          ", desc.idf_version.as_str()),
            ];
            for (label, value) in fields.into_iter().filter(|(_, value)| !value.is_empty()) {
                console.info("app_init", format_args!("{label}{value}"));
            }
        }
        if image.is_espchat() {
            // The UART starts empty, as a real chip's FIFO does after a reset: what the last
            // client (a flashing tool) still had in flight must not reach the app. Before the
            // app logs anything: what a host sends once it sees the app's lines is kept.
            self.discard_input();
            let firmware = Firmware::start(console, self.config.tcp_port).await;
            self.mode = Mode::App(Box::new(firmware));
        } else {
            let name = image
                .desc
                .map(|desc| desc.project)
                .unwrap_or_else(|| "without an app descriptor".into());
            console.info(
                "virtual board",
                format_args!(
                    "app '{name}' runs here without a chat server: flash the espchat firmware to chat"
                ),
            );
            self.mode = Mode::ForeignApp;
        }
    }

    /// Drops what clients typed and the app has not read yet.
    fn discard_input(&mut self) {
        let mut dropped = 0;
        while let Ok(bytes) = self.console_in.try_recv() {
            dropped += bytes.len();
        }
        dropped += self.port.discard_input();
        if dropped > 0 {
            tracing::debug!("reset: {dropped} bytes of input dropped");
        }
    }

    async fn input(&mut self, bytes: &[u8]) {
        // A tool that let go before these bytes were sent ends its loader session first: the
        // bytes are the next client's.
        self.port.take_events();
        if matches!(self.mode, Mode::Loader(_)) && self.port.close_count() > self.closes_at_loader {
            self.leave_loader().await;
        }
        if matches!(self.mode, Mode::Loader(_)) {
            return self.feed_loader(bytes).await;
        }
        if let Some(end) = self.sync.feed(bytes) {
            return self.enter_loader(&bytes[end..]).await;
        }
        if let Mode::App(firmware) = &mut self.mode
            && firmware.console_input(bytes)
        {
            self.boot(Reset::Software).await;
        }
    }

    /// A SYNC arrived: the chip is in download mode from now on.
    async fn enter_loader(&mut self, rest: &[u8]) {
        if let Mode::App(firmware) = std::mem::replace(&mut self.mode, Mode::ForeignApp) {
            firmware.shutdown();
        }
        let flash = self
            .flash
            .take()
            .unwrap_or_else(|| Flash::new_erased(super::rom::DEFAULT_FLASH_SIZE));
        // Closes queued before this SYNC were the previous client's.
        self.closes_at_loader = self.port.close_events();
        let mut loader = Loader::with_mac(flash, mac_for_port(self.config.tcp_port));
        let mut events = Vec::new();
        loader.answer_sync(&mut |event| events.push(event));
        self.mode = Mode::Loader(Box::new(loader));
        self.loader_events(events).await;
        if !rest.is_empty() {
            self.feed_loader(rest).await;
        }
    }

    async fn feed_loader(&mut self, bytes: &[u8]) {
        self.pace(bytes.len()).await;
        let Mode::Loader(loader) = &mut self.mode else {
            return;
        };
        let mut events = Vec::new();
        loader.feed(bytes, &mut |event| events.push(event));
        self.loader_events(events).await;
    }

    async fn loader_events(&mut self, events: Vec<LoaderEvent>) {
        for event in events {
            match event {
                LoaderEvent::Reply(bytes) => {
                    self.pace(bytes.len()).await;
                    self.console.write(bytes).await;
                }
                // The pty shows the rate the client set; this is only the fallback.
                LoaderEvent::ChangeBaud(baud) => tracing::debug!("loader: baud {baud}"),
                LoaderEvent::StubStarted => tracing::debug!("loader: stub running"),
                LoaderEvent::Flashed { addr, len } => {
                    tracing::debug!("loader: flashed {len} bytes at 0x{addr:x}");
                    if let Mode::Loader(loader) = &self.mode {
                        self.save(loader.flash());
                    }
                }
                LoaderEvent::Reboot => self.leave_loader().await,
            }
        }
    }

    /// The loader is done (FLASH_END, or the port was closed): boot what is in the flash now.
    async fn leave_loader(&mut self) {
        if let Mode::Loader(loader) = std::mem::replace(&mut self.mode, Mode::ForeignApp) {
            let flash = loader.into_flash();
            self.save(&flash);
            self.flash = Some(flash);
        }
        self.boot(Reset::Software).await;
    }

    /// Waits as long as a UART at the current baud rate takes for `bytes` (8N1: 10 bits each).
    async fn pace(&mut self, bytes: usize) {
        if !self.config.throttle {
            return;
        }
        let baud = self
            .port
            .baud()
            .filter(|&baud| baud > 0)
            .unwrap_or_else(|| match &self.mode {
                Mode::Loader(loader) => loader.baud(),
                _ => INITIAL_BAUD,
            });
        self.uart.carry(bytes, baud).await;
    }

    fn save(&self, flash: &Flash) {
        let Some(path) = &self.config.flash_file else {
            return;
        };
        if let Err(error) = super::write_atomically(path, flash.as_bytes()) {
            tracing::warn!("cannot save the flash to {}: {error}", path.display());
            self.console.raw(&format!(
                "[virtual board: cannot save the flash to {}: {error}]",
                path.display()
            ));
        }
    }

    fn power_off(&mut self) {
        match std::mem::replace(&mut self.mode, Mode::ForeignApp) {
            Mode::App(firmware) => firmware.shutdown(),
            Mode::Loader(loader) => self.flash = Some(loader.into_flash()),
            Mode::ForeignApp | Mode::BootLoop => {}
        }
        if let Some(flash) = &self.flash {
            self.save(flash);
        }
    }
}

/// The running app's next network event, or never.
async fn app_step(mode: &mut Mode) {
    match mode {
        Mode::App(firmware) => firmware.step().await,
        _ => std::future::pending().await,
    }
}
