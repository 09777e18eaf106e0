//! The network edge: the listener and its accept loop, each terminal's connection, and what
//! the server keeps in memory per connection.
//!
//! - [`listener`]: [`bind`] and [`run`], the accept loop (a bound on connections, the TLS
//!   handshake, the shutdown).
//! - [`conn`]: one connection: the handshake, then the reader (requests, see [`crate::cmd`])
//!   and the writer, side by side in one task.
//! - [`outbox`]: a connection's bounded outbound queues, and its handle ([`ConnHandle`]).
//! - [`registry`]: who is connected, and each device's receiving connection.
//! - [`throttle`]: failed-login delays and the bound on password checks.
//! - [`accounts`]: applies account changes made by other processes to live connections.

pub mod accounts;
pub mod conn;
pub mod listener;
pub mod outbox;
pub mod registry;
pub mod throttle;

pub use listener::{bind, run};
pub use outbox::ConnHandle;
