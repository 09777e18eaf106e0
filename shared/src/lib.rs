//! The imagecast protocol: every message between a terminal and the image server, the frame
//! format, the handshake, and the async client that the panel, the PC client and the tests use.
//!
//! # Layout
//! - [`limits`]: protocol version, magic, frame and chunk sizes, field limits.
//! - [`ids`]: distribution, delivery and request identifiers.
//! - [`msg`]: the handshake ([`msg::Hello`], [`msg::HelloReply`]) and one enum per direction
//!   ([`msg::ClientMsg`], [`msg::ServerMsg`]) with their payload structs.
//! - [`frame`]: length-prefixed frames (`u32` big-endian length, then a postcard body), the
//!   reader and writer halves, and the zero-copy encoding of page data.
//! - [`domain`]: [`domain::domain_key`], the one identity of a terminal's domain.
//! - [`private`]: folders and files created owner-only (trays, inbox, store).
//! - [`text`]: peer text made safe to print ([`text::escape`]) and to store as a file name.
//! - [`error`]: [`ProtoError`] for framing and decoding faults.
//! - [`tls`]: TLS with the server's certificate pinned on first use (fingerprints, the
//!   known-servers file).
//! - [`client`]: [`client::Client`], a connected, authenticated terminal; [`client::Inbox`],
//!   which stores pushed deliveries durably and recognises redeliveries; [`client::dial`], the
//!   TLS handshake with the pin checked.
//!
//! Wire rules: postcard encodes enum variants by index, so variants and fields are only ever
//! appended; the handshake carries [`limits::PROTOCOL_VERSION`] and is checked before anything
//! else is decoded.
#![deny(missing_docs)]

pub mod client;
pub mod domain;
pub mod error;
pub mod fax;
pub mod frame;
pub mod ids;
pub mod limits;
pub mod msg;
pub mod private;
pub mod text;
pub mod tls;

pub use error::ProtoError;
pub use ids::{DeliveryId, DistributionId, RequestId};
