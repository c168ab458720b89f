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

use std::fmt::Write as _;
use std::mem;

/// A colour as SGR gives it: the 16 basic/bright colours as `Indexed(0..=15)`,
/// 256-colour as `Indexed(n)`, truecolour as `Rgb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// The SGR attributes espchat keeps; the rest (blink, strike-through, ...) are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub reverse: bool,
}

/// A run of text in one style; never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

/// One line of console text; adjacent spans always differ in style.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StyledLine {
    pub spans: Vec<Span>,
}

impl StyledLine {
    /// The text without styles.
    pub fn plain(&self) -> String {
        let mut text = String::with_capacity(self.len());
        for span in &self.spans {
            text.push_str(&span.text);
        }
        text
    }

    /// Bytes of text.
    pub fn len(&self) -> usize {
        self.spans.iter().map(|span| span.text.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.iter().all(|span| span.text.is_empty())
    }
}

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

/// Decodes UTF-8 across reads. The output is what `String::from_utf8_lossy` gives
/// for the whole stream, whatever the split, with one exception: a lone byte
/// 0x80..=0x9F becomes the C1 control U+0080..=U+009F it stands for on an 8-bit
/// line, so that the next stage removes it like any other control instead of showing
/// U+FFFD.
#[derive(Default)]
struct Utf8Merge {
    /// The start of a character cut off by the end of the previous read; at most 3
    /// bytes, always a valid prefix of some character.
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Merge {
    fn feed(&mut self, mut bytes: &[u8], sink: &mut impl FnMut(&str)) {
        if self.pending_len > 0 {
            match self.complete_pending(bytes, sink) {
                Some(used) => bytes = &bytes[used..],
                None => return,
            }
        }
        // The common case, and much faster than `utf8_chunks`.
        if let Ok(text) = std::str::from_utf8(bytes) {
            if !text.is_empty() {
                sink(text);
            }
            return;
        }
        let mut at = 0;
        for chunk in bytes.utf8_chunks() {
            if !chunk.valid().is_empty() {
                sink(chunk.valid());
            }
            at += chunk.valid().len();
            let invalid = chunk.invalid();
            at += invalid.len();
            // Only the last chunk can be a character cut off by the end of the read;
            // `utf8_chunks` cannot tell it from an invalid one, `from_utf8` can.
            if at == bytes.len() && is_truncated(invalid) {
                self.pending[..invalid.len()].copy_from_slice(invalid);
                self.pending_len = invalid.len();
            } else {
                push_invalid(invalid, sink);
            }
        }
    }

    /// Completes the character held back from the previous read with the first bytes
    /// of `bytes`. Returns how many bytes of `bytes` it used, or `None` if `bytes` were
    /// all used and the character is still incomplete.
    fn complete_pending(&mut self, bytes: &[u8], sink: &mut impl FnMut(&str)) -> Option<usize> {
        let held = self.pending_len;
        let need = utf8_len(self.pending[0]);
        let take = bytes.len().min(need - held);
        let mut buf = [0; 4];
        buf[..held].copy_from_slice(&self.pending[..held]);
        buf[held..held + take].copy_from_slice(&bytes[..take]);
        let buf = &buf[..held + take];
        let consumed = match std::str::from_utf8(buf) {
            Ok(ch) => {
                sink(ch);
                buf.len()
            }
            Err(err) => match err.error_len() {
                Some(invalid) => {
                    sink(REPLACEMENT);
                    invalid
                }
                None => {
                    self.pending[..buf.len()].copy_from_slice(buf);
                    self.pending_len = buf.len();
                    return None;
                }
            },
        };
        self.pending_len = 0;
        // The held bytes are a valid prefix, so an invalid sequence includes them all.
        Some(consumed.saturating_sub(held))
    }

    /// The end of the stream: a character still incomplete is invalid.
    fn flush(&mut self, sink: &mut impl FnMut(&str)) {
        if self.pending_len > 0 {
            self.pending_len = 0;
            sink(REPLACEMENT);
        }
    }
}

const REPLACEMENT: &str = "\u{FFFD}";

/// Whether `bytes` is the start of a character that more bytes could complete.
fn is_truncated(bytes: &[u8]) -> bool {
    !bytes.is_empty() && matches!(std::str::from_utf8(bytes), Err(err) if err.error_len().is_none())
}

/// The length of the character a valid lead byte starts.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn push_invalid(invalid: &[u8], sink: &mut impl FnMut(&str)) {
    match *invalid {
        [] => {}
        [byte @ 0x80..=0x9F] => {
            let mut buf = [0; 4];
            sink(char::from(byte).encode_utf8(&mut buf));
        }
        _ => sink(REPLACEMENT),
    }
}

/// The unfinished line and the terminal state that shapes it; vte's `Perform`.
struct CurrentLine {
    line: StyledLine,
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
    in_ground: bool,
    max_line: usize,
    cut_marker: String,
}

const TAB_STOP: usize = 8;

impl CurrentLine {
    fn new(max_line: usize) -> Self {
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

    fn end_line(&mut self, out: &mut impl FnMut(ConsoleOutput)) {
        out(ConsoleOutput::Line(mem::take(&mut self.line)));
        self.start_line();
    }

    /// Resets the per-line state; the style persists, as on a terminal.
    fn start_line(&mut self) {
        self.len = 0;
        self.col = 0;
        self.cr_pending = false;
        self.cut = false;
        self.changed = false;
        self.partial_shown = false;
    }

    fn report_partial(&mut self, out: &mut impl FnMut(ConsoleOutput)) {
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
    fn put_ascii(&mut self, text: &str) {
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

    fn apply_sgr(&mut self, params: &vte::Params) {
        let style = &mut self.style;
        let mut params = params.iter();
        while let Some(param) = params.next() {
            match *param {
                [0] => *style = Style::default(),
                [1] => style.bold = true,
                [2] => style.dim = true,
                [3] => style.italic = true,
                // 4:0 is "no underline"; 4:1..4:5 are underline styles (curly, ...).
                [4, 0] => style.underline = false,
                [4, ..] => style.underline = true,
                [7] => style.reverse = true,
                [21] => style.bold = false,
                [22] => {
                    style.bold = false;
                    style.dim = false;
                }
                [23] => style.italic = false,
                [24] => style.underline = false,
                [27] => style.reverse = false,
                [n @ 30..=37] => style.fg = Some(Color::Indexed(n as u8 - 30)),
                [38, ref sub @ ..] => {
                    if let Some(color) = extended_color(sub, &mut params) {
                        style.fg = Some(color);
                    }
                }
                [39] => style.fg = None,
                [n @ 40..=47] => style.bg = Some(Color::Indexed(n as u8 - 40)),
                [48, ref sub @ ..] => {
                    if let Some(color) = extended_color(sub, &mut params) {
                        style.bg = Some(color);
                    }
                }
                [49] => style.bg = None,
                // Underline colour: not kept, but its arguments must not be read as
                // SGR codes of their own (58;5;1 is not bold).
                [58, ref sub @ ..] => {
                    extended_color(sub, &mut params);
                }
                [n @ 90..=97] => style.fg = Some(Color::Indexed(n as u8 - 90 + 8)),
                [n @ 100..=107] => style.bg = Some(Color::Indexed(n as u8 - 100 + 8)),
                _ => {}
            }
        }
    }
}

/// A new span's first allocation: most ESP-IDF log lines are one span of this order.
const SPAN_CAPACITY: usize = 128;

/// Reads the colour of SGR 38/48/58, in the colon form (`sub` holds the rest of the
/// parameter) or the semicolon form (the colour is in the following parameters).
fn extended_color(sub: &[u16], params: &mut vte::ParamsIter<'_>) -> Option<Color> {
    if !sub.is_empty() {
        return match *sub {
            [5, n] => Some(Color::Indexed(u8::try_from(n).ok()?)),
            [2, r, g, b] | [2, _, r, g, b, ..] => rgb(r, g, b),
            _ => None,
        };
    }
    let mut next = || match params.next() {
        Some(&[value]) => Some(value),
        _ => None,
    };
    match next()? {
        5 => Some(Color::Indexed(u8::try_from(next()?).ok()?)),
        2 => {
            let (r, g, b) = (next(), next(), next());
            rgb(r?, g?, b?)
        }
        _ => None,
    }
}

fn rgb(r: u16, g: u16, b: u16) -> Option<Color> {
    Some(Color::Rgb(
        u8::try_from(r).ok()?,
        u8::try_from(g).ok()?,
        u8::try_from(b).ok()?,
    ))
}

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
            self.apply_sgr(params);
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

fn cut_marker(max_line: usize) -> String {
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

/// Hex view: formats bytes as hex-dump lines, 16 bytes per line: offset, hex bytes,
/// and printable ASCII ('.' for the rest), laid out as `hexdump -C` does.
#[derive(Default)]
pub struct HexDump {
    offset: u64,
    row: [u8; HEX_ROW],
    filled: usize,
}

const HEX_ROW: usize = 16;

impl HexDump {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(String)) {
        for &byte in bytes {
            self.row[self.filled] = byte;
            self.filled += 1;
            if self.filled == HEX_ROW {
                out(self.take_row());
            }
        }
    }

    /// Emits the last, shorter row, if any.
    pub fn flush(&mut self, out: &mut impl FnMut(String)) {
        if self.filled > 0 {
            out(self.take_row());
        }
    }

    fn take_row(&mut self) -> String {
        let bytes = &self.row[..self.filled];
        let mut text = String::with_capacity(80);
        // Writing to a String cannot fail.
        let _ = write!(text, "{:08x}  ", self.offset);
        for i in 0..HEX_ROW {
            match bytes.get(i) {
                Some(byte) => {
                    let _ = write!(text, "{byte:02x} ");
                }
                None => text.push_str("   "),
            }
            if i == HEX_ROW / 2 - 1 {
                text.push(' ');
            }
        }
        text.push_str(" |");
        text.extend(bytes.iter().map(|&byte| {
            if byte.is_ascii_graphic() || byte == b' ' {
                char::from(byte)
            } else {
                '.'
            }
        }));
        text.push('|');
        self.offset += self.filled as u64;
        self.filled = 0;
        text
    }
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MAX: usize = ConsoleDecoder::DEFAULT_MAX_LINE;

    /// What a stream leaves behind: the finished lines and the unfinished one.
    #[derive(Debug, PartialEq)]
    struct Run {
        lines: Vec<StyledLine>,
        partial: Option<StyledLine>,
    }

    impl Run {
        fn plain(&self) -> Vec<String> {
            self.lines.iter().map(StyledLine::plain).collect()
        }

        fn partial_plain(&self) -> Option<String> {
            self.partial.as_ref().map(StyledLine::plain)
        }
    }

    /// Feeds `reads` one by one, checking every event on the way.
    fn run_reads(reads: &[&[u8]], max_line: usize) -> (Run, Vec<ConsoleOutput>) {
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
    fn decode_with(input: &[u8], max_line: usize) -> Run {
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

    fn decode(input: &[u8]) -> Run {
        decode_with(input, MAX)
    }

    fn lines(input: &[u8]) -> Vec<String> {
        decode(input).plain()
    }

    fn fg(color: Color) -> Style {
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

    fn line(spans: &[(&str, Style)]) -> StyledLine {
        StyledLine {
            spans: spans
                .iter()
                .map(|&(text, style)| span(text, style))
                .collect(),
        }
    }

    fn partial(text: &str) -> ConsoleOutput {
        ConsoleOutput::Partial(line(&[(text, Style::default())]))
    }

    fn finished(text: &str) -> ConsoleOutput {
        ConsoleOutput::Line(line(&[(text, Style::default())]))
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
    fn sgr_attributes_and_their_resets() {
        let run = decode(
            b"\x1b[1ma\x1b[2mb\x1b[3mc\x1b[4md\x1b[7me\
              \x1b[21mf\x1b[22mg\x1b[23mh\x1b[24mi\x1b[27mj\x1b[1;3mk\x1b[0ml\n",
        );
        let bold = Style {
            bold: true,
            ..Style::default()
        };
        let bold_dim = Style { dim: true, ..bold };
        let italic = Style {
            italic: true,
            ..bold_dim
        };
        let underline = Style {
            underline: true,
            ..italic
        };
        let reverse = Style {
            reverse: true,
            ..underline
        };
        let no_bold = Style {
            bold: false,
            ..reverse
        };
        let normal = Style {
            dim: false,
            ..no_bold
        };
        let no_italic = Style {
            italic: false,
            ..normal
        };
        let no_underline = Style {
            underline: false,
            ..no_italic
        };
        let bold_italic = Style {
            bold: true,
            italic: true,
            ..Style::default()
        };
        assert_eq!(
            run.lines,
            [line(&[
                ("a", bold),
                ("b", bold_dim),
                ("c", italic),
                ("d", underline),
                ("e", reverse),
                ("f", no_bold),
                ("g", normal),
                ("h", no_italic),
                ("i", no_underline),
                ("j", Style::default()),
                ("k", bold_italic),
                ("l", Style::default()),
            ])]
        );
    }

    #[test]
    fn sgr_basic_and_bright_colours() {
        let run = decode(b"\x1b[31;42ma\x1b[97;104mb\x1b[39mc\x1b[49md\x1b[30;47me\x1b[90;100mf\n");
        let both = |f, b| Style {
            fg: f,
            bg: b,
            ..Style::default()
        };
        use Color::Indexed;
        assert_eq!(
            run.lines,
            [line(&[
                ("a", both(Some(Indexed(1)), Some(Indexed(2)))),
                ("b", both(Some(Indexed(15)), Some(Indexed(12)))),
                ("c", both(None, Some(Indexed(12)))),
                ("d", Style::default()),
                ("e", both(Some(Indexed(0)), Some(Indexed(7)))),
                ("f", both(Some(Indexed(8)), Some(Indexed(8)))),
            ])]
        );
    }

    #[test]
    fn sgr_256_and_truecolour_in_semicolon_and_colon_forms() {
        let run = decode(
            b"\x1b[38;5;208ma\x1b[38;2;1;2;3mb\x1b[38:5:9mc\x1b[38:2::4:5:6md\
              \x1b[38:2:7:8:9me\x1b[0;48;5;17mf\x1b[48:2::10:11:12mg\n",
        );
        let bg = |color| Style {
            bg: Some(color),
            ..Style::default()
        };
        assert_eq!(
            run.lines,
            [line(&[
                ("a", fg(Color::Indexed(208))),
                ("b", fg(Color::Rgb(1, 2, 3))),
                ("c", fg(Color::Indexed(9))),
                ("d", fg(Color::Rgb(4, 5, 6))),
                ("e", fg(Color::Rgb(7, 8, 9))),
                ("f", bg(Color::Indexed(17))),
                ("g", bg(Color::Rgb(10, 11, 12))),
            ])]
        );
    }

    #[test]
    fn extended_colour_arguments_are_not_read_as_codes() {
        // 58;5;1 would otherwise turn bold on; 38;5;300 is out of range.
        let run = decode(b"\x1b[58;5;1ma\x1b[38;5;300;4mb\x1b[58:2::1:2:3mc\n");
        let underline = Style {
            underline: true,
            ..Style::default()
        };
        assert_eq!(
            run.lines,
            [line(&[("a", Style::default()), ("bc", underline)])]
        );
    }

    #[test]
    fn styles_persist_across_lines_until_reset() {
        let red = fg(Color::Indexed(1));
        let run = decode(b"\x1b[31mone\ntwo\x1b[m\nthree\n");
        assert_eq!(
            run.lines,
            [
                line(&[("one", red)]),
                line(&[("two", red)]),
                line(&[("three", Style::default())]),
            ]
        );
    }

    #[test]
    fn m_with_a_private_marker_is_not_sgr() {
        let run = decode(b"\x1b[>4;1mx\x1b[?1mx\n");
        assert_eq!(run.lines, [line(&[("xx", Style::default())])]);
    }

    #[test]
    fn esp_idf_log_line_is_one_coloured_span() {
        let run = decode(b"\x1b[0;32mI (312) espchat: got ip: 192.168.1.42\x1b[0m\r\n");
        assert_eq!(
            run.lines,
            [line(&[(
                "I (312) espchat: got ip: 192.168.1.42",
                fg(Color::Indexed(2))
            )])]
        );
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
    fn invalid_utf8_becomes_replacement_characters() {
        // One U+FFFD for each invalid sequence, as `from_utf8_lossy` gives; a lone byte
        // 0x80..=0x9F is an 8-bit C1 control and is removed (as vte does).
        assert_eq!(
            lines(b"a\xffb\xe2\x82c\xf0\x9f\x98\x80d\xc0\xafe\xed\xa0\xbf\n"),
            ["a\u{fffd}b\u{fffd}c\u{1f600}d\u{fffd}\u{fffd}e\u{fffd}\u{fffd}\u{fffd}"]
        );
        assert_eq!(lines(b"a\xc0\x80b\xf0\x9f\x98\n"), ["a\u{fffd}b\u{fffd}"]);
    }

    #[test]
    fn a_character_split_across_reads_is_kept_whole() {
        // vte 0.15 alone drops the "a" here (alacritty/vte#159): it completes the
        // split character from a 4-byte window and, when the window ends in another
        // incomplete character, skips what followed the completed one.
        let (run, _) = run_reads(&[b"x\xc3", b"\xa9a\xe2\x82\xacb\n"], MAX);
        assert_eq!(run.plain(), ["x\u{e9}a\u{20ac}b"]);
        let (run, _) = run_reads(&[b"\xf0", b"\x9f", b"\x98", b"\x80ab\n"], MAX);
        assert_eq!(run.plain(), ["\u{1f600}ab"]);
        assert_eq!(lines("añ日😀b\n".as_bytes()), ["añ日😀b"]);
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
    fn same_style_text_is_one_span_and_no_span_is_empty() {
        let run = decode(b"a\x1b[31m\x1b[39mb\x1b[1m\x1b[0mc\x1b[32m\x1b[0m\n\x1b[31m\x1b[0m\n");
        assert_eq!(
            run.lines,
            [line(&[("abc", Style::default())]), StyledLine::default()]
        );
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
    fn styled_line_helpers() {
        let l = line(&[("ab", Style::default()), ("\u{e9}", fg(Color::Indexed(1)))]);
        assert_eq!(l.plain(), "ab\u{e9}");
        assert_eq!(l.len(), 4);
        assert!(!l.is_empty());
        assert!(StyledLine::default().is_empty());
    }

    fn hex(reads: &[&[u8]]) -> Vec<String> {
        let mut dump = HexDump::new();
        let mut rows = Vec::new();
        for read in reads {
            dump.feed(read, &mut |row| rows.push(row));
        }
        dump.flush(&mut |row| rows.push(row));
        rows
    }

    #[test]
    fn hex_dump_rows_look_like_hexdump_c() {
        let rows = hex(&[b"hello world\n\x00\x1b\xff\x7fABCDEFGHIJ"]);
        assert_eq!(
            rows,
            [
                "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a 00 1b ff 7f  |hello world.....|",
                "00000010  41 42 43 44 45 46 47 48  49 4a                    |ABCDEFGHIJ|",
            ]
        );
        let bytes: Vec<u8> = (0..=255).collect();
        let whole = hex(&[&bytes]);
        for i in 0..bytes.len() {
            assert_eq!(hex(&[&bytes[..i], &bytes[i..]]), whole);
        }
        assert_eq!(whole.len(), 16);
        assert!(whole[15].starts_with("000000f0  f0 f1"));
        assert!(hex(&[]).is_empty());
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

    /// `from_utf8_lossy`, except for the documented rule for lone C1 bytes.
    fn reference_utf8(bytes: &[u8]) -> String {
        let mut text = String::new();
        for chunk in bytes.utf8_chunks() {
            text.push_str(chunk.valid());
            match *chunk.invalid() {
                [] => {}
                [byte @ 0x80..=0x9F] => text.push(char::from(byte)),
                _ => text.push('\u{fffd}'),
            }
        }
        text
    }

    fn merge(reads: &[&[u8]]) -> String {
        let mut merge = Utf8Merge::default();
        let mut text = String::new();
        for read in reads {
            merge.feed(read, &mut |s| text.push_str(s));
        }
        merge.flush(&mut |s| text.push_str(s));
        text
    }

    #[test]
    fn utf8_merge_matches_lossy_decoding_at_every_split() {
        let input = b"a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xff\xe2\x82x\xf0\x9f\x98\xc0\x80\x85\xed\xa0\x80\xf4\x90\x80\x80\xe2";
        let expected = reference_utf8(input);
        assert_eq!(
            expected,
            "a\u{e9}\u{65e5}\u{1f600}\u{fffd}\u{fffd}x\u{fffd}\u{fffd}\u{80}\u{85}\
             \u{fffd}\u{fffd}\u{80}\u{fffd}\u{90}\u{80}\u{80}\u{fffd}"
        );
        // The input holds no C1 control in UTF-8 form, so these all came from lone bytes.
        let c1_as_replacement: String = expected
            .chars()
            .map(|c| {
                if ('\u{80}'..='\u{9f}').contains(&c) {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(c1_as_replacement, String::from_utf8_lossy(input));
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let reads = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(merge(&reads), expected, "split at {i} and {j}");
            }
        }
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
        fn utf8_merge_is_lossy_decoding_whatever_the_split(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let reads = split(&bytes, &cuts);
            prop_assert_eq!(merge(&reads), reference_utf8(&bytes));
        }

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

    fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut reads = Vec::new();
        let mut start = 0;
        for end in at {
            reads.push(&bytes[start..end]);
            start = end;
        }
        reads.push(&bytes[start..]);
        reads
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
}
