//! Line mode with several boards (`monitor -p A -p B`, `tui --headless -p A -p B`): a session
//! per board, all at once, on one stdout. Board K's sources are numbered (docs/contract.md
//! §2): `serialK|`, `serialK!`, `boardK!`, `traceK!`, `errorK!`, and its panes `chatK.N`.
//! stdin: `@serialK text`, `@K.N text`, `@all text` (every pane of every board), `@quit`.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::mpsc;

use super::{HeadlessError, Next, PARTIAL_IDLE, Printer, carry_out, pane_number};
use crate::event::Event;
use crate::serial::SerialCommand;
use crate::session::{Actors, Session, SessionConfig, UserCommand};

/// One board of a line-mode session.
pub struct HeadlessBoard {
    pub session: SessionConfig,
    pub actors: Actors,
    pub events: mpsc::Receiver<Event>,
}

/// stdout, shared by the boards' printers: one task writes, whole lines at a time.
#[derive(Clone)]
struct Shared(Arc<Mutex<io::BufWriter<io::Stdout>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

struct Run {
    session: Session,
    actors: Actors,
    events: mpsc::Receiver<Event>,
    printer: Printer<Shared>,
    done: bool,
}

/// The next event of any board, taking the boards in turn from `first` so that a flooding
/// console does not starve the others; `None` once every board's channel has closed.
async fn next_event(runs: &mut [Run], first: &mut usize) -> Option<(usize, Event)> {
    std::future::poll_fn(|cx| {
        let count = runs.len();
        let mut open = false;
        for step in 0..count {
            let index = (*first + step) % count;
            match runs[index].events.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    *first = (index + 1) % count;
                    return Poll::Ready(Some((index, event)));
                }
                Poll::Ready(None) => {}
                Poll::Pending => open = true,
            }
        }
        if open {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    })
    .await
}

/// Runs every board's session until input ends (and each has delivered) or Ctrl-C. Fails
/// when a board never showed its address (each said why on its `errorK!` line).
pub async fn run_boards(boards: Vec<HeadlessBoard>, timestamps: bool) -> Result<(), HeadlessError> {
    let mut stdout = Shared(Arc::new(Mutex::new(io::BufWriter::with_capacity(
        64 * 1024,
        io::stdout(),
    ))));
    let mut runs = Vec::new();
    let mut failed = 0;
    for (index, board) in boards.into_iter().enumerate() {
        let HeadlessBoard {
            session,
            mut actors,
            events,
        } = board;
        let (session, start) = Session::start(session, Instant::now());
        let mut printer = Printer::new(stdout.clone(), timestamps, Some(index + 1));
        let done = settle(
            carry_out(&mut actors, start, &mut printer).await,
            &mut failed,
        )?;
        runs.push(Run {
            session,
            actors,
            events,
            printer,
            done,
        });
    }
    let mut first = 0;
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut input = Vec::new();
    let mut input_open = true;
    let mut interrupt = crate::signals::Interrupt::catch()?;
    let mut tick = tokio::time::interval(PARTIAL_IDLE / 2);
    while !runs.iter().all(|run| run.done) {
        tokio::select! {
            event = next_event(&mut runs, &mut first) => {
                let Some((index, event)) = event else { break };
                let run = &mut runs[index];
                let dos = run.session.event(&event, Instant::now());
                let result = carry_out(&mut run.actors, dos, &mut run.printer).await;
                run.done |= settle(result, &mut failed)?;
                run.printer.event(event)?;
            }
            read = stdin.read_until(b'\n', &mut input), if input_open => {
                let commands = match read {
                    Ok(0) | Err(_) => finish_all(&runs),
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&input)
                            .trim_end_matches(['\r', '\n'])
                            .to_owned();
                        input.clear();
                        parse(&line, &runs, &mut stdout)?
                    }
                };
                for (index, command) in commands {
                    input_open &= !matches!(command, UserCommand::Finish);
                    let run = &mut runs[index];
                    let dos = run.session.command(command, Instant::now());
                    let result = carry_out(&mut run.actors, dos, &mut run.printer).await;
                    run.done |= settle(result, &mut failed)?;
                }
            }
            _ = interrupt.recv() => break,
            _ = tick.tick() => {
                for run in &mut runs {
                    run.printer.stale_partials()?;
                    let dos = run.session.tick(Instant::now());
                    let result = carry_out(&mut run.actors, dos, &mut run.printer).await;
                    run.done |= settle(result, &mut failed)?;
                }
            }
        }
        stdout.flush()?;
    }
    // Each console's last words (a line it could not send, a last short hex row) come once
    // it has stopped.
    for run in &mut runs {
        run.actors.close_console().await;
        while let Ok(event) = run.events.try_recv() {
            run.printer.event(event)?;
        }
        run.printer.all_partials()?;
    }
    stdout.flush()?;
    if failed > 0 {
        return Err(HeadlessError::NoAddress(format!(
            "{failed} of {} boards showed no address (each said why above)",
            runs.len()
        )));
    }
    Ok(())
}

/// Whether a board's session is done after carrying out its decisions; a board that never
/// showed its address is done, and counted.
fn settle(result: Result<Next, HeadlessError>, failed: &mut usize) -> Result<bool, HeadlessError> {
    match result {
        Ok(Next::Go) => Ok(false),
        Ok(Next::Stop) => Ok(true),
        Err(HeadlessError::NoAddress(_)) => {
            *failed += 1;
            Ok(true)
        }
        Err(error) => Err(error),
    }
}

fn finish_all(runs: &[Run]) -> Vec<(usize, UserCommand)> {
    (0..runs.len())
        .filter(|&index| !runs[index].done)
        .map(|index| (index, UserCommand::Finish))
        .collect()
}

/// One stdin line as commands for the boards; an unknown one gets an `error!` line.
fn parse(line: &str, runs: &[Run], stdout: &mut Shared) -> io::Result<Vec<(usize, UserCommand)>> {
    let (target, text) = match line.split_once(' ') {
        Some((target, text)) => (target, text.to_owned()),
        None => (line, String::new()),
    };
    if target == "@quit" {
        return Ok(finish_all(runs));
    }
    if target == "@all" {
        return Ok((0..runs.len())
            .filter(|&index| runs[index].session.pane_ids().next().is_some())
            .map(|index| (index, UserCommand::SendAll(text.clone())))
            .collect());
    }
    if line.trim().is_empty() {
        return Ok(Vec::new());
    }
    let board_at = |number: &str| {
        pane_number(&format!("@{number}"))
            .and_then(|board| board.checked_sub(1))
            .filter(|&index| index < runs.len())
    };
    let command = if let Some(board) = target.strip_prefix("@serial").and_then(board_at) {
        runs[board]
            .actors
            .has_console()
            .then_some((board, UserCommand::Serial(SerialCommand::Line(text))))
    } else {
        target
            .strip_prefix('@')
            .and_then(|rest| rest.split_once('.'))
            .and_then(|(board, pane)| Some((board_at(board)?, pane_number(&format!("@{pane}"))?)))
            .filter(|(board, pane)| runs[*board].session.pane_ids().any(|id| id == *pane))
            .map(|(board, pane)| (board, UserCommand::Send(pane, text)))
    };
    match command {
        Some(command) => Ok(vec![command]),
        None => {
            let has_panes = runs
                .iter()
                .any(|run| run.session.pane_ids().next().is_some());
            let panes = if has_panes {
                "@K.N text, @all text, "
            } else {
                ""
            };
            writeln!(
                stdout,
                "error! unknown command {:?}: use {panes}@serialK text, @quit (K: the board, \
                 1 to {})",
                crate::serial::decode::sanitize(target.as_bytes()),
                runs.len()
            )?;
            Ok(Vec::new())
        }
    }
}
