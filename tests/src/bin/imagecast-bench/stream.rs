//! Two-way byte streams between two endpoints in this process, and one round over many of
//! them: both ends send S bytes at once and read the other's S bytes.
//!
//! An endpoint pair is either a relay session (the client library's [`SessionSender`] and
//! [`SessionReceiver`] at each terminal) or two TCP (or TLS) streams joined by a forwarder.
//! Senders write the same in-memory payload every round (no copy on the relay side: the
//! library sends slices of it); receivers count the bytes and drop them, reading TCP into a
//! 256 KiB scratch buffer as the loopback receivers do.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use imagecast_shared::client::{SessionReceiver, SessionSender};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Scratch buffer of a TCP receiver.
const SCRATCH: usize = 256 * 1024;

/// The sending half of an endpoint.
pub enum Tx {
    /// A relay session's sender.
    Relay(SessionSender),
    /// The write half of a TCP or TLS stream.
    Tcp(Box<dyn AsyncWrite + Send + Unpin>),
}

/// The receiving half of an endpoint.
pub enum Rx {
    /// A relay session's receiver.
    Relay(SessionReceiver),
    /// The read half of a TCP or TLS stream, with its scratch buffer.
    Tcp(Box<dyn AsyncRead + Send + Unpin>, Vec<u8>),
}

impl Tx {
    /// Sends all of `payload`.
    async fn send(&mut self, payload: &Bytes) -> anyhow::Result<()> {
        match self {
            Tx::Relay(s) => s.send(payload.clone()).await.context("relay send")?,
            Tx::Tcp(w) => {
                w.write_all(payload).await.context("tcp write")?;
                w.flush().await.context("tcp flush")?;
            }
        }
        Ok(())
    }
}

impl Rx {
    /// A TCP receiver.
    pub fn tcp(r: Box<dyn AsyncRead + Send + Unpin>) -> Rx {
        Rx::Tcp(r, vec![0u8; SCRATCH])
    }

    /// Reads exactly `n` bytes and drops them.
    async fn take(&mut self, n: usize) -> anyhow::Result<()> {
        let mut left = n;
        while left > 0 {
            let got = match self {
                Rx::Relay(r) => match r.recv().await.context("relay receive")? {
                    Some(data) => data.len(),
                    None => bail!("the peer half-closed with {left} bytes missing"),
                },
                Rx::Tcp(r, scratch) => {
                    let want = left.min(scratch.len());
                    let k = r.read(&mut scratch[..want]).await.context("tcp read")?;
                    if k == 0 {
                        bail!("the stream closed with {left} bytes missing");
                    }
                    k
                }
            };
            if got > left {
                bail!("{} bytes more than a round carries", got - left);
            }
            left -= got;
        }
        Ok(())
    }
}

/// Two endpoints joined through the server or a forwarder: A (the demander, or the client of
/// the forwarder) and B.
pub struct Pair {
    /// A's sending half.
    pub a_tx: Tx,
    /// A's receiving half.
    pub a_rx: Rx,
    /// B's sending half.
    pub b_tx: Tx,
    /// B's receiving half.
    pub b_rx: Rx,
}

/// What one round over every pair took.
pub struct RoundTimes {
    /// From the start until both directions of each pair had arrived, in pair order.
    pub sessions: Vec<Duration>,
    /// Until the last pair was done.
    pub all: Duration,
}

/// One round: every pair sends `payload` A→B and B→A at once (only A→B when `one_way`).
/// Returns the pairs for the next round and the times. Fails when a pair fails or the round
/// takes longer than `timeout`.
pub async fn round(
    pairs: Vec<Pair>,
    payload: &Bytes,
    one_way: bool,
    timeout: Duration,
) -> anyhow::Result<(Vec<Pair>, RoundTimes)> {
    let n = payload.len();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(pairs.len());
    for mut p in pairs {
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let Pair {
                a_tx,
                a_rx,
                b_tx,
                b_rx,
            } = &mut p;
            let back = if one_way { 0 } else { n };
            let (up, down, at_b, at_a) = tokio::join!(
                a_tx.send(&payload),
                async {
                    match one_way {
                        true => Ok(()),
                        false => b_tx.send(&payload).await,
                    }
                },
                async { b_rx.take(n).await.map(|()| Instant::now()) },
                async { a_rx.take(back).await.map(|()| Instant::now()) },
            );
            up?;
            down?;
            let done = at_b?.max(at_a?);
            anyhow::Ok((p, done.duration_since(start)))
        }));
    }
    let joined = tokio::time::timeout(timeout, async {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await??);
        }
        anyhow::Ok(out)
    })
    .await
    .with_context(|| format!("a round took longer than {} s", timeout.as_secs()))??;
    let sessions: Vec<Duration> = joined.iter().map(|(_, d)| *d).collect();
    let all = sessions.iter().copied().max().unwrap_or_default();
    Ok((
        joined.into_iter().map(|(p, _)| p).collect(),
        RoundTimes { sessions, all },
    ))
}
