//! Finds the code addresses in panic and exception output, format by format.
//! (Placeholder until the scanner lands: esp-backtrace's `Backtrace:` block only.)

/// An address found, and what the format says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub address: u32,
}

/// Scans console lines one at a time.
#[derive(Debug, Default)]
pub struct PanicScanner {
    in_backtrace: bool,
}

impl PanicScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The code addresses worth decoding in this console line, in order of appearance.
    pub fn line(&mut self, line: &str) -> Vec<Found> {
        let text = line.trim();
        if text == "Backtrace:" {
            self.in_backtrace = true;
            return Vec::new();
        }
        if self.in_backtrace {
            if let Some(hex) = text.strip_prefix("0x")
                && let Ok(address) = u32::from_str_radix(hex, 16)
            {
                return vec![Found { address }];
            }
            if !text.is_empty() {
                self.in_backtrace = false;
            }
        }
        Vec::new()
    }
}
