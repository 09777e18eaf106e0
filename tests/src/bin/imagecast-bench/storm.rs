//! `restart-storm`: N receiving terminals are connected; the server is stopped with SIGTERM
//! and started again on the same data directory and port; every terminal comes back on its
//! own with the back-off of `imagecast receive` ([`crate::reconnect`]).
//!
//! Times are from the SIGTERM (`back_*_s`) and from the moment the new server printed
//! `listening` (`back_*_after_listen_s`); a terminal is back when its handshake succeeded
//! (the server authenticated its device token and the connection takes deliveries). Then
//! one distribution of a small image to the whole group proves they receive: every terminal
//! must acknowledge it. Failed dials are counted by kind, separately before and after the
//! new server listens (before, a refused connection is simply the server being away); the
//! host's `ListenOverflows` and `ListenDrops` (`/proc/net/netstat`) say whether the accept
//! queue dropped a connection. `waves` counts the 100 ms intervals after the restart in which
//! more than 5 % of the terminals dialled: with a back-off without jitter they dial in
//! lockstep, a few large waves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{Client, DistributionRequest, Inbox, InboxMode, OutgoingPage};
use tokio::sync::{mpsc, watch};

use crate::fanout::payload;
use crate::host::{self, mib};
use crate::reconnect::{self, Behaviour, Report};
use crate::report::Line;
use crate::server::{self, BenchServer, Layout};

/// How long after the new server listens the terminals may take before the scenario stops
/// waiting for them.
const BACK_LIMIT: Duration = Duration::from_secs(120);

/// `restart-storm --terminals N`.
pub async fn restart_storm(terminals: usize, tls: bool, heartbeat_ms: u64) -> anyhow::Result<Line> {
    host::require_fds(terminals as u64 + 256)?;
    let layout = Layout {
        members: terminals,
        heartbeat_ms,
        tls,
        ..Layout::default()
    };
    let mut server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;
    let inboxes = tempfile::Builder::new()
        .prefix("imagecast-bench-inbox-")
        .tempdir()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop) = watch::channel(false);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut kicks = Vec::with_capacity(terminals);
    for (i, device) in server.members.iter().enumerate() {
        let mut cfg = server.config(device, true);
        // A real terminal's timeouts, not the bench's generous ones.
        let defaults = imagecast_shared::client::ClientConfig::new("", "", "", true);
        cfg.connect_timeout = defaults.connect_timeout;
        cfg.request_timeout = defaults.request_timeout;
        let inbox = Inbox::open(inboxes.path().join(&device.domain), InboxMode::Discard)
            .with_context(|| format!("inbox of {}", device.domain))?;
        let behaviour = Behaviour {
            slow: None,
            first_dial: Some(gate.clone()),
        };
        kicks.push(reconnect::spawn(
            i,
            cfg,
            inbox,
            behaviour,
            tx.clone(),
            stop.clone(),
        ));
    }

    // Everyone connected first (dialled 64 at a time).
    let start = Instant::now();
    let mut up = vec![false; terminals];
    let mut count = 0;
    let mut gave_up = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while count < terminals {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Report::Connected { index, .. })) if !up[index] => {
                up[index] = true;
                count += 1;
            }
            Ok(Some(Report::GaveUp { error, .. })) => {
                anyhow::bail!("a terminal gave up while connecting first: {error}");
            }
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("the terminals are gone"),
            Err(_) => anyhow::bail!("only {count} of {terminals} terminals connected in 300 s"),
        }
    }
    let connect_seconds = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    while rx.try_recv().is_ok() {}
    let rss_before = server.memory()?.rss;

    // The restart.
    let net0 = listen_counters();
    let term_at = Instant::now();
    let (mut server, stop_took) = tokio::task::spawn_blocking(move || {
        let took = server.terminate(Duration::from_secs(60));
        (server, took)
    })
    .await?;
    let stop_took = stop_took?;
    let (server, listen_at) = tokio::task::spawn_blocking(move || {
        let r = server.start_again();
        (server, r.map(|()| Instant::now()))
    })
    .await?;
    let listen_at = listen_at?;

    let mut back: Vec<Option<Instant>> = vec![None; terminals];
    let mut back_count = 0;
    let mut lost = 0usize;
    let mut errors_before: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors_after: BTreeMap<String, usize> = BTreeMap::new();
    let mut dials: Vec<Instant> = Vec::new();
    let mut faults = 0usize;
    let deadline = tokio::time::Instant::from_std(listen_at + BACK_LIMIT);
    while back_count < terminals {
        let Ok(got) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        match got {
            Some(Report::Connected { index, at, dialled }) => {
                dials.push(dialled);
                if back[index].is_none() {
                    back[index] = Some(at);
                    back_count += 1;
                }
            }
            Some(Report::DialFailed { dialled, kind }) => {
                dials.push(dialled);
                // By when the dial began: its failure may be read a little later.
                let map = if dialled < listen_at {
                    &mut errors_before
                } else {
                    &mut errors_after
                };
                *map.entry(kind).or_default() += 1;
            }
            Some(Report::Lost { .. }) => lost += 1,
            Some(Report::GaveUp { error, .. }) => {
                gave_up += 1;
                if gave_up <= 3 {
                    eprintln!("imagecast-bench: a terminal gave up: {error}");
                }
            }
            Some(Report::Fault) => faults += 1,
            Some(Report::Completed { .. }) => {}
            None => break,
        }
    }
    let net1 = listen_counters();
    let from_term: Vec<f64> = back
        .iter()
        .flatten()
        .map(|t| t.duration_since(term_at).as_secs_f64())
        .collect();
    let from_listen: Vec<f64> = back
        .iter()
        .flatten()
        .map(|t| t.saturating_duration_since(listen_at).as_secs_f64())
        .collect();
    let rank = |v: &[f64], p: f64| {
        // Of all N terminals: one that never came back makes the 100 % figure infinite.
        let need = ((p / 100.0) * terminals as f64).ceil() as usize;
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s.get(need.max(1) - 1).copied().unwrap_or(f64::INFINITY)
    };
    // Dials after the restart, by 100 ms interval.
    let mut buckets: BTreeMap<u64, usize> = BTreeMap::new();
    for t in &dials {
        *buckets
            .entry((t.duration_since(term_at).as_millis() / 100) as u64)
            .or_default() += 1;
    }
    let wave_min = (terminals / 20).max(1);
    let waves: Vec<String> = buckets
        .iter()
        .filter(|(_, n)| **n > wave_min)
        .map(|(b, n)| format!("{:.1}s:{n}", *b as f64 / 10.0))
        .collect();
    eprintln!("imagecast-bench: dials begun per 100 ms after SIGTERM (> 5 %): {waves:?}");
    let peak = buckets.values().copied().max().unwrap_or(0);

    // Receiving: one small image to the whole group.
    let (received, received_seconds) = prove_receiving(&server, &mut rx, terminals).await?;
    let rss_after = server.memory()?.rss;

    let _ = stop_tx.send(true);
    drop(kicks);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let refused_listening = errors_after.values().sum::<usize>();
    let fmt_kinds = |m: &BTreeMap<String, usize>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter()
                .map(|(k, n)| format!("{k}:{n}"))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    Ok(Line::new("restart_storm")
        .field("terminals", terminals)
        .field("tls", if tls { "on" } else { "off" })
        .num("back_50_s", rank(&from_term, 50.0))
        .num("back_99_s", rank(&from_term, 99.0))
        .num("back_100_s", rank(&from_term, 100.0))
        .field("back", back_count)
        .field("gave_up", gave_up)
        .field("received_after", received)
        .num("received_seconds", received_seconds)
        .num("back_50_after_listen_s", rank(&from_listen, 50.0))
        .num("back_99_after_listen_s", rank(&from_listen, 99.0))
        .num("back_100_after_listen_s", rank(&from_listen, 100.0))
        .num("stop_seconds", stop_took.as_secs_f64())
        .num(
            "listening_after_s",
            listen_at.duration_since(term_at).as_secs_f64(),
        )
        .field("dial_errors_while_away", fmt_kinds(&errors_before))
        .field("dial_errors_while_listening", fmt_kinds(&errors_after))
        .field("dial_errors_while_listening_total", refused_listening)
        .field("listen_overflows", net1.0.saturating_sub(net0.0))
        .field("listen_drops", net1.1.saturating_sub(net0.1))
        .field("dials_peak_per_100ms", peak)
        .field("waves", waves.len())
        .field(
            "wave_times",
            waves
                .iter()
                .map(|w| w.split(':').next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
        )
        .field("lost", lost)
        .field("faults", faults)
        .num("connect_seconds", connect_seconds)
        .num("server_rss_before_mib", mib(rss_before))
        .num("server_rss_after_mib", mib(rss_after))
        .field("backoff", "receive:200ms-x2-5s,jitter-upper-half"))
}

/// Distributes a 64 KiB image to the group and waits (at most 60 s) until the terminals
/// acknowledged it; returns how many did and how long it took.
async fn prove_receiving(
    server: &BenchServer,
    rx: &mut mpsc::UnboundedReceiver<Report>,
    terminals: usize,
) -> anyhow::Result<(usize, f64)> {
    let (sender, _events) = Client::connect(&server.config(&server.sender, false))
        .await
        .context("the sender cannot connect after the restart")?;
    sender.login(server::USER, server::PASSWORD).await?;
    let dist = DistributionId::new_random();
    let start = Instant::now();
    let accepted = sender
        .distribute(&DistributionRequest {
            dist,
            groups: vec![server::GROUP.to_owned()],
            destinations: Vec::new(),
            pages: vec![OutgoingPage::from_bytes("proof.tif", payload(64 * 1024))],
        })
        .await
        .context("the distribution after the restart")?;
    anyhow::ensure!(
        accepted.destinations.len() == terminals,
        "accepted {} destinations, not {terminals}",
        accepted.destinations.len()
    );
    let mut got = vec![false; terminals];
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while n < terminals {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Report::Completed { index, dist: d, .. })) if d == dist && !got[index] => {
                got[index] = true;
                n += 1;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let took = start.elapsed().as_secs_f64();
    sender.close().await;
    Ok((n, if n == terminals { took } else { f64::NAN }))
}

/// The host's `TcpExt: ListenOverflows` and `ListenDrops` so far.
fn listen_counters() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let (Some(names), Some(values)) = (lines.first(), lines.get(1)) else {
        return (0, 0);
    };
    let pairs: Vec<(&str, u64)> = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .map(|(k, v)| (k, v.parse().unwrap_or(0)))
        .collect();
    let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map_or(0, |p| p.1);
    (get("ListenOverflows"), get("ListenDrops"))
}
