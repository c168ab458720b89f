//! Settings kept in flash: a key-value map (sequential-storage) over the `nvs` partition.
//!
//! The region is the `nvs` partition of the default partition table that espflash writes
//! (0x9000, 24 KiB). Nothing else uses it in a bare-metal firmware (esp-radio runs with
//! `nvs_enable = 0`), flashing a new app leaves it alone, so credentials survive updates, and
//! `espflash erase-region 0x9000 0x6000` forgets them.

use core::ops::Range;

use embassy_embedded_hal::adapter::BlockingAsync;
use esp_storage::FlashStorage;
use espchat_records::{RECORD_MAX, Record};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

const REGION: Range<u32> = 0x9000..0xF000;

type Flash = BlockingAsync<FlashStorage<'static>>;

/// Room for a key and the largest record, in whole flash words; esp-storage reads whole
/// aligned words fastest.
#[repr(C, align(4))]
struct Buffer([u8; RECORD_MAX.next_multiple_of(4) + 4]);

pub struct Settings {
    map: MapStorage<u8, Flash, Cache<Uncached, Uncached, Uncached, u8>>,
    buffer: Buffer,
}

#[derive(Debug)]
pub struct StoreError;

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the flash could not be written")
    }
}

impl Settings {
    pub fn new(flash: FlashStorage<'static>) -> Self {
        Self {
            map: MapStorage::new(
                BlockingAsync::new(flash),
                const { MapConfig::new(REGION) },
                Cache::new_uncached(),
            ),
            buffer: Buffer([0; _]),
        }
    }

    /// The stored record, if there is a valid one. A region that holds something else (another
    /// firmware's NVS, say) is erased, so the next store works.
    pub async fn load<R: Record>(&mut self) -> Option<R> {
        match self
            .map
            .fetch_item::<&[u8]>(&mut self.buffer.0, &R::KEY)
            .await
        {
            Ok(Some(bytes)) => match R::decode(bytes) {
                Ok(record) => Some(record),
                Err(error) => {
                    say!("settings: ignoring record {}: {error}", R::KEY);
                    None
                }
            },
            Ok(None) => None,
            Err(sequential_storage::Error::Corrupted { .. }) => {
                say!("settings: flash region 0x9000 holds no espchat settings; erasing it");
                if self.map.erase_all().await.is_err() {
                    say!("settings: erasing the flash region failed");
                }
                None
            }
            Err(error) => {
                say!("settings: reading flash failed: {error:?}");
                None
            }
        }
    }

    pub async fn store<R: Record>(&mut self, record: &R) -> Result<(), StoreError> {
        let mut encoded = [0u8; RECORD_MAX];
        let bytes = record.encode(&mut encoded).map_err(|_| StoreError)?;
        self.map
            .store_item(&mut self.buffer.0, &R::KEY, &bytes)
            .await
            .map_err(|_| StoreError)
    }
}
