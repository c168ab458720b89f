//! Packet layouts of the ESP serial bootloader protocol: request parsing and response building.

use super::slip;

/// Command opcodes (the `op` byte of requests and responses).
pub mod op {
    pub const FLASH_BEGIN: u8 = 0x02;
    pub const FLASH_DATA: u8 = 0x03;
    pub const FLASH_END: u8 = 0x04;
    pub const MEM_BEGIN: u8 = 0x05;
    pub const MEM_END: u8 = 0x06;
    pub const MEM_DATA: u8 = 0x07;
    pub const SYNC: u8 = 0x08;
    pub const WRITE_REG: u8 = 0x09;
    pub const READ_REG: u8 = 0x0A;
    pub const SPI_SET_PARAMS: u8 = 0x0B;
    pub const SPI_ATTACH: u8 = 0x0D;
    pub const READ_FLASH_SLOW: u8 = 0x0E;
    pub const CHANGE_BAUDRATE: u8 = 0x0F;
    pub const FLASH_DEFL_BEGIN: u8 = 0x10;
    pub const FLASH_DEFL_DATA: u8 = 0x11;
    pub const FLASH_DEFL_END: u8 = 0x12;
    pub const SPI_FLASH_MD5: u8 = 0x13;
    pub const GET_SECURITY_INFO: u8 = 0x14;
    pub const ERASE_FLASH: u8 = 0xD0;
    pub const ERASE_REGION: u8 = 0xD1;
    pub const READ_FLASH: u8 = 0xD2;
    pub const RUN_USER_CODE: u8 = 0xD3;
}

/// The payload every SYNC request carries.
pub const SYNC_PAYLOAD: [u8; 36] = {
    let mut payload = [0x55; 36];
    payload[0] = 0x07;
    payload[1] = 0x07;
    payload[2] = 0x12;
    payload[3] = 0x20;
    payload
};

/// Initial value of the XOR checksum over FLASH_DATA / FLASH_DEFL_DATA / MEM_DATA payloads.
pub const CHECKSUM_SEED: u8 = 0xEF;

pub fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(CHECKSUM_SEED, |acc, b| acc ^ b)
}

/// The error byte of a failed response, as the ROM numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RomError {
    /// Unknown command, wrong length, bad parameters or sequence.
    InvalidMessage = 0x05,
    /// A valid command that cannot be carried out now.
    FailedToAct = 0x06,
    BadChecksum = 0x07,
    FlashWrite = 0x08,
    FlashRead = 0x09,
    Deflate = 0x0B,
}

/// A request packet: `00, op, len u16 LE, checksum u32 LE, data`.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub op: u8,
    pub checksum: u32,
    pub data: &'a [u8],
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Too short for a header or not a request: noise, dropped without an answer (the ROM
    /// cannot know whom to answer either).
    NotARequest,
    /// The header's length disagrees with the payload: answered with 0x05.
    LengthMismatch { op: u8 },
}

const HEADER_LEN: usize = 8;

pub fn parse_request(packet: &[u8]) -> Result<Request<'_>, ParseError> {
    let Some((header, data)) = packet.split_first_chunk::<HEADER_LEN>() else {
        return Err(ParseError::NotARequest);
    };
    if header[0] != 0 {
        return Err(ParseError::NotARequest);
    }
    let op = header[1];
    let len = u16::from_le_bytes([header[2], header[3]]);
    if usize::from(len) != data.len() {
        return Err(ParseError::LengthMismatch { op });
    }
    Ok(Request {
        op,
        checksum: u32::from_le_bytes([header[4], header[5], header[6], header[7]]),
        data,
    })
}

/// Whether a decoded packet (SLIP already removed) is a SYNC request.
pub fn is_sync_packet(packet: &[u8]) -> bool {
    matches!(parse_request(packet), Ok(Request { op: op::SYNC, data, .. }) if data == SYNC_PAYLOAD)
}

/// The little-endian u32 words at the start of `data`, if there are at least `N` of them.
pub fn words<const N: usize>(data: &[u8]) -> Option<[u32; N]> {
    let mut words = [0; N];
    for (i, word) in words.iter_mut().enumerate() {
        let bytes = data.get(i * 4..i * 4 + 4)?;
        *word = u32::from_le_bytes(bytes.try_into().ok()?);
    }
    Some(words)
}

/// Who is answering: the ROM sends 4 status bytes (status, error, 0, 0), the flasher stub 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Rom,
    Stub,
}

impl Mode {
    pub fn status_len(self) -> usize {
        match self {
            Mode::Rom => 4,
            Mode::Stub => 2,
        }
    }
}

/// A SLIP-framed response: `01, op, len u16, value u32, data, status bytes`. `len` counts the
/// data and the status bytes, which is what espflash slices variable-length answers with.
pub fn response(
    mode: Mode,
    op: u8,
    value: u32,
    data: &[u8],
    result: Result<(), RomError>,
) -> Vec<u8> {
    let status_len = mode.status_len();
    let mut packet = Vec::with_capacity(HEADER_LEN + data.len() + status_len);
    packet.extend_from_slice(&[1, op]);
    // Responses are built from at most 64 bytes of data, so this never truncates.
    packet.extend_from_slice(&((data.len() + status_len) as u16).to_le_bytes());
    packet.extend_from_slice(&value.to_le_bytes());
    packet.extend_from_slice(data);
    match result {
        Ok(()) => packet.extend_from_slice(&[0, 0]),
        Err(error) => packet.extend_from_slice(&[1, error as u8]),
    }
    if mode == Mode::Rom {
        packet.extend_from_slice(&[0, 0]);
    }
    slip::encode(&packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: u8, data: &[u8]) -> Vec<u8> {
        let mut packet = vec![0, op];
        packet.extend_from_slice(&(data.len() as u16).to_le_bytes());
        packet.extend_from_slice(&[0; 4]);
        packet.extend_from_slice(data);
        packet
    }

    #[test]
    fn parses_header_and_checks_length() {
        let mut packet = request(op::READ_REG, &[1, 2, 3, 4]);
        packet[4] = 0x99;
        assert_eq!(
            parse_request(&packet),
            Ok(Request {
                op: op::READ_REG,
                checksum: 0x99,
                data: &[1, 2, 3, 4]
            })
        );
        packet.push(0);
        assert_eq!(
            parse_request(&packet),
            Err(ParseError::LengthMismatch { op: op::READ_REG })
        );
        assert_eq!(parse_request(&[0, 1, 2]), Err(ParseError::NotARequest));
        assert_eq!(
            parse_request(&[1, 8, 0, 0, 0, 0, 0, 0]),
            Err(ParseError::NotARequest)
        );
    }

    #[test]
    fn recognises_only_a_real_sync() {
        assert!(is_sync_packet(&request(op::SYNC, &SYNC_PAYLOAD)));
        assert!(!is_sync_packet(&request(op::SYNC, &SYNC_PAYLOAD[..35])));
        assert!(!is_sync_packet(&request(op::READ_REG, &SYNC_PAYLOAD)));
    }

    #[test]
    fn response_lengths_match_what_espflash_expects() {
        let rom = response(Mode::Rom, op::READ_REG, 0x1234, &[], Ok(()));
        assert_eq!(
            rom,
            [0xC0, 1, 0x0A, 4, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0, 0xC0]
        );
        let stub = response(Mode::Stub, op::READ_REG, 0, &[], Err(RomError::BadChecksum));
        assert_eq!(stub, [0xC0, 1, 0x0A, 2, 0, 0, 0, 0, 0, 1, 7, 0xC0]);
    }

    #[test]
    fn words_needs_enough_bytes() {
        assert_eq!(words::<2>(&[1, 0, 0, 0, 2, 0, 0, 0, 9]), Some([1, 2]));
        assert_eq!(words::<2>(&[1, 0, 0, 0, 2]), None);
    }
}
