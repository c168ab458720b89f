//! SLIP framing as the ESP serial bootloader uses it: every packet sits between two 0xC0 bytes,
//! and inside a packet 0xC0 is sent as DB DC and 0xDB as DB DD.

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;

/// Appends `packet` to `out` as one SLIP frame (with both delimiters).
pub fn encode_into(packet: &[u8], out: &mut Vec<u8>) {
    out.reserve(packet.len() + 2);
    out.push(END);
    for &byte in packet {
        match byte {
            END => out.extend_from_slice(&[ESC, ESC_END]),
            ESC => out.extend_from_slice(&[ESC, ESC_ESC]),
            _ => out.push(byte),
        }
    }
    out.push(END);
}

/// `packet` as one SLIP frame.
pub fn encode(packet: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.len() + 2);
    encode_into(packet, &mut out);
    out
}

/// What the decoder made of a completed frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole packet, unescaped.
    Packet(Vec<u8>),
    /// The frame was longer than the decoder's cap; its bytes were dropped.
    TooLong,
    /// The frame held an escape other than DB DC / DB DD; its bytes were dropped.
    BadEscape,
}

/// Streaming SLIP decoder with a size cap, fed whatever the serial port delivers.
///
/// Every 0xC0 is treated as a delimiter: the bytes between two of them are one frame, and
/// empty frames (the `C0 C0` between two packets) are ignored. Bytes before the first 0xC0,
/// such as console noise when the board switches from the app to the loader, come out as a
/// frame of their own that the request parser rejects. This resynchronises after any
/// garbage at the next delimiter, and memory never exceeds the cap.
#[derive(Debug)]
pub struct SlipDecoder {
    buf: Vec<u8>,
    max_len: usize,
    escaped: bool,
    /// The current frame has already been spoiled (too long or bad escape).
    spoiled: Option<Decoded>,
}

impl SlipDecoder {
    /// A decoder that drops frames whose unescaped length exceeds `max_len`.
    pub fn new(max_len: usize) -> Self {
        SlipDecoder {
            buf: Vec::new(),
            max_len,
            escaped: false,
            spoiled: None,
        }
    }

    /// Feeds one byte; returns a result when it completed a non-empty frame.
    pub fn push(&mut self, byte: u8) -> Option<Decoded> {
        if byte == END {
            let escaped = std::mem::replace(&mut self.escaped, false);
            if let Some(spoiled) = self.spoiled.take() {
                self.buf.clear();
                return Some(spoiled);
            }
            if escaped {
                // A frame that ends inside an escape is truncated.
                self.buf.clear();
                return Some(Decoded::BadEscape);
            }
            if self.buf.is_empty() {
                return None;
            }
            let packet = std::mem::take(&mut self.buf);
            return Some(Decoded::Packet(packet));
        }
        if self.spoiled.is_some() {
            return None;
        }
        let value = if self.escaped {
            self.escaped = false;
            match byte {
                ESC_END => END,
                ESC_ESC => ESC,
                _ => {
                    self.spoil(Decoded::BadEscape);
                    return None;
                }
            }
        } else if byte == ESC {
            self.escaped = true;
            return None;
        } else {
            byte
        };
        if self.buf.len() >= self.max_len {
            self.spoil(Decoded::TooLong);
            return None;
        }
        if self.buf.len() == self.buf.capacity() {
            // Grow by doubling, but never past the cap (plain `push` could reach twice it).
            let target = (self.buf.capacity() * 2).max(64).min(self.max_len);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.push(value);
        None
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets a partly received frame (after a baud change, say).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.escaped = false;
        self.spoiled = None;
    }

    fn spoil(&mut self, why: Decoded) {
        self.spoiled = Some(why);
        // Give the memory back: a spoiled frame may have grown the buffer to the cap.
        self.buf = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut SlipDecoder, bytes: &[u8]) -> Vec<Decoded> {
        bytes.iter().filter_map(|&b| decoder.push(b)).collect()
    }

    #[test]
    fn escapes_both_special_bytes() {
        assert_eq!(
            encode(&[1, 0xC0, 2, 0xDB, 3]),
            [0xC0, 1, 0xDB, 0xDC, 2, 0xDB, 0xDD, 3, 0xC0]
        );
    }

    #[test]
    fn round_trip_survives_every_split() {
        let packets: [&[u8]; 3] = [&[0xC0, 0xDB, 0xDB, 0xC0], &[0, 8, 0xDC, 0xDD], &[7; 40]];
        let mut wire = Vec::new();
        for p in packets {
            encode_into(p, &mut wire);
        }
        for split in 0..=wire.len() {
            for split2 in split..=wire.len() {
                let mut decoder = SlipDecoder::new(1024);
                let mut got = decode_all(&mut decoder, &wire[..split]);
                got.extend(decode_all(&mut decoder, &wire[split..split2]));
                got.extend(decode_all(&mut decoder, &wire[split2..]));
                let want: Vec<_> = packets
                    .iter()
                    .map(|p| Decoded::Packet(p.to_vec()))
                    .collect();
                assert_eq!(got, want, "split at {split}/{split2}");
            }
        }
    }

    #[test]
    fn empty_frames_between_packets_are_ignored() {
        let mut decoder = SlipDecoder::new(16);
        let got = decode_all(&mut decoder, &[0xC0, 0xC0, 0xC0, 5, 0xC0, 0xC0]);
        assert_eq!(got, [Decoded::Packet(vec![5])]);
    }

    #[test]
    fn garbage_before_a_frame_comes_out_alone_and_the_frame_survives() {
        let mut decoder = SlipDecoder::new(16);
        let mut wire = b"boot log\r\n".to_vec();
        encode_into(&[1, 2, 3], &mut wire);
        let got = decode_all(&mut decoder, &wire);
        assert_eq!(
            got,
            [
                Decoded::Packet(b"boot log\r\n".to_vec()),
                Decoded::Packet(vec![1, 2, 3])
            ]
        );
    }

    #[test]
    fn oversized_frame_is_dropped_and_the_next_one_decodes() {
        let mut decoder = SlipDecoder::new(8);
        let mut wire = encode(&[9; 100]);
        encode_into(&[1, 2], &mut wire);
        let got = decode_all(&mut decoder, &wire);
        assert_eq!(got, [Decoded::TooLong, Decoded::Packet(vec![1, 2])]);
        assert!(decoder.buf.capacity() <= 8);
    }

    #[test]
    fn bad_and_truncated_escapes_spoil_only_their_frame() {
        let mut decoder = SlipDecoder::new(16);
        let got = decode_all(
            &mut decoder,
            &[0xC0, 1, 0xDB, 0x00, 2, 0xC0, 3, 0xDB, 0xC0, 4, 0xC0],
        );
        assert_eq!(
            got,
            [
                Decoded::BadEscape,
                Decoded::BadEscape,
                Decoded::Packet(vec![4])
            ]
        );
    }
}
