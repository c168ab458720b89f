//! Line-level helpers for the panic scanner: what a monitor or logger put in front of the text
//! a board printed, hex numbers, and `NAME : 0xVALUE` register fields.

/// The text the board printed, without what came in front of it: indentation, a quote (`> `),
/// bracketed stamps (`[14:04:29]`, `[ERROR]`, `[D][esp-idf:000]:`), the Arduino serial
/// monitor's `10:10:43.045 -> `, a defmt/probe-rs time (`5.904287 `) and an ESP-IDF log
/// prefix (`E (1234) tag: `). Trailing whitespace goes too.
pub(super) fn payload(line: &str) -> &str {
    let mut text = line.trim();
    // Prefixes stack (`[19:17:31][D][esp-idf:000]: I (645) wifi: ...`); a few rounds suffice.
    for _ in 0..6 {
        let before = text.len();
        text = strip_quote(text);
        text = strip_brackets(text);
        text = strip_arduino_time(text);
        text = strip_seconds(text);
        text = strip_idf_log(text);
        if text.len() == before {
            break;
        }
    }
    text
}

fn strip_quote(text: &str) -> &str {
    match text.strip_prefix('>') {
        // `>>>stack>>>` is content, not a quote.
        Some(rest) if !rest.starts_with('>') => rest.trim_start(),
        _ => text,
    }
}

/// `[...]` and `[...]:` within the first 40 bytes, as long as the bracket holds no space-led
/// text that could be content (`[ERROR]`, `[14:04:29]`, `[D]`, `[esp-idf:000]`).
fn strip_brackets(text: &str) -> &str {
    let Some(rest) = text.strip_prefix('[') else {
        return text;
    };
    let Some(end) = rest.bytes().take(40).position(|b| b == b']') else {
        return text;
    };
    let rest = &rest[end + 1..];
    rest.strip_prefix(':').unwrap_or(rest).trim_start()
}

/// The Arduino IDE serial monitor's `HH:MM:SS.mmm -> ` (just `HH:MM:SS.mmm ->` on an empty line).
fn strip_arduino_time(text: &str) -> &str {
    let head = text.get(..24).unwrap_or(text);
    let Some(arrow) = head.find(" ->") else {
        return text;
    };
    let stamp = &text.as_bytes()[..arrow];
    let rest = &text[arrow + 3..];
    let stamp_only = stamp
        .iter()
        .all(|b| b.is_ascii_digit() || b":.".contains(b));
    if !stamp.is_empty() && stamp_only && (rest.is_empty() || rest.starts_with(' ')) {
        rest.trim_start()
    } else {
        text
    }
}

/// A defmt/probe-rs time in seconds, `5.904287 `: digits, one dot, digits, a space.
fn strip_seconds(text: &str) -> &str {
    let bytes = text.as_bytes();
    let int = count_while(bytes, 0, |b| b.is_ascii_digit());
    if int == 0 || bytes.get(int) != Some(&b'.') {
        return text;
    }
    let frac = count_while(bytes, int + 1, |b| b.is_ascii_digit());
    let end = int + 1 + frac;
    if frac > 0 && bytes.get(end) == Some(&b' ') {
        text[end..].trim_start()
    } else {
        text
    }
}

/// ESP-IDF's `E (1234) tag: ` (levels E W I D V; the time may be `(12:34:56.789)`).
fn strip_idf_log(text: &str) -> &str {
    let bytes = text.as_bytes();
    if bytes.len() < 6 || !b"EWIDV".contains(&bytes[0]) || &bytes[1..3] != b" (" {
        return text;
    }
    let Some(close) = bytes[3..].iter().take(20).position(|&b| b == b')') else {
        return text;
    };
    let after = 3 + close + 1;
    let rest = &text[after..];
    // The tag is a word followed by `: `; without it the prefix ends at the time.
    match rest.find(": ") {
        Some(colon) if !rest[..colon].trim().contains(' ') => rest[colon + 2..].trim_start(),
        _ => rest.trim_start(),
    }
}

fn count_while(bytes: &[u8], from: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|&&b| keep(b)).count())
}

/// A hex number of 1 to 8 digits at the start of `text` (no `0x`), ending at a non-alphanumeric
/// byte: the value and its length.
pub(super) fn hex(text: &[u8]) -> Option<(u32, usize)> {
    let len = count_while(text, 0, |b| b.is_ascii_hexdigit());
    if len == 0 || len > 8 || text.get(len).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let digits = std::str::from_utf8(&text[..len]).ok()?;
    Some((u32::from_str_radix(digits, 16).ok()?, len))
}

/// `0x` and a hex number at the start of `text` (`0X` too): the value and the length used.
pub(super) fn hex_0x(text: &[u8]) -> Option<(u32, usize)> {
    match text {
        [b'0', b'x' | b'X', rest @ ..] => hex(rest).map(|(value, len)| (value, len + 2)),
        _ => None,
    }
}

/// A decimal number of up to 10 digits at the start of `text`, ending at a non-alphanumeric.
pub(super) fn decimal(text: &[u8]) -> Option<(u32, usize)> {
    let len = count_while(text, 0, |b| b.is_ascii_digit());
    if len == 0 || len > 10 || text.get(len).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let digits = std::str::from_utf8(&text[..len]).ok()?;
    Some((digits.parse().ok()?, len))
}

/// One `NAME : VALUE` or `NAME=VALUE` field of a register dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Field<'a> {
    pub name: &'a str,
    pub value: u32,
}

/// The fields of `text` when it consists of register fields and nothing else (ESP-IDF's
/// `MEPC    : 0x4200abcd  RA      : 0x4200ef01`, esp-backtrace's `PC=0x4200abcd  RA/x1=0x...`,
/// the ESP8266's `epc1=0x40201234 epc2=0x00000000`): None for any other line. Names are a
/// letter then letters, digits and `/`; values are hex with or without `0x` (esp-backtrace
/// prints `SAR=0000000f`).
pub(super) fn fields(text: &str) -> Option<Fields<'_>> {
    let all = Fields { text, pos: 0 };
    let mut count = 0;
    for field in all {
        field?;
        count += 1;
    }
    (count > 0).then_some(all)
}

/// Iterates the fields of a line; yields `None` once at the first thing that is not a field.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fields<'a> {
    text: &'a str,
    pos: usize,
}

impl Fields<'_> {
    pub(super) fn valid_count(self) -> usize {
        self.flatten().count()
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let start = self.pos + count_while(bytes, self.pos, |b| b == b' ' || b == b'\t');
        if start >= bytes.len() {
            return None;
        }
        // A malformed field ends the iteration after reporting it.
        self.pos = bytes.len();
        if !bytes[start].is_ascii_alphabetic() {
            return Some(None);
        }
        let name_len = count_while(bytes, start, |b| b.is_ascii_alphanumeric() || b == b'/');
        let name = &self.text[start..start + name_len];
        let mut at = start + name_len;
        at += count_while(bytes, at, |b| b == b' ');
        match bytes.get(at) {
            Some(b':' | b'=') => at += 1,
            _ => return Some(None),
        }
        at += count_while(bytes, at, |b| b == b' ');
        let Some((value, len)) = hex_0x(&bytes[at..]).or_else(|| hex(&bytes[at..])) else {
            return Some(None);
        };
        at += len;
        if bytes.get(at).is_some_and(|&b| b != b' ' && b != b'\t') {
            return Some(None);
        }
        self.pos = at;
        Some(Some(Field { name, value }))
    }
}
