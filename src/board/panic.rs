//! What the firmware prints when it panics, for the virtual board's `panic` command: the text
//! esp-backtrace 0.20 prints on RISC-V, with real code addresses of the bundled ESP32-C3
//! firmware, so that decoding can be tried (and tested) without a board.

use std::sync::OnceLock;

use espflash::target::Chip;

use crate::trace::Symbols;

/// Where the firmware's `panic!` is (`firmware/src/console.rs`), as the panic message says it.
const PANIC_AT: &str = "src/console.rs:109:32";

/// The frames of the firmware's console task at its `panic!`, outermost last, by function.
const CALL_CHAIN: &[&str] = &[
    "espchat_firmware::console::carry_out::{{closure}}",
    "espchat_firmware::chat::Chat::console",
    "embassy_executor::raw::TaskStorage<F>::poll",
    "main",
];

/// The panic's lines, as esp-backtrace prints them (blank lines included).
pub fn panic_lines() -> &'static [String] {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        let symbols = crate::bundled::symbols_for(Chip::Esp32c3)
            .and_then(Result::ok)
            .and_then(|elf| Symbols::load(&elf).ok());
        render(symbols)
    })
}

fn render(symbols: Option<Symbols>) -> Vec<String> {
    let addresses: Vec<u32> = symbols
        .as_ref()
        .map(|symbols| {
            CALL_CHAIN
                .iter()
                .filter_map(|name| symbols.function(name))
                // A return address inside the function: its middle, on an instruction
                // boundary (RISC-V C: 2 bytes).
                .filter_map(|range| u32::try_from(((range.start + range.end) / 2) & !1).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut lines = vec![
        String::new(),
        "====================== PANIC ======================".to_owned(),
        format!("panicked at {PANIC_AT}:"),
        "panic requested on the console".to_owned(),
        String::new(),
        "Backtrace:".to_owned(),
        String::new(),
    ];
    if addresses.is_empty() {
        lines.push(
            "No backtrace available - make sure to force frame-pointers. (see https://crates.io/crates/esp-backtrace)"
                .to_owned(),
        );
    }
    lines.extend(addresses.iter().map(|address| format!("0x{address:x}")));
    lines.extend([String::new(), String::new(), String::new()]);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_location_is_the_firmwares() {
        let source = include_str!("../../firmware/src/console.rs");
        let (line, text) = source
            .lines()
            .enumerate()
            .find(|(_, text)| text.contains("panic!(\"panic requested on the console\")"))
            .expect("the firmware's panic command");
        let column = text.find("panic!").expect("panic!") + 1;
        assert_eq!(PANIC_AT, format!("src/console.rs:{}:{column}", line + 1));
    }

    #[test]
    fn the_panic_names_code_of_the_bundled_firmware() {
        let lines = panic_lines();
        let addresses: Vec<u32> = lines
            .iter()
            .filter_map(|line| line.strip_prefix("0x"))
            .map(|hex| u32::from_str_radix(hex, 16).expect("hex"))
            .collect();
        assert_eq!(addresses.len(), CALL_CHAIN.len(), "{lines:#?}");
        let elf = crate::bundled::symbols_for(Chip::Esp32c3)
            .expect("bundled")
            .expect("inflates");
        let mut symbols = Symbols::load(&elf).expect("loads");
        for (address, function) in addresses.iter().zip(CALL_CHAIN) {
            let frames = symbols.frames(*address);
            let outer = frames.last().expect("a frame");
            assert_eq!(outer.function.as_deref(), Some(*function), "{address:#x}");
        }
    }
}
