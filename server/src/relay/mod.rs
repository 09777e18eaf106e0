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
//! - this module: [`Relay`], the connections taking part and who is online;
//! - `demand.rs`: demands, answers and expiry;
//! - `session.rs`: relayed data and credit, ends, detaching connections, logout, the list;
//! - [`journal`]: the `relay_sessions` table, written in order by one task.

mod demand;
pub mod journal;
mod session;

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
