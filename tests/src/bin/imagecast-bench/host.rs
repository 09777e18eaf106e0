//! What the host says about processes and itself, read from `/proc`: memory of a process,
//! CPU time, how busy the machine is, the file descriptor limit.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A process's resident memory, from `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// `VmRSS`: resident now, in bytes.
    pub rss: u64,
    /// `VmHWM`: the most it was ever resident, in bytes.
    pub peak: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read the status of process {pid}"))?;
    let kib = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss: kib("VmRSS:") * 1024,
        peak: kib("VmHWM:") * 1024,
    })
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // The kernel's USER_HZ is 100 on every Linux architecture we run on.
    Duration::from_millis(ticks * 10)
}

/// The process IDs of `pid`'s children, grandchildren and so on, read from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The parent is the second field after the command name.
            let ppid = text
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((child, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    // Bounded: each round adds only processes not seen yet.
    while let Some(p) = frontier.pop() {
        for &(c, pp) in &parents {
            if pp == p && !out.contains(&c) && c != pid {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// CPU time of `pid` and of its descendants alive now (a forking forwarder such as socat
/// serves each connection in a child of its own).
pub fn tree_cpu_time(pid: u32) -> Duration {
    descendants(pid)
        .into_iter()
        .map(cpu_time)
        .fold(cpu_time(pid), |a, b| a + b)
}

/// CPU use of several processes between two points in time, in cores.
pub struct CpuMeter {
    pids: Vec<u32>,
    start: Vec<Duration>,
    at: Instant,
}

impl CpuMeter {
    /// Starts measuring `pids`.
    pub fn start(pids: &[u32]) -> Self {
        Self {
            pids: pids.to_vec(),
            start: pids.iter().map(|&p| cpu_time(p)).collect(),
            at: Instant::now(),
        }
    }

    /// Cores used by each process since the start, in the order given.
    pub fn cores(&self) -> Vec<f64> {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        self.pids
            .iter()
            .zip(&self.start)
            .map(|(&p, &s)| cpu_time(p).saturating_sub(s).as_secs_f64() / wall)
            .collect()
    }
}

fn host_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// CPU seconds the whole machine has been busy since boot (all cores added up).
pub fn busy_seconds() -> f64 {
    host_ticks().map_or(0.0, |(busy, _)| busy as f64 * 0.01)
}

/// How many cores the whole machine kept busy over `window`.
pub fn busy_cores(window: Duration) -> f64 {
    let (Some((b0, t0)), start) = (host_ticks(), Instant::now()) else {
        return 0.0;
    };
    std::thread::sleep(window);
    let Some((b1, _t1)) = host_ticks() else {
        return 0.0;
    };
    let _ = t0;
    // Ticks are 10 ms of one core each.
    (b1.saturating_sub(b0)) as f64 * 0.01 / start.elapsed().as_secs_f64()
}

/// Waits (at most `limit`) until the machine is quiet: below `threshold` busy cores over a
/// quarter second. Returns the busy cores measured last. The machine is shared with other
/// builds, so a round that starts while a compiler runs would measure the compiler.
pub fn wait_quiet(limit: Duration, threshold: f64) -> f64 {
    let deadline = Instant::now() + limit;
    loop {
        let busy = busy_cores(Duration::from_millis(250));
        if busy <= threshold || Instant::now() >= deadline {
            return busy;
        }
    }
}

/// Kernel slab memory, host-wide (`Slab` in `/proc/meminfo`), in bytes: where socket buffers
/// and connection state live.
pub fn slab_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Slab:"))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map_or(0, |k| k * 1024)
}

/// Fails clearly when this process may not open `needed` files (the spawned server inherits
/// the same limit).
pub fn require_fds(needed: u64) -> anyhow::Result<()> {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<u64>().ok());
    match soft {
        Some(soft) if soft < needed => bail!(
            "this scenario needs about {needed} open files per process but the limit is {soft}: \
             raise it first (`ulimit -n {needed}`; tests/bench/run.sh does)"
        ),
        _ => Ok(()),
    }
}
