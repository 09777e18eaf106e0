//! Acknowledgement slots: a pushed delivery waits here for the terminal's acknowledgement,
//! which arrives on the same connection's reader (a request handler) and is handed over to the
//! delivery worker waiting for it.
//!
//! A slot belongs to one connection: an acknowledgement from any other connection is stray,
//! and a worker of an older connection of the device (on its way out) never clears the slot a
//! newer connection's worker has put there since.

use std::collections::HashMap;
use std::sync::Mutex;

use imagecast_shared::DeliveryId;
use imagecast_shared::msg::DeliveryOutcome;
use tokio::sync::oneshot;

use crate::net::outbox::ConnId;

/// The deliveries waiting for their acknowledgement, each with the connection it was pushed
/// on. One per server.
#[derive(Default)]
pub struct AckSlots {
    slots: Mutex<HashMap<DeliveryId, (ConnId, oneshot::Sender<DeliveryOutcome>)>>,
}

impl AckSlots {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<DeliveryId, (ConnId, oneshot::Sender<DeliveryOutcome>)>>
    {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the acknowledgement of `delivery` from connection `conn`.
    pub fn expect(&self, delivery: DeliveryId, conn: ConnId) -> oneshot::Receiver<DeliveryOutcome> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(delivery, (conn, tx));
        rx
    }

    /// Hands an acknowledgement to the worker waiting for it. False when none waits on
    /// that connection (a stray or repeated acknowledgement).
    pub fn hand_over(&self, delivery: DeliveryId, conn: ConnId, outcome: DeliveryOutcome) -> bool {
        let mut map = self.lock();
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
    pub fn forget(&self, delivery: DeliveryId, conn: ConnId) {
        let mut map = self.lock();
        if map.get(&delivery).is_some_and(|(c, _)| *c == conn) {
            map.remove(&delivery);
        }
    }
}
