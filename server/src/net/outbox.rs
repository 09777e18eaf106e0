//! A connection's outbound frames: two bounded queues between the request handlers and
//! delivery worker that produce frames and the connection's writer that sends them.
//!
//! Everything here is a short, non-blocking operation; messages go through the bounded queues
//! without waiting, so one terminal that reads nothing can never hold up the others (its
//! connection is closed instead). Only the device's own delivery worker waits, for room in the
//! data queue ([`ConnHandle::push_data`]).
//!
//! Idle connections are cheap: an [`Outbox`] holds no memory while it is empty. It also keeps
//! the one flag that says whether the connection's delivery worker runs, so that the worker
//! starts only while something is queued for the device (see [`crate::delivery`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagecast_shared::frame::OutFrame;
use imagecast_shared::limits::PROTOCOL_VERSION;
use imagecast_shared::msg::ServerMsg;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Replies and events a connection may have queued before it counts as not reading.
pub const CONTROL_QUEUE: usize = 1024;
/// Bytes of replies and events a connection may have queued (a client that asks for large
/// listings without reading the answers is dropped before it costs more than this).
pub const CONTROL_BYTES: usize = 16 * 1024 * 1024;
/// Delivered-page frames queued per connection (each at most one chunk).
pub const DATA_QUEUE: usize = 8;
/// Bytes of relay-session frames a connection may have queued. Each session's senders only
/// send what the receiver granted (at most [`imagecast_shared::limits::MAX_RELAY_WINDOW`] a
/// session, and a connection holds at most [`crate::relay::MAX_SESSIONS_PER_CONN`]), so an
/// honest terminal never comes near this; one that grants credit it does not read is dropped.
pub const RELAY_BYTES: usize = crate::relay::MAX_SESSIONS_PER_CONN
    * imagecast_shared::limits::MAX_RELAY_WINDOW as usize
    + 1024 * 1024;

/// Identifies one connection for the life of the server.
pub type ConnId = u64;

/// The connection is closed: nothing more is sent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// A connection's outbound frames on their way to its writer, in two bounded queues: control
/// (replies and events, never waited for) and data (delivered pages, which the delivery worker
/// waits to put in). The writer sends control frames first.
///
/// Empty queues hold no memory, and a queue that empties gives its memory back, so an idle
/// connection's outbox is this one small allocation.
#[derive(Debug)]
pub struct Outbox {
    queues: Mutex<Queues>,
    /// The writer waits here for frames (or the end).
    ready: Notify,
    /// Writers of data, and patient writers of control frames, wait here for room.
    room: Notify,
    /// The connection's delivery worker: [`WORKER_IDLE`], [`WORKER_RUNNING`] or
    /// [`WORKER_AGAIN`].
    worker: AtomicU8,
    /// Cancelled to drop the connection (a child of the server's shutdown token).
    cancel: CancellationToken,
}

#[derive(Debug, Default)]
struct Queues {
    control: VecDeque<OutFrame>,
    /// The bytes of the frames in `control`.
    control_bytes: usize,
    data: VecDeque<OutFrame>,
    /// Relay-session frames (data, half-closes, ends), in the order the sessions sent them.
    relay: VecDeque<OutFrame>,
    /// The bytes of the frames in `relay`.
    relay_bytes: usize,
    /// The connection is ending: the writer sends what control frames remain, then stops.
    closing: bool,
    /// The writer is gone: frames are no longer taken.
    shut: bool,
}

/// No delivery worker runs for the connection.
const WORKER_IDLE: u8 = 0;
/// A worker runs and has seen everything queued so far.
const WORKER_RUNNING: u8 = 1;
/// A worker runs, and more was queued since it last looked.
const WORKER_AGAIN: u8 = 2;

/// What the writer gets from [`Outbox::pop`].
#[derive(Debug)]
pub enum Next {
    /// A frame to send.
    Frame(OutFrame),
    /// A control frame still queued when the connection ended: send it without waiting long.
    Last(OutFrame),
    /// Nothing queued now.
    Empty,
    /// The connection is closing and every control frame was taken.
    Done,
}

/// Why a frame was not queued.
enum Refused {
    Full(OutFrame),
    Closed,
}

impl Outbox {
    /// Queues a control frame unless the queue is full.
    fn try_control(&self, frame: OutFrame) -> Result<(), Refused> {
        {
            let mut q = lock(&self.queues);
            if q.shut {
                return Err(Refused::Closed);
            }
            let bytes = frame.wire_len();
            let over_budget = !q.control.is_empty() && q.control_bytes + bytes > CONTROL_BYTES;
            if q.control.len() >= CONTROL_QUEUE || over_budget {
                return Err(Refused::Full(frame));
            }
            q.control_bytes += bytes;
            q.control.push_back(frame);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a data frame unless the queue is full.
    fn try_data(&self, frame: OutFrame) -> Result<(), Refused> {
        {
            let mut q = lock(&self.queues);
            if q.shut || q.closing {
                return Err(Refused::Closed);
            }
            if q.data.len() >= DATA_QUEUE {
                return Err(Refused::Full(frame));
            }
            q.data.push_back(frame);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a relay frame unless the connection is closing or over [`RELAY_BYTES`].
    fn try_relay(&self, frame: OutFrame) -> Result<(), Refused> {
        {
            let mut q = lock(&self.queues);
            if q.shut || q.closing {
                return Err(Refused::Closed);
            }
            let bytes = frame.wire_len();
            if !q.relay.is_empty() && q.relay_bytes + bytes > RELAY_BYTES {
                return Err(Refused::Full(frame));
            }
            q.relay_bytes += bytes;
            q.relay.push_back(frame);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Waits until the writer may have taken a frame (or the outbox was shut). Create it, and
    /// `enable` it, before looking whether there is room, so no wake-up is missed.
    fn room(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }

    /// For the writer: completes when a frame may have been queued since it last completed,
    /// or the connection is closing or dropped. A frame queued after [`Outbox::pop`] found
    /// nothing and before this is awaited still wakes it (the notification waits).
    pub fn ready(&self) -> tokio::sync::futures::Notified<'_> {
        self.ready.notified()
    }

    /// For the writer: the next frame to send, control frames first. A queue that empties
    /// gives its memory back.
    pub fn pop(&self) -> Next {
        let mut q = lock(&self.queues);
        if let Some(frame) = q.control.pop_front() {
            q.control_bytes -= frame.wire_len();
            if q.control.is_empty() {
                q.control = VecDeque::new();
            }
            let closing = q.closing;
            drop(q);
            // A patient frame may be waiting for room (in frames or in bytes).
            self.room.notify_waiters();
            return if closing {
                Next::Last(frame)
            } else {
                Next::Frame(frame)
            };
        }
        if q.closing {
            return Next::Done;
        }
        if let Some(frame) = q.relay.pop_front() {
            q.relay_bytes -= frame.wire_len();
            if q.relay.is_empty() {
                q.relay = VecDeque::new();
            }
            return Next::Frame(frame);
        }
        match q.data.pop_front() {
            Some(frame) => {
                if q.data.is_empty() {
                    q.data = VecDeque::new();
                }
                drop(q);
                self.room.notify_waiters();
                Next::Frame(frame)
            }
            None => Next::Empty,
        }
    }

    /// The connection is ending: the writer sends the control frames still queued (an error
    /// that explains the close, say), then stops. Data frames are dropped.
    pub fn close(&self) {
        {
            let mut q = lock(&self.queues);
            q.closing = true;
            q.data = VecDeque::new();
            q.relay = VecDeque::new();
            q.relay_bytes = 0;
        }
        self.ready.notify_one();
        self.room.notify_waiters();
    }

    /// The writer is gone: everything queued is dropped and nothing more is taken.
    pub fn shut(&self) {
        let (control, data, relay) = {
            let mut q = lock(&self.queues);
            q.closing = true;
            q.shut = true;
            q.control_bytes = 0;
            q.relay_bytes = 0;
            (
                std::mem::take(&mut q.control),
                std::mem::take(&mut q.data),
                std::mem::take(&mut q.relay),
            )
        };
        drop((control, data, relay));
        self.room.notify_waiters();
    }

    /// Drops the connection: its reader stops, and its writer sends only the control frames
    /// still queued (an error that explains why, say), then stops.
    pub fn cancel(&self) {
        self.cancel.cancel();
        self.ready.notify_one();
    }

    /// True once the connection is dropped.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the connection is dropped.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }
}

/// A connection: its outbox and its off switch ([`Outbox::cancel`]).
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// The connection's number, unique while the server runs (log lines name it).
    pub id: ConnId,
    /// Frames on their way to the connection's writer.
    pub outbox: Arc<Outbox>,
    /// The protocol version the terminal speaks: messages appended in a later version are
    /// never sent to it (see [`ConnHandle::speaks`]).
    pub version: u16,
}

impl ConnHandle {
    /// A connection with an empty outbox, also dropped when `cancel` is cancelled (the
    /// server's shutdown, say).
    pub fn new(id: ConnId, cancel: CancellationToken) -> Self {
        Self {
            id,
            version: PROTOCOL_VERSION,
            outbox: Arc::new(Outbox {
                queues: Mutex::default(),
                ready: Notify::new(),
                room: Notify::new(),
                worker: AtomicU8::new(WORKER_IDLE),
                cancel,
            }),
        }
    }

    /// The same connection, speaking protocol `version` (a terminal of an older release).
    pub fn speaking(mut self, version: u16) -> Self {
        self.version = version;
        self
    }

    /// True when the terminal understands `msg` (it was in the protocol by its version).
    pub fn speaks(&self, msg: &ServerMsg) -> bool {
        msg.since() <= self.version
    }

    /// Drops the connection (see [`Outbox::cancel`]).
    pub fn cancel(&self) {
        self.outbox.cancel();
    }

    /// True once the connection is dropped.
    pub fn is_cancelled(&self) -> bool {
        self.outbox.is_cancelled()
    }

    /// Completes when the connection is dropped.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.outbox.cancelled()
    }

    /// Queues a frame; a full queue means the peer reads nothing, so it is dropped.
    pub fn push(&self, frame: OutFrame) -> bool {
        match self.outbox.try_control(frame) {
            Ok(()) => true,
            Err(Refused::Full(_)) => {
                tracing::warn!(
                    conn = self.id,
                    "peer does not read its messages; dropping it"
                );
                self.cancel();
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Queues a relay-session frame (data, a half-close, the end) behind the earlier ones of
    /// every session; never waits. The senders keep within the credit this terminal granted,
    /// so the queue stays small; a terminal whose queue passes [`RELAY_BYTES`] granted more
    /// than it reads, and is dropped.
    pub fn push_relay(&self, frame: OutFrame) -> bool {
        match self.outbox.try_relay(frame) {
            Ok(()) => true,
            Err(Refused::Full(_)) => {
                tracing::warn!(
                    conn = self.id,
                    "peer does not read the relay data it asked for; dropping it"
                );
                self.cancel();
                false
            }
            Err(Refused::Closed) => false,
        }
    }

    /// Queues a frame that may be skipped: when the queue is full the frame is dropped and
    /// the connection kept (a progress event the final results will repeat).
    pub fn offer(&self, frame: OutFrame) {
        let _ = self.outbox.try_control(frame);
    }

    /// Queues a frame that must arrive: when the queue is full it waits (in a task of its
    /// own, so the caller does not) up to `patience`, then drops a peer that reads nothing.
    pub fn push_patiently(&self, frame: OutFrame, patience: Duration) {
        let frame = match self.outbox.try_control(frame) {
            Ok(()) | Err(Refused::Closed) => return,
            Err(Refused::Full(frame)) => frame,
        };
        let conn = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + patience;
            let mut frame = frame;
            loop {
                let room = conn.outbox.room();
                tokio::pin!(room);
                room.as_mut().enable();
                match conn.outbox.try_control(frame) {
                    Ok(()) | Err(Refused::Closed) => return,
                    Err(Refused::Full(f)) => frame = f,
                }
                tokio::select! {
                    _ = conn.cancelled() => return,
                    _ = &mut room => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        tracing::warn!(
                            conn = conn.id,
                            "peer does not read its results; dropping it"
                        );
                        conn.cancel();
                        return;
                    }
                }
            }
        });
    }

    /// Queues a data frame, waiting while the data queue is full. Fails once the connection
    /// is dropped or closing.
    pub async fn push_data(&self, frame: OutFrame) -> Result<(), Closed> {
        let mut frame = frame;
        loop {
            let room = self.outbox.room();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.is_cancelled() {
                return Err(Closed);
            }
            match self.outbox.try_data(frame) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed) => return Err(Closed),
                Err(Refused::Full(f)) => frame = f,
            }
            tokio::select! {
                _ = self.cancelled() => return Err(Closed),
                _ = &mut room => {}
            }
        }
    }

    /// Notes that there is work for the connection's delivery worker. True when none runs:
    /// the caller must start one.
    pub fn wake_worker(&self) -> bool {
        self.outbox.worker.swap(WORKER_AGAIN, Ordering::AcqRel) == WORKER_IDLE
    }

    /// For the delivery worker, before it looks for queued deliveries: what is queued from
    /// now on wakes it again.
    pub fn worker_looks(&self) {
        self.outbox.worker.swap(WORKER_RUNNING, Ordering::AcqRel);
    }

    /// For the delivery worker that found nothing queued: true when it may end (no wake-up
    /// came since [`ConnHandle::worker_looks`]); false when it must look again.
    pub fn worker_may_end(&self) -> bool {
        self.outbox
            .worker
            .compare_exchange(
                WORKER_RUNNING,
                WORKER_IDLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use imagecast_shared::msg::ServerMsg;

    use super::*;

    fn notice(bytes: usize) -> OutFrame {
        OutFrame::encode(&ServerMsg::Notice {
            text: "x".repeat(bytes),
        })
        .unwrap()
    }

    #[test]
    fn a_peer_that_reads_nothing_is_dropped_by_frames_or_by_bytes() {
        // Small frames: the count limit.
        let conn = ConnHandle::new(1, CancellationToken::new());
        for _ in 0..CONTROL_QUEUE {
            assert!(conn.push(notice(10)));
        }
        assert!(!conn.is_cancelled());
        assert!(!conn.push(notice(10)));
        assert!(conn.is_cancelled());

        // Large frames (listings of big groups): the byte limit, long before the count.
        let conn = ConnHandle::new(2, CancellationToken::new());
        let mib = 1024 * 1024;
        for _ in 0..CONTROL_BYTES / mib - 1 {
            assert!(conn.push(notice(mib)));
        }
        assert!(!conn.push(notice(mib)));
        assert!(conn.is_cancelled());

        // A frame larger than the whole budget still goes out when nothing else is queued,
        // and what the writer takes makes room again.
        let conn = ConnHandle::new(3, CancellationToken::new());
        assert!(conn.push(notice(CONTROL_BYTES + 1)));
        assert!(matches!(conn.outbox.pop(), Next::Frame(_)));
        assert!(conn.push(notice(mib)));
        assert!(!conn.is_cancelled());
    }
}
