//! Requests after the handshake: one module per concern, one `match` that routes to them.

mod admin;
mod distribution;
mod fax;
mod groups;
mod login;
mod registration;
mod relay;

use std::collections::HashMap;
use std::sync::Arc;

use imagecast_shared::limits::MAX_REASON;
use imagecast_shared::msg::{ClientMsg, DeliveryOutcome, ErrorCode, ErrorInfo, Role, ServerMsg};
use imagecast_shared::{RequestId, text};

use crate::net::outbox::ConnHandle;
use crate::state::ServerState;
use crate::store::auth::Device;

/// The state of one terminal's connection that requests read and change.
pub struct Session {
    /// What every connection shares: database, groups, spool, connections.
    pub state: Arc<ServerState>,
    /// The network peer, for the log.
    pub peer: String,
    /// The terminal this connection authenticated as.
    pub device: Device,
    /// This connection.
    pub conn: ConnHandle,
    /// The logged-in user and role.
    pub user: Option<(String, Role)>,
    /// Uploads in progress, by their `BeginDistribution` request ID.
    pub uploads: HashMap<RequestId, distribution::UploadState>,
    /// Distributions whose events go to this connection.
    pub watching: Vec<imagecast_shared::DistributionId>,
}

/// An error reply body.
pub fn error(code: ErrorCode, field: Option<&str>, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        code,
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

/// Checks a name field: non-empty, at most [`imagecast_shared::limits::MAX_NAME`] bytes, no
/// control characters and no bidirectional controls.
pub fn check_name(field: &str, value: &str) -> Result<(), ErrorInfo> {
    use imagecast_shared::limits::MAX_NAME;
    if value.trim().is_empty() {
        return Err(error(
            ErrorCode::BadRequest,
            Some(field),
            format!("{field} is empty"),
        ));
    }
    if value.len() > MAX_NAME {
        return Err(error(
            ErrorCode::TooLarge,
            Some(field),
            format!(
                "{field} is {} bytes long; the limit is {MAX_NAME}",
                value.len()
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(error(
            ErrorCode::BadRequest,
            Some(field),
            format!("{field} contains control characters"),
        ));
    }
    if value.chars().any(text::is_bidi_control) {
        return Err(error(
            ErrorCode::BadRequest,
            Some(field),
            format!(
                "{field} contains a bidirectional control character (such as U+202E), \
                 which makes a name display as another"
            ),
        ));
    }
    Ok(())
}

/// A terminal's acknowledgement as the server keeps it: a refusal's reason cut to
/// [`MAX_REASON`] bytes with control characters escaped, so that no terminal can forge journal
/// lines, drive an operator's terminal or fill the database through it.
fn bounded(outcome: DeliveryOutcome) -> DeliveryOutcome {
    match outcome {
        DeliveryOutcome::Refused(reason)
            if reason.len() > MAX_REASON || reason.chars().any(text::is_unsafe) =>
        {
            let cut = text::truncate(&reason, MAX_REASON);
            let mut kept = text::escape(cut).into_owned();
            if cut.len() < reason.len() {
                kept.push_str(" (cut)");
            }
            DeliveryOutcome::Refused(kept)
        }
        other => other,
    }
}

impl Session {
    /// Forgets every open upload (the connection is closing).
    pub fn close(&mut self) {
        // Each upload's spooled pages and claim go with it.
        self.uploads.clear();
        self.state
            .watchers
            .unwatch_all(self.conn.id, &self.watching);
        if self.device.kind == imagecast_shared::msg::DeviceKind::FaxGateway {
            let state = Arc::clone(&self.state);
            let domain = imagecast_shared::domain::domain_key(&self.device.domain).into_owned();
            let conn = self.conn.id;
            tokio::spawn(async move {
                crate::fax::dispatch::detach(&state, &domain, conn).await;
            });
        }
    }

    /// The error for a request only an administrator may make, if this user is not one.
    pub fn require_admin(&self, what: &str) -> Result<(), ErrorInfo> {
        match &self.user {
            None => Err(error(
                ErrorCode::NotLoggedIn,
                None,
                format!("{what} needs an administrator: log in first"),
            )),
            Some((_, Role::Admin)) => Ok(()),
            Some((user, role)) => Err(error(
                ErrorCode::Forbidden,
                None,
                format!(
                    "{what} needs an administrator; user {user} is an {}",
                    role.as_str()
                ),
            )),
        }
    }

    /// The logged-in user, or the error for a request that needs one.
    pub fn require_user(&self, what: &str) -> Result<&str, ErrorInfo> {
        self.user.as_ref().map(|(u, _)| u.as_str()).ok_or_else(|| {
            error(
                ErrorCode::NotLoggedIn,
                None,
                format!("{what} needs a logged-in user: log in first"),
            )
        })
    }

    /// Handles one request. Returns the reply, if the request has one now.
    pub async fn handle(&mut self, msg: ClientMsg) -> Option<ServerMsg> {
        if msg.since() > self.conn.version {
            // A terminal that announced an older version cannot read the answer.
            let id = msg.request_id()?;
            return Some(ServerMsg::Error {
                id: Some(id),
                error: error(
                    ErrorCode::BadRequest,
                    None,
                    format!(
                        "this request needs protocol version {}; the terminal announced version {}",
                        msg.since(),
                        self.conn.version
                    ),
                ),
            });
        }
        let (id, result) = match msg {
            ClientMsg::Heartbeat => return None,
            ClientMsg::DeliveryAck { delivery, outcome } => {
                if !self
                    .state
                    .acks
                    .hand_over(delivery, self.conn.id, bounded(outcome))
                {
                    tracing::debug!(%delivery, "acknowledgement nobody waits for");
                }
                return None;
            }
            ClientMsg::Login { id, user, password } => (id, self.login(id, user, password).await),
            ClientMsg::Logout { id } => {
                self.user = None;
                self.state.connections.set_user(self.conn.id, None);
                (id, Ok(ServerMsg::Ok { id }))
            }
            ClientMsg::ListGroups {
                id,
                for_registration,
            } => (id, self.list_groups(id, for_registration).await),
            ClientMsg::ListDestinations { id } => (id, self.list_destinations(id).await),
            ClientMsg::GroupProblems { id } => (id, self.problems(id).await),
            ClientMsg::Register { id, group } => (id, self.register(id, group).await),
            ClientMsg::Withdraw { id, group } => (id, self.withdraw(id, group).await),
            ClientMsg::BeginDistribution { id, request } => (id, self.begin(id, request).await),
            ClientMsg::PageData {
                upload,
                page,
                offset,
                data,
            } => match self.page_data(upload, page, offset, data) {
                Ok(()) => return None,
                Err(e) => (upload, Err(e)),
            },
            ClientMsg::CommitDistribution { id, upload } => (id, self.commit(id, upload).await),
            ClientMsg::AbortDistribution { upload } => {
                // Its spooled pages and claim go with it.
                self.uploads.remove(&upload);
                return None;
            }
            ClientMsg::WatchDistribution { id, dist } => (id, self.watch(id, dist).await),
            ClientMsg::AdminRegister { id, group, domain } => {
                (id, self.admin_register(id, group, domain).await)
            }
            ClientMsg::AdminWithdraw { id, group, domain } => {
                (id, self.admin_withdraw(id, group, domain).await)
            }
            ClientMsg::ListDevices { id } => (id, self.list_devices(id).await),
            ClientMsg::RevokeDevice { id, domain } => (id, self.revoke(id, domain).await),
            ClientMsg::FailedLogins { id, last } => (id, self.failed_logins(id, last).await),
            ClientMsg::Memberships { id } => (id, self.memberships(id).await),
            ClientMsg::Who { id } => (id, self.who(id)),
            ClientMsg::RelayListen { id } => (id, self.relay_listen(id)),
            ClientMsg::Demand { id, target, window } => match self.demand(id, &target, window) {
                // The reply comes with the target's answer.
                Ok(()) => return None,
                Err(e) => (id, Err(e)),
            },
            ClientMsg::Answer {
                id,
                demand,
                accept,
                reason,
                window,
            } => (id, self.answer(id, demand, accept, &reason, window)),
            ClientMsg::RelayData { session, data } => {
                self.relay_data(session, data);
                return None;
            }
            ClientMsg::RelayCredit { session, bytes } => {
                self.relay_credit(session, bytes);
                return None;
            }
            ClientMsg::RelayEof { session } => {
                self.relay_eof(session);
                return None;
            }
            ClientMsg::RelayEnd { session, reason } => {
                self.relay_end(session, &reason);
                return None;
            }
            ClientMsg::DeviceLogout { id } => {
                self.device_logout(id);
                return None;
            }
            ClientMsg::ListSessions { id } => (id, self.list_sessions(id)),
            ClientMsg::EndSession {
                id,
                session,
                reason,
            } => (id, self.admin_end_session(id, session, &reason)),
            ClientMsg::Fax(req) => {
                let id = req.request_id();
                let result = self.fax(req).await;
                match (id, result) {
                    (_, Ok(Some(reply))) => return Some(reply),
                    (None, _) | (_, Ok(None)) => return None,
                    (Some(id), Err(e)) => (id, Err(e)),
                }
            }
        };
        Some(match result {
            Ok(reply) => reply,
            Err(error) => ServerMsg::Error {
                id: Some(id),
                error,
            },
        })
    }
}
