//! `espchat completions SHELL` and `espchat man [DIR]`: made from the clap definitions, so they
//! say what `--help` says.

use std::path::Path;

use anyhow::Context as _;

/// Writes the completion script for `shell` to stdout.
pub fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "espchat", &mut script);
    super::print(format_args!("{}", String::from_utf8_lossy(&script)))
}

/// Prints espchat(1), or writes it and a page per command (espchat-flash(1), ...) into `dir`.
pub fn man(command: clap::Command, dir: Option<&Path>) -> anyhow::Result<()> {
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page)?;
        return super::print(format_args!("{}", String::from_utf8_lossy(&page)));
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("espchat") && name.ends_with(".1"))
        .collect();
    pages.sort();
    super::print(format_args!("{}: {}\n", dir.display(), pages.join(" ")))
}
