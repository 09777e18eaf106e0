//! Background work of the panel: everything that touches the network or the disk. The app
//! queues a [`Job`]; the runner executes it on the async runtime (disk work on the blocking
//! pool) and sends back [`JobResult`]s. Stop cancels the job in flight.

use std::path::PathBuf;
use std::sync::Arc;

use imagecast_shared::DistributionId;
use imagecast_shared::client::{Client, ClientError, DistributionRequest, OutgoingPage};
use imagecast_shared::msg::{
    Accepted, Destination, GroupEntry, RegisterOutcome, Role, WithdrawOutcome,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::app::{AppEvent, ImageSource};
use super::screens::GroupsFor;
use super::screens::preview::PreviewData;
use crate::paper::{Adf, OutputTray, RemovableMedia, Scan, decode_pages};
use crate::store::{ImageId, ImageStore, Listing};
use crate::{marksheet, paper};

/// What a stored image is wanted for (FIG. 11 leads to all three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Distribute file (FIG. 8).
    Distribute,
    /// Take out image (FIG. 7): print it.
    TakeOut,
    /// Process stored image (FIG. 7): copy it to removable media.
    Process,
}

/// The panel's emulated paper and memory.
#[derive(Clone, Debug)]
pub struct Paper {
    /// The input tray.
    pub adf: Adf,
    /// The output tray (received images are printed here too).
    pub tray: OutputTray,
    /// The removable-media folder.
    pub removable: RemovableMedia,
    /// The image store (memory means 128).
    pub store: ImageStore,
}

/// Work for the runner.
#[derive(Debug)]
pub enum Job {
    /// Log in (FIG. 6); `quit` when closing a kiosk.
    Login {
        /// The connection.
        client: Option<Client>,
        /// User ID.
        user: String,
        /// Password.
        password: String,
        /// Kiosk close: only an admin may.
        quit: bool,
    },
    /// Log the same user in again after a reconnect.
    Relogin {
        /// The connection.
        client: Option<Client>,
        /// User ID.
        user: String,
        /// Password.
        password: String,
    },
    /// Log out.
    Logout(Client),
    /// Fetch the group names.
    FetchGroups {
        /// The connection.
        client: Option<Client>,
        /// What for.
        purpose: GroupsFor,
    },
    /// Fetch every destination (FIG. 10).
    FetchDestinations {
        /// The connection.
        client: Option<Client>,
    },
    /// Scan (or take a stored image) and distribute it.
    Distribute {
        /// The connection.
        client: Option<Client>,
        /// The image.
        source: ImageSource,
        /// Group names.
        groups: Vec<String>,
        /// Individual destination domains.
        destinations: Vec<String>,
        /// Keep the scan in memory and print a mark sheet.
        keep: bool,
        /// Who is logged in.
        user: String,
    },
    /// Register with a group.
    Register {
        /// The connection.
        client: Option<Client>,
        /// Group name.
        group: String,
    },
    /// Withdraw from a group.
    Withdraw {
        /// The connection.
        client: Option<Client>,
        /// Group name.
        group: String,
    },
    /// Copy: scan the ADF and print it.
    Copy,
    /// Read a mark sheet from the ADF.
    ReadMarkSheet(Purpose),
    /// Use a stored image by ID.
    UseImage(ImageId, Purpose),
    /// Print a stored image.
    TakeOut(ImageId),
    /// Copy a stored image to removable media.
    Process(ImageId),
    /// List the image store.
    ListStored,
    /// Delete a stored image.
    DeleteStored(ImageId),
    /// Decode a stored image's pages for a preview.
    PreviewStored(ImageId),
    /// Decode pages for a preview.
    LoadPreview {
        /// Heading.
        title: String,
        /// The page files.
        files: Vec<PathBuf>,
    },
    /// Stop the job in flight.
    Cancel,
}

impl Job {
    /// True when the job needs the server.
    pub fn needs_connection(&self) -> bool {
        matches!(
            self,
            Job::Login { .. }
                | Job::FetchGroups { .. }
                | Job::FetchDestinations { .. }
                | Job::Distribute { .. }
                | Job::Register { .. }
                | Job::Withdraw { .. }
        )
    }

    /// True when the job occupies the panel (one at a time; Stop cancels it).
    pub fn is_long(&self) -> bool {
        !matches!(self, Job::Cancel | Job::Logout(_) | Job::Relogin { .. })
    }

    /// What the status line calls it.
    pub fn label(&self) -> &'static str {
        match self {
            Job::Login { .. } | Job::Relogin { .. } => "logging in",
            Job::Logout(_) => "logging out",
            Job::FetchGroups { .. } => "asking for the groups",
            Job::FetchDestinations { .. } => "asking for the destinations",
            Job::Distribute { .. } => "distributing",
            Job::Register { .. } => "registering",
            Job::Withdraw { .. } => "withdrawing",
            Job::Copy => "copying",
            Job::ReadMarkSheet(_) => "reading the mark sheet",
            Job::UseImage(..) => "finding the image",
            Job::TakeOut(_) => "printing",
            Job::Process(_) => "copying to removable media",
            Job::ListStored => "reading the image store",
            Job::DeleteStored(_) => "deleting",
            Job::LoadPreview { .. } | Job::PreviewStored(_) => "preparing the preview",
            Job::Cancel => "stopping",
        }
    }

    /// Fills in the connection and user of jobs that need them.
    pub fn with_context(mut self, current: Option<Client>, who: Option<&str>) -> Self {
        match &mut self {
            Job::Login { client, .. }
            | Job::Relogin { client, .. }
            | Job::FetchGroups { client, .. }
            | Job::FetchDestinations { client }
            | Job::Register { client, .. }
            | Job::Withdraw { client, .. }
                if client.is_none() =>
            {
                *client = current;
            }
            Job::Distribute { client, user, .. } => {
                if client.is_none() {
                    *client = current;
                }
                if user.is_empty() {
                    *user = who.unwrap_or_default().to_owned();
                }
            }
            _ => {}
        }
        self
    }
}

/// A job's answer.
#[derive(Debug)]
pub enum JobResult {
    /// Login succeeded.
    LoggedIn {
        /// User ID.
        user: String,
        /// Role.
        role: Role,
        /// Kept to log in again after a reconnect.
        password: String,
        /// It was a kiosk close.
        quit: bool,
    },
    /// A re-login after reconnect; false if refused.
    Relogged(bool),
    /// Login refused.
    LoginFailed(String),
    /// Groups arrived.
    Groups {
        /// What for.
        purpose: GroupsFor,
        /// The groups.
        groups: Vec<GroupEntry>,
    },
    /// Destinations arrived.
    Destinations(Vec<Destination>),
    /// The document was scanned (a progress step of Distribute).
    Scanned {
        /// Files taken.
        files: usize,
        /// Pages in them.
        pages: usize,
        /// Bytes.
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
    /// A stored image was identified.
    ImageChosen {
        /// The image.
        id: ImageId,
        /// What for.
        purpose: Purpose,
    },
    /// Done; show a message and stay.
    Done {
        /// Title.
        title: String,
        /// Lines.
        lines: Vec<String>,
    },
    /// Done; show a message over mode selection.
    DoneHome {
        /// Title.
        title: String,
        /// Lines.
        lines: Vec<String>,
    },
    /// Failed; show an error.
    Failed {
        /// Title.
        title: String,
        /// One sentence.
        message: String,
    },
    /// The image store's contents.
    Stored(Listing),
    /// Pages to preview.
    Preview(Box<PreviewData>),
    /// Stopped by the operator.
    Cancelled,
}

impl JobResult {
    /// True when this answer ends its job (progress steps do not).
    pub fn is_final(&self) -> bool {
        !matches!(self, JobResult::Scanned { .. } | JobResult::Relogged(_))
    }

    fn failed(title: &str, message: impl std::fmt::Display) -> Self {
        JobResult::Failed {
            title: title.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Runs jobs; one at a time may be cancelled with Stop.
pub struct JobRunner {
    paper: Arc<Paper>,
    tx: mpsc::UnboundedSender<AppEvent>,
    current: Option<CancellationToken>,
}

impl JobRunner {
    /// A runner that answers on `tx`.
    pub fn new(paper: Paper, tx: mpsc::UnboundedSender<AppEvent>) -> Self {
        Self {
            paper: Arc::new(paper),
            tx,
            current: None,
        }
    }

    /// Starts a job (or cancels the current one for [`Job::Cancel`]).
    pub fn spawn(&mut self, job: Job) {
        if let Job::Cancel = job {
            if let Some(t) = self.current.take() {
                t.cancel();
            }
            return;
        }
        let token = CancellationToken::new();
        if job.is_long() {
            self.current = Some(token.clone());
        }
        let paper = self.paper.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let send = |r: JobResult| {
                let _ = tx.send(AppEvent::Job(r));
            };
            tokio::select! {
                _ = token.cancelled() => send(JobResult::Cancelled),
                _ = execute(job, &paper, &send) => {}
            }
        });
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: {e}"))
}

fn client_of(c: Option<Client>) -> Result<Client, String> {
    c.ok_or_else(|| "not connected to the image server".to_owned())
}

async fn execute(job: Job, paper: &Paper, send: &(impl Fn(JobResult) + Sync)) {
    let r = run(job, paper, send).await;
    if let Some(r) = r {
        send(r);
    }
}

async fn run(job: Job, paper: &Paper, send: &(impl Fn(JobResult) + Sync)) -> Option<JobResult> {
    Some(match job {
        Job::Cancel => return None,
        Job::Login {
            client,
            user,
            password,
            quit,
        } => {
            let client = match client_of(client) {
                Ok(c) => c,
                Err(e) => return Some(JobResult::LoginFailed(e)),
            };
            match client.login(&user, &password).await {
                Ok(role) => JobResult::LoggedIn {
                    user,
                    role,
                    password,
                    quit,
                },
                Err(e) => JobResult::LoginFailed(sentence(&e)),
            }
        }
        Job::Relogin {
            client,
            user,
            password,
        } => {
            let Ok(client) = client_of(client) else {
                return None;
            };
            match client.login(&user, &password).await {
                Ok(_) => JobResult::Relogged(true),
                Err(ClientError::Server(_)) => JobResult::Relogged(false),
                Err(_) => return None,
            }
        }
        Job::Logout(client) => {
            let _ = client.logout().await;
            return None;
        }
        Job::FetchGroups { client, purpose } => {
            let for_registration = !matches!(purpose, GroupsFor::Distribute(_));
            match async {
                client_of(client)?
                    .groups(for_registration)
                    .await
                    .map_err(|e| sentence(&e))
            }
            .await
            {
                Ok(groups) => JobResult::Groups { purpose, groups },
                Err(e) => JobResult::failed("Cannot get the destination groups", e),
            }
        }
        Job::FetchDestinations { client } => {
            match async {
                client_of(client)?
                    .destinations()
                    .await
                    .map_err(|e| sentence(&e))
            }
            .await
            {
                Ok(list) => JobResult::Destinations(list),
                Err(e) => JobResult::failed("Cannot get the destinations", e),
            }
        }
        Job::Distribute {
            client,
            source,
            groups,
            destinations,
            keep,
            user,
        } => match distribute(
            client,
            source,
            groups,
            destinations,
            keep,
            user,
            paper,
            send,
        )
        .await
        {
            Ok(accepted) => JobResult::Accepted(accepted),
            Err(e) => JobResult::DistributionFailed(e),
        },
        Job::Register { client, group } => {
            let r = async {
                client_of(client)?
                    .register(&group)
                    .await
                    .map_err(|e| sentence(&e))
            };
            match r.await {
                Ok(RegisterOutcome::Added) => {
                    membership("Registered", "is now a member of", &group, "")
                }
                Ok(RegisterOutcome::AlreadyMember) => membership(
                    "Already registered",
                    "was already a member of",
                    &group,
                    "; nothing changed",
                ),
                Err(e) => JobResult::failed("Registration refused", e),
            }
        }
        Job::Withdraw { client, group } => {
            let r = async {
                client_of(client)?
                    .withdraw(&group)
                    .await
                    .map_err(|e| sentence(&e))
            };
            match r.await {
                Ok(WithdrawOutcome::Removed) => {
                    membership("Withdrawn", "is no longer a member of", &group, "")
                }
                Ok(WithdrawOutcome::NotMember) => membership(
                    "Not a member",
                    "was not a member of",
                    &group,
                    "; nothing changed",
                ),
                Err(e) => JobResult::failed("Withdrawal refused", e),
            }
        }
        Job::Copy => {
            let adf = paper.adf.clone();
            let tray = paper.tray.clone();
            let r = blocking(move || -> Result<(Scan, usize), String> {
                let scan = scan_adf(&adf)?;
                for f in &scan.pages {
                    tray.print(&f.name, &f.bytes).map_err(|e| e.to_string())?;
                }
                adf.take(&scan).map_err(|e| e.to_string())?;
                let pages = scan.total_pages();
                Ok((scan, pages))
            })
            .await
            .and_then(|r| r);
            match r {
                Ok((scan, pages)) => {
                    let mut lines = vec![format!(
                        "{} document(s), {pages} page(s) printed to the output tray {}.",
                        scan.pages.len(),
                        paper.tray.dir().display()
                    )];
                    lines.extend(refusals(&scan));
                    JobResult::DoneHome {
                        title: "Copy finished".into(),
                        lines,
                    }
                }
                Err(e) => JobResult::failed("Copy failed", e),
            }
        }
        Job::ReadMarkSheet(purpose) => {
            let adf = paper.adf.clone();
            let store = paper.store.clone();
            let r = blocking(move || -> Result<ImageId, String> {
                let docs = adf.documents().map_err(|e| e.to_string())?;
                let Some(first) = docs.first() else {
                    return Err(format!(
                        "Place the mark sheet in the ADF ({}) and press Start.",
                        adf.dir().display()
                    ));
                };
                let id = marksheet::decode_file(first)
                    .map_err(|e| format!("{}: {e}", file_name(first)))?;
                store.get(id).map_err(|e| e.to_string())?;
                // The sheet leaves the feeder.
                std::fs::remove_file(first).map_err(|e| format!("{}: {e}", first.display()))?;
                Ok(id)
            })
            .await
            .and_then(|r| r);
            match r {
                Ok(id) => JobResult::ImageChosen { id, purpose },
                Err(e) => JobResult::failed("Mark sheet not read", e),
            }
        }
        Job::UseImage(id, purpose) => {
            let store = paper.store.clone();
            match blocking(move || store.get(id).map(|_| ()).map_err(|e| e.to_string()))
                .await
                .and_then(|r| r)
            {
                Ok(()) => JobResult::ImageChosen { id, purpose },
                Err(e) => JobResult::failed("No such image", e),
            }
        }
        Job::TakeOut(id) => copy_stored(paper, id, true).await,
        Job::Process(id) => copy_stored(paper, id, false).await,
        Job::ListStored => {
            let store = paper.store.clone();
            match blocking(move || store.list().map_err(|e| e.to_string()))
                .await
                .and_then(|r| r)
            {
                Ok(listing) => JobResult::Stored(listing),
                Err(e) => JobResult::failed("Cannot read the image store", e),
            }
        }
        Job::DeleteStored(id) => {
            let store = paper.store.clone();
            match blocking(move || -> Result<Listing, String> {
                store.delete(id).map_err(|e| e.to_string())?;
                store.list().map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r)
            {
                Ok(listing) => JobResult::Stored(listing),
                Err(e) => JobResult::failed("Cannot delete the image", e),
            }
        }
        Job::PreviewStored(id) => {
            let store = paper.store.clone();
            let files = blocking(move || -> Result<Vec<PathBuf>, String> {
                let image = store.get(id).map_err(|e| e.to_string())?;
                Ok(image.files.into_iter().map(|f| f.path).collect())
            })
            .await
            .and_then(|r| r);
            match files {
                Ok(files) => {
                    return Box::pin(run(
                        Job::LoadPreview {
                            title: format!("Image {id}"),
                            files,
                        },
                        paper,
                        send,
                    ))
                    .await;
                }
                Err(e) => JobResult::failed("Cannot show the image", e),
            }
        }
        Job::LoadPreview { title, files } => {
            match blocking(move || -> Result<PreviewData, String> {
                let mut pages = Vec::new();
                for f in &files {
                    let decoded = decode_pages(f).map_err(|e| e.to_string())?;
                    for (i, img) in decoded.into_iter().enumerate() {
                        pages.push((format!("{} p.{}", file_name(f), i + 1), img));
                        if pages.len() >= 50 {
                            break;
                        }
                    }
                }
                Ok(PreviewData { title, pages })
            })
            .await
            .and_then(|r| r)
            {
                Ok(p) => JobResult::Preview(Box::new(p)),
                Err(e) => JobResult::failed("Cannot show the image", e),
            }
        }
    })
}

/// The message after a registration or withdrawal: the group on its own line, so a long
/// group name is not cut.
fn membership(title: &str, verb: &str, group: &str, tail: &str) -> JobResult {
    JobResult::DoneHome {
        title: title.to_owned(),
        lines: vec![
            format!("This terminal {verb}"),
            format!("\"{group}\"{tail}."),
        ],
    }
}

/// One plain sentence for an error from the client.
fn sentence(e: &ClientError) -> String {
    e.to_string()
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn refusals(scan: &Scan) -> Vec<String> {
    scan.refused
        .iter()
        .map(|(p, why)| format!("Refused {}: {why}", file_name(p)))
        .collect()
}

/// Scans the ADF; an empty feeder, or one where every file was refused, is an error.
fn scan_adf(adf: &Adf) -> Result<Scan, String> {
    let scan = adf.scan().map_err(|e| e.to_string())?;
    if scan.pages.is_empty() {
        let mut msg = format!("No readable document in the ADF ({}).", adf.dir().display());
        for r in refusals(&scan) {
            msg.push(' ');
            msg.push_str(&r);
            msg.push('.');
        }
        return Err(msg);
    }
    Ok(scan)
}

async fn copy_stored(paper: &Paper, id: ImageId, to_tray: bool) -> JobResult {
    let store = paper.store.clone();
    let folder: OutputTray = if to_tray {
        paper.tray.clone()
    } else {
        paper.removable.clone()
    };
    let dir = folder.dir().to_owned();
    let r = blocking(move || -> Result<(usize, usize), String> {
        let image = store.get(id).map_err(|e| e.to_string())?;
        let files = image.read_files().map_err(|e| e.to_string())?;
        for (name, bytes) in &files {
            folder.print(name, bytes).map_err(|e| e.to_string())?;
        }
        Ok((files.len(), image.attributes.pages))
    })
    .await
    .and_then(|r| r);
    match (r, to_tray) {
        (Ok((files, pages)), true) => JobResult::DoneHome {
            title: "Printed".into(),
            lines: vec![format!(
                "Image {id}: {files} file(s), {pages} page(s) printed to the output tray {}.",
                dir.display()
            )],
        },
        (Ok((files, pages)), false) => JobResult::DoneHome {
            title: "Copied".into(),
            lines: vec![format!(
                "Image {id}: {files} file(s), {pages} page(s) copied to the removable media {}.",
                dir.display()
            )],
        },
        (Err(e), true) => JobResult::failed("Cannot print the image", e),
        (Err(e), false) => JobResult::failed("Cannot copy the image", e),
    }
}

#[allow(clippy::too_many_arguments)]
async fn distribute(
    client: Option<Client>,
    source: ImageSource,
    groups: Vec<String>,
    destinations: Vec<String>,
    keep: bool,
    user: String,
    paper: &Paper,
    send: &(impl Fn(JobResult) + Sync),
) -> Result<Accepted, String> {
    let client = client_of(client)?;
    let (files, scan): (Vec<(String, Vec<u8>)>, Option<Scan>) = match &source {
        ImageSource::Adf => {
            let adf = paper.adf.clone();
            let store = paper.store.clone();
            let tray = paper.tray.clone();
            let who = user.clone();
            let (scan, kept) = blocking(move || -> Result<(Scan, Option<ImageId>), String> {
                let scan = scan_adf(&adf)?;
                let kept = if keep {
                    let id = store
                        .keep(&scan.pages, scan.total_pages(), &who)
                        .map_err(|e| e.to_string())?;
                    let first = paper::pages::first_page_from_bytes(&scan.pages[0].bytes)
                        .map_err(|e| format!("{}: {e}", scan.pages[0].name))?;
                    let sheet = marksheet::print_sheet(id, &first);
                    tray.print_image(
                        &marksheet::sheet_name(id),
                        &image::DynamicImage::ImageRgb8(sheet),
                    )
                    .map_err(|e| e.to_string())?;
                    Some(id)
                } else {
                    None
                };
                Ok((scan, kept))
            })
            .await??;
            send(JobResult::Scanned {
                files: scan.pages.len(),
                pages: scan.total_pages(),
                bytes: scan.total_bytes(),
                refused: refusals(&scan),
                kept,
            });
            let files = scan
                .pages
                .iter()
                .map(|f| (f.name.clone(), f.bytes.clone()))
                .collect();
            (files, Some(scan))
        }
        ImageSource::Stored(id) => {
            let store = paper.store.clone();
            let id = *id;
            let (files, pages) = blocking(move || -> Result<_, String> {
                let image = store.get(id).map_err(|e| e.to_string())?;
                Ok((
                    image.read_files().map_err(|e| e.to_string())?,
                    image.attributes.pages,
                ))
            })
            .await??;
            send(JobResult::Scanned {
                files: files.len(),
                pages,
                bytes: files.iter().map(|(_, b)| b.len() as u64).sum(),
                refused: Vec::new(),
                kept: Some(id),
            });
            (files, None)
        }
    };
    let req = DistributionRequest {
        dist: DistributionId::new_random(),
        groups,
        destinations,
        pages: files
            .into_iter()
            .map(|(name, bytes)| OutgoingPage::from_bytes(&name, bytes))
            .collect(),
    };
    let accepted = client.distribute(&req).await.map_err(|e| sentence(&e))?;
    // FIG. 3 S35: the document leaves the feeder once the server has it.
    if let Some(scan) = scan {
        let adf = paper.adf.clone();
        blocking(move || adf.take(&scan).map_err(|e| e.to_string())).await??;
    }
    Ok(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::{App, PanelInfo};
    use crate::panel::screens::Screen;
    use crate::panel::theme::Theme;

    #[tokio::test]
    async fn an_oversized_mark_sheet_is_refused_in_a_dialog() {
        let dir = tempfile::tempdir().unwrap();
        let paper = Paper {
            adf: Adf::new(dir.path().join("adf")),
            tray: OutputTray::new(dir.path().join("tray")),
            removable: OutputTray::new(dir.path().join("removable")),
            store: ImageStore::open(dir.path().join("store")).unwrap(),
        };
        std::fs::create_dir_all(dir.path().join("adf")).unwrap();
        let sheet = dir.path().join("adf").join("sheet.png");
        std::fs::write(&sheet, marksheet::white_png::white_png(20_000, 20_000)).unwrap();
        let result = run(Job::ReadMarkSheet(Purpose::Distribute), &paper, &|_| {})
            .await
            .unwrap();
        let mut app = App::new(
            PanelInfo {
                server: "127.0.0.1:7410".into(),
                device: "sale1.hqs.mei.co.jp".into(),
                demo: false,
                kiosk: true,
            },
            Theme::plain(),
        );
        app.event(AppEvent::Job(result));
        match app.screen() {
            Screen::Message(m) => {
                assert!(m.error);
                assert_eq!(m.title, "Mark sheet not read");
                assert!(
                    m.lines[0].starts_with("sheet.png: the scan is 20000x20000 pixels"),
                    "{:?}",
                    m.lines
                );
                assert!(
                    m.lines[0].contains("at most 40 megapixels"),
                    "{:?}",
                    m.lines
                );
            }
            _ => panic!("no error dialog"),
        }
        assert!(sheet.exists(), "a refused sheet stays in the feeder");
    }
}
