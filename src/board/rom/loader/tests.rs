//! The loader driven as espflash and esptool drive it, byte for byte; the `Host` here serves
//! the tests of the loader's parts too.

use miniz_oxide::deflate::compress_to_vec_zlib;

use super::super::registers::{
    JEDEC_ID, SPI_CMD, SPI_CMD_USR, SPI_MISO_DLEN, SPI_USR, SPI_USR2, SPI_W0,
};
use md5::{Digest, Md5};

use super::*;

pub(super) const APP_ADDR: u32 = 0x10000;
pub(super) const ROM_BLOCK: usize = 0x400;
pub(super) const STUB_BLOCK: usize = 0x4000;

/// A response as espflash's `read_response_bounded` takes it apart.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Response {
    pub(super) op: u8,
    pub(super) len: u16,
    pub(super) value: u32,
    pub(super) data: Vec<u8>,
    pub(super) status: u8,
    pub(super) error: u8,
}

pub(super) struct Host {
    pub(super) loader: Loader,
    pub(super) events: Vec<LoaderEvent>,
}

pub(super) fn frame(op: u8, checksum: u32, data: &[u8]) -> Vec<u8> {
    let mut packet = vec![0, op];
    packet.extend_from_slice(&(data.len() as u16).to_le_bytes());
    packet.extend_from_slice(&checksum.to_le_bytes());
    packet.extend_from_slice(data);
    slip::encode(&packet)
}

pub(super) fn le(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// `size, seq, 0, 0, payload` and its checksum, as both tools build data packets.
pub(super) fn data_packet(seq: u32, payload: &[u8]) -> (u32, Vec<u8>) {
    let mut data = le(&[payload.len() as u32, seq, 0, 0]);
    data.extend_from_slice(payload);
    (u32::from(protocol::checksum(payload)), data)
}

pub(super) fn unslip(wire: &[u8]) -> Vec<Vec<u8>> {
    let mut decoder = SlipDecoder::new(usize::MAX);
    wire.iter()
        .filter_map(|&b| match decoder.push(b) {
            Some(Decoded::Packet(p)) => Some(p),
            Some(other) => panic!("loader sent a bad frame: {other:?}"),
            None => None,
        })
        .collect()
}

pub(super) fn parse_response(packet: &[u8]) -> Response {
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
    pub(super) fn new() -> Self {
        Host {
            loader: Loader::new(Flash::new_erased(super::super::DEFAULT_FLASH_SIZE)),
            events: Vec::new(),
        }
    }

    pub(super) fn stub() -> Self {
        let mut host = Host::new();
        host.upload_stub();
        host
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> Vec<LoaderEvent> {
        let mut events = Vec::new();
        self.loader.feed(bytes, &mut |e| events.push(e));
        events
    }

    /// Sends one request; returns the raw reply packets and the other events.
    pub(super) fn exchange(
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
    pub(super) fn command(&mut self, op: u8, checksum: u32, data: &[u8]) -> Response {
        let (packets, others) = self.exchange(op, checksum, data);
        assert_eq!(packets.len(), 1, "replies to {op:#x}: {packets:02x?}");
        self.events.extend(others);
        let response = parse_response(&packets[0]);
        assert_eq!(response.op, op);
        response
    }

    pub(super) fn ok(&mut self, op: u8, data: &[u8]) -> Response {
        let response = self.command(op, 0, data);
        assert_eq!((response.status, response.error), (0, 0), "{op:#x} failed");
        response
    }

    pub(super) fn read_reg(&mut self, addr: u32) -> u32 {
        self.ok(op::READ_REG, &le(&[addr])).value
    }

    pub(super) fn write_reg(&mut self, addr: u32, value: u32) {
        self.ok(op::WRITE_REG, &le(&[addr, value, u32::MAX, 0]));
    }

    pub(super) fn md5(&mut self, addr: u32, len: u32) -> [u8; 16] {
        let response = self.ok(op::SPI_FLASH_MD5, &le(&[addr, len, 0, 0]));
        if self.loader.is_stub() {
            response.data.try_into().unwrap()
        } else {
            let hex = std::str::from_utf8(&response.data).unwrap();
            u128::from_str_radix(hex, 16).unwrap().to_be_bytes()
        }
    }

    /// What `Flasher::connect` does before flashing (no stub, ESP32-C3).
    pub(super) fn connect_like_espflash(&mut self) {
        let (packets, _) = self.exchange(op::SYNC, 0, &protocol::SYNC_PAYLOAD);
        assert_eq!(packets.len(), 8);
        for _ in 0..2 {
            let info = self.ok(op::GET_SECURITY_INFO, &[]);
            assert_eq!(info.data[12..16], u32::from(ESP32C3_CHIP_ID).to_le_bytes());
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
    pub(super) fn upload_stub(&mut self) {
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
    pub(super) fn flash_plain(&mut self, addr: u32, image: &[u8], block: usize, exact_size: bool) {
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

    pub(super) fn flash_deflate(&mut self, addr: u32, image: &[u8], block: usize) {
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

pub(super) fn app_image(len: usize) -> Vec<u8> {
    // Compressible but not trivially so, and full of bytes SLIP must escape.
    (0..len)
        .map(|i| match i % 7 {
            0 => 0xC0,
            1 => 0xDB,
            _ => (i / 3 % 251) as u8,
        })
        .collect()
}

pub(super) fn md5_of(bytes: &[u8]) -> [u8; 16] {
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
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0E, 0x0F, 0x10, 0x11,
        0x12, 0x13, 0x14, 0xD0, 0xD1, 0xD2, 0xD3, 0x00, 0xFF,
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
