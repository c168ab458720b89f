//! TEMPORARY stand-in with the agreed API; replaced by the real decoder chain.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Indexed(u8),
    Rgb(u8, u8, u8),
}

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

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StyledLine {
    pub spans: Vec<Span>,
}

impl StyledLine {
    pub fn plain(&self) -> String {
        self.spans.iter().map(|span| span.text.as_str()).collect()
    }
    pub fn len(&self) -> usize {
        self.spans.iter().map(|span| span.text.len()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleOutput {
    Line(StyledLine),
    Partial(StyledLine),
}

pub struct ConsoleDecoder {
    pending: Vec<u8>,
    max_line: usize,
}

impl ConsoleDecoder {
    pub const DEFAULT_MAX_LINE: usize = 16 * 1024;
    pub fn new(max_line: usize) -> Self {
        Self {
            pending: Vec::new(),
            max_line,
        }
    }
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(ConsoleOutput)) {
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.pending);
                out(ConsoleOutput::Line(plain(&line)));
            } else if self.pending.len() < self.max_line {
                self.pending.push(b);
            }
        }
        if !self.pending.is_empty() {
            out(ConsoleOutput::Partial(plain(&self.pending)));
        }
    }
    pub fn partial(&self) -> Option<&StyledLine> {
        None
    }
    pub fn flush(&mut self, out: &mut impl FnMut(ConsoleOutput)) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            out(ConsoleOutput::Line(plain(&line)));
        }
    }
}

fn plain(bytes: &[u8]) -> StyledLine {
    StyledLine {
        spans: vec![Span {
            text: sanitize(bytes),
            style: Style::default(),
        }],
    }
}

pub fn sanitize(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

pub struct HexDump;
impl HexDump {
    pub fn new() -> Self {
        HexDump
    }
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(String)) {
        out(bytes.iter().map(|b| format!("{b:02x} ")).collect())
    }
    pub fn flush(&mut self, _out: &mut impl FnMut(String)) {}
}
