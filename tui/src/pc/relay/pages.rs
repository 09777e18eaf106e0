//! Pages both ways in one session: either end sends files as pages, at any time while the
//! session is open, and stores the pages the other end sends. `relay send`, `relay listen`
//! and the panel all use it.
//!
//! Each direction of the session carries, in any order between pages:
//!
//! ```text
//! "page K N SIZE NAMELEN\n", NAME (NAMELEN bytes), SIZE bytes of the file
//! "printed K\n"            this end stored the peer's page K (synced on disk)
//! "failed K REASON\n"      this end could not store the peer's page K (the session ends)
//! "done\n"                 this end sends no more pages (confirmations may follow)
//! ```
//!
//! K counts this end's pages through the session from 1; N is how many it has announced so
//! far (a later batch raises it). Each file travels whole as one page (a multi-page TIFF is
//! not split) and is confirmed only once it is on disk. The demander ends the session once
//! its pages are confirmed and the peer said `done` (or went quiet: [`REPLY_GRACE`]).

use std::collections::VecDeque;

use tokio::sync::mpsc;

use super::*;

/// How long the demander waits, once all its pages are confirmed, for the peer's next page or
/// its `done`, before it ends the session anyway (an older peer never says `done`; a panel's
/// operator who sends nothing back need not say so). Each event starts the wait again.
pub const REPLY_GRACE: Duration = Duration::from_secs(20);

/// A file queued to go as one page.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The name the peer stores it under.
    pub name: String,
    /// Its size in bytes, as announced.
    pub size: u64,
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    File(PathBuf),
    Memory(Bytes),
}

impl Outgoing {
    /// A file to send, checked: it is readable, its name is usable and its size allowed.
    pub fn file(path: &Path) -> anyhow::Result<Outgoing> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && n.len() <= MAX_NAME)
            .with_context(|| format!("{} has no usable file name", path.display()))?
            .to_owned();
        if size > MAX_PAGE_BYTES {
            anyhow::bail!(
                "{} is {size} bytes; a page may have at most {MAX_PAGE_BYTES}",
                path.display()
            );
        }
        Ok(Outgoing {
            name,
            size,
            source: Source::File(path.to_owned()),
        })
    }

    /// A file already read (a scanned page) named `name`.
    pub fn memory(name: &str, bytes: Bytes) -> Outgoing {
        Outgoing {
            name: name.to_owned(),
            size: bytes.len() as u64,
            source: Source::Memory(bytes),
        }
    }
}

/// What happens to the pages of a session, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageEvent {
    /// A page of the peer's is on disk here, and confirmed to the peer.
    Stored {
        /// Its number among the peer's pages.
        k: u64,
        /// How many the peer has announced so far.
        n: u64,
        /// Where it is.
        path: PathBuf,
    },
    /// A page of the peer's could not be stored here (the session ends).
    NotStored {
        /// Its number.
        k: u64,
        /// Why.
        reason: String,
    },
    /// The peer confirmed this end's page `k` of `n`.
    Printed {
        /// The page's number.
        k: u64,
        /// How many this end has announced so far.
        n: u64,
    },
    /// The peer could not store this end's page `k`.
    Refused {
        /// The page's number.
        k: u64,
        /// The peer's reason.
        reason: String,
    },
    /// The peer sends no more pages.
    PeerDone,
    /// The session ended: `Ok` with the reason when an end ended it, `Err` when it broke
    /// (the connection, bad data). Nothing follows.
    Ended(Result<String, String>),
}

enum Out {
    Pages(Vec<Outgoing>),
    Line(String),
    Done,
    /// End the session once everything queued before is sent.
    End(String, tokio::sync::oneshot::Sender<()>),
    /// The peer half-closed: half-close too once everything queued is sent.
    Finish,
}

/// The sending half of a page exchange. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pages {
    out: mpsc::UnboundedSender<Out>,
    sender: SessionSender,
    announced: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Pages(p) => write!(f, "Pages({})", p.len()),
            Out::Line(l) => write!(f, "Line({l:?})"),
            Out::Done => write!(f, "Done"),
            Out::End(r, _) => write!(f, "End({r:?})"),
            Out::Finish => write!(f, "Finish"),
        }
    }
}

impl Pages {
    /// Queues `files` to go as pages, after any queued before; returns the numbers they get.
    pub fn send(&self, files: Vec<Outgoing>) -> std::ops::RangeInclusive<u64> {
        use std::sync::atomic::Ordering;
        let first = self
            .announced
            .fetch_add(files.len() as u64, Ordering::SeqCst)
            + 1;
        let last = first + files.len() as u64 - 1;
        let _ = self.out.send(Out::Pages(files));
        first..=last
    }

    /// Tells the peer, after the pages queued, that this end sends no more.
    pub fn done(&self) {
        let _ = self.out.send(Out::Done);
    }

    /// How many pages this end has announced.
    pub fn announced(&self) -> u64 {
        self.announced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Ends the session now; the peer is told `reason`.
    pub async fn end(&self, reason: &str) {
        let _ = self.sender.end(reason).await;
    }

    /// Ends the session once everything queued (pages, confirmations) has gone out; the peer
    /// is told `reason`.
    pub async fn end_when_sent(&self, reason: &str) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.out.send(Out::End(reason.to_owned(), tx)).is_ok() {
            let _ = rx.await;
        }
        // Ended by the writer, or the writer is gone: either way this is a no-op or the end.
        let _ = self.sender.end(reason).await;
    }

    /// The session's number.
    pub fn id(&self) -> u64 {
        self.sender.id()
    }
}

/// Starts exchanging pages on `session`: the peer's pages are stored in `dir`. Returns the
/// What the demanding side of a session waits for next ([`next_for_demander`]).
#[derive(Debug)]
pub enum Next {
    /// Every page of its own is printed and the peer said it is done, or sent nothing more
    /// for [`REPLY_GRACE`]: the session may end.
    Finished,
    /// The exchange stopped: the session ended.
    Closed,
    /// The next page event.
    Event(PageEvent),
}

/// The next thing the demander hears: while its own pages are not all printed, the next
/// event; once they are, the peer's `done`, more of its pages, or [`REPLY_GRACE`] of quiet.
/// `relay send` and the panel's real-time job end their sessions by this one rule.
pub async fn next_for_demander(
    events: &mut mpsc::UnboundedReceiver<PageEvent>,
    all_printed: bool,
    peer_done: bool,
) -> Next {
    if all_printed && peer_done {
        return Next::Finished;
    }
    let next = if all_printed {
        match tokio::time::timeout(REPLY_GRACE, events.recv()).await {
            Ok(e) => e,
            Err(_) => return Next::Finished,
        }
    } else {
        events.recv().await
    };
    next.map_or(Next::Closed, Next::Event)
}

/// sending half and the events, which end with [`PageEvent::Ended`].
pub fn exchange(
    session: RelaySession,
    dir: PathBuf,
) -> (Pages, mpsc::UnboundedReceiver<PageEvent>) {
    let RelaySession {
        id,
        sender,
        receiver,
        ..
    } = session;
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let announced = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pages = Pages {
        out: out_tx.clone(),
        sender: sender.clone(),
        announced: announced.clone(),
    };
    let writer = tokio::spawn({
        let sender = sender.clone();
        let announced = announced.clone();
        async move {
            // A file that cannot be read ends the session with the reason.
            if let Err(e) = write_pages(sender.clone(), out_rx, announced).await {
                if !matches!(e, ClientError::SessionEnded(_)) {
                    let _ = sender.end(&e.to_string()).await;
                }
            }
        }
    });
    tokio::spawn(async move {
        let input = SessionIn::new(receiver);
        let end = read_pages(id, input, &dir, &announced, &out_tx, &ev_tx).await;
        if let Err(reason) = &end {
            let _ = sender.end(reason).await;
        }
        writer.abort();
        let _ = ev_tx.send(PageEvent::Ended(end));
    });
    (pages, ev_rx)
}

/// Writes what is queued: confirmations and `done` as soon as no page is half sent, pages
/// one after another.
async fn write_pages(
    sender: SessionSender,
    mut rx: mpsc::UnboundedReceiver<Out>,
    announced: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), ClientError> {
    let mut queue: VecDeque<Outgoing> = VecDeque::new();
    let mut done = false;
    let mut sent = 0u64;
    loop {
        // Everything waiting: lines go at once, pages join the queue.
        loop {
            let item = if queue.is_empty() && !done {
                match rx.recv().await {
                    Some(i) => i,
                    None => return Ok(()),
                }
            } else {
                match rx.try_recv() {
                    Ok(i) => i,
                    Err(_) => break,
                }
            };
            match item {
                Out::Line(l) => sender.send(Bytes::from(l)).await?,
                Out::Pages(p) => queue.extend(p),
                Out::Done => done = true,
                Out::End(reason, ended) => {
                    flush(&sender, &mut queue, &mut sent, done, &announced).await?;
                    sender.end(&reason).await?;
                    let _ = ended.send(());
                    return Ok(());
                }
                Out::Finish => {
                    flush(&sender, &mut queue, &mut sent, done, &announced).await?;
                    return sender.finish().await;
                }
            }
        }
        if let Some(page) = queue.pop_front() {
            sent += 1;
            let n = announced.load(std::sync::atomic::Ordering::SeqCst);
            send_file(&sender, sent, n, &page).await?;
        } else if done {
            sender.send(Bytes::from_static(b"done\n")).await?;
            done = false;
        }
    }
}

/// Sends every queued page, then `done` if it was asked for.
async fn flush(
    sender: &SessionSender,
    queue: &mut VecDeque<Outgoing>,
    sent: &mut u64,
    done: bool,
    announced: &std::sync::atomic::AtomicU64,
) -> Result<(), ClientError> {
    while let Some(page) = queue.pop_front() {
        *sent += 1;
        let n = announced.load(std::sync::atomic::Ordering::SeqCst);
        send_file(sender, *sent, n, &page).await?;
    }
    if done {
        sender.send(Bytes::from_static(b"done\n")).await?;
    }
    Ok(())
}

/// Sends one file as page `k` of `n`.
async fn send_file(
    sender: &SessionSender,
    k: u64,
    n: u64,
    page: &Outgoing,
) -> Result<(), ClientError> {
    let header = format!("page {k} {n} {} {}\n", page.size, page.name.len());
    let path = match &page.source {
        Source::Memory(bytes) => {
            sender.send(Bytes::from(header)).await?;
            sender
                .send(Bytes::from(page.name.clone().into_bytes()))
                .await?;
            return sender.send(bytes.clone()).await;
        }
        Source::File(path) => path,
    };
    let file_error = |reason| ClientError::File {
        path: path.clone(),
        reason,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(file_error)?;
    sender.send(Bytes::from(header)).await?;
    sender
        .send(Bytes::from(page.name.clone().into_bytes()))
        .await?;
    let mut left = page.size;
    while left > 0 {
        let want = (CHUNK_SIZE as u64).min(left) as usize;
        let mut buf = vec![0u8; want];
        file.read_exact(&mut buf).await.map_err(file_error)?;
        sender.send(Bytes::from(buf)).await?;
        left -= want as u64;
    }
    Ok(())
}

/// Reads the peer's side until the session ends: stores its pages, reports confirmations.
async fn read_pages(
    id: u64,
    mut input: SessionIn,
    dir: &Path,
    announced: &std::sync::atomic::AtomicU64,
    out: &mpsc::UnboundedSender<Out>,
    events: &mpsc::UnboundedSender<PageEvent>,
) -> Result<String, String> {
    let event = |e| {
        let _ = events.send(e);
    };
    loop {
        let line = match input.read_line().await {
            Ok(Some(line)) => line,
            Ok(None) => {
                // The peer half-closed: it sends nothing more; neither does this end once
                // its queue is out; the end follows.
                let _ = out.send(Out::Finish);
                event(PageEvent::PeerDone);
                return match input.rx.recv().await {
                    Err(ClientError::SessionEnded(r)) => Ok(r),
                    _ => Ok("the peer closed".into()),
                };
            }
            Err(ClientError::SessionEnded(r)) => return Ok(r),
            Err(e) => return Err(e.to_string()),
        };
        let mut words = line.splitn(3, ' ');
        let word = words.next().unwrap_or("");
        let number = words.next().and_then(|k| k.parse::<u64>().ok());
        match (word, number) {
            ("done", None) => event(PageEvent::PeerDone),
            ("printed", Some(k)) => event(PageEvent::Printed {
                k,
                n: announced.load(std::sync::atomic::Ordering::SeqCst),
            }),
            ("failed", Some(k)) => event(PageEvent::Refused {
                k,
                reason: peer_reason(words.next().unwrap_or("")).into_owned(),
            }),
            ("page", _) => {
                let Some((k, n, size, name_len)) = parse_header(&line) else {
                    return Err(format!("not a page header: {}", peer_reason(&line)));
                };
                let name = match input.read_exact(name_len).await {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => return Err(e.to_string()),
                };
                match receive_file(&mut input, dir, id, k, &name, size).await {
                    Ok(path) => {
                        let _ = out.send(Out::Line(format!("printed {k}\n")));
                        event(PageEvent::Stored { k, n, path });
                    }
                    Err(Failure::Local(reason)) => {
                        let _ = out.send(Out::Line(format!("failed {k} {reason}\n")));
                        event(PageEvent::NotStored {
                            k,
                            reason: reason.clone(),
                        });
                        // The failure line goes out before the end.
                        tokio::task::yield_now().await;
                        return Err(reason);
                    }
                    Err(Failure::Session(ClientError::SessionEnded(r))) => {
                        return Err(format!("{r}, in the middle of page {k}"));
                    }
                    Err(Failure::Session(e)) => return Err(e.to_string()),
                }
            }
            _ => {
                return Err(format!(
                    "the peer sent {:?}, which is neither a page nor a confirmation",
                    peer_reason(&line)
                ));
            }
        }
    }
}

/// A page header's numbers: (K, N, SIZE, NAMELEN), checked.
pub(super) fn parse_header(line: &str) -> Option<(u64, u64, u64, usize)> {
    let mut w = line.split(' ');
    if w.next()? != "page" {
        return None;
    }
    let k = w.next()?.parse().ok()?;
    let n = w.next()?.parse().ok()?;
    let size: u64 = w.next()?.parse().ok()?;
    let name_len: usize = w.next()?.parse().ok()?;
    if w.next().is_some() || size > MAX_PAGE_BYTES || name_len > MAX_NAME || k == 0 || k > n {
        return None;
    }
    Some((k, n, size, name_len))
}

enum Failure {
    Local(String),
    Session(ClientError),
}

/// Writes one page to a temporary file, syncs it, and renames it into `dir` under a name
/// no other file has.
async fn receive_file(
    input: &mut SessionIn,
    dir: &Path,
    session: u64,
    k: u64,
    name: &str,
    size: u64,
) -> Result<PathBuf, Failure> {
    let local = |e: std::io::Error| Failure::Local(e.to_string());
    let tmp = dir.join(format!(".relay-{session}-{k}.part"));
    let mut file = tokio::fs::File::from_std(
        imagecast_shared::private::open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(local)?,
    );
    let mut left = size;
    while left > 0 {
        let piece = match input.next_piece(left).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(Failure::Session(ClientError::SessionEnded(
                    "the peer stopped in the middle of a page".into(),
                )));
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(Failure::Session(e));
            }
        };
        left -= piece.len() as u64;
        file.write_all(&piece).await.map_err(local)?;
    }
    file.sync_all().await.map_err(local)?;
    drop(file);
    let base = page_file_name(name, (k - 1) as usize);
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || place(&tmp, &dir, &base))
        .await
        .map_err(|e| Failure::Local(e.to_string()))?
        .map_err(local)
}

/// Moves `tmp` into `dir` as `base`, or `stem-2.ext`, `stem-3.ext`... (never over a file).
fn place(tmp: &Path, dir: &Path, base: &str) -> std::io::Result<PathBuf> {
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], &base[i..]),
        _ => (base, ""),
    };
    for n in 1..10_000u32 {
        let name = if n == 1 {
            base.to_owned()
        } else {
            format!("{stem}-{n}{ext}")
        };
        let path = dir.join(name);
        // A hard link fails when the name is taken, so no file is ever replaced.
        match std::fs::hard_link(tmp, &path) {
            Ok(()) => {
                std::fs::remove_file(tmp)?;
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_headers_are_checked() {
        assert_eq!(parse_header("page 1 2 300 5"), Some((1, 2, 300, 5)));
        assert_eq!(parse_header("page 3 2 300 5"), None);
        assert_eq!(parse_header("page 1 2 300 5 x"), None);
        assert_eq!(parse_header("page 1 2 99999999999999 5"), None);
        assert_eq!(parse_header("page 1 2 3 999"), None);
    }
}
