//! Who is connected: every authenticated connection with its device and user, and the one
//! receiving connection of each device.
//!
//! Account changes made by another process (a revoked token, a removed user) find the
//! connections to drop here; delivery finds the connection to push a device's images to. Every
//! operation is a short map operation under a lock, never an await.
//!
//! Starting a device's delivery worker is not done here: [`Registry::attach_receiver`] and
//! [`Registry::wake`] say which connections need one, and the caller
//! (`crate::delivery::worker`) starts it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use imagecast_shared::domain::domain_key;

use super::outbox::{ConnHandle, ConnId};

/// Who a connection is: its device and its logged-in user.
struct ConnEntry {
    domain: String,
    /// The device's destination name, once [`Registry::describe`] gave it.
    name: String,
    user: Option<String>,
    /// The connection itself (its protocol version, its outbox).
    conn: ConnHandle,
    /// When its device token was checked (wall-clock ms): a token change or revocation at
    /// or after this drops the connection, one before it does not (a revoked device given a
    /// new token connects again).
    checked_ms: i64,
}

/// One connection as [`Registry::snapshot`] shows it.
#[derive(Clone, Debug)]
pub struct ConnView {
    /// The connection.
    pub conn: ConnHandle,
    /// Its device's domain key.
    pub domain: String,
    /// Its device's destination name.
    pub name: String,
    /// The user logged in on it.
    pub user: Option<String>,
}

/// The registry of connections. One per server.
#[derive(Default)]
pub struct Registry {
    next_conn: AtomicU64,
    conns: Mutex<HashMap<ConnId, ConnEntry>>,
    /// Each device's receiving connection, by domain key.
    receivers: Mutex<HashMap<String, ConnHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// A fresh connection ID.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Files a new authenticated connection under its device, whose token was checked at
    /// `checked_ms` (wall-clock ms, see [`Registry::drop_device`]).
    pub fn attach(&self, conn: &ConnHandle, domain: &str, checked_ms: i64) {
        lock(&self.conns).insert(
            conn.id,
            ConnEntry {
                domain: domain_key(domain).into_owned(),
                name: String::new(),
                user: None,
                checked_ms,
                conn: conn.clone(),
            },
        );
    }

    /// Notes the destination name of a connection's device (for `who`).
    pub fn describe(&self, conn: ConnId, name: &str) {
        if let Some(e) = lock(&self.conns).get_mut(&conn) {
            e.name = name.to_owned();
        }
    }

    /// Every connection now: its handle, device domain key, destination name and user.
    pub fn snapshot(&self) -> Vec<ConnView> {
        lock(&self.conns)
            .values()
            .map(|e| ConnView {
                conn: e.conn.clone(),
                domain: e.domain.clone(),
                name: e.name.clone(),
                user: e.user.clone(),
            })
            .collect()
    }

    /// Forgets a closed connection.
    pub fn detach(&self, conn: ConnId) {
        lock(&self.conns).remove(&conn);
    }

    /// Notes who is logged in on a connection.
    pub fn set_user(&self, conn: ConnId, user: Option<&str>) {
        if let Some(e) = lock(&self.conns).get_mut(&conn) {
            e.user = user.map(str::to_owned);
        }
    }

    /// Drops the connections of a device whose token was checked at or before `up_to_ms`
    /// (wall-clock ms): its token was revoked or replaced then, and those connections used
    /// the old one. Connections opened with a newer token stay. Returns how many.
    pub fn drop_device(&self, domain: &str, up_to_ms: i64) -> usize {
        let key = domain_key(domain);
        let mut n = 0;
        for e in lock(&self.conns).values() {
            if e.domain == key && e.checked_ms <= up_to_ms {
                e.conn.cancel();
                n += 1;
            }
        }
        n
    }

    /// Drops every connection where this user is logged in (removed, or password changed).
    pub fn drop_user(&self, user: &str) -> usize {
        let mut n = 0;
        for e in lock(&self.conns).values() {
            if e.user.as_deref() == Some(user) {
                e.conn.cancel();
                n += 1;
            }
        }
        n
    }

    /// Makes `conn` the device's receiving connection, replacing (and dropping) an older one.
    /// Returns the device's domain key when the caller must start the connection's delivery
    /// worker, which first pushes what was queued while the device was offline.
    #[must_use = "the delivery worker is started by the caller"]
    pub fn attach_receiver(&self, domain: &str, conn: &ConnHandle) -> Option<String> {
        let key = domain_key(domain).into_owned();
        let old = {
            let mut receivers = lock(&self.receivers);
            let old = receivers.insert(key.clone(), conn.clone());
            // Cancelled before the lock is let go: a `wake` that finds the new connection
            // then starts its worker only once the older one is cancelled.
            if let Some(old) = &old {
                old.cancel();
            }
            old
        };
        if let Some(old) = old {
            tracing::info!(
                domain,
                conn = old.id,
                "a newer connection takes over receiving"
            );
        }
        // Started only after the older connection was cancelled (see `delivery`).
        conn.wake_worker().then_some(key)
    }

    /// Forgets `conn` as the device's receiving connection, if it still is.
    pub fn detach_receiver(&self, domain: &str, conn: ConnId) {
        let key = domain_key(domain).into_owned();
        let mut map = lock(&self.receivers);
        if map.get(&key).is_some_and(|r| r.id == conn) {
            map.remove(&key);
        }
    }

    /// True when the device has a receiving connection.
    pub fn is_online(&self, domain: &str) -> bool {
        lock(&self.receivers).contains_key(&*domain_key(domain))
    }

    /// Tells the delivery workers of these domains (those that are online) that deliveries
    /// were queued for them. Returns the receiving connections, with their devices' domain
    /// keys, whose workers do not run: the caller must start them.
    #[must_use = "the delivery workers are started by the caller"]
    pub fn wake<'a>(
        &self,
        domains: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(String, ConnHandle)> {
        let mut start = Vec::new();
        let map = lock(&self.receivers);
        for d in domains {
            let key = domain_key(d).into_owned();
            if let Some(conn) = map.get(&key) {
                if conn.wake_worker() {
                    start.push((key, conn.clone()));
                }
            }
        }
        start
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio_util::sync::CancellationToken;

    use super::*;

    /// Issue 6, item 5: a token change drops the connections that used the old token (checked
    /// at or before the change), not those opened with the new one.
    #[test]
    fn a_token_change_drops_only_connections_checked_before_it() {
        let registry = Registry::default();
        let old = ConnHandle::new(1, CancellationToken::new());
        let same_ms = ConnHandle::new(2, CancellationToken::new());
        let new = ConnHandle::new(3, CancellationToken::new());
        let other = ConnHandle::new(4, CancellationToken::new());
        registry.attach(&old, "PC1.example", 100);
        registry.attach(&same_ms, "pc1.example", 150);
        registry.attach(&new, "pc1.example", 151);
        registry.attach(&other, "pc2.example", 100);
        assert_eq!(registry.drop_device("pc1.EXAMPLE", 150), 2);
        assert!(old.is_cancelled() && same_ms.is_cancelled());
        assert!(!new.is_cancelled() && !other.is_cancelled());
    }
}
