//! The communication records (002 record 22, FIG. 3 steps 203–206, FIG. 4 step 303): one row
//! per call attempt, sent or received, kept by the supervisor, and their export in HylaFAX's
//! `xferfaxlog(5)` format ([`xferfaxlog_line`]), so tools written for a HylaFAX server's
//! activity log read the supervisor's too.
//!
//! # The `xferfaxlog` lines
//!
//! Tab-separated, one per record, as HylaFAX writes them:
//!
//! ```text
//! date SEND commid modem jobid jobtag sender "dest-number" "CSI" params #pages jobtime conntime "reason" "" "" "" "owner" "dcs"
//! date RECV commid modem fax.tif "" fax "local-number" "TSI" params #pages jobtime conntime "reason" "CallID1" "CallID2" "CallID3" "" "dcs"
//! ```
//!
//! - `date` is `MM/DD/YY HH:MM`, in UTC (HylaFAX writes its local time);
//! - `commid` is the record's number, nine digits; `modem` is the gateway's domain;
//!   `jobid` the supervisor's job; `sender` is `USER@TERMINAL`, `owner` the user;
//! - `params` is HylaFAX's session-parameter word (`Class2Params::encode`, format version 1):
//!   vertical resolution in bits 0–2 (0 standard, 1 fine), the bit-rate index in bits 3–6
//!   (0 = 2400 … 5 = 14400 … 13 = 33600 bit/s), page width in bits 9–11 (0 = 1728 pixels),
//!   page length in bits 12–13 (0 = A4), data format in bits 14–15 (0 = 1-D MH, 3 = MMR),
//!   error correction in bit 16, and 1 in bit 21 (the format version);
//! - `jobtime` and `conntime` are `H:MM:SS` (both the call's duration here);
//! - for a reception, `CallID1` is the caller's number; `fax.tif` and `dcs` are empty;
//! - a field that would hold a tab, a newline or `"` has them replaced by a space or `'`, so
//!   every record stays one line of the same fields.

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use super::FaxError;
use super::settings::{Coding, Resolution};
use crate::store::db::DbError;

/// Whether the gateway sent or received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// A fax sent by a gateway for a client.
    Send,
    /// A fax received by a gateway.
    Receive,
}

impl Direction {
    /// `send` or `receive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Receive => "receive",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        match s {
            "send" => Some(Direction::Send),
            "receive" => Some(Direction::Receive),
            _ => None,
        }
    }
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallResult {
    /// Every page was sent and confirmed.
    Sent,
    /// A fax came in and every page was taken.
    Received,
    /// The number was busy.
    Busy,
    /// Nobody answered.
    #[serde(rename = "no answer")]
    NoAnswer,
    /// A page was rejected by the receiver (the call may have gone on or ended).
    #[serde(rename = "page error")]
    PageError,
    /// Anything else (a line fault, a hang-up, an unusable document).
    Failed,
}

impl CallResult {
    /// `sent`, `received`, `busy`, `no answer`, `page error` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Sent => "sent",
            CallResult::Received => "received",
            CallResult::Busy => "busy",
            CallResult::NoAnswer => "no answer",
            CallResult::PageError => "page error",
            CallResult::Failed => "failed",
        }
    }

    /// The inverse of [`CallResult::as_str`].
    pub fn parse(s: &str) -> Option<CallResult> {
        [
            CallResult::Sent,
            CallResult::Received,
            CallResult::Busy,
            CallResult::NoAnswer,
            CallResult::PageError,
            CallResult::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A call attempt to record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    /// When the call began (ms since the Unix epoch).
    pub at_ms: i64,
    /// Sent or received.
    pub direction: Direction,
    /// The supervisor's job ID ("" for a reception).
    pub job: String,
    /// The user who sent, or to whom a received fax went ("" when routed nowhere).
    pub user: String,
    /// The terminal the user sent from, or that got the received fax.
    pub terminal: String,
    /// The gateway's domain.
    pub gateway: String,
    /// The number dialled, or the caller's number for a reception.
    pub number: String,
    /// The gateway line's own number (the number called, for a reception).
    pub local_number: String,
    /// The remote station ID (CSI when sending, TSI when receiving).
    pub station: String,
    /// Pages transferred (confirmed).
    pub pages: u32,
    /// How long the call lasted, in milliseconds.
    pub duration_ms: u64,
    /// Page coding used.
    pub coding: Coding,
    /// Resolution used.
    pub resolution: Resolution,
    /// Whether error correction was used.
    pub error_correction: bool,
    /// Signalling rate, bit/s (0 when the call never connected).
    pub speed: u32,
    /// How it ended.
    pub result: CallResult,
    /// Why it did not succeed ("" when it did).
    pub reason: String,
}

/// A stored communication record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its number (the `commid` of the `xferfaxlog` line); later records have higher ones.
    pub seq: i64,
    /// What was recorded.
    #[serde(flatten)]
    pub record: NewRecord,
}

/// Stores one record and returns its number.
pub fn insert(conn: &Connection, r: &NewRecord) -> Result<i64, FaxError> {
    conn.execute(
        "INSERT INTO fax_records (at_ms, direction, job, user, terminal, gateway, number,
             local_number, station, pages, duration_ms, coding, resolution, ecm, speed, result, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            r.at_ms,
            r.direction.as_str(),
            r.job,
            r.user,
            r.terminal,
            r.gateway,
            r.number,
            r.local_number,
            r.station,
            i64::from(r.pages),
            r.duration_ms as i64,
            r.coding.as_str(),
            match r.resolution {
                Resolution::Standard => "standard",
                Resolution::Fine => "fine",
            },
            r.error_correction,
            i64::from(r.speed),
            r.result.as_str(),
            r.reason,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Which records to read.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this user's.
    pub user: Option<String>,
    /// Only through this gateway.
    pub gateway: Option<String>,
    /// Only this job's.
    pub job: Option<String>,
    /// Only records numbered above this (to follow new ones).
    pub after_seq: Option<i64>,
    /// Only the record with this number.
    pub seq: Option<i64>,
    /// At most this many, the newest (0: no limit).
    pub last: usize,
}

const COLUMNS: &str = "seq, at_ms, direction, job, user, terminal, gateway, number, local_number,
    station, pages, duration_ms, coding, resolution, ecm, speed, result, reason";

fn from_row(r: &Row<'_>) -> rusqlite::Result<(i64, NewRecord, [String; 4])> {
    Ok((
        r.get(0)?,
        NewRecord {
            at_ms: r.get(1)?,
            direction: Direction::Send,
            job: r.get(3)?,
            user: r.get(4)?,
            terminal: r.get(5)?,
            gateway: r.get(6)?,
            number: r.get(7)?,
            local_number: r.get(8)?,
            station: r.get(9)?,
            pages: r.get::<_, i64>(10)?.clamp(0, i64::from(u32::MAX)) as u32,
            duration_ms: r.get::<_, i64>(11)?.max(0) as u64,
            coding: Coding::G3,
            resolution: Resolution::Standard,
            error_correction: r.get(14)?,
            speed: r.get::<_, i64>(15)?.clamp(0, i64::from(u32::MAX)) as u32,
            result: CallResult::Failed,
            reason: r.get(17)?,
        },
        [r.get(2)?, r.get(12)?, r.get(13)?, r.get(16)?],
    ))
}

/// The records the filter selects, oldest first.
pub fn query(conn: &Connection, f: &Filter) -> Result<Vec<Record>, FaxError> {
    let limit = if f.last == 0 { -1 } else { f.last as i64 };
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS} FROM fax_records
           WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR gateway = ?2)
             AND (?3 IS NULL OR job = ?3) AND seq > ?4 AND (?6 IS NULL OR seq = ?6)
           ORDER BY seq DESC LIMIT ?5) ORDER BY seq"
    );
    let rows: Vec<(i64, NewRecord, [String; 4])> = conn
        .prepare_cached(&sql)?
        .query_map(
            params![
                f.user,
                f.gateway,
                f.job,
                f.after_seq.unwrap_or(0),
                limit,
                f.seq
            ],
            from_row,
        )?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(
            |(seq, mut record, [direction, coding, resolution, result])| {
                let corrupt = |what: &str, v: &str| {
                    FaxError::Db(DbError::Corrupt(format!("record {seq}: {what} {v:?}")))
                };
                record.direction =
                    Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?;
                record.coding = Coding::parse(&coding).ok_or_else(|| corrupt("coding", &coding))?;
                record.resolution = match resolution.as_str() {
                    "standard" => Resolution::Standard,
                    "fine" => Resolution::Fine,
                    other => return Err(corrupt("resolution", other)),
                };
                record.result =
                    CallResult::parse(&result).ok_or_else(|| corrupt("result", &result))?;
                Ok(Record { seq, record })
            },
        )
        .collect()
}

/// The record numbered `seq`, if there is one.
pub fn get(conn: &Connection, seq: i64) -> Result<Option<Record>, FaxError> {
    Ok(query(
        conn,
        &Filter {
            seq: Some(seq),
            ..Filter::default()
        },
    )?
    .pop())
}

/// The newest `n` records (every record when `n` is 0), oldest first.
pub fn last(conn: &Connection, n: usize) -> Result<Vec<Record>, FaxError> {
    query(
        conn,
        &Filter {
            last: n,
            ..Filter::default()
        },
    )
}

/// HylaFAX's session-parameter word for a record (see the module doc).
pub fn params_word(r: &NewRecord) -> u32 {
    let vr = match r.resolution {
        Resolution::Standard => 0,
        Resolution::Fine => 1,
    };
    let br = match r.speed {
        0..=4799 => 0,
        4800..=7199 => 1,
        7200..=9599 => 2,
        9600..=11999 => 3,
        12000..=14399 => 4,
        s => (5 + (s - 14_400) / 2_400).min(13),
    };
    let df = match r.coding {
        Coding::G3 => 0,
        Coding::G4 => 3,
    };
    let ec = u32::from(r.error_correction);
    vr | (br << 3) | (df << 14) | (ec << 16) | (1 << 21)
}

/// `H:MM:SS`.
fn hms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `MM/DD/YY HH:MM` in UTC.
fn mdy_hm(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{m:02}/{d:02}/{:02} {:02}:{:02}",
        y.rem_euclid(100),
        rem / 3600,
        rem / 60 % 60
    )
}

/// A field made safe for a tab-separated line.
fn field(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// A quoted field.
fn q(s: &str) -> String {
    format!("\"{}\"", field(s))
}

/// One record as a HylaFAX `xferfaxlog` line (without the newline; see the module doc).
pub fn xferfaxlog_line(rec: &Record) -> String {
    let r = &rec.record;
    let time = hms(r.duration_ms);
    let reason =
        if r.reason.is_empty() && !matches!(r.result, CallResult::Sent | CallResult::Received) {
            r.result.as_str().to_owned()
        } else {
            r.reason.clone()
        };
    let fields: Vec<String> = match r.direction {
        Direction::Send => vec![
            mdy_hm(r.at_ms),
            "SEND".into(),
            format!("{:09}", rec.seq),
            field(&r.gateway),
            field(&r.job),
            String::new(),
            field(&format!("{}@{}", r.user, r.terminal)),
            q(&r.number),
            q(&r.station),
            params_word(r).to_string(),
            r.pages.to_string(),
            time.clone(),
            time,
            q(&reason),
            q(""),
            q(""),
            q(""),
            q(&r.user),
            q(""),
        ],
        Direction::Receive => vec![
            mdy_hm(r.at_ms),
            "RECV".into(),
            format!("{:09}", rec.seq),
            field(&r.gateway),
            String::new(),
            String::new(),
            "fax".into(),
            q(&r.local_number),
            q(&r.station),
            params_word(r).to_string(),
            r.pages.to_string(),
            time.clone(),
            time,
            q(&reason),
            q(&r.number),
            q(""),
            q(""),
            q(""),
            q(""),
        ],
    };
    fields.join("\t")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::testing;

    pub(crate) fn sample(result: CallResult) -> NewRecord {
        NewRecord {
            // 2026-11-27 10:05:09 UTC
            at_ms: 1_795_773_909_000,
            direction: Direction::Send,
            job: "j42".into(),
            user: "1001".into(),
            terminal: "pc1.example".into(),
            gateway: "gw1.example".into(),
            number: "+81 6 5555 0100".into(),
            local_number: "+81 3 5555 0001".into(),
            station: "ACME \"Osaka\"".into(),
            pages: 3,
            duration_ms: 65_400,
            coding: Coding::G3,
            resolution: Resolution::Fine,
            error_correction: true,
            speed: 14_400,
            result,
            reason: String::new(),
        }
    }

    #[test]
    fn records_are_stored_queried_and_filtered() {
        let (_d, conn) = testing::db();
        let a = insert(&conn, &sample(CallResult::Busy)).unwrap();
        let b = insert(&conn, &sample(CallResult::Sent)).unwrap();
        let mut other = sample(CallResult::NoAnswer);
        other.user = "1002".into();
        other.gateway = "gw2.example".into();
        let c = insert(&conn, &other).unwrap();
        assert!(a < b && b < c);
        let all = last(&conn, 0).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].record, sample(CallResult::Busy));
        assert_eq!(last(&conn, 2).unwrap()[0].seq, b);
        let mine = query(
            &conn,
            &Filter {
                user: Some("1001".into()),
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(mine.len(), 2);
        let newer = query(
            &conn,
            &Filter {
                after_seq: Some(b),
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(newer.len(), 1);
        assert_eq!(newer[0].record.result, CallResult::NoAnswer);
        assert_eq!(CallResult::parse("no answer"), Some(CallResult::NoAnswer));
    }

    #[test]
    fn xferfaxlog_lines_have_hylafax_fields() {
        let rec = Record {
            seq: 7,
            record: sample(CallResult::Sent),
        };
        let line = xferfaxlog_line(&rec);
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 19, "{line}");
        assert_eq!(f[0], "11/27/26 10:05");
        assert_eq!(f[1], "SEND");
        assert_eq!(f[2], "000000007");
        assert_eq!(f[3], "gw1.example");
        assert_eq!(f[4], "j42");
        assert_eq!(f[6], "1001@pc1.example");
        assert_eq!(f[7], "\"+81 6 5555 0100\"");
        assert_eq!(f[8], "\"ACME 'Osaka'\"");
        // fine (1) | 14400 bit/s (5 << 3) | ECM (1 << 16) | version (1 << 21)
        assert_eq!(f[9], (1 + (5 << 3) + (1 << 16) + (1 << 21)).to_string());
        assert_eq!(f[10], "3");
        assert_eq!((f[11], f[12]), ("0:01:05", "0:01:05"));
        assert_eq!(f[13], "\"\"");
        assert_eq!(f[17], "\"1001\"");

        let mut busy = sample(CallResult::Busy);
        busy.direction = Direction::Receive;
        busy.coding = Coding::G4;
        busy.resolution = Resolution::Standard;
        busy.reason = "line\tnoise\n".into();
        let line = xferfaxlog_line(&Record {
            seq: 8,
            record: busy,
        });
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 19, "{line}");
        assert_eq!(f[1], "RECV");
        assert_eq!(f[6], "fax");
        assert_eq!(f[7], "\"+81 3 5555 0001\"");
        assert_eq!(
            f[9],
            ((5 << 3) + (3 << 14) + (1 << 16) + (1 << 21)).to_string()
        );
        assert_eq!(f[13], "\"line noise \"");
        assert_eq!(f[14], "\"+81 6 5555 0100\"");
        assert_eq!(mdy_hm(0), "01/01/70 00:00");
        assert_eq!(mdy_hm(951_782_400_000), "02/29/00 00:00");
    }
}
