//! FIG. 6: a user logs in with a user ID and password.
//!
//! The steps, in this order:
//! 1. the [throttle](crate::net::throttle) admits the attempt or refuses it at once (nothing
//!    sleeps, so a throttled login holds nothing);
//! 2. the user's password hash is read;
//! 3. a permit for a password check is taken ([`PasswordChecks`](crate::net::throttle::PasswordChecks):
//!    a few at once, a bounded line, past it "busy");
//! 4. argon2 runs in a blocking task that holds the permit;
//! 5. on success the user is filed in the registry *before* the hash is read again: a password
//!    change or removal committed before that second read fails the login, and one committed
//!    after it writes an account event that the server's watcher applies to the registry, where
//!    this session already is.
//!
//! Steps 3 and 4 end as soon as the connection is dropped (a revocation, the shutdown), and
//! an attempt that ends without an answer costs nothing in the throttle.

use imagecast_shared::RequestId;
use imagecast_shared::msg::{ErrorCode, ErrorInfo, ServerMsg};

use super::{Session, check_name, error};
use crate::net::throttle::Attempt;
use crate::state::ServerState;
use crate::store::auth::{self, User};

/// The answer to a wrong password and to an unknown user alike.
const WRONG: &str = "wrong user ID or password";

impl Session {
    pub(super) async fn login(
        &mut self,
        id: RequestId,
        user: String,
        password: String,
    ) -> Result<ServerMsg, ErrorInfo> {
        check_name("user", &user)?;
        // Whatever the outcome, whoever was logged in here is not any more.
        self.user = None;
        self.state.connections.set_user(self.conn.id, None);
        let state = self.state.clone();
        let attempt = match state.throttle.admit(&self.device.domain, &user) {
            Ok(a) => a,
            Err(refused) => {
                tracing::info!(%user, device = %self.device.domain, peer = %self.peer, retry_s = refused.retry_secs(), "login refused by the throttle");
                return Err(error(ErrorCode::BadLogin, None, refused.message()));
            }
        };
        // Verify against a dummy hash for unknown users too, so timing says nothing.
        let (account, hash) = match read_secret(&state, &user).await? {
            Some((u, h)) => (Some(u), h),
            None => (None, state.dummy_hash.clone()),
        };
        let permit = tokio::select! {
            _ = self.conn.cancelled() => return Err(self.closing()),
            p = state.password_checks.acquire() => match p {
                Ok(p) => p,
                Err(busy) => {
                    tracing::warn!(%user, device = %self.device.domain, "too many password checks waiting; login refused");
                    return Err(error(ErrorCode::BadLogin, None, busy.message()));
                }
            },
        };
        let stored = hash.clone();
        // The permit goes with the check: argon2 runs to its end even if nobody waits for it,
        // and only as many run as there are permits.
        let verify = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            auth::verify_password(&password, &stored)
        });
        let ok = tokio::select! {
            _ = self.conn.cancelled() => return Err(self.closing()),
            r = verify => r.unwrap_or(false),
        };
        match account {
            Some(account) if ok => self.start_session(id, account, &hash, attempt).await,
            _ => {
                let failures = attempt.failed();
                tracing::warn!(%user, device = %self.device.domain, peer = %self.peer, failures, "failed login");
                let (device, who, peer) =
                    (self.device.domain.clone(), user.clone(), self.peer.clone());
                if let Err(e) = state
                    .db
                    .call(move |c| auth::record_failed_login(c, &device, &who, &peer))
                    .await
                {
                    tracing::error!(error = %e, "cannot record a failed login");
                }
                Err(error(ErrorCode::BadLogin, None, WRONG))
            }
        }
    }

    /// Starts the session of `account`, whose password was checked against `hash`, unless
    /// the password changed or the user went meanwhile.
    async fn start_session(
        &mut self,
        id: RequestId,
        account: User,
        hash: &str,
        attempt: Attempt<'_>,
    ) -> Result<ServerMsg, ErrorInfo> {
        // Filed first, read again second (see the module doc).
        self.state
            .connections
            .set_user(self.conn.id, Some(&account.user));
        let again = read_secret(&self.state, &account.user).await;
        let unchanged = matches!(&again, Ok(Some((u, h))) if h == hash && u.role == account.role);
        if !unchanged {
            self.state.connections.set_user(self.conn.id, None);
            // Neither a failure nor a success: the attempt only gives its place back.
            drop(attempt);
            tracing::warn!(user = %account.user, device = %self.device.domain, "the account changed during a login; no session");
            return Err(match again {
                Err(e) => e,
                Ok(Some(_)) => error(
                    ErrorCode::BadLogin,
                    None,
                    "the password was changed; log in again",
                ),
                Ok(None) => error(ErrorCode::BadLogin, None, WRONG),
            });
        }
        attempt.succeeded();
        tracing::info!(user = %account.user, device = %self.device.domain, "login");
        self.user = Some((account.user.clone(), account.role));
        Ok(ServerMsg::LoggedIn {
            id,
            user: account.user,
            role: account.role,
        })
    }

    /// The answer to a login cut short because the connection is being dropped.
    fn closing(&self) -> ErrorInfo {
        tracing::info!(conn = self.conn.id, device = %self.device.domain, "login abandoned: the connection is closing");
        if self.state.shutdown.is_cancelled() {
            error(
                ErrorCode::ShuttingDown,
                None,
                "the image server is shutting down",
            )
        } else {
            error(
                ErrorCode::BadLogin,
                None,
                "the server closed this connection",
            )
        }
    }
}

/// A user's account and password hash, as stored now.
async fn read_secret(state: &ServerState, user: &str) -> Result<Option<(User, String)>, ErrorInfo> {
    let user = user.to_owned();
    state
        .db
        .call(move |c| auth::user_secret(c, &user))
        .await
        .map_err(|e| error(ErrorCode::Internal, None, e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use imagecast_shared::msg::{DeviceKind, Role};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::net::outbox::ConnHandle;
    use crate::state::{ServerConfig, ServerState};
    use crate::store::datadir::DataDir;

    const DEVICE: &str = "pc1.example";

    /// A server state with one device and user 1001 (password 1234), and a session of that
    /// device.
    async fn session(dir: &tempfile::TempDir) -> Session {
        let data = DataDir::new(dir.path().join("data"));
        data.init(&[]).unwrap();
        let conn = data.connect().unwrap();
        auth::add_device(&conn, DEVICE, "PC one", DeviceKind::Pc).unwrap();
        auth::add_user(
            &conn,
            "1001",
            Role::Operator,
            &auth::hash_password("1234").unwrap(),
        )
        .unwrap();
        let state = ServerState::open(data, ServerConfig::default(), CancellationToken::new())
            .await
            .unwrap();
        let device = state
            .db
            .call(|c| auth::device(c, DEVICE))
            .await
            .unwrap()
            .unwrap();
        let conn = ConnHandle::new(
            state.connections.next_conn_id(),
            state.shutdown.child_token(),
        );
        state.connections.attach(&conn, DEVICE, 0);
        Session {
            state,
            peer: "127.0.0.1:1".into(),
            device,
            conn,
            user: None,
            uploads: HashMap::new(),
            watching: Vec::new(),
        }
    }

    /// Takes every password-check permit, so logins wait in line.
    fn hold_checks(state: &ServerState) -> Vec<tokio::sync::OwnedSemaphorePermit> {
        std::iter::from_fn(|| state.password_checks.try_acquire()).collect()
    }

    async fn change(state: &Arc<ServerState>, remove: bool) {
        let hash = auth::hash_password("9999").unwrap();
        state
            .db
            .call(move |c| {
                if remove {
                    auth::remove_user(c, "1001")
                } else {
                    auth::set_password(c, "1001", &hash)
                }
            })
            .await
            .unwrap();
    }

    /// Issue item 6: the hash was read, checked later and never read again, so a login with
    /// the old password could start a session after `user passwd` or `user remove`.
    #[tokio::test]
    async fn an_account_changed_during_the_check_starts_no_session() {
        for remove in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut session = session(&dir).await;
            let state = session.state.clone();
            let held = hold_checks(&state);
            let result = {
                let login = session.login(1, "1001".into(), "1234".into());
                tokio::pin!(login);
                // The login has read the old hash and waits for a check.
                assert!(
                    tokio::time::timeout(Duration::from_millis(200), &mut login)
                        .await
                        .is_err()
                );
                change(&state, remove).await;
                drop(held);
                tokio::time::timeout(Duration::from_secs(10), login)
                    .await
                    .unwrap()
            };
            let err = result.unwrap_err();
            assert_eq!(err.code, ErrorCode::BadLogin);
            let expected = if remove {
                WRONG
            } else {
                "the password was changed; log in again"
            };
            assert_eq!(err.message, expected);
            assert!(session.user.is_none());
            assert_eq!(
                state.connections.drop_user("1001"),
                0,
                "no session in the registry"
            );
            // Not counted as a failure: three attempts may still run at once.
            let free: Vec<_> = (0..3)
                .map(|_| state.throttle.admit(DEVICE, "1001").unwrap())
                .collect();
            drop(free);
        }
    }

    #[tokio::test]
    async fn the_right_password_starts_a_session() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = session(&dir).await;
        let reply = session
            .login(1, "1001".into(), "1234".into())
            .await
            .unwrap();
        assert!(matches!(
            reply,
            ServerMsg::LoggedIn {
                role: Role::Operator,
                ..
            }
        ));
        assert_eq!(session.user, Some(("1001".into(), Role::Operator)));
        let err = session
            .login(2, "1001".into(), "0000".into())
            .await
            .unwrap_err();
        assert_eq!(err.message, WRONG);
        assert!(session.user.is_none(), "a failed login logs out");
    }

    /// Issue item 2: a login waiting its turn held its connection through a revocation and
    /// the shutdown.
    #[tokio::test]
    async fn a_dropped_connection_ends_a_waiting_login_and_costs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = session(&dir).await;
        let state = session.state.clone();
        let conn = session.conn.clone();
        let _held = hold_checks(&state);
        let result = {
            let login = session.login(1, "1001".into(), "0000".into());
            tokio::pin!(login);
            assert!(
                tokio::time::timeout(Duration::from_millis(100), &mut login)
                    .await
                    .is_err()
            );
            // A revocation drops the connection.
            assert_eq!(state.connections.drop_device(DEVICE, i64::MAX), 1);
            tokio::time::timeout(Duration::from_secs(1), login)
                .await
                .expect("the login ends with its connection")
        };
        assert_eq!(
            result.unwrap_err().message,
            "the server closed this connection"
        );
        assert!(conn.is_cancelled());
        // Nothing counted, nothing left in flight.
        let free: Vec<_> = (0..3)
            .map(|_| state.throttle.admit(DEVICE, "1001").unwrap())
            .collect();
        drop(free);
    }
}
