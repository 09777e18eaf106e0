//! The imagecast image server (image server 110 of the seed): destination groups kept as
//! `.rec` files, registration of terminals with groups, and durable distribution of images to
//! every member over the members' own connections.
//!
//! # Layout
//!
//! The folders are the layers, lowest first; a module imports only from its own layer and
//! those below it.
//!
//! - [`store`]: everything on disk, in one data directory: the database (devices, users, the
//!   distribution queue, the journal), the spool of accepted images, the TLS identity.
//! - [`groups`]: the seed's `.rec` group files, the group table (FIG. 18), registration and
//!   withdrawal edits, resolving a distribution's destinations.
//! - [`state`]: [`ServerState`], what every connection shares, opened from a data directory.
//! - [`delivery`]: pushing images to terminals (one worker per receiving connection while
//!   something is queued for it), the acknowledgement slots and the progress watchers.
//! - [`cmd`]: the requests after the handshake, one file per concern behind one `match`.
//! - [`net`]: the network edge: the listener, each connection (handshake, reader, writer), the
//!   per-connection outbox, the registry of who is connected, the login throttle.
//!
//! To come beside them: `fax/` (the fax gateway), `relay/` (server-to-server forwarding) and
//! `cluster/` (several servers sharing the load).
//!
//! # Where to start reading
//!
//! [`net::run`] accepts connections; [`net::conn`] reads a terminal's requests and hands each
//! to [`cmd::Session::handle`]; a committed distribution wakes [`delivery`], which reads the
//! queue in [`store::queue`] and pushes through the connection's [`net::outbox`].
//! `main.rs` only parses arguments, sets up logging and calls the library.

pub mod cli;
pub mod cmd;
pub mod delivery;
pub mod demo;
pub mod groups;
pub mod net;
pub mod state;
pub mod store;

pub use net::{bind, run};
pub use state::{ServerConfig, ServerState, UploadClaim};
