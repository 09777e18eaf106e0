//! `imagecast-faxgw run`: the fax gateway terminal. It connects out to imagecast-server with
//! its device token (a receiving connection, so it works from behind NAT), announces its
//! lines, and makes the calls the supervisor pushes ([`FaxEvent::Job`]) on its line driver,
//! reporting progress and each call's result. Retries and their timing are the supervisor's.
//! A lost connection is dialled again with a growing pause (1 s doubling to 30 s); calls in
//! progress are hung up then, since the supervisor requeues them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use imagecast_shared::client::{Client, ClientConfig, Event};
use imagecast_shared::fax::{CallStage, FaxEvent, FaxJob, FaxRequest, FaxResult};
use imagecast_shared::tls::TlsSettings;
use tokio::task::JoinSet;

use crate::page::{FaxPage, Resolution, pages_from_file};
use crate::sim::{CallProgress, CallResult, DialOptions, Line};

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

/// Runs the gateway until `stop` completes: connects, serves, reconnects.
pub async fn run(
    cfg: GatewayConfig,
    line: Arc<Line>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    let mut pause = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let outcome = tokio::select! {
            _ = &mut stop => return Ok(()),
            r = serve(&cfg, &line) => r,
        };
        if let Err(e) = outcome {
            eprintln!(
                "imagecast-faxgw: {e:#}; connecting again in {} s",
                pause.as_secs()
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            pause = Duration::from_secs(1);
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// One connection: announce, then make the calls pushed until the connection ends.
async fn serve(cfg: &GatewayConfig, line: &Arc<Line>) -> anyhow::Result<()> {
    let (client, mut events) = Client::connect(&cfg.client)
        .await
        .with_context(|| format!("cannot connect to {}", cfg.client.server))?;
    let client = Arc::new(client);
    client
        .fax("the gateway's announcement", |id| FaxRequest::Gateway {
            id,
            number: cfg.number.clone(),
            station: cfg.station.clone(),
            lines: cfg.lines,
        })
        .await
        .context("the server refused the gateway")?;
    println!("connected as {}", cfg.client.device);
    // Calls in progress; dropped (hung up) with this connection.
    let mut calls = JoinSet::new();
    let reason = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                None => break "the connection ended".to_owned(),
                Some(Event::Closed(r)) => break r,
                Some(Event::Fax(FaxEvent::Job(job))) => {
                    let (client, line) = (Arc::clone(&client), Arc::clone(line));
                    calls.spawn(async move { call(&client, &line, job).await });
                }
                Some(_) => {}
            },
            Some(_) = calls.join_next(), if !calls.is_empty() => {}
        }
    };
    calls.abort_all();
    client.close().await;
    anyhow::bail!("disconnected: {reason}")
}

/// The document's pages: each file written to a private temporary folder and read as fax
/// pages (each page of a multi-page TIFF is one fax page).
fn pages_of(job: &FaxJob) -> anyhow::Result<Vec<FaxPage>> {
    let dir = std::env::temp_dir().join(format!(
        "imagecast-faxgw-{}-{}-{}",
        std::process::id(),
        job.job,
        job.attempt
    ));
    imagecast_shared::private::create_dir(&dir).context("cannot make a temporary folder")?;
    let result = (|| {
        let resolution = if job.fine {
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

/// Makes one call and reports it.
async fn call(client: &Client, line: &Line, job: FaxJob) {
    let mut result = FaxResult {
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
    };
    match tokio::task::block_in_place(|| pages_of(&job)) {
        Err(e) => result.reason = format!("{e:#}"),
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
                let r = line.dial(&job.number, &pages, &options).await;
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
    if let Err(e) = client
        .fax("the call's result", |id| FaxRequest::Result { id, result })
        .await
    {
        eprintln!("imagecast-faxgw: cannot report a call: {e}");
    }
}
