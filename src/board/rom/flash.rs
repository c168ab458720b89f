//! The board's SPI NOR flash: a byte array with NOR semantics.

use crate::flash::SECTOR_SIZE;

/// The flash size an ESP32-C3 module usually has, and the one the JEDEC id reports.
pub const DEFAULT_SIZE: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlashError {
    #[error("flash access at {addr:#x}+{len:#x} is outside the {size:#x}-byte flash")]
    OutOfRange { addr: u32, len: usize, size: usize },
}

/// Flash contents. Erased bytes are 0xFF; [`Flash::write`] can only clear bits, as on a real
/// NOR chip, so writing without erasing first gives the same corruption the hardware would.
#[derive(Clone, PartialEq, Eq)]
pub struct Flash {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Flash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flash")
            .field("size", &self.bytes.len())
            .finish()
    }
}

impl Flash {
    /// A fully erased flash of `size` bytes.
    pub fn new_erased(size: usize) -> Self {
        Flash {
            bytes: vec![0xFF; size],
        }
    }

    /// Flash holding `bytes` (a saved image, say); its length is the flash size.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Flash { bytes }
    }

    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// `len` bytes at `addr`, or `None` if that runs past the end.
    pub fn read(&self, addr: u32, len: usize) -> Option<&[u8]> {
        let start = addr as usize;
        self.bytes.get(start..start.checked_add(len)?)
    }

    /// Erases (sets to 0xFF) every sector that `[addr, addr + len)` touches. `len` 0 erases
    /// nothing.
    pub fn erase_region(&mut self, addr: u32, len: usize) -> Result<(), FlashError> {
        if len == 0 {
            return Ok(());
        }
        let out_of_range = FlashError::OutOfRange {
            addr,
            len,
            size: self.bytes.len(),
        };
        let start = addr as usize / SECTOR_SIZE * SECTOR_SIZE;
        let end = (addr as usize)
            .checked_add(len)
            .and_then(|end| end.checked_next_multiple_of(SECTOR_SIZE))
            .ok_or_else(|| out_of_range.clone())?;
        match self.bytes.get_mut(start..end) {
            Some(region) => {
                region.fill(0xFF);
                Ok(())
            }
            None => Err(out_of_range),
        }
    }

    pub fn erase_all(&mut self) {
        self.bytes.fill(0xFF);
    }

    /// Programs `data` at `addr`: each byte becomes `old & new`, since programming can only
    /// turn 1 bits into 0 bits. Nothing is written if any part is out of range.
    pub fn write(&mut self, addr: u32, data: &[u8]) -> Result<(), FlashError> {
        let start = addr as usize;
        let size = self.bytes.len();
        let region = start
            .checked_add(data.len())
            .and_then(|end| self.bytes.get_mut(start..end))
            .ok_or(FlashError::OutOfRange {
                addr,
                len: data.len(),
                size,
            })?;
        for (old, new) in region.iter_mut().zip(data) {
            *old &= new;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_only_clears_bits() {
        let mut flash = Flash::new_erased(2 * SECTOR_SIZE);
        flash.write(10, &[0x0F, 0xAA]).unwrap();
        flash.write(10, &[0xF0, 0xFF]).unwrap();
        assert_eq!(flash.read(10, 2), Some(&[0x00, 0xAA][..]));
    }

    #[test]
    fn erase_covers_whole_sectors_it_touches() {
        let mut flash = Flash::from_bytes(vec![0; 3 * SECTOR_SIZE]);
        flash.erase_region(SECTOR_SIZE as u32 - 1, 2).unwrap();
        assert!(
            flash.as_bytes()[..2 * SECTOR_SIZE]
                .iter()
                .all(|&b| b == 0xFF)
        );
        assert!(flash.as_bytes()[2 * SECTOR_SIZE..].iter().all(|&b| b == 0));
        flash.erase_region(0, 0).unwrap();
    }

    #[test]
    fn out_of_range_access_fails_without_touching_anything() {
        let mut flash = Flash::from_bytes(vec![0; SECTOR_SIZE]);
        assert!(flash.write(SECTOR_SIZE as u32 - 1, &[0, 0]).is_err());
        assert!(flash.write(u32::MAX, &[0]).is_err());
        assert!(flash.erase_region(0, SECTOR_SIZE + 1).is_err());
        assert!(flash.erase_region(u32::MAX, usize::MAX).is_err());
        assert_eq!(flash.read(SECTOR_SIZE as u32, 1), None);
        assert_eq!(flash.read(0, usize::MAX), None);
        assert!(flash.as_bytes().iter().all(|&b| b == 0));
    }
}
