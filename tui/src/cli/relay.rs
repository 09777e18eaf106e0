//! The relay commands (seed 004): `who`, `relay send`, `relay listen`, `relay pipe` and
//! `logout`. The work is in [`crate::pc::relay`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use imagecast_shared::msg::RelayTarget;

use super::options::Options;
use super::{UsageError, init_logging, runtime};
use crate::pc::relay::{self, ListenArgs, Policy};

/// The terminal a session is demanded from: a device domain or a user ID.
#[derive(clap::Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// The terminal with this device domain.
    #[arg(long, value_name = "DOMAIN")]
    to_device: Option<String>,
    /// The terminal where this user ID is logged in.
    #[arg(long, value_name = "USER")]
    to_user: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> RelayTarget {
        match (&self.to_device, &self.to_user) {
            (Some(d), _) => RelayTarget::Device(d.clone()),
            (None, Some(u)) => RelayTarget::User(u.clone()),
            // clap's group makes one of them required.
            (None, None) => RelayTarget::Device(String::new()),
        }
    }
}

/// How `relay listen` answers demands.
#[derive(clap::Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct PolicyArgs {
    /// Accept every connection demand.
    #[arg(long)]
    accept_all: bool,
    /// Accept demands whose device domain or user ID matches one of these shell globs;
    /// reject the others at once.
    #[arg(long, num_args = 1.., value_name = "PATTERN")]
    accept_from: Vec<String>,
    /// Ask the operator (on stderr, answered on stdin); without a terminal, reject.
    #[arg(long)]
    ask: bool,
}

/// `imagecast relay ...`.
#[derive(clap::Subcommand)]
pub enum RelayCmd {
    /// Send files in real time: each is printed (stored) at the other end and confirmed;
    /// pages the other end sends back in the session are stored in --out. Exit code 2 when
    /// the demand is rejected, the target is not online or busy, or the session broke.
    Send {
        #[command(flatten)]
        target: TargetArgs,
        /// Seconds to wait for the answer to the demand (default 40; the server's own
        /// demand timeout, 30 s by default, usually ends the wait first).
        #[arg(long)]
        timeout: Option<u64>,
        /// The folder pages sent back are stored in (created, owner-only, if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// The files, each sent as one page.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Answer connection demands, store the pages of accepted sessions (and send --reply
    /// files back in them); exits when this device logs out.
    Listen {
        /// The folder pages are stored in (created, owner-only, if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Hand accepted sessions to this local TCP service instead (HOST:PORT).
        #[arg(long, value_name = "HOST:PORT", conflicts_with = "reply")]
        forward: Option<String>,
        /// Send these files back, each as one page, in every session accepted, once its
        /// first page has arrived (the demander stores them in its --out).
        #[arg(long, num_args = 1.., value_name = "FILE")]
        reply: Vec<PathBuf>,
    },
    /// Carry standard input to the peer and the peer's bytes to standard output (usable as
    /// an SSH ProxyCommand). Exit code 2 when the session cannot open or breaks.
    Pipe {
        #[command(flatten)]
        target: TargetArgs,
        /// Seconds to wait for the answer to the demand (default 40).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// The open sessions (an administrator logged in): SESSION DEMANDER -> TARGET, bytes each
    /// way.
    Sessions {
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// End a session (an administrator logged in); both sides are told the reason.
    End {
        /// The session's number.
        session: u64,
        /// Why, told to both sides.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// Exit code of a relay command whose session was refused or broke.
pub const SESSION_FAILED: u8 = 2;

/// Runs a relay command on a runtime that does not wait, when it ends, for a read of standard
/// input still blocked in its thread pool (the session ended while stdin stays open).
fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = runtime()?;
    let out = rt.block_on(f);
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(out)
}

fn finish(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => match e.downcast_ref::<relay::SessionFailed>() {
            Some(f) => {
                eprintln!("imagecast: {f}");
                Ok(ExitCode::from(SESSION_FAILED))
            }
            None => Err(e),
        },
    }
}

/// `who [--json]`.
pub fn who(options: &Options, json: bool) -> anyhow::Result<ExitCode> {
    let settings = options.settings()?;
    init_logging(None);
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(relay::who(&settings, json, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `logout`.
pub fn logout(options: &Options) -> anyhow::Result<ExitCode> {
    let settings = options.settings()?;
    init_logging(None);
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(relay::logout(&settings, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `relay send|listen|pipe`.
pub fn run(options: &Options, cmd: RelayCmd) -> anyhow::Result<ExitCode> {
    let settings = options.settings()?;
    init_logging(None);
    let wait = |t: Option<u64>| t.map_or(relay::DEFAULT_DEMAND_WAIT, Duration::from_secs);
    match cmd {
        RelayCmd::Send {
            target,
            timeout,
            out: out_dir,
            files,
        } => {
            let out = &mut std::io::stdout().lock();
            finish(block_on(relay::send(
                &settings,
                &target.target(),
                wait(timeout),
                &files,
                &out_dir,
                out,
            ))?)
        }
        RelayCmd::Listen {
            out,
            policy,
            forward,
            reply,
        } => {
            let policy = if policy.accept_all {
                Policy::AcceptAll
            } else if policy.ask {
                Policy::Ask
            } else if !policy.accept_from.is_empty() {
                Policy::AcceptFrom(policy.accept_from)
            } else {
                return Err(UsageError(
                    "say how demands are answered: --accept-all, --accept-from PATTERN... or --ask"
                        .into(),
                )
                .into());
            };
            let args = ListenArgs {
                out,
                policy,
                forward,
                reply,
                quiet: false,
            };
            finish(block_on(relay::listen(&settings, &args))?)
        }
        RelayCmd::Sessions { json } => {
            let out = &mut std::io::stdout().lock();
            block_on(relay::sessions(&settings, json, out))??;
            Ok(ExitCode::SUCCESS)
        }
        RelayCmd::End { session, reason } => {
            block_on(relay::end(&settings, session, &reason))??;
            Ok(ExitCode::SUCCESS)
        }
        RelayCmd::Pipe { target, timeout } => finish(block_on(relay::pipe(
            &settings,
            &target.target(),
            wait(timeout),
        ))?),
    }
}
