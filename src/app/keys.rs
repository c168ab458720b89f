//! Keys are data: one table maps chords to [`Action`]s, and the footer hints and the help
//! overlay are generated from the same table, so they cannot drift apart.

use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Everything the user can ask of the app. `App::update` is the only place that acts on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    FocusNext,
    FocusPrev,
    /// 0 is the serial console, 1.. the chat panes in screen order.
    FocusPane(usize),
    NewPane,
    ClosePane,
    Flash,
    ResetBoard,
    ToggleTimestamps,
    ToggleHex,
    ScrollUp,
    ScrollDown,
    Search,
    /// The next older match.
    SearchNext,
    /// The next newer match.
    SearchPrev,
    Clear,
    Help,
    Quit,
    /// Ctrl-T in the serial console: the next key is for the app, not the board.
    Prefix,
    /// The answer to "flash in progress: quit anyway?".
    ConfirmQuit(bool),
    CloseOverlay,
    /// Editing the active input line (a chat pane's, or the search query while it is typed).
    Insert(char),
    DeleteBack,
    DeleteForward,
    CursorLeft,
    CursorRight,
    CursorHome,
    CursorEnd,
    HistoryPrev,
    HistoryNext,
    Submit,
    /// Esc: leave the search.
    Cancel,
    /// Keys for the board, already encoded (see [`key_to_bytes`]).
    SerialBytes(Vec<u8>),
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// In every pane, the serial console included: keys a device never needs (F-keys, Alt-n).
    Global,
    /// In chat panes, where typing edits the input line.
    Chat,
    /// In the serial console, where every other key goes to the board.
    Serial,
    /// In the serial console after the prefix (Ctrl-T), tio's model.
    Prefix,
}

/// A key with its modifiers, compared the way terminals report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyChord {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeyChord {
    pub const fn new(code: KeyCode, modifiers: KeyModifiers) -> Self {
        Self { code, modifiers }
    }

    pub const fn plain(code: KeyCode) -> Self {
        Self::new(code, KeyModifiers::NONE)
    }

    pub const fn ctrl(c: char) -> Self {
        Self::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    pub const fn alt(c: char) -> Self {
        Self::new(KeyCode::Char(c), KeyModifiers::ALT)
    }

    /// Terminals disagree on Shift for characters (`?` may come with or without it) and on
    /// the case of Ctrl-letters, so both sides are normalised before comparing.
    fn normalised(code: KeyCode, modifiers: KeyModifiers) -> (KeyCode, KeyModifiers) {
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT;
        let mut modifiers = modifiers & relevant;
        let code = match code {
            KeyCode::Char(c) => {
                modifiers.remove(KeyModifiers::SHIFT);
                if modifiers.is_empty() {
                    KeyCode::Char(c)
                } else {
                    KeyCode::Char(c.to_ascii_lowercase())
                }
            }
            KeyCode::BackTab => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        (code, modifiers)
    }

    pub fn matches(&self, key: &KeyEvent) -> bool {
        Self::normalised(self.code, self.modifiers) == Self::normalised(key.code, key.modifiers)
    }

    /// The footer's short form: `^Q`, `F5`, `M-1`.
    pub fn short(&self) -> String {
        let key = key_name(self.code);
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            format!("^{}", key.to_uppercase())
        } else if self.modifiers.contains(KeyModifiers::ALT) {
            format!("M-{key}")
        } else {
            key
        }
    }

    /// Parses `ctrl-q`, `alt-1`, `f5`, `shift-tab`, `pgup`, `?` (case-insensitive names).
    pub fn parse(text: &str) -> Option<KeyChord> {
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            let (modifier, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            modifiers |= modifier;
            rest = &rest[len..];
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "tab" if modifiers.contains(KeyModifiers::SHIFT) => {
                modifiers.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" | "ins" => KeyCode::Insert,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
            _ => {
                let mut chars = rest.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(c)
            }
        };
        Some(KeyChord { code, modifiers })
    }
}

fn key_name(code: KeyCode) -> String {
    match code {
        KeyCode::Char(' ') => "Space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Delete => "Del".into(),
        KeyCode::Insert => "Ins".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Up => "Up".into(),
        KeyCode::Down => "Down".into(),
        KeyCode::Left => "Left".into(),
        KeyCode::Right => "Right".into(),
        other => format!("{other:?}"),
    }
}

/// The help overlay's long form: `Ctrl-Q`, `Alt-1`, `Shift-Tab`.
impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(c) if !self.modifiers.is_empty() => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            code => f.write_str(&key_name(code)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub chord: KeyChord,
    pub scope: Scope,
    pub action: Action,
    /// The footer's word; empty: not in the footer.
    pub hint: String,
    /// The help overlay's text; empty: not in the help (an alternative named elsewhere).
    pub description: String,
    /// Only when the chat input line is empty, so that typing `?` or `/` still types.
    pub when_input_empty: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTable {
    pub bindings: Vec<Binding>,
}

/// Why a binding from the config file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyTableError {
    #[error("{0:?} is not a key: write it like ctrl-q, alt-1, f5, shift-tab or pgup")]
    Chord(String),
    #[error("{0:?} is not an action: use one of {names}", names = action_names())]
    Action(String),
    #[error(
        "{chord} would no longer reach the {place}: bind {action} to a chord with ctrl- or alt-, or to an F-key"
    )]
    Typed {
        chord: String,
        action: &'static str,
        place: &'static str,
    },
    #[error("{chord} is bound to both {first} and {second}: give one of them another key")]
    Conflict {
        chord: String,
        first: &'static str,
        second: &'static str,
    },
}

/// The actions the config file can rebind, by the names it uses.
const ACTION_NAMES: &[(&str, Action)] = &[
    ("quit", Action::Quit),
    ("help", Action::Help),
    ("flash", Action::Flash),
    ("reset", Action::ResetBoard),
    ("timestamps", Action::ToggleTimestamps),
    ("hex", Action::ToggleHex),
    ("next", Action::FocusNext),
    ("prev", Action::FocusPrev),
    ("new-pane", Action::NewPane),
    ("close-pane", Action::ClosePane),
    ("search", Action::Search),
    ("clear", Action::Clear),
    ("scroll-up", Action::ScrollUp),
    ("scroll-down", Action::ScrollDown),
    ("prefix", Action::Prefix),
];

fn action_names() -> String {
    let names: Vec<&str> = ACTION_NAMES.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

fn action_name(action: &Action) -> &'static str {
    ACTION_NAMES
        .iter()
        .find(|(_, named)| named == action)
        .map_or("a pane focus key", |(name, _)| name)
}

impl Default for KeyTable {
    fn default() -> Self {
        use KeyCode::*;
        let none = KeyModifiers::NONE;
        let mut table = KeyTable {
            bindings: Vec::new(),
        };
        let mut bind = |chord: KeyChord, scope, action, hint: &str, description: &str| {
            table.bindings.push(Binding {
                chord,
                scope,
                action,
                hint: hint.into(),
                description: description.into(),
                when_input_empty: false,
            });
        };
        bind(
            KeyChord::ctrl('q'),
            Scope::Global,
            Action::Quit,
            "quit",
            "quit (asks while flashing)",
        );
        bind(
            KeyChord::plain(F(1)),
            Scope::Global,
            Action::Help,
            "help",
            "this help",
        );
        bind(
            KeyChord::plain(F(5)),
            Scope::Global,
            Action::Flash,
            "flash",
            "flash the bundled firmware",
        );
        bind(
            KeyChord::plain(F(6)),
            Scope::Global,
            Action::ResetBoard,
            "reset",
            "reset the board",
        );
        bind(
            KeyChord::plain(F(7)),
            Scope::Global,
            Action::ToggleTimestamps,
            "time",
            "timestamps on/off",
        );
        bind(
            KeyChord::plain(F(8)),
            Scope::Global,
            Action::ToggleHex,
            "hex",
            "hex view of the console",
        );
        bind(
            KeyChord::plain(BackTab),
            Scope::Global,
            Action::FocusPrev,
            "",
            "previous pane",
        );
        bind(
            KeyChord::plain(PageUp),
            Scope::Global,
            Action::ScrollUp,
            "",
            "scroll up a page",
        );
        bind(
            KeyChord::plain(PageDown),
            Scope::Global,
            Action::ScrollDown,
            "",
            "scroll down a page",
        );
        bind(
            KeyChord::alt('0'),
            Scope::Global,
            Action::FocusPane(0),
            "",
            "focus the serial console",
        );
        bind(
            KeyChord::alt('1'),
            Scope::Global,
            Action::FocusPane(1),
            "",
            "chat pane N (Alt-1..9)",
        );
        for n in 2..=9u8 {
            let c = char::from(b'0' + n);
            bind(
                KeyChord::alt(c),
                Scope::Global,
                Action::FocusPane(n.into()),
                "",
                "",
            );
        }

        bind(
            KeyChord::plain(Tab),
            Scope::Chat,
            Action::FocusNext,
            "next",
            "next pane",
        );
        bind(
            KeyChord::ctrl('n'),
            Scope::Chat,
            Action::NewPane,
            "new",
            "new chat pane",
        );
        bind(
            KeyChord::ctrl('w'),
            Scope::Chat,
            Action::ClosePane,
            "close",
            "close this chat pane",
        );
        bind(
            KeyChord::ctrl('f'),
            Scope::Chat,
            Action::Search,
            "search",
            "search (or / on empty line)",
        );
        bind(
            KeyChord::ctrl('l'),
            Scope::Chat,
            Action::Clear,
            "clear",
            "clear this pane",
        );
        bind(
            KeyChord::new(Char('/'), none),
            Scope::Chat,
            Action::Search,
            "",
            "",
        );
        bind(
            KeyChord::new(Char('?'), none),
            Scope::Chat,
            Action::Help,
            "",
            "",
        );

        bind(
            KeyChord::ctrl('t'),
            Scope::Serial,
            Action::Prefix,
            "cmd",
            "then one of:",
        );
        bind(
            KeyChord::plain(Char('q')),
            Scope::Prefix,
            Action::Quit,
            "",
            "quit",
        );
        bind(
            KeyChord::plain(Char('?')),
            Scope::Prefix,
            Action::Help,
            "",
            "this help",
        );
        bind(
            KeyChord::plain(Tab),
            Scope::Prefix,
            Action::FocusNext,
            "next",
            "next pane",
        );
        bind(
            KeyChord::plain(Char('f')),
            Scope::Prefix,
            Action::Flash,
            "",
            "flash",
        );
        bind(
            KeyChord::plain(Char('r')),
            Scope::Prefix,
            Action::ResetBoard,
            "",
            "reset the board",
        );
        bind(
            KeyChord::plain(Char('t')),
            Scope::Prefix,
            Action::ToggleTimestamps,
            "",
            "timestamps on/off",
        );
        bind(
            KeyChord::plain(Char('h')),
            Scope::Prefix,
            Action::ToggleHex,
            "",
            "hex view on/off",
        );
        bind(
            KeyChord::plain(Char('n')),
            Scope::Prefix,
            Action::NewPane,
            "",
            "new chat pane",
        );
        bind(
            KeyChord::plain(Char('/')),
            Scope::Prefix,
            Action::Search,
            "",
            "search",
        );
        bind(
            KeyChord::plain(Char('l')),
            Scope::Prefix,
            Action::Clear,
            "",
            "clear the console",
        );
        for binding in &mut table.bindings {
            binding.when_input_empty =
                matches!(binding.chord.code, Char('/') | Char('?')) && binding.scope == Scope::Chat;
        }
        table
    }
}

impl KeyTable {
    /// The action bound to `key` in `scope`; `input_empty` tells whether the chat input line
    /// is empty, for keys that type a character otherwise.
    pub fn lookup(&self, scope: Scope, key: &KeyEvent, input_empty: bool) -> Option<&Action> {
        self.bindings
            .iter()
            .find(|b| {
                b.scope == scope && b.chord.matches(key) && (input_empty || !b.when_input_empty)
            })
            .map(|b| &b.action)
    }

    /// Bindings of `scope` with a footer hint, in table order.
    pub fn hints(&self, scope: Scope) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(move |b| b.scope == scope && !b.hint.is_empty())
    }

    /// The key of `action` (the first, where it has several), for hints in prose.
    pub fn chord_for(&self, action: &Action) -> Option<KeyChord> {
        self.bindings
            .iter()
            .find(|b| b.action == *action)
            .map(|b| b.chord)
    }

    /// Bindings of `scope` the help overlay lists.
    pub fn help(&self, scope: Scope) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(move |b| b.scope == scope && !b.description.is_empty())
    }

    /// Rebinds an action from the config file: `rebind("quit", "ctrl-x")` moves Quit (in the
    /// scope where it is bound first) to Ctrl-X. Call [`KeyTable::check`] after the last one, so
    /// that two keys can swap places.
    pub fn rebind(&mut self, action: &str, chord: &str) -> Result<(), KeyTableError> {
        let parsed = KeyChord::parse(chord).ok_or_else(|| KeyTableError::Chord(chord.into()))?;
        let (name, action) = ACTION_NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(action.trim()))
            .ok_or_else(|| KeyTableError::Action(action.into()))?;
        let binding = self
            .bindings
            .iter_mut()
            .find(|b| b.action == *action)
            .ok_or_else(|| KeyTableError::Action((*name).into()))?;
        if let Some(place) = typed_in(binding.scope, parsed) {
            return Err(KeyTableError::Typed {
                chord: parsed.to_string(),
                action: name,
                place,
            });
        }
        binding.chord = parsed;
        Ok(())
    }

    /// Refuses a table where one key means two things in the same pane.
    pub fn check(&self) -> Result<(), KeyTableError> {
        for (i, first) in self.bindings.iter().enumerate() {
            for second in &self.bindings[i + 1..] {
                let overlap = first.scope == second.scope
                    || matches!(
                        (first.scope, second.scope),
                        (Scope::Global, Scope::Chat | Scope::Serial)
                            | (Scope::Chat | Scope::Serial, Scope::Global)
                    );
                let event = KeyEvent::new(second.chord.code, second.chord.modifiers);
                if overlap && first.action != second.action && first.chord.matches(&event) {
                    return Err(KeyTableError::Conflict {
                        chord: first.chord.to_string(),
                        first: action_name(&first.action),
                        second: action_name(&second.action),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Where a chord without Ctrl or Alt is needed for something else: typing in a chat pane,
/// and the board in the serial console. After the prefix every key is free.
fn typed_in(scope: Scope, chord: KeyChord) -> Option<&'static str> {
    use KeyCode::*;
    let modified = chord
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let typed = matches!(
        chord.code,
        Char(_) | Enter | Backspace | Delete | Left | Right | Up | Down | Home | End | Esc
    );
    match scope {
        _ if modified || !typed => None,
        Scope::Prefix => None,
        Scope::Chat => Some("chat input line"),
        Scope::Serial => Some("board"),
        Scope::Global => Some("chat input line and the board"),
    }
}

/// What a key sends to the board in the serial console, as a terminal would send it:
/// printables as UTF-8, Enter as CR, Backspace as DEL, Ctrl-letters as control bytes
/// (Ctrl-C is 0x03), cursor keys as ANSI sequences, Alt as an ESC prefix. `None`: the key has
/// no bytes (F-keys, media keys), so nothing is sent.
pub fn key_to_bytes(key: KeyEvent) -> Option<Vec<u8>> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let mut bytes: Vec<u8> = match key.code {
        KeyCode::Char(c) if ctrl => vec![control_byte(c)?],
        KeyCode::Char(c) => {
            let mut buf = [0; 4];
            c.encode_utf8(&mut buf).as_bytes().to_vec()
        }
        KeyCode::Enter => b"\r".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Tab => vec![b'\t'],
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => b"\x1b[A".to_vec(),
        KeyCode::Down => b"\x1b[B".to_vec(),
        KeyCode::Right => b"\x1b[C".to_vec(),
        KeyCode::Left => b"\x1b[D".to_vec(),
        KeyCode::Home => b"\x1b[H".to_vec(),
        KeyCode::End => b"\x1b[F".to_vec(),
        KeyCode::Insert => b"\x1b[2~".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        KeyCode::PageUp => b"\x1b[5~".to_vec(),
        KeyCode::PageDown => b"\x1b[6~".to_vec(),
        _ => return None,
    };
    if alt {
        bytes.insert(0, 0x1b);
    }
    Some(bytes)
}

fn control_byte(c: char) -> Option<u8> {
    Some(match c.to_ascii_lowercase() {
        c @ 'a'..='z' => c as u8 - b'a' + 1,
        '@' | ' ' | '2' => 0x00,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '7' | '/' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn ctrl_c_is_etx() {
        assert_eq!(
            key_to_bytes(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(vec![3])
        );
        // Some terminals report Ctrl-Shift-C as an uppercase letter.
        assert_eq!(
            key_to_bytes(key(
                KeyCode::Char('C'),
                KeyModifiers::CONTROL | KeyModifiers::SHIFT
            )),
            Some(vec![3])
        );
    }

    #[test]
    fn control_bytes() {
        let ctrl = |c| key_to_bytes(key(KeyCode::Char(c), KeyModifiers::CONTROL));
        assert_eq!(ctrl('a'), Some(vec![1]));
        assert_eq!(ctrl('d'), Some(vec![4]));
        assert_eq!(ctrl('z'), Some(vec![26]));
        assert_eq!(ctrl('['), Some(vec![0x1b]));
        assert_eq!(ctrl(' '), Some(vec![0]));
    }

    #[test]
    fn arrows_are_ansi() {
        let plain = |code| key_to_bytes(key(code, KeyModifiers::NONE));
        assert_eq!(plain(KeyCode::Up), Some(b"\x1b[A".to_vec()));
        assert_eq!(plain(KeyCode::Down), Some(b"\x1b[B".to_vec()));
        assert_eq!(plain(KeyCode::Right), Some(b"\x1b[C".to_vec()));
        assert_eq!(plain(KeyCode::Left), Some(b"\x1b[D".to_vec()));
    }

    #[test]
    fn enter_backspace_tab_esc() {
        let plain = |code| key_to_bytes(key(code, KeyModifiers::NONE));
        assert_eq!(plain(KeyCode::Enter), Some(b"\r".to_vec()));
        assert_eq!(plain(KeyCode::Backspace), Some(vec![0x7f]));
        assert_eq!(plain(KeyCode::Tab), Some(vec![9]));
        assert_eq!(plain(KeyCode::Esc), Some(vec![0x1b]));
    }

    #[test]
    fn printables_are_utf8() {
        let plain = |c| key_to_bytes(key(KeyCode::Char(c), KeyModifiers::NONE));
        assert_eq!(plain('a'), Some(b"a".to_vec()));
        assert_eq!(plain('é'), Some("é".as_bytes().to_vec()));
        assert_eq!(plain('€'), Some(vec![0xe2, 0x82, 0xac]));
        assert_eq!(plain('😀'), Some("😀".as_bytes().to_vec()));
        // Shift is already in the character.
        assert_eq!(
            key_to_bytes(key(KeyCode::Char('A'), KeyModifiers::SHIFT)),
            Some(b"A".to_vec())
        );
    }

    #[test]
    fn alt_prefixes_escape() {
        assert_eq!(
            key_to_bytes(key(KeyCode::Char('x'), KeyModifiers::ALT)),
            Some(b"\x1bx".to_vec())
        );
    }

    #[test]
    fn function_keys_send_nothing() {
        assert_eq!(key_to_bytes(key(KeyCode::F(5), KeyModifiers::NONE)), None);
    }

    #[test]
    fn chords_match_as_terminals_report_them() {
        let table = KeyTable::default();
        let quit = key(
            KeyCode::Char('Q'),
            KeyModifiers::CONTROL | KeyModifiers::SHIFT,
        );
        assert_eq!(
            table.lookup(Scope::Global, &quit, true),
            Some(&Action::Quit)
        );
        let question = key(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(
            table.lookup(Scope::Chat, &question, true),
            Some(&Action::Help)
        );
        assert_eq!(table.lookup(Scope::Chat, &question, false), None);
        let back = key(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(
            table.lookup(Scope::Global, &back, true),
            Some(&Action::FocusPrev)
        );
    }

    #[test]
    fn chords_parse_and_print() {
        for text in ["Ctrl-Q", "Alt-1", "F5", "Shift-Tab", "PgUp", "?", "Tab"] {
            let chord = KeyChord::parse(text).unwrap();
            assert_eq!(chord.to_string(), text);
        }
        assert_eq!(KeyChord::parse("ctrl-q"), Some(KeyChord::ctrl('q')));
        assert_eq!(KeyChord::parse("ctrl-"), None);
        assert_eq!(KeyChord::parse("banana"), None);
        assert_eq!(KeyChord::ctrl('q').short(), "^Q");
    }

    #[test]
    fn rebinding_moves_a_binding() {
        let mut table = KeyTable::default();
        table.rebind("quit", "ctrl-x").unwrap();
        table.check().unwrap();
        let ctrl_x = key(KeyCode::Char('x'), KeyModifiers::CONTROL);
        let ctrl_q = key(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(
            table.lookup(Scope::Global, &ctrl_x, true),
            Some(&Action::Quit)
        );
        assert_eq!(table.lookup(Scope::Global, &ctrl_q, true), None);
        assert!(table.hints(Scope::Global).any(|b| b.chord.short() == "^X"));
    }

    #[test]
    fn rebinding_refuses_bad_names_typed_keys_and_clashes() {
        let mut table = KeyTable::default();
        assert_eq!(
            table.rebind("quit", "hyper-z"),
            Err(KeyTableError::Chord("hyper-z".into()))
        );
        assert_eq!(
            table.rebind("dance", "f9"),
            Err(KeyTableError::Action("dance".into()))
        );
        assert!(matches!(
            table.rebind("quit", "q"),
            Err(KeyTableError::Typed { action: "quit", .. })
        ));
        assert!(matches!(
            table.rebind("clear", "enter"),
            Err(KeyTableError::Typed {
                action: "clear",
                ..
            })
        ));
        assert_eq!(
            table,
            KeyTable::default(),
            "a refused binding changes nothing"
        );

        table.rebind("hex", "f5").unwrap();
        let error = table.check().unwrap_err();
        assert_eq!(
            error.to_string(),
            "F5 is bound to both flash and hex: give one of them another key"
        );
        // Global F5 against a chat pane's own key is a clash too.
        let mut table = KeyTable::default();
        table.rebind("clear", "f1").unwrap();
        assert!(table.check().is_err());
    }

    #[test]
    fn keys_can_swap_and_defaults_do_not_clash() {
        KeyTable::default().check().unwrap();
        let mut table = KeyTable::default();
        table.rebind("next", "ctrl-n").unwrap();
        assert!(table.check().is_err(), "Ctrl-N is still new-pane's");
        table.rebind("new-pane", "tab").unwrap();
        table.check().unwrap();
        let tab = key(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(
            table.lookup(Scope::Chat, &tab, true),
            Some(&Action::NewPane)
        );
        // In the serial console the prefix moves, and Ctrl-T goes to the board again.
        let mut table = KeyTable::default();
        table.rebind("prefix", "ctrl-a").unwrap();
        let ctrl_a = key(KeyCode::Char('a'), KeyModifiers::CONTROL);
        assert_eq!(
            table.lookup(Scope::Serial, &ctrl_a, true),
            Some(&Action::Prefix)
        );
    }
}
