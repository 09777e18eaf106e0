//! The auto document feeder (ADF, input tray): a folder where "placing a document" means
//! putting PNG, JPEG or TIFF files.
//!
//! [`Adf::scan`] reads every document in name order and keeps each file's original bytes (the
//! server distributes files byte for byte); [`Adf::take`] removes the scanned files afterwards,
//! like paper leaving the feeder, so a caller can do that only once its job has succeeded.

use std::path::{Path, PathBuf};

use super::PaperError;
use super::pages;

/// The file name extensions the ADF accepts, compared case-insensitively.
pub const EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "tif", "tiff"];

/// The auto document feeder: a folder of documents waiting to be scanned.
#[derive(Debug, Clone)]
pub struct Adf {
    dir: PathBuf,
}

/// One scanned document: a file of one or more pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// The file's name in the ADF (no folder).
    pub name: String,
    /// The file's original bytes, untouched.
    pub bytes: Vec<u8>,
    /// How many pages the file holds.
    pub pages: usize,
}

/// The result of one scan: the documents read and the ones refused.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The files that were read, in name order.
    pub pages: Vec<ScannedFile>,
    /// The files that could not be read or decoded, with the reason, in name order.
    pub refused: Vec<(PathBuf, String)>,
}

impl Scan {
    /// The number of pages over all scanned files.
    pub fn total_pages(&self) -> usize {
        self.pages.iter().map(|f| f.pages).sum()
    }

    /// The number of bytes over all scanned files.
    pub fn total_bytes(&self) -> u64 {
        self.pages.iter().map(|f| f.bytes.len() as u64).sum()
    }
}

impl Adf {
    /// An ADF over the folder `dir` (a missing folder shows up as an error when scanning).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Adf { dir: dir.into() }
    }

    /// The ADF's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The documents waiting in the ADF, in name order: regular files with a PNG, JPEG or
    /// TIFF extension (any case); hidden files (`.name`) and other files are ignored.
    pub fn documents(&self) -> Result<Vec<PathBuf>, PaperError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| PaperError::io(&self.dir, e))?;
        let mut docs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| PaperError::io(&self.dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || !has_image_extension(name) {
                continue;
            }
            // Follows symbolic links: a link to a file is a document.
            if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                docs.push(path);
            }
        }
        docs.sort();
        Ok(docs)
    }

    /// Scans every document in name order, keeping the original bytes and page count of each.
    ///
    /// A file that cannot be read or decoded is refused with its reason and the others are
    /// still scanned. Nothing is removed: call [`Adf::take`] once the job has succeeded.
    /// Returns [`PaperError::AdfEmpty`] if there is no document at all.
    pub fn scan(&self) -> Result<Scan, PaperError> {
        let docs = self.documents()?;
        if docs.is_empty() {
            return Err(PaperError::AdfEmpty {
                dir: self.dir.clone(),
            });
        }
        let mut scan = Scan::default();
        for path in docs {
            match scan_one(&path) {
                Ok(file) => scan.pages.push(file),
                Err(reason) => scan.refused.push((path, reason)),
            }
        }
        Ok(scan)
    }

    /// Where scanned originals are handed back: the `returned` folder inside the ADF's folder
    /// (a folder, so the feeder never scans them again), as a real ADF hands the paper back.
    pub fn returned_dir(&self) -> PathBuf {
        self.dir.join(RETURNED)
    }

    /// Hands the scanned files back: moves them out of the feeder into [`Adf::returned_dir`]
    /// (a name taken there gets a `-2` suffix; refused files stay in the feeder for the
    /// operator to see). A file that is already gone is not an error.
    pub fn take(&self, scan: &Scan) -> Result<(), PaperError> {
        let returned = super::OutputTray::new(self.returned_dir());
        for file in &scan.pages {
            let path = self.dir.join(&file.name);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(PaperError::io(path, e)),
            };
            returned.print(&file.name, &bytes)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PaperError::io(path, e)),
            }
        }
        super::sync_dir(&self.dir).map_err(|e| PaperError::io(&self.dir, e))
    }

    /// Hands one original back (a mark sheet once read): see [`Adf::take`].
    pub fn hand_back(&self, path: &Path) -> Result<PathBuf, PaperError> {
        let bytes = std::fs::read(path).map_err(|e| PaperError::io(path, e))?;
        let name = path.file_name().map_or_else(
            || "original".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let to = super::OutputTray::new(self.returned_dir()).print(&name, &bytes)?;
        std::fs::remove_file(path).map_err(|e| PaperError::io(path, e))?;
        Ok(to)
    }
}

/// The folder inside the ADF's folder that scanned originals are handed back to.
pub const RETURNED: &str = "returned";

fn has_image_extension(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|ext| EXTENSIONS.iter().any(|ok| ext.eq_ignore_ascii_case(ok)))
}

/// Reads and decodes one document; on failure returns the reason (without the path).
fn scan_one(path: &Path) -> Result<ScannedFile, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| "the file name is not valid UTF-8".to_string())?
        .to_string();
    let bytes = pages::read_file(path).map_err(|e| match e {
        PaperError::Io { source, .. } => source.to_string(),
        PaperError::Page { source, .. } => source.to_string(),
        other => other.to_string(),
    })?;
    let pages = pages::check_pages(&bytes).map_err(|e| e.to_string())?;
    Ok(ScannedFile { name, bytes, pages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

    fn png(shade: u8) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 6, Rgb([shade, 0, 0])));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).expect("png");
        out.into_inner()
    }

    #[test]
    fn empty_adf_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let adf = Adf::new(dir.path());
        std::fs::write(dir.path().join(".hidden.png"), png(1)).expect("write");
        std::fs::write(dir.path().join("notes.txt"), b"hi").expect("write");
        let err = adf.scan().expect_err("empty");
        assert!(matches!(err, PaperError::AdfEmpty { .. }));
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn documents_come_in_name_order_and_ignore_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let adf = Adf::new(dir.path());
        for name in [
            "b.PNG", "a.jpg", "c.TIFF", "d.tif", "e.jpeg", ".x.png", "f.gif", "g",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        std::fs::create_dir(dir.path().join("sub.png")).expect("dir");
        let names = super::super::file_names(&adf.documents().expect("documents"));
        assert_eq!(names, ["a.jpg", "b.PNG", "c.TIFF", "d.tif", "e.jpeg"]);
    }

    #[test]
    fn scan_keeps_bytes_refuses_corrupt_files_and_take_removes_scanned_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let adf = Adf::new(dir.path());
        let (first, third) = (png(10), png(30));
        std::fs::write(dir.path().join("01.png"), &first).expect("write");
        std::fs::write(dir.path().join("02.png"), b"\x89PNG\r\n\x1a\nbroken").expect("write");
        std::fs::write(dir.path().join("03.png"), &third).expect("write");
        let scan = adf.scan().expect("scan");
        let names: Vec<&str> = scan.pages.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["01.png", "03.png"]);
        assert_eq!(scan.pages[0].bytes, first, "original bytes are kept");
        assert_eq!(scan.pages[1].bytes, third);
        assert_eq!(scan.total_pages(), 2);
        assert_eq!(scan.refused.len(), 1);
        assert_eq!(scan.refused[0].0, dir.path().join("02.png"));
        assert!(
            scan.refused[0].1.contains("damaged"),
            "{}",
            scan.refused[0].1
        );

        // Scanning does not remove anything; take does, except the refused file.
        assert_eq!(adf.documents().expect("docs").len(), 3);
        adf.take(&scan).expect("take");
        let left = adf.documents().expect("docs");
        assert_eq!(left, vec![dir.path().join("02.png")]);
        // The originals are handed back, not deleted.
        let back = adf.returned_dir();
        assert_eq!(std::fs::read(back.join("01.png")).expect("returned"), first);
        assert_eq!(std::fs::read(back.join("03.png")).expect("returned"), third);
        adf.take(&scan).expect("taking twice is harmless");
    }
}
