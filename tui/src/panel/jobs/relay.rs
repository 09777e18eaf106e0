//! Real-time sessions from the panel (seed 004): the terminals online, sending the ADF's
//! pages to one of them, answering a connection demand, and the pages of an accepted session
//! both ways. The page exchange is the PC client's ([`crate::pc::relay::pages`]).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use imagecast_shared::client::{ClientError, Received, RelaySession};
use imagecast_shared::msg::{Destination, Presence, RelayTarget};

use super::{Context, JobError, JobResult, Task, blocking, lock};
use crate::paper::Scan;
use crate::pc::relay::pages::{Next, Outgoing, PageEvent, Pages, exchange, next_for_demander};

/// How long the panel waits for the answer to its demand (the server's demand timeout, 30 s
/// by default, ends it first).
pub const DEMAND_WAIT: Duration = Duration::from_secs(40);

/// News of a real-time session, for the session screen and the received pane.
#[derive(Debug)]
pub enum News {
    /// The ADF was scanned for the session.
    Scanned {
        /// Files taken.
        files: usize,
        /// Pages in them.
        pages: usize,
    },
    /// The connection demand is on its way.
    Demanded,
    /// The peer accepted: the session is open.
    Accepted {
        /// The session's number.
        session: u64,
    },
    /// A demand this panel accepted opened a session.
    Opened {
        /// The session's number.
        session: u64,
        /// The demanding terminal.
        peer: Destination,
        /// The user logged in there.
        user: String,
    },
    /// The peer printed this panel's page `k` of `n`.
    Printed {
        /// The session.
        session: u64,
        /// The page.
        k: u64,
        /// Pages this panel announced.
        n: u64,
    },
    /// A page of the peer's was printed to the output tray.
    Received {
        /// The session.
        session: u64,
        /// The page's number among the peer's.
        k: u64,
        /// As the received pane lists it.
        received: Received,
        /// Its pages (a multi-page TIFF counts all).
        pages: usize,
    },
    /// Pages go back to the demander in an accepted session.
    SendingBack {
        /// The session.
        session: u64,
        /// How many files.
        files: usize,
    },
    /// The peer sends no more pages.
    PeerDone {
        /// The session.
        session: u64,
    },
    /// An accepted session ended (`ok`: an end, not a break).
    Ended {
        /// The session.
        session: u64,
        /// Ended (true) or broke (false).
        ok: bool,
        /// Why.
        reason: String,
    },
    /// This panel told the demander it sends nothing more.
    DoneSending,
    /// A word for the status line: a demand rejected, an answer that could not be given,
    /// pages not sent back.
    Failed(String),
}

/// FIG. 8's fifth mode: the terminals online, for the list to choose from.
#[derive(Debug)]
pub struct FetchTerminals;

impl Task for FetchTerminals {
    const LABEL: &'static str = "asking who is online";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Cannot get the terminals online";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        // The app leaves this terminal itself out.
        let client = cx.client()?;
        let mut list: Vec<Presence> = client.who().await?;
        // Fax gateways are online devices too, but no terminals to send pages to in real
        // time (a server without fax answers no gateways).
        if let Ok(gateways) = crate::pc::fax::gateway_list(client).await {
            list.retain(|p| {
                let key = imagecast_shared::domain::domain_key(&p.domain);
                !gateways.iter().any(|g| g.domain == key)
            });
        }
        Ok(JobResult::Terminals(list))
    }
}

/// Scans the ADF and sends its pages to `domain` in real time.
#[derive(Debug)]
pub struct RealTimeSend {
    /// The target's device domain.
    pub domain: String,
    /// Its destination name, as the screen shows it.
    pub name: String,
}

/// Ends a session whose job was dropped (Stop) before it ended.
struct EndOnDrop(Option<Pages>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(link) = self.0.take() {
            tokio::spawn(async move { link.end("the operator pressed Stop").await });
        }
    }
}

/// The ADF's readable files as pages to send.
fn scanned_pages(scan: &Scan) -> Vec<Outgoing> {
    scan.pages
        .iter()
        .map(|f| Outgoing::memory(&f.name, Bytes::from(f.bytes.clone())))
        .collect()
}

/// Counts a received page's pages and makes its received-pane entry.
async fn received_entry(path: PathBuf, peer: &Destination, user: &str) -> (Received, usize) {
    let files = vec![path];
    let bytes = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let counted = files.clone();
    let pages = tokio::task::spawn_blocking(move || crate::paper::pages::count_pages(&counted))
        .await
        .unwrap_or(1);
    let received = Received {
        delivery: imagecast_shared::DeliveryId(0),
        dist: imagecast_shared::DistributionId::new_random(),
        sender: peer.clone(),
        user: user.to_owned(),
        files,
        pages: 1,
        bytes,
        duplicate: false,
    };
    (received, pages)
}

impl Task for RealTimeSend {
    const LABEL: &'static str = "sending in real time";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Real-time sending failed";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let client = cx.client()?.clone();
        let paper = cx.paper();
        let scan = blocking(move || super::paper::scan_adf(&paper.adf)).await?;
        let pages = scanned_pages(&scan);
        let n = pages.len() as u64;
        cx.progress(JobResult::RealTime(News::Scanned {
            files: scan.pages.len(),
            pages: scan.total_pages(),
        }));
        cx.progress(JobResult::RealTime(News::Demanded));
        // The demand runs on its own: Stop drops this job, and a session accepted after that
        // is ended at once instead of left open with nobody sending.
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        let target = RelayTarget::Device(self.domain.clone());
        let demanding = client.clone();
        tokio::spawn(async move {
            let answer = demanding.demand(target, DEMAND_WAIT).await;
            if let Err(Ok(session)) = answer_tx.send(answer) {
                let _ = session.sender.end("the operator pressed Stop").await;
            }
        });
        let answer = answer_rx
            .await
            .map_err(|_| ClientError::SessionEnded("the demand was dropped".into()))?;
        let session = match answer {
            Ok(s) => s,
            Err(ClientError::Server(e)) => {
                return Ok(JobResult::RealTimeOver {
                    ok: false,
                    reason: e.message,
                    printed: 0,
                    n,
                });
            }
            Err(ClientError::Timeout(_)) => {
                return Ok(JobResult::RealTimeOver {
                    ok: false,
                    reason: format!("no answer within {} s", DEMAND_WAIT.as_secs()),
                    printed: 0,
                    n,
                });
            }
            Err(e) => return Err(e.into()),
        };
        // Accepted: the originals leave the feeder, as after a distribution.
        let paper = cx.paper();
        let taken = scan.clone();
        blocking(move || Ok(paper.adf.take(&taken)?)).await?;
        let id = session.id;
        let peer = session.peer.clone();
        let user = session.peer_user.clone();
        cx.progress(JobResult::RealTime(News::Accepted { session: id }));
        let (link, mut events) = exchange(session, cx.paper.tray.dir().to_owned());
        let mut guard = EndOnDrop(Some(link.clone()));
        link.send(pages);
        link.done();
        let mut printed = 0u64;
        let mut peer_done = false;
        let broke = loop {
            let event = match next_for_demander(&mut events, printed == n, peer_done).await {
                Next::Finished => break None,
                Next::Closed => break Some("the session ended".to_owned()),
                Next::Event(e) => e,
            };
            match event {
                PageEvent::Printed { k, n } => {
                    printed = printed.max(k);
                    cx.progress(JobResult::RealTime(News::Printed { session: id, k, n }));
                }
                PageEvent::Stored { k, path, .. } => {
                    let (received, pages) = received_entry(path, &peer, &user).await;
                    cx.progress(JobResult::RealTime(News::Received {
                        session: id,
                        k,
                        received,
                        pages,
                    }));
                }
                PageEvent::Refused { k, reason } => {
                    break Some(format!("page {k} was not printed: {reason}"));
                }
                PageEvent::NotStored { k, reason } => {
                    break Some(format!("page {k} from the peer was not printed: {reason}"));
                }
                PageEvent::PeerDone => peer_done = true,
                PageEvent::Ended(Ok(r) | Err(r)) => break Some(r),
            }
        };
        guard.0 = None;
        let (ok, reason) = match broke {
            None => {
                link.end_when_sent("done").await;
                (true, "done".to_owned())
            }
            Some(reason) => {
                link.end(&reason).await;
                (false, reason)
            }
        };
        Ok(JobResult::RealTimeOver {
            ok,
            reason,
            printed,
            n,
        })
    }
}

/// The operator's answer to a connection demand; accepted, the session runs in this job
/// until it ends (it never occupies the panel: other work goes on beside it).
#[derive(Debug)]
pub struct AnswerDemand {
    /// The demand's number.
    pub demand: u64,
    /// Start (true) or Reset (false).
    pub accept: bool,
    /// Who demanded, for the words.
    pub from: Destination,
}

impl Task for AnswerDemand {
    const LABEL: &'static str = "answering a connection demand";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Connection demand";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let client = cx.client()?.clone();
        let decision = if self.accept {
            Ok(())
        } else {
            Err("the operator rejected it".to_owned())
        };
        let Some(session) = client.answer(self.demand, decision).await? else {
            return Ok(JobResult::RealTime(News::Failed(format!(
                "Connection demand from {} rejected",
                self.from.name
            ))));
        };
        serve(session, cx).await
    }

    /// Never an error dialog over the operator's work: a word in the status line.
    fn failed(e: JobError) -> JobResult {
        JobResult::RealTime(News::Failed(format!("The connection demand: {e}")))
    }
}

/// Runs an accepted session: the peer's pages are printed to the output tray; the operator
/// may send pages back ([`SendBack`]) until Reset says this panel is done ([`DoneSending`]).
async fn serve(session: RelaySession, cx: &Context) -> Result<JobResult, JobError> {
    let id = session.id;
    let peer = session.peer.clone();
    let user = session.peer_user.clone();
    cx.progress(JobResult::RealTime(News::Opened {
        session: id,
        peer: peer.clone(),
        user: user.clone(),
    }));
    let (link, mut events) = exchange(session, cx.paper.tray.dir().to_owned());
    lock(&cx.session).relay = Some(link.clone());
    let mut end = (false, "the session ended".to_owned());
    while let Some(event) = events.recv().await {
        match event {
            PageEvent::Stored { k, path, .. } => {
                let (received, pages) = received_entry(path, &peer, &user).await;
                cx.progress(JobResult::RealTime(News::Received {
                    session: id,
                    k,
                    received,
                    pages,
                }));
            }
            PageEvent::Printed { k, n } => {
                cx.progress(JobResult::RealTime(News::Printed { session: id, k, n }));
            }
            PageEvent::Refused { k, reason } => {
                link.end(&format!("page {k} was not printed: {reason}"))
                    .await;
            }
            PageEvent::NotStored { .. } => {}
            PageEvent::PeerDone => cx.progress(JobResult::RealTime(News::PeerDone { session: id })),
            PageEvent::Ended(r) => {
                end = match r {
                    Ok(r) => (true, r),
                    Err(r) => (false, r),
                };
            }
        }
    }
    let mut s = lock(&cx.session);
    if s.relay.as_ref().is_some_and(|l| l.id() == id) {
        s.relay = None;
    }
    drop(s);
    Ok(JobResult::RealTime(News::Ended {
        session: id,
        ok: end.0,
        reason: end.1,
    }))
}

/// In an accepted session: scan the ADF and send its pages back, then say this panel is
/// done.
#[derive(Debug)]
pub struct SendBack;

impl Task for SendBack {
    const LABEL: &'static str = "sending pages back";
    const FAILED: &'static str = "Cannot send pages back";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let Some(link) = lock(&cx.session).relay.clone() else {
            return Ok(JobResult::RealTime(News::Failed(
                "No real-time session is open.".into(),
            )));
        };
        let paper = cx.paper();
        let scan = blocking(move || {
            let scan = super::paper::scan_adf(&paper.adf)?;
            paper.adf.take(&scan)?;
            Ok(scan)
        })
        .await?;
        let files = scan.pages.len();
        link.send(scanned_pages(&scan));
        link.done();
        Ok(JobResult::RealTime(News::SendingBack {
            session: link.id(),
            files,
        }))
    }

    fn failed(e: JobError) -> JobResult {
        JobResult::RealTime(News::Failed(format!("Cannot send pages back: {e}")))
    }
}

/// In an accepted session: this panel sends nothing (more); the demander ends the session.
#[derive(Debug)]
pub struct DoneSending;

impl Task for DoneSending {
    const LABEL: &'static str = "ending the session";
    const FAILED: &'static str = "Cannot end the session";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        if let Some(link) = lock(&cx.session).relay.clone() {
            link.done();
        }
        Ok(JobResult::RealTime(News::DoneSending))
    }
}

#[cfg(all(test, feature = "demo"))]
mod tests {
    use imagecast_shared::client::{Client, Event};
    use tokio::sync::mpsc;

    use super::*;
    use crate::demo::{DemoNetwork, DemoOptions, PANEL_DOMAIN};
    use crate::panel::jobs::{Job, JobRunner, Paper};
    use crate::paper::{Adf, OutputTray};
    use crate::store::ImageStore;

    const LIMIT: Duration = Duration::from_secs(60);
    const OSAKA: &str = "sale1.osk.mei.co.jp";

    /// The next job result that `pick` takes, within the limit.
    async fn next<T>(
        results: &mut mpsc::UnboundedReceiver<JobResult>,
        mut pick: impl FnMut(JobResult) -> Option<T>,
    ) -> T {
        tokio::time::timeout(LIMIT, async {
            loop {
                let r = results.recv().await.expect("the runner reports");
                if let Some(t) = pick(r) {
                    return t;
                }
            }
        })
        .await
        .expect("the job reported in time")
    }

    /// The panel's answer path with the real server: Osaka demands the panel, the operator's
    /// Start accepts, Osaka's page is printed to the tray and listed as real time, then the
    /// ADF's pages go back in the same session, byte for byte.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_accepted_session_prints_here_and_sends_the_adf_back() {
        let root = tempfile::tempdir().unwrap();
        let net = DemoNetwork::start(DemoOptions::new(root.path()))
            .await
            .unwrap();
        let dirs = net.panel_dirs();
        let paper = Paper {
            adf: Adf::new(&dirs.adf),
            tray: OutputTray::new(&dirs.output_tray),
            removable: OutputTray::new(&dirs.removable),
            store: ImageStore::open(&dirs.store).unwrap(),
        };
        let originals: Vec<(String, Vec<u8>)> = paper
            .adf
            .documents()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(p).unwrap(),
                )
            })
            .collect();
        assert_eq!(originals.len(), 3);
        // The panel's connection takes demands, as the link makes it.
        let (panel, mut panel_events) = Client::connect(&net.panel_client_config()).await.unwrap();
        panel.relay_listen().await.unwrap();
        let (tx, mut results) = mpsc::unbounded_channel();
        let mut runner = JobRunner::new(paper, move |r| {
            let _ = tx.send(r);
        });
        runner.connected(panel.clone());

        let token = net
            .server()
            .devices()
            .iter()
            .find(|(d, _)| d.domain == OSAKA)
            .unwrap()
            .1
            .clone();
        let (osaka, mut osaka_events) = Client::connect(&net.client_config(OSAKA, &token, false))
            .await
            .unwrap();
        tokio::spawn(async move { while osaka_events.recv().await.is_some() {} });
        let demanding = tokio::spawn({
            let osaka = osaka.clone();
            async move {
                osaka
                    .demand(RelayTarget::Device(PANEL_DOMAIN.into()), LIMIT)
                    .await
            }
        });
        let demand = tokio::time::timeout(LIMIT, async {
            loop {
                if let Some(Event::Demanded(d)) = panel_events.recv().await {
                    break d;
                }
            }
        })
        .await
        .unwrap();
        tokio::spawn(async move { while panel_events.recv().await.is_some() {} });
        assert_eq!(demand.from.domain, OSAKA);
        runner.spawn(Job::AnswerDemand(AnswerDemand {
            demand: demand.demand,
            accept: true,
            from: demand.from.clone(),
        }));
        let session = demanding.await.unwrap().unwrap();
        let opened = next(&mut results, |r| match r {
            JobResult::RealTime(News::Opened { session, peer, .. }) => Some((session, peer)),
            _ => None,
        })
        .await;
        assert_eq!(opened.0, session.id);
        assert_eq!(opened.1.domain, OSAKA);

        let at_osaka = root.path().join("osaka-got");
        std::fs::create_dir_all(&at_osaka).unwrap();
        let (link, mut events) = exchange(session, at_osaka.clone());
        let page: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        link.send(vec![Outgoing::memory(
            "hello.bin",
            Bytes::from(page.clone()),
        )]);
        link.done();
        let (received, _) = next(&mut results, |r| match r {
            JobResult::RealTime(News::Received {
                received, pages, ..
            }) => Some((received, pages)),
            _ => None,
        })
        .await;
        assert_eq!(received.sender.domain, OSAKA);
        assert_eq!(std::fs::read(&received.files[0]).unwrap(), page);
        assert!(received.files[0].starts_with(&dirs.output_tray));

        // Start on the session screen: the ADF goes back in the same session.
        runner.spawn(Job::SendBack(SendBack));
        let files = next(&mut results, |r| match r {
            JobResult::RealTime(News::SendingBack { files, .. }) => Some(files),
            _ => None,
        })
        .await;
        assert_eq!(files, 3);
        let mut stored = Vec::new();
        let mut printed = false;
        let mut done = false;
        tokio::time::timeout(LIMIT, async {
            while !(printed && done && stored.len() == 3) {
                match events.recv().await.expect("the session goes on") {
                    PageEvent::Stored { path, .. } => stored.push(path),
                    PageEvent::Printed { k: 1, .. } => printed = true,
                    PageEvent::PeerDone => done = true,
                    other => panic!("{other:?}"),
                }
            }
        })
        .await
        .unwrap();
        for (name, bytes) in &originals {
            assert_eq!(
                &std::fs::read(at_osaka.join(name)).unwrap(),
                bytes,
                "{name}"
            );
        }
        // The panel hears its pages printed, then the end.
        link.end_when_sent("done").await;
        let ended = next(&mut results, |r| match r {
            JobResult::RealTime(News::Ended { ok, reason, .. }) => Some((ok, reason)),
            _ => None,
        })
        .await;
        assert!(ended.0 && ended.1.contains("done"), "{ended:?}");
        osaka.close().await;
        panel.close().await;
        net.shutdown().await;
    }
}
