//! Delivery: pushing accepted images to terminals over their own connections (FIG. 4, S44),
//! store and forward for terminals that are offline, and recording each result.
//!
//! A receiving connection runs one worker while there is something queued for its device: it
//! starts when the connection attaches (to push what was queued while the device was offline)
//! and when [`worker::wake`] says deliveries were queued, and ends when the queue is
//! empty, so an idle terminal costs no task. The worker takes the device's oldest queued
//! delivery from the database, pushes the header, the pages and the end marker through the
//! connection's bounded data queue (a slow terminal slows only its own worker), and waits for
//! the terminal's acknowledgement, which it records in the queue and journal. A connection
//! that drops leaves the delivery queued; it is pushed again when the terminal comes back, with
//! the same delivery and distribution IDs, so the terminal can recognise it.
//!
//! When a newer receiving connection of the device takes over, the older worker may still be
//! on its way out with the same delivery: a worker whose connection is gone never clears the
//! acknowledgement slot (it may already be the newer connection's), and a worker whose slot
//! was taken while its connection lives simply takes the delivery again. Only failures on the
//! terminal's side count toward [`MAX_ATTEMPTS`]; a server crash does not.

pub mod acks;
pub mod watchers;
pub mod worker;

pub use acks::AckSlots;
pub use watchers::Watchers;
pub use worker::{MAX_ATTEMPTS, attach_receiver, wake};
