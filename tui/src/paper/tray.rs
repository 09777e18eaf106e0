//! The output tray: a folder where every printed page or received image lands. The same type
//! serves as the removable-media folder ([`RemovableMedia`]) that "Process stored image"
//! copies to.
//!
//! A printed file keeps its original name (made safe by [`sanitize_file_name`]) and never
//! replaces an existing file: the second `name.png` becomes `name-2.png`, then `name-3.png`.
//! Each file is written atomically: into a hidden temporary file, flushed to the disk, linked
//! under its final name, and the folder flushed, so a crash never leaves half a page.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat};

use super::{PaperError, sanitize_file_name, split_extension, sync_dir, write_synced};

/// How many `name-N` variants are tried before giving up.
const MAX_VARIANTS: u32 = 10_000;

/// A folder that printed files are written to, never overwriting one.
#[derive(Debug, Clone)]
pub struct OutputTray {
    dir: PathBuf,
}

/// The removable-media folder behaves exactly like an output tray.
pub type RemovableMedia = OutputTray;

impl OutputTray {
    /// A tray over the folder `dir`; the folder is created when the first file is printed.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        OutputTray { dir: dir.into() }
    }

    /// The tray's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` as a new file named after `name` (sanitised, made unique) and returns
    /// its path. The file is complete and on disk when this returns.
    pub fn print(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, PaperError> {
        let dir = &self.dir;
        imagecast_shared::private::create_dir_all(dir).map_err(|e| PaperError::io(dir, e))?;
        let name = sanitize_file_name(name);
        let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        if let Err(e) = write_synced(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            return Err(PaperError::io(&tmp, e));
        }
        let result = self.link_unique(&tmp, &name);
        let _ = std::fs::remove_file(&tmp);
        let target = result?;
        sync_dir(dir).map_err(|e| PaperError::io(dir, e))?;
        Ok(target)
    }

    /// Encodes `img` as PNG and prints it; the name's image extension, if any, becomes `.png`.
    pub fn print_image(&self, name: &str, img: &DynamicImage) -> Result<PathBuf, PaperError> {
        let mut bytes = Cursor::new(Vec::new());
        img.write_to(&mut bytes, ImageFormat::Png)
            .map_err(|e| PaperError::Encode(e.to_string()))?;
        let (stem, ext) = split_extension(name);
        let ext = ext.trim_start_matches('.');
        let stem = if super::adf::EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(ext))
        {
            stem
        } else {
            name
        };
        self.print(&format!("{stem}.png"), bytes.get_ref())
    }

    /// The files in the tray (hidden files excluded), in name order.
    pub fn files(&self) -> Result<Vec<PathBuf>, PaperError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| PaperError::io(&self.dir, e))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| PaperError::io(&self.dir, e))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.file_type().is_ok_and(|t| t.is_file()) {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Gives the finished temporary file its final name: `name`, else `stem-2.ext`, ... A hard
    /// link never replaces an existing file; on file systems without hard links (FAT on
    /// removable media) a checked rename stands in.
    fn link_unique(&self, tmp: &Path, name: &str) -> Result<PathBuf, PaperError> {
        let (stem, ext) = split_extension(name);
        for n in 1..=MAX_VARIANTS {
            let candidate = if n == 1 {
                name.to_string()
            } else {
                format!("{stem}-{n}{ext}")
            };
            let target = self.dir.join(candidate);
            match std::fs::hard_link(tmp, &target) {
                Ok(()) => return Ok(target),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => {
                    if std::fs::symlink_metadata(&target).is_ok() {
                        continue;
                    }
                    std::fs::rename(tmp, &target).map_err(|e| PaperError::io(&target, e))?;
                    return Ok(target);
                }
            }
        }
        Err(PaperError::io(
            self.dir.join(name),
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{MAX_VARIANTS} files of this name exist already"),
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    fn names(tray: &OutputTray) -> Vec<String> {
        super::super::file_names(&tray.files().expect("files"))
    }

    #[test]
    fn collisions_get_numbered_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tray = OutputTray::new(dir.path().join("out"));
        let a = tray.print("name.png", b"one").expect("print");
        let b = tray.print("name.png", b"two").expect("print");
        let c = tray.print("name.png", b"three").expect("print");
        assert_eq!(a, dir.path().join("out/name.png"));
        assert_eq!(b, dir.path().join("out/name-2.png"));
        assert_eq!(c, dir.path().join("out/name-3.png"));
        assert_eq!(std::fs::read(&a).expect("read"), b"one");
        assert_eq!(std::fs::read(&c).expect("read"), b"three");
        assert_eq!(names(&tray), ["name-2.png", "name-3.png", "name.png"]);
        // No temporary file is left behind.
        let all = std::fs::read_dir(tray.dir()).expect("dir").count();
        assert_eq!(all, 3);
    }

    #[test]
    fn hostile_names_stay_inside_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tray_dir = dir.path().join("tray");
        let tray = OutputTray::new(&tray_dir);
        for hostile in [
            "../../x",
            "/etc/passwd",
            "a\nb\u{1b}[2J.png",
            "..",
            "",
            "sub/../../y",
        ] {
            let path = tray.print(hostile, b"data").expect(hostile);
            assert_eq!(
                path.parent(),
                Some(tray_dir.as_path()),
                "{hostile:?} -> {path:?}"
            );
            let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8");
            assert!(!name.is_empty() && !name.starts_with('.'), "{name:?}");
            assert!(!name.contains(".."), "{name:?}");
            assert!(!name.chars().any(char::is_control), "{name:?}");
        }
        assert_eq!(tray.files().expect("files").len(), 6);
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn print_image_writes_a_png() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tray: RemovableMedia = OutputTray::new(dir.path());
        let img = DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 3, Luma([7])));
        let path = tray.print_image("scan.TIF", &img).expect("print");
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some("scan.png"));
        let back = image::open(&path).expect("open").to_luma8();
        assert_eq!(back.dimensions(), (4, 3));
        assert_eq!(back.get_pixel(1, 1).0[0], 7);
        let path = tray.print_image("sheet", &img).expect("print");
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some("sheet.png"));
    }
}
