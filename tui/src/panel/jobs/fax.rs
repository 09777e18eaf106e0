//! Network fax from the panel (FIG. 7 modes 2 and 4; issue 12): what the destination screen
//! needs (the gateways and the phone book this user sees here), and sending the ADF's pages
//! or a stored image as a fax. The requests are the PC client's ([`crate::pc::fax`]).

use imagecast_shared::fax::FaxFile;

use super::{Context, JobError, JobResult, Task, paper, stored};
use crate::panel::strings;
use crate::store::ImageId;

/// Where a fax's pages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaxSource {
    /// Scan the ADF (mode 2).
    Adf,
    /// A stored image (mode 4).
    Stored(ImageId),
}

/// Fetch the gateways and the phone book for the fax destination screen.
#[derive(Debug)]
pub struct FetchFax {
    /// Where the pages will come from.
    pub source: FaxSource,
}

impl Task for FetchFax {
    const LABEL: &'static str = "asking for the fax gateways";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Fax unavailable";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let client = cx.client()?;
        cx.relogged().await;
        let gateways = crate::pc::fax::gateway_list(client).await?;
        if gateways.is_empty() {
            return Ok(JobResult::Failed {
                title: Self::FAILED.to_owned(),
                message: strings::NO_FAX_GATEWAY.to_owned(),
            });
        }
        let book = crate::pc::fax::phone_book(client).await?;
        Ok(JobResult::FaxReady {
            source: self.source,
            online: gateways.iter().filter(|g| g.online).count(),
            gateways: gateways.len(),
            book,
        })
    }
}

/// Scan the ADF (or read a stored image) and send it as a fax.
#[derive(Debug)]
pub struct FaxSend {
    /// Where the pages come from.
    pub source: FaxSource,
    /// Numbers typed.
    pub numbers: Vec<String>,
    /// Phone-book entries picked, by name.
    pub books: Vec<String>,
}

impl Task for FaxSend {
    const LABEL: &'static str = "sending the fax";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Fax not sent";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let client = cx.client()?;
        let (files, scan) = match self.source {
            FaxSource::Adf => {
                // An empty feeder is an error there.
                let (mut scan, _) = paper::scan_to_send(cx.paper(), None).await?;
                let files = scan
                    .pages
                    .iter_mut()
                    .map(|f| FaxFile {
                        name: f.name.clone(),
                        data: std::mem::take(&mut f.bytes).into(),
                    })
                    .collect::<Vec<_>>();
                (files, Some(scan))
            }
            FaxSource::Stored(id) => {
                let (files, _) = stored::read(cx.paper(), id).await?;
                let files = files
                    .into_iter()
                    .map(|(name, bytes)| FaxFile {
                        name,
                        data: bytes.into(),
                    })
                    .collect();
                (files, None)
            }
        };
        let pages = files.len();
        cx.relogged().await;
        let (job, numbers) =
            crate::pc::fax::send_files(client, &self.numbers, &self.books, false, files).await?;
        cx.commit();
        // The document leaves the feeder once the supervisor has it.
        if let Some(scan) = scan {
            paper::take(cx.paper(), scan).await?;
        }
        Ok(JobResult::FaxAccepted {
            job,
            numbers,
            files: pages,
        })
    }

    /// The progress view, open since Start, shows why.
    fn failed(e: JobError) -> JobResult {
        JobResult::FaxFailed(e.to_string())
    }
}

/// The most communication records the panel lists.
pub const RECORDS_SHOWN: u32 = 50;

/// Fetch this user's communication records (the newest [`RECORDS_SHOWN`]).
#[derive(Debug)]
pub struct FetchFaxRecords;

impl Task for FetchFaxRecords {
    const LABEL: &'static str = "asking for the fax records";
    const NEEDS_SERVER: bool = true;
    const FAILED: &'static str = "Cannot get the fax records";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let client = cx.client()?;
        cx.relogged().await;
        let records = crate::pc::fax::record_list(client, RECORDS_SHOWN).await?;
        Ok(JobResult::FaxRecords(records))
    }
}
