//! Every message of the protocol: the handshake, then one enum per direction.
//!
//! Variants are encoded by index: never reorder or remove one, only append. Each variant's
//! number is written beside it and pinned by golden-byte tests (`shared/tests/golden.rs`).
//! A message appended in a later protocol version says so and is named by
//! [`ServerMsg::since`]: the server never sends it to an older terminal.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{DeliveryId, DistributionId, RequestId};
use crate::limits::{MAGIC, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// The first frame a terminal sends. The server reads `magic` and `version` before anything
/// else, so a version mismatch is refused clearly even if later fields changed shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The client's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The terminal's identity: its network domain name (or IP address) as in `all.rec`.
    pub device: String,
    /// The device's secret token, issued by `imagecast-server device add`.
    pub token: String,
    /// Software name and version, for the server's log.
    pub software: String,
    /// True when this connection takes the deliveries pushed to the device (a panel or a
    /// receiving PC); false for a connection that only sends or asks.
    pub receive: bool,
}

impl Hello {
    /// A hello for this protocol version.
    pub fn new(device: &str, token: &str, software: &str, receive: bool) -> Self {
        Self {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            device: device.to_owned(),
            token: token.to_owned(),
            software: software.to_owned(),
            receive,
        }
    }
}

/// The leading fields of [`Hello`], decoded first to check the version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HelloPrefix {
    /// See [`Hello::magic`].
    pub magic: [u8; 4],
    /// See [`Hello::version`].
    pub version: u16,
}

/// The server's answer to [`Hello`]. Its shape is frozen across versions so that any client
/// can read a refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// 0: the terminal is in.
    Welcome(Welcome),
    /// 1: the terminal is refused; the connection closes after this frame.
    Refused(Refusal),
}

/// What a terminal learns when it is let in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version spoken on this connection: the terminal's own when it is older
    /// than the server's (messages of later versions are never sent to it).
    pub version: u16,
    /// Server software name and version.
    pub server: String,
    /// This terminal's destination name (from `all.rec`, else from its device record).
    pub device_name: String,
    /// This terminal's kind.
    pub kind: DeviceKind,
    /// The terminal sends [`ClientMsg::Heartbeat`] at this interval; the server drops a
    /// connection silent for two intervals.
    pub heartbeat_ms: u32,
    /// Largest frame body the server accepts now.
    pub max_frame: u32,
    /// Size of the page-data pieces.
    pub chunk_size: u32,
}

/// Why a terminal was refused at the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Machine-readable reason.
    pub code: RefusalCode,
    /// One plain sentence for a person.
    pub message: String,
}

/// Reasons for refusing a handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalCode {
    /// 0: the first frame was not a hello.
    NotHello,
    /// 1: the client speaks another protocol version.
    VersionMismatch,
    /// 2: no device of that name is known to the server.
    UnknownDevice,
    /// 3: the token does not match the device.
    BadToken,
    /// 4: the device's token was revoked.
    Revoked,
    /// 5: the server is shutting down or over its connection limit.
    Unavailable,
}

/// The kind of a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    /// 0: a digital multifunction apparatus (MFP) with a control panel.
    Mfp,
    /// 1: a personal computer with the printer driver and receiving software.
    Pc,
    /// 2: a network printer (receives only).
    Printer,
    /// 3: a fax gateway (later phase).
    FaxGateway,
}

impl DeviceKind {
    /// The name used on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Mfp => "mfp",
            DeviceKind::Pc => "pc",
            DeviceKind::Printer => "printer",
            DeviceKind::FaxGateway => "fax-gateway",
        }
    }

    /// Parses [`DeviceKind::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mfp" => DeviceKind::Mfp,
            "pc" => DeviceKind::Pc,
            "printer" => DeviceKind::Printer,
            "fax-gateway" => DeviceKind::FaxGateway,
            _ => return None,
        })
    }
}

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// 0: distributes and registers the own terminal.
    Operator,
    /// 1: also manages groups, devices and users.
    Admin,
}

impl Role {
    /// The name used on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses [`Role::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One page of an image: its file name and exact size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// The page's original file name (no directories).
    pub name: String,
    /// Size in bytes; the page travels byte for byte.
    pub size: u64,
}

/// A destination: network domain name and destination name, as in a `.rec` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination {
    /// Network domain name or IP address.
    pub domain: String,
    /// Destination name.
    pub name: String,
}

/// A row of the table of group names and file names (FIG. 18).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Group name, from the file's first comment line.
    pub name: String,
    /// The `.rec` file's name.
    pub file: String,
    /// Number of members.
    pub members: u32,
}

/// Where one destination of a distribution stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    /// 0: waiting: the terminal is offline, or its turn has not come.
    Queued,
    /// 1: being sent now.
    Sending,
    /// 2: the terminal stored the image.
    Delivered,
    /// 3: the terminal printed the image.
    Printed,
    /// 4: it will not arrive; the reason says why.
    Failed(String),
}

impl DeliveryState {
    /// True when nothing more will happen to this delivery.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DeliveryState::Delivered | DeliveryState::Printed | DeliveryState::Failed(_)
        )
    }
}

/// One destination's state within a distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationStatus {
    /// The destination whose state this is.
    pub destination: Destination,
    /// Its state.
    pub state: DeliveryState,
}

/// What a terminal says once it has handled a pushed delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    /// 0: stored durably (the receiving software's "received").
    Stored,
    /// 1: printed (written to the output tray).
    Printed,
    /// 2: the terminal cannot take it (for example its disk is full); final.
    Refused(String),
}

/// Outcome of a registration request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterOutcome {
    /// 0: the terminal's line was appended to the group file.
    Added,
    /// 1: the terminal was already a member; nothing changed.
    AlreadyMember,
}

/// Outcome of a withdrawal request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WithdrawOutcome {
    /// 0: the terminal's line was removed from the group file.
    Removed,
    /// 1: the terminal was not a member; nothing changed.
    NotMember,
}

/// Machine-readable error kinds in [`ServerMsg::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// 0: a field is invalid; [`ErrorInfo::field`] names it.
    BadRequest,
    /// 1: the request needs a logged-in user.
    NotLoggedIn,
    /// 2: wrong user ID or password.
    BadLogin,
    /// 3: the user's role does not allow this.
    Forbidden,
    /// 4: no group of that name.
    UnknownGroup,
    /// 5: no destination of that domain in `all.rec`.
    UnknownDomain,
    /// 6: "all distribution destinations" takes no registrations.
    NotRegistrable,
    /// 7: the group's file cannot be used; the message names file and line.
    GroupFileBroken,
    /// 8: a size or count is over its limit.
    TooLarge,
    /// 9: no distribution or upload of that ID.
    UnknownDistribution,
    /// 10: the request came at the wrong moment (for example page data without an upload).
    OutOfOrder,
    /// 11: the frame could not be decoded.
    Malformed,
    /// 12: the server could not store something; nothing was accepted.
    Storage,
    /// 13: the distribution resolves to no destination.
    NoDestinations,
    /// 14: the server is shutting down.
    ShuttingDown,
    /// 15: anything else.
    Internal,
    /// 16 (version 2): the relay's target has no connection now (no terminal of that domain,
    /// or no terminal where that user is logged in).
    NotOnline,
    /// 17 (version 2): the relay's target is in a session and keeps no vacant connection.
    Busy,
    /// 18 (version 2): the target rejected the connection demand; the message gives its reason.
    Rejected,
    /// 19 (version 2): nobody answered the connection demand in time.
    Expired,
    /// 20 (version 2): the target runs an older imagecast that cannot take real-time sessions.
    OlderTerminal,
    /// 21 (version 2): no relay session or connection demand of that number is this
    /// connection's.
    UnknownSession,
}

impl ErrorCode {
    /// The protocol version that introduced this code. A terminal of an older version is sent
    /// [`ErrorCode::Internal`] instead, with the same message.
    pub fn since(self) -> u16 {
        match self {
            ErrorCode::NotOnline
            | ErrorCode::Busy
            | ErrorCode::Rejected
            | ErrorCode::Expired
            | ErrorCode::OlderTerminal
            | ErrorCode::UnknownSession => 2,
            _ => 1,
        }
    }
}

/// An error reply: a code, the field at fault if any, and one plain sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Machine-readable kind.
    pub code: ErrorCode,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// One plain sentence for a person.
    pub message: String,
}

impl std::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A distribution request: the image's pages and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginDistribution {
    /// Chosen by the client; a retry with the same ID is recognised.
    pub dist: DistributionId,
    /// Group names, as listed by [`ClientMsg::ListGroups`].
    pub groups: Vec<String>,
    /// Individual destinations by domain, as listed by [`ClientMsg::ListDestinations`].
    pub destinations: Vec<String>,
    /// The pages, in order; their bytes follow as [`ClientMsg::PageData`].
    pub pages: Vec<PageInfo>,
}

/// A distribution the server has stored durably.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The distribution's ID.
    pub dist: DistributionId,
    /// Every destination it goes to, each once.
    pub destinations: Vec<Destination>,
    /// True when this ID had been accepted before (a retry); nothing new was made.
    pub duplicate: bool,
}

/// A delivery pushed to a terminal: the header; the pages follow as
/// [`ServerMsg::DeliverData`] and end with [`ServerMsg::DeliverEnd`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliver {
    /// The delivery's ID, to acknowledge.
    pub delivery: DeliveryId,
    /// The distribution it belongs to: the same ID on a redelivery.
    pub dist: DistributionId,
    /// The sending terminal.
    pub sender: Destination,
    /// The user who sent it.
    pub user: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub accepted_at_ms: u64,
    /// The pages, in order.
    pub pages: Vec<PageInfo>,
    /// The print request of FIG. 4 S44: true when the terminal should print it.
    pub print: bool,
}

/// Messages from a terminal to the server, after the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// 0: keep-alive.
    Heartbeat,
    /// 1: log a user in on this connection (FIG. 6).
    Login {
        /// Request ID.
        id: RequestId,
        /// User ID.
        user: String,
        /// The password, sent inside TLS and never stored by the server (only its argon2 hash).
        password: String,
    },
    /// 2: log the user out.
    Logout {
        /// Request ID.
        id: RequestId,
    },
    /// 3: the destination group names (FIG. 9; FIG. 12 when `for_registration`).
    ListGroups {
        /// Request ID.
        id: RequestId,
        /// Leave out "all distribution destinations".
        for_registration: bool,
    },
    /// 4: every destination in `all.rec` (FIG. 10).
    ListDestinations {
        /// Request ID.
        id: RequestId,
    },
    /// 5: start uploading a distribution.
    BeginDistribution {
        /// Request ID; page data and the commit name it.
        id: RequestId,
        /// What and where.
        request: BeginDistribution,
    },
    /// 6: a piece of a page; pieces come in order, page by page.
    PageData {
        /// The `BeginDistribution` request's ID.
        upload: RequestId,
        /// Page index from 0.
        page: u32,
        /// Byte offset within the page.
        offset: u64,
        /// The bytes, at most [`crate::limits::CHUNK_SIZE`].
        data: Bytes,
    },
    /// 7: every byte is sent; store it and answer [`ServerMsg::Accepted`].
    CommitDistribution {
        /// Request ID.
        id: RequestId,
        /// The `BeginDistribution` request's ID.
        upload: RequestId,
    },
    /// 8: forget an unfinished upload.
    AbortDistribution {
        /// The `BeginDistribution` request's ID.
        upload: RequestId,
    },
    /// 9: a pushed delivery was handled.
    DeliveryAck {
        /// Which delivery.
        delivery: DeliveryId,
        /// What became of it.
        outcome: DeliveryOutcome,
    },
    /// 10: register this terminal with a group (section 2.3).
    Register {
        /// Request ID.
        id: RequestId,
        /// Group name.
        group: String,
    },
    /// 11: withdraw this terminal from a group.
    Withdraw {
        /// Request ID.
        id: RequestId,
        /// Group name.
        group: String,
    },
    /// 12: the problems found in the group files, as `FILE:LINE: reason`.
    GroupProblems {
        /// Request ID.
        id: RequestId,
    },
    /// 13: the state of a distribution, then its progress events on this connection.
    WatchDistribution {
        /// Request ID.
        id: RequestId,
        /// Which distribution.
        dist: DistributionId,
    },
    /// 14: admin: register another terminal with a group.
    AdminRegister {
        /// Request ID.
        id: RequestId,
        /// Group name.
        group: String,
        /// The terminal's domain.
        domain: String,
    },
    /// 15: admin: withdraw another terminal from a group.
    AdminWithdraw {
        /// Request ID.
        id: RequestId,
        /// Group name.
        group: String,
        /// The terminal's domain.
        domain: String,
    },
    /// 16: admin: every device.
    ListDevices {
        /// Request ID.
        id: RequestId,
    },
    /// 17: admin: revoke a device's token and drop its connections.
    RevokeDevice {
        /// Request ID.
        id: RequestId,
        /// The device's domain.
        domain: String,
    },
    /// 18: admin: the most recent failed logins.
    FailedLogins {
        /// Request ID.
        id: RequestId,
        /// How many, newest last.
        last: u32,
    },
    /// 19 (version 2): the groups this terminal is a member of, answered by
    /// [`ServerMsg::Memberships`] (the panel's withdraw list, FIG. 12).
    Memberships {
        /// Request ID.
        id: RequestId,
    },
    /// 20 (version 2): the terminals online now, answered by [`ServerMsg::Who`].
    Who {
        /// Request ID.
        id: RequestId,
    },
    /// 21 (version 2): this connection takes connection demands (seed 004, (7)); answered by
    /// [`ServerMsg::Ok`]. A demand comes as [`ServerMsg::Demanded`] while it is vacant.
    RelayListen {
        /// Request ID.
        id: RequestId,
    },
    /// 22 (version 2): a connection demand (seed 004, (6)). Answered, once the target has
    /// answered, by [`ServerMsg::SessionOpen`], or by an error: [`ErrorCode::NotOnline`],
    /// [`ErrorCode::Busy`], [`ErrorCode::Rejected`], [`ErrorCode::Expired`],
    /// [`ErrorCode::OlderTerminal`].
    Demand {
        /// Request ID.
        id: RequestId,
        /// The terminal demanded.
        target: RelayTarget,
        /// Bytes of session data this side takes before it grants more
        /// ([`ClientMsg::RelayCredit`]); at most [`crate::limits::MAX_RELAY_WINDOW`].
        window: u32,
    },
    /// 23 (version 2): the answer to a [`ServerMsg::Demanded`] (seed 004, (8)). Accepted, it
    /// is answered by [`ServerMsg::SessionOpen`]; rejected, by [`ServerMsg::Ok`].
    Answer {
        /// Request ID.
        id: RequestId,
        /// The demand's number from [`ServerMsg::Demanded`].
        demand: u64,
        /// True to accept.
        accept: bool,
        /// Why it was rejected (empty when accepted); at most [`crate::limits::MAX_REASON`]
        /// bytes are kept.
        reason: String,
        /// As in [`ClientMsg::Demand`]: the bytes this side takes before it grants more.
        window: u32,
    },
    /// 24 (version 2): session data toward the peer (seed 004, (15)); never more than the
    /// peer has granted, and at most [`crate::limits::CHUNK_SIZE`] bytes a frame.
    RelayData {
        /// The session.
        session: u64,
        /// The bytes.
        data: Bytes,
    },
    /// 25 (version 2): this side consumed `bytes` of the session's data: the peer may send
    /// that much more.
    RelayCredit {
        /// The session.
        session: u64,
        /// Bytes granted.
        bytes: u32,
    },
    /// 26 (version 2): this side sends no more data in the session (a half-close); it still
    /// receives.
    RelayEof {
        /// The session.
        session: u64,
    },
    /// 27 (version 2): end the session (seed 004, (19)); the peer is told, with the reason.
    RelayEnd {
        /// The session.
        session: u64,
        /// Why; at most [`crate::limits::MAX_REASON`] bytes are kept.
        reason: String,
    },
    /// 28 (version 2): the device logs out (seed 004, (22)): its sessions end, with a reason
    /// to each peer, and every connection of the device is closed after [`ServerMsg::Ok`].
    DeviceLogout {
        /// Request ID.
        id: RequestId,
    },
    /// 29 (version 2): admin: the open relay sessions, answered by [`ServerMsg::Sessions`].
    ListSessions {
        /// Request ID.
        id: RequestId,
    },
    /// 30 (version 2): admin: end a relay session; both sides are told the reason.
    EndSession {
        /// Request ID.
        id: RequestId,
        /// The session.
        session: u64,
        /// Why; at most [`crate::limits::MAX_REASON`] bytes are kept.
        reason: String,
    },
    /// 31 (version 2): a network fax request ([`crate::fax`]).
    Fax(crate::fax::FaxRequest),
}

impl ClientMsg {
    /// The protocol version that introduced this message: the server refuses it from a
    /// terminal that announced an older version.
    pub fn since(&self) -> u16 {
        match self {
            ClientMsg::Memberships { .. }
            | ClientMsg::Who { .. }
            | ClientMsg::RelayListen { .. }
            | ClientMsg::Demand { .. }
            | ClientMsg::Answer { .. }
            | ClientMsg::RelayData { .. }
            | ClientMsg::RelayCredit { .. }
            | ClientMsg::RelayEof { .. }
            | ClientMsg::RelayEnd { .. }
            | ClientMsg::DeviceLogout { .. }
            | ClientMsg::ListSessions { .. }
            | ClientMsg::EndSession { .. } => 2,
            ClientMsg::Fax(f) => f.since(),
            _ => 1,
        }
    }

    /// The request's ID, for the messages that are requests.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            ClientMsg::Heartbeat
            | ClientMsg::PageData { .. }
            | ClientMsg::AbortDistribution { .. }
            | ClientMsg::DeliveryAck { .. }
            | ClientMsg::RelayData { .. }
            | ClientMsg::RelayCredit { .. }
            | ClientMsg::RelayEof { .. }
            | ClientMsg::RelayEnd { .. } => None,
            ClientMsg::Login { id, .. }
            | ClientMsg::Logout { id }
            | ClientMsg::ListGroups { id, .. }
            | ClientMsg::ListDestinations { id }
            | ClientMsg::BeginDistribution { id, .. }
            | ClientMsg::CommitDistribution { id, .. }
            | ClientMsg::Register { id, .. }
            | ClientMsg::Withdraw { id, .. }
            | ClientMsg::GroupProblems { id }
            | ClientMsg::WatchDistribution { id, .. }
            | ClientMsg::AdminRegister { id, .. }
            | ClientMsg::AdminWithdraw { id, .. }
            | ClientMsg::ListDevices { id }
            | ClientMsg::RevokeDevice { id, .. }
            | ClientMsg::FailedLogins { id, .. }
            | ClientMsg::Memberships { id }
            | ClientMsg::Who { id }
            | ClientMsg::RelayListen { id }
            | ClientMsg::Demand { id, .. }
            | ClientMsg::Answer { id, .. }
            | ClientMsg::DeviceLogout { id }
            | ClientMsg::ListSessions { id }
            | ClientMsg::EndSession { id, .. } => Some(*id),
            ClientMsg::Fax(f) => f.request_id(),
        }
    }
}

/// A device as an administrator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Network domain name.
    pub domain: String,
    /// Destination name.
    pub name: String,
    /// What kind of terminal it is (MFP, PC, printer, fax gateway).
    pub kind: DeviceKind,
    /// True once revoked.
    pub revoked: bool,
    /// True while it has a receiving connection.
    pub online: bool,
}

/// One failed login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLogin {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The device it came from.
    pub device: String,
    /// The user ID tried.
    pub user: String,
    /// The network peer.
    pub peer: String,
}

/// Messages from the server to a terminal, after the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// 0: keep-alive.
    Heartbeat,
    /// 1: the request succeeded and has nothing to return.
    Ok {
        /// Request ID.
        id: RequestId,
    },
    /// 2: the request failed; `id` is absent for faults not tied to a request.
    Error {
        /// Request ID, if the fault belongs to one.
        id: Option<RequestId>,
        /// What went wrong.
        error: ErrorInfo,
    },
    /// 3: the user is logged in.
    LoggedIn {
        /// Request ID.
        id: RequestId,
        /// User ID.
        user: String,
        /// What the user may do: an operator distributes and registers, an admin also manages.
        role: Role,
    },
    /// 4: group names, in the order to number them from 1.
    Groups {
        /// Request ID.
        id: RequestId,
        /// The groups in FIG. 18's order, numbered from 1 as the panel shows them.
        groups: Vec<GroupEntry>,
    },
    /// 5: all destinations.
    Destinations {
        /// Request ID.
        id: RequestId,
        /// The destinations, in `all.rec` order.
        destinations: Vec<Destination>,
    },
    /// 6: send the pages now.
    UploadReady {
        /// The `BeginDistribution` request's ID.
        id: RequestId,
    },
    /// 7: the distribution is on disk; delivery has begun.
    Accepted {
        /// Request ID (of the commit, or of the begin for a duplicate).
        id: RequestId,
        /// The accepted distribution.
        accepted: Accepted,
    },
    /// 8: registration done.
    Registered {
        /// Request ID.
        id: RequestId,
        /// Group name.
        group: String,
        /// What happened.
        outcome: RegisterOutcome,
    },
    /// 9: withdrawal done.
    Withdrawn {
        /// Request ID.
        id: RequestId,
        /// Group name.
        group: String,
        /// What happened.
        outcome: WithdrawOutcome,
    },
    /// 10: group-file problems.
    Problems {
        /// Request ID.
        id: RequestId,
        /// `FILE:LINE: reason` lines.
        problems: Vec<String>,
    },
    /// 11: a distribution's state.
    DistributionStatus {
        /// Request ID.
        id: RequestId,
        /// The distribution asked about.
        dist: DistributionId,
        /// Every destination's state.
        destinations: Vec<DestinationStatus>,
    },
    /// 12: event: one destination's state changed.
    Progress {
        /// The distribution, of this terminal's, that progressed.
        dist: DistributionId,
        /// The destination and its new state.
        status: DestinationStatus,
    },
    /// 13: event: every destination is done; the final results.
    DistributionDone {
        /// The distribution, of this terminal's, that is finished.
        dist: DistributionId,
        /// Every destination's final state.
        results: Vec<DestinationStatus>,
    },
    /// 14: event: a delivery begins.
    Deliver(Deliver),
    /// 15: event: a piece of a delivered page.
    DeliverData {
        /// Which delivery.
        delivery: DeliveryId,
        /// Page index from 0.
        page: u32,
        /// Byte offset within the page.
        offset: u64,
        /// The piece's bytes, at most [`crate::limits::CHUNK_SIZE`].
        data: Bytes,
    },
    /// 16: event: the delivery's last byte was sent; store it and acknowledge.
    DeliverEnd {
        /// Which delivery.
        delivery: DeliveryId,
    },
    /// 17: event: something the operator should read (for example a server shutdown).
    Notice {
        /// One plain sentence.
        text: String,
    },
    /// 18: every device (admin).
    Devices {
        /// Request ID.
        id: RequestId,
        /// Every device the server knows, revoked ones included.
        devices: Vec<DeviceInfo>,
    },
    /// 19: recent failed logins (admin).
    FailedLogins {
        /// Request ID.
        id: RequestId,
        /// Oldest first.
        entries: Vec<FailedLogin>,
    },
    /// 20 (version 2): the groups this terminal is a member of, in FIG. 18's order.
    Memberships {
        /// Request ID.
        id: RequestId,
        /// Group names.
        groups: Vec<String>,
    },
    /// 21 (version 2): the terminals online now, one entry per device, in domain order.
    Who {
        /// Request ID.
        id: RequestId,
        /// The devices with at least one connection.
        terminals: Vec<Presence>,
    },
    /// 22 (version 2): event: a connection demand for this connection (seed 004, (7)); answer
    /// it with [`ClientMsg::Answer`] within `expires_ms`.
    Demanded {
        /// The demand's number, to answer.
        demand: u64,
        /// The demanding terminal.
        from: Destination,
        /// The user logged in there ("" when none).
        user: String,
        /// Milliseconds left to answer; then the demand expires.
        expires_ms: u32,
    },
    /// 23 (version 2): event: a demand this connection was asked is gone unanswered (it
    /// expired, or the demander left); the reason says which.
    DemandWithdrawn {
        /// The demand's number.
        demand: u64,
        /// Why.
        reason: String,
    },
    /// 24 (version 2): a session is open (seed 004, (9)): the reply to an accepted
    /// [`ClientMsg::Demand`] (to the demander) and to [`ClientMsg::Answer`] (to the target).
    SessionOpen {
        /// Request ID.
        id: RequestId,
        /// The session's number, as `relay sessions` and the journal show it.
        session: u64,
        /// The terminal at the other end.
        peer: Destination,
        /// The user logged in there ("" when none).
        peer_user: String,
        /// The bytes this side may send before the peer grants more.
        credit: u32,
    },
    /// 25 (version 2): event: session data from the peer (seed 004, (18)).
    RelayData {
        /// The session.
        session: u64,
        /// The bytes.
        data: Bytes,
    },
    /// 26 (version 2): event: the peer consumed `bytes`: this side may send that much more.
    RelayCredit {
        /// The session.
        session: u64,
        /// Bytes granted.
        bytes: u32,
    },
    /// 27 (version 2): event: the peer sends no more data in the session.
    RelayEof {
        /// The session.
        session: u64,
    },
    /// 28 (version 2): event: the session ended (seed 004, (20)); the reason says who ended it
    /// and why. Both connections are vacant again.
    SessionEnded {
        /// The session.
        session: u64,
        /// Why.
        reason: String,
    },
    /// 29 (version 2): event: the device logged out on another of its connections (seed 004,
    /// (23)); the server closes this connection next.
    LoggedOut {
        /// Why.
        reason: String,
    },
    /// 30 (version 2): the open relay sessions (admin).
    Sessions {
        /// Request ID.
        id: RequestId,
        /// Oldest first.
        sessions: Vec<SessionInfo>,
    },
    /// 31 (version 2): a network fax reply or event ([`crate::fax`]).
    Fax(crate::fax::FaxEvent),
}

impl ServerMsg {
    /// The request this message answers, if it is a reply.
    pub fn reply_to(&self) -> Option<RequestId> {
        match self {
            ServerMsg::Ok { id }
            | ServerMsg::LoggedIn { id, .. }
            | ServerMsg::Groups { id, .. }
            | ServerMsg::Destinations { id, .. }
            | ServerMsg::UploadReady { id }
            | ServerMsg::Accepted { id, .. }
            | ServerMsg::Registered { id, .. }
            | ServerMsg::Withdrawn { id, .. }
            | ServerMsg::Problems { id, .. }
            | ServerMsg::DistributionStatus { id, .. }
            | ServerMsg::Devices { id, .. }
            | ServerMsg::FailedLogins { id, .. }
            | ServerMsg::Memberships { id, .. }
            | ServerMsg::Who { id, .. }
            | ServerMsg::SessionOpen { id, .. }
            | ServerMsg::Sessions { id, .. } => Some(*id),
            ServerMsg::Error { id, .. } => *id,
            ServerMsg::Fax(f) => f.reply_to(),
            _ => None,
        }
    }

    /// The protocol version that introduced this message (and everything in it): the server
    /// never sends it to a terminal of an older version.
    pub fn since(&self) -> u16 {
        match self {
            ServerMsg::Memberships { .. }
            | ServerMsg::Who { .. }
            | ServerMsg::Demanded { .. }
            | ServerMsg::DemandWithdrawn { .. }
            | ServerMsg::SessionOpen { .. }
            | ServerMsg::RelayData { .. }
            | ServerMsg::RelayCredit { .. }
            | ServerMsg::RelayEof { .. }
            | ServerMsg::SessionEnded { .. }
            | ServerMsg::LoggedOut { .. }
            | ServerMsg::Sessions { .. } => 2,
            ServerMsg::Fax(f) => f.since(),
            ServerMsg::Error { error, .. } => error.code.since(),
            _ => 1,
        }
    }
}

/// How a connection demand names its target (seed 004, (6)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayTarget {
    /// 0: the terminal of this device domain.
    Device(String),
    /// 1: the terminal where this user ID is logged in.
    User(String),
}

/// One device online, as `who` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Network domain name.
    pub domain: String,
    /// Destination name.
    pub name: String,
    /// The users logged in at its connections, each once.
    pub users: Vec<String>,
    /// True while one of its connections is in a relay session.
    pub in_session: bool,
    /// True when one of its connections takes connection demands.
    pub takes_demands: bool,
    /// True when every connection of it speaks protocol version 1 (no real-time sessions).
    pub older: bool,
}

/// An open relay session, as an administrator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's number.
    pub session: u64,
    /// The demanding terminal.
    pub demander: Destination,
    /// The user logged in there ("" when none).
    pub demander_user: String,
    /// The terminal demanded.
    pub target: Destination,
    /// The user logged in there ("" when none).
    pub target_user: String,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Bytes relayed from the demander to the target so far.
    pub bytes_to_target: u64,
    /// Bytes relayed from the target to the demander so far.
    pub bytes_to_demander: u64,
}

/// What the first frame of a connection turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloCheck {
    /// A hello of a protocol version this side serves
    /// ([`MIN_PROTOCOL_VERSION`]..=[`PROTOCOL_VERSION`]).
    Hello(Hello),
    /// Not an imagecast hello at all.
    NotHello,
    /// A hello of a protocol version this side does not serve.
    OtherVersion(u16),
    /// A hello of a served version whose fields do not decode.
    Malformed(String),
}

/// Reads the first frame: magic and version first, then the rest of the hello.
pub fn parse_hello(body: &[u8]) -> HelloCheck {
    match postcard::take_from_bytes::<HelloPrefix>(body) {
        Err(_) => HelloCheck::NotHello,
        Ok((p, _)) if p.magic != MAGIC => HelloCheck::NotHello,
        Ok((p, _)) if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&p.version) => {
            HelloCheck::OtherVersion(p.version)
        }
        Ok(_) => match postcard::from_bytes::<Hello>(body) {
            Ok(h) => HelloCheck::Hello(h),
            Err(e) => HelloCheck::Malformed(e.to_string()),
        },
    }
}
