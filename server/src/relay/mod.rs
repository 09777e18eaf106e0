//! Real-time sessions between terminals behind NAT (seed 004, processes (6)–(24)).
//!
//! Every terminal keeps its outbound, authenticated connection; this module pairs two of
//! them by ID. A connection says it takes demands ([`Relay::listen`]); another demands a
//! connection by device domain or user ID ([`Relay::demand`]); the target is told
//! ([`ServerMsg::Demanded`]) and answers ([`Relay::answer`]); the answer goes back to the
//! demander. An accepted demand opens a session whose data the server relays both ways
//! ([`Relay::data`]) until either side ends it, a connection ends, the device logs out, or an
//! administrator ends it. Every session is journalled ([`journal`]).
//!
//! # Flow control
//!
//! Each side grants its peer a window of bytes (in the demand, the answer, and then
//! [`ClientMsg::RelayCredit`](imagecast_shared::msg::ClientMsg::RelayCredit) as it consumes
//! data). The server forwards a side's data only within what the other side granted and
//! drops a session whose sender oversteps it, so it never holds more than one window per
//! session and direction, and it never waits: the reader of a connection that sends data
//! puts the frame in the receiver's outbox and reads on. A stalled receiver stops granting,
//! which stops its own sender only; other sessions flow on.
//!
//! # Layout
//! - this module: [`Relay`], the connections taking part, the demands and the sessions;
//! - [`journal`]: the `relay_sessions` table, written in order by one task.

pub mod journal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::RequestId;
use imagecast_shared::domain::domain_key;
use imagecast_shared::frame::OutFrame;
use imagecast_shared::limits::{CHUNK_SIZE, MAX_REASON, MAX_RELAY_WINDOW};
use imagecast_shared::msg::{
    Destination, ErrorCode, ErrorInfo, Presence, RelayTarget, ServerMsg, SessionInfo,
};
use imagecast_shared::text;

use self::journal::{Entry, Journal, SessionRow};
use crate::net::outbox::{ConnHandle, ConnId};
use crate::net::registry::ConnView;
use crate::store::db::now_ms;

/// Most sessions one connection holds at once.
pub const MAX_SESSIONS_PER_CONN: usize = 16;
/// Most unanswered demands one connection has made at once.
pub const MAX_DEMANDS_PER_CONN: usize = 4;
/// An open session's bytes are journalled each time one direction passes a multiple of this.
pub const PROGRESS_STEP: u64 = 16 << 20;
/// How long a demand waits for its answer unless the server is told otherwise.
pub const DEMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Who a connection taking part in the relay is.
#[derive(Clone, Debug)]
pub struct Party {
    /// The connection.
    pub conn: ConnHandle,
    /// Its device: domain and destination name.
    pub device: Destination,
    /// The user logged in on it ("" when none).
    pub user: String,
}

/// A connection the relay knows: it listens for demands, demanded, or is in a session.
struct Known {
    party: Party,
    listening: bool,
    /// Its open sessions.
    sessions: Vec<u64>,
    /// The demand it was asked and has not answered.
    asked: Option<u64>,
    /// The demands it made that are unanswered.
    demanding: Vec<u64>,
}

struct Demand {
    demander: ConnId,
    request: RequestId,
    window: u32,
    target: ConnId,
}

/// One side of a session.
struct Side {
    conn: ConnHandle,
    device: Destination,
    user: String,
    /// Bytes this side may still send (what its peer granted and it has not used).
    credit: u64,
    /// Bytes this side has sent.
    sent: u64,
}

struct Live {
    /// The demander.
    a: Side,
    /// The target.
    b: Side,
    started_ms: i64,
}

impl Live {
    /// (this side, the other) for a connection of the session.
    fn sides(&mut self, conn: ConnId) -> Option<(&mut Side, &mut Side)> {
        if self.a.conn.id == conn {
            Some((&mut self.a, &mut self.b))
        } else if self.b.conn.id == conn {
            Some((&mut self.b, &mut self.a))
        } else {
            None
        }
    }
}

#[derive(Default)]
struct Inner {
    known: HashMap<ConnId, Known>,
    demands: HashMap<u64, Demand>,
    sessions: HashMap<u64, Live>,
    next_demand: u64,
    next_session: u64,
}

impl Inner {
    fn known(&mut self, party: &Party) -> &mut Known {
        let k = self.known.entry(party.conn.id).or_insert_with(|| Known {
            party: party.clone(),
            listening: false,
            sessions: Vec::new(),
            asked: None,
            demanding: Vec::new(),
        });
        // The user may have logged in or out since.
        k.party.user = party.user.clone();
        k
    }

    /// Forgets a connection that takes no more part.
    fn forget_if_idle(&mut self, conn: ConnId) {
        if self.known.get(&conn).is_some_and(|k| {
            !k.listening && k.sessions.is_empty() && k.asked.is_none() && k.demanding.is_empty()
        }) {
            self.known.remove(&conn);
        }
    }

    fn vacant(&self, conn: ConnId) -> bool {
        self.known
            .get(&conn)
            .is_some_and(|k| k.listening && k.sessions.is_empty() && k.asked.is_none())
    }
}

/// The relay: one per server.
pub struct Relay {
    inner: Mutex<Inner>,
    demand_timeout: Duration,
    journal: Journal,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn err(code: ErrorCode, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        code,
        field: None,
        message: message.into(),
    }
}

/// Peer text as the server keeps and passes it on: cut to [`MAX_REASON`] bytes, control
/// characters and bidirectional overrides escaped.
pub fn bounded(reason: &str) -> String {
    let cut = text::truncate(reason, MAX_REASON);
    let mut kept = text::escape(cut).into_owned();
    if cut.len() < reason.len() {
        kept.push_str(" (cut)");
    }
    kept
}

/// Sends a message the connection's version knows (nothing otherwise).
fn tell(conn: &ConnHandle, msg: &ServerMsg) {
    if !conn.speaks(msg) {
        return;
    }
    if let Ok(frame) = OutFrame::encode(msg) {
        conn.push(frame);
    }
}

/// Sends a session frame behind the session's data.
fn tell_in_order(conn: &ConnHandle, msg: &ServerMsg) {
    if !conn.speaks(msg) {
        return;
    }
    if let Ok(frame) = OutFrame::encode(msg) {
        conn.push_relay(frame);
    }
}

fn name_of(target: &RelayTarget) -> String {
    match target {
        RelayTarget::Device(d) => text::escape_bounded(d, 255).into_owned(),
        RelayTarget::User(u) => format!("user {}", text::escape_bounded(u, 255)),
    }
}

impl Relay {
    /// A relay whose demands expire after `demand_timeout`, journalling through `journal`;
    /// session numbers go on after `last_session`.
    pub fn new(demand_timeout: Duration, journal: Journal, last_session: u64) -> Relay {
        Relay {
            inner: Mutex::new(Inner {
                next_session: last_session,
                ..Inner::default()
            }),
            demand_timeout,
            journal,
        }
    }

    /// The devices online now, from the registry's `connections`, with their relay state, in
    /// domain order; as many as fit in one frame ([`imagecast_shared::limits::MAX_FRAME`]).
    pub fn who(&self, connections: &[ConnView]) -> Vec<Presence> {
        let inner = lock(&self.inner);
        let mut by_domain: std::collections::BTreeMap<&str, Presence> = Default::default();
        for c in connections {
            let p = by_domain
                .entry(c.domain.as_str())
                .or_insert_with(|| Presence {
                    domain: c.domain.clone(),
                    name: c.name.clone(),
                    users: Vec::new(),
                    in_session: false,
                    takes_demands: false,
                    older: true,
                });
            if let Some(u) = &c.user {
                if !p.users.contains(u) {
                    p.users.push(u.clone());
                }
            }
            if c.conn.version >= 2 {
                p.older = false;
            }
            if let Some(k) = inner.known.get(&c.conn.id) {
                p.in_session |= !k.sessions.is_empty();
                p.takes_demands |= k.listening;
            }
        }
        // The reply must fit in one frame: the first devices by domain, as many as fit.
        let mut room = imagecast_shared::limits::MAX_FRAME - 64 * 1024;
        let total = by_domain.len();
        let list: Vec<Presence> = by_domain
            .into_values()
            .take_while(|p| {
                let size = 16
                    + p.domain.len()
                    + p.name.len()
                    + p.users.iter().map(|u| u.len() + 2).sum::<usize>();
                room = room.saturating_sub(size);
                room > 0
            })
            .collect();
        if list.len() < total {
            tracing::warn!(
                shown = list.len(),
                total,
                "the who list is cut to fit one frame"
            );
        }
        list
    }

    /// The connection takes demands from now on.
    pub fn listen(&self, party: &Party) {
        lock(&self.inner).known(party).listening = true;
    }

    /// A demand from `party` (request `request`) for `target`, among the connections now
    /// online. Ok when the target was asked: the answer comes later, as the request's reply.
    pub fn demand(
        self: &Arc<Self>,
        party: &Party,
        request: RequestId,
        target: &RelayTarget,
        window: u32,
        online: &[ConnView],
    ) -> Result<(), ErrorInfo> {
        if window == 0 || window > MAX_RELAY_WINDOW {
            return Err(ErrorInfo {
                code: ErrorCode::BadRequest,
                field: Some("window".into()),
                message: format!("the window must be 1 to {MAX_RELAY_WINDOW} bytes"),
            });
        }
        let shown = name_of(target);
        let candidates: Vec<&ConnView> = match target {
            RelayTarget::Device(d) => {
                let key = domain_key(d);
                online
                    .iter()
                    .filter(|c| c.domain == *key && c.conn.id != party.conn.id)
                    .collect()
            }
            RelayTarget::User(u) => online
                .iter()
                .filter(|c| c.user.as_deref() == Some(u.as_str()) && c.conn.id != party.conn.id)
                .collect(),
        };
        if candidates.is_empty() {
            return Err(err(
                ErrorCode::NotOnline,
                match target {
                    RelayTarget::Device(_) => format!("{shown} is not online"),
                    RelayTarget::User(_) => {
                        format!("{shown} is not logged in at any terminal online")
                    }
                },
            ));
        }
        let mut inner = lock(&self.inner);
        {
            let me = inner.known(party);
            if me.demanding.len() >= MAX_DEMANDS_PER_CONN {
                return Err(err(
                    ErrorCode::TooLarge,
                    format!(
                        "this connection already waits for {MAX_DEMANDS_PER_CONN} answers to connection demands"
                    ),
                ));
            }
            if me.sessions.len() >= MAX_SESSIONS_PER_CONN {
                return Err(err(
                    ErrorCode::TooLarge,
                    format!(
                        "this connection already holds {MAX_SESSIONS_PER_CONN} sessions; open another connection"
                    ),
                ));
            }
        }
        let vacant = candidates.iter().find(|c| inner.vacant(c.conn.id));
        let Some(target_conn) = vacant.map(|c| (*c).clone()) else {
            let listening = candidates
                .iter()
                .any(|c| inner.known.get(&c.conn.id).is_some_and(|k| k.listening));
            let result = if listening {
                err(
                    ErrorCode::Busy,
                    format!("{shown} is busy in a session and keeps no vacant connection"),
                )
            } else if candidates.iter().all(|c| c.conn.version < 2) {
                err(
                    ErrorCode::OlderTerminal,
                    format!("{shown} runs an older imagecast that cannot take real-time sessions"),
                )
            } else {
                err(
                    ErrorCode::NotOnline,
                    format!(
                        "{shown} is online but takes no connection demands (no `imagecast relay listen` runs there)"
                    ),
                )
            };
            inner.forget_if_idle(party.conn.id);
            return Err(result);
        };
        inner.next_demand += 1;
        let id = inner.next_demand;
        inner.demands.insert(
            id,
            Demand {
                demander: party.conn.id,
                request,
                window,
                target: target_conn.conn.id,
            },
        );
        inner.known(party).demanding.push(id);
        if let Some(k) = inner.known.get_mut(&target_conn.conn.id) {
            k.asked = Some(id);
        }
        drop(inner);
        tracing::info!(
            demand = id,
            from = %party.device.domain,
            to = %target_conn.domain,
            "connection demand"
        );
        tell(
            &target_conn.conn,
            &ServerMsg::Demanded {
                demand: id,
                from: party.device.clone(),
                user: party.user.clone(),
                expires_ms: self.demand_timeout.as_millis().min(u32::MAX as u128) as u32,
            },
        );
        let relay = Arc::clone(self);
        let timeout = self.demand_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            relay.expire(id);
        });
        Ok(())
    }

    /// A demand nobody answered in time: the demander hears [`ErrorCode::Expired`], the
    /// target that it is withdrawn.
    fn expire(&self, id: u64) {
        let mut inner = lock(&self.inner);
        let Some(d) = self.take_demand(&mut inner, id) else {
            return;
        };
        let target = inner.known.get(&d.target).map(|k| k.party.clone());
        let demander = inner.known.get(&d.demander).map(|k| k.party.conn.clone());
        inner.forget_if_idle(d.target);
        inner.forget_if_idle(d.demander);
        drop(inner);
        let secs = self.demand_timeout.as_secs();
        if let Some(t) = &target {
            tell(
                &t.conn,
                &ServerMsg::DemandWithdrawn {
                    demand: id,
                    reason: format!("nobody answered within {secs} s"),
                },
            );
        }
        if let Some(conn) = demander {
            let who = target.map(|t| t.device.domain).unwrap_or_default();
            tell(
                &conn,
                &ServerMsg::Error {
                    id: Some(d.request),
                    error: err(
                        ErrorCode::Expired,
                        format!("{who} did not answer the connection demand within {secs} s"),
                    ),
                },
            );
        }
    }

    /// Removes a demand and its marks on both connections.
    fn take_demand(&self, inner: &mut Inner, id: u64) -> Option<Demand> {
        let d = inner.demands.remove(&id)?;
        if let Some(k) = inner.known.get_mut(&d.target) {
            if k.asked == Some(id) {
                k.asked = None;
            }
        }
        if let Some(k) = inner.known.get_mut(&d.demander) {
            k.demanding.retain(|x| *x != id);
        }
        Some(d)
    }

    /// The target's answer to demand `demand`. Accepted: the session opens and the reply is
    /// [`ServerMsg::SessionOpen`]; rejected: [`ServerMsg::Ok`], and the demander hears the
    /// reason.
    pub fn answer(
        &self,
        party: &Party,
        request: RequestId,
        demand: u64,
        accept: bool,
        reason: &str,
        window: u32,
    ) -> Result<ServerMsg, ErrorInfo> {
        if accept && (window == 0 || window > MAX_RELAY_WINDOW) {
            return Err(ErrorInfo {
                code: ErrorCode::BadRequest,
                field: Some("window".into()),
                message: format!("the window must be 1 to {MAX_RELAY_WINDOW} bytes"),
            });
        }
        let mut inner = lock(&self.inner);
        if inner
            .demands
            .get(&demand)
            .is_none_or(|d| d.target != party.conn.id)
        {
            return Err(err(
                ErrorCode::UnknownSession,
                format!(
                    "connection demand {demand} is not waiting for this terminal's answer (it expired, or its demander left)"
                ),
            ));
        }
        let Some(d) = self.take_demand(&mut inner, demand) else {
            return Err(err(ErrorCode::UnknownSession, "no such demand"));
        };
        inner.known(party);
        let Some(demander) = inner.known.get(&d.demander).map(|k| k.party.clone()) else {
            inner.forget_if_idle(party.conn.id);
            return Err(err(
                ErrorCode::UnknownSession,
                "the demanding terminal is gone",
            ));
        };
        if !accept {
            inner.forget_if_idle(party.conn.id);
            inner.forget_if_idle(d.demander);
            drop(inner);
            let reason = bounded(reason);
            let because = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            tracing::info!(demand, by = %party.device.domain, %reason, "connection demand rejected");
            tell(
                &demander.conn,
                &ServerMsg::Error {
                    id: Some(d.request),
                    error: err(
                        ErrorCode::Rejected,
                        format!(
                            "{} rejected the connection demand{because}",
                            party.device.domain
                        ),
                    ),
                },
            );
            return Ok(ServerMsg::Ok { id: request });
        }
        inner.next_session += 1;
        let session = inner.next_session;
        let started_ms = now_ms();
        inner.sessions.insert(
            session,
            Live {
                a: Side {
                    conn: demander.conn.clone(),
                    device: demander.device.clone(),
                    user: demander.user.clone(),
                    credit: u64::from(window),
                    sent: 0,
                },
                b: Side {
                    conn: party.conn.clone(),
                    device: party.device.clone(),
                    user: party.user.clone(),
                    credit: u64::from(d.window),
                    sent: 0,
                },
                started_ms,
            },
        );
        for c in [d.demander, party.conn.id] {
            if let Some(k) = inner.known.get_mut(&c) {
                k.sessions.push(session);
            }
        }
        drop(inner);
        self.journal.record(Entry::Started(SessionRow {
            session,
            demander: demander.device.domain.clone(),
            demander_user: demander.user.clone(),
            target: party.device.domain.clone(),
            target_user: party.user.clone(),
            started_ms,
            ended_ms: None,
            bytes_to_target: 0,
            bytes_to_demander: 0,
            end_reason: None,
        }));
        tracing::info!(session, from = %demander.device.domain, to = %party.device.domain, "session open");
        tell(
            &demander.conn,
            &ServerMsg::SessionOpen {
                id: d.request,
                session,
                peer: party.device.clone(),
                peer_user: party.user.clone(),
                credit: window,
            },
        );
        Ok(ServerMsg::SessionOpen {
            id: request,
            session,
            peer: demander.device,
            peer_user: demander.user,
            credit: d.window,
        })
    }

    /// Session data from `conn`: relayed within the credit its peer granted. Data for a
    /// session that is not (or no longer) this connection's is dropped; data beyond the
    /// credit ends the session.
    pub fn data(&self, conn: ConnId, session: u64, data: Bytes) {
        let mut inner = lock(&self.inner);
        let Some(live) = inner.sessions.get_mut(&session) else {
            return;
        };
        let me_is_demander = live.a.conn.id == conn;
        let Some((me, peer)) = live.sides(conn) else {
            return;
        };
        let len = data.len() as u64;
        if data.len() > CHUNK_SIZE || len > me.credit {
            let reason = format!(
                "{} sent {len} bytes where its peer had granted {}",
                me.device.domain, me.credit
            );
            drop(inner);
            self.end(session, &reason, None);
            return;
        }
        me.credit -= len;
        me.sent += len;
        let totals = if me_is_demander {
            (me.sent, peer.sent)
        } else {
            (peer.sent, me.sent)
        };
        let progress =
            (me.sent / PROGRESS_STEP != (me.sent - len) / PROGRESS_STEP).then_some(totals);
        let frame = OutFrame::encode_with_data(
            &ServerMsg::RelayData {
                session,
                data: Bytes::new(),
            },
            data,
        );
        if let Ok(frame) = frame {
            peer.conn.push_relay(frame);
        }
        if let Some((bytes_to_target, bytes_to_demander)) = progress {
            self.journal.record(Entry::Progress {
                session,
                bytes_to_target,
                bytes_to_demander,
            });
        }
    }

    /// `conn` consumed `bytes` of the session's data: its peer may send that much more.
    pub fn credit(&self, conn: ConnId, session: u64, bytes: u32) {
        let mut inner = lock(&self.inner);
        let Some(live) = inner.sessions.get_mut(&session) else {
            return;
        };
        let Some((_, peer)) = live.sides(conn) else {
            return;
        };
        peer.credit = (peer.credit + u64::from(bytes)).min(u64::from(MAX_RELAY_WINDOW));
        tell(&peer.conn, &ServerMsg::RelayCredit { session, bytes });
    }

    /// `conn` sends no more data in the session: its peer is told, after the data.
    pub fn eof(&self, conn: ConnId, session: u64) {
        let mut inner = lock(&self.inner);
        let Some(live) = inner.sessions.get_mut(&session) else {
            return;
        };
        let Some((_, peer)) = live.sides(conn) else {
            return;
        };
        tell_in_order(&peer.conn, &ServerMsg::RelayEof { session });
    }

    /// `conn` ends the session: its peer is told why.
    pub fn end_by(&self, party: &Party, session: u64, reason: &str) {
        let owned = lock(&self.inner)
            .sessions
            .get_mut(&session)
            .is_some_and(|l| l.sides(party.conn.id).is_some());
        if owned {
            let reason = bounded(reason);
            let text = if reason.is_empty() {
                format!("{} ended the session", party.device.domain)
            } else {
                format!("{} ended the session: {reason}", party.device.domain)
            };
            self.end(session, &text, Some(party.conn.id));
        }
    }

    /// Ends a session with `reason`, telling each side except `quiet`; both connections are
    /// vacant again. Returns false when there was no such session.
    pub fn end(&self, session: u64, reason: &str, quiet: Option<ConnId>) -> bool {
        let mut inner = lock(&self.inner);
        let Some(live) = inner.sessions.remove(&session) else {
            return false;
        };
        for side in [&live.a, &live.b] {
            if let Some(k) = inner.known.get_mut(&side.conn.id) {
                k.sessions.retain(|s| *s != session);
            }
        }
        inner.forget_if_idle(live.a.conn.id);
        inner.forget_if_idle(live.b.conn.id);
        drop(inner);
        tracing::info!(session, %reason, "session ended");
        for side in [&live.a, &live.b] {
            if Some(side.conn.id) != quiet {
                tell_in_order(
                    &side.conn,
                    &ServerMsg::SessionEnded {
                        session,
                        reason: reason.to_owned(),
                    },
                );
            }
        }
        self.journal.record(Entry::Ended {
            session,
            bytes_to_target: live.a.sent,
            bytes_to_demander: live.b.sent,
            reason: reason.to_owned(),
        });
        true
    }

    /// A connection ended (`why`): its sessions end with the reason to each peer, its
    /// unanswered demands are withdrawn, and a demand it was asked is answered for it.
    pub fn detach(&self, conn: ConnId, why: &str) {
        let mut inner = lock(&self.inner);
        let Some(k) = inner.known.remove(&conn) else {
            return;
        };
        let domain = k.party.device.domain.clone();
        let mut tell_later: Vec<(ConnHandle, ServerMsg)> = Vec::new();
        if let Some(id) = k.asked {
            if let Some(d) = inner.demands.remove(&id) {
                if let Some(dk) = inner.known.get_mut(&d.demander) {
                    dk.demanding.retain(|x| *x != id);
                    tell_later.push((
                        dk.party.conn.clone(),
                        ServerMsg::Error {
                            id: Some(d.request),
                            error: err(
                                ErrorCode::NotOnline,
                                format!("{domain} went offline before it answered ({why})"),
                            ),
                        },
                    ));
                }
                inner.forget_if_idle(d.demander);
            }
        }
        for id in &k.demanding {
            if let Some(d) = inner.demands.remove(id) {
                if let Some(tk) = inner.known.get_mut(&d.target) {
                    tk.asked = None;
                    tell_later.push((
                        tk.party.conn.clone(),
                        ServerMsg::DemandWithdrawn {
                            demand: *id,
                            reason: format!("{domain} left before the answer ({why})"),
                        },
                    ));
                }
                inner.forget_if_idle(d.target);
            }
        }
        drop(inner);
        for (c, msg) in tell_later {
            tell(&c, &msg);
        }
        let reason = format!("the connection of {domain} ended: {why}");
        for s in k.sessions {
            self.end(s, &reason, Some(conn));
        }
    }

    /// Ends every session of the device `domain` (it logs out, process (22)) with `reason`
    /// to each peer. Returns how many.
    pub fn end_device(&self, domain: &str, reason: &str) -> usize {
        let key = domain_key(domain);
        let sessions: Vec<u64> = lock(&self.inner)
            .known
            .values()
            .filter(|k| domain_key(&k.party.device.domain) == key)
            .flat_map(|k| k.sessions.iter().copied())
            .collect();
        sessions
            .into_iter()
            .filter(|s| self.end(*s, reason, None))
            .count()
    }

    /// The open sessions, oldest first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let inner = lock(&self.inner);
        let mut out: Vec<SessionInfo> = inner
            .sessions
            .iter()
            .map(|(id, l)| SessionInfo {
                session: *id,
                demander: l.a.device.clone(),
                demander_user: l.a.user.clone(),
                target: l.b.device.clone(),
                target_user: l.b.user.clone(),
                started_ms: l.started_ms.max(0) as u64,
                bytes_to_target: l.a.sent,
                bytes_to_demander: l.b.sent,
            })
            .collect();
        out.sort_by_key(|s| s.session);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::net::outbox::Next;

    fn party(id: ConnId, domain: &str) -> Party {
        Party {
            conn: ConnHandle::new(id, CancellationToken::new()),
            device: Destination {
                domain: domain.into(),
                name: domain.to_uppercase(),
            },
            user: "u".into(),
        }
    }

    fn view(p: &Party) -> ConnView {
        ConnView {
            conn: p.conn.clone(),
            domain: p.device.domain.clone(),
            name: p.device.name.clone(),
            user: Some(p.user.clone()),
        }
    }

    fn drain(conn: &ConnHandle) -> Vec<ServerMsg> {
        let mut out = Vec::new();
        while let Next::Frame(f) = conn.outbox.pop() {
            let mut buf = f.into_buf();
            let n = bytes::Buf::remaining(&buf);
            let bytes = bytes::Buf::copy_to_bytes(&mut buf, n);
            out.push(imagecast_shared::frame::decode_server_msg(bytes.slice(4..)).unwrap());
        }
        out
    }

    fn relay() -> Arc<Relay> {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        std::mem::forget(_rx);
        Arc::new(Relay::new(
            Duration::from_secs(30),
            Journal::for_tests(tx),
            0,
        ))
    }

    #[tokio::test]
    async fn data_beyond_the_granted_window_is_never_queued() {
        let relay = relay();
        let a = party(1, "a.example");
        let b = party(2, "b.example");
        relay.listen(&b);
        let online = [view(&a), view(&b)];
        relay
            .demand(
                &a,
                7,
                &RelayTarget::Device("B.example".into()),
                1000,
                &online,
            )
            .unwrap();
        let demanded = drain(&b.conn);
        let ServerMsg::Demanded { demand, .. } = demanded[0] else {
            panic!("{demanded:?}")
        };
        // The target is busy now: a second demand hears so at once.
        let c = party(3, "c.example");
        let busy = relay
            .demand(&c, 1, &RelayTarget::Device("b.example".into()), 10, &online)
            .unwrap_err();
        assert_eq!(busy.code, ErrorCode::Busy);
        let open = relay.answer(&b, 9, demand, true, "", 100).unwrap();
        assert!(matches!(open, ServerMsg::SessionOpen { credit: 1000, .. }));
        let msgs = drain(&a.conn);
        let ServerMsg::SessionOpen {
            session, credit, ..
        } = msgs[0]
        else {
            panic!("{msgs:?}")
        };
        assert_eq!(credit, 100);
        relay.data(1, session, Bytes::from(vec![1u8; 60]));
        relay.data(1, session, Bytes::from(vec![2u8; 40]));
        assert_eq!(drain(&b.conn).len(), 2);
        // One byte more than granted ends the session for both.
        relay.data(1, session, Bytes::from(vec![3u8; 1]));
        assert!(relay.sessions().is_empty());
        let ended = drain(&b.conn);
        assert!(
            matches!(&ended[..], [ServerMsg::SessionEnded { reason, .. }] if reason.contains("granted")),
            "{ended:?}"
        );
    }

    #[test]
    fn who_fits_in_one_frame_however_many_are_online() {
        let relay = relay();
        let online: Vec<ConnView> = (0..20_000u64)
            .map(|i| {
                let mut p = party(i + 1, &format!("{i:06}.{}", "d".repeat(200)));
                p.user = "u".repeat(200);
                view(&p)
            })
            .collect();
        let list = relay.who(&online);
        assert!(!list.is_empty() && list.len() < online.len());
        let frame = OutFrame::encode(&ServerMsg::Who {
            id: 1,
            terminals: list,
        })
        .unwrap();
        assert!(frame.wire_len() <= imagecast_shared::limits::MAX_FRAME);
    }
}
