//! FIG. 6: a user logs in with a user ID and password.

use imagecast_shared::RequestId;
use imagecast_shared::msg::{ErrorCode, ErrorInfo, ServerMsg};

use super::{Session, check_name, error};
use crate::auth;

impl Session {
    pub(super) async fn login(
        &mut self,
        id: RequestId,
        user: String,
        password: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        check_name("user", &user)?;
        let keys = [
            format!("device:{}", self.device.domain.to_ascii_lowercase()),
            format!("user:{user}"),
        ];
        let wait = self.state.throttle.reserve(&keys);
        if !wait.is_zero() {
            tracing::info!(%user, device = %self.device.domain, wait_ms = wait.as_millis() as u64, "login throttled");
            tokio::time::sleep(wait).await;
        }
        let lookup = user.clone();
        let found = self
            .state
            .db
            .call(move |c| {
                auth::user_secret(c, &lookup).map_err(|e| match e {
                    auth::AuthError::Db(d) => d,
                    other => crate::db::DbError::Corrupt(other.to_string()),
                })
            })
            .await
            .map_err(|e| error(ErrorCode::Internal, None, e.to_string()))?;
        // Verify against a dummy hash for unknown users too, so timing says nothing.
        let (account, hash) = match found {
            Some((u, h)) => (Some(u), h),
            None => (None, self.state.dummy_hash.clone()),
        };
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        match account {
            Some(account) if ok => {
                tracing::info!(user = %account.user, device = %self.device.domain, "login");
                self.state.throttle.succeeded(&keys);
                self.state.hub.set_user(self.conn.id, Some(&account.user));
                self.user = Some((account.user.clone(), account.role));
                Ok(ServerMsg::LoggedIn {
                    id,
                    user: account.user,
                    role: account.role,
                })
            }
            _ => {
                let failures = self.state.throttle.failed(&keys);
                tracing::warn!(%user, device = %self.device.domain, peer = %self.peer, failures, "failed login");
                let (device, who, peer) =
                    (self.device.domain.clone(), user.clone(), self.peer.clone());
                if let Err(e) = self
                    .state
                    .db
                    .call(move |c| {
                        auth::record_failed_login(c, &device, &who, &peer).map_err(|e| match e {
                            auth::AuthError::Db(d) => d,
                            other => crate::db::DbError::Corrupt(other.to_string()),
                        })
                    })
                    .await
                {
                    tracing::error!(error = %e, "cannot record a failed login");
                }
                self.user = None;
                self.state.hub.set_user(self.conn.id, None);
                Err(error(
                    ErrorCode::BadLogin,
                    None,
                    "wrong user ID or password",
                ))
            }
        }
    }
}
