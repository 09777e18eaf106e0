//! The network fax commands of the PC client: `fax send`, `fax status`,
//! `fax records`, `fax gateways`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use imagecast_shared::client::{Client, ClientError, Event};
use imagecast_shared::fax::{FaxEvent, FaxFile, FaxNumberStatus, FaxRequest};
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
    let mut total = 0;
    for f in &args.files {
        // The one rule for what a page is (see `imagecast send`).
        crate::paper::pages::check_image_kind(f)?;
        let data = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        total += data.len();
        if total > imagecast_shared::fax::MAX_JOB_BYTES {
            anyhow::bail!(
                "the files come to more than {} KiB (at {}); a fax job carries at most that \
                 for now: send fewer or smaller pages",
                imagecast_shared::fax::MAX_JOB_BYTES / 1024,
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
    let reply = client
        .fax("the fax", |id| FaxRequest::Send {
            id,
            job: job.clone(),
            numbers: args.numbers.clone(),
            books: args.books.clone(),
            fine: args.fine,
            files,
        })
        .await?;
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

/// `fax records [--last N]`: one line per call, oldest first.
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
    .await?;
    let FaxEvent::Records { records, .. } = reply else {
        return Err(unexpected("the fax records"));
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
