//! Running the panel: in a real terminal (crossterm; restored on exit and on panic), or
//! headless in an in-memory terminal for scripts, CI and kiosks without a TTY.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use imagecast_shared::client::ClientConfig;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use unicode_width::UnicodeWidthStr;

use super::app::{App, AppEvent, Conn, PanelInfo};
use super::jobs::paper::carry;
use super::jobs::{JobRunner, Paper};
use super::keys::Key;
use super::link;
use super::record::Recorder;
use super::script::{Script, Step};
use super::theme::Theme;
use crate::paper::{Adf, OutputTray};
use crate::store::ImageStore;

/// The panel's folders: paper emulated, and its memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanelDirs {
    /// The ADF / input tray: place image files here.
    pub adf: PathBuf,
    /// The output tray: copies, printed stored images and received images land here.
    pub output_tray: PathBuf,
    /// The removable-media folder (Process stored image).
    pub removable: PathBuf,
    /// The image store.
    pub store: PathBuf,
    /// Logs and state.
    pub state: PathBuf,
}

impl PanelDirs {
    /// The standard folders under `root`.
    pub fn under(root: &Path) -> Self {
        Self {
            adf: root.join("adf"),
            output_tray: root.join("output-tray"),
            removable: root.join("removable-media"),
            store: root.join("image-store"),
            state: root.join("state"),
        }
    }

    /// Every folder.
    pub fn all(&self) -> [&Path; 5] {
        [
            &self.adf,
            &self.output_tray,
            &self.removable,
            &self.store,
            &self.state,
        ]
    }

    /// Creates every folder.
    pub fn create(&self) -> anyhow::Result<()> {
        for d in self.all() {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(())
    }
}

/// How to run the panel.
pub struct PanelOptions {
    /// Connection settings (the panel connects as a receiving terminal).
    pub client: ClientConfig,
    /// Where the panel's paper and memory live.
    pub dirs: PanelDirs,
    /// Demo mode (FIG. 6 shows the demo login).
    pub demo: bool,
    /// Kiosk mode: quitting needs an administrator.
    pub kiosk: bool,
    /// A walkthrough to replay.
    pub script: Option<Script>,
    /// Draw into memory and print screens as text.
    pub headless: bool,
    /// Terminal size when headless.
    pub size: (u16, u16),
    /// Headless: also write the screens as an asciicast v2 recording here.
    pub record: Option<PathBuf>,
    /// The colours, or none under `NO_COLOR`.
    pub theme: Theme,
}

/// The app with its connection and job runner.
struct Core {
    app: App,
    jobs: JobRunner,
    rx: mpsc::UnboundedReceiver<AppEvent>,
    cancel: CancellationToken,
}

impl Core {
    /// Hands a scripted key or touch to the app; false when the script asked for something
    /// else, which the caller handles.
    fn feed(&mut self, poll: &Poll) -> bool {
        match *poll {
            Poll::Key(k) => self.app.key(k),
            Poll::Click(x, y) => self.app.click(x, y),
            _ => return false,
        }
        true
    }

    fn start(opts: &PanelOptions) -> anyhow::Result<Core> {
        opts.dirs.create()?;
        let store = ImageStore::open(&opts.dirs.store).with_context(|| {
            format!("cannot open the image store {}", opts.dirs.store.display())
        })?;
        let paper = Paper {
            adf: Adf::new(&opts.dirs.adf),
            tray: OutputTray::new(&opts.dirs.output_tray),
            removable: OutputTray::new(&opts.dirs.removable),
            store,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let mut cfg = opts.client.clone();
        cfg.receive = true;
        let retry = std::sync::Arc::new(tokio::sync::Notify::new());
        tokio::spawn(link::run(
            cfg.clone(),
            opts.dirs.output_tray.clone(),
            tx.clone(),
            cancel.clone(),
            retry.clone(),
        ));
        let mut app = App::new(
            PanelInfo {
                server: cfg.server.clone(),
                device: cfg.device.clone(),
                demo: opts.demo,
                kiosk: opts.kiosk,
            },
            opts.theme,
        );
        app.received = super::app::received_before(&opts.dirs.output_tray);
        let mut jobs = JobRunner::new(paper, move |r| {
            let _ = tx.send(AppEvent::Job(r));
        });
        jobs.retry = Some(retry);
        Ok(Core {
            app,
            jobs,
            rx,
            cancel,
        })
    }

    fn spawn_jobs(&mut self) {
        for job in self.app.take_jobs() {
            self.jobs.spawn(job);
        }
    }

    /// An event from the link or a job: the job runner follows the connection, the app the
    /// rest.
    fn event(&mut self, ev: AppEvent) {
        match &ev {
            AppEvent::Connected(client, _) => self.jobs.connected(client.clone()),
            AppEvent::Disconnected { .. } | AppEvent::Refused(_) => self.jobs.disconnected(),
            _ => {}
        }
        self.app.event(ev);
    }

    fn idle(&self) -> bool {
        self.app.busy.is_none()
    }

    fn ready(&self) -> bool {
        !matches!(self.app.conn, Conn::Connecting { .. })
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The text of a drawn screen, one line per row, trailing blanks trimmed. A wide character
/// (CJK) covers two cells: the one it hides is left out, so the text reads as on a terminal.
pub fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut x = 0;
        while x < buf.area.width {
            let symbol = buf[(buf.area.x + x, buf.area.y + y)].symbol();
            line.push_str(symbol);
            x += u16::try_from(symbol.width()).unwrap_or(1).max(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// What the script wants next.
enum Poll {
    Idle,
    Key(Key),
    Click(u16, u16),
    Resize(u16, u16),
    Print(String),
    MoveToAdf(String),
    Done,
    Fail(String),
}

/// How long a script waits for the first connection before it starts anyway.
const CONNECT_GRACE: Duration = Duration::from_secs(10);

struct Driver {
    script: Script,
    started: Instant,
    pos: usize,
    keys: VecDeque<Key>,
    deadline: Option<Instant>,
    settle: Option<Instant>,
    printed: String,
}

impl Driver {
    fn new(script: Script) -> Self {
        Self {
            script,
            started: Instant::now(),
            pos: 0,
            keys: VecDeque::new(),
            deadline: None,
            settle: None,
            printed: String::new(),
        }
    }

    fn advance(&mut self, screen: &str) -> Poll {
        let line = self.script.steps.get(self.pos).map_or(0, |s| s.0);
        self.pos += 1;
        self.deadline = None;
        if screen != self.printed {
            self.printed = screen.to_owned();
            return Poll::Print(format!("after line {line}"));
        }
        Poll::Idle
    }

    /// The next thing to do. A script starts once the panel has connected (or was refused,
    /// or after [`CONNECT_GRACE`]), so its first keys do not race the connection.
    fn poll(&mut self, screen: &str, idle: bool, ready: bool) -> Poll {
        let now = Instant::now();
        if self.pos == 0 && !ready && now.duration_since(self.started) < CONNECT_GRACE {
            return Poll::Idle;
        }
        // Let the panel settle after keys: no job in flight, and a moment for events.
        if let Some(t) = self.settle {
            if now < t || !idle {
                return Poll::Idle;
            }
            self.settle = None;
            if self.keys.is_empty() {
                return self.advance(screen);
            }
        }
        if let Some(k) = self.keys.pop_front() {
            self.settle = Some(now + Duration::from_millis(40));
            return Poll::Key(k);
        }
        let Some((line, step)) = self.script.steps.get(self.pos).cloned() else {
            return Poll::Done;
        };
        match step {
            Step::Keys(keys) => {
                self.keys = keys.into();
                self.poll(screen, idle, true)
            }
            Step::Wait(d) => match self.deadline {
                None => {
                    self.deadline = Some(now + d);
                    Poll::Idle
                }
                Some(t) if now >= t => self.advance(screen),
                Some(_) => Poll::Idle,
            },
            Step::Expect {
                text,
                within,
                absent,
            } => {
                let found = screen.contains(&text);
                if absent {
                    return if found {
                        Poll::Fail(format!(
                            "script line {line}: {text:?} is on the screen but should not be"
                        ))
                    } else {
                        self.advance(screen)
                    };
                }
                if found {
                    return self.advance(screen);
                }
                let deadline = *self.deadline.get_or_insert(now + within);
                if now >= deadline {
                    Poll::Fail(format!(
                        "script line {line}: {text:?} did not appear within {} s",
                        within.as_secs_f64()
                    ))
                } else {
                    Poll::Idle
                }
            }
            Step::Click(x, y) => {
                self.pos += 1;
                self.settle = Some(now + Duration::from_millis(40));
                self.pos -= 1;
                self.keys.clear();
                self.pos += 1;
                Poll::Click(x, y)
            }
            Step::Resize(w, h) => {
                self.pos += 1;
                Poll::Resize(w, h)
            }
            Step::Screen => {
                self.pos += 1;
                self.printed = screen.to_owned();
                Poll::Print(format!("screen at line {line}"))
            }
            Step::MoveToAdf(prefix) => {
                self.pos += 1;
                Poll::MoveToAdf(prefix)
            }
        }
    }
}

/// Moves the newest output-tray file named `prefix…` into the ADF; returns its new path.
fn move_to_adf(dirs: &PanelDirs, prefix: &str) -> anyhow::Result<PathBuf> {
    let tray = OutputTray::new(&dirs.output_tray);
    match carry(&tray, &Adf::new(&dirs.adf), prefix)? {
        Some(carried) => Ok(carried.to),
        None => bail!(
            "no file starting with {prefix:?} in the output tray {}",
            dirs.output_tray.display()
        ),
    }
}

/// Runs the panel until it quits (or its script ends).
pub async fn run(opts: PanelOptions) -> anyhow::Result<()> {
    if opts.headless {
        // Not locked for the whole run: the demo's fax gateways (the faxgw library) print a
        // line to stdout now and then, and would wait for the lock forever.
        let mut out = std::io::stdout();
        run_headless(opts, &mut out).await.map(|_| ())
    } else {
        run_terminal(opts).await
    }
}

/// Runs headless, printing screens to `out`; returns the last screen's text.
pub async fn run_headless(opts: PanelOptions, out: &mut dyn Write) -> anyhow::Result<String> {
    let Some(script) = opts.script.clone() else {
        bail!("--headless needs --script FILE: there is no keyboard to read from");
    };
    let mut core = Core::start(&opts)?;
    let mut terminal = Terminal::new(TestBackend::new(opts.size.0, opts.size.1))?;
    let mut driver = Driver::new(script);
    let mut recorder = match &opts.record {
        Some(path) => Some(Recorder::create(
            path,
            opts.size.0,
            opts.size.1,
            "imagecast panel walkthrough",
        )?),
        None => None,
    };
    let result = drive(
        &opts,
        &mut core,
        &mut terminal,
        &mut driver,
        &mut recorder,
        out,
    )
    .await;
    if let Some(r) = recorder {
        r.finish()?;
    }
    result
}

/// The headless loop of [`run_headless`].
async fn drive(
    opts: &PanelOptions,
    core: &mut Core,
    terminal: &mut Terminal<TestBackend>,
    driver: &mut Driver,
    recorder: &mut Option<Recorder>,
    out: &mut dyn Write,
) -> anyhow::Result<String> {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        core.spawn_jobs();
        let drawn = terminal.draw(|f| core.app.draw(f))?;
        if let Some(r) = recorder.as_mut() {
            r.frame(drawn.buffer)?;
        }
        let screen = buffer_text(drawn.buffer);
        let poll = driver.poll(&screen, core.idle(), core.ready());
        if core.feed(&poll) {
            if let Some(r) = recorder.as_mut() {
                r.key();
            }
            continue;
        }
        match poll {
            Poll::Idle | Poll::Key(_) | Poll::Click(..) => {}
            Poll::Resize(w, h) => {
                terminal.backend_mut().resize(w, h);
                terminal.resize(ratatui::layout::Rect::new(0, 0, w, h))?;
                continue;
            }
            Poll::Print(label) => {
                out.write_all(format!("─── {label} ───\n{screen}").as_bytes())?;
                continue;
            }
            Poll::MoveToAdf(prefix) => {
                let moved = move_to_adf(&opts.dirs, &prefix)?;
                writeln!(out, "─── moved {} to the ADF ───", moved.display())?;
                continue;
            }
            Poll::Done => return Ok(screen),
            Poll::Fail(msg) => {
                writeln!(out, "─── failed ───")?;
                write!(out, "{screen}")?;
                bail!("{msg}");
            }
        }
        if core.app.quit {
            return Ok(screen);
        }
        tokio::select! {
            Some(ev) = core.rx.recv() => core.event(ev),
            _ = tick.tick() => {
                core.app.tick();
                if core.app.repaint_due() {
                    terminal.clear()?;
                }
            }
        }
    }
}

/// Restores the terminal when dropped (also on early returns).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::event::DisableMouseCapture,
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal on a panic in the panel's own thread. Panics on other threads (a
/// decoder that panics inside `catch_unwind`, say) leave the screen alone and go to the log.
fn install_panic_hook() {
    let ui = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui {
            restore_terminal();
            previous(info);
        } else {
            tracing::error!("panic in a worker thread: {info}");
        }
    }));
}

async fn run_terminal(opts: PanelOptions) -> anyhow::Result<()> {
    use crossterm::event::{Event as TermEvent, EventStream, MouseButton, MouseEventKind};
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!("the panel needs a terminal; use --headless --script FILE without one");
    }
    let mut core = Core::start(&opts)?;
    install_panic_hook();
    crossterm::terminal::enable_raw_mode().context("cannot switch the terminal to raw mode")?;
    let _guard = TerminalGuard;
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::event::EnableMouseCapture
    )?;
    let mut terminal = Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let mut hangup = Hangup::new()?;
    let mut events = EventStream::new();
    let mut driver = opts.script.clone().map(Driver::new);
    let mut tick = tokio::time::interval(Duration::from_millis(if driver.is_some() {
        20
    } else {
        250
    }));
    loop {
        core.spawn_jobs();
        let screen = buffer_text(terminal.draw(|f| core.app.draw(f))?.buffer);
        if let Some(d) = driver.as_mut() {
            let poll = d.poll(&screen, core.idle(), core.ready());
            if core.feed(&poll) {
                continue;
            }
            match poll {
                Poll::Done => break,
                Poll::Fail(msg) => {
                    drop(terminal);
                    restore_terminal();
                    bail!("{msg}");
                }
                Poll::MoveToAdf(prefix) => {
                    move_to_adf(&opts.dirs, &prefix)?;
                    continue;
                }
                Poll::Idle | Poll::Key(_) | Poll::Click(..) | Poll::Resize(..) | Poll::Print(_) => {
                }
            }
        }
        if core.app.quit {
            break;
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(TermEvent::Key(k))) => {
                    if let Some(key) = Key::from_event(&k) {
                        core.app.key(key);
                    }
                }
                Some(Ok(TermEvent::Mouse(m))) => {
                    if let MouseEventKind::Down(MouseButton::Left) = m.kind {
                        core.app.click(m.column, m.row);
                    }
                }
                Some(Ok(TermEvent::Resize(_, _))) => {
                    terminal.autoresize()?;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("cannot read the terminal"),
                None => break,
            },
            Some(ev) = core.rx.recv() => core.event(ev),
            why = hangup.recv() => {
                tracing::warn!("closing the panel: {why}");
                break;
            }
            // A terminal gone without a SIGHUP (the panel in a session of its own) ends
            // the panel too: the next draw fails on it.
            _ = tick.tick() => core.app.tick(),
        }
    }
    Ok(())
}

/// SIGHUP (the terminal or the SSH connection went away) and SIGTERM end the panel, even in
/// kiosk mode, as a clean exit: the terminal restored (after SIGTERM it is still there) and
/// the reason in the log.
struct Hangup {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Hangup {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            hup: signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?,
            term: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
        })
    }

    /// Waits for either signal; says which.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.hup.recv() => "the terminal hung up (SIGHUP)",
            _ = self.term.recv() => "asked to stop (SIGTERM)",
        }
    }
}
