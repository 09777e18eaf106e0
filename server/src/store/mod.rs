//! What the server keeps on disk, all of it in one data directory ([`datadir`]): the database
//! (devices and users, the distribution queue, the journal), the spool of accepted images, and
//! the TLS identity. Nothing here knows about connections; the layers above call in.
//!
//! - [`datadir`]: the folder's layout, `init`, opening a database connection for a command.
//! - [`db`]: the database thread that batches every caller's closure into one transaction.
//! - [`auth`]: devices (tokens) and users (passwords, roles).
//! - [`queue`]: distributions, their deliveries, and the journal, as rows.
//! - [`spool`]: accepted images on disk, and held once in memory while they are delivered.
//! - [`pages`]: how many pages a spooled file holds (a multi-page TIFF, each of its pages).
//! - [`tls`]: the server's key and certificate in `DATA/tls/`.
//! - [`files`]: atomic and owner-only file writes.

pub mod auth;
pub mod datadir;
pub mod db;
pub mod files;
pub mod pages;
pub mod queue;
pub mod spool;
pub mod tls;
