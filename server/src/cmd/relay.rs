//! Relay requests (seed 004): who is online, listening for and making connection demands,
//! answers, session data, ends, the device's logout, and the administrator's session list.
//! The work is [`crate::relay::Relay`]'s; this only checks the fields and names the party.

use bytes::Bytes;
use imagecast_shared::RequestId;
use imagecast_shared::msg::{Destination, ErrorCode, ErrorInfo, RelayTarget, ServerMsg};

use super::{Session, check_name, error};
use crate::relay::Party;

impl Session {
    /// This connection as the relay names it.
    fn party(&self) -> Party {
        Party {
            conn: self.conn.clone(),
            device: Destination {
                domain: self.device.domain.clone(),
                name: self.device.name.clone(),
            },
            user: self
                .user
                .as_ref()
                .map(|(u, _)| u.clone())
                .unwrap_or_default(),
        }
    }

    pub(super) fn who(&self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        let online = self.state.connections.snapshot();
        Ok(ServerMsg::Who {
            id,
            terminals: self.state.relay.who(&online),
        })
    }

    pub(super) fn relay_listen(&self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        self.state.relay.listen(&self.party());
        Ok(ServerMsg::Ok { id })
    }

    pub(super) fn demand(
        &self,
        id: RequestId,
        target: &RelayTarget,
        window: u32,
    ) -> Result<(), ErrorInfo> {
        match target {
            RelayTarget::Device(d) => check_name("device", d)?,
            RelayTarget::User(u) => check_name("user", u)?,
        }
        let online = self.state.connections.snapshot();
        self.state
            .relay
            .demand(&self.party(), id, target, window, &online)
    }

    pub(super) fn answer(
        &self,
        id: RequestId,
        demand: u64,
        accept: bool,
        reason: &str,
        window: u32,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.state
            .relay
            .answer(&self.party(), id, demand, accept, reason, window)
    }

    pub(super) fn relay_data(&self, session: u64, data: Bytes) {
        self.state.relay.data(self.conn.id, session, data);
    }

    pub(super) fn relay_credit(&self, session: u64, bytes: u32) {
        self.state.relay.credit(self.conn.id, session, bytes);
    }

    pub(super) fn relay_eof(&self, session: u64) {
        self.state.relay.eof(self.conn.id, session);
    }

    pub(super) fn relay_end(&self, session: u64, reason: &str) {
        self.state.relay.end_by(&self.party(), session, reason);
    }

    /// Process (22)–(24): the device's sessions end with a reason to each peer; its other
    /// connections hear that it logged out; then every connection of it closes, this one
    /// once the reply is out.
    pub(super) fn device_logout(&self, id: RequestId) {
        let domain = self.device.domain.clone();
        let ended = self
            .state
            .relay
            .end_device(&domain, &format!("{domain} logged out"));
        tracing::info!(device = %domain, sessions = ended, "device logged out");
        let key = imagecast_shared::domain::domain_key(&domain).into_owned();
        for c in self.state.connections.snapshot() {
            if c.domain != key {
                continue;
            }
            if c.conn.id != self.conn.id {
                let msg = ServerMsg::LoggedOut {
                    reason: format!("{domain} logged out on another connection"),
                };
                if c.conn.speaks(&msg) {
                    if let Ok(f) = imagecast_shared::frame::OutFrame::encode(&msg) {
                        c.conn.push(f);
                    }
                }
            }
            // The writer sends what control frames are queued (this reply, the notice
            // above), then stops.
            if c.conn.id != self.conn.id {
                c.conn.cancel();
            }
        }
        if let Ok(f) = imagecast_shared::frame::OutFrame::encode(&ServerMsg::Ok { id }) {
            self.conn.push(f);
        }
        self.conn.cancel();
    }

    pub(super) fn list_sessions(&self, id: RequestId) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("listing relay sessions")?;
        Ok(ServerMsg::Sessions {
            id,
            sessions: self.state.relay.sessions(),
        })
    }

    pub(super) fn admin_end_session(
        &self,
        id: RequestId,
        session: u64,
        reason: &str,
    ) -> Result<ServerMsg, ErrorInfo> {
        self.require_admin("ending a relay session")?;
        let reason = crate::relay::bounded(reason);
        let text = if reason.is_empty() {
            "an administrator ended the session".to_owned()
        } else {
            format!("an administrator ended the session: {reason}")
        };
        if self.state.relay.end(session, &text, None) {
            Ok(ServerMsg::Ok { id })
        } else {
            Err(error(
                ErrorCode::UnknownSession,
                Some("session"),
                format!("no relay session {session} is open"),
            ))
        }
    }
}
