//! The settings region: a sequential-storage map that starts with a format marker.
//!
//! The region is the `nvs` data partition, which boards that ran Arduino, MicroPython or
//! ESP-IDF before have filled with ESP-IDF NVS pages. Their page headers read as free space to
//! sequential-storage, so a plain map would write into them, say "stored" and find nothing
//! after a reboot. A region without our marker is therefore not ours: nothing is read from it,
//! and it is erased once, before the first store, which then writes the marker.

use core::ops::Range;

use embedded_storage_async::nor_flash::NorFlash;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

use crate::record::{RECORD_MAX, Record};

/// The key of the format marker; record keys start at 1.
const MARKER_KEY: u8 = 0;
/// The marker's value: this layout of espchat settings.
pub const MARKER: &[u8] = b"espchat settings 1";

/// Room for a key and the largest item (a record or the marker), in whole flash words.
const BUFFER: usize = max(RECORD_MAX, MARKER.len()).next_multiple_of(4) + 4;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// esp-storage reads whole aligned words fastest.
#[repr(C, align(4))]
struct Buffer([u8; BUFFER]);

/// What a load found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded<R> {
    Record(R),
    /// Our region, without this record.
    Missing,
    /// A record of another layout, or unreadable: ignored.
    Invalid(crate::record::RecordError),
    /// The region holds something that is not ours (another firmware's NVS, or nothing yet):
    /// it is erased at the first store.
    NotOurs,
}

/// Why the flash could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum SettingsError {
    /// The partition table has no `nvs` data partition: settings live in RAM until reboot.
    NoPartition,
    /// The region is not on erase-block boundaries (a partition table we cannot use).
    Region,
    /// Reading, erasing or writing the flash failed.
    Flash,
    /// The record does not fit its own encoding.
    Record,
}

impl core::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SettingsError::NoPartition => "the partition table has no nvs partition for settings",
            SettingsError::Region => "the settings partition is not aligned to flash sectors",
            SettingsError::Flash => "the flash could not be written",
            SettingsError::Record => "the setting could not be encoded",
        })
    }
}

/// The settings map over one flash region.
pub struct SettingsStore<S: NorFlash> {
    map: MapStorage<u8, S, Cache<Uncached, Uncached, Uncached, u8>>,
    buffer: Buffer,
    /// Whether the region carries our marker; looked up once.
    ours: Option<bool>,
}

impl<S: NorFlash> SettingsStore<S> {
    pub fn new(flash: S, region: Range<u32>) -> Result<Self, SettingsError> {
        let config = MapConfig::try_new(region).map_err(|_| SettingsError::Region)?;
        Ok(Self {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buffer: Buffer([0; BUFFER]),
            ours: None,
        })
    }

    /// Gives the flash back (e.g. to simulate a reboot in tests).
    pub fn into_flash(self) -> S {
        self.map.destroy().0
    }

    async fn is_ours(&mut self) -> bool {
        if let Some(ours) = self.ours {
            return ours;
        }
        // Foreign data reads as "no marker" or as corruption: either way, not ours.
        let ours = matches!(
            self.map
                .fetch_item::<&[u8]>(&mut self.buffer.0, &MARKER_KEY)
                .await,
            Ok(Some(marker)) if marker == MARKER
        );
        self.ours = Some(ours);
        ours
    }

    pub async fn load<R: Record>(&mut self) -> Result<Loaded<R>, SettingsError> {
        if !self.is_ours().await {
            return Ok(Loaded::NotOurs);
        }
        match self
            .map
            .fetch_item::<&[u8]>(&mut self.buffer.0, &R::KEY)
            .await
        {
            Ok(Some(bytes)) => Ok(match R::decode(bytes) {
                Ok(record) => Loaded::Record(record),
                Err(error) => Loaded::Invalid(error),
            }),
            Ok(None) => Ok(Loaded::Missing),
            Err(_) => Err(SettingsError::Flash),
        }
    }

    /// Stores `record`; a region that is not ours is erased first and gets the marker.
    pub async fn store<R: Record>(&mut self, record: &R) -> Result<(), SettingsError> {
        if !self.is_ours().await {
            self.map
                .erase_all()
                .await
                .map_err(|_| SettingsError::Flash)?;
            self.map
                .store_item(&mut self.buffer.0, &MARKER_KEY, &MARKER)
                .await
                .map_err(|_| SettingsError::Flash)?;
            self.ours = Some(true);
        }
        let mut encoded = [0u8; RECORD_MAX];
        let bytes = record
            .encode(&mut encoded)
            .map_err(|_| SettingsError::Record)?;
        self.map
            .store_item(&mut self.buffer.0, &R::KEY, &bytes)
            .await
            .map_err(|_| SettingsError::Flash)
    }

    /// Whether the next store erases the region first (it is not ours).
    pub async fn erases_before_storing(&mut self) -> bool {
        !self.is_ours().await
    }
}

#[cfg(test)]
mod tests {
    use embassy_futures::block_on;
    use embedded_storage_async::nor_flash::NorFlash;
    use espchat_core::{LedPin, LedSetting, WifiCredentials};
    use sequential_storage::mock_flash::{MockFlashBase, WriteCountCheck};

    use super::*;

    /// 24 KiB of 4 KiB sectors with 4-byte words: the `nvs` partition of the default table.
    type Flash = MockFlashBase<6, 4, 1024>;
    const REGION: Range<u32> = 0..0x6000;

    /// An ESP-IDF NVS partition as an Arduino sketch leaves it (Wi-Fi namespace, Preferences),
    /// made by `esp-idf-nvs-partition-gen` from `tests/data/idf-nvs.csv`.
    static IDF_NVS: &[u8] = &ALIGNED.0;

    /// Flash is written in aligned words.
    #[repr(C, align(4))]
    struct Aligned([u8; 0x6000]);
    static ALIGNED: Aligned = Aligned(*include_bytes!("../tests/data/idf-nvs.bin"));

    fn flash_with(image: &[u8]) -> Flash {
        let mut flash = Flash::new(WriteCountCheck::Twice, None, true);
        // Written as a flasher writes it: onto erased flash, word by word.
        block_on(flash.write(0, image)).expect("seed the flash");
        flash
    }

    fn credentials() -> WifiCredentials {
        WifiCredentials {
            ssid: "lab net".try_into().unwrap(),
            password: "hunter2hunter2".try_into().unwrap(),
        }
    }

    fn reboot(store: SettingsStore<Flash>) -> SettingsStore<Flash> {
        SettingsStore::new(store.into_flash(), REGION).unwrap()
    }

    #[test]
    fn the_fixture_is_a_real_nvs_image() {
        assert_eq!(IDF_NVS.len(), 0x6000);
        // Page 0's header: state ACTIVE (0xFFFFFFFE), sequence 0; its first entry is a
        // namespace named nvs.net80211.
        assert_eq!(IDF_NVS[..4], [0xfe, 0xff, 0xff, 0xff]);
        assert!(IDF_NVS.windows(12).any(|w| w == b"nvs.net80211"));
    }

    #[test]
    fn credentials_survive_a_reboot_over_foreign_nvs_data() {
        let mut store = SettingsStore::new(flash_with(IDF_NVS), REGION).unwrap();
        assert_eq!(
            block_on(store.load::<WifiCredentials>()),
            Ok(Loaded::NotOurs)
        );
        assert!(block_on(store.erases_before_storing()));
        block_on(store.store(&credentials())).unwrap();
        block_on(store.store(&LedSetting::Gpio(LedPin {
            pin: 8,
            active_low: true,
        })))
        .unwrap();

        let mut store = reboot(store);
        assert!(!block_on(store.erases_before_storing()));
        assert_eq!(
            block_on(store.load::<WifiCredentials>()),
            Ok(Loaded::Record(credentials()))
        );
        assert_eq!(
            block_on(store.load::<LedSetting>()),
            Ok(Loaded::Record(LedSetting::Gpio(LedPin {
                pin: 8,
                active_low: true
            })))
        );
        // Nothing of the old NVS data is left to be misread.
        let flash = store.into_flash();
        assert!(!flash.as_bytes().windows(12).any(|w| w == b"nvs.net80211"));
    }

    #[test]
    fn a_plain_map_over_foreign_nvs_data_loses_what_it_stored() {
        // What the firmware did before the marker: the failure this module exists for.
        let flash = flash_with(IDF_NVS);
        let mut map: MapStorage<u8, Flash, _> =
            MapStorage::new(flash, MapConfig::new(REGION), Cache::new_uncached());
        let mut buffer = [0u8; BUFFER];
        let mut encoded = [0u8; RECORD_MAX];
        let bytes = credentials().encode(&mut encoded).unwrap();
        let stored = block_on(map.store_item(&mut buffer, &WifiCredentials::KEY, &bytes));
        let flash = map.destroy().0;
        let mut map: MapStorage<u8, Flash, _> =
            MapStorage::new(flash, MapConfig::new(REGION), Cache::new_uncached());
        let fetched = block_on(map.fetch_item::<&[u8]>(&mut buffer, &WifiCredentials::KEY));
        let survived = matches!(
            (stored, fetched),
            (Ok(()), Ok(Some(b))) if WifiCredentials::decode(b) == Ok(credentials())
        );
        assert!(
            !survived,
            "the plain map kept the record: the fixture shows nothing"
        );
    }

    #[test]
    fn a_blank_region_gets_the_marker_with_the_first_store() {
        let mut store = SettingsStore::new(Flash::default(), REGION).unwrap();
        assert_eq!(block_on(store.load::<LedSetting>()), Ok(Loaded::NotOurs));
        block_on(store.store(&LedSetting::Rgb)).unwrap();
        let mut store = reboot(store);
        assert_eq!(
            block_on(store.load::<LedSetting>()),
            Ok(Loaded::Record(LedSetting::Rgb))
        );
        assert_eq!(
            block_on(store.load::<WifiCredentials>()),
            Ok(Loaded::Missing)
        );
    }

    #[test]
    fn our_region_is_never_erased_again() {
        let mut store = SettingsStore::new(Flash::default(), REGION).unwrap();
        block_on(store.store(&credentials())).unwrap();
        let mut store = reboot(store);
        block_on(store.store(&LedSetting::Rgb)).unwrap();
        let mut store = reboot(store);
        assert_eq!(
            block_on(store.load::<WifiCredentials>()),
            Ok(Loaded::Record(credentials()))
        );
    }

    #[test]
    fn a_region_off_sector_boundaries_is_refused() {
        assert!(matches!(
            SettingsStore::new(Flash::default(), 0x100..0x6000),
            Err(SettingsError::Region)
        ));
    }
}
