//! The panel's state: the stack of dialogs, the connection, the logged-in user, what was
//! received, and the jobs in flight. Input goes in through [`App::key`], [`App::click`] and
//! [`App::event`]; work that needs the network or the disk comes out as [`Job`]s, which the
//! runner executes and answers with [`AppEvent::Job`]. Nothing here blocks, so the whole
//! dialog logic is tested without a terminal or a server.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime};

use imagecast_shared::client::{Client, Event, Received};
use imagecast_shared::msg::{Destination, GroupEntry, Role, Welcome};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::chrome;
use super::jobs::{Job, JobResult, Purpose};
use super::keys::Key;
use super::screens::{self, Screen};
use super::theme::Theme;
use crate::store::ImageId;

/// Where the image of a distribution comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// Scan the ADF (Distribute document).
    Adf,
    /// A stored image (Distribute file).
    Stored(ImageId),
}

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
    /// Start background work.
    Run(Job),
    /// Leave the panel.
    Quit,
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
    /// In.
    Connected,
    /// Refused for good (bad token...): only a restart with other settings helps.
    Refused(String),
}

/// Events the runner feeds in.
#[derive(Debug)]
pub enum AppEvent {
    /// The connection is up.
    Connected(Client, Box<Welcome>),
    /// The connection is gone; the link retries after `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// Attempt number of the next try.
        attempt: u32,
        /// Delay before it.
        retry_in: Duration,
    },
    /// The server refused this terminal; the link gave up.
    Refused(String),
    /// A delivery was printed to the output tray.
    Received(Received),
    /// A server event (progress, results, notices).
    Server(Event),
    /// A job finished or reported progress.
    Job(JobResult),
}

/// A delivery shown in the received list.
#[derive(Clone, Debug)]
pub struct ReceivedEntry {
    /// The delivery.
    pub received: Received,
    /// When it was printed.
    pub at: SystemTime,
}

/// Read-only facts screens draw with.
pub struct Ctx<'a> {
    /// Styles.
    pub theme: Theme,
    /// Connection state.
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

/// The panel.
pub struct App {
    /// Static facts.
    pub info: PanelInfo,
    /// Styles.
    pub theme: Theme,
    /// The dialog stack; the last is shown.
    pub stack: Vec<Screen>,
    /// Connection state.
    pub conn: Conn,
    /// The connected client.
    pub client: Option<Client>,
    /// This terminal's destination name (from the server).
    pub device_name: String,
    /// The logged-in user, role, and password (kept to log in again after a reconnect).
    pub user: Option<(String, Role, String)>,
    /// Deliveries received.
    pub received: Vec<ReceivedEntry>,
    /// The label of the job in flight.
    pub busy: Option<String>,
    /// A short note in the status line, with when it appeared.
    pub note: Option<(String, Instant)>,
    /// Jobs waiting for the runner.
    jobs: Vec<Job>,
    /// True once the panel should close.
    pub quit: bool,
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
            client: None,
            device_name: info.device.clone(),
            info,
            theme,
            user: None,
            received: Vec::new(),
            busy: None,
            note: None,
            jobs: Vec::new(),
            quit: false,
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
        if key == Key::Stop {
            if let Some(label) = &self.busy {
                let label = label.clone();
                self.jobs.push(Job::Cancel);
                self.notify(format!("Stop: cancelling {label}"));
            }
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
                    Action::Run(Job::ListStored)
                } else {
                    Action::Push(Screen::Received(screens::received::ReceivedList::new()))
                };
                self.apply(action);
            }
            return;
        }
        let ctx = Ctx {
            theme: self.theme,
            conn: &self.conn,
            demo: self.info.demo,
            received: &self.received,
            hits: &self.hits,
        };
        let n = self.stack.len();
        let action = self.stack[n - 1].key(key, &ctx);
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
                if let Some(client) = self.client.clone() {
                    self.jobs.push(Job::Logout(client));
                }
                self.user = None;
                self.stack = vec![Screen::Login(screens::login::Login::new(
                    screens::login::LoginPurpose::Session,
                ))];
            }
            Action::Run(job) => self.run(job),
            Action::Quit => self.quit = true,
        }
    }

    fn home(&mut self) {
        if self.user.is_some() {
            self.stack = vec![Screen::ModeSelect(screens::mode_select::ModeSelect::new())];
        }
    }

    fn run(&mut self, job: Job) {
        if let Some(label) = &self.busy {
            let text = format!("busy with {label}; press Stop (x) to cancel it");
            self.notify(text);
            return;
        }
        if job.needs_connection() && self.conn != Conn::Connected {
            let text = match &self.conn {
                Conn::Refused(r) => format!("The image server refused this terminal: {r}"),
                _ => "Not connected to the image server; the panel keeps trying. Please try again in a moment.".to_owned(),
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
        if let Job::Distribute { .. } = &job {
            self.stack
                .push(Screen::Progress(screens::progress::Progress::new()));
        }
        self.jobs.push(job);
    }

    /// An event from the link or a job.
    pub fn event(&mut self, ev: AppEvent) {
        match ev {
            AppEvent::Connected(client, welcome) => {
                self.device_name = welcome.device_name.clone();
                self.client = Some(client.clone());
                self.conn = Conn::Connected;
                // Keep the operator's place: log the same user in again.
                if let Some((user, _, password)) = &self.user {
                    self.jobs.push(Job::Relogin {
                        client: Some(client),
                        user: user.clone(),
                        password: password.clone(),
                    });
                }
            }
            AppEvent::Disconnected {
                reason,
                attempt,
                retry_in,
            } => {
                self.client = None;
                self.conn = Conn::Connecting {
                    attempt,
                    retry_at: Some(Instant::now() + retry_in),
                    last_error: Some(reason),
                };
            }
            AppEvent::Refused(reason) => {
                self.client = None;
                self.conn = Conn::Refused(reason);
            }
            AppEvent::Received(r) => {
                if !r.duplicate {
                    self.notify(format!(
                        "Printed {} page file(s) from {}",
                        r.pages, r.sender.name
                    ));
                    self.received.push(ReceivedEntry {
                        received: r,
                        at: SystemTime::now(),
                    });
                }
            }
            AppEvent::Server(Event::Notice(text)) => self.notify(text),
            AppEvent::Server(event) => {
                for s in &mut self.stack {
                    if let Screen::Progress(p) = s {
                        p.server_event(&event);
                    }
                }
            }
            AppEvent::Job(result) => self.job_result(result),
        }
    }

    /// Periodic: expires notes.
    pub fn tick(&mut self) {
        if self
            .note
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(6))
        {
            self.note = None;
        }
    }

    fn job_result(&mut self, result: JobResult) {
        if result.is_final() {
            self.busy = None;
        }
        match result {
            JobResult::LoggedIn {
                user,
                role,
                password,
                quit,
            } => {
                if quit {
                    if role == Role::Admin {
                        self.quit = true;
                    } else if let Screen::Login(l) = self.screen_mut() {
                        l.error = Some("Only an administrator can close this kiosk.".into());
                    }
                    return;
                }
                self.user = Some((user, role, password));
                self.stack = vec![Screen::ModeSelect(screens::mode_select::ModeSelect::new())];
            }
            JobResult::Relogged(ok) => {
                if !ok {
                    self.user = None;
                    self.stack = vec![Screen::Login(screens::login::Login::new(
                        screens::login::LoginPurpose::Session,
                    ))];
                    self.notify("Logged out: the server no longer accepts this user");
                }
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
            JobResult::DistributionFailed(msg) => {
                if let Screen::Progress(p) = self.screen_mut() {
                    p.failed(msg);
                } else {
                    self.error_box("Distribution failed", msg);
                }
            }
            JobResult::ImageChosen { id, purpose } => match purpose {
                Purpose::Distribute => self.run(Job::FetchGroups {
                    client: None,
                    purpose: screens::GroupsFor::Distribute(ImageSource::Stored(id)),
                }),
                Purpose::TakeOut => self.run(Job::TakeOut(id)),
                Purpose::Process => self.run(Job::Process(id)),
            },
            JobResult::Done { title, lines } => {
                self.stack
                    .push(Screen::Message(screens::message::Message::info(
                        title, lines,
                    )));
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
            JobResult::Cancelled => self.notify("Stopped"),
        }
    }

    fn error_box(&mut self, title: impl Into<String>, message: impl Into<String>) {
        self.stack
            .push(Screen::Message(screens::message::Message::error(
                title, message,
            )));
    }

    fn groups_arrived(&mut self, purpose: screens::GroupsFor, groups: Vec<GroupEntry>) {
        let screen = match purpose {
            screens::GroupsFor::Distribute(source) => {
                Screen::Destinations(screens::destinations::Destinations::new(source, groups))
            }
            screens::GroupsFor::Register => {
                Screen::GroupSelect(screens::group_select::GroupSelect::new(
                    screens::group_select::Mode::Register,
                    groups,
                ))
            }
            screens::GroupsFor::Withdraw => {
                Screen::GroupSelect(screens::group_select::GroupSelect::new(
                    screens::group_select::Mode::Withdraw,
                    groups,
                ))
            }
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
        let ctx = Ctx {
            theme: self.theme,
            conn: &self.conn,
            demo: self.info.demo,
            received: &self.received,
            hits: &self.hits,
        };
        let n = self.stack.len();
        self.stack[n - 1].draw(f, areas.lcd, &ctx);
        chrome::draw_keypad(f, areas.keypad, &self.theme, &self.hits);
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
                    format!("OFFLINE, retry in {wait} s (#{attempt})")
                } else {
                    format!("connecting to {} (#{attempt})", self.info.server)
                }
            }
            Conn::Refused(_) => "REFUSED by the server".to_owned(),
        }
    }
}
