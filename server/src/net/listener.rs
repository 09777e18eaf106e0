//! The network edge: the listening socket and the accept loop, which bounds the connections
//! served at once, starts each one's TLS handshake, and winds everything down on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::{accounts, conn};
use crate::state::ServerState;

/// Listens on `addr` with a deep accept queue (4096, capped by the kernel's `somaxconn`), so
/// a burst of terminals reconnecting at once is not dropped by the default backlog of 128.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} resolves to nothing"),
        )
    })?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Serves `listener` until `shutdown` is cancelled, then closes every connection. With `tls`,
/// every connection starts with a TLS handshake (within the handshake timeout).
pub async fn run(
    listener: TcpListener,
    state: Arc<ServerState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    tracker.spawn(accounts::watch(state.clone()));
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let shutdown = state.shutdown.clone();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => p?,
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let peer = peer.to_string();
        // The connection's future is the task itself, holding the permit, and a plain
        // connection's task does not carry a TLS connection's state.
        match &tls {
            None => {
                tracker.spawn(conn::serve(state, stream, peer, permit));
            }
            Some(acceptor) => {
                tracker.spawn(serve_tls(state, acceptor.clone(), stream, peer, permit));
            }
        }
    }
    tracing::info!("shutting down");
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    Ok(())
}

/// Serves one connection after its TLS handshake (within the handshake timeout).
async fn serve_tls(
    state: Arc<ServerState>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: String,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    // In a block of its own: the accepted stream moves on, and this future keeps no room for
    // it while the connection is served.
    let stream = {
        let limit = state.config.handshake_timeout;
        let accepted = tokio::time::timeout(limit, Box::pin(acceptor.accept(stream))).await;
        match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::info!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => return tracing::info!(%peer, "no TLS handshake in time"),
        }
    };
    conn::serve(state, stream, peer, permit).await
}
