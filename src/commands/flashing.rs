//! `espchat flash`, and flashing progress as lines or bars.

use std::io::Write as _;
use std::path::PathBuf;

use espchat::config::{Config, process_env};
use espchat::flash::{self, FlashEvent, FlashImage, FlashOptions};

use super::{line_mode, print, serial_path};
use crate::cli::{FlashArgs, GlobalArgs};

pub mod many;

/// How `args` flash (the port aside: the caller sets it).
pub fn flash_options(args: &FlashArgs, config: &Config) -> anyhow::Result<FlashOptions> {
    Ok(FlashOptions {
        chip: args.chip,
        baud: config.flash_baud(args.baud, &process_env)?,
        use_stub: !args.no_stub,
        compress: !args.no_compress,
        before: args.before,
        after: args.after,
        force: args.force,
        stall_timeout: std::time::Duration::from_secs(args.stall_timeout),
        parts: flash::Parts {
            bootloader: args.bootloader.clone(),
            partition_table: args.partition_table.clone(),
        },
        ..FlashOptions::new(PathBuf::new())
    })
}

pub fn run_flash(args: FlashArgs, config: &Config, global: GlobalArgs) -> anyhow::Result<()> {
    // The image is checked before any board is touched.
    let image = match &args.image {
        Some(path) => FlashImage::from_file(path, None)?,
        None => FlashImage::Bundled,
    };
    let options = flash_options(&args, config)?;
    let ports = if args.all {
        many::esp_ports()?
    } else if args.port.len() > 1 {
        args.port
    } else {
        vec![serial_path(config, args.port.into_iter().next())?]
    };
    if args.all || ports.len() > 1 {
        return many::flash_boards(&ports, &options, &image, line_mode(&global));
    }
    let options = FlashOptions {
        port: ports.into_iter().next().unwrap_or_default(),
        ..options
    };
    let report = if line_mode(&global) {
        flash_lines(&options, &image)?
    } else {
        flash_bar(&options, &image)?
    };
    if !line_mode(&global) {
        print(format_args!(
            "Flashed {} bytes to the {} in {:.1} s.\n",
            report.bytes,
            flash::chip_name(report.chip),
            report.seconds
        ))?;
    }
    Ok(())
}

/// Headless: `flash! …` lines (docs/contract.md §2), one per percent.
pub fn flash_lines(
    options: &FlashOptions,
    image: &FlashImage,
) -> anyhow::Result<flash::FlashReport> {
    let mut stdout = std::io::stdout().lock();
    let mut last = String::new();
    Ok(flash::flash(options, image, &mut |event| {
        if let Some(line) = event.status_line()
            && line != last
        {
            let _ = writeln!(stdout, "flash! {line}");
            let _ = stdout.flush();
            last = line;
        }
    })?)
}

/// On a terminal: a progress bar per segment, with bytes/s and time left.
fn flash_bar(options: &FlashOptions, image: &FlashImage) -> anyhow::Result<flash::FlashReport> {
    use indicatif::{ProgressBar, ProgressStyle};
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:40.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let result = flash::flash(options, image, &mut |event| match event {
        FlashEvent::Connected {
            chip, flash_size, ..
        } => {
            // On a terminal; one that went away ends the flash at its next write, not here.
            let _ = writeln!(
                std::io::stdout(),
                "Connected: {}, {} flash",
                flash::chip_name(chip),
                flash::format_size(flash_size)
            );
        }
        FlashEvent::Segment { address, total } => {
            let segment = ProgressBar::new(total).with_style(style.clone());
            segment.set_message(format!("0x{address:x}"));
            bar = Some(segment);
        }
        FlashEvent::Progress { done, .. } => {
            if let Some(bar) = &bar {
                bar.set_position(done);
            }
        }
        FlashEvent::Verifying { address } => {
            if let Some(bar) = &bar {
                bar.set_message(format!("verify 0x{address:x}"));
            }
        }
        FlashEvent::SegmentDone { address, skipped } => {
            if let Some(bar) = bar.take() {
                if skipped {
                    bar.finish_with_message(format!("0x{address:x} unchanged, skipped"));
                } else {
                    bar.finish_with_message(format!("0x{address:x}"));
                }
            }
        }
        event @ (FlashEvent::OldOtadata { .. } | FlashEvent::NoPartitionTable) => {
            if let Some(line) = event.status_line() {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}{}",
                    line[..1].to_uppercase(),
                    &line[1..]
                );
            }
        }
        _ => {}
    });
    if let Some(bar) = bar.take() {
        bar.abandon();
    }
    Ok(result?)
}
