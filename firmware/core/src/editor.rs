//! A console line as a person types it at a terminal (picocom, `espflash monitor`): the board
//! echoes what is typed, Backspace and DEL take back a character, and the password of a `wifi`
//! command shows as `*`.
//!
//! The terminal is told only what changed: after each read, the shown line is compared with
//! what the typed text should show (sanitized, the secret masked), and the difference is erased
//! with `BS SP BS` and written again. One column per character is assumed, as a serial console
//! of ASCII commands has.

use heapless::String;

use crate::console::secret_start;
use crate::line::{Line, LineReader, MAX_LINE};

/// Erases the character left of the cursor.
const RUB_OUT: &str = "\x08 \x08";

/// Cuts a console's input into command lines and says what the terminal must show.
pub struct LineEditor {
    reader: LineReader,
    /// What the terminal shows of the unfinished line.
    shown: String<MAX_LINE>,
    /// The last line ended in CR: an LF right after it (CRLF) ends nothing more.
    after_cr: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self {
            reader: LineReader::editing(),
            shown: String::new(),
            after_cr: false,
        }
    }
}

impl LineEditor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes what the console received: `echo` gets the text to write back to the terminal,
    /// `line` each line that CR, LF or CRLF completed (empty lines too).
    pub fn feed(&mut self, bytes: &[u8], echo: &mut impl FnMut(&str), line: &mut impl FnMut(Line)) {
        for chunk in bytes.split_inclusive(|&b| b == b'\r' || b == b'\n') {
            let (text, end) = match chunk.split_last() {
                Some((&last, text)) if last == b'\r' || last == b'\n' => (text, Some(last)),
                _ => (chunk, None),
            };
            if !text.is_empty() {
                self.after_cr = false;
                let mut text = text;
                // No LF in `text`: nothing completes here.
                let _ = self.reader.next_line(&mut text);
                self.show(echo);
            }
            match end {
                Some(b'\n') if self.after_cr => self.after_cr = false,
                Some(end) => {
                    self.after_cr = end == b'\r';
                    let mut lf: &[u8] = b"\n";
                    if let Some(done) = self.reader.next_line(&mut lf) {
                        self.shown.clear();
                        echo("\r\n");
                        line(done);
                    }
                }
                None => {}
            }
        }
    }

    /// Brings the terminal's line from what it shows to what the typed text should show.
    fn show(&mut self, echo: &mut impl FnMut(&str)) {
        let mut wanted = String::<MAX_LINE>::new();
        let typed = self.reader.partial();
        let secret = secret_start(typed).unwrap_or(typed.len());
        for (at, c) in typed.char_indices() {
            let c = if at >= secret && !c.is_whitespace() {
                '*'
            } else {
                c
            };
            // As long as the typed text, which fits.
            let _ = wanted.push(c);
        }
        let same = self
            .shown
            .char_indices()
            .zip(wanted.chars())
            .find(|&((_, old), new)| old != new)
            .map_or(self.shown.len().min(wanted.len()), |((at, _), _)| at);
        let same = if wanted.is_char_boundary(same) {
            same
        } else {
            0
        };
        for _ in self.shown[same..].chars() {
            echo(RUB_OUT);
        }
        echo(&wanted[same..]);
        self.shown = wanted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    /// Feeds each read; returns the terminal's screen (echo played on a one-line terminal, lines
    /// kept) and the completed lines.
    fn typed(reads: &[&[u8]]) -> (Vec<String>, Vec<String>) {
        let mut editor = LineEditor::new();
        let mut echoed = String::new();
        let mut lines = Vec::new();
        for read in reads {
            editor.feed(read, &mut |text| echoed.push_str(text), &mut |line| {
                lines.push(line.text.as_str().into())
            });
        }
        (screen(&echoed), lines)
    }

    /// A dumb terminal: BS moves left, SP overwrites, CRLF starts a new line.
    fn screen(echoed: &str) -> Vec<String> {
        let mut rows = std::vec![Vec::<char>::new()];
        let mut col: usize = 0;
        for c in echoed.chars() {
            let row = rows.last_mut().unwrap();
            match c {
                '\x08' => col = col.saturating_sub(1),
                '\r' => col = 0,
                '\n' => {
                    rows.push(Vec::new());
                    col = 0;
                }
                c => {
                    if col < row.len() {
                        row[col] = c;
                    } else {
                        row.push(c);
                    }
                    col += 1;
                }
            }
        }
        rows.into_iter()
            .map(|row| row.into_iter().collect::<String>().trim_end().into())
            .collect()
    }

    #[test]
    fn what_is_typed_is_echoed_and_ends_in_a_new_line() {
        let (screen, lines) = typed(&[b"sta", b"tus", b"\r"]);
        assert_eq!(screen, ["status", ""]);
        assert_eq!(lines, ["status"]);
    }

    #[test]
    fn backspace_and_del_take_back_a_character_on_screen_and_in_the_line() {
        let (screen, lines) = typed(&[b"stq\x08atx", b"\x7fus\r"]);
        assert_eq!(screen, ["status", ""]);
        assert_eq!(lines, ["status"]);
        // More backspaces than characters: the line is empty, not an error.
        let (screen, lines) = typed(&[b"ab\x7f\x7f\x7f\x7fip\n"]);
        assert_eq!(screen, ["ip", ""]);
        assert_eq!(lines, ["ip"]);
    }

    #[test]
    fn backspace_takes_back_a_whole_multibyte_character() {
        let (screen, lines) = typed(&[b"caf\xc3", b"\xa9\x7fe\r"]);
        assert_eq!(screen, ["cafe", ""]);
        assert_eq!(lines, ["cafe"]);
    }

    #[test]
    fn the_wifi_password_shows_as_stars_and_reaches_the_command_whole() {
        let reads: Vec<&[u8]> = b"WiFi \"my net\" s3cret pw\r".chunks(1).collect::<Vec<_>>();
        let (screen, lines) = typed(&reads);
        assert_eq!(screen, ["WiFi \"my net\" ****** **", ""]);
        assert_eq!(lines, ["WiFi \"my net\" s3cret pw"]);
        // Typed in one read, and with a typo taken back.
        let (screen, lines) = typed(&[b"wifi lab hunter3\x7f2\r\n"]);
        assert_eq!(screen, ["wifi lab *******", ""]);
        assert_eq!(lines, ["wifi lab hunter2"]);
        assert!(!screen.concat().contains("hunter"));
    }

    #[test]
    fn crlf_is_one_line_end_and_an_empty_enter_is_a_line() {
        let (screen, lines) = typed(&[b"ip\r", b"\n", b"\r", b"led 2\r\n"]);
        assert_eq!(screen, ["ip", "", "led 2", ""]);
        assert_eq!(lines, ["ip", "", "led 2"]);
    }

    #[test]
    fn escape_sequences_are_not_echoed() {
        // Arrow keys and a colour sequence: nothing of them shows or reaches the line.
        let (screen, lines) = typed(&[b"i\x1b[D\x1b[Cp\x1b[31m\r"]);
        assert_eq!(screen, ["ip", ""]);
        assert_eq!(lines, ["ip"]);
    }

    #[test]
    fn a_full_line_can_still_be_taken_back() {
        let mut long = std::vec![b'x'; MAX_LINE + 10];
        long.extend_from_slice(b"\x7f\x7fok\r");
        let (screen, lines) = typed(&[&long]);
        let kept = "x".repeat(MAX_LINE - 2) + "ok";
        assert_eq!(screen, [kept.as_str(), ""]);
        assert_eq!(lines, [kept]);
    }
}
