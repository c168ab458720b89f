//! Settings kept in flash: a key-value map (sequential-storage) over the `nvs` data partition,
//! found in the partition table at 0x8000 (espflash's default table: 0x9000, 24 KiB).
//!
//! Nothing else uses that partition in a bare-metal firmware (esp-radio runs with
//! `nvs_enable = 0`), and flashing a new app leaves it alone, so credentials survive updates.
//! A board that ran Arduino, MicroPython or ESP-IDF before holds their NVS data there: the
//! map's format marker (`espchat_records::SettingsStore`) tells it apart, nothing is read from
//! it, and it is erased once before the first store.

use core::ops::Range;

use embassy_embedded_hal::adapter::BlockingAsync;
use esp_bootloader_esp_idf::partitions::{
    DataPartitionSubType, PARTITION_TABLE_MAX_LEN, PartitionType, read_partition_table,
};
use esp_storage::FlashStorage;
use espchat_records::{Loaded, Record, SettingsError, SettingsStore};

type Flash = BlockingAsync<FlashStorage<'static>>;

pub struct Settings {
    store: Option<SettingsStore<Flash>>,
    /// Where the partition is, for the log.
    region: Range<u32>,
}

impl Settings {
    pub fn new(mut flash: FlashStorage<'static>) -> Self {
        let Some(region) = nvs_partition(&mut flash) else {
            return Self {
                store: None,
                region: 0..0,
            };
        };
        let store = match SettingsStore::new(BlockingAsync::new(flash), region.clone()) {
            Ok(store) => Some(store),
            Err(error) => {
                say!(
                    "settings: {error} (0x{:x}..0x{:x})",
                    region.start,
                    region.end
                );
                None
            }
        };
        Self { store, region }
    }

    /// The stored record, if there is a valid one.
    pub async fn load<R: Record>(&mut self) -> Option<R> {
        let store = self.store.as_mut()?;
        match store.load::<R>().await {
            Ok(Loaded::Record(record)) => Some(record),
            Ok(Loaded::Missing) => None,
            Ok(Loaded::Invalid(error)) => {
                say!("settings: ignoring record {}: {error}", R::KEY);
                None
            }
            Ok(Loaded::NotOurs) => None,
            Err(error) => {
                say!("settings: {error}");
                None
            }
        }
    }

    pub async fn store<R: Record>(&mut self, record: &R) -> Result<(), SettingsError> {
        let store = self.store.as_mut().ok_or(SettingsError::NoPartition)?;
        if store.erases_before_storing().await {
            say!(
                "settings: the nvs partition at 0x{:x} holds no espchat settings (another firmware's data, or none yet); erasing it",
                self.region.start
            );
        }
        store.store(record).await
    }
}

/// The `nvs` data partition of the partition table the board booted with.
fn nvs_partition(flash: &mut FlashStorage<'static>) -> Option<Range<u32>> {
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let table = match read_partition_table(flash, &mut table) {
        Ok(table) => table,
        Err(error) => {
            say!("settings: cannot read the partition table: {error:?}; settings are not kept");
            return None;
        }
    };
    match table.find_partition(PartitionType::Data(DataPartitionSubType::Nvs)) {
        Ok(Some(partition)) => Some(partition.offset()..partition.offset() + partition.len()),
        Ok(None) | Err(_) => {
            say!(
                "settings: {}; settings are not kept",
                SettingsError::NoPartition
            );
            None
        }
    }
}
