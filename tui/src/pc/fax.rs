//! The network fax commands of the PC client: `fax send`, `fax status`,
//! `fax records`, `fax gateways`, `fax settings show|set`, and the terminal's own copy of its
//! communication records (002 steps 206, 304): every record it is sent or fetches, and the
//! receive record of every fax it is delivered, is kept in
//! `~/.local/share/imagecast/fax-records-DEVICE.json` (at most [`MAX_KEPT_RECORDS`]), so
//! `fax records` still answers from it when the server is away.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use imagecast_shared::client::{Client, ClientError, Event};
use imagecast_shared::fax::{
    FaxBookEntry, FaxEvent, FaxFile, FaxGatewayInfo, FaxIncoming, FaxNumberStatus, FaxRecordInfo,
    FaxRequest, FaxSettings, FaxUpload, MAX_CHUNK_BYTES, MAX_JOB_BYTES, MAX_UPLOADED_JOB_BYTES,
};
use imagecast_shared::msg::ServerMsg;

use super::{connect, login, peer, peer_reason};
use crate::config::Settings;

/// What `fax send` sends.
pub struct SendArgs {
    /// Numbers.
    pub numbers: Vec<String>,
    /// Phone-book entries.
    pub books: Vec<String>,
    /// Fine resolution.
    pub fine: bool,
    /// Wait for every number's end, at most this long (`None`: do not wait).
    pub wait: Option<Duration>,
    /// The files.
    pub files: Vec<PathBuf>,
}

/// One fax request on a connection of its own (after logging in when `log_in`): the answer.
async fn ask(
    s: &Settings,
    log_in: bool,
    what: &'static str,
    request: impl FnOnce(imagecast_shared::RequestId) -> FaxRequest,
) -> anyhow::Result<FaxEvent> {
    let (client, events) = connect(s, false).await?;
    drop(events);
    if log_in {
        login(&client, s).await?;
    }
    let reply = client.fax(what, request).await?;
    client.close().await;
    match reply {
        ServerMsg::Fax(event) => Ok(event),
        _ => Err(unexpected(what)),
    }
}

fn unexpected(what: &'static str) -> anyhow::Error {
    ClientError::Unexpected(what).into()
}

fn final_line(s: &FaxNumberStatus) -> String {
    if s.state == "sent" {
        // detail: "sent N pages via GATEWAY (...)"
        format!("{}: {}", peer(&s.number), peer_reason(&s.detail))
    } else {
        format!("{}: failed: {}", peer(&s.number), peer_reason(&s.detail))
    }
}

/// `fax send`: prints the job ID; with a wait, one line per number. Returns true when every
/// number was sent (or no wait was asked).
pub async fn send(s: &Settings, args: &SendArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let mut files = Vec::new();
    let mut total = 0u64;
    for f in &args.files {
        // The one rule for what a page is (see `imagecast send`).
        crate::paper::pages::check_image_kind(f)?;
        let data = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        total += data.len() as u64;
        if total > MAX_UPLOADED_JOB_BYTES {
            anyhow::bail!(
                "the files come to more than {} MiB (at {}); a fax job carries at most that: \
                 send fewer or smaller pages",
                MAX_UPLOADED_JOB_BYTES >> 20,
                f.display()
            );
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "page".into());
        files.push(FaxFile {
            name,
            data: data.into(),
        });
    }
    let (client, mut events) = connect(s, false).await?;
    login(&client, s).await?;
    let job = uuid::Uuid::new_v4().simple().to_string();
    let reply = if total <= MAX_JOB_BYTES as u64 {
        client
            .fax("the fax", |id| FaxRequest::Send {
                id,
                job: job.clone(),
                numbers: args.numbers.clone(),
                books: args.books.clone(),
                fine: args.fine,
                files,
            })
            .await?
    } else {
        // Too large for one frame: each file in chunks first.
        let uploads = upload_files(&client, &job, &files).await?;
        client
            .fax("the fax", |id| FaxRequest::SendUploaded {
                id,
                job: job.clone(),
                numbers: args.numbers.clone(),
                books: args.books.clone(),
                fine: args.fine,
                files: uploads,
            })
            .await?
    };
    let ServerMsg::Fax(FaxEvent::Accepted { numbers, .. }) = reply else {
        return Err(unexpected("the fax"));
    };
    writeln!(out, "{job}")?;
    out.flush()?;
    let Some(wait) = args.wait else {
        client.close().await;
        return Ok(true);
    };
    let mut finals: BTreeMap<String, FaxNumberStatus> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    // Events may have been missed before the job was known: ask once, then follow events and
    // ask again every few seconds.
    let mut next_poll = tokio::time::Instant::now();
    while finals.len() < numbers.len() {
        if tokio::time::Instant::now() >= next_poll {
            if let Ok(list) = status_of(&client, &job).await {
                for st in list.into_iter().filter(|x| x.done) {
                    finals.entry(st.number.clone()).or_insert(st);
                }
            }
            next_poll = tokio::time::Instant::now() + Duration::from_secs(2);
            continue;
        }
        let ev = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::time::sleep_until(next_poll) => continue,
            ev = events.recv() => ev,
        };
        match ev {
            None | Some(Event::Closed(_)) => bail!("the connection to the server was lost"),
            Some(Event::Fax(FaxEvent::Progress(st))) if st.job == job && st.done => {
                finals.entry(st.number.clone()).or_insert(st);
            }
            Some(Event::Fax(FaxEvent::Record(r))) => remember(s, std::slice::from_ref(&r)),
            _ => {}
        }
    }
    client.close().await;
    let mut all_sent = true;
    for n in &numbers {
        match finals.values().find(|f| &f.number == n) {
            Some(f) => {
                all_sent &= f.state == "sent";
                writeln!(out, "{}", final_line(f))?;
            }
            None => {
                all_sent = false;
                writeln!(out, "{}: failed: timed out", peer(n))?;
            }
        }
    }
    Ok(all_sent)
}

/// Uploads a job's files in [`FaxRequest::Chunk`]s, as `JOB-I`.
async fn upload_files(
    client: &Client,
    job: &str,
    files: &[FaxFile],
) -> anyhow::Result<Vec<FaxUpload>> {
    let mut out = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let upload = format!("{job}-{i}");
        let total = f.data.len() as u64;
        let mut offset = 0usize;
        loop {
            let end = (offset + MAX_CHUNK_BYTES).min(f.data.len());
            client
                .fax("a piece of the fax", |id| FaxRequest::Chunk {
                    id,
                    upload: upload.clone(),
                    offset: offset as u64,
                    total,
                    data: f.data.slice(offset..end),
                })
                .await?;
            offset = end;
            if offset >= f.data.len() {
                break;
            }
        }
        out.push(FaxUpload {
            name: f.name.clone(),
            upload,
            bytes: total,
        });
    }
    Ok(out)
}

async fn status_of(client: &Client, job: &str) -> anyhow::Result<Vec<FaxNumberStatus>> {
    match client
        .fax("the fax status", |id| FaxRequest::Status {
            id,
            job: job.to_owned(),
        })
        .await?
    {
        ServerMsg::Fax(FaxEvent::Status { numbers, .. }) => Ok(numbers),
        _ => Err(unexpected("the fax status")),
    }
}

/// `fax status [JOB]`: one line per number: JOB NUMBER STATE GATEWAY PAGES DIALS DETAIL.
pub async fn status(
    s: &Settings,
    job: Option<&str>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (client, events) = connect(s, false).await?;
    drop(events);
    login(&client, s).await?;
    let list = status_of(&client, job.unwrap_or("")).await?;
    client.close().await;
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|x| {
                serde_json::json!({
                    "job": x.job, "number": x.number, "state": x.state, "done": x.done,
                    "gateway": x.gateway, "pages_sent": x.pages_sent,
                    "pages_total": x.pages_total, "dials": x.dials, "detail": x.detail,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    for x in list {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}/{}\t{}\t{}",
            peer(&x.job),
            peer(&x.number),
            x.state,
            if x.gateway.is_empty() {
                "-".into()
            } else {
                peer(&x.gateway)
            },
            x.pages_sent,
            x.pages_total,
            x.dials,
            peer_reason(&x.detail)
        )?;
    }
    Ok(())
}

/// Most communication records a terminal keeps of its own.
pub const MAX_KEPT_RECORDS: usize = 10_000;

/// The file that holds this terminal's own copy of its records.
fn kept_records_path(s: &Settings) -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "imagecast")?;
    let device = imagecast_shared::text::safe_file_name(&s.device);
    Some(dirs.data_dir().join(format!("fax-records-{device}.json")))
}

/// This terminal's own copy of its records, oldest first (empty when it has none).
pub fn kept_records(s: &Settings) -> Vec<FaxRecordInfo> {
    kept_records_path(s)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Adds records to this terminal's own copy (a record seen again replaces its older copy).
/// A copy that cannot be written is logged, never fatal.
pub fn remember(s: &Settings, records: &[FaxRecordInfo]) {
    if records.is_empty() {
        return;
    }
    let Some(path) = kept_records_path(s) else {
        return;
    };
    let mut all: BTreeMap<i64, FaxRecordInfo> =
        kept_records(s).into_iter().map(|r| (r.seq, r)).collect();
    for r in records {
        all.insert(r.seq, r.clone());
    }
    while all.len() > MAX_KEPT_RECORDS {
        all.pop_first();
    }
    let list: Vec<&FaxRecordInfo> = all.values().collect();
    let written = (|| -> anyhow::Result<()> {
        let dir = path.parent().context("no folder")?;
        imagecast_shared::private::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.part",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        imagecast_shared::private::write(&tmp, &serde_json::to_vec(&list)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    })();
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep the fax records");
    }
}

/// Keeps the receive record of a fax this terminal was delivered.
pub fn remember_received(s: &Settings, note: &FaxIncoming) {
    remember(s, std::slice::from_ref(&note.record));
}

/// The line `receive` prints for a delivered fax: `fax from NUMBER "STATION" via GATEWAY: N
/// pages`, every field from the peer escaped.
pub fn received_line(note: &FaxIncoming) -> String {
    let r = &note.record;
    format!(
        "fax from {} \"{}\" via {}: {} page{}",
        if r.number.is_empty() {
            "unknown number".into()
        } else {
            peer(&r.number)
        },
        peer(&r.station),
        peer(&r.gateway),
        r.pages,
        if r.pages == 1 { "" } else { "s" }
    )
}

fn is_away(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<ClientError>()
            .is_some_and(ClientError::is_connection_lost)
    })
}

/// `fax records [--last N]`: one line per call, oldest first. When the server cannot be
/// reached, the terminal's own copy is printed instead, and stderr says so.
pub async fn records(
    s: &Settings,
    last: u32,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reply = ask(s, true, "the fax records", |id| FaxRequest::Records {
        id,
        last,
    })
    .await;
    let records = match reply {
        Ok(FaxEvent::Records { records, .. }) => {
            remember(s, &records);
            records
        }
        Ok(_) => return Err(unexpected("the fax records")),
        Err(e) if is_away(&e) => {
            let mut kept = kept_records(s);
            let skip = kept.len().saturating_sub(last.max(1) as usize);
            kept.drain(..skip);
            eprintln!(
                "imagecast: the server cannot be reached ({}); these are this terminal's own copies of its records ({} kept)",
                peer_reason(&format!("{e:#}")),
                kept.len()
            );
            kept
        }
        Err(e) => return Err(e),
    };
    if json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "seq": r.seq, "at_ms": r.at_ms, "direction": r.direction, "job": r.job,
                    "user": r.user, "terminal": r.terminal, "gateway": r.gateway,
                    "number": r.number, "station": r.station, "pages": r.pages,
                    "duration_ms": r.duration_ms, "coding": r.coding, "speed": r.speed,
                    "result": r.result, "reason": r.reason,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    for r in records {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t\"{}\"\t{}\t{:.1}\t{}\t{}\t{}\t{}",
            r.seq,
            r.direction,
            peer(&r.gateway),
            peer(&r.number),
            peer(&r.station),
            r.pages,
            r.duration_ms as f64 / 1000.0,
            if r.coding.is_empty() { "-" } else { &r.coding },
            r.result,
            peer_reason(&r.reason),
            peer(&r.job),
        )?;
    }
    Ok(())
}

/// `fax settings show GATEWAY` / `fax settings set GATEWAY KEY=VALUE...` (the competence
/// `gateway-settings`): prints `version=`, `applied-version=`, `pending=yes|no`, then every
/// The first line of a supervisor settings file as `fax supervisor show` prints it.
const SUPERVISOR_HEADER: &str = "# imagecast supervisor settings, version ";

/// `fax supervisor show` (no file) or `fax supervisor set FILE`: prints the settings file the
/// server holds (after the change), its first line naming its version.
pub async fn supervisor(
    s: &Settings,
    file: Option<&std::path::Path>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reply = match file {
        None => {
            ask(s, true, "the supervisor's settings", |id| {
                FaxRequest::SupervisorShow { id }
            })
            .await?
        }
        Some(path) => {
            let (text, version) = read_supervisor_file(path)?;
            ask(s, true, "the supervisor settings change", |id| {
                FaxRequest::SupervisorSet {
                    id,
                    file: text.clone(),
                    version: version.clone(),
                }
            })
            .await?
        }
    };
    let FaxEvent::Supervisor { file, version, .. } = reply else {
        return Err(unexpected("the supervisor's settings"));
    };
    writeln!(
        out,
        "{SUPERVISOR_HEADER}{} (change the file and give it to `imagecast fax supervisor set FILE`)",
        peer(&version)
    )?;
    // The server's TOML writer escapes control characters inside strings; a line is still
    // escaped as peer text before it reaches a terminal.
    for line in file.lines() {
        writeln!(out, "{}", imagecast_shared::text::escape(line))?;
    }
    Ok(())
}

/// Reads a settings file for `fax supervisor set`: its text and the version its first line
/// names.
fn read_supervisor_file(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(imagecast_shared::fax::MAX_SUPERVISOR_FILE_BYTES as u64 + 1)
                .read_to_string(&mut text)
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() > imagecast_shared::fax::MAX_SUPERVISOR_FILE_BYTES {
        anyhow::bail!(
            "{} is larger than the {} KiB a settings file may have",
            path.display(),
            imagecast_shared::fax::MAX_SUPERVISOR_FILE_BYTES >> 10
        );
    }
    let version = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(SUPERVISOR_HEADER))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: its first line must be the `{SUPERVISOR_HEADER}V ...` line that \
                 `imagecast fax supervisor show` prints (start from its output)",
                path.display()
            )
        })?;
    Ok((text, version))
}

/// `KEY=VALUE`; with `json`, one object.
pub async fn settings(
    s: &Settings,
    gateway: &str,
    assignments: &[String],
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reply = if assignments.is_empty() {
        ask(s, true, "the gateway settings", |id| {
            FaxRequest::SettingsShow {
                id,
                gateway: gateway.to_owned(),
            }
        })
        .await?
    } else {
        ask(s, true, "the settings change", |id| {
            FaxRequest::SettingsSet {
                id,
                gateway: gateway.to_owned(),
                assignments: assignments.to_vec(),
            }
        })
        .await?
    };
    let FaxEvent::SettingsInfo { settings, .. } = reply else {
        return Err(unexpected("the gateway settings"));
    };
    print_settings(&settings, json, out)
}

fn print_settings(x: &FaxSettings, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let pending = x.version > x.applied_version;
    if json {
        let values: serde_json::Map<String, serde_json::Value> = x
            .values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let v = serde_json::json!({
            "gateway": x.gateway, "version": x.version,
            "applied_version": x.applied_version, "pending": pending, "settings": values,
        });
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
        return Ok(());
    }
    writeln!(out, "gateway={}", peer(&x.gateway))?;
    writeln!(out, "version={}", x.version)?;
    writeln!(out, "applied-version={}", x.applied_version)?;
    writeln!(out, "pending={}", if pending { "yes" } else { "no" })?;
    for (k, v) in &x.values {
        writeln!(out, "{}={}", peer(k), peer_reason(v))?;
    }
    Ok(())
}

/// `fax gateways`: DOMAIN online|offline LINES-IN-USE/LINES.
pub async fn gateways(s: &Settings, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let reply = ask(s, false, "the gateway list", |id| FaxRequest::Gateways {
        id,
    })
    .await?;
    let FaxEvent::Gateways { gateways, .. } = reply else {
        return Err(unexpected("the gateway list"));
    };
    if json {
        let rows: Vec<serde_json::Value> = gateways
            .iter()
            .map(|g| {
                serde_json::json!({
                    "domain": g.domain, "online": g.online, "lines": g.lines,
                    "in_use": g.in_use, "number": g.number,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    for g in gateways {
        if g.online {
            writeln!(
                out,
                "{}\tonline\t{}/{} lines in use\t{}",
                peer(&g.domain),
                g.in_use,
                g.lines,
                peer(&g.number)
            )?;
        } else {
            writeln!(out, "{}\toffline", peer(&g.domain))?;
        }
    }
    Ok(())
}

/// The phone-book entries the logged-in user of `client` sees at this terminal, by name.
pub async fn phone_book(client: &Client) -> Result<Vec<FaxBookEntry>, ClientError> {
    match client
        .fax("the phone book", |id| FaxRequest::PhoneBook { id })
        .await?
    {
        ServerMsg::Fax(FaxEvent::PhoneBook { entries, .. }) => Ok(entries),
        _ => Err(ClientError::Unexpected("the phone book")),
    }
}

/// The supervisor's fax gateways, online or not (`fax gateways`).
pub async fn gateway_list(client: &Client) -> Result<Vec<FaxGatewayInfo>, ClientError> {
    match client
        .fax("the gateway list", |id| FaxRequest::Gateways { id })
        .await?
    {
        ServerMsg::Fax(FaxEvent::Gateways { gateways, .. }) => Ok(gateways),
        _ => Err(ClientError::Unexpected("the gateway list")),
    }
}

/// Sends a fax job of `files` to `numbers` and phone-book entries `books` on `client`'s
/// logged-in user: the job ID and the numbers it goes to, once the supervisor has it on disk.
/// Files over one frame go in chunks first.
pub async fn send_files(
    client: &Client,
    numbers: &[String],
    books: &[String],
    fine: bool,
    files: Vec<FaxFile>,
) -> Result<(String, Vec<String>), ClientError> {
    let job = uuid::Uuid::new_v4().simple().to_string();
    let total: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    let reply = if total <= MAX_JOB_BYTES as u64 {
        client
            .fax("the fax", |id| FaxRequest::Send {
                id,
                job: job.clone(),
                numbers: numbers.to_vec(),
                books: books.to_vec(),
                fine,
                files,
            })
            .await?
    } else {
        let uploads = upload_files(client, &job, &files)
            .await
            .map_err(|_| ClientError::Unexpected("the fax's upload"))?;
        client
            .fax("the fax", |id| FaxRequest::SendUploaded {
                id,
                job: job.clone(),
                numbers: numbers.to_vec(),
                books: books.to_vec(),
                fine,
                files: uploads,
            })
            .await?
    };
    match reply {
        ServerMsg::Fax(FaxEvent::Accepted { numbers, .. }) => Ok((job, numbers)),
        _ => Err(ClientError::Unexpected("the fax")),
    }
}

/// Who sees an entry, in a few words: `shared`, or `for user 1001, device DOMAIN`.
pub fn book_visibility(e: &FaxBookEntry) -> String {
    if e.shared {
        "shared".to_owned()
    } else {
        format!(
            "for {}",
            e.labels
                .iter()
                .map(|l| peer(l))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// `phonebook`: one line per entry this user sees here: NAME, NUMBER, shared or for whom.
pub async fn phonebook(s: &Settings, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let (client, events) = connect(s, false).await?;
    drop(events);
    login(&client, s).await?;
    let entries = phone_book(&client).await;
    client.close().await;
    let entries = entries?;
    if json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name, "number": e.number, "shared": e.shared, "for": e.labels,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    for e in &entries {
        writeln!(
            out,
            "{}\t{}\t{}",
            peer(&e.name),
            peer(&e.number),
            book_visibility(e)
        )?;
    }
    Ok(())
}

/// The last `last` communication records of `client`'s logged-in user (every one for an
/// administrator), oldest first.
pub async fn record_list(client: &Client, last: u32) -> Result<Vec<FaxRecordInfo>, ClientError> {
    match client
        .fax("the fax records", |id| FaxRequest::Records { id, last })
        .await?
    {
        ServerMsg::Fax(FaxEvent::Records { records, .. }) => Ok(records),
        _ => Err(ClientError::Unexpected("the fax records")),
    }
}
