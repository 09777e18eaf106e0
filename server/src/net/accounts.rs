//! The account watcher: applies account changes made by other processes (the
//! `imagecast-server device` and `user` commands write to the same database) to the
//! connections of this one.

use std::sync::Arc;
use std::time::Duration;

use crate::state::ServerState;
use crate::store::auth;

/// Applies account changes made by `imagecast-server device revoke`, `device token`,
/// `user remove` and `user passwd` (other processes) within a second: the connections
/// concerned are dropped. For a device, those whose token was checked at or before the
/// change: a connection opened with the new token right after a reissue stays.
pub async fn watch(state: Arc<ServerState>) {
    let mut last = match state.db.call(auth::last_account_event).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch account changes");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let since = last;
        let events = match state
            .db
            .call(move |c| auth::account_events_after(c, since))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot read account changes");
                continue;
            }
        };
        for auth::AccountEvent {
            seq,
            at_ms,
            kind,
            name,
        } in events
        {
            last = seq;
            let dropped = match kind.as_str() {
                auth::EVENT_DEVICE_REVOKED | auth::EVENT_DEVICE_TOKEN => {
                    state.connections.drop_device(&name, at_ms)
                }
                auth::EVENT_USER_REMOVED | auth::EVENT_USER_PASSWORD => {
                    state.connections.drop_user(&name)
                }
                _ => 0,
            };
            if dropped > 0 {
                tracing::warn!(%kind, %name, dropped, "connections dropped after an account change");
            }
        }
    }
}
