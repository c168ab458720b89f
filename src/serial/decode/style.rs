//! What a decoded line is: text in runs of one SGR style.

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

/// A run of text in one style; the decoder never makes an empty one.
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
    /// A line of `text` in one style: a note, a hex row, a chat line. Always exactly one span,
    /// even for empty text.
    pub fn new(text: impl Into<String>, style: Style) -> Self {
        Self {
            spans: vec![Span {
                text: text.into(),
                style,
            }],
        }
    }

    /// The text without styles.
    /// The text without styles, borrowed when the line has one span (most lines): the hot
    /// path of every console line reads it several times.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self.spans.as_slice() {
            [] => "".into(),
            [span] => span.text.as_str().into(),
            _ => self.plain().into(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::decode::tests::{fg, line};

    #[test]
    fn styled_line_helpers() {
        let l = line(&[("ab", Style::default()), ("\u{e9}", fg(Color::Indexed(1)))]);
        assert_eq!(l.plain(), "ab\u{e9}");
        assert_eq!(l.len(), 4);
        assert!(!l.is_empty());
        assert!(StyledLine::default().is_empty());
    }

    #[test]
    fn new_is_one_span_in_one_style() {
        let red = fg(Color::Indexed(1));
        assert_eq!(StyledLine::new("abc", red), line(&[("abc", red)]));
        let blank = StyledLine::new(String::new(), red);
        assert_eq!(blank.spans.len(), 1);
        assert!(blank.is_empty());
    }
}
