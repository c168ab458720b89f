//! Keys are data: one table maps chords to [`Action`]s, and everything on screen that names a
//! key (the footer, the help overlay, the console's title after the prefix, the search hints)
//! reads it from the same table, so a key rebound in the config file is named right everywhere.

mod bytes;
mod chord;
mod stray;
#[cfg(test)]
mod tests;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use self::bytes::{key_to_bytes, paste_to_bytes};
pub use self::chord::KeyChord;
pub use self::stray::StrayKeys;

/// Everything the user can ask of the app. `App::update` is the only place that acts on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    FocusNext,
    FocusPrev,
    /// 0 is the serial console, 1.. the chat panes in screen order.
    FocusPane(usize),
    NewPane,
    ClosePane,
    /// Open the listen pane, and have our firmware's board connect to it.
    Listen,
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
    /// The prefix (Ctrl-T by default) in the serial console: the next key is for the app, not
    /// the board.
    Prefix,
    /// The answer to "flash in progress: quit anyway?".
    ConfirmQuit(bool),
    /// The answer to "connect the chat panes to this public address?".
    ConfirmAddress(bool),
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
    /// Leave the search.
    Cancel,
    /// Keys for the board, already encoded (see [`key_to_bytes`]).
    SerialBytes(Vec<u8>),
    /// Text pasted into the terminal: into the active input line, or to the board from the
    /// serial console (see [`paste_to_bytes`]).
    Paste(String),
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
    /// In the serial console after the prefix (Ctrl-T by default), tio's model.
    Prefix,
    /// While a search query is typed: every other key edits the query.
    SearchQuery,
    /// While stepping through a search's matches, in either kind of pane: every other key does
    /// what it does there.
    SearchMatches,
}

/// When a binding applies, as to the focused chat pane's input line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only while the chat input line is empty, so that typing `?` or `/` still types.
    InputEmpty,
}

/// One key of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The config file's name for it in `[keys]`; empty: it cannot be rebound.
    pub name: &'static str,
    pub scope: Scope,
    pub chord: KeyChord,
    pub action: Action,
    pub when: When,
    /// The footer's word; empty: not in the footer.
    pub hint: &'static str,
    /// The help overlay's text; empty: not in the help (an alternative named elsewhere).
    pub description: &'static str,
}

/// The keys of the TUI: which chord means which [`Action`] in which [`Scope`]. Built from the
/// defaults below, then rebound from the config file's `[keys]` ([`KeyTable::rebind`], then
/// [`KeyTable::check`]). `App::key_action` looks keys up in it, and the footer, the help
/// overlay and every hint that names a key read their chords from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTable {
    pub bindings: Vec<Binding>,
}

/// Why a binding from the config file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyTableError {
    #[error("{0:?} is not a key: write it like ctrl-q, alt-1, f5, shift-tab or pgup")]
    Chord(String),
    #[error("{0:?} is not an action: use one of {names}", names = names())]
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

/// A row of [`DEFAULT_KEYS`], in the order of [`Binding`]'s fields.
type Row = (
    &'static str,
    Scope,
    KeyChord,
    Action,
    When,
    &'static str,
    &'static str,
);

const fn ctrl(c: char) -> KeyChord {
    KeyChord::ctrl(c)
}

const fn alt(c: char) -> KeyChord {
    KeyChord::alt(c)
}

const fn key(code: KeyCode) -> KeyChord {
    KeyChord::plain(code)
}

const fn char(c: char) -> KeyChord {
    KeyChord::plain(KeyCode::Char(c))
}

/// The keys out of the box. The order is the footer's and the help's; a config name (first
/// column) belongs to one row only, and is what `[keys]` in the config file rebinds.
#[rustfmt::skip]
const DEFAULT_KEYS: &[Row] = {
    // Action::Prefix is written out: Prefix alone is the scope.
    use Action::*;
    use KeyCode::*;
    use Scope::{Chat, Global, Prefix, SearchMatches, SearchQuery, Serial};
    use When::{Always, InputEmpty};
    &[
        // config name    scope          key            action              when        footer    help
        ("quit",          Global,        ctrl('q'),     Quit,               Always,     "quit",   "quit (asks while flashing)"),
        ("help",          Global,        key(F(1)),     Help,               Always,     "help",   "this help"),
        ("flash",         Global,        key(F(5)),     Flash,              Always,     "flash",  "flash the bundled firmware"),
        ("reset",         Global,        key(F(6)),     ResetBoard,         Always,     "reset",  "reset the board"),
        ("timestamps",    Global,        key(F(7)),     ToggleTimestamps,   Always,     "time",   "timestamps on/off"),
        ("hex",           Global,        key(F(8)),     ToggleHex,          Always,     "hex",    "hex view of the console"),
        ("listen",        Global,        key(F(9)),     Listen,             Always,     "listen", "a pane boards connect to"),
        ("prev",          Global,        key(BackTab),  FocusPrev,          Always,     "",       "previous pane"),
        ("scroll-up",     Global,        key(PageUp),   ScrollUp,           Always,     "",       "scroll up a page"),
        ("scroll-down",   Global,        key(PageDown), ScrollDown,         Always,     "",       "scroll down a page"),
        ("",              Global,        alt('0'),      FocusPane(0),       Always,     "",       "focus the serial console"),
        ("",              Global,        alt('1'),      FocusPane(1),       Always,     "",       "chat pane N (Alt-1..9)"),
        ("",              Global,        alt('2'),      FocusPane(2),       Always,     "",       ""),
        ("",              Global,        alt('3'),      FocusPane(3),       Always,     "",       ""),
        ("",              Global,        alt('4'),      FocusPane(4),       Always,     "",       ""),
        ("",              Global,        alt('5'),      FocusPane(5),       Always,     "",       ""),
        ("",              Global,        alt('6'),      FocusPane(6),       Always,     "",       ""),
        ("",              Global,        alt('7'),      FocusPane(7),       Always,     "",       ""),
        ("",              Global,        alt('8'),      FocusPane(8),       Always,     "",       ""),
        ("",              Global,        alt('9'),      FocusPane(9),       Always,     "",       ""),

        ("next",          Chat,          key(Tab),      FocusNext,          Always,     "next",   "next pane"),
        ("new-pane",      Chat,          ctrl('n'),     NewPane,            Always,     "new",    "new chat pane"),
        ("close-pane",    Chat,          ctrl('w'),     ClosePane,          Always,     "close",  "close this chat pane"),
        ("search",        Chat,          ctrl('f'),     Search,             Always,     "search", "search (or / on empty line)"),
        ("clear",         Chat,          ctrl('l'),     Clear,              Always,     "clear",  "clear this pane"),
        ("",              Chat,          char('/'),     Search,             InputEmpty, "",       ""),
        ("",              Chat,          char('?'),     Help,               InputEmpty, "",       ""),

        ("prefix",        Serial,        ctrl('t'),     Action::Prefix,     Always,     "cmd",    "then one of:"),
        ("",              Prefix,        char('q'),     Quit,               Always,     "",       "quit"),
        ("",              Prefix,        char('?'),     Help,               Always,     "",       "this help"),
        ("",              Prefix,        key(Tab),      FocusNext,          Always,     "next",   "next pane"),
        ("",              Prefix,        char('f'),     Flash,              Always,     "",       "flash"),
        ("",              Prefix,        char('r'),     ResetBoard,         Always,     "",       "reset the board"),
        ("",              Prefix,        char('t'),     ToggleTimestamps,   Always,     "",       "timestamps on/off"),
        ("",              Prefix,        char('h'),     ToggleHex,          Always,     "",       "hex view on/off"),
        ("",              Prefix,        char('n'),     NewPane,            Always,     "",       "new chat pane"),
        ("",              Prefix,        char('/'),     Search,             Always,     "",       "search"),
        ("",              Prefix,        char('l'),     Clear,              Always,     "",       "clear the console"),

        ("search-find",   SearchQuery,   key(Enter),    Submit,             Always,     "find",   ""),
        ("search-cancel", SearchQuery,   key(Esc),      Cancel,             Always,     "cancel", ""),
        ("search-older",  SearchMatches, char('n'),     SearchNext,         Always,     "older",  ""),
        ("search-newer",  SearchMatches, char('N'),     SearchPrev,         Always,     "newer",  ""),
        ("search-done",   SearchMatches, key(Esc),      Cancel,             Always,     "done",   ""),
        ("",              SearchMatches, key(Enter),    Cancel,             Always,     "",       ""),
    ]
};

/// The names `[keys]` in the config file accepts, in table order.
fn names() -> String {
    let names: Vec<&str> = DEFAULT_KEYS
        .iter()
        .map(|row| row.0)
        .filter(|name| !name.is_empty())
        .collect();
    names.join(", ")
}

impl Default for KeyTable {
    fn default() -> Self {
        let bindings = DEFAULT_KEYS
            .iter()
            .map(
                |(name, scope, chord, action, when, hint, description)| Binding {
                    name,
                    scope: *scope,
                    chord: *chord,
                    action: action.clone(),
                    when: *when,
                    hint,
                    description,
                },
            )
            .collect();
        KeyTable { bindings }
    }
}

impl KeyTable {
    /// The action bound to `key` in `scope`; `input_empty` tells whether the chat input line
    /// is empty, for keys that type a character otherwise.
    pub fn lookup(&self, scope: Scope, key: &KeyEvent, input_empty: bool) -> Option<&Action> {
        self.bindings
            .iter()
            .find(|b| {
                b.scope == scope && b.chord.matches(key) && (input_empty || b.when == When::Always)
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

    /// The serial console's prefix chord (Ctrl-T out of the box).
    pub fn prefix(&self) -> Option<KeyChord> {
        self.chord_for(&Action::Prefix)
    }

    /// Bindings of `scope` the help overlay lists.
    pub fn help(&self, scope: Scope) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(move |b| b.scope == scope && !b.description.is_empty())
    }

    /// Rebinds a key from the config file: `rebind("quit", "ctrl-x")` moves the binding named
    /// `quit` to Ctrl-X. Call [`KeyTable::check`] after the last one, so that two keys can swap
    /// places.
    pub fn rebind(&mut self, name: &str, chord: &str) -> Result<(), KeyTableError> {
        let parsed = KeyChord::parse(chord).ok_or_else(|| KeyTableError::Chord(chord.into()))?;
        let binding = self
            .bindings
            .iter_mut()
            .find(|b| !b.name.is_empty() && b.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| KeyTableError::Action(name.into()))?;
        if let Some(place) = typed_in(binding.scope, parsed) {
            return Err(KeyTableError::Typed {
                chord: parsed.to_string(),
                action: binding.name,
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
                        first: self.name_of(first),
                        second: self.name_of(second),
                    });
                }
            }
        }
        Ok(())
    }

    /// What the config file calls a binding, or one of the same action (`/` is `search`).
    fn name_of(&self, binding: &Binding) -> &'static str {
        if !binding.name.is_empty() {
            return binding.name;
        }
        self.bindings
            .iter()
            .find(|b| b.action == binding.action && !b.name.is_empty())
            .map_or("a pane focus key", |b| b.name)
    }
}

/// Where a chord without Ctrl or Alt is needed for something else: typing in a chat pane or
/// in the search query, and the board in the serial console. After the prefix, and while
/// stepping through matches, every key is free.
fn typed_in(scope: Scope, chord: KeyChord) -> Option<&'static str> {
    use KeyCode::*;
    let modified = chord
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let edits = matches!(
        chord.code,
        Char(_) | Backspace | Delete | Left | Right | Home | End
    );
    let typed = edits || matches!(chord.code, Enter | Up | Down | Esc);
    match scope {
        _ if modified => None,
        Scope::Prefix | Scope::SearchMatches => None,
        Scope::SearchQuery => edits.then_some("search query"),
        _ if !typed => None,
        Scope::Chat => Some("chat input line"),
        Scope::Serial => Some("board"),
        Scope::Global => Some("chat input line and the board"),
    }
}
