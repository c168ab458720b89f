//! `espchat flash-and-connect -p A -p B ...` / `--all`: a class of boards. All are flashed at
//! once (unless `--no-flash`), then every console is watched and provisioned, and the roll is
//! printed as each board comes up: `roll! K PORT MAC HOST:PORT`, or why not. `--roster FILE`
//! keeps it as CSV. `@blink K` on stdin has board K flash its LED.

use std::path::{Path, PathBuf};
use std::time::Duration;

use espchat::config::{Config, WifiCredentials};
use espchat::flash::{FlashImage, FlashOptions};
use espchat::roll::{Roll, RollBoard, RollCommand, RollEvent};
use espchat::session::{Server, SessionConfig};
use tokio::io::AsyncBufReadExt as _;

use super::flashing::{flash_options, many};
use super::{block_on, line_mode, print};
use crate::cli::{FlashAndConnectArgs, GlobalArgs};

/// One row of the roll.
struct Entry {
    port: PathBuf,
    mac: Option<String>,
    /// `Ok(host:port)` once up; `Err(reason)` once failed; `None` while waiting.
    result: Option<Result<String, String>>,
}

pub fn run_roll_call(
    args: FlashAndConnectArgs,
    wifi: Option<WifiCredentials>,
    config: &Config,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    let ports = if args.flash.all {
        many::esp_ports()?
    } else {
        args.flash.port.clone()
    };
    let image = match &args.flash.image {
        Some(image) => FlashImage::from_file(image, None)?,
        None => FlashImage::Bundled,
    };
    let options = flash_options(&args.flash, config)?;
    let lines = line_mode(global);
    let mut entries: Vec<Entry> = if args.no_flash {
        // The ROM loader says each board's MAC, and resetting back into the app has it print
        // its address again.
        probe_macs(&ports, &options)
    } else {
        many::flash_each(&ports, &options, &image, lines)?
            .into_iter()
            .zip(&ports)
            .map(|(result, port)| Entry {
                port: port.clone(),
                mac: result.as_ref().ok().and_then(|report| report.mac.clone()),
                result: result
                    .err()
                    .map(|error| Err(format!("flashing failed: {error}"))),
            })
            .collect()
    };
    let baud = config.monitor_baud(args.monitor_baud);
    let session = SessionConfig {
        panes: 0,
        server: Server::Board,
        wifi,
        led: args.led,
        // Provision once the firmware reads its console: flashed, or reset by the probe.
        flashed: true,
        ip_timeout: Some(Duration::from_secs(args.ip_timeout)),
        any_address: args.any_address,
    };
    let line_ending = config.line_ending(None);
    block_on(async move {
        let watched: Vec<usize> = (0..entries.len())
            .filter(|&k| entries[k].result.is_none())
            .collect();
        for (k, entry) in entries.iter().enumerate() {
            if let Some(Err(reason)) = &entry.result {
                say(k, entry, &format!("failed: {reason}"))?;
            }
        }
        let boards = watched
            .iter()
            .map(|&k| RollBoard {
                port: entries[k].port.clone(),
                mac: entries[k].mac.clone(),
                serial: espchat::serial::SerialOptions {
                    path: entries[k].port.clone(),
                    baud,
                    line_ending,
                    hex: false,
                    log_file: None,
                    decoding: Default::default(),
                },
            })
            .collect();
        let mut roll = Roll::start(boards, session);
        let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut input_open = true;
        let mut announced = false;
        loop {
            let all_in = entries.iter().all(|entry| entry.result.is_some());
            if all_in && !announced {
                announced = true;
                finish_roll(&entries, args.roster.as_deref())?;
            }
            if all_in && !input_open {
                break;
            }
            tokio::select! {
                event = roll.events.recv(), if !roll.is_empty() => {
                    let Some(event) = event else { break };
                    let (index, text) = match event {
                        RollEvent::Up { index, host, port } => {
                            let address = format!("{host}:{port}");
                            entries[watched[index]].result = Some(Ok(address.clone()));
                            (index, address)
                        }
                        RollEvent::Failed { index, reason } => {
                            entries[watched[index]].result = Some(Err(reason.clone()));
                            (index, format!("failed: {reason}"))
                        }
                        RollEvent::Note { index, text } => (index, text),
                    };
                    let k = watched[index];
                    say(k, &entries[k], &text)?;
                }
                line = stdin.next_line(), if input_open => match line {
                    Ok(Some(line)) => command(&line, &roll, &watched, &entries).await?,
                    Ok(None) | Err(_) => input_open = false,
                },
            }
        }
        let failed = entries
            .iter()
            .filter(|entry| matches!(entry.result, Some(Err(_))))
            .count();
        if failed > 0 {
            anyhow::bail!(
                "{failed} of {} boards did not come up (see above)",
                entries.len()
            );
        }
        Ok(())
    })
}

/// Asks each board's ROM loader for its MAC, all at once; the boards go back to their app.
fn probe_macs(ports: &[PathBuf], options: &FlashOptions) -> Vec<Entry> {
    std::thread::scope(|scope| {
        let probes: Vec<_> = ports
            .iter()
            .map(|port| {
                let options = FlashOptions {
                    port: port.clone(),
                    ..options.clone()
                };
                scope.spawn(move || espchat::flash::detect_chip(&options))
            })
            .collect();
        ports
            .iter()
            .zip(probes)
            .map(|(port, probe)| {
                let info = probe.join().ok().and_then(Result::ok);
                Entry {
                    port: port.clone(),
                    mac: info.and_then(|info| info.mac),
                    result: None,
                }
            })
            .collect()
    })
}

/// `roll! K PORT MAC text`: K counts from 1 in the order the ports were given.
fn say(k: usize, entry: &Entry, text: &str) -> anyhow::Result<()> {
    print(format_args!(
        "roll! {} {} {} {}\n",
        k + 1,
        entry.port.display(),
        entry.mac.as_deref().unwrap_or("-"),
        clean(text)
    ))
}

fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A stdin line: `@blink K`, `@quit`.
async fn command(
    line: &str,
    roll: &Roll,
    watched: &[usize],
    entries: &[Entry],
) -> anyhow::Result<()> {
    let line = line.trim();
    if line.is_empty() || line == "@quit" {
        return Ok(());
    }
    let board = line
        .strip_prefix("@blink ")
        .and_then(|k| k.trim().parse::<usize>().ok())
        .filter(|&k| k >= 1 && k <= entries.len());
    let Some(k) = board else {
        return print(format_args!(
            "error! unknown command {:?}: use @blink K (K from 1 to {}), @quit\n",
            clean(line),
            entries.len()
        ));
    };
    let asked = match watched.iter().position(|&w| w == k - 1) {
        Some(index) => roll.command(index, RollCommand::Blink).await,
        None => false,
    };
    let text = if asked {
        "asked to blink".to_owned()
    } else {
        "cannot blink: its console is not open (see above)".to_owned()
    };
    say(k - 1, &entries[k - 1], &text)
}

/// Every board is up or failed: the table, and the roster file.
fn finish_roll(entries: &[Entry], roster: Option<&Path>) -> anyhow::Result<()> {
    let up = entries
        .iter()
        .filter(|entry| matches!(entry.result, Some(Ok(_))))
        .count();
    print(format_args!(
        "roll! {up} of {} boards up{}\n",
        entries.len(),
        if up < entries.len() {
            "; the others said why above"
        } else {
            ""
        }
    ))?;
    for (k, entry) in entries.iter().enumerate() {
        let status = match &entry.result {
            Some(Ok(address)) => address.clone(),
            Some(Err(_)) => "failed".to_owned(),
            None => "-".to_owned(),
        };
        print(format_args!(
            "roll! {:>3}  {:<20} {:<18} {status}\n",
            k + 1,
            entry.port.display(),
            entry.mac.as_deref().unwrap_or("-"),
        ))?;
    }
    if let Some(path) = roster {
        write_roster(path, entries)?;
        print(format_args!("roll! roster written to {}\n", path.display()))?;
    }
    Ok(())
}

/// The roll as CSV: `board,port,mac,ip,tcp_port,status`, one row per board.
fn write_roster(path: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let write = || -> Result<(), csv::Error> {
        let mut writer = csv::Writer::from_path(path)?;
        writer.write_record(["board", "port", "mac", "ip", "tcp_port", "status"])?;
        for (k, entry) in entries.iter().enumerate() {
            let (ip, tcp_port, status) = match &entry.result {
                Some(Ok(address)) => match address.rsplit_once(':') {
                    Some((ip, port)) => (ip.to_owned(), port.to_owned(), "up".to_owned()),
                    None => (address.clone(), String::new(), "up".to_owned()),
                },
                Some(Err(reason)) => (String::new(), String::new(), reason.clone()),
                None => (String::new(), String::new(), "no answer".to_owned()),
            };
            writer.write_record([
                (k + 1).to_string(),
                entry.port.display().to_string(),
                entry.mac.clone().unwrap_or_default(),
                ip,
                tcp_port,
                status,
            ])?;
        }
        writer.flush()?;
        Ok(())
    };
    write().map_err(|error| anyhow::anyhow!("cannot write the roster {}: {error}", path.display()))
}
