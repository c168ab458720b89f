//! The key table's tests: chords as terminals report them, the config file's rebinding, and
//! the bytes keys send to the board.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

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
fn a_paste_sends_what_typing_it_would() {
    let (bytes, whole) = paste_to_bytes("wifi lab é\r\nstatus\nhelp\r\t\x03", 64);
    assert!(whole);
    assert_eq!(bytes, "wifi lab é\rstatus\rhelp\r\t\x03".as_bytes());
    let typed: Vec<u8> = "é\n"
        .chars()
        .map(|c| match c {
            '\n' => KeyCode::Enter,
            c => KeyCode::Char(c),
        })
        .flat_map(|code| key_to_bytes(key(code, KeyModifiers::NONE)).unwrap())
        .collect();
    assert_eq!(paste_to_bytes("é\n", 64).0, typed);
}

#[test]
fn a_paste_to_the_board_is_cut_at_a_character() {
    assert_eq!(paste_to_bytes("abé", 3), (b"ab".to_vec(), false));
    assert_eq!(paste_to_bytes("abé", 4), ("abé".as_bytes().to_vec(), true));
    assert_eq!(paste_to_bytes("", 0), (Vec::new(), true));
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

#[test]
fn each_config_name_rebinds_one_row_and_the_defaults_pass_their_own_checks() {
    let table = KeyTable::default();
    let named: Vec<&Binding> = table
        .bindings
        .iter()
        .filter(|b| !b.name.is_empty())
        .collect();
    for (i, binding) in named.iter().enumerate() {
        assert!(
            named[i + 1..]
                .iter()
                .all(|other| other.name != binding.name),
            "{} names two rows",
            binding.name
        );
        // Writing the default into the config file, as the help shows it, changes nothing.
        let mut rebound = table.clone();
        rebound
            .rebind(binding.name, &binding.chord.to_string())
            .unwrap();
        rebound.check().unwrap();
        let event = KeyEvent::new(binding.chord.code, binding.chord.modifiers);
        let row = rebound.bindings.iter().find(|b| b.name == binding.name);
        assert!(row.unwrap().chord.matches(&event), "{}", binding.name);
    }
    assert!(names().starts_with("quit, help, flash"));
    assert!(names().ends_with("search-done"));
}
