//! `completions SHELL` and `manpages --out DIR`: shell completion and manual pages generated
//! from the command-line definitions themselves (clap's own generators), so that they never
//! disagree with `--help`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// `completions SHELL`: the completion script on standard output (a closed pipe, as with
/// `| head`, ends it quietly).
pub fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "imagecast", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the completion script")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `manpages --out DIR`: `imagecast.1` and one page per command (`imagecast-send.1`, …).
pub fn manpages(out: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    clap_mangen::generate_to(Cli::command(), out)
        .with_context(|| format!("cannot write the manual pages into {}", out.display()))?;
    eprintln!("manual pages written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}
