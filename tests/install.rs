//! Installing like the CLIs people trust: shell completions and man pages from the clap
//! definitions.
// Ptys, Unix signals and the virtual board's pty: Unix only.
#![cfg(unix)]

mod support;

use std::process::Command;

fn espchat_stdout(args: &[&str]) -> String {
    let output = support::espchat().args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// What bash completes for the words so far, with the script espchat prints loaded.
fn bash_completes(words: &str) -> Vec<String> {
    let script = espchat_stdout(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("espchat.bash");
    std::fs::write(&path, script).unwrap();
    let line = format!("espchat {words}");
    let program = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
         COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _espchat espchat \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_commands_and_their_flags() {
    let commands = bash_completes("fla");
    assert!(
        commands.contains(&"flash".to_owned())
            && commands.contains(&"flash-and-connect".to_owned()),
        "{commands:?}"
    );
    let flags = bash_completes("flash --partition");
    assert_eq!(flags, ["--partition-table"]);
    let shells = bash_completes("completions p");
    assert_eq!(shells, ["powershell"]);
}

#[test]
fn every_shell_gets_a_script_that_knows_the_commands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = espchat_stdout(&["completions", shell]);
        assert!(script.contains("flash-and-connect"), "{shell}: {script}");
        assert!(script.contains("wifi-ssid"), "{shell}");
    }
}

#[test]
fn the_man_page_is_roff_made_from_the_help() {
    let page = espchat_stdout(&["man"]);
    assert!(page.contains(".TH espchat 1"), "{page}");
    assert!(page.contains("flash\\-and\\-connect"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = espchat_stdout(&["man", dir.path().to_str().unwrap()]);
    assert!(out.contains("espchat-flash.1"), "{out}");
    let flash = std::fs::read_to_string(dir.path().join("espchat-flash.1")).unwrap();
    assert!(flash.contains(".TH espchat-flash 1"), "{flash}");
    assert!(flash.contains("\\-\\-partition\\-table"), "{flash}");
}
