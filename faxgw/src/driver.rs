//! The gateway's line drivers behind one type: the simulated telephone network
//! ([`crate::sim::Line`]) and a real HylaFAX server ([`crate::hylafax::HylafaxLine`]).
//! [`crate::gateway`] makes its calls through [`Driver::dial`] and takes received faxes
//! from [`Driver::receive`], whichever driver it runs on.
//!
//! **Reception from HylaFAX.** [`Driver::receive`] polls the receive queue
//! ([`HylafaxLine::poll_received`]) every poll interval and keeps each complete fax in the
//! spool ([`crate::kept`]) under an ID derived from its queue name and its bytes
//! (`hylafax-faxNNNNNNNNN-HASH`), so a fax fetched twice (the gateway killed before it
//! removed it) is the same fax to the supervisor, which stores it once. The fax is removed
//! from HylaFAX's queue ([`Driver::stored`]) only after the supervisor answered that it
//! stored it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use imagecast_shared::fax::FaxReception;

use crate::coding::Coding;
use crate::hylafax::{HylafaxError, HylafaxLine, ReceivedFax};
use crate::kept::Kept;
use crate::page::FaxPage;
use crate::sim::{CallOutcome, DialOptions, Line, SimError};

/// Why a call could not be made (before anything happened on the line).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// On the simulated network.
    #[error(transparent)]
    Sim(#[from] SimError),
    /// On the HylaFAX server.
    #[error(transparent)]
    Hylafax(#[from] HylafaxError),
}

/// A gateway's line driver.
#[derive(Clone, Debug)]
pub enum Driver {
    /// A number on the simulated telephone network.
    Sim(Arc<Line>),
    /// A HylaFAX server; received faxes are polled every `poll` interval.
    Hylafax {
        /// The driver.
        line: HylafaxLine,
        /// How often the receive queue is read.
        poll: Duration,
    },
}

/// The prefix of the reception IDs of faxes taken from HylaFAX's receive queue.
const HYLAFAX_ID: &str = "hylafax-";

impl Driver {
    /// The driver's name as `--line` takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Driver::Sim(_) => "sim",
            Driver::Hylafax { .. } => "hylafax",
        }
    }

    /// The simulated line, when this is one.
    pub fn sim(&self) -> Option<&Arc<Line>> {
        match self {
            Driver::Sim(line) => Some(line),
            Driver::Hylafax { .. } => None,
        }
    }

    /// Makes one call: `pages` from `options.first_page` on to `number`, one attempt.
    pub async fn dial(
        &self,
        number: &str,
        pages: &[FaxPage],
        options: &DialOptions,
    ) -> Result<CallOutcome, DriverError> {
        Ok(match self {
            Driver::Sim(line) => line.dial(number, pages, options).await?,
            Driver::Hylafax { line, .. } => line.dial(number, pages, options).await?,
        })
    }

    /// Keeps `number` as a dial string this driver takes: the simulated network dials
    /// digits, `*` and `#`; HylaFAX also takes `,` (a pause).
    pub fn dialable(&self, prefix: &str) -> String {
        let pause = matches!(self, Driver::Hylafax { .. });
        prefix
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#' || (pause && *c == ','))
            .collect()
    }

    /// Takes received faxes and keeps them in `kept` until this returns: the simulated line
    /// answers calls, HylaFAX's receive queue is polled. Returns when the line stops
    /// answering ([`Driver::stop_answering`]), or never for HylaFAX (drop or abort it).
    pub async fn receive(&self, kept: Arc<Kept>, called: String) {
        match self {
            Driver::Sim(line) => crate::gateway::answer(Arc::clone(line), kept).await,
            Driver::Hylafax { line, poll } => poll_hylafax(line, *poll, &kept, &called).await,
        }
    }

    /// New calls ring out (the simulated line); calls in progress finish.
    pub fn stop_answering(&self) {
        if let Driver::Sim(line) = self {
            line.stop_answering();
        }
    }

    /// The supervisor stored the fax kept as `reception`: a fax taken from HylaFAX's receive
    /// queue is removed from it now. Errors are logged: the fax is then fetched again and
    /// the supervisor recognises it.
    pub async fn stored(&self, reception: &str) {
        let Driver::Hylafax { line, .. } = self else {
            return;
        };
        let Some(name) = queue_name(reception) else {
            return;
        };
        match line.remove_received(&name).await {
            Ok(()) => crate::say!("fax {name} removed from HylaFAX's receive queue"),
            Err(e) => crate::warn_line!(
                "imagecast-faxgw: cannot remove {name} from HylaFAX's receive queue: {e}; \
                 it is fetched again and the supervisor has it already"
            ),
        }
    }
}

/// A stable reception ID for a fax of HylaFAX's receive queue: its name without `.tif`
/// and a hash of its bytes (the queue's numbers start again when its sequence file does).
pub fn reception_id(fax: &ReceivedFax) -> String {
    // FNV-1a, 64 bits: stable across processes and versions.
    let hash = fax.tiff.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let stem = fax.name.strip_suffix(".tif").unwrap_or(&fax.name);
    format!("{HYLAFAX_ID}{stem}-{hash:016x}")
}

/// The receive-queue name of a fax kept under `reception`, when it came from HylaFAX.
pub fn queue_name(reception: &str) -> Option<String> {
    let rest = reception.strip_prefix(HYLAFAX_ID)?;
    let (stem, _hash) = rest.rsplit_once('-')?;
    let name = format!("{stem}.tif");
    crate::hylafax::recvq::check_fax_name(&name).ok()?;
    Some(name)
}

/// Polls HylaFAX's receive queue for ever, keeping every fax not kept yet.
async fn poll_hylafax(line: &HylafaxLine, poll: Duration, kept: &Arc<Kept>, called: &str) {
    // Faxes that cannot be read: said once, left in HylaFAX's queue.
    let mut unreadable: HashSet<String> = HashSet::new();
    let mut failing = false;
    loop {
        match line.poll_received().await {
            Ok(faxes) => {
                if failing {
                    crate::warn_line!("imagecast-faxgw: HylaFAX's receive queue can be read again");
                    failing = false;
                }
                for fax in faxes {
                    let id = reception_id(&fax);
                    if unreadable.contains(&id) || kept.contains(&id) {
                        continue;
                    }
                    let k = Arc::clone(kept);
                    let called = called.to_owned();
                    let (name, station) = (
                        fax.name.clone(),
                        imagecast_shared::text::escape(&fax.sender_station).into_owned(),
                    );
                    let caller = fax.caller_number.clone();
                    let i = id.clone();
                    let done = tokio::task::spawn_blocking(move || keep(&k, &i, &fax, &called))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r);
                    match done {
                        Ok(pages) => crate::say!(
                            "received fax from {caller} \"{station}\": {pages} pages; \
                             kept as {id} (HylaFAX {name})"
                        ),
                        Err(e) => {
                            crate::warn_line!(
                                "imagecast-faxgw: cannot keep HylaFAX's {name}: {e}; \
                                 left in its receive queue"
                            );
                            unreadable.insert(id);
                        }
                    }
                }
            }
            Err(e) => {
                if !failing {
                    crate::warn_line!("imagecast-faxgw: cannot read HylaFAX's receive queue: {e}");
                    failing = true;
                }
                tracing::debug!("HylaFAX receive queue: {e}");
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Keeps one fax of HylaFAX's receive queue: its pages decoded and written as a Group 3
/// fax TIFF (whatever FillOrder HylaFAX stored), with its description. Returns the pages.
fn keep(kept: &Kept, id: &str, fax: &ReceivedFax, called: &str) -> Result<usize, String> {
    let pages = crate::tiff::read_fax_tiff(&fax.tiff)
        .map_err(|e| e.to_string())?
        .ok_or("not a Group 3 or 4 fax TIFF")?;
    if pages.is_empty() {
        return Err("no page".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let description = FaxReception {
        reception: id.to_owned(),
        caller: fax.caller_number.clone(),
        called: called.to_owned(),
        station: fax.sender_station.clone(),
        pages: pages.len() as u32,
        coding: Coding::Mh.name().to_owned(),
        ecm: false,
        speed: 0,
        duration_ms: 0,
        at_ms: now.as_millis() as i64,
        reason: String::new(),
        bytes: 0,
    };
    kept.keep_pages(description, &pages, Coding::Mh)
        .map_err(|e| e.to_string())?;
    Ok(pages.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reception_ids_are_stable_and_name_the_queue_file() {
        let fax = ReceivedFax {
            name: "fax000000012.tif".into(),
            tiff: b"II*\0 pages".to_vec(),
            sender_station: "ACME".into(),
            caller_number: "5551234".into(),
            caller_name: String::new(),
            pages: 1,
        };
        let id = reception_id(&fax);
        assert_eq!(id, reception_id(&fax.clone()));
        assert!(
            id.starts_with("hylafax-fax000000012-") && id.len() <= 64,
            "{id}"
        );
        let other = ReceivedFax {
            tiff: b"II*\0 other".to_vec(),
            ..fax
        };
        assert_ne!(id, reception_id(&other));
        assert_eq!(queue_name(&id).as_deref(), Some("fax000000012.tif"));
        assert_eq!(queue_name("1700000000-000000001-42"), None);
        assert_eq!(queue_name("hylafax-..-etc-1"), None);
    }
}
