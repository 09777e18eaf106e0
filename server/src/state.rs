//! The state every connection shares ([`ServerState`]), opened from a data directory, and
//! the claims that keep one distribution from being uploaded by two connections at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use imagecast_shared::DistributionId;
use tokio_util::sync::CancellationToken;

use crate::delivery::acks::AckSlots;
use crate::delivery::watchers::Watchers;
use crate::groups::{self, GroupDir, RecWriter};
use crate::net::outbox::{ConnHandle, ConnId};
use crate::net::registry::Registry;
use crate::net::throttle::{LoginThrottle, PasswordChecks};
use crate::relay::{Relay, journal as relay_journal};
use crate::store::datadir::DataDir;
use crate::store::db::Db;
use crate::store::spool::{ImageCache, Spool};
use crate::store::{auth, queue};

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
    /// How long a relay connection demand waits for the target's answer.
    pub relay_demand_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(120),
            max_connections: 20_000,
            relay_demand_timeout: crate::relay::DEMAND_TIMEOUT,
        }
    }
}

/// Everything the connections share: one per running server, behind an `Arc`. Each part
/// belongs to the module that works it; this only holds them together and opens them from a
/// data directory.
pub struct ServerState {
    /// Timings and limits, fixed for the server's life.
    pub config: ServerConfig,
    /// Where everything below is kept on disk.
    pub data: DataDir,
    /// Devices, users, the distribution queue and the journal, behind one database thread.
    pub db: Db,
    /// The group files as they are now, rescanned when they change.
    pub groups: Arc<GroupDir>,
    /// Registration and withdrawal edits, one file at a time.
    pub rec_writer: RecWriter,
    /// Accepted images on disk until every destination has them.
    pub spool: Spool,
    /// The images being delivered, held in memory once for every connection.
    pub images: ImageCache,
    /// Who is connected, and each device's receiving connection.
    pub connections: Registry,
    /// Pushed deliveries waiting for their acknowledgement.
    pub acks: AckSlots,
    /// The connections following each distribution's progress.
    pub watchers: Watchers,
    /// Cancelled when the server stops.
    pub shutdown: CancellationToken,
    /// A password hash checked for unknown users, so a login's timing reveals nothing.
    pub dummy_hash: String,
    /// Real-time sessions between terminals: demands, sessions, their journal.
    pub relay: Arc<Relay>,
    /// Failed-login throttling per device and user, device, and user.
    pub throttle: LoginThrottle,
    /// The bound on password checks (argon2) running at once and waiting.
    pub password_checks: PasswordChecks,
    /// The fax gateways online and the calls they make.
    pub fax: Arc<crate::fax::dispatch::Dispatcher>,
    /// Distributions being uploaded: the connection uploading each, and its device's domain
    /// key.
    uploading: Mutex<HashMap<DistributionId, (ConnHandle, String)>>,
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
        // The first snapshot logs every problem of the group files.
        if let Err(e) = groups.snapshot() {
            tracing::error!(error = %e, "cannot read the group files");
        }
        groups::writer::remove_stale_temp_files(&data.groups_dir());
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
        let stale = db.call(relay_journal::close_stale).await?;
        if stale > 0 {
            tracing::info!(
                stale,
                "relay sessions left open by a stopped server marked ended"
            );
        }
        let last_session = db.call(relay_journal::last_session).await?;
        let relay = Arc::new(Relay::new(
            config.relay_demand_timeout,
            relay_journal::Journal::start(db.clone()),
            last_session,
        ));
        let requeued = crate::fax::call(&db, crate::fax::dispatch::requeue_after_restart)
            .await
            .map_err(|e| anyhow::anyhow!("cannot requeue the fax jobs: {e}"))?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "fax calls under way when the server stopped requeued"
            );
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
            connections: Registry::default(),
            acks: AckSlots::default(),
            watchers: Watchers::default(),
            relay,
            shutdown,
            dummy_hash,
            throttle: LoginThrottle::default(),
            password_checks: PasswordChecks::for_this_machine(),
            uploading: Mutex::new(HashMap::new()),
            fax: Arc::default(),
        });
        tokio::spawn(crate::fax::dispatch::run(Arc::downgrade(&state)));
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
        conn: &ConnHandle,
        device: &str,
    ) -> Result<UploadClaim, (ConnHandle, String)> {
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
    conn: ConnId,
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
