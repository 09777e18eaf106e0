//! The relay's journal: one row per session (who, when, bytes each way, how it ended) in the
//! `relay_sessions` table, and one per connection demand that opened no session (who, when,
//! why: rejected, expired, not online, busy) in `relay_demands`, written in order by one task
//! so that a session's end never overtakes its start.

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use crate::store::db::{Db, DbError, now_ms};

/// A session's row as `imagecast-server relay sessions` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionRow {
    /// The session's number.
    pub session: u64,
    /// The demanding terminal's domain.
    pub demander: String,
    /// The user logged in there ("" when none).
    pub demander_user: String,
    /// The demanded terminal's domain.
    pub target: String,
    /// The user logged in there ("" when none).
    pub target_user: String,
    /// When it was accepted (ms since the Unix epoch).
    pub started_ms: i64,
    /// When it ended; `None` while it is open.
    pub ended_ms: Option<i64>,
    /// Bytes relayed from the demander to the target.
    pub bytes_to_target: u64,
    /// Bytes relayed from the target to the demander.
    pub bytes_to_demander: u64,
    /// How it ended; `None` while it is open.
    pub end_reason: Option<String>,
}

/// Why a connection demand opened no session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The target rejected it.
    Rejected,
    /// Nobody answered it in time.
    Expired,
    /// The target was not online, or took no demands.
    NotOnline,
    /// The target was busy in a session and kept no vacant connection.
    Busy,
    /// The target runs an older imagecast without real-time sessions.
    OlderTerminal,
    /// The target or the demander left before the demand was answered.
    Withdrawn,
}

impl Outcome {
    /// The word the journal stores and prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Rejected => "rejected",
            Outcome::Expired => "expired",
            Outcome::NotOnline => "not-online",
            Outcome::Busy => "busy",
            Outcome::OlderTerminal => "older-terminal",
            Outcome::Withdrawn => "withdrawn",
        }
    }
}

/// A connection demand that opened no session, as `imagecast-server relay sessions` prints
/// it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DemandRow {
    /// When it was refused, expired or withdrawn (ms since the Unix epoch).
    pub at_ms: i64,
    /// The demanding terminal's domain.
    pub demander: String,
    /// The user logged in there ("" when none).
    pub demander_user: String,
    /// The demanded terminal's domain, or the device name demanded ("" when a user was).
    pub target: String,
    /// The user demanded, or logged in at the target ("" when none).
    pub target_user: String,
    /// Why no session opened.
    pub outcome: String,
    /// The reason as the demander heard it.
    pub reason: String,
}

/// One row of the journal: a session, or a demand that opened none. In JSON, `kind` is
/// `session` or `demand` and the row's fields follow.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalRow {
    /// A session.
    Session(SessionRow),
    /// A demand that opened no session.
    Demand(DemandRow),
}

impl JournalRow {
    /// When it happened: a session's start, a demand's end.
    pub fn at_ms(&self) -> i64 {
        match self {
            JournalRow::Session(s) => s.started_ms,
            JournalRow::Demand(d) => d.at_ms,
        }
    }
}

/// One write to the journal.
#[derive(Debug)]
pub enum Entry {
    /// A connection demand opened no session.
    Refused(DemandRow),
    /// A session was accepted.
    Started(SessionRow),
    /// The bytes an open session has relayed so far (written every
    /// [`PROGRESS_STEP`](super::PROGRESS_STEP) bytes, so that the journal of a long session
    /// shows it moving).
    Progress {
        /// The session.
        session: u64,
        /// Bytes demander to target.
        bytes_to_target: u64,
        /// Bytes target to demander.
        bytes_to_demander: u64,
    },
    /// A session ended.
    Ended {
        /// The session.
        session: u64,
        /// Bytes demander to target.
        bytes_to_target: u64,
        /// Bytes target to demander.
        bytes_to_demander: u64,
        /// How it ended.
        reason: String,
    },
}

/// The journal's writer: entries are written in the order they are sent.
#[derive(Clone, Debug)]
pub struct Journal {
    tx: mpsc::UnboundedSender<Entry>,
}

impl Journal {
    /// Starts the writer task on `db`.
    pub fn start(db: Db) -> Journal {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        tokio::spawn(async move {
            while let Some(entry) = rx.recv().await {
                if let Err(e) = db.call(move |c| write(c, &entry)).await {
                    tracing::error!(error = %e, "cannot journal a relay session");
                }
            }
        });
        Journal { tx }
    }

    /// A journal whose entries go to `tx` (for tests).
    #[cfg(test)]
    pub fn for_tests(tx: mpsc::UnboundedSender<Entry>) -> Journal {
        Journal { tx }
    }

    /// Queues an entry (never waits).
    pub fn record(&self, entry: Entry) {
        let _ = self.tx.send(entry);
    }
}

fn write(c: &Connection, entry: &Entry) -> Result<(), DbError> {
    match entry {
        Entry::Refused(d) => {
            c.execute(
                "INSERT INTO relay_demands (at_ms, demander, demander_user, target, target_user, outcome, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    d.at_ms,
                    d.demander,
                    d.demander_user,
                    d.target,
                    d.target_user,
                    d.outcome,
                    d.reason
                ],
            )?;
        }
        Entry::Started(r) => {
            c.execute(
                "INSERT INTO relay_sessions (session, demander, demander_user, target, target_user, started_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    r.session as i64,
                    r.demander,
                    r.demander_user,
                    r.target,
                    r.target_user,
                    r.started_ms
                ],
            )?;
        }
        Entry::Progress {
            session,
            bytes_to_target,
            bytes_to_demander,
        } => {
            c.execute(
                "UPDATE relay_sessions SET bytes_to_target = ?2, bytes_to_demander = ?3
                 WHERE session = ?1 AND ended_ms IS NULL",
                params![
                    *session as i64,
                    *bytes_to_target as i64,
                    *bytes_to_demander as i64
                ],
            )?;
        }
        Entry::Ended {
            session,
            bytes_to_target,
            bytes_to_demander,
            reason,
        } => {
            c.execute(
                "UPDATE relay_sessions SET ended_ms = ?2, bytes_to_target = ?3, bytes_to_demander = ?4, end_reason = ?5
                 WHERE session = ?1",
                params![
                    *session as i64,
                    now_ms(),
                    *bytes_to_target as i64,
                    *bytes_to_demander as i64,
                    reason
                ],
            )?;
        }
    }
    Ok(())
}

/// The highest session number journalled so far (0 when none): numbering goes on after it.
pub fn last_session(c: &Connection) -> Result<u64, DbError> {
    let n: Option<i64> = c
        .query_row("SELECT MAX(session) FROM relay_sessions", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Marks the sessions a stopped server left open as ended; returns how many.
pub fn close_stale(c: &Connection) -> Result<usize, DbError> {
    Ok(c.execute(
        "UPDATE relay_sessions SET ended_ms = ?1, end_reason = 'the server stopped'
         WHERE ended_ms IS NULL",
        [now_ms()],
    )?)
}

/// The last `last` rows of the journal (sessions by their start, refused demands by their
/// end), oldest first.
pub fn recent(c: &Connection, last: usize) -> Result<Vec<JournalRow>, DbError> {
    let mut stmt = c.prepare(
        "SELECT session, demander, demander_user, target, target_user, started_ms, ended_ms,
                bytes_to_target, bytes_to_demander, end_reason
         FROM relay_sessions ORDER BY session DESC LIMIT ?1",
    )?;
    let mut rows = stmt
        .query_map([last as i64], |r| {
            Ok(JournalRow::Session(SessionRow {
                session: r.get::<_, i64>(0)?.max(0) as u64,
                demander: r.get(1)?,
                demander_user: r.get(2)?,
                target: r.get(3)?,
                target_user: r.get(4)?,
                started_ms: r.get(5)?,
                ended_ms: r.get(6)?,
                bytes_to_target: r.get::<_, i64>(7)?.max(0) as u64,
                bytes_to_demander: r.get::<_, i64>(8)?.max(0) as u64,
                end_reason: r.get(9)?,
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare(
        "SELECT at_ms, demander, demander_user, target, target_user, outcome, reason
         FROM relay_demands ORDER BY id DESC LIMIT ?1",
    )?;
    let demands = stmt
        .query_map([last as i64], |r| {
            Ok(JournalRow::Demand(DemandRow {
                at_ms: r.get(0)?,
                demander: r.get(1)?,
                demander_user: r.get(2)?,
                target: r.get(3)?,
                target_user: r.get(4)?,
                outcome: r.get(5)?,
                reason: r.get(6)?,
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    rows.extend(demands.into_iter().rev());
    // A stable sort keeps each table's own order among rows of the same millisecond.
    rows.sort_by_key(JournalRow::at_ms);
    let cut = rows.len().saturating_sub(last);
    Ok(rows.split_off(cut))
}
