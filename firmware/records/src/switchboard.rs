//! Routes the chat server's outputs to the firmware's client slots, and drops clients that stop
//! reading.
//!
//! The firmware runs one listener task per slot; each slot has an [`Outbox`] its task drains
//! into the socket. The server is synchronous, so one line produces a `Send` for every client at
//! once: a line that does not fit whole in a client's outbox means the client stopped reading,
//! and it is disconnected with [`Disconnect::TooSlow`] instead of making anyone wait. What the
//! server has to say to it as it goes (its notice) is handed to its slot with
//! [`Outbox::cut_off`], not queued behind the lines it did not read.

use core::cell::Cell;
use core::net::SocketAddr;

use espchat_core::{BoardCommand, ClientId, Disconnect, Full, MAX_CLIENTS, Output, Server};

/// A slot's queue of bytes for its client, and its way to be told the client is gone.
pub trait Outbox {
    /// Bytes that can be queued now.
    fn room(&self) -> usize;
    /// Queues `bytes`; callers check [`Outbox::room`] first.
    fn push(&self, bytes: &[u8]);
    /// The server is dropping this slot's client for not reading and has these last words for
    /// it: the task drops what is queued, finishes the line in progress if it can, and sends
    /// them, best effort, before it closes. Comes before [`Outbox::close`].
    fn cut_off(&self, last: &[u8]);
    /// The server closed this slot's client: its task stops serving it.
    fn close(&self);
}

/// What the board itself does on the server's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardOutput<'a> {
    Led(bool),
    /// A console line, printed as `espchat: <line>`.
    Log(&'a str),
}

/// The server and which slot serves each client id.
#[derive(Default)]
pub struct Switchboard {
    server: Server,
    /// Mirrors the server's client table: set on connect, cleared on the server's `Close`.
    slot_of: [Option<usize>; MAX_CLIENTS],
}

/// Where the server's outputs go.
type Sink<'a> = &'a mut dyn FnMut(Output<'_>);

fn index(id: ClientId) -> usize {
    usize::from(id.get()) - 1
}

impl Switchboard {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn server(&self) -> &Server {
        &self.server
    }

    /// A connection on `slot`. The slot is recorded under the id the server will give it
    /// before the server runs, so the newcomer's own "Client N connected" reaches it.
    pub fn connect<O: Outbox>(
        &mut self,
        slot: usize,
        peer: SocketAddr,
        outboxes: &[O],
        board: &mut impl FnMut(BoardOutput<'_>),
    ) -> Result<ClientId, Full> {
        let expected = self.server.next_id().map(index);
        if let Some(free) = expected {
            self.slot_of[free] = Some(slot);
        }
        let result = self.run(outboxes, board, |server, out| server.connect(peer, out));
        if let Some(free) = expected
            && self.slot_of[free] == Some(slot)
        {
            self.slot_of[free] = None;
        }
        if let Ok(id) = result {
            self.slot_of[index(id)] = Some(slot);
        }
        result
    }

    /// Bytes from the client `id` served by `slot`. Ignored if the server has dropped that
    /// client meanwhile: its id may belong to a newcomer already.
    pub fn receive<O: Outbox>(
        &mut self,
        slot: usize,
        id: ClientId,
        bytes: &[u8],
        outboxes: &[O],
        board: &mut impl FnMut(BoardOutput<'_>),
    ) {
        if self.owns(slot, id) {
            self.run(outboxes, board, |server, out| {
                server.receive(id, bytes, out)
            });
        }
    }

    /// The connection of `slot` ended on the client's side.
    pub fn leave<O: Outbox>(
        &mut self,
        slot: usize,
        id: ClientId,
        outboxes: &[O],
        board: &mut impl FnMut(BoardOutput<'_>),
    ) {
        if self.owns(slot, id) {
            self.run(outboxes, board, |server, out| {
                server.disconnect(id, Disconnect::Closed, out)
            });
        }
    }

    /// A console line; what only the board can do comes back.
    pub fn console<O: Outbox>(
        &mut self,
        line: &str,
        outboxes: &[O],
        board: &mut impl FnMut(BoardOutput<'_>),
    ) -> Option<BoardCommand> {
        self.run(outboxes, board, |server, out| server.console(line, out))
    }

    fn owns(&self, slot: usize, id: ClientId) -> bool {
        self.slot_of[index(id)] == Some(slot)
    }

    /// Runs `f` with every output carried out, then drops the clients that fell behind.
    /// Dropping one tells the others, which can push another over its limit, so this repeats
    /// until none is left.
    fn run<O: Outbox, R>(
        &mut self,
        outboxes: &[O],
        board: &mut impl FnMut(BoardOutput<'_>),
        f: impl FnOnce(&mut Server, &mut Sink<'_>) -> R,
    ) -> R {
        let Self { server, slot_of } = self;
        let too_slow = Cell::new(0u16);
        // Clients being disconnected as too slow: what the server sends them now is their notice.
        let leaving = Cell::new(0u16);
        let mut deliver = |output: Output<'_>| match output {
            Output::Send { to, bytes } => {
                let bit = 1 << index(to);
                let Some(outbox) = slot_of[index(to)].and_then(|slot| outboxes.get(slot)) else {
                    return;
                };
                if leaving.get() & bit != 0 {
                    outbox.cut_off(bytes);
                    return;
                }
                // Once a line is lost, nothing more: the client must not see a gap.
                if too_slow.get() & bit != 0 {
                    return;
                }
                if outbox.room() >= bytes.len() {
                    outbox.push(bytes);
                } else {
                    too_slow.set(too_slow.get() | bit);
                }
            }
            Output::Close(id) => {
                if let Some(outbox) = slot_of[index(id)]
                    .take()
                    .and_then(|slot| outboxes.get(slot))
                {
                    outbox.close();
                }
            }
            Output::Led(on) => board(BoardOutput::Led(on)),
            Output::Log(line) => board(BoardOutput::Log(line)),
        };
        let mut out: Sink<'_> = &mut deliver;
        let result = f(server, &mut out);
        loop {
            let mask = too_slow.get();
            if mask == 0 {
                break;
            }
            let bit = mask.trailing_zeros();
            too_slow.set(mask & !(1 << bit));
            leaving.set(leaving.get() | (1 << bit));
            // Bits come from client indexes, so they are below MAX_CLIENTS.
            if let Some(id) = ClientId::new(bit as u8 + 1) {
                server.disconnect(id, Disconnect::TooSlow, &mut out);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use core::cell::{Cell, RefCell};
    use std::string::String;
    use std::vec::Vec;

    use espchat_core::{Full, MAX_CLIENTS};

    use super::*;

    /// An outbox of a fixed size, like the firmware's byte pipe; `read` is its task draining it.
    struct TestOutbox {
        bytes: RefCell<Vec<u8>>,
        size: usize,
        last_words: RefCell<Vec<u8>>,
        closed: Cell<bool>,
    }

    impl TestOutbox {
        fn new(size: usize) -> Self {
            Self {
                bytes: RefCell::new(Vec::new()),
                size,
                last_words: RefCell::new(Vec::new()),
                closed: Cell::new(false),
            }
        }

        /// Bytes its task has not sent yet: the client is not reading.
        fn fill(&self, unread: usize) {
            self.bytes.borrow_mut().resize(unread, b'.');
        }

        fn read(&self) -> String {
            let bytes = core::mem::take(&mut *self.bytes.borrow_mut());
            String::from_utf8(bytes).unwrap()
        }
    }

    impl Outbox for TestOutbox {
        fn room(&self) -> usize {
            self.size - self.bytes.borrow().len()
        }

        fn push(&self, bytes: &[u8]) {
            assert!(bytes.len() <= self.room(), "pushed past the room");
            self.bytes.borrow_mut().extend_from_slice(bytes);
        }

        fn cut_off(&self, last: &[u8]) {
            assert!(!self.closed.get(), "last words after the close");
            self.last_words.borrow_mut().extend_from_slice(last);
        }

        fn close(&self) {
            self.closed.set(true);
        }
    }

    struct Board {
        switchboard: Switchboard,
        outboxes: Vec<TestOutbox>,
        logs: Vec<String>,
        led: Option<bool>,
    }

    impl Board {
        fn new(outbox_size: usize) -> Self {
            Self {
                switchboard: Switchboard::new(),
                outboxes: (0..=MAX_CLIENTS)
                    .map(|_| TestOutbox::new(outbox_size))
                    .collect(),
                logs: Vec::new(),
                led: None,
            }
        }

        fn connect(&mut self, slot: usize) -> Result<ClientId, Full> {
            let peer = std::format!("192.168.4.{}:4000{slot}", 50 + slot)
                .parse()
                .unwrap();
            let Self {
                switchboard,
                outboxes,
                logs,
                led,
            } = self;
            switchboard.connect(slot, peer, outboxes, &mut record(logs, led))
        }

        fn receive(&mut self, slot: usize, id: ClientId, bytes: &[u8]) {
            let Self {
                switchboard,
                outboxes,
                logs,
                led,
            } = self;
            switchboard.receive(slot, id, bytes, outboxes, &mut record(logs, led));
        }

        fn leave(&mut self, slot: usize, id: ClientId) {
            let Self {
                switchboard,
                outboxes,
                logs,
                led,
            } = self;
            switchboard.leave(slot, id, outboxes, &mut record(logs, led));
        }

        fn read(&self, slot: usize) -> String {
            self.outboxes[slot].read()
        }
    }

    fn record<'a>(
        logs: &'a mut Vec<String>,
        led: &'a mut Option<bool>,
    ) -> impl FnMut(BoardOutput<'_>) + 'a {
        |output| match output {
            BoardOutput::Led(on) => *led = Some(on),
            BoardOutput::Log(line) => logs.push(line.into()),
        }
    }

    #[test]
    fn the_newcomer_hears_its_own_arrival_on_its_slot() {
        let mut board = Board::new(1024);
        let first = board.connect(4).unwrap();
        assert_eq!(first.get(), 1);
        assert_eq!(board.read(4), "Client 1 connected\r\n");
        let second = board.connect(0).unwrap();
        assert_eq!(second.get(), 2);
        assert_eq!(board.read(0), "Client 2 connected\r\n");
        assert_eq!(board.read(4), "Client 2 connected\r\n");
        assert_eq!(board.logs[0], "client 1 connected from 192.168.4.54:40004");
    }

    #[test]
    fn lines_reach_every_slot() {
        let mut board = Board::new(1024);
        let a = board.connect(2).unwrap();
        board.connect(7).unwrap();
        board.read(2);
        board.read(7);
        board.receive(2, a, b"hello\r\n");
        assert_eq!(board.read(2), "Client 1: hello\r\n");
        assert_eq!(board.read(7), "Client 1: hello\r\n");
    }

    #[test]
    fn led_and_logs_go_to_the_board() {
        let mut board = Board::new(1024);
        let a = board.connect(0).unwrap();
        board.receive(0, a, b"on\n");
        assert_eq!(board.led, Some(true));
        assert!(board.logs.iter().any(|line| line == "led on"));
    }

    #[test]
    fn a_client_that_stops_reading_is_dropped_and_the_others_are_not_held_up() {
        // Room for about three relayed lines.
        let mut board = Board::new(64);
        let talker = board.connect(0).unwrap();
        let sleeper = board.connect(1).unwrap();
        board.read(0);
        board.read(1);
        for n in 0..10 {
            board.receive(0, talker, std::format!("line {n}\n").as_bytes());
            // The talker's task keeps its outbox drained; the sleeper's never runs.
            let heard = board.read(0);
            assert!(
                heard.starts_with(&std::format!("Client 1: line {n}\r\n")),
                "{heard}"
            );
        }
        assert!(board.outboxes[1].closed.get());
        assert!(!board.outboxes[0].closed.get());
        assert_eq!(
            board.switchboard.server().clients().collect::<Vec<_>>(),
            [talker]
        );
        let closing = std::format!("client {sleeper} stopped reading; closing its connection");
        assert!(board.logs.contains(&closing), "{:?}", board.logs);
    }

    #[test]
    fn a_client_dropped_for_not_reading_gets_the_notice_as_last_words_not_queued() {
        let mut board = Board::new(64);
        let talker = board.connect(0).unwrap();
        board.connect(1).unwrap();
        board.read(0);
        board.read(1);
        board.outboxes[1].fill(60);
        board.receive(0, talker, b"more than four bytes\n");
        let sleeper = &board.outboxes[1];
        assert!(sleeper.closed.get());
        assert_eq!(
            sleeper.last_words.borrow().as_slice(),
            b"notice: disconnected: you stopped reading\r\n"
        );
        // Nothing was queued behind the lines it did not read.
        assert_eq!(sleeper.read(), ".".repeat(60));
        assert!(board.outboxes[0].last_words.borrow().is_empty());
        assert!(board.read(0).ends_with("Client 2 disconnected\r\n"));
    }

    #[test]
    fn a_slow_client_gets_whole_lines_only() {
        let mut board = Board::new(40);
        let talker = board.connect(0).unwrap();
        board.connect(1).unwrap();
        board.read(0);
        board.read(1);
        for n in 0..5 {
            board.receive(0, talker, std::format!("message number {n}\n").as_bytes());
            board.read(0);
        }
        let heard = board.read(1);
        assert!(heard.ends_with("\r\n"), "{heard:?}");
        assert_eq!(heard, "Client 1: message number 0\r\n");
    }

    #[test]
    fn dropping_one_slow_client_can_drop_the_next() {
        let mut board = Board::new(1024);
        let talker = board.connect(0).unwrap();
        board.connect(1).unwrap();
        board.connect(2).unwrap();
        board.read(0);
        board.outboxes[1].fill(1000);
        board.outboxes[2].fill(990);
        board.receive(0, talker, b"0123456789012345678901234567890123456789\n");
        // Neither sleeper had room; both are gone, and the talker heard about both.
        assert!(board.outboxes[1].closed.get());
        assert!(board.outboxes[2].closed.get());
        let heard = board.read(0);
        assert!(heard.contains("Client 2 disconnected\r\n"), "{heard}");
        assert!(heard.contains("Client 3 disconnected\r\n"), "{heard}");
    }

    #[test]
    fn a_dropped_slot_cannot_speak_for_the_client_that_reuses_its_id() {
        let mut board = Board::new(1024);
        let talker = board.connect(0).unwrap();
        let sleeper = board.connect(1).unwrap();
        board.read(0);
        board.outboxes[1].fill(1020);
        board.receive(0, talker, b"a line too long for what is left\n");
        assert!(board.outboxes[1].closed.get());
        board.read(0);
        // A newcomer on slot 3 gets the freed id while slot 1 still has bytes to hand in.
        let newcomer = board.connect(3).unwrap();
        assert_eq!(newcomer, sleeper);
        board.read(0);
        board.read(3);
        board.receive(1, sleeper, b"stale\n");
        board.leave(1, sleeper);
        assert_eq!(board.read(0), "");
        assert_eq!(board.read(3), "");
        assert_eq!(
            board.switchboard.server().clients().collect::<Vec<_>>(),
            [talker, newcomer]
        );
    }

    #[test]
    fn leaving_tells_the_others_once() {
        let mut board = Board::new(1024);
        let a = board.connect(0).unwrap();
        board.connect(1).unwrap();
        board.read(1);
        board.leave(0, a);
        board.leave(0, a);
        assert_eq!(board.read(1), "Client 1 disconnected\r\n");
        assert!(board.outboxes[0].closed.get());
    }

    #[test]
    fn the_ninth_client_is_refused_and_takes_no_id() {
        let mut board = Board::new(1024);
        for slot in 0..MAX_CLIENTS {
            board.connect(slot).unwrap();
        }
        assert_eq!(board.connect(MAX_CLIENTS), Err(Full));
        assert_eq!(board.read(MAX_CLIENTS), "");
        // Slot 0's client leaves: the next connection, on the spare slot, gets id 1.
        let first = ClientId::new(1).unwrap();
        board.leave(0, first);
        assert_eq!(board.connect(MAX_CLIENTS), Ok(first));
        assert_eq!(board.read(MAX_CLIENTS), "Client 1 connected\r\n");
    }
}
