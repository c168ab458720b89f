//! The hex view, instead of the chain: bytes as `hexdump -C` rows.

use std::fmt::Write as _;

/// Hex view: formats bytes as hex-dump lines, 16 bytes per line: offset, hex bytes,
/// and printable ASCII ('.' for the rest), laid out as `hexdump -C` does.
#[derive(Default)]
pub struct HexDump {
    offset: u64,
    row: [u8; HEX_ROW],
    filled: usize,
}

const HEX_ROW: usize = 16;

impl HexDump {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(String)) {
        for &byte in bytes {
            self.row[self.filled] = byte;
            self.filled += 1;
            if self.filled == HEX_ROW {
                out(self.take_row());
            }
        }
    }

    /// Whether a shorter row waits for more bytes.
    pub fn pending(&self) -> bool {
        self.filled > 0
    }

    /// Emits the last, shorter row, if any.
    pub fn flush(&mut self, out: &mut impl FnMut(String)) {
        if self.filled > 0 {
            out(self.take_row());
        }
    }

    fn take_row(&mut self) -> String {
        let bytes = &self.row[..self.filled];
        let mut text = String::with_capacity(80);
        // Writing to a String cannot fail.
        let _ = write!(text, "{:08x}  ", self.offset);
        for i in 0..HEX_ROW {
            match bytes.get(i) {
                Some(byte) => {
                    let _ = write!(text, "{byte:02x} ");
                }
                None => text.push_str("   "),
            }
            if i == HEX_ROW / 2 - 1 {
                text.push(' ');
            }
        }
        text.push_str(" |");
        text.extend(bytes.iter().map(|&byte| {
            if byte.is_ascii_graphic() || byte == b' ' {
                char::from(byte)
            } else {
                '.'
            }
        }));
        text.push('|');
        self.offset += self.filled as u64;
        self.filled = 0;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(reads: &[&[u8]]) -> Vec<String> {
        let mut dump = HexDump::new();
        let mut rows = Vec::new();
        for read in reads {
            dump.feed(read, &mut |row| rows.push(row));
        }
        dump.flush(&mut |row| rows.push(row));
        rows
    }

    #[test]
    fn hex_dump_rows_look_like_hexdump_c() {
        let rows = hex(&[b"hello world\n\x00\x1b\xff\x7fABCDEFGHIJ"]);
        assert_eq!(
            rows,
            [
                "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a 00 1b ff 7f  |hello world.....|",
                "00000010  41 42 43 44 45 46 47 48  49 4a                    |ABCDEFGHIJ|",
            ]
        );
        let bytes: Vec<u8> = (0..=255).collect();
        let whole = hex(&[&bytes]);
        for i in 0..bytes.len() {
            assert_eq!(hex(&[&bytes[..i], &bytes[i..]]), whole);
        }
        assert_eq!(whole.len(), 16);
        assert!(whole[15].starts_with("000000f0  f0 f1"));
        assert!(hex(&[]).is_empty());
    }
}
