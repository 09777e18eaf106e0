//! Simulated terminals: the demo's other offices, each a task that holds a receiving
//! connection to the image server, stores every delivery in its own output tray with the
//! client library's [`Inbox`] and acknowledges it (`Printed` for MFPs and printers, `Stored`
//! for PCs), and reconnects with back-off when the connection drops.
//!
//! They log through `tracing` only: the panel owns the terminal's screen. What the server
//! says (reasons, notices, names) is logged escaped ([`imagecast_shared::text`]), so it cannot
//! forge log lines.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagecast_server::demo::DemoDevice;
use imagecast_shared::client::{Client, ClientConfig, Event, Inbox, InboxMode, Received};
use imagecast_shared::msg::{DeliveryOutcome, DeviceKind};
use imagecast_shared::text::escape_bounded;
use tokio_util::sync::CancellationToken;

/// The first step of the pause before reconnecting; it doubles up to [`MAX_BACKOFF`] (each
/// pause drawn from the upper half of its step).
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// The longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The most characters of a server's text (a reason, a notice, a name) logged.
const LOGGED_CHARS: usize = 200;

/// What a simulated terminal has done, shared between its task and the demo's readers.
#[derive(Debug, Default)]
struct Counters {
    /// Images (deliveries) stored this session; redeliveries are not counted twice.
    images: AtomicUsize,
    /// Pages stored this session (a multi-page TIFF counts all its pages).
    pages: AtomicUsize,
    /// Files stored this session.
    files: AtomicUsize,
    /// True while the terminal holds a connection.
    connected: AtomicBool,
    /// True once the terminal was switched on (its task runs).
    online: AtomicBool,
    /// The files of the latest delivery, for a status line.
    last: Mutex<Vec<PathBuf>>,
}

/// One simulated terminal of the demo network: a device of [`DEMO_DEVICES`] other than the
/// panel's, with its output tray and what it received this session.
///
/// [`DEMO_DEVICES`]: imagecast_server::demo::DEMO_DEVICES
#[derive(Debug)]
pub struct SimulatedTerminal {
    device: DemoDevice,
    token: String,
    tray: PathBuf,
    counters: Arc<Counters>,
}

impl SimulatedTerminal {
    pub(super) fn new(device: DemoDevice, token: String, tray: PathBuf) -> Self {
        Self {
            device,
            token,
            tray,
            counters: Arc::default(),
        }
    }

    /// The device as the seed's network lists it.
    pub fn device(&self) -> &DemoDevice {
        &self.device
    }

    /// Network domain name, e.g. `sale1.osk.mei.co.jp`.
    pub fn domain(&self) -> &str {
        self.device.domain
    }

    /// Destination name, e.g. `sales office, the Osaka branch`.
    pub fn name(&self) -> &str {
        self.device.name
    }

    /// MFP, PC, printer or fax gateway.
    pub fn kind(&self) -> DeviceKind {
        self.device.kind
    }

    /// The device token it connects with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The folder its received images land in.
    pub fn tray(&self) -> &Path {
        &self.tray
    }

    /// Images received (stored) this session.
    pub fn received(&self) -> usize {
        self.counters.images.load(Ordering::Relaxed)
    }

    /// Pages received this session (a multi-page TIFF counts all its pages).
    pub fn pages_received(&self) -> usize {
        self.counters.pages.load(Ordering::Relaxed)
    }

    /// Files received this session (a multi-page TIFF is one file of several pages).
    pub fn files_received(&self) -> usize {
        self.counters.files.load(Ordering::Relaxed)
    }

    /// The files of the latest image received, if any.
    pub fn last_received(&self) -> Vec<PathBuf> {
        self.counters
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True once the terminal is switched on; an offline terminal's images wait at the server.
    pub fn is_online(&self) -> bool {
        self.counters.online.load(Ordering::Relaxed)
    }

    /// True while it holds a connection to the server.
    pub fn is_connected(&self) -> bool {
        self.counters.connected.load(Ordering::Relaxed)
    }

    /// A short label such as `MFP 310` (`MFP` alone for offices without a numeral).
    pub fn label(&self) -> String {
        device_label(&self.device)
    }

    /// The outcome it acknowledges deliveries with: MFPs and printers print, PCs store.
    pub fn outcome(&self) -> DeliveryOutcome {
        match self.device.kind {
            DeviceKind::Mfp | DeviceKind::Printer => DeliveryOutcome::Printed,
            DeviceKind::Pc | DeviceKind::FaxGateway => DeliveryOutcome::Stored,
        }
    }

    /// Switches the terminal on: marks it online and returns the task that keeps it
    /// connected until `cancel` fires. Returns `None` if it was on already.
    pub(super) fn switch_on(
        &self,
        server: &str,
        tls: Option<imagecast_shared::tls::TlsSettings>,
        cancel: CancellationToken,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        if self.counters.online.swap(true, Ordering::SeqCst) {
            return None;
        }
        let mut cfg = ClientConfig::new(server, self.device.domain, &self.token, true);
        cfg.tls = tls;
        cfg.connect_timeout = Duration::from_secs(5);
        let runner = Runner {
            cfg,
            tray: self.tray.clone(),
            outcome: self.outcome(),
            counters: self.counters.clone(),
            cancel,
        };
        Some(runner.run())
    }
}

/// The label of a demo device: its kind and the seed's reference numeral.
pub fn device_label(d: &DemoDevice) -> String {
    let kind = match d.kind {
        DeviceKind::Mfp => "MFP",
        DeviceKind::Pc => "PC",
        DeviceKind::Printer => "printer",
        DeviceKind::FaxGateway => "fax gateway",
    };
    if d.numeral == 0 {
        kind.to_owned()
    } else {
        format!("{kind} {}", d.numeral)
    }
}

/// The task of one switched-on terminal.
struct Runner {
    cfg: ClientConfig,
    tray: PathBuf,
    outcome: DeliveryOutcome,
    counters: Arc<Counters>,
    cancel: CancellationToken,
}

/// Why a connection's event loop ended.
enum Ended {
    /// The demo is stopping.
    Cancelled,
    /// The connection dropped (or was dropped for a clean redelivery): reconnect.
    Lost,
}

impl Runner {
    async fn run(self) {
        let domain = self.cfg.device.clone();
        let tray = self.tray.clone();
        let opened = tokio::task::spawn_blocking(move || Inbox::open(tray, InboxMode::Store)).await;
        let inbox = match opened {
            Ok(Ok(inbox)) => Arc::new(Mutex::new(inbox)),
            Ok(Err(e)) => {
                tracing::error!(%domain, error = %e, "simulated terminal cannot open its tray");
                return;
            }
            Err(e) => {
                tracing::error!(%domain, error = %e, "simulated terminal cannot open its tray");
                return;
            }
        };
        let mut backoff = imagecast_shared::client::Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
        loop {
            let connected = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = Client::connect(&self.cfg) => r,
            };
            match connected {
                Ok((client, mut events)) => {
                    tracing::debug!(%domain, "simulated terminal connected");
                    self.counters.connected.store(true, Ordering::Relaxed);
                    backoff.reset();
                    let ended = self.serve(&domain, &client, &mut events, &inbox).await;
                    self.counters.connected.store(false, Ordering::Relaxed);
                    client.close().await;
                    // What was half delivered comes again from the start on the next one.
                    inbox
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .abandon_incomplete();
                    if matches!(ended, Ended::Cancelled) {
                        return;
                    }
                }
                Err(e) => {
                    let error = escape_bounded(&e.to_string(), LOGGED_CHARS).into_owned();
                    tracing::warn!(%domain, %error, "simulated terminal cannot connect; retrying");
                }
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff.pause()) => {}
            }
        }
    }

    /// Takes one connection's events until it ends.
    async fn serve(
        &self,
        domain: &str,
        client: &Client,
        events: &mut imagecast_shared::client::Events,
        inbox: &Arc<Mutex<Inbox>>,
    ) -> Ended {
        loop {
            let event = tokio::select! {
                _ = self.cancel.cancelled() => return Ended::Cancelled,
                e = events.recv() => e,
            };
            let event = match event {
                None => return Ended::Lost,
                Some(Event::Closed(reason)) => {
                    let reason = escape_bounded(&reason, LOGGED_CHARS);
                    tracing::info!(%domain, %reason, "simulated terminal lost its connection");
                    return Ended::Lost;
                }
                Some(Event::Notice(text)) => {
                    let text = escape_bounded(&text, LOGGED_CHARS);
                    tracing::info!(%domain, "server: {text}");
                    continue;
                }
                Some(
                    e @ (Event::Deliver(_) | Event::DeliverData { .. } | Event::DeliverEnd { .. }),
                ) => e,
                Some(_) => continue,
            };
            let end = match &event {
                Event::DeliverEnd { delivery } => Some(*delivery),
                _ => None,
            };
            // The inbox writes and fsyncs files: keep that off the async workers.
            let inbox = inbox.clone();
            let handled = tokio::task::spawn_blocking(move || {
                inbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .handle(&event)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("the tray task failed: {e}")));
            match handled {
                Ok(None) => {}
                Ok(Some(r)) => {
                    self.count(domain, &r);
                    let _ = client.ack(r.delivery, self.outcome.clone()).await;
                }
                Err(reason) => {
                    let logged = escape_bounded(&reason, LOGGED_CHARS);
                    tracing::warn!(
                        %domain,
                        reason = %logged,
                        "simulated terminal cannot store a delivery"
                    );
                    match end {
                        Some(delivery) => {
                            let _ = client.ack(delivery, DeliveryOutcome::Refused(reason)).await;
                        }
                        // Out of step with the server: reconnect for a clean redelivery.
                        None => return Ended::Lost,
                    }
                }
            }
        }
    }

    fn count(&self, domain: &str, r: &Received) {
        if r.duplicate {
            tracing::info!(%domain, dist = %r.dist, "redelivery of an image already received");
            return;
        }
        // Pages, not files: a multi-page TIFF counts all its pages.
        let pages = crate::paper::pages::count_pages(&r.files);
        tracing::info!(
            %domain,
            dist = %r.dist,
            from = %escape_bounded(&r.sender.domain, LOGGED_CHARS),
            user = %escape_bounded(&r.user, LOGGED_CHARS),
            pages,
            bytes = r.bytes,
            "simulated terminal received an image"
        );
        self.counters.images.fetch_add(1, Ordering::Relaxed);
        self.counters.pages.fetch_add(pages, Ordering::Relaxed);
        self.counters
            .files
            .fetch_add(r.files.len(), Ordering::Relaxed);
        *self.counters.last.lock().unwrap_or_else(|e| e.into_inner()) = r.files.clone();
    }
}
