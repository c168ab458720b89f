//! Turns raw serial bytes into sanitized, styled lines, with no IO.
//!
//! The chain, in the order bytes go through it:
//! 1. `Utf8Merge` decodes UTF-8 across reads, so that `vte` only ever sees whole
//!    characters: vte 0.15 drops a character after a code point split across two
//!    `advance` calls (alacritty/vte#159).
//! 2. The text is split at LF before `vte` sees it, and `vte` gets a CAN at each LF,
//!    because `vte` ignores LF inside OSC strings: one stray `ESC ]` would otherwise
//!    swallow every following line.
//! 3. `vte` parses escape sequences; `CurrentLine` keeps SGR as styles, handles CR
//!    redraws, TAB and BS, and drops every other control and sequence.
//! 4. The line is capped at `max_line` bytes, so memory stays bounded whatever the
//!    device sends.
//!
//! One file per stage, with its tests: `utf8` (1), `line` (3, 4) and `sgr` (the styles of 3);
//! stage 2 and the decoder that runs the chain are here. `hex` is the hex view, which replaces
//! the chain; `style` is what a decoded line is.

mod hex;
mod line;
mod sgr;
mod style;
#[cfg(test)]
mod tests;
mod utf8;

pub use hex::HexDump;
pub use style::{Color, Span, Style, StyledLine};

use line::CurrentLine;
use utf8::Utf8Merge;

/// What [`ConsoleDecoder`] reports. A `Line` finishes the unfinished line, so a
/// consumer drops the `Partial` it shows when a `Line` arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleOutput {
    /// A finished line.
    Line(StyledLine),
    /// The unfinished line changed (a prompt, a progress line being redrawn): replaces
    /// the previous `Partial`. It is empty only to take back a `Partial` shown before,
    /// e.g. after the device erased it with backspaces.
    Partial(StyledLine),
}

/// The serial console decoder: raw bytes from the port in, sanitized styled lines out.
pub struct ConsoleDecoder {
    utf8: Utf8Merge,
    /// Boxed because vte's parser is about 500 bytes: a decoder stays cheap to move and
    /// to keep in an enum beside a small alternative such as `HexDump`.
    parser: Box<vte::Parser<0>>,
    line: CurrentLine,
}

/// Cancels any escape sequence in progress (ECMA-48 CAN).
const CAN: u8 = 0x18;

impl ConsoleDecoder {
    pub const DEFAULT_MAX_LINE: usize = 16 * 1024;

    /// `max_line` caps the text of one line in bytes; a longer line is cut and marked.
    pub fn new(max_line: usize) -> Self {
        Self {
            utf8: Utf8Merge::default(),
            // The size 0 makes vte keep no OSC payload at all (we drop OSC anyway), and
            // without vte's `std` feature the buffer is a fixed array, not a growing Vec.
            parser: Box::new(vte::Parser::<0>::default()),
            line: CurrentLine::new(max_line),
        }
    }

    /// Feeds bytes as they came from the port; calls `out` for each finished line,
    /// and once with `Partial` at the end of the call if the unfinished line changed.
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(ConsoleOutput)) {
        let Self { utf8, parser, line } = self;
        utf8.feed(bytes, &mut |text| feed_text(parser, line, text, out));
        line.report_partial(out);
    }

    /// The unfinished line, if any.
    pub fn partial(&self) -> Option<&StyledLine> {
        (!self.line.line.is_empty()).then_some(&self.line.line)
    }

    /// Finishes the unfinished line (e.g. when the port closes): emits it as a `Line`
    /// if not empty. A truncated UTF-8 sequence becomes U+FFFD and an escape sequence
    /// in progress is cancelled, as at a line end. Styles persist.
    pub fn flush(&mut self, out: &mut impl FnMut(ConsoleOutput)) {
        let Self { utf8, parser, line } = self;
        utf8.flush(&mut |text| feed_text(parser, line, text, out));
        parser.advance(line, &[CAN]);
        line.in_ground = true;
        if line.line.is_empty() {
            line.start_line();
        } else {
            line.end_line(out);
        }
    }
}

impl Default for ConsoleDecoder {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_LINE)
    }
}

/// Stage 2 of the chain: whole UTF-8 text in, split at LF before vte sees it.
fn feed_text(
    parser: &mut vte::Parser<0>,
    line: &mut CurrentLine,
    text: &str,
    out: &mut impl FnMut(ConsoleOutput),
) {
    let mut pieces = text.split('\n');
    if let Some(first) = pieces.next() {
        advance(parser, line, first);
    }
    for piece in pieces {
        parser.advance(line, &[CAN]);
        line.in_ground = true;
        line.end_line(out);
        advance(parser, line, piece);
    }
}

/// Feeds text without LF to vte, except that runs of printable ASCII met while vte is
/// in its ground state are appended whole: vte would print them one char at a time,
/// which is most of the cost on typical log text.
fn advance(parser: &mut vte::Parser<0>, line: &mut CurrentLine, mut text: &str) {
    while !text.is_empty() {
        if line.in_ground {
            let run = printable_ascii_prefix(text.as_bytes());
            // The byte before `run` is ASCII, so `run` is a char boundary.
            if let Some((ascii, rest)) = text.split_at_checked(run) {
                line.put_ascii(ascii);
                text = rest;
            }
            if text.is_empty() {
                return;
            }
        }
        line.in_ground = false;
        // vte stops right after a sequence that leaves it in ground, see `terminated`.
        let used = parser.advance_until_terminated(line, text.as_bytes());
        // vte stops after an ASCII byte or at the end, both char boundaries.
        text = text.get(used..).unwrap_or_default();
    }
}

fn printable_ascii_prefix(bytes: &[u8]) -> usize {
    const BLOCK: usize = 16;
    let printable = |byte: u8| byte.wrapping_sub(b' ') <= b'~' - b' ';
    let mut len = 0;
    // A fold without early exit over a fixed block compiles to SIMD compares.
    for block in bytes.chunks_exact(BLOCK) {
        if !block.iter().fold(true, |all, &byte| all & printable(byte)) {
            break;
        }
        len += BLOCK;
    }
    let rest = &bytes[len..];
    len + rest
        .iter()
        .position(|&byte| !printable(byte))
        .unwrap_or(rest.len())
}

/// Removes everything that is not printable text from a plain string (for log files,
/// chat text from the network): the same rules as [`ConsoleDecoder`], no styles kept.
/// The result is one line: line ends become a space, so that text from a device or a
/// peer cannot forge a line of its own in line-based output.
pub fn sanitize(text: &[u8]) -> String {
    let mut decoder = ConsoleDecoder::default();
    let mut result = String::with_capacity(text.len());
    let mut lines = 0;
    let mut out = |output| {
        if let ConsoleOutput::Line(line) = output {
            if lines > 0 {
                result.push(' ');
            }
            lines += 1;
            for span in &line.spans {
                result.push_str(&span.text);
            }
        }
    };
    decoder.feed(text, &mut out);
    decoder.flush(&mut out);
    result
}
