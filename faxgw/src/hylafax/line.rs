//! [`HylafaxLine`]: the gateway's line driver over a HylaFAX server.

use std::time::{Duration, Instant};

use crate::coding::Coding;
use crate::page::{FaxPage, Resolution};
use crate::sim::{CallOutcome, CallResult, DialOptions, peer_station};

use super::client::Session;
use super::qfile::{JobFile, JobState, MAX_QFILE};
use super::recvq::{self, ReceivedFax};
use super::status::{Tracker, coding_of, result_of};
use super::{ADMIN_PASSWORD_ENV, DEFAULT_PORT, HylafaxError, PASSWORD_ENV};

/// The longest dial string passed to HylaFAX.
pub const MAX_DIAL_STRING: usize = 40;
/// How long removing a job may wait for faxq to let go of it.
const REMOVE_WAIT: Duration = Duration::from_secs(15);

/// Where the HylaFAX server is and how to use it.
#[derive(Clone)]
pub struct HylafaxConfig {
    /// `HOST:PORT` of hfaxd (`:4559` is added when no port is given).
    pub addr: String,
    /// The HylaFAX user (an entry of the server's `hosts.hfaxd`).
    pub user: String,
    /// The user's password, when the server asks for one.
    pub password: Option<String>,
    /// The password for administrative privileges (`ADMIN`), needed to fetch and remove
    /// received faxes that are not public.
    pub admin_password: Option<String>,
    /// The timeout of every step: connecting, each command, each read of a transfer.
    pub timeout: Duration,
    /// How often a job's state is read while following it.
    pub poll_interval: Duration,
    /// How long a call may take from submission to its end, waiting for a free modem
    /// included; also the job's LASTTIME on the server (rounded up to minutes).
    pub job_timeout: Duration,
}

impl std::fmt::Debug for HylafaxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |p: &Option<String>| p.as_ref().map(|_| "****");
        f.debug_struct("HylafaxConfig")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("admin_password", &hidden(&self.admin_password))
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .field("job_timeout", &self.job_timeout)
            .finish()
    }
}

impl HylafaxConfig {
    /// A configuration without passwords and with the default timings: 30 s a step, the job
    /// read every second, an hour for a whole call.
    pub fn new(addr: &str, user: &str) -> Result<HylafaxConfig, HylafaxError> {
        if user.is_empty() || !user.chars().all(|c| c.is_ascii_graphic()) {
            return Err(HylafaxError::Config(format!(
                "{:?} is not a HylaFAX user name (printable ASCII without blanks)",
                super::reply::shown(user)
            )));
        }
        let addr = addr.trim();
        let has_port = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if addr.is_empty() || addr.contains(char::is_whitespace) {
            return Err(HylafaxError::Config(format!(
                "{:?} is not a HylaFAX server address (HOST:PORT)",
                super::reply::shown(addr)
            )));
        }
        Ok(HylafaxConfig {
            addr: if has_port {
                addr.to_owned()
            } else {
                format!("{addr}:{DEFAULT_PORT}")
            },
            user: user.to_owned(),
            password: None,
            admin_password: None,
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            job_timeout: Duration::from_secs(3600),
        })
    }

    /// [`HylafaxConfig::new`] with the passwords from `IMAGECAST_HYLAFAX_PASSWORD` and
    /// `IMAGECAST_HYLAFAX_ADMIN_PASSWORD` (unset or empty: none).
    pub fn from_env(addr: &str, user: &str) -> Result<HylafaxConfig, HylafaxError> {
        Ok(HylafaxConfig::new(addr, user)?.with_passwords_from(|k| std::env::var(k).ok()))
    }

    /// The passwords looked up by environment variable name through `lookup`.
    pub fn with_passwords_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        self.password = get(PASSWORD_ENV);
        self.admin_password = get(ADMIN_PASSWORD_ENV);
        self
    }
}

/// Checks a number before it becomes a dial string: 1–40 of digits, `+ * # , -`.
pub fn check_dial_string(number: &str) -> Result<(), HylafaxError> {
    let ok = !number.is_empty()
        && number.len() <= MAX_DIAL_STRING
        && !number.starts_with('-')
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || "+*#,-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(HylafaxError::InvalidNumber(super::reply::shown(number)))
    }
}

/// `d` as HylaFAX's LASTTIME, `DDHHMM`, rounded up to a minute (at least 1, at most 99
/// days).
pub fn last_time(d: Duration) -> String {
    let minutes = d
        .as_secs()
        .div_ceil(60)
        .clamp(1, 99 * 24 * 60 + 23 * 60 + 59);
    format!(
        "{:02}{:02}{:02}",
        minutes / (24 * 60),
        (minutes / 60) % 24,
        minutes % 60
    )
}

/// A HylaFAX server as the gateway's line.
#[derive(Debug, Clone)]
pub struct HylafaxLine {
    cfg: HylafaxConfig,
}

impl HylafaxLine {
    /// The driver for the server `cfg` names; nothing is connected yet.
    pub fn new(cfg: HylafaxConfig) -> HylafaxLine {
        HylafaxLine { cfg }
    }

    /// The configuration.
    pub fn config(&self) -> &HylafaxConfig {
        &self.cfg
    }

    /// A new logged-in session (`USER`/`PASS`, `ADMIN` when configured, `TYPE I`).
    pub async fn session(&self) -> Result<Session, HylafaxError> {
        let mut s = Session::connect(&self.cfg.addr, self.cfg.timeout).await?;
        s.login(&self.cfg.user, self.cfg.password.as_deref())
            .await?;
        if let Some(admin) = &self.cfg.admin_password {
            s.admin(admin).await?;
        }
        s.expect("TYPE I", &[200]).await?;
        Ok(s)
    }

    /// Logs in and out: fails early on a wrong address, user or password.
    pub async fn check(&self) -> Result<(), HylafaxError> {
        self.session().await?.quit().await;
        Ok(())
    }

    /// Submits `pages` from `first_page` (1-based) on to `number` as one fax TIFF, with one
    /// dial and one try; returns the HylaFAX job ID. [`HylafaxLine::dial`] does this and
    /// follows the job; this is the first half, for tools and tests.
    pub async fn submit(
        &self,
        number: &str,
        pages: &[FaxPage],
        first_page: usize,
    ) -> Result<String, HylafaxError> {
        let tiff = document(number, pages, first_page)?;
        let mut s = self.session().await?;
        let id = self.submit_in(&mut s, number, &tiff, &mut None).await?;
        s.quit().await;
        Ok(id)
    }

    /// Submits `doc`; `created` holds the job's ID from `JNEW` on, for as long as the job
    /// exists on the server.
    async fn submit_in(
        &self,
        s: &mut Session,
        number: &str,
        doc: &Document,
        created: &mut Option<String>,
    ) -> Result<String, HylafaxError> {
        s.expect("FORM TIFF", &[200]).await?;
        let file = s.store_temp(&doc.tiff).await?;
        let id = s.new_job().await?;
        *created = Some(id.clone());
        let params = [
            ("SENDTIME", "NOW".to_owned()),
            ("LASTTIME", last_time(self.cfg.job_timeout)),
            ("DIALSTRING", format!("\"{number}\"")),
            ("MAXDIALS", "1".to_owned()),
            ("MAXTRIES", "1".to_owned()),
            ("NOTIFY", "NONE".to_owned()),
            ("VRES", doc.vres.to_string()),
            ("DOCUMENT", file),
        ];
        let mut result = Ok(());
        for (name, value) in &params {
            result = s.job_param(name, value).await;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = s.submit_job(&id).await;
        }
        if let Err(e) = result {
            // The job is still suspended: removable at once.
            if s.delete_job(&id).await.is_ok_and(|r| r.code == 200) {
                *created = None;
            }
            return Err(e);
        }
        tracing::info!(job = %id, number, pages = doc.pages, "HylaFAX job submitted");
        Ok(id)
    }

    /// A job's queue file as HylaFAX has it now (`sendq/`, then `doneq/`); `None` when the
    /// job does not exist (any more).
    pub async fn job(&self, id: &str) -> Result<Option<JobFile>, HylafaxError> {
        let mut s = self.session().await?;
        let job = read_job(&mut s, id).await?;
        s.quit().await;
        Ok(job)
    }

    /// Ends a job (`JKILL` unless it is finished), waits for faxq to let go of it, and
    /// removes it (`JDELE`). A job that does not exist is not an error.
    pub async fn remove(&self, id: &str) -> Result<(), HylafaxError> {
        let mut session = None;
        let r = remove_job(self, &mut session, id).await;
        if let Some(s) = session {
            s.quit().await;
        }
        r
    }

    /// Dials `number` through HylaFAX and sends `pages` from `options.first_page` on,
    /// reporting progress through `options.progress`, like [`crate::sim::Line::dial`].
    /// Errors are problems before the job was submitted (a bad number, no pages, the
    /// server unreachable or refusing the login or the job); what happened on the line is
    /// the outcome's [`CallResult`].
    pub async fn dial(
        &self,
        number: &str,
        pages: &[FaxPage],
        options: &DialOptions,
    ) -> Result<CallOutcome, HylafaxError> {
        let first = options.first_page;
        let doc = document(number, pages, first)?;
        let started = Instant::now();
        let mut s = self.session().await?;
        // Dropped before the end (the gateway hangs up its calls when its connection to the
        // supervisor ends): the job is killed and removed, as a hang-up would end the call.
        let mut guard = JobGuard {
            line: self.clone(),
            id: None,
        };
        let id = self.submit_in(&mut s, number, &doc, &mut guard.id).await?;
        let report = |step| {
            if let Some(p) = &options.progress {
                let _ = p.send(step);
            }
        };
        let mut tracker = Tracker::new(first, pages.len());
        let deadline = started + self.cfg.job_timeout;
        let mut state: Option<JobState> = None;
        let mut session = Some(s);
        let end: Result<JobFile, String> = loop {
            if Instant::now() >= deadline {
                let state = state.map_or("unknown", JobState::name);
                break Err(format!(
                    "timed out: HylaFAX job {id} still {state} after {} s",
                    self.cfg.job_timeout.as_secs()
                ));
            }
            tokio::time::sleep(self.cfg.poll_interval.min(deadline - Instant::now())).await;
            let s = match session.as_mut() {
                Some(s) => s,
                None => match self.session().await {
                    Ok(s) => session.insert(s),
                    Err(e) => {
                        tracing::warn!(job = %id, "cannot reach HylaFAX to follow the job: {e}");
                        continue;
                    }
                },
            };
            match read_job(s, &id).await {
                Ok(Some(job)) => {
                    for step in tracker.update(&job) {
                        report(step);
                    }
                    if job.state.is_some_and(JobState::is_final) {
                        break Ok(job);
                    }
                    state = job.state.or(state);
                }
                Ok(None) => {
                    break Err(format!(
                        "HylaFAX job {id} was removed from the server before it ended"
                    ));
                }
                Err(e) => {
                    tracing::warn!(job = %id, "lost the HylaFAX session following the job: {e}");
                    session = None;
                }
            }
        };
        // The job is finished or has to go: remove it either way (retries are the
        // supervisor's, with a new job).
        match remove_job(self, &mut session, &id).await {
            Ok(()) => guard.id = None,
            Err(e) => tracing::warn!(job = %id, "cannot remove the HylaFAX job: {e}"),
        }
        if let Some(s) = session {
            s.quit().await;
        }
        let outcome = match end {
            Ok(job) => outcome_of(number, &job, first, pages.len(), tracker.confirmed()),
            Err(reason) => CallOutcome {
                number: number.to_owned(),
                result: CallResult::Failed(reason),
                remote_station: None,
                pages_confirmed: tracker.confirmed(),
                next_page: first + tracker.confirmed(),
                coding: None,
                ecm: false,
                bit_rate: None,
                duration: Duration::ZERO,
            },
        };
        Ok(CallOutcome {
            duration: started.elapsed(),
            ..outcome
        })
    }

    /// The received faxes in the server's receive queue that are complete (at most
    /// [`recvq::MAX_PER_POLL`] a call), fetched. They stay there until
    /// [`HylafaxLine::remove_received`].
    pub async fn poll_received(&self) -> Result<Vec<ReceivedFax>, HylafaxError> {
        let mut s = self.session().await?;
        s.expect(&format!("RCVFMT \"{}\"", recvq::RCV_FORMAT), &[200])
            .await?;
        let listing = s.download("LIST recvq", recvq::MAX_LISTING).await?;
        let listing = String::from_utf8_lossy(&listing);
        let mut faxes = Vec::new();
        for entry in recvq::parse_listing(&listing)
            .into_iter()
            .filter(|e| !e.receiving)
            .take(recvq::MAX_PER_POLL)
        {
            let path = format!("recvq/{}", entry.name);
            // Removed meanwhile (by another poller): a refused RETR would spoil the session.
            if s.size(&path).await?.is_none() {
                continue;
            }
            let tiff = s
                .download(&format!("RETR {path}"), recvq::MAX_FAX_BYTES)
                .await?;
            let (sender_station, caller_number, caller_name) = recvq::sender_of(&tiff);
            faxes.push(ReceivedFax {
                name: entry.name,
                tiff,
                sender_station,
                caller_number,
                caller_name,
                pages: entry.pages,
            });
        }
        s.quit().await;
        Ok(faxes)
    }

    /// Removes a received fax from the server's receive queue, once it is stored safely.
    pub async fn remove_received(&self, name: &str) -> Result<(), HylafaxError> {
        recvq::check_fax_name(name)?;
        let mut s = self.session().await?;
        s.delete(&format!("recvq/{name}")).await?;
        s.quit().await;
        Ok(())
    }
}

/// Removes a job in the background when a [`HylafaxLine::dial`] is dropped before it
/// removed the job itself.
struct JobGuard {
    line: HylafaxLine,
    id: Option<String>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(job = %id, "HylaFAX job left on the server: no runtime to remove it");
            return;
        };
        let line = self.line.clone();
        runtime.spawn(async move {
            match line.remove(&id).await {
                Ok(()) => tracing::info!(job = %id, "HylaFAX job of an abandoned call removed"),
                Err(e) => tracing::warn!(job = %id, "cannot remove the HylaFAX job: {e}"),
            }
        });
    }
}

/// The document of one call: the pages from `first` on as a Group 3 one-dimensional fax
/// TIFF, and its vertical resolution for `JPARM VRES`.
struct Document {
    tiff: Vec<u8>,
    vres: u32,
    pages: usize,
}

fn document(number: &str, pages: &[FaxPage], first: usize) -> Result<Document, HylafaxError> {
    check_dial_string(number)?;
    if first == 0 || first > pages.len() {
        return Err(HylafaxError::NoPages {
            first,
            pages: pages.len(),
        });
    }
    let doc = &pages[first - 1..];
    let fine = doc.iter().any(|p| p.resolution == Resolution::Fine);
    Ok(Document {
        tiff: crate::tiff::write_fax_tiff(doc, Coding::Mh)?,
        vres: if fine { 196 } else { 98 },
        pages: doc.len(),
    })
}

/// Reads a job's queue file: `sendq/qID`, else `doneq/qID`; `None` when neither exists.
/// Existence is checked with `SIZE` first: a refused `RETR` spoils the session.
async fn read_job(s: &mut Session, id: &str) -> Result<Option<JobFile>, HylafaxError> {
    for queue in ["sendq", "doneq"] {
        let path = format!("{queue}/q{id}");
        if s.size(&path).await?.is_none() {
            continue;
        }
        match s.download(&format!("RETR {path}"), MAX_QFILE).await {
            Ok(bytes) => return Ok(Some(JobFile::parse(&String::from_utf8_lossy(&bytes)))),
            // Moved to doneq between SIZE and RETR: the caller reads again with a new
            // session.
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// `JKILL` (unless finished), then `JDELE` once faxq has let go of the job, within
/// [`REMOVE_WAIT`], opening a new session when one fails. `session` is used first and is
/// handed back (or its replacement) for reuse.
async fn remove_job(
    line: &HylafaxLine,
    session: &mut Option<Session>,
    id: &str,
) -> Result<(), HylafaxError> {
    let until = Instant::now() + REMOVE_WAIT;
    let mut killed = false;
    loop {
        let step = async {
            let s = match session.as_mut() {
                Some(s) => s,
                None => session.insert(line.session().await?),
            };
            let Some(job) = read_job(s, id).await? else {
                return Ok(true);
            };
            let state = job.state;
            if state.is_some_and(JobState::is_final) || state == Some(JobState::Suspended) {
                let r = s.delete_job(id).await?;
                match r.code {
                    200 => {
                        tracing::debug!(job = %id, "HylaFAX job removed");
                        Ok(true)
                    }
                    // 504: faxq still holds the job's lock; try again shortly.
                    504 => Ok(false),
                    code => Err(HylafaxError::Refused {
                        command: format!("JDELE {id}"),
                        code,
                        text: r.shown(),
                    }),
                }
            } else {
                if !killed {
                    let r = s.kill_job(id).await?;
                    // 504: it ended meanwhile.
                    if r.code != 200 && r.code != 504 {
                        return Err(HylafaxError::Refused {
                            command: format!("JKILL {id}"),
                            code: r.code,
                            text: r.shown(),
                        });
                    }
                    killed = true;
                }
                Ok(false)
            }
        };
        match step.await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e @ HylafaxError::Refused { .. }) => return Err(e),
            Err(e) => {
                tracing::debug!(job = %id, "removing the HylaFAX job: {e}; with a new session");
                *session = None;
            }
        }
        if Instant::now() >= until {
            return Err(HylafaxError::Timeout {
                step: format!("removing HylaFAX job {id}"),
            });
        }
        tokio::time::sleep(line.cfg.poll_interval.min(Duration::from_millis(250))).await;
    }
}

/// The outcome of a finished job.
fn outcome_of(
    number: &str,
    job: &JobFile,
    first: usize,
    total: usize,
    confirmed: usize,
) -> CallOutcome {
    let result = result_of(job, first);
    let pages_confirmed = if result == CallResult::Sent {
        total + 1 - first
    } else {
        confirmed.max(job.npages).min(total + 1 - first)
    };
    let coding = coding_of(&job.dataformat);
    let station = peer_station(&job.csi);
    CallOutcome {
        number: number.to_owned(),
        remote_station: (!station.is_empty()).then_some(station),
        pages_confirmed,
        next_page: first + pages_confirmed,
        coding,
        // MMR (Group 4) is sent only with error correction (T.30).
        ecm: coding == Some(Coding::G4),
        bit_rate: job.bit_rate(),
        duration: Duration::ZERO,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration() {
        let c = HylafaxConfig::new("fax.example", "gw").unwrap();
        assert_eq!(c.addr, "fax.example:4559");
        let c = HylafaxConfig::new("127.0.0.1:4600", "gw")
            .unwrap()
            .with_passwords_from(|k| (k == PASSWORD_ENV).then(|| "pw".to_owned()));
        assert_eq!(c.addr, "127.0.0.1:4600");
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.admin_password, None);
        let shown = format!("{c:?}");
        assert!(
            shown.contains("****") && !shown.contains("\"pw\""),
            "{shown}"
        );
        assert!(HylafaxConfig::new("a b", "gw").is_err());
        assert!(HylafaxConfig::new("host", "two words").is_err());
        assert!(HylafaxConfig::new("host", "").is_err());
    }

    #[test]
    fn dial_strings_and_last_time() {
        for good in ["5550100", "+15550100", "9,5550100", "*31#123"] {
            assert!(check_dial_string(good).is_ok(), "{good}");
        }
        for bad in ["", "555\"; JKILL 1", "555 0100", "-5", &"1".repeat(41)] {
            assert!(check_dial_string(bad).is_err(), "{bad}");
        }
        assert_eq!(last_time(Duration::from_secs(1)), "000001");
        assert_eq!(last_time(Duration::from_secs(3600)), "000100");
        assert_eq!(last_time(Duration::from_secs(90_061)), "010102");
    }

    #[test]
    fn outcome_of_a_finished_job() {
        let job = JobFile {
            state: Some(JobState::Done),
            npages: 2,
            csi: "ACME\u{1b}".into(),
            signalrate: "9600 bit/s".into(),
            dataformat: "2-D MMR".into(),
            ..JobFile::default()
        };
        let o = outcome_of("5550100", &job, 2, 3, 1);
        assert_eq!(o.result, CallResult::Sent);
        assert_eq!((o.pages_confirmed, o.next_page), (2, 4));
        assert_eq!(o.remote_station.as_deref(), Some("ACME?"));
        assert_eq!(
            (o.coding, o.ecm, o.bit_rate),
            (Some(Coding::G4), true, Some(9600))
        );
        let busy = JobFile {
            state: Some(JobState::Failed),
            statuscode: Some(1),
            status: "Busy signal detected".into(),
            ..JobFile::default()
        };
        let o = outcome_of("5550100", &busy, 1, 3, 0);
        assert_eq!(o.result, CallResult::Busy);
        assert_eq!(
            (o.pages_confirmed, o.next_page, o.remote_station),
            (0, 1, None)
        );
    }
}
