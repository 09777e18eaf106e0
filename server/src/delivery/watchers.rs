//! Progress watchers: the connections that asked to follow a distribution (its sender, an
//! administrator), and the events sent to them as its deliveries finish.
//!
//! Progress events may be skipped for a watcher whose queue is full: a thousand destinations
//! starting at once would otherwise overflow it, and the final results repeat every state. The
//! final results always get through to a watcher that reads (within `RESULT_PATIENCE`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use imagecast_shared::DistributionId;
use imagecast_shared::frame::OutFrame;
use imagecast_shared::msg::ServerMsg;

use crate::net::outbox::{ConnHandle, ConnId};

/// How long the final results of a distribution wait for room in a watcher's queue.
const RESULT_PATIENCE: Duration = Duration::from_secs(30);

/// Who watches which distribution. One per server.
#[derive(Default)]
pub struct Watchers {
    by_dist: Mutex<HashMap<DistributionId, Vec<ConnHandle>>>,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DistributionId, Vec<ConnHandle>>> {
        self.by_dist.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `dist`'s progress events to `conn` from now on.
    pub fn watch(&self, dist: DistributionId, conn: ConnHandle) {
        let mut map = self.lock();
        let list = map.entry(dist).or_default();
        if !list.iter().any(|c| c.id == conn.id) {
            list.push(conn);
        }
    }

    /// Stops sending events to a closed connection.
    pub fn unwatch_all(&self, conn: ConnId, dists: &[DistributionId]) {
        let mut map = self.lock();
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
    /// Progress events are skipped for a watcher whose queue is full; the last event, with
    /// every result, always gets through to a watcher that reads.
    pub fn publish(&self, dist: DistributionId, msg: &ServerMsg, last: bool) {
        let watchers = if last {
            self.lock().remove(&dist).unwrap_or_default()
        } else {
            self.lock().get(&dist).cloned().unwrap_or_default()
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
}
