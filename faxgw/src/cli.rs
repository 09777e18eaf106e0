//! The `imagecast-faxgw` command line: `run` (the gateway, on the simulated network or a
//! HylaFAX server), `machine` (a plain fax machine on the simulated network) and `pstn`
//! (faults and the call log of the simulated network).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::driver::Driver;
use crate::hylafax::{ADMIN_PASSWORD_ENV, HylafaxConfig, HylafaxLine};
use crate::machine;
use crate::page::Resolution;
use crate::sim::{CallResult, Capabilities, DialOptions, Exchange, Fault, Line};

/// The exit code of a fax that was not sent (busy, no answer, page error, failed).
pub const EXIT_NOT_SENT: i32 = 2;

/// imagecast fax gateway: fax lines and a simulated telephone network.
#[derive(Debug, Parser)]
#[command(name = "imagecast-faxgw", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A plain fax machine on the simulated network: receives into --inbox until stopped, or
    /// sends --send FILE... to --to NUMBER and exits 0 when every page was confirmed.
    Machine(MachineArgs),
    /// The simulated telephone network: set faults on numbers, clear them, list calls.
    Pstn(PstnArgs),
    /// The fax gateway: connects to imagecast-server and makes the calls it is given on
    /// its lines; prints `connected as DOMAIN` once logged in; runs until stopped.
    ///
    /// On the simulated network: `--line sim --exchange DIR --number NUMBER`. On a real
    /// HylaFAX server: `--line hylafax --hylafax HOST:PORT --hylafax-user USER`, the
    /// user's password in IMAGECAST_HYLAFAX_PASSWORD and, to fetch received faxes (mode
    /// 0600 in HylaFAX's receive queue), the admin password in
    /// IMAGECAST_HYLAFAX_ADMIN_PASSWORD; see docs/fax-hylafax.md.
    Run(RunArgs),
}

/// The line drivers of `run`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LineDriver {
    /// The simulated telephone network (`--exchange DIR --number NUMBER`).
    Sim,
    /// A HylaFAX server (`--hylafax HOST:PORT --hylafax-user USER`; passwords in
    /// IMAGECAST_HYLAFAX_PASSWORD and IMAGECAST_HYLAFAX_ADMIN_PASSWORD).
    Hylafax,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The image server, HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub server: String,
    /// This gateway's device domain (a device of kind fax-gateway).
    #[arg(long, value_name = "DOMAIN")]
    pub device: String,
    /// This gateway's device token.
    #[arg(long, env = "IMAGECAST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Plain TCP instead of TLS (the server must run with --plain too).
    #[arg(long)]
    pub plain: bool,
    /// The server certificate's SHA-256 fingerprint (`imagecast-server fingerprint`);
    /// without it the first one seen is trusted and remembered.
    #[arg(long, value_name = "FP")]
    pub server_fingerprint: Option<String>,
    /// The line driver.
    #[arg(long, value_enum)]
    pub line: LineDriver,
    /// The simulated exchange's folder (`--line sim`).
    #[arg(long, value_name = "DIR")]
    pub exchange: Option<PathBuf>,
    /// This gateway's number: on the exchange (`--line sim`, required), or the number of
    /// the HylaFAX server's line, for the records (`--line hylafax`, optional).
    #[arg(long)]
    pub number: Option<String>,
    /// The HylaFAX server's hfaxd, HOST:PORT (port 4559 when left out) (`--line hylafax`).
    #[arg(long, value_name = "HOST:PORT")]
    pub hylafax: Option<String>,
    /// The HylaFAX user (an entry of the server's hosts.hfaxd); its password comes from
    /// IMAGECAST_HYLAFAX_PASSWORD, the admin password from IMAGECAST_HYLAFAX_ADMIN_PASSWORD.
    #[arg(long, value_name = "USER")]
    pub hylafax_user: Option<String>,
    /// Seconds between two reads of HylaFAX's receive queue.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub hylafax_poll: f64,
    /// Seconds a call through HylaFAX may take from submission to its end, waiting for a
    /// free modem included; then its job is removed and the call fails `timed out`.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=8_553_600))]
    pub hylafax_job_timeout: u64,
    /// This gateway's station ID (default: its number).
    #[arg(long, value_name = "STATION ID")]
    pub station: Option<String>,
    /// Lines: calls at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub lines: u32,
    /// Where received faxes wait until the supervisor stored them (default:
    /// $XDG_STATE_HOME/imagecast-faxgw/DOMAIN, or ~/.local/state/imagecast-faxgw/DOMAIN).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Seconds an unanswered call rings (at most 10).
    #[arg(
        long,
        env = "IMAGECAST_FAX_RING_TIME",
        default_value_t = 10.0,
        value_name = "SECONDS"
    )]
    pub ring_time: f64,
    /// Slow calls down: 1 is real time, 0 machine speed.
    #[arg(long, env = "IMAGECAST_FAX_TIME_SCALE", default_value_t = 0.0)]
    pub time_scale: f64,
}

/// Options of `machine`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["inbox", "send"]))]
pub struct MachineArgs {
    /// The simulated exchange's folder.
    #[arg(long, value_name = "DIR")]
    pub exchange: PathBuf,
    /// This machine's number.
    #[arg(long)]
    pub number: String,
    /// This machine's station ID (at most 20 printable ASCII characters).
    #[arg(long, value_name = "STATION ID")]
    pub station: String,
    /// Receive faxes into this folder until SIGINT or SIGTERM.
    #[arg(long, value_name = "DIR")]
    pub inbox: Option<PathBuf>,
    /// Send these files (PNG, JPEG, TIFF; each TIFF page is a fax page).
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "to")]
    pub send: Vec<PathBuf>,
    /// The number to send to.
    #[arg(long, value_name = "NUMBER")]
    pub to: Option<String>,
    /// Send scaled images at fine resolution (7.7 lines/mm) instead of standard.
    #[arg(long)]
    pub fine: bool,
    /// This machine has no error correction (so calls use MH, never G4).
    #[arg(long)]
    pub no_ecm: bool,
    /// This machine does not code Group 4.
    #[arg(long)]
    pub no_g4: bool,
    /// This machine prints standard resolution only.
    #[arg(long)]
    pub no_fine: bool,
    /// Seconds an unanswered call rings (at most 10).
    #[arg(
        long,
        env = "IMAGECAST_FAX_RING_TIME",
        default_value_t = 10.0,
        value_name = "SECONDS"
    )]
    pub ring_time: f64,
    /// Slow calls down: 1 is real time, 0 machine speed.
    #[arg(long, env = "IMAGECAST_FAX_TIME_SCALE", default_value_t = 0.0)]
    pub time_scale: f64,
}

/// Options of `pstn`.
#[derive(Debug, Args)]
pub struct PstnArgs {
    /// The simulated exchange's folder.
    #[arg(long, value_name = "DIR")]
    pub exchange: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: PstnCommand,
}

/// The `pstn` subcommands.
#[derive(Debug, Subcommand)]
pub enum PstnCommand {
    /// Sets a fault on NUMBER; every call re-reads the faults.
    Fault {
        /// The number whose calls the fault hits.
        number: String,
        /// The fault.
        #[command(subcommand)]
        fault: FaultArg,
    },
    /// Clears every fault.
    Clear,
    /// Lists every call: time, caller, called, result, pages, coding, duration, station.
    Calls,
    /// Lists the numbers held now and their faults.
    Numbers,
}

/// A fault as typed.
#[derive(Debug, Subcommand)]
pub enum FaultArg {
    /// Calls find the number busy (every call, or the next N).
    Busy {
        /// Only the next N calls.
        #[arg(long)]
        times: Option<u32>,
    },
    /// Calls ring unanswered (every call, or the next N).
    NoAnswer {
        /// Only the next N calls.
        #[arg(long)]
        times: Option<u32>,
    },
    /// The next connected call's page PAGE is damaged, so the receiver rejects it.
    PageError {
        /// 1-based page number within the call.
        page: u32,
        /// The next N connected calls instead of one.
        #[arg(long)]
        times: Option<u32>,
    },
    /// The next connected call drops after page PAGE was confirmed.
    HangUpAfter {
        /// 1-based page number within the call.
        page: u32,
        /// The next N connected calls instead of one.
        #[arg(long)]
        times: Option<u32>,
    },
}

impl FaultArg {
    fn fault(&self) -> anyhow::Result<Fault> {
        Ok(match *self {
            FaultArg::Busy { times } => Fault::Busy { times },
            FaultArg::NoAnswer { times } => Fault::NoAnswer { times },
            FaultArg::PageError { page, times } | FaultArg::HangUpAfter { page, times }
                if page == 0 =>
            {
                let _ = times;
                bail!("pages are numbered from 1")
            }
            FaultArg::PageError { page, times } => Fault::PageError { page, times },
            FaultArg::HangUpAfter { page, times } => Fault::HangUpAfter { page, times },
        })
    }
}

/// Runs the parsed command; returns the process's exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Machine(args) => run_machine(args).await,
        Command::Pstn(args) => run_pstn(args),
        Command::Run(args) => run_gateway(args).await,
    }
}

async fn run_gateway(args: RunArgs) -> anyhow::Result<i32> {
    if !(args.ring_time.is_finite() && args.ring_time >= 0.0) {
        bail!(
            "--ring-time must be a number of seconds, not {}",
            args.ring_time
        );
    }
    let number = args.number.clone().unwrap_or_default();
    let station = args.station.clone().unwrap_or_else(|| number.clone());
    let driver = match args.line {
        LineDriver::Sim => {
            let (Some(dir), false) = (&args.exchange, number.is_empty()) else {
                bail!("--line sim needs --exchange DIR and --number NUMBER");
            };
            if args.hylafax.is_some() || args.hylafax_user.is_some() {
                bail!("--hylafax and --hylafax-user go with --line hylafax, not --line sim");
            }
            let exchange = Exchange::open(dir)
                .with_context(|| format!("exchange {}", dir.display()))?
                .with_ring_time(Duration::from_secs_f64(args.ring_time.min(10.0)))
                .with_time_scale(args.time_scale);
            let line = Line::register(
                &exchange,
                &number,
                &station,
                Capabilities::default(),
                args.lines as usize,
            )
            .await?;
            Driver::Sim(std::sync::Arc::new(line))
        }
        LineDriver::Hylafax => hylafax_driver(&args).await?,
    };
    let known = std::env::var_os("HOME").map(|h| {
        PathBuf::from(h)
            .join(".config")
            .join("imagecast")
            .join("faxgw-known-servers")
    });
    let spool = match &args.spool {
        Some(dir) => dir.clone(),
        None => default_spool(&args.device)?,
    };
    let cfg = crate::gateway::GatewayConfig {
        client: crate::gateway::client_config(
            &args.server,
            &args.device,
            &args.token,
            args.plain,
            args.server_fingerprint.as_deref(),
            known,
        ),
        number,
        station,
        lines: args.lines,
        spool,
    };
    crate::gateway::run_on(cfg, driver, shutdown_signal()).await?;
    Ok(0)
}

/// The HylaFAX driver `run --line hylafax` names, checked by logging in once.
async fn hylafax_driver(args: &RunArgs) -> anyhow::Result<Driver> {
    let (Some(addr), Some(user)) = (&args.hylafax, &args.hylafax_user) else {
        bail!("--line hylafax needs --hylafax HOST:PORT and --hylafax-user USER");
    };
    if args.exchange.is_some() {
        bail!("--exchange goes with --line sim, not --line hylafax");
    }
    if !(args.hylafax_poll.is_finite() && (0.1..=3600.0).contains(&args.hylafax_poll)) {
        bail!(
            "--hylafax-poll must be 0.1 to 3600 seconds, not {}",
            args.hylafax_poll
        );
    }
    let mut cfg = HylafaxConfig::from_env(addr, user)?;
    cfg.job_timeout = Duration::from_secs(args.hylafax_job_timeout);
    let line = HylafaxLine::new(cfg);
    line.check().await.with_context(|| {
        format!(
            "cannot use the HylaFAX server {} as {}",
            line.config().addr,
            imagecast_shared::text::escape(user)
        )
    })?;
    if line.config().admin_password.is_none() {
        eprintln!(
            "imagecast-faxgw: no {ADMIN_PASSWORD_ENV}: received faxes HylaFAX stores \
             owner-only (its default) are not seen"
        );
    }
    println!("HylaFAX server {} ready", line.config().addr);
    Ok(Driver::Hylafax {
        line,
        poll: Duration::from_secs_f64(args.hylafax_poll),
    })
}

/// The default spool folder of a gateway: `$XDG_STATE_HOME/imagecast-faxgw/DOMAIN`, or
/// `~/.local/state/imagecast-faxgw/DOMAIN`.
fn default_spool(device: &str) -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(state) => PathBuf::from(state),
        None => PathBuf::from(
            std::env::var_os("HOME").context("no HOME: give the spool folder with --spool DIR")?,
        )
        .join(".local")
        .join("state"),
    };
    Ok(base
        .join("imagecast-faxgw")
        .join(imagecast_shared::text::safe_file_name(device).as_ref()))
}

async fn run_machine(args: MachineArgs) -> anyhow::Result<i32> {
    if !(args.ring_time.is_finite() && args.ring_time >= 0.0) {
        bail!(
            "--ring-time must be a number of seconds, not {}",
            args.ring_time
        );
    }
    let exchange = Exchange::open(&args.exchange)
        .with_context(|| format!("exchange {}", args.exchange.display()))?
        .with_ring_time(Duration::from_secs_f64(args.ring_time.min(10.0)))
        .with_time_scale(args.time_scale);
    let caps = Capabilities {
        fine: !args.no_fine,
        g4: !args.no_g4,
        ecm: !args.no_ecm,
    };
    if let Some(inbox) = &args.inbox {
        let line = Line::register(&exchange, &args.number, &args.station, caps, 1).await?;
        println!(
            "fax machine {} \"{}\" receiving into {}",
            line.number(),
            line.station(),
            inbox.display()
        );
        machine::receive(&line, inbox, shutdown_signal()).await?;
        return Ok(0);
    }
    let to = args.to.as_deref().context("--send needs --to NUMBER")?;
    let resolution = if args.fine {
        Resolution::Fine
    } else {
        Resolution::Standard
    };
    let pages = machine::pages_of(&args.send, resolution)?;
    if pages.is_empty() {
        bail!("the files hold no pages");
    }
    let (progress, mut steps) = tokio::sync::mpsc::unbounded_channel();
    let printer = {
        let to = to.to_string();
        tokio::spawn(async move {
            while let Some(step) = steps.recv().await {
                println!("{}", machine::describe_progress(&to, &step));
            }
        })
    };
    let options = DialOptions {
        progress: Some(progress),
        ..DialOptions::default()
    };
    let outcome = machine::send(
        &exchange,
        &args.number,
        &args.station,
        caps,
        &pages,
        to,
        &options,
    )
    .await;
    drop(options);
    let _ = printer.await;
    let outcome = outcome?;
    let station = outcome
        .remote_station
        .as_deref()
        .map(|s| format!(" \"{}\"", imagecast_shared::text::escape(s)))
        .unwrap_or_default();
    let coding = outcome
        .coding
        .map(|c| format!(", {}{}", c.name(), if outcome.ecm { " ECM" } else { "" }))
        .unwrap_or_default();
    match &outcome.result {
        CallResult::Sent => {
            println!(
                "{to}{station}: sent {} pages ({:.1} s{coding})",
                outcome.pages_confirmed,
                outcome.duration.as_secs_f64()
            );
            Ok(0)
        }
        other => {
            eprintln!(
                "{to}{station}: not sent: {other} ({} of {} pages confirmed{coding})",
                outcome.pages_confirmed,
                pages.len()
            );
            Ok(EXIT_NOT_SENT)
        }
    }
}

fn run_pstn(args: PstnArgs) -> anyhow::Result<i32> {
    let exchange = Exchange::open(&args.exchange)
        .with_context(|| format!("exchange {}", args.exchange.display()))?;
    match args.command {
        PstnCommand::Fault { number, fault } => {
            exchange.set_fault(&number, fault.fault()?)?;
            let now = exchange.faults(&number)?.describe().join(", ");
            println!("{number}: {now}");
        }
        PstnCommand::Clear => {
            exchange.clear_faults()?;
            println!("every fault cleared");
        }
        PstnCommand::Calls => {
            println!("TIME\tCALLER\tCALLED\tRESULT\tPAGES\tCODING\tSECONDS\tSTATION\tREASON");
            for call in exchange.calls()? {
                let time = std::time::UNIX_EPOCH + Duration::from_secs(call.time);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{}\t{}",
                    humantime::format_rfc3339_seconds(time),
                    call.caller,
                    call.called,
                    call.result,
                    call.pages,
                    if call.coding.is_empty() {
                        "-"
                    } else {
                        &call.coding
                    },
                    call.duration_ms as f64 / 1000.0,
                    call.remote_station,
                    call.reason
                );
            }
        }
        PstnCommand::Numbers => {
            for (number, station) in exchange.numbers() {
                let faults = exchange.faults(&number)?.describe().join(", ");
                println!(
                    "{number}\t\"{}\"\t{}",
                    imagecast_shared::text::escape(&station),
                    if faults.is_empty() {
                        "no faults"
                    } else {
                        &faults
                    }
                );
            }
        }
    }
    Ok(0)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
