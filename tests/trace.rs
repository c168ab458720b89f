//! Crash decoding end to end: panic text arrives on a console, `trace!` lines name function,
//! file and line. The firmware's real ELF is the input, GNU addr2line (binutils) the
//! independent peer that says what the right answer is.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use object::{Object as _, ObjectSymbol as _};
use support::{BoardProcess, HeadlessProcess};

/// One frame as addr2line prints it: function, and `file:line` (`??` when unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PeerFrame {
    function: String,
    file: String,
    line: Option<u32>,
}

/// Code addresses spread over the firmware's own functions: the middle of each, on an
/// instruction boundary.
fn firmware_addresses(elf: &Path, count: usize) -> Vec<u32> {
    let data = std::fs::read(elf).expect("read the ELF");
    let file = object::File::parse(&*data).expect("parse the ELF");
    let mut functions: Vec<(u64, u64)> = file
        .symbols()
        .filter(|symbol| symbol.kind() == object::SymbolKind::Text && symbol.size() >= 16)
        .filter(|symbol| {
            symbol
                .name()
                .is_ok_and(|name| name.contains("espchat") || name.contains("embassy"))
        })
        .map(|symbol| (symbol.address(), symbol.size()))
        .collect();
    functions.sort_unstable();
    functions.dedup();
    assert!(
        functions.len() >= count,
        "only {} functions in the ELF",
        functions.len()
    );
    let step = functions.len() / count;
    functions
        .iter()
        .step_by(step)
        .take(count)
        .map(|&(start, size)| u32::try_from(start + ((size / 2) & !1)).expect("32-bit"))
        .collect()
}

/// What GNU addr2line (`-a -f -i -C`) says of each address, innermost frame first.
fn gnu_addr2line(elf: &Path, addresses: &[u32]) -> HashMap<u32, Vec<PeerFrame>> {
    let output = Command::new("addr2line")
        .args(["-a", "-f", "-i", "-C", "-e"])
        .arg(elf)
        .args(addresses.iter().map(|address| format!("{address:#x}")))
        .output()
        .expect("GNU addr2line (binutils) is needed: apt install binutils");
    assert!(output.status.success(), "addr2line failed: {output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let mut frames: HashMap<u32, Vec<PeerFrame>> = HashMap::new();
    let mut current = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(hex) = line.strip_prefix("0x") {
            let address = u32::from_str_radix(hex, 16).expect("an address");
            current = Some(address);
            continue;
        }
        let location = lines.next().expect("a location after a function");
        let (file, number) = location.rsplit_once(':').expect("file:line");
        let number = number.split_whitespace().next().unwrap_or("");
        frames
            .entry(current.expect("an address first"))
            .or_default()
            .push(PeerFrame {
                function: line.to_owned(),
                file: file.to_owned(),
                line: number.parse().ok().filter(|&n: &u32| n > 0),
            });
    }
    frames
}

/// A frame as a `trace!` line shows it: inlined-by, function, file, line.
type OurFrame = (bool, String, Option<String>, Option<u32>);

/// A `trace!` frame line: its address and frame.
fn parse_trace(line: &str) -> Option<(u32, OurFrame)> {
    let rest = line.strip_prefix("trace! 0x")?;
    let (hex, rest) = rest.split_once(' ')?;
    let address = u32::from_str_radix(hex, 16).ok()?;
    let (inlined, rest) = match rest.strip_prefix("(inlined by) ") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let (function, file, number) = match rest.rsplit_once(" at ") {
        Some((function, location)) => match location.rsplit_once(':') {
            Some((file, number)) if number.parse::<u32>().is_ok() => (
                function.to_owned(),
                Some(file.to_owned()),
                number.parse().ok(),
            ),
            _ => (function.to_owned(), Some(location.to_owned()), None),
        },
        None => (rest.to_owned(), None, None),
    };
    Some((address, (inlined, function, file, number)))
}

/// `espchat monitor --elf ELF` on a pty the test writes to; waits until the port is open.
fn monitor_with_elf(elf: &Path) -> (HeadlessProcess, std::fs::File, nix::pty::OpenptyResult) {
    let pty = nix::pty::openpty(None, None).expect("a pty");
    let path = nix::unistd::ttyname(&pty.slave).expect("its name");
    let monitor = HeadlessProcess::start(&[
        "monitor",
        "--headless",
        "-p",
        path.to_str().expect("UTF-8 path"),
        "--elf",
        elf.to_str().expect("UTF-8 path"),
    ]);
    let master = std::fs::File::from(pty.master.try_clone().expect("dup the master"));
    (monitor, master, pty)
}

type Decoded = HashMap<u32, Vec<OurFrame>>;

/// The console `text` through `espchat monitor --elf`: every stdout line, and the `trace!`
/// frames by address. `text` ends with a line `after the panic`.
fn decode_console(elf: &Path, text: &str) -> (Vec<String>, Decoded) {
    let (mut monitor, mut board, _pty) = monitor_with_elf(elf);
    monitor.wait_for("serial! opened");
    board.write_all(text.as_bytes()).expect("write the panic");
    monitor.wait_for("serial| after the panic");
    monitor.send("@quit");
    let lines = monitor.all_stdout().to_vec();
    let mut decoded = Decoded::new();
    for line in &lines {
        if let Some((address, frame)) = parse_trace(line) {
            decoded.entry(address).or_default().push(frame);
        }
    }
    (lines, decoded)
}

/// `core::ptr::drop_in_place<…>` -> `core::ptr::drop_in_place`: a name without the generic
/// arguments it ends with, if any.
fn without_last_generics(name: &str) -> &str {
    if !name.ends_with('>') {
        return name;
    }
    let mut depth = 0;
    for (at, c) in name.char_indices().rev() {
        match c {
            '>' => depth += 1,
            '<' => {
                depth -= 1;
                if depth == 0 {
                    return &name[..at];
                }
            }
            _ => {}
        }
    }
    name
}

/// Our frames of `address` are addr2line's: same count, function, file and line.
fn assert_same_frames(address: u32, decoded: &Decoded, theirs: &[PeerFrame]) {
    let ours = decoded
        .get(&address)
        .unwrap_or_else(|| panic!("{address:#x} was not decoded: {decoded:#?}"));
    assert_eq!(
        ours.len(),
        theirs.len(),
        "frames of {address:#x}: ours {ours:#?}, addr2line's {theirs:#?}"
    );
    for (index, ((inlined, function, file, number), peer)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(*inlined, index > 0, "{address:#x} frame {index}");
        // binutils sometimes names a local label (`.L0 `) where DWARF has the function.
        if peer.function != "??" && !peer.function.starts_with(".L") {
            // The outermost function by its path (from the symbol table), where DWARF with
            // line tables only has its bare name: `a::B<T>::poll` for `poll<X>`, and
            // `core::ptr::drop_in_place<…>` for `drop_in_place<X>`.
            let mut bare = peer.function.split('<').next().unwrap_or_default();
            // DWARF's `{closure#0}` / `{async_fn#0}` is the symbol's `{{closure}}`.
            if bare.starts_with("{closure#") || bare.starts_with("{async_fn#") {
                bare = "{{closure}}";
            }
            // Long generic arguments are elided (`lock<…>`): the name before them is compared.
            let ours_bare = function.split('<').next().unwrap_or_default();
            let outermost = index + 1 == ours.len();
            assert!(
                *function == peer.function
                    || ours_bare == peer.function.split('<').next().unwrap_or_default()
                    || (outermost
                        && without_last_generics(function).ends_with(&format!("::{bare}"))),
                "{address:#x} frame {index}: {function} is not {}",
                peer.function
            );
        }
        assert_eq!(*number, peer.line, "{address:#x} frame {index}: {ours:#?}");
        match file {
            Some(file) => assert!(
                peer.file.ends_with(file.as_str()),
                "{address:#x} frame {index}: {file} is not {}",
                peer.file
            ),
            None => assert_eq!(peer.file, "??", "{address:#x} frame {index}"),
        }
    }
}

#[test]
fn a_backtrace_is_decoded_as_gnu_addr2line_decodes_it() {
    let elf = support::firmware_elf();
    let addresses = firmware_addresses(&elf, 24);
    let expected = gnu_addr2line(&elf, &addresses);
    let mut text = String::from(
        "\r\n====================== PANIC ======================\r\npanicked at src/main.rs:1:1:\r\nboom\r\n\r\nBacktrace:\r\n\r\n",
    );
    for address in &addresses {
        text.push_str(&format!("0x{address:x}\r\n"));
    }
    text.push_str("\r\n\r\nafter the panic\r\n");
    let (lines, decoded) = decode_console(&elf, &text);

    for address in &addresses {
        assert_same_frames(*address, &decoded, &expected[address]);
        // Each address's frames come right after the console line that holds it.
        let at = lines
            .iter()
            .position(|line| *line == format!("serial| 0x{address:x}"))
            .expect("the console line");
        assert!(
            lines[at + 1].starts_with(&format!("trace! {address:#010x} ")),
            "{:#?}",
            &lines[at..at + 2]
        );
    }
    // Lines that hold no backtrace are not decoded.
    let traces = lines
        .iter()
        .filter(|line| line.starts_with("trace! "))
        .count();
    let frames: usize = addresses
        .iter()
        .map(|address| expected[address].len())
        .sum();
    assert_eq!(traces, frames, "{lines:#?}");
}

#[test]
fn every_format_s_addresses_are_decoded_and_nothing_else() {
    let elf = support::firmware_elf();
    let a = firmware_addresses(&elf, 12);
    // Register values that are data, and addresses outside the ELF's code, stay undecoded.
    let text = [
        // esp-backtrace / esp-hal: the exception line.
        format!(
            "Exception 'Load access fault' mepc={:#010x}, mtval=0x00000000",
            a[0]
        ),
        String::new(),
        // ESP-IDF on RISC-V: the Guru Meditation register dump.
        "Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled."
            .to_owned(),
        String::new(),
        "Core  0 register dump:".to_owned(),
        format!(
            "MEPC    : {:#010x}  RA      : {:#010x}  SP      : 0x3fc98e40  GP      : 0x3fc8d000",
            a[1], a[2]
        ),
        format!(
            "TP      : 0x3fc8e4b4  T0      : {:#010x}  T1      : 0x3fc98b3c  T2      : 0x00000000",
            a[3]
        ),
        "MSTATUS : 0x00001881  MTVEC   : 0x40380001  MCAUSE  : 0x00000005  MTVAL   : 0x00000000"
            .to_owned(),
        String::new(),
        // ESP-IDF on Xtensa (and Arduino ESP32): PC:SP pairs.
        format!(
            "Backtrace: {:#010x}:0x3ffb1230 {:#010x}:0x3ffb1250 |<-CORRUPTED",
            a[4], a[5]
        ),
        String::new(),
        // ESP-IDF's abort().
        format!("abort() was called at PC {:#010x} on core 0", a[6]),
        String::new(),
        // The ESP8266 Arduino core.
        "Exception (28):".to_owned(),
        format!(
            "epc1={:#010x} epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000010 depc=0x00000000",
            a[7]
        ),
        String::new(),
        // An ordinary log line holding a code address is not a crash.
        format!("I (99) main: handler at {:#010x}", a[8]),
        "after the panic".to_owned(),
    ]
    .join("\r\n")
        + "\r\n";
    let (lines, decoded) = decode_console(&elf, &text);

    // What each format says is code, at the address to look up (a return address: the call
    // before it).
    let wanted = [
        (a[0], a[0]),
        (a[1], a[1]),
        (a[2], a[2] - 1),
        (a[4], a[4]),
        (a[5], a[5]),
        (a[6], a[6]),
        (a[7], a[7]),
    ];
    let probes: Vec<u32> = wanted.iter().map(|&(_, probe)| probe).collect();
    let expected = gnu_addr2line(&elf, &probes);
    for (address, probe) in wanted {
        assert_same_frames(address, &decoded, &expected[&probe]);
    }
    let mut found: Vec<u32> = decoded.keys().copied().collect();
    found.sort_unstable();
    let mut want: Vec<u32> = wanted.iter().map(|&(address, _)| address).collect();
    want.sort_unstable();
    assert_eq!(found, want, "{lines:#?}");
}

#[test]
fn an_elf_that_is_not_the_running_app_is_warned_about() {
    let elf = support::firmware_elf();
    let (mut monitor, mut board, _pty) = monitor_with_elf(&elf);
    monitor.wait_for("serial! opened");
    board
        .write_all(b"I (412) app_init: ELF file SHA256:  0123456789abcdef...\r\n")
        .expect("write");
    let warning = monitor.wait_for("trace! warning:");
    assert!(
        warning.contains("does not match the app on the board")
            && warning.contains("0123456789abcdef"),
        "{warning}"
    );
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
}

#[test]
fn the_elf_the_board_runs_is_not_warned_about() {
    let elf = support::firmware_elf();
    let sha: String = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(std::fs::read(&elf).expect("read the ELF"));
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    };
    let (mut monitor, mut board, _pty) = monitor_with_elf(&elf);
    monitor.wait_for("serial! opened");
    board
        .write_all(format!("I (412) app_init: ELF file SHA256:  {sha}...\r\nnext\r\n").as_bytes())
        .expect("write");
    monitor.wait_for("serial| next");
    monitor.send("@quit");
    assert!(monitor.wait_exit().success());
    let lines = monitor.all_stdout();
    assert!(
        !lines.iter().any(|line| line.starts_with("trace!")),
        "{lines:#?}"
    );
}

#[test]
fn a_missing_elf_is_said_before_anything_starts() {
    let mut monitor = HeadlessProcess::start(&[
        "monitor",
        "--headless",
        "-p",
        "/dev/null",
        "--elf",
        "/nonexistent/firmware.elf",
    ]);
    let status = monitor.wait_exit();
    assert_eq!(status.code(), Some(1));
    let stderr = monitor.stderr();
    assert!(
        stderr.contains("/nonexistent/firmware.elf") && stderr.contains("No such file"),
        "{stderr}"
    );
}

#[test]
fn the_bundled_firmware_s_panic_is_decoded_after_flash_and_connect() {
    let dir = tempfile::tempdir().expect("a temporary dir");
    let (board, _flash) = BoardProcess::blank(dir.path());
    let serial = board.serial.to_str().expect("UTF-8").to_owned();
    let mut session = HeadlessProcess::start(&[
        "flash-and-connect",
        "--headless",
        "-p",
        &serial,
        "--clients",
        "1",
    ]);
    session.wait_for("board! ip 127.0.0.1");
    session.wait_for("chat1! connected");
    session.send("@serial panic");
    session.wait_for("serial| Backtrace:");
    // The virtual board's panic: the frames of the firmware's console task.
    let console = session.wait_for("espchat_firmware::chat::Chat::console at src/chat.rs:");
    assert!(console.starts_with("trace! 0x4"), "{console}");
    // It reboots, as the firmware does, and the pane comes back.
    session.wait_for("rst:0xc (RTC_SW_CPU_RST)");
    session.wait_for("chat1! connected");
    session.send("@quit");
    assert!(session.wait_exit().success());
}

/// The tracer's lines for console lines fed until `done` says so (the ELF loads in the
/// background meanwhile), with a deadline.
async fn trace_until(
    tracer: &mut espchat::trace::Tracer,
    done: impl Fn(&espchat::trace::Tracer, &[espchat::trace::TraceLine]) -> bool,
) -> Vec<espchat::trace::TraceLine> {
    let end = std::time::Instant::now() + support::DEADLINE;
    let mut all = Vec::new();
    while !done(tracer, &all) && std::time::Instant::now() < end {
        all.extend(tracer.line("I (1) main: tick").await);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    all
}

#[tokio::test]
async fn a_flashed_image_that_is_not_the_elf_s_build_is_warned_about() {
    use espchat::trace::{ElfSource, TraceLine, Tracer};
    let elf = support::firmware_elf();
    let data = std::fs::read(&elf).expect("read the ELF");
    let file = object::File::parse(&*data).expect("an ELF");
    let desc = {
        use object::ObjectSection as _;
        file.section_by_name(".flash.appdesc")
            .expect("the firmware has an app descriptor")
            .data()
            .expect("its bytes")[..256]
            .to_vec()
    };
    // The same build: no warning, and decoding works.
    let mut same = Tracer::start(ElfSource::File(elf.clone()), Some(desc.clone()));
    let lines = trace_until(&mut same, |tracer, _| tracer.load_time.is_some()).await;
    assert!(lines.is_empty(), "{lines:?}");
    let decoded = same
        .line("abort() was called at PC 0x42060f54 on core 0")
        .await;
    assert!(!decoded.is_empty());
    assert!(same.load_time.is_some());

    // Another build (its version string differs): said once, before any decoding.
    let mut other_desc = desc;
    other_desc[16] ^= 0x01;
    let mut other = Tracer::start(ElfSource::File(elf), Some(other_desc));
    let lines = trace_until(&mut other, |_, lines| !lines.is_empty()).await;
    match lines.as_slice() {
        [TraceLine::Note(note)] => {
            assert!(note.contains("is not the app that was flashed"), "{note}")
        }
        lines => panic!("{lines:?}"),
    }
}
