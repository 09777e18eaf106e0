//! Terminals that stay connected the way `imagecast receive` does, for the scenarios in which
//! connections break: `restart-storm` and `soak`.
//!
//! The client library has no reconnect loop of its own; each program has one. This is the
//! loop of `imagecast receive` (`tui/src/pc/mod.rs`), copied: after a lost connection, wait
//! and dial again; while dialling fails with a lost-connection error, wait longer: the
//! client library's [`Backoff`] from [`FIRST_DELAY`] doubling to [`MAX_DELAY`], each pause
//! drawn from the upper half of its step (jitter); a connection that works resets it; any
//! other error (the server refused the terminal) is final: the terminal gives up.
//!
//! Deliveries go through an [`Inbox`] in [`InboxMode::Discard`] and are acknowledged as
//! `Stored`, as in [`crate::terminals`]. Everything a terminal sees is reported on one
//! channel as a [`Report`] with the moment it happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imagecast_shared::DistributionId;
use imagecast_shared::client::{Backoff, Client, ClientConfig, ClientError, Event, Inbox};
use imagecast_shared::msg::DeliveryOutcome;
use tokio::sync::{Semaphore, mpsc, watch};

/// The first wait before dialling again (`imagecast receive`).
pub const FIRST_DELAY: Duration = Duration::from_millis(200);
/// The longest wait between attempts (`imagecast receive`).
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// What happened to terminal `index`, and when.
#[derive(Debug)]
pub enum Report {
    /// Connected and authenticated (the server's welcome arrived) at `at`, by a dial that
    /// began at `dialled`.
    Connected {
        index: usize,
        at: Instant,
        dialled: Instant,
    },
    /// A dial that began at `dialled` failed with an error the terminal retries; `kind`
    /// names it.
    DialFailed { dialled: Instant, kind: String },
    /// The connection ended; `kicked` when the scenario ended it on purpose.
    Lost { kicked: bool },
    /// A delivery was complete and acknowledged.
    Completed {
        index: usize,
        dist: DistributionId,
        at: Instant,
    },
    /// A delivery did not add up (the inbox refused it).
    Fault,
    /// The terminal stopped trying (an error `imagecast receive` does not retry).
    GaveUp { error: String },
}

/// How one terminal behaves.
#[derive(Clone)]
pub struct Behaviour {
    /// Waits this long before taking each piece of page data (a slow reader).
    pub slow: Option<Duration>,
    /// Held for the first dial only, so that a fleet does not all dial at once at start.
    pub first_dial: Option<Arc<Semaphore>>,
}

/// Names a dial error the way the result lines count it.
pub fn error_kind(e: &ClientError) -> String {
    use std::io::ErrorKind;
    match e {
        ClientError::Connect { reason, .. } => match reason.kind() {
            ErrorKind::ConnectionRefused => "connect_refused".to_owned(),
            ErrorKind::ConnectionReset => "connect_reset".to_owned(),
            ErrorKind::TimedOut => "connect_timeout".to_owned(),
            k => format!("connect_{k:?}").to_lowercase(),
        },
        ClientError::Tls(_) => "tls".to_owned(),
        ClientError::Closed(_) => "closed_in_handshake".to_owned(),
        ClientError::Timeout(_) => "handshake_timeout".to_owned(),
        ClientError::Protocol(_) => "protocol".to_owned(),
        ClientError::Refused(_) => "refused_by_server".to_owned(),
        _ => "other".to_owned(),
    }
}

/// Starts terminal `index`: it dials with `cfg` (which must have `receive: true`) and keeps
/// reconnecting until `stop` turns true. Sending a pause on the returned channel closes its
/// connection and keeps it away that long before it dials again (a terminal going and
/// coming).
pub fn spawn(
    index: usize,
    cfg: ClientConfig,
    inbox: Inbox,
    behaviour: Behaviour,
    reports: mpsc::UnboundedSender<Report>,
    stop: watch::Receiver<bool>,
) -> mpsc::UnboundedSender<Duration> {
    let (kick_tx, kick_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(index, cfg, inbox, behaviour, reports, stop, kick_rx));
    kick_tx
}

async fn run(
    index: usize,
    cfg: ClientConfig,
    mut inbox: Inbox,
    mut behaviour: Behaviour,
    reports: mpsc::UnboundedSender<Report>,
    mut stop: watch::Receiver<bool>,
    mut kick: mpsc::UnboundedReceiver<Duration>,
) {
    let mut backoff = Backoff::new(FIRST_DELAY, MAX_DELAY);
    let mut kick_open = true;
    loop {
        if *stop.borrow() {
            return;
        }
        let permit = match behaviour.first_dial.take() {
            Some(gate) => gate.acquire_owned().await.ok(),
            None => None,
        };
        let dialled_at = Instant::now();
        let dialled = tokio::select! {
            r = Client::connect(&cfg) => r,
            _ = stop.changed() => return,
        };
        drop(permit);
        let pause = match dialled {
            Ok((client, mut events)) => {
                backoff.reset();
                let _ = reports.send(Report::Connected {
                    index,
                    at: Instant::now(),
                    dialled: dialled_at,
                });
                let away = loop {
                    let ev = tokio::select! {
                        ev = events.recv() => ev,
                        k = kick.recv(), if kick_open => match k {
                            Some(away) => {
                                client.close().await;
                                break Some(away);
                            }
                            None => {
                                kick_open = false;
                                continue;
                            }
                        },
                        _ = stop.changed() => {
                            client.close().await;
                            return;
                        }
                    };
                    let Some(ev) = ev else { break None };
                    if let Event::Closed(_) = ev {
                        break None;
                    }
                    if let (Some(slow), Event::DeliverData { .. }) = (behaviour.slow, &ev) {
                        tokio::time::sleep(slow).await;
                    }
                    match inbox.handle(&ev) {
                        Ok(Some(got)) => {
                            let _ = client.ack(got.delivery, DeliveryOutcome::Stored).await;
                            let _ = reports.send(Report::Completed {
                                index,
                                dist: got.dist,
                                at: Instant::now(),
                            });
                        }
                        Ok(None) => {}
                        Err(_) => {
                            let _ = reports.send(Report::Fault);
                        }
                    }
                };
                // What was half delivered comes again from the start.
                inbox.abandon_incomplete();
                let _ = reports.send(Report::Lost {
                    kicked: away.is_some(),
                });
                away.unwrap_or_else(|| backoff.pause())
            }
            Err(e) if e.is_connection_lost() => {
                let _ = reports.send(Report::DialFailed {
                    dialled: dialled_at,
                    kind: error_kind(&e),
                });
                backoff.pause()
            }
            Err(e) => {
                let _ = reports.send(Report::GaveUp {
                    error: e.to_string(),
                });
                return;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A small deterministic random source (xorshift64*): destinations, group sizes, pauses.
pub struct Rng(u64);

impl Rng {
    /// A source started from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}
