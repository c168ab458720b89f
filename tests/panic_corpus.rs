//! The panic scanner against real crash output: each `tests/panic_corpus/NAME.log` holds
//! console text as someone pasted it in a public issue (sources in the `.expect` comments and
//! the corpus README), `NAME.expect` the code addresses that must be found in it, in order.
//! The bytes go through the console decoder, as espchat's serial console feeds lines, so CRLF,
//! NULs and boot-ROM noise arrive the way they would from a board.

use std::fs;
use std::path::{Path, PathBuf};

use espchat::serial::{ConsoleDecoder, ConsoleOutput};
use espchat::trace::scan::PanicScanner;

/// Deleting or losing corpus files must fail the test, not shrink it.
const MIN_LOGS: usize = 19;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/panic_corpus")
}

fn corpus_logs() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut logs: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs
}

/// The addresses an `.expect` file lists: `0x` hex, one a line; `#` lines are comments.
fn expected(text: &str) -> Result<Vec<u32>, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.strip_prefix("0x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("not an address: {line:?}"))
        })
        .collect()
}

/// Every address the scanner reports for `bytes`, with the line it came from.
fn scan(bytes: &[u8]) -> Vec<(u32, String)> {
    let mut decoder = ConsoleDecoder::new(ConsoleDecoder::DEFAULT_MAX_LINE);
    let mut scanner = PanicScanner::new();
    let mut found = Vec::new();
    let mut on_output = |output: ConsoleOutput| {
        if let ConsoleOutput::Line(line) = output {
            let text = line.plain();
            for hit in scanner.line(&text) {
                found.push((hit.address, text.clone()));
            }
        }
    };
    decoder.feed(bytes, &mut on_output);
    decoder.flush(&mut on_output);
    found
}

/// A side-by-side listing of what was expected and what was found, marking the differences.
fn diff(expected: &[u32], found: &[(u32, String)]) -> String {
    let mut out = String::new();
    for i in 0..expected.len().max(found.len()) {
        let want = expected.get(i).map(|a| format!("{a:#010x}"));
        let got = found.get(i).map(|(a, _)| format!("{a:#010x}"));
        let mark = if want == got { "  " } else { "!!" };
        let line = found.get(i).map_or("", |(_, line)| line.as_str());
        out.push_str(&format!(
            "  {mark} expected {:<10}  found {:<10}  {line:?}\n",
            want.as_deref().unwrap_or("-"),
            got.as_deref().unwrap_or("-"),
        ));
    }
    out
}

#[test]
fn corpus_yields_exactly_the_expected_addresses() {
    let logs = corpus_logs();
    assert!(
        logs.len() >= MIN_LOGS,
        "only {} logs in {} (need {MIN_LOGS})",
        logs.len(),
        corpus_dir().display()
    );
    let mut failures = Vec::new();
    let mut total = 0;
    for log in &logs {
        let name = log.file_name().unwrap_or_default().to_string_lossy();
        let expect_path = log.with_extension("expect");
        let want = fs::read_to_string(&expect_path)
            .map_err(|e| format!("{}: {e}", expect_path.display()))
            .and_then(|text| expected(&text));
        let want = match want {
            Ok(want) => want,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let bytes = fs::read(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let found = scan(&bytes);
        total += want.len();
        if found
            .iter()
            .map(|(address, _)| *address)
            .ne(want.iter().copied())
        {
            failures.push(format!("{name}:\n{}", diff(&want, &found)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} logs differ:\n{}",
        failures.len(),
        logs.len(),
        failures.join("\n")
    );
    // The corpus is mostly crashes: an empty answer everywhere would be a broken scanner.
    assert!(
        total >= 100,
        "only {total} addresses expected in the corpus"
    );
}

#[test]
fn every_expect_has_its_log_and_a_source() {
    let dir = corpus_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|ext| ext == "expect") {
            assert!(
                path.with_extension("log").exists(),
                "{} has no .log",
                path.display()
            );
            let text = fs::read_to_string(&path).expect("readable .expect");
            assert!(
                text.lines()
                    .any(|line| line.starts_with('#') && line.contains("http")
                        || line.contains("tests/ip_corpus")),
                "{} names no source",
                path.display()
            );
        }
    }
}
