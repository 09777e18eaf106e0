//! The imagecast image server (image server 110 of the seed): destination groups kept as
//! `.rec` files, registration of terminals with groups, and durable distribution of images to
//! every member over the members' own connections.
//!
//! # Layout
//!
//! One folder per concern, the lowest first. Where a concern has both state and tasks, its
//! state (the outbox and registry in `net/`, the acknowledgement slots and watchers in
//! `delivery/`) sits below [`state`], which gathers it, and its tasks (connections, workers)
//! above. No two files import each other, directly or round a circle.
//!
//! - [`store`]: everything on disk, in one data directory ([`store::datadir`]): the database
//!   thread ([`store::db`]), devices and users ([`store::auth`]), the distribution queue and
//!   the journal ([`store::queue`]), the spool of accepted images ([`store::spool`]), the TLS
//!   identity ([`store::tls`]), and owner-only, crash-safe file writes ([`store::files`]).
//! - [`groups`]: the seed's `.rec` group files ([`groups::rec`]), the group table of FIG. 18
//!   ([`groups::table`]), registration and withdrawal edits ([`groups::writer`]), and
//!   resolving a distribution's destinations ([`groups::resolve`]).
//! - [`state`]: [`ServerState`], what every connection shares, opened from a data directory,
//!   and the claim that keeps one upload on one connection.
//! - [`delivery`]: pushing images to terminals, one worker per receiving connection while
//!   something is queued for its device ([`delivery::worker`]); the acknowledgement slots
//!   ([`delivery::acks`]) and the progress watchers ([`delivery::watchers`]).
//! - [`cmd`]: the requests after the handshake, one file per concern behind one `match`.
//! - [`net`]: the network edge: the listener and its accept loop ([`net::listener`]), one
//!   terminal's connection ([`net::conn`]), its outbound queues ([`net::outbox`]), who is
//!   connected ([`net::registry`]), failed-login delays ([`net::throttle`]), and account
//!   changes made by other processes ([`net::accounts`]).
//! - [`fax`]: the network-fax supervising server's tables: priority and per-client
//!   routes, the delivery table, gateway settings, the retry policy, communication records,
//!   competences, groupings, the phone book and user homes, one module each.
//! - [`relay`]: real-time sessions between terminals behind NAT (seed 004): presence,
//!   connection demands and answers, relayed data with per-session credit, ends, logout, and
//!   the journal of sessions ([`relay::journal`]).
//! - [`demo`]: the seed's demo network, for `init --demo` and for `imagecast demo`, which
//!   reaches the server through this module only.
//! - [`cli`]: the `imagecast-server` commands, one function each behind one `match`;
//!   `main.rs` only parses the arguments, sets up logging and calls [`cli::Cli::run`].
//!
//! To come beside them: the fax job dispatcher in `fax/` (the tables are there), and
//! `cluster/` (several servers acting as one on a NATS cluster).
//!
//! # Where to start reading
//!
//! [`net::run`] accepts a connection and [`net::conn`] checks its hello, then hands each
//! request to [`cmd::Session::handle`]. A committed distribution ([`cmd`]'s
//! `distribution.rs`) is in the spool and the queue before it is answered; then
//! [`delivery::wake`] starts the receivers' workers, which read [`store::queue`] and push
//! through each connection's [`net::outbox`], and [`delivery::watchers`] tell the sender.

pub mod cli;
pub mod cmd;
pub mod delivery;
pub mod demo;
pub mod fax;
pub mod groups;
pub mod net;
pub mod relay;
pub mod state;
pub mod store;

pub use net::{bind, run};
pub use state::{ServerConfig, ServerState, UploadClaim};
