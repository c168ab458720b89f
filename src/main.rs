//! espchat's binary: parse the command line, load the settings, run one command.

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use espchat::config::{Config, ConfigError};

mod cli;
mod commands;

use cli::{Cli, Command, GlobalArgs, TuiArgs};
use commands::{
    completions, list_ports, man, probe_ports, run_board, run_connect, run_demo, run_flash,
    run_flash_and_connect, run_listen, run_monitor, run_tui,
};

fn main() -> ExitCode {
    let definition = Cli::command().after_help(settings_help());
    let matches = definition.clone().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ESPCHAT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let command = cli.command.unwrap_or(Command::Tui(TuiArgs::default()));
    let result = match command {
        // The virtual board and the port list need no settings: a broken config file must
        // not stop them.
        Command::Board(args) => run_board(args),
        Command::Ports(args) if args.probe => probe_ports(args.port),
        Command::Ports(_) => list_ports(),
        Command::Completions { shell } => completions(definition, shell),
        Command::Man { dir } => man(definition, dir.as_deref()),
        Command::Tui(args) => {
            with_config(cli.global, |config, global| run_tui(args, config, global))
        }
        Command::Demo(args) => {
            with_config(cli.global, |config, global| run_demo(args, config, global))
        }
        Command::Monitor(args) => with_config(cli.global, |config, global| {
            run_monitor(args, config, global)
        }),
        Command::Connect(args) => with_config(cli.global, |config, _| run_connect(args, config)),
        Command::Listen(args) => run_listen(args),
        Command::Flash(args) => {
            with_config(cli.global, |config, global| run_flash(args, config, global))
        }
        Command::FlashAndConnect(args) => with_config(cli.global, |config, global| {
            run_flash_and_connect(args, config, global)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever read stdout has gone (`espchat ports | head -1`): nothing left to say.
        Err(error) if closed_stdout(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("espchat: {error:#}");
            // A bad setting is a usage error, as a bad flag is (docs/contract.md §1).
            if error.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A write to stdout failed because nobody reads it any more (not some other broken pipe, such
/// as a board's port).
fn closed_stdout(error: &anyhow::Error) -> bool {
    let stdout = error
        .chain()
        .any(|cause| cause.to_string().starts_with("cannot write to stdout"));
    let broken_pipe = error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe)
    });
    stdout && broken_pipe
}

/// The end of `--help`: where settings come from, with this machine's config path.
fn settings_help() -> String {
    let path = Config::default_path().map_or_else(
        || "(no config directory on this system; use --config)".to_owned(),
        |path| path.display().to_string(),
    );
    format!(
        "Settings: flags win over the environment (ESPCHAT_PORT, ESPCHAT_BAUD, ESPCHAT_WIFI_SSID, \
         ESPCHAT_WIFI_PASSWORD), which wins over the config file, which wins over defaults.\n\
         Config file: {path}"
    )
}

/// Runs a command with the settings of the config file (`--config`, or the default one).
fn with_config(
    global: GlobalArgs,
    run: impl FnOnce(&Config, GlobalArgs) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let config = Config::load(global.config.as_deref())?;
    for warning in &config.warnings {
        eprintln!("espchat: warning: {warning}");
    }
    run(&config, global)
}
