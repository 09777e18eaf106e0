//! Registration with and withdrawal from destination groups (section 2.3, claims 1 and 12):
//! atomic, serialized edits of the group files, with group commit.
//!
//! # How an edit reaches the disk
//!
//! 1. The caller resolves the group through a fresh [`GroupSnapshot`] (group name → file name)
//!    and, for a registration, looks its domain up in `all.rec` for the destination name.
//! 2. The edit joins the queue of that file. One task per file works the queue: it takes
//!    *every* edit waiting, re-reads the file from disk (the operator may have edited it; when
//!    the bytes are those it last wrote, it reuses the file as it parsed it then), applies the
//!    edits in arrival order with [`RecFile::apply`], and, if the bytes changed, parses the
//!    result ([`RecFile::reparsed`]: only the appended lines, for a batch of registrations),
//!    writes it to a temporary file in the same directory, fsyncs it, renames it over the group
//!    file, hands the parsed file to the table ([`GroupDir`]) and fsyncs the directory. Then
//!    each caller gets its own result. The work of a batch of registrations thus grows with the
//!    batch, not with the group: a read, a compare and a copy of the file are all that is left
//!    of its size.
//! 3. Edits that arrive while a write is in flight wait for the next round, so N concurrent
//!    registrations into one group cost about two writes, not N. Different files have different
//!    tasks and proceed in parallel.
//!
//! # The operator's editor
//!
//! An operator may save the same file while we rewrite it. We re-read the file for every batch
//! and, just before the rename, check that its (length, mtime, ctime, inode) are still those we
//! read; if not, the batch is redone on the new content (up to [`MAX_ATTEMPTS`] times, then
//! [`GroupError::ConcurrentEdit`]). What remains is the window between that check and the rename
//! (microseconds): a save that lands there is overwritten. This is inherent to editing a file
//! that a person edits too without a lock they would honour.
//!
//! The rename replaces a symbolic link by a regular file, and the new file gets the old one's
//! permission bits but the server's owner. A crash can leave a hidden `.NAME.rec.tmp-*` file
//! behind; the table ignores it and it can be deleted.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::table::{MISSING_ALL, ReadError, Stamp, read_open, too_large};
use super::{
    ALL_FILE, EditOutcome, GroupDir, GroupError, GroupSnapshot, MAX_FILE_SIZE, RecEdit, RecFile,
    Severity,
};

/// How many times a batch is redone when the file changes under it before giving up.
pub const MAX_ATTEMPTS: usize = 5;

/// The result of a registration that was not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// `domain;name` was appended to the group's file.
    Added {
        /// The group registered with.
        group: String,
        /// Its file.
        file_name: String,
        /// The domain as spelled in `all.rec`.
        domain: String,
        /// The destination name from `all.rec`.
        name: String,
    },
    /// The domain was already a member; the file was not touched.
    AlreadyMember {
        /// The group the terminal already belongs to, as named in its file.
        group: String,
        /// Its file.
        file_name: String,
        /// The domain as spelled in `all.rec`.
        domain: String,
        /// The destination name from `all.rec`.
        name: String,
    },
}

/// The result of a withdrawal that was not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Withdrawal {
    /// The member line (and any duplicate of it) was removed from the group's file.
    Removed {
        /// The group withdrawn from.
        group: String,
        /// Its file.
        file_name: String,
        /// The domain as asked for.
        domain: String,
    },
    /// The domain was not a member; the file was not touched.
    NotMember {
        /// The group the terminal does not belong to, as named in its file.
        group: String,
        /// Its file.
        file_name: String,
        /// The domain as asked for.
        domain: String,
    },
}

/// Counters of what the writer did, for tests, metrics and the performance notes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Edits submitted (registrations and withdrawals that reached a queue).
    pub edits: u64,
    /// Batches worked (one file read and parse each).
    pub batches: u64,
    /// Files replaced (one rename each).
    pub writes: u64,
    /// `fsync` calls (two per write: the file and the directory).
    pub fsyncs: u64,
    /// Batches redone because the operator changed the file meanwhile.
    pub retries: u64,
}

/// Applies registrations and withdrawals to the group files: see the module doc.
///
/// Cheap to clone; clones share the queues. Needs a Tokio runtime.
#[derive(Debug, Clone)]
pub struct RecWriter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    groups: Arc<GroupDir>,
    /// One queue per group file name.
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    edits: AtomicU64,
    batches: AtomicU64,
    writes: AtomicU64,
    fsyncs: AtomicU64,
    retries: AtomicU64,
}

#[derive(Debug)]
struct Queue {
    file_name: String,
    state: Mutex<QueueState>,
    /// The file as this queue's task last read or wrote it, parsed: a batch whose fresh read
    /// gives the same bytes uses it instead of parsing the file again.
    parsed: Mutex<Option<Arc<RecFile>>>,
}

#[derive(Debug, Default)]
struct QueueState {
    jobs: Vec<Job>,
    /// Whether a task is working this queue.
    running: bool,
}

#[derive(Debug)]
struct Job {
    request: Request,
    reply: oneshot::Sender<Result<EditOutcome, GroupError>>,
}

/// One edit as it travels to the file's task.
#[derive(Debug, Clone)]
struct Request {
    /// The group name the caller resolved to this file; checked again against the file.
    group: String,
    edit: OwnedEdit,
}

#[derive(Debug, Clone)]
enum OwnedEdit {
    Add { domain: String, name: String },
    Remove { domain: String },
}

impl OwnedEdit {
    fn as_edit(&self) -> RecEdit<'_> {
        match self {
            OwnedEdit::Add { domain, name } => RecEdit::Add { domain, name },
            OwnedEdit::Remove { domain } => RecEdit::Remove { domain },
        }
    }
}

impl RecWriter {
    /// A writer for the group files of `groups`. Edits are serialized per file *within one
    /// writer*: make one per groups directory and clone it (one server process per data
    /// directory).
    pub fn new(groups: Arc<GroupDir>) -> RecWriter {
        RecWriter {
            inner: Arc::new(Inner {
                groups,
                queues: Mutex::new(HashMap::new()),
                edits: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                fsyncs: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        }
    }

    /// The watched groups directory.
    pub fn groups(&self) -> &Arc<GroupDir> {
        &self.inner.groups
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        let i = &self.inner;
        WriterStats {
            edits: i.edits.load(Ordering::Relaxed),
            batches: i.batches.load(Ordering::Relaxed),
            writes: i.writes.load(Ordering::Relaxed),
            fsyncs: i.fsyncs.load(Ordering::Relaxed),
            retries: i.retries.load(Ordering::Relaxed),
        }
    }

    /// Registers the terminal `domain` with `group`: appends `domain;name` to the group's file,
    /// with the domain and destination name as `all.rec` has them (the domain is matched
    /// case-insensitively). Returns once the file is on disk.
    ///
    /// Refused with [`GroupError::UnknownGroup`], [`GroupError::NotRegistrable`] (the
    /// `all.rec` group), [`GroupError::UnknownDomain`] (not in `all.rec`),
    /// [`GroupError::MissingAll`] or [`GroupError::Malformed`] (`all.rec` or the group file
    /// unusable). Registering twice is harmless: [`Registration::AlreadyMember`].
    pub async fn register(&self, group: &str, domain: &str) -> Result<Registration, GroupError> {
        let snapshot = self.snapshot().await?;
        let file_name = registrable_file(&snapshot, group)?;
        let Some(all) = snapshot.all() else {
            return Err(all_unavailable(&snapshot));
        };
        let member = all
            .find(domain)
            .ok_or_else(|| GroupError::UnknownDomain(domain.trim().to_owned()))?;
        let (domain, name) = (member.domain.to_string(), member.name.to_string());
        let edit = OwnedEdit::Add {
            domain: domain.clone(),
            name: name.clone(),
        };
        let group = group.to_owned();
        match self.submit(&file_name, group.clone(), edit).await? {
            EditOutcome::Added => Ok(Registration::Added {
                group,
                file_name,
                domain,
                name,
            }),
            EditOutcome::AlreadyMember => Ok(Registration::AlreadyMember {
                group,
                file_name,
                domain,
                name,
            }),
            EditOutcome::Invalid(reason) => Err(GroupError::InvalidMember(reason)),
            other => Err(GroupError::Interrupted(format!(
                "unexpected outcome {other:?}"
            ))),
        }
    }

    /// Withdraws the terminal `domain` from `group`: removes its line (and any duplicate of it)
    /// from the group's file, keeping every other byte. The domain need not be in `all.rec` any
    /// more. Withdrawing a non-member is harmless: [`Withdrawal::NotMember`].
    ///
    /// Refused with [`GroupError::UnknownGroup`], [`GroupError::NotRegistrable`] (the
    /// `all.rec` group) or [`GroupError::Malformed`] (the group file unusable).
    pub async fn withdraw(&self, group: &str, domain: &str) -> Result<Withdrawal, GroupError> {
        let snapshot = self.snapshot().await?;
        let file_name = registrable_file(&snapshot, group)?;
        let domain = domain.trim().to_owned();
        let edit = OwnedEdit::Remove {
            domain: domain.clone(),
        };
        let group = group.to_owned();
        match self.submit(&file_name, group.clone(), edit).await? {
            EditOutcome::Removed => Ok(Withdrawal::Removed {
                group,
                file_name,
                domain,
            }),
            EditOutcome::NotMember => Ok(Withdrawal::NotMember {
                group,
                file_name,
                domain,
            }),
            other => Err(GroupError::Interrupted(format!(
                "unexpected outcome {other:?}"
            ))),
        }
    }

    async fn snapshot(&self) -> Result<Arc<GroupSnapshot>, GroupError> {
        let groups = Arc::clone(&self.inner.groups);
        tokio::task::spawn_blocking(move || groups.snapshot())
            .await
            .map_err(|e| GroupError::Interrupted(e.to_string()))?
    }

    /// Queues one edit for `file_name` and waits for its outcome.
    async fn submit(
        &self,
        file_name: &str,
        group: String,
        edit: OwnedEdit,
    ) -> Result<EditOutcome, GroupError> {
        let (reply, outcome) = oneshot::channel();
        let queue = self.queue(file_name);
        let start = {
            let mut state = lock(&queue.state);
            state.jobs.push(Job {
                request: Request { group, edit },
                reply,
            });
            !std::mem::replace(&mut state.running, true)
        };
        self.inner.edits.fetch_add(1, Ordering::Relaxed);
        if start {
            tokio::spawn(work_queue(Arc::clone(&self.inner), queue));
        }
        outcome
            .await
            .map_err(|_| GroupError::Interrupted("the group file task stopped".to_owned()))?
    }

    fn queue(&self, file_name: &str) -> Arc<Queue> {
        let mut queues = lock(&self.inner.queues);
        Arc::clone(queues.entry(file_name.to_owned()).or_insert_with(|| {
            Arc::new(Queue {
                file_name: file_name.to_owned(),
                state: Mutex::new(QueueState::default()),
                parsed: Mutex::new(None),
            })
        }))
    }
}

/// The file of `group`, unless it is unknown or the all-destinations group.
fn registrable_file(snapshot: &GroupSnapshot, group: &str) -> Result<String, GroupError> {
    let file_name = snapshot
        .table()
        .file_name(group)
        .ok_or_else(|| GroupError::UnknownGroup(group.to_owned()))?;
    if file_name == ALL_FILE {
        return Err(GroupError::NotRegistrable(group.to_owned()));
    }
    Ok(file_name.to_owned())
}

/// Why `all.rec` cannot be used: missing, or its errors.
fn all_unavailable(snapshot: &GroupSnapshot) -> GroupError {
    let errors: Vec<_> = snapshot
        .problems()
        .iter()
        .filter(|p| p.file == ALL_FILE && p.severity == Severity::Error)
        .cloned()
        .collect();
    if errors.is_empty() || errors.iter().any(|p| p.reason == MISSING_ALL) {
        GroupError::MissingAll
    } else {
        GroupError::Malformed(errors)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Queues hold plain data that every step leaves consistent; a panic elsewhere must not
    // stop registrations.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The task of one file: works batches until the queue is empty.
async fn work_queue(inner: Arc<Inner>, queue: Arc<Queue>) {
    loop {
        let jobs = {
            let mut state = lock(&queue.state);
            if state.jobs.is_empty() {
                state.running = false;
                return;
            }
            std::mem::take(&mut state.jobs)
        };
        let requests: Vec<Request> = jobs.iter().map(|j| j.request.clone()).collect();
        let worker = Arc::clone(&inner);
        let batch_queue = Arc::clone(&queue);
        let done =
            tokio::task::spawn_blocking(move || commit_batch(&worker, &batch_queue, &requests))
                .await;
        match done {
            Ok(Ok(outcomes)) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    // A caller that gave up waiting no longer listens; the edit stands.
                    let _ = job.reply.send(outcome);
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(file = %queue.file_name, "group file edit failed: {error}");
                for job in jobs {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
            Err(join) => {
                tracing::error!(file = %queue.file_name, "group file edit task failed: {join}");
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(GroupError::Interrupted(join.to_string())));
                }
            }
        }
    }
}

/// Applies one batch to the file on disk: read, edit, write atomically. One result per
/// request; `Err` when the whole batch failed.
fn commit_batch(
    inner: &Inner,
    queue: &Queue,
    requests: &[Request],
) -> Result<Vec<Result<EditOutcome, GroupError>>, GroupError> {
    inner.batches.fetch_add(1, Ordering::Relaxed);
    let file_name = queue.file_name.as_str();
    let mut parsed = lock(&queue.parsed);
    let dir = inner.groups.dir();
    let path = dir.join(file_name);
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            inner.retries.fetch_add(1, Ordering::Relaxed);
        }
        let (bytes, stamp, permissions) = match read_fresh(&path, file_name)? {
            Some(read) => read,
            // Deleted since the table was read: the group is gone.
            None => {
                *parsed = None;
                return Ok(requests
                    .iter()
                    .map(|r| Err(GroupError::UnknownGroup(r.group.clone())))
                    .collect());
            }
        };
        // The operator may have edited the file: the bytes decide, not the stamp.
        let file = match parsed.take() {
            Some(file) if file.same_bytes(&bytes) => file,
            _ => Arc::new(RecFile::parse(file_name, &bytes).map_err(GroupError::Malformed)?),
        };

        // Requests whose group the file still declares (the operator may have renamed it).
        let mut results: Vec<Option<Result<EditOutcome, GroupError>>> = Vec::new();
        let mut edits = Vec::new();
        for request in requests {
            if request.group == file.group_name() {
                edits.push(request.edit.as_edit());
                results.push(None);
            } else {
                results.push(Some(Err(GroupError::UnknownGroup(request.group.clone()))));
            }
        }
        let (outcomes, edited) = file.apply(&edits);
        match edited {
            Some(bytes) => {
                if bytes.len() as u64 > MAX_FILE_SIZE {
                    return Err(GroupError::Malformed(vec![too_large(
                        file_name,
                        bytes.len() as u64,
                    )]));
                }
                // Parsed before it is written: the table takes it as it is, and a result that
                // would not parse is never written.
                let edited = Arc::new(file.reparsed(&bytes).map_err(GroupError::Malformed)?);
                if !write_atomically(inner, &path, &bytes, stamp, permissions, &edited)? {
                    tracing::info!(
                        file = file_name,
                        "group file changed on disk meanwhile; redoing"
                    );
                    continue;
                }
                *parsed = Some(edited);
            }
            None => *parsed = Some(file),
        }
        let mut outcomes = outcomes.into_iter();
        return Ok(results
            .into_iter()
            .map(|r| match r {
                Some(refused) => refused,
                None => outcomes
                    .next()
                    .map(Ok)
                    .unwrap_or_else(|| Err(GroupError::Interrupted("missing outcome".to_owned()))),
            })
            .collect());
    }
    Err(GroupError::ConcurrentEdit(file_name.to_owned()))
}

/// The file's bytes, stamp and permissions, or `None` if it does not exist.
fn read_fresh(
    path: &Path,
    file_name: &str,
) -> Result<Option<(Vec<u8>, Stamp, fs::Permissions)>, GroupError> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(GroupError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| GroupError::io(path, e))?;
    let stamp = Stamp::of(&meta);
    match read_open(&mut file, meta.len()) {
        Ok(bytes) => Ok(Some((bytes, stamp, meta.permissions()))),
        Err(ReadError::TooLarge(len)) => {
            Err(GroupError::Malformed(vec![too_large(file_name, len)]))
        }
        Err(ReadError::Io(e)) => Err(GroupError::io(path, e)),
    }
}

/// Replaces `path` by `bytes` durably (temp file, fsync, rename, fsync of the directory), unless
/// the file no longer has the `stamp` it had when read: then `Ok(false)` and nothing changes.
fn write_atomically(
    inner: &Inner,
    path: &Path,
    bytes: &[u8],
    stamp: Stamp,
    permissions: fs::Permissions,
    parsed: &Arc<RecFile>,
) -> Result<bool, GroupError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (temp, mut file) = create_temp(path)?;
    let guard = RemoveOnDrop(Some(temp.clone()));
    let io = |e| GroupError::io(&temp, e);
    file.write_all(bytes).map_err(io)?;
    file.set_permissions(permissions).map_err(io)?;
    file.sync_all().map_err(io)?;
    inner.fsyncs.fetch_add(1, Ordering::Relaxed);
    let written = file.metadata().map_err(io)?;
    drop(file);

    // The last look before the rename: did the operator save the file since we read it?
    match fs::metadata(path) {
        Ok(meta) if Stamp::of(&meta) == stamp => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(GroupError::io(path, e)),
    }
    fs::rename(&temp, path).map_err(|e| GroupError::io(path, e))?;
    guard.disarm();
    inner.writes.fetch_add(1, Ordering::Relaxed);
    // The table learns the new content from us instead of reading and parsing it again; at
    // once, before the directory's fsync, or a snapshot taken meanwhile would read it.
    // Only if the file there is still ours: an operator's save right after the rename must be
    // read from disk, not hidden behind our content with its stamp.
    if let (Ok(meta), Some(name)) = (
        fs::metadata(path),
        path.file_name().and_then(|n| n.to_str()),
    ) {
        if same_inode(&meta, &written) {
            inner.groups.remember(name, &meta, Arc::clone(parsed));
        }
    }
    sync_dir(dir)?;
    inner.fsyncs.fetch_add(1, Ordering::Relaxed);
    Ok(true)
}

/// Whether two metadata describe the same file (always true where inodes are not known).
fn same_inode(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

/// Removes the hidden `.NAME.rec.tmp-*` files that a crash during a group-file rewrite leaves
/// (the rewrite itself never happened: the group file is intact).
pub fn remove_stale_temp_files(dir: &Path) {
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

/// A new hidden temporary file next to `path`: `.NAME.rec.tmp-PID-N`.
fn create_temp(path: &Path) -> Result<(PathBuf, fs::File), GroupError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut last_error = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Its owner's only until it takes the old file's mode (no moment open to others).
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(GroupError::io(temp, e)),
        }
    }
    Err(GroupError::io(
        dir,
        last_error.unwrap_or_else(|| io::Error::other("no temporary file name free")),
    ))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), GroupError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| GroupError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Deletes the temporary file when the write fails half-way.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::groups::domain_key;

    const ALL: &str = "# all distribution destinations\n# all.rec\n\
        sale1.hqs.mei.co.jp;sales department 1 of the head office\n\
        sale2.hqs.mei.co.jp;sales department 2 of the head office\n\
        sale1.osk.mei.co.jp;sales department, the Osaka branch\n\
        devl1.hqs.mei.co.jp;development department of the head office\n\
        DEVL1.osk.mei.co.jp;development department, the Osaka branch\n";
    const EIGYOU_ALL: &str = "# all sales-related places\r\n# eigyou_all.rec\r\n\
        # head office\r\n\
        sale1.hqs.mei.co.jp;sales department 1 of the head office\r\n\
        sale2.hqs.mei.co.jp;sales department 2 of the head office\r\n\
        \r\n\
        # Osaka\r\n\
        sale1.osk.mei.co.jp;sales department, the Osaka branch\r\n";
    const DEVELOP: &str = "# product development-related places\n# develop.rec\n\
        devl1.hqs.mei.co.jp;development department of the head office\n";
    const DEVELOP_GROUP: &str = "product development-related places";
    const SALES_GROUP: &str = "all sales-related places";

    fn setup() -> (tempfile::TempDir, RecWriter) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("all.rec", ALL),
            ("eigyou_all.rec", EIGYOU_ALL),
            ("develop.rec", DEVELOP),
        ] {
            fs::write(dir.path().join(name), text).unwrap();
        }
        let writer = RecWriter::new(Arc::new(GroupDir::new(dir.path())));
        (dir, writer)
    }

    fn read(dir: &tempfile::TempDir, name: &str) -> String {
        fs::read_to_string(dir.path().join(name)).unwrap()
    }

    fn no_temp_files_left(dir: &tempfile::TempDir) {
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn register_appends_the_name_from_all_rec_once() {
        let (dir, writer) = setup();
        let r = writer
            .register(DEVELOP_GROUP, "devl1.OSK.mei.co.jp")
            .await
            .unwrap();
        assert_eq!(
            r,
            Registration::Added {
                group: DEVELOP_GROUP.to_owned(),
                file_name: "develop.rec".to_owned(),
                domain: "DEVL1.osk.mei.co.jp".to_owned(),
                name: "development department, the Osaka branch".to_owned(),
            }
        );
        assert_eq!(
            read(&dir, "develop.rec"),
            format!("{DEVELOP}DEVL1.osk.mei.co.jp;development department, the Osaka branch\n")
        );
        assert_eq!(writer.stats().writes, 1);
        assert_eq!(writer.stats().fsyncs, 2);

        // Twice: harmless, file untouched (not even rewritten).
        let inode_before = fs::metadata(dir.path().join("develop.rec")).unwrap();
        let again = writer
            .register(DEVELOP_GROUP, "devl1.osk.mei.co.jp")
            .await
            .unwrap();
        assert!(matches!(again, Registration::AlreadyMember { .. }));
        assert_eq!(writer.stats().writes, 1);
        let inode_after = fs::metadata(dir.path().join("develop.rec")).unwrap();
        assert_eq!(Stamp::of(&inode_before), Stamp::of(&inode_after));

        // The table sees the new member at once.
        let s = writer.groups().snapshot().unwrap();
        assert!(
            s.group(DEVELOP_GROUP)
                .unwrap()
                .contains("devl1.osk.mei.co.jp")
        );
        no_temp_files_left(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registration_refusals() {
        let (dir, writer) = setup();
        assert!(matches!(
            writer.register(DEVELOP_GROUP, "stranger.example.com").await,
            Err(GroupError::UnknownDomain(d)) if d == "stranger.example.com"
        ));
        assert!(matches!(
            writer.register("no such group", "sale1.hqs.mei.co.jp").await,
            Err(GroupError::UnknownGroup(g)) if g == "no such group"
        ));
        assert!(matches!(
            writer
                .register("all distribution destinations", "sale1.hqs.mei.co.jp")
                .await,
            Err(GroupError::NotRegistrable(_))
        ));
        assert!(matches!(
            writer
                .withdraw("all distribution destinations", "sale1.hqs.mei.co.jp")
                .await,
            Err(GroupError::NotRegistrable(_))
        ));
        assert!(matches!(
            writer
                .withdraw("no such group", "sale1.hqs.mei.co.jp")
                .await,
            Err(GroupError::UnknownGroup(_))
        ));
        let e = writer
            .register(DEVELOP_GROUP, "stranger.example.com")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stranger.example.com") && e.contains("all.rec"),
            "{e}"
        );
        assert_eq!(read(&dir, "develop.rec"), DEVELOP);
        assert_eq!(writer.stats().writes, 0);

        // all.rec broken, then missing.
        fs::write(dir.path().join("all.rec"), "sale1.hqs.mei.co.jp;x\n").unwrap();
        match writer.register(DEVELOP_GROUP, "sale1.hqs.mei.co.jp").await {
            Err(GroupError::Malformed(p)) => {
                assert_eq!(p[0].file, "all.rec");
                assert_eq!(p[0].line, 1);
            }
            other => panic!("{other:?}"),
        }
        fs::remove_file(dir.path().join("all.rec")).unwrap();
        assert!(matches!(
            writer.register(DEVELOP_GROUP, "sale1.hqs.mei.co.jp").await,
            Err(GroupError::MissingAll)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn withdraw_removes_only_the_line_and_keeps_crlf_and_comments() {
        let (dir, writer) = setup();
        let w = writer
            .withdraw(SALES_GROUP, "SALE2.hqs.mei.co.jp")
            .await
            .unwrap();
        assert!(matches!(w, Withdrawal::Removed { .. }));
        assert_eq!(
            read(&dir, "eigyou_all.rec"),
            EIGYOU_ALL.replace(
                "sale2.hqs.mei.co.jp;sales department 2 of the head office\r\n",
                ""
            )
        );
        let w = writer
            .withdraw(SALES_GROUP, "sale2.hqs.mei.co.jp")
            .await
            .unwrap();
        assert!(matches!(w, Withdrawal::NotMember { .. }));
        // Registering again appends with the file's CRLF.
        writer
            .register(SALES_GROUP, "sale2.hqs.mei.co.jp")
            .await
            .unwrap();
        assert!(
            read(&dir, "eigyou_all.rec")
                .ends_with("sale1.osk.mei.co.jp;sales department, the Osaka branch\r\nsale2.hqs.mei.co.jp;sales department 2 of the head office\r\n")
        );
        assert_eq!(writer.stats().writes, 2);
        no_temp_files_left(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_operators_edits_since_the_last_snapshot_are_kept() {
        let (dir, writer) = setup();
        writer.groups().snapshot().unwrap();
        // The operator adds a comment and a blank line with an editor.
        let edited = format!("{DEVELOP}\n# added by the operator\n");
        fs::write(dir.path().join("develop.rec"), &edited).unwrap();
        writer
            .register(DEVELOP_GROUP, "sale1.hqs.mei.co.jp")
            .await
            .unwrap();
        assert_eq!(
            read(&dir, "develop.rec"),
            format!("{edited}sale1.hqs.mei.co.jp;sales department 1 of the head office\n")
        );
    }

    #[test]
    fn a_file_broken_or_renamed_since_the_table_was_read_is_refused() {
        let (dir, writer) = setup();
        let add = |group: &str| Request {
            group: group.to_owned(),
            edit: OwnedEdit::Add {
                domain: "sale1.hqs.mei.co.jp".to_owned(),
                name: "S1".to_owned(),
            },
        };
        // Group renamed on line 1: the request for the old name is refused, the new one works.
        fs::write(
            dir.path().join("develop.rec"),
            DEVELOP.replace("product", "new"),
        )
        .unwrap();
        let out = commit_batch(
            &writer.inner,
            &writer.queue("develop.rec"),
            &[add(DEVELOP_GROUP), add("new development-related places")],
        )
        .unwrap();
        assert!(matches!(&out[0], Err(GroupError::UnknownGroup(g)) if g == DEVELOP_GROUP));
        assert!(matches!(&out[1], Ok(EditOutcome::Added)));

        // Header broken: refused with FILE:LINE: reason.
        fs::write(dir.path().join("develop.rec"), "# g\nno header\n").unwrap();
        let err =
            commit_batch(&writer.inner, &writer.queue("develop.rec"), &[add("g")]).unwrap_err();
        assert!(
            err.to_string().starts_with("develop.rec:2: line 2 must be"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("develop.rec")).unwrap(),
            "# g\nno header\n"
        );

        // Deleted: unknown group.
        fs::remove_file(dir.path().join("develop.rec")).unwrap();
        let out = commit_batch(&writer.inner, &writer.queue("develop.rec"), &[add("g")]).unwrap();
        assert!(matches!(&out[0], Err(GroupError::UnknownGroup(_))));
    }

    #[test]
    fn a_change_between_read_and_rename_is_detected() {
        let (dir, writer) = setup();
        let path = dir.path().join("develop.rec");
        let (bytes, stamp, perm) = read_fresh(&path, "develop.rec").unwrap().unwrap();
        // The operator saves (different length) before our rename.
        fs::write(&path, format!("{DEVELOP}# operator\n")).unwrap();
        let parsed = Arc::new(RecFile::parse("develop.rec", &bytes).unwrap());
        let written = write_atomically(&writer.inner, &path, &bytes, stamp, perm, &parsed).unwrap();
        assert!(!written);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{DEVELOP}# operator\n")
        );
        no_temp_files_left(&dir);
    }

    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn permissions_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, writer) = setup();
        let path = dir.path().join("develop.rec");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        writer
            .register(DEVELOP_GROUP, "sale1.hqs.mei.co.jp")
            .await
            .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    /// all.rec with `n` extra destinations `termN.load.mei.co.jp`, and a group file with
    /// `members` of them already in.
    fn big_setup(n: usize, members: usize) -> (tempfile::TempDir, RecWriter) {
        let dir = tempfile::tempdir().unwrap();
        let mut all = String::from(ALL);
        let mut group = String::from("# load group\n# load.rec\n");
        for i in 0..n {
            all.push_str(&format!("term{i}.load.mei.co.jp;terminal {i}\n"));
            if i < members {
                group.push_str(&format!("term{i}.load.mei.co.jp;terminal {i}\n"));
            }
        }
        fs::write(dir.path().join("all.rec"), all).unwrap();
        fs::write(dir.path().join("load.rec"), group).unwrap();
        fs::write(dir.path().join("develop.rec"), DEVELOP).unwrap();
        fs::write(dir.path().join("eigyou_all.rec"), EIGYOU_ALL).unwrap();
        let writer = RecWriter::new(Arc::new(GroupDir::new(dir.path())));
        (dir, writer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_all_land_with_few_writes() {
        const NEW: usize = 64;
        const MEMBERS: usize = 10_000;
        let (dir, writer) = big_setup(MEMBERS + NEW, MEMBERS);
        let mut tasks = Vec::new();
        for i in MEMBERS..MEMBERS + NEW {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .register("load group", &format!("TERM{i}.load.mei.co.jp"))
                    .await
            }));
        }
        for task in tasks {
            assert!(matches!(
                task.await.unwrap().unwrap(),
                Registration::Added { .. }
            ));
        }
        let text = read(&dir, "load.rec");
        let file = RecFile::parse("load.rec", text.as_bytes()).unwrap();
        assert_eq!(file.member_count(), MEMBERS + NEW);
        assert!(file.problems().is_empty());
        for i in 0..MEMBERS + NEW {
            assert!(file.contains(&format!("term{i}.load.mei.co.jp")), "{i}");
        }
        let stats = writer.stats();
        eprintln!("{NEW} concurrent registrations: {stats:?}");
        assert_eq!(stats.edits, NEW as u64);
        assert_eq!(stats.writes, stats.batches - stats.retries);
        assert!(stats.writes < NEW as u64 / 2, "{stats:?}");
        no_temp_files_left(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_edits_on_different_files() {
        let (dir, writer) = setup();
        let w = writer.clone();
        let register =
            tokio::spawn(async move { w.register(DEVELOP_GROUP, "devl1.osk.mei.co.jp").await });
        let w = writer.clone();
        let withdraw =
            tokio::spawn(async move { w.withdraw(SALES_GROUP, "sale1.osk.mei.co.jp").await });
        let w = writer.clone();
        let both = tokio::spawn(async move {
            (
                w.register(SALES_GROUP, "devl1.hqs.mei.co.jp").await,
                w.withdraw(DEVELOP_GROUP, "devl1.hqs.mei.co.jp").await,
            )
        });
        assert!(matches!(
            register.await.unwrap().unwrap(),
            Registration::Added { .. }
        ));
        assert!(matches!(
            withdraw.await.unwrap().unwrap(),
            Withdrawal::Removed { .. }
        ));
        let (r, w) = both.await.unwrap();
        assert!(matches!(r.unwrap(), Registration::Added { .. }));
        assert!(matches!(w.unwrap(), Withdrawal::Removed { .. }));

        let s = writer.groups().snapshot().unwrap();
        let develop = s.group(DEVELOP_GROUP).unwrap();
        let sales = s.group(SALES_GROUP).unwrap();
        let domains = |f: &RecFile| {
            f.members()
                .map(|m| domain_key(&m.domain).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(domains(develop), ["devl1.osk.mei.co.jp"]);
        assert_eq!(
            domains(sales),
            [
                "sale1.hqs.mei.co.jp",
                "sale2.hqs.mei.co.jp",
                "devl1.hqs.mei.co.jp"
            ]
        );
        // Comments and CRLF of the sales file survived.
        let text = read(&dir, "eigyou_all.rec");
        assert!(text.contains("\r\n# Osaka\r\n"), "{text:?}");
        assert!(!text.replace("\r\n", "").contains('\n'), "{text:?}");
        no_temp_files_left(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn register_and_withdraw_the_same_domain_concurrently_stay_consistent() {
        let (dir, writer) = setup();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    w.register(DEVELOP_GROUP, "sale1.osk.mei.co.jp")
                        .await
                        .map(|_| ())
                } else {
                    w.withdraw(DEVELOP_GROUP, "sale1.osk.mei.co.jp")
                        .await
                        .map(|_| ())
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Whatever the order, the file is valid and holds the domain at most once.
        let text = read(&dir, "develop.rec");
        let file = RecFile::parse("develop.rec", text.as_bytes()).unwrap();
        assert!(file.problems().is_empty(), "{:?}", file.problems());
        assert_eq!(
            text.matches("sale1.osk.mei.co.jp").count(),
            usize::from(file.contains("sale1.osk.mei.co.jp"))
        );
        assert!(text.starts_with(DEVELOP));
    }
}
