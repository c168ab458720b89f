//! Issue 17: espchat's compressed writes through the ROM loader (`--no-stub`: FLASH_DEFL_* in
//! 1 KiB blocks), against the virtual board on its real pty, with the espflash library: byte
//! for byte on a blank board and over a half-written region, raw where deflate does not help
//! or `--no-compress` says so, and how far it got when the board goes away mid-write.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};

use espchat::board::image::{self, APP_OFFSET, ESPCHAT_PROJECT};
use espchat::flash::{self, FlashError, FlashEvent, FlashImage, FlashOptions, FlashReport};
use support::BoardProcess;

/// The ROM loader's block, compressed or not.
const ROM_BLOCK: usize = 1024;
const FLASH_BYTES: usize = 4 << 20;

/// Bytes that deflate to about half, evenly: every 2 KiB, 1 KiB of noise and 1 KiB of log text.
/// Each compressed 1 KiB block then carries some 2 KiB, so progress moves by well under a
/// percent per block.
fn half_compressible(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_u32;
    let mut bytes = Vec::with_capacity(len + 2048);
    let mut line = 0u32;
    while bytes.len() < len {
        for _ in 0..1024 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            bytes.push(state as u8);
        }
        let start = bytes.len();
        while bytes.len() < start + 1024 {
            line += 1;
            bytes.extend_from_slice(format!("I ({line}) wifi: retry {}\r\n", line % 7).as_bytes());
        }
        bytes.truncate(start + 1024);
    }
    bytes.truncate(len);
    bytes
}

/// An espchat app image around `payload`, in `dir`; returns its bytes and path.
fn app_file(dir: &Path, name: &str, payload: &[u8]) -> (Vec<u8>, PathBuf) {
    let app = image::build(ESPCHAT_PROJECT, "17.0.0", payload);
    assert_eq!(
        app.len() % 4,
        0,
        "the ROM writes words: no padding expected"
    );
    let path = dir.join(name);
    std::fs::write(&path, &app).unwrap();
    (app, path)
}

/// `espchat flash --no-stub` as options; `--no-compress` unless `compress`.
fn rom_options(serial: &Path, compress: bool) -> FlashOptions {
    FlashOptions {
        use_stub: false,
        compress,
        ..FlashOptions::new(serial)
    }
}

/// `espchat::flash::flash` without the stub, as `espchat flash --no-stub [--no-compress]`
/// does it; returns the result and every event.
fn flash_rom(
    serial: &Path,
    app: &Path,
    compress: bool,
) -> (Result<FlashReport, FlashError>, Vec<FlashEvent>) {
    flash_with(&rom_options(serial, compress), app)
}

fn flash_with(
    options: &FlashOptions,
    app: &Path,
) -> (Result<FlashReport, FlashError>, Vec<FlashEvent>) {
    let image = FlashImage::from_file(app, None).unwrap();
    let mut events = Vec::new();
    let result = flash::flash(options, &image, &mut |event| events.push(event));
    (result, events)
}

/// The `done` of each Progress event at the app's address, in order.
fn progress(events: &[FlashEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|event| match event {
            FlashEvent::Progress { address, done, .. } if *address == APP_OFFSET => Some(*done),
            _ => None,
        })
        .collect()
}

/// Stops the board (SIGTERM: it saves its flash) and reads its flash file.
fn saved_flash(mut board: BoardProcess, flash_file: &Path) -> Vec<u8> {
    let status = board.signal_and_wait(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "the board exited with {status}");
    let flash = std::fs::read(flash_file).unwrap();
    assert_eq!(flash.len(), FLASH_BYTES);
    flash
}

#[test]
fn rom_mode_writes_a_blank_board_compressed_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (app, app_path) = app_file(dir.path(), "app.bin", &half_compressible(150_000));
    let (board, flash_file) = BoardProcess::blank(dir.path());

    let (result, events) = flash_rom(&board.serial, &app_path, true);
    let report = result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((report.bytes, report.skipped), (app.len() as u64, 0));

    // One Progress per FLASH_DEFL_DATA block: the zlib stream's blocks, not the image's.
    let compressed = flash::deflate(&app).unwrap().len();
    let done = progress(&events);
    assert_eq!(done.len(), compressed.div_ceil(ROM_BLOCK), "{done:?}");
    assert!(
        done.len() < app.len().div_ceil(ROM_BLOCK) * 2 / 3,
        "{done:?}"
    );
    // In uncompressed bytes, rising to the whole image.
    assert!(done.windows(2).all(|pair| pair[0] < pair[1]), "{done:?}");
    assert_eq!(done.last().copied(), Some(app.len() as u64));
    let total = app.len() as u64;
    let outline: Vec<&FlashEvent> = events
        .iter()
        .filter(|event| !matches!(event, FlashEvent::Progress { .. }))
        .collect();
    assert!(
        matches!(
            outline[..],
            [
                FlashEvent::Connecting { .. },
                FlashEvent::Connected { .. },
                // A blank board: an app alone will not boot there.
                FlashEvent::NoPartitionTable,
                FlashEvent::Segment { address: APP_OFFSET, total: t },
                FlashEvent::Verifying { address: APP_OFFSET },
                FlashEvent::SegmentDone { address: APP_OFFSET, skipped: false },
                FlashEvent::Done { bytes, .. },
            ] if *t == total && *bytes == total
        ),
        "{outline:?}"
    );

    let flash = saved_flash(board, &flash_file);
    let end = APP_OFFSET as usize + app.len();
    assert!(flash[APP_OFFSET as usize..end] == app, "the flash differs");
    assert!(
        flash[..APP_OFFSET as usize]
            .iter()
            .chain(&flash[end..])
            .all(|&byte| byte == 0xFF),
        "bytes outside the image were written"
    );
}

#[test]
fn rom_mode_compressed_write_over_a_half_written_region_is_exact_and_then_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (app, app_path) = app_file(dir.path(), "app.bin", &half_compressible(120_000));
    // A write that stopped halfway, over an older, longer app.
    let old_end = APP_OFFSET as usize + 300_000;
    let mut flash = vec![0xFF; FLASH_BYTES];
    flash[APP_OFFSET as usize..old_end].fill(0x5A);
    flash[APP_OFFSET as usize..][..app.len() / 2].copy_from_slice(&app[..app.len() / 2]);
    let flash_file = dir.path().join("flash.bin");
    std::fs::write(&flash_file, &flash).unwrap();
    let board = BoardProcess::start(&[
        "--no-throttle",
        "--flash-file",
        flash_file.to_str().unwrap(),
    ]);

    let (result, events) = flash_rom(&board.serial, &app_path, true);
    let report = result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(report.bytes, app.len() as u64);
    assert!(progress(&events).len() < app.len().div_ceil(ROM_BLOCK));

    // Unchanged now: the MD5 check skips it, and nothing is sent.
    let (result, events) = flash_rom(&board.serial, &app_path, true);
    let report = result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!((report.bytes, report.skipped), (0, app.len() as u64));
    assert!(
        events.contains(&FlashEvent::SegmentDone {
            address: APP_OFFSET,
            skipped: true
        }),
        "{events:?}"
    );
    assert!(progress(&events).is_empty(), "{events:?}");

    let flash = saved_flash(board, &flash_file);
    let end = APP_OFFSET as usize + app.len();
    assert!(flash[APP_OFFSET as usize..end] == app, "the flash differs");
    // The ROM erased the sectors it wrote, and only those: the old app's tail is still there,
    // as on a chip.
    let erased_end = end.next_multiple_of(4096);
    assert!(flash[end..erased_end].iter().all(|&byte| byte == 0xFF));
    assert!(flash[erased_end..old_end].iter().all(|&byte| byte == 0x5A));
}

#[test]
fn rom_mode_sends_raw_blocks_where_deflate_does_not_shrink_or_with_no_compress() {
    let dir = tempfile::tempdir().unwrap();
    let (board, flash_file) = BoardProcess::blank(dir.path());
    let raw_blocks = |app: &[u8]| app.len().div_ceil(ROM_BLOCK);

    // Not an app (an app's header and descriptor deflate a little): written with --force.
    let noisy = support::noise(60_000);
    assert!(flash::deflate(&noisy).unwrap().len() >= noisy.len());
    let noisy_path = dir.path().join("noise.bin");
    std::fs::write(&noisy_path, &noisy).unwrap();
    let options = FlashOptions {
        force: true,
        ..rom_options(&board.serial, true)
    };
    let (result, events) = flash_with(&options, &noisy_path);
    result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(progress(&events).len(), raw_blocks(&noisy));

    let (app, app_path) = app_file(dir.path(), "app.bin", &half_compressible(50_000));
    let (result, events) = flash_rom(&board.serial, &app_path, false);
    result.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(progress(&events).len(), raw_blocks(&app));

    let flash = saved_flash(board, &flash_file);
    assert!(
        flash[APP_OFFSET as usize..][..app.len()] == app,
        "the flash differs"
    );
    // The noise was longer: its tail past the app's last sector is still there.
    let erased_end = (APP_OFFSET as usize + app.len()).next_multiple_of(4096);
    let tail = erased_end - APP_OFFSET as usize..noisy.len();
    assert!(
        flash[APP_OFFSET as usize..][tail.clone()] == noisy[tail],
        "the noise differs"
    );
}

/// The board goes away in the middle of a compressed write: the error names how far it got,
/// in bytes of the image, and the board's flash holds at least that much of it.
#[test]
fn rom_mode_compressed_write_says_how_far_it_got_when_the_board_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let (app, app_path) = app_file(dir.path(), "app.bin", &half_compressible(300_000));
    let flash_file = dir.path().join("flash.bin");
    // Throttled at 115200 baud: some 15 s of compressed blocks, time to stop it in between.
    let mut board = BoardProcess::start(&["--blank", "--flash-file", flash_file.to_str().unwrap()]);
    let serial = board.serial.to_str().unwrap().to_owned();
    let mut flash = support::HeadlessProcess::start(&[
        "flash",
        "--no-stub",
        "-p",
        &serial,
        app_path.to_str().unwrap(),
    ]);
    flash.wait_for("flash! 0x10000 5%");
    // SIGTERM: the board saves its flash as it goes.
    let stopped = board.signal_and_wait(nix::sys::signal::Signal::SIGTERM);
    assert!(stopped.success(), "the board exited with {stopped}");
    let status = flash.wait_exit();
    assert_eq!(status.code(), Some(1));
    let stderr = flash.stderr();
    let total = app.len();
    let done: usize = stderr
        .split_once("lost while writing at 0x10000: ")
        .and_then(|(_, rest)| rest.split_once(&format!(" of {total} bytes written")))
        .and_then(|(done, _)| done.parse().ok())
        .unwrap_or_else(|| panic!("no `lost while writing at 0x10000: N of {total}`: {stderr}"));
    assert!(done >= total * 5 / 100 && done < total, "{done} of {total}");

    let saved = std::fs::read(&flash_file).unwrap();
    assert!(
        saved[APP_OFFSET as usize..][..done] == app[..done],
        "the board's flash does not hold the {done} bytes the error names"
    );
}
