//! Real-time sessions from the PC client (seed 004): `who`, `relay send`, `relay listen`,
//! `relay pipe`, `logout`.
//!
//! A session carries bytes; `relay send`, `relay listen` and the panel exchange pages on it
//! both ways ([`pages`]: the form, and the exchange either end runs). The demander ends the
//! session once every page is confirmed and the peer is done. `relay pipe` and `relay listen
//! --forward` carry any byte stream: the end of one side's input half-closes the session
//! toward the other ([`splice`]).
//!
//! - this module: `who`, opening a session, the administrator's `sessions` and `end`,
//!   `logout`;
//! - [`pages`]: pages both ways in a session; `send.rs`: `relay send`; `listen.rs`: `relay
//!   listen`; `pipe.rs`: `relay pipe` and [`splice`].

mod listen;
pub mod pages;
mod pipe;
mod send;

pub use listen::{ListenArgs, Policy, accept_all, glob, listen};
pub use pipe::{pipe, splice};
pub use send::send;

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
pub(crate) async fn open(
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
