//! The `imagecast-server` command line: the arguments ([`Cli`]), and one function per command
//! behind one `match` ([`Cli::run`]). `main.rs` parses, sets up logging and calls [`Cli::run`].
//!
//! - `datadir.rs`: `init`, `check`, `fingerprint`, `tls create|install`.
//! - `accounts.rs`: `device …`, `user …`, `logins`.
//! - `journal.rs`: `journal`.
//! - `relay.rs`: `relay sessions`.
//! - `serve.rs`: `run`.
//! - `docs.rs`: `completions`, `manpages`.
//! - `fax.rs`: `fax …`, `grouping …`, `phonebook …`, `competence …`, `user home` (the
//!   network-fax supervisor's tables).
//!
//! What a command prints on standard output is its result (a token, a fingerprint, a listing),
//! one item a line; what it says about it goes to standard error.

mod accounts;
mod datadir;
mod docs;
mod fax;
mod journal;
mod relay;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::state::ServerConfig;
use crate::store::datadir::DataDir;

/// The imagecast image server: destination groups, registration, durable distribution.
#[derive(Parser)]
#[command(name = "imagecast-server", version, about)]
pub struct Cli {
    /// The data directory.
    #[arg(long, global = true, env = "IMAGECAST_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data directory (with --demo: the seed's offices, groups, devices and users).
    Init {
        /// Add the seed's demo network (FIG. 2, FIG. 14-17) and print its tokens and users.
        #[arg(long)]
        demo: bool,
        /// Use this PEM certificate instead of making a self-signed one (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Serve terminals.
    Run {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:7410")]
        listen: String,
        /// Heartbeat interval in milliseconds; a terminal silent for two is dropped.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
        /// Seconds a new connection has to send its hello.
        #[arg(long, default_value_t = 10)]
        handshake_timeout: u64,
        /// Most connections served at once.
        #[arg(long, default_value_t = 20_000)]
        max_connections: usize,
        /// Serve plain TCP instead of TLS (only on a network you trust).
        #[arg(long)]
        plain: bool,
        /// Seconds a relay connection demand waits for the target's answer.
        #[arg(long, default_value_t = 30)]
        relay_demand_timeout_s: u64,
    },
    /// Print the fingerprint of the server's TLS certificate, to hand to terminals.
    Fingerprint,
    /// Manage the server's TLS identity.
    #[command(subcommand)]
    Tls(TlsCmd),
    /// Check every group file; print each problem as FILE:LINE: reason.
    Check,
    /// Manage devices (the terminals allowed to connect).
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Print the recent failed logins (time, device, user, peer).
    Logins {
        /// Only the last N.
        #[arg(long, default_value_t = 50)]
        last: u32,
        /// One JSON array of {at, device, user, peer}.
        #[arg(long)]
        json: bool,
    },
    /// Print the communication records: one line per destination result.
    Journal {
        /// Only the last N lines.
        #[arg(long, default_value_t = 100)]
        last: usize,
        /// One JSON array of {at, dist, sender, destination, pages, bytes, result, reason}.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash: `source <(imagecast-server completions bash)`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (imagecast-server.1 and one per command) into a folder.
    Manpages {
        /// The folder (created if missing), e.g. /usr/local/share/man/man1.
        #[arg(long)]
        out: PathBuf,
    },
    /// The network-fax supervisor: priority, client routes, delivery, gateway settings,
    /// records, policy, export and import.
    #[command(subcommand)]
    Fax(fax::FaxCmd),
    /// Groupings of devices, users and gateways: only members of one grouping communicate.
    #[command(subcommand)]
    Grouping(fax::GroupingCmd),
    /// The fax phone book: shared entries and entries for some users or terminals.
    #[command(subcommand)]
    Phonebook(fax::PhonebookCmd),
    /// Competences: who may send faxes and change gateway or supervisor settings.
    #[command(subcommand)]
    Competence(fax::CompetenceCmd),
    /// Real-time sessions between terminals (seed 004).
    #[command(subcommand)]
    Relay(RelayCmd),
}

#[derive(Subcommand)]
enum RelayCmd {
    /// Open and recent sessions, and the connection demands that opened none: peers, users,
    /// bytes each way, how each ended or why it was refused.
    Sessions {
        /// Only the last N sessions and demands.
        #[arg(long, default_value_t = 50)]
        last: usize,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    /// Make a new key and self-signed certificate (terminals that pinned the old one refuse
    /// it until told the new fingerprint).
    Create {
        /// A host name or address to name in the certificate (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Install an administrator's PEM certificate and key.
    Install {
        /// The certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// The private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Add a device; prints its new token alone on stdout.
    Add {
        /// The device's network domain name (or IP address).
        domain: String,
        /// Its destination name.
        #[arg(long)]
        name: String,
        /// Its kind: mfp, pc, printer or fax-gateway.
        #[arg(long, default_value = "pc")]
        kind: String,
    },
    /// List the devices.
    List {
        /// One JSON array of {domain, kind, name, revoked}.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device's token: it can no longer connect; its live connections are dropped.
    Revoke {
        /// The device's domain.
        domain: String,
    },
    /// Issue a new token for a device (the old one stops working; a revoked device is back).
    Token {
        /// The device's domain.
        domain: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; the password is read from standard input.
    Add {
        /// The user ID.
        user: String,
        /// operator or admin.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (the only way: it never shows in `ps`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List {
        /// One JSON array of {user, role}.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's password (read from standard input); the user's sessions end.
    Passwd {
        /// The user ID.
        user: String,
        /// Read the new password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user; the user's sessions end.
    Remove {
        /// The user ID.
        user: String,
    },
    /// Set the terminals that get a user's faxes (with none given: print them).
    Home {
        /// The user ID.
        user: String,
        /// The terminals' domains.
        #[arg(conflicts_with = "clear")]
        devices: Vec<String>,
        /// The user gets faxes at no terminal.
        #[arg(long)]
        clear: bool,
        /// Print them as one JSON array.
        #[arg(long, conflicts_with_all = ["devices", "clear"])]
        json: bool,
    },
}

impl Cli {
    /// The data directory given with `--data-dir` or `IMAGECAST_DATA_DIR`, for the commands
    /// that need one (commands to come, such as writing shell completions, need none).
    pub fn data_dir(&self) -> anyhow::Result<DataDir> {
        self.data_dir
            .as_deref()
            .map(DataDir::new)
            .context("this command needs --data-dir or IMAGECAST_DATA_DIR")
    }

    /// Runs the command; the exit code is the command's verdict (`check` fails on a broken
    /// group file), an error is for `main` to print.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let data = self.data_dir();
        match self.command {
            Command::Init {
                demo,
                tls_cert,
                tls_key,
            } => datadir::init(&data?, demo, tls_cert.zip(tls_key)),
            Command::Run {
                listen,
                heartbeat_ms,
                handshake_timeout,
                max_connections,
                plain,
                relay_demand_timeout_s,
            } => {
                let config = ServerConfig {
                    heartbeat: Duration::from_millis(heartbeat_ms.max(100)),
                    handshake_timeout: Duration::from_secs(handshake_timeout.max(1)),
                    max_connections: max_connections.max(1),
                    relay_demand_timeout: Duration::from_secs(relay_demand_timeout_s.max(1)),
                    ..ServerConfig::default()
                };
                serve::run(data?, &listen, config, plain)
            }
            Command::Fingerprint => datadir::fingerprint(&data?),
            Command::Tls(TlsCmd::Create { names }) => datadir::tls_create(&data?, &names),
            Command::Tls(TlsCmd::Install { cert, key }) => {
                datadir::tls_install(&data?, &cert, &key)
            }
            Command::Check => datadir::check(&data?),
            Command::Device(DeviceCmd::Add { domain, name, kind }) => {
                accounts::device_add(&data?, &domain, &name, &kind)
            }
            Command::Device(DeviceCmd::List { json }) => accounts::device_list(&data?, json),
            Command::Device(DeviceCmd::Revoke { domain }) => {
                accounts::device_revoke(&data?, &domain)
            }
            Command::Device(DeviceCmd::Token { domain }) => accounts::device_token(&data?, &domain),
            Command::User(UserCmd::Add {
                user,
                role,
                password_stdin,
            }) => accounts::user_add(&data?, &user, &role, password_stdin),
            Command::User(UserCmd::List { json }) => accounts::user_list(&data?, json),
            Command::User(UserCmd::Passwd {
                user,
                password_stdin,
            }) => accounts::user_passwd(&data?, &user, password_stdin),
            Command::User(UserCmd::Remove { user }) => accounts::user_remove(&data?, &user),
            Command::Logins { last, json } => accounts::logins(&data?, last, json),
            Command::Journal { last, json } => journal::print(&data?, last, json),
            Command::Completions { shell } => docs::completions(shell),
            Command::Manpages { out } => docs::manpages(&out),
            Command::User(UserCmd::Home {
                user,
                devices,
                clear,
                json,
            }) => fax::user_home(&data?, &user, &devices, clear, json),
            Command::Fax(cmd) => fax::run(&data?, cmd),
            Command::Grouping(cmd) => fax::grouping(&data?, cmd),
            Command::Phonebook(cmd) => fax::phonebook(&data?, cmd),
            Command::Competence(cmd) => fax::competence(&data?, cmd),
            Command::Relay(RelayCmd::Sessions { last, json }) => {
                relay::sessions(&data?, last, json)
            }
        }
    }
}
