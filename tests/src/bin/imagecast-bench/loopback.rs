//! `loopback`: the physical limit of a fan-out on this machine. One process writes the same
//! buffer to N TCP connections on 127.0.0.1, with no framing, no storage and no protocol; N
//! receivers read it and answer one byte.
//!
//! It is arranged exactly like `fanout`: the sender is a process of its own (this binary again,
//! `imagecast-bench loopback-sender`, on a multi-thread Tokio runtime with one task per
//! connection, as the server has), and the receivers are tasks on this process's runtime, as the
//! terminals are. The receivers read into a 256 KiB scratch buffer and drop the bytes, as
//! `Inbox` in `InboxMode::Discard` does. The clock starts when the sender is told to go and
//! stops when the last receiver has read the whole payload and written its byte back.
//!
//! With `--tls` every connection is TLS, with the server's certificate and configuration on the
//! sending side and the client library's on the receiving side: the limit of an encrypted
//! fan-out on this machine, where the receivers decrypt on the same cores as the sender
//! encrypts.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use imagecast_shared::tls::TlsSettings;

use crate::fanout::{RoundOptions, payload};
use crate::host;
use crate::report::{self, Line};

/// The sender's side: accepts `receivers` connections, then on every line of standard input
/// writes `bytes` bytes to each of them and reads one byte back. With `tls`, it makes itself a
/// certificate as `imagecast-server init` does and says its fingerprint after the address.
pub async fn sender(receivers: usize, bytes: usize, tls: bool) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let dir = tempfile::tempdir()?;
    let acceptor = if tls {
        imagecast_server::store::tls::create(dir.path(), &["127.0.0.1".to_owned()])?;
        let (acceptor, fingerprint) = imagecast_server::store::tls::load(dir.path())?;
        println!("listening on {} {fingerprint}", listener.local_addr()?);
        Some(acceptor)
    } else {
        println!("listening on {}", listener.local_addr()?);
        None
    };
    std::io::stdout().flush()?;
    let image = payload(bytes);
    let (go_tx, go_rx) = watch::channel(0u64);
    for _ in 0..receivers {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        match &acceptor {
            Some(acceptor) => {
                let stream = acceptor.accept(stream).await?;
                tokio::spawn(serve(stream, image.clone(), go_rx.clone()));
            }
            None => {
                tokio::spawn(serve(stream, image.clone(), go_rx.clone()));
            }
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    let (line_tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if line.is_err() || line_tx.send(()).is_err() {
                break;
            }
        }
    });
    let mut round = 0;
    while lines.recv().await.is_some() {
        round += 1;
        let _ = go_tx.send(round);
    }
    Ok(())
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    image: Bytes,
    mut go: watch::Receiver<u64>,
) {
    let mut ack = [0u8; 1];
    while go.changed().await.is_ok() {
        let sent = async {
            stream.write_all(&image).await?;
            stream.flush().await?;
            stream.read_exact(&mut ack).await
        };
        if sent.await.is_err() {
            return;
        }
    }
}

struct SenderProcess {
    child: Child,
    stdin: std::process::ChildStdin,
}

impl SenderProcess {
    /// The sender, its address, its certificate's fingerprint (with `tls`) and its output.
    #[allow(clippy::type_complexity)]
    fn start(
        receivers: usize,
        bytes: usize,
        tls: bool,
    ) -> anyhow::Result<(
        Self,
        String,
        Option<String>,
        BufReader<std::process::ChildStdout>,
    )> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "loopback-sender",
                "--receivers",
                &receivers.to_string(),
                "--bytes",
                &bytes.to_string(),
            ])
            .args(tls.then_some("--tls"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the loopback sender")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(said) = line.trim().strip_prefix("listening on ") else {
            bail!("the loopback sender said {line:?}");
        };
        let (addr, fingerprint) = match said.split_once(' ') {
            Some((addr, fp)) => (addr.to_owned(), Some(fp.to_owned())),
            None => (said.to_owned(), None),
        };
        Ok((Self { child, stdin }, addr, fingerprint, stdout))
    }
}

impl Drop for SenderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    bytes: usize,
    done: mpsc::UnboundedSender<(u64, Instant)>,
) -> anyhow::Result<()> {
    let mut scratch = vec![0u8; 256 * 1024];
    let mut round = 0u64;
    loop {
        let mut left = bytes;
        while left > 0 {
            let want = left.min(scratch.len());
            let n = stream.read(&mut scratch[..want]).await?;
            if n == 0 {
                return Ok(());
            }
            left -= n;
        }
        stream.write_all(&[1]).await?;
        stream.flush().await?;
        round += 1;
        let _ = done.send((round, Instant::now()));
    }
}

/// `loopback --receivers N --size-mib S --rounds R [--tls]`.
pub async fn loopback(
    receivers: usize,
    size_mib: f64,
    tls: bool,
    opts: RoundOptions,
) -> anyhow::Result<Line> {
    host::require_fds(receivers as u64 + 256)?;
    let bytes = (size_mib * 1024.0 * 1024.0) as usize;
    let (mut sender, addr, fingerprint, mut stdout) =
        tokio::task::spawn_blocking(move || SenderProcess::start(receivers, bytes, tls)).await??;
    if tls && fingerprint.is_none() {
        bail!("the loopback sender did not say its certificate's fingerprint");
    }
    let settings = fingerprint.map(|fp| Arc::new(TlsSettings::pinned(&fp)));
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let limit = Arc::new(Semaphore::new(64));
    let mut set = JoinSet::new();
    for _ in 0..receivers {
        let (addr, limit, settings, done) = (
            addr.clone(),
            limit.clone(),
            settings.clone(),
            done_tx.clone(),
        );
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let s = TcpStream::connect(&addr).await?;
            let _ = s.set_nodelay(true);
            match settings {
                Some(settings) => {
                    let s = imagecast_shared::client::dial::tls(
                        s,
                        &addr,
                        &settings,
                        Duration::from_secs(10),
                    )
                    .await?;
                    tokio::spawn(receive(s, bytes, done));
                }
                None => {
                    tokio::spawn(receive(s, bytes, done));
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined??;
    }
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        line
    })
    .await?;
    if ready.trim() != "ready" {
        bail!("the loopback sender said {ready:?}");
    }
    let sender_pid = sender.child.id();
    let me = std::process::id();
    let mut seconds = Vec::new();
    let (mut sender_cpu, mut bench_cpu, mut wall) = (0.0, 0.0, 0.0);
    let (mut busiest, mut foreign_max, mut redone) = (0.0f64, 0.0f64, 0);
    let mut round = 0u64;
    while seconds.len() < opts.rounds {
        round += 1;
        let (wait, threshold) = (opts.quiet_wait, opts.quiet_threshold);
        let busy = tokio::task::spawn_blocking(move || host::wait_quiet(wait, threshold)).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu0 = (host::cpu_time(sender_pid), host::cpu_time(me));
        let host0 = host::busy_seconds();
        let start = Instant::now();
        writeln!(sender.stdin, "go")?;
        sender.stdin.flush()?;
        let deadline = tokio::time::Instant::from_std(start + opts.round_timeout);
        let mut got = 0;
        let mut last = start;
        while got < receivers {
            match tokio::time::timeout_at(deadline, done.recv()).await {
                Ok(Some((r, at))) if r == round => {
                    got += 1;
                    last = last.max(at);
                }
                Ok(Some(_)) => {}
                Ok(None) => bail!("the receivers are gone"),
                Err(_) => bail!("only {got} of {receivers} receivers had the payload in time"),
            }
        }
        let took = last.duration_since(start).as_secs_f64();
        let s_cpu = host::cpu_time(sender_pid)
            .saturating_sub(cpu0.0)
            .as_secs_f64();
        let b_cpu = host::cpu_time(me).saturating_sub(cpu0.1).as_secs_f64();
        let elapsed = start.elapsed().as_secs_f64();
        let foreign = if elapsed >= 0.1 {
            ((host::busy_seconds() - host0 - s_cpu - b_cpu) / elapsed).max(0.0)
        } else {
            0.0
        };
        if (round as usize) <= opts.warmup {
            continue;
        }
        if foreign > opts.max_foreign && redone < opts.rounds {
            redone += 1;
            continue;
        }
        seconds.push(took);
        sender_cpu += s_cpu;
        bench_cpu += b_cpu;
        wall += elapsed;
        busiest = busiest.max(busy);
        foreign_max = foreign_max.max(foreign);
    }
    let median = report::median(&seconds);
    Ok(Line::new("loopback")
        .field("receivers", receivers)
        .field("size_mib", size_mib)
        .num("seconds_median", median)
        .num("mib_per_s_aggregate", receivers as f64 * size_mib / median)
        .field("impl", "rust-tokio")
        .field("tls", if tls { "on" } else { "off" })
        .field("rounds", seconds.len())
        .num("seconds_min", report::min(&seconds))
        .num("seconds_max", report::max(&seconds))
        .num("sender_cpu_util", sender_cpu / wall.max(1e-9))
        .num("bench_cpu_util", bench_cpu / wall.max(1e-9))
        .num("busy_cores_before_max", busiest)
        .num("foreign_cpu_cores_max", foreign_max)
        .field("rounds_redone", redone))
}
