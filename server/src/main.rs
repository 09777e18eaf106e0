//! `imagecast-server`: the command line of the image server. The commands live in the
//! library ([`imagecast_server::cli`]); this parses, sets up logging and runs one.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use imagecast_server::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Colour only for a person at a terminal: a log sent to a file or a pipe stays plain text,
    // and NO_COLOR (set and not empty) turns it off everywhere.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IMAGECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imagecast-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
