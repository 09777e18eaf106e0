//! Storing pushed deliveries: the PC's receiving software and the MFP's output tray.
//!
//! A delivery's pages are written into `DIR/.imagecast/incoming/<distribution>/` as they
//! arrive. At [`Event::DeliverEnd`] the files are fsynced, their final names in `DIR` are
//! chosen (the original file name, `-2`, `-3`... on a collision) and written with the
//! distribution ID to the receipt log `DIR/.imagecast/received` (fsynced); only then are the
//! files moved into place. A redelivery of a distribution already in the receipt log (the
//! server crashed before it saw the acknowledgement) is recognised and not stored again, and
//! a move interrupted by a crash is finished by [`Inbox::open`].
//!
//! The server is trusted no more than it must be (it may be malicious, or a man in the
//! middle of a `--plain` connection):
//! - a delivered file never replaces an entry already in `DIR`, of any kind (a file, a
//!   folder, a symbolic link, even a dangling one): existence is checked without following
//!   links, and the move is a hard link, which fails on any existing entry;
//! - page names lose path separators, control characters and bidirectional overrides
//!   ([`crate::text::is_unsafe`]: `invoice\u{202e}fdp.exe` is stored as `invoice_fdp.exe`);
//! - at most [`MAX_INCOMPLETE`] deliveries may be incomplete at once (an honest server sends
//!   one at a time per connection): one more is refused with
//!   [`InboxError::TooManyIncomplete`], and at most one page file is held open, whatever the
//!   number of deliveries under way. [`Inbox::abandon_incomplete`] drops them all when the
//!   connection they came on is gone (the server sends them again from the start).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::Event;
use crate::ids::{DeliveryId, DistributionId};
use crate::msg::{Deliver, Destination};

const STATE_DIR: &str = ".imagecast";
const RECEIPTS: &str = "received";
const INCOMING: &str = "incoming";

/// The most deliveries that may be incomplete at once. An honest server sends one at a time
/// on a connection; more than this is a server that begins deliveries it never ends.
pub const MAX_INCOMPLETE: usize = 16;

/// How many `-N` variants of a name are tried before a page is refused.
const MAX_VARIANTS: u32 = 10_000;

/// Whether received pages are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxMode {
    /// Store every page in the folder.
    Store,
    /// Check sizes and order, then drop the bytes (load generators).
    Discard,
}

/// A delivery that is complete and stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The delivery, to acknowledge.
    pub delivery: DeliveryId,
    /// The distribution it belongs to, which recognises a redelivery.
    pub dist: DistributionId,
    /// The sending terminal.
    pub sender: Destination,
    /// The user who sent it.
    pub user: String,
    /// Where each page now is (empty in [`InboxMode::Discard`] and for duplicates).
    pub files: Vec<PathBuf>,
    /// Number of pages.
    pub pages: usize,
    /// Total bytes.
    pub bytes: u64,
    /// True when this distribution had been stored before: nothing new was written.
    pub duplicate: bool,
}

/// Why a delivery could not be stored.
#[derive(Debug, Error)]
pub enum InboxError {
    /// A file operation failed.
    #[error("cannot store the delivery in {}: {reason}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The system's reason (in the message, not repeated as a source).
        reason: std::io::Error,
    },
    /// The server's stream of pieces does not add up.
    #[error("delivery {delivery} is inconsistent: {reason}")]
    Inconsistent {
        /// The delivery whose pieces do not add up.
        delivery: DeliveryId,
        /// What does not add up.
        reason: String,
    },
    /// The server began a delivery while [`MAX_INCOMPLETE`] others were still incomplete.
    #[error(
        "delivery {delivery} refused: {limit} deliveries are already incomplete (a server sends one at a time)"
    )]
    TooManyIncomplete {
        /// The delivery refused.
        delivery: DeliveryId,
        /// The limit, [`MAX_INCOMPLETE`].
        limit: usize,
    },
}

struct Incoming {
    header: Deliver,
    duplicate: bool,
    dir: PathBuf,
    page: u32,
    offset: u64,
}

impl Incoming {
    /// True when this delivery has a folder in `incoming/`.
    fn stores(&self, mode: InboxMode) -> bool {
        !self.duplicate && mode == InboxMode::Store
    }
}

/// The one page file held open: the page that data arrived for last.
struct OpenPage {
    delivery: DeliveryId,
    page: u32,
    file: std::fs::File,
}

/// A folder that receives deliveries. See the module documentation.
pub struct Inbox {
    dir: PathBuf,
    mode: InboxMode,
    seen: HashSet<DistributionId>,
    current: HashMap<DeliveryId, Incoming>,
    open: Option<OpenPage>,
    /// Notes that the delivery of a distribution is a received fax
    /// ([`crate::fax::FaxEvent::Incoming`]), at most [`MAX_FAX_NOTES`].
    faxes: HashMap<DistributionId, crate::fax::FaxIncoming>,
}

/// The most fax notes kept for deliveries not yet complete (an honest server sends each just
/// before its delivery).
pub const MAX_FAX_NOTES: usize = 64;

/// The receipt log's lines: one `DISTRIBUTION<TAB>NAME<TAB>NAME…` per stored delivery, its
/// pages' final names in order. Lines that do not start with a distribution ID are skipped.
fn parse_receipts(text: &str) -> Vec<(DistributionId, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let dist = fields.next()?.parse::<DistributionId>().ok()?;
            Some((dist, fields.map(str::to_owned).collect()))
        })
        .collect()
}

/// What an inbox in `dir` stored in earlier runs, oldest first: each distribution with the
/// files it still has in `dir` (a file the operator removed since is left out, and so is a
/// distribution with none left). Read-only; an unreadable or missing log is nothing stored.
pub fn stored_in(dir: &Path) -> Vec<(DistributionId, Vec<PathBuf>)> {
    let Ok(bytes) = std::fs::read(dir.join(STATE_DIR).join(RECEIPTS)) else {
        return Vec::new();
    };
    parse_receipts(&String::from_utf8_lossy(&bytes))
        .into_iter()
        .filter_map(|(dist, names)| {
            let files: Vec<PathBuf> = names
                .iter()
                .map(|n| dir.join(n))
                .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
                .collect();
            (!files.is_empty()).then_some((dist, files))
        })
        .collect()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
    move |reason| InboxError::Io {
        path: path.to_owned(),
        reason,
    }
}

impl Inbox {
    /// Opens (creating) the folder, reads the receipt log and finishes any interrupted move.
    pub fn open(dir: impl Into<PathBuf>, mode: InboxMode) -> Result<Self, InboxError> {
        let dir = dir.into();
        let state = dir.join(STATE_DIR);
        let incoming = state.join(INCOMING);
        crate::private::create_dir_all(&incoming).map_err(io_err(&incoming))?;
        // The folders' names must survive a power loss before anything in them counts: each
        // folder is fsynced into its parent (the tray's own parent as far as it lets us).
        sync_dir(&incoming)?;
        sync_dir(&state)?;
        sync_dir(&dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = sync_dir(parent);
        }
        let receipts_path = state.join(RECEIPTS);
        let mut bytes = match std::fs::read(&receipts_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Created now, with its name fsynced, so that a receipt appended to it later
                // cannot vanish with a file name that was never made durable.
                crate::private::open_options()
                    .create(true)
                    .append(true)
                    .open(&receipts_path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&receipts_path))?;
                sync_dir(&state)?;
                Vec::new()
            }
            Err(e) => return Err(io_err(&receipts_path)(e)),
        };
        // A last line without its newline is a receipt whose write a crash (a power loss)
        // cut short. It was never synced, so the delivery was never acknowledged and will
        // come again: drop it. Read as complete, it would move the pages under truncated
        // names (or erase them) and take the redelivery for a duplicate, and the next
        // receipt would be glued onto it.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            bytes.truncate(complete);
            crate::private::open_options()
                .write(true)
                .open(&receipts_path)
                .and_then(|f| {
                    f.set_len(complete as u64)?;
                    f.sync_all()
                })
                .map_err(io_err(&receipts_path))?;
        }
        let mut seen = HashSet::new();
        let mut names: HashMap<DistributionId, Vec<String>> = HashMap::new();
        for (dist, files) in parse_receipts(&String::from_utf8_lossy(&bytes)) {
            seen.insert(dist);
            names.insert(dist, files);
        }
        // Finish moves that a crash interrupted; drop partial deliveries.
        let entries = std::fs::read_dir(&incoming).map_err(io_err(&incoming))?;
        let mut removed_any = false;
        for entry in entries.flatten() {
            removed_any = true;
            let path = entry.path();
            let dist = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<DistributionId>().ok());
            if let Some(finals) = dist.and_then(|d| names.get(&d)) {
                for (i, name) in finals.iter().enumerate() {
                    let from = path.join(i.to_string());
                    if !entry_exists(&from) {
                        continue;
                    }
                    // Linked before the crash but not yet unlinked from `incoming/`.
                    if same_file(&from, &dir.join(name)) {
                        continue;
                    }
                    place(&from, &dir, name)?;
                }
                sync_dir(&dir)?;
            }
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io_err(&path))?;
        }
        if removed_any {
            // A removal that a power loss undid would bring a torn delivery back under the
            // name its redelivery uses.
            sync_dir(&incoming)?;
        }
        Ok(Self {
            dir,
            mode,
            seen,
            current: HashMap::new(),
            open: None,
            faxes: HashMap::new(),
        })
    }

    /// The folder deliveries land in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when this distribution was stored here before.
    pub fn has(&self, dist: &DistributionId) -> bool {
        self.seen.contains(dist)
    }

    /// How many deliveries have begun and not ended (at most [`MAX_INCOMPLETE`]).
    pub fn incomplete(&self) -> usize {
        self.current.len()
    }

    /// Drops every incomplete delivery and its pages; returns how many there were. Call it
    /// when the connection they came on is gone: the server sends them again from the start.
    pub fn abandon_incomplete(&mut self) -> usize {
        let n = self.current.len();
        let ids: Vec<DeliveryId> = self.current.keys().copied().collect();
        for id in ids {
            self.abandon(id);
        }
        n
    }

    /// Forgets one incomplete delivery: closes its page file and removes its folder.
    fn abandon(&mut self, delivery: DeliveryId) {
        if self.open.as_ref().is_some_and(|o| o.delivery == delivery) {
            self.open = None;
        }
        if let Some(inc) = self.current.remove(&delivery) {
            if inc.stores(self.mode) {
                let _ = std::fs::remove_dir_all(&inc.dir);
            }
        }
    }

    /// The note that the delivery of `dist` is a received fax (who sent it, through which
    /// gateway), if the server sent one before it; taken once.
    pub fn take_fax(&mut self, dist: &DistributionId) -> Option<crate::fax::FaxIncoming> {
        self.faxes.remove(dist)
    }

    /// Takes one event; returns the delivery once it is complete and stored. Events other
    /// than deliveries and fax notes are ignored.
    pub fn handle(&mut self, event: &Event) -> Result<Option<Received>, InboxError> {
        match event {
            Event::Deliver(header) => {
                self.begin(header)?;
                Ok(None)
            }
            Event::DeliverData {
                delivery,
                page,
                offset,
                data,
            } => {
                self.data(*delivery, *page, *offset, data)?;
                Ok(None)
            }
            Event::DeliverEnd { delivery } => self.end(*delivery).map(Some),
            Event::Fax(crate::fax::FaxEvent::Incoming(note)) => {
                if self.faxes.len() >= MAX_FAX_NOTES {
                    self.faxes.clear();
                }
                self.faxes.insert(note.dist, note.clone());
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn begin(&mut self, header: &Deliver) -> Result<(), InboxError> {
        // A header again for the same delivery, or another delivery of the same distribution
        // (they share a folder), starts over: the earlier one is dropped.
        let superseded: Vec<DeliveryId> = self
            .current
            .iter()
            .filter(|(id, inc)| **id == header.delivery || inc.header.dist == header.dist)
            .map(|(id, _)| *id)
            .collect();
        for id in superseded {
            self.abandon(id);
        }
        if self.current.len() >= MAX_INCOMPLETE {
            return Err(InboxError::TooManyIncomplete {
                delivery: header.delivery,
                limit: MAX_INCOMPLETE,
            });
        }
        let duplicate = self.seen.contains(&header.dist);
        let dir = self
            .dir
            .join(STATE_DIR)
            .join(INCOMING)
            .join(header.dist.to_string());
        if !duplicate && self.mode == InboxMode::Store {
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir),
                Ok(_) => std::fs::remove_file(&dir),
                Err(_) => Ok(()),
            }
            .map_err(io_err(&dir))?;
            crate::private::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        self.current.insert(
            header.delivery,
            Incoming {
                header: header.clone(),
                duplicate,
                dir,
                page: 0,
                offset: 0,
            },
        );
        Ok(())
    }

    fn data(
        &mut self,
        delivery: DeliveryId,
        page: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), InboxError> {
        let store = self.mode == InboxMode::Store;
        let inc = self
            .current
            .get_mut(&delivery)
            .ok_or_else(|| InboxError::Inconsistent {
                delivery,
                reason: "page data before the delivery header".into(),
            })?;
        let inconsistent = |reason: String| InboxError::Inconsistent { delivery, reason };
        let pages = &inc.header.pages;
        // Move on to `page`, closing the pages before it (which must be complete).
        while inc.page < page {
            let expected = pages.get(inc.page as usize).map_or(0, |p| p.size);
            if inc.offset != expected {
                return Err(inconsistent(format!(
                    "page {} ended at byte {} of {expected}",
                    inc.page + 1,
                    inc.offset
                )));
            }
            if self
                .open
                .as_ref()
                .is_some_and(|o| o.delivery == delivery && o.page == inc.page)
            {
                self.open = None;
            }
            inc.page += 1;
            inc.offset = 0;
        }
        let info = pages.get(page as usize).ok_or_else(|| {
            inconsistent(format!("data for page {} of {}", page + 1, pages.len()))
        })?;
        if page != inc.page || offset != inc.offset {
            return Err(inconsistent(format!(
                "data for page {} at byte {offset}, expected page {} at byte {}",
                page + 1,
                inc.page + 1,
                inc.offset
            )));
        }
        if offset + data.len() as u64 > info.size {
            return Err(inconsistent(format!(
                "page {} is longer than its announced {} bytes",
                page + 1,
                info.size
            )));
        }
        if store && !inc.duplicate {
            let path = inc.dir.join(page.to_string());
            let file = match self.open.take() {
                Some(o) if o.delivery == delivery && o.page == page => o.file,
                // Only one page file is held open: the one of another delivery is closed,
                // and reopened for appending when its data comes again.
                _ => crate::private::open_options()
                    .create(offset == 0)
                    .truncate(offset == 0)
                    .write(true)
                    .append(offset != 0)
                    .open(&path)
                    .map_err(io_err(&path))?,
            };
            let mut open = OpenPage {
                delivery,
                page,
                file,
            };
            open.file.write_all(data).map_err(io_err(&path))?;
            self.open = Some(open);
        }
        inc.offset += data.len() as u64;
        Ok(())
    }

    fn end(&mut self, delivery: DeliveryId) -> Result<Received, InboxError> {
        if self.open.as_ref().is_some_and(|o| o.delivery == delivery) {
            self.open = None;
        }
        let inc = self
            .current
            .remove(&delivery)
            .ok_or_else(|| InboxError::Inconsistent {
                delivery,
                reason: "end of a delivery that never began".into(),
            })?;
        let pages = &inc.header.pages;
        let last_ok = if pages.is_empty() {
            true
        } else {
            inc.page as usize == pages.len() - 1 && inc.offset == pages[pages.len() - 1].size
        };
        // Pages of zero bytes carry no data frames: they may legitimately remain.
        let trailing_empty = pages
            .iter()
            .skip(inc.page as usize + 1)
            .all(|p| p.size == 0)
            && pages
                .get(inc.page as usize)
                .is_none_or(|p| p.size == inc.offset);
        if !last_ok && !trailing_empty {
            let _ = std::fs::remove_dir_all(&inc.dir);
            return Err(InboxError::Inconsistent {
                delivery,
                reason: format!(
                    "it ended at page {} byte {} of {} pages",
                    inc.page + 1,
                    inc.offset,
                    pages.len()
                ),
            });
        }
        let bytes = pages.iter().map(|p| p.size).sum();
        let mut received = Received {
            delivery,
            dist: inc.header.dist,
            sender: inc.header.sender.clone(),
            user: inc.header.user.clone(),
            files: Vec::new(),
            pages: pages.len(),
            bytes,
            duplicate: inc.duplicate,
        };
        if inc.duplicate || self.mode == InboxMode::Discard {
            if self.mode == InboxMode::Discard {
                self.seen.insert(inc.header.dist);
            }
            return Ok(received);
        }
        // Empty pages (and pages after the last data frame) still need their files.
        let mut names = Vec::with_capacity(pages.len());
        let mut taken = HashSet::new();
        for (i, info) in pages.iter().enumerate() {
            let tmp = inc.dir.join(i.to_string());
            let f = crate::private::open_options()
                .create(true)
                .append(true)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            let name = unique_name(&self.dir, &safe_file_name(&info.name, i), &taken);
            taken.insert(name.clone());
            names.push(name);
        }
        sync_dir(&inc.dir)?;
        // This delivery's folder in `incoming/` (replacing any torn one of the same name) is
        // durable before the receipt that makes a crash redo its moves.
        if let Some(incoming) = inc.dir.parent() {
            sync_dir(incoming)?;
        }
        // The receipt makes the delivery ours; the moves that follow are redone after a crash.
        let receipts = self.dir.join(STATE_DIR).join(RECEIPTS);
        let mut log = crate::private::open_options()
            .create(true)
            .append(true)
            .open(&receipts)
            .map_err(io_err(&receipts))?;
        let mut line = inc.header.dist.to_string();
        for n in &names {
            line.push('\t');
            line.push_str(n);
        }
        line.push('\n');
        log.write_all(line.as_bytes())
            .and_then(|_| log.sync_data())
            .map_err(io_err(&receipts))?;
        self.seen.insert(inc.header.dist);
        for (i, name) in names.iter().enumerate() {
            let from = inc.dir.join(i.to_string());
            received.files.push(place(&from, &self.dir, name)?);
        }
        sync_dir(&self.dir)?;
        // The emptied folder goes, durably: were its links back after a power loss, the next
        // `open` would take them for a move to finish and put back files that an operator may
        // have taken away from the tray meanwhile.
        if std::fs::remove_dir(&inc.dir).is_ok() {
            if let Some(incoming) = inc.dir.parent() {
                sync_dir(incoming)?;
            }
        }
        Ok(received)
    }
}

fn sync_dir(dir: &Path) -> Result<(), InboxError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// True when something (a file, a folder, a symbolic link, even a dangling one) is at
/// `path`. Links are not followed; an entry that cannot be examined counts as there.
fn entry_exists(path: &Path) -> bool {
    !matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// True when `a` and `b` are the same file (two hard links of it).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// Moves the file `from` into `dir` as `name`, or `stem-2.ext`, `stem-3.ext`... when an entry
/// of that name exists: never replaces anything. The move is a hard link (which fails on any
/// existing entry, with no window between a check and the move) and an unlink; on file
/// systems without hard links a rename after a check stands in. Returns the new path.
fn place(from: &Path, dir: &Path, name: &str) -> Result<PathBuf, InboxError> {
    let mut candidate = name.to_owned();
    for n in 2..=MAX_VARIANTS + 1 {
        let to = dir.join(&candidate);
        match std::fs::hard_link(from, &to) {
            Ok(()) => {
                std::fs::remove_file(from).map_err(io_err(from))?;
                return Ok(to);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) if !entry_exists(&to) => {
                std::fs::rename(from, &to).map_err(io_err(from))?;
                return Ok(to);
            }
            Err(_) => {}
        }
        candidate = variant(name, n);
    }
    Err(InboxError::Io {
        path: dir.join(name),
        reason: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{MAX_VARIANTS} files of this name exist already"),
        ),
    })
}

/// A page name that is safe as a file name in one folder: no directories, no control
/// characters or bidirectional overrides, no leading dot, never empty.
pub fn safe_file_name(name: &str, index: usize) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if crate::text::is_unsafe(c) || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        format!("page-{}", index + 1)
    } else {
        fit_name(&cleaned, MAX_NAME_BYTES)
    }
}

/// Longest file name written, in bytes: file systems allow 255, and `-N` may still be added.
const MAX_NAME_BYTES: usize = 240;

/// Splits `name.ext` into stem and extension (the dot with it); a leading dot is no extension.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Cuts `name` to at most `max` bytes at a character boundary, keeping a short extension.
fn fit_name(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_ext(name);
    let room = max.saturating_sub(ext.len());
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

/// `name`, or the first of `stem-2.ext`, `stem-3.ext`... that is neither in `taken` nor an
/// entry of any kind in `dir` (links are not followed: a dangling link is taken too).
fn unique_name(dir: &Path, name: &str, taken: &HashSet<String>) -> String {
    let mut candidate = name.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) || entry_exists(&dir.join(&candidate)) {
        candidate = variant(name, n);
        n += 1;
    }
    candidate
}

/// `stem-N.ext`, the stem shortened so the whole stays within 255 bytes.
fn variant(name: &str, n: u32) -> String {
    let (stem, ext) = split_ext(name);
    let suffix = format!("-{n}{ext}");
    let mut cut = 255usize.saturating_sub(suffix.len()).min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &stem[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::PageInfo;
    use bytes::Bytes;

    fn header(dist: DistributionId, delivery: u64, pages: &[(&str, &[u8])]) -> Vec<Event> {
        let mut events = vec![Event::Deliver(Deliver {
            delivery: DeliveryId(delivery),
            dist,
            sender: Destination {
                domain: "a.example".into(),
                name: "A".into(),
            },
            user: "1001".into(),
            accepted_at_ms: 0,
            pages: pages
                .iter()
                .map(|(n, b)| PageInfo {
                    name: (*n).into(),
                    size: b.len() as u64,
                })
                .collect(),
            print: true,
        })];
        for (i, (_, b)) in pages.iter().enumerate() {
            for (k, chunk) in b.chunks(3).enumerate() {
                events.push(Event::DeliverData {
                    delivery: DeliveryId(delivery),
                    page: i as u32,
                    offset: (k * 3) as u64,
                    data: Bytes::copy_from_slice(chunk),
                });
            }
        }
        events.push(Event::DeliverEnd {
            delivery: DeliveryId(delivery),
        });
        events
    }

    fn run(inbox: &mut Inbox, events: &[Event]) -> Result<Option<Received>, InboxError> {
        let mut last = None;
        for e in events {
            last = inbox.handle(e)?;
        }
        Ok(last)
    }

    #[test]
    fn stores_pages_byte_identical_without_collisions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scan.tif"), b"old").unwrap();
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let dist = DistributionId::new_random();
        let pages: &[(&str, &[u8])] = &[
            ("scan.tif", b"first page bytes"),
            ("../../etc/passwd", b"x"),
            ("", b""),
            ("scan.tif", b"again"),
        ];
        let got = run(&mut inbox, &header(dist, 1, pages)).unwrap().unwrap();
        assert!(!got.duplicate);
        let names: Vec<_> = got
            .files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["scan-2.tif", "passwd", "page-3", "scan-3.tif"]);
        assert_eq!(std::fs::read(&got.files[0]).unwrap(), b"first page bytes");
        assert_eq!(std::fs::read(&got.files[2]).unwrap(), b"");
        assert_eq!(std::fs::read(dir.path().join("scan.tif")).unwrap(), b"old");
        for f in &got.files {
            assert_eq!(f.parent().unwrap(), dir.path());
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_tray_and_what_it_stores_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let tray = root.path().join("tray");
        let mut inbox = Inbox::open(&tray, InboxMode::Store).unwrap();
        let got = run(
            &mut inbox,
            &header(DistributionId::new_random(), 1, &[("scan.png", b"secret")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(mode(&tray), 0o700);
        assert_eq!(mode(&tray.join(STATE_DIR)), 0o700);
        assert_eq!(mode(&tray.join(STATE_DIR).join(RECEIPTS)), 0o600);
        assert_eq!(mode(&got.files[0]), 0o600, "a scanned page");
    }

    #[test]
    fn what_was_stored_is_listed_from_the_receipts_without_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(stored_in(dir.path()).is_empty());
        let (d1, d2) = (DistributionId::new_random(), DistributionId::new_random());
        {
            let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
            run(
                &mut inbox,
                &header(d1, 1, &[("a.png", b"a"), ("b.png", b"b")]),
            )
            .unwrap()
            .unwrap();
            run(&mut inbox, &header(d2, 2, &[("c.png", b"c")]))
                .unwrap()
                .unwrap();
        }
        std::fs::remove_file(dir.path().join("c.png")).unwrap();
        let got = stored_in(dir.path());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, d1);
        assert_eq!(
            got[0].1,
            [dir.path().join("a.png"), dir.path().join("b.png")]
        );
    }

    #[test]
    fn redelivery_is_recognised_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let dist = DistributionId::new_random();
        let events = header(dist, 5, &[("a.png", b"abcdefg")]);
        {
            let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
            assert!(!run(&mut inbox, &events).unwrap().unwrap().duplicate);
        }
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let again = run(&mut inbox, &header(dist, 9, &[("a.png", b"abcdefg")]))
            .unwrap()
            .unwrap();
        assert!(again.duplicate);
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn interrupted_move_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let dist = DistributionId::new_random();
        let incoming = dir
            .path()
            .join(STATE_DIR)
            .join(INCOMING)
            .join(dist.to_string());
        std::fs::create_dir_all(&incoming).unwrap();
        std::fs::write(incoming.join("0"), b"page").unwrap();
        std::fs::write(
            dir.path().join(STATE_DIR).join(RECEIPTS),
            format!("{dist}\tdoc.png\n"),
        )
        .unwrap();
        let partial = DistributionId::new_random();
        let junk = dir
            .path()
            .join(STATE_DIR)
            .join(INCOMING)
            .join(partial.to_string());
        std::fs::create_dir_all(&junk).unwrap();
        let inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        assert_eq!(std::fs::read(dir.path().join("doc.png")).unwrap(), b"page");
        assert!(!incoming.exists() && !junk.exists());
        assert!(inbox.has(&dist) && !inbox.has(&partial));
    }

    #[test]
    fn a_receipt_cut_short_by_a_crash_is_dropped_and_the_redelivery_stored() {
        let dir = tempfile::tempdir().unwrap();
        let stored = DistributionId::new_random();
        {
            let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
            run(&mut inbox, &header(stored, 1, &[("a.png", b"first")])).unwrap();
        }
        // Power lost while appending the next receipt: its pages are complete in
        // `incoming/`, its line is not (the name is cut inside a two-byte character).
        let torn = DistributionId::new_random();
        let incoming = dir
            .path()
            .join(STATE_DIR)
            .join(INCOMING)
            .join(torn.to_string());
        std::fs::create_dir_all(&incoming).unwrap();
        std::fs::write(incoming.join("0"), b"page one").unwrap();
        std::fs::write(incoming.join("1"), b"page two").unwrap();
        let receipts = dir.path().join(STATE_DIR).join(RECEIPTS);
        let before = std::fs::read(&receipts).unwrap();
        let mut cut = before.clone();
        cut.extend_from_slice(format!("{torn}\tn\u{e9}").as_bytes());
        cut.pop();
        std::fs::write(&receipts, &cut).unwrap();

        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        assert!(inbox.has(&stored) && !inbox.has(&torn));
        assert_eq!(
            std::fs::read(&receipts).unwrap(),
            before,
            "the torn line is gone"
        );
        assert!(!incoming.exists());
        // The delivery comes again (it was never acknowledged) and is stored, once.
        let pages: &[(&str, &[u8])] = &[("n\u{e9}.png", b"page one"), ("two.png", b"page two")];
        let again = run(&mut inbox, &header(torn, 2, pages)).unwrap().unwrap();
        assert!(!again.duplicate);
        assert_eq!(
            std::fs::read(dir.path().join("two.png")).unwrap(),
            b"page two"
        );
        drop(inbox);
        let inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        assert!(inbox.has(&stored) && inbox.has(&torn));
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        files.sort();
        assert_eq!(files, ["a.png", "n\u{e9}.png", "two.png"]);
    }

    #[test]
    fn out_of_order_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let dist = DistributionId::new_random();
        let mut events = header(dist, 1, &[("a", b"abcdef")]);
        events.swap(1, 2);
        let err = run(&mut inbox, &events).unwrap_err();
        assert!(
            err.to_string().contains("expected page 1 at byte 0"),
            "{err}"
        );
        let short = header(dist, 2, &[("a", b"abcdef")]);
        let err = run(
            &mut inbox,
            &[short[0].clone(), short[1].clone(), short[3].clone()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ended at page 1 byte 3"), "{err}");
    }

    /// Non-hidden names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    fn file_names(got: &Received) -> Vec<String> {
        got.files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect()
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_the_folder_is_never_replaced_even_a_dangling_one() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("victim");
        std::fs::write(&target, b"keep me").unwrap();
        // A dangling link (what `exists()` calls absent) and a link to a file elsewhere.
        std::os::unix::fs::symlink(outside.path().join("nowhere"), dir.path().join("scan.tif"))
            .unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("b.png")).unwrap();
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let pages: &[(&str, &[u8])] = &[("scan.tif", b"delivered"), ("b.png", b"delivered too")];
        let got = run(&mut inbox, &header(DistributionId::new_random(), 1, pages))
            .unwrap()
            .unwrap();
        assert_eq!(file_names(&got), ["scan-2.tif", "b-2.png"]);
        assert_eq!(
            std::fs::read_link(dir.path().join("scan.tif")).unwrap(),
            outside.path().join("nowhere")
        );
        assert!(!outside.path().join("nowhere").exists());
        assert_eq!(
            std::fs::read_link(dir.path().join("b.png")).unwrap(),
            target
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert_eq!(std::fs::read(&got.files[0]).unwrap(), b"delivered");
    }

    #[cfg(unix)]
    #[test]
    fn an_interrupted_move_never_replaces_an_entry_and_is_not_stored_twice() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_DIR);
        let (linked, blocked) = (DistributionId::new_random(), DistributionId::new_random());
        for (dist, name) in [(linked, "done.png"), (blocked, "doc.png")] {
            let incoming = state.join(INCOMING).join(dist.to_string());
            std::fs::create_dir_all(&incoming).unwrap();
            std::fs::write(incoming.join("0"), name.as_bytes()).unwrap();
        }
        std::fs::write(
            state.join(RECEIPTS),
            format!("{linked}\tdone.png\n{blocked}\tdoc.png\n"),
        )
        .unwrap();
        // The crash came after `done.png` was linked into place, before it was unlinked.
        std::fs::hard_link(
            state.join(INCOMING).join(linked.to_string()).join("0"),
            dir.path().join("done.png"),
        )
        .unwrap();
        // Meanwhile a dangling link took the name `doc.png`.
        std::os::unix::fs::symlink("/nonexistent/imagecast", dir.path().join("doc.png")).unwrap();
        let inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        assert!(inbox.has(&linked) && inbox.has(&blocked));
        assert_eq!(listing(dir.path()), ["doc-2.png", "doc.png", "done.png"]);
        assert_eq!(
            std::fs::read_link(dir.path().join("doc.png")).unwrap(),
            Path::new("/nonexistent/imagecast")
        );
        assert_eq!(
            std::fs::read(dir.path().join("doc-2.png")).unwrap(),
            b"doc.png"
        );
        assert_eq!(
            std::fs::read(dir.path().join("done.png")).unwrap(),
            b"done.png"
        );
        assert_eq!(std::fs::read_dir(state.join(INCOMING)).unwrap().count(), 0);
    }

    #[test]
    fn overrides_and_controls_in_names_are_neutralised() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let pages: &[(&str, &[u8])] = &[
            ("invoice\u{202e}fdp.exe", b"MZ"),
            ("a\u{1b}]0;pwned\u{7}b.png", b"x"),
            ("x\u{2066}y\u{200f}.tif", b"y"),
        ];
        let got = run(&mut inbox, &header(DistributionId::new_random(), 1, pages))
            .unwrap()
            .unwrap();
        assert_eq!(
            file_names(&got),
            ["invoice_fdp.exe", "a_]0;pwned_b.png", "x_y_.tif"]
        );
        for name in listing(dir.path()) {
            assert!(!name.chars().any(crate::text::is_unsafe), "{name:?}");
        }
    }

    #[test]
    fn deliveries_that_never_end_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let incoming = dir.path().join(STATE_DIR).join(INCOMING);
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        // 1,500 deliveries begin and send a first piece; none ever ends.
        let (mut begun, mut refused) = (0, 0);
        for d in 0..1500u64 {
            let events = header(DistributionId::new_random(), d + 1, &[("p.tif", b"abcdef")]);
            match inbox.handle(&events[0]) {
                Ok(None) => begun += 1,
                Err(InboxError::TooManyIncomplete { delivery, limit }) => {
                    assert_eq!((delivery, limit), (DeliveryId(d + 1), MAX_INCOMPLETE));
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
            // Data of a refused delivery is refused too, and writes nothing.
            let _ = inbox.handle(&events[1]);
            assert!(inbox.incomplete() <= MAX_INCOMPLETE);
        }
        assert_eq!((begun, refused), (MAX_INCOMPLETE, 1500 - MAX_INCOMPLETE));
        assert_eq!(
            std::fs::read_dir(&incoming).unwrap().count(),
            MAX_INCOMPLETE
        );
        // One page file is held open, whatever the number of deliveries under way.
        assert!(inbox.open.is_some());
        let err = InboxError::TooManyIncomplete {
            delivery: DeliveryId(17),
            limit: MAX_INCOMPLETE,
        };
        assert!(
            err.to_string()
                .contains("16 deliveries are already incomplete"),
            "{err}"
        );
        // The connection is gone: everything half done goes, and the next delivery is stored.
        assert_eq!(inbox.abandon_incomplete(), MAX_INCOMPLETE);
        assert!(inbox.open.is_none() && inbox.incomplete() == 0);
        assert_eq!(std::fs::read_dir(&incoming).unwrap().count(), 0);
        let got = run(
            &mut inbox,
            &header(DistributionId::new_random(), 9999, &[("ok.tif", b"fine")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(std::fs::read(&got.files[0]).unwrap(), b"fine");
    }

    #[test]
    fn interleaved_deliveries_are_stored_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let a = header(
            DistributionId::new_random(),
            1,
            &[("a1", b"first page of a"), ("a2", b"second page of a")],
        );
        let b = header(
            DistributionId::new_random(),
            2,
            &[("b1", b"the only page of b, longer")],
        );
        // Piece by piece in turn: the one open page file changes hands at every step.
        let mut done = Vec::new();
        for i in 0..a.len().max(b.len()) {
            for events in [&a, &b] {
                if let Some(e) = events.get(i) {
                    if let Some(r) = inbox.handle(e).unwrap() {
                        done.push(r);
                    }
                }
            }
        }
        assert_eq!(done.len(), 2);
        assert_eq!(listing(dir.path()), ["a1", "a2", "b1"]);
        assert_eq!(
            std::fs::read(dir.path().join("a1")).unwrap(),
            b"first page of a"
        );
        assert_eq!(
            std::fs::read(dir.path().join("a2")).unwrap(),
            b"second page of a"
        );
        assert_eq!(
            std::fs::read(dir.path().join("b1")).unwrap(),
            b"the only page of b, longer"
        );
    }

    #[test]
    fn a_new_header_for_the_same_distribution_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbox = Inbox::open(dir.path(), InboxMode::Store).unwrap();
        let dist = DistributionId::new_random();
        let first = header(dist, 1, &[("p", b"abcdefgh")]);
        inbox.handle(&first[0]).unwrap();
        inbox.handle(&first[1]).unwrap();
        let again = run(&mut inbox, &header(dist, 2, &[("p", b"abcdefgh")]))
            .unwrap()
            .unwrap();
        assert_eq!(inbox.incomplete(), 0);
        assert_eq!(std::fs::read(&again.files[0]).unwrap(), b"abcdefgh");
        assert!(
            inbox.handle(&first[2]).is_err(),
            "the first one was dropped"
        );
    }
}
