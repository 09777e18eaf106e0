//! `imagecast`: the terminal side of imagecast: the MFP control-panel emulator, the demo, mark
//! sheets, and the PC client's subcommands. The commands live in [`imagecast::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    imagecast::cli::main(imagecast::cli::Cli::parse())
}
