//! The simulated telephone network: numbers, calls, faults and a call log, shared by the
//! processes of one machine through a folder (`--exchange DIR`).
//!
//! # Folder layout
//! ```text
//! DIR/
//!   exchange.lock         taken (flock) around every fault update and call-log line
//!   lines/NUMBER/holder   held (flock) by the process that holds NUMBER: its pid and station
//!   lines/NUMBER/sock     that process's Unix-domain socket: a call is a connection to it
//!   faults/NUMBER.toml    the faults set on NUMBER (see [`Faults`])
//!   calls.log             one tab-separated line per call attempt (see [`CallRecord`])
//! ```
//! A number is held while its holder lock is: the kernel releases it when the process dies,
//! so a crashed station never blocks its number and the next holder removes the stale socket.
//!
//! # A call
//! The caller's process plays the network: it reads (and uses up) the called number's faults,
//! returns `busy` or rings out for the ring time (at most 10 s) on a fault, rings a number
//! nobody holds until the ring time is over (`no answer`), and otherwise connects to the
//! callee's socket. The callee answers `busy` when all its lines are in use, or answers with
//! its station ID and capabilities. Pages then travel as real T.4 (MH) data, or T.6 (G4) when
//! both ends have error correction (ECM); the receiver decodes and checks each page
//! ([`crate::coding::check`]) and confirms or rejects it. A `page-error` fault damages the
//! data of one page on the way, so the check really fails; `hang-up-after` drops the line.
//!
//! # API for a gateway
//! [`Exchange::open`] → [`Line::register`] (a number, a station ID, [`Capabilities`], a
//! number of lines) → [`Line::dial`] (pages, [`DialOptions`] with the first page to send) →
//! [`CallOutcome`]; [`Line::accept`] yields every answered incoming call as an
//! [`IncomingCall`] with its pages.

mod exchange;
pub mod faults;
mod line;
mod wire;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::coding::Coding;
use crate::page::{FaxPage, Resolution};

pub use exchange::{Exchange, MAX_RING_TIME};
pub use faults::{Fault, Faults};
pub use line::Line;

/// The longest station ID (T.30 TSI/CSI: 20 characters).
pub const MAX_STATION_ID: usize = 20;
/// The longest telephone number.
pub const MAX_NUMBER: usize = 20;

/// What a station can do, exchanged when a call is answered (T.30 DIS/DCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Receives fine resolution (7.7 lines/mm).
    pub fine: bool,
    /// Codes T.6 (Group 4); used only when both ends also have error correction.
    pub g4: bool,
    /// Error correction mode.
    pub ecm: bool,
}

impl Default for Capabilities {
    /// A modern fax machine: fine, Group 4, error correction.
    fn default() -> Capabilities {
        Capabilities {
            fine: true,
            g4: true,
            ecm: true,
        }
    }
}

impl Capabilities {
    /// The coding and error correction two ends agree on: G4 only when both have ECM and G4.
    pub fn negotiate(self, other: Capabilities) -> (Coding, bool) {
        let ecm = self.ecm && other.ecm;
        let coding = if ecm && self.g4 && other.g4 {
            Coding::G4
        } else {
            Coding::Mh
        };
        (coding, ecm)
    }
}

/// How an outgoing call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// Every page was confirmed.
    Sent,
    /// The number was busy.
    Busy,
    /// Nobody answered within the ring time.
    NoAnswer,
    /// The receiver rejected `page` (numbered in the document, from 1); the pages before it
    /// in this call were confirmed.
    PageError {
        /// The rejected page, 1-based in the document.
        page: usize,
        /// What the receiver found.
        reason: String,
    },
    /// The call failed otherwise (the line dropped, a protocol error).
    Failed(String),
}

impl CallResult {
    /// The word of a communication record: `sent`, `busy`, `no answer`, `page error`,
    /// `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            CallResult::Sent => "sent",
            CallResult::Busy => "busy",
            CallResult::NoAnswer => "no answer",
            CallResult::PageError { .. } => "page error",
            CallResult::Failed(_) => "failed",
        }
    }

    /// The reason to show beside the word, if any.
    pub fn reason(&self) -> Option<String> {
        match self {
            CallResult::PageError { page, reason } => Some(format!("page {page}: {reason}")),
            CallResult::Failed(reason) => Some(reason.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Display for CallResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallResult::PageError { page, reason } => {
                write!(f, "page error at page {page}: {reason}")
            }
            CallResult::Failed(reason) => write!(f, "failed: {reason}"),
            other => f.write_str(other.word()),
        }
    }
}

/// The simulated line's signalling rate (V.17), reported in call outcomes and used by the
/// time scale.
pub const BIT_RATE: u32 = 14_400;

/// Options of one outgoing call.
#[derive(Debug, Clone)]
pub struct DialOptions {
    /// The first page of the document to send, 1-based: a retry resumes at the first page not
    /// confirmed.
    pub first_page: usize,
    /// Where to report the call's progress as it happens (for a progress screen); nothing is
    /// reported when `None`. Reports are dropped if the receiver is gone.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<CallProgress>>,
}

impl Default for DialOptions {
    fn default() -> DialOptions {
        DialOptions {
            first_page: 1,
            progress: None,
        }
    }
}

impl DialOptions {
    /// Options that start at `first_page` (1-based) and report no progress.
    pub fn from_page(first_page: usize) -> DialOptions {
        DialOptions {
            first_page,
            ..DialOptions::default()
        }
    }
}

/// A step of an outgoing call, reported through [`DialOptions::progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallProgress {
    /// The number is being dialled and rings.
    Dialling,
    /// The call was answered.
    Connected {
        /// The answering station's ID (made safe, see [`peer_station`]).
        remote_station: String,
        /// The coding agreed.
        coding: Coding,
        /// Whether error correction is used.
        ecm: bool,
    },
    /// A page is being sent.
    SendingPage {
        /// The page, 1-based in the document.
        page: usize,
        /// Pages in the document.
        of: usize,
    },
    /// The receiver confirmed a page.
    PageConfirmed {
        /// The page, 1-based in the document.
        page: usize,
    },
}

/// The result of [`Line::dial`]: everything a communication record needs.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The number dialled.
    pub number: String,
    /// How the call ended.
    pub result: CallResult,
    /// The answering station's ID (printable ASCII, at most 20 characters), once answered.
    pub remote_station: Option<String>,
    /// Pages confirmed in this call.
    pub pages_confirmed: usize,
    /// The first page of the document not confirmed yet (1-based): where a retry resumes.
    /// One past the last page when everything was sent.
    pub next_page: usize,
    /// The coding used, once answered.
    pub coding: Option<Coding>,
    /// Whether error correction was used.
    pub ecm: bool,
    /// The signalling rate in bit/s ([`BIT_RATE`]), once answered.
    pub bit_rate: Option<u32>,
    /// From dialling to hanging up.
    pub duration: Duration,
}

/// How an incoming call ended, seen from the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reception {
    /// The caller sent its last page and hung up.
    Complete,
    /// A page failed the check; the caller hung up after it.
    PageRejected {
        /// 1-based page number within the call.
        page: usize,
        /// What the check found.
        reason: String,
    },
    /// The line dropped before the caller said it was done.
    Dropped(String),
}

/// An incoming call that was answered, with the pages received and confirmed.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    /// The caller's number.
    pub caller: String,
    /// The number called (this line's).
    pub called: String,
    /// The caller's station ID (TSI): printable ASCII, at most 20 characters.
    pub remote_station: String,
    /// The confirmed pages, in order, decoded (bad lines repeat the line above).
    pub pages: Vec<FaxPage>,
    /// The coding used.
    pub coding: Coding,
    /// Whether error correction was used.
    pub ecm: bool,
    /// How the call ended.
    pub reception: Reception,
    /// From answering to hanging up.
    pub duration: Duration,
}

/// One line of the call log (`calls.log`), written by the calling end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Seconds since the Unix epoch when the call was dialled.
    pub time: u64,
    /// The caller's number.
    pub caller: String,
    /// The number called.
    pub called: String,
    /// `sent`, `busy`, `no answer`, `page error` or `failed`.
    pub result: String,
    /// Pages confirmed.
    pub pages: usize,
    /// `MH`, `G4`, or empty when the call was not answered.
    pub coding: String,
    /// Milliseconds from dialling to hanging up.
    pub duration_ms: u64,
    /// The answering station's ID, escaped.
    pub remote_station: String,
    /// Why, for a page error or a failure.
    pub reason: String,
}

impl CallRecord {
    /// The record as one tab-separated line (fields escaped, so none holds a tab or newline).
    pub(crate) fn to_line(&self) -> String {
        let clean = |s: &str| imagecast_shared::text::escape(s).replace('\t', " ");
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.time,
            self.caller,
            self.called,
            self.result,
            self.pages,
            self.coding,
            self.duration_ms,
            clean(&self.remote_station),
            clean(&self.reason)
        )
    }

    /// Parses a line written by [`CallRecord::to_line`]; `None` for anything else.
    pub(crate) fn from_line(line: &str) -> Option<CallRecord> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 9 {
            return None;
        }
        Some(CallRecord {
            time: f[0].parse().ok()?,
            caller: f[1].to_string(),
            called: f[2].to_string(),
            result: f[3].to_string(),
            pages: f[4].parse().ok()?,
            coding: f[5].to_string(),
            duration_ms: f[6].parse().ok()?,
            remote_station: f[7].to_string(),
            reason: f[8].to_string(),
        })
    }
}

/// Errors of the simulated network that are not a call's result.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A number that is not 1–20 digits (with an optional leading `+`, and `*` or `#`).
    #[error("{0:?} is not a telephone number (1 to 20 digits, optionally a leading +)")]
    InvalidNumber(String),
    /// A station ID that is too long or not printable ASCII.
    #[error("{0:?} is not a station ID (at most 20 printable ASCII characters)")]
    InvalidStation(String),
    /// Another live process holds the number.
    #[error("number {0} is already held by another station on this exchange")]
    NumberTaken(String),
    /// Every line of this station is in use.
    #[error("all {0} lines of this station are in use")]
    NoFreeLine(usize),
    /// The exchange folder's path is too long for a Unix-domain socket.
    #[error("the exchange folder's path is too long for a socket ({0}): use a shorter folder")]
    PathTooLong(String),
    /// A faults file does not parse.
    #[error("faults file {path}: {reason}")]
    Faults {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A file or socket operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or socket.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The line's listener stopped.
    #[error("the line is closed")]
    Closed,
    /// Nothing to send: no pages, or a first page past the last.
    #[error("nothing to send: first page {first} of {pages}")]
    NoPages {
        /// The first page asked for (1-based).
        first: usize,
        /// Pages in the document.
        pages: usize,
    },
    /// Something inside this process failed during a call.
    #[error("{0}")]
    Protocol(String),
}

impl SimError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SimError {
        SimError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Checks that `number` is a telephone number this network knows (see
/// [`SimError::InvalidNumber`]); numbers name folders, so nothing else may pass.
pub fn check_number(number: &str) -> Result<(), SimError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    let ok = !digits.is_empty()
        && number.len() <= MAX_NUMBER
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    if ok {
        Ok(())
    } else {
        Err(SimError::InvalidNumber(number.to_string()))
    }
}

/// Checks a local station ID: at most 20 printable ASCII characters.
pub fn check_station(station: &str) -> Result<(), SimError> {
    if station.len() <= MAX_STATION_ID && station.chars().all(|c| (' '..='~').contains(&c)) {
        Ok(())
    } else {
        Err(SimError::InvalidStation(station.to_string()))
    }
}

/// A station ID received from the other end, made safe: printable ASCII only (anything else
/// becomes `?`), at most 20 characters, trailing blanks trimmed.
pub fn peer_station(raw: &str) -> String {
    raw.chars()
        .take(MAX_STATION_ID)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// A page as it goes on a line that receives `fine` or not.
pub(crate) fn for_receiver(page: &FaxPage, fine: bool) -> std::borrow::Cow<'_, FaxPage> {
    if page.resolution == Resolution::Fine && !fine {
        std::borrow::Cow::Owned(page.to_standard())
    } else {
        std::borrow::Cow::Borrowed(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_station_ids_are_checked_and_peer_text_is_bounded() {
        for ok in ["1", "+4930123456", "*31#555"] {
            check_number(ok).unwrap();
        }
        for bad in ["", "+", "12/3", "..", "123456789012345678901", "12 3"] {
            assert!(check_number(bad).is_err(), "{bad}");
        }
        check_station("ACME Sales +1 555").unwrap();
        assert!(check_station("a\nb").is_err());
        assert!(check_station("x".repeat(21).as_str()).is_err());
        assert_eq!(
            peer_station("evil\x1b[2Jstation name that is long"),
            "evil?[2Jstation name"
        );
    }

    #[test]
    fn g4_only_when_both_ends_have_ecm() {
        let full = Capabilities::default();
        let no_ecm = Capabilities { ecm: false, ..full };
        assert_eq!(full.negotiate(full), (Coding::G4, true));
        assert_eq!(full.negotiate(no_ecm), (Coding::Mh, false));
        assert_eq!(no_ecm.negotiate(full), (Coding::Mh, false));
        let ecm_no_g4 = Capabilities { g4: false, ..full };
        assert_eq!(full.negotiate(ecm_no_g4), (Coding::Mh, true));
    }

    #[test]
    fn call_records_survive_the_log_with_hostile_station_ids() {
        let record = CallRecord {
            time: 1,
            caller: "100".into(),
            called: "200".into(),
            result: "page error".into(),
            pages: 2,
            coding: "MH".into(),
            duration_ms: 30,
            remote_station: "A\tB\nC".into(),
            reason: "page 3: bad".into(),
        };
        let line = record.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        let back = CallRecord::from_line(line.trim_end_matches('\n')).unwrap();
        assert_eq!(back.remote_station, "A\\tB\\nC");
        assert_eq!(back.pages, 2);
    }
}
