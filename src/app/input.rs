//! A one-line editor with history, for chat panes and the search prompt.

/// Enough to walk back through a session's commands; older ones are dropped.
const HISTORY: usize = 200;

/// The longest line, in bytes: as long as the longest line a pane shows of what it receives
/// (the console decoder's cut), far beyond what a chat server takes (the board's: 256 bytes).
pub const MAX_BYTES: usize = crate::serial::decode::ConsoleDecoder::DEFAULT_MAX_LINE;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputLine {
    text: String,
    /// In characters, 0..=len.
    cursor: usize,
    history: Vec<String>,
    /// While walking the history: the entry shown, and the line being typed before.
    browsing: Option<(usize, String)>,
}

impl InputLine {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    /// Types `c` at the cursor, unless the line is full ([`MAX_BYTES`]).
    pub fn insert(&mut self, c: char) {
        if self.text.len() + c.len_utf8() > MAX_BYTES {
            return;
        }
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Inserts pasted text at the cursor in one piece, cut where the line is full
    /// ([`MAX_BYTES`]); false if it was cut. Line breaks (`\r\n`, `\r`, `\n`) stay, as `\n`,
    /// when `multiline` (each is a line of its own when sent), else become spaces; a paste's
    /// last line break goes (copying whole lines takes it along), tabs become spaces, and
    /// other control characters go.
    pub fn paste(&mut self, text: &str, multiline: bool) -> bool {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let room = MAX_BYTES.saturating_sub(self.text.len());
        let mut pasted = String::with_capacity(text.len().min(room));
        let mut whole = true;
        for c in text.trim_end_matches('\n').chars() {
            let c = match c {
                '\n' if multiline => '\n',
                '\n' | '\t' => ' ',
                c if c.is_control() => continue,
                c => c,
            };
            if pasted.len() + c.len_utf8() > room {
                whole = false;
                break;
            }
            pasted.push(c);
        }
        let at = self.byte_at(self.cursor);
        self.text.insert_str(at, &pasted);
        self.cursor += pasted.chars().count();
        whole
    }

    pub fn delete_back(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn delete_forward(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len();
    }

    fn set(&mut self, text: String) {
        self.text = text;
        self.cursor = self.len();
    }

    pub fn history_prev(&mut self) {
        let index = match &self.browsing {
            Some((0, _)) => return,
            Some((i, _)) => i - 1,
            None if self.history.is_empty() => return,
            None => {
                self.browsing = Some((self.history.len(), self.text.clone()));
                self.history.len() - 1
            }
        };
        if let Some((i, _)) = &mut self.browsing {
            *i = index;
        }
        self.set(self.history[index].clone());
    }

    pub fn history_next(&mut self) {
        let Some((i, draft)) = self.browsing.take() else {
            return;
        };
        if i + 1 < self.history.len() {
            self.browsing = Some((i + 1, draft));
            self.set(self.history[i + 1].clone());
        } else {
            self.set(draft);
        }
    }

    /// Takes the line for sending and remembers it (not twice in a row, not blank).
    pub fn submit(&mut self) -> String {
        self.browsing = None;
        self.cursor = 0;
        let line = std::mem::take(&mut self.text);
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    pub fn clear(&mut self) {
        self.browsing = None;
        self.set(String::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> InputLine {
        let mut input = InputLine::default();
        text.chars().for_each(|c| input.insert(c));
        input
    }

    #[test]
    fn edits_in_the_middle_of_multibyte_text() {
        let mut input = typed("héllo");
        input.left();
        input.left();
        input.insert('X');
        assert_eq!(input.text(), "hélXlo");
        input.home();
        input.delete_forward();
        input.end();
        input.delete_back();
        assert_eq!(input.text(), "élXl");
        assert_eq!(input.cursor(), 4);
    }

    #[test]
    fn a_paste_goes_in_at_the_cursor_in_one_piece() {
        let mut input = typed("[]");
        input.left();
        assert!(input.paste("a\tb\x1b[23~c", false));
        assert_eq!(input.text(), "[a b[23~c]");
        assert_eq!(input.cursor(), 9);
    }

    #[test]
    fn a_pastes_line_breaks_stay_in_a_chat_line_and_are_spaces_in_a_query() {
        let mut chat = InputLine::default();
        chat.paste("on\r\noff\rstatus\n\n", true);
        assert_eq!(chat.text(), "on\noff\nstatus");
        let mut query = InputLine::default();
        query.paste("got\r\nip\n", false);
        assert_eq!(query.text(), "got ip");
    }

    #[test]
    fn a_paste_is_cut_where_the_line_is_full() {
        let mut input = typed("é");
        let long = "ü".repeat(MAX_BYTES);
        assert!(!input.paste(&long, true));
        // Cut at a character, never inside one.
        assert_eq!(input.text().len(), MAX_BYTES);
        assert_eq!(input.cursor(), MAX_BYTES / 2);
        input.insert('x');
        assert_eq!(input.text().len(), MAX_BYTES);
        assert!(!input.paste("y", true));
        input.delete_back();
        assert!(input.paste("", true));
    }

    #[test]
    fn history_walks_back_and_restores_the_draft() {
        let mut input = typed("on");
        assert_eq!(input.submit(), "on");
        "off".chars().for_each(|c| input.insert(c));
        input.submit();
        "sta".chars().for_each(|c| input.insert(c));
        input.history_prev();
        assert_eq!(input.text(), "off");
        input.history_prev();
        assert_eq!(input.text(), "on");
        input.history_prev();
        assert_eq!(input.text(), "on");
        input.history_next();
        assert_eq!(input.text(), "off");
        input.history_next();
        assert_eq!(input.text(), "sta");
    }
}
