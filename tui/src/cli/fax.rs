//! `imagecast fax send|status|records|gateways|settings`. The work is in
//! [`crate::pc::fax`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::options::Options;
use super::{UsageError, init_logging, runtime};
use crate::pc::fax;

/// Exit code of `fax send --wait` when a number failed or timed out.
pub const FAX_FAILED: u8 = 2;

/// `imagecast fax ...`.
#[derive(clap::Subcommand)]
pub enum FaxCmd {
    /// Send a fax through the supervisor's gateways; prints the job ID. With --wait, one line
    /// per number (`NUMBER: sent N pages via GATEWAY (...)` or `NUMBER: failed: REASON`) and
    /// exit code 2 if any failed.
    Send {
        /// A number to send to (repeatable).
        #[arg(long = "to", value_name = "NUMBER")]
        to: Vec<String>,
        /// A phone-book entry to send to (repeatable).
        #[arg(long = "book", value_name = "NAME")]
        book: Vec<String>,
        /// Fine resolution (7.7 lines/mm).
        #[arg(long)]
        fine: bool,
        /// Wait until every number is sent or failed.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait at most (with --wait; default 600).
        #[arg(long, requires = "wait")]
        timeout: Option<u64>,
        /// The files (PNG, JPEG, TIFF; each TIFF page is a fax page).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A job's numbers (or this user's latest jobs): JOB NUMBER STATE GATEWAY PAGES DIALS DETAIL.
    Status {
        /// The job ID `fax send` printed.
        job: Option<String>,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// The communication records (this user's; every one for an administrator).
    Records {
        /// The newest N.
        #[arg(long, default_value_t = 50)]
        last: u32,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// The fax gateways: DOMAIN online|offline and their lines in use.
    Gateways {
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// A gateway's settings, read or changed on the supervisor and pushed to the gateway
    /// (needs the competence gateway-settings).
    Settings {
        /// Show or set.
        #[command(subcommand)]
        cmd: SettingsCmd,
    },
    /// The supervisor's own settings (priority, per-client and delivery tables, policy,
    /// groupings, phone book, competences, users' home terminals) as one TOML file, read or
    /// replaced on the server (needs the competence supervisor-settings).
    Supervisor {
        /// Show or set.
        #[command(subcommand)]
        cmd: SupervisorCmd,
    },
}

/// `imagecast fax supervisor ...`.
#[derive(clap::Subcommand)]
pub enum SupervisorCmd {
    /// Prints the settings file, its first line naming its version.
    Show,
    /// Replaces every table with FILE, all or none; refused when the settings changed since
    /// FILE was shown (its first line names the version it was read at).
    Set {
        /// A file printed by `show`, changed.
        file: std::path::PathBuf,
    },
}

/// `imagecast fax settings ...`.
#[derive(clap::Subcommand)]
pub enum SettingsCmd {
    /// version=, applied-version=, pending=yes|no, then every KEY=VALUE.
    Show {
        /// The gateway's device domain.
        gateway: String,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Changes KEY=VALUE... all at once (a new version, pending until the gateway applied
    /// it); prints the settings as `show` does.
    Set {
        /// The gateway's device domain.
        gateway: String,
        /// KEY=VALUE each (station-id, lines, resolution, coding, error-correction,
        /// dial-prefix, tagline, max-pages, number, network, destination).
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a fax command.
pub fn run(options: &Options, cmd: FaxCmd) -> anyhow::Result<ExitCode> {
    let settings = options.settings()?;
    init_logging(None);
    let out = &mut std::io::stdout().lock();
    let rt = runtime()?;
    match cmd {
        FaxCmd::Send {
            to,
            book,
            fine,
            wait,
            timeout,
            files,
        } => {
            if to.is_empty() && book.is_empty() {
                return Err(UsageError("say where to: --to NUMBER or --book NAME".into()).into());
            }
            let args = fax::SendArgs {
                numbers: to,
                books: book,
                fine,
                wait: wait.then(|| Duration::from_secs(timeout.unwrap_or(600))),
                files,
            };
            let ok = rt.block_on(fax::send(&settings, &args, out))?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(FAX_FAILED)
            })
        }
        FaxCmd::Status { job, json } => {
            rt.block_on(fax::status(&settings, job.as_deref(), json, out))?;
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Records { last, json } => {
            rt.block_on(fax::records(&settings, last, json, out))?;
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Gateways { json } => {
            rt.block_on(fax::gateways(&settings, json, out))?;
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Settings {
            cmd: SettingsCmd::Show { gateway, json },
        } => {
            rt.block_on(fax::settings(&settings, &gateway, &[], json, out))?;
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Settings {
            cmd:
                SettingsCmd::Set {
                    gateway,
                    assignments,
                    json,
                },
        } => {
            rt.block_on(fax::settings(&settings, &gateway, &assignments, json, out))?;
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Supervisor {
            cmd: SupervisorCmd::Show,
        } => {
            rt.block_on(fax::supervisor(&settings, None, out))?;
            Ok(ExitCode::SUCCESS)
        }
        FaxCmd::Supervisor {
            cmd: SupervisorCmd::Set { file },
        } => {
            rt.block_on(fax::supervisor(&settings, Some(&file), out))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
