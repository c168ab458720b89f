//! Streams as they arrive: cut into reads anywhere. The chat server here and the host's console
//! decoder must give the same result however a stream is cut, and the tests of both cut their
//! streams with [`split_reads`].

/// Cuts `bytes` into the reads a socket or a serial port might deliver: at `points`, offsets into
/// `bytes` in any order (sorted here, in place). Empty reads are kept; they happen too.
///
/// # Panics
/// If a point is past the end of `bytes`.
pub fn split_reads<'a, 'p>(
    bytes: &'a [u8],
    points: &'p mut [usize],
) -> impl Iterator<Item = &'a [u8]> + 'p
where
    'a: 'p,
{
    points.sort_unstable();
    let points: &'p [usize] = points;
    let ends = points.iter().copied().chain(core::iter::once(bytes.len()));
    ends.scan(0, move |start, end| {
        let read = &bytes[*start..end];
        *start = end;
        Some(read)
    })
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;

    #[test]
    fn reads_cover_the_stream_in_order_with_empty_ones_kept() {
        let mut points = [4, 1, 4, 6];
        let reads: Vec<&[u8]> = split_reads(b"abcdef", &mut points).collect();
        assert_eq!(reads, [&b"a"[..], b"bcd", b"", b"ef", b""]);
        let reads: Vec<&[u8]> = split_reads(b"", &mut []).collect();
        assert_eq!(reads, [&b""[..]]);
    }
}
