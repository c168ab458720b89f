//! A client's byte stream cut into sanitized text lines.
//!
//! Bytes pass through alacritty's `vte` parser, which understands UTF-8 and every kind of
//! terminal escape sequence; only printable characters reach the line. Line ends are found
//! before the parser sees the bytes, so no unterminated escape sequence can swallow a newline,
//! and each line starts with a fresh parser state.

use heapless::String;

/// Longest line the server relays, in bytes of sanitized UTF-8 text.
pub const MAX_LINE: usize = 256;

/// Raw bytes of one line that are fed to the escape parser. Past this, the rest of the line
/// is dropped unread: a line made of escape sequences or invalid bytes is cut like a long one.
const MAX_RAW_LINE: usize = 4 * MAX_LINE;

/// CAN: aborts any escape sequence in progress and flushes an incomplete UTF-8 sequence as
/// U+FFFD, which is what a line end must do.
const CANCEL: u8 = 0x18;

/// One complete line: its sanitized text and whether it was cut to [`MAX_LINE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String<MAX_LINE>,
    pub cut: bool,
}

/// Collects the bytes of one client into lines. Lines end in `\n`; a `\r` before it, like every
/// other control character, is dropped.
#[derive(Default)]
pub struct LineReader {
    parser: vte::Parser<0>,
    line: Text,
    raw_len: usize,
    /// The last (up to 3) bytes given to the parser, oldest first.
    recent: heapless::Vec<u8, 3>,
}

#[derive(Default)]
struct Text {
    text: String<MAX_LINE>,
    cut: bool,
    /// Backspace (BS or DEL) takes back the last character, as a terminal user means it.
    editing: bool,
}

impl Text {
    fn take_back(&mut self) {
        self.text.pop();
        self.cut = false;
    }
}

impl vte::Perform for Text {
    fn print(&mut self, c: char) {
        // vte hands C0 and C1 controls to `execute`; DEL still arrives here.
        if self.editing && c == '\x7f' {
            return self.take_back();
        }
        if self.cut || c.is_control() {
            return;
        }
        if self.text.push(c).is_err() {
            self.cut = true;
        }
    }

    fn execute(&mut self, byte: u8) {
        if self.editing && byte == 0x08 {
            self.take_back();
        }
    }
}

impl LineReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader for a console that a person types into: BS and DEL take back the last
    /// character instead of being dropped.
    pub fn editing() -> Self {
        let mut reader = Self::default();
        reader.line.editing = true;
        reader
    }

    /// The sanitized text of the unfinished line.
    pub fn partial(&self) -> &str {
        &self.line.text
    }

    /// Consumes bytes from the front of `input` up to and including the first `\n`, and returns
    /// the line that `\n` completed. Returns `None` once `input` is used up without a line end;
    /// the partial line is kept for the next call.
    pub fn next_line(&mut self, input: &mut &[u8]) -> Option<Line> {
        let bytes = *input;
        let (chunk, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
            Some(end) => (&bytes[..end], &bytes[end + 1..], true),
            None => (bytes, &bytes[bytes.len()..], false),
        };
        *input = rest;
        self.push(chunk);
        if !complete {
            return None;
        }
        self.advance(&[CANCEL]);
        let editing = self.line.editing;
        let line = core::mem::replace(
            &mut self.line,
            Text {
                editing,
                ..Text::default()
            },
        );
        self.raw_len = 0;
        Some(Line {
            text: line.text,
            cut: line.cut,
        })
    }

    /// Bytes of the unfinished line received so far (at most a few times [`MAX_LINE`]).
    pub fn pending(&self) -> usize {
        self.raw_len
    }

    /// vte 0.15 drops the character that follows a UTF-8 sequence completed across two
    /// `advance` calls when more text comes in the same call (alacritty/vte#159), so text would
    /// depend on how the reads cut it. While the parser may hold a partial character, it gets
    /// one byte per call, which cannot hit that bug.
    fn parse(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && ends_in_partial_char(&self.recent) {
            self.advance(&bytes[..1]);
            bytes = &bytes[1..];
        }
        if !bytes.is_empty() {
            self.advance(bytes);
        }
    }

    fn advance(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.line, bytes);
        for &byte in &bytes[bytes.len().saturating_sub(3)..] {
            if self.recent.is_full() {
                self.recent.remove(0);
            }
            // Room was just made.
            let _ = self.recent.push(byte);
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = MAX_RAW_LINE - self.raw_len;
        let take = &chunk[..chunk.len().min(room)];
        self.raw_len += take.len();
        // A console user may still take characters back from a line that is full.
        if !self.line.cut || self.line.editing {
            self.parse(take);
        }
        // Only after the bytes that fit were parsed: the line keeps the same text however the
        // reads cut it.
        if chunk.len() > room {
            self.line.cut = true;
        }
    }
}

/// Whether `bytes` ends in the start of a multi-byte UTF-8 character (which is where the
/// parser keeps a partial character between calls).
fn ends_in_partial_char(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|start| {
        matches!(
            core::str::from_utf8(&bytes[start..]),
            Err(error) if error.valid_up_to() == 0 && error.error_len().is_none()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(reads: &[&[u8]]) -> std::vec::Vec<(std::string::String, bool)> {
        let mut reader = LineReader::new();
        let mut out = std::vec::Vec::new();
        for read in reads {
            let mut input = *read;
            while let Some(line) = reader.next_line(&mut input) {
                out.push((line.text.as_str().into(), line.cut));
            }
        }
        out
    }

    fn texts(reads: &[&[u8]]) -> std::vec::Vec<std::string::String> {
        lines(reads).into_iter().map(|(text, _)| text).collect()
    }

    #[test]
    fn lf_and_crlf_end_lines() {
        assert_eq!(texts(&[b"one\ntwo\r\nthree\n"]), ["one", "two", "three"]);
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let mut reader = LineReader::new();
        let mut input: &[u8] = b"hel";
        assert_eq!(reader.next_line(&mut input), None);
        assert_eq!(reader.pending(), 3);
        let mut input: &[u8] = b"lo\n";
        assert_eq!(reader.next_line(&mut input).unwrap().text.as_str(), "hello");
        assert_eq!(reader.pending(), 0);
    }

    #[test]
    fn line_split_across_many_reads() {
        assert_eq!(
            texts(&[b"h", b"e", b"l", b"l", b"o", b"\r", b"\n"]),
            ["hello"]
        );
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(texts(&[b"\n\r\n"]), ["", ""]);
    }

    #[test]
    fn control_bytes_are_removed() {
        assert_eq!(texts(&[b"a\x00b\x07c\x08d\te\x7ff\rg\n"]), ["abcdefg"]);
    }

    #[test]
    fn escape_sequences_are_removed() {
        let input =
            b"\x1b[2J\x1b[1;31mred\x1b[0m \x1b]52;c;aGk=\x07clip \x1bPq#0\x1b\\dcs \x1b(Bok\n";
        assert_eq!(texts(&[input]), ["red clip dcs ok"]);
    }

    #[test]
    fn unterminated_escape_ends_at_the_line_end() {
        assert_eq!(texts(&[b"a\x1b]52;c;xxxx\nnext\n"]), ["a", "next"]);
        assert_eq!(texts(&[b"b\x1b[12\nnext\n"]), ["b", "next"]);
    }

    #[test]
    fn c1_controls_are_removed() {
        // U+0085 (NEL) and U+009B (CSI) as UTF-8, and as raw 8-bit bytes.
        assert_eq!(texts(&["x\u{85}y\u{9b}z\n".as_bytes()]), ["xyz"]);
        assert_eq!(texts(&[b"x\x85y\x9bz\n"]), ["xyz"]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(texts(&[b"a\xffb\xe2\x82c\n"]), ["a\u{fffd}b\u{fffd}c"]);
        // An incomplete sequence at the line end.
        assert_eq!(texts(&[b"d\xe2\x82\n"]), ["d\u{fffd}"]);
    }

    #[test]
    fn utf8_split_across_reads_is_merged() {
        let euro = "€".as_bytes();
        assert_eq!(texts(&[&euro[..1], &euro[1..2], &euro[2..], b"\n"]), ["€"]);
    }

    #[test]
    fn text_after_a_split_character_is_kept() {
        // alacritty/vte#159: '®' split after its first byte, then '0' and the start of another
        // character in the next read; vte alone would drop the '0'.
        let input = "®0ᝠ\n".as_bytes();
        for at in 1..input.len() {
            assert_eq!(
                texts(&[&input[..at], &input[at..]]),
                ["®0ᝠ"],
                "split at {at}"
            );
        }
        assert_eq!(texts(&[b"a\xc2", b"\xae0\xe1", b"\x9d\xa0\n"]), ["a®0ᝠ"]);
    }

    #[test]
    fn long_line_is_cut_at_the_limit() {
        let long = [b'x'; 1000];
        let got = lines(&[&long, b"\n"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.len(), MAX_LINE);
        assert!(got[0].1);
    }

    #[test]
    fn line_of_exactly_the_limit_is_not_cut() {
        let exact = [b'x'; MAX_LINE];
        let got = lines(&[&exact, b"\n"]);
        assert_eq!(got[0].0.len(), MAX_LINE);
        assert!(!got[0].1);
    }

    #[test]
    fn cut_respects_character_boundaries() {
        // 255 ASCII bytes then a 3-byte character: it does not fit, and nothing after it is kept.
        let mut input = std::vec![b'x'; MAX_LINE - 1];
        input.extend_from_slice("€yz\n".as_bytes());
        let got = lines(&[&input]);
        assert_eq!(got[0].0.len(), MAX_LINE - 1);
        assert!(got[0].1);
    }

    #[test]
    fn line_over_the_raw_limit_in_one_read_keeps_its_text() {
        // Over MAX_RAW_LINE bytes in a single read: the text that fits is kept, as it is when
        // the same bytes come in smaller reads.
        let long = [b'x'; 2 * MAX_RAW_LINE];
        let expected = [("x".repeat(MAX_LINE), true)];
        assert_eq!(lines(&[&long, b"\n"]), expected);
        let mut reads: std::vec::Vec<&[u8]> = long.chunks(MAX_RAW_LINE / 2).collect();
        reads.push(b"\n");
        assert_eq!(lines(&reads), expected);
    }

    #[test]
    fn huge_escape_sequence_is_bounded_and_cut() {
        let mut reader = LineReader::new();
        let mut payload = std::vec![b'A'; 1 << 20];
        payload[..3].copy_from_slice(b"\x1b]5");
        let mut input = &payload[..];
        assert_eq!(reader.next_line(&mut input), None);
        assert!(reader.pending() <= MAX_RAW_LINE);
        let mut end: &[u8] = b"\nafter\n";
        let line = reader.next_line(&mut end).unwrap();
        assert_eq!((line.text.as_str(), line.cut), ("", true));
        assert_eq!(reader.next_line(&mut end).unwrap().text.as_str(), "after");
    }
}
