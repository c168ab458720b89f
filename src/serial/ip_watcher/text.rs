//! Byte-level helpers for scanning a line: words, spaces, punctuation, case-insensitive
//! matches.

pub(super) fn is_boundary(byte: u8) -> bool {
    matches!(
        byte,
        b',' | b';'
            | b'.'
            | b'!'
            | b'?'
            | b'('
            | b')'
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'|'
            | b'<'
            | b'>'
            | b':'
            | b'='
    )
}

pub(super) fn has_word(text: &[u8], word: &[u8]) -> bool {
    text.windows(word.len()).enumerate().any(|(i, window)| {
        window.eq_ignore_ascii_case(word)
            && (i == 0 || !text[i - 1].is_ascii_alphanumeric())
            && text
                .get(i + word.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric())
    })
}

pub(super) fn word_at(line: &[u8], pos: usize, word: &[u8]) -> bool {
    starts_with_ignore_case(&line[pos.min(line.len())..], word)
        && line
            .get(pos + word.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric())
}

pub(super) fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

pub(super) fn skip_spaces(line: &[u8], pos: usize) -> usize {
    skip_while(line, pos, |b| b == b' ' || b == b'\t')
}

pub(super) fn skip_while(line: &[u8], pos: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut pos = pos;
    while pos < line.len() && keep(line[pos]) {
        pos += 1;
    }
    pos
}
