//! Numbers both sides agree on. Changing any of them is a protocol change.

/// The protocol version sent in [`crate::msg::Hello`]. The server also serves every version
/// from [`MIN_PROTOCOL_VERSION`] up (a terminal of a previous release keeps working) and
/// refuses newer ones.
///
/// - 1: the first release (store and forward, registration, administration).
/// - 2: messages appended for the panel's membership list, the relay and network fax; the
///   server sends them only to terminals of version 2 or later.
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest protocol version the server still serves.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// The first four bytes of every hello, so a stray client is recognised at once.
pub const MAGIC: [u8; 4] = *b"ICST";

/// Largest frame body after the handshake, in bytes (1 MiB). Images travel in
/// [`CHUNK_SIZE`] pieces, so no frame ever needs more.
pub const MAX_FRAME: usize = 1 << 20;

/// Largest frame body before the handshake has succeeded (16 KiB): an unauthenticated peer
/// cannot make the server allocate more than this.
pub const MAX_HELLO_FRAME: usize = 16 * 1024;

/// Size of the page-data pieces in which images travel (256 KiB).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Longest device domain, group name, destination name, user ID or page name, in bytes.
pub const MAX_NAME: usize = 255;

/// Most pages in one distribution.
pub const MAX_PAGES: usize = 10_000;

/// Largest single page, in bytes (4 GiB).
pub const MAX_PAGE_BYTES: u64 = 4 << 30;

/// Longest reason a terminal may give for refusing a delivery that the server keeps, in bytes;
/// the rest is cut off (with control characters escaped) before it is stored.
pub const MAX_REASON: usize = 500;

/// The most bytes of relay-session data one side may have granted its peer and not yet seen
/// (4 MiB): the server keeps at most this much of one session's data in one direction, so a
/// slow receiver never makes it buffer more.
pub const MAX_RELAY_WINDOW: u32 = 4 << 20;

/// The window a terminal grants by default (1 MiB).
pub const RELAY_WINDOW: u32 = 1 << 20;
