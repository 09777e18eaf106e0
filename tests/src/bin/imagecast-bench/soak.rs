//! `soak --minutes N`: continuous mixed load on one server for N minutes.
//!
//! - **Terminals**: `--terminals` receiving terminals (members of the bench group) that
//!   reconnect as `imagecast receive` does ([`crate::reconnect`]); `--slow` of them wait
//!   100 ms before each piece of page data (slow readers); `--churners` of them are closed
//!   one a second by the scenario and come back after 0.5–3 s (terminals going and coming).
//! - **Distributions**: `--senders` logged-in senders each start one distribution every
//!   `--interval-ms` to 3–100 terminals chosen at random (named destinations, the way a
//!   group of that size resolves), one page of `--size-kib`; a sender waits for `Accepted`,
//!   not for the deliveries.
//! - **Registrations**: `--registrars` further devices, logged in, register with the group
//!   and withdraw again, in a loop.
//!
//! Delivery latency is from the start of the upload to a terminal's acknowledgement, for
//! terminals that are neither slow nor churned; it is grouped by the minute in which the
//! distribution started. The server's `VmRSS` is sampled every 2 s; the growth compares
//! the median of the last 30 s with the median of the 30 s after the warm-up (the first
//! minute, or the first third of a shorter run). At the end the senders stop and every
//! accepted delivery must arrive within 60 s: `lost` counts those that did not.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{Client, DistributionRequest, Inbox, InboxMode, OutgoingPage};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::fanout::payload;
use crate::host::{self, mib};
use crate::reconnect::{self, Behaviour, Report, Rng};
use crate::report::{self, Line};
use crate::server::{self, BenchServer, Layout};

/// What the soak runs.
#[derive(Clone, Copy, Debug)]
pub struct SoakOptions {
    /// How long the load runs.
    pub minutes: f64,
    /// Receiving terminals.
    pub terminals: usize,
    /// Of them, slow readers.
    pub slow: usize,
    /// Of them, terminals that go and come.
    pub churners: usize,
    /// Concurrent senders.
    pub senders: usize,
    /// Each sender starts a distribution this often.
    pub interval: Duration,
    /// The page's size.
    pub size_kib: usize,
    /// Devices registering and withdrawing in a loop.
    pub registrars: usize,
    /// TLS (the default) or plain TCP.
    pub tls: bool,
    /// The server's heartbeat interval.
    pub heartbeat_ms: u64,
}

/// A distribution the server accepted.
struct Sent {
    start: Instant,
    destinations: usize,
}

/// `soak --minutes N`.
pub async fn soak(o: SoakOptions) -> anyhow::Result<Line> {
    anyhow::ensure!(
        o.terminals >= 100 && o.terminals > o.slow + o.churners,
        "--terminals must be at least 100 (groups go up to 100) and more than --slow + --churners"
    );
    host::require_fds((o.terminals + o.registrars) as u64 + 256)?;
    let layout = Layout {
        members: o.terminals,
        outsiders: o.registrars,
        heartbeat_ms: o.heartbeat_ms,
        tls: o.tls,
        ..Layout::default()
    };
    let server = Arc::new(tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??);
    let inboxes = tempfile::Builder::new()
        .prefix("imagecast-bench-inbox-")
        .tempdir()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    // Terminal i is slow for i < slow, a churner for slow <= i < slow + churners.
    let is_slow = |i: usize| i < o.slow;
    let is_churner = |i: usize| i >= o.slow && i < o.slow + o.churners;
    let mut kicks = Vec::with_capacity(o.terminals);
    for (i, device) in server.members.iter().enumerate() {
        let inbox = Inbox::open(inboxes.path().join(&device.domain), InboxMode::Discard)
            .with_context(|| format!("inbox of {}", device.domain))?;
        let behaviour = Behaviour {
            slow: is_slow(i).then_some(Duration::from_millis(100)),
            first_dial: Some(gate.clone()),
        };
        kicks.push(reconnect::spawn(
            i,
            server.config(device, true),
            inbox,
            behaviour,
            tx.clone(),
            stop.clone(),
        ));
    }
    drop(tx);
    let mut up = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while up.len() < o.terminals {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Report::Connected { index, .. })) => {
                up.insert(index);
            }
            Ok(Some(Report::GaveUp { error, .. })) => anyhow::bail!("a terminal gave up: {error}"),
            Ok(Some(_)) => {}
            _ => anyhow::bail!("only {} of {} terminals connected", up.len(), o.terminals),
        }
    }

    let errors = Arc::new(AtomicUsize::new(0));
    let distributions = Arc::new(AtomicUsize::new(0));
    let registrations = Arc::new(AtomicUsize::new(0));
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<(DistributionId, Sent)>();
    let start = Instant::now();
    let run_for = Duration::from_secs_f64(o.minutes * 60.0);
    let end = start + run_for;
    let mut load = JoinSet::new();

    // Senders.
    let image = payload(o.size_kib * 1024);
    for s in 0..o.senders {
        let (server, image, stop, errors, distributions, sent_tx) = (
            server.clone(),
            image.clone(),
            stop.clone(),
            errors.clone(),
            distributions.clone(),
            sent_tx.clone(),
        );
        load.spawn(async move {
            let mut rng = Rng::new(0x5EED_0000 + s as u64);
            let mut client = None;
            let mut next = Instant::now();
            while Instant::now() < end && !*stop.borrow() {
                tokio::time::sleep_until(next.into()).await;
                next += o.interval;
                if Instant::now() >= end {
                    break;
                }
                if client.is_none() {
                    client = connect_user(&server, &server.sender).await.ok();
                }
                let Some(c) = client.as_ref() else {
                    errors.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                let k = rng.range(3, 100);
                let mut pool: Vec<usize> = (0..server.members.len()).collect();
                for j in 0..k {
                    let pick = rng.range(j, pool.len() - 1);
                    pool.swap(j, pick);
                }
                let destinations: Vec<String> = pool[..k]
                    .iter()
                    .map(|&i| server.members[i].domain.clone())
                    .collect();
                let dist = DistributionId::new_random();
                let t = Instant::now();
                let request = DistributionRequest {
                    dist,
                    groups: Vec::new(),
                    destinations,
                    pages: vec![OutgoingPage::from_bytes("soak.tif", image.clone())],
                };
                match c.distribute(&request).await {
                    Ok(accepted) => {
                        distributions.fetch_add(1, Ordering::SeqCst);
                        let _ = sent_tx.send((
                            dist,
                            Sent {
                                start: t,
                                destinations: accepted.destinations.len(),
                            },
                        ));
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::SeqCst) < 3 {
                            eprintln!("imagecast-bench: a distribution failed: {e}");
                        }
                        client = None;
                    }
                }
            }
        });
    }
    drop(sent_tx);

    // Registrations and withdrawals.
    for r in 0..o.registrars {
        let (server, stop, errors, registrations) = (
            server.clone(),
            stop.clone(),
            errors.clone(),
            registrations.clone(),
        );
        load.spawn(async move {
            let mut client = None;
            while Instant::now() < end && !*stop.borrow() {
                if client.is_none() {
                    client = connect_user(&server, &server.outsiders[r]).await.ok();
                }
                let Some(c) = client.as_ref() else {
                    errors.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                let ok = c.register(server::GROUP).await.is_ok()
                    && c.withdraw(server::GROUP).await.is_ok();
                if ok {
                    registrations.fetch_add(1, Ordering::SeqCst);
                } else {
                    if errors.fetch_add(1, Ordering::SeqCst) < 3 {
                        eprintln!("imagecast-bench: a registration or withdrawal failed");
                    }
                    client = None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    // Churn: one terminal a second goes away for 0.5–3 s.
    if o.churners > 0 {
        let stop = stop.clone();
        let churn: Vec<_> = (o.slow..o.slow + o.churners)
            .map(|i| kicks[i].clone())
            .collect();
        load.spawn(async move {
            let mut rng = Rng::new(0xC0FFEE);
            while Instant::now() < end && !*stop.borrow() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let who = rng.range(0, churn.len() - 1);
                let away = Duration::from_millis(rng.range(500, 3000) as u64);
                let _ = churn[who].send(away);
            }
        });
    }

    // Memory samples.
    let pid = server.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < end {
            if let Ok(m) = host::memory(pid) {
                samples.push((start.elapsed().as_secs_f64(), m.rss as f64));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        samples
    });
    let cpu = host::CpuMeter::start(&[server.pid(), std::process::id()]);

    // Collect until the load ends, then until every accepted delivery arrived (60 s).
    let mut sent: HashMap<DistributionId, Sent> = HashMap::new();
    let mut done: HashSet<(DistributionId, usize)> = HashSet::new();
    let mut early: Vec<(DistributionId, usize, Instant)> = Vec::new();
    let mut latency_by_minute: Vec<Vec<f64>> = Vec::new();
    let (mut lost_unkicked, mut kicked, mut faults, mut gave_up, mut dial_failed) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut load_over = false;
    let mut drain_deadline = None;
    let mut record = |dist: DistributionId,
                      index: usize,
                      at: Instant,
                      sent: &HashMap<DistributionId, Sent>,
                      done: &mut HashSet<(DistributionId, usize)>| {
        let Some(s) = sent.get(&dist) else {
            return false;
        };
        if !done.insert((dist, index)) {
            return true;
        }
        if !is_slow(index) && !is_churner(index) {
            let minute = (s.start.duration_since(start).as_secs_f64() / 60.0) as usize;
            if latency_by_minute.len() <= minute {
                latency_by_minute.resize(minute + 1, Vec::new());
            }
            latency_by_minute[minute].push(at.duration_since(s.start).as_secs_f64() * 1000.0);
        }
        true
    };
    let expected = |sent: &HashMap<DistributionId, Sent>| -> usize {
        sent.values().map(|s| s.destinations).sum()
    };
    loop {
        if load_over && done.len() >= expected(&sent) {
            break;
        }
        let limit =
            drain_deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
        tokio::select! {
            got = sent_rx.recv(), if !load_over => match got {
                Some((dist, s)) => {
                    sent.insert(dist, s);
                    // Acknowledgements that came before `Accepted` reached the sender.
                    let waiting = std::mem::take(&mut early);
                    for (d, i, at) in waiting {
                        if !record(d, i, at, &sent, &mut done) {
                            early.push((d, i, at));
                        }
                    }
                }
                None => {
                    load_over = true;
                    drain_deadline = Some(tokio::time::Instant::now() + Duration::from_secs(60));
                }
            },
            got = rx.recv() => match got {
                Some(Report::Completed { index, dist, at }) => {
                    if !record(dist, index, at, &sent, &mut done) {
                        early.push((dist, index, at));
                    }
                }
                Some(Report::Lost { kicked: k, .. }) => {
                    if k { kicked += 1 } else { lost_unkicked += 1 }
                }
                Some(Report::Fault) => faults += 1,
                Some(Report::GaveUp { .. }) => gave_up += 1,
                Some(Report::DialFailed { .. }) => dial_failed += 1,
                Some(Report::Connected { .. }) => {}
                None => break,
            },
            _ = tokio::time::sleep_until(limit) => {
                if load_over { break; }
            }
        }
    }
    let cores = cpu.cores();
    let _ = stop_tx.send(true);
    while load.join_next().await.is_some() {}
    let samples = sampler.await.unwrap_or_default();
    let delivered = done.len();
    let lost = expected(&sent).saturating_sub(delivered);

    let total = run_for.as_secs_f64();
    let warm = if total >= 180.0 { 60.0 } else { total / 3.0 };
    let window = 30.0f64.min(total / 6.0);
    let in_range = |a: f64, b: f64| -> Vec<f64> {
        samples
            .iter()
            .filter(|(t, _)| *t >= a && *t < b)
            .map(|(_, r)| *r)
            .collect()
    };
    let rss_warm = report::median(&in_range(warm, warm + window));
    let rss_end = report::median(&in_range(total - window, total + 1.0));
    let rss_max = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let first = latency_by_minute.first().cloned().unwrap_or_default();
    let last_full = (total / 60.0).floor() as usize;
    let last = if last_full >= 1 {
        latency_by_minute
            .get(last_full - 1)
            .cloned()
            .unwrap_or_default()
    } else {
        first.clone()
    };
    let p99_first = report::percentile(&first, 99.0);
    let p99_last = report::percentile(&last, 99.0);
    let all: Vec<f64> = latency_by_minute.iter().flatten().copied().collect();
    let per_minute: Vec<String> = latency_by_minute
        .iter()
        .map(|m| report::sig3(report::percentile(m, 99.0)))
        .collect();
    // The median RSS of each minute, to tell growth that levels off from growth that goes on.
    let rss_by_minute: Vec<String> = (0..(total / 60.0).ceil() as usize)
        .map(|m| {
            let v = in_range(m as f64 * 60.0, (m + 1) as f64 * 60.0);
            report::sig3(report::median(&v) / (1024.0 * 1024.0))
        })
        .collect();
    let errors_total = errors.load(Ordering::SeqCst) + lost + faults + gave_up + lost_unkicked;
    let problems = server.log_problems(1000).len();
    drop(kicks);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Line::new("soak")
        .field("minutes", o.minutes)
        .num("rss_growth_pct", (rss_end / rss_warm - 1.0) * 100.0)
        .field("errors", errors_total)
        .num("p99_first_minute_ms", p99_first)
        .num("p99_last_minute_ms", p99_last)
        .num("p99_ratio", p99_last / p99_first)
        .field("tls", if o.tls { "on" } else { "off" })
        .field("terminals", o.terminals)
        .field("slow", o.slow)
        .field("churners", o.churners)
        .field("senders", o.senders)
        .field("interval_ms", o.interval.as_millis())
        .field("size_kib", o.size_kib)
        .field("registrars", o.registrars)
        .field("distributions", distributions.load(Ordering::SeqCst))
        .field("deliveries", delivered)
        .field("lost", lost)
        .field("registrations", registrations.load(Ordering::SeqCst))
        .field("churned", kicked)
        .field("unexpected_disconnects", lost_unkicked)
        .field("faults", faults)
        .field("gave_up", gave_up)
        .field("dial_failed", dial_failed)
        .field("request_errors", errors.load(Ordering::SeqCst))
        .num("p50_ms", report::percentile(&all, 50.0))
        .num("p99_ms", report::percentile(&all, 99.0))
        .field("p99_ms_by_minute", per_minute.join(","))
        .num("server_rss_warm_mib", rss_warm / (1024.0 * 1024.0))
        .num("server_rss_end_mib", rss_end / (1024.0 * 1024.0))
        .num("server_rss_max_mib", rss_max / (1024.0 * 1024.0))
        .field("server_rss_mib_by_minute", rss_by_minute.join(","))
        .num("server_peak_rss_mib", mib(server.memory()?.peak))
        .num("warmup_s", warm)
        .num("server_cpu_util", cores.first().copied().unwrap_or(0.0))
        .num("bench_cpu_util", cores.get(1).copied().unwrap_or(0.0))
        .field("server_log_problems", problems))
}

/// Connects `device` (not receiving) and logs the bench user in.
async fn connect_user(server: &BenchServer, device: &server::Device) -> anyhow::Result<Client> {
    let (client, events) = Client::connect(&server.config(device, false)).await?;
    // Nothing is pushed to a connection that does not receive but its progress events.
    tokio::spawn(async move {
        let mut events = events;
        while events.recv().await.is_some() {}
    });
    client.login(server::USER, server::PASSWORD).await?;
    Ok(client)
}
