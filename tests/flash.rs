//! Flashing the virtual board with independent tools: esptool (Python, from PyPI), over the
//! board's real pty, in ROM and stub mode; and what the board boots afterwards.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use espchat::board::image::{self, APP_OFFSET, ESPCHAT_PROJECT};
use support::BoardProcess;

/// esptool 5 from PyPI, installed once into a venv under cargo's test temp dir (or `$ESPTOOL`).
fn esptool() -> PathBuf {
    static ESPTOOL: OnceLock<PathBuf> = OnceLock::new();
    ESPTOOL
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("ESPTOOL") {
                return PathBuf::from(path);
            }
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("esptool-venv");
            let bin = venv.join("bin").join("esptool");
            if !bin.exists() {
                run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
                run(Command::new(venv.join("bin").join("pip")).args([
                    "install",
                    "--quiet",
                    "esptool>=5,<6",
                ]));
            }
            bin
        })
        .clone()
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a setup command");
    assert!(status.success(), "{command:?} failed: {status}");
}

/// Runs esptool's write-flash against the board's pty with the options a pty needs; returns
/// its output.
fn esptool_write(board: &BoardProcess, global: &[&str], write: &[&str], image: &Path) -> String {
    let output = Command::new(esptool())
        .args(["--chip", "esp32c3", "-p"])
        .arg(&board.serial)
        .args(["--before", "no-reset", "--after", "no-reset"])
        .args(global)
        .arg("write-flash")
        .args(write)
        .arg(format!("0x{APP_OFFSET:x}"))
        .arg(image)
        .output()
        .expect("run esptool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "esptool failed:\n{text}");
    text
}

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
    assert_eq!(flash_file_at(&flash_file, APP_OFFSET, app.len()), app);

    // esptool leaves without FLASH_END; closing the port resets the board, as on a DevKit.
    let mut console = board.open_console();
    console.wait_for("app_init: Project name:     hello-world");
    console.wait_for("app 'hello-world' runs here without a chat server");
}

#[test]
fn esptool_with_stub_compression_and_a_baud_change_writes_the_chat_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let flash_file = dir.path().join("flash.bin");
    let app = image::build(ESPCHAT_PROJECT, "7.7.7", &vec![0x3C; 120_000]);
    let app_path = dir.path().join("espchat.bin");
    std::fs::write(&app_path, &app).unwrap();
    let board = BoardProcess::start(&[
        "--blank",
        "--no-throttle",
        "--flash-file",
        flash_file.to_str().unwrap(),
    ]);

    let output = esptool_write(&board, &["-b", "460800"], &["--compress"], &app_path);
    assert!(output.contains("Hash of data verified"), "{output}");
    assert!(output.contains("Stub flasher running"), "{output}");
    assert_eq!(flash_file_at(&flash_file, APP_OFFSET, app.len()), app);

    let mut console = board.open_console();
    console.wait_for("app_init: App version:      7.7.7");
    assert_eq!(console.wait_listening(), board.port);
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
    let mut flash = vec![0xFFu8; 4 * 1024 * 1024];
    flash[APP_OFFSET as usize..APP_OFFSET as usize + app.len()].copy_from_slice(&app);
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
    let output = Command::new(env!("CARGO_BIN_EXE_espchat"))
        .args(["board", "--tcp-port", "0", "--flash-file"])
        .arg(&flash_file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("11 bytes, not a 4 MiB flash"), "{stderr}");
}
