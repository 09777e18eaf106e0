//! Completion scripts and manual pages come from the command-line definitions: every flag
//! `--help` shows is in the manual page, and bash accepts the completion script.

use std::collections::BTreeSet;
use std::process::Command;

use imagecast_tests::{Scratch, bin, run};

use crate::LIMIT;

/// The `--long` flags a text mentions.
fn flags(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// The manual page of `binary COMMAND` holds every flag of `binary COMMAND --help`.
fn man_agrees_with_help(binary: &str, commands: &[&str]) {
    let work = Scratch::new();
    let out = run(
        Command::new(bin(binary))
            .args(["manpages", "--out"])
            .arg(work.path()),
        LIMIT,
    )
    .expect("manpages runs");
    out.assert_code(0);
    for command in commands {
        let page = work.join(&format!("{binary}-{command}.1"));
        let man =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(
            man.starts_with(".ie") || man.contains(".TH"),
            "{}",
            &man[..man.len().min(200)]
        );
        let help =
            run(Command::new(bin(binary)).args([command, "--help"]), LIMIT).expect("help runs");
        help.assert_code(0);
        // roff escapes '-' as '\-' and sets bold and italics with '\fB', '\fI', '\fR'.
        let text = man
            .replace("\\-", "-")
            .replace("\\fB", " ")
            .replace("\\fI", " ")
            .replace("\\fR", " ");
        let man_flags = flags(&text);
        let missing: Vec<_> = flags(&help.stdout)
            .into_iter()
            .filter(|f| !man_flags.contains(f))
            .collect();
        assert!(
            missing.is_empty(),
            "{binary} {command}: {missing:?} not in the manual page"
        );
    }
    assert!(work.join(&format!("{binary}.1")).exists());
}

#[test]
fn manual_pages_agree_with_help() {
    man_agrees_with_help("imagecast", &["send", "receive", "panel", "groups"]);
    man_agrees_with_help("imagecast-server", &["run", "init", "journal", "check"]);
}

#[test]
fn bash_takes_the_completion_scripts() {
    for binary in ["imagecast", "imagecast-server"] {
        let script = run(
            Command::new(bin(binary)).args(["completions", "bash"]),
            LIMIT,
        )
        .expect("completions runs");
        script.assert_code(0);
        let work = Scratch::new();
        let file = work.page("completion.bash", &script.stdout);
        // Completing `BINARY se` offers `send` (or `serve`-like commands on the server).
        let probe = format!(
            "source {}; COMP_WORDS=({binary} ''); COMP_CWORD=1; COMP_LINE='{binary} '; \
             COMP_POINT=${{#COMP_LINE}}; complete -p {binary} >/dev/null && \
             _{func} {binary} '' {binary}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            func = binary.replace('-', "__")
        );
        let out = run(Command::new("bash").args(["-c", &probe]), LIMIT).expect("bash runs");
        out.assert_code(0);
        let offered: Vec<&str> = out.stdout.lines().collect();
        let wanted = if binary == "imagecast" {
            ["send", "receive", "completions"]
        } else {
            ["run", "journal", "completions"]
        };
        for w in wanted {
            assert!(
                offered.contains(&w),
                "{binary}: {w} not offered: {offered:?}"
            );
        }
    }
    for shell in ["zsh", "fish"] {
        let out = run(
            Command::new(bin("imagecast")).args(["completions", shell]),
            LIMIT,
        )
        .expect("completions runs");
        out.assert_code(0);
        assert!(out.stdout.contains("imagecast"), "{shell}");
    }
    let out = run(
        Command::new(bin("imagecast")).args(["completions", "tcsh"]),
        LIMIT,
    )
    .expect("completions runs");
    out.assert_code(2);
    assert!(out.stderr.contains("possible values"), "{}", out.stderr);
}
