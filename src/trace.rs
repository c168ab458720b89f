//! Crash output decoded: the code addresses that panics and exception dumps print are found in
//! console lines ([`scan`]), and resolved to function, file and line from the app's ELF
//! ([`symbols`]). The console actor runs a [`Tracer`] on every finished line; what it finds
//! goes out as `trace` lines right after the line that held the addresses.

pub mod scan;
pub mod symbols;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use espflash::target::Chip;
use tokio::sync::oneshot;

use self::scan::{PanicScanner, Role};
pub use self::symbols::{Frame, Symbols};
use crate::flash::FlashImage;

/// Where the symbols come from.
#[derive(Clone, PartialEq, Eq)]
pub enum ElfSource {
    /// `--elf PATH`.
    File(PathBuf),
    /// The ELF that was just flashed.
    Flashed { name: String, data: Arc<Vec<u8>> },
    /// The symbols bundled with espchat's own firmware for this chip.
    Bundled(Chip),
}

impl fmt::Debug for ElfSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a console decodes crashes: with which ELF, and what it should match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoding {
    /// No ELF: addresses stay as the board printed them.
    pub elf: Option<ElfSource>,
    /// The app descriptor of the image last flashed, when that was not the ELF itself.
    pub flashed_desc: Option<Vec<u8>>,
}

impl Decoding {
    /// With `--elf PATH`, or none. A file that cannot be opened is said now, before a
    /// session starts; one that is not an ELF is said on the console once it is read.
    pub fn from_elf(path: Option<PathBuf>) -> Result<Decoding, String> {
        if let Some(path) = &path {
            std::fs::File::open(path)
                .map_err(|error| format!("cannot read the ELF {}: {error}", path.display()))?;
        }
        Ok(Decoding {
            elf: path.map(ElfSource::File),
            flashed_desc: None,
        })
    }

    /// `image` was just written to a `chip`: an ELF (or the bundled firmware) brings its own
    /// symbols; a raw image keeps the given ELF, which is then checked against it.
    pub fn flashed(&mut self, image: &FlashImage, chip: Chip) {
        match image {
            FlashImage::Bin { data, .. } => self.flashed_desc = image_app_desc(data),
            image => {
                if let Some(source) = ElfSource::flashed(image, "the flashed ELF", chip) {
                    self.elf = Some(source);
                }
                self.flashed_desc = None;
            }
        }
    }

    /// The console's tracer, if there is an ELF.
    pub fn start(&self) -> Option<Tracer> {
        let elf = self.elf.clone()?;
        Some(Tracer::start(elf, self.flashed_desc.clone()))
    }
}

impl ElfSource {
    /// The symbols for what was just written to a `chip`: the ELF itself, the bundled
    /// firmware's; a raw `.bin` has none.
    pub fn flashed(image: &FlashImage, name: &str, chip: Chip) -> Option<ElfSource> {
        match image {
            FlashImage::Elf(data) => Some(ElfSource::Flashed {
                name: name.to_owned(),
                data: Arc::new(data.clone()),
            }),
            FlashImage::Bundled => {
                crate::bundled::symbols_for(chip).map(|_| ElfSource::Bundled(chip))
            }
            FlashImage::Bin { .. } => None,
        }
    }

    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            ElfSource::File(path) => path.display().to_string(),
            ElfSource::Flashed { name, .. } => name.clone(),
            ElfSource::Bundled(chip) => format!(
                "the bundled espchat firmware's symbols ({})",
                crate::flash::chip_name(*chip)
            ),
        }
    }

    /// Reads and parses the ELF. Blocking, and some milliseconds per MB of DWARF.
    pub fn load(&self) -> Result<Symbols, String> {
        let data: std::borrow::Cow<[u8]> = match self {
            ElfSource::File(path) => std::fs::read(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?
                .into(),
            ElfSource::Flashed { data, .. } => data.as_slice().into(),
            ElfSource::Bundled(chip) => crate::bundled::symbols_for(*chip)
                .ok_or_else(|| format!("espchat bundles no firmware for the {chip}"))?
                .map_err(|error| format!("the bundled symbols are damaged: {error}"))?
                .into(),
        };
        Symbols::load(&data).map_err(|error| format!("{}: {error}", self.name()))
    }
}

/// What goes under a console line: a decoded address, or a word about decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceLine {
    /// One frame of a decoded address, rendered (see [`render_frame`]) once per address and
    /// shared by every line that prints it again.
    Frame(Arc<str>),
    /// The ELF could not be loaded, or does not match the running app.
    Note(String),
}

impl fmt::Display for TraceLine {
    /// The text after `trace! ` in line mode (docs/contract.md §2).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceLine::Frame(text) => f.write_str(text),
            TraceLine::Note(text) => f.write_str(text),
        }
    }
}

/// `0x42001234 espchat_firmware::chat::serve at src/chat.rs:120`, or with `(inlined by) `
/// before the function for the functions a frame was inlined into. Control characters (an ELF
/// is a file from anywhere) are left out.
pub fn render_frame(address: u32, frame: &Frame, inlined_by: bool) -> String {
    let mut text = format!("{address:#010x} ");
    if inlined_by {
        text.push_str("(inlined by) ");
    }
    text.push_str(frame.function.as_deref().unwrap_or("??"));
    if let Some(file) = &frame.file {
        text.push_str(" at ");
        text.push_str(file);
        if let Some(line) = frame.line {
            text.push_str(&format!(":{line}"));
        }
    }
    text.retain(|c| !c.is_control());
    text
}

/// Decoded addresses remembered, rendered: a reboot loop prints the same panic again and again.
const RENDERED_LIMIT: usize = 4096;

enum State {
    Loading(oneshot::Receiver<Result<(Symbols, Duration), String>>),
    /// Behind a lock only so that the console actor (shared across its awaits) is `Sync`;
    /// nothing else takes it.
    Ready(Box<Mutex<Symbols>>),
    /// Said once; nothing is decoded.
    Failed,
}

/// Decodes crash output line by line for one console.
pub struct Tracer {
    scanner: PanicScanner,
    state: State,
    name: String,
    /// The app descriptor of the image that was flashed, to compare with the ELF's.
    flashed_desc: Option<Vec<u8>>,
    /// How long loading took, once it is done.
    pub load_time: Option<Duration>,
    mismatch_said: bool,
    /// (address printed, address looked up) -> its lines.
    rendered: HashMap<(u32, u32), Arc<[TraceLine]>>,
}

impl Tracer {
    /// Starts loading `source` on a thread of its own; lines can come at once.
    pub fn start(source: ElfSource, flashed_desc: Option<Vec<u8>>) -> Tracer {
        let (done, loaded) = oneshot::channel();
        let name = source.name();
        let spawned = std::thread::Builder::new()
            .name("espchat-symbols".to_owned())
            .spawn(move || {
                let started = Instant::now();
                let result = source.load().map(|symbols| (symbols, started.elapsed()));
                let _ = done.send(result);
            });
        let state = match spawned {
            Ok(_) => State::Loading(loaded),
            Err(_) => State::Failed,
        };
        Tracer {
            scanner: PanicScanner::new(),
            state,
            name,
            flashed_desc,
            load_time: None,
            mismatch_said: false,
            rendered: HashMap::new(),
        }
    }

    /// A tracer over symbols already loaded (tests, benchmarks).
    pub fn ready(symbols: Symbols, name: &str) -> Tracer {
        Tracer {
            scanner: PanicScanner::new(),
            state: State::Ready(Box::new(Mutex::new(symbols))),
            name: name.to_owned(),
            flashed_desc: None,
            load_time: None,
            mismatch_said: false,
            rendered: HashMap::new(),
        }
    }

    /// What goes under this console line. Waits for the ELF only when the line holds
    /// something to decode before it has loaded; otherwise it costs a scan.
    pub async fn line(&mut self, text: &str) -> Vec<TraceLine> {
        let found = self.scanner.line(text);
        let sha = elf_sha_said(text);
        let mut out = Vec::new();
        if let State::Loading(loaded) = &mut self.state {
            let result = if found.is_empty() && sha.is_none() {
                match loaded.try_recv() {
                    Ok(result) => Some(result),
                    Err(oneshot::error::TryRecvError::Empty) => None,
                    Err(oneshot::error::TryRecvError::Closed) => {
                        Some(Err("the loader stopped".to_owned()))
                    }
                }
            } else {
                Some(
                    loaded
                        .await
                        .unwrap_or_else(|_| Err("the loader stopped".to_owned())),
                )
            };
            if let Some(result) = result {
                self.loaded(result, &mut out);
            }
        }
        let State::Ready(symbols) = &mut self.state else {
            return out;
        };
        let symbols = symbols.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(said) = sha
            && !symbols.sha256_hex().starts_with(&said)
            && !std::mem::replace(&mut self.mismatch_said, true)
        {
            out.push(TraceLine::Note(format!(
                "warning: {} does not match the app on the board (its ELF SHA256 is {said}, the file's {}): decoded addresses may name the wrong code",
                self.name,
                &symbols.sha256_hex()[..said.len().min(64)],
            )));
        }
        for found in found {
            // A return address points after its call: the call is the byte before.
            let probe = match found.role {
                Role::ReturnAddress => found.address.saturating_sub(1),
                _ => found.address,
            };
            let lines = self
                .rendered
                .entry((found.address, probe))
                .or_insert_with(|| {
                    symbols
                        .frames(probe)
                        .iter()
                        .enumerate()
                        .map(|(index, frame)| {
                            TraceLine::Frame(render_frame(found.address, frame, index > 0).into())
                        })
                        .collect()
                });
            out.extend(lines.iter().cloned());
        }
        if self.rendered.len() > RENDERED_LIMIT {
            self.rendered.clear();
        }
        out
    }

    fn loaded(&mut self, result: Result<(Symbols, Duration), String>, out: &mut Vec<TraceLine>) {
        match result {
            Ok((symbols, took)) => {
                self.load_time = Some(took);
                tracing::debug!("symbols from {} loaded in {took:?}", self.name);
                if let (Some(flashed), Some(elf)) = (&self.flashed_desc, &symbols.app_desc)
                    && flashed != elf
                {
                    self.mismatch_said = true;
                    out.push(TraceLine::Note(format!(
                        "warning: {} is not the app that was flashed (their app descriptors differ): decoded addresses may name the wrong code",
                        self.name
                    )));
                }
                self.state = State::Ready(Box::new(Mutex::new(symbols)));
            }
            Err(message) => {
                self.state = State::Failed;
                out.push(TraceLine::Note(format!(
                    "crash addresses will not be decoded: {message}"
                )));
            }
        }
    }
}

/// The hex ESP-IDF prints at boot after `ELF file SHA256:` (often the first 16 digits).
fn elf_sha_said(text: &str) -> Option<String> {
    const SAID: &str = "ELF file SHA256:";
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(SAID));
    let at = FINDER.find(text.as_bytes())?;
    let rest = &text[at + SAID.len()..];
    let hex: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() >= 8).then_some(hex)
}

/// The app descriptor (`esp_app_desc_t`, 256 bytes) at the start of an app image's first
/// segment, if it has one.
pub fn image_app_desc(image: &[u8]) -> Option<Vec<u8>> {
    const MAGIC: [u8; 4] = 0xABCD_5432u32.to_le_bytes();
    let app = crate::board::image::inspect_for(image, None).ok()?;
    let first = app.segments.first()?;
    let desc = image.get(first.offset..first.offset + 256)?;
    desc.starts_with(&MAGIC).then(|| desc.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sha_esp_idf_prints_is_read() {
        assert_eq!(
            elf_sha_said("I (412) app_init: ELF file SHA256:  3c2b4f0e9a1d7b55..."),
            Some("3c2b4f0e9a1d7b55".to_owned())
        );
        assert_eq!(
            elf_sha_said("I (29) cpu_start: ELF file SHA256: 0A1B2C3D4E"),
            Some("0a1b2c3d4e".to_owned())
        );
        assert_eq!(elf_sha_said("ELF file SHA256: --"), None);
        assert_eq!(elf_sha_said("I (412) app_init: Project name: chat"), None);
    }

    #[test]
    fn a_frame_line_reads_like_addr2line() {
        let frame = Frame {
            function: Some("espchat_firmware::chat::serve".to_owned()),
            file: Some("src/chat.rs".to_owned()),
            line: Some(120),
            inlined: false,
        };
        assert_eq!(
            render_frame(0x4200_1234, &frame, false),
            "0x42001234 espchat_firmware::chat::serve at src/chat.rs:120"
        );
        let unknown = Frame {
            file: None,
            line: None,
            function: Some("evil\u{1b}[2Jname".to_owned()),
            ..frame
        };
        assert_eq!(
            render_frame(0x4200_1234, &unknown, true),
            "0x42001234 (inlined by) evil[2Jname"
        );
    }
}
