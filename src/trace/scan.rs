//! Finds the code addresses in panic and exception output, format by format.
//!
//! Console lines arrive one at a time (decoded, without colour codes or line ending); the
//! scanner reports the addresses worth resolving against the app's ELF, in order of
//! appearance. It knows formats, not ELFs: what it reports are candidates by position in a
//! known format, and the caller keeps those inside the ELF's code sections. Everything else
//! with hex in it (data registers, stack pointers, heap and MAC addresses, hexdumps, boot
//! ROM `load:0x...` lines, decoder output already pasted into the log) is not reported.
//!
//! Formats, with the line shapes they print:
//! - esp-backtrace (esp-hal's panic handler), RISC-V and Xtensa: `Backtrace:` alone on a line,
//!   then one `0x4200abcd` per line (maybe after a blank line; with defmt each line carries a
//!   time, a level and a `(crate file:line)` location). The older exception handlers print a
//!   register dump and the frames right after it, without the header. Frames are already
//!   return address minus 4 (RISC-V) or 3 (Xtensa) as the crate prints them.
//! - esp-backtrace/esp-hal exceptions: `Exception 'Load access fault' mepc=0x4200abcd,
//!   mtval=...` (mepc only; defmt prints it without `0x`), the register dump `PC=0x...
//!   RA/x1=0x...` (PC and RA), the derived `TrapFrame { ra: 1108277650, ... }` of esp-hal 1.x
//!   (ra, in decimal), and `Stack overflow detected at 0x... (possibly) called by 0x...`.
//! - ESP-IDF register dumps, RISC-V (`MEPC    : 0x...  RA      : 0x...`) and Xtensa
//!   (`PC      : 0x...  PS      : 0x...  A0      : 0x800d5678`): MEPC/PC and RA; on Xtensa A0
//!   as a return address. Xtensa's windowed calls keep the window increment in A0's top two
//!   bits, so A0 is mapped into the code space as esp-backtrace does
//!   (`(a0 & 0x3fff_ffff) | 0x4000_0000`); an A0 with both top bits clear is no windowed
//!   return address and is skipped. The RISC-V `A0` is an argument register and never taken.
//! - ESP-IDF backtraces (Xtensa, and RISC-V with eh_frame/frame pointers):
//!   `Backtrace: 0x400d1234:0x3ffb1230 0x400d5678:0x3ffb1250 |<-CORRUPTED`, each PC (already
//!   adjusted to the call instruction by ESP-IDF), never the SP; continuation lines of pairs
//!   count too. `abort() was called at PC 0x42029be5 on core 0` gives that PC.
//! - ESP8266 Arduino core: `epc1=0x40201234 epc2=0x00000000 epc3=0x00000000
//!   excvaddr=0x00000008 depc=0x00000000`: epc1, and epc2, epc3 and depc when they are set (the
//!   core itself treats epc2 and depc as the PC of a debug and a double exception); never
//!   excvaddr, the faulting data address. Between `>>>stack>>>` and `<<<stack<<<`, rows
//!   `3fffff90:  3fffdad0 00000000 3ffee5f8 40201e5c` give the words that lie in the ESP8266's
//!   code: IRAM `0x40100000..0x40110000` and flash-mapped `0x40200000..0x40300000` (the ESP
//!   Exception Decoder takes every `40[0-2]xxxxx`; ROM words cannot be resolved from the ELF).
//!
//! Address 0 is never reported. State ends with the block that set it: a blank line after the
//! frames, a line of another kind, `<<<stack<<<`, `ELF file SHA256`, `Rebooting...`; so a later
//! ordinary line with a hex number is not taken.
//!
//! Not handled: ESP-IDF's RISC-V `Stack memory:` dump (idf_monitor unwinds it with gdb),
//! esp-backtrace's stack-dump mode, core dumps, the ROM's `Saved PC:` after a reset.
//!
//! Cost: a line without `0x` and without a block marker is rejected after a few substring
//! searches; nothing is allocated unless an address is found.

mod text;

use text::{Field, decimal, fields, hex_0x, payload};

/// A code address found in a console line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub address: u32,
    pub role: Role,
}

/// What the address is, which decides how to look it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The address of the instruction that faulted or was executing: `mepc`, `PC`, `MEPC`,
    /// `epc1`, `abort() was called at PC`.
    ProgramCounter,
    /// A return address from a register (`RA`, Xtensa `A0` after removing the window bits):
    /// it points after the call, so a line lookup should use an address before it.
    ReturnAddress,
    /// An entry of a printed backtrace: the printer already moved it onto the call.
    Frame,
    /// A word of a raw stack dump that lies in code: maybe a return address, maybe stale.
    StackWord,
}

/// The block of panic output the scanner is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Block {
    #[default]
    Idle,
    /// After esp-backtrace's `Backtrace:` or its register dump: one frame per line.
    Frames { started: bool, blanks: u8 },
    /// Register dump lines; `xtensa` once a `PS` field showed the architecture.
    Registers { xtensa: bool, blanks: u8 },
    /// After an ESP-IDF `Backtrace: 0x...:0x...` line: continuation lines of pairs.
    IdfBacktrace,
    /// Between `>>>stack>>>` and `<<<stack<<<`; `strays` counts lines that are not rows.
    Esp8266Stack { strays: u8 },
}

/// Blank lines allowed before esp-backtrace's first frame, or inside a register dump.
const MAX_BLANKS: u8 = 2;
/// Consecutive non-row lines after which an ESP8266 stack block whose end got lost is over.
const MAX_STRAYS: u8 = 4;

/// Reads console lines and reports the code addresses in panic output.
#[derive(Debug, Default)]
pub struct PanicScanner {
    block: Block,
}

impl PanicScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The code addresses worth decoding in this console line, in order of appearance.
    pub fn line(&mut self, line: &str) -> Vec<Found> {
        let mut found = Vec::new();
        // Most console lines: no block open, and nothing that opens one or holds a code
        // address. One pass over the bytes and four searches decide it.
        if matches!(self.block, Block::Idle) && !worth_a_look(line) {
            return found;
        }
        let text = payload(line);
        // defmt puts its location after an empty message: `[ERROR]  (esp_backtrace ...)`.
        if is_location_or_empty(text) {
            self.blank();
            return found;
        }
        if text.contains("ELF file SHA256") || text.contains("Rebooting...") {
            self.block = Block::Idle;
            return found;
        }
        if self.in_block(text, &mut found) {
            return found;
        }
        self.block = Block::Idle;
        self.idle(line, text, &mut found);
        found
    }

    fn blank(&mut self) {
        self.block = match self.block {
            Block::Frames {
                started: false,
                blanks,
            } if blanks < MAX_BLANKS => Block::Frames {
                started: false,
                blanks: blanks + 1,
            },
            Block::Registers { xtensa, blanks } if blanks < MAX_BLANKS => Block::Registers {
                xtensa,
                blanks: blanks + 1,
            },
            // The ESP8266 core prints blank lines around `ctx:` inside the stack block.
            stack @ Block::Esp8266Stack { .. } => stack,
            _ => Block::Idle,
        };
    }

    /// A backtrace frame line: its address is reported and the frames go on.
    fn frame(&mut self, text: &str, found: &mut Vec<Found>) -> bool {
        let Some(address) = frame_line(text) else {
            return false;
        };
        push(found, address, Role::Frame);
        self.block = Block::Frames {
            started: true,
            blanks: 0,
        };
        true
    }

    /// Continues the current block with `text`; false when the line is not part of it.
    fn in_block(&mut self, text: &str, found: &mut Vec<Found>) -> bool {
        match self.block {
            Block::Idle => false,
            Block::Frames { .. } => self.frame(text, found) || is_annotation(text),
            Block::Registers { xtensa, .. } => {
                if let Some(line_fields) = fields(text) {
                    self.registers(line_fields, xtensa, found);
                    true
                } else {
                    self.frame(text, found) || is_annotation(text)
                }
            }
            Block::IdfBacktrace => {
                if text.starts_with("0x") && pair(text.as_bytes()).is_some() {
                    idf_pairs(text, found);
                    true
                } else {
                    is_annotation(text)
                }
            }
            Block::Esp8266Stack { strays } => {
                if text.contains("<<<stack<<<") {
                    self.block = Block::Idle;
                } else if let Some(words) = stack_row(text) {
                    for word in words {
                        if is_esp8266_code(word) {
                            push(found, word, Role::StackWord);
                        }
                    }
                    self.block = Block::Esp8266Stack { strays: 0 };
                } else if strays + 1 < MAX_STRAYS {
                    self.block = Block::Esp8266Stack { strays: strays + 1 };
                } else {
                    return false;
                }
                true
            }
        }
    }

    /// A line outside any block: markers that open one, and the self-contained formats.
    fn idle(&mut self, line: &str, text: &str, found: &mut Vec<Found>) {
        if !line.contains("0x") {
            // The few formats that print code addresses without `0x`, and block openers.
            if text.contains(">>>stack>>>") {
                self.block = Block::Esp8266Stack { strays: 0 };
            } else if is_backtrace_header(text) {
                self.block = Block::Frames {
                    started: false,
                    blanks: 0,
                };
            } else if let Some(line_fields) = fields(text) {
                self.registers(line_fields, false, found);
            } else {
                mepc(line, found);
                trap_frame(line, found);
            }
            return;
        }
        if let Some(line_fields) = fields(text) {
            self.registers(line_fields, false, found);
            return;
        }
        if let Some(at) = line.find("Backtrace:") {
            let pairs = line[at + "Backtrace:".len()..].trim_start();
            if pair(pairs.as_bytes()).is_some() {
                idf_pairs(pairs, found);
                self.block = Block::IdfBacktrace;
                return;
            }
        }
        if let Some(at) = line.find("epc1=") {
            // `Exception (2): epc1=0x...` pasted on one line: the fields from epc1 on.
            if let Some(line_fields) = fields(&line[at..]) {
                self.registers(line_fields, false, found);
                return;
            }
        }
        mepc(line, found);
        called_by(line, found);
        abort_at(line, found);
        trap_frame(line, found);
    }

    /// Reports the code registers of a register-dump line and enters or continues the block.
    fn registers(&mut self, line_fields: text::Fields<'_>, xtensa: bool, found: &mut Vec<Found>) {
        let xtensa = xtensa || line_fields.flatten().any(|field| field.name == "PS");
        // A lone `PC: 0x...` is no dump; ESP-IDF prints four fields a line, esp-backtrace two
        // or more, the ESP8266 five.
        let dump = line_fields.valid_count() >= 2;
        for Field { name, value } in line_fields.flatten() {
            let role = match name {
                "MEPC" | "PC" if dump => Role::ProgramCounter,
                "RA" | "RA/x1" if dump => Role::ReturnAddress,
                "A0" if dump && xtensa => match remove_window_increment(value) {
                    Some(address) => {
                        push(found, address, Role::ReturnAddress);
                        continue;
                    }
                    None => continue,
                },
                "epc1" | "epc2" | "epc3" | "depc" => Role::ProgramCounter,
                _ => continue,
            };
            push(found, value, role);
        }
        // One field (`SPIWP:0xee` in a boot log) opens no dump, but continues one
        // (esp-backtrace's `SAR=0000000f`).
        if dump || matches!(self.block, Block::Registers { .. }) {
            self.block = Block::Registers { xtensa, blanks: 0 };
        }
    }
}

fn push(found: &mut Vec<Found>, address: u32, role: Role) {
    if address != 0 {
        found.push(Found { address, role });
    }
}

/// Xtensa's windowed call keeps the window increment in the return address's top two bits.
fn remove_window_increment(a0: u32) -> Option<u32> {
    (a0 >> 30 != 0).then_some((a0 & 0x3fff_ffff) | 0x4000_0000)
}

/// The ESP8266's code: IRAM (with the optional extra 16 KiB) and the 1 MiB flash window.
fn is_esp8266_code(word: u32) -> bool {
    (0x4010_0000..0x4011_0000).contains(&word) || (0x4020_0000..0x4030_0000).contains(&word)
}

/// esp-backtrace's header: `Backtrace:` alone, or with a defmt location after it.
fn is_backtrace_header(text: &str) -> bool {
    text.strip_prefix("Backtrace:")
        .is_some_and(|rest| is_location_or_empty(rest.trim()))
}

/// Nothing, or a defmt location `(esp_backtrace esp-backtrace/src/lib.rs:70)`.
fn is_location_or_empty(rest: &str) -> bool {
    rest.is_empty() || (rest.starts_with('(') && rest.ends_with(')'))
}

/// An esp-backtrace frame line: `0x4200abcd`, maybe followed by a defmt location.
fn frame_line(text: &str) -> Option<u32> {
    let (address, len) = hex_0x(text.as_bytes())?;
    is_location_or_empty(text[len..].trim()).then_some(address)
}

/// Lines that monitors insert after an address they decoded: espflash's `0x42001234 - name`
/// and `    at file:line`, idf_monitor's `0x400d1234: name at file:line` and `(inlined by)`.
fn is_annotation(text: &str) -> bool {
    if text.starts_with("at ") || text.starts_with("(inlined by)") {
        return true;
    }
    let Some((_, len)) = hex_0x(text.as_bytes()) else {
        return false;
    };
    text[len..].starts_with(" - ") || text[len..].starts_with(": ")
}

/// `0xPC:0xSP` at the start of `text`: the PC and the length of the pair.
fn pair(text: &[u8]) -> Option<(u32, usize)> {
    let (pc, pc_len) = hex_0x(text)?;
    if text.get(pc_len) != Some(&b':') {
        return None;
    }
    let (_, sp_len) = hex_0x(&text[pc_len + 1..])?;
    Some((pc, pc_len + 1 + sp_len))
}

/// The PCs of ESP-IDF backtrace pairs, up to the first thing that is not a pair
/// (`|<-CORRUPTED`, `|<-CONTINUES`, a stray `)`).
fn idf_pairs(text: &str, found: &mut Vec<Found>) {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some((pc, len)) = pair(&bytes[at..]) {
        push(found, pc, Role::Frame);
        at += len;
        at += bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    }
}

/// An ESP8266 stack row, `3fffff90:  3fffdad0 00000000 3ffee5f8 40201e5c <`: its words.
fn stack_row(text: &str) -> Option<impl Iterator<Item = u32> + '_> {
    let (address, words) = text.split_once(':')?;
    if address.len() != 8 || !address.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let words = words.trim().trim_end_matches('<').trim_end();
    let valid = words.split_whitespace().count();
    let all_words = words
        .split_whitespace()
        .all(|word| word.len() == 8 && word.bytes().all(|b| b.is_ascii_hexdigit()));
    if !(1..=4).contains(&valid) || !all_words {
        return None;
    }
    Some(
        words
            .split_whitespace()
            .filter_map(|word| u32::from_str_radix(word, 16).ok()),
    )
}

/// `mepc=0x4200abcd` (esp-backtrace, esp-hal) or `mepc=4200abcd` (the same through defmt).
fn mepc(line: &str, found: &mut Vec<Found>) {
    let Some(at) = line.find("mepc=") else {
        return;
    };
    let value = &line.as_bytes()[at + "mepc=".len()..];
    if let Some((address, _)) = hex_0x(value).or_else(|| text::hex(value)) {
        push(found, address, Role::ProgramCounter);
    }
}

/// `Stack overflow detected at 0x... called by 0x...` and esp-hal's stack-guard variant
/// `Detected a write to the stack guard value at 0x..., possibly called by 0x...`.
fn called_by(line: &str, found: &mut Vec<Found>) {
    let Some(by) = line.find("called by 0x") else {
        return;
    };
    if !line.contains("etected ") {
        return;
    }
    if let Some(at) = line[..by].rfind(" at 0x")
        && let Some((pc, _)) = hex_0x(&line.as_bytes()[at + " at ".len()..])
    {
        push(found, pc, Role::ProgramCounter);
    }
    if let Some((ra, _)) = hex_0x(&line.as_bytes()[by + "called by ".len()..]) {
        push(found, ra, Role::ReturnAddress);
    }
}

/// ESP-IDF's `abort() was called at PC 0x42029be5 on core 0`.
fn abort_at(line: &str, found: &mut Vec<Found>) {
    const MARK: &str = "abort() was called at PC ";
    if let Some(at) = line.find(MARK)
        && let Some((pc, _)) = hex_0x(&line.as_bytes()[at + MARK.len()..])
    {
        push(found, pc, Role::ProgramCounter);
    }
}

/// esp-hal's derived `TrapFrame { ra: 1108277650, t0: ... }`: ra, in decimal as `{:?}`
/// prints it (or hex when printed with `0x`).
fn trap_frame(line: &str, found: &mut Vec<Found>) {
    let Some(at) = line.find("TrapFrame {") else {
        return;
    };
    let body = &line[at + "TrapFrame {".len()..];
    let body = body.split('}').next().unwrap_or(body);
    for field in body.split(',') {
        let Some((name, value)) = field.split_once(':') else {
            continue;
        };
        let value = value.trim().as_bytes();
        let role = match name.trim() {
            "pc" | "mepc" => Role::ProgramCounter,
            "ra" => Role::ReturnAddress,
            _ => continue,
        };
        if let Some((address, _)) = hex_0x(value).or_else(|| decimal(value)) {
            push(found, address, role);
        }
    }
}

/// Whether an idle line may matter: it holds `0x` and eight hex digits (every code address
/// the formats print with `0x` has eight: code lives at 0x4000_0000 and up, Xtensa's A0 at
/// 0x8000_0000 and up), or a word that opens a block or prints addresses without `0x`.
fn worth_a_look(line: &str) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static HEX: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("0x"));
    static WORDS: LazyLock<[Finder<'static>; 4]> =
        LazyLock::new(|| ["acktrace", ">>>stack>>>", "mepc", "TrapFrame"].map(Finder::new));
    let bytes = line.as_bytes();
    HEX.find_iter(bytes).any(|at| {
        bytes
            .get(at + 2..at + 10)
            .is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit))
    }) || WORDS.iter().any(|word| word.find(bytes).is_some())
}

#[cfg(test)]
mod tests;
