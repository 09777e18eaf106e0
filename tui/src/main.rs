//! `imagecast`: the terminal side of imagecast: the PC client's subcommands (and, with the
//! panel, the MFP control-panel emulator).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use imagecast::config::{FileConfig, Settings};
use imagecast::pc;

/// imagecast terminal: send scanned images to destination groups, receive them, register.
#[derive(Parser)]
#[command(name = "imagecast", version, about)]
struct Cli {
    /// Image server address HOST:PORT.
    #[arg(long, global = true, env = "IMAGECAST_SERVER")]
    server: Option<String>,
    /// This terminal's network domain name.
    #[arg(long, global = true, env = "IMAGECAST_DEVICE")]
    device: Option<String>,
    /// This terminal's device token.
    #[arg(long, global = true, env = "IMAGECAST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// User ID to log in with.
    #[arg(long, global = true, env = "IMAGECAST_USER")]
    user: Option<String>,
    /// Read the password from standard input (else IMAGECAST_PASSWORD).
    #[arg(long, global = true)]
    password_stdin: bool,
    /// Config file (default: the platform config folder's imagecast/config.toml).
    #[arg(long, global = true, env = "IMAGECAST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the destination groups, numbered from 1 (FIG. 9).
    Groups {
        /// Leave out "all distribution destinations" (FIG. 12).
        #[arg(long)]
        for_registration: bool,
    },
    /// List every destination as "domain;name" (FIG. 10).
    Destinations,
    /// Send files (the pages of one image) to groups and destinations.
    Send {
        /// A destination group name (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// An individual destination's domain (repeatable).
        #[arg(long = "to")]
        to: Vec<String>,
        /// Wait and print "DOMAIN: result" for every destination.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds (exit code 2).
        #[arg(long)]
        timeout: Option<u64>,
        /// The pages, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Stay connected and store every delivered image in a folder.
    Receive {
        /// The folder.
        #[arg(long)]
        out: PathBuf,
        /// Exit after this many deliveries.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Register this terminal with a group.
    Register {
        /// The group name.
        #[arg(long)]
        group: String,
    },
    /// Withdraw this terminal from a group.
    Withdraw {
        /// The group name.
        #[arg(long)]
        group: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IMAGECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imagecast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn password(cli: &Cli) -> anyhow::Result<Option<String>> {
    if cli.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut s)
            .context("cannot read the password from standard input")?;
        let p = s.lines().next().unwrap_or("").to_owned();
        if p.is_empty() {
            bail!("the password on standard input is empty");
        }
        return Ok(Some(p));
    }
    Ok(std::env::var("IMAGECAST_PASSWORD").ok())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let settings = Settings::resolve(
        cli.server.clone(),
        cli.device.clone(),
        cli.token.clone(),
        cli.user.clone(),
        password(&cli)?,
        file,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    rt.block_on(async {
        match cli.command {
            Command::Groups { for_registration } => {
                pc::groups(&settings, for_registration, &mut out).await?
            }
            Command::Destinations => pc::destinations(&settings, &mut out).await?,
            Command::Register { group } => pc::register(&settings, &group, &mut out).await?,
            Command::Withdraw { group } => pc::withdraw(&settings, &group, &mut out).await?,
            Command::Receive { out: dir, count } => {
                pc::receive(&settings, &dir, count, &mut out).await?
            }
            Command::Send {
                groups,
                to,
                wait,
                timeout,
                files,
            } => {
                let args = pc::SendArgs {
                    groups,
                    to,
                    files,
                    wait,
                    timeout: timeout.map(Duration::from_secs),
                };
                if !pc::send(&settings, &args, &mut out).await? {
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
