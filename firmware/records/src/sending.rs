//! What a slot's task is moving from its outbox into its socket, kept so that a client cut off
//! for not reading still gets whole lines: the rest of the line it is in the middle of, then the
//! server's notice.

use heapless::Vec;

/// One chunk read from a slot's outbox and how much of it the socket has taken. The outbox
/// holds whole lines, but a chunk may end in the middle of one: the line then goes on at the
/// outbox's head.
pub struct Sending<const N: usize> {
    buf: [u8; N],
    len: usize,
    written: usize,
    /// The socket's stream ends in the middle of a line.
    mid_line: bool,
}

impl<const N: usize> Default for Sending<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sending<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            written: 0,
            mid_line: false,
        }
    }

    /// Whether the socket took the whole chunk: the next one comes from the outbox.
    pub fn is_done(&self) -> bool {
        self.written == self.len
    }

    /// Room to read the next chunk into; then [`Sending::filled`] with how much was read.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub fn filled(&mut self, len: usize) {
        self.len = len.min(N);
        self.written = 0;
    }

    /// What the socket has not taken yet.
    pub fn unwritten(&self) -> &[u8] {
        &self.buf[self.written..self.len]
    }

    /// The socket took `n` more bytes.
    pub fn wrote(&mut self, n: usize) {
        self.written = (self.written + n).min(self.len);
        if n > 0 {
            self.mid_line = self.buf[self.written - 1] != b'\n';
        }
    }

    /// What a client cut off for not reading is still owed, as far as `M` bytes allow: the rest
    /// of the line the socket has part of (from this chunk, then from `outbox`, which reads from
    /// the outbox's head and returns 0 when it is empty), then `last`. Whatever else was queued
    /// is dropped.
    pub fn last_words<const M: usize>(
        &self,
        mut outbox: impl FnMut(&mut [u8]) -> usize,
        last: &[u8],
    ) -> Vec<u8, M> {
        let mut words = Vec::new();
        if self.mid_line {
            let (rest, ended) = up_to_newline(self.unwritten());
            let _ = words.extend_from_slice(rest);
            if !ended {
                // The outbox read in small steps: what follows the line is dropped anyway.
                let mut more = [0u8; 32];
                loop {
                    let n = outbox(&mut more);
                    if n == 0 {
                        break;
                    }
                    let (rest, ended) = up_to_newline(&more[..n]);
                    let _ = words.extend_from_slice(rest);
                    if ended {
                        break;
                    }
                }
            }
        }
        let _ = words.extend_from_slice(last);
        words
    }
}

/// The bytes up to and including the first `\n`, and whether there was one.
fn up_to_newline(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(at) => (&bytes[..=at], true),
        None => (bytes, false),
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec as StdVec;

    use super::*;

    const NOTICE: &[u8] = b"notice: disconnected: you stopped reading\r\n";

    /// A chunk of `chunk` bytes read from `queued`, the socket having taken `taken` of it.
    fn chunk_of(queued: &[u8], chunk: usize, taken: usize) -> (Sending<16>, StdVec<u8>) {
        let mut sending = Sending::new();
        sending.space()[..chunk].copy_from_slice(&queued[..chunk]);
        sending.filled(chunk);
        sending.wrote(taken);
        (sending, queued[chunk..].to_vec())
    }

    fn last_words(sending: &Sending<16>, mut outbox: StdVec<u8>) -> StdVec<u8> {
        let words: Vec<u8, 128> = sending.last_words(
            |buf| {
                let n = buf.len().min(outbox.len());
                buf[..n].copy_from_slice(&outbox[..n]);
                outbox.drain(..n);
                n
            },
            NOTICE,
        );
        words.to_vec()
    }

    fn with_notice(rest: &[u8]) -> StdVec<u8> {
        [rest, NOTICE].concat()
    }

    #[test]
    fn nothing_started_nothing_owed_but_the_notice() {
        let queued = b"one\r\ntwo\r\n";
        let (sending, outbox) = chunk_of(queued, 10, 0);
        assert_eq!(last_words(&sending, outbox), NOTICE);
        let (sending, outbox) = chunk_of(queued, 5, 5);
        assert_eq!(last_words(&sending, outbox), NOTICE);
    }

    #[test]
    fn the_line_in_progress_is_finished_from_the_chunk() {
        let (sending, outbox) = chunk_of(b"one\r\ntwo\r\nthree\r\n", 16, 7);
        assert_eq!(last_words(&sending, outbox), with_notice(b"o\r\n"));
    }

    #[test]
    fn the_line_in_progress_is_finished_from_the_outbox() {
        let queued = b"a line longer than a chunk\r\nnext\r\n";
        let (sending, outbox) = chunk_of(queued, 16, 3);
        assert_eq!(
            last_words(&sending, outbox),
            with_notice(b"ine longer than a chunk\r\n")
        );
        // The socket took the whole chunk, which ended mid-line.
        let (sending, outbox) = chunk_of(queued, 16, 16);
        assert_eq!(last_words(&sending, outbox), with_notice(b"an a chunk\r\n"));
    }

    #[test]
    fn a_line_ending_at_the_chunk_end_is_whole() {
        let (mut sending, _) = chunk_of(b"one\r\ntwo\r\n", 10, 10);
        assert!(sending.is_done());
        sending.space()[..5].copy_from_slice(b"three");
        sending.filled(5);
        assert_eq!(last_words(&sending, b"\r\n".to_vec()), NOTICE);
    }
}
