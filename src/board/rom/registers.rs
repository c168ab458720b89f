//! The registers a flashing tool reads and writes through READ_REG / WRITE_REG: eFuse words
//! that identify the chip, the chip-detect magic word, and the SPI0 controller that runs a
//! raw flash command (RDID) to learn the flash size.

use std::collections::BTreeMap;

/// Read in espflash's and esptool's fallback chip detection; ESP32-C3 ECO3.
pub const CHIP_DETECT_MAGIC_REG: u32 = 0x4000_1000;
pub const CHIP_DETECT_MAGIC: u32 = 0x1B31_506F;

/// eFuse BLOCK1 words: MAC (words 0 and 1) and the wafer version (words 3 and 5).
pub const EFUSE_MAC0: u32 = 0x6000_8844;
pub const EFUSE_MAC1: u32 = 0x6000_8848;
pub const EFUSE_BLOCK1_WORD3: u32 = 0x6000_8850;
pub const EFUSE_BLOCK1_WORD5: u32 = 0x6000_8858;

/// A board's MAC address by default. 58:CF:79 is an Espressif OUI; the rest is arbitrary.
pub const MAC: [u8; 6] = [0x58, 0xCF, 0x79, 0x1A, 0x2B, 0x3C];

/// The MAC of the virtual board serving on `tcp_port`: boards on one computer differ (a class
/// of them can be told apart by MAC, as real ones are), and one board keeps its MAC across runs.
pub fn mac_for_port(tcp_port: u16) -> [u8; 6] {
    let [high, low] = tcp_port.to_be_bytes();
    [MAC[0], MAC[1], MAC[2], MAC[3], high, low]
}

/// Chip revision v0.3: major 0 (word 5 bits 24..25), minor = hi (word 5 bit 23) << 3 | lo
/// (word 3 bits 18..20). Package 0 (QFN32) and no embedded flash (word 3 bits 21..23, 27..29).
pub const REVISION_MINOR: u32 = 3;

/// SPI0 (the flash controller) registers, base 0x60002000.
pub const SPI_CMD: u32 = 0x6000_2000;
#[cfg(test)]
pub const SPI_USR: u32 = 0x6000_2018;
pub const SPI_USR2: u32 = 0x6000_2020;
pub const SPI_MISO_DLEN: u32 = 0x6000_2028;
pub const SPI_W0: u32 = 0x6000_2058;
/// SPI_CMD bit that starts a user command; the hardware clears it when done.
pub const SPI_CMD_USR: u32 = 1 << 18;
/// JEDEC RDID command and the answer of a 4 MB Winbond W25Q32: manufacturer 0xEF, type 0x40,
/// capacity 0x16 (2^22 bytes), as W0 holds it (first byte received in the low byte).
pub const SPIFLASH_RDID: u32 = 0x9F;
pub const JEDEC_ID: u32 = 0x0016_40EF;

/// Writes to registers without a model are remembered, up to this many addresses, so that a
/// read-modify-write sequence sees its own value. Past the cap writes are accepted and
/// forgotten: a client writing to random addresses cannot grow the board's memory.
const MAX_REMEMBERED: usize = 256;

/// The RTC watchdog of the ESP32-C3: its write protection and its first config word.
const RTC_WDT_WPROTECT: u32 = 0x6000_80A8;
const RTC_WDT_CONFIG0: u32 = 0x6000_8090;
/// The key that lifts the RTC watchdog's write protection.
const RTC_WDT_WKEY: u32 = 0x50D8_3AA1;
const RTC_WDT_EN: u32 = 1 << 31;
/// Stage 0's action, bits 28..30: anything but 0 (off) resets or interrupts; 4 and up reset.
const RTC_WDT_STAGE0_SHIFT: u32 = 28;

#[derive(Debug)]
pub struct Registers {
    mac: [u8; 6],
    written: BTreeMap<u32, u32>,
    /// The RTC watchdog was armed to reset the chip (espflash's and esptool's watchdog reset
    /// for boards on the USB-Serial/JTAG port).
    watchdog_armed: bool,
}

impl Default for Registers {
    fn default() -> Self {
        Registers::with_mac(MAC)
    }
}

impl Registers {
    pub fn with_mac(mac: [u8; 6]) -> Self {
        Registers {
            mac,
            written: BTreeMap::new(),
            watchdog_armed: false,
        }
    }

    pub fn read(&self, addr: u32) -> u32 {
        if let Some(value) = fixed(addr, self.mac) {
            return value;
        }
        self.written.get(&addr).copied().unwrap_or(0)
    }

    /// Applies a WRITE_REG: bits set in `mask` take `value`, the others keep their value.
    pub fn write(&mut self, addr: u32, value: u32, mask: u32) {
        if fixed(addr, self.mac).is_some() {
            // eFuses and the magic word are read-only.
            return;
        }
        let merged = (self.read(addr) & !mask) | (value & mask);
        if addr == RTC_WDT_CONFIG0
            && self.read(RTC_WDT_WPROTECT) == RTC_WDT_WKEY
            && merged & RTC_WDT_EN != 0
            && (merged >> RTC_WDT_STAGE0_SHIFT) & 0b111 >= 4
        {
            self.watchdog_armed = true;
        }
        if addr == SPI_CMD && merged & SPI_CMD_USR != 0 {
            self.run_spi_user_command();
            self.store(addr, merged & !SPI_CMD_USR);
            return;
        }
        self.store(addr, merged);
    }

    /// Whether the watchdog was armed to reset the chip since the last call.
    pub fn take_watchdog_reset(&mut self) -> bool {
        std::mem::take(&mut self.watchdog_armed)
    }

    fn store(&mut self, addr: u32, value: u32) {
        if self.written.len() < MAX_REMEMBERED || self.written.contains_key(&addr) {
            self.written.insert(addr, value);
        }
    }

    /// Executes the command byte in SPI_USR2 against the flash chip and leaves what it
    /// answered in W0. Only RDID answers; every other read (status registers, say) yields 0,
    /// which also means "not busy".
    fn run_spi_user_command(&mut self) {
        let command = self.read(SPI_USR2) & 0xFF;
        let read_bits = (self.read(SPI_MISO_DLEN) & 0x3FF) + 1;
        let answer = if command == SPIFLASH_RDID {
            JEDEC_ID
        } else {
            0
        };
        let mask = if read_bits >= 32 {
            u32::MAX
        } else {
            (1 << read_bits) - 1
        };
        self.store(SPI_W0, answer & mask);
    }
}

fn fixed(addr: u32, mac: [u8; 6]) -> Option<u32> {
    let [m0, m1, m2, m3, m4, m5] = mac;
    Some(match addr {
        CHIP_DETECT_MAGIC_REG => CHIP_DETECT_MAGIC,
        EFUSE_MAC0 => u32::from_be_bytes([m2, m3, m4, m5]),
        EFUSE_MAC1 => u32::from_be_bytes([0, 0, m0, m1]),
        EFUSE_BLOCK1_WORD3 => (REVISION_MINOR & 0x7) << 18,
        EFUSE_BLOCK1_WORD5 => ((REVISION_MINOR >> 3) & 1) << 23,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_words_decode_as_esptool_does() {
        let regs = Registers::default();
        let (mac0, mac1) = (regs.read(EFUSE_MAC0), regs.read(EFUSE_MAC1));
        // esptool: struct.pack(">II", mac1, mac0)[2:]
        let mut bytes = mac1.to_be_bytes().to_vec();
        bytes.extend_from_slice(&mac0.to_be_bytes());
        assert_eq!(bytes[2..], MAC);
    }

    #[test]
    fn revision_reads_as_v0_3() {
        let regs = Registers::default();
        let hi = (regs.read(EFUSE_BLOCK1_WORD5) >> 23) & 1;
        let lo = (regs.read(EFUSE_BLOCK1_WORD3) >> 18) & 7;
        let major = (regs.read(EFUSE_BLOCK1_WORD5) >> 24) & 3;
        assert_eq!((major, hi << 3 | lo), (0, 3));
        assert_eq!(regs.read(CHIP_DETECT_MAGIC_REG), CHIP_DETECT_MAGIC);
    }

    /// The sequence espflash's `spi_command` and esptool's `run_spiflash_command` use.
    #[test]
    fn rdid_through_the_spi_registers_returns_the_jedec_id() {
        let mut regs = Registers::default();
        let old_usr = regs.read(SPI_USR);
        regs.write(SPI_USR, 1 << 31 | 1 << 28, u32::MAX);
        regs.write(SPI_USR2, 7 << 28 | SPIFLASH_RDID, u32::MAX);
        regs.write(SPI_MISO_DLEN, 24 - 1, u32::MAX);
        regs.write(SPI_W0, 0, u32::MAX);
        regs.write(SPI_CMD, SPI_CMD_USR, u32::MAX);
        assert_eq!(regs.read(SPI_CMD) & SPI_CMD_USR, 0);
        assert_eq!(regs.read(SPI_W0), JEDEC_ID);
        regs.write(SPI_USR, old_usr, u32::MAX);
        assert_eq!(regs.read(SPI_USR), 0);
    }

    #[test]
    fn other_spi_commands_read_zero_and_writes_respect_the_mask() {
        let mut regs = Registers::default();
        regs.write(SPI_W0, 0xDEAD_BEEF, u32::MAX);
        regs.write(SPI_USR2, 7 << 28 | 0x05, u32::MAX);
        regs.write(SPI_MISO_DLEN, 7, u32::MAX);
        regs.write(SPI_CMD, SPI_CMD_USR, u32::MAX);
        assert_eq!(regs.read(SPI_W0), 0);
        regs.write(0x6000_0000, 0xFFFF_FFFF, 0x0000_FF00);
        assert_eq!(regs.read(0x6000_0000), 0x0000_FF00);
        regs.write(EFUSE_MAC0, 0, u32::MAX);
        assert_ne!(regs.read(EFUSE_MAC0), 0);
    }

    #[test]
    fn remembered_writes_are_capped() {
        let mut regs = Registers::default();
        for addr in 0..10_000u32 {
            regs.write(0x5000_0000 + addr * 4, 1, u32::MAX);
        }
        assert_eq!(regs.written.len(), MAX_REMEMBERED);
    }
}
