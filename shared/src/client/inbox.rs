//! Storing pushed deliveries: the PC's receiving software and the MFP's output tray.
//!
//! A delivery's pages are written into `DIR/.imagecast/incoming/<distribution>/` as they
//! arrive. At [`Event::DeliverEnd`] the files are fsynced, their final names in `DIR` are
//! chosen (the original file name, `-2`, `-3`... on a collision) and written with the
//! distribution ID to the receipt log `DIR/.imagecast/received` (fsynced); only then are the
//! files moved into place. A redelivery of a distribution already in the receipt log (the
//! server crashed before it saw the acknowledgement) is recognised and not stored again, and
//! a move interrupted by a crash is finished by [`Inbox::open`].

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
    /// The distribution.
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
    #[error("cannot store the delivery in {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The server's stream of pieces does not add up.
    #[error("delivery {delivery} is inconsistent: {reason}")]
    Inconsistent {
        /// The delivery.
        delivery: DeliveryId,
        /// What does not add up.
        reason: String,
    },
}

struct Incoming {
    header: Deliver,
    duplicate: bool,
    dir: PathBuf,
    page: u32,
    offset: u64,
    file: Option<std::fs::File>,
}

/// A folder that receives deliveries. See the module documentation.
pub struct Inbox {
    dir: PathBuf,
    mode: InboxMode,
    seen: HashSet<DistributionId>,
    current: HashMap<DeliveryId, Incoming>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
    move |source| InboxError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Inbox {
    /// Opens (creating) the folder, reads the receipt log and finishes any interrupted move.
    pub fn open(dir: impl Into<PathBuf>, mode: InboxMode) -> Result<Self, InboxError> {
        let dir = dir.into();
        let state = dir.join(STATE_DIR);
        let incoming = state.join(INCOMING);
        std::fs::create_dir_all(&incoming).map_err(io_err(&incoming))?;
        let receipts_path = state.join(RECEIPTS);
        let mut bytes = match std::fs::read(&receipts_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
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
            std::fs::OpenOptions::new()
                .write(true)
                .open(&receipts_path)
                .and_then(|f| {
                    f.set_len(complete as u64)?;
                    f.sync_all()
                })
                .map_err(io_err(&receipts_path))?;
        }
        let text = String::from_utf8_lossy(&bytes);
        let mut seen = HashSet::new();
        let mut names: HashMap<DistributionId, Vec<String>> = HashMap::new();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let Some(Ok(dist)) = fields.next().map(str::parse::<DistributionId>) else {
                continue;
            };
            seen.insert(dist);
            names.insert(dist, fields.map(str::to_owned).collect());
        }
        // Finish moves that a crash interrupted; drop partial deliveries.
        let entries = std::fs::read_dir(&incoming).map_err(io_err(&incoming))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let dist = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<DistributionId>().ok());
            if let Some(finals) = dist.and_then(|d| names.get(&d)) {
                for (i, name) in finals.iter().enumerate() {
                    let from = path.join(i.to_string());
                    if from.exists() {
                        std::fs::rename(&from, dir.join(name)).map_err(io_err(&from))?;
                    }
                }
                sync_dir(&dir)?;
            }
            std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
        }
        Ok(Self {
            dir,
            mode,
            seen,
            current: HashMap::new(),
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

    /// Takes one event; returns the delivery once it is complete and stored. Events other
    /// than deliveries are ignored.
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
            _ => Ok(None),
        }
    }

    fn begin(&mut self, header: &Deliver) -> Result<(), InboxError> {
        let duplicate = self.seen.contains(&header.dist);
        let dir = self
            .dir
            .join(STATE_DIR)
            .join(INCOMING)
            .join(header.dist.to_string());
        if !duplicate && self.mode == InboxMode::Store {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
            }
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        self.current.insert(
            header.delivery,
            Incoming {
                header: header.clone(),
                duplicate,
                dir,
                page: 0,
                offset: 0,
                file: None,
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
            inc.file = None;
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
            if inc.file.is_none() {
                let path = inc.dir.join(page.to_string());
                inc.file = Some(std::fs::File::create(&path).map_err(io_err(&path))?);
            }
            if let Some(f) = inc.file.as_mut() {
                f.write_all(data).map_err(io_err(&inc.dir))?;
            }
        }
        inc.offset += data.len() as u64;
        Ok(())
    }

    fn end(&mut self, delivery: DeliveryId) -> Result<Received, InboxError> {
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
        drop(inc.file);
        // Empty pages (and pages after the last data frame) still need their files.
        let mut names = Vec::with_capacity(pages.len());
        let mut taken = HashSet::new();
        for (i, info) in pages.iter().enumerate() {
            let tmp = inc.dir.join(i.to_string());
            if !tmp.exists() {
                std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
            }
            let f = std::fs::File::open(&tmp).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            let name = unique_name(&self.dir, &safe_file_name(&info.name, i), &taken);
            taken.insert(name.clone());
            names.push(name);
        }
        sync_dir(&inc.dir)?;
        // The receipt makes the delivery ours; the moves that follow are redone after a crash.
        let receipts = self.dir.join(STATE_DIR).join(RECEIPTS);
        let mut log = std::fs::OpenOptions::new()
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
            let to = self.dir.join(name);
            std::fs::rename(&from, &to).map_err(io_err(&from))?;
            received.files.push(to);
        }
        sync_dir(&self.dir)?;
        let _ = std::fs::remove_dir(&inc.dir);
        Ok(received)
    }
}

fn sync_dir(dir: &Path) -> Result<(), InboxError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// A page name that is safe as a file name in one folder: no directories, no control
/// characters, no leading dot, never empty.
pub fn safe_file_name(name: &str, index: usize) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_control() || c == ':' { '_' } else { c })
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

fn unique_name(dir: &Path, name: &str, taken: &HashSet<String>) -> String {
    let (stem, ext) = split_ext(name);
    let mut candidate = name.to_owned();
    let mut n = 2;
    while taken.contains(&candidate) || dir.join(&candidate).exists() {
        // `stem-N.ext`, the stem shortened so the whole stays within 255 bytes.
        let suffix = format!("-{n}{ext}");
        let mut cut = 255usize.saturating_sub(suffix.len()).min(stem.len());
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        candidate = format!("{}{suffix}", &stem[..cut]);
        n += 1;
    }
    candidate
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
}
