//! The flasher stub's upload: MEM_BEGIN, MEM_DATA and MEM_END. RAM is not modelled; the
//! upload is checked and counted, and MEM_END with an entry point "starts the stub".

use super::{Done, Loader, Outcome, Then};
use crate::board::rom::protocol::{Mode, RomError, words};

/// A MEM_BEGIN session. RAM is not modelled: the bytes are checked and counted.
pub(super) struct RamUpload {
    size: u32,
    blocks: u32,
    block_size: u32,
    next_seq: u32,
    received: u32,
}

impl Loader {
    pub(super) fn mem_begin(&mut self, data: &[u8]) -> Outcome {
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

    pub(super) fn mem_data(&mut self, checksum: u32, data: &[u8]) -> Outcome {
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
    pub(super) fn mem_end(&mut self, data: &[u8]) -> Outcome {
        let [no_entry, _entry] = words(data).ok_or(RomError::InvalidMessage)?;
        self.upload = None;
        if no_entry == 0 && self.mode == Mode::Rom {
            Ok(Done::then(Then::StartStub))
        } else {
            Ok(Done::ok())
        }
    }
}
