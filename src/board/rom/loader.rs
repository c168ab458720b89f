//! The loader state machine: decoded requests in, framed responses and board events out.

use md5::{Digest, Md5};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::flash::{Flash, SECTOR_SIZE};
use super::protocol::{self, Mode, ParseError, Request, RomError, op, words};
use super::registers::Registers;
use super::slip::{self, Decoded, SlipDecoder};

/// Largest packet a request can be: an 8-byte header plus a u16 length of data. Longer frames
/// are dropped by the SLIP decoder, so a client cannot make the board buffer more than this.
pub const MAX_PACKET: usize = 8 + u16::MAX as usize;

/// The rate every ESP ROM loader starts at.
pub const INITIAL_BAUD: u32 = 115_200;

/// The ESP32-C3's chip id in GET_SECURITY_INFO.
pub const CHIP_ID: u32 = 5;
/// ECO number in GET_SECURITY_INFO, matching the eFuse revision v0.3.
pub const ECO_VERSION: u32 = 3;

/// Non-zero: esptool takes a SYNC value of 0 to mean that the flasher stub already runs.
const ROM_SYNC_VALUE: u32 = 0x2012_0707;

/// What the ROM sends after MEM_END has started the flasher stub: "OHAI" in its own frame.
const STUB_GREETING: &[u8; 4] = b"OHAI";

/// ROM READ_FLASH_SLOW answers at most this many bytes, always in a buffer of this size.
const READ_SLOW_BLOCK: usize = 64;

/// The stub's READ_FLASH reads through a one-sector buffer.
const MAX_READ_BLOCK: u32 = SECTOR_SIZE as u32;

/// Something the board must act on, in the order it must act.
#[derive(Debug, PartialEq, Eq)]
pub enum LoaderEvent {
    /// Bytes for the host, already SLIP-framed.
    Reply(Vec<u8>),
    /// The host asked for a new baud rate. Every reply emitted before this event belongs to
    /// the old rate: write them out first, then switch.
    ChangeBaud(u32),
    /// MEM_END started "the flasher stub": the loader now answers as the stub does (2 status
    /// bytes, stub-only commands). For the board's log.
    StubStarted,
    /// A download to flash finished. For the board's log.
    Flashed { addr: u32, len: u32 },
    /// The host asked the chip to leave the loader (FLASH_END, FLASH_DEFL_END with reboot,
    /// RUN_USER_CODE). The loader ignores all further input; the board should boot from
    /// [`Loader::into_flash`] and start a fresh loader on the next SYNC.
    Reboot,
}

/// The ESP32-C3 ROM serial bootloader (and, after a stub upload, the flasher stub), without IO.
///
/// Feed it the bytes the host writes with [`Loader::feed`]; it calls `out` with everything the
/// board must do, in order. It owns the flash while it runs.
pub struct Loader {
    flash: Flash,
    mode: Mode,
    decoder: SlipDecoder,
    registers: Registers,
    baud: u32,
    download: Option<Download>,
    upload: Option<RamUpload>,
    reading: Option<ReadFlash>,
    halted: bool,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("mode", &self.mode)
            .field("baud", &self.baud)
            .field("downloading", &self.download.is_some())
            .field("halted", &self.halted)
            .finish_non_exhaustive()
    }
}

/// What happens once the reply has gone out.
enum Then {
    Nothing,
    Emit(LoaderEvent),
    StartStub,
    StreamFlash,
}

struct Done {
    value: u32,
    data: Vec<u8>,
    then: Then,
}

impl Done {
    fn ok() -> Self {
        Done::value(0)
    }

    fn value(value: u32) -> Self {
        Done {
            value,
            data: Vec::new(),
            then: Then::Nothing,
        }
    }

    fn data(data: Vec<u8>) -> Self {
        Done {
            value: 0,
            data,
            then: Then::Nothing,
        }
    }

    fn then(then: Then) -> Self {
        Done {
            value: 0,
            data: Vec::new(),
            then,
        }
    }
}

type Outcome = Result<Done, RomError>;

/// A FLASH_BEGIN or FLASH_DEFL_BEGIN session.
struct Download {
    offset: u32,
    blocks: u32,
    block_size: u32,
    next_seq: u32,
    /// Flash address the next decompressed byte goes to (deflate sessions).
    write_pos: u64,
    /// End of the highest byte written, for the `Flashed` event.
    written_end: u64,
    /// The stub erases sector by sector just ahead of the data; the ROM erased at BEGIN.
    erase_lazily: bool,
    erased_to: u64,
    inflate: Option<Inflate>,
    reported: bool,
}

struct Inflate {
    state: Box<InflateState>,
    buf: Vec<u8>,
    done: bool,
}

/// A MEM_BEGIN session. RAM is not modelled: the bytes are checked and counted.
struct RamUpload {
    size: u32,
    blocks: u32,
    block_size: u32,
    next_seq: u32,
    received: u32,
}

/// A stub READ_FLASH in progress: data frames go out, acknowledgements come in.
struct ReadFlash {
    addr: u32,
    len: u32,
    block_size: u32,
    max_in_flight: u32,
    sent: u32,
    acked: u32,
    md5: Md5,
}

impl Loader {
    /// A chip that has just reset into the ROM download mode.
    pub fn new(flash: Flash) -> Self {
        Loader {
            flash,
            mode: Mode::Rom,
            decoder: SlipDecoder::new(MAX_PACKET),
            registers: Registers::default(),
            baud: INITIAL_BAUD,
            download: None,
            upload: None,
            reading: None,
            halted: false,
        }
    }

    pub fn flash(&self) -> &Flash {
        &self.flash
    }

    pub fn into_flash(self) -> Flash {
        self.flash
    }

    /// Whether the flasher stub "runs" (after a stub upload and MEM_END).
    pub fn is_stub(&self) -> bool {
        self.mode == Mode::Stub
    }

    /// The baud rate the host was last told to use.
    pub fn baud(&self) -> u32 {
        self.baud
    }

    #[cfg(test)]
    fn decoder_capacity(&self) -> usize {
        self.decoder.capacity()
    }

    /// Whether the loader has been told to reboot and ignores input.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Processes bytes from the host. Frames may be split across calls anyhow.
    pub fn feed(&mut self, bytes: &[u8], out: &mut impl FnMut(LoaderEvent)) {
        for &byte in bytes {
            if self.halted {
                return;
            }
            match self.decoder.push(byte) {
                Some(Decoded::Packet(packet)) => self.handle_packet(&packet, out),
                // A damaged frame cannot be attributed to a command; the host times out and
                // retries, as it would after line noise on a real UART.
                Some(Decoded::TooLong | Decoded::BadEscape) | None => {}
            }
        }
    }

    /// Answers a SYNC that arrived while the board was still in app mode (see
    /// [`SyncDetector`](super::SyncDetector)), as if the loader had received it.
    pub fn answer_sync(&mut self, out: &mut impl FnMut(LoaderEvent)) {
        if !self.halted {
            self.sync(out);
        }
    }

    fn handle_packet(&mut self, packet: &[u8], out: &mut impl FnMut(LoaderEvent)) {
        if self.reading.is_some() {
            self.read_flash_ack(packet, out);
            return;
        }
        let request = match protocol::parse_request(packet) {
            Ok(request) => request,
            Err(ParseError::NotARequest) => return,
            Err(ParseError::LengthMismatch { op }) => {
                out(LoaderEvent::Reply(protocol::response(
                    self.mode,
                    op,
                    0,
                    &[],
                    Err(RomError::InvalidMessage),
                )));
                return;
            }
        };
        if request.op == op::SYNC {
            self.sync(out);
            return;
        }
        let op = request.op;
        let outcome = self.execute(request);
        let then = match outcome {
            Ok(Done { value, data, then }) => {
                out(LoaderEvent::Reply(protocol::response(
                    self.mode,
                    op,
                    value,
                    &data,
                    Ok(()),
                )));
                then
            }
            Err(error) => {
                out(LoaderEvent::Reply(protocol::response(
                    self.mode,
                    op,
                    0,
                    &[],
                    Err(error),
                )));
                Then::Nothing
            }
        };
        match then {
            Then::Nothing => {}
            Then::Emit(event) => {
                if event == LoaderEvent::Reboot {
                    self.halted = true;
                }
                out(event);
            }
            Then::StartStub => {
                self.mode = Mode::Stub;
                self.download = None;
                self.upload = None;
                out(LoaderEvent::Reply(slip::encode(STUB_GREETING)));
                out(LoaderEvent::StubStarted);
            }
            Then::StreamFlash => self.read_flash_pump(out),
        }
    }

    /// Both espflash and esptool read one reply and then seven more: the ROM answers a SYNC
    /// eight times.
    fn sync(&mut self, out: &mut impl FnMut(LoaderEvent)) {
        let value = match self.mode {
            Mode::Rom => ROM_SYNC_VALUE,
            Mode::Stub => 0,
        };
        for _ in 0..8 {
            out(LoaderEvent::Reply(protocol::response(
                self.mode,
                op::SYNC,
                value,
                &[],
                Ok(()),
            )));
        }
    }

    fn execute(&mut self, request: Request<'_>) -> Outcome {
        let stub = self.mode == Mode::Stub;
        let data = request.data;
        match request.op {
            op::READ_REG => {
                let [addr] = words(data).ok_or(RomError::InvalidMessage)?;
                Ok(Done::value(self.registers.read(addr)))
            }
            op::WRITE_REG => self.write_reg(data),
            op::GET_SECURITY_INFO => Ok(Done::data(security_info())),
            // ROM: 8 bytes (config, legacy flag); stub as espflash sends it: 4.
            op::SPI_ATTACH if matches!(data.len(), 4 | 8) => Ok(Done::ok()),
            op::SPI_SET_PARAMS if data.len() == 24 => Ok(Done::ok()),
            op::CHANGE_BAUDRATE => {
                let [new_baud, _old] = words(data).ok_or(RomError::InvalidMessage)?;
                if new_baud == 0 {
                    return Err(RomError::InvalidMessage);
                }
                self.baud = new_baud;
                Ok(Done::then(Then::Emit(LoaderEvent::ChangeBaud(new_baud))))
            }
            op::FLASH_BEGIN => self.flash_begin(data, false),
            op::FLASH_DEFL_BEGIN => self.flash_begin(data, true),
            op::FLASH_DATA => self.flash_data(request.checksum, data),
            op::FLASH_DEFL_DATA => self.flash_defl_data(request.checksum, data),
            op::FLASH_END | op::FLASH_DEFL_END => self.flash_end(data),
            op::SPI_FLASH_MD5 => self.flash_md5(data),
            op::MEM_BEGIN => self.mem_begin(data),
            op::MEM_DATA => self.mem_data(request.checksum, data),
            op::MEM_END => self.mem_end(data),
            op::READ_FLASH_SLOW if !stub => self.read_flash_slow(data),
            op::ERASE_FLASH if stub => {
                self.download = None;
                self.flash.erase_all();
                Ok(Done::ok())
            }
            op::ERASE_REGION if stub => {
                let [addr, len] = words(data).ok_or(RomError::InvalidMessage)?;
                if !(addr as usize).is_multiple_of(SECTOR_SIZE)
                    || !(len as usize).is_multiple_of(SECTOR_SIZE)
                {
                    return Err(RomError::InvalidMessage);
                }
                self.flash
                    .erase_region(addr, len as usize)
                    .map_err(|_| RomError::FailedToAct)?;
                Ok(Done::ok())
            }
            op::READ_FLASH if stub => self.read_flash_begin(data),
            op::RUN_USER_CODE if stub => Ok(Done::then(Then::Emit(LoaderEvent::Reboot))),
            _ => Err(RomError::InvalidMessage),
        }
    }

    /// One or more `address, value, mask, delay_us` groups.
    fn write_reg(&mut self, data: &[u8]) -> Outcome {
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return Err(RomError::InvalidMessage);
        }
        for group in data.chunks_exact(16) {
            let [addr, value, mask, _delay] = words(group).ok_or(RomError::InvalidMessage)?;
            self.registers.write(addr, value, mask);
        }
        if self.registers.take_watchdog_reset() {
            // The watchdog fires some milliseconds after the reply: the chip resets.
            return Ok(Done::then(Then::Emit(LoaderEvent::Reboot)));
        }
        Ok(Done::ok())
    }

    /// `size, blocks, block_size, offset[, encrypted]`. The ROM erases `size` bytes from
    /// `offset` now (esptool sends the exact size, espflash a whole number of sectors; for
    /// FLASH_DEFL_BEGIN esptool rounds to 1 KiB); the stub erases as data arrives.
    fn flash_begin(&mut self, data: &[u8], deflate: bool) -> Outcome {
        if !matches!(data.len(), 16 | 20) {
            return Err(RomError::InvalidMessage);
        }
        let [size, blocks, block_size, offset] = words(data).ok_or(RomError::InvalidMessage)?;
        if data.len() == 20 && words::<5>(data).is_some_and(|w| w[4] != 0) {
            // Encrypted writes need keys the virtual chip does not have.
            return Err(RomError::FailedToAct);
        }
        if blocks > 0 && block_size == 0 {
            return Err(RomError::InvalidMessage);
        }
        let erase_lazily = self.mode == Mode::Stub;
        if !erase_lazily {
            self.flash
                .erase_region(offset, size as usize)
                .map_err(|_| RomError::FailedToAct)?;
        } else if offset as usize > self.flash.size() {
            return Err(RomError::FailedToAct);
        }
        let sector_start = u64::from(offset) / SECTOR_SIZE as u64 * SECTOR_SIZE as u64;
        self.download = Some(Download {
            offset,
            blocks,
            block_size,
            next_seq: 0,
            write_pos: u64::from(offset),
            written_end: u64::from(offset),
            erase_lazily,
            erased_to: sector_start,
            inflate: deflate.then(|| Inflate {
                state: InflateState::new_boxed(DataFormat::Zlib),
                buf: vec![0; 32 * 1024],
                done: false,
            }),
            reported: false,
        });
        Ok(Done::ok())
    }

    /// Checks a data packet (`size, seq, 0, 0, payload`) against the session and returns the
    /// payload. On any error nothing has changed, so the host can resend the block.
    fn data_block(
        checksum: u32,
        data: &[u8],
        next_seq: u32,
        blocks: u32,
        block_size: u32,
    ) -> Result<(&[u8], u32), RomError> {
        let [size, seq, _, _] = words(data).ok_or(RomError::InvalidMessage)?;
        let payload = &data[16..];
        if size as usize != payload.len() || size > block_size {
            return Err(RomError::InvalidMessage);
        }
        if u32::from(protocol::checksum(payload)) != checksum {
            return Err(RomError::BadChecksum);
        }
        if seq != next_seq || seq >= blocks {
            return Err(RomError::InvalidMessage);
        }
        Ok((payload, seq))
    }

    fn flash_data(&mut self, checksum: u32, data: &[u8]) -> Outcome {
        let Some(download) = self.download.as_mut().filter(|d| d.inflate.is_none()) else {
            return Err(RomError::FailedToAct);
        };
        let (payload, seq) = Self::data_block(
            checksum,
            data,
            download.next_seq,
            download.blocks,
            download.block_size,
        )?;
        let addr = u64::from(download.offset) + u64::from(seq) * u64::from(download.block_size);
        download.program(&mut self.flash, addr, payload)?;
        download.next_seq += 1;
        Ok(Done::then(download.report_if_complete(false)))
    }

    fn flash_defl_data(&mut self, checksum: u32, data: &[u8]) -> Outcome {
        let Some(download) = self.download.as_mut().filter(|d| d.inflate.is_some()) else {
            return Err(RomError::FailedToAct);
        };
        let (payload, _) = Self::data_block(
            checksum,
            data,
            download.next_seq,
            download.blocks,
            download.block_size,
        )?;
        download.next_seq += 1;
        download.inflate_into(&mut self.flash, payload)?;
        let stream_done = download.inflate.as_ref().is_some_and(|i| i.done);
        Ok(Done::then(download.report_if_complete(stream_done)))
    }

    /// One u32: 0 reboots, 1 "runs user code". The ROM leaves the loader either way (which is
    /// why esptool never sends FLASH_END to the ROM unless it means to leave); the stub stays
    /// on 1.
    fn flash_end(&mut self, data: &[u8]) -> Outcome {
        let [flag] = words(data).ok_or(RomError::InvalidMessage)?;
        let download = self.download.take();
        if download.is_some_and(|d| d.inflate.is_some_and(|i| !i.done)) {
            // The zlib stream stopped short. What was decompressed is in flash, as on the
            // chip, but the host should know.
            return Err(RomError::Deflate);
        }
        let leave = self.mode == Mode::Rom || flag == 0;
        Ok(Done::then(if leave {
            Then::Emit(LoaderEvent::Reboot)
        } else {
            Then::Nothing
        }))
    }

    /// `addr, size, 0, 0`. The ROM answers 32 lowercase hex digits, the stub 16 raw bytes.
    fn flash_md5(&mut self, data: &[u8]) -> Outcome {
        let [addr, size] = words(data).ok_or(RomError::InvalidMessage)?;
        let bytes = self
            .flash
            .read(addr, size as usize)
            .ok_or(RomError::FlashRead)?;
        let digest: [u8; 16] = Md5::digest(bytes).into();
        Ok(Done::data(match self.mode {
            Mode::Rom => digest.iter().flat_map(|b| hex_digits(*b)).collect(),
            Mode::Stub => digest.to_vec(),
        }))
    }

    /// `addr, len[, block_size, max_in_flight]`, len at most 64. The answer is always a
    /// 64-byte buffer; bytes past `len` are zero.
    fn read_flash_slow(&mut self, data: &[u8]) -> Outcome {
        let [addr, len] = words(data).ok_or(RomError::InvalidMessage)?;
        if len as usize > READ_SLOW_BLOCK {
            return Err(RomError::InvalidMessage);
        }
        let bytes = self
            .flash
            .read(addr, len as usize)
            .ok_or(RomError::FlashRead)?;
        let mut block = vec![0; READ_SLOW_BLOCK];
        block[..bytes.len()].copy_from_slice(bytes);
        Ok(Done::data(block))
    }

    fn mem_begin(&mut self, data: &[u8]) -> Outcome {
        let [size, blocks, block_size, _addr] = words(data).ok_or(RomError::InvalidMessage)?;
        self.upload = Some(RamUpload {
            size,
            blocks,
            block_size,
            next_seq: 0,
            received: 0,
        });
        Ok(Done::ok())
    }

    fn mem_data(&mut self, checksum: u32, data: &[u8]) -> Outcome {
        let Some(upload) = self.upload.as_mut() else {
            return Err(RomError::FailedToAct);
        };
        let (payload, _) = Self::data_block(
            checksum,
            data,
            upload.next_seq,
            upload.blocks,
            upload.block_size,
        )?;
        let received = upload.received.saturating_add(payload.len() as u32);
        // espflash pads the last block to 4 bytes beyond the announced size.
        if received > upload.size.saturating_add(3) {
            return Err(RomError::InvalidMessage);
        }
        upload.received = received;
        upload.next_seq += 1;
        Ok(Done::ok())
    }

    /// `no_entry, entry`. With an entry point the ROM jumps to the uploaded code. The only code
    /// a flashing tool uploads is its flasher stub, so that is what starts. Once the stub
    /// runs, the virtual chip cannot run uploaded code: it answers and carries on.
    fn mem_end(&mut self, data: &[u8]) -> Outcome {
        let [no_entry, _entry] = words(data).ok_or(RomError::InvalidMessage)?;
        self.upload = None;
        if no_entry == 0 && self.mode == Mode::Rom {
            Ok(Done::then(Then::StartStub))
        } else {
            Ok(Done::ok())
        }
    }

    /// `addr, len, block_size, max_in_flight`. The OK reply goes first, then data frames of
    /// `block_size` bytes, never more than `max_in_flight` bytes unacknowledged (but always at
    /// least one frame); the host acknowledges with the total it has received as a u32 frame;
    /// when everything is acknowledged the stub sends the MD5 of the data as a 16-byte frame.
    fn read_flash_begin(&mut self, data: &[u8]) -> Outcome {
        if data.len() != 16 {
            return Err(RomError::InvalidMessage);
        }
        let [addr, len, block_size, max_in_flight] = words(data).ok_or(RomError::InvalidMessage)?;
        // The stub's buffer is one sector; it would hang on a larger block.
        if block_size == 0 || block_size > MAX_READ_BLOCK {
            return Err(RomError::InvalidMessage);
        }
        self.flash
            .read(addr, len as usize)
            .ok_or(RomError::FlashRead)?;
        self.reading = Some(ReadFlash {
            addr,
            len,
            block_size,
            max_in_flight,
            sent: 0,
            acked: 0,
            md5: Md5::new(),
        });
        Ok(Done::then(Then::StreamFlash))
    }

    fn read_flash_pump(&mut self, out: &mut impl FnMut(LoaderEvent)) {
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        while reading.sent < reading.len
            && reading.sent - reading.acked.min(reading.sent) < reading.max_in_flight.max(1)
        {
            let n = (reading.len - reading.sent).min(reading.block_size);
            let Some(bytes) = self.flash.read(reading.addr + reading.sent, n as usize) else {
                break;
            };
            reading.md5.update(bytes);
            out(LoaderEvent::Reply(slip::encode(bytes)));
            reading.sent += n;
        }
        if reading.acked >= reading.len {
            self.read_flash_finish(out);
        }
    }

    fn read_flash_ack(&mut self, packet: &[u8], out: &mut impl FnMut(LoaderEvent)) {
        let Some(reading) = self.reading.as_mut() else {
            return;
        };
        // Anything but a 4-byte acknowledgement ends the transfer, as in the stub.
        let Ok(ack) = <[u8; 4]>::try_from(packet) else {
            self.read_flash_finish(out);
            return;
        };
        reading.acked = u32::from_le_bytes(ack);
        if reading.acked > reading.sent {
            self.read_flash_finish(out);
            return;
        }
        self.read_flash_pump(out);
    }

    fn read_flash_finish(&mut self, out: &mut impl FnMut(LoaderEvent)) {
        if let Some(reading) = self.reading.take() {
            let digest: [u8; 16] = reading.md5.finalize().into();
            out(LoaderEvent::Reply(slip::encode(&digest)));
        }
    }
}

impl Download {
    /// Programs `bytes` at `addr`, erasing ahead first when the stub is flashing. Bytes past
    /// the end of the flash are dropped if they are 0xFF (padding of a last block), an error
    /// otherwise.
    fn program(&mut self, flash: &mut Flash, addr: u64, bytes: &[u8]) -> Result<(), RomError> {
        let flash_size = flash.size() as u64;
        let end = addr + bytes.len() as u64;
        let fits = end.min(flash_size).saturating_sub(addr) as usize;
        if bytes[fits..].iter().any(|&b| b != 0xFF) {
            return Err(RomError::FlashWrite);
        }
        let bytes = &bytes[..fits];
        if bytes.is_empty() {
            return Ok(());
        }
        let end = addr + bytes.len() as u64;
        if self.erase_lazily && end > self.erased_to {
            let erase_end = end.next_multiple_of(SECTOR_SIZE as u64).min(flash_size);
            let start = self
                .erased_to
                .max(addr / SECTOR_SIZE as u64 * SECTOR_SIZE as u64);
            flash
                .erase_region(start as u32, (erase_end - start) as usize)
                .map_err(|_| RomError::FlashWrite)?;
            self.erased_to = erase_end;
        }
        flash
            .write(addr as u32, bytes)
            .map_err(|_| RomError::FlashWrite)?;
        self.written_end = self.written_end.max(end);
        Ok(())
    }

    /// Feeds a block of the zlib stream and writes what it decompresses to.
    fn inflate_into(&mut self, flash: &mut Flash, mut input: &[u8]) -> Result<(), RomError> {
        let Some(mut inflater) = self.inflate.take() else {
            return Err(RomError::FailedToAct);
        };
        let result = (|| {
            while !inflater.done {
                let step = inflate(&mut inflater.state, input, &mut inflater.buf, MZFlush::None);
                input = &input[step.bytes_consumed..];
                let produced = step.bytes_written;
                let buf = std::mem::take(&mut inflater.buf);
                let written = self.program(flash, self.write_pos, &buf[..produced]);
                inflater.buf = buf;
                written?;
                self.write_pos += produced as u64;
                match step.status {
                    Ok(MZStatus::StreamEnd) => inflater.done = true,
                    Ok(_) | Err(MZError::Buf) => {
                        if step.bytes_consumed == 0 && produced == 0 {
                            // Needs more input (or more output room, which the next round
                            // has since the buffer was emptied).
                            break;
                        }
                    }
                    Err(_) => return Err(RomError::Deflate),
                }
            }
            Ok(())
        })();
        self.inflate = Some(inflater);
        result
    }

    /// The `Flashed` event once the last block is in (or the zlib stream has ended).
    fn report_if_complete(&mut self, stream_done: bool) -> Then {
        if self.reported || !(stream_done || self.next_seq >= self.blocks) {
            return Then::Nothing;
        }
        self.reported = true;
        Then::Emit(LoaderEvent::Flashed {
            addr: self.offset,
            len: (self.written_end - u64::from(self.offset)) as u32,
        })
    }
}

/// `flags u32, flash_crypt_cnt u8, key_purposes [u8; 7], chip_id u32, eco_version u32`: no
/// security features enabled.
fn security_info() -> Vec<u8> {
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&0u32.to_le_bytes());
    data.push(0);
    data.extend_from_slice(&[0; 7]);
    data.extend_from_slice(&CHIP_ID.to_le_bytes());
    data.extend_from_slice(&ECO_VERSION.to_le_bytes());
    data
}

fn hex_digits(byte: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0xF)],
    ]
}

#[cfg(test)]
mod tests {
    use miniz_oxide::deflate::compress_to_vec_zlib;

    use super::super::registers::{
        JEDEC_ID, SPI_CMD, SPI_CMD_USR, SPI_MISO_DLEN, SPI_USR, SPI_USR2, SPI_W0,
    };
    use super::*;

    const APP_ADDR: u32 = 0x10000;
    const ROM_BLOCK: usize = 0x400;
    const STUB_BLOCK: usize = 0x4000;

    /// A response as espflash's `read_response_bounded` takes it apart.
    #[derive(Debug, PartialEq, Eq)]
    struct Response {
        op: u8,
        len: u16,
        value: u32,
        data: Vec<u8>,
        status: u8,
        error: u8,
    }

    struct Host {
        loader: Loader,
        events: Vec<LoaderEvent>,
    }

    fn frame(op: u8, checksum: u32, data: &[u8]) -> Vec<u8> {
        let mut packet = vec![0, op];
        packet.extend_from_slice(&(data.len() as u16).to_le_bytes());
        packet.extend_from_slice(&checksum.to_le_bytes());
        packet.extend_from_slice(data);
        slip::encode(&packet)
    }

    fn le(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// `size, seq, 0, 0, payload` and its checksum, as both tools build data packets.
    fn data_packet(seq: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        let mut data = le(&[payload.len() as u32, seq, 0, 0]);
        data.extend_from_slice(payload);
        (u32::from(protocol::checksum(payload)), data)
    }

    fn unslip(wire: &[u8]) -> Vec<Vec<u8>> {
        let mut decoder = SlipDecoder::new(usize::MAX);
        wire.iter()
            .filter_map(|&b| match decoder.push(b) {
                Some(Decoded::Packet(p)) => Some(p),
                Some(other) => panic!("loader sent a bad frame: {other:?}"),
                None => None,
            })
            .collect()
    }

    fn parse_response(packet: &[u8]) -> Response {
        assert_eq!(packet[0], 1, "not a response: {packet:02x?}");
        let status_len = if matches!(packet.len(), 10 | 26) {
            2
        } else {
            4
        };
        let len = u16::from_le_bytes([packet[2], packet[3]]);
        assert_eq!(usize::from(len), packet.len() - 8, "len field");
        Response {
            op: packet[1],
            len,
            value: u32::from_le_bytes(packet[4..8].try_into().unwrap()),
            data: packet[8..packet.len() - status_len].to_vec(),
            status: packet[packet.len() - status_len],
            error: packet[packet.len() - status_len + 1],
        }
    }

    impl Host {
        fn new() -> Self {
            Host {
                loader: Loader::new(Flash::new_erased(super::super::DEFAULT_FLASH_SIZE)),
                events: Vec::new(),
            }
        }

        fn stub() -> Self {
            let mut host = Host::new();
            host.upload_stub();
            host
        }

        fn feed(&mut self, bytes: &[u8]) -> Vec<LoaderEvent> {
            let mut events = Vec::new();
            self.loader.feed(bytes, &mut |e| events.push(e));
            events
        }

        /// Sends one request; returns the raw reply packets and the other events.
        fn exchange(
            &mut self,
            op: u8,
            checksum: u32,
            data: &[u8],
        ) -> (Vec<Vec<u8>>, Vec<LoaderEvent>) {
            let mut packets = Vec::new();
            let mut others = Vec::new();
            for event in self.feed(&frame(op, checksum, data)) {
                match event {
                    LoaderEvent::Reply(wire) => packets.extend(unslip(&wire)),
                    other => others.push(other),
                }
            }
            (packets, others)
        }

        /// Sends one request that must get exactly one reply, for `op`.
        fn command(&mut self, op: u8, checksum: u32, data: &[u8]) -> Response {
            let (packets, others) = self.exchange(op, checksum, data);
            assert_eq!(packets.len(), 1, "replies to {op:#x}: {packets:02x?}");
            self.events.extend(others);
            let response = parse_response(&packets[0]);
            assert_eq!(response.op, op);
            response
        }

        fn ok(&mut self, op: u8, data: &[u8]) -> Response {
            let response = self.command(op, 0, data);
            assert_eq!((response.status, response.error), (0, 0), "{op:#x} failed");
            response
        }

        fn read_reg(&mut self, addr: u32) -> u32 {
            self.ok(op::READ_REG, &le(&[addr])).value
        }

        fn write_reg(&mut self, addr: u32, value: u32) {
            self.ok(op::WRITE_REG, &le(&[addr, value, u32::MAX, 0]));
        }

        fn md5(&mut self, addr: u32, len: u32) -> [u8; 16] {
            let response = self.ok(op::SPI_FLASH_MD5, &le(&[addr, len, 0, 0]));
            if self.loader.is_stub() {
                response.data.try_into().unwrap()
            } else {
                let hex = std::str::from_utf8(&response.data).unwrap();
                u128::from_str_radix(hex, 16).unwrap().to_be_bytes()
            }
        }

        /// What `Flasher::connect` does before flashing (no stub, ESP32-C3).
        fn connect_like_espflash(&mut self) {
            let (packets, _) = self.exchange(op::SYNC, 0, &protocol::SYNC_PAYLOAD);
            assert_eq!(packets.len(), 8);
            for _ in 0..2 {
                let info = self.ok(op::GET_SECURITY_INFO, &[]);
                assert_eq!(info.data[12..16], CHIP_ID.to_le_bytes());
            }
            for addr in [0x6000_8858, 0x6000_8850, 0x6000_8844, 0x6000_8848] {
                self.read_reg(addr);
            }
            self.ok(op::SPI_ATTACH, &[0; 8]);
            // espflash's spi_command(FlashDetect, [], 24)
            let (old_usr, old_usr2) = (self.read_reg(SPI_USR), self.read_reg(SPI_USR2));
            self.write_reg(SPI_USR, 1 << 31 | 1 << 28);
            self.write_reg(SPI_USR2, 7 << 28 | 0x9F);
            self.write_reg(SPI_MISO_DLEN, 23);
            self.write_reg(SPI_W0, 0);
            self.write_reg(SPI_CMD, SPI_CMD_USR);
            assert_eq!(self.read_reg(SPI_CMD) & SPI_CMD_USR, 0);
            assert_eq!(self.read_reg(SPI_W0), JEDEC_ID);
            self.write_reg(SPI_USR, old_usr);
            self.write_reg(SPI_USR2, old_usr2);
            self.ok(
                op::SPI_SET_PARAMS,
                &le(&[0, 0x40_0000, 0x10000, 0x1000, 0x100, 0xFFFF]),
            );
        }

        /// espflash's (and esptool's) stub upload: MEM_BEGIN / MEM_DATA for text and data,
        /// MEM_END with the entry point, then "OHAI".
        fn upload_stub(&mut self) {
            for (addr, len) in [(0x4038_0000u32, 9000usize), (0x3FC9_0000, 700)] {
                let image: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                let blocks = image.len().div_ceil(0x1800) as u32;
                self.ok(op::MEM_BEGIN, &le(&[len as u32, blocks, 0x1800, addr]));
                for (seq, block) in image.chunks(0x1800).enumerate() {
                    let (checksum, data) = data_packet(seq as u32, block);
                    let r = self.command(op::MEM_DATA, checksum, &data);
                    assert_eq!(r.status, 0);
                }
            }
            let (packets, others) = self.exchange(op::MEM_END, 0, &le(&[0, 0x4038_0400]));
            assert_eq!(packets.len(), 2);
            assert_eq!(packets[0].len(), 12, "MEM_END is answered by the ROM");
            assert_eq!(packets[1], b"OHAI");
            assert_eq!(others, [LoaderEvent::StubStarted]);
            assert!(self.loader.is_stub());
        }

        /// espflash's `write_segment` without compression, then FLASH_END(reboot).
        fn flash_plain(&mut self, addr: u32, image: &[u8], block: usize, exact_size: bool) {
            let erase_size = if exact_size {
                image.len() as u32
            } else {
                image.len().div_ceil(SECTOR_SIZE) as u32 * SECTOR_SIZE as u32
            };
            let blocks = image.len().div_ceil(block) as u32;
            self.ok(
                op::FLASH_BEGIN,
                &le(&[erase_size, blocks, block as u32, addr, 0]),
            );
            for (seq, chunk) in image.chunks(block).enumerate() {
                let mut padded = chunk.to_vec();
                padded.resize(block, 0xFF);
                let (checksum, data) = data_packet(seq as u32, &padded);
                let r = self.command(op::FLASH_DATA, checksum, &data);
                assert_eq!((r.status, r.error), (0, 0), "block {seq}");
            }
        }

        fn flash_deflate(&mut self, addr: u32, image: &[u8], block: usize) {
            let compressed = compress_to_vec_zlib(image, 9);
            let blocks = compressed.len().div_ceil(block) as u32;
            let size = if self.loader.is_stub() {
                image.len() as u32
            } else {
                image.len().div_ceil(ROM_BLOCK) as u32 * ROM_BLOCK as u32
            };
            let params = if self.loader.is_stub() {
                le(&[size, blocks, block as u32, addr])
            } else {
                le(&[size, blocks, block as u32, addr, 0])
            };
            self.ok(op::FLASH_DEFL_BEGIN, &params);
            for (seq, chunk) in compressed.chunks(block).enumerate() {
                let (checksum, data) = data_packet(seq as u32, chunk);
                let r = self.command(op::FLASH_DEFL_DATA, checksum, &data);
                assert_eq!((r.status, r.error), (0, 0), "block {seq}");
            }
        }
    }

    fn app_image(len: usize) -> Vec<u8> {
        // Compressible but not trivially so, and full of bytes SLIP must escape.
        (0..len)
            .map(|i| match i % 7 {
                0 => 0xC0,
                1 => 0xDB,
                _ => (i / 3 % 251) as u8,
            })
            .collect()
    }

    fn md5_of(bytes: &[u8]) -> [u8; 16] {
        Md5::digest(bytes).into()
    }

    #[test]
    fn sync_gets_eight_replies_rom_nonzero_stub_zero() {
        let mut host = Host::new();
        let (packets, _) = host.exchange(op::SYNC, 0, &protocol::SYNC_PAYLOAD);
        assert_eq!(packets.len(), 8);
        for packet in &packets {
            assert_eq!(packet.len(), 12);
            let r = parse_response(packet);
            assert_eq!((r.op, r.status), (op::SYNC, 0));
            assert_ne!(r.value, 0);
        }
        host.upload_stub();
        let (packets, _) = host.exchange(op::SYNC, 0, &protocol::SYNC_PAYLOAD);
        assert_eq!(packets.len(), 8);
        assert!(
            packets
                .iter()
                .all(|p| p.len() == 10 && parse_response(p).value == 0)
        );
    }

    #[test]
    fn exact_reply_bytes_in_rom_mode() {
        let mut host = Host::new();
        let (packets, _) = host.exchange(op::READ_REG, 0, &le(&[0x4000_1000]));
        assert_eq!(
            packets,
            [vec![1, 0x0A, 4, 0, 0x6F, 0x50, 0x31, 0x1B, 0, 0, 0, 0]]
        );
        let (packets, _) = host.exchange(op::SPI_ATTACH, 0, &[0; 8]);
        assert_eq!(packets, [vec![1, 0x0D, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
        let (packets, _) = host.exchange(op::GET_SECURITY_INFO, 0, &[]);
        let mut want = vec![1, 0x14, 24, 0, 0, 0, 0, 0];
        want.extend_from_slice(&[0; 12]);
        want.extend_from_slice(&[5, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(packets, [want]);
        // MD5 of 16 erased bytes, as 32 hex digits: 44 bytes in all.
        let (packets, _) = host.exchange(op::SPI_FLASH_MD5, 0, &le(&[0, 16, 0, 0]));
        let mut want = vec![1, 0x13, 36, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"8d79cbc9a4ecdde112fc91ba625b13c2");
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(packets, [want]);
        assert_eq!(
            md5_of(&[0xFF; 16]),
            0x8d79cbc9a4ecdde112fc91ba625b13c2u128.to_be_bytes()
        );
        // READ_FLASH_SLOW always answers 64 bytes.
        let (packets, _) = host.exchange(op::READ_FLASH_SLOW, 0, &le(&[0, 3, 64, 1]));
        let mut want = vec![1, 0x0E, 68, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF];
        want.extend_from_slice(&[0; 61]);
        want.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(packets, [want]);
        // Unknown command, stub-only command, wrong length: invalid message.
        for (op, data) in [
            (0x42, vec![]),
            (op::ERASE_FLASH, vec![]),
            (op::READ_REG, vec![0; 3]),
        ] {
            let (packets, _) = host.exchange(op, 0, &data);
            assert_eq!(packets, [vec![1, op, 4, 0, 0, 0, 0, 0, 1, 5, 0, 0]]);
        }
    }

    #[test]
    fn exact_reply_bytes_in_stub_mode() {
        let mut host = Host::stub();
        let (packets, _) = host.exchange(op::READ_REG, 0, &le(&[0x6000_8844]));
        assert_eq!(packets, [vec![1, 0x0A, 2, 0, 0x3C, 0x2B, 0x1A, 0x79, 0, 0]]);
        let (packets, _) = host.exchange(op::SPI_ATTACH, 0, &[0; 4]);
        assert_eq!(packets, [vec![1, 0x0D, 2, 0, 0, 0, 0, 0, 0, 0]]);
        let (packets, _) = host.exchange(op::GET_SECURITY_INFO, 0, &[]);
        assert_eq!(packets[0].len(), 8 + 20 + 2);
        assert_eq!(packets[0][2..4], [22, 0]);
        let (packets, _) = host.exchange(op::SPI_FLASH_MD5, 0, &le(&[0, 16, 0, 0]));
        let mut want = vec![1, 0x13, 18, 0, 0, 0, 0, 0];
        want.extend_from_slice(&md5_of(&[0xFF; 16]));
        want.extend_from_slice(&[0, 0]);
        assert_eq!(packets, [want]);
        assert_eq!(packets[0].len(), 26);
        let (packets, _) = host.exchange(op::READ_FLASH_SLOW, 0, &le(&[0, 3, 64, 1]));
        assert_eq!(packets, [vec![1, 0x0E, 2, 0, 0, 0, 0, 0, 1, 5]]);
        let (packets, _) = host.exchange(op::ERASE_REGION, 0, &le(&[0x1000, 0x2000]));
        assert_eq!(packets, [vec![1, 0xD1, 2, 0, 0, 0, 0, 0, 0, 0]]);
        let (packets, _) = host.exchange(op::ERASE_REGION, 0, &le(&[0x1001, 0x2000]));
        assert_eq!(packets, [vec![1, 0xD1, 2, 0, 0, 0, 0, 0, 1, 5]]);
    }

    #[test]
    fn espflash_rom_sequence_writes_100_kib_byte_exact() {
        let mut host = Host::new();
        // Something below and above the app that must survive.
        host.loader.flash.write(APP_ADDR - 1, &[0x12]).unwrap();
        host.connect_like_espflash();
        let image = app_image(100 * 1024 + 123);
        let before = host.md5(APP_ADDR, image.len() as u32);
        assert_ne!(before, md5_of(&image));
        host.flash_plain(APP_ADDR, &image, ROM_BLOCK, false);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        let flash = host.loader.flash().as_bytes();
        assert_eq!(&flash[APP_ADDR as usize..][..image.len()], &image[..]);
        assert_eq!(flash[APP_ADDR as usize - 1], 0x12);
        let end = APP_ADDR as usize + image.len();
        assert!(flash[end..end + 0x10000].iter().all(|&b| b == 0xFF));
        assert_eq!(
            host.events,
            [LoaderEvent::Flashed {
                addr: APP_ADDR,
                len: image.len().div_ceil(ROM_BLOCK) as u32 * ROM_BLOCK as u32
            }]
        );
        let (packets, others) = host.exchange(op::FLASH_END, 0, &le(&[0]));
        assert_eq!(packets.len(), 1);
        assert_eq!(others, [LoaderEvent::Reboot]);
        assert!(host.loader.is_halted());
        assert!(
            host.feed(&frame(op::SYNC, 0, &protocol::SYNC_PAYLOAD))
                .is_empty()
        );
    }

    #[test]
    fn esptool_rom_sequence_with_exact_size_and_rewrite_over_old_data() {
        let mut host = Host::new();
        host.connect_like_espflash();
        // An older, longer app is there already: FLASH_BEGIN must erase before writing.
        host.flash_plain(APP_ADDR, &vec![0x5A; 150 * 1024], ROM_BLOCK, true);
        let image = app_image(100 * 1024 + 5);
        host.flash_plain(APP_ADDR, &image, ROM_BLOCK, true);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        // The old app past the erased sectors is untouched, as on the chip.
        let erased_end = APP_ADDR as usize + image.len().next_multiple_of(SECTOR_SIZE);
        assert_eq!(host.loader.flash().as_bytes()[erased_end], 0x5A);
    }

    #[test]
    fn deflate_download_in_rom_mode_with_1_kib_blocks() {
        let mut host = Host::new();
        host.connect_like_espflash();
        let image = app_image(100 * 1024);
        host.flash_deflate(APP_ADDR, &image, ROM_BLOCK);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        assert_eq!(
            host.events,
            [LoaderEvent::Flashed {
                addr: APP_ADDR,
                len: image.len() as u32
            }]
        );
    }

    #[test]
    fn deflate_download_in_stub_mode_with_16_kib_blocks() {
        let mut host = Host::stub();
        host.connect_like_espflash();
        // Random-ish data so that the compressed stream spans several 16 KiB blocks.
        let mut x = 1u32;
        let image: Vec<u8> = (0..100 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 40) as u8
            })
            .collect();
        host.flash_deflate(APP_ADDR, &image, STUB_BLOCK);
        assert_eq!(host.md5(APP_ADDR, image.len() as u32), md5_of(&image));
        assert!(compress_to_vec_zlib(&image, 9).len() > 2 * STUB_BLOCK);
        // espflash ends a stub download with FLASH_DEFL_END(1): the stub stays.
        let (packets, others) = host.exchange(op::FLASH_DEFL_END, 0, &le(&[1]));
        assert_eq!(packets.len(), 1);
        assert_eq!(parse_response(&packets[0]).status, 0);
        assert!(others.is_empty());
        // A stub download of uncompressed data (16 KiB blocks) works too.
        let image = app_image(40_000);
        host.flash_plain(0x20000, &image, STUB_BLOCK, false);
        assert_eq!(host.md5(0x20000, image.len() as u32), md5_of(&image));
    }

    #[test]
    fn bad_checksum_is_refused_and_nothing_is_written() {
        let mut host = Host::new();
        host.ok(op::FLASH_BEGIN, &le(&[0x1000, 1, 0x400, APP_ADDR, 0]));
        let (checksum, data) = data_packet(0, &[0x00; 0x400]);
        let r = host.command(op::FLASH_DATA, checksum ^ 1, &data);
        assert_eq!((r.status, r.error), (1, 0x07));
        assert!(host.loader.flash().as_bytes().iter().all(|&b| b == 0xFF));
        // The same block resent with the right checksum is accepted (sequence not advanced).
        let r = host.command(op::FLASH_DATA, checksum, &data);
        assert_eq!((r.status, r.error), (0, 0));
        assert_eq!(host.loader.flash().as_bytes()[APP_ADDR as usize], 0);
    }

    #[test]
    fn sequence_and_session_errors() {
        let mut host = Host::new();
        let (checksum, data) = data_packet(0, &[0; 16]);
        assert_eq!(
            host.command(op::FLASH_DATA, checksum, &data).error,
            0x06,
            "no session"
        );
        host.ok(op::FLASH_BEGIN, &le(&[0x1000, 2, 0x400, 0, 0]));
        let (checksum, data) = data_packet(1, &[0; 16]);
        assert_eq!(
            host.command(op::FLASH_DATA, checksum, &data).error,
            0x05,
            "wrong seq"
        );
        let (checksum, mut data) = data_packet(0, &[0; 16]);
        data[0] = 15;
        assert_eq!(
            host.command(op::FLASH_DATA, checksum, &data).error,
            0x05,
            "size field"
        );
        let (checksum, data) = data_packet(0, &[0; 0x401]);
        assert_eq!(
            host.command(op::FLASH_DATA, checksum, &data).error,
            0x05,
            "too big"
        );
        assert_eq!(
            host.command(op::FLASH_BEGIN, 0, &le(&[0x1000, 1, 0x400, 0x3F_F000 + 1]))
                .error,
            0x06
        );
        assert_eq!(
            host.command(op::SPI_FLASH_MD5, 0, &le(&[0x3F_FFFF, 2, 0, 0]))
                .error,
            0x09
        );
    }

    #[test]
    fn bad_deflate_stream_gets_0x0b() {
        let mut host = Host::new();
        host.ok(op::FLASH_DEFL_BEGIN, &le(&[0x1000, 1, 0x400, APP_ADDR, 0]));
        let (checksum, data) = data_packet(0, &[0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF]);
        let r = host.command(op::FLASH_DEFL_DATA, checksum, &data);
        assert_eq!((r.status, r.error), (1, 0x0B));
        // Not a zlib header at all.
        host.ok(op::FLASH_DEFL_BEGIN, &le(&[0x1000, 1, 0x400, APP_ADDR, 0]));
        let (checksum, data) = data_packet(0, b"hello, world");
        assert_eq!(
            host.command(op::FLASH_DEFL_DATA, checksum, &data).error,
            0x0B
        );
    }

    #[test]
    fn truncated_deflate_stream_fails_at_defl_end() {
        let mut host = Host::stub();
        let compressed = compress_to_vec_zlib(&app_image(5000), 6);
        host.ok(op::FLASH_DEFL_BEGIN, &le(&[5000, 1, 0x4000, APP_ADDR]));
        let (checksum, data) = data_packet(0, &compressed[..compressed.len() / 2]);
        assert_eq!(host.command(op::FLASH_DEFL_DATA, checksum, &data).status, 0);
        assert_eq!(host.command(op::FLASH_DEFL_END, 0, &le(&[1])).error, 0x0B);
    }

    #[test]
    fn change_baudrate_replies_first_then_switches() {
        let mut host = Host::new();
        let events = host.feed(&frame(op::CHANGE_BAUDRATE, 0, &le(&[921_600, 0])));
        assert_eq!(events.len(), 2);
        let LoaderEvent::Reply(wire) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(unslip(wire), [vec![1, 0x0F, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
        assert_eq!(events[1], LoaderEvent::ChangeBaud(921_600));
        assert_eq!(host.loader.baud(), 921_600);
    }

    #[test]
    fn stub_read_flash_streams_blocks_waits_for_acks_and_ends_with_md5() {
        let mut host = Host::stub();
        let image = app_image(10_000);
        host.loader.flash.write(0x3000, &image).unwrap();
        // esptool and espflash: block 0x1000, max_in_flight 64 (bytes): one frame at a time.
        let (packets, _) = host.exchange(op::READ_FLASH, 0, &le(&[0x3000, 10_000, 0x1000, 64]));
        assert_eq!(packets.len(), 2, "reply and first block");
        assert_eq!(packets[0], [1, 0xD2, 2, 0, 0, 0, 0, 0, 0, 0]);
        let mut data = packets[1].clone();
        loop {
            let events = host.feed(&slip::encode(&(data.len() as u32).to_le_bytes()));
            let packets: Vec<_> = events
                .iter()
                .flat_map(|e| match e {
                    LoaderEvent::Reply(w) => unslip(w),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(packets.len(), 1);
            if data.len() == image.len() {
                assert_eq!(packets[0], md5_of(&image));
                break;
            }
            data.extend_from_slice(&packets[0]);
        }
        assert_eq!(data, image);
        // Back to commands.
        host.ok(op::READ_REG, &le(&[0x4000_1000]));

        // A generous window sends everything at once.
        let (packets, _) =
            host.exchange(op::READ_FLASH, 0, &le(&[0x3000, 10_000, 0x1000, 0x10000]));
        assert_eq!(packets.len(), 4);
        let (packets, _) = host.exchange(0, 0, &[]); // not an ack: ends the read
        assert_eq!(packets, [md5_of(&image)]);
    }

    #[test]
    fn run_user_code_and_stub_flash_end_reboot() {
        let mut host = Host::stub();
        let (packets, others) = host.exchange(op::RUN_USER_CODE, 0, &[]);
        assert_eq!(packets.len(), 1);
        assert_eq!(others, [LoaderEvent::Reboot]);
        // espflash's stub soft reset: FLASH_BEGIN(0, 0) then FLASH_END(0).
        let mut host = Host::stub();
        host.ok(op::FLASH_BEGIN, &le(&[0, 0, 0x400, 0]));
        let (_, others) = host.exchange(op::FLASH_END, 0, &le(&[0]));
        assert_eq!(others, [LoaderEvent::Reboot]);
        // The ROM leaves on "run user code" (1) too: esptool's `run`.
        let mut host = Host::new();
        host.ok(op::FLASH_BEGIN, &le(&[0, 0, 0x400, 0, 0]));
        let (_, others) = host.exchange(op::FLASH_END, 0, &le(&[1]));
        assert_eq!(others, [LoaderEvent::Reboot]);
    }

    #[test]
    fn frames_split_at_every_byte_give_the_same_replies() {
        let mut wire = frame(op::READ_REG, 0, &le(&[0x4000_1000]));
        wire.extend(frame(op::SYNC, 0, &protocol::SYNC_PAYLOAD));
        wire.extend(frame(op::SPI_FLASH_MD5, 0, &le(&[0, 0xC0DB, 0, 0])));
        let mut whole = Host::new();
        let want = whole.feed(&wire);
        assert_eq!(want.len(), 10);
        for split in 0..wire.len() {
            let mut host = Host::new();
            let mut got = host.feed(&wire[..split]);
            got.extend(host.feed(&wire[split..]));
            assert_eq!(got, want, "split at {split}");
        }
    }

    #[test]
    fn garbage_truncated_and_oversized_frames_are_survived() {
        let mut host = Host::new();
        assert!(
            host.feed(b"rst:0x1 (POWERON),boot:0xc (SPI_FAST_FLASH_BOOT)\r\n")
                .is_empty()
        );
        // Truncated frame (the host gave up mid-packet), then a complete one.
        let mut wire = frame(op::READ_REG, 0, &le(&[0x4000_1000]));
        wire.truncate(6);
        wire.extend(frame(op::READ_REG, 0, &le(&[0x4000_1000])));
        let events = host.feed(&wire);
        // The fragment plus the new frame's opening 0xC0 close a junk frame (not a request
        // without its header, so unanswered); the real frame then decodes.
        let [LoaderEvent::Reply(wire)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(parse_response(&unslip(wire)[0]).value, 0x1B31_506F);
        // A frame far over the cap is dropped without growing memory.
        let mut huge = vec![0xC0];
        huge.extend(std::iter::repeat_n(0x11, 3 * MAX_PACKET));
        huge.push(0xC0);
        assert!(host.feed(&huge).is_empty());
        assert!(host.loader.decoder_capacity() <= MAX_PACKET);
        assert_eq!(host.read_reg(0x4000_1000), 0x1B31_506F);
    }

    #[test]
    fn ten_thousand_random_inputs_never_panic_and_stay_bounded() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let ops = [
            0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0E, 0x0F, 0x10,
            0x11, 0x12, 0x13, 0x14, 0xD0, 0xD1, 0xD2, 0xD3, 0x00, 0xFF,
        ];
        let mut host = Host::new();
        for round in 0..10_000 {
            if host.loader.is_halted() || round % 500 == 0 {
                host = if next() % 2 == 0 {
                    Host::new()
                } else {
                    Host::stub()
                };
            }
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = match next() % 3 {
                // Raw noise, rich in SLIP specials.
                0 => (0..len)
                    .map(|_| match next() % 4 {
                        0 => 0xC0,
                        1 => 0xDB,
                        _ => next() as u8,
                    })
                    .collect(),
                // Well-framed requests with random parameters.
                _ => {
                    let op = ops[(next() % ops.len() as u64) as usize];
                    let data: Vec<u8> = (0..len)
                        .map(|_| if next() % 3 == 0 { 0 } else { next() as u8 })
                        .collect();
                    let mut f = frame(op, (next() % 4) as u32, &data);
                    if next() % 5 == 0 {
                        f.truncate((next() % f.len() as u64) as usize);
                    }
                    f
                }
            };
            let mut total = 0usize;
            host.loader.feed(&bytes, &mut |event| {
                if let LoaderEvent::Reply(wire) = event {
                    total += wire.len();
                }
            });
            assert!(total < 1 << 20, "round {round}: {total} bytes of replies");
            assert!(host.loader.decoder_capacity() <= MAX_PACKET);
        }
    }

    #[test]
    fn stub_erases_as_it_writes_and_writes_are_nor() {
        let mut host = Host::stub();
        host.loader.flash.write(0x11000, &[0x00; 4]).unwrap();
        host.loader.flash.write(0x20000, &[0x00; 4]).unwrap();
        host.flash_plain(0x10000, &[0xAB; 0x1800], 0x1800, false);
        let flash = host.loader.flash().as_bytes();
        assert!(flash[0x10000..0x11800].iter().all(|&b| b == 0xAB));
        assert!(
            flash[0x11800..0x12000].iter().all(|&b| b == 0xFF),
            "second sector erased"
        );
        assert_eq!(flash[0x20000], 0, "untouched past the data");
    }
    #[test]
    fn espflash_watchdog_reset_reboots_the_chip() {
        // What espflash's `rtc_wdt_reset` writes for an ESP32-C3 on USB-Serial/JTAG.
        let mut host = Host::new();
        host.connect_like_espflash();
        host.write_reg(0x6000_80A8, 0x50D8_3AA1);
        host.write_reg(0x6000_8094, 2000);
        let flags = (1 << 31) | (5 << 28) | (1 << 8) | (1 << 2);
        let (packets, events) =
            host.exchange(op::WRITE_REG, 0, &le(&[0x6000_8090, flags, u32::MAX, 0]));
        assert_eq!(packets.len(), 1, "the write is answered first");
        assert_eq!(events, [LoaderEvent::Reboot]);
    }

    #[test]
    fn a_locked_watchdog_does_not_reset() {
        let mut host = Host::new();
        host.connect_like_espflash();
        let flags = (1 << 31) | (5 << 28);
        let (_, events) = host.exchange(op::WRITE_REG, 0, &le(&[0x6000_8090, flags, u32::MAX, 0]));
        assert!(events.is_empty(), "{events:?}");
    }
}
