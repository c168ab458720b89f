//! The chain as a whole, and the harness the stages' own tests share: every input is
//! decoded whole, split at every point and byte by byte, and must give the same lines.

use proptest::prelude::*;

use super::line::{CurrentLine, cut_marker};
use super::utf8::Utf8Merge;
use super::*;

pub(super) const MAX: usize = ConsoleDecoder::DEFAULT_MAX_LINE;

/// What a stream leaves behind: the finished lines and the unfinished one.
#[derive(Debug, PartialEq)]
pub(super) struct Run {
    pub(super) lines: Vec<StyledLine>,
    pub(super) partial: Option<StyledLine>,
}

impl Run {
    pub(super) fn plain(&self) -> Vec<String> {
        self.lines.iter().map(StyledLine::plain).collect()
    }

    pub(super) fn partial_plain(&self) -> Option<String> {
        self.partial.as_ref().map(StyledLine::plain)
    }
}

/// Feeds `reads` one by one, checking every event on the way.
pub(super) fn run_reads(reads: &[&[u8]], max_line: usize) -> (Run, Vec<ConsoleOutput>) {
    let mut decoder = ConsoleDecoder::new(max_line);
    let mut events = Vec::new();
    for read in reads {
        let before = events.len();
        decoder.feed(read, &mut |output| events.push(output));
        let partials = events[before..]
            .iter()
            .filter(|e| matches!(e, ConsoleOutput::Partial(_)))
            .count();
        assert!(partials <= 1, "more than one Partial in one feed");
        if partials == 1 {
            assert!(matches!(events.last(), Some(ConsoleOutput::Partial(_))));
        }
    }
    for event in &events {
        let (ConsoleOutput::Line(line) | ConsoleOutput::Partial(line)) = event;
        assert_clean(line, max_line);
    }
    let lines = events
        .iter()
        .filter_map(|e| match e {
            ConsoleOutput::Line(line) => Some(line.clone()),
            ConsoleOutput::Partial(_) => None,
        })
        .collect();
    let partial = decoder.partial().cloned();
    (Run { lines, partial }, events)
}

fn assert_clean(line: &StyledLine, max_line: usize) {
    for span in &line.spans {
        assert!(!span.text.is_empty(), "empty span in {line:?}");
        assert!(
            !span.text.chars().any(|c| c.is_control() || c == '\x1b'),
            "control character in {line:?}"
        );
    }
    for pair in line.spans.windows(2) {
        assert_ne!(pair[0].style, pair[1].style, "adjacent spans of one style");
    }
    assert!(line.len() <= max_line + cut_marker(max_line).len());
}

/// Decodes `input` in one read, then split at every boundary into two reads, into
/// three reads when short, and byte by byte: all must give the same lines and the
/// same unfinished line.
pub(super) fn decode_with(input: &[u8], max_line: usize) -> Run {
    let (whole, _) = run_reads(&[input], max_line);
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        let (split, _) = run_reads(&[a, b], max_line);
        assert_eq!(split, whole, "split at {i} of {input:?}");
    }
    if input.len() <= 48 {
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let reads = [&input[..i], &input[i..j], &input[j..]];
                let (split, _) = run_reads(&reads, max_line);
                assert_eq!(split, whole, "split at {i} and {j} of {input:?}");
            }
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (split, _) = run_reads(&bytes, max_line);
    assert_eq!(split, whole, "byte by byte: {input:?}");
    whole
}

pub(super) fn decode(input: &[u8]) -> Run {
    decode_with(input, MAX)
}

pub(super) fn lines(input: &[u8]) -> Vec<String> {
    decode(input).plain()
}

pub(super) fn fg(color: Color) -> Style {
    Style {
        fg: Some(color),
        ..Style::default()
    }
}

fn span(text: &str, style: Style) -> Span {
    Span {
        text: text.to_owned(),
        style,
    }
}

pub(super) fn line(spans: &[(&str, Style)]) -> StyledLine {
    StyledLine {
        spans: spans
            .iter()
            .map(|&(text, style)| span(text, style))
            .collect(),
    }
}

fn partial(text: &str) -> ConsoleOutput {
    ConsoleOutput::Partial(StyledLine::new(text, Style::default()))
}

fn finished(text: &str) -> ConsoleOutput {
    ConsoleOutput::Line(StyledLine::new(text, Style::default()))
}

#[test]
fn lf_ends_a_line_and_blank_lines_count() {
    let run = decode(b"one\ntwo\n\nthree");
    assert_eq!(run.plain(), ["one", "two", ""]);
    assert_eq!(run.partial_plain().as_deref(), Some("three"));
}

#[test]
fn crlf_is_one_line_end_even_across_reads() {
    assert_eq!(lines(b"one\r\ntwo\r\n"), ["one", "two"]);
    let (_, events) = run_reads(&[b"abc\r", b"\n"], MAX);
    assert_eq!(events, [partial("abc"), finished("abc")]);
}

#[test]
fn cr_cr_lf_is_one_line_end() {
    assert_eq!(lines(b"a\r\r\nb\r\r\n"), ["a", "b"]);
}

#[test]
fn bare_cr_redraws_the_unfinished_line() {
    let run = decode(b"10%\r50%\r100%");
    assert!(run.lines.is_empty());
    assert_eq!(run.partial_plain().as_deref(), Some("100%"));
    assert_eq!(lines(b"12345\rab\n"), ["ab"]);
    let (_, events) = run_reads(&[b"10%\r", b"50%\r", b"100%\r\n"], MAX);
    assert_eq!(events, [partial("10%"), partial("50%"), finished("100%")]);
}

#[test]
fn redraw_with_erase_and_colour_keeps_only_the_new_text() {
    let run = decode(b"old text\r\x1b[K\x1b[32mnew\x1b[0m\n");
    assert_eq!(run.lines, [line(&[("new", fg(Color::Indexed(2)))])]);
}

#[test]
fn line_end_cancels_unterminated_sequences() {
    assert_eq!(lines(b"a\x1b]0;title\nb\n"), ["a", "b"]);
    assert_eq!(lines(b"a\x1b]8;;http://x\nb\n"), ["a", "b"]);
    assert_eq!(lines(b"a\x1bPq#0;2\nb\n"), ["a", "b"]);
    assert_eq!(lines(b"a\x1b_payload\nb\n"), ["a", "b"]);
    assert_eq!(lines(b"a\x1b[31\nm\n"), ["a", "m"]);
    assert_eq!(lines(b"a\x1b\nb\n"), ["a", "b"]);
}

#[test]
fn other_csi_sequences_are_removed() {
    assert_eq!(
        lines(b"\x1b[2J\x1b[Ha\x1b[K\x1b[1;5Hb\x1b[?25l\x1b[3Ac\x1b[6n\x1b[1 qd\n"),
        ["abcd"]
    );
}

#[test]
fn osc_is_removed_with_its_payload() {
    assert_eq!(lines(b"a\x1b]52;c;SGVsbG8=\x07b\n"), ["ab"]);
    assert_eq!(lines(b"a\x1b]0;title\x1b\\b\n"), ["ab"]);
    assert_eq!(
        lines(b"see \x1b]8;;https://example.com\x1b\\the docs\x1b]8;;\x1b\\.\n"),
        ["see the docs."]
    );
}

#[test]
fn dcs_sos_pm_apc_and_single_escapes_are_removed() {
    assert_eq!(lines(b"a\x1bPq#0;2;0;0;0#0~~\x1b\\b\n"), ["ab"]);
    assert_eq!(
        lines(b"a\x1bXsos\x1b\\b\x1b^pm\x1b\\c\x1b_apc\x1b\\d\n"),
        ["abcd"]
    );
    assert_eq!(lines(b"a\x1b7\x1b8\x1bc\x1b(B\x1b=\x1bMb\n"), ["ab"]);
}

#[test]
fn c1_controls_are_removed_in_both_encodings() {
    // Raw 8-bit bytes, 8-bit CSI among them: the control goes, its arguments are
    // ordinary text (vte, like most terminals, reads only 7-bit sequences).
    assert_eq!(lines(b"a\x85b\x9b31mc\x9d0;t\x9cd\n"), ["ab31mc0;td"]);
    assert_eq!(
        lines("a\u{85}b\u{9b}31mc\u{90}d\u{9f}e\n".as_bytes()),
        ["ab31mcde"]
    );
}

#[test]
fn other_c0_controls_and_del_are_removed() {
    assert_eq!(
        lines(b"a\x00b\x07c\x7fd\x0be\x0cf\x01g\x1ah\x1ci\x05j\n"),
        ["abcdefghij"]
    );
}

#[test]
fn memory_stays_bounded_for_4_mb_without_a_newline() {
    let limit = MAX + cut_marker(MAX).len();
    let mut decoder = ConsoleDecoder::new(MAX);
    let read = [b'x'; 4096];
    let mut partials = 0;
    for _ in 0..1024 {
        decoder.feed(&read, &mut |output| {
            assert!(matches!(output, ConsoleOutput::Partial(_)));
            partials += 1;
        });
        let line = decoder.partial().expect("an unfinished line");
        assert!(line.len() <= limit, "{} bytes", line.len());
    }
    // Once cut, the line no longer changes, so it is not reported again.
    assert_eq!(partials, MAX / read.len() + 1);
    assert!(
        decoder
            .partial()
            .unwrap()
            .plain()
            .ends_with(&cut_marker(MAX))
    );
}

#[test]
fn one_megabyte_in_an_unterminated_osc_is_dropped_and_the_next_line_survives() {
    let mut decoder = ConsoleDecoder::default();
    let mut events = Vec::new();
    decoder.feed(b"before\x1b]52;c;", &mut |o| events.push(o));
    for _ in 0..256 {
        decoder.feed(&[b'A'; 4096], &mut |o| events.push(o));
    }
    decoder.feed(b"\nafter\n", &mut |o| events.push(o));
    assert_eq!(
        events,
        [partial("before"), finished("before"), finished("after")]
    );
}

#[test]
fn binary_garbage_stays_bounded_and_clean() {
    let max_line = 512;
    let mut decoder = ConsoleDecoder::new(max_line);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut read = [0u8; 4096];
    for _ in 0..256 {
        for byte in &mut read {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        decoder.feed(&read, &mut |output| {
            let (ConsoleOutput::Line(line) | ConsoleOutput::Partial(line)) = output;
            assert_clean(&line, max_line);
        });
    }
}

#[test]
fn partial_is_reported_once_per_read_and_only_when_changed() {
    let mut decoder = ConsoleDecoder::default();
    let mut feed = |bytes: &[u8]| {
        let mut events = Vec::new();
        decoder.feed(bytes, &mut |o| events.push(o));
        events
    };
    assert_eq!(feed(b"ab"), [partial("ab")]);
    assert_eq!(
        feed(b"c\nd\ne"),
        [finished("abc"), finished("d"), partial("e")]
    );
    assert_eq!(feed(b"\n"), [finished("e")]);
    // Nothing visible changed: no Partial.
    assert_eq!(feed(b"\x1b[0m\x07"), []);
    assert_eq!(feed(b"x\x08"), []);
    // An emptied line takes back the Partial shown before.
    assert_eq!(feed(b"q"), [partial("q")]);
    assert_eq!(
        feed(b"\x08"),
        [ConsoleOutput::Partial(StyledLine::default())]
    );
    assert_eq!(feed(b"\x08"), []);
}

#[test]
fn flush_finishes_the_unfinished_line() {
    let mut decoder = ConsoleDecoder::default();
    let mut events = Vec::new();
    decoder.feed(b"abc\x1b]0;x", &mut |o| events.push(o));
    decoder.flush(&mut |o| events.push(o));
    decoder.feed(b"def\n", &mut |o| events.push(o));
    decoder.feed(b"g\xe2\x82", &mut |o| events.push(o));
    decoder.flush(&mut |o| events.push(o));
    decoder.flush(&mut |o| events.push(o));
    assert_eq!(
        events,
        [
            partial("abc"),
            finished("abc"),
            finished("def"),
            partial("g"),
            finished("g\u{fffd}"),
        ]
    );
    assert!(decoder.partial().is_none());
}

#[test]
fn sanitize_keeps_only_printable_text_on_one_line() {
    assert_eq!(
        sanitize(b"\x1b[31mhi\x1b[0m \x07there\x1b]0;t\x07"),
        "hi there"
    );
    assert_eq!(sanitize(b"hello\r\n"), "hello");
    assert_eq!(sanitize(b"one\ntwo\r\nthree"), "one two three");
    assert_eq!(sanitize(b"a\tb\xff\x9b"), "a       b\u{fffd}");
    assert_eq!(sanitize(b""), "");
    assert_eq!(
        sanitize(b"spoof\nboard! ip 6.6.6.6"),
        "spoof board! ip 6.6.6.6"
    );
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let pieces: Vec<&'static [u8]> = vec![
        b"\r",
        b"\n",
        b"\r\n",
        b"\t",
        b"\x08",
        b"\x08 \x08",
        b"\x07",
        b"\x7f",
        "\u{e9}".as_bytes(),
        "\u{65e5}\u{672c}".as_bytes(),
        "\u{1f600}".as_bytes(),
        "\u{9b}".as_bytes(),
        b"\x1b[0m",
        b"\x1b[1;31m",
        b"\x1b[38;5;208m",
        b"\x1b[48;2;1;2;3m",
        b"\x1b[38:2::4:5:6m",
        b"\x1b[2J",
        b"\x1b[K",
        b"\x1b[?25l",
        b"\x1b]0;title\x07",
        b"\x1b]8;;http://x\x1b\\",
        b"\x1b]52;c;SGk=",
        b"\x1bPq#0;2",
        b"\x1b\\",
        b"\x1bX",
        b"\x1b_",
        b"\x1b",
        b"\x1b[",
        b"\x1b[1;",
        b"\x9b",
        b"\x85",
        b"\xff",
        b"\xe2\x82",
        b"\xf0\x9f",
        b"\xc0\x80",
        b"\xed\xa0\x80",
    ];
    prop_oneof![
        // Multi-byte characters next to ASCII, so that splits land inside them.
        4 => "[a-zA-Z0-9 .:()%\u{e9}\u{f1}\u{20ac}\u{65e5}\u{1f600}]{1,12}"
            .prop_map(String::into_bytes),
        4 => prop::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(fragment(), 0..40).prop_map(|fragments| fragments.concat())
}

proptest! {
    #[test]
    fn any_split_gives_the_same_lines_and_partial(
        bytes in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        max_line in prop::sample::select(vec![4usize, 16, 64, MAX]),
    ) {
        let (whole, _) = run_reads(&[&bytes], max_line);
        let (split_run, _) = run_reads(&split(&bytes, &cuts), max_line);
        prop_assert_eq!(&split_run, &whole);
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        let (bytewise_run, _) = run_reads(&bytewise, max_line);
        prop_assert_eq!(&bytewise_run, &whole);
    }

    #[test]
    fn the_ascii_fast_path_matches_printing_char_by_char(
        bytes in stream(),
        max_line in prop::sample::select(vec![4usize, 16, 64, MAX]),
    ) {
        let (fast, _) = run_reads(&[&bytes], max_line);
        prop_assert_eq!(fast, run_char_by_char(&bytes, max_line));
    }

    #[test]
    fn sanitize_output_has_no_controls(bytes in stream()) {
        let text = sanitize(&bytes);
        prop_assert!(!text.chars().any(char::is_control), "{:?}", text);
    }
}

/// The chain without the fast path: vte prints every character.
fn run_char_by_char(bytes: &[u8], max_line: usize) -> Run {
    let mut utf8 = Utf8Merge::default();
    let mut parser = vte::Parser::<0>::default();
    let mut line = CurrentLine::new(max_line);
    let mut lines = Vec::new();
    let mut out = |output| {
        if let ConsoleOutput::Line(l) = output {
            lines.push(l);
        }
    };
    utf8.feed(bytes, &mut |text| {
        for (i, piece) in text.split('\n').enumerate() {
            if i > 0 {
                parser.advance(&mut line, &[CAN]);
                line.end_line(&mut out);
            }
            parser.advance(&mut line, piece.as_bytes());
        }
    });
    let partial = (!line.line.is_empty()).then(|| line.line.clone());
    Run { lines, partial }
}

/// Cuts `bytes` into reads at the given points; empty reads are kept, they happen too.
pub(super) fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    espchat_core::split_reads(bytes, &mut points).collect()
}

/// Throughput on ESP-IDF-like log text with colours, for the report, not a gate:
/// `cargo test --release -- --ignored --nocapture throughput`.
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn throughput() {
    let lines = [
        "\x1b[0;32mI (312) wifi:new:<6,0>, old:<1,0>, ap:<255,255>, sta:<6,0>, prof:1\x1b[0m\r\n",
        "\x1b[0;32mI (1234) espchat: got ip: 192.168.1.42\x1b[0m\r\n",
        "\x1b[0;33mW (2345) wifi: beacon timeout, reconnecting\x1b[0m\r\n",
        "\x1b[0;31mE (3456) espchat: client 3 disconnected: connection reset\x1b[0m\r\n",
        "rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
        "\x1b[0;32mI (99) cpu_start: Pro cpu up.\x1b[0m\r\n",
    ];
    let mut stream = Vec::with_capacity(101 << 20);
    while stream.len() < 100 << 20 {
        for line in lines {
            stream.extend_from_slice(line.as_bytes());
        }
    }
    let mut decoder = ConsoleDecoder::default();
    let mut count = 0usize;
    let started = std::time::Instant::now();
    for read in stream.chunks(4096) {
        decoder.feed(read, &mut |output| {
            if let ConsoleOutput::Line(line) = output {
                count += line.len();
            }
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    let mb = stream.len() as f64 / 1e6;
    println!(
        "{mb:.0} MB in {seconds:.2} s: {:.0} MB/s ({count} bytes of text)",
        mb / seconds
    );
    assert!(count > 0);
}
