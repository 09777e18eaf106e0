//! The network fax messages (version 2): one nested enum per direction, carried by
//! [`crate::msg::ClientMsg::Fax`] (31) and [`crate::msg::ServerMsg::Fax`] (31), so fax grows
//! without touching the top-level enums again.
//!
//! Variants and fields are only ever **appended**, like the top-level enums; every variant is
//! version 2 (the version that brought `Fax`), and a later one says its version in
//! [`FaxRequest::since`] / [`FaxEvent::since`].
//!
//! - A **gateway** (device kind `fax-gateway`, a receiving connection) announces its lines
//!   with [`FaxRequest::Gateway`], is pushed [`FaxEvent::Job`]s, reports
//!   [`FaxRequest::Progress`] and each call's [`FaxRequest::Result`] (answered `Ok`).
//! - A **terminal** sends with [`FaxRequest::Send`] (answered [`FaxEvent::Accepted`] once the
//!   job and its files are on disk, fsynced), asks [`FaxRequest::Status`],
//!   [`FaxRequest::Gateways`], [`FaxRequest::Records`], and is pushed [`FaxEvent::Progress`]
//!   and [`FaxEvent::Record`] for its own jobs.
//! - A gateway **uploads a fax it received** in [`FaxRequest::Chunk`]s (each answered `Ok`),
//!   then [`FaxRequest::Received`] (answered [`FaxEvent::ReceivedStored`] once it is on disk,
//!   fsynced); it keeps the fax until then and uploads it again after a reconnect, and the
//!   supervisor recognises it by [`FaxReception::reception`]. The terminal a received fax is
//!   routed to is pushed [`FaxEvent::Incoming`] just before the fax's ordinary delivery.
//! - **Settings**: the supervisor pushes a gateway its settings ([`FaxEvent::Settings`]); the
//!   gateway applies them and answers [`FaxRequest::SettingsApplied`]. A terminal reads and
//!   changes them with [`FaxRequest::SettingsShow`] / [`FaxRequest::SettingsSet`] (answered
//!   [`FaxEvent::SettingsInfo`]).
//! - A job larger than one frame ([`MAX_JOB_BYTES`]) is uploaded in [`FaxRequest::Chunk`]s
//!   and sent with [`FaxRequest::SendUploaded`]; its gateway is given
//!   [`FaxEvent::JobByParts`] and fetches the files with [`FaxRequest::JobPart`].
//! - A terminal reads the **phone book** its user sees there with [`FaxRequest::PhoneBook`]
//!   (answered [`FaxEvent::PhoneBook`]).
//! - A user holding `supervisor-settings` reads the **supervisor's settings** (its tables, as
//!   the TOML file of `imagecast-server fax export`) with [`FaxRequest::SupervisorShow`] and
//!   replaces them with [`FaxRequest::SupervisorSet`], both answered
//!   [`FaxEvent::Supervisor`]; a version (a digest of the file) refuses a stale change.

/// Most bytes of the supervisor's settings file sent with [`FaxRequest::SupervisorSet`].
pub const MAX_SUPERVISOR_FILE_BYTES: usize = 1 << 20;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{DistributionId, RequestId};

/// Most bytes the files of one fax job may total: they travel inline in one frame.
pub const MAX_JOB_BYTES: usize = crate::limits::MAX_FRAME - 64 * 1024;

/// Most bytes of one [`FaxRequest::Chunk`] (256 KiB, well inside the frame limit).
pub const MAX_CHUNK_BYTES: usize = crate::limits::CHUNK_SIZE;

/// Most bytes one received fax may have (64 MiB: about 1000 dense fine pages).
pub const MAX_RECEIVED_BYTES: u64 = 64 << 20;

/// Most bytes the files of one fax job sent in chunks ([`FaxRequest::SendUploaded`]) may
/// total (64 MiB).
pub const MAX_UPLOADED_JOB_BYTES: u64 = 64 << 20;

/// One file of a fax job uploaded before in [`FaxRequest::Chunk`]s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxUpload {
    /// The file's name (no directories).
    pub name: String,
    /// The upload that holds its bytes.
    pub upload: String,
    /// Its size.
    pub bytes: u64,
}

/// One file of a fax job: a PNG, JPEG or TIFF (each page of a multi-page TIFF is one fax
/// page), carried inline. A job's files travel in one frame, so they total less than
/// [`crate::limits::MAX_FRAME`] less a little for the rest of the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxFile {
    /// The file's name (no directories).
    pub name: String,
    /// Its bytes.
    pub data: Bytes,
}

/// A fax call to make, pushed to a gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxJob {
    /// The supervisor's job ID.
    pub job: String,
    /// The attempt (dial) number for this job and number, from 1; the result names it.
    pub attempt: u32,
    /// The number to dial.
    pub number: String,
    /// Send scaled images at fine resolution.
    pub fine: bool,
    /// The first page to send (from 1): later than 1 when earlier pages were confirmed.
    pub first_page: u32,
    /// The document.
    pub files: Vec<FaxFile>,
}

/// Where a gateway's call stands ([`FaxRequest::Progress`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallStage {
    /// 0: dialling.
    Dialling,
    /// 1: the remote station answered.
    Connected {
        /// Its station ID.
        station: String,
    },
    /// 2: sending page `page` of `of` (document pages, from 1).
    Sending {
        /// The page.
        page: u32,
        /// Pages in the document.
        of: u32,
    },
    /// 3: the receiver confirmed page `page`.
    Confirmed {
        /// The page.
        page: u32,
    },
}

/// The result of one call ([`FaxRequest::Result`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxResult {
    /// The job.
    pub job: String,
    /// The number dialled.
    pub number: String,
    /// The attempt from [`FaxJob::attempt`].
    pub attempt: u32,
    /// `sent`, `busy`, `no answer`, `page error` or `failed`.
    pub outcome: String,
    /// The remote station ID ("" when unanswered).
    pub station: String,
    /// Pages confirmed on this call.
    pub pages_confirmed: u32,
    /// Pages in the document.
    pub pages_total: u32,
    /// Where a retry resumes (document page, from 1).
    pub next_page: u32,
    /// `MH`, `G4`, or "" when unanswered.
    pub coding: String,
    /// Whether error correction was used.
    pub ecm: bool,
    /// Signalling rate, bit/s (0 when unanswered).
    pub speed: u32,
    /// How long the call took, in milliseconds.
    pub duration_ms: u64,
    /// Why it did not succeed ("" when it did).
    pub reason: String,
}

/// One number of a job, as the supervisor sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxNumberStatus {
    /// The job.
    pub job: String,
    /// The number.
    pub number: String,
    /// `queued`, `dialling`, `sent` or `failed`.
    pub state: String,
    /// True when nothing more will happen (`sent` or `failed`).
    pub done: bool,
    /// The gateway of the current or last call ("" before the first).
    pub gateway: String,
    /// Pages confirmed so far (over every call).
    pub pages_sent: u32,
    /// Pages in the document (0 until a gateway read it).
    pub pages_total: u32,
    /// Calls made.
    pub dials: u32,
    /// What is going on now, or why it failed, in a few words.
    pub detail: String,
}

/// A communication record (one call attempt), as a terminal sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxRecordInfo {
    /// The record's number.
    pub seq: i64,
    /// When the call began, ms since the Unix epoch.
    pub at_ms: i64,
    /// `send` or `receive`.
    pub direction: String,
    /// The job ("" for a reception).
    pub job: String,
    /// The user.
    pub user: String,
    /// The terminal.
    pub terminal: String,
    /// The gateway's domain.
    pub gateway: String,
    /// The number.
    pub number: String,
    /// The remote station ID.
    pub station: String,
    /// Pages confirmed.
    pub pages: u32,
    /// Duration, ms.
    pub duration_ms: u64,
    /// `MH`, `G4`, or "".
    pub coding: String,
    /// Bit/s.
    pub speed: u32,
    /// `sent`, `received`, `busy`, `no answer`, `page error` or `failed`.
    pub result: String,
    /// Why ("" when it succeeded).
    pub reason: String,
}

/// A gateway as terminals see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxGatewayInfo {
    /// Its device domain.
    pub domain: String,
    /// True while it is connected and announced its lines.
    pub online: bool,
    /// Its lines (0 when offline).
    pub lines: u32,
    /// Lines in a call now.
    pub in_use: u32,
    /// Its own number ("" when offline).
    pub number: String,
}

/// A fax a gateway received ([`FaxRequest::Received`]); its TIFF (one page per confirmed fax
/// page, as the call coded it) was uploaded before in [`FaxRequest::Chunk`]s named
/// [`FaxReception::reception`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxReception {
    /// The gateway's ID for this fax (at most 64 letters, digits, `-` and `_`): the same fax
    /// uploaded again is recognised by it, and its chunks carry it.
    pub reception: String,
    /// The caller's number ("" when unknown).
    pub caller: String,
    /// The number that was called.
    pub called: String,
    /// The remote station ID (TSI).
    pub station: String,
    /// Pages received (confirmed).
    pub pages: u32,
    /// `MH` or `G4`.
    pub coding: String,
    /// Whether error correction was used.
    pub ecm: bool,
    /// Signalling rate, bit/s.
    pub speed: u32,
    /// How long the call took, in milliseconds.
    pub duration_ms: u64,
    /// When the call began, ms since the Unix epoch.
    pub at_ms: i64,
    /// Why the call ended early ("" when it was complete).
    pub reason: String,
    /// The TIFF's size in bytes.
    pub bytes: u64,
}

/// A received fax, as the terminal it is routed to sees it ([`FaxEvent::Incoming`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxIncoming {
    /// The distribution that delivers it (the delivery that follows names it).
    pub dist: DistributionId,
    /// The number that was called.
    pub called: String,
    /// The receive record: the caller's number, station ID, gateway, pages.
    pub record: FaxRecordInfo,
}

/// A gateway's settings ([`FaxEvent::Settings`], [`FaxEvent::SettingsInfo`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxSettings {
    /// The gateway's device domain.
    pub gateway: String,
    /// The settings' version (0: never set).
    pub version: i64,
    /// The version the gateway last said it applied.
    pub applied_version: i64,
    /// Every setting, `KEY`, `VALUE`, in the order `fax settings show` prints them.
    pub values: Vec<(String, String)>,
}

/// A phone-book entry as a terminal sees it ([`FaxEvent::PhoneBook`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxBookEntry {
    /// Its name, as given to [`FaxRequest::Send`]'s `books`.
    pub name: String,
    /// Its number.
    pub number: String,
    /// True when everyone sees it.
    pub shared: bool,
    /// Whom it is labelled for when not shared: `user ID` or `device DOMAIN` each.
    pub labels: Vec<String>,
}

/// Fax requests, terminal or gateway → server ([`crate::msg::ClientMsg::Fax`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaxRequest {
    /// 0: gateway: this connection serves fax calls on `lines` lines; answered `Ok`.
    Gateway {
        /// Request ID.
        id: RequestId,
        /// The gateway's own number.
        number: String,
        /// Its station ID.
        station: String,
        /// Lines it can call on at once.
        lines: u32,
    },
    /// 1: send a fax (a logged-in user); answered [`FaxEvent::Accepted`] once on disk.
    Send {
        /// Request ID.
        id: RequestId,
        /// Chosen by the client; the same job sent again is recognised.
        job: String,
        /// Numbers to send to.
        numbers: Vec<String>,
        /// Phone-book entries to send to.
        books: Vec<String>,
        /// Fine resolution.
        fine: bool,
        /// The document.
        files: Vec<FaxFile>,
    },
    /// 2: gateway: a call's progress; no reply.
    Progress {
        /// The job.
        job: String,
        /// The number.
        number: String,
        /// The attempt.
        attempt: u32,
        /// What happened.
        stage: CallStage,
    },
    /// 3: gateway: a call ended; answered `Ok` once recorded.
    Result {
        /// Request ID.
        id: RequestId,
        /// The result.
        result: FaxResult,
    },
    /// 4: a job's state, number by number; answered [`FaxEvent::Status`]. An empty job asks
    /// for this user's jobs.
    Status {
        /// Request ID.
        id: RequestId,
        /// The job, or "".
        job: String,
    },
    /// 5: the gateways; answered [`FaxEvent::Gateways`].
    Gateways {
        /// Request ID.
        id: RequestId,
    },
    /// 6: the last communication records (this user's; every one for an admin); answered
    /// [`FaxEvent::Records`].
    Records {
        /// Request ID.
        id: RequestId,
        /// How many, newest last.
        last: u32,
    },
    /// 7: gateway: a piece of a file it uploads (a received fax), at `offset`; offset 0 starts
    /// the upload over. Answered `Ok`.
    Chunk {
        /// Request ID.
        id: RequestId,
        /// The upload's name ([`FaxReception::reception`]).
        upload: String,
        /// Where the piece goes.
        offset: u64,
        /// The whole file's size.
        total: u64,
        /// At most [`MAX_CHUNK_BYTES`].
        data: Bytes,
    },
    /// 8: gateway: a fax it received, uploaded before in chunks; answered
    /// [`FaxEvent::ReceivedStored`] once stored (fsynced), routed and recorded.
    Received {
        /// Request ID.
        id: RequestId,
        /// The fax.
        fax: FaxReception,
    },
    /// 9: gateway: it applied settings `version` ([`FaxEvent::Settings`]); answered `Ok`.
    SettingsApplied {
        /// Request ID.
        id: RequestId,
        /// The version applied.
        version: i64,
        /// The keys it only stored, since its line cannot honour them.
        stored_only: Vec<String>,
    },
    /// 10: a gateway's settings (needs the competence `gateway-settings`); answered
    /// [`FaxEvent::SettingsInfo`].
    SettingsShow {
        /// Request ID.
        id: RequestId,
        /// The gateway's domain.
        gateway: String,
    },
    /// 11: change a gateway's settings, all or none (needs `gateway-settings`); answered
    /// [`FaxEvent::SettingsInfo`] with the new version, which is pushed to the gateway.
    SettingsSet {
        /// Request ID.
        id: RequestId,
        /// The gateway's domain.
        gateway: String,
        /// `KEY=VALUE` each.
        assignments: Vec<String>,
    },
    /// 12: send a fax whose files were uploaded before in [`FaxRequest::Chunk`]s (a job
    /// larger than [`MAX_JOB_BYTES`]); otherwise as [`FaxRequest::Send`].
    SendUploaded {
        /// Request ID.
        id: RequestId,
        /// Chosen by the client; the same job sent again is recognised.
        job: String,
        /// Numbers to send to.
        numbers: Vec<String>,
        /// Phone-book entries to send to.
        books: Vec<String>,
        /// Fine resolution.
        fine: bool,
        /// The document, file by file.
        files: Vec<FaxUpload>,
    },
    /// 13: gateway: a piece of file `file` (from 0) of job `job` it was given with
    /// [`FaxEvent::JobByParts`], from `offset`; answered [`FaxEvent::JobPart`].
    JobPart {
        /// Request ID.
        id: RequestId,
        /// The job.
        job: String,
        /// The file's index.
        file: u32,
        /// Where the piece begins.
        offset: u64,
    },
    /// 14: the phone-book entries this user sees at this terminal (shared ones and those
    /// labelled for the user or the terminal); answered [`FaxEvent::PhoneBook`].
    PhoneBook {
        /// Request ID.
        id: RequestId,
    },
    /// 15: the supervisor's settings (needs `supervisor-settings`); answered
    /// [`FaxEvent::Supervisor`].
    SupervisorShow {
        /// Request ID.
        id: RequestId,
    },
    /// 16: replace the supervisor's settings with `file`, all or none (needs
    /// `supervisor-settings`), only if they are still at `version`; answered
    /// [`FaxEvent::Supervisor`] with the new version.
    SupervisorSet {
        /// Request ID.
        id: RequestId,
        /// The TOML file (at most [`MAX_SUPERVISOR_FILE_BYTES`]).
        file: String,
        /// The version the file was read at.
        version: String,
    },
}

impl FaxRequest {
    /// The request's ID, for those that are requests.
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            FaxRequest::Progress { .. } => None,
            FaxRequest::Gateway { id, .. }
            | FaxRequest::Send { id, .. }
            | FaxRequest::Result { id, .. }
            | FaxRequest::Status { id, .. }
            | FaxRequest::Gateways { id }
            | FaxRequest::Records { id, .. }
            | FaxRequest::Chunk { id, .. }
            | FaxRequest::Received { id, .. }
            | FaxRequest::SettingsApplied { id, .. }
            | FaxRequest::SettingsShow { id, .. }
            | FaxRequest::SettingsSet { id, .. }
            | FaxRequest::SendUploaded { id, .. }
            | FaxRequest::JobPart { id, .. }
            | FaxRequest::PhoneBook { id }
            | FaxRequest::SupervisorShow { id }
            | FaxRequest::SupervisorSet { id, .. } => Some(*id),
        }
    }

    /// The protocol version that introduced this request: every one so far came with
    /// version 2, the version that brought fax (7–11 were appended before its release).
    pub fn since(&self) -> u16 {
        match self {
            FaxRequest::Gateway { .. }
            | FaxRequest::Send { .. }
            | FaxRequest::Progress { .. }
            | FaxRequest::Result { .. }
            | FaxRequest::Status { .. }
            | FaxRequest::Gateways { .. }
            | FaxRequest::Records { .. }
            | FaxRequest::Chunk { .. }
            | FaxRequest::Received { .. }
            | FaxRequest::SettingsApplied { .. }
            | FaxRequest::SettingsShow { .. }
            | FaxRequest::SettingsSet { .. }
            | FaxRequest::SendUploaded { .. }
            | FaxRequest::JobPart { .. }
            | FaxRequest::PhoneBook { .. }
            | FaxRequest::SupervisorShow { .. }
            | FaxRequest::SupervisorSet { .. } => 2,
        }
    }
}

/// Fax replies and events, server → terminal or gateway ([`crate::msg::ServerMsg::Fax`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaxEvent {
    /// 0: the job and its files are on disk; one number each.
    Accepted {
        /// Request ID.
        id: RequestId,
        /// The job.
        job: String,
        /// The numbers it goes to (phone-book entries resolved).
        numbers: Vec<String>,
        /// True when this job had been accepted before.
        duplicate: bool,
    },
    /// 1: event to a gateway: make this call.
    Job(FaxJob),
    /// 2: event to the sending terminal: a number of its job changed.
    Progress(FaxNumberStatus),
    /// 3: event to the sending terminal: a call of its job was recorded.
    Record(FaxRecordInfo),
    /// 4: a job's numbers.
    Status {
        /// Request ID.
        id: RequestId,
        /// Every number asked about.
        numbers: Vec<FaxNumberStatus>,
    },
    /// 5: every gateway.
    Gateways {
        /// Request ID.
        id: RequestId,
        /// In domain order.
        gateways: Vec<FaxGatewayInfo>,
    },
    /// 6: communication records, oldest first.
    Records {
        /// Request ID.
        id: RequestId,
        /// The records.
        records: Vec<FaxRecordInfo>,
    },
    /// 7: a received fax ([`FaxRequest::Received`]) is on disk; the gateway may forget it.
    ReceivedStored {
        /// Request ID.
        id: RequestId,
        /// The fax's [`FaxReception::reception`].
        reception: String,
        /// True when it had been stored before (an upload again after a lost answer).
        duplicate: bool,
    },
    /// 8: event to a terminal: the delivery of `dist` that follows is a received fax.
    Incoming(FaxIncoming),
    /// 9: event to a gateway: apply these settings, then answer
    /// [`FaxRequest::SettingsApplied`] with their version.
    Settings(FaxSettings),
    /// 10: a gateway's settings ([`FaxRequest::SettingsShow`], [`FaxRequest::SettingsSet`]).
    SettingsInfo {
        /// Request ID.
        id: RequestId,
        /// The settings; `version > applied_version` means pending.
        settings: FaxSettings,
    },
    /// 11: event to a gateway: make this call, like [`FaxEvent::Job`], but the files are too
    /// large for one frame: their data is empty, and the gateway fetches it with
    /// [`FaxRequest::JobPart`].
    JobByParts {
        /// The call, its files without data.
        job: FaxJob,
        /// Each file's size.
        sizes: Vec<u64>,
    },
    /// 12: a piece of a job's file ([`FaxRequest::JobPart`]): at most [`MAX_CHUNK_BYTES`];
    /// empty at the end of the file.
    JobPart {
        /// Request ID.
        id: RequestId,
        /// The bytes.
        data: Bytes,
    },
    /// 13: the phone-book entries the asking user sees at this terminal
    /// ([`FaxRequest::PhoneBook`]), by name.
    PhoneBook {
        /// Request ID.
        id: RequestId,
        /// The entries.
        entries: Vec<FaxBookEntry>,
    },
    /// 14: the supervisor's settings as they are now ([`FaxRequest::SupervisorShow`],
    /// [`FaxRequest::SupervisorSet`]).
    Supervisor {
        /// Request ID.
        id: RequestId,
        /// The TOML file.
        file: String,
        /// Its version, to give back with a change.
        version: String,
    },
}

impl FaxEvent {
    /// The request this answers, if it is a reply.
    pub fn reply_to(&self) -> Option<RequestId> {
        match self {
            FaxEvent::Accepted { id, .. }
            | FaxEvent::Status { id, .. }
            | FaxEvent::Gateways { id, .. }
            | FaxEvent::Records { id, .. }
            | FaxEvent::ReceivedStored { id, .. }
            | FaxEvent::SettingsInfo { id, .. }
            | FaxEvent::JobPart { id, .. }
            | FaxEvent::PhoneBook { id, .. }
            | FaxEvent::Supervisor { id, .. } => Some(*id),
            FaxEvent::Job(_)
            | FaxEvent::Progress(_)
            | FaxEvent::Record(_)
            | FaxEvent::Incoming(_)
            | FaxEvent::Settings(_)
            | FaxEvent::JobByParts { .. } => None,
        }
    }

    /// The protocol version that introduced this event: every one so far came with
    /// version 2 (7–10 were appended before its release).
    pub fn since(&self) -> u16 {
        match self {
            FaxEvent::Accepted { .. }
            | FaxEvent::Job(_)
            | FaxEvent::Progress(_)
            | FaxEvent::Record(_)
            | FaxEvent::Status { .. }
            | FaxEvent::Gateways { .. }
            | FaxEvent::Records { .. }
            | FaxEvent::ReceivedStored { .. }
            | FaxEvent::Incoming(_)
            | FaxEvent::Settings(_)
            | FaxEvent::SettingsInfo { .. }
            | FaxEvent::JobByParts { .. }
            | FaxEvent::JobPart { .. }
            | FaxEvent::PhoneBook { .. }
            | FaxEvent::Supervisor { .. } => 2,
        }
    }
}
