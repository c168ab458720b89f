//! A pane's history: a bounded ring of finished lines, the unfinished line, and where the
//! view is scrolled to.

use std::collections::VecDeque;
use std::time::Duration;

use crate::serial::StyledLine;

/// Enough for a long boot log plus a session's chatter; at ~100 bytes a line, about a MB a pane.
pub const SCROLLBACK_LINES: usize = 10_000;

/// Screen rows `line` takes at `width` cells, with a timestamp column (10 cells) when
/// `stamped`: characters are laid out by their width and wrapped where the next one does not
/// fit, as the panes draw them.
pub fn rows_of(line: &StyledLine, stamped: bool, width: usize) -> usize {
    use unicode_width::UnicodeWidthChar as _;
    let mut rows = 1;
    let mut used = if stamped { 10 } else { 0 };
    for c in line.spans.iter().flat_map(|span| span.text.chars()) {
        let w = c.width().unwrap_or(0);
        if used + w > width && used > 0 {
            rows += 1;
            used = 0;
        }
        used += w;
    }
    rows
}

/// A finished line and when it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub line: StyledLine,
    /// Since the app's first tick; `None` before the first tick.
    pub at: Option<Duration>,
}

/// One pane's history (the serial console's or a chat pane's): the last
/// [`SCROLLBACK_LINES`] finished lines, already sanitized and styled, with the time each came,
/// plus the line still being written and how far the view is scrolled back. The app pushes
/// lines into it as events come and scrolls or searches it on keys; rendering reads only the
/// visible window, walking back from [`Scrollback::offset`].
#[derive(Clone, Debug)]
pub struct Scrollback {
    lines: VecDeque<Entry>,
    cap: usize,
    /// Lines dropped off the front: line `i` of the ring has sequence number `evicted + i`,
    /// which stays valid while older lines are dropped (a search match keeps its place).
    evicted: u64,
    partial: Option<StyledLine>,
    /// Lines scrolled back from the newest; 0 follows new output.
    offset: usize,
}

impl Default for Scrollback {
    fn default() -> Self {
        Self::new(SCROLLBACK_LINES)
    }
}

impl Scrollback {
    pub fn new(cap: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            cap: cap.max(1),
            evicted: 0,
            partial: None,
            offset: 0,
        }
    }

    /// A finished line; it replaces the unfinished one, as the decoders promise.
    pub fn push(&mut self, line: StyledLine, at: Option<Duration>) {
        self.partial = None;
        self.push_note(line, at);
    }

    /// A line of our own (a connection note) that leaves the unfinished line alone.
    pub fn push_note(&mut self, line: StyledLine, at: Option<Duration>) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
            self.evicted += 1;
        }
        self.lines.push_back(Entry { line, at });
        // Someone reading back keeps the same lines in view while new ones arrive.
        if self.offset > 0 {
            self.offset = (self.offset + 1).min(self.lines.len());
        }
    }

    pub fn set_partial(&mut self, line: StyledLine) {
        self.partial = if line.is_empty() { None } else { Some(line) };
    }

    pub fn partial(&self) -> Option<&StyledLine> {
        self.partial.as_ref()
    }

    pub fn clear(&mut self) {
        self.evicted += self.lines.len() as u64;
        self.lines.clear();
        self.offset = 0;
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Entry> {
        self.lines.get(index)
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Lines that fill `height` rows of `width` cells, starting at the line in view at the
    /// bottom and going back (`older`) or forward: what one page shows from there.
    pub fn lines_in_rows(&self, width: usize, height: usize, stamped: bool, older: bool) -> usize {
        let bottom = self.lines.len().saturating_sub(self.offset + 1);
        let mut used = 0;
        let mut count = 0;
        let mut index = bottom;
        while let Some(entry) = self.lines.get(index) {
            used += rows_of(&entry.line, stamped, width);
            if used > height {
                break;
            }
            count += 1;
            index = match (older, index.checked_sub(1)) {
                (true, Some(previous)) => previous,
                (true, None) => break,
                (false, _) => index + 1,
            };
        }
        count.max(1)
    }

    pub fn scroll_up(&mut self, lines: usize) {
        self.offset = (self.offset + lines).min(self.lines.len().saturating_sub(1));
    }

    pub fn scroll_down(&mut self, lines: usize) {
        self.offset = self.offset.saturating_sub(lines);
    }

    pub fn follow(&mut self) {
        self.offset = 0;
    }

    pub fn seq(&self, index: usize) -> u64 {
        self.evicted + index as u64
    }

    pub fn index_of(&self, seq: u64) -> Option<usize> {
        let index = usize::try_from(seq.checked_sub(self.evicted)?).ok()?;
        (index < self.lines.len()).then_some(index)
    }

    /// Puts line `index` at the bottom of the view.
    pub fn reveal(&mut self, index: usize) {
        self.offset = self.lines.len().saturating_sub(index + 1);
    }

    /// The nearest line containing `query` (ASCII case-insensitive) before (`older`) or after
    /// `from`; `from` = `len()` searches from the newest line.
    pub fn find(&self, query: &str, from: usize, older: bool) -> Option<usize> {
        if query.is_empty() {
            return None;
        }
        let query = query.to_ascii_lowercase();
        let hit = |i: &usize| contains_ignore_case(&self.lines[*i].line, &query);
        if older {
            (0..from.min(self.lines.len())).rev().find(hit)
        } else {
            (from.saturating_add(1)..self.lines.len()).find(hit)
        }
    }

    pub fn count(&self, query: &str) -> usize {
        if query.is_empty() {
            return 0;
        }
        let query = query.to_ascii_lowercase();
        self.lines
            .iter()
            .filter(|e| contains_ignore_case(&e.line, &query))
            .count()
    }
}

fn contains_ignore_case(line: &StyledLine, lower_query: &str) -> bool {
    line.plain().to_ascii_lowercase().contains(lower_query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> StyledLine {
        StyledLine::new(text, Default::default())
    }

    #[test]
    fn ring_is_bounded_and_keeps_sequence_numbers() {
        let mut sb = Scrollback::new(3);
        for i in 0..5 {
            sb.push(line(&i.to_string()), None);
        }
        assert_eq!(sb.len(), 3);
        assert_eq!(sb.get(0).unwrap().line.plain(), "2");
        assert_eq!(sb.index_of(sb.seq(0)), Some(0));
        assert_eq!(sb.index_of(1), None);
    }

    #[test]
    fn scrolled_view_stays_put_as_lines_arrive() {
        let mut sb = Scrollback::new(100);
        for i in 0..10 {
            sb.push(line(&i.to_string()), None);
        }
        sb.scroll_up(3);
        sb.push(line("new"), None);
        assert_eq!(sb.offset(), 4);
        sb.scroll_down(10);
        assert_eq!(sb.offset(), 0);
    }

    #[test]
    fn a_line_replaces_the_partial() {
        let mut sb = Scrollback::new(10);
        sb.set_partial(line("prompt> "));
        assert!(sb.partial().is_some());
        sb.push(line("prompt> status"), None);
        assert!(sb.partial().is_none());
        sb.set_partial(line("x"));
        sb.set_partial(StyledLine::default());
        assert!(sb.partial().is_none());
    }

    #[test]
    fn find_goes_both_ways() {
        let mut sb = Scrollback::new(10);
        for text in ["Alpha", "beta", "ALPHA two", "gamma"] {
            sb.push(line(text), None);
        }
        assert_eq!(sb.find("alpha", sb.len(), true), Some(2));
        assert_eq!(sb.find("alpha", 2, true), Some(0));
        assert_eq!(sb.find("alpha", 0, true), None);
        assert_eq!(sb.find("alpha", 0, false), Some(2));
        assert_eq!(sb.count("alpha"), 2);
    }
}
