//! Jobs that ask the image server: log in, fetch groups and destinations, distribute,
//! register, withdraw. Each needs the connection; the runner supplies it, and the logged-in
//! user, through the [`Context`].

use imagecast_shared::DistributionId;
use imagecast_shared::client::{DistributionRequest, OutgoingPage};
use imagecast_shared::msg::{RegisterOutcome, WithdrawOutcome};

use super::{Context, JobError, JobResult, Task, paper, stored};
use crate::store::ImageId;

/// FIG. 6: log in with the typed user ID and password.
#[derive(Debug)]
pub struct Login {
    /// The typed user ID.
    pub user: String,
    /// The typed password.
    pub password: String,
    /// Closing a kiosk: the login only proves an administrator is there, and the session's
    /// user stays who it was.
    pub quit: bool,
}

impl Task for Login {
    const LABEL: &'static str = "logging in";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Login refused";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let role = cx.client()?.login(&self.user, &self.password).await?;
        if !self.quit {
            cx.logged_in(&self.user, &self.password);
        }
        Ok(JobResult::LoggedIn {
            user: self.user,
            role,
            quit: self.quit,
        })
    }

    /// A refusal stays on FIG. 6, under the boxes.
    fn failed(e: JobError) -> JobResult {
        JobResult::LoginFailed(e.to_string())
    }
}

/// What a group list is fetched for: it decides the dialog that shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupsFor {
    /// FIG. 9, for a distribution of this image.
    Distribute(ImageSource),
    /// FIG. 12, registration.
    Register,
    /// FIG. 12, withdrawal.
    Withdraw,
}

/// Where the image of a distribution comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// Scan the ADF (Distribute document).
    Adf,
    /// A stored image (Distribute file).
    Stored(ImageId),
}

/// Fetch the group names (FIG. 9 lists them all, FIG. 12 without "all"; for a withdrawal only
/// those this terminal is a member of).
#[derive(Debug)]
pub struct FetchGroups {
    /// The dialog they are for.
    pub purpose: GroupsFor,
}

impl Task for FetchGroups {
    const LABEL: &'static str = "asking for the groups";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Cannot get the destination groups";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let for_registration = !matches!(self.purpose, GroupsFor::Distribute(_));
        let client = cx.client()?;
        let mut groups = client.groups(for_registration).await?;
        if self.purpose == GroupsFor::Withdraw {
            // Only the groups this terminal is in, as the server's group files say now.
            let joined = client.memberships().await?;
            groups.retain(|g| joined.contains(&g.name));
        }
        Ok(JobResult::Groups {
            purpose: self.purpose,
            groups,
        })
    }
}

/// Fetch every destination of all.rec (FIG. 10).
#[derive(Debug)]
pub struct FetchDestinations;

impl Task for FetchDestinations {
    const LABEL: &'static str = "asking for the destinations";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Cannot get the destinations";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        Ok(JobResult::Destinations(cx.client()?.destinations().await?))
    }
}

/// Scan the ADF (or take a stored image) and distribute it (FIG. 3).
#[derive(Debug)]
pub struct Distribute {
    /// Where the image comes from.
    pub source: ImageSource,
    /// The group names ticked on FIG. 9.
    pub groups: Vec<String>,
    /// The domains ticked on FIG. 10.
    pub destinations: Vec<String>,
    /// Keep the scan in memory and print its mark sheet (FIG. 9's `*`).
    pub keep: bool,
}

impl Task for Distribute {
    const LABEL: &'static str = "distributing";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Distribution failed";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let client = cx.client()?;
        let (pages, scan) = match self.source {
            ImageSource::Adf => {
                let keeper = if self.keep {
                    Some(cx.user()?.to_owned())
                } else {
                    None
                };
                let (mut scan, kept) = paper::scan_to_send(cx.paper(), keeper).await?;
                cx.progress(JobResult::Scanned {
                    files: scan.pages.len(),
                    pages: scan.total_pages(),
                    bytes: scan.total_bytes(),
                    refused: paper::refusals(&scan),
                    kept,
                });
                // The bytes go to the server; the names stay for taking the files out of
                // the feeder afterwards.
                let pages = scan
                    .pages
                    .iter_mut()
                    .map(|f| OutgoingPage::from_bytes(&f.name, std::mem::take(&mut f.bytes)))
                    .collect();
                (pages, Some(scan))
            }
            ImageSource::Stored(id) => {
                let (files, pages) = stored::read(cx.paper(), id).await?;
                cx.progress(JobResult::Scanned {
                    files: files.len(),
                    pages,
                    bytes: files.iter().map(|(_, b)| b.len() as u64).sum(),
                    refused: Vec::new(),
                    kept: Some(id),
                });
                let pages = files
                    .into_iter()
                    .map(|(name, bytes)| OutgoingPage::from_bytes(&name, bytes))
                    .collect();
                (pages, None)
            }
        };
        let request = DistributionRequest {
            dist: DistributionId::new_random(),
            groups: self.groups,
            destinations: self.destinations,
            pages,
        };
        // Once the last byte is out, the commit follows: Stop can no longer take it back.
        let accepted = client
            .distribute_with_progress(&request, &|sent, total| {
                if sent >= total {
                    cx.commit();
                }
            })
            .await?;
        // FIG. 3 S35: the document leaves the feeder once the server has it.
        if let Some(scan) = scan {
            paper::take(cx.paper(), scan).await?;
        }
        Ok(JobResult::Accepted(accepted))
    }

    /// The progress view, open since Start, shows why.
    fn failed(e: JobError) -> JobResult {
        JobResult::DistributionFailed(e.to_string())
    }
}

/// FIG. 12: register this terminal with a group.
#[derive(Debug)]
pub struct Register {
    /// The group's name.
    pub group: String,
}

impl Task for Register {
    const LABEL: &'static str = "registering";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Registration refused";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        Ok(match cx.client()?.register(&self.group).await? {
            RegisterOutcome::Added => {
                membership("Registered", "is now a member of", &self.group, "")
            }
            RegisterOutcome::AlreadyMember => stay(membership(
                "Already registered",
                "was already a member of",
                &self.group,
                "; nothing changed",
            )),
        })
    }
}

/// FIG. 12: withdraw this terminal from a group.
#[derive(Debug)]
pub struct Withdraw {
    /// The group's name.
    pub group: String,
}

impl Task for Withdraw {
    const LABEL: &'static str = "withdrawing";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Withdrawal refused";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        Ok(match cx.client()?.withdraw(&self.group).await? {
            WithdrawOutcome::Removed => {
                membership("Withdrawn", "is no longer a member of", &self.group, "")
            }
            WithdrawOutcome::NotMember => stay(membership(
                "Not a member",
                "was not a member of",
                &self.group,
                "; nothing changed",
            )),
        })
    }
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

/// Nothing changed: OK goes back to the group list, where the operator may pick another.
fn stay(done: JobResult) -> JobResult {
    match done {
        JobResult::DoneHome { title, lines } => JobResult::Told { title, lines },
        other => other,
    }
}
