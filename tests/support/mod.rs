//! Drives the real `espchat` binary: a virtual board process, its pty, TCP chat clients.
//! Every wait has a deadline; nothing sleeps in place of waiting for a condition.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// A config dir (for `XDG_CONFIG_HOME`) holding `espchat/config.toml` with `text` and the
/// permission bits `mode`; also returns the file's path.
pub fn config_home(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().expect("a temporary config dir");
    let dir = home.path().join("espchat");
    std::fs::create_dir(&dir).expect("create the espchat config dir");
    let file = dir.join("config.toml");
    std::fs::write(&file, text).expect("write the config file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
        .expect("set the config file's mode");
    (home, file)
}

/// `espchat` as a test runs it: whatever config file and `ESPCHAT_*` variables the machine
/// has are out of play (an empty config dir), unless the test sets them itself.
pub fn espchat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_espchat"));
    command.env(
        "XDG_CONFIG_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-config"),
    );
    for name in [
        "ESPCHAT_CONFIG",
        "ESPCHAT_PORT",
        "ESPCHAT_BAUD",
        "ESPFLASH_PORT",
        "ESPFLASH_BAUD",
        "ESPCHAT_WIFI_SSID",
        "ESPCHAT_WIFI_PASSWORD",
    ] {
        command.env_remove(name);
    }
    command
}

/// A line source fed by a reader thread, so waits can have deadlines.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn spawn(reader: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\r', '\n']).to_owned();
                        if tx.send(text).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line, waiting up to [`DEADLINE`].
    pub fn next(&mut self) -> String {
        match self.rx.recv_timeout(DEADLINE) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(error) => panic!(
                "no line within {DEADLINE:?} ({error}); seen so far: {:#?}",
                self.seen
            ),
        }
    }

    /// Skips lines until each needle has been found in some line, in any order.
    pub fn wait_all(&mut self, needles: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        let end = Instant::now() + DEADLINE;
        while found.iter().any(Option::is_none) {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let open = (0..needles.len())
                        .find(|&i| found[i].is_none() && line.contains(needles[i]));
                    if let Some(i) = open {
                        found[i] = Some(line);
                    }
                }
                Err(error) => panic!(
                    "not all of {needles:?} within {DEADLINE:?} ({error}); seen: {:#?}",
                    self.seen
                ),
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Like [`Lines::wait_for`], but gives up after `timeout` and returns `None`.
    pub fn try_wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Every line, once the writer has closed its end (waiting up to [`DEADLINE`]).
    pub fn until_closed(&mut self) -> &[String] {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return &self.seen,
                Err(error) => panic!("output still open after {DEADLINE:?} ({error})"),
            }
        }
    }

    /// Skips lines until one contains `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.try_wait_for(needle, DEADLINE).unwrap_or_else(|| {
            panic!(
                "no line containing {needle:?} within {DEADLINE:?}; seen: {:#?}",
                self.seen
            )
        })
    }
}

/// `espchat board` running as a child process.
pub struct BoardProcess {
    pub child: Child,
    pub serial: PathBuf,
    pub port: u16,
    stdout: Lines,
}

impl BoardProcess {
    pub fn start(extra: &[&str]) -> BoardProcess {
        let mut command = espchat();
        command.arg("board");
        if !extra.contains(&"--tcp-port") {
            command.args(["--tcp-port", "0"]);
        }
        command.args(extra);
        Self::start_command(command)
    }

    /// A board with erased flash, kept in a file in `dir`, flashing at full speed; also
    /// returns the flash file.
    pub fn blank(dir: &Path) -> (BoardProcess, PathBuf) {
        let flash_file = Self::flash_file(dir);
        let board = BoardProcess::start(&[
            "--blank",
            "--no-throttle",
            "--flash-file",
            flash_file.to_str().unwrap(),
        ]);
        (board, flash_file)
    }

    /// A board whose flash holds `flash` (4 MiB), kept in a file in `dir`; also returns the
    /// flash file.
    pub fn with_flash(dir: &Path, flash: &[u8]) -> (BoardProcess, PathBuf) {
        let flash_file = Self::flash_file(dir);
        std::fs::write(&flash_file, flash).unwrap();
        let board = BoardProcess::start(&[
            "--no-throttle",
            "--flash-file",
            flash_file.to_str().unwrap(),
        ]);
        (board, flash_file)
    }

    /// A board as `espchat flash` leaves it (bootloader, partition table, the espchat app),
    /// kept in a file in `dir`; also returns the flash file.
    pub fn flashed(dir: &Path) -> (BoardProcess, PathBuf) {
        let flash_file = Self::flash_file(dir);
        let board = BoardProcess::start(&[
            "--no-throttle",
            "--flash-file",
            flash_file.to_str().unwrap(),
        ]);
        (board, flash_file)
    }

    /// Distinct names for several flash files in one directory.
    fn flash_file(dir: &Path) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        dir.join(format!("flash-{number}.bin"))
    }

    /// Starts `command`, an `espchat board` with its arguments and environment.
    pub fn start_command(mut command: Command) -> BoardProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start espchat board");
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let mut stdout = Lines::spawn(stdout);
        let serial = stdout.next();
        let serial = PathBuf::from(
            serial
                .strip_prefix("serial: ")
                .unwrap_or_else(|| panic!("first line is not `serial: PATH`: {serial:?}")),
        );
        let tcp = stdout.next();
        let port = tcp
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("second line is not `tcp: 127.0.0.1:PORT`: {tcp:?}"));
        BoardProcess {
            child,
            serial,
            port,
            stdout,
        }
    }

    /// Opens the board's serial port like a terminal program does.
    pub fn open_console(&self) -> SerialConsole {
        SerialConsole::open(&self.serial)
    }

    pub fn connect(&self) -> ChatClient {
        ChatClient::connect(self.port)
    }

    /// Reads the boot log up to `listening on` and lets go of the port, as a tool that came
    /// and went would: the next client finds the console quiet, the address said to nobody.
    pub fn take_boot_log(&self) -> String {
        self.read_log_until("espchat: listening on ")
    }

    /// Reads the console up to the end of the line holding `needle`, and closes the port again
    /// (no reader is left behind to take bytes a flashing tool waits for).
    pub fn read_log_until(&self, needle: &str) -> String {
        use nix::sys::termios::{SetArg, SpecialCharacterIndices, cfmakeraw, tcgetattr, tcsetattr};
        let mut port = open_pty(&self.serial);
        let mut termios = tcgetattr(&port).expect("tcgetattr");
        cfmakeraw(&mut termios);
        // A read returns after 100 ms without bytes, so the deadline is checked.
        termios.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        termios.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
        tcsetattr(&port, SetArg::TCSANOW, &termios).expect("tcsetattr");
        let end = Instant::now() + DEADLINE;
        let mut log = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&log);
            if let Some(at) = text.find(needle)
                && text[at..].contains('\n')
            {
                return text.into_owned();
            }
            assert!(
                Instant::now() < end,
                "no `{needle}` in the boot log: {text}"
            );
            let n = port.read(&mut buf).expect("read the pty");
            log.extend_from_slice(&buf[..n]);
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Resident memory of the board process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// Sends a signal and waits (with a deadline) for the process to exit.
    pub fn signal_and_wait(
        &mut self,
        signal: nix::sys::signal::Signal,
    ) -> std::process::ExitStatus {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).expect("kill");
        wait_for_exit(&mut self.child, "the board")
    }
}

impl Drop for BoardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The board's serial port, opened from the client side.
pub struct SerialConsole {
    writer: File,
    pub lines: Lines,
}

impl SerialConsole {
    pub fn open(path: &Path) -> SerialConsole {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
        // As terminal programs do: raw, and reads that wait for at least one byte (a previous
        // client, e.g. pyserial, may have left VMIN at 0, which reads as end of file).
        let mut termios = nix::sys::termios::tcgetattr(&file).expect("tcgetattr");
        nix::sys::termios::cfmakeraw(&mut termios);
        termios.control_chars[nix::sys::termios::SpecialCharacterIndices::VMIN as usize] = 1;
        termios.control_chars[nix::sys::termios::SpecialCharacterIndices::VTIME as usize] = 0;
        nix::sys::termios::tcsetattr(&file, nix::sys::termios::SetArg::TCSANOW, &termios)
            .expect("tcsetattr");
        let reader = file.try_clone().expect("clone pty fd");
        SerialConsole {
            writer: file,
            lines: Lines::spawn(reader),
        }
    }

    /// Writes `bytes` as they are.
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to pty");
    }

    /// Types a command and Enter, as picocom sends it (CR).
    pub fn send(&mut self, command: &str) {
        self.writer
            .write_all(format!("{command}\r").as_bytes())
            .expect("write to pty");
    }

    /// Waits for a console line whose content (after any log prefix) contains `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.lines.wait_for(needle)
    }

    /// The next console line, as it came (with any BS in it), waiting up to [`DEADLINE`].
    pub fn next_line(&mut self) -> String {
        self.lines.next()
    }

    /// Waits for `listening on 127.0.0.1:PORT` and returns PORT.
    pub fn wait_listening(&mut self) -> u16 {
        let line = self.wait_for("espchat: listening on 127.0.0.1:");
        line.rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("port")
    }
}

/// One `nc`-like TCP client.
pub struct ChatClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl ChatClient {
    pub fn connect(port: u16) -> ChatClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the board");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        ChatClient { stream, reader }
    }

    /// Connects and reads the announcement; returns the client and its id.
    pub fn join(port: u16) -> (ChatClient, u8) {
        let mut client = ChatClient::connect(port);
        let line = client.line();
        let id = line
            .strip_prefix("Client ")
            .and_then(|rest| rest.strip_suffix(" connected"))
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("expected `Client N connected`, got {line:?}"));
        (client, id)
    }

    /// A second handle on the same connection, e.g. to read on another thread.
    pub fn try_clone(&self) -> ChatClient {
        let stream = self.stream.try_clone().expect("clone");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        ChatClient { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    pub fn say(&mut self, text: &str) {
        self.send(format!("{text}\r\n").as_bytes());
    }

    /// The next line, exactly as received (must end in `\r\n`), without the `\r\n`.
    pub fn line(&mut self) -> String {
        let mut raw = Vec::new();
        self.reader
            .read_until(b'\n', &mut raw)
            .expect("read a line within the deadline");
        assert!(raw.ends_with(b"\r\n"), "line does not end in CRLF: {raw:?}");
        raw.truncate(raw.len() - 2);
        String::from_utf8(raw).expect("server lines are UTF-8")
    }

    pub fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// True when the server closed the connection (EOF or reset) within the deadline.
    pub fn closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(error) => matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }

    pub fn half_close(&self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown write");
    }
}

/// `espchat <args>` in line mode, stdin and stdout piped.
pub struct HeadlessProcess {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    pub stdout: Lines,
    stderr: tempfile::NamedTempFile,
}

impl HeadlessProcess {
    pub fn start(args: &[&str]) -> HeadlessProcess {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> HeadlessProcess {
        let mut command = espchat();
        command.args(args).envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Starts `command`, an espchat in line mode with its arguments.
    pub fn spawn(mut command: Command) -> HeadlessProcess {
        let stderr = tempfile::NamedTempFile::new().expect("a file for stderr");
        let mut child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen the stderr file"))
            .spawn()
            .expect("start espchat");
        let stdin = child.stdin.take();
        let stdout = Lines::spawn(child.stdout.take().expect("piped stdout"));
        HeadlessProcess {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Types one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to espchat's stdin");
        stdin.flush().expect("flush");
    }

    /// Everything it wrote to stdout, once it has exited.
    pub fn all_stdout(&mut self) -> &[String] {
        self.stdout.until_closed()
    }

    /// Closes stdin (end of input).
    pub fn end_input(&mut self) {
        self.stdin = None;
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        self.stdout.wait_for(needle)
    }

    pub fn wait_all(&mut self, needles: &[&str]) -> Vec<String> {
        self.stdout.wait_all(needles)
    }

    /// Waits (with a deadline) for the process to exit.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        wait_for_exit(&mut self.child, "espchat")
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for HeadlessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Waits, polling with a deadline, until `child` exits.
pub fn wait_for_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < end,
            "{what} did not exit within {DEADLINE:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Opens a pty (a virtual board's port) as a second program would: read-write, not as the
/// controlling terminal.
pub fn open_pty(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .expect("open the pty")
}

/// The real firmware's ELF for the ESP32-C3, built (or found fresh) once per test binary.
pub fn firmware_elf() -> PathBuf {
    static ELF: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ELF.get_or_init(|| {
        let firmware = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware");
        let status = Command::new("cargo")
            .args(["build", "--release", "--quiet"])
            .current_dir(&firmware)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo for the firmware");
        assert!(
            status.success(),
            "building the firmware failed: it needs `rustup target add riscv32imc-unknown-none-elf`"
        );
        firmware.join("target/riscv32imc-unknown-none-elf/release/espchat-firmware")
    })
    .clone()
}

/// Bytes deflate cannot shrink and no one would mistake for an image, the same each run
/// (xorshift).
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_F491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Flash layouts for the virtual board (a 4 MiB ESP32-C3), as other firmware leaves them.
pub mod layouts {
    use espflash::flasher::{FlashData, FlashSettings, FlashSize};
    use espflash::image_format::idf::IdfBootloaderFormat;
    use espflash::target::{Chip, XtalFrequency};

    pub const FLASH_SIZE: usize = 4 * 1024 * 1024;

    /// Arduino-ESP32's `default.csv`: two OTA app slots chosen by otadata.
    pub const ARDUINO_CSV: &str = include_str!("../data/arduino-default.csv");

    /// espflash's ESP32-C3 bootloader, with the header it writes for a 4 MB flash.
    pub fn bootloader() -> Vec<u8> {
        let settings = FlashSettings::new(None, Some(FlashSize::_4Mb), None);
        let data = FlashData::new(settings, 0, None, Chip::Esp32c3, XtalFrequency::_40Mhz);
        let format =
            IdfBootloaderFormat::new(espchat::bundled::ESP32C3_ELF, &data, None, None, None, None)
                .expect("the bundled ELF converts");
        let segment = format
            .flash_segments()
            .next()
            .expect("a bootloader segment");
        assert_eq!(segment.addr, 0);
        segment.data.into_owned()
    }

    /// A partition table CSV in its binary form (esp-idf-part, as espflash writes it).
    pub fn table(csv: &str) -> Vec<u8> {
        esp_idf_part::PartitionTable::try_from_str(csv)
            .expect("a valid partition table")
            .to_bin()
            .expect("a table that fits")
    }

    /// An otadata entry selecting sequence number `seq` (slot (seq - 1) % number of OTA apps).
    pub fn otadata_entry(seq: u32) -> [u8; 32] {
        espchat::board::boot::otadata_entry(seq)
    }

    /// Erased flash with `parts` written at their addresses.
    pub fn flash(parts: &[(u32, &[u8])]) -> Vec<u8> {
        let mut flash = vec![0xFF; FLASH_SIZE];
        for (address, data) in parts {
            let at = *address as usize;
            flash[at..at + data.len()].copy_from_slice(data);
        }
        flash
    }
}

/// esptool 5 from PyPI, installed once into a venv under cargo's test temp dir (or `$ESPTOOL`).
pub fn esptool() -> PathBuf {
    static ESPTOOL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
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

/// The Python of esptool's venv, which has pyserial (esptool depends on it).
pub fn python_with_pyserial() -> PathBuf {
    esptool().with_file_name("python")
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a setup command");
    assert!(status.success(), "{command:?} failed: {status}");
}

/// Runs `espchat ARGS` with no input, checks that it fails with exit status 1 and printed
/// nothing on stdout; returns its stderr.
pub fn fails_with(args: &[&str]) -> String {
    let output = espchat()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run espchat");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs esptool's write-flash of `image` at the app's offset against the board's port (a pty
/// or `socket://`) with the options a pty needs; returns its output.
pub fn esptool_write(
    board: &BoardProcess,
    global: &[&str],
    write: &[&str],
    image: &Path,
) -> String {
    let output = Command::new(esptool())
        .args(["--chip", "esp32c3", "-p"])
        .arg(&board.serial)
        .args(["--before", "no-reset", "--after", "no-reset"])
        .args(global)
        .arg("write-flash")
        .args(write)
        .arg(format!("0x{:x}", espchat::board::image::APP_OFFSET))
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

/// Reads from a raw TCP console until `needle` shows (or the deadline passes).
pub fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {:?}",
            String::from_utf8_lossy(&seen)
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => panic!("reading the console: {error}"),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}
