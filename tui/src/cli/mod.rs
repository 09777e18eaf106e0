//! The `imagecast` command line: the clap definitions and one function per command. The
//! binary only parses the arguments and calls [`main`].
//!
//! # Layout
//! - this module: [`Cli`], [`Command`] and the one `match` that routes a command to its
//!   function; errors printed as one sentence, logging, the runtime;
//! - [`options`]: the connection options every command shares, resolved into settings;
//! - [`client`]: `groups`, `destinations`, `send`, `status`, `receive`, `register`,
//!   `withdraw` (the PC client);
//! - [`panel`]: `panel` and `demo` (the demo only with the `demo` feature);
//! - [`marksheet`]: `marksheet print` and `marksheet decode`;
//! - [`docs`]: `completions` and `manpages`;
//! - [`config_show`]: `config show`.
//! - [`relay`]: `who`, `relay send|listen|pipe`, `logout` (real-time sessions, seed 004).

pub mod client;
pub mod config_show;
pub mod docs;
pub mod fax;
pub mod marksheet;
pub mod options;
pub mod panel;
pub mod phonebook;
pub mod relay;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::marksheet::MarksheetCmd;
use self::options::Options;
use self::panel::{DemoArgs, PanelCmd};

/// imagecast terminal: send scanned images to destination groups, receive them, register.
#[derive(Parser)]
#[command(name = "imagecast", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    options: Options,
    #[command(subcommand)]
    command: Command,
}

/// Every command, with its own flags.
#[derive(Subcommand)]
pub enum Command {
    /// List the destination groups, numbered from 1 (FIG. 9).
    Groups {
        /// Leave out "all distribution destinations" (FIG. 12).
        #[arg(long)]
        for_registration: bool,
        /// Only the groups this terminal is a member of (what `withdraw` can take).
        #[arg(long)]
        member: bool,
        /// One JSON array of {number, name, file, members}.
        #[arg(long)]
        json: bool,
    },
    /// List every destination as "domain;name" (FIG. 10).
    Destinations {
        /// One JSON array of {domain, name}.
        #[arg(long)]
        json: bool,
    },
    /// Send files (the pages of one image) to groups and destinations.
    Send(client::SendCmd),
    /// Stay connected and store every delivered image in a folder.
    Receive {
        /// The folder the received pages are written to (created, owner-only, if missing).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Exit after this many deliveries.
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per delivery, a line each.
        #[arg(long)]
        json: bool,
    },
    /// Show where each destination of a distribution stands, by the ID `send` printed (the
    /// sending terminal, or an administrator logged in).
    Status {
        /// The distribution ID.
        dist: imagecast_shared::DistributionId,
        /// One JSON array of {domain, name, state, final, reason}.
        #[arg(long)]
        json: bool,
    },
    /// Register this terminal with a group.
    Register {
        /// The group: its name or its number in `groups --for-registration`.
        #[arg(long)]
        group: String,
    },
    /// Withdraw this terminal from a group.
    Withdraw {
        /// The group: its name or its number in `groups --for-registration`.
        #[arg(long)]
        group: String,
    },
    /// The MFP control panel (FIG. 6-12), connected as this device.
    Panel(PanelCmd),
    /// One command, no set-up: the seed's network with an embedded server, simulated
    /// terminals, and this panel as MFP 120.
    #[cfg_attr(not(feature = "demo"), command(hide = true))]
    Demo(DemoArgs),
    /// Mark sheets (FIG. 20): print one, or read the image ID from a scan.
    #[command(subcommand)]
    Marksheet(MarksheetCmd),
    /// The terminals online now: DOMAIN  NAME  USER  in-session|idle.
    Who {
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Real-time sessions with another terminal through the server (seed 004).
    #[command(subcommand)]
    Relay(relay::RelayCmd),
    /// Network fax through the supervisor's fax gateways (seeds 002 and 003).
    #[command(subcommand)]
    Fax(fax::FaxCmd),
    /// The fax phone book this user sees here: NAME  NUMBER  shared|for USERS/TERMINALS.
    Phonebook {
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Log this device out (seed 004, process (22)): its sessions end and the server closes
    /// all of its connections.
    Logout,
    /// The settings in effect and where each came from.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Print a shell completion script (bash: `source <(imagecast completions bash)`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (imagecast.1 and one per command) into a folder.
    Manpages {
        /// The folder (created if missing), e.g. /usr/local/share/man/man1.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

/// `config …`.
#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Print each setting, its value (secrets as "(set)") and its source: flag, environment
    /// variable, config file and line, or default.
    Show,
}

/// The exit codes, so that scripts can tell the cases apart (also in `--help` and the README).
pub mod exit {
    /// An error: the server unreachable or refusing, a file unreadable, a setting missing.
    pub const ERROR: u8 = 1;
    /// The command line is wrong (clap's own code for usage errors).
    pub const USAGE: u8 = 2;
    /// `send --wait` or `status`: a destination failed.
    pub const FAILED: u8 = 3;
    /// `send --wait` or `status`: a destination is not done yet (the timeout ran out).
    pub const NOT_DONE: u8 = 4;
}

/// The exit codes as `--help` shows them.
const EXIT_CODES_HELP: &str = "Exit codes: 0 done; 1 error (one sentence on stderr); 2 usage \
(the command line is wrong), or for relay send|pipe a session refused or broken; 3 a destination failed (send --wait, status); 4 a destination is \
not done yet (send --wait's timeout ran out, status).";

/// A mistake in the command line that clap cannot see (exit code 2, like clap's own).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs the command; an error is printed as one sentence and exits with 1 (2 for a usage
/// error).
pub fn main(cli: Cli) -> ExitCode {
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imagecast: {}", error_text(&e));
            if e.is::<UsageError>() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::from(exit::ERROR)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Cli { options, command } = cli;
    match command {
        Command::Groups {
            for_registration,
            member,
            json,
        } => client::groups(&options, for_registration, member, format(json)),
        Command::Destinations { json } => client::destinations(&options, format(json)),
        Command::Send(cmd) => client::send(&options, cmd),
        Command::Receive { out, count, json } => {
            client::receive(&options, &out, count, format(json))
        }
        Command::Status { dist, json } => client::status(&options, dist, format(json)),
        Command::Register { group } => client::register(&options, &group),
        Command::Withdraw { group } => client::withdraw(&options, &group),
        Command::Panel(cmd) => panel::panel(&options, &cmd),
        Command::Demo(args) => panel::demo(&args),
        Command::Marksheet(cmd) => marksheet::run(&cmd),
        Command::Who { json } => relay::who(&options, json),
        Command::Relay(cmd) => relay::run(&options, cmd),
        Command::Fax(cmd) => fax::run(&options, cmd),
        Command::Phonebook { json } => phonebook::run(&options, json),
        Command::Logout => relay::logout(&options),
        Command::Config(ConfigCmd::Show) => config_show::show(&options),
        Command::Completions { shell } => docs::completions(shell),
        Command::Manpages { out } => docs::manpages(&out),
    }
}

/// The output format a `--json` flag chooses.
fn format(json: bool) -> crate::pc::Format {
    if json {
        crate::pc::Format::Json
    } else {
        crate::pc::Format::Human
    }
}

/// The most characters of an error printed when it carries text from the server.
const PEER_ERROR_CHARS: usize = 1000;

/// An error as one printable sentence. One that came from the server or from a delivery (a
/// refusal, an error reply, a broken stream) may carry a peer's text: its control characters
/// and bidirectional overrides are escaped and its length bounded. Local errors (a config
/// file's parse error, with its own line breaks) print as they are.
fn error_text(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let from_peer = e.chain().any(|c| {
        c.is::<imagecast_shared::client::ClientError>()
            || c.is::<imagecast_shared::client::InboxError>()
    });
    if from_peer {
        imagecast_shared::text::escape_bounded(&text, PEER_ERROR_CHARS).into_owned()
    } else {
        text
    }
}

/// Logs to stderr, or to a file while the panel owns the terminal.
fn init_logging(file: Option<&Path>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMAGECAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file.and_then(|p| {
        std::fs::create_dir_all(p.parent()?).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    }) {
        Some(f) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
}

/// The runtime every command runs on: two workers are plenty for one terminal.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagecast_shared::client::ClientError;
    use imagecast_shared::msg::{ErrorCode, ErrorInfo};

    #[test]
    fn an_error_from_the_server_prints_as_one_escaped_bounded_line() {
        let forged = format!(
            "no such group\nimagecast: forged line\u{1b}]0;pwned\u{7}\u{202e}{}",
            "A".repeat(100_000)
        );
        let e = anyhow::Error::from(ClientError::Server(ErrorInfo {
            code: ErrorCode::UnknownGroup,
            field: None,
            message: forged,
        }))
        .context("cannot send");
        let text = error_text(&e);
        assert!(
            !text.chars().any(imagecast_shared::text::is_unsafe),
            "{text:.200}"
        );
        assert!(
            text.starts_with("cannot send: no such group\\nimagecast: forged line\\u{1b}]0;pwned"),
            "{text:.200}"
        );
        assert!(
            text.chars().count() <= PEER_ERROR_CHARS + 100,
            "{}",
            text.len()
        );
        // A local error keeps its own line breaks.
        let local = anyhow::anyhow!("config.toml:\n1 | sever = 1\n  | ^ unknown field");
        assert_eq!(
            error_text(&local),
            "config.toml:\n1 | sever = 1\n  | ^ unknown field"
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
