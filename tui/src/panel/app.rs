//! The panel's state: the stack of dialogs, the connection's state, the logged-in user, what
//! was received, and the jobs in flight. Input goes in through [`App::key`], [`App::click`]
//! and [`App::event`]; work that needs the network or the disk comes out as [`Job`]s, which
//! the job runner executes (with the connection and user it owns) and answers with
//! [`AppEvent::Job`]. Nothing here blocks, so the whole dialog logic is tested without a
//! terminal or a server.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime};

use imagecast_shared::client::{Client, Event, Received};
use imagecast_shared::msg::{Destination, GroupEntry, Role, Welcome};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::chrome;
use super::jobs::{GroupsFor, Job, JobResult, paper::CarryToAdf, stored::ListStored};
use super::keys::Key;
use super::screens::{self, Screen};
use super::strings;
use super::theme::Theme;

/// The most keys kept while a screen loads.
const TYPED_AHEAD_MAX: usize = 32;

/// What a screen asks the app to do after a key.
#[derive(Debug)]
pub enum Action {
    /// Nothing more.
    None,
    /// Open a dialog on top.
    Push(Screen),
    /// Close this dialog.
    Back,
    /// Close this dialog and hand a value to the one below.
    Return(Returned),
    /// Back to mode selection (FIG. 7).
    Home,
    /// Log out, back to FIG. 6.
    Logout,
    /// Start background work (see [`Action::run`]).
    Run(Job),
    /// Say something in the status line (why a key did nothing).
    Note(String),
    /// Leave the panel.
    Quit,
}

impl Action {
    /// Start this job.
    pub fn run(job: impl Into<Job>) -> Self {
        Action::Run(job.into())
    }
}

/// A value a closing dialog hands to the dialog below it.
#[derive(Debug)]
pub enum Returned {
    /// FIG. 10 closed: the destinations ticked, and whether Start was pressed.
    Individuals {
        /// Domains ticked.
        domains: Vec<String>,
        /// Start (distribute now) rather than Reset (just go back).
        start: bool,
    },
}

/// The connection's state, as the status line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conn {
    /// Dialling or waiting to dial again.
    Connecting {
        /// Attempt number from 1.
        attempt: u32,
        /// When the next attempt starts.
        retry_at: Option<Instant>,
        /// Why the last attempt or connection failed.
        last_error: Option<String>,
    },
    /// Connected and welcomed.
    Connected,
    /// Refused for good (bad token...): only a restart with other settings helps.
    Refused(String),
}

/// Events the runner feeds in.
#[derive(Debug)]
pub enum AppEvent {
    /// The connection is up (the job runner takes the client).
    Connected(Client, Box<Welcome>),
    /// The connection is gone; the link retries after `retry_in`.
    Disconnected {
        /// Why it went, for the login dialog.
        reason: String,
        /// Attempt number of the next try.
        attempt: u32,
        /// Delay before it.
        retry_in: Duration,
    },
    /// The server refused this terminal; the link gave up.
    Refused(String),
    /// A delivery was printed to the output tray.
    Received {
        /// The delivery as the inbox stored it.
        received: Received,
        /// Its pages (a multi-page TIFF counts all its pages).
        pages: usize,
        /// It is a received fax: who sent it, through which gateway.
        fax: Option<Box<imagecast_shared::fax::FaxIncoming>>,
    },
    /// A server event (progress, results, notices).
    Server(Event),
    /// A job finished or reported progress.
    Job(JobResult),
}

/// A delivery shown in the received list.
#[derive(Clone, Debug)]
pub struct ReceivedEntry {
    /// The delivery as the inbox stored it.
    pub received: Received,
    /// Its pages (a multi-page TIFF counts all its pages).
    pub pages: usize,
    /// When it was printed.
    pub at: SystemTime,
    /// It came in a real-time session, not by store and forward.
    pub realtime: bool,
    /// It is a received fax: the caller, station ID and gateway.
    pub fax: Option<Box<imagecast_shared::fax::FaxIncoming>>,
}

/// The deliveries an earlier run printed to the output tray `tray`, oldest first, from the
/// inbox's own record ([`imagecast_shared::client::stored_in`]), keeping only the files still
/// in the tray, so a restarted panel lists what its tray holds. The record names no sender:
/// those entries say "before the restart".
pub fn received_before(tray: &std::path::Path) -> Vec<ReceivedEntry> {
    let mut entries: Vec<ReceivedEntry> = imagecast_shared::client::stored_in(tray)
        .into_iter()
        .map(|(dist, files)| {
            let metas: Vec<_> = files.iter().filter_map(|f| f.metadata().ok()).collect();
            let at = metas
                .iter()
                .filter_map(|m| m.modified().ok())
                .max()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let pages = crate::paper::pages::count_pages(&files);
            ReceivedEntry {
                received: Received {
                    delivery: imagecast_shared::DeliveryId(0),
                    dist,
                    sender: Destination {
                        domain: String::new(),
                        name: "(before the restart)".to_owned(),
                    },
                    user: String::new(),
                    pages: files.len(),
                    bytes: metas.iter().map(|m| m.len()).sum(),
                    files,
                    duplicate: false,
                },
                pages,
                at,
                realtime: false,
                fax: None,
            }
        })
        .collect();
    entries.sort_by_key(|e| e.at);
    entries
}

/// Read-only facts screens draw with.
pub struct Ctx<'a> {
    /// The colours, or none under `NO_COLOR`.
    pub theme: Theme,
    /// The link's state, as the status line shows it.
    pub conn: &'a Conn,
    /// True in the demo (FIG. 6 shows the demo login).
    pub demo: bool,
    /// Deliveries received, newest last.
    pub received: &'a [ReceivedEntry],
    /// Hit areas for mouse touches, filled while drawing.
    pub hits: &'a RefCell<Vec<(Rect, Key)>>,
}

/// Static facts about this panel.
#[derive(Clone, Debug)]
pub struct PanelInfo {
    /// `HOST:PORT` of the server.
    pub server: String,
    /// This terminal's domain.
    pub device: String,
    /// True in the demo.
    pub demo: bool,
    /// True in kiosk mode: quitting needs an admin login.
    pub kiosk: bool,
}

/// The panel's whole state, driven by keys, clicks and events.
pub struct App {
    /// What this panel is and where it connects.
    pub info: PanelInfo,
    /// The colours, or none under `NO_COLOR`.
    pub theme: Theme,
    /// The dialog stack; the last is shown.
    pub stack: Vec<Screen>,
    /// The link's state, as the status line shows it.
    pub conn: Conn,
    /// This terminal's destination name (from the server).
    pub device_name: String,
    /// The logged-in user and role, as the status line shows them.
    pub user: Option<(String, Role)>,
    /// Deliveries received.
    pub received: Vec<ReceivedEntry>,
    /// The label of the job in flight.
    pub busy: Option<String>,
    /// A short note in the status line, with when it appeared.
    pub note: Option<(String, Instant)>,
    /// A connection demand waiting for the operator, over whatever screen is up.
    pub demand: Option<screens::demand::DemandDialog>,
    /// Jobs waiting for the runner.
    jobs: Vec<Job>,
    /// Keys typed while a job loads the next screen: they go to that screen once it is up
    /// (or are dropped, with a word, if the job fails or is stopped).
    typed_ahead: Vec<Key>,
    /// True once the panel should close.
    pub quit: bool,
    /// When to draw the whole terminal again: the demo's fax gateways (the faxgw library)
    /// print a line to the terminal around a received fax, over the panel.
    pub repaint_at: Option<Instant>,
    hits: RefCell<Vec<(Rect, Key)>>,
}

impl App {
    /// A panel at FIG. 6.
    pub fn new(info: PanelInfo, theme: Theme) -> Self {
        Self {
            stack: vec![Screen::Login(screens::login::Login::new(
                screens::login::LoginPurpose::Session,
            ))],
            conn: Conn::Connecting {
                attempt: 1,
                retry_at: None,
                last_error: None,
            },
            device_name: info.device.clone(),
            info,
            theme,
            user: None,
            received: Vec::new(),
            busy: None,
            note: None,
            demand: None,
            jobs: Vec::new(),
            typed_ahead: Vec::new(),
            quit: false,
            repaint_at: None,
            hits: RefCell::new(Vec::new()),
        }
    }

    /// The dialog on top.
    pub fn screen(&self) -> &Screen {
        // The stack is never empty: Back on the last dialog is refused.
        &self.stack[self.stack.len() - 1]
    }

    fn screen_mut(&mut self) -> &mut Screen {
        let n = self.stack.len();
        &mut self.stack[n - 1]
    }

    /// Jobs to run now.
    pub fn take_jobs(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.jobs)
    }

    /// Shows a note in the status line for a few seconds.
    pub fn notify(&mut self, text: impl Into<String>) {
        self.note = Some((text.into(), Instant::now()));
    }

    /// A key press.
    pub fn key(&mut self, key: Key) {
        if key == Key::Quit {
            self.quit_requested();
            return;
        }
        // A connection demand takes Start and Reset, whatever is beneath it and whatever
        // runs; it answers beside the job in flight.
        if let Some(d) = &self.demand {
            match d.key(key) {
                screens::demand::DemandKey::Answer(answer) => {
                    self.demand = None;
                    if self.conn == Conn::Connected {
                        self.jobs.push(Job::AnswerDemand(answer));
                    }
                }
                screens::demand::DemandKey::Ignored => {
                    self.notify(strings::DEMAND_KEYS);
                }
            }
            return;
        }
        if key == Key::RetryNow {
            if self.conn == Conn::Connected {
                self.notify("Connected to the image server already.");
            } else {
                self.jobs.push(Job::RetryNow);
                self.notify("Dialling the image server now.");
            }
            return;
        }
        if key == Key::Stop {
            if let Some(label) = &self.busy {
                let label = label.clone();
                self.jobs.push(Job::Cancel);
                self.notify(format!("Stop: cancelling {label}"));
            } else if matches!(self.screen(), Screen::Progress(p) if p.dist.is_some()) {
                self.notify(strings::STOP_AFTER_ACCEPTED);
            } else {
                self.notify(strings::NOTHING_TO_STOP);
            }
            return;
        }
        // While a job loads the next screen, keys wait for that screen: `6 1 2` typed
        // quickly ticks group 2 on FIG. 9, never entry 2 of FIG. 8. The progress view takes
        // its keys itself.
        if self.busy.is_some()
            && !matches!(self.screen(), Screen::Progress(_) | Screen::RealTime(_))
        {
            if self.typed_ahead.len() < TYPED_AHEAD_MAX {
                self.typed_ahead.push(key);
            }
            return;
        }
        if key == Key::Help {
            if matches!(self.screen(), Screen::Help(_)) {
                self.apply(Action::Back);
            } else {
                let help = self.screen().help();
                self.stack.push(Screen::Help(help));
            }
            return;
        }
        if key == Key::Carry {
            self.apply(Action::run(CarryToAdf));
            return;
        }
        let logged_in = self.user.is_some();
        if logged_in && matches!(key, Key::Stored | Key::Received) {
            let on_top = matches!(
                (self.screen(), key),
                (Screen::Stored(_), Key::Stored) | (Screen::Received(_), Key::Received)
            );
            if !on_top {
                let action = if key == Key::Stored {
                    Action::run(ListStored)
                } else {
                    Action::Push(Screen::Received(screens::received::ReceivedList::new()))
                };
                self.apply(action);
            }
            return;
        }
        let (screen, ctx) = self.top();
        let action = screen.key(key, &ctx);
        self.apply(action);
    }

    /// A mouse click at a cell: acts as the key drawn there.
    pub fn click(&mut self, x: u16, y: u16) {
        let hit = self
            .hits
            .borrow()
            .iter()
            .rev()
            .find(|(r, _)| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height)
            .map(|(_, k)| *k);
        if let Some(k) = hit {
            self.key(k);
        }
    }

    fn quit_requested(&mut self) {
        if !self.info.kiosk {
            self.quit = true;
            return;
        }
        if !matches!(self.screen(), Screen::Login(l) if l.purpose == screens::login::LoginPurpose::KioskQuit)
        {
            self.stack.push(Screen::Login(screens::login::Login::new(
                screens::login::LoginPurpose::KioskQuit,
            )));
        }
    }

    /// Carries out a screen's action.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::None => {}
            Action::Push(s) => self.stack.push(s),
            Action::Back => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                }
            }
            Action::Return(value) => {
                if self.stack.len() > 1 {
                    self.stack.pop();
                }
                let next = self.screen_mut().returned(value);
                self.apply(next);
            }
            Action::Home => self.home(),
            Action::Logout => {
                self.jobs.push(Job::Logout);
                self.user = None;
                self.stack = vec![Screen::Login(screens::login::Login::new(
                    screens::login::LoginPurpose::Session,
                ))];
            }
            Action::Run(job) => self.run(job),
            Action::Note(text) => self.notify(text),
            Action::Quit => self.quit = true,
        }
    }

    fn home(&mut self) {
        if self.user.is_some() {
            self.stack = vec![Screen::ModeSelect(screens::mode_select::ModeSelect::new())];
        }
    }

    fn run(&mut self, job: Job) {
        if let Some(label) = self.busy.as_ref().filter(|_| job.is_long()) {
            let text = format!("busy with {label}; press Stop (x) to cancel it");
            self.notify(text);
            return;
        }
        if job.needs_connection() && self.conn != Conn::Connected {
            let text = match &self.conn {
                Conn::Refused(r) => format!("The image server refused this terminal: {r}"),
                // Asking for the server while offline dials it now, not at the countdown's end.
                _ => {
                    self.jobs.push(Job::RetryNow);
                    "Not connected to the image server; trying again now. Please try again in a moment.".to_owned()
                }
            };
            self.stack
                .push(Screen::Message(screens::message::Message::error(
                    "Not connected",
                    text,
                )));
            return;
        }
        if job.is_long() {
            self.busy = Some(job.label().to_owned());
        }
        if let Job::Distribute(d) = &job {
            let mut progress = screens::progress::Progress::new();
            progress.from_adf = d.source == super::jobs::ImageSource::Adf;
            if let Screen::Destinations(fig9) = self.screen() {
                let largest = fig9
                    .chosen
                    .iter()
                    .filter_map(|&i| fig9.groups.get(i))
                    .map(|g| g.members as usize)
                    .max()
                    .unwrap_or(0);
                progress.at_least = largest.max(fig9.individuals.len());
            }
            self.stack.push(Screen::Progress(progress));
        }
        if let Job::FaxSend(_) = &job {
            self.stack.push(Screen::FaxProgress(
                screens::fax_progress::FaxProgress::new(),
            ));
        }
        if let Job::RealTimeSend(s) = &job {
            self.stack
                .push(Screen::RealTime(screens::realtime::RealTime::demander(
                    &s.name,
                )));
        }
        self.jobs.push(job);
    }

    /// An event from the link or a job.
    pub fn event(&mut self, ev: AppEvent) {
        match ev {
            // The job runner logs the same user in again: the operator keeps their place.
            AppEvent::Connected(_, welcome) => {
                self.device_name = welcome.device_name;
                self.conn = Conn::Connected;
            }
            AppEvent::Disconnected {
                reason,
                attempt,
                retry_in,
            } => {
                self.conn = Conn::Connecting {
                    attempt,
                    retry_at: Some(Instant::now() + retry_in),
                    last_error: Some(reason),
                };
            }
            AppEvent::Refused(reason) => self.conn = Conn::Refused(reason),
            AppEvent::Received {
                received,
                pages,
                fax,
            } => {
                if fax.is_some() {
                    self.repaint_at = Some(Instant::now() + Duration::from_secs(1));
                }
                if !received.duplicate {
                    match &fax {
                        Some(fax) => self.notify(format!(
                            "Printed a fax of {pages} page(s) from {}",
                            screens::received::fax_sender(fax)
                        )),
                        None => self.notify(format!(
                            "Printed {pages} page(s) in {} file(s) from {}",
                            received.files.len(),
                            received.sender.name
                        )),
                    }
                    self.received.push(ReceivedEntry {
                        received,
                        pages,
                        at: SystemTime::now(),
                        realtime: false,
                        fax,
                    });
                }
            }
            AppEvent::Server(Event::Notice(text)) => self.notify(text),
            AppEvent::Server(Event::Demanded(d)) => {
                self.demand = Some(screens::demand::DemandDialog::new(d));
            }
            AppEvent::Server(Event::DemandWithdrawn { demand, reason }) => {
                if let Some(d) = self.demand.take_if(|d| d.demand.demand == demand) {
                    self.notify(format!(
                        "Connection demand from {} withdrawn: {}",
                        d.demand.from.name, reason
                    ));
                }
            }
            AppEvent::Server(event) => {
                for s in &mut self.stack {
                    match s {
                        Screen::Progress(p) => p.server_event(&event),
                        Screen::FaxProgress(p) => p.server_event(&event),
                        _ => {}
                    }
                }
            }
            AppEvent::Job(result) => self.job_result(result),
        }
    }

    /// Periodic: expires notes, and a connection demand whose time ran out (the server
    /// expires it too; the screen beneath is as it was).
    pub fn tick(&mut self) {
        if let Some(d) = self.demand.take_if(|d| d.expired(Instant::now())) {
            self.notify(format!(
                "Connection demand from {} not answered in time",
                d.demand.from.name
            ));
        }
        if self
            .note
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(6))
        {
            self.note = None;
        }
    }

    /// True (once) when the whole terminal should be drawn again ([`App::repaint_at`]).
    pub fn repaint_due(&mut self) -> bool {
        self.repaint_at
            .take_if(|at| Instant::now() >= *at)
            .is_some()
    }

    fn job_result(&mut self, result: JobResult) {
        let final_answer = result.is_final();
        // After a failure or a stop, keys typed for the screen that never came are dropped.
        let stopped = matches!(result, JobResult::Cancelled);
        let replay = !matches!(
            result,
            JobResult::Cancelled
                | JobResult::Failed { .. }
                | JobResult::LoginFailed(_)
                | JobResult::ImageRefused(_)
                | JobResult::DistributionFailed(_)
                | JobResult::FaxFailed(_)
                | JobResult::ReloginRefused
        );
        if final_answer {
            self.busy = None;
        }
        self.job_answer(result);
        if final_answer {
            let typed = std::mem::take(&mut self.typed_ahead);
            if !replay {
                if !typed.is_empty() {
                    self.notify(format!(
                        "{}{} key(s) typed ahead dropped: the screen they were for did not open",
                        if stopped { "Stopped; " } else { "" },
                        typed.len()
                    ));
                }
                return;
            }
            // A key may start another job: the keys after it wait for its screen in turn.
            for key in typed {
                self.key(key);
            }
        }
    }

    fn job_answer(&mut self, result: JobResult) {
        match result {
            JobResult::LoggedIn { user, role, quit } => {
                if quit {
                    if role == Role::Admin {
                        self.quit = true;
                    } else if let Screen::Login(l) = self.screen_mut() {
                        l.error = Some("Only an administrator can close this kiosk.".into());
                    }
                    return;
                }
                self.user = Some((user, role));
                self.stack = vec![Screen::ModeSelect(screens::mode_select::ModeSelect::new())];
            }
            JobResult::ReloginRefused => {
                self.user = None;
                self.stack = vec![Screen::Login(screens::login::Login::new(
                    screens::login::LoginPurpose::Session,
                ))];
                self.notify("Logged out: the server no longer accepts this user");
            }
            JobResult::LoginFailed(msg) => {
                if let Screen::Login(l) = self.screen_mut() {
                    l.error = Some(msg);
                    l.password.clear();
                }
            }
            JobResult::Groups { purpose, groups } => self.groups_arrived(purpose, groups),
            JobResult::Destinations(list) => self.destinations_arrived(list),
            JobResult::Scanned {
                files,
                pages,
                bytes,
                refused,
                kept,
            } => {
                if let Screen::Progress(p) = self.screen_mut() {
                    p.scanned(files, pages, bytes, refused, kept);
                }
            }
            JobResult::Accepted(accepted) => {
                for s in &mut self.stack {
                    if let Screen::Progress(p) = s {
                        p.accepted(&accepted);
                    }
                }
            }
            JobResult::FaxReady {
                source,
                online,
                gateways,
                book,
            } => {
                self.stack
                    .push(Screen::FaxDest(screens::fax_dest::FaxDest::new(
                        source, book, online, gateways,
                    )));
            }
            JobResult::FaxAccepted {
                job,
                numbers,
                files,
            } => {
                for s in &mut self.stack {
                    if let Screen::FaxProgress(p) = s {
                        p.accepted(job.clone(), numbers.clone(), files);
                    }
                }
            }
            JobResult::FaxRecords(records) => {
                self.stack
                    .push(Screen::FaxRecords(screens::fax_records::FaxRecords::new(
                        records,
                    )));
            }
            JobResult::FaxFailed(msg) => {
                if let Screen::FaxProgress(p) = self.screen_mut() {
                    p.refused(msg);
                } else {
                    self.error_box("Fax not sent", msg);
                }
            }
            JobResult::DistributionFailed(msg) => {
                if let Screen::Progress(p) = self.screen_mut() {
                    p.failed(msg);
                } else {
                    self.error_box("Distribution failed", msg);
                }
            }
            // FIG. 11 knows what the image is for.
            JobResult::ImageChosen(id) => {
                let next = self.stack.iter_mut().rev().find_map(|s| match s {
                    Screen::SpecifyImage(s) => Some(s.chosen(id)),
                    _ => None,
                });
                if let Some(action) = next {
                    self.apply(action);
                }
            }
            JobResult::Noted(text) => self.notify(text),
            JobResult::Told { title, lines } => {
                self.stack
                    .push(Screen::Message(screens::message::Message::info(
                        title, lines,
                    )));
            }
            JobResult::ImageRefused(msg) => {
                if let Screen::SpecifyImage(s) = self.screen_mut() {
                    s.error = Some(msg);
                } else {
                    self.error_box("No such image", msg);
                }
            }
            JobResult::DoneHome { title, lines } => {
                self.home();
                self.stack
                    .push(Screen::Message(screens::message::Message::info(
                        title, lines,
                    )));
            }
            JobResult::Failed { title, message } => self.error_box(title, message),
            JobResult::Stored(listing) => {
                if let Screen::Stored(s) = self.screen_mut() {
                    s.set(listing);
                } else {
                    self.stack
                        .push(Screen::Stored(screens::stored::Stored::new(listing)));
                }
            }
            JobResult::Preview(p) => {
                self.stack
                    .push(Screen::Preview(screens::preview::Preview::new(*p)));
            }
            JobResult::Terminals(list) => {
                let me = imagecast_shared::domain::domain_key(&self.info.device).into_owned();
                let others = list
                    .into_iter()
                    .filter(|p| imagecast_shared::domain::domain_key(&p.domain) != me)
                    .collect();
                self.stack
                    .push(Screen::Terminals(screens::terminals::Terminals::new(
                        others,
                    )));
            }
            JobResult::RealTime(news) => self.real_time(news),
            JobResult::RealTimeOver {
                ok,
                reason,
                printed,
                n,
            } => {
                let screen = self.stack.iter_mut().rev().find_map(|s| match s {
                    Screen::RealTime(r)
                        if r.side == screens::realtime::Side::Demander && !r.over() =>
                    {
                        Some(r)
                    }
                    _ => None,
                });
                if let Some(r) = screen {
                    r.over_with(ok, &reason, printed, n);
                }
            }
            JobResult::Cancelled => {
                self.notify("Stopped");
                // A stopped distribution ends on its result, never on "Stop (x) cancels."
                for s in &mut self.stack {
                    if let Screen::Progress(p) = s {
                        p.stopped();
                    }
                }
            }
        }
    }

    /// News of a real-time session: a session accepted opens its screen, pages printed go
    /// to the received list, the rest goes to the session's screen.
    fn real_time(&mut self, news: super::jobs::relay::News) {
        use super::jobs::relay::News;
        match news {
            News::Opened {
                session,
                peer,
                user,
            } => {
                self.stack
                    .push(Screen::RealTime(screens::realtime::RealTime::target(
                        session, &peer.name, &user,
                    )));
            }
            News::Failed(text) => self.notify(text),
            news => {
                for s in self.stack.iter_mut().rev() {
                    if let Screen::RealTime(r) = s {
                        if r.news(&news) {
                            break;
                        }
                    }
                }
                if let News::Received {
                    received, pages, ..
                } = news
                {
                    self.notify(format!(
                        "Printed {pages} page(s) from {} (real time)",
                        received.sender.name
                    ));
                    self.received.push(ReceivedEntry {
                        received,
                        pages,
                        at: SystemTime::now(),
                        realtime: true,
                        fax: None,
                    });
                }
            }
        }
    }

    fn error_box(&mut self, title: impl Into<String>, message: impl Into<String>) {
        self.stack
            .push(Screen::Message(screens::message::Message::error(
                title, message,
            )));
    }

    fn groups_arrived(&mut self, purpose: GroupsFor, groups: Vec<GroupEntry>) {
        let screen = match purpose {
            GroupsFor::Distribute(source) => {
                Screen::Destinations(screens::destinations::Destinations::new(source, groups))
            }
            GroupsFor::Register => Screen::GroupSelect(screens::group_select::GroupSelect::new(
                screens::group_select::Mode::Register,
                groups,
            )),
            GroupsFor::Withdraw => Screen::GroupSelect(screens::group_select::GroupSelect::new(
                screens::group_select::Mode::Withdraw,
                groups,
            )),
        };
        self.stack.push(screen);
    }

    fn destinations_arrived(&mut self, list: Vec<Destination>) {
        let ticked = match self.screen() {
            Screen::Destinations(d) => d.individuals.clone(),
            _ => Vec::new(),
        };
        self.stack
            .push(Screen::Individual(screens::individual::Individual::new(
                list, &ticked,
            )));
    }

    /// Draws the whole panel.
    pub fn draw(&mut self, f: &mut Frame) {
        self.hits.borrow_mut().clear();
        let areas = chrome::draw(f, self);
        {
            let (screen, ctx) = self.top();
            screen.draw(f, areas.lcd, &ctx);
        }
        if let Some(d) = &self.demand {
            // Over the screen, which stays as it is beneath; the dialog takes the touches.
            let ctx = Ctx {
                theme: self.theme,
                conn: &self.conn,
                demo: self.info.demo,
                received: &self.received,
                hits: &self.hits,
            };
            d.draw(f, areas.lcd, &ctx);
        }
        chrome::draw_keypad(f, areas.keypad, &self.theme, &self.hits);
    }

    /// The screen on top of the stack, with what screens may read while it handles a key or
    /// draws.
    fn top(&mut self) -> (&mut Screen, Ctx<'_>) {
        let ctx = Ctx {
            theme: self.theme,
            conn: &self.conn,
            demo: self.info.demo,
            received: &self.received,
            hits: &self.hits,
        };
        let n = self.stack.len();
        (&mut self.stack[n - 1], ctx)
    }

    /// The status line's short word for the connection.
    pub fn conn_short(&self) -> String {
        match &self.conn {
            Conn::Connected => format!("online {}", self.info.server),
            Conn::Connecting {
                attempt, retry_at, ..
            } => {
                let wait = retry_at
                    .map(|t| t.saturating_duration_since(Instant::now()).as_secs())
                    .unwrap_or(0);
                if wait > 0 {
                    format!("OFFLINE, retry in {wait} s (#{attempt}; F5 now)")
                } else {
                    format!("connecting to {} (#{attempt})", self.info.server)
                }
            }
            Conn::Refused(_) => "REFUSED by the server".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::jobs::paper::ReadMarkSheet;
    use crate::panel::jobs::server::{FetchGroups, Login};
    use crate::panel::jobs::{GroupsFor, ImageSource};
    use crate::panel::test_support::{app, keys, logged_in, screen, the_job};
    use crate::store::ImageId;
    use imagecast_shared::DistributionId;

    #[test]
    fn touches_act_as_the_keys_drawn_there() {
        let mut a = logged_in();
        // The key pad is drawn from 100 columns.
        let wide = crate::panel::test_support::draw(&mut a, 120, 40);
        // The key pad's [6] and the LCD's "6: Others" both lead to FIG. 8.
        let (row, line) = wide
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("[6]"))
            .unwrap();
        let col = line.find("[6]").unwrap();
        let col = line[..col].chars().count() as u16;
        a.click(col + 1, row as u16);
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
        a.key(Key::Reset);
        let s = screen(&mut a);
        assert!(!s.contains("[6]"), "no key pad below 100 columns");
        let (row, line) = s
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("6: Others"))
            .unwrap();
        let col = line[..line.find("6: Others").unwrap()].chars().count() as u16;
        a.click(col + 2, row as u16);
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
    }

    #[test]
    fn keys_typed_while_a_screen_loads_go_to_that_screen() {
        let mut a = logged_in();
        // `6 1 2` typed quickly: the 2 arrives while FIG. 9's groups are loading.
        keys(&mut a, &[Key::Digit(6), Key::Digit(1), Key::Digit(2)]);
        assert!(matches!(the_job(&mut a), Job::FetchGroups(_)));
        assert!(matches!(a.screen(), Screen::DistributionMode(_)));
        a.event(AppEvent::Job(JobResult::Groups {
            purpose: GroupsFor::Distribute(ImageSource::Adf),
            groups: crate::panel::test_support::seed_groups(),
        }));
        let Screen::Destinations(d) = a.screen() else {
            panic!("FIG. 9 expected: {}", screen(&mut a));
        };
        assert!(d.chosen.contains(&1), "group 2 is ticked");
        assert!(screen(&mut a).contains("[x] 2: all sales offices"));

        // A failed load drops the keys, and says so.
        let mut b = logged_in();
        keys(&mut b, &[Key::Digit(6), Key::Digit(1), Key::Digit(2)]);
        let _ = b.take_jobs();
        b.event(AppEvent::Job(JobResult::Failed {
            title: "Cannot get the destination groups".into(),
            message: "the server is busy".into(),
        }));
        assert!(matches!(b.screen(), Screen::Message(_)));
        assert!(screen(&mut b).contains("1 key(s) typed ahead dropped"));
    }

    #[test]
    fn a_restarted_panel_lists_what_its_tray_holds() {
        let dir = tempfile::tempdir().unwrap();
        assert!(received_before(dir.path()).is_empty());
        std::fs::create_dir_all(dir.path().join(".imagecast")).unwrap();
        let (d1, d2) = (DistributionId::new_random(), DistributionId::new_random());
        for name in ["a.png", "b.png", "c.png"] {
            std::fs::write(dir.path().join(name), b"page").unwrap();
        }
        // The inbox's receipt log: one line per delivery, its files' names after the ID.
        std::fs::write(
            dir.path().join(".imagecast").join("received"),
            format!("{d1}\ta.png\tb.png\n{d2}\tc.png\tgone.png\nbroken\n"),
        )
        .unwrap();
        let got = received_before(dir.path());
        assert_eq!(got.len(), 2);
        let first = got.iter().find(|e| e.received.dist == d1).unwrap();
        assert_eq!(first.received.files.len(), 2);
        assert_eq!(first.pages, 2);
        let second = got.iter().find(|e| e.received.dist == d2).unwrap();
        assert_eq!(
            second.pages, 1,
            "a file no longer in the tray is not listed"
        );
        let mut a = logged_in();
        a.received = got;
        assert!(screen(&mut a).contains("Received 2"));
    }

    #[test]
    fn a_kiosk_closes_only_for_an_administrator() {
        let mut a = app(false, true);
        a.key(Key::Quit);
        assert!(!a.quit);
        assert!(screen(&mut a).contains("Administrator login to close the panel"));
        keys(
            &mut a,
            &[Key::Digit(1), Key::Tab, Key::Digit(2), Key::Start],
        );
        assert!(matches!(
            the_job(&mut a),
            Job::Login(Login { quit: true, .. })
        ));
        a.event(AppEvent::Job(JobResult::LoggedIn {
            user: "1".into(),
            role: Role::Operator,
            quit: true,
        }));
        assert!(!a.quit);
        assert!(screen(&mut a).contains("Only an administrator can close this kiosk."));
        a.event(AppEvent::Job(JobResult::LoggedIn {
            user: "9".into(),
            role: Role::Admin,
            quit: true,
        }));
        assert!(a.quit);
        let mut b = app(false, false);
        b.key(Key::Quit);
        assert!(b.quit, "outside a kiosk Quit quits");
    }

    #[test]
    fn losing_the_connection_keeps_the_place_and_says_so() {
        let mut a = logged_in();
        a.key(Key::Digit(6));
        a.event(AppEvent::Disconnected {
            reason: "the server closed the connection".into(),
            attempt: 2,
            retry_in: Duration::from_secs(4),
        });
        assert!(
            matches!(a.screen(), Screen::DistributionMode(_)),
            "the place is kept"
        );
        let s = screen(&mut a);
        assert!(s.contains("OFFLINE, retry in"), "{s}");
        assert!(s.contains("F5 now"), "the status line names the key: {s}");
        a.key(Key::RetryNow);
        assert!(
            matches!(a.take_jobs().as_slice(), [Job::RetryNow]),
            "F5 dials now"
        );
        assert!(screen(&mut a).contains("Dialling the image server now."));
        a.key(Key::Digit(1));
        assert!(
            matches!(a.take_jobs().as_slice(), [Job::RetryNow]),
            "asking for the server while offline dials it now"
        );
        assert!(screen(&mut a).contains("Not connected"));
        assert!(screen(&mut a).contains("trying again now"));
    }

    #[test]
    fn a_refused_relogin_ends_the_session() {
        let mut a = logged_in();
        a.key(Key::Digit(6));
        a.event(AppEvent::Job(JobResult::ReloginRefused));
        assert!(matches!(a.screen(), Screen::Login(_)));
        assert!(a.user.is_none());
        assert!(screen(&mut a).contains("Logged out: the server no longer accepts this user"));
    }

    #[test]
    fn the_carry_key_carries_a_sheet_and_says_what_was_carried() {
        let mut a = app(true, false);
        a.key(Key::Carry);
        assert!(matches!(the_job(&mut a), Job::CarryToAdf(_)));
        assert_eq!(a.busy.as_deref(), Some("carrying paper"));
        a.event(AppEvent::Job(JobResult::Noted(
            "carried marksheet-12345678.png from the output tray to the ADF".into(),
        )));
        assert!(a.busy.is_none());
        let s = screen(&mut a);
        assert!(
            s.lines()
                .last()
                .unwrap()
                .contains("carried marksheet-12345678.png from the output tray to the ADF"),
            "{s}"
        );
        assert!(
            s.contains("Enter your user ID and password"),
            "the dialog stays"
        );
    }

    #[test]
    fn a_mark_sheet_read_leads_where_the_image_was_wanted() {
        let mut a = logged_in();
        keys(&mut a, &[Key::Digit(6), Key::Digit(2), Key::Start]);
        assert!(matches!(the_job(&mut a), Job::ReadMarkSheet(ReadMarkSheet)));
        let id = ImageId::new(20_261_121).unwrap();
        a.event(AppEvent::Job(JobResult::ImageChosen(id)));
        assert!(matches!(
            the_job(&mut a),
            Job::FetchGroups(FetchGroups {
                purpose: GroupsFor::Distribute(ImageSource::Stored(i)),
            }) if i == id
        ));
        assert_eq!(a.busy.as_deref(), Some("asking for the groups"));
    }
}
