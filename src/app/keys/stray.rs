//! The rest of a key sequence the terminal reader lost. crossterm reads ESC ESC as one Esc key
//! and then parses what follows afresh: Esc then F11 (`ESC ESC [ 2 3 ~`, also what Alt-F11
//! sends) arrives as Esc and the keys `[`, `2`, `3`, `~`, which would be typed. Those keys
//! come in the same read as the Esc, faster than anyone types, so a `[` or `O` read together
//! with an Esc starts such a rest, and it ends at a sequence's final character (`@` to `~`).

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Keys read this close together came from one read of the terminal. The runtime stamps a
/// read's keys with one instant; the margin is for keys it takes one by one.
const TOGETHER: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Idle,
    /// The last key was a plain Esc.
    AfterEsc,
    /// In the rest of a sequence, before its final character.
    Inside,
}

/// Watches the keys as they arrive and tells which are the rest of a lost sequence.
#[derive(Clone, Debug, Default)]
pub struct StrayKeys {
    state: State,
    last: Option<Instant>,
}

impl StrayKeys {
    /// Whether `key`, read at `at`, is part of the rest of a lost sequence: no key at all.
    pub fn is_stray(&mut self, key: &KeyEvent, at: Instant) -> bool {
        let together = self
            .last
            .is_some_and(|last| at.saturating_duration_since(last) <= TOGETHER);
        self.last = Some(at);
        let typed = match key.code {
            KeyCode::Char(c)
                if together
                    && !key
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                Some(c)
            }
            _ => None,
        };
        let (state, stray) = match (self.state, typed) {
            (State::AfterEsc, Some('[' | 'O')) => (State::Inside, true),
            // Parameters and intermediates (`0`-`?`, space to `/`), then the final character.
            (State::Inside, Some(' '..='?')) => (State::Inside, true),
            (State::Inside, Some('@'..='~')) => (State::Idle, true),
            _ if key.code == KeyCode::Esc && key.modifiers.is_empty() => (State::AfterEsc, false),
            _ => (State::Idle, false),
        };
        self.state = state;
        stray
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<KeyEvent> {
        text.chars()
            .map(|c| match c {
                '⎋' => KeyEvent::from(KeyCode::Esc),
                c => KeyEvent::from(KeyCode::Char(c)),
            })
            .collect()
    }

    /// What is left of `text` (⎋ for Esc) when its keys come `apart` from each other.
    fn left(filter: &mut StrayKeys, text: &str, start: Instant, apart: Duration) -> String {
        keys(text)
            .iter()
            .enumerate()
            .filter(|(i, key)| !filter.is_stray(key, start + apart * *i as u32))
            .map(|(_, key)| match key.code {
                KeyCode::Char(c) => c,
                _ => '⎋',
            })
            .collect()
    }

    #[test]
    fn the_rest_of_a_sequence_read_with_an_esc_is_dropped() {
        let now = Instant::now();
        let mut filter = StrayKeys::default();
        // Esc F11, Esc F1 (SS3), Esc Ctrl-Up: each leaves its Esc only.
        assert_eq!(
            left(&mut filter, "⎋[23~⎋OP⎋[1;5Aok", now, Duration::ZERO),
            "⎋⎋⎋ok"
        );
    }

    #[test]
    fn typing_after_an_esc_stays() {
        let now = Instant::now();
        let mut filter = StrayKeys::default();
        // A person types: keys far apart.
        let human = Duration::from_millis(80);
        assert_eq!(left(&mut filter, "⎋[x]", now, human), "⎋[x]");
        // A bracket without an Esc before it, even in one read (a fast typist, a paste).
        let later = now + Duration::from_secs(1);
        assert_eq!(left(&mut filter, "a[23~", later, Duration::ZERO), "a[23~");
        // A key that cannot be in a sequence ends it, and stays.
        let later = now + Duration::from_secs(2);
        let mut keys = keys("⎋[2");
        keys.push(KeyEvent::from(KeyCode::Enter));
        let kept: Vec<bool> = keys.iter().map(|k| !filter.is_stray(k, later)).collect();
        assert_eq!(kept, [true, false, false, true]);
        assert!(!filter.is_stray(&KeyEvent::from(KeyCode::Char('~')), later));
    }
}
