//! Real-time sessions through the server (seed 004): who is online, connection demands and
//! their answers, session data both ways with credit-based flow control, ends, and the
//! device's logout.
//!
//! A session is a [`RelaySession`]: a [`SessionSender`] (cheap to clone) that sends only what
//! the peer granted, waiting for more credit otherwise, and a [`SessionReceiver`] that grants
//! the peer more credit as the application takes the data. Data the application has not
//! taken is never more than the window this side granted, so a slow reader holds up its own
//! peer and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

use super::{Client, ClientError};
use crate::frame::OutFrame;
use crate::limits::{CHUNK_SIZE, RELAY_WINDOW};
use crate::msg::{ClientMsg, Destination, Presence, RelayTarget, ServerMsg, SessionInfo};

/// A connection demand made to this terminal ([`super::Event::Demanded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingDemand {
    /// The demand's number, to answer with [`Client::answer`].
    pub demand: u64,
    /// The demanding terminal.
    pub from: Destination,
    /// The user logged in there ("" when none).
    pub user: String,
    /// How long it waits for the answer.
    pub expires: Duration,
}

/// What arrives for one session.
#[derive(Debug)]
enum Inbound {
    Data(Bytes),
    Eof,
    Ended(String),
}

/// The send side's credit and the session's end, shared with the connection's reader.
#[derive(Debug, Default)]
struct Flow {
    state: Mutex<FlowState>,
    more: Notify,
}

#[derive(Debug, Default)]
struct FlowState {
    credit: u64,
    ended: Option<String>,
}

impl Flow {
    fn lock(&self) -> std::sync::MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn end(&self, reason: &str) {
        let mut s = self.lock();
        if s.ended.is_none() {
            s.ended = Some(reason.to_owned());
        }
        drop(s);
        self.more.notify_waiters();
    }
}

struct Link {
    tx: mpsc::UnboundedSender<Inbound>,
    flow: Arc<Flow>,
}

/// A session's inbound queue and flow, until the call that opened it takes them.
type Fresh = (mpsc::UnboundedReceiver<Inbound>, Arc<Flow>);

/// The sessions of one connection, kept by its reader.
#[derive(Default)]
pub(super) struct Links {
    open: Mutex<HashMap<u64, Link>>,
    /// Sessions just opened, waiting for the call that asked for them.
    fresh: Mutex<HashMap<u64, Fresh>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Links {
    /// For the reader: a session message. Returns the message back when it is not one.
    pub(super) fn handle(&self, msg: ServerMsg) -> Option<ServerMsg> {
        match msg {
            ServerMsg::SessionOpen {
                session, credit, ..
            } => {
                let (tx, rx) = mpsc::unbounded_channel();
                let flow = Arc::new(Flow::default());
                flow.lock().credit = u64::from(credit);
                lock(&self.open).insert(
                    session,
                    Link {
                        tx,
                        flow: flow.clone(),
                    },
                );
                lock(&self.fresh).insert(session, (rx, flow));
                Some(msg)
            }
            ServerMsg::RelayData { session, data } => {
                if let Some(l) = lock(&self.open).get(&session) {
                    let _ = l.tx.send(Inbound::Data(data));
                }
                None
            }
            ServerMsg::RelayCredit { session, bytes } => {
                if let Some(l) = lock(&self.open).get(&session) {
                    l.flow.lock().credit += u64::from(bytes);
                    l.flow.more.notify_waiters();
                }
                None
            }
            ServerMsg::RelayEof { session } => {
                if let Some(l) = lock(&self.open).get(&session) {
                    let _ = l.tx.send(Inbound::Eof);
                }
                None
            }
            ServerMsg::SessionEnded { session, reason } => {
                if let Some(l) = lock(&self.open).remove(&session) {
                    l.flow.end(&reason);
                    let _ = l.tx.send(Inbound::Ended(reason));
                }
                None
            }
            other => Some(other),
        }
    }

    /// For the reader: the connection ended; every session ends with it.
    pub(super) fn close_all(&self, reason: &str) {
        let reason = format!("the connection to the image server was lost: {reason}");
        for (_, l) in lock(&self.open).drain() {
            l.flow.end(&reason);
            let _ = l.tx.send(Inbound::Ended(reason.clone()));
        }
    }

    /// This side ended the session: no more goes to it.
    fn forget(&self, session: u64, reason: &str) {
        if let Some(l) = lock(&self.open).remove(&session) {
            l.flow.end(reason);
        }
    }
}

/// One open real-time session. It stays open until either side ends it
/// ([`SessionSender::end`]) or a connection closes: dropping it does not end it (the peer
/// would wait for credit), so end it before letting go.
#[derive(Debug)]
pub struct RelaySession {
    /// The session's number (as `relay sessions` and the journal show it).
    pub id: u64,
    /// The terminal at the other end.
    pub peer: Destination,
    /// The user logged in there ("" when none).
    pub peer_user: String,
    /// Sends to the peer.
    pub sender: SessionSender,
    /// Receives from the peer.
    pub receiver: SessionReceiver,
}

/// The sending half of a session. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionSender {
    client: Client,
    id: u64,
    flow: Arc<Flow>,
}

/// The receiving half of a session.
#[derive(Debug)]
pub struct SessionReceiver {
    client: Client,
    id: u64,
    rx: mpsc::UnboundedReceiver<Inbound>,
    flow: Arc<Flow>,
    window: u32,
    /// Bytes taken and not yet granted back.
    taken: u32,
    eof: bool,
}

/// Why a session's call failed.
fn ended_error(reason: String) -> ClientError {
    ClientError::SessionEnded(reason)
}

impl SessionSender {
    /// The session's number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The reason the session ended, once it has.
    pub fn ended(&self) -> Option<String> {
        self.flow.lock().ended.clone()
    }

    /// Sends `data` to the peer, in pieces of at most [`CHUNK_SIZE`], each once the peer has
    /// granted room for it. Fails once the session has ended.
    pub async fn send(&self, mut data: Bytes) -> Result<(), ClientError> {
        while !data.is_empty() {
            let n = self.room(data.len().min(CHUNK_SIZE)).await?;
            let piece = data.split_to(n);
            let frame = OutFrame::encode_with_data(
                &ClientMsg::RelayData {
                    session: self.id,
                    data: Bytes::new(),
                },
                piece,
            )?;
            self.client.send_frame(frame).await?;
        }
        Ok(())
    }

    /// Waits until the peer granted at least one byte; takes up to `want` of it.
    async fn room(&self, want: usize) -> Result<usize, ClientError> {
        loop {
            let more = self.flow.more.notified();
            tokio::pin!(more);
            more.as_mut().enable();
            {
                let mut s = self.flow.lock();
                if let Some(reason) = &s.ended {
                    return Err(ended_error(reason.clone()));
                }
                if s.credit > 0 {
                    let n = (s.credit.min(want as u64)) as usize;
                    s.credit -= n as u64;
                    return Ok(n);
                }
            }
            more.await;
        }
    }

    /// This side sends nothing more (a half-close); the peer's data still arrives.
    pub async fn finish(&self) -> Result<(), ClientError> {
        if let Some(reason) = self.ended() {
            return Err(ended_error(reason));
        }
        self.client
            .send(&ClientMsg::RelayEof { session: self.id })
            .await
    }

    /// Ends the session (process (19)); the peer is told `reason`.
    pub async fn end(&self, reason: &str) -> Result<(), ClientError> {
        if self.ended().is_some() {
            return Ok(());
        }
        self.client.shared.relay.forget(
            self.id,
            &format!("this terminal ended the session: {reason}"),
        );
        self.client
            .send(&ClientMsg::RelayEnd {
                session: self.id,
                reason: reason.to_owned(),
            })
            .await
    }
}

impl SessionReceiver {
    /// The next piece of the peer's data; `None` once the peer half-closed (the session may
    /// still carry this side's data). Fails with [`ClientError::SessionEnded`] when the
    /// session ended (the peer or an administrator ended it, the peer's connection broke).
    pub async fn recv(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.eof {
            // Only the end can follow.
            return match self.rx.recv().await {
                Some(Inbound::Ended(reason)) => Err(ended_error(reason)),
                Some(_) => Ok(None),
                None => Err(ended_error(
                    self.flow.lock().ended.clone().unwrap_or_default(),
                )),
            };
        }
        match self.rx.recv().await {
            Some(Inbound::Data(data)) => {
                self.taken += data.len() as u32;
                if self.taken >= self.window / 4 {
                    let bytes = std::mem::take(&mut self.taken);
                    let _ = self
                        .client
                        .send(&ClientMsg::RelayCredit {
                            session: self.id,
                            bytes,
                        })
                        .await;
                }
                Ok(Some(data))
            }
            Some(Inbound::Eof) => {
                self.eof = true;
                Ok(None)
            }
            Some(Inbound::Ended(reason)) => Err(ended_error(reason)),
            None => Err(ended_error(
                self.flow
                    .lock()
                    .ended
                    .clone()
                    .unwrap_or_else(|| "the session ended".into()),
            )),
        }
    }

    /// The session's number.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Client {
    /// The terminals online now (`who`).
    pub async fn who(&self) -> Result<Vec<Presence>, ClientError> {
        match self
            .request("the who list", |id| ClientMsg::Who { id })
            .await?
        {
            ServerMsg::Who { terminals, .. } => Ok(terminals),
            _ => Err(ClientError::Unexpected("the who list")),
        }
    }

    /// This connection takes connection demands from now on; they arrive as
    /// [`super::Event::Demanded`].
    pub async fn relay_listen(&self) -> Result<(), ClientError> {
        match self
            .request("the listen request", |id| ClientMsg::RelayListen { id })
            .await?
        {
            ServerMsg::Ok { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("the listen request")),
        }
    }

    /// Demands a connection to `target` and waits up to `wait` for the answer (the server
    /// gives up on its own after its demand timeout). Rejected, not online, busy or expired:
    /// [`ClientError::Server`] with the reason.
    pub async fn demand(
        &self,
        target: RelayTarget,
        wait: Duration,
    ) -> Result<RelaySession, ClientError> {
        let (id, rx) = self.register_pending()?;
        let sent = self
            .send(&ClientMsg::Demand {
                id,
                target,
                window: RELAY_WINDOW,
            })
            .await;
        if let Err(e) = sent {
            self.shared.lock().waiting.remove(&id);
            return Err(e);
        }
        let reply = tokio::time::timeout(wait, rx)
            .await
            .map_err(|_| ClientError::Timeout("the connection demand"))?
            .map_err(|_| ClientError::Closed(self.shared.closed_reason()))?;
        self.opened(reply, "the connection demand")
    }

    /// Answers a demand: accepted, the session is returned; rejected (`Err(reason)`), `None`.
    pub async fn answer(
        &self,
        demand: u64,
        decision: Result<(), String>,
    ) -> Result<Option<RelaySession>, ClientError> {
        let (accept, reason) = match decision {
            Ok(()) => (true, String::new()),
            Err(r) => (false, r),
        };
        let reply = self
            .request("the answer", |id| ClientMsg::Answer {
                id,
                demand,
                accept,
                reason,
                window: RELAY_WINDOW,
            })
            .await?;
        match reply {
            ServerMsg::Ok { .. } => Ok(None),
            other => self.opened(other, "the answer").map(Some),
        }
    }

    fn opened(&self, reply: ServerMsg, what: &'static str) -> Result<RelaySession, ClientError> {
        match reply {
            ServerMsg::Error { error, .. } => Err(ClientError::Server(error)),
            ServerMsg::SessionOpen {
                session,
                peer,
                peer_user,
                ..
            } => {
                let (rx, flow) = lock(&self.shared.relay.fresh)
                    .remove(&session)
                    .ok_or(ClientError::Unexpected(what))?;
                Ok(RelaySession {
                    id: session,
                    peer,
                    peer_user,
                    sender: SessionSender {
                        client: self.clone(),
                        id: session,
                        flow: flow.clone(),
                    },
                    receiver: SessionReceiver {
                        client: self.clone(),
                        id: session,
                        rx,
                        flow,
                        window: RELAY_WINDOW,
                        taken: 0,
                        eof: false,
                    },
                })
            }
            _ => Err(ClientError::Unexpected(what)),
        }
    }

    /// The device logs out (process (22)): its sessions end, with a reason to each peer, and
    /// the server closes every connection of the device.
    pub async fn device_logout(&self) -> Result<(), ClientError> {
        match self
            .request("the logout", |id| ClientMsg::DeviceLogout { id })
            .await?
        {
            ServerMsg::Ok { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("the logout")),
        }
    }

    /// Admin: the open relay sessions.
    pub async fn relay_sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        match self
            .request("the session list", |id| ClientMsg::ListSessions { id })
            .await?
        {
            ServerMsg::Sessions { sessions, .. } => Ok(sessions),
            _ => Err(ClientError::Unexpected("the session list")),
        }
    }

    /// Admin: ends a relay session; both sides are told `reason`.
    pub async fn end_relay_session(&self, session: u64, reason: &str) -> Result<(), ClientError> {
        match self
            .request("the session end", |id| ClientMsg::EndSession {
                id,
                session,
                reason: reason.to_owned(),
            })
            .await?
        {
            ServerMsg::Ok { .. } => Ok(()),
            _ => Err(ClientError::Unexpected("the session end")),
        }
    }
}
