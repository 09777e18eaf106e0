//! Jobs on the panel's paper: copy the ADF to the output tray, read a mark sheet from the ADF,
//! carry a sheet from the output tray to the ADF, and decode page files for a preview. Also
//! the scanning half of a distribution. All of it is disk work, run on the blocking pool.

use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::{Context, JobError, JobResult, Task, blocking};
use crate::marksheet;
use crate::paper::{Adf, OutputTray, PaperError, RemovableMedia, Scan, decode_pages, pages};
use crate::store::{ImageId, ImageStore};

/// The panel's emulated paper and memory.
#[derive(Clone, Debug)]
pub struct Paper {
    /// The input tray, scanned by Copy and distributions.
    pub adf: Adf,
    /// Where copies, printed images, mark sheets and received images land.
    pub tray: OutputTray,
    /// The folder Process stored image copies to.
    pub removable: RemovableMedia,
    /// The image store (memory means 128).
    pub store: ImageStore,
}

/// Pages decoded for the preview.
pub struct PreviewData {
    /// The heading: whose or which image it is.
    pub title: String,
    /// Each page with its label ("name.tif p.2").
    pub pages: Vec<(String, DynamicImage)>,
}

impl std::fmt::Debug for PreviewData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewData")
            .field("title", &self.title)
            .field("pages", &self.pages.len())
            .finish()
    }
}

/// FIG. 7's Copy: scan the ADF and print it to the output tray.
#[derive(Debug)]
pub struct Copy;

impl Task for Copy {
    const LABEL: &'static str = "copying";
    const FAILED: &'static str = "Copy failed";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let paper = cx.paper();
        let (documents, pages, refused) = blocking(move || {
            let scan = scan_adf(&paper.adf)?;
            for f in &scan.pages {
                paper.tray.print(&f.name, &f.bytes)?;
            }
            paper.adf.take(&scan)?;
            Ok((scan.pages.len(), scan.total_pages(), refusals(&scan)))
        })
        .await?;
        let mut lines = vec![
            format!(
                "{pages} page(s) in {documents} file(s) printed to the output tray {}.",
                cx.paper.tray.dir().display()
            ),
            format!(
                "The originals are back in {}.",
                cx.paper.adf.returned_dir().display()
            ),
        ];
        lines.extend(refused);
        Ok(JobResult::DoneHome {
            title: "Copy finished".into(),
            lines,
        })
    }
}

/// FIG. 11's Mark sheet: read the image ID from the sheet in the ADF; the sheet leaves the
/// feeder once its image is found.
#[derive(Debug)]
pub struct ReadMarkSheet;

impl Task for ReadMarkSheet {
    const LABEL: &'static str = "reading the mark sheet";
    const FAILED: &'static str = "Mark sheet not read";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let paper = cx.paper();
        let id = blocking(move || {
            let docs = paper.adf.documents()?;
            let Some(sheet) = docs.first() else {
                return Err(JobError::NoMarkSheet {
                    dir: paper.adf.dir().to_owned(),
                });
            };
            let id = marksheet::decode_file(sheet).map_err(|source| JobError::MarkSheet {
                file: file_name(sheet),
                source,
            })?;
            paper.store.get(id)?;
            // The sheet is handed back, as a real ADF hands paper back.
            paper.adf.hand_back(sheet)?;
            Ok(id)
        })
        .await?;
        Ok(JobResult::ImageChosen(id))
    }

    /// A sheet that was read but names an image no longer stored is not a reading failure:
    /// the title says what is wrong.
    fn failed(e: JobError) -> JobResult {
        let title = match &e {
            JobError::Store(crate::store::StoreError::NotFound(_)) => "No such image",
            _ => Self::FAILED,
        };
        JobResult::Failed {
            title: title.to_owned(),
            message: e.to_string(),
        }
    }
}

/// Carry the output tray's newest sheet to the ADF, as an operator carries paper (a printed
/// mark sheet, to scan it).
#[derive(Debug)]
pub struct CarryToAdf;

impl Task for CarryToAdf {
    const LABEL: &'static str = "carrying paper";
    const FAILED: &'static str = "Cannot carry the sheet";

    async fn run(self, cx: &Context) -> Result<JobResult, JobError> {
        let paper = cx.paper();
        let carried = blocking(move || Ok(carry(&paper.tray, &paper.adf, "")?)).await?;
        Ok(JobResult::Noted(match carried {
            None => "nothing to carry: the output tray is empty".to_owned(),
            Some(c) => {
                let (from, to) = (file_name(&c.from), file_name(&c.to));
                if from == to {
                    format!("carried {from} from the output tray to the ADF")
                } else {
                    format!("carried {from} from the output tray to the ADF (as {to})")
                }
            }
        }))
    }
}

/// Decode page files (received ones) for the preview.
#[derive(Debug)]
pub struct LoadPreview {
    /// The preview's heading.
    pub title: String,
    /// The page files, in order.
    pub files: Vec<PathBuf>,
}

impl Task for LoadPreview {
    const LABEL: &'static str = "preparing the preview";
    const FAILED: &'static str = "Cannot show the image";

    async fn run(self, _cx: &Context) -> Result<JobResult, JobError> {
        let preview = blocking(move || decode_preview(self.title, &self.files)).await?;
        Ok(JobResult::Preview(Box::new(preview)))
    }
}

/// A sheet carried from the output tray to the ADF.
#[derive(Debug)]
pub struct Carried {
    /// Where it lay in the output tray.
    pub from: PathBuf,
    /// Where it lies in the ADF (renamed if the ADF held a file of that name).
    pub to: PathBuf,
}

/// Moves the output tray's newest file whose name starts with `prefix` into the ADF; `None`
/// when there is none. The ADF never loses a document to it: a name taken there gets a
/// `-2` suffix.
pub fn carry(tray: &OutputTray, adf: &Adf, prefix: &str) -> Result<Option<Carried>, PaperError> {
    let files = match tray.files() {
        Err(PaperError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        files => files?,
    };
    let newest = files
        .into_iter()
        .filter(|p| file_name(p).starts_with(prefix))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max();
    let Some((_, from)) = newest else {
        return Ok(None);
    };
    let bytes = pages::read_file(&from)?;
    let to = OutputTray::new(adf.dir()).print(&file_name(&from), &bytes)?;
    std::fs::remove_file(&from).map_err(|e| PaperError::io(&from, e))?;
    Ok(Some(Carried { from, to }))
}

/// The most pages a preview holds.
const PREVIEW_PAGES: usize = 50;

/// Decodes the pages of `files`, the first [`PREVIEW_PAGES`] of them.
pub(super) fn decode_preview(title: String, files: &[PathBuf]) -> Result<PreviewData, JobError> {
    let mut pages = Vec::new();
    for f in files {
        let room = PREVIEW_PAGES - pages.len();
        if room == 0 {
            break;
        }
        for (i, img) in decode_pages(f)?.into_iter().enumerate().take(room) {
            pages.push((format!("{} p.{}", file_name(f), i + 1), img));
        }
    }
    Ok(PreviewData { title, pages })
}

/// Scans the ADF for a distribution; with `keeper`, keeps the scan in the image store under
/// their name and prints its mark sheet to the output tray.
pub(super) async fn scan_to_send(
    paper: std::sync::Arc<Paper>,
    keeper: Option<String>,
) -> Result<(Scan, Option<ImageId>), JobError> {
    blocking(move || {
        let scan = scan_adf(&paper.adf)?;
        let kept = match keeper {
            Some(user) => Some(keep_with_mark_sheet(
                &paper.store,
                &paper.tray,
                &scan,
                &user,
            )?),
            None => None,
        };
        Ok((scan, kept))
    })
    .await
}

/// Takes the scanned files out of the feeder.
pub(super) async fn take(paper: std::sync::Arc<Paper>, scan: Scan) -> Result<(), JobError> {
    blocking(move || Ok(paper.adf.take(&scan)?)).await
}

/// Keeps `scan` as a stored image and prints its mark sheet: the first page with the image
/// ID's code stamped on it (FIG. 20).
fn keep_with_mark_sheet(
    store: &ImageStore,
    tray: &OutputTray,
    scan: &Scan,
    user: &str,
) -> Result<ImageId, JobError> {
    let id = store.keep(&scan.pages, scan.total_pages(), user)?;
    let first_file = &scan.pages[0];
    let first =
        pages::first_page_from_bytes(&first_file.bytes).map_err(|source| PaperError::Page {
            path: PathBuf::from(&first_file.name),
            source,
        })?;
    let sheet = marksheet::print_sheet(id, &first);
    tray.print_image(&marksheet::sheet_name(id), &DynamicImage::ImageRgb8(sheet))?;
    Ok(id)
}

/// Scans the ADF; an empty feeder, or one where every file was refused, is an error.
pub(super) fn scan_adf(adf: &Adf) -> Result<Scan, JobError> {
    let scan = adf.scan()?;
    if scan.pages.is_empty() {
        return Err(JobError::NothingReadable {
            dir: adf.dir().to_owned(),
            refused: refusals(&scan),
        });
    }
    Ok(scan)
}

/// The files a scan refused, one "Refused NAME: why" each.
pub(super) fn refusals(scan: &Scan) -> Vec<String> {
    scan.refused
        .iter()
        .map(|(p, why)| format!("Refused {}: {why}", file_name(p)))
        .collect()
}

/// A path's file name as the operator reads it.
pub(super) fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::app::AppEvent;
    use crate::panel::screens::Screen;
    use crate::panel::test_support::{app, paper_in};

    #[tokio::test]
    async fn an_oversized_mark_sheet_is_refused_in_a_dialog() {
        let dir = tempfile::tempdir().unwrap();
        let paper = paper_in(dir.path());
        std::fs::create_dir_all(dir.path().join("adf")).unwrap();
        let sheet = dir.path().join("adf").join("sheet.png");
        std::fs::write(&sheet, marksheet::white_png::white_png(20_000, 20_000)).unwrap();
        let cx = Context::offline(paper);
        let result = ReadMarkSheet
            .run(&cx)
            .await
            .unwrap_or_else(ReadMarkSheet::failed);
        let mut app = app(false, true);
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

    #[tokio::test]
    async fn a_sheet_of_a_deleted_image_says_no_such_image() {
        let dir = tempfile::tempdir().unwrap();
        let paper = paper_in(dir.path());
        std::fs::create_dir_all(paper.adf.dir()).unwrap();
        let id = ImageId::new(36_386_070).unwrap();
        let page = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            200,
            280,
            image::Rgb([255, 255, 255]),
        ));
        OutputTray::new(paper.adf.dir())
            .print_image(
                &marksheet::sheet_name(id),
                &DynamicImage::ImageRgb8(marksheet::print_sheet(id, &page)),
            )
            .unwrap();
        let cx = Context::offline(paper);
        let result = ReadMarkSheet
            .run(&cx)
            .await
            .unwrap_or_else(ReadMarkSheet::failed);
        let mut app = app(false, true);
        app.event(AppEvent::Job(result));
        match app.screen() {
            Screen::Message(m) => {
                assert_eq!(m.title, "No such image");
                assert_eq!(m.lines, ["no image with ID 36386070 in the image store"]);
            }
            _ => panic!("no error dialog"),
        }
    }

    #[test]
    fn carrying_takes_the_newest_sheet_and_never_replaces_a_document() {
        let dir = tempfile::tempdir().unwrap();
        let paper = paper_in(dir.path());
        assert!(carry(&paper.tray, &paper.adf, "").unwrap().is_none());
        let old = paper.tray.print("copy.png", b"old").unwrap();
        let sheet = paper
            .tray
            .print("marksheet-12345678.png", b"sheet")
            .unwrap();
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        // A document of the same name already waits in the ADF.
        std::fs::create_dir_all(paper.adf.dir()).unwrap();
        std::fs::write(paper.adf.dir().join("marksheet-12345678.png"), b"doc").unwrap();
        let carried = carry(&paper.tray, &paper.adf, "").unwrap().unwrap();
        assert_eq!(carried.from, sheet);
        assert_eq!(carried.to, paper.adf.dir().join("marksheet-12345678-2.png"));
        assert_eq!(std::fs::read(&carried.to).unwrap(), b"sheet");
        assert!(!sheet.exists(), "the sheet left the output tray");
        assert_eq!(
            std::fs::read(paper.adf.dir().join("marksheet-12345678.png")).unwrap(),
            b"doc"
        );
        assert!(
            carry(&paper.tray, &paper.adf, "marksheet-")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            carry(&paper.tray, &paper.adf, "").unwrap().unwrap().from,
            old
        );
    }
}
