//! What a reset makes of the flash, as the ESP32-C3's ROM and ESP-IDF's 2nd-stage bootloader
//! see it: the bootloader image at 0x0 (else the ROM's `invalid header` loop), the partition
//! table at 0x8000 (else `Failed to verify partition table`), and the app partition to start:
//! the one `otadata` names when the table has otadata with a valid entry, else the factory app,
//! else `ota_0`; when that one does not hold a bootable image, the others in table order.
//! Tables are parsed with esp-idf-part, the crate espflash uses.

use esp_idf_part::{AppType, DataType, Partition, PartitionTable, SubType, Type};

use super::image::{self, AppImage, ImageError};
use crate::flash::layout::{PARTITION_TABLE_ADDRESS, PARTITION_TABLE_LEN, table_in_flash};

/// The ESP32-C3 ROM loads the 2nd-stage bootloader from here.
pub const BOOTLOADER_ADDRESS: usize = 0x0;
/// Each otadata entry sits at the start of one of the partition's two sectors.
const OTADATA_SECTOR: usize = 0x1000;
/// `esp_ota_img_states_t` values that rule an entry out (with rollback on).
const OTA_IMG_INVALID: u32 = 3;
const OTA_IMG_ABORTED: u32 = 4;

/// The ROM's look at the bootloader: its image, or why the ROM cannot load it.
pub fn bootloader(flash: &[u8]) -> Result<AppImage, ImageError> {
    image::inspect(flash.get(BOOTLOADER_ADDRESS..).unwrap_or_default())
}

/// The partition table the bootloader reads, if it is one.
pub fn partition_table(flash: &[u8]) -> Option<PartitionTable> {
    let start = PARTITION_TABLE_ADDRESS as usize;
    table_in_flash(flash.get(start..start + PARTITION_TABLE_LEN as usize)?)
}

/// Why an app partition is tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// otadata's newest valid entry, with this sequence number, names it.
    Otadata { seq: u32 },
    /// No otadata, or none of its entries is valid: the factory app, or else ota_0.
    Default,
    /// The chosen one did not boot: the bootloader tries the others.
    Fallback,
}

/// The app partitions to try, in order, with why.
pub fn app_order(table: &PartitionTable, flash: &[u8]) -> Vec<(Partition, Reason)> {
    let apps: Vec<&Partition> = table
        .partitions()
        .iter()
        .filter(|partition| partition.ty() == Type::App)
        .collect();
    let otas: Vec<&Partition> = apps
        .iter()
        .copied()
        .filter(|partition| ota_slot(partition).is_some())
        .collect();
    let chosen = otadata_seq(table, flash)
        .filter(|_| !otas.is_empty())
        .and_then(|seq| {
            let slot = (seq - 1) % otas.len() as u32;
            let partition = otas
                .iter()
                .find(|partition| ota_slot(partition) == Some(slot))?;
            Some(((*partition).clone(), Reason::Otadata { seq }))
        })
        .or_else(|| {
            let factory = apps
                .iter()
                .find(|partition| partition.subtype() == SubType::App(AppType::Factory));
            let first_ota = otas.iter().find(|partition| ota_slot(partition) == Some(0));
            factory
                .or(first_ota)
                .map(|partition| ((*partition).clone(), Reason::Default))
        });
    let mut order: Vec<(Partition, Reason)> = chosen.into_iter().collect();
    for partition in apps {
        if !order.iter().any(|(tried, _)| tried == partition) {
            order.push((partition.clone(), Reason::Fallback));
        }
    }
    order
}

/// `ota_N` -> N.
fn ota_slot(partition: &Partition) -> Option<u32> {
    match partition.subtype() {
        SubType::App(app)
            if (AppType::Ota_0 as u8..=AppType::Ota_15 as u8).contains(&(app as u8)) =>
        {
            Some(u32::from(app as u8 - AppType::Ota_0 as u8))
        }
        _ => None,
    }
}

/// The highest sequence number among otadata's valid entries (`esp_ota_select_entry_t`:
/// ota_seq, seq_label[20], ota_state, crc of ota_seq).
fn otadata_seq(table: &PartitionTable, flash: &[u8]) -> Option<u32> {
    let otadata = table.find_by_subtype(Type::Data, SubType::Data(DataType::Ota))?;
    let start = otadata.offset() as usize;
    (0..2)
        .filter_map(|sector| {
            let entry = flash.get(start + sector * OTADATA_SECTOR..)?.get(..32)?;
            let word = |at: usize| u32::from_le_bytes(entry[at..at + 4].try_into().unwrap());
            let (seq, state, crc) = (word(0), word(24), word(28));
            let valid = seq != u32::MAX
                && seq != 0
                && crc == otadata_crc(seq)
                && state != OTA_IMG_INVALID
                && state != OTA_IMG_ABORTED;
            valid.then_some(seq)
        })
        .max()
}

/// ESP-IDF's `bootloader_common_ota_select_crc`: `esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)`,
/// which is zlib's `crc32(0xFFFFFFFF, ...)` (as otatool.py computes it).
pub fn otadata_crc(seq: u32) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(u32::MAX);
    hasher.update(&seq.to_le_bytes());
    hasher.finalize()
}

/// An otadata entry that selects sequence number `seq` (what `esp_ota_set_boot_partition`
/// writes), for building test layouts.
pub fn otadata_entry(seq: u32) -> [u8; 32] {
    let mut entry = [0xFF; 32];
    entry[..4].copy_from_slice(&seq.to_le_bytes());
    entry[24..28].copy_from_slice(&0u32.to_le_bytes());
    entry[28..].copy_from_slice(&otadata_crc(seq).to_le_bytes());
    entry
}

/// The line ESP-IDF's bootloader prints for a partition in its table listing.
pub fn table_line(index: usize, partition: &Partition) -> String {
    let usage = match partition.subtype() {
        SubType::App(AppType::Factory) => "factory app",
        SubType::App(AppType::Test) => "test app",
        SubType::App(_) => "OTA app",
        SubType::Data(DataType::Ota) => "OTA data",
        SubType::Data(DataType::Phy) => "RF data",
        SubType::Data(DataType::Nvs) => "WiFi data",
        SubType::Data(DataType::NvsKeys) => "NVS keys",
        SubType::Data(DataType::EfuseEm) => "efuse",
        _ => "Unknown data",
    };
    let ty: u8 = partition.ty().into();
    let subtype: u8 = partition.subtype().into();
    format!(
        "{index:2} {:<16} {usage:<16} {ty:02x} {subtype:02x} {:08x} {:08x}",
        partition.name(),
        partition.offset(),
        partition.size()
    )
}

/// What ESP-IDF's bootloader calls an app partition that does not boot.
pub fn not_bootable(partition: &Partition) -> String {
    match ota_slot(partition) {
        Some(slot) => format!("OTA app partition slot {slot} is not bootable"),
        None => "Factory app partition is not bootable".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::layout::parse_table;

    const ARDUINO_CSV: &str = include_str!("../../tests/data/arduino-default.csv");

    fn flash_with(csv: &str) -> (PartitionTable, Vec<u8>) {
        let table = parse_table(csv.as_bytes().to_vec()).unwrap();
        let mut flash = vec![0xFF; 0x40_0000];
        let binary = table.to_bin().unwrap();
        flash[0x8000..0x8000 + binary.len()].copy_from_slice(&binary);
        (table, flash)
    }

    fn names(order: &[(Partition, Reason)]) -> Vec<(String, Reason)> {
        order
            .iter()
            .map(|(partition, reason)| (partition.name(), reason.clone()))
            .collect()
    }

    #[test]
    fn the_crc_is_the_one_otatool_writes() {
        // Python: binascii.crc32(struct.pack('<I', seq), 0xFFFFFFFF)
        assert_eq!(otadata_crc(1), 0x4743_989a);
        assert_eq!(otadata_crc(2), 0x55f6_3774);
        assert_eq!(otadata_crc(16), 0xafe6_a860);
    }

    #[test]
    fn otadata_with_seq_2_boots_app1_and_falls_back_to_app0() {
        let (table, mut flash) = flash_with(ARDUINO_CSV);
        flash[0xe000..0xe020].copy_from_slice(&otadata_entry(2));
        assert_eq!(partition_table(&flash), Some(table.clone()));
        assert_eq!(
            names(&app_order(&table, &flash)),
            [
                ("app1".to_owned(), Reason::Otadata { seq: 2 }),
                ("app0".to_owned(), Reason::Fallback)
            ]
        );
    }

    #[test]
    fn the_newest_valid_entry_wins_and_broken_ones_are_ignored() {
        let (table, mut flash) = flash_with(ARDUINO_CSV);
        flash[0xe000..0xe020].copy_from_slice(&otadata_entry(4));
        flash[0xf000..0xf020].copy_from_slice(&otadata_entry(3));
        assert_eq!(app_order(&table, &flash)[0].0.name(), "app1");
        // A bad CRC in the newer entry: the older one counts.
        flash[0xe000 + 28] ^= 1;
        assert_eq!(app_order(&table, &flash)[0].0.name(), "app0");
    }

    #[test]
    fn erased_otadata_boots_ota_0_and_a_factory_app_comes_first() {
        let (table, flash) = flash_with(ARDUINO_CSV);
        assert_eq!(
            names(&app_order(&table, &flash))[0],
            ("app0".to_owned(), Reason::Default)
        );
        let (table, flash) = flash_with(
            "nvs,data,nvs,0x9000,0x4000,\notadata,data,ota,0xd000,0x2000,\n\
             phy_init,data,phy,0xf000,0x1000,\nfactory,app,factory,0x10000,0x100000,\n\
             ota_0,app,ota_0,0x110000,0x100000,\nota_1,app,ota_1,0x210000,0x100000,\n",
        );
        assert_eq!(
            names(&app_order(&table, &flash)),
            [
                ("factory".to_owned(), Reason::Default),
                ("ota_0".to_owned(), Reason::Fallback),
                ("ota_1".to_owned(), Reason::Fallback)
            ]
        );
    }

    #[test]
    fn erased_flash_has_no_table_and_no_bootloader() {
        let flash = vec![0xFF; 0x10000];
        assert_eq!(partition_table(&flash), None);
        assert_eq!(bootloader(&flash), Err(ImageError::Magic(0xFFFF_FFFF)));
    }

    #[test]
    fn the_listing_reads_like_esp_idf() {
        let (table, _) = flash_with(ARDUINO_CSV);
        let lines: Vec<String> = table
            .partitions()
            .iter()
            .enumerate()
            .map(|(index, partition)| table_line(index, partition))
            .collect();
        assert_eq!(
            lines[0],
            " 0 nvs              WiFi data        01 02 00009000 00005000"
        );
        assert_eq!(
            lines[1],
            " 1 otadata          OTA data         01 00 0000e000 00002000"
        );
        assert_eq!(
            lines[3],
            " 3 app1             OTA app          00 11 00150000 00140000"
        );
        assert_eq!(
            not_bootable(&table.partitions()[3]),
            "OTA app partition slot 1 is not bootable"
        );
    }
}
