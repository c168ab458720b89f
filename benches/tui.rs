//! TUI benchmark (issue 5): how long a frame takes with full scrollbacks, what the TUI costs
//! while idle and while a fast console streams in, how soon the first frame shows, and how
//! long `espchat demo` takes from start to two connected chat panes. Numbers, not pass/fail:
//! it prints a table, the goals and footnotes.
//!
//! 1. Frames in-process: an [`App`] with 8 chat panes x 10,000 lines and 10,000 serial lines,
//!    rendered at 200x60 into a ratatui `Buffer` 500 times, each frame timed on its own; also
//!    with new lines arriving between frames (`handle_event` then render, both timed) and
//!    through `Terminal<TestBackend>::draw` (which adds ratatui's buffer diff).
//! 2. and 3. `espchat tui -p PTY` runs in a private tmux server (its own socket, no config) at
//!    200x60 against a pty pair the bench holds (master, plus a raw slave fd of its own that it
//!    never reads). CPU is the process's utime + stime from /proc/PID/stat over 10 s: idle
//!    (nothing written), then with ESP-IDF style log text written into the master at 1 MB/s in
//!    10 ms slices, a marker line at the end that must show on the tmux screen.
//! 4. Start to first frame: a fresh pty and tmux session per run, capture-pane polled until
//!    the status line (` espchat …`) shows; a session running `printf` gives the floor (tmux and
//!    polling alone).
//! 5. `espchat demo` in tmux: start until `Client 2 connected` shows, against the line-rate
//!    floor of the bundled image at the demo's baud rates.
//!
//! Every process the bench starts lives in its tmux server, which is killed at the end (also
//! on panic); the espchat processes are killed by pid if a hang-up did not end them.
// Ptys and the peers it compares against (tio, picocom, nc, esptool): Unix only.
#![cfg_attr(not(unix), no_main)]
#![cfg(unix)]

mod support;
#[path = "../tests/support/tmux.rs"]
mod tmux;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget as _;

use espchat::app::keys::KeyTable;
use espchat::app::{App, AppConfig};
use espchat::chat::ChatEvent;
use espchat::event::Event;
use espchat::serial::decode::Style;
use espchat::serial::{ConsoleDecoder, ConsoleOutput, SerialEvent, StyledLine};

use support::table::{Table, fmt_latency, fmt_ratio, verdict};
use support::{Bench, Pty, nanos, percentile};
use tmux::{Session, Tmux};

const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
const PANES: usize = 8;
/// Per pane and for the serial console (the scrollback's cap).
const LINES: usize = 10_000;
const FRAMES: usize = 500;
const WARMUP_FRAMES: usize = 100;
/// 1 MB/s of ~80-byte lines at the TUI's 30 frames a second.
const BURST_LINES: usize = 420;

/// How long the CPU windows last, and how long the TUI gets to settle before one.
const CPU_WINDOW: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(2);
const STREAM_RATE: usize = 1_000_000;
const SLICE: Duration = Duration::from_millis(10);
const MARKER: &str = "bench: last line, marker 5eed";

const FIRST_FRAME_RUNS: usize = 5;
const DEMO_RUNS: usize = 3;
const POLL: Duration = Duration::from_millis(2);

/// Goals (issue 5).
const FRAME_P99_GOAL: Duration = Duration::from_millis(4);
const IDLE_CPU_GOAL: f64 = 1.0;
const FIRST_FRAME_GOAL: Duration = Duration::from_millis(150);

/// The demo's rates: the stub goes up at the ROM's 115200, the image at 921600.
const ROM_BAUD: f64 = 115_200.0;
const FLASH_BAUD: f64 = 921_600.0;
/// espflash 4.7's ESP32-C3 stub (resources/stubs/esp32c3.toml): text 5880 + data 204 bytes.
const STUB_BYTES: usize = 5_880 + 204;

fn main() {
    let bench = Bench::start(
        "tui benchmark: frames in-process; idle, streaming, first frame and demo in tmux",
    );
    println!();

    let frames = bench_frames();

    let binary = PathBuf::from(env!("CARGO_BIN_EXE_espchat"));
    // TUI_BENCH_FRAMES_ONLY=1: the in-process frames alone, a quick look.
    let frames_only = std::env::var_os("TUI_BENCH_FRAMES_ONLY").is_some_and(|value| value == "1");
    let tmux = match support::find_on_path("tmux") {
        _ if frames_only => None,
        Some(_) => Some(Tmux::new(format!(
            "espchat-tui-bench-{}",
            std::process::id()
        ))),
        None => {
            println!("tmux: not on PATH, the process measurements are skipped (apt install tmux)");
            None
        }
    };
    let (idle, stream, first, demo) = match &tmux {
        Some(tmux) => {
            let idle = report("idle CPU", bench_idle(tmux, &binary));
            let stream = report("1 MB/s CPU", bench_stream(tmux, &binary));
            let first = report("first frame", bench_first_frame(tmux, &binary));
            let demo = report("demo", bench_demo(tmux, &binary));
            (idle, stream, first, demo)
        }
        None => (None, None, None, None),
    };
    drop(tmux);

    print_table(
        &frames,
        idle.as_ref(),
        stream.as_ref(),
        first.as_ref(),
        demo.as_ref(),
    );
    bench.finish();
}

fn report<T>(what: &str, result: Result<T, String>) -> Option<T> {
    result
        .map_err(|error| println!("{what}: FAILED: {error}"))
        .ok()
}

// ---------------------------------------------------------------------------------------------
// 1. Frames

struct FrameRow {
    name: &'static str,
    /// Sorted nanoseconds, wall clock.
    samples: Vec<u64>,
    /// Sorted nanoseconds, the thread's CPU time over the same spans.
    cpu: Vec<u64>,
}

impl FrameRow {
    fn new(name: &'static str, (samples, cpu): (Vec<u64>, Vec<u64>)) -> FrameRow {
        FrameRow { name, samples, cpu }
    }

    fn p(&self, p: f64) -> Option<u64> {
        percentile(&self.samples, p)
    }
}

fn bench_frames() -> Vec<FrameRow> {
    let text = support::esp_log_text(4 << 20, false);
    let serial_lines = decode(&text);
    let chat_lines = chat_lines(4096);
    let fill = Instant::now();
    let mut app = App::new(AppConfig {
        panes: PANES,
        keys: KeyTable::default(),
        ..AppConfig::default()
    });
    app.tick(Instant::now());
    app.set_board("/dev/pts/0".to_owned(), Some("ESP32-C3".to_owned()));
    for line in serial_lines.iter().cycle().take(LINES) {
        app.handle_event(&serial_event(line));
    }
    for id in 1..=PANES {
        app.handle_event(&Event::Chat(
            id,
            ChatEvent::Connected {
                addr: "127.0.0.1:5000".to_owned(),
            },
        ));
        for n in 0..LINES {
            let line = &chat_lines[(n + id * 131) % chat_lines.len()];
            app.handle_event(&chat_event(id, line));
        }
    }
    println!(
        "frames: {PANES} panes x {LINES} lines + {LINES} serial lines filled in {:.2} s; \
         {FRAMES} frames at {WIDTH}x{HEIGHT} per row",
        fill.elapsed().as_secs_f64()
    );

    let area = Rect::new(0, 0, WIDTH, HEIGHT);
    let mut buffer = Buffer::empty(area);
    let mut rows = Vec::new();
    // The lines that arrive between frames: the console and the panes in turn.
    let mut next = 0usize;
    let mut arrive = |app: &mut App| {
        let target = next % (PANES + 1);
        let event = if target == 0 {
            serial_event(&serial_lines[next % serial_lines.len()])
        } else {
            chat_event(target, &chat_lines[next % chat_lines.len()])
        };
        next += 1;
        app.handle_event(&event);
    };

    rows.push(FrameRow::new(
        "render",
        time_frames(|| {
            buffer.reset();
            app.tick(Instant::now());
            timed(|| (&app).render(area, &mut buffer))
        }),
    ));
    rows.push(FrameRow::new(
        "1 line + render",
        time_frames(|| {
            buffer.reset();
            app.tick(Instant::now());
            timed(|| {
                arrive(&mut app);
                (&app).render(area, &mut buffer);
            })
        }),
    ));
    let mut burst = 0usize;
    rows.push(FrameRow::new(
        "420 lines + render",
        time_frames(|| {
            buffer.reset();
            app.tick(Instant::now());
            timed(|| {
                for _ in 0..BURST_LINES {
                    app.handle_event(&serial_event(&serial_lines[burst % serial_lines.len()]));
                    burst += 1;
                }
                (&app).render(area, &mut buffer);
            })
        }),
    ));
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test terminal");
    rows.push(FrameRow::new(
        "1 line + draw",
        time_frames(|| {
            app.tick(Instant::now());
            timed(|| {
                arrive(&mut app);
                terminal
                    .draw(|frame| frame.render_widget(&app, frame.area()))
                    .expect("draw");
            })
        }),
    ));
    for row in &rows {
        println!(
            "  {}: p50 {}, p99 {}, max {}; CPU p50 {}, p99 {}",
            row.name,
            fmt_latency(row.p(50.0)),
            fmt_latency(row.p(99.0)),
            fmt_latency(row.samples.last().copied()),
            fmt_latency(percentile(&row.cpu, 50.0)),
            fmt_latency(percentile(&row.cpu, 99.0))
        );
    }
    println!();
    rows
}

/// Runs `frame` (which returns [`timed`]'s pair) for the warm-up and then `FRAMES` times:
/// the sorted wall and CPU nanoseconds.
fn time_frames(mut frame: impl FnMut() -> (Duration, Duration)) -> (Vec<u64>, Vec<u64>) {
    for _ in 0..WARMUP_FRAMES {
        frame();
    }
    let (mut wall, mut cpu): (Vec<u64>, Vec<u64>) = (0..FRAMES)
        .map(|_| {
            let (wall, cpu) = frame();
            (nanos(wall), nanos(cpu))
        })
        .unzip();
    wall.sort_unstable();
    cpu.sort_unstable();
    (wall, cpu)
}

/// Wall time and this thread's CPU time of `work`.
fn timed(work: impl FnOnce()) -> (Duration, Duration) {
    let cpu = thread_cpu();
    let start = Instant::now();
    work();
    let wall = start.elapsed();
    (wall, thread_cpu().saturating_sub(cpu))
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through the pointer, valid for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn serial_event(line: &StyledLine) -> Event {
    Event::Serial(SerialEvent::Output(ConsoleOutput::Line(line.clone())))
}

fn chat_event(id: usize, line: &StyledLine) -> Event {
    Event::Chat(id, ChatEvent::Output(ConsoleOutput::Line(line.clone())))
}

/// The log text through the console's own decoder: the lines (and their colour spans) the
/// serial pane gets from a real board.
fn decode(text: &[u8]) -> Vec<StyledLine> {
    let mut decoder = ConsoleDecoder::new(4096);
    let mut lines = Vec::new();
    decoder.feed(text, &mut |output| {
        if let ConsoleOutput::Line(line) = output {
            lines.push(line);
        }
    });
    lines
}

/// What chat panes show: the board's broadcasts, plain text.
fn chat_lines(count: usize) -> Vec<StyledLine> {
    const WORDS: &[&str] = &[
        "hello",
        "from",
        "the",
        "lab",
        "bench",
        "LED",
        "on",
        "off",
        "switching",
        "message",
        "number",
        "ok",
        "thanks",
        "again",
        "please",
        "check",
        "the",
        "board",
        "uptime",
        "wifi",
    ];
    let mut rng = fastrand::Rng::with_seed(0xc4a7);
    (0..count)
        .map(|_| {
            let client = rng.u32(1..9);
            let words = rng.usize(3..14);
            let mut text = format!("Client {client}:");
            for _ in 0..words {
                text.push(' ');
                text.push_str(WORDS[rng.usize(0..WORDS.len())]);
            }
            StyledLine::new(text, Style::default())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// tmux and ptys

/// The tmux server's process id.
fn server_pid(tmux: &Tmux) -> Option<u32> {
    String::from_utf8_lossy(&tmux.run(&["display-message", "-p", "#{pid}"]).ok()?.stdout)
        .trim()
        .parse()
        .ok()
}

/// Whether the session's program still runs.
fn alive(session: &Session) -> bool {
    support::cpu_time(session.pid).is_some() && !session.dead_in_tmux()
}

/// Whatever the program wrote to the port, thrown away, so that it never blocks.
fn drain(pty: &Pty) {
    let mut scratch = [0u8; 4096];
    while matches!(nix::unistd::read(&pty.master, &mut scratch), Ok(n) if n > 0) {}
}

/// `espchat tui -p PTY` in a new session, after its first frame.
fn start_tui<'a>(
    tmux: &'a Tmux,
    binary: &Path,
    pty: &Pty,
    name: &str,
) -> Result<(Session<'a>, Duration), String> {
    let start = Instant::now();
    let session = tmux.start(
        name,
        (WIDTH, HEIGHT),
        &format!("'{}' tui -p '{}'", binary.display(), pty.path.display()),
    )?;
    let (first, _) = session.wait_for(start, Duration::from_secs(10), POLL, status_shown)?;
    Ok((session, first))
}

fn status_shown(screen: &str) -> bool {
    screen
        .lines()
        .next()
        .is_some_and(|line| line.trim_start().starts_with("espchat"))
}

/// CPU of the TUI and of the tmux server over a window, in percent of one core.
struct CpuWindow {
    tui: f64,
    tmux: Option<f64>,
}

fn cpu_window(session: &Session, work: impl FnOnce()) -> Result<CpuWindow, String> {
    let server = server_pid(session.tmux);
    let tui_before = support::cpu_time(session.pid).ok_or("cannot read /proc/PID/stat")?;
    let tmux_before = server.and_then(support::cpu_time);
    let start = Instant::now();
    work();
    let elapsed = start.elapsed().as_secs_f64();
    let tui_after = support::cpu_time(session.pid).ok_or("the TUI exited during the window")?;
    let tmux_after = server.and_then(support::cpu_time);
    let percent = |before: Duration, after: Duration| {
        100.0 * after.saturating_sub(before).as_secs_f64() / elapsed
    };
    Ok(CpuWindow {
        tui: percent(tui_before, tui_after),
        tmux: tmux_before.zip(tmux_after).map(|(b, a)| percent(b, a)),
    })
}

// ---------------------------------------------------------------------------------------------
// 2. Idle

fn bench_idle(tmux: &Tmux, binary: &Path) -> Result<CpuWindow, String> {
    let pty = Pty::open()?;
    let (session, _) = start_tui(tmux, binary, &pty, "idle")?;
    thread::sleep(SETTLE);
    let window = cpu_window(&session, || {
        let end = Instant::now() + CPU_WINDOW;
        while Instant::now() < end {
            drain(&pty);
            thread::sleep(Duration::from_millis(100));
        }
    })?;
    if !alive(&session) {
        return Err("the TUI exited".to_owned());
    }
    println!(
        "idle: TUI {:.2}% CPU, tmux server {}",
        window.tui,
        window
            .tmux
            .map_or("-".to_owned(), |cpu| format!("{cpu:.2}%"))
    );
    Ok(window)
}

// ---------------------------------------------------------------------------------------------
// 3. 1 MB/s

struct Stream {
    cpu: CpuWindow,
    written: usize,
    window: Duration,
    /// Slices that found the pty full (the TUI not reading fast enough).
    full_slices: usize,
    marker: Result<Duration, String>,
    /// Left in the slave's input queue when the marker showed.
    queued_after: Option<i32>,
}

fn bench_stream(tmux: &Tmux, binary: &Path) -> Result<Stream, String> {
    let text = support::esp_log_text(STREAM_RATE * CPU_WINDOW.as_secs() as usize * 12 / 10, false);
    let pty = Pty::open()?;
    let (session, _) = start_tui(tmux, binary, &pty, "stream")?;
    thread::sleep(SETTLE);
    let slice_bytes = STREAM_RATE * SLICE.as_millis() as usize / 1000;
    let slices = (CPU_WINDOW.as_millis() / SLICE.as_millis()) as usize;
    let mut written = 0usize;
    let mut full_slices = 0usize;
    let mut failure = None;
    let start = Instant::now();
    let cpu = cpu_window(&session, || {
        for slice in 0..slices {
            let slice_end = start + SLICE * (slice as u32 + 1);
            // Anything left behind by an earlier slice goes first: the pace is the total.
            let target = (slice_bytes * (slice + 1)).min(text.len());
            let mut was_full = false;
            while written < target {
                match nix::unistd::write(&pty.master, &text[written..target]) {
                    Ok(n) => written += n,
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => {
                        was_full = true;
                        drain(&pty);
                        if Instant::now() >= slice_end {
                            break;
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err(error) => {
                        failure = Some(format!("write to the master: {error}"));
                        return;
                    }
                }
            }
            full_slices += usize::from(was_full);
            if let Some(wait) = slice_end.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
    })?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    let window = start.elapsed();
    // The rest of the current line, then the marker.
    let line_end = text[written..]
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(text.len(), |at| written + at + 1);
    let mut tail = text[written..line_end].to_vec();
    tail.extend_from_slice(format!("\x1b[0;32mI (99999) {MARKER}\x1b[0m\r\n").as_bytes());
    let mut sent = 0;
    let give_up = Instant::now() + Duration::from_secs(10);
    while sent < tail.len() && Instant::now() < give_up {
        match nix::unistd::write(&pty.master, &tail[sent..]) {
            Ok(n) => sent += n,
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
    let stopped = Instant::now();
    let marker = session
        .wait_for(stopped, Duration::from_secs(10), POLL, |screen| {
            screen.contains(MARKER)
        })
        .map(|(after, _)| after);
    let queued_after = support::queued(&pty.slave).ok();
    println!(
        "1 MB/s: wrote {:.2} MB in {:.2} s ({} of {slices} slices found the pty full), TUI \
         {:.1}% CPU, tmux server {}, marker on screen {}",
        written as f64 / 1e6,
        window.as_secs_f64(),
        full_slices,
        cpu.tui,
        cpu.tmux.map_or("-".to_owned(), |cpu| format!("{cpu:.1}%")),
        match &marker {
            Ok(after) => format!("{} after the last write", fmt_latency(Some(nanos(*after)))),
            Err(error) => format!("NOT seen: {error}"),
        }
    );
    Ok(Stream {
        cpu,
        written,
        window,
        full_slices,
        marker,
        queued_after,
    })
}

// ---------------------------------------------------------------------------------------------
// 4. First frame

struct FirstFrame {
    /// Sorted, per run.
    tui: Vec<Duration>,
    floor: Vec<Duration>,
}

fn bench_first_frame(tmux: &Tmux, binary: &Path) -> Result<FirstFrame, String> {
    let mut tui = Vec::new();
    let mut floor = Vec::new();
    for run in 1..=FIRST_FRAME_RUNS {
        // The floor: a session whose program prints the status line's first word at once.
        let start = Instant::now();
        let session = tmux.start(
            &format!("floor{run}"),
            (WIDTH, HEIGHT),
            "sh -c 'printf \" espchat\"; sleep 30'",
        )?;
        let (shown, _) = session.wait_for(start, Duration::from_secs(10), POLL, status_shown)?;
        drop(session);
        floor.push(shown);

        let pty = Pty::open()?;
        let (session, first) = start_tui(tmux, binary, &pty, &format!("first{run}"))?;
        drop(session);
        drop(pty);
        println!(
            "  first frame run {run}: {} (floor {})",
            fmt_latency(Some(nanos(first))),
            fmt_latency(Some(nanos(shown)))
        );
        tui.push(first);
    }
    tui.sort_unstable();
    floor.sort_unstable();
    Ok(FirstFrame { tui, floor })
}

// ---------------------------------------------------------------------------------------------
// 5. The demo

struct Demo {
    /// Sorted, per run: start until `Client 2 connected`.
    connected: Vec<Duration>,
    /// Start until the flash-done note, per run (not sorted)...
    flashed: Vec<Duration>,
    /// ...and until `Client 2 connected`, per run (not sorted).
    connected_runs: Vec<Duration>,
    /// espchat's own flash report, from the last run.
    note: Option<String>,
    compressed: usize,
}

fn bench_demo(tmux: &Tmux, binary: &Path) -> Result<Demo, String> {
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(
        espchat::bundled::app_for(espchat::flash::Chip::Esp32c3).unwrap(),
        9,
    )
    .len();
    let mut connected = Vec::new();
    let mut flashed = Vec::new();
    let mut note = None;
    for run in 1..=DEMO_RUNS {
        let start = Instant::now();
        let session = tmux.start(
            &format!("demo{run}"),
            (WIDTH, HEIGHT),
            &format!("'{}' demo", binary.display()),
        )?;
        // One loop for both marks: the flash-done note scrolls out of the console pane as
        // soon as the board's boot log follows, so it can be missed; the bootloader's
        // `Loaded app` line (the board reset after the flash) stands in for it then.
        let mut flash = None;
        let both = loop {
            let screen = session.screen();
            if flash.is_none()
                && (screen.contains("flash: done") || screen.contains("Loaded app from"))
            {
                flash = Some(start.elapsed());
            }
            if let Some(line) = screen.lines().find_map(|line| {
                line.find("flash: done")
                    .map(|at| line[at..].trim_end_matches(['│', '|', ' ']).to_owned())
            }) {
                note = Some(line);
            }
            if screen.contains("Client 2 connected") {
                break start.elapsed();
            }
            if session.dead_in_tmux() || start.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "no `Client 2 connected` within 60 s; the screen:\n{}",
                    screen.trim_end()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        };
        drop(session);
        let flash = flash.unwrap_or(both);
        println!(
            "  demo run {run}: flashed at {:.2} s, Client 2 connected at {:.2} s",
            flash.as_secs_f64(),
            both.as_secs_f64()
        );
        connected.push(both);
        flashed.push(flash);
    }
    let connected_runs = connected.clone();
    connected.sort_unstable();
    Ok(Demo {
        connected,
        connected_runs,
        flashed,
        note,
        compressed,
    })
}

fn demo_floor(compressed: usize) -> f64 {
    compressed as f64 * 10.0 / FLASH_BAUD + STUB_BYTES as f64 * 10.0 / ROM_BAUD
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_table(
    frames: &[FrameRow],
    idle: Option<&CpuWindow>,
    stream: Option<&Stream>,
    first: Option<&FirstFrame>,
    demo: Option<&Demo>,
) {
    let ms = |d: Duration| fmt_latency(Some(nanos(d)));
    let dash = || "-".to_owned();
    let met = |ok: bool| verdict(ok).to_owned();

    let mut table = Table::new(["frame", "p50", "p99", "max", "CPU p99", "goal"]);
    let goal_ns = nanos(FRAME_P99_GOAL);
    for frame in frames {
        table.row([
            frame.name.to_owned(),
            fmt_latency(frame.p(50.0)),
            fmt_latency(frame.p(99.0)),
            fmt_latency(frame.samples.last().copied()),
            fmt_latency(percentile(&frame.cpu, 99.0)),
            met(frame.p(99.0).is_some_and(|p99| p99 < goal_ns)),
        ]);
    }
    table.print();

    let mut table = Table::new(["measure", "value", "tmux", "ratio", "goal"]);
    let pct = |value: Option<f64>, digits: usize| {
        value.map_or("-".to_owned(), |v| format!("{v:.digits$}%"))
    };
    match idle {
        Some(idle) => table.row([
            "idle CPU (% of a core)".to_owned(),
            pct(Some(idle.tui), 2),
            pct(idle.tmux, 2),
            dash(),
            met(idle.tui < IDLE_CPU_GOAL),
        ]),
        None => table.row(["idle CPU (% of a core)", "-", "-", "-", "-"]),
    }
    match stream {
        Some(stream) => {
            let mb = stream.written as f64 / 1e6;
            table.row([
                "1 MB/s console CPU (% of a core)".to_owned(),
                pct(Some(stream.cpu.tui), 1),
                pct(stream.cpu.tmux, 1),
                idle.map_or(dash(), |idle| {
                    fmt_ratio(Some(stream.cpu.tui), Some(idle.tui))
                }),
                dash(),
            ]);
            table.row([
                "1 MB/s: written MB/s".to_owned(),
                format!("{:.2}", mb / stream.window.as_secs_f64()),
                dash(),
                format!("{:.2}x", mb / stream.window.as_secs_f64()),
                dash(),
            ]);
            let per_mb = |cpu: f64| {
                format!(
                    "{:.1}",
                    cpu * 10.0 * stream.window.as_secs_f64() / mb.max(1e-9)
                )
            };
            table.row([
                "1 MB/s: CPU ms per MB".to_owned(),
                per_mb(stream.cpu.tui),
                stream.cpu.tmux.map_or(dash(), per_mb),
                dash(),
                dash(),
            ]);
            table.row([
                "1 MB/s: last line on screen after".to_owned(),
                match &stream.marker {
                    Ok(after) => ms(*after),
                    Err(_) => "NOT seen".to_owned(),
                },
                dash(),
                dash(),
                met(stream
                    .marker
                    .as_ref()
                    .is_ok_and(|after| *after < Duration::from_secs(1))),
            ]);
        }
        None => table.row(["1 MB/s console CPU", "-", "-", "-", "-"]),
    }
    match first {
        Some(first) => {
            let tui = median(&first.tui);
            let floor = median(&first.floor);
            table.row([
                "first frame, median".to_owned(),
                ms(tui),
                ms(floor),
                fmt_ratio(Some(tui.as_secs_f64()), Some(floor.as_secs_f64())),
                met(tui < FIRST_FRAME_GOAL),
            ]);
            let range =
                |runs: &[Duration]| format!("{}-{}", fmt_ms(runs[0]), fmt_ms(runs[runs.len() - 1]));
            table.row([
                "first frame, range".to_owned(),
                range(&first.tui),
                range(&first.floor),
                dash(),
                dash(),
            ]);
        }
        None => table.row(["first frame", "-", "-", "-", "-"]),
    }
    match demo {
        Some(demo) => {
            let connected = median(&demo.connected);
            let floor = demo_floor(demo.compressed);
            table.row([
                "demo: start to 2 panes, median".to_owned(),
                format!("{:.2} s", connected.as_secs_f64()),
                dash(),
                format!("{:.2}x", connected.as_secs_f64() / floor),
                dash(),
            ]);
            table.row([
                "demo: line-rate floor".to_owned(),
                format!("{floor:.2} s"),
                dash(),
                "1.00x".to_owned(),
                dash(),
            ]);
        }
        None => table.row(["demo", "-", "-", "-", "-"]),
    }
    table.print();
    println!();

    let worst = frames.iter().filter_map(|frame| frame.p(99.0)).max();
    println!(
        "goal 1, p99 frame < {}: worst row's p99 {}: {}",
        fmt_latency(Some(goal_ns)),
        fmt_latency(worst),
        verdict(worst.is_some_and(|worst| worst < goal_ns))
    );
    match idle {
        Some(idle) => println!(
            "goal 2, idle CPU < {IDLE_CPU_GOAL:.0}%: {:.2}%: {}",
            idle.tui,
            met(idle.tui < IDLE_CPU_GOAL)
        ),
        None => println!("goal 2, idle CPU < {IDLE_CPU_GOAL:.0}%: not measured"),
    }
    match first {
        Some(first) => println!(
            "goal 3, first frame < {}: median {}: {}",
            ms(FIRST_FRAME_GOAL),
            ms(median(&first.tui)),
            met(median(&first.tui) < FIRST_FRAME_GOAL)
        ),
        None => println!(
            "goal 3, first frame < {}: not measured",
            ms(FIRST_FRAME_GOAL)
        ),
    }
    println!();

    println!(
        "\
* frames: an App with {PANES} chat panes x {LINES} lines (connected, plain chat text)
  and {LINES} serial lines (ESP-IDF log text through the console's decoder, coloured),
  rendered at {WIDTH}x{HEIGHT} {FRAMES} times per row after {WARMUP_FRAMES} warm-up frames,
  each frame timed with Instant; nearest-rank percentiles. render: `&App` into a
  reset Buffer. 1 line: one new line (console and panes in turn) through
  handle_event, then the render, timed together. {BURST_LINES} lines: 1 MB/s of 80-byte
  lines at the TUI's 30 frames a second, all to the console. draw: through
  Terminal<TestBackend>::draw, which adds ratatui's diff against the last frame.
  CPU p99: the bench thread's CPU time (CLOCK_THREAD_CPUTIME_ID) over the same
  spans: wall p99 well above it means the thread was preempted, not working.
* CPU: utime+stime of the espchat process (all threads, /proc/PID/stat, 10 ms ticks,
  so +-0.1% over 10 s) over {window} s, {settle} s after its first frame, in percent of one core.
  tmux: the tmux server's CPU over the same window (it parses what the TUI draws).
  `espchat tui -p PTY` runs in tmux at {WIDTH}x{HEIGHT}; the pty is the bench's,
  its slave raw and held open by the bench, which never reads it.",
        window = CPU_WINDOW.as_secs(),
        settle = SETTLE.as_secs()
    );
    if let Some(stream) = stream {
        println!(
            "\
* 1 MB/s: ESP-IDF style log lines (~80 bytes, 70% coloured, \\r\\n, no IP address)
  written into the master in {slice} ms slices of {slice_bytes} bytes for {window} s, behind-schedule
  bytes carried over; {full} slices found the pty full. Then a marker line; `last line`
  is from its write until capture-pane shows it; {queued} bytes were still queued then.
  ratio: the 1 MB/s CPU / the idle CPU; written MB/s ratio: / 1 MB/s.",
            slice = SLICE.as_millis(),
            slice_bytes = STREAM_RATE * SLICE.as_millis() as usize / 1000,
            window = CPU_WINDOW.as_secs(),
            full = stream.full_slices,
            queued = stream
                .queued_after
                .map_or("?".to_owned(), |queued| queued.to_string())
        );
    }
    println!(
        "\
* first frame: {FIRST_FRAME_RUNS} runs, each a new pty and tmux session; the time runs from
  spawning `tmux new-session` until capture-pane shows the status line (first
  screen line starting `espchat`). Polled every {poll} ms plus a capture-pane run
  (a process spawn, a few ms): the granularity is a capture, not the sleep.
  tmux column: the floor, a session running `printf ' espchat'` (tmux, the pane
  start and polling alone); ratio = espchat / floor.",
        poll = POLL.as_millis()
    );
    if let Some(demo) = demo {
        println!(
            "\
* demo: `espchat demo` in tmux, {DEMO_RUNS} runs, the screen polled every 10 ms: flash
  done = `flash: done` or, if that scrolled by unseen, the bootloader's `Loaded app`
  line; 2 panes = `Client 2 connected` shown (pane 2 connects once pane 1 is)."
        );
        let apart = demo
            .flashed
            .iter()
            .zip(&demo.connected_runs)
            .map(|(flash, both)| both.saturating_sub(*flash))
            .max()
            .unwrap_or_default();
        if apart < Duration::from_millis(10) {
            println!(
                "  flash done and `Client 2 connected` showed on the same screen capture in
  every run: boot, IP and both connections take under a frame (33 ms) after
  the flash; the demo's time is the flash."
            );
        } else {
            println!(
                "  flash done to 2 panes: at most {} in any run (flash done at {} s per run).",
                ms(apart),
                demo.flashed
                    .iter()
                    .map(|flash| format!("{:.2}", flash.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(note) = &demo.note {
            println!("  espchat's own report (last run): {note}");
        }
        let image = espchat::bundled::app_for(espchat::flash::Chip::Esp32c3)
            .unwrap()
            .len();
        println!(
            "  floor = compressed x 10 / 921600 + stub x 10 / 115200 = {compressed} x 10 / 921600 +
  {STUB_BYTES} x 10 / 115200 = {image_s:.2} s + {stub_s:.2} s = {floor:.2} s; compressed: the bundled
  ESP32-C3 image ({image} bytes) zlib level 9 with miniz_oxide ({share:.1}%); stub: espflash
  4.7's ESP32-C3 stub, text + data. 8N1 = 10 bits a byte; no framing, no
  commands, no reset or boot: the floor is the bytes on the wire alone.
  ratio = time / floor.",
            compressed = demo.compressed,
            image_s = demo.compressed as f64 * 10.0 / FLASH_BAUD,
            stub_s = STUB_BYTES as f64 * 10.0 / ROM_BAUD,
            floor = demo_floor(demo.compressed),
            share = 100.0 * demo.compressed as f64 / image as f64
        );
    }
    println!("* the machine is shared: CPU percentages and times move with other load.");
}

fn median(sorted: &[Duration]) -> Duration {
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

fn fmt_ms(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e3)
}
