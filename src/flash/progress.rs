//! espflash's per-segment progress callbacks, turned into [`FlashEvent`]s with byte counts.

use espflash::target::ProgressCallbacks;

use super::FlashEvent;

/// How far writing got, for a message when the connection breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub address: u32,
    pub done: u64,
    pub total: u64,
}

struct Current {
    address: u32,
    total: u64,
    chunks: usize,
    done: u64,
}

/// Follows espflash through the segments it was given, in order.
///
/// espflash counts chunks (1 KiB for the ROM, 16 KiB of compressed data for the stub; espchat's
/// compressed ROM writes count uncompressed bytes, so theirs are exact), and a segment skipped
/// as unchanged gets `finish(true)` without an `init`; the tracker knows the segments, so it
/// reports bytes and names every segment.
pub struct Tracker<'e, F: FnMut(FlashEvent)> {
    emit: &'e mut F,
    segments: Vec<(u32, u64)>,
    next: usize,
    current: Option<Current>,
    pub written: u64,
    pub skipped: u64,
}

impl<'e, F: FnMut(FlashEvent)> Tracker<'e, F> {
    /// `segments`: address and length of each segment, in the order espflash writes them.
    pub fn new(segments: Vec<(u32, u64)>, emit: &'e mut F) -> Self {
        Tracker {
            emit,
            segments,
            next: 0,
            current: None,
            written: 0,
            skipped: 0,
        }
    }

    /// Where writing is now; `None` once every segment is done (finishing, resetting).
    pub fn position(&self) -> Option<Position> {
        if let Some(current) = &self.current {
            return Some(Position {
                address: current.address,
                done: current.done,
                total: current.total,
            });
        }
        self.segments
            .get(self.next)
            .map(|&(address, total)| Position {
                address,
                done: 0,
                total,
            })
    }

    fn segment_at(&self, address: u32) -> (u32, u64) {
        self.segments[self.next.min(self.segments.len())..]
            .iter()
            .find(|(start, _)| *start == address)
            .copied()
            .unwrap_or((address, 0))
    }
}

impl<F: FnMut(FlashEvent)> ProgressCallbacks for Tracker<'_, F> {
    fn init(&mut self, address: u32, chunks: usize) {
        let (address, total) = self.segment_at(address);
        self.current = Some(Current {
            address,
            total,
            chunks: chunks.max(1),
            done: 0,
        });
        (self.emit)(FlashEvent::Segment { address, total });
    }

    fn update(&mut self, chunk: usize) {
        let Some(current) = &mut self.current else {
            return;
        };
        let done = current.total * chunk.min(current.chunks) as u64 / current.chunks as u64;
        current.done = done;
        (self.emit)(FlashEvent::Progress {
            address: current.address,
            done,
            total: current.total,
        });
    }

    fn verifying(&mut self) {
        if let Some(current) = &self.current {
            (self.emit)(FlashEvent::Verifying {
                address: current.address,
            });
        }
    }

    fn finish(&mut self, skipped: bool) {
        let (address, total) = match self.current.take() {
            Some(current) => (current.address, current.total),
            None => {
                let Some(&(address, total)) = self.segments.get(self.next) else {
                    return;
                };
                (self.emit)(FlashEvent::Segment { address, total });
                (address, total)
            }
        };
        self.next += 1;
        if skipped {
            self.skipped += total;
        } else {
            self.written += total;
        }
        (self.emit)(FlashEvent::SegmentDone { address, skipped });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_bytes_and_skipped_segments_are_named() {
        let mut events = Vec::new();
        let mut emit = |event| events.push(event);
        let mut tracker = Tracker::new(
            vec![(0x0, 5000), (0x8000, 3072), (0x10000, 2048)],
            &mut emit,
        );
        tracker.init(0x0, 5);
        tracker.update(2);
        assert_eq!(
            tracker.position(),
            Some(Position {
                address: 0,
                done: 2000,
                total: 5000
            })
        );
        tracker.update(5);
        tracker.verifying();
        tracker.finish(false);
        // Unchanged: espflash calls finish(true) without init.
        assert_eq!(
            tracker.position(),
            Some(Position {
                address: 0x8000,
                done: 0,
                total: 3072
            })
        );
        tracker.finish(true);
        tracker.init(0x10000, 2);
        tracker.update(1);
        tracker.finish(false);
        assert_eq!(tracker.position(), None);
        assert_eq!((tracker.written, tracker.skipped), (7048, 3072));
        assert_eq!(
            events,
            [
                FlashEvent::Segment {
                    address: 0,
                    total: 5000
                },
                FlashEvent::Progress {
                    address: 0,
                    done: 2000,
                    total: 5000
                },
                FlashEvent::Progress {
                    address: 0,
                    done: 5000,
                    total: 5000
                },
                FlashEvent::Verifying { address: 0 },
                FlashEvent::SegmentDone {
                    address: 0,
                    skipped: false
                },
                FlashEvent::Segment {
                    address: 0x8000,
                    total: 3072
                },
                FlashEvent::SegmentDone {
                    address: 0x8000,
                    skipped: true
                },
                FlashEvent::Segment {
                    address: 0x10000,
                    total: 2048
                },
                FlashEvent::Progress {
                    address: 0x10000,
                    done: 1024,
                    total: 2048
                },
                FlashEvent::SegmentDone {
                    address: 0x10000,
                    skipped: false
                },
            ]
        );
    }
}
