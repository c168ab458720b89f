//! Records as the firmware stores them in its flash map: a key, then a versioned byte layout.
//!
//! The flash map (sequential-storage) checks each item with a CRC; these layouts only have to be
//! unambiguous and refuse anything that is not a valid setting, so a record written by another
//! firmware version is ignored instead of being misread.

use core::fmt;

use espchat_core::{LedSetting, PASSWORD_MAX, PASSWORD_MIN, SSID_MAX, WifiCredentials};
use heapless::String;

/// The largest encoded record, in bytes (Wi-Fi: version, two lengths, SSID, password).
pub const RECORD_MAX: usize = 3 + SSID_MAX + PASSWORD_MAX;

const VERSION: u8 = 1;

/// A setting kept in flash under its own key.
pub trait Record: Sized {
    /// The key of this record in the flash map.
    const KEY: u8;

    /// Writes the record into `out` and returns the bytes written.
    fn encode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], RecordError>;

    fn decode(bytes: &[u8]) -> Result<Self, RecordError>;
}

/// Why bytes are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Written by a firmware that used another layout.
    Version(u8),
    /// Too short, too long, or a length that does not match.
    Length,
    /// Text that is not UTF-8.
    Text,
    /// Well-formed, but not a setting this firmware accepts.
    Value,
    /// The output buffer is smaller than [`RECORD_MAX`].
    BufferTooSmall,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Version(version) => write!(f, "record version {version} is unknown"),
            RecordError::Length => f.write_str("record length is wrong"),
            RecordError::Text => f.write_str("record text is not UTF-8"),
            RecordError::Value => f.write_str("record holds an invalid setting"),
            RecordError::BufferTooSmall => f.write_str("record buffer is too small"),
        }
    }
}

impl core::error::Error for RecordError {}

/// Layout: version, SSID length, SSID, password length, password.
impl Record for WifiCredentials {
    const KEY: u8 = 1;

    fn encode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], RecordError> {
        let mut writer = Writer { out, len: 0 };
        writer.byte(VERSION)?;
        writer.text(&self.ssid)?;
        writer.text(&self.password)?;
        let len = writer.len;
        Ok(&writer.out[..len])
    }

    fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut reader = Reader { bytes };
        reader.version()?;
        let ssid: String<SSID_MAX> = reader.text()?;
        let password: String<PASSWORD_MAX> = reader.text()?;
        reader.end()?;
        let password_ok = password.is_empty() || password.len() >= PASSWORD_MIN;
        if ssid.is_empty() || !password_ok {
            return Err(RecordError::Value);
        }
        Ok(WifiCredentials { ssid, password })
    }
}

/// Layout: version, then 0 for the RGB LED, or 1, pin, active-low (0 or 1) for a plain LED.
impl Record for LedSetting {
    const KEY: u8 = 2;

    fn encode<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], RecordError> {
        let mut writer = Writer { out, len: 0 };
        writer.byte(VERSION)?;
        match self {
            LedSetting::Rgb => writer.byte(0)?,
            LedSetting::Gpio(pin) => {
                writer.byte(1)?;
                writer.byte(pin.pin)?;
                writer.byte(u8::from(pin.active_low))?;
            }
        }
        let len = writer.len;
        Ok(&writer.out[..len])
    }

    fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut reader = Reader { bytes };
        reader.version()?;
        let setting = match reader.byte()? {
            0 => LedSetting::Rgb,
            1 => {
                let pin = reader.byte()?;
                let active_low = match reader.byte()? {
                    0 => false,
                    1 => true,
                    _ => return Err(RecordError::Value),
                };
                LedSetting::Gpio(espchat_core::LedPin { pin, active_low })
            }
            _ => return Err(RecordError::Value),
        };
        reader.end()?;
        Ok(setting)
    }
}

struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, byte: u8) -> Result<(), RecordError> {
        let slot = self
            .out
            .get_mut(self.len)
            .ok_or(RecordError::BufferTooSmall)?;
        *slot = byte;
        self.len += 1;
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), RecordError> {
        // Callers hold heapless strings of at most 64 bytes.
        let len = u8::try_from(text.len()).map_err(|_| RecordError::Length)?;
        self.byte(len)?;
        let end = self.len + text.len();
        self.out
            .get_mut(self.len..end)
            .ok_or(RecordError::BufferTooSmall)?
            .copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, RecordError> {
        let (&first, rest) = self.bytes.split_first().ok_or(RecordError::Length)?;
        self.bytes = rest;
        Ok(first)
    }

    fn version(&mut self) -> Result<(), RecordError> {
        match self.byte()? {
            VERSION => Ok(()),
            other => Err(RecordError::Version(other)),
        }
    }

    fn text<const N: usize>(&mut self) -> Result<String<N>, RecordError> {
        let len = usize::from(self.byte()?);
        if len > self.bytes.len() {
            return Err(RecordError::Length);
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        let text = core::str::from_utf8(text).map_err(|_| RecordError::Text)?;
        String::try_from(text).map_err(|_| RecordError::Length)
    }

    fn end(&self) -> Result<(), RecordError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Length)
        }
    }
}

#[cfg(test)]
mod tests {
    use espchat_core::LedPin;

    use super::*;

    fn credentials(ssid: &str, password: &str) -> WifiCredentials {
        WifiCredentials {
            ssid: ssid.try_into().unwrap(),
            password: password.try_into().unwrap(),
        }
    }

    fn round_trip<R: Record + PartialEq + fmt::Debug>(record: &R) -> R {
        let mut buf = [0u8; RECORD_MAX];
        let bytes = record.encode(&mut buf).unwrap();
        R::decode(bytes).unwrap()
    }

    #[test]
    fn wifi_round_trips() {
        for (ssid, password) in [
            ("labnet", "secret123"),
            ("cafe", ""),
            ("my net \"5G\" ☕", "pass word with spaces"),
        ] {
            let record = credentials(ssid, password);
            assert_eq!(round_trip(&record), record);
        }
    }

    #[test]
    fn wifi_of_maximum_length_fits_the_buffer() {
        let record = credentials(&"s".repeat(SSID_MAX), &"p".repeat(PASSWORD_MAX));
        let mut buf = [0u8; RECORD_MAX];
        assert_eq!(record.encode(&mut buf).unwrap().len(), RECORD_MAX);
        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn wifi_layout_is_stable() {
        // Flash written by this firmware must stay readable by the next one.
        let mut buf = [0u8; RECORD_MAX];
        let bytes = credentials("ab", "12345678").encode(&mut buf).unwrap();
        assert_eq!(bytes, b"\x01\x02ab\x0812345678");
    }

    #[test]
    fn small_buffer_is_an_error_not_a_panic() {
        let mut buf = [0u8; 5];
        assert_eq!(
            credentials("labnet", "secret123").encode(&mut buf),
            Err(RecordError::BufferTooSmall)
        );
        let mut empty = [0u8; 0];
        assert_eq!(
            LedSetting::Rgb.encode(&mut empty),
            Err(RecordError::BufferTooSmall)
        );
    }

    #[test]
    fn wifi_rejects_damaged_records() {
        let cases: [(&[u8], RecordError); 9] = [
            (b"", RecordError::Length),
            (b"\x02\x02ab\x00", RecordError::Version(2)),
            (b"\x01", RecordError::Length),
            (b"\x01\x05ab", RecordError::Length),
            (b"\x01\x02ab", RecordError::Length),
            (b"\x01\x02ab\x00extra", RecordError::Length),
            (b"\x01\x02\xff\xfe\x00", RecordError::Text),
            (b"\x01\x00\x00", RecordError::Value),
            (b"\x01\x02ab\x03abc", RecordError::Value),
        ];
        for (bytes, error) in cases {
            assert_eq!(WifiCredentials::decode(bytes), Err(error), "{bytes:?}");
        }
        let mut too_long = std::vec![1u8, 33];
        too_long.extend_from_slice(&[b's'; 33]);
        too_long.push(0);
        assert_eq!(WifiCredentials::decode(&too_long), Err(RecordError::Length));
    }

    #[test]
    fn led_round_trips() {
        for setting in [
            LedSetting::Rgb,
            LedSetting::Gpio(LedPin {
                pin: 2,
                active_low: false,
            }),
            LedSetting::Gpio(LedPin {
                pin: 8,
                active_low: true,
            }),
        ] {
            assert_eq!(round_trip(&setting), setting);
        }
    }

    #[test]
    fn led_rejects_damaged_records() {
        let cases: [(&[u8], RecordError); 6] = [
            (b"\x01", RecordError::Length),
            (b"\x01\x02", RecordError::Value),
            (b"\x01\x01\x08", RecordError::Length),
            (b"\x01\x01\x08\x02", RecordError::Value),
            (b"\x01\x00\x00", RecordError::Length),
            (b"\x07\x00", RecordError::Version(7)),
        ];
        for (bytes, error) in cases {
            assert_eq!(LedSetting::decode(bytes), Err(error), "{bytes:?}");
        }
    }

    #[test]
    fn keys_differ() {
        assert_ne!(WifiCredentials::KEY, LedSetting::KEY);
    }
}
