//! The distribution queue and the journal, as rows in the database: what was accepted, which
//! destination still waits for it, and every destination's result.
//!
//! Functions here run on the database thread (see [`super::db::Db::call`]).

use std::collections::HashSet;

use imagecast_shared::domain::domain_key;
use imagecast_shared::msg::{DeliveryState, Destination, DestinationStatus, PageInfo};
use imagecast_shared::{DeliveryId, DistributionId};
use rusqlite::{Connection, OptionalExtension, params};

use super::db::{DbError, now_ms};

/// A distribution about to be recorded as accepted.
#[derive(Clone, Debug)]
pub struct NewDistribution {
    /// Its ID.
    pub dist: DistributionId,
    /// The sending terminal.
    pub sender: Destination,
    /// The user who sent it.
    pub user: String,
    /// Its pages (files, as sent).
    pub pages: Vec<PageInfo>,
    /// How many pages the files hold in all, a multi-page TIFF counting each of its pages
    /// ([`super::pages`]): the journal's pages.
    pub page_count: u32,
    /// Every destination, each once.
    pub destinations: Vec<Destination>,
}

/// A delivery waiting to be pushed.
#[derive(Clone, Debug)]
pub struct PendingDelivery {
    /// The delivery's row, which its acknowledgement names.
    pub id: DeliveryId,
    /// Its distribution.
    pub dist: DistributionId,
    /// The receiving terminal.
    pub destination: Destination,
    /// The sending terminal.
    pub sender: Destination,
    /// The user who sent it.
    pub user: String,
    /// When it was accepted.
    pub accepted_ms: i64,
    /// The pages, in order, as the sender announced them.
    pub pages: Vec<PageInfo>,
    /// How often pushing it failed before on the terminal's side (see
    /// [`count_failed_attempt`]); a crash of the server does not count.
    pub attempts: u32,
}

/// What recording a result changed.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The distribution the result belongs to.
    pub dist: DistributionId,
    /// The destination and its new state.
    pub status: DestinationStatus,
    /// Every destination's final state, when this result was the last one.
    pub done: Option<Vec<DestinationStatus>>,
}

/// One line of the journal (the communication records).
#[derive(Clone, Debug)]
pub struct JournalLine {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The distribution the line is about.
    pub dist: DistributionId,
    /// Sending terminal's domain.
    pub sender: String,
    /// Destination domain.
    pub destination: String,
    /// Number of pages (a multi-page TIFF sent as one file counts each of its pages).
    pub pages: u32,
    /// The image's size in bytes, all pages together.
    pub bytes: u64,
    /// `delivered`, `printed` or `failed`.
    pub result: String,
    /// Why it failed.
    pub reason: Option<String>,
}

fn state_text(state: &DeliveryState) -> (&'static str, Option<&str>) {
    match state {
        DeliveryState::Queued | DeliveryState::Sending => ("queued", None),
        DeliveryState::Delivered => ("delivered", None),
        DeliveryState::Printed => ("printed", None),
        DeliveryState::Failed(r) => ("failed", Some(r.as_str())),
    }
}

fn state_from(text: &str, reason: Option<String>) -> DeliveryState {
    match text {
        "delivered" => DeliveryState::Delivered,
        "printed" => DeliveryState::Printed,
        "failed" => DeliveryState::Failed(reason.unwrap_or_default()),
        _ => DeliveryState::Queued,
    }
}

fn dist_from(bytes: Vec<u8>) -> Result<DistributionId, DbError> {
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| DbError::Corrupt("distribution ID is not 16 bytes".into()))?;
    Ok(DistributionId::from_bytes(arr))
}

/// Records an accepted distribution with a queued delivery per destination.
pub fn insert(conn: &Connection, d: &NewDistribution) -> Result<(), DbError> {
    let now = now_ms();
    let bytes: u64 = d.pages.iter().map(|p| p.size).sum();
    conn.execute(
        "INSERT INTO distributions (id, sender, sender_name, user, accepted_ms, pages, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![&d.dist.as_bytes()[..], d.sender.domain, d.sender.name, d.user, now, i64::from(d.page_count), bytes as i64],
    )?;
    let mut page =
        conn.prepare_cached("INSERT INTO pages (dist, idx, name, size) VALUES (?1, ?2, ?3, ?4)")?;
    for (i, p) in d.pages.iter().enumerate() {
        page.execute(params![
            &d.dist.as_bytes()[..],
            i as i64,
            p.name,
            p.size as i64
        ])?;
    }
    let mut dest = conn.prepare_cached(
        "INSERT INTO deliveries (dist, domain, name, state, updated_ms) VALUES (?1, ?2, ?3, 'queued', ?4)",
    )?;
    for t in &d.destinations {
        dest.execute(params![&d.dist.as_bytes()[..], t.domain, t.name, now])?;
    }
    Ok(())
}

/// The sender's domain and destinations of an accepted distribution, if there is one.
pub fn accepted(
    conn: &Connection,
    dist: &DistributionId,
) -> Result<Option<(String, Vec<Destination>)>, DbError> {
    let sender: Option<String> = conn
        .query_row(
            "SELECT sender FROM distributions WHERE id = ?1",
            [&dist.as_bytes()[..]],
            |r| r.get(0),
        )
        .optional()?;
    let Some(sender) = sender else {
        return Ok(None);
    };
    let dests = status(conn, dist)?
        .into_iter()
        .map(|s| s.destination)
        .collect();
    Ok(Some((sender, dests)))
}

/// Every destination's state, in the order they were resolved.
pub fn status(conn: &Connection, dist: &DistributionId) -> Result<Vec<DestinationStatus>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT domain, name, state, reason FROM deliveries WHERE dist = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([&dist.as_bytes()[..]], |r| {
            Ok(DestinationStatus {
                destination: Destination {
                    domain: r.get(0)?,
                    name: r.get(1)?,
                },
                state: state_from(&r.get::<_, String>(2)?, r.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The oldest queued delivery for `domain`.
///
/// Taking it does not count as an attempt: if the server crashes while pushing it, the
/// terminal is not to blame. [`count_failed_attempt`] counts what the terminal failed.
pub fn next_pending(conn: &Connection, domain: &str) -> Result<Option<PendingDelivery>, DbError> {
    let row = conn
        .query_row(
            "SELECT d.id, d.dist, d.attempts, x.sender, x.sender_name, x.user, x.accepted_ms,
                    d.domain, d.name
             FROM deliveries d JOIN distributions x ON x.id = d.dist
             WHERE d.domain = ?1 AND d.state = 'queued' ORDER BY d.id LIMIT 1",
            [domain],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    Destination {
                        domain: r.get(7)?,
                        name: r.get(8)?,
                    },
                ))
            },
        )
        .optional()?;
    let Some((id, dist, attempts, sender, sender_name, user, accepted_ms, destination)) = row
    else {
        return Ok(None);
    };
    let dist = dist_from(dist)?;
    Ok(Some(PendingDelivery {
        id: DeliveryId(id as u64),
        dist,
        destination,
        sender: Destination {
            domain: sender,
            name: sender_name,
        },
        user,
        accepted_ms,
        pages: pages(conn, &dist)?,
        attempts,
    }))
}

/// Counts a failed try to deliver: the terminal's connection dropped while the image was
/// pushed or before it was acknowledged, or no acknowledgement came in time.
pub fn count_failed_attempt(conn: &Connection, delivery: DeliveryId) -> Result<(), DbError> {
    conn.execute(
        "UPDATE deliveries SET attempts = attempts + 1 WHERE id = ?1 AND state = 'queued'",
        [delivery.0 as i64],
    )?;
    Ok(())
}

/// A distribution's pages.
pub fn pages(conn: &Connection, dist: &DistributionId) -> Result<Vec<PageInfo>, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT name, size FROM pages WHERE dist = ?1 ORDER BY idx")?;
    let rows = stmt
        .query_map([&dist.as_bytes()[..]], |r| {
            Ok(PageInfo {
                name: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Records a delivery's final result in the queue and the journal.
pub fn record(
    conn: &Connection,
    delivery: DeliveryId,
    state: &DeliveryState,
) -> Result<Option<Recorded>, DbError> {
    let now = now_ms();
    let (text, reason) = state_text(state);
    let row = conn
        .query_row(
            "SELECT d.dist, d.domain, d.name, d.state, x.sender, x.pages, x.bytes
             FROM deliveries d JOIN distributions x ON x.id = d.dist WHERE d.id = ?1",
            [delivery.0 as i64],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((dist, domain, name, old, sender, pages, bytes)) = row else {
        return Ok(None);
    };
    if old != "queued" {
        return Ok(None);
    }
    let dist = dist_from(dist)?;
    conn.execute(
        "UPDATE deliveries SET state = ?2, reason = ?3, updated_ms = ?4 WHERE id = ?1",
        params![delivery.0 as i64, text, reason, now],
    )?;
    conn.execute(
        "INSERT INTO journal (at_ms, dist, sender, destination, pages, bytes, result, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![now, &dist.as_bytes()[..], sender, domain, pages, bytes, text, reason],
    )?;
    let left: i64 = conn.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE dist = ?1 AND state = 'queued'",
        [&dist.as_bytes()[..]],
        |r| r.get(0),
    )?;
    let done = if left == 0 {
        conn.execute(
            "UPDATE distributions SET done_ms = ?2 WHERE id = ?1",
            params![&dist.as_bytes()[..], now],
        )?;
        Some(status(conn, &dist)?)
    } else {
        None
    };
    Ok(Some(Recorded {
        dist,
        status: DestinationStatus {
            destination: Destination { domain, name },
            state: state.clone(),
        },
        done,
    }))
}

/// Distributions not yet done (their spooled images must be kept).
pub fn live(conn: &Connection) -> Result<HashSet<DistributionId>, DbError> {
    let mut stmt = conn.prepare("SELECT id FROM distributions WHERE done_ms IS NULL")?;
    let ids = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    ids.into_iter().map(dist_from).collect()
}

/// Finished distributions whose spool may still exist (done, but removal may have been
/// interrupted by a crash) are simply those not in [`live`]; this lists the domains with
/// queued deliveries, for waking workers after a restart.
pub fn queued_domains(conn: &Connection) -> Result<Vec<String>, DbError> {
    let mut stmt = conn.prepare("SELECT DISTINCT domain FROM deliveries WHERE state = 'queued'")?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Rewrites the domains of queued deliveries and of devices that are stored in another
/// spelling than their [`domain_key`] (rows written before every lookup went through it), so
/// that a terminal finds what waits for it. A row whose key another row holds already is left
/// alone. Returns how many rows changed.
pub fn canonicalize_domains(conn: &Connection) -> Result<usize, DbError> {
    let mut changed = 0;
    for (table, filter) in [("deliveries", "WHERE state = 'queued'"), ("devices", "")] {
        let domains: Vec<String> = conn
            .prepare(&format!("SELECT DISTINCT domain FROM {table} {filter}"))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for d in domains {
            let key = domain_key(&d);
            if key != d {
                changed += conn.execute(
                    &format!("UPDATE OR IGNORE {table} SET domain = ?2 WHERE domain = ?1"),
                    params![d, key.as_ref()],
                )?;
            }
        }
    }
    Ok(changed)
}

/// The last `n` journal lines, oldest first.
pub fn journal(conn: &Connection, n: usize) -> Result<Vec<JournalLine>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT at_ms, dist, sender, destination, pages, bytes, result, reason FROM
         (SELECT * FROM journal ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([n as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(
            |(at_ms, dist, sender, destination, pages, bytes, result, reason)| {
                Ok(JournalLine {
                    at_ms,
                    dist: dist_from(dist)?,
                    sender,
                    destination,
                    pages: pages as u32,
                    bytes: bytes as u64,
                    result,
                    reason,
                })
            },
        )
        .collect()
}
