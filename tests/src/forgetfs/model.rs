//! The in-memory file system behind [`super::ForgetFs`]: what programs see (the volatile view)
//! and what a power loss would leave (the durable state), kept apart.
//!
//! - **File data and mode** are durable as of the file's last `fsync`/`fdatasync`; anything
//!   written or truncated since lives only in the volatile view.
//! - **Directory entries** change through a log of namespace operations (link, unlink,
//!   rename). `fsync` of a directory makes every logged operation on that directory durable,
//!   together with the operation that made a renamed entry's source. A rename is one operation:
//!   it survives or vanishes whole, as on a journalling file system.
//! - **A power loss** ([`Model::power_loss`]) keeps the durable state and, as the
//!   [`Losses`] chooser decides, any subset of the rest: each logged operation independently,
//!   each file's unsynced data kept, dropped, or kept in part at 4 KiB block granularity.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

use super::loss::{DataFate, Losses};

/// An inode number.
pub type Ino = u64;
/// The root directory's inode number.
pub const ROOT: Ino = 1;
/// The granularity at which a file's unsynced data survives in part.
pub const BLOCK: usize = 4096;

/// A failed operation, as an `errno` value.
pub type Errno = i32;
type Res<T> = Result<T, Errno>;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A node's attributes, as `stat` shows them.
#[derive(Clone, Debug)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File or directory.
    pub kind: Kind,
    /// Size in bytes (files).
    pub size: u64,
    /// Permission bits.
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last access.
    pub atime: SystemTime,
    /// Last data change.
    pub mtime: SystemTime,
    /// Last inode change.
    pub ctime: SystemTime,
}

#[derive(Clone, Debug)]
struct Inode {
    kind: Kind,
    /// The volatile data (files).
    data: Vec<u8>,
    /// The data as of the last fsync, kept only while it differs from `data` (files).
    synced: Option<Vec<u8>>,
    /// Data or mode changed since the last fsync.
    dirty: bool,
    /// Volatile directory entries (directories).
    entries: BTreeMap<OsString, Ino>,
    perm: u16,
    synced_perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Inode {
    fn new(kind: Kind, perm: u16, uid: u32, gid: u32) -> Self {
        let now = SystemTime::now();
        Self {
            kind,
            data: Vec::new(),
            synced: Some(Vec::new()),
            // A new file's (empty) content and mode are not on disk until it is synced.
            dirty: kind == Kind::File,
            entries: BTreeMap::new(),
            perm,
            synced_perm: perm,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }
}

/// One change of the namespace, logged until it is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NsOp {
    /// `name` in `dir` now names `ino` (create, mkdir, link; replaces what was there).
    Link { dir: Ino, name: OsString, ino: Ino },
    /// `name` (naming `ino`) was removed from `dir` (unlink, rmdir).
    Unlink { dir: Ino, name: OsString, ino: Ino },
    /// `ino` moved from `from` to `to` (replacing what `to` named).
    Rename {
        from: (Ino, OsString),
        to: (Ino, OsString),
        ino: Ino,
    },
}

impl NsOp {
    fn touches(&self, d: Ino) -> bool {
        match self {
            NsOp::Link { dir, .. } | NsOp::Unlink { dir, .. } => *dir == d,
            NsOp::Rename { from, to, .. } => from.0 == d || to.0 == d,
        }
    }

    /// Applies the operation to a namespace; an operation whose source is not there (it was
    /// made by an operation that did not survive) is skipped.
    fn apply(&self, tree: &mut HashMap<Ino, BTreeMap<OsString, Ino>>) {
        match self {
            NsOp::Link { dir, name, ino } => {
                tree.entry(*dir).or_default().insert(name.clone(), *ino);
            }
            NsOp::Unlink { dir, name, ino } => {
                if let Some(entries) = tree.get_mut(dir) {
                    if entries.get(name) == Some(ino) {
                        entries.remove(name);
                    }
                }
            }
            NsOp::Rename { from, to, ino } => {
                let there = tree.get(&from.0).and_then(|e| e.get(&from.1)) == Some(ino);
                if there {
                    if let Some(e) = tree.get_mut(&from.0) {
                        e.remove(&from.1);
                    }
                    tree.entry(to.0).or_default().insert(to.1.clone(), *ino);
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Logged {
    op: NsOp,
    durable: bool,
}

/// What one power loss dropped and kept, for the test's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LossReport {
    /// Unsynced namespace operations that vanished.
    pub ops_dropped: u64,
    /// Unsynced namespace operations that survived.
    pub ops_kept: u64,
    /// Files whose unsynced data vanished whole.
    pub files_dropped: u64,
    /// Files whose unsynced data survived in part.
    pub files_torn: u64,
    /// Files whose unsynced data survived whole.
    pub files_kept: u64,
}

impl LossReport {
    /// Adds another report's counts to this one.
    pub fn add(&mut self, o: &LossReport) {
        self.ops_dropped += o.ops_dropped;
        self.ops_kept += o.ops_kept;
        self.files_dropped += o.files_dropped;
        self.files_torn += o.files_torn;
        self.files_kept += o.files_kept;
    }
}

/// The file system's whole state: volatile view, durable namespace and the log between them.
#[derive(Debug)]
pub struct Model {
    inodes: HashMap<Ino, Inode>,
    /// The durable namespace: every directory's entries as of the last power loss, with the
    /// durable prefix of the log applied.
    base: HashMap<Ino, BTreeMap<OsString, Ino>>,
    log: VecDeque<Logged>,
    next_ino: Ino,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty file system: a root directory (mode 0755, owned by root), all durable.
    pub fn new() -> Self {
        let mut root = Inode::new(Kind::Dir, 0o755, 0, 0);
        root.dirty = false;
        Self {
            inodes: HashMap::from([(ROOT, root)]),
            base: HashMap::from([(ROOT, BTreeMap::new())]),
            log: VecDeque::new(),
            next_ino: ROOT + 1,
        }
    }

    fn node(&self, ino: Ino) -> Res<&Inode> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Res<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Res<&Inode> {
        let n = self.node(ino)?;
        if n.kind == Kind::Dir {
            Ok(n)
        } else {
            Err(libc::ENOTDIR)
        }
    }

    fn nlink(&self, ino: Ino) -> u32 {
        // Directories: 2; files: the volatile entries naming them.
        match self.inodes.get(&ino).map(|n| n.kind) {
            Some(Kind::Dir) => 2,
            _ => self
                .inodes
                .values()
                .filter(|n| n.kind == Kind::Dir)
                .map(|d| d.entries.values().filter(|&&i| i == ino).count() as u32)
                .sum(),
        }
    }

    /// A node's attributes.
    pub fn attr(&self, ino: Ino) -> Res<Attr> {
        let n = self.node(ino)?;
        Ok(Attr {
            ino,
            kind: n.kind,
            size: n.data.len() as u64,
            perm: n.perm,
            nlink: self.nlink(ino),
            uid: n.uid,
            gid: n.gid,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
        })
    }

    /// The node `name` in directory `dir`.
    pub fn lookup(&self, dir: Ino, name: &OsStr) -> Res<Ino> {
        self.dir(dir)?
            .entries
            .get(name)
            .copied()
            .ok_or(libc::ENOENT)
    }

    /// A directory's entries: name, inode, kind.
    pub fn entries(&self, dir: Ino) -> Res<Vec<(OsString, Ino, Kind)>> {
        Ok(self
            .dir(dir)?
            .entries
            .iter()
            .filter_map(|(n, &i)| self.inodes.get(&i).map(|node| (n.clone(), i, node.kind)))
            .collect())
    }

    fn log(&mut self, op: NsOp) {
        self.log.push_back(Logged { op, durable: false });
    }

    fn touch_dir(&mut self, dir: Ino) {
        if let Some(d) = self.inodes.get_mut(&dir) {
            let now = SystemTime::now();
            d.mtime = now;
            d.ctime = now;
        }
    }

    fn make(
        &mut self,
        dir: Ino,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Res<Ino> {
        if self.dir(dir)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes
            .insert(ino, Inode::new(kind, perm & 0o7777, uid, gid));
        self.node_mut(dir)?.entries.insert(name.to_owned(), ino);
        self.touch_dir(dir);
        self.log(NsOp::Link {
            dir,
            name: name.to_owned(),
            ino,
        });
        Ok(ino)
    }

    /// Creates an empty file (`EEXIST` if the name is taken).
    pub fn create(&mut self, dir: Ino, name: &OsStr, perm: u16, uid: u32, gid: u32) -> Res<Ino> {
        self.make(dir, name, Kind::File, perm, uid, gid)
    }

    /// Creates a directory.
    pub fn mkdir(&mut self, dir: Ino, name: &OsStr, perm: u16, uid: u32, gid: u32) -> Res<Ino> {
        self.make(dir, name, Kind::Dir, perm, uid, gid)
    }

    /// Removes a file's name.
    pub fn unlink(&mut self, dir: Ino, name: &OsStr) -> Res<()> {
        let ino = self.lookup(dir, name)?;
        if self.node(ino)?.kind == Kind::Dir {
            return Err(libc::EISDIR);
        }
        self.remove_entry(dir, name, ino)
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, dir: Ino, name: &OsStr) -> Res<()> {
        let ino = self.lookup(dir, name)?;
        let node = self.dir(ino)?;
        if !node.entries.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.remove_entry(dir, name, ino)
    }

    fn remove_entry(&mut self, dir: Ino, name: &OsStr, ino: Ino) -> Res<()> {
        self.node_mut(dir)?.entries.remove(name);
        self.touch_dir(dir);
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.ctime = SystemTime::now();
        }
        self.log(NsOp::Unlink {
            dir,
            name: name.to_owned(),
            ino,
        });
        Ok(())
    }

    /// A second name for a file.
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &OsStr) -> Res<()> {
        if self.node(ino)?.kind == Kind::Dir {
            return Err(libc::EPERM);
        }
        if self.dir(dir)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        self.node_mut(dir)?.entries.insert(name.to_owned(), ino);
        self.touch_dir(dir);
        self.node_mut(ino)?.ctime = SystemTime::now();
        self.log(NsOp::Link {
            dir,
            name: name.to_owned(),
            ino,
        });
        Ok(())
    }

    /// Moves `from` to `to`, replacing what `to` names (unless `noreplace`): a file by a file,
    /// an empty directory by a directory.
    pub fn rename(&mut self, from: (Ino, &OsStr), to: (Ino, &OsStr), noreplace: bool) -> Res<()> {
        let ino = self.lookup(from.0, from.1)?;
        self.dir(to.0)?;
        let kind = self.node(ino)?.kind;
        if let Ok(old) = self.lookup(to.0, to.1) {
            if old == ino {
                return Ok(());
            }
            if noreplace {
                return Err(libc::EEXIST);
            }
            match (kind, self.node(old)?.kind) {
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(old)?.entries.is_empty() => {
                    return Err(libc::ENOTEMPTY);
                }
                _ => {}
            }
        }
        if kind == Kind::Dir && self.is_within(to.0, ino) {
            return Err(libc::EINVAL);
        }
        self.node_mut(from.0)?.entries.remove(from.1);
        self.node_mut(to.0)?.entries.insert(to.1.to_owned(), ino);
        self.touch_dir(from.0);
        self.touch_dir(to.0);
        self.node_mut(ino)?.ctime = SystemTime::now();
        self.log(NsOp::Rename {
            from: (from.0, from.1.to_owned()),
            to: (to.0, to.1.to_owned()),
            ino,
        });
        Ok(())
    }

    /// True when directory `dir` is `ancestor` or lies inside it (volatile view).
    fn is_within(&self, dir: Ino, ancestor: Ino) -> bool {
        let mut parents: HashMap<Ino, Ino> = HashMap::new();
        for (&p, n) in &self.inodes {
            for &c in n.entries.values() {
                parents.insert(c, p);
            }
        }
        let mut at = dir;
        for _ in 0..4096 {
            if at == ancestor {
                return true;
            }
            match parents.get(&at) {
                Some(&p) if p != at => at = p,
                _ => return false,
            }
        }
        false
    }

    /// Reads up to `size` bytes at `offset`.
    pub fn read(&mut self, ino: Ino, offset: u64, size: usize) -> Res<Vec<u8>> {
        let n = self.node_mut(ino)?;
        if n.kind == Kind::Dir {
            return Err(libc::EISDIR);
        }
        let start = (offset as usize).min(n.data.len());
        let end = start.saturating_add(size).min(n.data.len());
        Ok(n.data[start..end].to_vec())
    }

    /// Writes `bytes` at `offset` (a gap is filled with zeros).
    pub fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> Res<usize> {
        let n = self.node_mut(ino)?;
        if n.kind == Kind::Dir {
            return Err(libc::EISDIR);
        }
        let start = usize::try_from(offset).map_err(|_| libc::EFBIG)?;
        let end = start.checked_add(bytes.len()).ok_or(libc::EFBIG)?;
        if n.synced.is_none() {
            n.synced = Some(n.data.clone());
        }
        if n.data.len() < end {
            n.data.resize(end, 0);
        }
        n.data[start..end].copy_from_slice(bytes);
        let now = SystemTime::now();
        n.mtime = now;
        n.ctime = now;
        n.dirty = true;
        Ok(bytes.len())
    }

    /// Sets a file's size.
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Res<()> {
        let n = self.node_mut(ino)?;
        if n.kind == Kind::Dir {
            return Err(libc::EISDIR);
        }
        let size = usize::try_from(size).map_err(|_| libc::EFBIG)?;
        if n.synced.is_none() {
            n.synced = Some(n.data.clone());
        }
        n.data.resize(size, 0);
        let now = SystemTime::now();
        n.mtime = now;
        n.ctime = now;
        n.dirty = true;
        Ok(())
    }

    /// Changes what `setattr` may change besides the size: mode, owner, times.
    pub fn set_meta(
        &mut self,
        ino: Ino,
        perm: Option<u16>,
        owner: (Option<u32>, Option<u32>),
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Res<()> {
        let n = self.node_mut(ino)?;
        if let Some(p) = perm {
            n.perm = p & 0o7777;
            n.dirty |= n.kind == Kind::File;
        }
        if let Some(u) = owner.0 {
            n.uid = u;
        }
        if let Some(g) = owner.1 {
            n.gid = g;
        }
        if let Some(t) = atime {
            n.atime = t;
        }
        if let Some(t) = mtime {
            n.mtime = t;
        }
        n.ctime = SystemTime::now();
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file: its data and mode are durable. On a directory it is
    /// [`Model::fsync_dir`].
    pub fn fsync(&mut self, ino: Ino) -> Res<()> {
        let n = self.node_mut(ino)?;
        if n.kind == Kind::Dir {
            return self.fsync_dir(ino);
        }
        n.synced = None;
        n.synced_perm = n.perm;
        n.dirty = false;
        Ok(())
    }

    /// `fsync` of a directory: every logged change of its entries is durable, with the change
    /// that made each renamed entry's source.
    pub fn fsync_dir(&mut self, dir: Ino) -> Res<()> {
        self.dir(dir)?;
        let marked: Vec<usize> = (0..self.log.len())
            .filter(|&i| !self.log[i].durable && self.log[i].op.touches(dir))
            .collect();
        for i in marked {
            self.make_durable(i);
        }
        // The durable prefix moves into the base.
        while self.log.front().is_some_and(|l| l.durable) {
            if let Some(l) = self.log.pop_front() {
                l.op.apply(&mut self.base);
            }
        }
        Ok(())
    }

    fn make_durable(&mut self, i: usize) {
        let mut todo = vec![i];
        while let Some(i) = todo.pop() {
            if self.log[i].durable {
                continue;
            }
            self.log[i].durable = true;
            if let NsOp::Rename { from, ino, .. } = &self.log[i].op {
                // The operation that put the renamed node where it was renamed from.
                let source = (0..i).rev().find(|&j| match &self.log[j].op {
                    NsOp::Link { dir, name, ino: n } => {
                        *dir == from.0 && name == &from.1 && n == ino
                    }
                    NsOp::Rename { to, ino: n, .. } => to == from && n == ino,
                    NsOp::Unlink { .. } => false,
                });
                todo.extend(source);
            }
        }
    }

    /// Unsynced changes waiting: (logged namespace operations, files with unsynced data).
    pub fn pending(&self) -> (usize, usize) {
        (
            self.log.iter().filter(|l| !l.durable).count(),
            self.inodes
                .values()
                .filter(|n| n.kind == Kind::File && n.dirty)
                .count(),
        )
    }

    /// The power goes out: the durable state stays, the rest survives as `losses` decides.
    /// Afterwards everything is durable (what a remount finds).
    pub fn power_loss(&mut self, losses: &mut Losses) -> LossReport {
        let mut report = LossReport::default();
        let mut tree = std::mem::take(&mut self.base);
        for l in std::mem::take(&mut self.log) {
            if l.durable {
                l.op.apply(&mut tree);
            } else if losses.keep_op() {
                report.ops_kept += 1;
                l.op.apply(&mut tree);
            } else {
                report.ops_dropped += 1;
            }
        }
        // What can still be reached from the root; nothing else survives.
        let mut reachable = HashSet::from([ROOT]);
        let mut queue = vec![ROOT];
        while let Some(d) = queue.pop() {
            let Some(entries) = tree.get(&d) else {
                continue;
            };
            for &c in entries.values() {
                if self.inodes.contains_key(&c) && reachable.insert(c) {
                    queue.push(c);
                }
            }
        }
        self.inodes.retain(|i, _| reachable.contains(i));
        tree.retain(|i, _| reachable.contains(i));
        for (&ino, n) in &mut self.inodes {
            match n.kind {
                Kind::Dir => {
                    let entries = tree.entry(ino).or_default();
                    entries.retain(|_, c| reachable.contains(c));
                    n.entries = entries.clone();
                }
                Kind::File => {
                    if n.dirty {
                        match losses.data_fate() {
                            DataFate::Kept => {
                                report.files_kept += 1;
                            }
                            DataFate::Dropped => {
                                report.files_dropped += 1;
                                if let Some(old) = n.synced.take() {
                                    n.data = old;
                                }
                            }
                            DataFate::Torn => {
                                report.files_torn += 1;
                                let old = n.synced.take().unwrap_or_default();
                                n.data = torn(&old, &n.data, losses);
                            }
                        }
                        if losses.keep_mode() {
                            n.synced_perm = n.perm;
                        }
                    }
                    n.synced = None;
                    n.perm = n.synced_perm;
                    n.dirty = false;
                }
            }
        }
        self.base = tree;
        report
    }
}

/// A file's content after a power loss that kept part of its unsynced data: the length of
/// either version, each 4 KiB block from either (zeros where the chosen one is short).
fn torn(old: &[u8], new: &[u8], losses: &mut Losses) -> Vec<u8> {
    let len = if losses.coin() { old.len() } else { new.len() };
    let mut out = vec![0u8; len];
    for (b, chunk) in out.chunks_mut(BLOCK).enumerate() {
        let src = if losses.coin() { new } else { old };
        let start = b * BLOCK;
        if start < src.len() {
            let end = (start + chunk.len()).min(src.len());
            chunk[..end - start].copy_from_slice(&src[start..end]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::loss::Losses;
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn names(m: &Model, dir: Ino) -> Vec<String> {
        m.entries(dir)
            .unwrap()
            .into_iter()
            .map(|(n, _, _)| n.to_string_lossy().into_owned())
            .collect()
    }

    fn content(m: &mut Model, dir: Ino, name: &str) -> Option<Vec<u8>> {
        let ino = m.lookup(dir, os(name)).ok()?;
        m.read(ino, 0, usize::MAX).ok()
    }

    #[test]
    fn nothing_unsynced_survives_when_everything_is_dropped() {
        let mut m = Model::new();
        let f = m.create(ROOT, os("a"), 0o600, 0, 0).unwrap();
        m.write(f, 0, b"hello").unwrap();
        let d = m.mkdir(ROOT, os("d"), 0o700, 0, 0).unwrap();
        m.create(d, os("b"), 0o600, 0, 0).unwrap();
        assert_eq!(m.pending(), (3, 2));
        let r = m.power_loss(&mut Losses::drop_all());
        assert_eq!(r.ops_dropped, 3);
        assert!(names(&m, ROOT).is_empty());
        // Nothing pending afterwards, and an inode that no name reaches is gone.
        assert_eq!(m.pending(), (0, 0));
        assert!(m.attr(f).is_err());
    }

    #[test]
    fn a_synced_file_in_an_unsynced_directory_entry_is_lost() {
        let mut m = Model::new();
        let f = m.create(ROOT, os("a"), 0o600, 0, 0).unwrap();
        m.write(f, 0, b"data").unwrap();
        m.fsync(f).unwrap();
        m.power_loss(&mut Losses::drop_all());
        assert_eq!(
            content(&mut m, ROOT, "a"),
            None,
            "the entry was never synced"
        );
    }

    #[test]
    fn file_fsync_and_directory_fsync_together_keep_a_new_file() {
        let mut m = Model::new();
        let f = m.create(ROOT, os("a"), 0o600, 0, 0).unwrap();
        m.write(f, 0, b"data").unwrap();
        m.fsync(f).unwrap();
        m.fsync_dir(ROOT).unwrap();
        m.write(f, 4, b" more").unwrap();
        m.set_meta(f, Some(0o644), (None, None), None, None)
            .unwrap();
        m.power_loss(&mut Losses::drop_all());
        assert_eq!(content(&mut m, ROOT, "a").unwrap(), b"data");
        assert_eq!(m.attr(f).unwrap().perm, 0o600, "the chmod was not synced");
    }

    #[test]
    fn an_unsynced_directory_entry_may_survive_with_unsynced_data_dropped() {
        let mut m = Model::new();
        let f = m.create(ROOT, os("a"), 0o600, 0, 0).unwrap();
        m.write(f, 0, b"data").unwrap();
        m.power_loss(&mut Losses::scripted(&[true], &[DataFate::Dropped]));
        assert_eq!(
            content(&mut m, ROOT, "a").unwrap(),
            b"",
            "an empty file remains"
        );
    }

    #[test]
    fn a_rename_over_a_file_is_atomic_and_durable_with_the_directory_fsync() {
        let mut m = Model::new();
        let old = m.create(ROOT, os("g.rec"), 0o600, 0, 0).unwrap();
        m.write(old, 0, b"old").unwrap();
        m.fsync(old).unwrap();
        m.fsync_dir(ROOT).unwrap();
        let tmp = m.create(ROOT, os(".g.tmp"), 0o600, 0, 0).unwrap();
        m.write(tmp, 0, b"new").unwrap();
        m.fsync(tmp).unwrap();
        m.rename((ROOT, os(".g.tmp")), (ROOT, os("g.rec")), false)
            .unwrap();
        // Before the directory fsync: either version, never both names, never none.
        for keep in [false, true] {
            let mut copy = Model {
                inodes: m.inodes.clone(),
                base: m.base.clone(),
                log: m.log.clone(),
                next_ino: m.next_ino,
            };
            copy.power_loss(&mut Losses::scripted(&[keep, keep], &[]));
            let want: &[u8] = if keep { b"new" } else { b"old" };
            assert_eq!(content(&mut copy, ROOT, "g.rec").unwrap(), want);
            assert_eq!(names(&copy, ROOT), ["g.rec"]);
        }
        m.fsync_dir(ROOT).unwrap();
        m.power_loss(&mut Losses::drop_all());
        assert_eq!(content(&mut m, ROOT, "g.rec").unwrap(), b"new");
        assert_eq!(names(&m, ROOT), ["g.rec"]);
    }

    #[test]
    fn a_rename_made_durable_brings_its_unsynced_source_along() {
        // mkdir tmp/x, create x/page, rename tmp/x -> spool/x, fsync spool only.
        let mut m = Model::new();
        let tmp = m.mkdir(ROOT, os("tmp"), 0o700, 0, 0).unwrap();
        let spool = m.mkdir(ROOT, os("spool"), 0o700, 0, 0).unwrap();
        m.fsync_dir(ROOT).unwrap();
        let x = m.mkdir(tmp, os("x"), 0o700, 0, 0).unwrap();
        let p = m.create(x, os("0"), 0o600, 0, 0).unwrap();
        m.write(p, 0, b"page").unwrap();
        m.fsync(p).unwrap();
        m.rename((tmp, os("x")), (spool, os("x")), false).unwrap();
        m.fsync_dir(spool).unwrap();
        m.power_loss(&mut Losses::drop_all());
        assert_eq!(names(&m, spool), ["x"]);
        assert!(names(&m, tmp).is_empty());
        // The page's entry in x was never synced: the folder is empty.
        assert!(names(&m, x).is_empty());
    }

    #[test]
    fn the_directory_fsync_keeps_its_page_entries() {
        let mut m = Model::new();
        let x = m.mkdir(ROOT, os("x"), 0o700, 0, 0).unwrap();
        let p = m.create(x, os("0"), 0o600, 0, 0).unwrap();
        m.write(p, 0, b"page").unwrap();
        m.fsync(p).unwrap();
        m.fsync_dir(x).unwrap();
        m.fsync_dir(ROOT).unwrap();
        m.power_loss(&mut Losses::drop_all());
        assert_eq!(content(&mut m, x, "0").unwrap(), b"page");
    }

    #[test]
    fn unsynced_data_may_survive_in_part_at_block_granularity() {
        let mut m = Model::new();
        let f = m.create(ROOT, os("wal"), 0o600, 0, 0).unwrap();
        m.write(f, 0, &vec![1u8; 3 * BLOCK]).unwrap();
        m.fsync(f).unwrap();
        m.fsync_dir(ROOT).unwrap();
        m.write(f, 0, &vec![2u8; 4 * BLOCK]).unwrap();
        // New length; blocks: new, old, new, new.
        let mut l = Losses::scripted(&[], &[DataFate::Torn]);
        l.script_coins(&[false, true, false, true, true]);
        m.power_loss(&mut l);
        let got = content(&mut m, ROOT, "wal").unwrap();
        let blocks: Vec<u8> = got.chunks(BLOCK).map(|c| c[0]).collect();
        assert_eq!(blocks, [2, 1, 2, 2]);
    }

    #[test]
    fn an_unlink_not_synced_may_be_undone() {
        let mut m = Model::new();
        let f = m.create(ROOT, os("a"), 0o600, 0, 0).unwrap();
        m.write(f, 0, b"x").unwrap();
        m.fsync(f).unwrap();
        m.fsync_dir(ROOT).unwrap();
        m.unlink(ROOT, os("a")).unwrap();
        assert!(names(&m, ROOT).is_empty());
        m.power_loss(&mut Losses::drop_all());
        assert_eq!(content(&mut m, ROOT, "a").unwrap(), b"x");
    }

    #[test]
    fn volatile_view_behaves_like_a_file_system() {
        let mut m = Model::new();
        let d = m.mkdir(ROOT, os("d"), 0o700, 0, 0).unwrap();
        assert_eq!(m.create(ROOT, os("d"), 0o600, 0, 0), Err(libc::EEXIST));
        let f = m.create(d, os("f"), 0o600, 0, 0).unwrap();
        m.write(f, 10, b"z").unwrap();
        assert_eq!(m.attr(f).unwrap().size, 11);
        assert_eq!(m.rmdir(ROOT, os("d")), Err(libc::ENOTEMPTY));
        m.link(f, ROOT, os("g")).unwrap();
        assert_eq!(m.attr(f).unwrap().nlink, 2);
        m.unlink(d, os("f")).unwrap();
        m.rmdir(ROOT, os("d")).unwrap();
        assert_eq!(names(&m, ROOT), ["g"]);
        m.truncate(f, 3).unwrap();
        assert_eq!(m.read(f, 0, 100).unwrap(), [0, 0, 0]);
        let e = m.mkdir(ROOT, os("e"), 0o700, 0, 0).unwrap();
        assert_eq!(
            m.rename((ROOT, os("e")), (e, os("x")), false),
            Err(libc::EINVAL)
        );
        assert_eq!(
            m.rename((ROOT, os("g")), (ROOT, os("e")), false),
            Err(libc::EISDIR)
        );
    }
}
