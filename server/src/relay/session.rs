//! Open sessions (seed 004, processes (15)–(24)): data relayed within each side's credit,
//! ends by either side or an administrator, connections that go away, a device's logout,
//! and the list of sessions.

use super::journal::Outcome;
use super::*;

impl Relay {
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
        // Demands that end unanswered here, for the journal: demander, target, reason.
        let mut withdrawn: Vec<(Party, Party, String)> = Vec::new();
        if let Some(id) = k.asked {
            if let Some(d) = inner.demands.remove(&id) {
                if let Some(dk) = inner.known.get_mut(&d.demander) {
                    dk.demanding.retain(|x| *x != id);
                    withdrawn.push((
                        dk.party.clone(),
                        k.party.clone(),
                        format!("{domain} went offline before it answered ({why})"),
                    ));
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
                    withdrawn.push((
                        k.party.clone(),
                        tk.party.clone(),
                        format!("{domain} left before the answer ({why})"),
                    ));
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
        for (demander, target, reason) in withdrawn {
            self.refused(
                &demander,
                target.device.domain,
                target.user,
                Outcome::Withdrawn,
                &reason,
            );
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
