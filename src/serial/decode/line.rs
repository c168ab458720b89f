//! Stage 3b: the unfinished line, as `vte` drives it: printable text in the current style,
//! CR redraws, TAB and BS; every other control and sequence is dropped. Stage 4, the cap of
//! `max_line` bytes per line, lives here too, since every character goes through it.

use std::mem;

use super::ConsoleOutput;
use super::sgr;
use super::style::{Span, Style, StyledLine};

/// The unfinished line and the terminal state that shapes it; vte's `Perform`.
pub(super) struct CurrentLine {
    pub(super) line: StyledLine,
    /// Bytes of text in `line`, kept so the cap check does not sum the spans.
    len: usize,
    /// Display columns, for TAB stops.
    col: usize,
    style: Style,
    /// A CR arrived: the next text replaces the line, but a LF right after it is a
    /// plain line end (CRLF), so the line is not cleared yet.
    cr_pending: bool,
    /// The cap was hit: the rest of the line is dropped until it ends.
    cut: bool,
    changed: bool,
    /// The consumer shows a non-empty `Partial` that no `Line` has replaced yet.
    partial_shown: bool,
    /// vte is known to be in its ground state (no sequence in progress): set where
    /// vte returns to it, and only there, since vte does not tell its state.
    pub(super) in_ground: bool,
    max_line: usize,
    cut_marker: String,
}

const TAB_STOP: usize = 8;

impl CurrentLine {
    pub(super) fn new(max_line: usize) -> Self {
        Self {
            line: StyledLine::default(),
            len: 0,
            col: 0,
            style: Style::default(),
            cr_pending: false,
            cut: false,
            changed: false,
            partial_shown: false,
            in_ground: true,
            max_line,
            cut_marker: cut_marker(max_line),
        }
    }

    pub(super) fn end_line(&mut self, out: &mut impl FnMut(ConsoleOutput)) {
        out(ConsoleOutput::Line(mem::take(&mut self.line)));
        self.start_line();
    }

    /// Resets the per-line state; the style persists, as on a terminal.
    pub(super) fn start_line(&mut self) {
        self.len = 0;
        self.col = 0;
        self.cr_pending = false;
        self.cut = false;
        self.changed = false;
        self.partial_shown = false;
    }

    pub(super) fn report_partial(&mut self, out: &mut impl FnMut(ConsoleOutput)) {
        if !mem::take(&mut self.changed) {
            return;
        }
        if !self.line.is_empty() {
            out(ConsoleOutput::Partial(self.line.clone()));
            self.partial_shown = true;
        } else if self.partial_shown {
            out(ConsoleOutput::Partial(StyledLine::default()));
            self.partial_shown = false;
        }
    }

    /// The CR redraw: the device rewrites the line from its start.
    fn redraw(&mut self) {
        self.cr_pending = false;
        if self.len > 0 || self.cut {
            self.line.spans.clear();
            self.changed = true;
        }
        self.len = 0;
        self.col = 0;
        self.cut = false;
    }

    fn put_char(&mut self, ch: char) {
        if self.cr_pending {
            self.redraw();
        }
        if self.cut {
            return;
        }
        if self.len + ch.len_utf8() > self.max_line {
            self.cut_line();
            return;
        }
        self.len += ch.len_utf8();
        self.col += columns(ch);
        self.changed = true;
        match self.line.spans.last_mut() {
            Some(last) if last.style == self.style => last.text.push(ch),
            _ => {
                let mut text = String::with_capacity(SPAN_CAPACITY);
                text.push(ch);
                self.line.spans.push(Span {
                    text,
                    style: self.style,
                });
            }
        }
    }

    /// `put_char` for a run of printable ASCII, with the same result.
    pub(super) fn put_ascii(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.cr_pending {
            self.redraw();
        }
        if self.cut {
            return;
        }
        let room = self.max_line.saturating_sub(self.len);
        let kept = &text[..text.len().min(room)];
        if !kept.is_empty() {
            self.len += kept.len();
            self.col += kept.len();
            self.changed = true;
            self.append(kept, self.style);
        }
        if kept.len() < text.len() {
            self.cut_line();
        }
    }

    fn cut_line(&mut self) {
        self.cut = true;
        self.changed = true;
        let marker = mem::take(&mut self.cut_marker);
        self.append(&marker, Style::default());
        self.cut_marker = marker;
    }

    fn append(&mut self, text: &str, style: Style) {
        match self.line.spans.last_mut() {
            Some(last) if last.style == style => last.text.push_str(text),
            _ => {
                let mut owned = String::with_capacity(text.len().max(SPAN_CAPACITY));
                owned.push_str(text);
                self.line.spans.push(Span { text: owned, style });
            }
        }
    }

    fn tab(&mut self) {
        if self.cr_pending {
            self.redraw();
        }
        for _ in 0..TAB_STOP - self.col % TAB_STOP {
            self.put_char(' ');
        }
    }

    fn backspace(&mut self) {
        // After a CR the cursor is at the start of the line, and after a cut the
        // marker must stay.
        if self.cr_pending || self.cut {
            return;
        }
        let Some(last) = self.line.spans.last_mut() else {
            return;
        };
        if let Some(ch) = last.text.pop() {
            self.len -= ch.len_utf8();
            self.col = self.col.saturating_sub(columns(ch));
            self.changed = true;
        }
        if last.text.is_empty() {
            self.line.spans.pop();
        }
    }
}

/// A new span's first allocation: most ESP-IDF log lines are one span of this order.
const SPAN_CAPACITY: usize = 128;

impl vte::Perform for CurrentLine {
    fn print(&mut self, ch: char) {
        // vte prints DEL as a character.
        if !ch.is_control() {
            self.put_char(ch);
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\r' => self.cr_pending = true,
            b'\t' => self.tab(),
            0x08 => self.backspace(),
            _ => {}
        }
    }

    fn csi_dispatch(
        &mut self,
        params: &vte::Params,
        intermediates: &[u8],
        ignore: bool,
        action: char,
    ) {
        // With a private marker (`ESC [ > 4 ; 1 m`) it is not SGR.
        if action == 'm' && intermediates.is_empty() && !ignore {
            sgr::apply(&mut self.style, params);
        }
        self.in_ground = true;
    }

    fn esc_dispatch(&mut self, _intermediates: &[u8], _ignore: bool, _byte: u8) {
        self.in_ground = true;
    }

    fn osc_dispatch(&mut self, _params: &[&[u8]], bell_terminated: bool) {
        // Ended by ESC, vte goes on to read `ESC \` and ends in `esc_dispatch`.
        if bell_terminated {
            self.in_ground = true;
        }
    }

    fn terminated(&self) -> bool {
        self.in_ground
    }
}

/// Display columns of a printable character, for TAB stops only: the main blocks of
/// combining marks take none and of East Asian wide characters and emoji two, after
/// Markus Kuhn's `wcwidth`. An approximation is enough for where the next TAB stop
/// falls after non-ASCII text, and it saves a dependency with full Unicode tables.
fn columns(ch: char) -> usize {
    match u32::from(ch) {
        0x20..=0x7E => 1,
        0x0300..=0x036F
        | 0x0483..=0x0489
        | 0x0591..=0x05BD
        | 0x0610..=0x061A
        | 0x064B..=0x065F
        | 0x1AB0..=0x1AFF
        | 0x1DC0..=0x1DFF
        | 0x200B..=0x200F
        | 0x20D0..=0x20FF
        | 0xFE00..=0xFE0F
        | 0xFE20..=0xFE2F
        | 0xE0100..=0xE01EF => 0,
        0x1100..=0x115F
        | 0x231A..=0x231B
        | 0x2329..=0x232A
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x2FFFD
        | 0x30000..=0x3FFFD => 2,
        _ => 1,
    }
}

pub(super) fn cut_marker(max_line: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    let size = match max_line {
        n if n >= MIB && n % MIB == 0 => format!("{} MiB", n / MIB),
        n if n >= KIB && n % KIB == 0 => format!("{} KiB", n / KIB),
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    };
    format!(" [line cut: longer than {size}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::decode::Color;
    use crate::serial::decode::tests::{MAX, decode, decode_with, fg, line, lines};

    #[test]
    fn tab_expands_to_the_next_multiple_of_eight() {
        assert_eq!(lines(b"\tx\n"), ["        x"]);
        assert_eq!(lines(b"a\tb\n"), ["a       b"]);
        assert_eq!(lines(b"12345678\tx\n"), ["12345678        x"]);
        // A wide character takes two columns, a combining mark none.
        assert_eq!(lines("日本\tx\n".as_bytes()), ["日本    x"]);
        assert_eq!(
            lines("e\u{301}\u{1f600}\tx\n".as_bytes()),
            ["e\u{301}\u{1f600}     x"]
        );
        assert_eq!(
            lines("\u{e9}\u{20ac}\tx\n".as_bytes()),
            ["\u{e9}\u{20ac}      x"]
        );
        assert_eq!(lines(b"abc\r\tx\n"), ["        x"]);
    }

    #[test]
    fn backspace_deletes_the_last_character() {
        assert_eq!(lines(b"abc\x08 \x08d\n"), ["abd"]);
        assert_eq!(lines(b"\x08\x08a\n"), ["a"]);
        assert_eq!(lines("a\u{e9}\x08b\n".as_bytes()), ["ab"]);
        let run = decode(b"a\x1b[31mb\x08\x1b[0mc\n");
        assert_eq!(run.lines, [line(&[("ac", Style::default())])]);
    }

    #[test]
    fn a_long_line_is_cut_once_with_a_marker() {
        let run = decode_with(b"0123456789abcdef\nnext\n", 10);
        assert_eq!(
            run.plain(),
            ["0123456789 [line cut: longer than 10 bytes]", "next"]
        );
        // A character is never split at the cap.
        let run = decode_with("012345678\u{e9}xyz\n".as_bytes(), 10);
        assert_eq!(run.plain(), ["012345678 [line cut: longer than 10 bytes]"]);
        // Exactly at the cap is not cut.
        assert_eq!(decode_with(b"0123456789\n", 10).plain(), ["0123456789"]);
        // A redraw starts the line afresh.
        let run = decode_with(b"0123456789abc\rok", 10);
        assert_eq!(run.partial_plain().as_deref(), Some("ok"));
    }

    #[test]
    fn the_marker_keeps_the_cut_text_style_apart() {
        let run = decode_with(b"\x1b[31mabcdef\n", 4);
        assert_eq!(
            run.lines,
            [line(&[
                ("abcd", fg(Color::Indexed(1))),
                (" [line cut: longer than 4 bytes]", Style::default()),
            ])]
        );
    }

    #[test]
    fn the_marker_names_the_cap() {
        assert_eq!(cut_marker(MAX), " [line cut: longer than 16 KiB]");
        assert_eq!(
            cut_marker(2 * 1024 * 1024),
            " [line cut: longer than 2 MiB]"
        );
        assert_eq!(cut_marker(1000), " [line cut: longer than 1000 bytes]");
    }
}
