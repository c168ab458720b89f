//! What a key sends to the board in the serial console (espflash monitor's
//! `handle_key_event` is the model).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a paste sends to the board in the serial console: what typing it would send, key by
/// key ([`key_to_bytes`]), so a line break (`\r\n`, `\r` or `\n`) is Enter (CR), and an ASCII
/// control character is the byte its key sends (Tab, Esc, a Ctrl-letter). At most `max` bytes,
/// cut at a character; the second value is false if it was cut.
pub fn paste_to_bytes(text: &str, max: usize) -> (Vec<u8>, bool) {
    let mut bytes = Vec::with_capacity(text.len().min(max));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let typed = match c {
            '\r' | '\n' => {
                if c == '\r' {
                    chars.next_if_eq(&'\n');
                }
                b"\r".to_vec()
            }
            c if c.is_ascii_control() => vec![c as u8],
            c => key_to_bytes(KeyEvent::from(KeyCode::Char(c))).unwrap_or_default(),
        };
        if bytes.len() + typed.len() > max {
            return (bytes, false);
        }
        bytes.extend_from_slice(&typed);
    }
    (bytes, true)
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
