//! `imagecast-faxgw run`: the fax gateway terminal. It connects out to imagecast-server with
//! its device token (a receiving connection, so it works from behind NAT), announces its
//! lines, and makes the calls the supervisor pushes ([`FaxEvent::Job`]) on its line driver,
//! reporting progress and each call's result. Retries and their timing are the supervisor's.
//! A lost connection is dialled again with a growing pause (1 s doubling to 30 s, with jitter); calls in
//! progress are hung up then, since the supervisor requeues them.
//!
//! It also **answers** its line the whole time it runs, connected or not: every fax received
//! is kept durably in the spool folder ([`crate::kept`]) and uploaded to the supervisor in
//! chunks ([`FaxRequest::Chunk`], then [`FaxRequest::Received`]); it is forgotten only once
//! the supervisor answered that it stored it, so a fax received while the supervisor is away,
//! or whose answer was lost, is uploaded again after the next connection (the supervisor
//! recognises it by its ID and stores it once).
//!
//! **Settings** the supervisor pushes ([`FaxEvent::Settings`]) are applied at once and
//! acknowledged ([`FaxRequest::SettingsApplied`]): station ID, lines, coding and error
//! correction (the capabilities offered on every call), resolution (scaled images of jobs
//! are sent fine), dial prefix (put before every number dialled; commas, pauses, are
//! dropped on the simulated network) and max pages (a longer job fails without dialling).
//! `number`, `tagline`, `network` and `destination` are only stored: the simulated line
//! cannot change its number while it holds it and draws no tagline.
//!
//! The line driver is a [`Driver`]: the simulated network or a HylaFAX server (whose
//! modems are configured on that server: station ID, coding and error correction are then
//! only stored, and received faxes are polled from its receive queue, see
//! [`crate::driver`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imagecast_shared::client::ClientError;
use imagecast_shared::client::{Client, ClientConfig, Event};
use imagecast_shared::fax::{
    CallStage, FaxEvent, FaxJob, FaxRequest, FaxResult, FaxSettings, MAX_CHUNK_BYTES,
};
use imagecast_shared::msg::ServerMsg;
use imagecast_shared::tls::TlsSettings;
use tokio::task::JoinSet;

use crate::driver::Driver;
use crate::kept::{Kept, KeptFax};
use crate::page::{FaxPage, Resolution, pages_from_file};
use crate::sim::{CallProgress, CallResult, Capabilities, DialOptions, Line};

/// How the gateway reaches its server.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The server, its device domain and token, TLS.
    pub client: ClientConfig,
    /// The gateway's own number.
    pub number: String,
    /// Its station ID.
    pub station: String,
    /// Lines it calls on at once.
    pub lines: u32,
    /// Where received faxes wait for the supervisor's acknowledgement.
    pub spool: PathBuf,
}

/// The settings pushed by the supervisor that shape the calls this gateway makes.
#[derive(Clone, Debug)]
struct Applied {
    /// Send scaled images at fine resolution whatever the job says.
    fine: bool,
    /// Most pages of one job.
    max_pages: u32,
    /// Dialled before every number (digits, `*`, `#`).
    dial_prefix: String,
    /// Lines, as announced.
    lines: u32,
    /// The station ID, as announced.
    station: String,
}

type Shared = Arc<std::sync::Mutex<Applied>>;

fn applied(s: &Shared) -> Applied {
    s.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The client configuration of a gateway: TLS pinned to `fingerprint`, trust on first use
/// (remembered in `known`) without one, or plain TCP.
pub fn client_config(
    server: &str,
    device: &str,
    token: &str,
    plain: bool,
    fingerprint: Option<&str>,
    known: Option<PathBuf>,
) -> ClientConfig {
    let mut cfg = ClientConfig::new(server, device, token, true);
    cfg.software = concat!("imagecast-faxgw ", env!("CARGO_PKG_VERSION")).to_owned();
    cfg.tls = if plain {
        None
    } else {
        match (fingerprint, known) {
            (Some(fp), _) => Some(TlsSettings::pinned(fp)),
            (None, Some(k)) => Some(TlsSettings::known_servers(k)),
            (None, None) => Some(TlsSettings::pinned("")),
        }
    };
    cfg
}

/// Runs the gateway on the simulated line `line` until `stop` completes (see [`run_on`]).
pub async fn run(
    cfg: GatewayConfig,
    line: Arc<Line>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    run_on(cfg, Driver::Sim(line), stop).await
}

/// Runs the gateway on `driver` until `stop` completes: takes received faxes all along,
/// connects, serves, reconnects.
pub async fn run_on(
    cfg: GatewayConfig,
    driver: Driver,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let driver = Arc::new(driver);
    let kept = Arc::new(
        Kept::open(&cfg.spool).with_context(|| format!("spool folder {}", cfg.spool.display()))?,
    );
    let settings: Shared = Arc::new(std::sync::Mutex::new(Applied {
        fine: false,
        max_pages: 1000,
        dial_prefix: String::new(),
        lines: cfg.lines,
        station: cfg.station.clone(),
    }));
    let mut answering = {
        let (d, k, called) = (Arc::clone(&driver), Arc::clone(&kept), cfg.number.clone());
        tokio::spawn(async move { d.receive(k, called).await })
    };
    tokio::pin!(stop);
    let mut backoff =
        imagecast_shared::client::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let result = loop {
        let started = tokio::time::Instant::now();
        let outcome = tokio::select! {
            _ = &mut stop => break Ok(()),
            r = serve(&cfg, &driver, &kept, &settings) => r,
        };
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        let pause = backoff.pause();
        if let Err(e) = outcome {
            crate::warn_line!(
                "imagecast-faxgw: {e:#}; connecting again in {:.1} s",
                pause.as_secs_f64()
            );
        }
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
    };
    // New calls ring out; the calls in progress finish (at most the machine's grace), so every
    // page confirmed to a caller is kept.
    driver.stop_answering();
    if driver.sim().is_none() {
        // HylaFAX's queue: a fax not kept yet stays there for the next start.
        answering.abort();
    } else if tokio::time::timeout(crate::machine::SHUTDOWN_GRACE, &mut answering)
        .await
        .is_err()
    {
        answering.abort();
    }
    result
}

/// Answers the line: keeps every fax received, durably, for the uploader.
pub(crate) async fn answer(line: Arc<Line>, kept: Arc<Kept>) {
    loop {
        let call = match line.accept().await {
            Ok(call) => call,
            Err(crate::sim::SimError::Closed) => return,
            Err(e) => {
                crate::warn_line!("imagecast-faxgw: the line stopped answering: {e}");
                return;
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let at_ms = (now.saturating_sub(call.duration)).as_millis() as i64;
        let k = Arc::clone(&kept);
        let c = call.clone();
        let stored =
            tokio::task::spawn_blocking(move || k.keep(&c, at_ms, crate::sim::BIT_RATE)).await;
        let station = imagecast_shared::text::escape(&call.remote_station);
        match stored {
            Ok(Ok(Some(k))) => crate::say!(
                "received fax from {} \"{station}\": {} pages; kept as {}",
                call.caller,
                call.pages.len(),
                k.fax.reception
            ),
            Ok(Ok(None)) => crate::say!(
                "a call from {} \"{station}\" delivered no page",
                call.caller
            ),
            Ok(Err(e)) => crate::warn_line!(
                "imagecast-faxgw: cannot keep a fax from {}: {e}",
                call.caller
            ),
            Err(e) => crate::warn_line!("imagecast-faxgw: cannot keep a fax: {e}"),
        }
    }
}

/// Uploads one kept fax in chunks and says it was received; true when the supervisor had
/// stored it before.
async fn upload(client: &Client, k: &KeptFax) -> anyhow::Result<bool> {
    let path = k.tiff.clone();
    let data = tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await?
        .with_context(|| format!("cannot read {}", k.tiff.display()))?;
    let total = data.len() as u64;
    let mut offset = 0usize;
    while offset < data.len() || offset == 0 {
        let end = (offset + MAX_CHUNK_BYTES).min(data.len());
        let piece = data[offset..end].to_vec();
        client
            .fax("a piece of a received fax", |id| FaxRequest::Chunk {
                id,
                upload: k.fax.reception.clone(),
                offset: offset as u64,
                total,
                data: piece.into(),
            })
            .await
            .context("the supervisor refused a piece of a received fax")?;
        offset = end;
        if end == data.len() {
            break;
        }
    }
    let mut fax = k.fax.clone();
    fax.bytes = total;
    match client
        .fax("a received fax", |id| FaxRequest::Received { id, fax })
        .await
        .context("the supervisor refused a received fax")?
    {
        ServerMsg::Fax(FaxEvent::ReceivedStored { duplicate, .. }) => Ok(duplicate),
        other => anyhow::bail!("unexpected answer to a received fax: {other:?}"),
    }
}

/// Uploads every kept fax, oldest first, then waits for the next; forgets each once stored
/// (and then has the driver remove it from HylaFAX's receive queue).
async fn uploader(client: Arc<Client>, kept: Arc<Kept>, driver: Arc<Driver>) {
    loop {
        let k2 = Arc::clone(&kept);
        let list = tokio::task::spawn_blocking(move || k2.list()).await;
        let list = match list {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                crate::warn_line!("imagecast-faxgw: cannot read the spool: {e}");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        let mut failed = false;
        for k in list {
            match upload(&client, &k).await {
                Ok(duplicate) => {
                    // Out of HylaFAX's queue first: a poll meanwhile sees it still kept.
                    driver.stored(&k.fax.reception).await;
                    if let Err(e) = kept.forget(&k.fax.reception) {
                        crate::warn_line!("imagecast-faxgw: {e}");
                    }
                    crate::say!(
                        "fax {} uploaded{}",
                        k.fax.reception,
                        if duplicate {
                            " (the supervisor had it already)"
                        } else {
                            ""
                        }
                    );
                }
                Err(e) => {
                    crate::warn_line!("imagecast-faxgw: fax {}: {e:#}", k.fax.reception);
                    failed = true;
                    if e.downcast_ref::<ClientError>()
                        .is_some_and(ClientError::is_connection_lost)
                    {
                        return;
                    }
                }
            }
        }
        if failed {
            tokio::select! {
                _ = kept.added() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        } else {
            kept.added().await;
        }
    }
}

/// Applies settings pushed by the supervisor; returns the keys only stored.
fn apply_settings(
    cfg: &GatewayConfig,
    driver: &Driver,
    shared: &Shared,
    s: &FaxSettings,
) -> anyhow::Result<Vec<String>> {
    let get = |k: &str| {
        s.values
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let station = match get("station-id") {
        "" => cfg.station.clone(),
        s => s.to_owned(),
    };
    let lines: u32 = get("lines").parse().unwrap_or(cfg.lines).clamp(1, 64);
    let mut stored_only = Vec::new();
    match driver.sim() {
        Some(line) => {
            line.set_station(&station)?;
            line.set_lines(lines as usize);
            let ecm = get("error-correction") != "off";
            line.set_capabilities(Capabilities {
                fine: line.capabilities().fine,
                g4: get("coding") == "g4" && ecm,
                ecm,
            });
        }
        // HylaFAX's modems have their own configuration (LocalIdentifier, Class 1/2 ECM).
        None => {
            for k in ["station-id", "coding", "error-correction"] {
                if !get(k).is_empty() {
                    stored_only.push(k.to_owned());
                }
            }
        }
    }
    {
        let mut a = shared.lock().unwrap_or_else(|e| e.into_inner());
        a.fine = get("resolution") == "fine";
        a.max_pages = get("max-pages").parse().unwrap_or(1000);
        a.dial_prefix = driver.dialable(get("dial-prefix"));
        a.lines = lines;
        if driver.sim().is_some() {
            a.station = station;
        }
    }
    if !get("number").is_empty() && get("number") != cfg.number {
        stored_only.push("number".to_owned());
    }
    for k in ["tagline", "network", "destination"] {
        if !get(k).is_empty() {
            stored_only.push(k.to_owned());
        }
    }
    Ok(stored_only)
}

/// The gateway's announcement: its number, station and lines now.
async fn announce(client: &Client, cfg: &GatewayConfig, settings: &Shared) -> anyhow::Result<()> {
    let a = applied(settings);
    client
        .fax("the gateway's announcement", |id| FaxRequest::Gateway {
            id,
            number: cfg.number.clone(),
            station: a.station,
            lines: a.lines,
        })
        .await
        .context("the server refused the gateway")?;
    Ok(())
}

/// Applies pushed settings, announces the lines again when they changed, and acknowledges.
async fn on_settings(
    client: &Client,
    cfg: &GatewayConfig,
    driver: &Driver,
    settings: &Shared,
    s: &FaxSettings,
) {
    let before = applied(settings);
    let stored_only = match apply_settings(cfg, driver, settings, s) {
        Ok(k) => k,
        Err(e) => {
            crate::warn_line!(
                "imagecast-faxgw: cannot apply settings version {}: {e:#}",
                s.version
            );
            return;
        }
    };
    let after = applied(settings);
    if (after.lines, &after.station) != (before.lines, &before.station)
        && let Err(e) = announce(client, cfg, settings).await
    {
        crate::warn_line!("imagecast-faxgw: {e:#}");
    }
    let version = s.version;
    let keys = stored_only.clone();
    match client
        .fax("the settings' acknowledgement", |id| {
            FaxRequest::SettingsApplied {
                id,
                version,
                stored_only: keys,
            }
        })
        .await
    {
        Ok(_) => crate::say!(
            "settings version {version} applied{}",
            if stored_only.is_empty() {
                String::new()
            } else {
                format!(" (only stored: {})", stored_only.join(", "))
            }
        ),
        Err(e) => crate::warn_line!("imagecast-faxgw: cannot acknowledge settings: {e}"),
    }
}

/// One connection: announce, upload what was received, then make the calls pushed and apply
/// the settings pushed until the connection ends.
async fn serve(
    cfg: &GatewayConfig,
    driver: &Arc<Driver>,
    kept: &Arc<Kept>,
    settings: &Shared,
) -> anyhow::Result<()> {
    let (client, mut events) = Client::connect(&cfg.client)
        .await
        .with_context(|| format!("cannot connect to {}", cfg.client.server))?;
    let client = Arc::new(client);
    announce(&client, cfg, settings).await?;
    crate::say!("connected as {}", cfg.client.device);
    let uploads = tokio::spawn(uploader(
        Arc::clone(&client),
        Arc::clone(kept),
        Arc::clone(driver),
    ));
    // Calls in progress; dropped (hung up) with this connection.
    let mut calls = JoinSet::new();
    let reason = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break "the connection ended".to_owned(),
                Some(Event::Closed(r)) => break r,
                Some(Event::Fax(FaxEvent::Job(job))) => {
                    let (client, line) = (Arc::clone(&client), Arc::clone(driver));
                    let a = applied(settings);
                    calls.spawn(async move { call(&client, &line, job, a).await });
                }
                Some(Event::Fax(FaxEvent::JobByParts { job, sizes })) => {
                    let (client, line) = (Arc::clone(&client), Arc::clone(driver));
                    let a = applied(settings);
                    calls.spawn(async move {
                        match fetch_files(&client, job.clone(), &sizes).await {
                            Ok(job) => call(&client, &line, job, a).await,
                            Err(e) => {
                                let mut result = failed_result(&job);
                                result.reason = format!("cannot fetch the job's files: {e:#}");
                                report(&client, result).await;
                            }
                        }
                    });
                }
                Some(Event::Fax(FaxEvent::Settings(s))) => {
                    on_settings(&client, cfg, driver, settings, &s).await;
                }
                Some(_) => {}
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
        }
    };
    uploads.abort();
    calls.abort_all();
    client.close().await;
    anyhow::bail!("disconnected: {reason}")
}

/// The document's pages: each file written to a private temporary folder and read as fax
/// pages (each page of a multi-page TIFF is one fax page).
fn pages_of(job: &FaxJob, fine: bool) -> anyhow::Result<Vec<FaxPage>> {
    let dir = std::env::temp_dir().join(format!(
        "imagecast-faxgw-{}-{}-{}",
        std::process::id(),
        job.job,
        job.attempt
    ));
    imagecast_shared::private::create_dir(&dir).context("cannot make a temporary folder")?;
    let result = (|| {
        let resolution = if job.fine || fine {
            Resolution::Fine
        } else {
            Resolution::Standard
        };
        let mut pages = Vec::new();
        for (i, f) in job.files.iter().enumerate() {
            let ext = Path::new(&f.name)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or("bin");
            let path = dir.join(format!("{i}.{ext}"));
            std::fs::write(&path, &f.data)?;
            pages.extend(
                pages_from_file(&path, resolution).with_context(|| format!("file {}", f.name))?,
            );
        }
        anyhow::Ok(pages)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Fetches the files of a job given in parts ([`FaxEvent::JobByParts`]) piece by piece.
async fn fetch_files(client: &Client, mut job: FaxJob, sizes: &[u64]) -> anyhow::Result<FaxJob> {
    const MAX_FILE: u64 = imagecast_shared::fax::MAX_UPLOADED_JOB_BYTES;
    if sizes.len() != job.files.len() || sizes.iter().any(|s| *s > MAX_FILE) {
        anyhow::bail!("the job's file sizes do not add up");
    }
    for (i, (file, size)) in job.files.iter_mut().zip(sizes).enumerate() {
        let mut data = Vec::with_capacity(*size as usize);
        while (data.len() as u64) < *size {
            let reply = client
                .fax("a piece of a fax job", |id| FaxRequest::JobPart {
                    id,
                    job: job.job.clone(),
                    file: i as u32,
                    offset: data.len() as u64,
                })
                .await?;
            match reply {
                ServerMsg::Fax(FaxEvent::JobPart { data: piece, .. }) if !piece.is_empty() => {
                    if data.len() as u64 + piece.len() as u64 > *size {
                        anyhow::bail!("file {} is longer than announced", i + 1);
                    }
                    data.extend_from_slice(&piece);
                }
                ServerMsg::Fax(FaxEvent::JobPart { .. }) => {
                    anyhow::bail!("file {} ended at byte {} of {size}", i + 1, data.len())
                }
                other => anyhow::bail!("unexpected answer {other:?}"),
            }
        }
        file.data = data.into();
    }
    Ok(job)
}

/// A failed result for `job`, before anything was dialled.
fn failed_result(job: &FaxJob) -> FaxResult {
    FaxResult {
        job: job.job.clone(),
        number: job.number.clone(),
        attempt: job.attempt,
        outcome: "failed".into(),
        station: String::new(),
        pages_confirmed: 0,
        pages_total: 0,
        next_page: job.first_page,
        coding: String::new(),
        ecm: false,
        speed: 0,
        duration_ms: 0,
        reason: String::new(),
    }
}

/// Reports a call's result.
async fn report(client: &Client, result: FaxResult) {
    if let Err(e) = client
        .fax("the call's result", |id| FaxRequest::Result { id, result })
        .await
    {
        crate::warn_line!("imagecast-faxgw: cannot report a call: {e}");
    }
}

/// Makes one call and reports it.
async fn call(client: &Client, line: &Driver, job: FaxJob, settings: Applied) {
    let mut result = failed_result(&job);
    match tokio::task::block_in_place(|| pages_of(&job, settings.fine)) {
        Err(e) => result.reason = format!("{e:#}"),
        Ok(pages) if pages.len() > settings.max_pages as usize => {
            result.pages_total = pages.len() as u32;
            result.reason = format!(
                "{} pages; this gateway sends at most {} (max-pages)",
                pages.len(),
                settings.max_pages
            );
        }
        Ok(pages) => {
            result.pages_total = pages.len() as u32;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let options = DialOptions {
                first_page: job.first_page as usize,
                progress: Some(tx),
            };
            let report = async {
                while let Some(step) = rx.recv().await {
                    let stage = match step {
                        CallProgress::Dialling => CallStage::Dialling,
                        CallProgress::Connected { remote_station, .. } => CallStage::Connected {
                            station: remote_station,
                        },
                        CallProgress::SendingPage { page, of } => CallStage::Sending {
                            page: page as u32,
                            of: of as u32,
                        },
                        CallProgress::PageConfirmed { page } => {
                            CallStage::Confirmed { page: page as u32 }
                        }
                    };
                    let _ = client
                        .fax_notify(FaxRequest::Progress {
                            job: job.job.clone(),
                            number: job.number.clone(),
                            attempt: job.attempt,
                            stage,
                        })
                        .await;
                }
            };
            let dial = async {
                let number = format!("{}{}", settings.dial_prefix, job.number);
                let r = line.dial(&number, &pages, &options).await;
                drop(options);
                r
            };
            let (outcome, ()) = tokio::join!(dial, report);
            match outcome {
                Err(e) => result.reason = e.to_string(),
                Ok(o) => {
                    result.outcome = o.result.word().to_owned();
                    result.reason = o.result.reason().unwrap_or_default();
                    if let CallResult::Sent = o.result {
                        result.reason.clear();
                    }
                    result.station = o.remote_station.unwrap_or_default();
                    result.pages_confirmed = o.pages_confirmed as u32;
                    result.next_page = o.next_page as u32;
                    result.coding = o.coding.map(|c| c.name().to_owned()).unwrap_or_default();
                    result.ecm = o.ecm;
                    result.speed = o.bit_rate.unwrap_or(0);
                    result.duration_ms = o.duration.as_millis() as u64;
                }
            }
        }
    }
    report(client, result).await;
}
