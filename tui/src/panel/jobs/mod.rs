//! Background work of the panel: everything that touches the network or the disk, off the UI.
//!
//! A screen asks for work by returning `Action::Run(job)`; the app queues the [`Job`] and the
//! [`JobRunner`] executes it on the async runtime (disk work on the blocking pool) and answers
//! with [`JobResult`]s. Stop cancels the job in flight.
//!
//! # Layout
//! - this module: the [`Job`] list (one line per job), the answers, and the runner, which owns
//!   the current connection and the logged-in user, so a screen never fills them in;
//! - [`server`]: requests to the image server (log in, groups, destinations, distribute,
//!   register, withdraw);
//! - [`paper`]: the ADF, the output tray and mark sheets (copy, read a mark sheet, carry a
//!   sheet, decode pages for a preview);
//! - [`relay`]: real-time sessions (the terminals online, sending to one, answering a
//!   connection demand, pages both ways);
//! - [`fax`]: network fax (the gateways and phone book, sending the ADF or a stored image);
//! - [`stored`]: the image store (use, print, copy, list, delete and preview stored images);
//! - [`error`]: [`JobError`], whose words are what the operator reads in the error dialog.
//!
//! A job is a struct holding its inputs, with one function, [`Task::run`]. Adding one means
//! writing that struct in the file of what it touches and one line in `jobs!` below.

pub mod error;
pub mod fax;
pub mod paper;
pub mod relay;
pub mod server;
pub mod stored;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use imagecast_shared::client::{Client, ClientError};
use imagecast_shared::msg::{Accepted, Destination, GroupEntry, Role};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::JobError;
pub use paper::{Paper, PreviewData};
pub use server::{GroupsFor, ImageSource};

use crate::panel::strings;
use crate::store::{ImageId, Listing};

/// One kind of job: the struct holds its inputs, [`Task::run`] does the work.
trait Task {
    /// What the status line shows while the job runs.
    const LABEL: &'static str;
    /// The job talks to the server: without a connection the app says so instead of queueing
    /// it.
    const NEEDS_SERVER: bool = false;
    /// The title of the error dialog when the job fails.
    const FAILED: &'static str;

    /// Does the work.
    async fn run(self, cx: &Context) -> Result<JobResult, JobError>;

    /// The answer when [`Task::run`] failed: an error dialog titled [`Task::FAILED`] unless
    /// the job shows its failures in place.
    fn failed(e: JobError) -> JobResult {
        JobResult::Failed {
            title: Self::FAILED.to_owned(),
            message: e.to_string(),
        }
    }
}

/// Declares [`Job`] from one line per job, and routes each variant to its [`Task`].
macro_rules! jobs {
    ($($(#[$doc:meta])* $name:ident($task:ty),)*) => {
        /// Work for the runner: one variant per job, holding the job's inputs.
        #[derive(Debug)]
        pub enum Job {
            $($(#[$doc])* $name($task),)*
            /// Stop the job in flight (the runner cancels it; no work of its own).
            Cancel,
            /// Log out: the runner forgets the user and tells the server, without a word back.
            Logout,
            /// Offline: dial the server now instead of at the end of the back-off.
            RetryNow,
        }

        impl Job {
            /// What the status line calls the job.
            pub fn label(&self) -> &'static str {
                match self {
                    $(Job::$name(_) => <$task as Task>::LABEL,)*
                    Job::Cancel => "stopping",
                    Job::Logout => "logging out",
                    Job::RetryNow => "connecting",
                }
            }

            /// True when the job needs the server.
            pub fn needs_connection(&self) -> bool {
                match self {
                    $(Job::$name(_) => <$task as Task>::NEEDS_SERVER,)*
                    Job::Cancel | Job::Logout | Job::RetryNow => false,
                }
            }

            /// Runs the job to its final answer; `Cancel` and `Logout` are the runner's own
            /// business and answer nothing.
            async fn run(self, cx: &Context) -> Option<JobResult> {
                Some(match self {
                    $(Job::$name(task) => task.run(cx).await.unwrap_or_else(<$task as Task>::failed),)*
                    Job::Cancel | Job::Logout | Job::RetryNow => return None,
                })
            }
        }

        $(impl From<$task> for Job {
            fn from(task: $task) -> Self {
                Job::$name(task)
            }
        })*
    };
}

jobs! {
    /// FIG. 6: log in (or, closing a kiosk, prove an administrator is there).
    Login(server::Login),
    /// Fetch the group names for FIG. 9 or FIG. 12.
    FetchGroups(server::FetchGroups),
    /// Fetch every destination for FIG. 10.
    FetchDestinations(server::FetchDestinations),
    /// Scan (or take a stored image) and distribute it.
    Distribute(server::Distribute),
    /// Register this terminal with a group.
    Register(server::Register),
    /// Withdraw this terminal from a group.
    Withdraw(server::Withdraw),
    /// Copy: scan the ADF and print it.
    Copy(paper::Copy),
    /// Read a mark sheet from the ADF.
    ReadMarkSheet(paper::ReadMarkSheet),
    /// Carry the output tray's newest sheet to the ADF.
    CarryToAdf(paper::CarryToAdf),
    /// Decode page files for a preview.
    LoadPreview(paper::LoadPreview),
    /// Check that a stored image exists, by its typed ID.
    UseImage(stored::UseImage),
    /// Take out image: print a stored image.
    TakeOut(stored::TakeOut),
    /// Process stored image: copy it to removable media.
    Process(stored::Process),
    /// List the image store.
    ListStored(stored::ListStored),
    /// Delete a stored image.
    DeleteStored(stored::DeleteStored),
    /// Decode a stored image's pages for a preview.
    PreviewStored(stored::PreviewStored),
    /// Ask who is online, for FIG. 8's fifth mode.
    FetchTerminals(relay::FetchTerminals),
    /// Scan the ADF and send it to a terminal in real time.
    RealTimeSend(relay::RealTimeSend),
    /// Answer a connection demand (accepted: run the session).
    AnswerDemand(relay::AnswerDemand),
    /// Send the ADF's pages back in an accepted session.
    SendBack(relay::SendBack),
    /// Tell the demander this panel sends nothing more.
    DoneSending(relay::DoneSending),
    /// Fetch the fax gateways and the phone book (FIG. 7 modes 2 and 4).
    FetchFax(fax::FetchFax),
    /// Scan the ADF (or read a stored image) and send it as a fax.
    FaxSend(fax::FaxSend),
    /// Fetch this user's fax communication records.
    FetchFaxRecords(fax::FetchFaxRecords),
}

impl Job {
    /// True when the job occupies the panel (one at a time; Stop cancels it). Answering a
    /// connection demand and the accepted session's work go on beside it.
    pub fn is_long(&self) -> bool {
        !matches!(
            self,
            Job::Cancel
                | Job::Logout
                | Job::RetryNow
                | Job::AnswerDemand(_)
                | Job::SendBack(_)
                | Job::DoneSending(_)
        )
    }
}

/// A job's answer.
#[derive(Debug)]
pub enum JobResult {
    /// Login succeeded.
    LoggedIn {
        /// Who logged in.
        user: String,
        /// What they may do.
        role: Role,
        /// It was a kiosk close: only an administrator closes the panel.
        quit: bool,
    },
    /// After a reconnect the server no longer accepts the user: the session is over.
    ReloginRefused,
    /// Login refused, with the reason shown on FIG. 6.
    LoginFailed(String),
    /// Groups arrived.
    Groups {
        /// What they were fetched for.
        purpose: GroupsFor,
        /// The server's groups, in its order.
        groups: Vec<GroupEntry>,
    },
    /// Destinations arrived (FIG. 10).
    Destinations(Vec<Destination>),
    /// The document was scanned (a progress step of a distribution).
    Scanned {
        /// Files taken.
        files: usize,
        /// Pages in them (a multi-page TIFF counts all its pages).
        pages: usize,
        /// The files' size in bytes.
        bytes: u64,
        /// Files refused, with reasons.
        refused: Vec<String>,
        /// The image ID, if kept with a mark sheet.
        kept: Option<ImageId>,
    },
    /// The server stored the distribution.
    Accepted(Accepted),
    /// Distribution failed before it was accepted.
    DistributionFailed(String),
    /// A stored image was identified (by mark sheet or typed ID) for FIG. 11.
    ImageChosen(ImageId),
    /// Done; a message over mode selection.
    DoneHome {
        /// The message's title.
        title: String,
        /// What was done, one line each.
        lines: Vec<String>,
    },
    /// Done; a message over the dialog it was started from (OK returns there).
    Told {
        /// The message's title.
        title: String,
        /// What happened, one line each.
        lines: Vec<String>,
    },
    /// A typed image ID names no stored image: said under the ID box, as on FIG. 6.
    ImageRefused(String),
    /// Done; a short note in the status line.
    Noted(String),
    /// Failed; an error dialog.
    Failed {
        /// The dialog's title: what could not be done.
        title: String,
        /// Why, in one sentence.
        message: String,
    },
    /// The image store's contents.
    Stored(Listing),
    /// Pages to preview.
    Preview(Box<PreviewData>),
    /// Stopped by the operator.
    Cancelled,
    /// The terminals online (FIG. 8's fifth mode).
    Terminals(Vec<imagecast_shared::msg::Presence>),
    /// News of a real-time session (never the end of the job in flight).
    RealTime(relay::News),
    /// The fax destination screen can open: the gateways and the phone book.
    FaxReady {
        /// Where the pages will come from.
        source: fax::FaxSource,
        /// Gateways online now.
        online: usize,
        /// Gateways the supervisor has.
        gateways: usize,
        /// The phone-book entries this user sees here.
        book: Vec<imagecast_shared::fax::FaxBookEntry>,
    },
    /// The supervisor has the fax job on disk.
    FaxAccepted {
        /// The job ID.
        job: String,
        /// The numbers it goes to (phone-book entries resolved).
        numbers: Vec<String>,
        /// Files sent.
        files: usize,
    },
    /// The fax was not accepted (the server's reason, or the ADF's).
    FaxFailed(String),
    /// This user's communication records, oldest first.
    FaxRecords(Vec<imagecast_shared::fax::FaxRecordInfo>),
    /// The real-time send ended: `ok` when every page was printed and the session ended.
    RealTimeOver {
        /// Ended as it should.
        ok: bool,
        /// Why it ended (the refusal or break, or "done").
        reason: String,
        /// Pages printed at the other end, from the first.
        printed: u64,
        /// Pages scanned.
        n: u64,
    },
}

impl JobResult {
    /// True when this answer ends its job (progress steps and session news do not).
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            JobResult::Scanned { .. } | JobResult::ReloginRefused | JobResult::RealTime(_)
        )
    }
}

/// Where the runner's answers go (the panel's event queue).
pub type Report = Arc<dyn Fn(JobResult) + Send + Sync>;

/// The user logged in on the current connection, kept to log in again after a reconnect.
#[derive(Clone)]
struct Credentials {
    user: String,
    password: String,
}

/// The connection and the logged-in user, as jobs find them.
#[derive(Default)]
struct Session {
    client: Option<Client>,
    login: Option<Credentials>,
    /// Turns true once the user is logged in again on this connection (or was refused).
    relogged: Option<watch::Receiver<bool>>,
    /// The page exchange of the session this panel accepted, while it is open.
    relay: Option<crate::pc::relay::pages::Pages>,
}

/// What a job works with: the panel's paper, the connection and user of when it started, and
/// where to report progress.
pub struct Context {
    paper: Arc<Paper>,
    session: Arc<Mutex<Session>>,
    client: Option<Client>,
    user: Option<String>,
    relogged: Option<watch::Receiver<bool>>,
    report: Report,
    /// Set once the job has handed its work to the server for good (a distribution's commit
    /// is on its way): Stop can no longer take it back.
    committed: Arc<AtomicBool>,
}

impl Context {
    /// Marks the point after which Stop cannot undo the job (see [`Context::committed`]).
    fn commit(&self) {
        self.committed.store(true, Ordering::SeqCst);
    }

    /// A context with no connection and no user that reports nowhere, for tests of jobs that
    /// touch only paper.
    #[cfg(test)]
    pub(crate) fn offline(paper: Paper) -> Self {
        Self {
            paper: Arc::new(paper),
            session: Arc::default(),
            client: None,
            user: None,
            relogged: None,
            report: Arc::new(|_| {}),
            committed: Arc::default(),
        }
    }

    fn client(&self) -> Result<&Client, JobError> {
        self.client.as_ref().ok_or(JobError::NotConnected)
    }

    fn user(&self) -> Result<&str, JobError> {
        self.user.as_deref().ok_or(JobError::NotLoggedIn)
    }

    /// Waits until the user is logged in again on a new connection, so a job the operator
    /// starts right after a reconnect does not reach the server before the login does.
    async fn relogged(&self) {
        if let Some(mut relogged) = self.relogged.clone() {
            let _ = relogged.wait_for(|done| *done).await;
        }
    }

    fn paper(&self) -> Arc<Paper> {
        self.paper.clone()
    }

    fn progress(&self, step: JobResult) {
        (self.report)(step);
    }

    /// Remembers who logged in, for the jobs after this one and for a reconnect.
    fn logged_in(&self, user: &str, password: &str) {
        lock(&self.session).login = Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
}

fn lock(session: &Mutex<Session>) -> MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs blocking disk work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(work).await?
}

/// Runs a job's future to its answer, reported, unless Stop (`stop`) comes first: then
/// [`JobResult::Cancelled`] is reported and the job dropped, or, once the job has `committed`
/// (its work is with the server for good), [`strings::CANNOT_STOP`] is noted and the answer
/// still awaited and reported.
async fn until_stopped(
    run: impl Future<Output = Option<JobResult>>,
    stop: &CancellationToken,
    committed: &AtomicBool,
    report: &Report,
) {
    tokio::pin!(run);
    let answer = tokio::select! {
        _ = stop.cancelled() => {
            if !committed.load(Ordering::SeqCst) {
                report(JobResult::Cancelled);
                return;
            }
            report(JobResult::Noted(strings::CANNOT_STOP.to_owned()));
            run.await
        }
        answer = &mut run => answer,
    };
    if let Some(answer) = answer {
        report(answer);
    }
}

/// Runs jobs with the current connection and user; one at a time may be cancelled with Stop.
pub struct JobRunner {
    paper: Arc<Paper>,
    session: Arc<Mutex<Session>>,
    report: Report,
    current: Option<CancellationToken>,
    /// Wakes the link out of its back-off ([`Job::RetryNow`]).
    pub retry: Option<Arc<tokio::sync::Notify>>,
}

impl JobRunner {
    /// A runner over `paper` that answers through `report`.
    pub fn new(paper: Paper, report: impl Fn(JobResult) + Send + Sync + 'static) -> Self {
        Self {
            paper: Arc::new(paper),
            session: Arc::default(),
            report: Arc::new(report),
            current: None,
            retry: None,
        }
    }

    /// The link is up on `client`: jobs use it from now on, and the user logged in before is
    /// logged in again, so the operator keeps their place.
    pub fn connected(&mut self, client: Client) {
        let (done, relogged) = watch::channel(false);
        let login = {
            let mut session = lock(&self.session);
            session.client = Some(client.clone());
            session.relogged = session.login.is_some().then_some(relogged);
            session.login.clone()
        };
        let Some(login) = login else { return };
        let session = self.session.clone();
        let report = self.report.clone();
        tokio::spawn(async move {
            match client.login(&login.user, &login.password).await {
                Ok(_) => {}
                Err(ClientError::Server(_)) => {
                    lock(&session).login = None;
                    report(JobResult::ReloginRefused);
                }
                // The connection went again: the next one tries again.
                Err(_) => {}
            }
            let _ = done.send(true);
        });
    }

    /// The link is down (or refused): jobs find no connection until the next one.
    pub fn disconnected(&mut self) {
        let mut session = lock(&self.session);
        session.client = None;
        session.relogged = None;
    }

    /// Starts a job (or cancels the current one for [`Job::Cancel`]).
    pub fn spawn(&mut self, job: Job) {
        match job {
            Job::Cancel => {
                if let Some(t) = self.current.take() {
                    t.cancel();
                }
            }
            Job::RetryNow => {
                if let Some(retry) = &self.retry {
                    retry.notify_one();
                }
            }
            Job::Logout => {
                let client = {
                    let mut session = lock(&self.session);
                    session.login = None;
                    session.client.clone()
                };
                if let Some(client) = client {
                    tokio::spawn(async move {
                        let _ = client.logout().await;
                    });
                }
            }
            job => {
                let token = CancellationToken::new();
                // Work beside the job in flight leaves Stop to that job.
                if job.is_long() {
                    self.current = Some(token.clone());
                }
                let cx = self.context();
                let needs_server = job.needs_connection();
                tokio::spawn(async move {
                    let run = async {
                        if needs_server {
                            cx.relogged().await;
                        }
                        job.run(&cx).await
                    };
                    until_stopped(run, &token, &cx.committed, &cx.report).await;
                });
            }
        }
    }

    fn context(&self) -> Context {
        let session = lock(&self.session);
        Context {
            paper: self.paper.clone(),
            session: self.session.clone(),
            client: session.client.clone(),
            user: session.login.as_ref().map(|l| l.user.clone()),
            relogged: session.relogged.clone(),
            report: self.report.clone(),
            committed: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a job reported, in order.
    fn recorder() -> (Report, Arc<Mutex<Vec<JobResult>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Arc::new(move |r| s.lock().unwrap().push(r)), seen)
    }

    #[tokio::test]
    async fn stop_before_the_commit_cancels_and_drops_the_job() {
        let (report, seen) = recorder();
        let stop = CancellationToken::new();
        let committed = AtomicBool::new(false);
        stop.cancel();
        until_stopped(
            std::future::pending::<Option<JobResult>>(),
            &stop,
            &committed,
            &report,
        )
        .await;
        assert!(matches!(
            seen.lock().unwrap().as_slice(),
            [JobResult::Cancelled]
        ));
    }

    #[tokio::test]
    async fn stop_after_the_commit_says_so_and_still_reports_the_answer() {
        let (report, seen) = recorder();
        let stop = CancellationToken::new();
        let committed = AtomicBool::new(false);
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<()>();
        let job = async {
            committed.store(true, Ordering::SeqCst);
            stop.cancel();
            // The server's answer comes after Stop was pressed.
            let _ = answer_rx.await;
            Some(JobResult::Noted("accepted".into()))
        };
        // The server answers only once Stop has been dealt with.
        let answering = async {
            while seen.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
            let _ = answer_tx.send(());
        };
        tokio::join!(until_stopped(job, &stop, &committed, &report), answering);
        let seen = seen.lock().unwrap();
        assert!(
            matches!(
                seen.as_slice(),
                [JobResult::Noted(a), JobResult::Noted(b)]
                    if a == strings::CANNOT_STOP && b == "accepted"
            ),
            "{seen:?}"
        );
    }
}
