//! An app's ELF, loaded once: which addresses are code, and for a code address the function,
//! file and line, inlined frames included. DWARF through `addr2line`/`gimli`, sections and the
//! symbol table through `object`: the crates the Rust toolchain's own backtraces use.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use gimli::Reader as _;
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};
use sha2::{Digest as _, Sha256};

type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// ELF section flags (`SHF_*`): code is allocated and executable.
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;

/// Lookups remembered; a panic repeats its addresses, a reboot loop repeats the panic.
const CACHE_LIMIT: usize = 4096;

/// One frame of a decoded address: innermost first; all but the last were inlined into the
/// next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The demangled function name, without the hash (`espchat_core::server::Server::line`).
    pub function: Option<String>,
    /// The source file, shortened for reading (see [`short_path`]).
    pub file: Option<String>,
    pub line: Option<u32>,
    /// This frame's code was inlined into the next frame's function.
    pub inlined: bool,
}

/// Why an ELF could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    #[error("not an ELF file we can read: {0}")]
    NotElf(String),
    #[error("its debug information is broken: {0}")]
    Dwarf(String),
}

/// A loaded ELF, ready for lookups.
pub struct Symbols {
    context: addr2line::Context<Reader>,
    /// Address ranges of the allocated, executable sections, sorted.
    code: Vec<Range<u64>>,
    /// Function symbols (start, end, demangled name) sorted by start, for code without DWARF.
    functions: Vec<(u64, u64, String)>,
    /// Directories the units were compiled in, longest first: stripped from shown paths.
    comp_dirs: Vec<String>,
    cache: HashMap<u32, Arc<[Frame]>>,
    /// SHA-256 of the whole file, as ESP-IDF prints it at boot (`ELF file SHA256:`).
    pub sha256: [u8; 32],
    /// The ESP app descriptor (`esp_app_desc_t`, 256 bytes) if the ELF has one with contents.
    pub app_desc: Option<Vec<u8>>,
}

impl Symbols {
    /// Parses `data` (an ELF). Costs some milliseconds per megabyte of DWARF: call it off the
    /// UI's thread.
    pub fn load(data: &[u8]) -> Result<Symbols, SymbolsError> {
        let file = object::File::parse(data).map_err(|e| SymbolsError::NotElf(e.to_string()))?;
        let endian = if file.is_little_endian() {
            gimli::RunTimeEndian::Little
        } else {
            gimli::RunTimeEndian::Big
        };
        let section = |id: gimli::SectionId| -> Result<Reader, object::Error> {
            let bytes: Arc<[u8]> = match file.section_by_name(id.name()) {
                Some(section) => Arc::from(section.uncompressed_data()?.as_ref()),
                None => Arc::from(&[][..]),
            };
            Ok(gimli::EndianArcSlice::new(bytes, endian))
        };
        let dwarf = gimli::Dwarf::load(section).map_err(|e| SymbolsError::Dwarf(e.to_string()))?;
        let comp_dirs = comp_dirs(&dwarf);
        let context = addr2line::Context::from_dwarf(dwarf)
            .map_err(|e| SymbolsError::Dwarf(e.to_string()))?;

        let mut code: Vec<Range<u64>> = file
            .sections()
            .filter(|section| {
                let object::SectionFlags::Elf { sh_flags } = section.flags() else {
                    return false;
                };
                sh_flags & (SHF_ALLOC | SHF_EXECINSTR) == SHF_ALLOC | SHF_EXECINSTR
                    && section.size() > 0
            })
            .map(|section| section.address()..section.address() + section.size())
            .collect();
        code.sort_by_key(|range| range.start);

        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|symbol| symbol.kind() == object::SymbolKind::Text && symbol.size() > 0)
            .filter_map(|symbol| {
                let name = symbol.name().ok()?;
                let name = elide_generics(&addr2line::demangle_auto(Cow::Borrowed(name), None));
                Some((symbol.address(), symbol.address() + symbol.size(), name))
            })
            .collect();
        functions.sort_by_key(|&(start, _, _)| start);

        let app_desc = file
            .section_by_name(".flash.appdesc")
            .or_else(|| file.section_by_name(".rodata_desc"))
            .and_then(|section| section.data().ok())
            .filter(|data| data.len() >= 256)
            .map(|data| data[..256].to_vec());

        Ok(Symbols {
            context,
            code,
            functions,
            comp_dirs,
            cache: HashMap::new(),
            sha256: Sha256::digest(data).into(),
            app_desc,
        })
    }

    /// Whether `address` lies in one of the ELF's code sections.
    pub fn is_code(&self, address: u32) -> bool {
        let address = u64::from(address);
        let after = self.code.partition_point(|range| range.start <= address);
        after > 0 && self.code[after - 1].contains(&address)
    }

    /// The frames at `address`, innermost first; empty when it is not code.
    pub fn frames(&mut self, address: u32) -> Arc<[Frame]> {
        if let Some(frames) = self.cache.get(&address) {
            return frames.clone();
        }
        let frames: Arc<[Frame]> = if self.is_code(address) {
            self.decode(address).into()
        } else {
            Arc::from([])
        };
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(address, frames.clone());
        frames
    }

    fn decode(&self, address: u32) -> Vec<Frame> {
        let probe = u64::from(address);
        let mut frames = Vec::new();
        if let Ok(mut iter) = self.context.find_frames(probe).skip_all_loads() {
            while let Ok(Some(frame)) = iter.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|name| name.demangle().ok())
                    .map(|name| elide_generics(&name));
                let (file, line) = match &frame.location {
                    Some(location) => (location.file.map(|f| self.short_path(f)), location.line),
                    None => (None, None),
                };
                frames.push(Frame {
                    function,
                    file,
                    line,
                    inlined: true,
                });
            }
        }
        // Without DWARF for it, the symbol table still names the function; with line tables
        // only, DWARF has its short name (`{async_fn#0}`), the symbol table its path.
        let symbol = || self.symbol_at(probe).map(str::to_owned);
        match frames.last_mut() {
            Some(last) => {
                last.inlined = false;
                if !last.function.as_deref().is_some_and(is_path)
                    && let Some(name) = symbol()
                {
                    last.function = Some(name);
                }
            }
            None => {
                if let Some(function) = symbol() {
                    frames.push(Frame {
                        function: Some(function),
                        file: None,
                        line: None,
                        inlined: false,
                    });
                }
            }
        }
        frames
    }

    /// The address range of the function symbol with this (demangled) name, the largest if
    /// several have it (generic instances).
    pub fn function(&self, name: &str) -> Option<Range<u64>> {
        self.functions
            .iter()
            .filter(|(_, _, function)| function == name)
            .max_by_key(|(start, end, _)| end - start)
            .map(|&(start, end, _)| start..end)
    }

    fn symbol_at(&self, address: u64) -> Option<&str> {
        let after = self
            .functions
            .partition_point(|&(start, _, _)| start <= address);
        let (_, end, name) = self.functions.get(after.checked_sub(1)?)?;
        (address < *end).then_some(name.as_str())
    }

    /// A source path as a person wants to read it: relative to the directory it was built in,
    /// the Rust library and crates.io crates without the machine's prefixes.
    fn short_path(&self, path: &str) -> String {
        short_path(path, &self.comp_dirs)
    }

    /// The SHA-256 of the ELF as hex, as ESP-IDF prints it.
    pub fn sha256_hex(&self) -> String {
        self.sha256
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Generic arguments longer than this are shown as `<…>`.
const GENERICS_SHOWN: usize = 24;

/// `lock<core::option::Option<…>, embassy_sync::…>` -> `lock<…>`: a name's generic arguments,
/// when long, hide it. Short ones (`Cell<T>`) and a trait impl's `<A as B>::f` stay.
pub fn elide_generics(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let after_name = out
            .chars()
            .last()
            .is_some_and(|last| last.is_alphanumeric() || last == '_' || last == '}');
        if c != '<' || !after_name {
            out.push(c);
            continue;
        }
        // Find the matching `>` (skipping `->`, which is not a bracket).
        let mut depth = 1;
        let mut end = None;
        let mut previous = c;
        for (index, inner) in name[at + 1..].char_indices() {
            match inner {
                '<' => depth += 1,
                '>' if previous != '-' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(at + 1 + index);
                        break;
                    }
                }
                _ => {}
            }
            previous = inner;
        }
        match end {
            Some(end) if end - at - 1 > GENERICS_SHOWN => {
                out.push_str("<…>");
                while chars.peek().is_some_and(|&(index, _)| index <= end) {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `a::b` or `a::b<T>`, not `poll<a::b>`: a name with its path.
fn is_path(name: &str) -> bool {
    name.split('<')
        .next()
        .is_some_and(|head| head.contains("::"))
}

/// The compilation directories of all units, longest first.
fn comp_dirs(dwarf: &gimli::Dwarf<Reader>) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        if let Some(dir) = &unit.comp_dir
            && let Ok(dir) = dir.to_string_lossy()
        {
            let dir = dir.trim_end_matches('/').to_owned();
            if !dir.is_empty() && dir != "/" && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.sort_by_key(|dir| std::cmp::Reverse(dir.len()));
    dirs
}

/// `/rustc/HASH/library/core/src/cell.rs` -> `library/core/src/cell.rs`;
/// `~/.cargo/registry/src/index.crates.io-HASH/embassy-sync-0.8.0/src/pipe.rs` ->
/// `embassy-sync-0.8.0/src/pipe.rs`; a path under a compilation directory -> relative to it.
pub fn short_path(path: &str, comp_dirs: &[String]) -> String {
    if let Some(rest) = path.strip_prefix("/rustc/")
        && let Some((_, library)) = rest.split_once('/')
    {
        return library.to_owned();
    }
    for marker in ["/.cargo/registry/src/", "/.cargo/git/checkouts/"] {
        if let Some((_, rest)) = path.split_once(marker)
            && let Some((_, krate)) = rest.split_once('/')
        {
            return krate.to_owned();
        }
    }
    for dir in comp_dirs {
        if let Some(rest) = path.strip_prefix(dir.as_str())
            && let Some(rest) = rest.strip_prefix('/')
        {
            return rest.to_owned();
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_the_machine_specific_prefixes() {
        let dirs = vec!["/home/ana/lab/firmware".to_owned()];
        assert_eq!(
            short_path("/rustc/5980761/library/core/src/cell.rs", &dirs),
            "library/core/src/cell.rs"
        );
        assert_eq!(
            short_path(
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/embassy-sync-0.8.0/src/pipe.rs",
                &dirs
            ),
            "embassy-sync-0.8.0/src/pipe.rs"
        );
        assert_eq!(
            short_path("/home/ana/lab/firmware/src/chat.rs", &dirs),
            "src/chat.rs"
        );
        assert_eq!(
            short_path("/home/ana/lab/firmwareX/src/chat.rs", &dirs),
            "/home/ana/lab/firmwareX/src/chat.rs"
        );
        assert_eq!(short_path("src/main.rs", &dirs), "src/main.rs");
    }

    #[test]
    fn long_generic_arguments_are_elided() {
        assert_eq!(
            elide_generics(
                "lock<core::option::Option<espchat_core::console::BoardCommand>, embassy_sync::X>"
            ),
            "lock<…>"
        );
        assert_eq!(
            elide_generics("embassy_executor::raw::TaskStorage<F>::poll"),
            "embassy_executor::raw::TaskStorage<F>::poll"
        );
        assert_eq!(
            elide_generics(
                "<espchat_firmware::chat::Slot as espchat_records::switchboard::Outbox>::room"
            ),
            "<espchat_firmware::chat::Slot as espchat_records::switchboard::Outbox>::room"
        );
        assert_eq!(
            elide_generics("{closure#0}<core::result::Result<(), core::fmt::Error>, F> at"),
            "{closure#0}<…> at"
        );
        assert_eq!(
            elide_generics("call<dyn core::ops::function::Fn() -> u32, usize, usize>"),
            "call<…>"
        );
        assert_eq!(
            elide_generics("unbalanced<a::b::c::d::e::f::g::h::i"),
            "unbalanced<a::b::c::d::e::f::g::h::i"
        );
    }

    #[test]
    fn what_is_not_an_elf_is_said() {
        let error = Symbols::load(b"not an elf at all").err().expect("an error");
        assert!(error.to_string().contains("not an ELF"), "{error}");
    }
}
