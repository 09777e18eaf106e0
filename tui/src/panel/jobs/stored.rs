//! Jobs on the image store (memory means 128, FIG. 19): find an image by its ID, print it,
//! copy it to removable media, list, delete and preview. Also the reading half of a
//! distribution of a stored image.

use std::sync::Arc;

use super::paper::{Paper, decode_preview};
use super::{Context, JobError, JobResult, Task, blocking};
use crate::paper::OutputTray;
use crate::store::ImageId;

/// FIG. 11's Entering image ID: check the image exists.
#[derive(Debug)]
pub struct UseImage(pub ImageId);

impl Task for UseImage {
    const LABEL: &'static str = "finding the image";
    const FAILED: &'static str = "No such image";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let (paper, id) = (cx.paper(), self.0);
        blocking(move || Ok(paper.store.get(id)?)).await?;
        Ok(JobResult::ImageChosen(id))
    }

    /// FIG. 11 says it under the ID box, where the ID was typed.
    fn failed(e: JobError) -> JobResult {
        JobResult::ImageRefused(e.to_string())
    }
}

/// FIG. 7's Take out image: print a stored image to the output tray.
#[derive(Debug)]
pub struct TakeOut(pub ImageId);

impl Task for TakeOut {
    const LABEL: &'static str = "printing";
    const FAILED: &'static str = "Cannot print the image";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let tray = cx.paper.tray.clone();
        let to = format!("printed to the output tray {}", tray.dir().display());
        copied(cx, self.0, tray, "Printed", &to).await
    }
}

/// FIG. 7's Process stored image: copy a stored image to the removable media.
#[derive(Debug)]
pub struct Process(pub ImageId);

impl Task for Process {
    const LABEL: &'static str = "copying to removable media";
    const FAILED: &'static str = "Cannot copy the image";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let media = cx.paper.removable.clone();
        let to = format!("copied to the removable media {}", media.dir().display());
        copied(cx, self.0, media, "Copied", &to).await
    }
}

/// Copies stored image `id` into `dest` and says so under `title`: "Image ID: N page(s) in M
/// file(s) `to`."
async fn copied(
    cx: &Context,
    id: ImageId,
    dest: OutputTray,
    title: &str,
    to: &str,
) -> Result<JobResult, JobError> {
    let (files, pages) = copy(cx.paper(), id, dest).await?;
    Ok(JobResult::DoneHome {
        title: title.into(),
        lines: vec![format!(
            "Image {id}: {pages} page(s) in {files} file(s) {to}."
        )],
    })
}

/// List the image store (F2).
#[derive(Debug)]
pub struct ListStored;

impl Task for ListStored {
    const LABEL: &'static str = "reading the image store";
    const FAILED: &'static str = "Cannot read the image store";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let paper = cx.paper();
        let listing = blocking(move || Ok(paper.store.list()?)).await?;
        Ok(JobResult::Stored(listing))
    }
}

/// Delete a stored image, then list the store again.
#[derive(Debug)]
pub struct DeleteStored(pub ImageId);

impl Task for DeleteStored {
    const LABEL: &'static str = "deleting";
    const FAILED: &'static str = "Cannot delete the image";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let (paper, id) = (cx.paper(), self.0);
        let listing = blocking(move || {
            paper.store.delete(id)?;
            Ok(paper.store.list()?)
        })
        .await?;
        Ok(JobResult::Stored(listing))
    }
}

/// Decode a stored image's pages for the preview.
#[derive(Debug)]
pub struct PreviewStored(pub ImageId);

impl Task for PreviewStored {
    const LABEL: &'static str = "preparing the preview";
    const FAILED: &'static str = "Cannot show the image";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let (paper, id) = (cx.paper(), self.0);
        let preview = blocking(move || {
            let image = paper.store.get(id)?;
            let files: Vec<_> = image.files.into_iter().map(|f| f.path).collect();
            decode_preview(format!("Image {id}"), &files)
        })
        .await?;
        Ok(JobResult::Preview(Box::new(preview)))
    }
}

/// Reads a stored image's files, `(name, bytes)` in order, and its page count.
pub(super) async fn read(
    paper: Arc<Paper>,
    id: ImageId,
) -> Result<(Vec<(String, Vec<u8>)>, usize), JobError> {
    blocking(move || {
        let image = paper.store.get(id)?;
        Ok((image.read_files()?, image.attributes.pages))
    })
    .await
}

/// Prints a stored image's files into `folder`; returns its files and pages.
async fn copy(
    paper: Arc<Paper>,
    id: ImageId,
    folder: OutputTray,
) -> Result<(usize, usize), JobError> {
    let (files, pages) = read(paper, id).await?;
    let count = files.len();
    blocking(move || {
        for (name, bytes) in &files {
            folder.print(name, bytes)?;
        }
        Ok((count, pages))
    })
    .await
}
