//! `espchat flash -p A -p B ...` and `--all`: every board at once, a thread each (espflash is
//! blocking), their progress gathered on one channel and shown by this thread alone: a bar per
//! board on a terminal, `flashK!` lines in line mode. One board failing never stops the others;
//! a table at the end says how each went.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use espchat::flash::{self, FlashError, FlashEvent, FlashImage, FlashOptions, FlashReport};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::commands::print;

/// Every port that looks like an ESP board, for `--all`.
pub fn esp_ports() -> anyhow::Result<Vec<PathBuf>> {
    let ports = crate::commands::esp_ports()?;
    if ports.is_empty() {
        anyhow::bail!(
            "--all found no ESP-looking serial port (`espchat ports` lists them all): plug the \
             boards in with data cables, or name the ports with -p A -p B"
        );
    }
    Ok(ports)
}

enum Message {
    Event(FlashEvent),
    Finished(Result<FlashReport, FlashError>),
}

/// Flashes `image` to every board in `ports` at once with `options` (its port aside); fails
/// when any board failed (each is named in the summary).
pub fn flash_boards(
    ports: &[PathBuf],
    options: &FlashOptions,
    image: &FlashImage,
    lines: bool,
) -> anyhow::Result<()> {
    let results = flash_each(ports, options, image, lines)?;
    let failed = results.iter().filter(|result| result.is_err()).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} boards failed (see above)", results.len());
    }
    Ok(())
}

/// Flashes every board at once, shows the progress and the summary, and returns how each
/// went, in the order of `ports`.
pub fn flash_each(
    ports: &[PathBuf],
    options: &FlashOptions,
    image: &FlashImage,
    lines: bool,
) -> anyhow::Result<Vec<Result<FlashReport, String>>> {
    let (tx, rx) = mpsc::channel::<(usize, Message)>();
    let mut view = if lines {
        View::Lines(vec![String::new(); ports.len()])
    } else {
        View::Bars(Bars::new(ports))
    };
    let mut results: Vec<Option<Result<FlashReport, FlashError>>> =
        ports.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        for (index, port) in ports.iter().enumerate() {
            let tx = tx.clone();
            let options = FlashOptions {
                port: port.clone(),
                ..options.clone()
            };
            scope.spawn(move || {
                let result = flash::flash(&options, image, &mut |event| {
                    let _ = tx.send((index, Message::Event(event)));
                });
                let _ = tx.send((index, Message::Finished(result)));
            });
        }
        drop(tx);
        for (index, message) in rx {
            match message {
                Message::Event(event) => view.event(index, &event),
                Message::Finished(result) => {
                    view.finished(index, &result);
                    results[index] = Some(result);
                }
            }
        }
    });
    view.close();
    let results: Vec<(&Path, Result<FlashReport, String>)> = ports
        .iter()
        .map(PathBuf::as_path)
        .zip(results.into_iter().map(|result| match result {
            Some(result) => result.map_err(|error| format!("{error:#}")),
            // Every thread sends its result; a panic is the only way to miss one.
            None => Err("the flashing thread stopped (a bug: please report it)".to_owned()),
        }))
        .collect();
    print(format_args!("{}", summary(&results, lines)))?;
    Ok(results.into_iter().map(|(_, result)| result).collect())
}

/// The table at the end: port, chip, MAC, result, seconds; then each failure in full. In line
/// mode every line is a `flash!` status line.
fn summary(results: &[(&Path, Result<FlashReport, String>)], lines: bool) -> String {
    let mut rows = vec![format!(
        "{:<20} {:<10} {:<18} {:<7} {:>7}",
        "PORT", "CHIP", "MAC", "RESULT", "SECONDS"
    )];
    for (port, result) in results {
        rows.push(match result {
            Ok(report) => format!(
                "{:<20} {:<10} {:<18} {:<7} {:>7.1}",
                port.display(),
                flash::chip_name(report.chip),
                report.mac.as_deref().unwrap_or("-"),
                "ok",
                report.seconds
            ),
            Err(_) => format!(
                "{:<20} {:<10} {:<18} {:<7} {:>7}",
                port.display(),
                "-",
                "-",
                "failed",
                "-"
            ),
        });
    }
    for (port, result) in results {
        if let Err(error) = result {
            rows.push(format!("{}: {error}", port.display()));
        }
    }
    let mut out = String::new();
    for row in rows {
        let _ = if lines {
            writeln!(out, "flash! {}", row.trim_end())
        } else {
            writeln!(out, "{}", row.trim_end())
        };
    }
    out
}

enum View {
    /// Line mode: the last status line of each board, so that a percentage is said once.
    Lines(Vec<String>),
    Bars(Bars),
}

impl View {
    fn event(&mut self, index: usize, event: &FlashEvent) {
        match self {
            View::Lines(last) => {
                if let Some(line) = event.status_line()
                    && line != last[index]
                {
                    say(index, &line);
                    last[index] = line;
                }
            }
            View::Bars(bars) => bars.event(index, event),
        }
    }

    fn finished(&mut self, index: usize, result: &Result<FlashReport, FlashError>) {
        match self {
            View::Lines(_) => {
                if let Err(error) = result {
                    say(index, &format!("failed: {error:#}"));
                }
            }
            View::Bars(bars) => bars.finished(index, result),
        }
    }

    fn close(self) {
        if let View::Bars(bars) = self {
            drop(bars.multi);
        }
    }
}

/// `flashK! text`, K counting boards from 1 in the order given.
fn say(index: usize, text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "flash{}! {text}", index + 1);
    let _ = stdout.flush();
}

/// A progress bar per board, the port in front.
struct Bars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl Bars {
    fn new(ports: &[PathBuf]) -> Bars {
        let style = ProgressStyle::with_template(
            "{prefix:<16} {msg:<14} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let multi = MultiProgress::new();
        let bars = ports
            .iter()
            .map(|port| {
                let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
                bar.set_prefix(port.display().to_string());
                bar.set_message("connecting");
                bar
            })
            .collect();
        Bars { multi, bars }
    }

    fn event(&self, index: usize, event: &FlashEvent) {
        let bar = &self.bars[index];
        match event {
            FlashEvent::Connected { chip, .. } => bar.set_message(flash::chip_name(*chip)),
            FlashEvent::Segment { address, total } => {
                bar.set_length(*total);
                bar.set_position(0);
                bar.set_message(format!("0x{address:x}"));
            }
            FlashEvent::Progress { done, .. } => bar.set_position(*done),
            FlashEvent::Verifying { address } => bar.set_message(format!("verify 0x{address:x}")),
            FlashEvent::NoPartitionTable | FlashEvent::OldOtadata { .. } => {
                if let Some(line) = event.status_line() {
                    let _ = self.multi.println(format!("{}: {line}", bar.prefix()));
                }
            }
            _ => {}
        }
    }

    fn finished(&self, index: usize, result: &Result<FlashReport, FlashError>) {
        let bar = &self.bars[index];
        match result {
            Ok(report) => bar.finish_with_message(format!("done {:.1} s", report.seconds)),
            Err(_) => bar.abandon_with_message("failed"),
        }
    }
}
