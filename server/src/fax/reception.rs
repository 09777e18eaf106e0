//! Faxes the gateways received (seed 002 FIG. 4, seed 003 claims 3–4): uploaded in chunks,
//! stored durably, recorded, routed by the delivery table and delivered through the ordinary
//! store-and-forward path.
//!
//! - **Upload.** A gateway sends the fax TIFF in [`FaxRequest::Chunk`]s into
//!   `DATA/fax/uploads/GATEWAY/RECEPTION.part` (at most [`MAX_OPEN_UPLOADS`] at once per
//!   gateway, each at most [`MAX_RECEIVED_BYTES`]), then [`FaxRequest::Received`].
//! - **Exactly once.** `fax_received` holds one row per (gateway, reception ID): the same fax
//!   uploaded again (its answer was lost) is answered `duplicate` and stored nowhere again.
//! - **Stored, then answered.** The fax becomes a distribution whose sender is the gateway
//!   and whose user is empty; its spool files are fsynced and its rows committed (one
//!   transaction with the record and the `fax_received` row) before the gateway is answered.
//! - **Routed** by [`delivery::route_rule`] (the first matching rule whose target shares a
//!   grouping with the gateway) to [`delivery::destinations`]. A fax no rule takes (or whose
//!   user has no home terminal) is kept in `DATA/fax/received/` and its record says why.
//! - **Told as a fax.** Just before the delivery of such a distribution, a terminal that
//!   speaks fax is pushed [`FaxEvent::Incoming`] ([`incoming_frame`]).
//!
//! [`FaxRequest::Chunk`]: imagecast_shared::fax::FaxRequest::Chunk
//! [`FaxRequest::Received`]: imagecast_shared::fax::FaxRequest::Received
//! [`FaxEvent::Incoming`]: imagecast_shared::fax::FaxEvent::Incoming

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use imagecast_shared::DistributionId;
use imagecast_shared::fax::{
    FaxEvent, FaxIncoming, FaxReception, MAX_CHUNK_BYTES, MAX_RECEIVED_BYTES,
};
use imagecast_shared::frame::OutFrame;
use imagecast_shared::msg::{Destination, PageInfo, ServerMsg};
use rusqlite::{Connection, OptionalExtension, params};

use super::delivery::{self, Incoming};
use super::records::{self, CallResult, Direction, NewRecord};
use super::settings::{Coding, Resolution};
use super::{FaxError, Party};
use crate::state::ServerState;
use crate::store::auth;
use crate::store::db::now_ms;
use crate::store::queue::{self, NewDistribution};

/// Most uploads one gateway or terminal may have begun and not finished.
pub const MAX_OPEN_UPLOADS: usize = 16;

/// An unfinished upload untouched this long is removed when its owner needs room for a new
/// one.
pub const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Checks a reception (upload) ID: 1–64 letters, digits, `-` and `_`.
pub fn check_id(id: &str) -> Result<(), FaxError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(FaxError::Invalid(format!(
            "reception ID {:?} is not 1 to 64 letters, digits, - and _",
            imagecast_shared::text::escape(imagecast_shared::text::truncate(id, 80))
        )));
    }
    Ok(())
}

fn uploads_dir(root: &Path, gateway: &str) -> PathBuf {
    root.join("fax").join("uploads").join(gateway)
}

/// Where upload `upload` of `owner` (a gateway's domain, or `@DOMAIN` for a terminal) is
/// written.
pub fn part_path(root: &Path, owner: &str, upload: &str) -> PathBuf {
    uploads_dir(root, owner).join(format!("{upload}.part"))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> FaxError {
    FaxError::Db(crate::store::db::DbError::Corrupt(format!(
        "{what} {}: {e}",
        path.display()
    )))
}

/// Stores one chunk of a gateway's upload (blocking). Offset 0 starts the upload over; any
/// other offset must continue exactly where the file ends.
pub fn chunk(
    root: &Path,
    gateway: &str,
    upload: &str,
    offset: u64,
    total: u64,
    data: &[u8],
) -> Result<(), FaxError> {
    check_id(upload)?;
    if total > MAX_RECEIVED_BYTES {
        return Err(FaxError::Invalid(format!(
            "a received fax is {total} bytes; at most {MAX_RECEIVED_BYTES} are taken"
        )));
    }
    if data.len() > MAX_CHUNK_BYTES {
        return Err(FaxError::Invalid(format!(
            "a chunk is at most {MAX_CHUNK_BYTES} bytes, not {}",
            data.len()
        )));
    }
    if offset.saturating_add(data.len() as u64) > total {
        return Err(FaxError::Invalid(format!(
            "a chunk at byte {offset} of {} bytes runs past the upload's {total} bytes",
            data.len()
        )));
    }
    let dir = uploads_dir(root, gateway);
    crate::store::files::create_private_dir(&root.join("fax"))
        .map_err(|e| io("folder", &dir, e))?;
    crate::store::files::create_private_dir(&root.join("fax").join("uploads"))
        .map_err(|e| io("folder", &dir, e))?;
    crate::store::files::create_private_dir(&dir).map_err(|e| io("folder", &dir, e))?;
    let path = part_path(root, gateway, upload);
    let mut file = if offset == 0 {
        let others = || -> Result<Vec<std::fs::DirEntry>, FaxError> {
            Ok(std::fs::read_dir(&dir)
                .map_err(|e| io("folder", &dir, e))?
                .flatten()
                .filter(|e| e.path() != path && e.file_name().to_string_lossy().ends_with(".part"))
                .collect())
        };
        let mut open = others()?.len();
        if open >= MAX_OPEN_UPLOADS {
            // Uploads abandoned long ago (a terminal that gave up a large job) make room.
            for e in others()? {
                let stale = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_UPLOAD);
                if stale {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            open = others()?.len();
        }
        if open >= MAX_OPEN_UPLOADS {
            return Err(FaxError::Invalid(format!(
                "gateway {gateway} has {open} unfinished uploads; at most {MAX_OPEN_UPLOADS}"
            )));
        }
        crate::store::files::create_private_file(&path).map_err(|e| io("file", &path, e))?
    } else {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|_| {
                FaxError::Invalid(format!(
                    "a chunk at byte {offset} of upload {upload}, which was not begun"
                ))
            })?;
        let len = f.seek(SeekFrom::End(0)).map_err(|e| io("file", &path, e))?;
        if len != offset {
            return Err(FaxError::Invalid(format!(
                "a chunk at byte {offset} of upload {upload}, which holds {len} bytes"
            )));
        }
        f
    };
    file.write_all(data).map_err(|e| io("file", &path, e))?;
    Ok(())
}

/// What storing a received fax did.
#[derive(Debug)]
pub struct Stored {
    /// True when the fax had been stored before.
    pub duplicate: bool,
    /// The terminals it goes to (empty when routed nowhere).
    pub destinations: Vec<String>,
}

fn already(conn: &Connection, gateway: &str, reception: &str) -> Result<bool, FaxError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM fax_received WHERE gateway = ?1 AND reception = ?2",
            [gateway, reception],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Where a fax goes: its destinations (domain and name), the user named by the rule, or why
/// it goes nowhere.
type Route = Result<(Vec<Destination>, String), String>;

fn route(conn: &Connection, gateway: &str, fax: &FaxReception) -> Result<Route, FaxError> {
    let rule = delivery::route_rule(
        conn,
        &Incoming {
            station: &fax.station,
            caller: &fax.caller,
            called: &fax.called,
            gateway,
        },
    )?;
    let Some(rule) = rule else {
        return Ok(Err(
            "no delivery rule matched (imagecast-server fax delivery add ...)".into(),
        ));
    };
    let domains = match delivery::destinations(conn, &rule.target) {
        Ok(d) => d,
        Err(FaxError::Missing(m)) => return Ok(Err(m)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for d in domains {
        if let Some(dev) = auth::device(conn, &d)? {
            out.push(Destination {
                domain: dev.domain,
                name: dev.name,
            });
        }
    }
    if out.is_empty() {
        return Ok(Err(format!(
            "{} has no terminal to deliver to",
            rule.target.describe()
        )));
    }
    let user = match &rule.target {
        Party::User(u) => u.clone(),
        Party::Device(_) => String::new(),
    };
    Ok(Ok((out, user)))
}

fn new_record(
    gateway: &str,
    fax: &FaxReception,
    user: &str,
    terminal: &str,
    reason: &str,
) -> NewRecord {
    let text = |s: &str, n: usize| imagecast_shared::text::truncate(s, n).to_owned();
    NewRecord {
        at_ms: fax.at_ms,
        direction: Direction::Receive,
        job: String::new(),
        user: user.to_owned(),
        terminal: terminal.to_owned(),
        gateway: gateway.to_owned(),
        number: text(&fax.caller, 40),
        local_number: text(&fax.called, 40),
        station: text(&fax.station, 20),
        pages: fax.pages,
        duration_ms: fax.duration_ms,
        coding: if fax.coding == "G4" {
            Coding::G4
        } else {
            Coding::G3
        },
        resolution: Resolution::Standard,
        error_correction: fax.ecm,
        speed: fax.speed,
        result: CallResult::Received,
        reason: text(
            &[fax.reason.as_str(), reason]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            500,
        ),
    }
}

fn insert_row(
    conn: &Connection,
    gateway: &str,
    fax: &FaxReception,
    dist: Option<&DistributionId>,
    record: i64,
) -> Result<(), FaxError> {
    conn.execute(
        "INSERT INTO fax_received (gateway, reception, dist, caller, called, station, pages, record, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            gateway,
            fax.reception,
            dist.map(|d| d.as_bytes().to_vec()),
            imagecast_shared::text::truncate(&fax.caller, 40),
            imagecast_shared::text::truncate(&fax.called, 40),
            imagecast_shared::text::truncate(&fax.station, 20),
            i64::from(fax.pages),
            record,
            now_ms()
        ],
    )?;
    Ok(())
}

/// Copies a finished upload into the spool as distribution `dist` (blocking): fsynced.
fn spool_copy(
    state: &ServerState,
    dist: DistributionId,
    path: &Path,
    size: u64,
) -> anyhow::Result<crate::store::spool::SpooledImage> {
    let mut upload = state.spool.begin(dist, &[size])?;
    let mut file = std::fs::File::open(path)?;
    let mut offset = 0u64;
    let mut buf = vec![0u8; imagecast_shared::limits::CHUNK_SIZE];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        upload
            .write(0, offset, Bytes::copy_from_slice(&buf[..n]))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        offset += n as u64;
    }
    Ok(upload.finish()?)
}

/// The page name a received fax is delivered under.
pub fn page_name(fax: &FaxReception) -> String {
    let caller: String = fax
        .caller
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .take(20)
        .collect();
    if caller.is_empty() {
        "fax.tif".into()
    } else {
        format!("fax-from-{caller}.tif")
    }
}

/// Stores, records and routes a fax `gateway` received and uploaded before; answered once
/// it is on disk and its rows are committed.
pub async fn store(
    state: &Arc<ServerState>,
    gateway: &str,
    mut fax: FaxReception,
) -> Result<Stored, FaxError> {
    check_id(&fax.reception)?;
    fax.station = imagecast_shared::text::truncate(&fax.station, 20).to_owned();
    let root = state.data.root().to_owned();
    let path = part_path(&root, gateway, &fax.reception);
    let (gw, rc) = (gateway.to_owned(), fax.reception.clone());
    if super::call(&state.db, move |c| already(c, &gw, &rc)).await? {
        let _ = std::fs::remove_file(&path);
        return Ok(Stored {
            duplicate: true,
            destinations: Vec::new(),
        });
    }
    let len = std::fs::metadata(&path).map(|m| m.len()).map_err(|_| {
        FaxError::Invalid(format!(
            "no upload {} from gateway {gateway}: send its chunks first",
            fax.reception
        ))
    })?;
    if len != fax.bytes {
        return Err(FaxError::Invalid(format!(
            "upload {} holds {len} bytes of {}",
            fax.reception, fax.bytes
        )));
    }
    let p = path.clone();
    let pages = tokio::task::spawn_blocking(move || crate::store::pages::count(&p))
        .await
        .unwrap_or(0);
    if pages == 0 {
        let _ = std::fs::remove_file(&path);
        return Err(FaxError::Invalid(format!(
            "upload {} is no fax TIFF",
            fax.reception
        )));
    }
    let (gw, f) = (gateway.to_owned(), fax.clone());
    let route = super::call(&state.db, move |c| route(c, &gw, &f)).await?;
    let sender = {
        let gw = gateway.to_owned();
        super::call(&state.db, move |c| Ok(auth::device(c, &gw)?)).await?
    };
    let sender = Destination {
        domain: gateway.to_owned(),
        name: sender.map(|d| d.name).unwrap_or_default(),
    };
    match route {
        Ok((destinations, user)) => {
            let dist = DistributionId::new_random();
            let st = Arc::clone(state);
            let p = path.clone();
            let image = tokio::task::spawn_blocking(move || spool_copy(&st, dist, &p, len))
                .await
                .map_err(|e| FaxError::Invalid(e.to_string()))?
                .map_err(|e| {
                    FaxError::Db(crate::store::db::DbError::Corrupt(format!(
                        "cannot spool a received fax: {e:#}"
                    )))
                })?;
            let terminals: Vec<String> = destinations.iter().map(|d| d.domain.clone()).collect();
            let new = NewDistribution {
                dist,
                sender,
                user: String::new(),
                pages: vec![PageInfo {
                    name: page_name(&fax),
                    size: len,
                }],
                page_count: pages,
                destinations: destinations.clone(),
            };
            let (gw, f, t) = (gateway.to_owned(), fax.clone(), terminals.join(","));
            let stored = super::call(&state.db, move |c| {
                let seq = records::insert(c, &new_record(&gw, &f, &user, &t, ""))?;
                insert_row(c, &gw, &f, Some(&dist), seq)?;
                queue::insert(c, &new)?;
                Ok(())
            })
            .await;
            if let Err(e) = stored {
                let _ = state.spool.remove(&dist);
                return Err(e);
            }
            let _ = std::fs::remove_file(&path);
            state.images.insert(dist, image);
            crate::delivery::wake(state, terminals.iter().map(String::as_str));
            tracing::info!(%gateway, reception = %fax.reception, %dist, destinations = ?terminals, "received fax routed");
            Ok(Stored {
                duplicate: false,
                destinations: terminals,
            })
        }
        Err(why) => {
            let kept = root
                .join("fax")
                .join("received")
                .join(format!("{gateway}-{}.tif", fax.reception));
            let p = path.clone();
            let k = kept.clone();
            tokio::task::spawn_blocking(move || keep(&p, &k))
                .await
                .map_err(|e| FaxError::Invalid(e.to_string()))?
                .map_err(|e| io("cannot keep", &kept, e))?;
            let reason = format!(
                "routed nowhere: {why}; kept as {}",
                kept.strip_prefix(&root).unwrap_or(&kept).display()
            );
            let (gw, f) = (gateway.to_owned(), fax.clone());
            let r = reason.clone();
            super::call(&state.db, move |c| {
                let seq = records::insert(c, &new_record(&gw, &f, "", "", &r))?;
                insert_row(c, &gw, &f, None, seq)
            })
            .await?;
            tracing::warn!(%gateway, reception = %fax.reception, %reason, "received fax not delivered");
            Ok(Stored {
                duplicate: false,
                destinations: Vec::new(),
            })
        }
    }
}

/// Moves a finished upload to `kept` durably.
fn keep(part: &Path, kept: &Path) -> std::io::Result<()> {
    let dir = kept.parent().unwrap_or(Path::new("."));
    crate::store::files::create_private_dir(dir)?;
    std::fs::File::open(part)?.sync_all()?;
    std::fs::rename(part, kept)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The fax behind distribution `dist`, as its terminal is told ([`FaxEvent::Incoming`]).
pub fn incoming(conn: &Connection, dist: &DistributionId) -> Result<Option<FaxIncoming>, FaxError> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT called, record FROM fax_received WHERE dist = ?1",
            [&dist.as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((called, seq)) = row else {
        return Ok(None);
    };
    let Some(rec) = records::get(conn, seq)? else {
        return Ok(None);
    };
    Ok(Some(FaxIncoming {
        dist: *dist,
        called,
        record: super::dispatch::record_info(&rec),
    }))
}

/// For the delivery worker: the [`FaxEvent::Incoming`] frame to push just before delivering
/// `dist` on `conn`, when `dist` is a received fax (a distribution with no user) and `conn`
/// speaks fax. `None` for everything else.
pub async fn incoming_frame(
    state: &ServerState,
    dist: DistributionId,
    user: &str,
    conn: &crate::net::outbox::ConnHandle,
) -> Option<OutFrame> {
    if !user.is_empty() {
        return None;
    }
    let info = super::call(&state.db, move |c| incoming(c, &dist))
        .await
        .ok()??;
    let msg = ServerMsg::Fax(FaxEvent::Incoming(info));
    if !conn.speaks(&msg) {
        return None;
    }
    OutFrame::encode(&msg).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_must_follow_on_and_stay_within_their_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        chunk(root, "gw1.example", "r1", 0, 5, b"abc").unwrap();
        let e = chunk(root, "gw1.example", "r1", 2, 5, b"x").unwrap_err();
        assert!(e.to_string().contains("which holds 3 bytes"), "{e}");
        let e = chunk(root, "gw1.example", "r1", 3, 5, b"xyz").unwrap_err();
        assert!(e.to_string().contains("runs past"), "{e}");
        chunk(root, "gw1.example", "r1", 3, 5, b"de").unwrap();
        assert_eq!(
            std::fs::read(part_path(root, "gw1.example", "r1")).unwrap(),
            b"abcde"
        );
        let e = chunk(root, "gw1.example", "r2", 4, 5, b"x").unwrap_err();
        assert!(e.to_string().contains("not begun"), "{e}");
        let e = chunk(root, "gw1.example", "../x", 0, 1, b"x").unwrap_err();
        assert!(e.to_string().contains("reception ID"), "{e}");
        let e = chunk(root, "gw1.example", "big", 0, MAX_RECEIVED_BYTES + 1, b"").unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // At most MAX_OPEN_UPLOADS unfinished uploads per gateway.
        for i in 2..=MAX_OPEN_UPLOADS {
            chunk(root, "gw1.example", &format!("r{i}"), 0, 1, b"").unwrap();
        }
        let e = chunk(root, "gw1.example", "one-more", 0, 1, b"").unwrap_err();
        assert!(e.to_string().contains("unfinished uploads"), "{e}");
        chunk(root, "gw2.example", "one-more", 0, 1, b"").unwrap();
        // One left untouched long ago makes room.
        let old = std::time::SystemTime::now() - 2 * STALE_UPLOAD;
        std::fs::File::options()
            .write(true)
            .open(part_path(root, "gw1.example", "r1"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        chunk(root, "gw1.example", "one-more", 0, 1, b"").unwrap();
        assert!(!part_path(root, "gw1.example", "r1").exists());
    }

    #[test]
    fn a_page_name_keeps_only_the_callers_digits() {
        let mut fax = FaxReception {
            reception: "r".into(),
            caller: "+81 3/../x".into(),
            called: String::new(),
            station: String::new(),
            pages: 1,
            coding: "MH".into(),
            ecm: false,
            speed: 0,
            duration_ms: 0,
            at_ms: 0,
            reason: String::new(),
            bytes: 0,
        };
        assert_eq!(page_name(&fax), "fax-from-+813.tif");
        fax.caller = "?".into();
        assert_eq!(page_name(&fax), "fax.tif");
    }
}
