//! `registration`: K terminals register themselves with a group that already has M members,
//! C at a time (section 2.3 of the seed).
//!
//! The group file holds M member lines (listed in `all.rec` too); K more devices are listed in
//! `all.rec` only. Each of the K connects and logs in first (not timed); then C workers take
//! the connected terminals one by one and time `Register { group }` from the request to the
//! reply. Afterwards the group file is read back: `lost` counts registrations answered `Added`
//! whose line is not in the file, `existing_lost` the original members that went missing.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imagecast_shared::client::Client;
use imagecast_shared::msg::RegisterOutcome;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::host;
use crate::report::{self, Line};
use crate::server::{self, BenchServer, Layout};

/// `registration --members M --ops K --concurrency C`.
pub async fn registration(
    members: usize,
    ops: usize,
    concurrency: usize,
    heartbeat_ms: u64,
) -> anyhow::Result<Line> {
    host::require_fds(ops as u64 + 256)?;
    let layout = Layout {
        paper_members: members,
        outsiders: ops,
        heartbeat_ms,
        tls: true,
        ..Layout::default()
    };
    let server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;

    // Connect and log in every registering terminal before the clock starts.
    let limit = Arc::new(Semaphore::new(32));
    let mut set = JoinSet::new();
    for (i, device) in server.outsiders.iter().enumerate() {
        let cfg = server.config(device, false);
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let (client, events) = Client::connect(&cfg)
                .await
                .with_context(|| format!("{} cannot connect", cfg.device))?;
            client
                .login(server::USER, server::PASSWORD)
                .await
                .with_context(|| format!("{} cannot log in", cfg.device))?;
            anyhow::Ok((i, client, events))
        });
    }
    let mut clients: Vec<Option<(Client, String)>> = (0..ops).map(|_| None).collect();
    let mut event_streams = Vec::with_capacity(ops);
    while let Some(joined) = set.join_next().await {
        let (i, client, events) = joined??;
        clients[i] = Some((client, server.outsiders[i].domain.clone()));
        event_streams.push(events);
    }
    let clients: Arc<Vec<(Client, String)>> = Arc::new(clients.into_iter().flatten().collect());

    let cpu = host::CpuMeter::start(&[server.pid()]);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (clients, next) = (clients.clone(), next.clone());
        workers.spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((client, domain)) = clients.get(i) else {
                    return results;
                };
                let t = Instant::now();
                let outcome = client.register(server::GROUP).await;
                results.push((domain.clone(), t.elapsed(), outcome));
            }
        });
    }
    let mut latencies = Vec::with_capacity(ops);
    let mut added = Vec::new();
    let (mut already, mut errors) = (0usize, 0usize);
    while let Some(joined) = workers.join_next().await {
        for (domain, took, outcome) in joined? {
            latencies.push(took.as_secs_f64() * 1000.0);
            match outcome {
                Ok(RegisterOutcome::Added) => added.push(domain),
                Ok(RegisterOutcome::AlreadyMember) => already += 1,
                Err(e) => {
                    errors += 1;
                    if errors <= 3 {
                        eprintln!("imagecast-bench: a registration failed: {e}");
                    }
                }
            }
        }
    }
    let total = start.elapsed();
    let server_cpu = cpu.cores().first().copied().unwrap_or(0.0);

    let text = std::fs::read_to_string(server.group_path())?;
    let listed: HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(';').next())
        .map(str::trim)
        .collect();
    let lost = added
        .iter()
        .filter(|d| !listed.contains(d.as_str()))
        .count();
    let existing_lost = (0..members)
        .filter(|&i| !listed.contains(server::paper_domain(i).as_str()))
        .count();

    for (c, _) in clients.iter() {
        c.close().await;
    }
    drop(event_streams);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(Line::new("registration")
        .field("members", members)
        .field("ops", ops)
        .field("concurrency", concurrency)
        .num("p50_ms", report::percentile(&latencies, 50.0))
        .num("p99_ms", report::percentile(&latencies, 99.0))
        .field("lost", lost)
        .num("max_ms", report::max(&latencies))
        .num("ops_per_s", ops as f64 / total.as_secs_f64())
        .field("added", added.len())
        .field("already_member", already)
        .field("errors", errors)
        .field("existing_lost", existing_lost)
        .field("group_lines", listed.len())
        .num("server_cpu_util", server_cpu))
}
