//! Connection demands (seed 004, processes (6)–(14)): a demand by device or user, the
//! target's answer or the demand's expiry, and the session an accepted demand opens.

use super::journal::{DemandRow, Outcome};
use super::*;

/// The journal's names for a demanded target: (device, user).
fn target_names(target: &RelayTarget) -> (String, String) {
    match target {
        RelayTarget::Device(d) => (text::escape_bounded(d, 255).into_owned(), String::new()),
        RelayTarget::User(u) => (String::new(), text::escape_bounded(u, 255).into_owned()),
    }
}

impl Relay {
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
            let e = err(
                ErrorCode::NotOnline,
                match target {
                    RelayTarget::Device(_) => format!("{shown} is not online"),
                    RelayTarget::User(_) => {
                        format!("{shown} is not logged in at any terminal online")
                    }
                },
            );
            let (device, user) = target_names(target);
            self.refused(party, device, user, Outcome::NotOnline, &e.message);
            return Err(e);
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
            let (outcome, result) = if listening {
                (
                    Outcome::Busy,
                    err(
                        ErrorCode::Busy,
                        format!("{shown} is busy in a session and keeps no vacant connection"),
                    ),
                )
            } else if candidates.iter().all(|c| c.conn.version < 2) {
                (
                    Outcome::OlderTerminal,
                    err(
                        ErrorCode::OlderTerminal,
                        format!(
                            "{shown} runs an older imagecast that cannot take real-time sessions"
                        ),
                    ),
                )
            } else {
                (
                    Outcome::NotOnline,
                    err(
                        ErrorCode::NotOnline,
                        format!(
                            "{shown} is online but takes no connection demands (no `imagecast relay listen` runs there)"
                        ),
                    ),
                )
            };
            inner.forget_if_idle(party.conn.id);
            drop(inner);
            let first = candidates[0];
            self.refused(
                party,
                first.domain.clone(),
                first.user.clone().unwrap_or_default(),
                outcome,
                &result.message,
            );
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
        let demander = inner.known.get(&d.demander).map(|k| k.party.clone());
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
        if let Some(demander) = demander {
            let (who, user) = target
                .map(|t| (t.device.domain, t.user))
                .unwrap_or_default();
            let e = err(
                ErrorCode::Expired,
                format!("{who} did not answer the connection demand within {secs} s"),
            );
            self.refused(&demander, who, user, Outcome::Expired, &e.message);
            tell(
                &demander.conn,
                &ServerMsg::Error {
                    id: Some(d.request),
                    error: e,
                },
            );
        }
    }

    /// Journals a demand of `demander` for `target` (`target_user`) that opened no session.
    pub(super) fn refused(
        &self,
        demander: &Party,
        target: String,
        target_user: String,
        outcome: Outcome,
        reason: &str,
    ) {
        self.journal.record(Entry::Refused(DemandRow {
            at_ms: now_ms(),
            demander: demander.device.domain.clone(),
            demander_user: demander.user.clone(),
            target,
            target_user,
            outcome: outcome.as_str().to_owned(),
            reason: bounded(reason),
        }));
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
            let e = err(
                ErrorCode::Rejected,
                format!(
                    "{} rejected the connection demand{because}",
                    party.device.domain
                ),
            );
            self.refused(
                &demander,
                party.device.domain.clone(),
                party.user.clone(),
                Outcome::Rejected,
                &e.message,
            );
            tell(
                &demander.conn,
                &ServerMsg::Error {
                    id: Some(d.request),
                    error: e,
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
}
