//! The pure parts of the espchat firmware: what it keeps in flash and the board rules those
//! settings obey. No hardware and no IO here, so all of it is tested on the host:
//!
//! ```text
//! cargo test --manifest-path firmware/records/Cargo.toml --target x86_64-unknown-linux-gnu
//! ```
//!
//! The chat server itself is `espchat-core`; this crate adds what the firmware needs around it:
//! its flash records, the station's retry policy and address watch, the access point's DHCP leases, the
//! switchboard that connects the server to the client slots, and what a slot keeps to end a
//! cut-off client's line.
#![no_std]

#[cfg(test)]
extern crate std;

mod access_point;
mod address;
mod dhcp;
mod record;
mod sending;
mod settings;
mod station;
mod switchboard;

pub use access_point::{ACCESS_POINT_ADDRESS, access_point_ssid};
pub use address::{AddressNews, AddressWatch, DHCP_TIMEOUT_SECS};
pub use dhcp::{FIRST_LEASE, LEASE_SECS, LEASES, Leases, lease_options, leases};
/// The LED setting and the chips' LED pins live in the core, so the virtual board follows the
/// same rules; the firmware finds them here with its records.
pub use espchat_core::{Chip, LedSetting, PinError};
pub use record::{RECORD_MAX, Record, RecordError};
pub use sending::Sending;
pub use settings::{Loaded, MARKER, SettingsError, SettingsStore};
pub use station::{
    ACCESS_POINT_RETRY_FIRST_SECS, ACCESS_POINT_RETRY_MAX_SECS, AccessPointRetry,
    FAILURES_BEFORE_ACCESS_POINT, Next, StationRetry,
};
pub use switchboard::{BoardOutput, Outbox, Switchboard};
