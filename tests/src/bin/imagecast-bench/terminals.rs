//! Receiving terminals in this process: real clients that do what a terminal does up to the
//! acknowledgement.
//!
//! Each terminal is one [`Client`] connection with `receive: true` (two tasks of the client
//! library) and one task that feeds its events to an [`Inbox`] in [`InboxMode::Discard`]: the
//! inbox checks that every piece arrives in order, at the right offset, and that every page has
//! its announced size, then drops the bytes instead of writing them to disk. Once a delivery is
//! complete the terminal acknowledges it as `Stored` and reports the moment to the scenario.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use imagecast_shared::DistributionId;
use imagecast_shared::client::{Client, Event, Events, Inbox, InboxMode};
use imagecast_shared::msg::DeliveryOutcome;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::server::{BenchServer, Device};

/// Connections opened at once while a fleet connects.
const CONNECT_CONCURRENCY: usize = 64;

/// A terminal finished a delivery: stored (discarded) and acknowledged.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    /// The distribution that completed.
    pub dist: DistributionId,
    /// When the acknowledgement was handed to the connection.
    pub at: Instant,
}

/// The receiving terminals of a scenario.
pub struct Fleet {
    /// The connections (kept open as long as the fleet lives).
    pub clients: Vec<Client>,
    /// Terminals whose connection ended.
    pub closed: Arc<AtomicUsize>,
    /// Deliveries that did not add up (the inbox refused them).
    pub faults: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
}

impl Fleet {
    /// Terminals whose connection ended so far.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Faulty deliveries so far.
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }

    /// Closes every connection.
    pub async fn close(self) {
        self.closing.store(true, Ordering::SeqCst);
        let mut set = JoinSet::new();
        for c in self.clients {
            set.spawn(async move { c.close().await });
        }
        while set.join_next().await.is_some() {}
    }
}

/// Connects every device as a receiving terminal. With `inbox_root`, each stores deliveries
/// through its own [`Inbox`] (discarding the bytes) and reports on `done`; without, it only
/// holds its connection and drains its events (an idle terminal).
pub async fn connect(
    server: &BenchServer,
    devices: &[Device],
    inbox_root: Option<&Path>,
    done: Option<mpsc::UnboundedSender<Completion>>,
) -> anyhow::Result<Fleet> {
    let closed = Arc::new(AtomicUsize::new(0));
    let faults = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicBool::new(false));
    let mut inboxes = Vec::with_capacity(devices.len());
    for device in devices {
        inboxes.push(match inbox_root {
            Some(root) => Some(
                Inbox::open(root.join(&device.domain), InboxMode::Discard)
                    .with_context(|| format!("inbox of {}", device.domain))?,
            ),
            None => None,
        });
    }
    let connected = dial_all(server, devices, true).await?;
    let connected: Vec<(Client, Events, Option<Inbox>)> = connected
        .into_iter()
        .zip(inboxes)
        .map(|((c, e), i)| (c, e, i))
        .collect();
    let mut clients = Vec::with_capacity(devices.len());
    for (client, events, inbox) in connected {
        clients.push(client.clone());
        tokio::spawn(terminal(
            client,
            events,
            inbox,
            done.clone(),
            closed.clone(),
            faults.clone(),
            closing.clone(),
        ));
    }
    Ok(Fleet {
        clients,
        closed,
        faults,
        closing,
    })
}

/// Connects every device (`receive` as given), [`CONNECT_CONCURRENCY`] at a time, each tried
/// a few times (a burst of connects can overflow the listen backlog). In the order given.
pub async fn dial_all(
    server: &BenchServer,
    devices: &[Device],
    receive: bool,
) -> anyhow::Result<Vec<(Client, Events)>> {
    let limit = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut set = JoinSet::new();
    for (i, device) in devices.iter().enumerate() {
        let cfg = server.config(device, receive);
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut last = None;
            for attempt in 0..5u64 {
                match Client::connect(&cfg).await {
                    Ok(c) => return (i, Ok(c)),
                    Err(e) => {
                        last = Some(e);
                        tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                    }
                }
            }
            (
                i,
                Err(anyhow::anyhow!(
                    "terminal {} cannot connect: {}",
                    cfg.device,
                    last.map(|e| e.to_string()).unwrap_or_default()
                )),
            )
        });
    }
    let mut connected: Vec<Option<(Client, Events)>> = (0..devices.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined?;
        connected[i] = Some(result?);
    }
    Ok(connected.into_iter().flatten().collect())
}

async fn terminal(
    client: Client,
    mut events: Events,
    mut inbox: Option<Inbox>,
    done: Option<mpsc::UnboundedSender<Completion>>,
    closed: Arc<AtomicUsize>,
    faults: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
) {
    while let Some(ev) = events.recv().await {
        if let Event::Closed(reason) = &ev {
            if closing.load(Ordering::SeqCst) {
                return;
            }
            // The first few say why; the count is in the result line.
            if closed.load(Ordering::SeqCst) < 3 {
                eprintln!("imagecast-bench: a terminal's connection ended: {reason}");
            }
            break;
        }
        let Some(inbox) = inbox.as_mut() else {
            continue;
        };
        match inbox.handle(&ev) {
            Ok(Some(got)) => {
                if client
                    .ack(got.delivery, DeliveryOutcome::Stored)
                    .await
                    .is_err()
                {
                    break;
                }
                if let Some(done) = &done {
                    let _ = done.send(Completion {
                        dist: got.dist,
                        at: Instant::now(),
                    });
                }
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("imagecast-bench: a terminal refused a delivery: {e}");
                faults.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    if !closing.load(Ordering::SeqCst) {
        closed.fetch_add(1, Ordering::SeqCst);
    }
}
