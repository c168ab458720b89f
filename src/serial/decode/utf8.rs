//! Stage 1: UTF-8 decoded across reads, so that `vte` only ever sees whole characters
//! (vte 0.15 drops a character after a code point split across two `advance` calls,
//! alacritty/vte#159).

/// Decodes UTF-8 across reads. The output is what `String::from_utf8_lossy` gives
/// for the whole stream, whatever the split, with one exception: a lone byte
/// 0x80..=0x9F becomes the C1 control U+0080..=U+009F it stands for on an 8-bit
/// line, so that the next stage removes it like any other control instead of showing
/// U+FFFD.
#[derive(Default)]
pub(super) struct Utf8Merge {
    /// The start of a character cut off by the end of the previous read; at most 3
    /// bytes, always a valid prefix of some character.
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Merge {
    pub(super) fn feed(&mut self, mut bytes: &[u8], sink: &mut impl FnMut(&str)) {
        if self.pending_len > 0 {
            match self.complete_pending(bytes, sink) {
                Some(used) => bytes = &bytes[used..],
                None => return,
            }
        }
        // The common case, and much faster than `utf8_chunks`.
        if let Ok(text) = std::str::from_utf8(bytes) {
            if !text.is_empty() {
                sink(text);
            }
            return;
        }
        let mut at = 0;
        for chunk in bytes.utf8_chunks() {
            if !chunk.valid().is_empty() {
                sink(chunk.valid());
            }
            at += chunk.valid().len();
            let invalid = chunk.invalid();
            at += invalid.len();
            // Only the last chunk can be a character cut off by the end of the read;
            // `utf8_chunks` cannot tell it from an invalid one, `from_utf8` can.
            if at == bytes.len() && is_truncated(invalid) {
                self.pending[..invalid.len()].copy_from_slice(invalid);
                self.pending_len = invalid.len();
            } else {
                push_invalid(invalid, sink);
            }
        }
    }

    /// Completes the character held back from the previous read with the first bytes
    /// of `bytes`. Returns how many bytes of `bytes` it used, or `None` if `bytes` were
    /// all used and the character is still incomplete.
    fn complete_pending(&mut self, bytes: &[u8], sink: &mut impl FnMut(&str)) -> Option<usize> {
        let held = self.pending_len;
        let need = utf8_len(self.pending[0]);
        let take = bytes.len().min(need - held);
        let mut buf = [0; 4];
        buf[..held].copy_from_slice(&self.pending[..held]);
        buf[held..held + take].copy_from_slice(&bytes[..take]);
        let buf = &buf[..held + take];
        let consumed = match std::str::from_utf8(buf) {
            Ok(ch) => {
                sink(ch);
                buf.len()
            }
            Err(err) => match err.error_len() {
                Some(invalid) => {
                    sink(REPLACEMENT);
                    invalid
                }
                None => {
                    self.pending[..buf.len()].copy_from_slice(buf);
                    self.pending_len = buf.len();
                    return None;
                }
            },
        };
        self.pending_len = 0;
        // The held bytes are a valid prefix, so an invalid sequence includes them all.
        Some(consumed.saturating_sub(held))
    }

    /// The end of the stream: a character still incomplete is invalid.
    pub(super) fn flush(&mut self, sink: &mut impl FnMut(&str)) {
        if self.pending_len > 0 {
            self.pending_len = 0;
            sink(REPLACEMENT);
        }
    }
}

const REPLACEMENT: &str = "\u{FFFD}";

/// Whether `bytes` is the start of a character that more bytes could complete.
fn is_truncated(bytes: &[u8]) -> bool {
    !bytes.is_empty() && matches!(std::str::from_utf8(bytes), Err(err) if err.error_len().is_none())
}

/// The length of the character a valid lead byte starts.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn push_invalid(invalid: &[u8], sink: &mut impl FnMut(&str)) {
    match *invalid {
        [] => {}
        [byte @ 0x80..=0x9F] => {
            let mut buf = [0; 4];
            sink(char::from(byte).encode_utf8(&mut buf));
        }
        _ => sink(REPLACEMENT),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::serial::decode::tests::{MAX, lines, run_reads, split};

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        // One U+FFFD for each invalid sequence, as `from_utf8_lossy` gives; a lone byte
        // 0x80..=0x9F is an 8-bit C1 control and is removed (as vte does).
        assert_eq!(
            lines(b"a\xffb\xe2\x82c\xf0\x9f\x98\x80d\xc0\xafe\xed\xa0\xbf\n"),
            ["a\u{fffd}b\u{fffd}c\u{1f600}d\u{fffd}\u{fffd}e\u{fffd}\u{fffd}\u{fffd}"]
        );
        assert_eq!(lines(b"a\xc0\x80b\xf0\x9f\x98\n"), ["a\u{fffd}b\u{fffd}"]);
    }

    #[test]
    fn a_character_split_across_reads_is_kept_whole() {
        // vte 0.15 alone drops the "a" here (alacritty/vte#159): it completes the
        // split character from a 4-byte window and, when the window ends in another
        // incomplete character, skips what followed the completed one.
        let (run, _) = run_reads(&[b"x\xc3", b"\xa9a\xe2\x82\xacb\n"], MAX);
        assert_eq!(run.plain(), ["x\u{e9}a\u{20ac}b"]);
        let (run, _) = run_reads(&[b"\xf0", b"\x9f", b"\x98", b"\x80ab\n"], MAX);
        assert_eq!(run.plain(), ["\u{1f600}ab"]);
        assert_eq!(lines("añ日😀b\n".as_bytes()), ["añ日😀b"]);
    }

    /// `from_utf8_lossy`, except for the documented rule for lone C1 bytes.
    fn reference_utf8(bytes: &[u8]) -> String {
        let mut text = String::new();
        for chunk in bytes.utf8_chunks() {
            text.push_str(chunk.valid());
            match *chunk.invalid() {
                [] => {}
                [byte @ 0x80..=0x9F] => text.push(char::from(byte)),
                _ => text.push('\u{fffd}'),
            }
        }
        text
    }

    fn merge(reads: &[&[u8]]) -> String {
        let mut merge = Utf8Merge::default();
        let mut text = String::new();
        for read in reads {
            merge.feed(read, &mut |s| text.push_str(s));
        }
        merge.flush(&mut |s| text.push_str(s));
        text
    }

    #[test]
    fn utf8_merge_matches_lossy_decoding_at_every_split() {
        let input = b"a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80\xff\xe2\x82x\xf0\x9f\x98\xc0\x80\x85\xed\xa0\x80\xf4\x90\x80\x80\xe2";
        let expected = reference_utf8(input);
        assert_eq!(
            expected,
            "a\u{e9}\u{65e5}\u{1f600}\u{fffd}\u{fffd}x\u{fffd}\u{fffd}\u{80}\u{85}\
             \u{fffd}\u{fffd}\u{80}\u{fffd}\u{90}\u{80}\u{80}\u{fffd}"
        );
        // The input holds no C1 control in UTF-8 form, so these all came from lone bytes.
        let c1_as_replacement: String = expected
            .chars()
            .map(|c| {
                if ('\u{80}'..='\u{9f}').contains(&c) {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(c1_as_replacement, String::from_utf8_lossy(input));
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let reads = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(merge(&reads), expected, "split at {i} and {j}");
            }
        }
    }

    proptest! {
        #[test]
        fn utf8_merge_is_lossy_decoding_whatever_the_split(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let reads = split(&bytes, &cuts);
            prop_assert_eq!(merge(&reads), reference_utf8(&bytes));
        }
    }
}
