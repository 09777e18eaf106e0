//! `idle`: what C connected, authenticated, idle terminals cost the server in memory.
//!
//! The server starts with C devices; its resident memory is read once it is listening (the
//! baseline). Then C terminals connect as receiving terminals (`receive: true`, so each has
//! its delivery worker on the server, as a real terminal does) and stay idle for two keep-alive
//! intervals, exchanging heartbeats. Resident memory is sampled once a second during the second
//! interval; `server_rss_mib` is their median and `per_terminal_kib` is
//! `(server_rss - baseline) / C`.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::host::{self, mib};
use crate::report::{self, Line};
use crate::server::{BenchServer, Layout};
use crate::terminals;

/// `idle --terminals C`.
pub async fn idle(terminals: usize, heartbeat_ms: u64, tls: bool) -> anyhow::Result<Line> {
    host::require_fds(terminals as u64 + 256)?;
    let layout = Layout {
        members: terminals,
        heartbeat_ms,
        tls,
        ..Layout::default()
    };
    let server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = server.memory()?;
    let slab0 = host::slab_bytes();
    let start = Instant::now();
    let fleet = terminals::connect(&server, &server.members, None, None).await?;
    let connect_seconds = start.elapsed().as_secs_f64();
    let interval = Duration::from_millis(heartbeat_ms);
    tokio::time::sleep(interval).await;
    let mut samples = Vec::new();
    let second = Instant::now();
    while second.elapsed() < interval {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(server.memory()?.rss as f64);
    }
    let slab1 = host::slab_bytes();
    let cpu = host::CpuMeter::start(&[server.pid()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_cpu = cpu.cores().first().copied().unwrap_or(0.0);
    let closed = fleet.closed();
    if closed > 0 {
        bail!(
            "{closed} of {terminals} idle terminals lost their connection; server log: {:?}",
            server.log_problems(5)
        );
    }
    let rss = report::median(&samples);
    let peak = server.memory()?.peak;
    let line = Line::new("idle")
        .field("terminals", terminals)
        .num("server_rss_mib", rss / (1024.0 * 1024.0))
        .num(
            "per_terminal_kib",
            (rss - baseline.rss as f64) / terminals as f64 / 1024.0,
        )
        .field("tls", if tls { "on" } else { "off" })
        .num("server_rss_baseline_mib", mib(baseline.rss))
        .num("server_peak_rss_mib", mib(peak))
        .num(
            "kernel_slab_delta_mib",
            (slab1 as f64 - slab0 as f64) / (1024.0 * 1024.0),
        )
        .num("connect_seconds", connect_seconds)
        .num("server_cpu_util_idle", idle_cpu)
        .field("heartbeat_ms", heartbeat_ms)
        .field("samples", samples.len())
        .field("closed", closed);
    fleet.close().await;
    Ok(line)
}
