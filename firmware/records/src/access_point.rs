//! The fallback access point's name and address.

use core::fmt::Write as _;
use core::net::Ipv4Addr;

use heapless::String;

/// The board's address on its own access point (clients get 192.168.4.50 and up).
pub const ACCESS_POINT_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 168, 4, 1);

/// `espchat-XXXX`, XXXX the last two bytes of the MAC in hex: boards side by side in a lab get
/// different names, and the name stays the same across reboots.
pub fn access_point_ssid(mac: [u8; 6]) -> String<32> {
    let mut ssid = String::new();
    // 12 bytes always fit in 32.
    let _ = write!(ssid, "espchat-{:02X}{:02X}", mac[4], mac[5]);
    ssid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssid_ends_in_the_last_two_mac_bytes() {
        assert_eq!(
            access_point_ssid([0x84, 0xf7, 0x03, 0x12, 0x0a, 0xbc]),
            "espchat-0ABC"
        );
        assert_eq!(access_point_ssid([0; 6]), "espchat-0000");
    }
}
