//! Plain user-space TCP forwarders on this machine: the limit a relay session is compared
//! with. A relay session is two TCP connections joined by a process that copies bytes from
//! one to the other (plus framing, credit and the session's bookkeeping); a forwarder is
//! exactly that without the rest.
//!
//! - `socat`: `socat TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:SINK`, one
//!   child process per connection, copying `-b` bytes at a time (socat's default is 8,192).
//!   With TLS: `OPENSSL-LISTEN:...,cert=,key=,verify=0` to `OPENSSL:...,verify=0` (OpenSSL on
//!   both legs). Debian: `apt-get install socat`.
//! - `rust`: this binary again (`imagecast-bench forward`), a Tokio multi-thread runtime with
//!   one task per connection copying both ways with 256 KiB buffers (the relay's chunk size);
//!   with TLS, the server's rustls configuration on the listening leg and the client
//!   library's on the connecting leg, as the server has.
//!
//! The forwarder connects on to a sink in this process. A connects to the forwarder and says
//! its pair's number in 8 bytes; B is the sink's stream that carried that number.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use imagecast_shared::tls::TlsSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::stream::{Pair, Rx, Tx};

/// Copy buffer of the `rust` forwarder, each way.
const COPY_BUFFER: usize = 256 * 1024;
/// How long a connection to a forwarder that is starting is tried.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Which forwarder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// socat, a process per connection.
    Socat,
    /// `imagecast-bench forward`: Tokio, 256 KiB buffers, rustls.
    Rust,
}

impl Kind {
    /// The name in result lines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Socat => "socat",
            Kind::Rust => "rust",
        }
    }
}

/// A running forwarder process; killed (with the children it forked) when dropped.
pub struct Forwarder {
    child: Child,
    /// Where it listens.
    pub addr: String,
    /// Its certificate's fingerprint, with TLS.
    pub fingerprint: Option<String>,
    _dir: tempfile::TempDir,
}

impl Forwarder {
    /// The forwarder's process ID (its CPU is counted with its children's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `kind` forwarding to `sink`; with `sink_fingerprint`, TLS on both legs.
    fn start(
        kind: Kind,
        sink: &str,
        sink_fingerprint: Option<&str>,
        socat_block: usize,
    ) -> anyhow::Result<Forwarder> {
        let dir = tempfile::Builder::new()
            .prefix("imagecast-bench-fwd-")
            .tempdir()?;
        let fingerprint = match sink_fingerprint {
            Some(_) => {
                imagecast_server::store::tls::create(dir.path(), &["127.0.0.1".to_owned()])?;
                Some(imagecast_server::store::tls::fingerprint(dir.path())?)
            }
            None => None,
        };
        let (child, addr) = match kind {
            Kind::Socat => socat(sink, sink_fingerprint.is_some(), dir.path(), socat_block)?,
            Kind::Rust => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.args(["forward", "--to", sink]);
                if let Some(fp) = sink_fingerprint {
                    cmd.arg("--cert-dir")
                        .arg(dir.path())
                        .args(["--to-fingerprint", fp]);
                }
                let mut child = cmd
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .spawn()
                    .context("cannot start the rust forwarder")?;
                let mut out = BufReader::new(child.stdout.take().context("no stdout")?);
                let mut line = String::new();
                out.read_line(&mut line)?;
                let Some(addr) = line.trim().strip_prefix("listening on ") else {
                    let _ = child.kill();
                    bail!("the rust forwarder said {line:?}");
                };
                (child, addr.to_owned())
            }
        };
        Ok(Forwarder {
            child,
            addr,
            fingerprint,
            _dir: dir,
        })
    }
}

/// `socat` listening on a free port of 127.0.0.1, forwarding to `sink`.
fn socat(sink: &str, tls: bool, cert_dir: &Path, block: usize) -> anyhow::Result<(Child, String)> {
    // A free port: bound and released at once (nothing else binds 127.0.0.1 ports here).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (crt, key) = imagecast_server::store::tls::files(cert_dir);
    let (listen, connect) = if tls {
        (
            format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                crt.display(),
                key.display()
            ),
            format!("OPENSSL:{sink},verify=0"),
        )
    } else {
        (
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            format!("TCP:{sink}"),
        )
    };
    let mut cmd = Command::new("socat");
    if block > 0 {
        cmd.args(["-b", &block.to_string()]);
    }
    let child = cmd
        .args([&listen, &connect])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // It reports every TLS stream the bench drops without close_notify.
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start socat (Debian: apt-get install socat)")?;
    Ok((child, format!("127.0.0.1:{port}")))
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // socat serves each connection in a child that outlives a killed parent.
        let children: Vec<String> = crate::host::descendants(self.child.id())
            .iter()
            .map(u32::to_string)
            .collect();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !children.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&children)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `n` pairs joined through a new `kind` forwarder (TLS on every leg with `tls`).
pub async fn pairs(
    kind: Kind,
    n: usize,
    tls: bool,
    socat_block: usize,
) -> anyhow::Result<(Forwarder, Vec<Pair>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let sink = listener.local_addr()?.to_string();
    let sink_dir = tempfile::Builder::new()
        .prefix("imagecast-bench-sink-")
        .tempdir()?;
    let (acceptor, sink_fp) = if tls {
        imagecast_server::store::tls::create(sink_dir.path(), &["127.0.0.1".to_owned()])?;
        let (acceptor, fp) = imagecast_server::store::tls::load(sink_dir.path())?;
        (Some(acceptor), Some(fp))
    } else {
        (None, None)
    };
    let fwd = tokio::task::spawn_blocking(move || {
        Forwarder::start(kind, &sink, sink_fp.as_deref(), socat_block)
    })
    .await??;

    // B: the sink's streams, each placed by the number its A sent first.
    let accepting = tokio::spawn(async move {
        let mut placed: Vec<Option<(Tx, Rx)>> = (0..n).map(|_| None).collect();
        for _ in 0..n {
            let (s, _) = listener.accept().await?;
            let _ = s.set_nodelay(true);
            let (mut r, w): (
                Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
            ) = match &acceptor {
                Some(acceptor) => {
                    let s = acceptor.accept(s).await.context("TLS at the sink")?;
                    let (r, w) = tokio::io::split(s);
                    (Box::new(r), Box::new(w))
                }
                None => {
                    let (r, w) = s.into_split();
                    (Box::new(r), Box::new(w))
                }
            };
            let i = r.read_u64_le().await.context("the pair's number")? as usize;
            let slot = placed.get_mut(i).context("a pair number out of range")?;
            *slot = Some((Tx::Tcp(w), Rx::tcp(r)));
        }
        anyhow::Ok(placed)
    });

    // A: connections to the forwarder, tried until it listens.
    let settings = fwd.fingerprint.as_deref().map(TlsSettings::pinned);
    let limit = Arc::new(Semaphore::new(32));
    let mut set = JoinSet::new();
    for i in 0..n {
        let (addr, settings, limit) = (fwd.addr.clone(), settings.clone(), limit.clone());
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let started = Instant::now();
            let s = loop {
                match TcpStream::connect(&addr).await {
                    Ok(s) => break s,
                    Err(e) if started.elapsed() > START_LIMIT => {
                        return Err(e).context(format!("the forwarder at {addr}"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            let _ = s.set_nodelay(true);
            let (r, mut w): (
                Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
            ) = match settings {
                Some(settings) => {
                    let s = imagecast_shared::client::dial::tls(
                        s,
                        &addr,
                        &settings,
                        Duration::from_secs(10),
                    )
                    .await
                    .context("TLS to the forwarder")?;
                    let (r, w) = tokio::io::split(s);
                    (Box::new(r), Box::new(w))
                }
                None => {
                    let (r, w) = s.into_split();
                    (Box::new(r), Box::new(w))
                }
            };
            w.write_u64_le(i as u64).await?;
            w.flush().await?;
            anyhow::Ok((i, Tx::Tcp(w), Rx::tcp(r)))
        });
    }
    let mut a_side: Vec<Option<(Tx, Rx)>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, tx, rx) = joined??;
        a_side[i] = Some((tx, rx));
    }
    let b_side = tokio::time::timeout(Duration::from_secs(60), accepting)
        .await
        .context("the forwarder did not connect every pair to the sink")???;
    let pairs = a_side
        .into_iter()
        .zip(b_side)
        .map(|(a, b)| {
            let ((a_tx, a_rx), (b_tx, b_rx)) = (a.context("an A end")?, b.context("a B end")?);
            anyhow::Ok(Pair {
                a_tx,
                a_rx,
                b_tx,
                b_rx,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    drop(sink_dir);
    Ok((fwd, pairs))
}

/// `imagecast-bench forward --to ADDR [--cert-dir DIR --to-fingerprint FP]`: the `rust`
/// forwarder. Says `listening on ADDR` and forwards every connection until killed.
pub async fn serve(
    to: String,
    cert_dir: Option<PathBuf>,
    to_fingerprint: Option<String>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let acceptor = match &cert_dir {
        Some(dir) => Some(imagecast_server::store::tls::load(dir)?.0),
        None => None,
    };
    let settings = to_fingerprint.map(|fp| Arc::new(TlsSettings::pinned(&fp)));
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (incoming, _) = listener.accept().await?;
        let _ = incoming.set_nodelay(true);
        let (to, acceptor, settings) = (to.clone(), acceptor.clone(), settings.clone());
        tokio::spawn(async move {
            let outgoing = match TcpStream::connect(&to).await {
                Ok(s) => s,
                Err(e) => return eprintln!("imagecast-bench forward: {to}: {e}"),
            };
            let _ = outgoing.set_nodelay(true);
            // How a stream ends (a reset, no TLS close_notify) is no concern of the bench.
            match (acceptor, settings) {
                (Some(acceptor), Some(settings)) => {
                    let Ok(mut a) = acceptor.accept(incoming).await else {
                        return eprintln!("imagecast-bench forward: a TLS handshake failed");
                    };
                    let dialled = imagecast_shared::client::dial::tls(
                        outgoing,
                        &to,
                        &settings,
                        Duration::from_secs(10),
                    )
                    .await;
                    let Ok(mut b) = dialled else {
                        return eprintln!("imagecast-bench forward: TLS to {to} failed");
                    };
                    let _ = tokio::io::copy_bidirectional_with_sizes(
                        &mut a,
                        &mut b,
                        COPY_BUFFER,
                        COPY_BUFFER,
                    )
                    .await;
                }
                _ => {
                    let (mut a, mut b) = (incoming, outgoing);
                    let _ = tokio::io::copy_bidirectional_with_sizes(
                        &mut a,
                        &mut b,
                        COPY_BUFFER,
                        COPY_BUFFER,
                    )
                    .await;
                }
            }
        });
    }
}
