//! `imagecast-bench`: the load generator. It runs the real `imagecast-server` (found next to
//! this binary: build with `cargo build --release --workspace --bins`) on a data directory made
//! for each scenario, drives it with real clients, and prints one `prefix key=value ...` line
//! per scenario, the shape `shared/bench/summarize.py` reads.
//!
//! # Layout
//! - [`server`]: the data directory with thousands of devices, and the server process.
//! - [`terminals`]: receiving terminals (client + `Inbox` in discard mode + acknowledgement).
//! - [`fanout`]: `fanout` and `latency`; [`loopback`]: the raw TCP limit; [`idle`]: memory per
//!   idle terminal; [`registration`]: concurrent registrations; [`marksheet`]: mark sheets.
//! - [`relay`]: `relay` and `relay-idle`, real-time sessions beside plain forwarders
//!   ([`forwarder`]), both over two-way streams ([`stream`]).
//! - [`fax`]: fax jobs through the supervisor to gateways on the simulated network.
//! - [`storm`]: `restart-storm`, terminals coming back after a server restart; [`soak`]:
//!   minutes of mixed load; both with terminals that reconnect ([`reconnect`]).
//! - [`host`]: `/proc` readings; [`report`]: result lines and statistics.
//!
//! The method and the figures are in `docs/PERFORMANCE.md`.

mod fanout;
mod fax;
mod forwarder;
mod host;
mod idle;
mod loopback;
mod marksheet;
mod reconnect;
mod registration;
mod relay;
mod report;
mod server;
mod soak;
mod storm;
mod stream;
mod terminals;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::fanout::RoundOptions;

/// Load generator for imagecast: drives the real server with real clients.
#[derive(Parser)]
#[command(name = "imagecast-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// One image to a group of N terminals: time until the last one acknowledged it.
    Fanout {
        /// Receiving terminals in the group.
        #[arg(long)]
        terminals: usize,
        /// Image size in MiB.
        #[arg(long)]
        size_mib: f64,
        /// Run without TLS (plain TCP on both sides).
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        rounds: RoundArgs,
    },
    /// The same buffer over raw TCP from one process to N receivers: the physical limit.
    Loopback {
        /// Receiving connections.
        #[arg(long)]
        receivers: usize,
        /// Payload size in MiB.
        #[arg(long)]
        size_mib: f64,
        /// Over TLS (the server's and the client library's configuration): the limit of an
        /// encrypted fan-out.
        #[arg(long)]
        tls: bool,
        #[command(flatten)]
        rounds: RoundArgs,
    },
    /// Server memory for C connected idle terminals, after two keep-alive intervals.
    Idle {
        /// Connected terminals.
        #[arg(long)]
        terminals: usize,
        /// Run without TLS (plain TCP on both sides).
        #[arg(long)]
        plain: bool,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
    },
    /// Each terminal's time from the start of the upload to its acknowledgement.
    Latency {
        /// Receiving terminals in the group.
        #[arg(long)]
        terminals: usize,
        /// Image size in KiB.
        #[arg(long)]
        size_kib: f64,
        #[command(flatten)]
        rounds: RoundArgs,
    },
    /// K terminals register themselves with a group of M members, C at a time.
    Registration {
        /// Members the group has before.
        #[arg(long)]
        members: usize,
        /// Registrations (one new terminal each).
        #[arg(long)]
        ops: usize,
        /// Registrations in flight at once.
        #[arg(long)]
        concurrency: usize,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
    },
    /// Print a mark sheet from an A4 page at D dpi and decode it.
    Marksheet {
        /// Resolution of the page.
        #[arg(long, default_value_t = 200)]
        dpi: u32,
        /// Measured rounds (after one warm-up).
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// Real-time sessions through the server, round after round, beside the same rounds over
    /// plain TCP forwarders (the limit): throughput each way, the server's memory growth.
    Relay {
        /// Concurrent sessions (each between two terminals of its own).
        #[arg(long, default_value_t = 1)]
        sessions: usize,
        /// MiB each end of a session sends per round.
        #[arg(long, default_value_t = 64.0)]
        size_mib: f64,
        /// Run without TLS (plain TCP on every leg, forwarders included).
        #[arg(long)]
        plain: bool,
        /// Forwarders to run beside the relay (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "socat")]
        forwarder: Vec<forwarder::Kind>,
        /// Run no forwarder.
        #[arg(long)]
        no_forwarder: bool,
        /// socat's transfer block size in bytes (`-b`; 0: socat's default, 8,192).
        #[arg(long, default_value_t = 0)]
        socat_block: usize,
        /// Only the demander sends (the target reads); by default both ends send at once.
        #[arg(long)]
        one_way: bool,
        #[command(flatten)]
        rounds: RoundArgs,
    },
    /// Server memory for N open, idle relay sessions (2N terminals).
    RelayIdle {
        /// Open sessions.
        #[arg(long)]
        sessions: usize,
        /// Run without TLS (plain TCP on both sides).
        #[arg(long)]
        plain: bool,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
    },
    /// Fax jobs through the supervising server to fax machines on the simulated network.
    Fax {
        /// Fax gateways.
        #[arg(long, default_value_t = 4)]
        gateways: usize,
        /// Lines per gateway.
        #[arg(long, default_value_t = 1)]
        lines: u32,
        /// Measured jobs.
        #[arg(long, default_value_t = 200)]
        jobs: usize,
        /// Unmeasured jobs first (default: one per sender).
        #[arg(long)]
        warmup_jobs: Option<usize>,
        /// Senders with one job in flight each (default: gateways × lines).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Pages per job (A4 at 200 dpi).
        #[arg(long, default_value_t = 1)]
        pages: usize,
        /// The job's files: a grey PNG per page (a scan) or one fax TIFF.
        #[arg(long, value_enum, default_value_t = fax::Document::Png)]
        document: fax::Document,
        /// Time scale of the calls: 0 machine speed, 0.01 a hundred times a real call's
        /// speed.
        #[arg(long, default_value_t = 0.0)]
        time_scale: f64,
        /// Run without TLS.
        #[arg(long)]
        plain: bool,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
    },
    /// N receiving terminals connected; the server restarted (SIGTERM, started again on the
    /// same data directory and port): the time until they are all back and receiving.
    RestartStorm {
        /// Receiving terminals (device logins only).
        #[arg(long)]
        terminals: usize,
        /// Run without TLS (plain TCP on both sides).
        #[arg(long)]
        plain: bool,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
    },
    /// Minutes of continuous mixed load: distributions to 3–100 terminals, registrations and
    /// withdrawals, terminals going and coming, slow readers; memory, errors, latency.
    Soak {
        /// How long the load runs, in minutes.
        #[arg(long)]
        minutes: f64,
        /// Receiving terminals.
        #[arg(long, default_value_t = 300)]
        terminals: usize,
        /// Of them, slow readers (100 ms before each piece of page data).
        #[arg(long, default_value_t = 5)]
        slow: usize,
        /// Of them, terminals closed one a second that come back after 0.5–3 s.
        #[arg(long, default_value_t = 20)]
        churners: usize,
        /// Concurrent senders.
        #[arg(long, default_value_t = 2)]
        senders: usize,
        /// Each sender starts a distribution this often, in milliseconds.
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
        /// Page size in KiB.
        #[arg(long, default_value_t = 256)]
        size_kib: usize,
        /// Devices that register with the group and withdraw, in a loop.
        #[arg(long, default_value_t = 4)]
        registrars: usize,
        /// Run without TLS (plain TCP on both sides).
        #[arg(long)]
        plain: bool,
        /// The server's heartbeat interval in milliseconds.
        #[arg(long, default_value_t = 15_000)]
        heartbeat_ms: u64,
    },
    /// The `rust` forwarder of `relay` (started by it).
    #[command(hide = true)]
    Forward {
        #[arg(long)]
        to: String,
        #[arg(long)]
        cert_dir: Option<PathBuf>,
        #[arg(long)]
        to_fingerprint: Option<String>,
    },
    /// The sending side of `loopback` (started by it).
    #[command(hide = true)]
    LoopbackSender {
        #[arg(long)]
        receivers: usize,
        #[arg(long)]
        bytes: usize,
        #[arg(long)]
        tls: bool,
    },
}

#[derive(Args, Clone, Copy)]
struct RoundArgs {
    /// Measured rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Unmeasured rounds before them.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Longest wait in seconds for a quiet machine before each round.
    #[arg(long, default_value_t = 5.0)]
    quiet_wait: f64,
    /// Busy cores (whole machine) under which it counts as quiet.
    #[arg(long, default_value_t = 0.3)]
    quiet_threshold: f64,
    /// Longest a round may take, in seconds.
    #[arg(long, default_value_t = 120)]
    round_timeout: u64,
    /// The server's heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    heartbeat_ms: u64,
    /// Cores other processes may keep busy during a measured round before it is run again.
    #[arg(long, default_value_t = 0.3)]
    max_foreign: f64,
}

impl RoundArgs {
    fn options(self) -> RoundOptions {
        RoundOptions {
            warmup: self.warmup,
            rounds: self.rounds.max(1),
            quiet_wait: Duration::from_secs_f64(self.quiet_wait.max(0.0)),
            quiet_threshold: self.quiet_threshold,
            round_timeout: Duration::from_secs(self.round_timeout.max(1)),
            heartbeat_ms: self.heartbeat_ms.max(100),
            max_foreign: self.max_foreign,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("imagecast-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    // Terminals still connected must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("imagecast-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(scenario: Scenario) -> anyhow::Result<Vec<report::Line>> {
    let line = match scenario {
        Scenario::Fanout {
            terminals,
            size_mib,
            plain,
            rounds,
        } => fanout::fanout(terminals, size_mib, rounds.options(), !plain).await?,
        Scenario::Loopback {
            receivers,
            size_mib,
            tls,
            rounds,
        } => loopback::loopback(receivers, size_mib, tls, rounds.options()).await?,
        Scenario::Idle {
            terminals,
            plain,
            heartbeat_ms,
        } => idle::idle(terminals, heartbeat_ms.max(100), !plain).await?,
        Scenario::Latency {
            terminals,
            size_kib,
            rounds,
        } => fanout::latency(terminals, size_kib, rounds.options()).await?,
        Scenario::Registration {
            members,
            ops,
            concurrency,
            heartbeat_ms,
        } => {
            registration::registration(members, ops, concurrency.max(1), heartbeat_ms.max(100))
                .await?
        }
        Scenario::Marksheet { dpi, rounds } => {
            tokio::task::spawn_blocking(move || marksheet::marksheet(dpi, rounds.max(1))).await??
        }
        Scenario::LoopbackSender {
            receivers,
            bytes,
            tls,
        } => {
            loopback::sender(receivers, bytes, tls).await?;
            return Ok(Vec::new());
        }
        Scenario::Relay {
            sessions,
            size_mib,
            plain,
            forwarder,
            no_forwarder,
            socat_block,
            one_way,
            rounds,
        } => {
            return relay::relay(relay::RelayOptions {
                sessions,
                size_mib,
                tls: !plain,
                forwarders: if no_forwarder { Vec::new() } else { forwarder },
                socat_block,
                one_way,
                rounds: rounds.options(),
            })
            .await;
        }
        Scenario::RelayIdle {
            sessions,
            plain,
            heartbeat_ms,
        } => relay::relay_idle(sessions, heartbeat_ms.max(100), !plain).await?,
        Scenario::Fax {
            gateways,
            lines,
            jobs,
            warmup_jobs,
            concurrency,
            pages,
            document,
            time_scale,
            plain,
            heartbeat_ms,
        } => {
            let concurrency = concurrency.unwrap_or(gateways.max(1) * lines.max(1) as usize);
            fax::fax(fax::FaxOptions {
                gateways,
                lines,
                jobs,
                warmup_jobs: warmup_jobs.unwrap_or(concurrency),
                concurrency,
                pages,
                document,
                time_scale,
                tls: !plain,
                heartbeat_ms: heartbeat_ms.max(100),
            })
            .await?
        }
        Scenario::RestartStorm {
            terminals,
            plain,
            heartbeat_ms,
        } => storm::restart_storm(terminals, !plain, heartbeat_ms.max(100)).await?,
        Scenario::Soak {
            minutes,
            terminals,
            slow,
            churners,
            senders,
            interval_ms,
            size_kib,
            registrars,
            plain,
            heartbeat_ms,
        } => {
            soak::soak(soak::SoakOptions {
                minutes: minutes.max(0.1),
                terminals,
                slow,
                churners,
                senders: senders.max(1),
                interval: Duration::from_millis(interval_ms.max(1)),
                size_kib: size_kib.max(1),
                registrars,
                tls: !plain,
                heartbeat_ms: heartbeat_ms.max(100),
            })
            .await?
        }
        Scenario::Forward {
            to,
            cert_dir,
            to_fingerprint,
        } => {
            forwarder::serve(to, cert_dir, to_fingerprint).await?;
            return Ok(Vec::new());
        }
    };
    Ok(vec![line])
}
