//! Who is connected: the receiving connection of each device, the connections watching each
//! distribution, and the acknowledgements on their way to delivery workers.
//!
//! Everything here is a short, non-blocking map operation; messages to connections go through
//! their bounded control queues with `try_send`, so one terminal that reads nothing can never
//! hold up the others (its connection is closed instead).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use imagecast_shared::frame::OutFrame;
use imagecast_shared::msg::{DeliveryOutcome, ServerMsg};
use imagecast_shared::{DeliveryId, DistributionId};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long the final results of a distribution wait for room in a watcher's queue.
const RESULT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Identifies one connection for the life of the server.
pub type ConnId = u64;

/// A connection's outbound control queue and its off switch.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// The connection.
    pub id: ConnId,
    /// Replies and events.
    pub control: mpsc::Sender<Box<OutFrame>>,
    /// Cancelled to drop the connection.
    pub cancel: CancellationToken,
}

impl ConnHandle {
    /// Queues a frame; a full queue means the peer reads nothing, so it is dropped.
    pub fn push(&self, frame: OutFrame) -> bool {
        match self.control.try_send(Box::new(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.id,
                    "peer does not read its messages; dropping it"
                );
                self.cancel.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues a frame that may be skipped: when the queue is full the frame is dropped and
    /// the connection kept (a progress event the final results will repeat).
    pub fn offer(&self, frame: OutFrame) {
        let _ = self.control.try_send(Box::new(frame));
    }

    /// Queues a frame that must arrive: when the queue is full it waits (in a task of its
    /// own, so the caller does not) up to `patience`, then drops a peer that reads nothing.
    pub fn push_patiently(&self, frame: OutFrame, patience: std::time::Duration) {
        match self.control.try_send(Box::new(frame)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(frame)) => {
                let conn = self.clone();
                tokio::spawn(async move {
                    let sent = tokio::time::timeout(patience, conn.control.send(frame)).await;
                    if sent.is_err() {
                        tracing::warn!(
                            conn = conn.id,
                            "peer does not read its results; dropping it"
                        );
                        conn.cancel.cancel();
                    }
                });
            }
        }
    }
}

struct Receiver {
    conn: ConnHandle,
    wake: std::sync::Arc<Notify>,
}

/// Who a connection is: its device and its logged-in user.
struct ConnEntry {
    domain: String,
    user: Option<String>,
    cancel: CancellationToken,
}

/// The registry of connections. One per server.
#[derive(Default)]
pub struct Hub {
    next_conn: AtomicU64,
    conns: Mutex<HashMap<ConnId, ConnEntry>>,
    receivers: Mutex<HashMap<String, Receiver>>,
    watchers: Mutex<HashMap<DistributionId, Vec<ConnHandle>>>,
    acks: Mutex<HashMap<DeliveryId, (ConnId, oneshot::Sender<DeliveryOutcome>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The key a domain is filed under (domains compare case-insensitively).
pub fn domain_key(domain: &str) -> String {
    domain.to_ascii_lowercase()
}

impl Hub {
    /// A fresh connection ID.
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Files a new authenticated connection under its device.
    pub fn attach(&self, conn: &ConnHandle, domain: &str) {
        lock(&self.conns).insert(
            conn.id,
            ConnEntry {
                domain: domain_key(domain),
                user: None,
                cancel: conn.cancel.clone(),
            },
        );
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

    /// Drops every connection of a device (its token was revoked). Returns how many.
    pub fn drop_device(&self, domain: &str) -> usize {
        let key = domain_key(domain);
        let mut n = 0;
        for e in lock(&self.conns).values() {
            if e.domain == key {
                e.cancel.cancel();
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
                e.cancel.cancel();
                n += 1;
            }
        }
        n
    }

    /// Makes `conn` the device's receiving connection, replacing (and dropping) an older one.
    /// Returns the notifier its delivery worker waits on.
    pub fn attach_receiver(&self, domain: &str, conn: ConnHandle) -> std::sync::Arc<Notify> {
        let wake = std::sync::Arc::new(Notify::new());
        let old = lock(&self.receivers).insert(
            domain_key(domain),
            Receiver {
                conn,
                wake: wake.clone(),
            },
        );
        if let Some(old) = old {
            tracing::info!(
                domain,
                conn = old.conn.id,
                "a newer connection takes over receiving"
            );
            old.conn.cancel.cancel();
        }
        wake
    }

    /// Forgets `conn` as the device's receiving connection, if it still is.
    pub fn detach_receiver(&self, domain: &str, conn: ConnId) {
        let mut map = lock(&self.receivers);
        if map
            .get(&domain_key(domain))
            .is_some_and(|r| r.conn.id == conn)
        {
            map.remove(&domain_key(domain));
        }
    }

    /// True when the device has a receiving connection.
    pub fn is_online(&self, domain: &str) -> bool {
        lock(&self.receivers).contains_key(&domain_key(domain))
    }

    /// Wakes the delivery workers of these domains (those that are online).
    pub fn wake<'a>(&self, domains: impl IntoIterator<Item = &'a str>) {
        let map = lock(&self.receivers);
        for d in domains {
            if let Some(r) = map.get(&domain_key(d)) {
                r.wake.notify_one();
            }
        }
    }

    /// Sends `dist`'s progress events to `conn` from now on.
    pub fn watch(&self, dist: DistributionId, conn: ConnHandle) {
        let mut map = lock(&self.watchers);
        let list = map.entry(dist).or_default();
        if !list.iter().any(|c| c.id == conn.id) {
            list.push(conn);
        }
    }

    /// Stops sending events to a closed connection.
    pub fn unwatch_all(&self, conn: ConnId, dists: &[DistributionId]) {
        let mut map = lock(&self.watchers);
        for d in dists {
            if let Some(list) = map.get_mut(d) {
                list.retain(|c| c.id != conn);
                if list.is_empty() {
                    map.remove(d);
                }
            }
        }
    }

    /// Sends an event to everyone watching `dist`; `last` forgets the watchers afterwards.
    /// Progress events are skipped for a watcher whose queue is full (a thousand destinations
    /// starting at once would otherwise overflow it); the last event, with every result, always
    /// gets through to a watcher that reads.
    pub fn publish(&self, dist: DistributionId, msg: &ServerMsg, last: bool) {
        let watchers = if last {
            lock(&self.watchers).remove(&dist).unwrap_or_default()
        } else {
            lock(&self.watchers).get(&dist).cloned().unwrap_or_default()
        };
        if watchers.is_empty() {
            return;
        }
        match OutFrame::encode(msg) {
            Ok(frame) => {
                for w in watchers {
                    if last {
                        w.push_patiently(frame.clone(), RESULT_PATIENCE);
                    } else {
                        w.offer(frame.clone());
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode an event"),
        }
    }

    /// Waits for the acknowledgement of `delivery` from connection `conn`.
    pub fn expect_ack(
        &self,
        delivery: DeliveryId,
        conn: ConnId,
    ) -> oneshot::Receiver<DeliveryOutcome> {
        let (tx, rx) = oneshot::channel();
        lock(&self.acks).insert(delivery, (conn, tx));
        rx
    }

    /// Hands an acknowledgement to the worker waiting for it. False when none waits on
    /// that connection (a stray or repeated acknowledgement).
    pub fn ack(&self, delivery: DeliveryId, conn: ConnId, outcome: DeliveryOutcome) -> bool {
        let mut map = lock(&self.acks);
        match map.get(&delivery) {
            Some((c, _)) if *c == conn => {
                if let Some((_, tx)) = map.remove(&delivery) {
                    return tx.send(outcome).is_ok();
                }
                false
            }
            _ => false,
        }
    }

    /// Forgets an acknowledgement `conn` no longer awaits; a slot a newer connection of the
    /// device has put there since is left alone.
    pub fn forget_ack(&self, delivery: DeliveryId, conn: ConnId) {
        let mut map = lock(&self.acks);
        if map.get(&delivery).is_some_and(|(c, _)| *c == conn) {
            map.remove(&delivery);
        }
    }
}
