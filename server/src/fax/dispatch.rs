//! The fax job dispatcher (seed 002 FIG. 3, seed 003 claims 1–2): one durable job row per job and number
//! (`fax_jobs`), handed to the gateways online with a free line in the client's priority
//! order, retried by the policy, one communication record per call, pushed to the sender.
//!
//! - **Gateways** announce themselves on their receiving connection ([`Dispatcher::attach`]);
//!   a gateway's calls are held in memory; when its connection ends its calls go back to
//!   the queue ([`Dispatcher::detach`]).
//! - **One number, one call**: a number being dialled by any gateway is not dialled again
//!   until that call's result came.
//! - **Durable**: a job is accepted once its files are fsynced and its rows committed; every
//!   confirmed page moves `next_page` on, so a job re-dispatched after a server restart (every
//!   `dialling` row is `queued` again at start, [`requeue_after_restart`]) resumes at the
//!   first page not confirmed.
//! - The loop ([`run`]) wakes on every change and at least twice a second (for retry times).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use imagecast_shared::fax::{
    FaxEvent, FaxFile, FaxJob, FaxNumberStatus, FaxRecordInfo, FaxResult, FaxUpload,
    MAX_CHUNK_BYTES, MAX_JOB_BYTES,
};
use imagecast_shared::frame::OutFrame;
use imagecast_shared::msg::ServerMsg;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use super::records::{self, CallResult, Direction, NewRecord};
use super::settings::{Coding, Resolution};
use super::{FaxError, normalize_number, policy, priority};
use crate::net::outbox::{ConnHandle, ConnId};
use crate::state::ServerState;
use crate::store::db::now_ms;

/// A gateway online now.
struct Gateway {
    conn: ConnHandle,
    lines: u32,
    number: String,
    /// Its calls now: (job, number).
    calls: HashSet<(String, String)>,
    /// The settings version last pushed on this connection (0: none yet).
    pushed: i64,
}

#[derive(Default)]
struct Inner {
    gateways: HashMap<String, Gateway>,
    /// Numbers (normalised) being dialled now.
    dialling: HashSet<String>,
}

/// The dispatcher's in-memory half; the jobs themselves are in the database.
#[derive(Default)]
pub struct Dispatcher {
    inner: Mutex<Inner>,
    wake: Notify,
}

/// One row of `fax_jobs`.
#[derive(Clone, Debug)]
pub struct JobRow {
    /// The job.
    pub job: String,
    /// The number.
    pub number: String,
    /// Who sent it.
    pub user: String,
    /// From which terminal (domain key).
    pub device: String,
    /// Fine resolution.
    pub fine: bool,
    /// The files' names, in order.
    pub files: Vec<String>,
    /// `queued`, `dialling`, `sent`, `failed`.
    pub state: String,
    /// The current or last gateway.
    pub gateway: String,
    /// Calls made.
    pub dials: u32,
    /// Answered calls.
    pub tries: u32,
    /// The first page not confirmed.
    pub next_page: u32,
    /// Pages in the document (0 until known).
    pub pages_total: u32,
    /// Not dialled before this.
    pub not_before_ms: i64,
    /// What is going on, or why it failed.
    pub detail: String,
}

impl JobRow {
    /// As terminals see it.
    pub fn status(&self) -> FaxNumberStatus {
        let done = self.state == "sent" || self.state == "failed";
        FaxNumberStatus {
            job: self.job.clone(),
            number: self.number.clone(),
            state: self.state.clone(),
            done,
            gateway: self.gateway.clone(),
            pages_sent: if self.state == "sent" {
                self.pages_total.max(self.next_page.saturating_sub(1))
            } else {
                self.next_page.saturating_sub(1)
            },
            pages_total: self.pages_total,
            dials: self.dials,
            detail: self.detail.clone(),
        }
    }
}

const JOB_COLUMNS: &str = "job, number, user, device, fine, files, state, gateway, dials, tries,
    next_page, pages_total, not_before_ms, detail";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    let files: String = r.get(5)?;
    Ok(JobRow {
        job: r.get(0)?,
        number: r.get(1)?,
        user: r.get(2)?,
        device: r.get(3)?,
        fine: r.get(4)?,
        files: files.split('\n').map(str::to_owned).collect(),
        state: r.get(6)?,
        gateway: r.get(7)?,
        dials: r.get(8)?,
        tries: r.get(9)?,
        next_page: r.get(10)?,
        pages_total: r.get(11)?,
        not_before_ms: r.get(12)?,
        detail: r.get(13)?,
    })
}

/// The rows of one job (every number), in number order.
pub fn job_rows(conn: &Connection, job: &str) -> Result<Vec<JobRow>, FaxError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM fax_jobs WHERE job = ?1 ORDER BY rowid");
    Ok(conn
        .prepare_cached(&sql)?
        .query_map([job], job_row)?
        .collect::<Result<_, _>>()?)
}

/// A user's latest rows (every user's when `user` is `None`), oldest first.
pub fn recent_rows(conn: &Connection, user: Option<&str>, n: u32) -> Result<Vec<JobRow>, FaxError> {
    let sql = format!(
        "SELECT * FROM (SELECT {JOB_COLUMNS}, rowid AS r FROM fax_jobs
           WHERE (?1 IS NULL OR user = ?1) ORDER BY rowid DESC LIMIT ?2) ORDER BY r"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params![user, n], job_row)?
        .collect::<Result<_, _>>()?)
}

fn row(conn: &Connection, job: &str, number: &str) -> Result<Option<JobRow>, FaxError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM fax_jobs WHERE job = ?1 AND number = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([job, number], job_row)
        .optional()?)
}

/// A new job as the terminal's request gives it.
pub struct NewJob {
    /// The job's ID.
    pub job: String,
    /// Its numbers (checked).
    pub numbers: Vec<String>,
    /// The user.
    pub user: String,
    /// The terminal's domain key.
    pub device: String,
    /// Fine resolution.
    pub fine: bool,
    /// The files' names.
    pub files: Vec<String>,
}

/// Stores a job's rows (its files are on disk already).
pub fn insert_job(conn: &Connection, j: &NewJob) -> Result<(), FaxError> {
    let now = now_ms();
    for n in &j.numbers {
        conn.execute(
            "INSERT INTO fax_jobs (job, number, user, device, fine, files, state, detail, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 'waiting for a gateway', ?7)",
            params![j.job, n, j.user, j.device, j.fine, j.files.join("\n"), now],
        )?;
    }
    Ok(())
}

/// At start: calls that were under way when the server stopped go back to the queue; they
/// resume at the first page not confirmed. Each gets its communication record (`failed`,
/// cut off, with the pages confirmed in it), so a job's records add up to its pages.
pub fn requeue_after_restart(conn: &Connection) -> Result<usize, FaxError> {
    // The caller's transaction (fax::call) makes the records and the requeue one change.
    let sql = format!("SELECT {JOB_COLUMNS} FROM fax_jobs WHERE state = 'dialling'");
    let rows: Vec<JobRow> = conn
        .prepare(&sql)?
        .query_map([], job_row)?
        .collect::<Result<_, _>>()?;
    for j in &rows {
        record_cut_off(conn, j, "", "the call was cut off: the server restarted")?;
        conn.execute(
            "UPDATE fax_jobs SET state = 'queued', detail = 'requeued after a server restart'
             WHERE job = ?1 AND number = ?2 AND state = 'dialling'",
            params![j.job, j.number],
        )?;
    }
    Ok(rows.len())
}

/// Records a call of `j` that ended without a result from its gateway (the server
/// restarted, or the gateway went away): `failed` with `reason`, and the pages whose
/// confirmation reached the server in that call (those confirmed in all, less those the
/// job's earlier records hold).
fn record_cut_off(
    conn: &Connection,
    j: &JobRow,
    local_number: &str,
    reason: &str,
) -> Result<(), FaxError> {
    let before: i64 = conn.query_row(
        "SELECT COALESCE(SUM(pages), 0) FROM fax_records
         WHERE job = ?1 AND number = ?2 AND direction = 'send'",
        params![j.job, j.number],
        |r| r.get(0),
    )?;
    let confirmed = i64::from(j.next_page.saturating_sub(1));
    records::insert(
        conn,
        &NewRecord {
            at_ms: now_ms(),
            direction: Direction::Send,
            job: j.job.clone(),
            user: j.user.clone(),
            terminal: j.device.clone(),
            gateway: j.gateway.clone(),
            number: j.number.clone(),
            local_number: local_number.to_owned(),
            station: String::new(),
            pages: u32::try_from((confirmed - before).max(0)).unwrap_or(0),
            duration_ms: 0,
            coding: Coding::G3,
            resolution: if j.fine {
                Resolution::Fine
            } else {
                Resolution::Standard
            },
            error_correction: false,
            speed: 0,
            result: CallResult::Failed,
            reason: reason.to_owned(),
        },
    )?;
    Ok(())
}

/// The folder that holds a job's files.
pub fn job_dir(root: &Path, job: &str) -> PathBuf {
    root.join("fax").join(job)
}

/// Writes a job's files durably (each fsynced, and the folders); returns their names.
pub fn store_files(root: &Path, job: &str, files: &[FaxFile]) -> anyhow::Result<Vec<String>> {
    let top = root.join("fax");
    crate::store::files::create_private_dir(&top)?;
    let dir = job_dir(root, job);
    crate::store::files::create_private_dir(&dir)?;
    for (i, f) in files.iter().enumerate() {
        crate::store::files::write_atomic(&dir.join(i.to_string()), &f.data)?;
    }
    std::fs::File::open(&top)?.sync_all()?;
    std::fs::File::open(root)?.sync_all()?;
    Ok(files.iter().map(|f| f.name.clone()).collect())
}

/// Moves a job's files uploaded in chunks (`DATA/fax/uploads/OWNER/UPLOAD.part`) into
/// `DATA/fax/JOB/`, durably; returns their names.
pub fn store_uploaded(
    root: &Path,
    job: &str,
    owner: &str,
    files: &[FaxUpload],
) -> anyhow::Result<Vec<String>> {
    let top = root.join("fax");
    crate::store::files::create_private_dir(&top)?;
    let dir = job_dir(root, job);
    crate::store::files::create_private_dir(&dir)?;
    for (i, f) in files.iter().enumerate() {
        let part = super::reception::part_path(root, owner, &f.upload);
        std::fs::File::open(&part)?.sync_all()?;
        std::fs::rename(&part, dir.join(i.to_string()))?;
    }
    std::fs::File::open(&dir)?.sync_all()?;
    std::fs::File::open(&top)?.sync_all()?;
    std::fs::File::open(root)?.sync_all()?;
    Ok(files.iter().map(|f| f.name.clone()).collect())
}

/// The sizes of a job's files.
fn file_sizes(root: &Path, j: &JobRow) -> std::io::Result<Vec<u64>> {
    let dir = job_dir(root, &j.job);
    (0..j.files.len())
        .map(|i| Ok(std::fs::metadata(dir.join(i.to_string()))?.len()))
        .collect()
}

/// A piece of file `file` of `job` from `offset` (at most [`MAX_CHUNK_BYTES`]) for the
/// gateway that is dialling it now.
pub async fn job_part(
    state: &Arc<ServerState>,
    gateway: &str,
    job: &str,
    file: u32,
    offset: u64,
) -> Result<bytes::Bytes, FaxError> {
    let (gw, j) = (gateway.to_owned(), job.to_owned());
    let files = super::call(&state.db, move |c| {
        let rows = job_rows(c, &j)?;
        Ok(rows
            .iter()
            .find(|r| r.state == "dialling" && r.gateway == gw)
            .map(|r| r.files.len()))
    })
    .await?;
    let Some(files) = files else {
        return Err(FaxError::Refused(format!(
            "gateway {gateway} is not dialling fax job {job}"
        )));
    };
    if file as usize >= files {
        return Err(FaxError::Invalid(format!(
            "fax job {job} has {files} files, not {}",
            file + 1
        )));
    }
    let path = job_dir(state.data.root(), job).join(file.to_string());
    tokio::task::spawn_blocking(move || -> std::io::Result<bytes::Bytes> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(MAX_CHUNK_BYTES);
        f.take(MAX_CHUNK_BYTES as u64).read_to_end(&mut buf)?;
        Ok(buf.into())
    })
    .await
    .map_err(|e| FaxError::Invalid(e.to_string()))?
    .map_err(|e| {
        FaxError::Db(crate::store::db::DbError::Corrupt(format!(
            "fax job {job}: {e}"
        )))
    })
}

fn load_files(root: &Path, j: &JobRow) -> std::io::Result<Vec<FaxFile>> {
    let dir = job_dir(root, &j.job);
    j.files
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Ok(FaxFile {
                name: name.clone(),
                data: std::fs::read(dir.join(i.to_string()))?.into(),
            })
        })
        .collect()
}

/// A stored record as terminals see it.
pub fn record_info(r: &records::Record) -> FaxRecordInfo {
    let x = &r.record;
    FaxRecordInfo {
        seq: r.seq,
        at_ms: x.at_ms,
        direction: x.direction.as_str().to_owned(),
        job: x.job.clone(),
        user: x.user.clone(),
        terminal: x.terminal.clone(),
        gateway: x.gateway.clone(),
        number: x.number.clone(),
        station: x.station.clone(),
        pages: x.pages,
        duration_ms: x.duration_ms,
        coding: if x.speed == 0 {
            String::new()
        } else {
            match x.coding {
                Coding::G4 => "G4".into(),
                _ => "MH".into(),
            }
        },
        speed: x.speed,
        result: x.result.as_str().to_owned(),
        reason: x.reason.clone(),
    }
}

/// What a call's result changed: the record and the row after it.
struct Outcome {
    record: FaxRecordInfo,
    row: JobRow,
}

/// Records a call's result and moves the job on by the policy. `None` when the result is
/// stale (not this gateway's current call of that job).
fn apply_result(
    conn: &Connection,
    gateway: &str,
    local_number: &str,
    res: &FaxResult,
) -> Result<Option<Outcome>, FaxError> {
    let Some(mut j) = row(conn, &res.job, &res.number)? else {
        return Ok(None);
    };
    if j.state != "dialling" || j.gateway != gateway || j.dials != res.attempt {
        return Ok(None);
    }
    let result = CallResult::parse(&res.outcome).unwrap_or(CallResult::Failed);
    let p = policy::get(conn)?;
    let now = now_ms();
    let rec = NewRecord {
        at_ms: now - res.duration_ms as i64,
        direction: Direction::Send,
        job: j.job.clone(),
        user: j.user.clone(),
        terminal: j.device.clone(),
        gateway: gateway.to_owned(),
        number: j.number.clone(),
        local_number: local_number.to_owned(),
        station: imagecast_shared::text::truncate(&res.station, 20).to_owned(),
        pages: res.pages_confirmed,
        duration_ms: res.duration_ms,
        coding: if res.coding == "G4" {
            Coding::G4
        } else {
            Coding::G3
        },
        resolution: if j.fine {
            Resolution::Fine
        } else {
            Resolution::Standard
        },
        error_correction: res.ecm,
        speed: res.speed,
        result,
        reason: imagecast_shared::text::truncate(&res.reason, 500).to_owned(),
    };
    let seq = records::insert(conn, &rec)?;
    if res.pages_total > 0 {
        j.pages_total = res.pages_total;
    }
    j.next_page = j.next_page.max(res.next_page);
    let answered = !matches!(result, CallResult::Busy | CallResult::NoAnswer);
    if answered {
        j.tries += 1;
    }
    let retry = |j: &mut JobRow, after_s: u32, what: &str| {
        j.state = "queued".into();
        j.not_before_ms = now + i64::from(after_s) * 1000;
        j.detail = format!("{what}; dialling again in {after_s} s");
    };
    match result {
        CallResult::Sent | CallResult::Received => {
            j.state = "sent".into();
            j.next_page = j.pages_total + 1;
            j.detail = format!(
                "sent {} pages via {gateway} ({}, {} bit/s, {:.1} s)",
                j.pages_total,
                if res.coding.is_empty() {
                    "MH"
                } else {
                    &res.coding
                },
                res.speed,
                res.duration_ms as f64 / 1000.0
            );
        }
        CallResult::Busy | CallResult::NoAnswer if j.dials >= p.max_dials => {
            j.state = "failed".into();
            j.detail = format!("{} after {} dials", result.as_str(), j.dials);
        }
        CallResult::Busy => retry(&mut j, p.busy_retry_s, "busy"),
        CallResult::NoAnswer => retry(&mut j, p.no_answer_retry_s, "no answer"),
        _ if j.tries >= p.max_tries || j.dials >= p.max_dials => {
            j.state = "failed".into();
            j.detail = format!(
                "{} after {} tries: {}",
                result.as_str(),
                j.tries,
                rec.reason
            );
        }
        _ => {
            let what = format!(
                "{} ({}); resuming at page {}",
                result.as_str(),
                rec.reason,
                j.next_page
            );
            retry(&mut j, p.failed_retry_s, &what)
        }
    }
    conn.execute(
        "UPDATE fax_jobs SET state = ?3, tries = ?4, next_page = ?5, pages_total = ?6,
            not_before_ms = ?7, detail = ?8 WHERE job = ?1 AND number = ?2",
        params![
            j.job,
            j.number,
            j.state,
            j.tries,
            j.next_page,
            j.pages_total,
            j.not_before_ms,
            j.detail
        ],
    )?;
    let stored = records::Record { seq, record: rec };
    Ok(Some(Outcome {
        record: record_info(&stored),
        row: j,
    }))
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pushes a fax event to every connection of `device` that speaks it.
fn push_to_device(state: &ServerState, device: &str, event: FaxEvent) {
    let msg = ServerMsg::Fax(event);
    let Ok(frame) = OutFrame::encode(&msg) else {
        return;
    };
    for c in state.connections.snapshot() {
        if c.domain.eq_ignore_ascii_case(device) && c.conn.speaks(&msg) {
            c.conn.push(frame.clone());
        }
    }
}

impl Dispatcher {
    /// Wakes the loop (a new job, a free line, a result).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A gateway's connection announced its lines; it replaces an older one of the same
    /// gateway.
    pub fn attach(&self, domain: &str, conn: &ConnHandle, number: &str, lines: u32) {
        let mut inner = lock(&self.inner);
        // An announcement again on the same connection (its lines changed) keeps what was
        // pushed on it; a new connection is pushed the settings again.
        let (calls, pushed) = inner
            .gateways
            .remove(domain)
            .map(|g| {
                let pushed = if g.conn.id == conn.id { g.pushed } else { 0 };
                (g.calls, pushed)
            })
            .unwrap_or_default();
        inner.gateways.insert(
            domain.to_owned(),
            Gateway {
                conn: conn.clone(),
                lines: lines.clamp(1, 64),
                number: number.to_owned(),
                calls,
                pushed,
            },
        );
        drop(inner);
        self.wake();
    }

    /// The gateway's own number, if it is online.
    fn local_number(&self, domain: &str) -> String {
        lock(&self.inner)
            .gateways
            .get(domain)
            .map(|g| g.number.clone())
            .unwrap_or_default()
    }

    /// Lines of each gateway online: (lines, in use, number).
    pub fn online(&self) -> HashMap<String, (u32, u32, String)> {
        lock(&self.inner)
            .gateways
            .iter()
            .filter(|(_, g)| !g.conn.is_cancelled())
            .map(|(d, g)| (d.clone(), (g.lines, g.calls.len() as u32, g.number.clone())))
            .collect()
    }

    fn release(&self, domain: &str, job: &str, number: &str) {
        let mut inner = lock(&self.inner);
        if let Some(g) = inner.gateways.get_mut(domain) {
            g.calls.remove(&(job.to_owned(), number.to_owned()));
        }
        inner.dialling.remove(&normalize_number(number));
    }
}

/// A gateway's connection ended: its calls go back to the queue (they resume at the first
/// page not confirmed).
pub async fn detach(state: &Arc<ServerState>, domain: &str, conn: ConnId) {
    let calls = {
        let mut inner = lock(&state.fax.inner);
        if inner.gateways.get(domain).is_none_or(|g| g.conn.id != conn) {
            return;
        }
        let Some(g) = inner.gateways.remove(domain) else {
            return;
        };
        for (_, n) in &g.calls {
            inner.dialling.remove(&normalize_number(n));
        }
        g.calls
    };
    let gw = domain.to_owned();
    let r = super::call(&state.db, move |c| {
        for (job, number) in calls {
            let Some(j) = row(c, &job, &number)? else {
                continue;
            };
            if j.state != "dialling" || j.gateway != gw {
                continue;
            }
            let why = format!("gateway {gw} went away");
            record_cut_off(c, &j, "", &format!("the call was cut off: {why}"))?;
            c.execute(
                "UPDATE fax_jobs SET state = 'queued', detail = ?3
                 WHERE job = ?1 AND number = ?2 AND state = 'dialling'",
                params![job, number, format!("{why}; requeued")],
            )?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = r {
        tracing::error!(gateway = %domain, error = %e, "cannot requeue a gateway's calls");
    }
    state.fax.wake();
}

/// A gateway reported a call's result: record it, move the job on, tell the sender.
pub async fn result(
    state: &Arc<ServerState>,
    gateway: &str,
    res: FaxResult,
) -> Result<(), FaxError> {
    let gw = gateway.to_owned();
    let local = state.fax.local_number(gateway);
    let r = res.clone();
    let outcome = super::call(&state.db, move |c| apply_result(c, &gw, &local, &r)).await?;
    if let Some(o) = outcome {
        state.fax.release(gateway, &res.job, &res.number);
        if o.row.status().done {
            forget_files_when_done(state, &o.row.job).await;
        }
        push_to_device(state, &o.row.device, FaxEvent::Record(o.record));
        push_to_device(state, &o.row.device, FaxEvent::Progress(o.row.status()));
        state.fax.wake();
    }
    Ok(())
}

/// True when every number of `job` is sent or failed: nothing will read its files again.
pub fn job_done(conn: &Connection, job: &str) -> Result<bool, FaxError> {
    let open: i64 = conn.query_row(
        "SELECT COUNT(*) FROM fax_jobs WHERE job = ?1 AND state NOT IN ('sent', 'failed')",
        [job],
        |r| r.get(0),
    )?;
    Ok(open == 0)
}

/// Removes `DATA/fax/JOB/` once every number of the job is done (a failure is logged: the
/// folder is then only wasted space).
async fn forget_files_when_done(state: &Arc<ServerState>, job: &str) {
    let j = job.to_owned();
    if !matches!(
        super::call(&state.db, move |c| job_done(c, &j)).await,
        Ok(true)
    ) {
        return;
    }
    let dir = job_dir(state.data.root(), job);
    match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await {
        Ok(Ok(())) => tracing::debug!(%job, "fax job done; its files removed"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        other => tracing::warn!(%job, ?other, "cannot remove a finished fax job's files"),
    }
}

/// A gateway reported progress: confirmed pages are kept (a retry resumes after them); the
/// sender is told.
pub async fn progress(
    state: &Arc<ServerState>,
    gateway: &str,
    job: String,
    number: String,
    attempt: u32,
    stage: imagecast_shared::fax::CallStage,
) {
    use imagecast_shared::fax::CallStage;
    let gw = gateway.to_owned();
    let r = super::call(&state.db, move |c| {
        let Some(mut j) = row(c, &job, &number)? else {
            return Ok(None);
        };
        if j.state != "dialling" || j.gateway != gw || j.dials != attempt {
            return Ok(None);
        }
        match &stage {
            CallStage::Dialling => j.detail = format!("dialling via {gw}"),
            CallStage::Connected { station } => {
                j.detail = format!(
                    "connected to \"{}\" via {gw}",
                    imagecast_shared::text::escape(imagecast_shared::text::truncate(station, 20))
                );
            }
            CallStage::Sending { page, of } => {
                j.pages_total = *of;
                j.detail = format!("sending page {page} of {of} via {gw}");
            }
            CallStage::Confirmed { page } => {
                j.next_page = j.next_page.max(page.saturating_add(1));
                j.detail = format!("page {page} confirmed");
            }
        }
        c.execute(
            "UPDATE fax_jobs SET next_page = ?3, pages_total = ?4, detail = ?5
             WHERE job = ?1 AND number = ?2",
            params![j.job, j.number, j.next_page, j.pages_total, j.detail],
        )?;
        Ok(Some(j))
    })
    .await;
    if let Ok(Some(j)) = r {
        push_to_device(state, &j.device, FaxEvent::Progress(j.status()));
    }
}

fn due(conn: &Connection, now: i64) -> Result<Vec<JobRow>, FaxError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM fax_jobs WHERE state = 'queued' AND not_before_ms <= ?1
         ORDER BY rowid LIMIT 1000"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map([now], job_row)?
        .collect::<Result<_, _>>()?)
}

/// A queued number whose client may use no gateway any more (groupings, routes or the
/// priority table changed since it was accepted) fails with the reason, as a new job would
/// be refused.
async fn fail_unroutable(state: &Arc<ServerState>, mut j: JobRow) -> Result<(), FaxError> {
    let (job, number, device, user) = (
        j.job.clone(),
        j.number.clone(),
        j.device.clone(),
        j.user.clone(),
    );
    let detail = super::call(&state.db, move |c| {
        let why = priority::explain_none(c, Some(&device), Some(&user))?;
        let detail = format!("no gateway may send it: {why}");
        c.execute(
            "UPDATE fax_jobs SET state = 'failed', detail = ?3
             WHERE job = ?1 AND number = ?2 AND state = 'queued'",
            params![job, number, detail],
        )?;
        Ok(detail)
    })
    .await?;
    tracing::info!(job = %j.job, number = %j.number, %detail, "fax job failed");
    j.state = "failed".into();
    j.detail = detail;
    forget_files_when_done(state, &j.job).await;
    push_to_device(state, &j.device, FaxEvent::Progress(j.status()));
    Ok(())
}

/// One pass: every due job that has a free gateway goes to it.
async fn pass(state: &Arc<ServerState>) -> Result<(), FaxError> {
    let now = now_ms();
    let jobs = super::call(&state.db, move |c| due(c, now)).await?;
    for mut j in jobs {
        let (device, user) = (j.device.clone(), j.user.clone());
        let order = super::call(&state.db, move |c| {
            priority::candidates(c, Some(&device), Some(&user))
        })
        .await?;
        if order.is_empty() {
            fail_unroutable(state, j).await?;
            continue;
        }
        let picked = {
            let mut inner = lock(&state.fax.inner);
            let key = normalize_number(&j.number);
            if inner.dialling.contains(&key) {
                continue;
            }
            let free = order.iter().find(|g| {
                inner
                    .gateways
                    .get(*g)
                    .is_some_and(|gw| !gw.conn.is_cancelled() && (gw.calls.len() as u32) < gw.lines)
            });
            match free {
                None => None,
                Some(g) => {
                    let g = g.clone();
                    inner.dialling.insert(key);
                    let gw = inner.gateways.get_mut(&g);
                    gw.map(|gw| {
                        gw.calls.insert((j.job.clone(), j.number.clone()));
                        (g, gw.conn.clone())
                    })
                }
            }
        };
        let Some((gateway, conn)) = picked else {
            continue;
        };
        j.dials += 1;
        j.state = "dialling".into();
        j.gateway = gateway.clone();
        j.detail = format!("dialling via {gateway}");
        let jj = j.clone();
        let stored = super::call(&state.db, move |c| {
            c.execute(
                "UPDATE fax_jobs SET state = 'dialling', gateway = ?3, dials = ?4, detail = ?5
                 WHERE job = ?1 AND number = ?2 AND state = 'queued'",
                params![jj.job, jj.number, jj.gateway, jj.dials, jj.detail],
            )?;
            Ok(())
        })
        .await;
        let root = state.data.root().to_owned();
        let jr = j.clone();
        // Files that fit in one frame travel with the job; larger ones the gateway fetches.
        let files = tokio::task::spawn_blocking(move || {
            let sizes = file_sizes(&root, &jr)?;
            if sizes.iter().sum::<u64>() <= MAX_JOB_BYTES as u64 {
                Ok((load_files(&root, &jr)?, None))
            } else {
                let names = jr
                    .files
                    .iter()
                    .map(|n| FaxFile {
                        name: n.clone(),
                        data: bytes::Bytes::new(),
                    })
                    .collect();
                Ok::<_, std::io::Error>((names, Some(sizes)))
            }
        })
        .await;
        let (files, sizes) = match (stored, files) {
            (Ok(()), Ok(Ok(f))) => f,
            (s, f) => {
                tracing::error!(job = %j.job, ?s, ?f, "cannot hand a fax job to a gateway");
                state.fax.release(&gateway, &j.job, &j.number);
                continue;
            }
        };
        let job = FaxJob {
            job: j.job.clone(),
            attempt: j.dials,
            number: j.number.clone(),
            fine: j.fine,
            first_page: j.next_page.max(1),
            files,
        };
        tracing::info!(job = %j.job, number = %j.number, %gateway, attempt = j.dials, first_page = job.first_page, in_parts = sizes.is_some(), "fax call handed to a gateway");
        let event = match sizes {
            None => FaxEvent::Job(job),
            Some(sizes) => FaxEvent::JobByParts { job, sizes },
        };
        match OutFrame::encode(&ServerMsg::Fax(event)) {
            Ok(frame) => {
                conn.push(frame);
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a fax job"),
        }
        push_to_device(state, &j.device, FaxEvent::Progress(j.status()));
    }
    Ok(())
}

/// Pushes every online gateway the settings it has not been pushed on this connection (all
/// of them once after it connects, so a gateway that restarted applies them again; then each
/// new version, whether the change came from `imagecast-server fax settings set` or a
/// terminal).
async fn push_settings(state: &Arc<ServerState>) -> Result<(), FaxError> {
    let online: Vec<(String, i64)> = lock(&state.fax.inner)
        .gateways
        .iter()
        .filter(|(_, g)| !g.conn.is_cancelled())
        .map(|(d, g)| (d.clone(), g.pushed))
        .collect();
    if online.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = online.iter().map(|(d, _)| d.clone()).collect();
    let current = super::call(&state.db, move |c| {
        names
            .iter()
            .map(|g| super::settings::show(c, g))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    for (v, (domain, pushed)) in current.iter().zip(online) {
        if v.version == 0 || v.version <= pushed {
            continue;
        }
        let msg = ServerMsg::Fax(FaxEvent::Settings(super::settings::to_wire(v)));
        let Ok(frame) = OutFrame::encode(&msg) else {
            continue;
        };
        let mut inner = lock(&state.fax.inner);
        if let Some(g) = inner.gateways.get_mut(&domain) {
            if g.conn.speaks(&msg) && g.conn.push(frame) {
                g.pushed = v.version;
                tracing::info!(gateway = %domain, version = v.version, "gateway settings pushed");
            }
        }
    }
    Ok(())
}

/// The dispatcher's loop, until the server stops.
pub async fn run(state: Weak<ServerState>) {
    loop {
        let Some(s) = state.upgrade() else { return };
        if s.shutdown.is_cancelled() {
            return;
        }
        if let Err(e) = pass(&s).await {
            tracing::warn!(error = %e, "fax dispatch pass failed");
        }
        if let Err(e) = push_settings(&s).await {
            tracing::warn!(error = %e, "cannot push gateway settings");
        }
        let fax = Arc::clone(&s.fax);
        let woken = fax.wake.notified();
        let stop = s.shutdown.clone();
        drop(s);
        tokio::select! {
            _ = woken => {}
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: &str, attempt: u32) -> FaxResult {
        FaxResult {
            job: "j1".into(),
            number: "5550199".into(),
            attempt,
            outcome: outcome.into(),
            station: String::new(),
            pages_confirmed: 0,
            pages_total: 0,
            next_page: 1,
            coding: String::new(),
            ecm: false,
            speed: 0,
            duration_ms: 10,
            reason: String::new(),
        }
    }

    fn dialling(conn: &Connection, dials: u32) {
        conn.execute(
            "UPDATE fax_jobs SET state = 'dialling', gateway = 'gw1.example', dials = ?1",
            [dials],
        )
        .unwrap();
    }

    #[test]
    fn busy_is_retried_until_max_dials_then_fails_with_the_count() {
        let (_d, conn) = super::super::testing::db();
        policy::set(
            &conn,
            &[
                "max-tries=1".into(),
                "max-dials=2".into(),
                "busy-retry-s=0".into(),
            ],
        )
        .unwrap();
        insert_job(
            &conn,
            &NewJob {
                job: "j1".into(),
                numbers: vec!["5550199".into()],
                user: "1001".into(),
                device: "pc1.example".into(),
                fine: false,
                files: vec!["a.png".into()],
            },
        )
        .unwrap();
        // A result for a call that is not this gateway's current one changes nothing.
        assert!(
            apply_result(&conn, "gw1.example", "", &result("busy", 1))
                .unwrap()
                .is_none()
        );
        dialling(&conn, 1);
        let o = apply_result(&conn, "gw1.example", "", &result("busy", 1))
            .unwrap()
            .unwrap();
        assert_eq!(o.row.state, "queued");
        assert_eq!(o.record.result, "busy");
        dialling(&conn, 2);
        let o = apply_result(&conn, "gw1.example", "", &result("busy", 2))
            .unwrap()
            .unwrap();
        assert_eq!(o.row.state, "failed");
        assert_eq!(o.row.detail, "busy after 2 dials");
        assert!(o.row.status().done);
        assert_eq!(records::last(&conn, 0).unwrap().len(), 2);
    }
}
