//! The loader state machine: decoded requests in, framed responses and board events out.
//!
//! Here: framing, dispatch, SYNC, registers and security info. The command families with
//! state of their own have a file each: `download` (writing flash), `read` (reading it back)
//! and `ram` (the flasher stub's upload).

mod download;
mod ram;
mod read;
#[cfg(test)]
mod tests;

use super::flash::Flash;
use super::protocol::{self, Mode, ParseError, Request, RomError, op, words};
use super::registers::Registers;
use super::slip::{self, Decoded, SlipDecoder};
use crate::flash::SECTOR_SIZE;
use crate::flash::format::ESP32C3_CHIP_ID;
use download::Download;
use ram::RamUpload;
use read::ReadFlash;

/// Largest packet a request can be: an 8-byte header plus a u16 length of data. Longer frames
/// are dropped by the SLIP decoder, so a client cannot make the board buffer more than this.
pub const MAX_PACKET: usize = 8 + u16::MAX as usize;

/// The rate every ESP ROM loader starts at.
pub const INITIAL_BAUD: u32 = 115_200;

/// ECO number in GET_SECURITY_INFO, matching the eFuse revision v0.3.
pub const ECO_VERSION: u32 = 3;

/// Non-zero: esptool takes a SYNC value of 0 to mean that the flasher stub already runs.
const ROM_SYNC_VALUE: u32 = 0x2012_0707;

/// What the ROM sends after MEM_END has started the flasher stub: "OHAI" in its own frame.
const STUB_GREETING: &[u8; 4] = b"OHAI";

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

impl Loader {
    /// A chip with the default MAC that has just reset into the ROM download mode.
    pub fn new(flash: Flash) -> Self {
        Self::with_mac(flash, super::registers::MAC)
    }

    /// A chip with the MAC `mac` that has just reset into the ROM download mode.
    pub fn with_mac(flash: Flash, mac: [u8; 6]) -> Self {
        Loader {
            flash,
            mode: Mode::Rom,
            decoder: SlipDecoder::new(MAX_PACKET),
            registers: Registers::with_mac(mac),
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
}

/// `flags u32, flash_crypt_cnt u8, key_purposes [u8; 7], chip_id u32, eco_version u32`: no
/// security features enabled.
fn security_info() -> Vec<u8> {
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(&0u32.to_le_bytes());
    data.push(0);
    data.extend_from_slice(&[0; 7]);
    data.extend_from_slice(&u32::from(ESP32C3_CHIP_ID).to_le_bytes());
    data.extend_from_slice(&ECO_VERSION.to_le_bytes());
    data
}
