//! The IP watcher against boot logs: each `tests/ip_corpus/NAME.log` holds the raw bytes a
//! board sends (colour codes, CRLF, noise), `NAME.expect` the answer. The bytes go through the
//! console decoder the way espchat's serial console does, in several read sizes, because a
//! real port hands over whatever arrived: a whole boot log, one byte, or anything between.

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use espchat::serial::{BoardAddress, ConsoleDecoder, ConsoleOutput, IpWatcher};

/// Read sizes: all at once, byte by byte, an odd size that splits lines, escape sequences
/// and addresses at changing places, and a typical serial read.
const READ_SIZES: &[usize] = &[usize::MAX, 1, 7, 4096];

const MIN_LOGS: usize = 25;

#[derive(Debug, Default)]
struct Expected {
    ip: Option<Ipv4Addr>,
    port: Option<u16>,
    /// Addresses the board legitimately reported as its own before the final one.
    also_ips: BTreeSet<Ipv4Addr>,
    also_ports: BTreeSet<u16>,
}

impl Expected {
    fn parse(text: &str) -> Result<Self, String> {
        let mut expected = Expected::default();
        let (mut saw_ip, mut saw_port) = (false, false);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(key, value)| (key.trim(), value.trim()))
                .ok_or_else(|| format!("not `key = value`: {line:?}"))?;
            let bad = |what: &str| format!("bad {what} in {line:?}");
            match key {
                "ip" => {
                    saw_ip = true;
                    expected.ip = match value {
                        "none" => None,
                        value => Some(value.parse().map_err(|_| bad("address"))?),
                    };
                }
                "port" => {
                    saw_port = true;
                    expected.port = match value {
                        "none" => None,
                        value => Some(value.parse().map_err(|_| bad("port"))?),
                    };
                }
                "also" => {
                    expected
                        .also_ips
                        .insert(value.parse().map_err(|_| bad("address"))?);
                }
                "also_port" => {
                    expected
                        .also_ports
                        .insert(value.parse().map_err(|_| bad("port"))?);
                }
                _ => return Err(format!("unknown key {key:?}")),
            }
        }
        if !(saw_ip && saw_port) {
            return Err("needs both an `ip = ` and a `port = ` line".into());
        }
        Ok(expected)
    }

    fn allows_ip(&self, ip: Ipv4Addr) -> bool {
        self.ip == Some(ip) || self.also_ips.contains(&ip)
    }

    fn allows_port(&self, port: u16) -> bool {
        self.port == Some(port) || self.also_ports.contains(&port)
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ip_corpus")
}

fn corpus_files(extension: &str) -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    files.sort();
    files
}

/// What the watcher reports while `bytes` arrive in reads of `read_size`: every change, and
/// the answer at the end.
fn watch(bytes: &[u8], read_size: usize) -> (Vec<BoardAddress>, BoardAddress) {
    let mut decoder = ConsoleDecoder::new(ConsoleDecoder::DEFAULT_MAX_LINE);
    let mut watcher = IpWatcher::new();
    let mut changes = Vec::new();
    let mut on_output = |output: ConsoleOutput| {
        if let ConsoleOutput::Line(line) = output {
            let change = watcher.line(&line.plain());
            if change != BoardAddress::default() {
                changes.push(change);
            }
        }
    };
    for read in bytes.chunks(read_size.min(bytes.len()).max(1)) {
        decoder.feed(read, &mut on_output);
    }
    decoder.flush(&mut on_output);
    (changes, watcher.address())
}

/// Everything wrong with one log in one read size.
fn check(expected: &Expected, changes: &[BoardAddress], answer: BoardAddress) -> Vec<String> {
    let mut problems = Vec::new();
    if answer.ip != expected.ip || answer.port != expected.port {
        problems.push(format!(
            "answer ip {:?} port {:?}, expected ip {:?} port {:?}",
            answer.ip, answer.port, expected.ip, expected.port
        ));
    }
    let mut replayed = BoardAddress::default();
    for change in changes {
        if let Some(ip) = change.ip {
            if !expected.allows_ip(ip) {
                problems.push(format!("reported a forbidden ip {ip} on the way"));
            }
            if replayed.ip == Some(ip) {
                problems.push(format!(
                    "reported ip {ip} as a change but it was already so"
                ));
            }
            replayed.ip = Some(ip);
        }
        if let Some(port) = change.port {
            if !expected.allows_port(port) {
                problems.push(format!("reported a forbidden port {port} on the way"));
            }
            if replayed.port == Some(port) {
                problems.push(format!(
                    "reported port {port} as a change but it was already so"
                ));
            }
            replayed.port = Some(port);
        }
    }
    if replayed != answer {
        problems.push(format!(
            "the reported changes add up to {replayed:?}, not to the answer {answer:?}"
        ));
    }
    problems
}

#[test]
fn every_log_has_an_expect_file_and_the_corpus_is_big_enough() {
    let logs = corpus_files("log");
    assert!(
        logs.len() >= MIN_LOGS,
        "{} logs in {}, want at least {MIN_LOGS}",
        logs.len(),
        corpus_dir().display()
    );
    for log in &logs {
        let expect = log.with_extension("expect");
        assert!(expect.is_file(), "{} has no .expect file", log.display());
    }
    for expect in corpus_files("expect") {
        assert!(
            expect.with_extension("log").is_file(),
            "{} has no .log file",
            expect.display()
        );
        let text = fs::read_to_string(&expect).expect("readable .expect");
        if let Err(problem) = Expected::parse(&text) {
            panic!("{}: {problem}", expect.display());
        }
    }
}

#[test]
fn the_corpus_gives_the_expected_address_in_every_read_size() {
    let mut failures = Vec::new();
    for log in corpus_files("log") {
        let name = log
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let bytes = fs::read(&log).expect("readable .log");
        let Ok(text) = fs::read_to_string(log.with_extension("expect")) else {
            failures.push(format!("{name}: no readable .expect file"));
            continue;
        };
        let expected = match Expected::parse(&text) {
            Ok(expected) => expected,
            Err(problem) => {
                failures.push(format!("{name}.expect: {problem}"));
                continue;
            }
        };
        for &read_size in READ_SIZES {
            let (changes, answer) = watch(&bytes, read_size);
            for problem in check(&expected, &changes, answer) {
                let size = if read_size == usize::MAX {
                    "whole".to_string()
                } else {
                    format!("{read_size}-byte reads")
                };
                failures.push(format!("{name} ({size}): {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
