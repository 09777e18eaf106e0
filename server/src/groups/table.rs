//! The table of destination group names and file names (FIG. 18), kept in step with the groups
//! directory while the server runs.
//!
//! [`GroupDir::snapshot`] lists the directory and `stat`s each `*.rec` file; only files whose
//! (length, mtime, ctime, inode, device) changed are read again, so a call when nothing changed
//! reads no file. An operator who adds, deletes or edits a file with a text editor sees the
//! change take effect on the next call. Each call returns an immutable [`GroupSnapshot`] that
//! callers keep for as long as one request needs a consistent view.
//!
//! A change that leaves length and timestamps alike goes unnoticed only if it falls within the
//! filesystem's timestamp granularity of the previous one; a file whose change time is that
//! recent when read is "racy" (as git calls it) and is re-read, and compared byte for byte, on
//! each call until it is old enough.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::rec::quote;
use super::{ALL_FILE, GroupError, MAX_FILE_SIZE, REC_EXTENSION, RecFile, RecProblem};

/// How recent a change time makes a cached file racy on filesystems with fine timestamps
/// (a kernel tick is at most 10 ms).
const RACY_FINE: Duration = Duration::from_millis(50);
/// The same on filesystems with whole-second (or 2-second, FAT) timestamps.
const RACY_COARSE: Duration = Duration::from_millis(2100);

/// The reason of the problem reported when `all.rec` does not exist.
pub(crate) const MISSING_ALL: &str = "missing: all.rec must list every destination, starting \
     with the lines '# all distribution destinations' and '# all.rec'";

/// One row of the table: a group name and the file that declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The group name from line 1 of the file.
    pub group: String,
    /// The file name in the groups directory, e.g. `develop.rec`.
    pub file_name: String,
}

/// The table of destination group names and file names (FIG. 18), in a stable order: the
/// all-destinations group (`all.rec`) first, then by group name (what the operator reads on the
/// panel, numbered from 1), ties by file name. Only usable, unambiguous files have a row.
#[derive(Debug, Clone, Default)]
pub struct GroupTable {
    rows: Vec<GroupRow>,
    by_group: HashMap<String, usize>,
    by_file: HashMap<String, usize>,
}

impl GroupTable {
    /// Every row, `all.rec` first, then by group name.
    pub fn rows(&self) -> &[GroupRow] {
        &self.rows
    }

    /// The file that holds `group`.
    pub fn file_name(&self, group: &str) -> Option<&str> {
        self.by_group
            .get(group)
            .map(|&i| self.rows[i].file_name.as_str())
    }

    /// The group that `file_name` declares, if the file is in the table.
    pub fn group_name(&self, file_name: &str) -> Option<&str> {
        self.by_file
            .get(file_name)
            .map(|&i| self.rows[i].group.as_str())
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no usable group at all.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Puts the rows in display order (`all.rec` first, then by group name, case-insensitive,
    /// ties by file name) and rebuilds the indexes.
    fn sort(&mut self) {
        self.rows.sort_by(|a, b| {
            (b.file_name == ALL_FILE)
                .cmp(&(a.file_name == ALL_FILE))
                .then_with(|| a.group.to_lowercase().cmp(&b.group.to_lowercase()))
                .then_with(|| a.group.cmp(&b.group))
                .then_with(|| a.file_name.cmp(&b.file_name))
        });
        self.by_group.clear();
        self.by_file.clear();
        for (i, row) in self.rows.iter().enumerate() {
            self.by_group.insert(row.group.clone(), i);
            self.by_file.insert(row.file_name.clone(), i);
        }
    }

    fn push(&mut self, group: &str, file_name: &str) {
        let i = self.rows.len();
        self.by_group.insert(group.to_owned(), i);
        self.by_file.insert(file_name.to_owned(), i);
        self.rows.push(GroupRow {
            group: group.to_owned(),
            file_name: file_name.to_owned(),
        });
    }
}

/// A consistent view of every group file at one moment.
#[derive(Debug)]
pub struct GroupSnapshot {
    table: GroupTable,
    /// The file of every row of the table.
    files: HashMap<String, Arc<RecFile>>,
    all: Option<Arc<RecFile>>,
    problems: Vec<RecProblem>,
    generation: u64,
}

impl GroupSnapshot {
    /// The table of group names and file names.
    pub fn table(&self) -> &GroupTable {
        &self.table
    }

    /// Every group with its file, "all distribution destinations" (`all.rec`) first, then by
    /// file name.
    pub fn groups(&self) -> &[GroupRow] {
        self.table.rows()
    }

    /// The groups a terminal may register with: all but the `all.rec` group (section 2.3).
    pub fn groups_for_registration(&self) -> impl Iterator<Item = &GroupRow> {
        self.table.rows().iter().filter(|r| r.file_name != ALL_FILE)
    }

    /// The file of the group called `name` (exact match).
    pub fn group(&self, name: &str) -> Option<&RecFile> {
        self.table
            .file_name(name)
            .and_then(|f| self.files.get(f))
            .map(Arc::as_ref)
    }

    /// The group file called `file_name`, if it is in the table.
    pub fn file(&self, file_name: &str) -> Option<&RecFile> {
        self.files.get(file_name).map(Arc::as_ref)
    }

    /// `all.rec`, when it exists and is usable.
    pub fn all(&self) -> Option<&RecFile> {
        self.all.as_deref()
    }

    /// The destination name of `domain` in `all.rec` (case-insensitive).
    pub fn destination_name(&self, domain: &str) -> Option<&str> {
        self.all()?.find(domain).map(|m| &*m.name)
    }

    /// Every error and warning of every file, `all.rec` first, then by file name and line.
    pub fn problems(&self) -> &[RecProblem] {
        &self.problems
    }

    /// Increases by one every time the directory's contents change; equal generations from the
    /// same [`GroupDir`] mean equal snapshots.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// What identifies one version of a file on disk without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// The inode change time on Unix (updated by every write, rename or `touch`), else mtime.
    changed: Option<SystemTime>,
    inode: u64,
    device: u64,
}

impl Stamp {
    pub(crate) fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let changed = u64::try_from(meta.ctime())
                .ok()
                .zip(u32::try_from(meta.ctime_nsec()).ok())
                .and_then(|(s, ns)| {
                    SystemTime::UNIX_EPOCH.checked_add(Duration::new(s, ns.min(999_999_999)))
                });
            Stamp {
                len: meta.len(),
                modified: meta.modified().ok(),
                changed,
                inode: meta.ino(),
                device: meta.dev(),
            }
        }
        #[cfg(not(unix))]
        {
            Stamp {
                len: meta.len(),
                modified: meta.modified().ok(),
                changed: meta.modified().ok(),
                inode: 0,
                device: 0,
            }
        }
    }

    /// Whether a later change could leave this stamp unchanged (see the module doc).
    fn is_racy(&self, now: SystemTime) -> bool {
        let Some(changed) = self.changed else {
            return true;
        };
        let window = match changed.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) if d.subsec_nanos() == 0 => RACY_COARSE,
            _ => RACY_FINE,
        };
        match now.duration_since(changed) {
            Ok(age) => age < window,
            Err(_) => true, // in the future
        }
    }
}

/// A group file as last read.
#[derive(Debug)]
enum Loaded {
    Usable(Arc<RecFile>),
    /// Broken header, too large or unreadable; `bytes` when it could be read.
    Unusable {
        bytes: Option<Vec<u8>>,
        problems: Vec<RecProblem>,
    },
}

impl Loaded {
    fn from_read(file_name: &str, read: Result<Vec<u8>, RecProblem>) -> Loaded {
        match read {
            Ok(bytes) => match RecFile::parse(file_name, &bytes) {
                Ok(file) => Loaded::Usable(Arc::new(file)),
                Err(problems) => Loaded::Unusable {
                    bytes: Some(bytes),
                    problems,
                },
            },
            Err(problem) => Loaded::Unusable {
                bytes: None,
                problems: vec![problem],
            },
        }
    }

    /// Whether a fresh read gives what this already holds.
    fn same_as(&self, read: &Result<Vec<u8>, RecProblem>) -> bool {
        match (self, read) {
            (Loaded::Usable(file), Ok(bytes)) => file.same_bytes(bytes),
            (
                Loaded::Unusable {
                    bytes: Some(old), ..
                },
                Ok(bytes),
            ) => old == bytes,
            (
                Loaded::Unusable {
                    bytes: None,
                    problems,
                },
                Err(p),
            ) => problems.as_slice() == [p.clone()],
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Cached {
    stamp: Stamp,
    racy: bool,
    loaded: Loaded,
}

#[derive(Debug, Default)]
struct DirState {
    files: BTreeMap<String, Cached>,
    /// Problems found while listing (unreadable entries, odd names), part of the snapshot.
    listing_problems: Vec<RecProblem>,
    snapshot: Option<Arc<GroupSnapshot>>,
    /// A file's content was told by the writer ([`GroupDir::remember`]): rebuild.
    dirty: bool,
    /// The cross-file check of each group file as last built.
    checked: HashMap<String, CrossChecked>,
    /// The number of the last rescan that completed (see [`GroupDir::rescans`]).
    rescanned: u64,
}

/// The members of one group file that `all.rec` does not list, as found for one pair of
/// contents: a rebuild reuses it, or checks only the members a registration appended.
#[derive(Debug)]
struct CrossChecked {
    file: u64,
    all: u64,
    members: usize,
    warnings: Vec<RecProblem>,
}

/// The groups directory, watched: see the module doc.
#[derive(Debug)]
pub struct GroupDir {
    dir: PathBuf,
    state: Mutex<DirState>,
    /// Rescans started so far: a caller that finds a rescan numbered above the count it saw on
    /// arrival completed takes that rescan's snapshot instead of listing the directory again.
    rescans: AtomicU64,
    file_reads: AtomicU64,
    /// Tests turn the racy-file check off to count reads exactly.
    racy_check: bool,
    /// False for a reader that reports the problems itself ([`GroupDir::without_logging`]).
    log_problems: bool,
}

impl GroupDir {
    /// Watches `dir` (usually `DATA/groups`). Nothing is read until the first
    /// [`snapshot`](Self::snapshot).
    pub fn new(dir: impl Into<PathBuf>) -> GroupDir {
        GroupDir {
            dir: dir.into(),
            state: Mutex::new(DirState::default()),
            rescans: AtomicU64::new(0),
            file_reads: AtomicU64::new(0),
            racy_check: true,
            log_problems: true,
        }
    }

    /// Logs no problems: for a one-off reader that shows them itself (`imagecast-server
    /// check` prints each problem once, on standard output, rather than also in the log).
    pub fn without_logging(mut self) -> GroupDir {
        self.log_problems = false;
        self
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many times a group file has been read so far (for tests and metrics).
    pub fn file_reads(&self) -> u64 {
        self.file_reads.load(Ordering::Relaxed)
    }

    /// The groups as they are on disk now. Reads only the files that changed since the last
    /// call (none when nothing changed: one directory listing and one `stat` per file) and
    /// returns the previous snapshot itself when nothing changed. New problems are logged once
    /// with `tracing::warn!`.
    ///
    /// Blocking (file system calls): from async code, call it in `spawn_blocking`.
    ///
    /// Concurrent callers share a rescan: one that waited for the lock while another caller's
    /// rescan ran, *started after it arrived*, takes that rescan's result, which is as fresh
    /// as one of its own would be.
    ///
    /// Fails only when the directory itself cannot be listed; every problem with a file is in
    /// [`GroupSnapshot::problems`] instead.
    pub fn snapshot(&self) -> Result<Arc<GroupSnapshot>, GroupError> {
        let arrived = self.rescans.load(Ordering::SeqCst);
        let mut state = self.lock();
        if state.rescanned > arrived && !state.dirty {
            if let Some(snapshot) = &state.snapshot {
                return Ok(Arc::clone(snapshot));
            }
        }
        let rescan = self.rescans.fetch_add(1, Ordering::SeqCst) + 1;
        let (listing, listing_problems) = self.list()?;
        state.rescanned = rescan;
        let now = SystemTime::now();

        let mut changed =
            state.snapshot.is_none() || state.dirty || listing_problems != state.listing_problems;
        state.dirty = false;
        let mut old = std::mem::take(&mut state.files);
        let mut files = BTreeMap::new();
        for (name, meta) in listing {
            let stamp = Stamp::of(&meta);
            let cached = match old.remove(&name) {
                Some(c) if c.stamp == stamp && !c.racy => c,
                Some(c) if c.stamp == stamp => {
                    // Racy: same stamp, but the content may still differ.
                    let read = self.read(&name, stamp.len);
                    if c.loaded.same_as(&read) {
                        Cached {
                            racy: self.racy_check && stamp.is_racy(now),
                            ..c
                        }
                    } else {
                        changed = true;
                        self.cache(&name, stamp, now, read)
                    }
                }
                _ => {
                    changed = true;
                    let read = self.read(&name, stamp.len);
                    self.cache(&name, stamp, now, read)
                }
            };
            files.insert(name, cached);
        }
        if !old.is_empty() {
            changed = true; // files were deleted
        }
        state.files = files;

        if !changed {
            if let Some(snapshot) = &state.snapshot {
                return Ok(Arc::clone(snapshot));
            }
        }
        let previous = state.snapshot.take();
        let generation = previous.as_ref().map_or(0, |s| s.generation + 1);
        let state = &mut *state;
        let snapshot = Arc::new(build(
            &state.files,
            &listing_problems,
            &mut state.checked,
            generation,
        ));
        if self.log_problems {
            log_new_problems(previous.as_deref(), &snapshot);
        }
        state.listing_problems = listing_problems;
        state.snapshot = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// Takes what the writer has just written to `file_name` (the file parsed, and the
    /// metadata read right after the rename), so that the next snapshot uses it without reading
    /// or parsing the file again: a burst of registrations into a large group then costs one
    /// parse per write, not a read and a parse per request. Any later change on disk still
    /// shows in the file's stamp.
    pub(crate) fn remember(&self, file_name: &str, meta: &fs::Metadata, file: Arc<RecFile>) {
        let loaded = Loaded::Usable(file);
        let mut state = self.lock();
        state.files.insert(
            file_name.to_owned(),
            Cached {
                stamp: Stamp::of(meta),
                racy: false,
                loaded,
            },
        );
        state.dirty = true;
    }

    /// Turns the racy-file check off so that tests can count reads exactly.
    #[cfg(test)]
    pub(crate) fn without_racy_check(mut self) -> GroupDir {
        self.racy_check = false;
        self
    }

    fn lock(&self) -> MutexGuard<'_, DirState> {
        // The state is rebuilt from disk on each call, so a panic elsewhere cannot leave it
        // inconsistent in a harmful way.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache(
        &self,
        name: &str,
        stamp: Stamp,
        now: SystemTime,
        read: Result<Vec<u8>, RecProblem>,
    ) -> Cached {
        tracing::debug!(file = name, "group file (re)loaded");
        Cached {
            stamp,
            racy: self.racy_check && stamp.is_racy(now),
            loaded: Loaded::from_read(name, read),
        }
    }

    /// The candidate group files with their metadata, and what was odd in the listing.
    #[allow(clippy::type_complexity)]
    fn list(&self) -> Result<(Vec<(String, fs::Metadata)>, Vec<RecProblem>), GroupError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| GroupError::io(&self.dir, e))?;
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| GroupError::io(&self.dir, e))?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                let lossy = os_name.to_string_lossy();
                if lossy.ends_with(REC_EXTENSION) {
                    problems.push(RecProblem::error(
                        lossy.into_owned(),
                        0,
                        "the file name is not valid UTF-8; file ignored",
                    ));
                }
                continue;
            };
            if !is_group_file_name(name) {
                continue;
            }
            // Follows symbolic links; a dangling one, or a file deleted since the listing,
            // simply is not there.
            match fs::metadata(entry.path()) {
                Ok(meta) if meta.is_file() => files.push((name.to_owned(), meta)),
                Ok(_) => problems.push(RecProblem::warning(name, 0, "not a regular file; ignored")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => problems.push(RecProblem::error(
                    name,
                    0,
                    format!("cannot be examined: {e}; file ignored"),
                )),
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        Ok((files, problems))
    }

    /// Reads a group file, refusing (without reading) one larger than [`MAX_FILE_SIZE`].
    fn read(&self, name: &str, len: u64) -> Result<Vec<u8>, RecProblem> {
        self.file_reads.fetch_add(1, Ordering::Relaxed);
        read_limited(&self.dir.join(name), len).map_err(|e| match e {
            ReadError::TooLarge(len) => too_large(name, len),
            ReadError::Io(e) => {
                RecProblem::error(name, 0, format!("cannot be read: {e}; file ignored"))
            }
        })
    }
}

/// Why [`read_limited`] gave up.
#[derive(Debug)]
pub(crate) enum ReadError {
    TooLarge(u64),
    Io(io::Error),
}

/// Reads at most [`MAX_FILE_SIZE`] bytes of `path`; `len` is the size the caller saw.
pub(crate) fn read_limited(path: &Path, len: u64) -> Result<Vec<u8>, ReadError> {
    if len > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge(len));
    }
    let mut file = fs::File::open(path).map_err(ReadError::Io)?;
    read_open(&mut file, len)
}

/// Reads at most [`MAX_FILE_SIZE`] bytes of an open file; `len` is the size the caller saw.
pub(crate) fn read_open(file: &mut fs::File, len: u64) -> Result<Vec<u8>, ReadError> {
    if len > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

pub(crate) fn too_large(name: &str, len: u64) -> RecProblem {
    RecProblem::error(
        name,
        0,
        format!(
            "the file is {len} bytes long, more than the limit of {} MiB; file ignored",
            MAX_FILE_SIZE / (1024 * 1024)
        ),
    )
}

/// `NAME.rec`, not hidden (`.develop.rec.swp`, `.#develop.rec`, our temp files), not an editor
/// back-up (`develop.rec~`) or lock file (`#develop.rec#`).
pub(crate) fn is_group_file_name(name: &str) -> bool {
    name.len() > REC_EXTENSION.len()
        && name.ends_with(REC_EXTENSION)
        && !name.starts_with('.')
        && !name.starts_with('#')
        && !name.contains(['/', '\\'])
}

/// Builds the table from the files (in file-name order) and gathers every problem.
fn build(
    files: &BTreeMap<String, Cached>,
    listing_problems: &[RecProblem],
    checked: &mut HashMap<String, CrossChecked>,
    generation: u64,
) -> GroupSnapshot {
    let mut table = GroupTable::default();
    let mut usable = HashMap::new();
    let mut problems: Vec<RecProblem> = listing_problems.to_vec();

    let all_entry = files.get_key_value(ALL_FILE);
    if all_entry.is_none() {
        problems.push(RecProblem::error(ALL_FILE, 0, MISSING_ALL));
    }
    let ordered = all_entry
        .into_iter()
        .chain(files.iter().filter(|(name, _)| name.as_str() != ALL_FILE));
    for (name, cached) in ordered {
        match &cached.loaded {
            Loaded::Unusable { problems: p, .. } => problems.extend(p.iter().cloned()),
            Loaded::Usable(file) => {
                problems.extend(file.problems().iter().cloned());
                let group = file.group_name();
                match table.file_name(group) {
                    Some(winner) => {
                        problems.push(RecProblem::error(
                            name.as_str(),
                            1,
                            format!(
                                "the group name {} is already declared by {winner}; this file \
                                 is ignored until one of them is renamed",
                                quote(group)
                            ),
                        ));
                        problems.push(RecProblem::warning(
                            winner,
                            1,
                            format!(
                                "the group name {} is also declared by {name}, which is ignored",
                                quote(group)
                            ),
                        ));
                    }
                    None => {
                        table.push(group, name);
                        usable.insert(name.clone(), Arc::clone(file));
                    }
                }
            }
        }
    }

    let all = usable.get(ALL_FILE).cloned();
    let mut rechecked = HashMap::new();
    if let Some(all) = &all {
        for row in table.rows().iter().filter(|r| r.file_name != ALL_FILE) {
            let Some(file) = usable.get(&row.file_name) else {
                continue;
            };
            let check = cross_check(checked.remove(&row.file_name), file, all);
            problems.extend(check.warnings.iter().cloned());
            rechecked.insert(row.file_name.clone(), check);
        }
    }
    *checked = rechecked;

    problems.sort_by(|a, b| {
        (a.file != ALL_FILE, &a.file, a.line).cmp(&(b.file != ALL_FILE, &b.file, b.line))
    });
    table.sort();
    GroupSnapshot {
        table,
        files: usable,
        all,
        problems,
        generation,
    }
}

/// The members of `file` that `all` does not list, reusing `previous` when it checked the same
/// contents, or the file this one was appended to.
fn cross_check(previous: Option<CrossChecked>, file: &RecFile, all: &RecFile) -> CrossChecked {
    let (from, mut warnings) = match previous {
        Some(p) if p.all == all.id() && p.file == file.id() => return p,
        Some(p) if p.all == all.id() && file.extends() == Some((p.file, p.members)) => {
            (p.members, p.warnings)
        }
        _ => (0, Vec::new()),
    };
    for member in file
        .members()
        .skip(from)
        .filter(|m| !all.contains(&m.domain))
    {
        warnings.push(RecProblem::warning(
            file.file_name(),
            member.line,
            format!(
                "{} is not listed in all.rec (all distribution destinations)",
                quote(&member.domain)
            ),
        ));
    }
    CrossChecked {
        file: file.id(),
        all: all.id(),
        members: file.member_count(),
        warnings,
    }
}

/// Logs the problems that the previous snapshot did not have.
fn log_new_problems(previous: Option<&GroupSnapshot>, snapshot: &GroupSnapshot) {
    let seen: HashSet<&RecProblem> = previous
        .map(|p| p.problems().iter().collect())
        .unwrap_or_default();
    for problem in snapshot.problems().iter().filter(|p| !seen.contains(p)) {
        tracing::warn!("destination group file: {problem}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;

    const ALL: &str = "# all distribution destinations\n# all.rec\n\
        sale1.hqs.mei.co.jp;sales department 1 of the head office\n\
        sale2.hqs.mei.co.jp;sales department 2 of the head office\n\
        sale1.osk.mei.co.jp;sales department, the Osaka branch\n\
        devl1.hqs.mei.co.jp;development department of the head office\n\
        devl1.osk.mei.co.jp;development department, the Osaka branch\n";
    const EIGYOU_ALL: &str = "# all sales-related places\n# eigyou_all.rec\n\
        sale1.hqs.mei.co.jp;sales department 1 of the head office\n\
        sale2.hqs.mei.co.jp;sales department 2 of the head office\n\
        sale1.osk.mei.co.jp;sales department, the Osaka branch\n";
    const EIGYOU_SYO: &str = "# all sales offices\n# eigyou_syo.rec\n\
        sale1.osk.mei.co.jp;sales department, the Osaka branch\n";
    const DEVELOP: &str = "# product development-related places\n# develop.rec\n\
        devl1.hqs.mei.co.jp;development department of the head office\n";

    fn seed_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("all.rec", ALL),
            ("eigyou_all.rec", EIGYOU_ALL),
            ("eigyou_syo.rec", EIGYOU_SYO),
            ("develop.rec", DEVELOP),
        ] {
            fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn names(s: &GroupSnapshot) -> Vec<(&str, &str)> {
        s.groups()
            .iter()
            .map(|r| (r.group.as_str(), r.file_name.as_str()))
            .collect()
    }

    /// Moves a file's mtime one hour back so that the next write changes it for sure.
    fn age(path: &Path) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }

    #[test]
    fn builds_the_seed_table_in_stable_order() {
        let dir = seed_dir();
        // Editor litter and other files are ignored.
        for junk in [
            ".develop.rec.swp",
            "develop.rec~",
            "#develop.rec#",
            ".#develop.rec",
            "notes.txt",
            ".rec",
            ".all.rec.tmp-1-2",
        ] {
            fs::write(dir.path().join(junk), "# junk\n# junk\n").unwrap();
        }
        let groups = GroupDir::new(dir.path());
        let s = groups.snapshot().unwrap();
        assert_eq!(
            names(&s),
            [
                ("all distribution destinations", "all.rec"),
                ("all sales offices", "eigyou_syo.rec"),
                ("all sales-related places", "eigyou_all.rec"),
                ("product development-related places", "develop.rec"),
            ]
        );
        let reg: Vec<_> = s
            .groups_for_registration()
            .map(|r| r.group.as_str())
            .collect();
        assert_eq!(
            reg,
            [
                "all sales offices",
                "all sales-related places",
                "product development-related places",
            ]
        );
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert_eq!(
            s.destination_name("DEVL1.osk.mei.co.jp"),
            Some("development department, the Osaka branch")
        );
        assert_eq!(s.destination_name("nowhere.jp"), None);
        assert_eq!(s.group("all sales offices").unwrap().member_count(), 1);
        assert_eq!(s.all().unwrap().member_count(), 5);
        assert_eq!(
            s.table().file_name("all sales offices"),
            Some("eigyou_syo.rec")
        );
        assert_eq!(
            s.table().group_name("develop.rec"),
            Some("product development-related places")
        );
        assert!(s.group("junk").is_none());
        assert_eq!(s.file("develop.rec").unwrap().member_count(), 1);
    }

    #[test]
    fn unchanged_directory_reads_no_file_and_returns_the_same_snapshot() {
        let dir = seed_dir();
        let groups = GroupDir::new(dir.path()).without_racy_check();
        let first = groups.snapshot().unwrap();
        assert_eq!(groups.file_reads(), 4);
        let second = groups.snapshot().unwrap();
        assert_eq!(groups.file_reads(), 4);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.generation(), second.generation());
    }

    #[test]
    fn racy_files_are_reread_but_an_identical_one_changes_nothing() {
        let dir = seed_dir();
        let groups = GroupDir::new(dir.path());
        let first = groups.snapshot().unwrap();
        let reads = groups.file_reads();
        // Files written a moment ago are racy: re-read, found identical, snapshot kept.
        let second = groups.snapshot().unwrap();
        assert!(groups.file_reads() >= reads);
        assert!(Arc::ptr_eq(&first, &second));
        // Once they are old enough, nothing is read any more.
        std::thread::sleep(RACY_FINE + Duration::from_millis(20));
        groups.snapshot().unwrap();
        let settled = groups.file_reads();
        groups.snapshot().unwrap();
        assert_eq!(groups.file_reads(), settled);
    }

    #[test]
    fn picks_up_files_added_edited_and_deleted() {
        let dir = seed_dir();
        let groups = GroupDir::new(dir.path());
        let s0 = groups.snapshot().unwrap();
        assert_eq!(s0.groups().len(), 4);

        // Added.
        fs::write(
            dir.path().join("branch.rec"),
            "# branch offices\n# branch.rec\nsale1.osk.mei.co.jp;sales department, the Osaka branch\n",
        )
        .unwrap();
        let s1 = groups.snapshot().unwrap();
        assert!(s1.generation() > s0.generation());
        assert_eq!(s1.group("branch offices").unwrap().member_count(), 1);
        // Ordered by group name: "all sales...", "all sales-related...", "branch offices".
        assert_eq!(s1.groups()[3].file_name, "branch.rec");

        // Edited: renamed group, same length even (mtime moved back first so that the edit
        // changes it whatever the timestamp granularity).
        let path = dir.path().join("develop.rec");
        age(&path);
        fs::write(&path, DEVELOP.replace("product", "PRODUCT")).unwrap();
        let s2 = groups.snapshot().unwrap();
        assert!(s2.group("product development-related places").is_none());
        assert_eq!(
            s2.group("PRODUCT development-related places")
                .unwrap()
                .file_name(),
            "develop.rec"
        );

        // Deleted.
        fs::remove_file(dir.path().join("eigyou_syo.rec")).unwrap();
        let s3 = groups.snapshot().unwrap();
        assert!(s3.group("all sales offices").is_none());
        assert_eq!(s3.groups().len(), 4);

        // Old snapshots are untouched.
        assert!(s0.group("all sales offices").is_some());
    }

    #[test]
    fn same_length_edit_within_one_tick_is_still_seen() {
        let dir = seed_dir();
        let groups = GroupDir::new(dir.path());
        groups.snapshot().unwrap();
        // Same length, written at once: the racy check re-reads the file.
        let path = dir.path().join("develop.rec");
        fs::write(&path, DEVELOP.replace("head", "HEAD")).unwrap();
        let s = groups.snapshot().unwrap();
        assert_eq!(
            &*s.group("product development-related places")
                .unwrap()
                .find("devl1.hqs.mei.co.jp")
                .unwrap()
                .name,
            "development department of the HEAD office"
        );
    }

    #[test]
    fn a_malformed_file_never_hides_the_other_groups() {
        let dir = seed_dir();
        fs::write(dir.path().join("broken.rec"), "no header here\n").unwrap();
        fs::write(
            dir.path().join("halfgood.rec"),
            "# half good\n# halfgood.rec\nsale1.hqs.mei.co.jp;S1\nbad line\n",
        )
        .unwrap();
        fs::write(dir.path().join("latin1.rec"), b"# caf\xe9\n# latin1.rec\n").unwrap();
        let groups = GroupDir::new(dir.path());
        let s = groups.snapshot().unwrap();
        assert_eq!(s.groups().len(), 5);
        assert_eq!(s.group("half good").unwrap().member_count(), 1);
        assert!(s.table().group_name("broken.rec").is_none());
        let shown: Vec<String> = s.problems().iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert!(
            shown[0].starts_with("broken.rec:1: line 1 must be"),
            "{shown:#?}"
        );
        assert!(
            shown[1].starts_with("broken.rec:2: the file ends early"),
            "{shown:#?}"
        );
        assert!(shown[2].starts_with("halfgood.rec:4: no ';'"), "{shown:#?}");
        assert!(
            shown[3].starts_with("latin1.rec:1: neither UTF-8 nor Shift_JIS"),
            "{shown:#?}"
        );
    }

    #[test]
    fn missing_all_rec_is_a_problem_not_a_crash() {
        let dir = seed_dir();
        fs::remove_file(dir.path().join("all.rec")).unwrap();
        let s = GroupDir::new(dir.path()).snapshot().unwrap();
        assert!(s.all().is_none());
        assert_eq!(s.destination_name("sale1.hqs.mei.co.jp"), None);
        assert_eq!(s.groups().len(), 3);
        assert_eq!(s.groups_for_registration().count(), 3);
        assert_eq!(s.problems()[0].file, "all.rec");
        assert_eq!(s.problems()[0].line, 0);
        assert!(s.problems()[0].to_string().starts_with("all.rec: missing"));
    }

    #[test]
    fn duplicate_group_names_first_file_wins_and_all_rec_always_wins() {
        let dir = seed_dir();
        fs::write(
            dir.path().join("aaa.rec"),
            "# all sales offices\n# aaa.rec\nsale2.hqs.mei.co.jp;x\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("000.rec"),
            "# all distribution destinations\n# 000.rec\n",
        )
        .unwrap();
        let s = GroupDir::new(dir.path()).snapshot().unwrap();
        assert_eq!(s.table().file_name("all sales offices"), Some("aaa.rec"));
        assert_eq!(
            s.table().file_name("all distribution destinations"),
            Some("all.rec")
        );
        let shown: Vec<String> = s.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "all.rec:1: warning: the group name \"all distribution destinations\" is also declared by 000.rec, which is ignored",
                "000.rec:1: the group name \"all distribution destinations\" is already declared by all.rec; this file is ignored until one of them is renamed",
                "aaa.rec:1: warning: the group name \"all sales offices\" is also declared by eigyou_syo.rec, which is ignored",
                "eigyou_syo.rec:1: the group name \"all sales offices\" is already declared by aaa.rec; this file is ignored until one of them is renamed",
            ]
        );
    }

    #[test]
    fn members_missing_from_all_rec_are_warned_about() {
        let dir = seed_dir();
        fs::write(
            dir.path().join("develop.rec"),
            format!("{DEVELOP}ghost.mei.co.jp;ghost\n"),
        )
        .unwrap();
        let s = GroupDir::new(dir.path()).snapshot().unwrap();
        let p = s.problems();
        assert_eq!(p.len(), 1);
        assert!(p[0].is_warning());
        assert_eq!((p[0].file.as_str(), p[0].line), ("develop.rec", 4));
        // Still a member: a warning ignores nothing.
        assert!(
            s.group("product development-related places")
                .unwrap()
                .contains("ghost.mei.co.jp")
        );
    }

    #[test]
    fn too_large_and_odd_entries() {
        let dir = seed_dir();
        let big = fs::File::create(dir.path().join("big.rec")).unwrap();
        big.set_len(MAX_FILE_SIZE + 1).unwrap();
        fs::create_dir(dir.path().join("folder.rec")).unwrap();
        let groups = GroupDir::new(dir.path());
        let s = groups.snapshot().unwrap();
        assert_eq!(s.groups().len(), 4);
        let shown: Vec<String> = s.problems().iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(shown[0].starts_with("big.rec: the file is 16777217 bytes long"));
        assert_eq!(shown[1], "folder.rec: warning: not a regular file; ignored");
    }

    #[test]
    fn missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let groups = GroupDir::new(dir.path().join("nope"));
        match groups.snapshot() {
            Err(GroupError::Io { path, .. }) => assert!(path.ends_with("nope")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn group_file_names() {
        assert!(is_group_file_name("develop.rec"));
        assert!(is_group_file_name("all.rec"));
        for bad in [
            ".rec",
            "develop.rec~",
            "#develop.rec#",
            ".develop.rec.swp",
            "develop.REC",
            "develop.rec.bak",
        ] {
            assert!(!is_group_file_name(bad), "{bad}");
        }
    }
}
