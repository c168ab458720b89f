//! `espchat board` (the virtual board) and `espchat ports` (with `--probe`).

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context as _;
use std::path::PathBuf;

use espchat::board::{Board, BoardConfig, SerialKind};
use espchat::flash::{self, ChipInfo, FlashError, FlashOptions, detect_chip};
use espchat::serial::port::{self, PortError, PortInfo};
use espchat::signals::Ending;

use super::{block_on, print};
use crate::cli::BoardArgs;

pub fn run_board(args: BoardArgs) -> anyhow::Result<()> {
    block_on(async {
        let mut ending = Ending::catch().context("cannot catch Ctrl-C")?;
        let mut board = Board::start(BoardConfig {
            tcp_port: args.tcp_port,
            serial: args
                .console_tcp
                .map_or_else(SerialKind::default, SerialKind::Tcp),
            link: args.link,
            blank: args.blank,
            flash_file: args.flash_file,
            throttle: !args.no_throttle,
        })
        .await?;
        let serial = board.serial_path().display().to_string();
        let port = board.tcp_port();
        // Scripts read these lines; a closed stdout must not stop the board.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "serial: {serial}");
        let _ = writeln!(stdout, "tcp: 127.0.0.1:{port}");
        let _ = stdout.flush();
        drop(stdout);
        let console = match serial.strip_prefix("socket://") {
            Some(address) => format!(
                "espchat monitor -p {serial} (or: nc {})",
                address.replace(':', " ")
            ),
            None => format!("picocom {serial}"),
        };
        eprintln!(
            "virtual ESP32-C3 running. Console: {console}   Chat: nc 127.0.0.1 {port}   Stop: Ctrl-C"
        );
        tokio::select! {
            _ = ending.recv() => {}
            _ = board.wait() => anyhow::bail!("the virtual board's serial console failed"),
        }
        board.stop().await;
        Ok(())
    })
}

pub fn list_ports() -> anyhow::Result<()> {
    let ports = port::list_ports()?;
    if ports.is_empty() {
        return print(format_args!(
            "No serial ports found. Plug in the board (with a data USB cable), or run `espchat board` for a virtual one.\n"
        ));
    }
    let mut table = format!(
        "{:<20} {:<9} {:<24} {:<28} {:<16} ESP?\n",
        "PORT", "VID:PID", "MANUFACTURER", "PRODUCT", "SERIAL"
    );
    for PortInfo { path, usb } in &ports {
        let esp = usb.as_ref().and_then(|usb| usb.esp_bridge());
        match usb {
            Some(usb) => writeln!(
                table,
                "{:<20} {:04x}:{:04x} {:<24} {:<28} {:<16} {}",
                path.display(),
                usb.vid,
                usb.pid,
                usb.manufacturer.as_deref().unwrap_or("-"),
                usb.product.as_deref().unwrap_or("-"),
                usb.serial_number.as_deref().unwrap_or("-"),
                esp.map(|name| format!("yes ({name})"))
                    .unwrap_or_else(|| "-".into()),
            ),
            None => writeln!(
                table,
                "{:<20} {:<9} {:<24} {:<28} {:<16} -",
                path.display(),
                "-",
                "-",
                "-",
                "-"
            ),
        }?;
    }
    print(format_args!("{table}"))
}

/// `ports --probe`: every port at once, each in its own thread (a silent port takes espflash
/// some seconds of retries), one row per port in the order given.
pub fn probe_ports(ports: Vec<PathBuf>) -> anyhow::Result<()> {
    let ports = if ports.is_empty() {
        let esp = super::esp_ports()?;
        if esp.is_empty() {
            return print(format_args!(
                "No ESP-looking serial port found (`espchat ports` lists them all; probe one \
                 with --probe -p PORT).\n"
            ));
        }
        esp
    } else {
        ports
    };
    let results: Vec<(PathBuf, Result<ChipInfo, String>)> = std::thread::scope(|scope| {
        let probes: Vec<_> = ports
            .iter()
            .map(|path| {
                scope.spawn(|| {
                    detect_chip(&FlashOptions::new(path.clone()))
                        .map_err(|error| probe_status(&error))
                })
            })
            .collect();
        ports
            .iter()
            .cloned()
            .zip(probes.into_iter().map(|probe| {
                probe.join().unwrap_or_else(|_| {
                    Err("the probe failed (a bug: please report it)".to_owned())
                })
            }))
            .collect()
    });
    print(format_args!("{}", probe_table(&results)))
}

/// The table `ports --probe` prints.
fn probe_table(results: &[(PathBuf, Result<ChipInfo, String>)]) -> String {
    let mut table = format!(
        "{:<20} {:<10} {:<9} {:<6} {:<18} STATUS\n",
        "PORT", "CHIP", "REVISION", "FLASH", "MAC"
    );
    for (path, result) in results {
        let _ = match result {
            Ok(info) => writeln!(
                table,
                "{:<20} {:<10} {:<9} {:<6} {:<18} ok",
                path.display(),
                flash::chip_name(info.chip),
                info.revision
                    .map_or("-".to_owned(), |(major, minor)| format!("v{major}.{minor}")),
                flash::format_size(info.flash_size),
                info.mac.as_deref().unwrap_or("-"),
            ),
            Err(error) => writeln!(
                table,
                "{:<20} {:<10} {:<9} {:<6} {:<18} {}",
                path.display(),
                "-",
                "-",
                "-",
                "-",
                error
            ),
        };
    }
    table
}

/// A failed probe in a few words; the port is in the row already.
fn probe_status(error: &FlashError) -> String {
    match error {
        FlashError::Port(PortError::Busy { holder, .. }) => match holder {
            Some(holder) => format!("busy (used by {holder})"),
            None => "busy".to_owned(),
        },
        FlashError::Port(PortError::NotFound(_)) => "not found".to_owned(),
        error => format!("{error:#}"),
    }
}
