//! The embedded database (SQLite in WAL mode with `synchronous=FULL`): devices, users,
//! distributions, deliveries and the journal.
//!
//! The connection lives on one dedicated thread. Callers send closures; the thread runs every
//! closure waiting in its queue inside one transaction (each in its own savepoint, so one
//! failure does not undo the others) and commits once: a burst of acknowledgements from a
//! hundred terminals costs one fsync, not a hundred. A caller hears its result only after the
//! commit, so "done" always means "on disk".

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;
use tokio::sync::oneshot;

/// A database fault.
#[derive(Debug, Error)]
pub enum DbError {
    /// SQLite refused an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The batch's commit failed, so this operation did not happen.
    #[error("database commit failed: {0}")]
    Commit(Arc<str>),
    /// The database thread is gone (the server is stopping).
    #[error("the database is closed")]
    Closed,
    /// A stored value does not make sense.
    #[error("corrupt database row: {0}")]
    Corrupt(String),
}

type Finish = Box<dyn FnOnce(Result<(), Arc<str>>) + Send>;
/// A queued closure; run with `None` it only reports that the database is unavailable.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

/// Handle to the database thread. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    tx: std_mpsc::Sender<Job>,
}

/// The schema, applied in order; `user_version` counts the steps applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE devices (
    domain      TEXT PRIMARY KEY COLLATE NOCASE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    token_hash  BLOB NOT NULL,
    created_ms  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE users (
    user        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    password    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE distributions (
    id          BLOB PRIMARY KEY,
    sender      TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    user        TEXT NOT NULL,
    accepted_ms INTEGER NOT NULL,
    pages       INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    done_ms     INTEGER
);
CREATE TABLE pages (
    dist        BLOB NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (dist, idx)
);
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    dist        BLOB NOT NULL,
    domain      TEXT NOT NULL COLLATE NOCASE,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    updated_ms  INTEGER NOT NULL,
    UNIQUE (dist, domain)
);
CREATE INDEX deliveries_pending ON deliveries (domain, state, id);
CREATE INDEX deliveries_dist ON deliveries (dist);
CREATE TABLE journal (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    dist        BLOB NOT NULL,
    sender      TEXT NOT NULL,
    destination TEXT NOT NULL,
    pages       INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    result      TEXT NOT NULL,
    reason      TEXT
);
"#,
    r#"
ALTER TABLE devices ADD COLUMN revoked_ms INTEGER;
CREATE TABLE login_failures (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    device      TEXT NOT NULL,
    user        TEXT NOT NULL,
    peer        TEXT NOT NULL
);
CREATE TABLE account_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL
);
"#,
    // The network-fax supervisor's tables (server/src/fax/, one module per table).
    r#"
CREATE TABLE fax_priority (
    pos         INTEGER PRIMARY KEY,
    gateway     TEXT NOT NULL UNIQUE COLLATE NOCASE
);
CREATE TABLE fax_client_routes (
    kind        TEXT NOT NULL,
    client      TEXT NOT NULL,
    pos         INTEGER NOT NULL,
    gateway     TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (kind, client, pos)
);
CREATE TABLE fax_delivery_rules (
    pos         INTEGER PRIMARY KEY,
    match_kind  TEXT NOT NULL,
    match_value TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target      TEXT NOT NULL
);
CREATE TABLE fax_gateway_settings (
    gateway         TEXT PRIMARY KEY COLLATE NOCASE,
    settings        TEXT NOT NULL,
    version         INTEGER NOT NULL,
    applied_version INTEGER NOT NULL DEFAULT 0,
    updated_ms      INTEGER NOT NULL
);
CREATE TABLE fax_policy (
    key         TEXT PRIMARY KEY,
    value       INTEGER NOT NULL
);
CREATE TABLE fax_records (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    direction   TEXT NOT NULL,
    job         TEXT NOT NULL,
    user        TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    gateway     TEXT NOT NULL,
    number      TEXT NOT NULL,
    local_number TEXT NOT NULL,
    station     TEXT NOT NULL,
    pages       INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    coding      TEXT NOT NULL,
    resolution  TEXT NOT NULL,
    ecm         INTEGER NOT NULL,
    speed       INTEGER NOT NULL,
    result      TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX fax_records_user ON fax_records (user, seq);
CREATE INDEX fax_records_job ON fax_records (job, seq);
CREATE TABLE fax_competences (
    user        TEXT NOT NULL,
    competence  TEXT NOT NULL,
    device      TEXT NOT NULL COLLATE NOCASE,
    granted     INTEGER NOT NULL,
    PRIMARY KEY (user, competence, device)
);
CREATE TABLE fax_groupings (
    name        TEXT PRIMARY KEY
);
CREATE TABLE fax_grouping_members (
    grouping    TEXT NOT NULL REFERENCES fax_groupings (name) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    member      TEXT NOT NULL,
    PRIMARY KEY (grouping, kind, member)
);
CREATE TABLE fax_phonebook (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    number      TEXT NOT NULL,
    shared      INTEGER NOT NULL
);
CREATE TABLE fax_phonebook_labels (
    name        TEXT NOT NULL COLLATE NOCASE,
    kind        TEXT NOT NULL,
    label       TEXT NOT NULL,
    PRIMARY KEY (name, kind, label)
);
CREATE TABLE fax_user_homes (
    user        TEXT NOT NULL,
    pos         INTEGER NOT NULL,
    device      TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (user, pos)
);
"#,
    // The relay's journal: one row per real-time session (seed 004).
    r#"
CREATE TABLE relay_sessions (
    session           INTEGER PRIMARY KEY,
    demander          TEXT NOT NULL,
    demander_user     TEXT NOT NULL,
    target            TEXT NOT NULL,
    target_user       TEXT NOT NULL,
    started_ms        INTEGER NOT NULL,
    ended_ms          INTEGER,
    bytes_to_target   INTEGER NOT NULL DEFAULT 0,
    bytes_to_demander INTEGER NOT NULL DEFAULT 0,
    end_reason        TEXT
);
"#,
    // The fax dispatcher's jobs: one row per job and number; the job's files are
    // in the data directory's `fax/JOB/`.
    r#"
CREATE TABLE fax_jobs (
    job           TEXT NOT NULL,
    number        TEXT NOT NULL,
    user          TEXT NOT NULL,
    device        TEXT NOT NULL,
    fine          INTEGER NOT NULL,
    files         TEXT NOT NULL,
    state         TEXT NOT NULL,
    gateway       TEXT NOT NULL DEFAULT '',
    dials         INTEGER NOT NULL DEFAULT 0,
    tries         INTEGER NOT NULL DEFAULT 0,
    next_page     INTEGER NOT NULL DEFAULT 1,
    pages_total   INTEGER NOT NULL DEFAULT 0,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    detail        TEXT NOT NULL DEFAULT '',
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (job, number)
);
CREATE INDEX fax_jobs_state ON fax_jobs (state, not_before_ms);
"#,
    // Faxes the gateways received: one row per fax, recognised by the gateway's ID for it;
    // `dist` is the distribution that delivers it (NULL when no delivery rule matched: the
    // fax stays in the data directory's `fax/received/`). And what each gateway last
    // announced about itself (its `--number`, `--station`, lines).
    r#"
CREATE TABLE fax_received (
    gateway     TEXT NOT NULL,
    reception   TEXT NOT NULL,
    dist        BLOB,
    caller      TEXT NOT NULL,
    called      TEXT NOT NULL,
    station     TEXT NOT NULL,
    pages       INTEGER NOT NULL,
    record      INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (gateway, reception)
);
CREATE INDEX fax_received_dist ON fax_received (dist);
CREATE TABLE fax_gateway_announced (
    gateway      TEXT PRIMARY KEY,
    number       TEXT NOT NULL,
    station      TEXT NOT NULL,
    lines        INTEGER NOT NULL,
    announced_ms INTEGER NOT NULL
);
"#,
    // The relay's journal, continued: connection demands that opened no session (rejected,
    // expired, not online, busy), with who, when and why.
    r#"
CREATE TABLE relay_demands (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms         INTEGER NOT NULL,
    demander      TEXT NOT NULL,
    demander_user TEXT NOT NULL,
    target        TEXT NOT NULL,
    target_user   TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL
);
"#,
];

/// Opens the database file with the settings every user of it needs, and migrates it.
pub fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), DbError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

impl Db {
    /// Opens the database and starts its thread.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = open_connection(path)?;
        let (tx, rx) = std_mpsc::channel::<Job>();
        let path: PathBuf = path.to_owned();
        std::thread::Builder::new()
            .name("imagecast-db".into())
            .spawn(move || run_thread(conn, rx, &path))
            .map_err(|e| DbError::Corrupt(format!("cannot start the database thread: {e}")))?;
        Ok(Db { tx })
    }

    /// Runs `f` on the database thread inside a transaction; answers after the commit.
    ///
    /// `f` may fail with any error that converts into a [`DbError`] (the account functions'
    /// [`AuthError`](super::auth::AuthError), say), so that the functions of [`super::auth`]
    /// and [`super::queue`] can be handed over as they are.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        DbError: From<E>,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn).map_err(DbError::from),
                None => Err(DbError::Commit(Arc::from("cannot begin a transaction"))),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(e) if ok => Err(DbError::Commit(e)),
                    Err(_) => result,
                });
            });
            (ok, finish)
        });
        self.tx.send(job).map_err(|_| DbError::Closed)?;
        rx.await.map_err(|_| DbError::Closed)?
    }
}

/// Most closures run in one transaction.
const MAX_BATCH: usize = 512;

fn run_thread(conn: Connection, rx: std_mpsc::Receiver<Job>, path: &Path) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let reason: Arc<str> = Arc::from(e.to_string());
            tracing::error!(db = %path.display(), error = %e, "cannot begin a transaction");
            for job in jobs {
                let (_, finish) = job(None);
                finish(Err(reason.clone()));
            }
            continue;
        }
        let mut finishes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let _ = conn.execute_batch("SAVEPOINT job");
            let (ok, finish) = job(Some(&conn));
            if ok {
                let _ = conn.execute_batch("RELEASE job");
            } else {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
            finishes.push(finish);
        }
        let commit = conn.execute_batch("COMMIT").map_err(|e| {
            tracing::error!(db = %path.display(), error = %e, "commit failed");
            let _ = conn.execute_batch("ROLLBACK");
            Arc::<str>::from(e.to_string())
        });
        for finish in finishes {
            finish(commit.clone());
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_job_does_not_undo_its_batch_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let mut calls = Vec::new();
        for i in 0..20 {
            let db = db.clone();
            calls.push(tokio::spawn(async move {
                db.call(move |c| {
                    c.execute(
                        "INSERT INTO users (user, role, password, created_ms) VALUES (?1, 'operator', 'x', 0)",
                        [format!("u{}", i % 10)],
                    )
                })
                .await
            }));
        }
        let mut ok = 0;
        for c in calls {
            if c.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 10, "each user name once; duplicates fail alone");
        let n: i64 = db
            .call(|c| c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 10);
    }
}
