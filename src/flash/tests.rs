use clap::ValueEnum as _;

use super::layout::LoadedParts;
use super::*;
use crate::serial::port::PortError;

/// An ELF32 little-endian header and nothing else, for `e_machine`.
fn elf_header(machine: u16) -> Vec<u8> {
    let mut elf = vec![0u8; 52];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 1; // 32-bit
    elf[5] = 1; // little-endian
    elf[6] = 1; // version
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    elf[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
    elf
}

/// An ESP app image header (24 bytes) naming `chip_id`, and some payload.
fn app_header(chip_id: u16) -> Vec<u8> {
    let mut image = vec![0u8; 64];
    image[0] = format::IMAGE_MAGIC;
    image[format::IMAGE_CHIP_ID_OFFSET..][..2].copy_from_slice(&chip_id.to_le_bytes());
    image
}

#[test]
fn reset_names_are_espflash_and_esptool_spellings() {
    let names = |values: &[Before]| {
        values
            .iter()
            .map(|value| value.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(Before::value_variants()),
        ["default-reset", "no-reset", "no-reset-no-sync", "usb-reset"]
    );
    let after: Vec<String> = After::value_variants()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        after,
        [
            "hard-reset",
            "no-reset",
            "no-reset-no-stub",
            "watchdog-reset"
        ]
    );
    assert_eq!(Before::from_str("no-reset", false), Ok(Before::NoReset));
    assert_eq!(
        ResetBeforeOperation::from(Before::NoResetNoSync),
        ResetBeforeOperation::NoResetNoSync
    );
    assert_eq!(
        ResetAfterOperation::from(After::HardReset),
        ResetAfterOperation::HardReset
    );
}

#[test]
fn resets_follow_the_port_unless_asked() {
    let mut options = FlashOptions::new("/dev/ttyUSB0");
    assert_eq!(
        resets_for(&options, true),
        (Before::DefaultReset, After::HardReset)
    );
    assert_eq!(
        resets_for(&options, false),
        (Before::NoReset, After::NoReset)
    );
    options.before = Some(Before::UsbReset);
    options.after = Some(After::WatchdogReset);
    assert_eq!(
        resets_for(&options, false),
        (Before::UsbReset, After::WatchdogReset)
    );
}

#[test]
fn chip_names_both_ways() {
    assert_eq!(chip_name(Chip::Esp32c3), "ESP32-C3");
    assert_eq!(chip_name(Chip::Esp32c61), "ESP32-C61");
    assert_eq!(chip_name(Chip::Esp32), "ESP32");
    for name in ["esp32c3", "ESP32-C3", "esp32_c3"] {
        assert_eq!(parse_chip(name), Ok(Chip::Esp32c3), "{name}");
    }
    assert_eq!(parse_chip("esp32"), Ok(Chip::Esp32));
    let error = parse_chip("esp8266").unwrap_err();
    assert!(error.contains("esp32c6"), "{error}");
}

#[test]
fn sizes_read_like_datasheets() {
    assert_eq!(format_size(4 << 20), "4 MB");
    assert_eq!(format_size(512 << 10), "512 KB");
    assert_eq!(format_size(1000), "1000 bytes");
}

#[test]
fn a_text_file_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello\n").unwrap();
    let error = FlashImage::from_file(&path, None).unwrap_err();
    assert!(matches!(error, FlashError::NotAnImage { .. }));
    assert_eq!(
        error.to_string(),
        format!(
            "{} is not an ESP32 ELF or .bin image: it has neither an ELF header nor the ESP \
             image magic byte 0xE9 (it starts with 0x68); to write raw bytes anyway, name the \
             file *.bin",
            path.display()
        )
    );
    // The same bytes named .bin are raw flash contents, at the app address.
    let bin = dir.path().join("data.bin");
    std::fs::write(&bin, "hello\n").unwrap();
    assert_eq!(
        FlashImage::from_file(&bin, None).unwrap(),
        FlashImage::Bin {
            data: b"hello\n".to_vec(),
            address: DEFAULT_APP_ADDRESS
        }
    );
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, "").unwrap();
    assert!(
        FlashImage::from_file(&empty, None)
            .unwrap_err()
            .to_string()
            .ends_with("is not an ESP32 ELF or .bin image: the file is empty")
    );
}

#[test]
fn a_missing_file_says_so() {
    let error = FlashImage::from_file(Path::new("/nonexistent/app.elf"), None)
        .unwrap_err()
        .to_string();
    // The OS says why in its own words: "No such file or directory", "Path not found."
    let why = std::fs::read("/nonexistent/app.elf").unwrap_err();
    assert_eq!(
        error,
        format!("cannot read /nonexistent/app.elf: {why} (check the path)")
    );
}

#[test]
fn elf_headers_are_checked_before_any_board_is_touched() {
    let x86 = elf_header(62);
    assert_eq!(
        FlashImage::from_bytes("app.elf", x86, false, None)
            .unwrap_err()
            .to_string(),
        "app.elf is not an ESP32 ELF or .bin image: it is an ELF for another processor \
         (e_machine 62), not for an ESP32 (Xtensa 94 or RISC-V 243)"
    );
    let mut elf64 = elf_header(243);
    elf64[4] = 2;
    assert!(
        FlashImage::from_bytes("app.elf", elf64, false, None)
            .unwrap_err()
            .to_string()
            .contains("64-bit")
    );
    // A RISC-V header whose section table lies past the end of the file: corrupt.
    let mut cut = elf_header(243);
    cut[32..36].copy_from_slice(&4096u32.to_le_bytes()); // e_shoff
    cut[46..48].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
    cut[48..50].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    let error = FlashImage::from_bytes("app.elf", cut, false, None).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "app.elf is not an ESP32 ELF or .bin image: Supplied ELF image is not valid"
        ),
        "{error}"
    );
}

#[test]
fn an_image_for_another_chip_is_recognised() {
    assert_eq!(
        elf_target(&elf_header(94)),
        Ok(ImageTarget::Arch(Arch::Xtensa))
    );
    let xtensa = ImageTarget::Arch(Arch::Xtensa);
    assert!(!xtensa.fits(Chip::Esp32c3));
    assert!(xtensa.fits(Chip::Esp32s3));
    assert!(ImageTarget::Arch(Arch::RiscV).fits(Chip::Esp32c6));

    let c6 = bin_target(&app_header(13));
    assert_eq!(c6, ImageTarget::Chip(Chip::Esp32c6));
    assert!(!c6.fits(Chip::Esp32c3));
    assert!(bin_target(&app_header(5)).fits(Chip::Esp32c3));
    // Raw data, or an id no chip has: nothing to check.
    assert_eq!(
        bin_target(b"hello world, this is raw data"),
        ImageTarget::Unknown
    );
    assert_eq!(bin_target(&app_header(999)), ImageTarget::Unknown);
    let image = FlashImage::from_bytes("c6.bin", app_header(13), false, None).unwrap();
    assert_eq!(image.target(), c6);

    let error = FlashError::WrongChip {
        port: "/dev/ttyACM0".into(),
        image: c6.describe(),
        board: chip_name(Chip::Esp32c3),
    };
    assert_eq!(
        error.to_string(),
        "the image was built for the ESP32-C6, but the board on /dev/ttyACM0 is an ESP32-C3: \
         flash an image built for the ESP32-C3 (for espchat's firmware, leave out IMAGE to use \
         the bundled one)"
    );
}

#[test]
fn bins_must_start_on_a_sector() {
    let error = FlashImage::from_bytes("app.bin", vec![1, 2, 3], true, Some(0x10100)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "app.bin: flash address 0x10100 is not a multiple of 0x1000 (a 4 KiB flash sector): \
         give an aligned address such as 0x10000"
    );
}

/// The segments of `image` for a 4 MB board with a 40 MHz crystal.
fn segments_4mb<'a>(
    image: &'a FlashImage,
    chip: Chip,
    parts: &'a LoadedParts,
) -> Vec<espflash::image_format::Segment<'a>> {
    image
        .segments(chip, FlashSize::_4Mb, XtalFrequency::_40Mhz, parts)
        .unwrap()
}

#[test]
fn bins_are_padded_to_words() {
    let image = FlashImage::Bin {
        data: vec![1, 2, 3, 4, 5],
        address: 0x20000,
    };
    let parts = LoadedParts::default();
    let segments = segments_4mb(&image, Chip::Esp32c3, &parts);
    assert_eq!(segments.len(), 1);
    assert_eq!(segments[0].addr, 0x20000);
    assert_eq!(&*segments[0].data, &[1, 2, 3, 4, 5, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn a_bin_with_a_bootloader_and_a_partition_table_writes_all_three() {
    let dir = tempfile::tempdir().unwrap();
    let bootloader = dir.path().join("bootloader.bin");
    let table = dir.path().join("partitions.csv");
    std::fs::write(&bootloader, [0xE9, 3, 2, 0x2f]).unwrap();
    std::fs::write(
        &table,
        "nvs,data,nvs,0x9000,0x6000,\nfactory,app,factory,0x10000,1M,\n",
    )
    .unwrap();
    let parts = Parts {
        bootloader: Some(bootloader),
        partition_table: Some(table),
    }
    .load()
    .unwrap();
    let image = FlashImage::Bin {
        data: vec![0xE9; 8],
        address: DEFAULT_APP_ADDRESS,
    };
    let segments = segments_4mb(&image, Chip::Esp32c3, &parts);
    let addresses: Vec<u32> = segments.iter().map(|segment| segment.addr).collect();
    assert_eq!(addresses, [0x0, 0x8000, 0x10000]);
    let written = layout::parse_table(segments[1].data.to_vec()).unwrap();
    assert_eq!(written.find("factory").unwrap().size(), 0x10_0000);
    // On the ESP32 the bootloader goes to 0x1000.
    let segments = segments_4mb(&image, Chip::Esp32, &parts);
    assert_eq!(segments[0].addr, 0x1000);
}

#[test]
fn a_bootloader_or_table_that_is_none_is_refused_before_any_board_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let error = Parts {
        bootloader: Some(text.clone()),
        partition_table: None,
    }
    .load()
    .unwrap_err()
    .to_string();
    assert!(error.contains("magic byte 0xE9"), "{error}");
    let error = Parts {
        bootloader: None,
        partition_table: Some(text),
    }
    .load()
    .unwrap_err()
    .to_string();
    assert!(error.contains("not a partition table"), "{error}");
    let missing = Parts {
        bootloader: Some(dir.path().join("missing.bin")),
        partition_table: None,
    };
    assert!(
        missing
            .load()
            .unwrap_err()
            .to_string()
            .contains("cannot read")
    );
}

#[test]
fn the_bundled_firmware_is_written_as_espflash_writes_an_elf() {
    let parts = LoadedParts::default();
    for chip in [Chip::Esp32c3, Chip::Esp32c6] {
        let segments = FlashImage::Bundled
            .segments(chip, FlashSize::_2Mb, XtalFrequency::_40Mhz, &parts)
            .unwrap();
        let addresses: Vec<u32> = segments.iter().map(|segment| segment.addr).collect();
        assert_eq!(addresses, [0x0, 0x8000, 0x10000], "{chip}");
        assert_eq!(bin_target(&segments[0].data), ImageTarget::Chip(chip));
        // The table is made for the board's flash, and it holds the settings' nvs partition.
        let table = layout::parse_table(segments[1].data.to_vec()).unwrap();
        assert_eq!(table.find("factory").unwrap().size(), 0x20_0000 - 0x1_0000);
        assert_eq!(table.find("nvs").unwrap().offset(), 0x9000);
    }
}

#[test]
fn error_messages_name_cause_and_fix() {
    let port = PathBuf::from("/dev/ttyUSB0");
    assert_eq!(
        FlashError::NoAnswer {
            port: port.clone(),
            fix: BOOT_BUTTON_FIX
        }
        .to_string(),
        "no answer from the board's ROM loader on /dev/ttyUSB0: hold BOOT, tap RESET, release \
         BOOT to enter download mode, then try again"
    );
    assert_eq!(
        FlashError::ConnectionLost {
            port: port.clone(),
            address: 0x10000,
            done: 40960,
            total: 102400,
            cause: "Timeout while running FlashData command".into(),
        }
        .to_string(),
        "connection to the board on /dev/ttyUSB0 lost while writing at 0x10000: 40960 of \
         102400 bytes written (Timeout while running FlashData command); check the cable, put \
         the board into download mode and flash again"
    );
    assert_eq!(
        FlashError::TooLarge {
            address: 0x10000,
            size: 5 << 20,
            end: 0x10000 + (5 << 20),
            flash: format_size(4 << 20),
        }
        .to_string(),
        "the image (5242880 bytes at 0x10000, ending at 0x510000) does not fit the board's 4 MB \
         flash: use a smaller image or a board with more flash"
    );
    // Port errors are the serial console's, unchanged.
    let busy = PortError::Busy {
        path: port.clone(),
        holder: None,
    };
    let expected = busy.to_string();
    assert_eq!(FlashError::from(busy).to_string(), expected);
    // None of them spans lines: they end up on one stderr or `error!` line.
    for error in [
        FlashError::NoAnswer {
            port: port.clone(),
            fix: NO_RESET_LINES_FIX,
        },
        FlashError::NoAnswer {
            port: port.clone(),
            fix: RESET_NEEDS_LINES_FIX,
        },
        FlashError::NeedChip,
        FlashError::VerifyFailed { address: 0 },
        FlashError::AppTooLarge {
            app: 2,
            partition: 1,
        },
    ] {
        assert!(!error.to_string().contains('\n'), "{error}");
    }
}

#[test]
fn espflash_errors_are_mapped_by_phase() {
    let port = Path::new("/dev/ttyUSB0");
    let mismatch = connect_error(
        port,
        Before::DefaultReset,
        true,
        espflash::Error::ChipMismatch("esp32c6".into(), "esp32c3".into()),
    );
    assert_eq!(
        mismatch.to_string(),
        "the board on /dev/ttyUSB0 is an ESP32-C3, not the ESP32-C6 given with -c: use -c \
         esp32c3 or leave -c out to detect the chip"
    );
    let position = Position {
        address: 0x8000,
        done: 1024,
        total: 3072,
    };
    assert!(matches!(
        write_error(port, Some(position), espflash::Error::VerifyFailed),
        FlashError::VerifyFailed { address: 0x8000 }
    ));
    let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "broken pipe");
    assert!(matches!(
        write_error(port, Some(position), espflash::Error::from(io)),
        FlashError::ConnectionLost {
            done: 1024,
            total: 3072,
            ..
        }
    ));
    let io = std::io::Error::other("Not a typewriter");
    let finish = write_error(port, None, espflash::Error::from(io));
    assert!(
        finish
            .to_string()
            .starts_with("everything was written to the board on /dev/ttyUSB0, but finishing failed (Error while connecting to device: "),
        "{finish}"
    );
}

#[test]
fn status_lines_follow_the_headless_contract() {
    let lines: Vec<Option<String>> = [
        FlashEvent::Connected {
            chip: Chip::Esp32c3,
            flash_size: 4 << 20,
            mac: Some("58:cf:79:00:00:01".into()),
        },
        FlashEvent::Progress {
            address: 0x10000,
            done: 430,
            total: 1024,
        },
        FlashEvent::SegmentDone {
            address: 0x8000,
            skipped: true,
        },
        FlashEvent::SegmentDone {
            address: 0x8000,
            skipped: false,
        },
        FlashEvent::Done {
            bytes: 1_048_576,
            seconds: 3.2,
        },
    ]
    .iter()
    .map(FlashEvent::status_line)
    .collect();
    assert_eq!(
        lines,
        [
            Some("connected: ESP32-C3, 4 MB flash, MAC 58:cf:79:00:00:01".to_owned()),
            Some("0x10000 41%".to_owned()),
            Some("0x8000 unchanged, skipped".to_owned()),
            None,
            Some("done 1048576 bytes in 3.20 s".to_owned()),
        ]
    );
}

#[test]
fn a_missing_port_is_the_consoles_not_found() {
    let options = FlashOptions::new("/dev/ttyDOESNOTEXIST");
    let error = detect_chip(&options).unwrap_err();
    assert!(
        matches!(error, FlashError::Port(PortError::NotFound(_))),
        "{error:?}"
    );
}

/// On a pty: Unix only.
#[cfg(unix)]
mod on_a_pty {
    use super::*;
    use std::os::fd::AsRawFd as _;

    /// A pty pair; the slave's path is what a user would pass with -p.
    fn pty() -> (nix::pty::OpenptyResult, PathBuf) {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .expect("pty slave path");
        (pty, path)
    }

    #[test]
    fn a_pty_has_no_modem_lines() {
        let (_pty, path) = pty();
        let mut serial = port::open(&path, ROM_BAUD).expect("open the pty slave");
        assert!(!has_modem_lines(&mut serial));
        // The same ioctl a reset needs fails, so the automatic choice avoids it.
        assert!(serial.write_request_to_send(true).is_err());
    }

    #[test]
    fn silence_on_a_pty_is_no_answer_with_the_pty_fix() {
        // The master stays open and never answers: a pty with nothing behind it.
        let (_pty, path) = pty();
        let mut options = FlashOptions::new(&path);
        options.use_stub = false;
        let image = FlashImage::Bin {
            data: vec![0; 16],
            address: DEFAULT_APP_ADDRESS,
        };
        let mut events = Vec::new();
        let error = flash(&options, &image, &mut |event| events.push(event)).unwrap_err();
        assert_eq!(
            events,
            [FlashEvent::Connecting {
                port: path.clone(),
                before: Before::NoReset,
                after: After::NoReset,
            }]
        );
        assert_eq!(
            error.to_string(),
            format!(
                "no answer from the board's ROM loader on {}: {NO_RESET_LINES_FIX}",
                path.display()
            )
        );
    }

    #[test]
    fn no_reset_no_sync_needs_a_chip() {
        let (_pty, path) = pty();
        let mut options = FlashOptions::new(&path);
        options.before = Some(Before::NoResetNoSync);
        assert!(matches!(detect_chip(&options), Err(FlashError::NeedChip)));
    }
}
