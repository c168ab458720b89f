//! What is not the message: the log prefix in front of it (ESP-IDF, Arduino, ESPHome,
//! Tasmota, esp-println) and the leftovers of colour codes whose ESC the decoder dropped.

use super::text::{skip_spaces, skip_while};

/// The end of a colour or cursor code whose ESC the decoder dropped: `[0;32m`, `[0m`, `[2K`.
pub(super) fn sgr_leftover(line: &[u8], pos: usize) -> Option<usize> {
    let params = skip_while(line, pos + 1, |b| b.is_ascii_digit() || b == b';');
    let count = params - pos - 1;
    let last = *line.get(params)?;
    let ends = match last {
        b'm' | b'K' | b'J' | b'H' | b'A' | b'B' | b'C' | b'D' | b'G' => count > 0 || last == b'K',
        _ => false,
    };
    // `[C][wifi:…]` is ESPHome's level tag, not a cursor code.
    let bracket_tag = line.get(params + 1) == Some(&b']');
    (ends && count <= 12 && !bracket_tag).then_some(params + 1)
}

/// Skips the log prefix so the log tag's words (`gateway:`, `mqtt_client:`) do not count as
/// the message's: ESP-IDF `I (1234) tag: `, `INFO - `, ESPHome `[C][wifi:436]: `, Arduino
/// `[   524][D][WiFiGeneric.cpp:1098] _eventCallback(): `, Tasmota `00:00:02.600 HTP: `.
pub(super) fn strip_prefix(line: &[u8]) -> usize {
    let mut pos = 0;
    loop {
        pos = skip_spaces(line, pos);
        match line.get(pos) {
            Some(b'[') => match sgr_leftover(line, pos) {
                Some(end) => pos = end,
                None => break,
            },
            _ => break,
        }
    }
    let rest = &line[pos..];

    // ESP-IDF: `I (1234) tag: message`, the time also as `(12:34:56.789)`.
    if rest.len() > 3
        && b"EWIDV".contains(&rest[0])
        && rest[1] == b' '
        && rest[2] == b'('
        && let Some(close) = rest.iter().take(24).position(|b| *b == b')')
    {
        let tag = skip_spaces(rest, close + 1);
        if let Some(colon) = rest[tag..].iter().take(32).position(|b| *b == b':') {
            return skip_spaces(line, pos + tag + colon + 1);
        }
        return pos + tag;
    }
    // esp-println / log: `INFO - message`.
    for level in [&b"ERROR"[..], b"WARN", b"INFO", b"DEBUG", b"TRACE"] {
        if rest.starts_with(level) && rest[level.len()..].starts_with(b" - ") {
            return pos + level.len() + 3;
        }
    }
    // Bracketed tags: ESPHome and Arduino-ESP32's log_x().
    let mut bracketed = 0;
    let mut after = pos;
    while line.get(after) == Some(&b'[') {
        match line[after..].iter().take(48).position(|b| *b == b']') {
            Some(close) => {
                after += close + 1;
                bracketed += 1;
            }
            None => break,
        }
    }
    if bracketed > 0 {
        if line.get(after) == Some(&b':') {
            after += 1;
        }
        after = skip_spaces(line, after);
        // Arduino's `_eventCallback(): `.
        let ident = skip_while(line, after, |b| b.is_ascii_alphanumeric() || b == b'_');
        if ident > after && line[ident..].starts_with(b"(): ") {
            after = ident + 4;
        }
        return after;
    }
    // Tasmota: `00:00:02.600 HTP: message`.
    if rest.len() > 9 && rest[2] == b':' && rest[5] == b':' && rest[0].is_ascii_digit() {
        let time = skip_while(rest, 0, |b| b.is_ascii_digit() || b == b':' || b == b'.');
        let tag = skip_spaces(rest, time);
        let tag_end = skip_while(rest, tag, |b| b.is_ascii_uppercase());
        if (2..=4).contains(&(tag_end - tag)) && rest[tag_end..].starts_with(b": ") {
            return pos + tag_end + 2;
        }
        return pos + tag;
    }
    pos
}

/// `text` without the whitespace and colour-code leftovers (`[0m`) at its end.
pub(super) fn trim_end_leftovers(text: &[u8]) -> &[u8] {
    let mut end = text.len();
    loop {
        while end > 0 && text[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        // A leftover is short; looking further back would make long lines slow.
        let window = end.saturating_sub(16);
        let Some(open) = text[window..end].iter().rposition(|b| *b == b'[') else {
            return &text[..end];
        };
        if sgr_leftover(text, window + open) == Some(end) {
            end = window + open;
        } else {
            return &text[..end];
        }
    }
}

pub(super) fn ends_with_colon(text: &[u8]) -> bool {
    trim_end_leftovers(text)
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b':')
}

#[cfg(test)]
mod tests {
    use crate::serial::ip_watcher::tests::{ip, own_ip};

    #[test]
    fn colour_code_leftovers_do_not_hide_or_fake_an_address() {
        let line = "[0;32mI (1523) esp_netif_handlers: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1[0m";
        assert_eq!(own_ip(&[line]), ip("192.168.1.42"));
        assert_eq!(
            own_ip(&["IP address: [1;33m192.168.1.42[0m"]),
            ip("192.168.1.42")
        );
        assert_eq!(
            own_ip(&["[0;36m[C][wifi:436]:   IP Address: 192.168.1.42[0m"]),
            ip("192.168.1.42")
        );
        assert_eq!(own_ip(&["[0;33mW (1234) wifi: gw [0m192.168.1.1"]), None);
    }
}
