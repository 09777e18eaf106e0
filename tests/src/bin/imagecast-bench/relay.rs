//! `relay` and `relay-idle`: real-time sessions through the real server (issue 13).
//!
//! Every session joins two terminals of this process, each one [`Client`] connection of its
//! own (`receive: false`, as `imagecast relay pipe` and `relay listen` connect): demander `i`
//! (an outsider device) demands target `i` (a member device) by its domain; the target has
//! said it takes demands (`relay_listen`) and accepts. Both use the client library's relay
//! API: [`SessionSender::send`] within the credit the peer granted, [`SessionReceiver::recv`]
//! granting it back as data is taken.
//!
//! - `relay`: N sessions; each round both ends of every session send S bytes at once and
//!   read the other's S bytes ([`crate::stream::round`]). The same rounds run, alternating,
//!   over N TCP pairs joined by plain forwarders ([`crate::forwarder`]): the limit. With
//!   `--size-mib 64` the server's peak memory growth over the rounds is the "64 MiB each
//!   way" figure.
//! - `relay-idle`: the server's memory for N open, idle sessions, by the `idle` scenario's
//!   method (`/proc` `VmRSS` sampled each second over a keep-alive interval, after one
//!   interval of settling), measured twice: with the 2N terminals connected (the targets
//!   listening) and then with the N sessions open.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use imagecast_shared::client::{Client, Event, Events, RelaySession, SessionSender};
use imagecast_shared::msg::RelayTarget;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::fanout::{RoundOptions, payload};
use crate::forwarder::{self, Forwarder, Kind};
use crate::host::{self, mib};
use crate::report::{self, Line};
use crate::server::{BenchServer, Layout};
use crate::stream::{self, Pair, RoundTimes, Rx, Tx};
use crate::terminals;

/// Demands in flight at once while sessions open.
const DEMAND_CONCURRENCY: usize = 64;
/// How long a demand waits for its answer.
const DEMAND_WAIT: Duration = Duration::from_secs(60);

/// The terminals of the sessions: every connection (demanders, then targets), kept open as
/// long as the sessions live.
pub struct Parties {
    clients: Vec<Client>,
    closed: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
}

impl Parties {
    /// Connections that ended so far.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closes every connection (the server ends their sessions).
    pub async fn close(self, enders: Vec<SessionSender>) {
        self.closing.store(true, Ordering::SeqCst);
        for e in enders {
            let _ = e.end("the bench is over").await;
        }
        let mut set = JoinSet::new();
        for c in self.clients {
            set.spawn(async move { c.close().await });
        }
        while set.join_next().await.is_some() {}
    }
}

/// Drains a connection's events; a target answers every demand with "accepted" and hands
/// the session over on `opened`.
fn serve_events(
    client: Client,
    mut events: Events,
    opened: Option<mpsc::UnboundedSender<RelaySession>>,
    closed: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Demanded(d) => {
                    if let Some(opened) = &opened {
                        match client.answer(d.demand, Ok(())).await {
                            Ok(Some(session)) => {
                                let _ = opened.send(session);
                            }
                            Ok(None) => {}
                            Err(e) => eprintln!("imagecast-bench: an answer failed: {e}"),
                        }
                    }
                }
                Event::Closed(reason) => {
                    if !closing.load(Ordering::SeqCst) {
                        if closed.load(Ordering::SeqCst) < 3 {
                            eprintln!(
                                "imagecast-bench: a relay terminal's connection ended: {reason}"
                            );
                        }
                        closed.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
                _ => {}
            }
        }
    });
}

/// Connects the N demanders (the server's outsiders) and N targets (its members), has the
/// targets listen, and returns the connections once they are all up.
async fn connect_parties(
    server: &BenchServer,
    n: usize,
) -> anyhow::Result<(Parties, mpsc::UnboundedReceiver<RelaySession>)> {
    let closed = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicBool::new(false));
    let targets = terminals::dial_all(server, &server.members[..n], false).await?;
    let demanders = terminals::dial_all(server, &server.outsiders[..n], false).await?;
    let (opened_tx, opened) = mpsc::unbounded_channel();
    let mut target_clients = Vec::with_capacity(n);
    for (client, events) in targets {
        serve_events(
            client.clone(),
            events,
            Some(opened_tx.clone()),
            closed.clone(),
            closing.clone(),
        );
        target_clients.push(client);
    }
    let mut set = JoinSet::new();
    for c in &target_clients {
        let c = c.clone();
        set.spawn(async move { c.relay_listen().await });
    }
    while let Some(joined) = set.join_next().await {
        joined?.context("a target cannot take demands")?;
    }
    let mut demander_clients = Vec::with_capacity(n);
    for (client, events) in demanders {
        serve_events(
            client.clone(),
            events,
            None,
            closed.clone(),
            closing.clone(),
        );
        demander_clients.push(client);
    }
    Ok((
        Parties {
            clients: demander_clients.into_iter().chain(target_clients).collect(),
            closed,
            closing,
        },
        opened,
    ))
}

/// Demander `i` demands target `i`, [`DEMAND_CONCURRENCY`] at a time; returns both ends of
/// every session, in order.
async fn open_all(
    server: &BenchServer,
    parties: &Parties,
    opened: &mut mpsc::UnboundedReceiver<RelaySession>,
) -> anyhow::Result<Vec<(RelaySession, RelaySession)>> {
    let n = parties.clients.len() / 2;
    let demanders = &parties.clients[..n];
    let limit = Arc::new(Semaphore::new(DEMAND_CONCURRENCY));
    let mut set = JoinSet::new();
    for (i, c) in demanders.iter().enumerate() {
        let (c, limit) = (c.clone(), limit.clone());
        let target = server.members[i].domain.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let s = c
                .demand(RelayTarget::Device(target.clone()), DEMAND_WAIT)
                .await
                .with_context(|| format!("the demand to {target}"))?;
            anyhow::Ok((i, s))
        });
    }
    let mut at_a: Vec<Option<RelaySession>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, s) = joined??;
        at_a[i] = Some(s);
    }
    let index: HashMap<String, usize> = server.outsiders[..n]
        .iter()
        .enumerate()
        .map(|(i, d)| (d.domain.to_ascii_lowercase(), i))
        .collect();
    let mut at_b: Vec<Option<RelaySession>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        let s = tokio::time::timeout(DEMAND_WAIT, opened.recv())
            .await
            .context("a target's session did not open")?
            .context("the targets are gone")?;
        let i = *index
            .get(&s.peer.domain.to_ascii_lowercase())
            .with_context(|| format!("a session with {}", s.peer.domain))?;
        at_b[i] = Some(s);
    }
    at_a.into_iter()
        .zip(at_b)
        .map(|(a, b)| Ok((a.context("a demander's end")?, b.context("a target's end")?)))
        .collect()
}

/// What `relay` runs.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// Concurrent sessions.
    pub sessions: usize,
    /// MiB each end sends per round.
    pub size_mib: f64,
    /// TLS on every leg (the server's and the forwarders').
    pub tls: bool,
    /// The forwarders run beside the relay.
    pub forwarders: Vec<Kind>,
    /// socat's `-b` (0: its default, 8,192).
    pub socat_block: usize,
    /// Only A sends (B reads); otherwise both ends send at once.
    pub one_way: bool,
    /// Rounds and their bounds.
    pub rounds: RoundOptions,
}

/// One path the same rounds run over: the relay, or a forwarder.
struct Arm {
    name: &'static str,
    pairs: Vec<Pair>,
    /// The process doing the relaying (the server, or the forwarder and its children).
    pid: u32,
    measured: Vec<Measured>,
    redone: usize,
    busiest: f64,
    warm: usize,
}

struct Measured {
    times: RoundTimes,
    /// Cores the relaying process used during the round.
    relay_cores: f64,
    /// Cores this process (both ends of every session) used.
    bench_cores: f64,
    foreign: f64,
}

impl Arm {
    fn new(name: &'static str, pairs: Vec<Pair>, pid: u32) -> Arm {
        Arm {
            name,
            pairs,
            pid,
            measured: Vec::new(),
            redone: 0,
            busiest: 0.0,
            warm: 0,
        }
    }

    /// Runs one round after waiting for a quiet machine; keeps it when it counts.
    async fn run(
        &mut self,
        payload: &Bytes,
        one_way: bool,
        opts: &RoundOptions,
    ) -> anyhow::Result<()> {
        let (wait, threshold) = (opts.quiet_wait, opts.quiet_threshold);
        let busy = tokio::task::spawn_blocking(move || host::wait_quiet(wait, threshold)).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let me = std::process::id();
        let cpu0 = (host::tree_cpu_time(self.pid), host::cpu_time(me));
        let host0 = host::busy_seconds();
        let start = Instant::now();
        let pairs = std::mem::take(&mut self.pairs);
        let (pairs, times) = stream::round(pairs, payload, one_way, opts.round_timeout)
            .await
            .with_context(|| format!("a round over {}", self.name))?;
        self.pairs = pairs;
        let wall = start.elapsed().as_secs_f64().max(1e-9);
        let relay = host::tree_cpu_time(self.pid)
            .saturating_sub(cpu0.0)
            .as_secs_f64();
        let bench = host::cpu_time(me).saturating_sub(cpu0.1).as_secs_f64();
        // `/proc/stat` counts 10 ms ticks: judged only for rounds of 100 ms or more.
        let foreign = if wall >= 0.1 {
            ((host::busy_seconds() - host0 - relay - bench) / wall).max(0.0)
        } else {
            0.0
        };
        if self.warm < opts.warmup {
            self.warm += 1;
        } else if foreign > opts.max_foreign && self.redone < opts.rounds {
            self.redone += 1;
        } else {
            self.busiest = self.busiest.max(busy);
            self.measured.push(Measured {
                times,
                relay_cores: relay / wall,
                bench_cores: bench / wall,
                foreign,
            });
        }
        Ok(())
    }

    fn done(&self, opts: &RoundOptions) -> bool {
        self.measured.len() >= opts.rounds
    }

    /// Each-way MiB/s of every measured round (N × S over the round).
    fn rates(&self, n: usize, size_mib: f64) -> Vec<f64> {
        self.measured
            .iter()
            .map(|m| n as f64 * size_mib / m.times.all.as_secs_f64())
            .collect()
    }

    /// The line of this arm's figures.
    fn line(&self, prefix: &'static str, n: usize, size_mib: f64, tls: bool) -> Line {
        let rates = self.rates(n, size_mib);
        let per_session: Vec<f64> = self
            .measured
            .iter()
            .flat_map(|m| m.times.sessions.iter())
            .map(|d| size_mib / d.as_secs_f64())
            .collect();
        let seconds: Vec<f64> = self
            .measured
            .iter()
            .map(|m| m.times.all.as_secs_f64())
            .collect();
        let mean = |f: &dyn Fn(&Measured) -> f64| {
            self.measured.iter().map(f).sum::<f64>() / self.measured.len().max(1) as f64
        };
        Line::new(prefix)
            .field("path", self.name)
            .field("sessions", n)
            .field("size_mib", size_mib)
            .num("mib_per_s_each_way_median", report::median(&rates))
            .num("mib_per_s_each_way_min", report::min(&rates))
            .num("mib_per_s_each_way_max", report::max(&rates))
            .num("mib_per_s_both_ways_median", 2.0 * report::median(&rates))
            .num("session_mib_per_s_median", report::median(&per_session))
            .num("session_mib_per_s_min", report::min(&per_session))
            .field("tls", if tls { "on" } else { "off" })
            .field("rounds", self.measured.len())
            .num("seconds_median", report::median(&seconds))
            .num("relay_cpu_util", mean(&|m| m.relay_cores))
            .num("bench_cpu_util", mean(&|m| m.bench_cores))
            .num("busy_cores_before_max", self.busiest)
            .num(
                "foreign_cpu_cores_max",
                report::max(&self.measured.iter().map(|m| m.foreign).collect::<Vec<_>>()),
            )
            .field("rounds_redone", self.redone)
    }
}

/// `relay --sessions N --size-mib S [--plain] [--forwarder socat,rust]`: a `relay` line,
/// then one `relay_forwarder` line per forwarder.
pub async fn relay(o: RelayOptions) -> anyhow::Result<Vec<Line>> {
    let n = o.sessions.max(1);
    host::require_fds(4 * n as u64 + 256)?;
    let layout = Layout {
        members: n,
        outsiders: n,
        heartbeat_ms: o.rounds.heartbeat_ms,
        tls: o.tls,
        ..Layout::default()
    };
    let server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;
    let (parties, mut opened) = connect_parties(&server, n).await?;
    let sessions = open_all(&server, &parties, &mut opened).await?;
    let mut enders = Vec::with_capacity(n);
    let relay_pairs: Vec<Pair> = sessions
        .into_iter()
        .map(|(a, b)| {
            enders.push(a.sender.clone());
            Pair {
                a_tx: Tx::Relay(a.sender),
                a_rx: Rx::Relay(a.receiver),
                b_tx: Tx::Relay(b.sender),
                b_rx: Rx::Relay(b.receiver),
            }
        })
        .collect();
    let mut forwarders: Vec<Forwarder> = Vec::new();
    let mut arms = vec![Arm::new("relay", relay_pairs, server.pid())];
    for kind in &o.forwarders {
        let (fwd, pairs) = forwarder::pairs(*kind, n, o.tls, o.socat_block)
            .await
            .with_context(|| format!("pairs through {}", kind.name()))?;
        arms.push(Arm::new(kind.name(), pairs, fwd.pid()));
        forwarders.push(fwd);
    }
    let bytes = (o.size_mib * 1024.0 * 1024.0) as usize;
    if bytes == 0 {
        bail!("--size-mib must be more than 0");
    }
    let image = payload(bytes);
    let before = server.memory()?;
    // The server's resident memory, sampled every 20 ms while the rounds run: its peak
    // (`VmHWM`) may have been set before, while it started.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (pid, sampling) = (server.pid(), sampling.clone());
        tokio::task::spawn_blocking(move || {
            let mut most = 0u64;
            while sampling.load(Ordering::SeqCst) {
                most = most.max(host::memory(pid).map_or(0, |m| m.rss));
                std::thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    // Alternating: every arm's round i runs between the others' rounds i and i + 1, so a
    // disturbance of the shared machine hits both sides of a ratio alike.
    let opts = o.rounds;
    let mut guard = 0;
    while arms.iter().any(|a| !a.done(&opts)) {
        guard += 1;
        if guard > 3 * (opts.rounds + opts.warmup) + 3 {
            bail!("too many rounds were disturbed by other processes");
        }
        for arm in arms.iter_mut().filter(|a| !a.done(&opts)) {
            arm.run(&image, o.one_way, &opts).await?;
        }
    }
    sampling.store(false, Ordering::SeqCst);
    let rss_most = sampler.await?;
    let after = server.memory()?;
    let relayed_rounds = arms[0].warm + arms[0].measured.len() + arms[0].redone;
    let relay_rate = report::median(&arms[0].rates(n, o.size_mib));
    let mut line = arms[0]
        .line("relay", n, o.size_mib, o.tls)
        .num("server_rss_before_mib", mib(before.rss))
        .num("server_rss_max_mib", mib(rss_most))
        .num(
            "server_rss_growth_mib",
            mib(rss_most.saturating_sub(before.rss)),
        )
        .num("server_peak_before_mib", mib(before.peak))
        .num("server_peak_after_mib", mib(after.peak))
        .num(
            "server_peak_growth_mib",
            mib(after.peak.saturating_sub(before.peak)),
        )
        .num(
            "relayed_mib_each_way",
            relayed_rounds as f64 * n as f64 * o.size_mib,
        )
        .field("one_way", u8::from(o.one_way))
        .field("closed", parties.closed());
    for arm in &arms[1..] {
        let rate = report::median(&arm.rates(n, o.size_mib));
        line = line.num(&format!("vs_{}", arm.name), relay_rate / rate);
    }
    let mut lines = vec![line];
    for arm in &arms[1..] {
        let mut l = arm.line("relay_forwarder", n, o.size_mib, o.tls);
        if arm.name == "socat" {
            l = l.field(
                "socat_block",
                if o.socat_block == 0 {
                    8192
                } else {
                    o.socat_block
                },
            );
        }
        lines.push(l);
    }
    drop(arms);
    drop(forwarders);
    parties.close(enders).await;
    Ok(lines)
}

/// `relay-idle --sessions N`: the server's memory per open idle session.
pub async fn relay_idle(n: usize, heartbeat_ms: u64, tls: bool) -> anyhow::Result<Line> {
    let n = n.max(1);
    host::require_fds(2 * n as u64 + 256)?;
    let layout = Layout {
        members: n,
        outsiders: n,
        heartbeat_ms,
        tls,
        ..Layout::default()
    };
    let server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = server.memory()?;
    let slab0 = host::slab_bytes();
    let interval = Duration::from_millis(heartbeat_ms);
    let start = Instant::now();
    let (parties, mut opened) = connect_parties(&server, n).await?;
    let connect_seconds = start.elapsed().as_secs_f64();
    let connected = hold(&server, interval).await?;
    let slab1 = host::slab_bytes();
    let start = Instant::now();
    let pairs = open_all(&server, &parties, &mut opened).await?;
    let open_seconds = start.elapsed().as_secs_f64();
    let open = hold(&server, interval).await?;
    let slab2 = host::slab_bytes();
    let cpu = host::CpuMeter::start(&[server.pid()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_cpu = cpu.cores().first().copied().unwrap_or(0.0);
    let ended = pairs
        .iter()
        .filter(|(a, b)| a.sender.ended().is_some() || b.sender.ended().is_some())
        .count();
    let lost = parties.closed();
    if ended > 0 || lost > 0 {
        bail!(
            "{ended} of {n} idle sessions ended and {lost} connections closed; server log: {:?}",
            server.log_problems(5)
        );
    }
    let kib = |bytes: f64, per: usize| bytes / per as f64 / 1024.0;
    let base = baseline.rss as f64;
    let line = Line::new("relay_idle")
        .field("sessions", n)
        .num("per_session_kib", kib(open - connected, n))
        .num("per_session_with_terminals_kib", kib(open - base, n))
        .num("per_terminal_kib", kib(connected - base, 2 * n))
        .field("tls", if tls { "on" } else { "off" })
        .num("server_rss_baseline_mib", mib(baseline.rss))
        .num("server_rss_connected_mib", connected / (1024.0 * 1024.0))
        .num("server_rss_sessions_mib", open / (1024.0 * 1024.0))
        .num("server_peak_rss_mib", mib(server.memory()?.peak))
        .num(
            "kernel_slab_delta_mib",
            (slab2 as f64 - slab0 as f64) / (1024.0 * 1024.0),
        )
        .num(
            "kernel_slab_sessions_delta_mib",
            (slab2 as f64 - slab1 as f64) / (1024.0 * 1024.0),
        )
        .num("connect_seconds", connect_seconds)
        .num("open_seconds", open_seconds)
        .num("sessions_per_s", n as f64 / open_seconds.max(1e-9))
        .num("server_cpu_util_idle", idle_cpu)
        .field("heartbeat_ms", heartbeat_ms);
    let enders = pairs.iter().map(|(a, _)| a.sender.clone()).collect();
    drop(pairs);
    parties.close(enders).await;
    Ok(line)
}

/// Waits one keep-alive interval, then samples the server's resident memory once a second
/// for another; returns the median in bytes.
async fn hold(server: &BenchServer, interval: Duration) -> anyhow::Result<f64> {
    tokio::time::sleep(interval).await;
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < interval || samples.is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(server.memory()?.rss as f64);
    }
    Ok(report::median(&samples))
}
