use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use espchat::board::{Board, BoardConfig};
use tokio::signal::unix::{SignalKind, signal};

mod cli;

use cli::{BoardArgs, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ESPCHAT_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Board(args) => run_board(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("espchat: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_board(args: BoardArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        let mut board = Board::start(BoardConfig {
            tcp_port: args.tcp_port,
            link: args.link,
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
        eprintln!(
            "virtual ESP32-C3 running. Console: picocom {serial}   Chat: nc 127.0.0.1 {port}   Stop: Ctrl-C"
        );
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
            _ = board.wait() => anyhow::bail!("the virtual board's serial console failed"),
        }
        board.stop().await;
        Ok(())
    })
}
