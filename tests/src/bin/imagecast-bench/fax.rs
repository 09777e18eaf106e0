//! `fax`: jobs through the supervising server (issue 12) to fax machines on the simulated
//! telephone network.
//!
//! Everything but the server runs in this process, through the real libraries:
//! - N fax gateways: `imagecast_faxgw::gateway::run` (what `imagecast-faxgw run --line sim`
//!   runs) on lines of their own ([`Line::register`], L lines each), logged in to the real
//!   server with their device tokens. Their exchange has the time scale given (`--time-scale`:
//!   0 moves pages at machine speed, 0.01 is a hundred times faster than a real V.17 call).
//! - C fax machines, one per sender, answering on the same exchange and storing every call
//!   as a fax TIFF (`machine::store_call`, as `imagecast-faxgw machine --inbox` does).
//! - C senders: connections of one PC device logged in as the bench user, each sending one
//!   job at a time to its own machine with the request `imagecast fax send` makes
//!   (`FaxRequest::Send`: a job ID, one number, the page files), then following the job's
//!   progress events as `fax send --wait` does until it is done.
//!
//! Per job: `accepted` (request to the server's `Accepted`: the job and its files are on
//! disk), `handoff` (`Accepted` to the supervisor's hand-over to a gateway, its first
//! "dialling via" event), `dial` (`Accepted` to the gateway's own `Dialling` progress, the
//! second "dialling via" event of the attempt) and `done` (`Accepted` to `sent`). Every
//! job's final state is then asked with `FaxRequest::Status`: each must read `sent`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use imagecast_faxgw::coding::Coding;
use imagecast_faxgw::gateway::{self, GatewayConfig};
use imagecast_faxgw::machine;
use imagecast_faxgw::page::{Resolution, from_gray};
use imagecast_faxgw::sim::{Capabilities, Exchange, Line as PhoneLine, Reception};
use imagecast_faxgw::tiff::write_fax_tiff;
use imagecast_shared::client::{Client, Event};
use imagecast_shared::fax::{FaxEvent, FaxFile, FaxNumberStatus, FaxRequest};
use imagecast_shared::msg::ServerMsg;
use tokio::sync::{mpsc, watch};

use crate::host::{self, mib};
use crate::report::{self, Line};
use crate::server::{self, BenchServer, Layout};

/// How long one job may take from the request to its end.
const JOB_LIMIT: Duration = Duration::from_secs(120);
/// How long gateways may take to come online.
const ONLINE_LIMIT: Duration = Duration::from_secs(30);

/// What `fax` runs.
#[derive(Clone, Copy, Debug)]
pub struct FaxOptions {
    /// Fax gateways.
    pub gateways: usize,
    /// Lines per gateway.
    pub lines: u32,
    /// Measured jobs.
    pub jobs: usize,
    /// Unmeasured jobs first.
    pub warmup_jobs: usize,
    /// Senders, each with one job in flight and a fax machine of its own.
    pub concurrency: usize,
    /// Pages per job.
    pub pages: usize,
    /// What the job's files are.
    pub document: Document,
    /// The exchange's time scale for the gateways' calls.
    pub time_scale: f64,
    /// TLS between the server and its clients.
    pub tls: bool,
    /// The server's heartbeat interval.
    pub heartbeat_ms: u64,
}

/// One job's times, from the server's `Accepted`.
struct Sample {
    accepted: Duration,
    handoff: Option<Duration>,
    dial: Option<Duration>,
    /// The gateway's own `Dialling` event was not seen; `dial` is its first later stage.
    dial_inferred: bool,
    done: Duration,
    state: String,
}

/// A sending connection and its progress events with the moment each arrived.
struct Sender {
    client: Client,
    events: mpsc::UnboundedReceiver<(Instant, FaxNumberStatus)>,
    number: String,
}

/// A machine's number.
fn machine_number(i: usize) -> String {
    format!("5551{i:04}")
}

/// A gateway's number.
fn gateway_number(i: usize) -> String {
    format!("4441{i:04}")
}

/// What a job's file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Document {
    /// One grey A4 PNG at 200 dpi per page (a scan): the gateway scales and thresholds it.
    Png,
    /// One fax TIFF (Group 4, 1728 pixels wide, standard resolution) holding every page, as
    /// a PC fax driver makes: the gateway only decodes it.
    Tiff,
}

/// The job's files: `pages` A4 pages of "text" (see [`Document`]).
fn document(kind: Document, pages: usize) -> anyhow::Result<Vec<FaxFile>> {
    let page = crate::marksheet::page(200);
    match kind {
        Document::Png => {
            let mut png = Vec::new();
            image::DynamicImage::ImageLuma8(page)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .context("encoding the page")?;
            Ok((0..pages)
                .map(|i| FaxFile {
                    name: format!("page{}.png", i + 1),
                    data: png.clone().into(),
                })
                .collect())
        }
        Document::Tiff => {
            let fax = from_gray(&page, Resolution::Standard);
            let all = vec![fax; pages];
            let tiff = write_fax_tiff(&all, Coding::G4).context("writing the fax TIFF")?;
            Ok(vec![FaxFile {
                name: "document.tif".into(),
                data: tiff.into(),
            }])
        }
    }
}

async fn connect_sender(server: &BenchServer, number: String) -> anyhow::Result<Sender> {
    let (client, mut events) = Client::connect(&server.config(&server.sender, false))
        .await
        .context("a sender cannot connect")?;
    client
        .login(server::USER, server::PASSWORD)
        .await
        .context("a sender cannot log in")?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let st = match ev {
                Event::Fax(FaxEvent::Progress(st)) => st,
                Event::Closed(_) => return,
                _ => continue,
            };
            if tx.send((Instant::now(), st)).is_err() {
                return;
            }
        }
    });
    Ok(Sender {
        client,
        events: rx,
        number,
    })
}

impl Sender {
    /// Sends job `job` and follows it to its end.
    async fn one(&mut self, job: &str, files: &[FaxFile]) -> anyhow::Result<Sample> {
        let asked = Instant::now();
        let reply = self
            .client
            .fax("the fax", |id| FaxRequest::Send {
                id,
                job: job.to_owned(),
                numbers: vec![self.number.clone()],
                books: Vec::new(),
                fine: false,
                files: files.to_vec(),
            })
            .await
            .with_context(|| format!("fax job {job}"))?;
        let accepted_at = Instant::now();
        let ServerMsg::Fax(FaxEvent::Accepted { .. }) = reply else {
            bail!("fax job {job}: the server answered {reply:?}");
        };
        let since = |at: Instant| at.saturating_duration_since(accepted_at);
        let (mut handoff, mut dial, mut inferred) = (None, None, false);
        let deadline = tokio::time::Instant::from_std(asked + JOB_LIMIT);
        loop {
            let (at, st) = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .with_context(|| format!("fax job {job} did not end in time"))?
                .context("a sender's connection ended")?;
            if st.job != job {
                continue;
            }
            if st.detail.starts_with("dialling via") {
                if handoff.is_none() {
                    handoff = Some(since(at));
                } else if dial.is_none() {
                    dial = Some(since(at));
                }
            } else if dial.is_none() && handoff.is_some() {
                // A later stage of the call came first: the gateway had dialled.
                dial = Some(since(at));
                inferred = true;
            }
            if st.done {
                return Ok(Sample {
                    accepted: accepted_at - asked,
                    handoff,
                    dial,
                    dial_inferred: inferred,
                    done: since(at),
                    state: st.state,
                });
            }
        }
    }
}

/// Every sender sends jobs `first..first + count` between them, one at a time each.
async fn phase(
    senders: Vec<Sender>,
    files: &Arc<Vec<FaxFile>>,
    first: usize,
    count: usize,
    tag: &str,
) -> anyhow::Result<(Vec<Sender>, Vec<(String, Sample)>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for mut s in senders {
        let (next, files, tag) = (next.clone(), files.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= count {
                    break;
                }
                let job = format!("bench-{tag}-{:06}", first + k);
                let sample = s.one(&job, &files).await?;
                samples.push((job, sample));
            }
            anyhow::Ok((s, samples))
        }));
    }
    let mut senders = Vec::new();
    let mut samples = Vec::new();
    for t in tasks {
        let (s, mut got) = t.await??;
        senders.push(s);
        samples.append(&mut got);
    }
    Ok((senders, samples))
}

/// Waits until every gateway is online at the server.
async fn wait_online(client: &Client, n: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let reply = client
            .fax("the gateway list", |id| FaxRequest::Gateways { id })
            .await?;
        let online = match reply {
            ServerMsg::Fax(FaxEvent::Gateways { gateways, .. }) => {
                gateways.iter().filter(|g| g.online).count()
            }
            other => bail!("the gateway list: {other:?}"),
        };
        if online >= n {
            return Ok(());
        }
        if start.elapsed() > ONLINE_LIMIT {
            bail!("only {online} of {n} gateways came online");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the fax machines received.
#[derive(Default)]
struct Received {
    calls: AtomicUsize,
    pages: AtomicUsize,
    incomplete: AtomicUsize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `fax --gateways N --lines L --jobs M --concurrency C`.
pub async fn fax(o: FaxOptions) -> anyhow::Result<Line> {
    // Standard output carries the result lines only: the gateways' news goes to the log.
    imagecast_faxgw::console::to_log();
    let c = o.concurrency.max(1);
    let layout = Layout {
        gateways: o.gateways.max(1),
        heartbeat_ms: o.heartbeat_ms,
        tls: o.tls,
        ..Layout::default()
    };
    let server = tokio::task::spawn_blocking(move || BenchServer::start(&layout)).await??;
    let exchange = Exchange::open(&server.dir.path().join("exchange"))?
        .with_ring_time(Duration::from_secs(2))
        .with_time_scale(o.time_scale);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };

    // The customers' fax machines.
    let received = Arc::new(Received::default());
    let inboxes = server.dir.path().join("inboxes");
    for i in 0..c {
        let number = machine_number(i);
        let line = PhoneLine::register(
            &exchange,
            &number,
            &format!("CUSTOMER {i}"),
            Capabilities::default(),
            1,
        )
        .await
        .with_context(|| format!("fax machine {number}"))?;
        let inbox = inboxes.join(&number);
        machine::prepare_inbox(&inbox)?;
        let (received, stop) = (received.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                let call = tokio::select! {
                    () = &mut stop => return,
                    call = line.accept() => call,
                };
                let Ok(call) = call else { return };
                received.calls.fetch_add(1, Ordering::SeqCst);
                received.pages.fetch_add(call.pages.len(), Ordering::SeqCst);
                if call.reception != Reception::Complete {
                    received.incomplete.fetch_add(1, Ordering::SeqCst);
                }
                let stored = {
                    let inbox = inbox.clone();
                    tokio::task::spawn_blocking(move || machine::store_call(&inbox, &call)).await
                };
                if !matches!(stored, Ok(Ok(_))) {
                    eprintln!("imagecast-bench: fax machine {number} could not store a call");
                }
            }
        });
    }

    // The gateways.
    for (i, device) in server.gateways.iter().enumerate() {
        let number = gateway_number(i);
        let station = format!("BENCH GW {i}");
        let line = PhoneLine::register(
            &exchange,
            &number,
            &station,
            Capabilities::default(),
            o.lines.max(1) as usize,
        )
        .await
        .with_context(|| format!("gateway line {number}"))?;
        let cfg = GatewayConfig {
            client: gateway::client_config(
                &server.addr,
                &device.domain,
                &device.token,
                !o.tls,
                server.fingerprint.as_deref(),
                None,
            ),
            number,
            station,
            lines: o.lines.max(1),
            // Received faxes would wait here; the bench only sends.
            spool: server.dir.path().join("spool").join(&device.domain),
        };
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = gateway::run(cfg, Arc::new(line), stop).await {
                eprintln!("imagecast-bench: a gateway stopped: {e:#}");
            }
        });
    }

    let mut senders = Vec::with_capacity(c);
    for i in 0..c {
        senders.push(connect_sender(&server, machine_number(i)).await?);
    }
    wait_online(&senders[0].client, o.gateways.max(1)).await?;
    let files = Arc::new(document(o.document, o.pages.max(1))?);

    let (senders, _) = phase(senders, &files, 0, o.warmup_jobs, "warmup").await?;
    let calls_before = received.calls.load(Ordering::SeqCst);
    let pages_before = received.pages.load(Ordering::SeqCst);
    let incomplete_before = received.incomplete.load(Ordering::SeqCst);
    let me = std::process::id();
    let cpu0 = (host::cpu_time(server.pid()), host::cpu_time(me));
    let host0 = host::busy_seconds();
    let start = Instant::now();
    let (senders, samples) = phase(senders, &files, 0, o.jobs, "job").await?;
    let seconds = start.elapsed().as_secs_f64().max(1e-9);
    let server_cpu = host::cpu_time(server.pid())
        .saturating_sub(cpu0.0)
        .as_secs_f64();
    let bench_cpu = host::cpu_time(me).saturating_sub(cpu0.1).as_secs_f64();
    let foreign = ((host::busy_seconds() - host0 - server_cpu - bench_cpu) / seconds).max(0.0);

    // Every job's final state, as `fax status JOB` reads it.
    let mut not_sent = Vec::new();
    for (job, _) in &samples {
        let reply = senders[0]
            .client
            .fax("the fax status", |id| FaxRequest::Status {
                id,
                job: job.clone(),
            })
            .await?;
        let ok = matches!(&reply, ServerMsg::Fax(FaxEvent::Status { numbers, .. })
            if !numbers.is_empty() && numbers.iter().all(|n| n.state == "sent"));
        if !ok {
            not_sent.push(job.clone());
        }
    }
    // The machines store a call once it has ended; the last ones may still be at it.
    let settle = Instant::now();
    while received.calls.load(Ordering::SeqCst) < calls_before + samples.len()
        && settle.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pick = |f: &dyn Fn(&Sample) -> Option<Duration>| -> Vec<f64> {
        samples.iter().filter_map(|(_, s)| f(s)).map(ms).collect()
    };
    let dial = pick(&|s| s.dial);
    let handoff = pick(&|s| s.handoff);
    let accepted = pick(&|s| Some(s.accepted));
    let done = pick(&|s| Some(s.done));
    let sent_events = samples.iter().filter(|(_, s)| s.state == "sent").count();
    let line = Line::new("fax")
        .field("gateways", o.gateways.max(1))
        .field("lines", o.lines.max(1))
        .field("jobs", samples.len())
        .field("concurrency", c)
        .field("pages", o.pages.max(1))
        .field(
            "document",
            match o.document {
                Document::Png => "png",
                Document::Tiff => "tiff",
            },
        )
        .field(
            "document_kib",
            files.iter().map(|f| f.data.len()).sum::<usize>() / 1024,
        )
        .field("time_scale", o.time_scale)
        .num("jobs_per_s", samples.len() as f64 / seconds)
        .num("dial_ms_p50", report::percentile(&dial, 50.0))
        .num("dial_ms_p99", report::percentile(&dial, 99.0))
        .num("dial_ms_max", report::max(&dial))
        .num("handoff_ms_p50", report::percentile(&handoff, 50.0))
        .num("handoff_ms_p99", report::percentile(&handoff, 99.0))
        .num("accepted_ms_p50", report::percentile(&accepted, 50.0))
        .num("accepted_ms_p99", report::percentile(&accepted, 99.0))
        .num("done_ms_p50", report::percentile(&done, 50.0))
        .num("done_ms_p99", report::percentile(&done, 99.0))
        .field("sent", samples.len() - not_sent.len())
        .field("not_sent", not_sent.len())
        .field("sent_events", sent_events)
        .field("dial_samples", dial.len())
        .field(
            "dial_inferred",
            samples.iter().filter(|(_, s)| s.dial_inferred).count(),
        )
        .field(
            "machine_calls",
            received.calls.load(Ordering::SeqCst) - calls_before,
        )
        .field(
            "machine_pages",
            received.pages.load(Ordering::SeqCst) - pages_before,
        )
        .field(
            "machine_incomplete",
            received.incomplete.load(Ordering::SeqCst) - incomplete_before,
        )
        .field("tls", if o.tls { "on" } else { "off" })
        .num("seconds", seconds)
        .num("server_cpu_util", server_cpu / seconds)
        .num("bench_cpu_util", bench_cpu / seconds)
        .num("foreign_cpu_cores", foreign)
        .num("server_peak_rss_mib", mib(server.memory()?.peak))
        .field("warmup_jobs", o.warmup_jobs);
    let _ = stop_tx.send(true);
    for s in senders {
        s.client.close().await;
    }
    if !not_sent.is_empty() {
        eprintln!(
            "imagecast-bench: {} jobs did not end `sent`, first {:?}; server log: {:?}",
            not_sent.len(),
            not_sent.first(),
            server.log_problems(5)
        );
    }
    Ok(line)
}
