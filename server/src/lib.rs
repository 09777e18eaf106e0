//! The imagecast image server (image server 110 of the seed): destination groups kept as
//! `.rec` files, registration of terminals with groups, and durable distribution of images to
//! every member over the members' own connections.
//!
//! # Layout
//! - [`datadir`]: the data directory, `init` (and the seed's demo network), `check`.
//! - [`groups`]: `.rec` files, the group table (FIG. 18), registration and withdrawal edits.
//! - [`db`]: the embedded database thread; [`queue`]: distributions, deliveries, journal.
//! - [`auth`]: devices (tokens) and users (passwords, roles).
//! - [`spool`]: accepted images on disk, and held once in memory while delivered.
//! - [`tls`]: the server's TLS identity (key and self-signed certificate in `DATA/tls/`).
//! - [`conn`]: one connection: handshake, request loop, writer; [`cmd`]: the requests.
//! - [`delivery`]: pushing images to terminals, store and forward, results.
//! - [`hub`]: who is connected, who watches what; [`throttle`]: failed-login delays.
//!
//! [`run`] serves a bound listener until the shutdown token is cancelled; `main.rs` only
//! parses arguments, sets up logging and calls it.

pub mod auth;
pub mod cmd;
pub mod conn;
pub mod datadir;
pub mod db;
pub mod delivery;
pub mod groups;
pub mod hub;
pub mod queue;
pub mod spool;
pub mod throttle;
pub mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use imagecast_shared::DistributionId;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::datadir::DataDir;
use crate::db::Db;
use crate::groups::{GroupDir, RecWriter};
use crate::hub::Hub;
use crate::spool::{ImageCache, Spool};

/// Settings of a running server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Interval at which terminals send heartbeats; silence for two drops a connection.
    pub heartbeat: Duration,
    /// How long a new connection may take to send its hello.
    pub handshake_timeout: Duration,
    /// How long a terminal may take to acknowledge a pushed image.
    pub ack_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(120),
            max_connections: 20_000,
        }
    }
}

/// Everything the connections share.
pub struct ServerState {
    /// Settings.
    pub config: ServerConfig,
    /// The data directory.
    pub data: DataDir,
    /// The database.
    pub db: Db,
    /// The group files.
    pub groups: Arc<GroupDir>,
    /// Registration and withdrawal edits.
    pub rec_writer: RecWriter,
    /// Accepted images on disk.
    pub spool: Spool,
    /// Images being delivered, held once.
    pub images: ImageCache,
    /// Who is connected.
    pub hub: Hub,
    /// Cancelled when the server stops.
    pub shutdown: CancellationToken,
    /// A password hash checked for unknown users, so a login's timing reveals nothing.
    pub dummy_hash: String,
    /// Failed-login throttling per device and user, device, and user.
    pub throttle: throttle::LoginThrottle,
    /// The bound on password checks (argon2) running at once and waiting.
    pub password_checks: throttle::PasswordChecks,
    /// Distributions being uploaded: the connection uploading each, and its device's domain
    /// key.
    uploading: Mutex<HashMap<DistributionId, (hub::ConnHandle, String)>>,
}

impl ServerState {
    /// Opens the data directory's state: database, groups, spool; cleans what a crash left.
    pub async fn open(
        data: DataDir,
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Self>> {
        data.check_exists()?;
        let db = Db::open(&data.db_path())
            .with_context(|| format!("cannot open the database {}", data.db_path().display()))?;
        let groups = Arc::new(GroupDir::new(data.groups_dir()));
        match groups.snapshot() {
            Ok(snap) => {
                for p in snap.problems() {
                    tracing::warn!("{p}");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the group files"),
        }
        remove_stale_temp_files(&data.groups_dir());
        let rec_writer = RecWriter::new(groups.clone());
        let renamed = db.call(queue::canonicalize_domains).await?;
        if renamed > 0 {
            tracing::info!(
                renamed,
                "domains stored in another spelling were made canonical"
            );
        }
        let spool = Spool::open(data.spool_dir())?;
        let live = db.call(queue::live).await?;
        let removed = spool.clean(&|d| live.contains(d))?;
        if removed > 0 {
            tracing::info!(removed, "erased spooled images of finished distributions");
        }
        let dummy_hash =
            tokio::task::spawn_blocking(|| auth::hash_password("not a password")).await??;
        let state = Arc::new(Self {
            config,
            data,
            db,
            groups,
            rec_writer,
            spool,
            images: ImageCache::default(),
            hub: Hub::default(),
            shutdown,
            dummy_hash,
            throttle: throttle::LoginThrottle::default(),
            password_checks: throttle::PasswordChecks::for_this_machine(),
            uploading: Mutex::new(HashMap::new()),
        });
        // Delivery workers run only while something is queued for their device; the hub starts
        // them. A weak reference, so the hub does not keep the state alive.
        let weak = Arc::downgrade(&state);
        state.hub.start_workers_with(move |domain, conn| {
            if let Some(state) = weak.upgrade() {
                tokio::spawn(delivery::run_worker(state, domain, conn));
            }
        });
        Ok(state)
    }

    /// The group files as they are now. The directory scan blocks, so it runs off the async
    /// threads.
    pub async fn group_snapshot(&self) -> Result<Arc<groups::GroupSnapshot>, groups::GroupError> {
        let dir = self.groups.clone();
        tokio::task::spawn_blocking(move || dir.snapshot())
            .await
            .map_err(|e| groups::GroupError::Interrupted(e.to_string()))?
    }

    /// Marks `dist` as being uploaded by `conn`, a connection of the device with domain key
    /// `device`, until the returned claim is dropped; unless a connection already is: then
    /// that connection and its device's key.
    pub fn claim_upload(
        self: &Arc<Self>,
        dist: DistributionId,
        conn: &hub::ConnHandle,
        device: &str,
    ) -> Result<UploadClaim, (hub::ConnHandle, String)> {
        let mut uploading = self.uploading.lock().unwrap_or_else(|e| e.into_inner());
        match uploading.get(&dist) {
            Some((holder, key)) => Err((holder.clone(), key.clone())),
            None => {
                uploading.insert(dist, (conn.clone(), device.to_owned()));
                Ok(UploadClaim {
                    state: Arc::clone(self),
                    dist,
                    conn: conn.id,
                })
            }
        }
    }
}

/// One connection's claim on the upload of one distribution ([`ServerState::claim_upload`]);
/// let go when dropped, whichever way the upload ends (commit, abort, an error, the
/// connection closing). A claim another connection has taken over since is left alone.
pub struct UploadClaim {
    state: Arc<ServerState>,
    dist: DistributionId,
    conn: hub::ConnId,
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        let mut uploading = self
            .state
            .uploading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if uploading
            .get(&self.dist)
            .is_some_and(|(holder, _)| holder.id == self.conn)
        {
            uploading.remove(&self.dist);
        }
    }
}

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
    tracker.spawn(watch_accounts(state.clone()));
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

/// Applies account changes made by `imagecast-server device revoke`, `device token`,
/// `user remove` and `user passwd` (other processes) within a second: the connections
/// concerned are dropped. For a device, those whose token was checked at or before the
/// change: a connection opened with the new token right after a reissue stays.
async fn watch_accounts(state: Arc<ServerState>) {
    let map = |e: auth::AuthError| match e {
        auth::AuthError::Db(d) => d,
        other => db::DbError::Corrupt(other.to_string()),
    };
    let mut last = match state
        .db
        .call(move |c| auth::last_account_event(c).map_err(map))
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch account changes");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let since = last;
        let events = match state
            .db
            .call(move |c| auth::account_events_after(c, since).map_err(map))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot read account changes");
                continue;
            }
        };
        for auth::AccountEvent {
            seq,
            at_ms,
            kind,
            name,
        } in events
        {
            last = seq;
            let dropped = match kind.as_str() {
                auth::EVENT_DEVICE_REVOKED | auth::EVENT_DEVICE_TOKEN => {
                    state.hub.drop_device(&name, at_ms)
                }
                auth::EVENT_USER_REMOVED | auth::EVENT_USER_PASSWORD => state.hub.drop_user(&name),
                _ => 0,
            };
            if dropped > 0 {
                tracing::warn!(%kind, %name, dropped, "connections dropped after an account change");
            }
        }
    }
}

/// Removes the hidden `.NAME.rec.tmp-*` files that a crash during a group-file rewrite leaves
/// (the rewrite itself never happened: the group file is intact).
fn remove_stale_temp_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".rec.tmp-") {
            match std::fs::remove_file(e.path()) {
                Ok(()) => tracing::info!(file = %name, "removed a temporary file left by a crash"),
                Err(err) => {
                    tracing::warn!(file = %name, error = %err, "cannot remove a temporary file")
                }
            }
        }
    }
}
