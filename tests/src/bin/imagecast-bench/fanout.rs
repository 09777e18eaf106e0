//! `fanout` and `latency`: one sender distributes an image to a group of N receiving terminals
//! through the real server, round after round.
//!
//! A round's clock starts just before the sender's `distribute` call (the upload of the image,
//! its durable storage and the server's `Accepted` are inside it) and stops when the last
//! terminal handed its `DeliveryAck { Stored }` to its connection. Diagnostic fields split the
//! round: `accepted` (upload, fsync, database commit), `first` (the first terminal's ack) and
//! `done` (the sender's `DistributionDone`, after the server recorded every result).

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{Client, DistributionRequest, Event, OutgoingPage};
use tokio::sync::mpsc;

use crate::host::{self, mib};
use crate::report::{self, Line};
use crate::server::{self, BenchServer, Layout};
use crate::terminals::{self, Completion, Fleet};

/// How each measured round is prepared and bounded.
#[derive(Clone, Copy, Debug)]
pub struct RoundOptions {
    /// Unmeasured rounds first.
    pub warmup: usize,
    /// Measured rounds.
    pub rounds: usize,
    /// Longest wait for a quiet machine before each round.
    pub quiet_wait: Duration,
    /// Busy cores under which the machine counts as quiet.
    pub quiet_threshold: f64,
    /// Longest a round may take.
    pub round_timeout: Duration,
    /// The server's heartbeat interval.
    pub heartbeat_ms: u64,
    /// Cores other processes may keep busy during a measured round before it is run again.
    pub max_foreign: f64,
}

/// The server, the receiving terminals and the sender of a distribution scenario.
pub struct Rig {
    /// The image server under test.
    pub server: BenchServer,
    /// The receiving terminals.
    pub fleet: Fleet,
    sender: Client,
    completions: mpsc::UnboundedReceiver<Completion>,
    done: mpsc::UnboundedReceiver<(DistributionId, Instant)>,
    /// Rounds in which the server dropped the sender's connection after accepting the image.
    pub sender_dropped: usize,
    _inboxes: tempfile::TempDir,
}

/// Connects and logs in the sending terminal; its `DistributionDone` events arrive on the
/// returned channel with the moment each was read.
async fn connect_sender(
    server: &BenchServer,
) -> anyhow::Result<(Client, mpsc::UnboundedReceiver<(DistributionId, Instant)>)> {
    let (sender, mut events) = Client::connect(&server.config(&server.sender, false))
        .await
        .context("the sender cannot connect")?;
    sender
        .login(server::USER, server::PASSWORD)
        .await
        .context("the sender cannot log in")?;
    let (tx, done) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Done { dist, .. } => {
                    let _ = tx.send((dist, Instant::now()));
                }
                // A lost sender shows in the round.
                Event::Closed(_) => break,
                _ => {}
            }
        }
    });
    Ok((sender, done))
}

/// What one round took, each from the start of the upload.
pub struct Round {
    /// Until the server answered `Accepted` (the image is on disk and queued).
    pub accepted: Duration,
    /// Until each terminal acknowledged, in the order they did.
    pub acks: Vec<Duration>,
    /// Until the sender heard `DistributionDone` (`None` when the server dropped the sender's
    /// connection before it was sent).
    pub done: Option<Duration>,
    /// CPU seconds the server used in the round.
    pub server_cpu: Duration,
    /// CPU seconds this process (sender and terminals) used in the round.
    pub bench_cpu: Duration,
    /// Cores other processes kept busy during the round (other builds on a shared machine).
    pub foreign_cores: f64,
}

impl Round {
    /// Until the last terminal acknowledged.
    pub fn last(&self) -> Duration {
        self.acks.last().copied().unwrap_or_default()
    }
}

/// An image of `bytes` bytes that does not compress (a scanned page mostly does not either).
pub fn payload(bytes: usize) -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(bytes + 8);
    while out.len() < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(bytes);
    Bytes::from(out)
}

impl Rig {
    /// Starts a server with `n` terminals in one group, connects them and the sender.
    pub async fn start(n: usize, heartbeat_ms: u64, tls: bool) -> anyhow::Result<Self> {
        host::require_fds(n as u64 + 256)?;
        let layout = Layout {
            members: n,
            heartbeat_ms,
            tls,
            ..Layout::default()
        };
        let server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;
        let inboxes = tempfile::Builder::new()
            .prefix("imagecast-bench-inbox-")
            .tempdir()?;
        let (done_tx, completions) = mpsc::unbounded_channel();
        let fleet = terminals::connect(
            &server,
            &server.members,
            Some(inboxes.path()),
            Some(done_tx),
        )
        .await?;
        let (sender, done) = connect_sender(&server).await?;
        Ok(Self {
            server,
            fleet,
            sender,
            completions,
            done,
            sender_dropped: 0,
            _inboxes: inboxes,
        })
    }

    /// Distributes `image` to the group once and waits until every terminal acknowledged it
    /// and the sender heard that the distribution is done.
    pub async fn round(&mut self, image: Bytes, timeout: Duration) -> anyhow::Result<Round> {
        let n = self.fleet.clients.len();
        let dist = DistributionId::new_random();
        let request = DistributionRequest {
            dist,
            groups: vec![server::GROUP.to_owned()],
            destinations: Vec::new(),
            pages: vec![OutgoingPage::from_bytes("scan.tif", image)],
        };
        let pids = [self.server.pid(), std::process::id()];
        let cpu0: Vec<Duration> = pids.iter().map(|&p| host::cpu_time(p)).collect();
        let host0 = host::busy_seconds();
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start + timeout);
        let accepted = tokio::time::timeout_at(deadline, self.sender.distribute(&request))
            .await
            .context("the upload did not finish in time")??;
        let accepted_at = start.elapsed();
        ensure!(
            accepted.destinations.len() == n,
            "the server accepted {} destinations, not {n}",
            accepted.destinations.len()
        );
        let mut acks = Vec::with_capacity(n);
        while acks.len() < n {
            let got = tokio::time::timeout_at(deadline, self.completions.recv()).await;
            match got {
                Ok(Some(c)) if c.dist == dist => acks.push(c.at.duration_since(start)),
                Ok(Some(_)) => {}
                Ok(None) => bail!("the terminals are gone"),
                Err(_) => bail!(
                    "only {} of {n} terminals acknowledged within {} s ({} connections closed, {} faulty deliveries); server log: {:?}",
                    acks.len(),
                    timeout.as_secs(),
                    self.fleet.closed(),
                    self.fleet.faults(),
                    self.server.log_problems(5)
                ),
            }
        }
        let done = loop {
            match tokio::time::timeout_at(deadline, self.done.recv()).await {
                Ok(Some((d, at))) if d == dist => break Some(at.duration_since(start)),
                Ok(Some(_)) => {}
                // The server dropped the sender after accepting the image (every terminal
                // has it, so the round counts): note it and connect the sender again.
                Ok(None) => {
                    self.sender_dropped += 1;
                    eprintln!(
                        "imagecast-bench: the server dropped the sender's connection; its log says: {:?}",
                        self.server.log_problems(2)
                    );
                    let (sender, done) = connect_sender(&self.server).await?;
                    (self.sender, self.done) = (sender, done);
                    break None;
                }
                Err(_) => bail!("the sender did not hear that the distribution is done"),
            }
        };
        let cpu1: Vec<Duration> = pids.iter().map(|&p| host::cpu_time(p)).collect();
        let wall = start.elapsed().as_secs_f64();
        let (server_cpu, bench_cpu) = (
            cpu1[0].saturating_sub(cpu0[0]),
            cpu1[1].saturating_sub(cpu0[1]),
        );
        let foreign = host::busy_seconds() - host0 - (server_cpu + bench_cpu).as_secs_f64();
        acks.sort();
        Ok(Round {
            accepted: accepted_at,
            acks,
            done,
            server_cpu,
            bench_cpu,
            // /proc/stat counts in 10 ms ticks: too coarse for shorter rounds.
            foreign_cores: if wall >= 0.1 {
                (foreign / wall).max(0.0)
            } else {
                0.0
            },
        })
    }

    /// Closes the terminals and the sender.
    pub async fn close(self) {
        self.fleet.close().await;
        self.sender.close().await;
    }

    /// Runs the warm-up and measured rounds of `image`, each after waiting for a quiet machine.
    /// A measured round during which other processes kept more than `max_foreign` cores busy
    /// is run again (at most as many extra times as there are rounds). Returns the measured
    /// rounds, the most busy cores seen before one, and how many rounds were run again.
    pub async fn rounds(
        &mut self,
        image: &Bytes,
        opts: &RoundOptions,
    ) -> anyhow::Result<(Vec<Round>, f64, usize)> {
        let mut measured = Vec::with_capacity(opts.rounds);
        let (mut busiest, mut redone, mut warm) = (0.0f64, 0, 0);
        while measured.len() < opts.rounds {
            let (wait, threshold) = (opts.quiet_wait, opts.quiet_threshold);
            let busy =
                tokio::task::spawn_blocking(move || host::wait_quiet(wait, threshold)).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let round = self.round(image.clone(), opts.round_timeout).await?;
            if warm < opts.warmup {
                warm += 1;
            } else if round.foreign_cores > opts.max_foreign && redone < opts.rounds {
                redone += 1;
            } else {
                busiest = busiest.max(busy);
                measured.push(round);
            }
        }
        Ok((measured, busiest, redone))
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn cpu_util(rounds: &[Round], cpu: impl Fn(&Round) -> Duration) -> f64 {
    let used: f64 = rounds.iter().map(|r| secs(cpu(r))).sum();
    let wall: f64 = rounds
        .iter()
        .map(|r| secs(r.done.unwrap_or(r.last())))
        .sum();
    used / wall.max(1e-9)
}

/// `fanout --terminals N --size-mib S --rounds R`.
pub async fn fanout(
    terminals: usize,
    size_mib: f64,
    opts: RoundOptions,
    tls: bool,
) -> anyhow::Result<Line> {
    let mut rig = Rig::start(terminals, opts.heartbeat_ms, tls).await?;
    let idle = rig.server.memory()?;
    let image = payload((size_mib * 1024.0 * 1024.0) as usize);
    let (rounds, busiest, redone) = rig.rounds(&image, &opts).await?;
    let peak = rig.server.memory()?;
    let last: Vec<f64> = rounds.iter().map(|r| secs(r.last())).collect();
    let median = report::median(&last);
    let line = Line::new("fanout")
        .field("terminals", terminals)
        .field("size_mib", size_mib)
        .num("seconds_median", median)
        .num("mib_per_s_aggregate", terminals as f64 * size_mib / median)
        .num("server_peak_rss_mib", mib(peak.peak))
        .field("tls", if tls { "on" } else { "off" })
        .field("receivers", "inbox-discard")
        .field("rounds", rounds.len())
        .num("seconds_min", report::min(&last))
        .num("seconds_max", report::max(&last))
        .spread(
            "mib_per_s",
            &last
                .iter()
                .map(|s| terminals as f64 * size_mib / s)
                .collect::<Vec<_>>(),
        )
        .num(
            "accepted_seconds_median",
            report::median(&rounds.iter().map(|r| secs(r.accepted)).collect::<Vec<_>>()),
        )
        .num(
            "first_seconds_median",
            report::median(
                &rounds
                    .iter()
                    .map(|r| secs(r.acks.first().copied().unwrap_or_default()))
                    .collect::<Vec<_>>(),
            ),
        )
        .num(
            "deliver_seconds_median",
            report::median(
                &rounds
                    .iter()
                    .map(|r| secs(r.last().saturating_sub(r.accepted)))
                    .collect::<Vec<_>>(),
            ),
        )
        .num(
            "done_seconds_median",
            report::median(
                &rounds
                    .iter()
                    .filter_map(|r| r.done.map(secs))
                    .collect::<Vec<_>>(),
            ),
        )
        .num("server_cpu_util", cpu_util(&rounds, |r| r.server_cpu))
        .num("bench_cpu_util", cpu_util(&rounds, |r| r.bench_cpu))
        .num("server_rss_idle_mib", mib(idle.rss))
        .num("server_rss_end_mib", mib(peak.rss))
        .num("busy_cores_before_max", busiest)
        .num(
            "foreign_cpu_cores_max",
            report::max(&rounds.iter().map(|r| r.foreign_cores).collect::<Vec<_>>()),
        )
        .field("rounds_redone", redone)
        .field("closed", rig.fleet.closed())
        .field("faults", rig.fleet.faults())
        .field("sender_dropped", rig.sender_dropped);
    rig.close().await;
    Ok(line)
}

/// `latency --terminals N --size-kib K --rounds R`: every terminal's ack time in every round.
pub async fn latency(terminals: usize, size_kib: f64, opts: RoundOptions) -> anyhow::Result<Line> {
    let mut rig = Rig::start(terminals, opts.heartbeat_ms, true).await?;
    let image = payload((size_kib * 1024.0) as usize);
    let (rounds, busiest, redone) = rig.rounds(&image, &opts).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let all: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.acks.iter().map(|&d| ms(d)))
        .collect();
    let accepted: Vec<f64> = rounds.iter().map(|r| ms(r.accepted)).collect();
    let line = Line::new("latency")
        .field("terminals", terminals)
        .field("size_kib", size_kib)
        .num("p50_ms", report::percentile(&all, 50.0))
        .num("p99_ms", report::percentile(&all, 99.0))
        .num("max_ms", report::max(&all))
        .field("samples", all.len())
        .field("rounds", rounds.len())
        .num("accepted_ms_p50", report::percentile(&accepted, 50.0))
        .num("accepted_ms_max", report::max(&accepted))
        .num(
            "last_ms_median",
            report::median(&rounds.iter().map(|r| ms(r.last())).collect::<Vec<_>>()),
        )
        .num("server_cpu_util", cpu_util(&rounds, |r| r.server_cpu))
        .num("busy_cores_before_max", busiest)
        .field("rounds_redone", redone)
        .field("tls", "on")
        .field("receivers", "inbox-discard")
        .field("closed", rig.fleet.closed())
        .field("faults", rig.fleet.faults())
        .field("sender_dropped", rig.sender_dropped);
    rig.close().await;
    Ok(line)
}
