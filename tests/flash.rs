//! Flashing the virtual board with independent tools: esptool (Python, from PyPI), over the
//! board's real pty, in ROM and stub mode; and what the board boots afterwards.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use espchat::board::image::{self, APP_OFFSET, ESPCHAT_PROJECT};
use support::{BoardProcess, esptool, esptool_write, layouts};

/// espflash's default table for a 4 MB ESP32-C3.
const FACTORY_CSV: &str = "\
nvs,      data, nvs,     0x9000,  0x6000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 0x3f0000,
";

fn flash_file_at(path: &Path, offset: u32, len: usize) -> Vec<u8> {
    let flash = std::fs::read(path).unwrap();
    flash[offset as usize..offset as usize + len].to_vec()
}

#[test]
fn esptool_writes_a_foreign_app_in_rom_mode_and_the_board_boots_it() {
    let dir = tempfile::tempdir().unwrap();
    let flash_file = dir.path().join("flash.bin");
    let app = image::build("hello-world", "1.0", &vec![0xA5; 40_000]);
    let app_path = dir.path().join("hello.bin");
    std::fs::write(&app_path, &app).unwrap();
    let board = BoardProcess::start(&[
        "--no-throttle",
        "--flash-file",
        flash_file.to_str().unwrap(),
    ]);

    let output = esptool_write(&board, &["--no-stub"], &[], &app_path);
    assert!(output.contains("Hash of data verified"), "{output}");
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, app.len()) == app,
        "flash differs from the image"
    );

    // esptool leaves without FLASH_END; closing the port resets the board, as on a DevKit.
    let mut console = board.open_console();
    console.wait_for("app_init: Project name:     hello-world");
    console.wait_for("app 'hello-world' runs here without a chat server");
}

/// esptool opens `socket://` ports itself: the board whose port is TCP (`--console-tcp`, the
/// kind Windows gets) is flashed through it, and boots what was written once esptool leaves.
#[test]
fn esptool_writes_a_board_whose_port_is_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let flash_file = dir.path().join("flash.bin");
    let app = image::build("hello-world", "1.0", &vec![0x5A; 30_000]);
    let app_path = dir.path().join("hello.bin");
    std::fs::write(&app_path, &app).unwrap();
    let board = BoardProcess::start(&[
        "--console-tcp",
        "0",
        "--no-throttle",
        "--flash-file",
        flash_file.to_str().unwrap(),
    ]);
    assert!(
        board
            .serial
            .to_str()
            .unwrap()
            .starts_with("socket://127.0.0.1:"),
        "{}",
        board.serial.display()
    );
    let output = esptool_write(&board, &["--no-stub"], &[], &app_path);
    assert!(output.contains("Hash of data verified"), "{output}");
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, app.len()) == app,
        "flash differs from the image"
    );
    let mut monitor =
        support::HeadlessProcess::start(&["monitor", "-p", board.serial.to_str().unwrap()]);
    monitor.wait_all(&[
        "app_init: Project name:     hello-world",
        "app 'hello-world' runs here without a chat server",
    ]);
}

#[test]
fn esptool_with_stub_compression_and_a_baud_change_writes_the_chat_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let app = image::build(ESPCHAT_PROJECT, "7.7.7", &vec![0x3C; 120_000]);
    let app_path = dir.path().join("espchat.bin");
    std::fs::write(&app_path, &app).unwrap();
    // esptool writes the app only: the board has its bootloader and partition table.
    let (board, flash_file) = BoardProcess::flashed(dir.path());

    let output = esptool_write(&board, &["-b", "460800"], &["--compress"], &app_path);
    assert!(output.contains("Hash of data verified"), "{output}");
    assert!(output.contains("Stub flasher running"), "{output}");
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, app.len()) == app,
        "flash differs from the image"
    );

    // The boot right after flashing prints to esptool, which still holds the port then (as on
    // a real board), and leaves some of it unread; a reboot shows what the flash now holds.
    assert_boots_into_chat(&board, "app_init: App version:      7.7.7");
    let (_client, id) = support::ChatClient::join(board.port);
    assert_eq!(id, 1);
}

#[test]
fn a_blank_board_shows_the_roms_invalid_header_boot_loop() {
    let board = BoardProcess::start(&["--blank"]);
    let mut console = board.open_console();
    // The ROM retries: the banner and the complaint, again and again.
    for _ in 0..2 {
        console.wait_for("ESP-ROM:esp32c3");
        console.wait_for("invalid header: 0xffffffff");
    }
}

#[test]
fn a_corrupt_image_is_refused_by_the_bootloader() {
    let dir = tempfile::tempdir().unwrap();
    let flash_file = dir.path().join("flash.bin");
    let mut app = image::build(ESPCHAT_PROJECT, "1.0", &[1u8; 4000]);
    app[500] ^= 0xFF;
    let flash = layouts::flash(&[
        (0, &layouts::bootloader()),
        (0x8000, &layouts::table(FACTORY_CSV)),
        (APP_OFFSET, &app),
    ]);
    std::fs::write(&flash_file, &flash).unwrap();

    let board = BoardProcess::start(&["--flash-file", flash_file.to_str().unwrap()]);
    let mut console = board.open_console();
    console.wait_for("esp_image: image at 0x10000: checksum failed");
    console.wait_for("boot: No bootable app partitions in the partition table");
    console.wait_for("rst:0xc (RTC_SW_CPU_RST)");
}

#[test]
fn a_flash_file_of_the_wrong_size_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let flash_file = dir.path().join("notes.txt");
    std::fs::write(&flash_file, b"not a flash").unwrap();
    let output = support::espchat()
        .args(["board", "--tcp-port", "0", "--flash-file"])
        .arg(&flash_file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("11 bytes, not a 4 MiB flash"), "{stderr}");
}

/// After a reboot the board runs the espchat app of `version` and serves the chat.
fn assert_boots_into_chat(board: &BoardProcess, version_line: &str) {
    let mut console = fresh_console(board);
    console.send("reboot");
    console.wait_for(version_line);
    assert_eq!(console.wait_listening(), board.port);
}

/// The console of a running chat app, past whatever older output waited in the port: the reply
/// to `status` comes after all of it. Asked once a second until the app answers: before it runs,
/// typing goes to the ROM loader (espflash sends its last FLASH_END without waiting for the
/// answer and may leave before the board has rebooted), and the boot log may have gone to the
/// flashing tool, so there is nothing else to wait for.
fn fresh_console(board: &BoardProcess) -> support::SerialConsole {
    let mut console = board.open_console();
    let end = std::time::Instant::now() + support::DEADLINE;
    loop {
        // Enter first: the flashing tool's last bytes may sit in the console's line buffer.
        console.send("");
        console.send("status");
        let reply = "espchat: LED is off; clients: none; policy lab";
        if console
            .lines
            .try_wait_for(reply, std::time::Duration::from_secs(1))
            .is_some()
        {
            return console;
        }
        assert!(
            std::time::Instant::now() < end,
            "the app never answered `status`"
        );
    }
}

/// `espchat flash …` to completion; returns (exit code, stdout, stderr).
fn espchat_flash(args: &[&str]) -> (Option<i32>, String, String) {
    let output = support::espchat()
        .arg("flash")
        .args(args)
        .output()
        .expect("run espchat flash");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn espchat_flash_writes_a_blank_board_which_then_serves_the_chat() {
    let dir = tempfile::tempdir().unwrap();
    let app = image::build(ESPCHAT_PROJECT, "2.0.0", &vec![0x5A; 150_000]);
    let app_path = dir.path().join("espchat.bin");
    std::fs::write(&app_path, &app).unwrap();
    let bootloader = layouts::bootloader();
    let bootloader_path = dir.path().join("bootloader.bin");
    std::fs::write(&bootloader_path, &bootloader).unwrap();
    let table_path = dir.path().join("partitions.csv");
    std::fs::write(&table_path, FACTORY_CSV).unwrap();
    let (board, flash_file) = BoardProcess::blank(dir.path());

    let serial = board.serial.to_str().unwrap();
    let (code, stdout, stderr) = espchat_flash(&[
        "-p",
        serial,
        "--bootloader",
        bootloader_path.to_str().unwrap(),
        "--partition-table",
        table_path.to_str().unwrap(),
        app_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(flash_file_at(&flash_file, 0, bootloader.len()) == bootloader);
    let table = layouts::table(FACTORY_CSV);
    assert!(flash_file_at(&flash_file, 0x8000, table.len()) == table);
    // Not a terminal: the headless lines of docs/contract.md §2.
    assert!(stdout.contains("flash! 0x10000 100%"), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("flash! done ")),
        "{stdout}"
    );
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, app.len()) == app,
        "flash differs from the image"
    );

    assert_boots_into_chat(&board, "app_init: App version:      2.0.0");
}

#[test]
fn espchat_flash_refuses_an_image_for_another_chip_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = image::build(ESPCHAT_PROJECT, "1.0", b"c6");
    app[12..14].copy_from_slice(&13u16.to_le_bytes()); // ESP32-C6
    let app_path = dir.path().join("c6.bin");
    std::fs::write(&app_path, &app).unwrap();
    let flash_file = dir.path().join("flash.bin");
    let board = BoardProcess::start(&[
        "--no-throttle",
        "--flash-file",
        flash_file.to_str().unwrap(),
    ]);
    let before = std::fs::read(&flash_file).unwrap();

    let serial = board.serial.to_str().unwrap();
    let (code, _, stderr) = espchat_flash(&["-p", serial, app_path.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("built for the ESP32-C6") && stderr.contains("is an ESP32-C3"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&flash_file).unwrap(),
        before,
        "the flash was changed"
    );
}

#[test]
fn espchat_flash_names_a_file_that_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").unwrap();
    let (code, _, stderr) = espchat_flash(&["-p", "/dev/null", notes.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("is not an ESP32 ELF or .bin image"),
        "{stderr}"
    );
}

#[test]
fn espchat_flash_explains_a_port_where_no_loader_answers() {
    // A pty with nothing behind it: like a board that is not in download mode.
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pty.slave).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.bin");
    std::fs::write(&app_path, image::build(ESPCHAT_PROJECT, "1.0", b"x")).unwrap();
    let (code, _, stderr) =
        espchat_flash(&["-p", path.to_str().unwrap(), app_path.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no answer"), "{stderr}");
    drop(pty);
}

#[test]
fn espchat_flash_says_how_far_it_got_when_the_board_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("big.bin");
    // Throttled at 115200 baud without the stub, 300 KB take about half a minute: plenty of
    // time to pull the plug in the middle.
    std::fs::write(
        &app_path,
        image::build(ESPCHAT_PROJECT, "1.0", &vec![7u8; 300_000]),
    )
    .unwrap();
    let mut board = BoardProcess::start(&["--blank"]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut flash = support::HeadlessProcess::start(&[
        "flash",
        "--no-stub",
        // Constant bytes deflate to nothing: sent raw, they take their time.
        "--no-compress",
        "-p",
        &serial,
        app_path.to_str().unwrap(),
    ]);
    flash.wait_for("flash! 0x10000 5%");
    board.child.kill().unwrap();
    board.child.wait().unwrap();
    let status = flash.wait_exit();
    assert_eq!(status.code(), Some(1));
    let stderr = flash.stderr();
    assert!(stderr.contains("lost while writing at 0x10000"), "{stderr}");
    assert!(stderr.contains(" of 300"), "{stderr}");
}

#[test]
fn espchat_flash_without_an_image_writes_the_bundled_firmware_for_the_chip() {
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().unwrap();
    let (code, stdout, stderr) = espchat_flash(&["-p", serial]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    // An erased board gets all it needs to boot: bootloader, partition table, app.
    let bundled = espchat::bundled::app_for(espchat::flash::Chip::Esp32c3).unwrap();
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, bundled.len()) == bundled,
        "the flash does not hold the bundled ESP32-C3 image"
    );
    let bootloader = layouts::bootloader();
    assert!(flash_file_at(&flash_file, 0, bootloader.len()) == bootloader);
    let table = layouts::table(FACTORY_CSV);
    assert!(flash_file_at(&flash_file, 0x8000, table.len()) == table);
    assert_boots_into_chat(&board, "app_init: Project name:     espchat-firmware");
}

#[test]
fn esptool_writes_and_verifies_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    // Part noise, part text: compression has something to do, but not everything.
    let mut payload: Vec<u8> = (0..60_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    payload.extend(b"espchat ".repeat(5_000));
    let app = image::build(ESPCHAT_PROJECT, "3.0", &payload);
    let app_path = dir.path().join("app.bin");
    std::fs::write(&app_path, &app).unwrap();
    let modes: [(&[&str], &str); 4] = [
        (&["--no-stub"], "--compress"),
        (&["--no-stub"], "--no-compress"),
        (&[], "--compress"),
        (&[], "--no-compress"),
    ];
    for (global, compress) in modes {
        let (board, flash_file) = BoardProcess::blank(dir.path());
        let output = esptool_write(&board, global, &[compress], &app_path);
        assert!(
            output.contains("Hash of data verified"),
            "{global:?} {compress}:\n{output}"
        );
        let verify = Command::new(esptool())
            .args(["--chip", "esp32c3", "-p"])
            .arg(&board.serial)
            .args(["--before", "no-reset", "--after", "no-reset"])
            .args(global)
            .args(["verify-flash", &format!("0x{APP_OFFSET:x}")])
            .arg(&app_path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success(),
            "verify-flash {global:?} {compress}:\n{text}"
        );
        assert!(
            text.contains("Verification successful"),
            "{global:?} {compress}:\n{text}"
        );
        assert!(
            flash_file_at(&flash_file, APP_OFFSET, app.len()) == app,
            "{global:?} {compress}: the flash differs from the image"
        );
    }
}

#[test]
fn espchat_flash_writes_the_firmware_elf_in_rom_mode_as_espflash_converts_it() {
    use espflash::flasher::{FlashData, FlashSettings, FlashSize};
    use espflash::image_format::idf::IdfBootloaderFormat;
    use espflash::target::{Chip, XtalFrequency};

    let elf_path = support::firmware_elf();
    let elf = std::fs::read(&elf_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().unwrap();
    let (code, stdout, stderr) =
        espchat_flash(&["--no-stub", "-p", serial, elf_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    // Bootloader, partition table and app, each where espflash puts it, byte for byte.
    let settings = FlashSettings::new(None, Some(FlashSize::_4Mb), None);
    let data = FlashData::new(settings, 0, None, Chip::Esp32c3, XtalFrequency::_40Mhz);
    let format = IdfBootloaderFormat::new(&elf, &data, None, None, None, None).unwrap();
    let flash = std::fs::read(&flash_file).unwrap();
    let mut segments = 0;
    for segment in format.flash_segments() {
        let at = segment.addr as usize;
        assert!(
            flash[at..at + segment.data.len()] == *segment.data,
            "segment at 0x{at:x} ({} bytes) differs",
            segment.data.len()
        );
        segments += 1;
    }
    assert_eq!(segments, 3, "bootloader, partition table, app");

    assert_boots_into_chat(&board, "app_init: Project name:     espchat-firmware");
}

#[test]
fn espchat_flash_names_a_missing_port() {
    let (code, _, stderr) = espchat_flash(&["-p", "/dev/ttyUSB-not-there"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("/dev/ttyUSB-not-there: not found"),
        "{stderr}"
    );
}

#[test]
fn flash_and_connect_flashes_reads_the_ip_and_chats() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _flash_file) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut oneshot = support::HeadlessProcess::start(&[
        "flash-and-connect",
        "--headless",
        "-p",
        &serial,
        "--clients",
        "2",
        "--led",
        "8,active-low",
    ]);
    // Typed before any pane exists: it waits for pane 1.
    oneshot.send("@1 hello from a script");
    oneshot.wait_for("flash! done ");
    oneshot.wait_for(&format!("serial! opened {serial}"));
    // The board names its LED at boot, and the one asked for is stored (the ESP32-C3 SuperMini's).
    oneshot.wait_all(&[
        "espchat: led: the RGB LED (WS2812 on GPIO8",
        "espchat: led on GPIO8 (active-low)",
        "board! ip 127.0.0.1",
        // Pane 1 sends as soon as it is connected, perhaps before pane 2 is: pane 1 hears it.
        "chat1! connected 127.0.0.1:",
        "chat2! connected 127.0.0.1:",
        "chat1| Client 1: hello from a script",
    ]);
    oneshot.end_input();
    oneshot.wait_all(&["chat1! closed", "chat2! closed"]);
    assert!(oneshot.wait_exit().success(), "{}", oneshot.stderr());
}

/// The README's scripting example, 20 times: input ends before any pane exists, yet both lines
/// reach the board, each from the client of its pane's number (the LED ends off).
#[test]
fn flash_and_connect_delivers_a_scripts_lines_although_its_input_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (board, _flash_file) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().unwrap().to_owned();
    for run in 1..=20 {
        let mut oneshot =
            support::HeadlessProcess::start(&["flash-and-connect", "--headless", "-p", &serial]);
        oneshot.send("@1 on");
        oneshot.send("@2 off");
        oneshot.end_input();
        let status = oneshot.wait_exit();
        let out = oneshot.all_stdout().join("\n");
        assert!(status.success(), "run {run}:\n{out}\n{}", oneshot.stderr());
        assert!(!out.contains("not sent"), "run {run}:\n{out}");
        for echo in ["chat1| Client 1: on", "chat2| Client 2: off"] {
            assert!(out.contains(echo), "run {run}: no {echo:?} in:\n{out}");
        }
    }
}

#[test]
fn flash_and_connect_gives_up_with_a_hint_when_no_ip_comes() {
    // A foreign app boots without a chat server and prints no address.
    let line = flash_and_connect_gives_up(&image::build("hello-world", "1.0", b"hi"), &[]);
    assert!(
        line.contains("no IP address on the board's console within 1 s"),
        "{line}"
    );
}

/// flash-and-connect with `image` on a blank board and a 1 s IP timeout: the `error!` line it
/// ends with (exit status 1).
fn flash_and_connect_gives_up(image: &[u8], extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.bin");
    std::fs::write(&app_path, image).unwrap();
    let (board, _flash_file) = BoardProcess::flashed(dir.path());
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut args = vec![
        "flash-and-connect",
        "--headless",
        "-p",
        &serial,
        "--ip-timeout",
        "1",
    ];
    args.extend_from_slice(extra);
    args.push(app_path.to_str().unwrap());
    let mut oneshot = support::HeadlessProcess::start(&args);
    let line = oneshot.wait_for("error! ");
    assert_eq!(oneshot.wait_exit().code(), Some(1), "{line}");
    line
}

/// A SLIP frame of FLASH_END with flag 0 (reboot): what another program on the port could send
/// to make the board leave its loader in the middle of a flash.
const FLASH_END_REBOOT: &[u8] = &[
    0xC0, 0x00, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0,
];

/// Issue 16, item 2: a monitor or any program that opens and closes the port in the middle of
/// a flash is not the flashing tool letting go; the board stays in its loader and the flash
/// completes.
#[test]
fn espchat_flash_completes_although_another_program_opens_and_closes_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let app = image::build(ESPCHAT_PROJECT, "3.0.0", &vec![0x3C; 200_000]);
    let app_path = dir.path().join("app.bin");
    std::fs::write(&app_path, &app).unwrap();
    let flash_file = dir.path().join("flash.bin");
    // Throttled, at 921600 baud, 1 KiB blocks: about 2 s of writing, time to open and close
    // in between.
    let board = BoardProcess::start(&["--blank", "--flash-file", flash_file.to_str().unwrap()]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut flash = support::HeadlessProcess::start(&[
        "flash",
        "--no-stub",
        "--no-compress",
        "-b",
        "921600",
        "-p",
        &serial,
        app_path.to_str().unwrap(),
    ]);
    flash.wait_for("flash! 0x10000 10%");
    drop(support::open_pty(&board.serial));
    drop(support::open_pty(&board.serial));
    flash.wait_for("flash! 0x10000 50%");
    drop(support::open_pty(&board.serial));
    let status = flash.wait_exit();
    let out = flash.all_stdout().join("\n");
    assert!(status.success(), "{out}\n{}", flash.stderr());
    assert!(out.contains("flash! done "), "{out}");
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, app.len()) == app,
        "flash differs from the image"
    );
}

/// Issue 16, item 2: a board that leaves its loader under a flash and prints its boot loop
/// (bytes keep coming, answers never do) ends the flash with how far it got, not a hang.
#[test]
fn espchat_flash_gives_up_with_how_far_it_got_when_the_board_stops_answering() {
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.bin");
    std::fs::write(
        &app_path,
        image::build(ESPCHAT_PROJECT, "1.0", &vec![7u8; 100_000]),
    )
    .unwrap();
    // Throttled at 115200 baud without the stub: some 10 s of writing.
    let board = BoardProcess::start(&["--blank"]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut flash = support::HeadlessProcess::start(&[
        "flash",
        "--no-stub",
        "--no-compress",
        "--stall-timeout",
        "2",
        "-p",
        &serial,
        app_path.to_str().unwrap(),
    ]);
    flash.wait_for("flash! 0x10000 5%");
    let mut other = support::open_pty(&board.serial);
    other.write_all(FLASH_END_REBOOT).unwrap();
    let status = flash.wait_exit();
    assert_eq!(status.code(), Some(1));
    let stderr = flash.stderr();
    assert!(stderr.contains("made no progress for 2 s"), "{stderr}");
    assert!(
        stderr.contains("while writing at 0x10000 (") && stderr.contains(" of 100"),
        "{stderr}"
    );
}

/// Issue 16, item 2: at a reset the board's UART starts empty, as a real chip's FIFO does:
/// bytes a flashing tool still had in flight when the board rebooted never reach the app, so
/// the first command typed afterwards arrives whole.
#[test]
fn bytes_in_flight_at_a_reset_do_not_reach_the_app() {
    let board = BoardProcess::start(&["--no-throttle"]);
    let mut console = board.open_console();
    console.wait_listening();
    // In one write: SYNC (the loader takes over), FLASH_END (reboot), and more frame ends
    // behind them, as a tool's last bytes can be: the reset comes while those are still queued.
    // All of it fits the pty's buffer (4 KiB), so it is all there before the board reads the
    // FLASH_END: bytes that arrive after a reset reach the app, on a real chip too.
    let mut bytes = vec![0xC0, 0x00, 0x08, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00];
    bytes.extend_from_slice(&[0x07, 0x07, 0x12, 0x20]);
    bytes.extend_from_slice(&[0x55; 32]);
    bytes.push(0xC0);
    bytes.extend_from_slice(FLASH_END_REBOOT);
    bytes.extend_from_slice(&[0xC0; 2_000]);
    console.write_raw(&bytes);
    console.wait_for("rst:0xc (RTC_SW_CPU_RST)");
    console.wait_listening();
    console.send("status");
    let reply = loop {
        let line = console.lines.next();
        if line.contains("espchat: LED is") || line.contains("unknown command") {
            break line;
        }
    };
    assert!(
        reply.contains("espchat: LED is off; clients: none; policy lab"),
        "{reply}"
    );
}

/// Issue 16, item 3: a `.bin` that would not boot (random bytes, or the bundled image with one
/// byte flipped) is refused before anything is written, with the reason; `--force` writes it.
#[test]
fn espchat_flash_refuses_an_app_image_that_would_not_boot_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().unwrap();
    let blank = std::fs::read(&flash_file).unwrap();

    let random = dir.path().join("random.bin");
    std::fs::write(&random, support::noise(4096)).unwrap();
    let mut flipped = espchat::bundled::app_for(espchat::flash::Chip::Esp32c3)
        .unwrap()
        .to_vec();
    flipped[0x1000] ^= 0x01;
    let corrupt = dir.path().join("corrupt.bin");
    std::fs::write(&corrupt, &flipped).unwrap();

    for (path, reason) in [(&random, "invalid header"), (&corrupt, "failed")] {
        let (code, stdout, stderr) = espchat_flash(&["-p", serial, path.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("is not a bootable app image") && stderr.contains(reason),
            "{stderr}"
        );
        assert!(stderr.contains("--force"), "{stderr}");
        assert!(!stdout.contains("flash! done"), "{stdout}");
        assert_eq!(
            std::fs::read(&flash_file).unwrap(),
            blank,
            "the flash was changed"
        );
    }

    let (code, stdout, stderr) =
        espchat_flash(&["-p", serial, "--force", corrupt.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        flash_file_at(&flash_file, APP_OFFSET, flipped.len()) == flipped,
        "--force did not write the image"
    );
}

/// Issue 16, item 11: `-p` naming something that is not a serial port says so and what to pass,
/// instead of the OS's "Not a typewriter".
#[test]
fn espchat_names_a_port_that_is_not_a_serial_port_and_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    for (port, what) in [
        ("/dev/null", "it is not a terminal device"),
        (file.to_str().unwrap(), "it is a regular file"),
        (dir.path().to_str().unwrap(), "it is a directory"),
    ] {
        let (code, _, stderr) = espchat_flash(&["-p", port]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("serial port {port}: not a serial port ({what})")),
            "{stderr}"
        );
        assert!(stderr.contains("-p PORT, e.g. /dev/ttyUSB0"), "{stderr}");
        assert!(!stderr.contains("typewriter"), "{stderr}");
    }
}

/// Issue 16, item 11: an OS error is said once, not once in the message and again as its cause.
#[test]
fn espchat_flash_says_an_unreadable_images_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = espchat_flash(&["-p", "/dev/null", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.matches("os error 21").count(), 1, "{stderr}");
}

/// Issue 16, item 2: a monitor started in the middle of a flash is refused, naming the flasher
/// that has the port (not the virtual board, which holds its own end of the pty), and the
/// flash goes on to the end.
#[test]
fn a_monitor_during_a_flash_is_told_the_flasher_has_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let app = image::build(ESPCHAT_PROJECT, "3.1.0", &support::noise(200_000));
    let app_path = dir.path().join("app.bin");
    std::fs::write(&app_path, &app).unwrap();
    let board = BoardProcess::start(&["--blank"]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut flash = support::HeadlessProcess::start(&[
        "flash",
        "--no-stub",
        "-b",
        "921600",
        "-p",
        &serial,
        app_path.to_str().unwrap(),
    ]);
    flash.wait_for("flash! 0x10000 10%");
    let monitor = support::espchat()
        .args(["monitor", "--headless", "-p", &serial])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run espchat monitor");
    let stderr = String::from_utf8_lossy(&monitor.stderr);
    assert_eq!(monitor.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("busy, used by espchat (pid {})", flash.child.id())),
        "{stderr}"
    );
    let status = flash.wait_exit();
    assert!(status.success(), "{}", flash.stderr());
}

/// An image the board does not boot, written with --force: the hint after the IP timeout names
/// what the ROM said and the image, not the Wi-Fi (issue 16 item 3).
#[test]
fn flash_and_connect_blames_an_image_that_does_not_boot() {
    let junk: Vec<u8> = (0..4096u32).map(|n| (n * 7 % 251) as u8).collect();
    let line = flash_and_connect_gives_up(&junk, &["--force"]);
    assert!(
        line.contains(
            "the board does not boot its app: the console shows \"invalid magic byte (nothing \
             flashed here?)\": the app is not a valid image"
        ),
        "{line}"
    );
    assert!(!line.contains("password"), "{line}");
}

/// A board that ran an Arduino sketch after an OTA update: Arduino's partition table, otadata
/// selecting app1, a sketch in app0 and a newer one in app1.
fn arduino_board(dir: &Path) -> (BoardProcess, PathBuf) {
    let flash = layouts::flash(&[
        (0, &layouts::bootloader()),
        (0x8000, &layouts::table(layouts::ARDUINO_CSV)),
        (0xe000, &layouts::otadata_entry(2)),
        (0x10000, &image::build("blink-sketch", "1.0", &[7; 3000])),
        (0x150000, &image::build("wifi-sketch", "2.0", &[9; 3000])),
    ]);
    let (board, flash_file) = BoardProcess::with_flash(dir, &flash);
    // The virtual board honours otadata as ESP-IDF's bootloader does: app1 runs.
    let log = board.read_log_until("app 'wifi-sketch' runs here without a chat server");
    assert!(
        log.contains("boot:  1 otadata          OTA data         01 00 0000e000 00002000"),
        "{log}"
    );
    assert!(
        log.contains("boot: Loaded app from partition at offset 0x150000"),
        "{log}"
    );
    (board, flash_file)
}

#[test]
fn a_board_that_ran_arduino_serves_the_chat_after_espchat_flash() {
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = arduino_board(dir.path());
    let (code, stdout, stderr) = espchat_flash(&["-p", board.serial.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("flash! erasing the old partition table's otadata at 0xe000 (8 KB)"),
        "{stdout}"
    );
    // espflash's table replaced Arduino's, the old otadata is erased.
    let flash = std::fs::read(&flash_file).unwrap();
    let table = espchat::flash::layout::table_in_flash(&flash[0x8000..0x8c00]).unwrap();
    assert!(table.find("factory").is_some() && table.find("app1").is_none());
    assert!(flash[0xe000..0x10000].iter().all(|&byte| byte == 0xFF));
    assert_boots_into_chat(&board, "app_init: Project name:     espchat-firmware");
    let (_client, id) = support::ChatClient::join(board.port);
    assert_eq!(id, 1);
}

#[test]
fn a_bin_flashed_onto_an_arduino_board_boots_instead_of_the_app_otadata_named() {
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = arduino_board(dir.path());
    let app = image::build(ESPCHAT_PROJECT, "5.0", &[3; 20_000]);
    let app_path = dir.path().join("espchat.bin");
    std::fs::write(&app_path, &app).unwrap();
    let (code, stdout, stderr) = espchat_flash(&[
        "--no-stub",
        "-p",
        board.serial.to_str().unwrap(),
        app_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("flash! erasing the old partition table's otadata"),
        "{stdout}"
    );
    // Arduino's table stays (a .bin is only the app); app0 now holds ours and boots.
    let flash = std::fs::read(&flash_file).unwrap();
    assert!(
        espchat::flash::layout::table_in_flash(&flash[0x8000..0x8c00])
            .unwrap()
            .find("app1")
            .is_some()
    );
    assert_boots_into_chat(&board, "app_init: App version:      5.0");
}

#[test]
fn a_bin_alone_on_an_erased_board_is_flashed_with_a_warning_that_it_will_not_boot() {
    let dir = tempfile::tempdir().unwrap();
    let app = image::build(ESPCHAT_PROJECT, "1.0", &[5; 2000]);
    let app_path = dir.path().join("app.bin");
    std::fs::write(&app_path, &app).unwrap();
    let (board, _flash_file) = BoardProcess::blank(dir.path());
    let (code, stdout, stderr) = espchat_flash(&[
        "-p",
        board.serial.to_str().unwrap(),
        app_path.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("flash! warning: the board has no partition table at 0x8000"),
        "{stdout}"
    );
    let mut console = board.open_console();
    console.wait_for("invalid header: 0xffffffff");
}
