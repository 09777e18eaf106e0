//! Real-time sessions from the PC client (seed 004): `who`, `relay send`, `relay listen`,
//! `relay pipe`, `logout`.
//!
//! A session carries bytes; `relay send` and `relay listen` put pages on it in this form:
//!
//! ```text
//! sender -> receiver:  "page K N SIZE NAMELEN\n", NAME (NAMELEN bytes), SIZE bytes of the file
//! receiver -> sender:  "printed K\n" once the file is on disk, or "failed K REASON\n"
//! ```
//!
//! The sender ends the session once every page is confirmed. `relay pipe` and `relay listen
//! --forward` carry any byte stream: the end of one side's input half-closes the session
//! toward the other ([`splice`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::{Buf, Bytes, BytesMut};
use imagecast_shared::client::{
    Client, ClientError, Event, IncomingDemand, RelaySession, SessionReceiver, SessionSender,
    page_file_name,
};
use imagecast_shared::limits::{CHUNK_SIZE, MAX_NAME, MAX_PAGE_BYTES};
use imagecast_shared::msg::{Presence, RelayTarget};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{connect, login, peer, peer_reason};
use crate::config::Settings;

/// How long `relay send` and `relay pipe` wait for the answer by default (the server's own
/// demand timeout, 30 s by default, usually ends the wait first).
pub const DEFAULT_DEMAND_WAIT: Duration = Duration::from_secs(40);

/// Longest header line of a page, in bytes.
const MAX_HEADER: usize = 128;

/// Why a relay command failed in a way that has its own exit code (2): the demand was
/// rejected, the target is not online or busy, the demand expired, or the session broke.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SessionFailed(pub String);

/// Logs the user in when the settings name one (the peer then sees who demands).
async fn maybe_login(client: &Client, s: &Settings) -> anyhow::Result<()> {
    if let (Some(user), Some(password)) = (&s.user, &s.password) {
        client.login(user, password).await?;
    }
    Ok(())
}

/// Keeps a connection's events drained (a command that does not use them).
fn drain(mut events: imagecast_shared::client::Events) {
    tokio::spawn(async move { while events.recv().await.is_some() {} });
}

/// `who`: one line per terminal online: "DOMAIN  NAME  USER  in-session|idle"; with `json`,
/// one JSON array.
pub async fn who(s: &Settings, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, events) = connect(s, false).await?;
    drain(events);
    let list = client.who().await?;
    client.close().await;
    if json {
        writeln!(out, "{}", who_json(&list)?)?;
        return Ok(());
    }
    for p in &list {
        let users = if p.users.is_empty() {
            "-".to_owned()
        } else {
            p.users
                .iter()
                .map(|u| peer(u))
                .collect::<Vec<_>>()
                .join(",")
        };
        let state = if p.in_session { "in-session" } else { "idle" };
        let older = if p.older {
            "  (older imagecast: no real-time sessions)"
        } else {
            ""
        };
        writeln!(
            out,
            "{}  {}  {}  {}{}",
            peer(&p.domain),
            peer(&p.name),
            users,
            state,
            older
        )?;
    }
    Ok(())
}

fn who_json(list: &[Presence]) -> anyhow::Result<String> {
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|p| {
            serde_json::json!({
                "domain": p.domain,
                "name": p.name,
                "users": p.users,
                "state": if p.in_session { "in-session" } else { "idle" },
                "takes_demands": p.takes_demands,
                "older": p.older,
            })
        })
        .collect();
    Ok(serde_json::to_string(&rows)?)
}

/// The demand's target as it is printed.
fn target_text(target: &RelayTarget) -> String {
    match target {
        RelayTarget::Device(d) => peer(d).into_owned(),
        RelayTarget::User(u) => format!("user {}", peer(u)),
    }
}

/// Connects, logs in if it can, and demands a session; a refusal is a [`SessionFailed`].
async fn open(
    s: &Settings,
    target: &RelayTarget,
    wait: Duration,
) -> anyhow::Result<(Client, RelaySession)> {
    let (client, events) = connect(s, false).await?;
    drain(events);
    maybe_login(&client, s).await?;
    match client.demand(target.clone(), wait).await {
        Ok(session) => Ok((client, session)),
        Err(ClientError::Server(e)) => Err(SessionFailed(format!(
            "connection demand to {}: {}",
            target_text(target),
            peer_reason(&e.message)
        ))
        .into()),
        Err(ClientError::Timeout(_)) => Err(SessionFailed(format!(
            "connection demand to {}: no answer within {} s",
            target_text(target),
            wait.as_secs()
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// `relay send`: demands a session, sends each file as one page, prints each confirmation,
/// and ends the session.
pub async fn send(
    s: &Settings,
    target: &RelayTarget,
    wait: Duration,
    files: &[PathBuf],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut pages = Vec::new();
    for f in files {
        let size = std::fs::metadata(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .len();
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", f.display()))?
            .to_owned();
        pages.push((f.clone(), name, size));
    }
    let (client, session) = open(s, target, wait).await?;
    let RelaySession {
        id,
        peer: who,
        sender,
        receiver,
        ..
    } = session;
    let domain = peer(&who.domain).into_owned();
    writeln!(
        out,
        "connection demand to {}: accepted (session {id})",
        target_text(target)
    )?;
    out.flush()?;
    let n = pages.len();
    let sending = {
        let sender = sender.clone();
        tokio::spawn(async move {
            for (k, (path, name, size)) in pages.into_iter().enumerate() {
                let header = format!("page {} {n} {size} {}\n", k + 1, name.len());
                sender.send(Bytes::from(header)).await?;
                sender.send(Bytes::from(name.into_bytes())).await?;
                let mut file =
                    tokio::fs::File::open(&path)
                        .await
                        .map_err(|reason| ClientError::File {
                            path: path.clone(),
                            reason,
                        })?;
                let mut left = size;
                while left > 0 {
                    let want = (CHUNK_SIZE as u64).min(left) as usize;
                    let mut buf = vec![0u8; want];
                    file.read_exact(&mut buf)
                        .await
                        .map_err(|reason| ClientError::File {
                            path: path.clone(),
                            reason,
                        })?;
                    sender.send(Bytes::from(buf)).await?;
                    left -= want as u64;
                }
            }
            Ok::<(), ClientError>(())
        })
    };
    let mut input = SessionIn::new(receiver);
    let mut printed = 0usize;
    let broke = loop {
        if printed == n {
            break None;
        }
        match input.read_line().await {
            Ok(Some(line)) => {
                let mut words = line.splitn(3, ' ');
                match (
                    words.next(),
                    words.next().and_then(|k| k.parse::<usize>().ok()),
                ) {
                    (Some("printed"), Some(k)) if k == printed + 1 => {
                        printed = k;
                        writeln!(out, "page {k}/{n} printed by {domain}")?;
                        out.flush()?;
                    }
                    (Some("failed"), Some(k)) => {
                        break Some(format!(
                            "{domain} could not store page {k}: {}",
                            peer_reason(words.next().unwrap_or(""))
                        ));
                    }
                    _ => {
                        break Some(format!(
                            "{domain} answered {:?}, not a page confirmation",
                            peer_reason(&line)
                        ));
                    }
                }
            }
            Ok(None) => break Some(format!("{domain} closed the session early")),
            Err(e) => break Some(e.to_string()),
        }
    };
    sending.abort();
    match broke {
        None => {
            let _ = sender.end("done").await;
            client.close().await;
            Ok(())
        }
        Some(reason) => {
            let _ = sender.end(&reason).await;
            client.close().await;
            let got = if printed == 0 {
                "no page was printed".to_owned()
            } else {
                format!("pages 1 to {printed} of {n} were printed")
            };
            Err(SessionFailed(format!("session {id} broke: {reason}; {got}")).into())
        }
    }
}

/// How `relay listen` answers demands.
#[derive(Clone, Debug)]
pub enum Policy {
    /// Accept every demand.
    AcceptAll,
    /// Accept a demand whose device domain or user ID matches one of these shell globs.
    AcceptFrom(Vec<String>),
    /// Ask the operator at the terminal.
    Ask,
}

/// What `relay listen` does with an accepted session.
#[derive(Clone, Debug)]
pub struct ListenArgs {
    /// Where pages are stored.
    pub out: PathBuf,
    /// How demands are answered.
    pub policy: Policy,
    /// Hand sessions to this local TCP service instead of storing pages.
    pub forward: Option<String>,
}

/// `relay listen`: answers demands and serves accepted sessions, one line per event, until
/// the device logs out (then it returns Ok).
pub async fn listen(s: &Settings, args: &ListenArgs) -> anyhow::Result<()> {
    if args.forward.is_none() {
        imagecast_shared::private::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    let mut delay = Duration::from_millis(200);
    let mut connected_once = false;
    loop {
        let (client, events) = match connect(s, false).await {
            Ok(x) => x,
            // Once it worked, a server that goes away is waited for; a refusal is final.
            Err(e) if connected_once && e.is_connection_lost() => {
                tracing::info!(error = %peer_reason(&e.to_string()), "cannot reach the server; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        maybe_login(&client, s).await?;
        client.relay_listen().await?;
        connected_once = true;
        delay = Duration::from_millis(200);
        eprintln!(
            "listening for connection demands at {} as {}",
            s.server, s.device
        );
        match answer_demands(&client, events, args).await {
            // The device logged out: no reconnecting.
            Ended::LoggedOut => return Ok(()),
            Ended::Lost(reason) => {
                eprintln!(
                    "lost the connection to {} ({}); reconnecting",
                    s.server,
                    peer_reason(&reason)
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// How one connection of `relay listen` ended.
enum Ended {
    LoggedOut,
    Lost(String),
}

/// Answers the demands that come on one connection until it ends.
async fn answer_demands(
    client: &Client,
    mut events: imagecast_shared::client::Events,
    args: &ListenArgs,
) -> Ended {
    while let Some(event) = events.recv().await {
        match event {
            Event::Demanded(d) => {
                let decision = decide(&args.policy, &d).await;
                let from = describe(&d);
                match client.answer(d.demand, decision.clone()).await {
                    Ok(Some(session)) => {
                        say(&format!(
                            "demand from {from}: accepted (session {})",
                            session.id
                        ));
                        let args = args.clone();
                        tokio::spawn(async move { serve(session, &args).await });
                    }
                    Ok(None) => say(&format!(
                        "demand from {from}: rejected ({})",
                        decision.err().unwrap_or_default()
                    )),
                    Err(e) => say(&format!(
                        "demand from {from}: {}",
                        peer_reason(&e.to_string())
                    )),
                }
            }
            Event::DemandWithdrawn { demand, reason } => {
                say(&format!(
                    "demand {demand} withdrawn: {}",
                    peer_reason(&reason)
                ));
            }
            Event::LoggedOut(reason) => {
                say(&format!("logged out: {}", peer_reason(&reason)));
                client.close().await;
                return Ended::LoggedOut;
            }
            Event::Closed(reason) => return Ended::Lost(reason),
            Event::Notice(text) => tracing::info!("server: {}", peer_reason(&text)),
            _ => {}
        }
    }
    Ended::Lost("the connection ended".into())
}

/// One line on stdout, flushed (scripts read it as it comes).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn describe(d: &IncomingDemand) -> String {
    if d.user.is_empty() {
        format!("{} ({})", peer(&d.from.domain), peer(&d.from.name))
    } else {
        format!(
            "{} ({}, user {})",
            peer(&d.from.domain),
            peer(&d.from.name),
            peer(&d.user)
        )
    }
}

/// The answer to a demand under `policy`.
async fn decide(policy: &Policy, d: &IncomingDemand) -> Result<(), String> {
    match policy {
        Policy::AcceptAll => Ok(()),
        Policy::AcceptFrom(patterns) => {
            let domain = d.from.domain.to_ascii_lowercase();
            if patterns.iter().any(|p| {
                glob(&p.to_ascii_lowercase(), &domain) || (!d.user.is_empty() && glob(p, &d.user))
            }) {
                Ok(())
            } else {
                Err("not accepted by this terminal's --accept-from patterns".into())
            }
        }
        Policy::Ask => ask(d).await,
    }
}

/// Asks the operator on the terminal (stderr and stdin); no terminal, or no answer in time,
/// is a rejection with that reason.
async fn ask(d: &IncomingDemand) -> Result<(), String> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err("this terminal asks its operator, and no operator is at it".into());
    }
    let secs = d.expires.as_secs().saturating_sub(2).max(1);
    eprint!(
        "Connection demand from {}: accept? [y/N] ({secs} s) ",
        describe(d)
    );
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    match tokio::time::timeout(Duration::from_secs(secs), answer).await {
        Ok(Ok(Ok(line))) if matches!(line.trim(), "y" | "Y" | "yes") => Ok(()),
        Ok(_) => Err("the operator rejected it".into()),
        Err(_) => Err("the operator did not answer".into()),
    }
}

/// A shell glob: `*` any run, `?` one character, `[abc]`/`[a-z]`/`[!a]` one of a set.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                return t.first() == Some(&'[') && glob_at(&p[1..], &t[1..]);
            };
            let Some(c) = t.first() else { return false };
            let (negate, set) = match p[1] {
                '!' | '^' => (true, &p[2..close]),
                _ => (false, &p[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= *c && *c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != negate && glob_at(&p[close + 1..], &t[1..])
        }
        Some(c) => t.first() == Some(c) && glob_at(&p[1..], &t[1..]),
    }
}

/// Serves one accepted session: pages into the folder, or a forward to a local service.
async fn serve(session: RelaySession, args: &ListenArgs) {
    let id = session.id;
    let from = peer(&session.peer.domain).into_owned();
    let result = match &args.forward {
        Some(addr) => match tokio::net::TcpStream::connect(addr.as_str()).await {
            Ok(tcp) => {
                let (rd, wr) = tcp.into_split();
                splice(session.sender, session.receiver, rd, wr).await
            }
            Err(e) => {
                let reason = format!("cannot reach the forwarded service: {e}");
                let _ = session.sender.end(&reason).await;
                Err(reason)
            }
        },
        None => store_pages(session, &args.out, &from).await,
    };
    match result {
        Ok(reason) => say(&format!("session {id} ended: {}", peer_reason(&reason))),
        Err(reason) => say(&format!("session {id} broke: {}", peer_reason(&reason))),
    }
}

/// Receives pages until the peer ends the session; returns how it ended.
async fn store_pages(session: RelaySession, dir: &Path, from: &str) -> Result<String, String> {
    let RelaySession {
        id,
        sender,
        receiver,
        ..
    } = session;
    let mut input = SessionIn::new(receiver);
    loop {
        let line = match input.read_line().await {
            Ok(Some(line)) => line,
            Ok(None) => {
                // The peer sends nothing more: neither does this side; the end follows.
                let _ = sender.finish().await;
                return match input.rx.recv().await {
                    Err(ClientError::SessionEnded(r)) => Ok(r),
                    _ => Ok("the peer closed".into()),
                };
            }
            Err(ClientError::SessionEnded(r)) => return Ok(r),
            Err(e) => return Err(e.to_string()),
        };
        let header = parse_header(&line);
        let Some((k, n, size, name_len)) = header else {
            let reason = format!("not a page header: {}", peer_reason(&line));
            let _ = sender.end(&reason).await;
            return Err(reason);
        };
        let name = match input.read_exact(name_len).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return Err(e.to_string()),
        };
        match receive_file(&mut input, dir, id, k, &name, size).await {
            Ok(path) => {
                say(&format!(
                    "page {k}/{n} from {from} stored as {}",
                    path.display()
                ));
                if let Err(e) = sender.send(Bytes::from(format!("printed {k}\n"))).await {
                    return Err(e.to_string());
                }
            }
            Err(Failure::Local(reason)) => {
                say(&format!("page {k}/{n} from {from} not stored: {reason}"));
                let _ = sender
                    .send(Bytes::from(format!("failed {k} {reason}\n")))
                    .await;
                let _ = sender.end(&reason).await;
                return Err(reason);
            }
            Err(Failure::Session(e)) => return Err(e.to_string()),
        }
    }
}

fn parse_header(line: &str) -> Option<(u64, u64, u64, usize)> {
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

/// A session's incoming bytes, read as lines and runs of bytes.
struct SessionIn {
    rx: SessionReceiver,
    buf: BytesMut,
    eof: bool,
}

impl SessionIn {
    fn new(rx: SessionReceiver) -> Self {
        Self {
            rx,
            buf: BytesMut::new(),
            eof: false,
        }
    }

    /// Reads more into the buffer; false at the peer's half-close.
    async fn fill(&mut self) -> Result<bool, ClientError> {
        if self.eof {
            return Ok(false);
        }
        match self.rx.recv().await? {
            Some(b) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    /// The next line (without its newline); `None` at the half-close before any byte of it.
    async fn read_line(&mut self) -> Result<Option<String>, ClientError> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(i + 1);
                return Ok(Some(String::from_utf8_lossy(&line[..i]).into_owned()));
            }
            if self.buf.len() > MAX_HEADER {
                return Err(ClientError::SessionEnded(
                    "the peer sent a line longer than a page header".into(),
                ));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ClientError::SessionEnded(
                        "the peer stopped in the middle of a line".into(),
                    ))
                };
            }
        }
    }

    /// Exactly `n` bytes (n is small: a name).
    async fn read_exact(&mut self, n: usize) -> Result<Bytes, ClientError> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(ClientError::SessionEnded(
                    "the peer stopped in the middle of a page".into(),
                ));
            }
        }
        Ok(self.buf.split_to(n).freeze())
    }

    /// Up to `max` bytes: what is buffered, else the next piece.
    async fn next_piece(&mut self, max: u64) -> Result<Option<Bytes>, ClientError> {
        if self.buf.is_empty() && !self.fill().await? {
            return Ok(None);
        }
        let n = (self.buf.len() as u64).min(max) as usize;
        let piece = self.buf.split_to(n).freeze();
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
        Ok(Some(piece))
    }
}

/// Carries bytes both ways between a session and a local reader and writer until both
/// directions are closed: the end of `rd` half-closes the session toward the peer; the
/// peer's half-close shuts `wr` down. Returns how the session ended.
pub async fn splice<R, W>(
    sender: SessionSender,
    mut receiver: SessionReceiver,
    mut rd: R,
    mut wr: W,
) -> Result<String, String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let up = {
        let sender = sender.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
            loop {
                buf.reserve(CHUNK_SIZE);
                let n = rd
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| format!("cannot read the local input: {e}"))?;
                if n == 0 {
                    break;
                }
                sender
                    .send(buf.split().freeze())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            sender.finish().await.map_err(|e| e.to_string())
        })
    };
    let down = pump_down(&mut receiver, &mut wr).await;
    if let Err(reason) = down {
        up.abort();
        return Err(reason);
    }
    // The peer sent everything: wait for our own input to end, unless the session ends.
    let ended = async {
        loop {
            match receiver.recv().await {
                Err(ClientError::SessionEnded(r)) => return r,
                Err(e) => return e.to_string(),
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        r = up => match r {
            Ok(Ok(())) => {
                let _ = sender.end("done").await;
                Ok("done".into())
            }
            Ok(Err(e)) => {
                let _ = sender.end(&e).await;
                Err(e)
            }
            Err(e) => Err(e.to_string()),
        },
        reason = ended => Ok(reason),
    }
}

/// Writes the peer's data to `wr` until the peer half-closes (then shuts `wr` down).
async fn pump_down<W: AsyncWrite + Unpin>(
    receiver: &mut SessionReceiver,
    wr: &mut W,
) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot write the local output: {e}");
    loop {
        match receiver.recv().await {
            Ok(Some(mut b)) => {
                while b.has_remaining() {
                    wr.write_all_buf(&mut b).await.map_err(failed)?;
                }
                // Interactive streams (ssh) need each piece at once.
                wr.flush().await.map_err(failed)?;
            }
            Ok(None) => {
                let _ = wr.shutdown().await;
                return Ok(());
            }
            Err(ClientError::SessionEnded(r)) => return Err(r),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `relay pipe`: standard input to the peer, the peer to standard output.
pub async fn pipe(s: &Settings, target: &RelayTarget, wait: Duration) -> anyhow::Result<()> {
    let (client, session) = open(s, target, wait).await?;
    let result = splice(
        session.sender,
        session.receiver,
        tokio::io::stdin(),
        tokio::io::stdout(),
    )
    .await;
    client.close().await;
    match result {
        Ok(_) => Ok(()),
        Err(reason) => Err(SessionFailed(format!(
            "session {} broke: {}",
            session.id,
            peer_reason(&reason)
        ))
        .into()),
    }
}

/// `relay sessions` (an administrator logged in): the open sessions, one a line: number,
/// demander(user) -> target(user), bytes to the target, bytes to the demander; with `json`,
/// one JSON array.
pub async fn sessions(s: &Settings, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, events) = connect(s, false).await?;
    drain(events);
    login(&client, s).await?;
    let list = client.relay_sessions().await?;
    client.close().await;
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|x| {
                serde_json::json!({
                    "session": x.session,
                    "demander": x.demander.domain,
                    "demander_user": x.demander_user,
                    "target": x.target.domain,
                    "target_user": x.target_user,
                    "started_ms": x.started_ms,
                    "bytes_to_target": x.bytes_to_target,
                    "bytes_to_demander": x.bytes_to_demander,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    let who = |d: &str, u: &str| {
        if u.is_empty() {
            peer(d).into_owned()
        } else {
            format!("{}({})", peer(d), peer(u))
        }
    };
    for x in list {
        writeln!(
            out,
            "{} {} -> {} {} {}",
            x.session,
            who(&x.demander.domain, &x.demander_user),
            who(&x.target.domain, &x.target_user),
            x.bytes_to_target,
            x.bytes_to_demander
        )?;
    }
    Ok(())
}

/// `relay end SESSION` (an administrator logged in): ends a session; both sides are told.
pub async fn end(s: &Settings, session: u64, reason: &str) -> anyhow::Result<()> {
    let (client, events) = connect(s, false).await?;
    drain(events);
    login(&client, s).await?;
    client.end_relay_session(session, reason).await?;
    client.close().await;
    Ok(())
}

/// `logout` (process (22)): ends this device's sessions and connections.
pub async fn logout(s: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, events) = connect(s, false).await?;
    drain(events);
    client.device_logout().await?;
    client.close().await;
    writeln!(out, "{} logged out", s.device)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob("*.osk.mei.co.jp", "sale1.osk.mei.co.jp"));
        assert!(!glob("*.osk.mei.co.jp", "sale1.hqs.mei.co.jp"));
        assert!(glob("sale?.*", "sale2.hqs"));
        assert!(glob("10[0-9]1", "1001"));
        assert!(!glob("10[!0]1", "1001"));
        assert!(glob("*", ""));
        assert!(!glob("a", "ab"));
    }

    #[test]
    fn page_headers_are_checked() {
        assert_eq!(parse_header("page 1 2 300 5"), Some((1, 2, 300, 5)));
        assert_eq!(parse_header("page 3 2 300 5"), None);
        assert_eq!(parse_header("page 1 2 300 5 x"), None);
        assert_eq!(parse_header("page 1 2 99999999999999 5"), None);
        assert_eq!(parse_header("page 1 2 3 999"), None);
    }
}
