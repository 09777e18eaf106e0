//! The PC client's commands (the seed's printer driver and receiving software): each resolves
//! the settings, logs to stderr, and runs its [`crate::pc`] function on the runtime, printing
//! to stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::options::Options;
use super::{UsageError, exit, init_logging, runtime};
use crate::config::Settings;
use crate::pc;

/// `send`'s flags.
#[derive(clap::Args)]
pub struct SendCmd {
    /// A destination group: its name, any case, or its number in `groups` (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// An individual destination: its domain or its name (repeatable).
    #[arg(long = "to")]
    to: Vec<String>,
    /// Wait, printing "DOMAIN: state" for every destination as it changes (queued, sending,
    /// then delivered, printed or failed).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit code 4); default 60, 0 for no limit.
    #[arg(long)]
    timeout: Option<u64>,
    /// Send files that are not images (PNG, JPEG or TIFF) as they are: PCs store them, a
    /// panel keeps them in its tray unprinted. Without it such a file is refused, as the
    /// panel's feeder refuses it.
    #[arg(long)]
    any_file: bool,
    /// JSON lines: the distribution {dist, duplicate, destinations}, then with --wait one
    /// {domain, name, state, final, reason} per destination result as it arrives.
    #[arg(long)]
    json: bool,
    /// No progress bars on stderr (they are drawn only when stderr is a terminal).
    #[arg(long, short)]
    quiet: bool,
    /// The pages, in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// `groups [--for-registration]`.
pub fn groups(
    options: &Options,
    for_registration: bool,
    member: bool,
    format: pc::Format,
) -> anyhow::Result<ExitCode> {
    let settings = settings(options)?;
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(pc::groups(&settings, for_registration, member, format, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `destinations`.
pub fn destinations(options: &Options, format: pc::Format) -> anyhow::Result<ExitCode> {
    let settings = settings(options)?;
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(pc::destinations(&settings, format, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `register --group NAME`.
pub fn register(options: &Options, group: &str) -> anyhow::Result<ExitCode> {
    let settings = settings(options)?;
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(pc::register(&settings, group, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `withdraw --group NAME`.
pub fn withdraw(options: &Options, group: &str) -> anyhow::Result<ExitCode> {
    let settings = settings(options)?;
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(pc::withdraw(&settings, group, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `receive --out DIR [--count N]`.
pub fn receive(
    options: &Options,
    dir: &Path,
    count: Option<u64>,
    format: pc::Format,
) -> anyhow::Result<ExitCode> {
    let settings = settings(options)?;
    let out = &mut std::io::stdout().lock();
    runtime()?.block_on(pc::receive(&settings, dir, count, format, out))?;
    Ok(ExitCode::SUCCESS)
}

/// `send`: exits with 3 when a destination failed, 4 when waiting timed out.
pub fn send(options: &Options, cmd: SendCmd) -> anyhow::Result<ExitCode> {
    if cmd.groups.is_empty() && cmd.to.is_empty() {
        return Err(UsageError(
            "name at least one destination with --group NAME or --to DOMAIN".into(),
        )
        .into());
    }
    if cmd.timeout.is_some() && !cmd.wait {
        return Err(UsageError("--timeout only applies with --wait".into()).into());
    }
    let settings = settings(options)?;
    let args = pc::SendArgs {
        groups: cmd.groups,
        to: cmd.to,
        files: cmd.files,
        wait: cmd.wait,
        timeout: cmd.timeout.map(Duration::from_secs),
        any_file: cmd.any_file,
        format: super::format(cmd.json),
        quiet: cmd.quiet,
    };
    let out = &mut std::io::stdout().lock();
    let outcome = runtime()?.block_on(pc::send(&settings, &args, out))?;
    Ok(exit_code(outcome))
}

/// `status ID`: exits with 3 when a destination failed, 4 when one is not done yet.
pub fn status(
    options: &Options,
    dist: imagecast_shared::DistributionId,
    format: pc::Format,
) -> anyhow::Result<ExitCode> {
    let settings = settings(options)?;
    let out = &mut std::io::stdout().lock();
    let outcome = runtime()?.block_on(pc::status(&settings, dist, format, out))?;
    Ok(exit_code(outcome))
}

/// The exit code of an outcome (see [`super::exit`]).
fn exit_code(outcome: pc::Outcome) -> ExitCode {
    match outcome {
        pc::Outcome::Done => ExitCode::SUCCESS,
        pc::Outcome::Failed => ExitCode::from(exit::FAILED),
        pc::Outcome::NotDone => ExitCode::from(exit::NOT_DONE),
    }
}

/// The settings, then logging to stderr (a missing setting is reported before anything else).
fn settings(options: &Options) -> anyhow::Result<Settings> {
    let settings = options.settings()?;
    init_logging(None);
    Ok(settings)
}
