//! Paper, emulated as folders.
//!
//! # Layout
//! - [`pages`]: decode the pages of a PNG, JPEG or TIFF file (multi-page and CCITT fax TIFF
//!   included), with limits for untrusted input.
//! - [`adf`]: the auto document feeder (input tray), a folder the operator drops files into.
//! - [`tray`]: the output tray and the removable-media folder, where "printed" files land.
//!
//! Every error is a [`PaperError`] that names the file or folder it is about.

pub mod adf;
pub mod pages;
pub mod tray;

use std::path::PathBuf;

pub use adf::{Adf, Scan, ScannedFile};
pub use pages::{PageError, decode_first_page, decode_pages, page_count};
pub use tray::{OutputTray, RemovableMedia};

/// Everything that can go wrong with emulated paper.
#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its pages could not be decoded.
    #[error("{}: {source}", path.display())]
    Page {
        /// The file concerned.
        path: PathBuf,
        /// Why its pages could not be decoded.
        #[source]
        source: PageError,
    },
    /// The ADF holds no document to scan.
    #[error(
        "the document feeder is empty: place PNG, JPEG or TIFF files in {}",
        dir.display()
    )]
    AdfEmpty {
        /// The ADF folder.
        dir: PathBuf,
    },
    /// A page could not be encoded for printing.
    #[error("cannot encode the page as PNG: {0}")]
    Encode(String),
}

impl PaperError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PaperError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The longest file name (in bytes) that [`sanitize_file_name`] produces.
pub const MAX_FILE_NAME_BYTES: usize = 200;

/// Turns an untrusted name into a plain file name that stays inside its folder.
///
/// Path separators become `_`, control and bidirectional characters are dropped, runs of dots
/// shrink to one and leading dots are removed (no hidden files, no `.` or `..` anywhere), the
/// result is cut to [`MAX_FILE_NAME_BYTES`] keeping the extension, and an empty result becomes
/// `page`.
pub fn sanitize_file_name(name: &str) -> String {
    let mut cleaned = String::with_capacity(name.len());
    for c in name
        .chars()
        .filter(|&c| !imagecast_shared::text::is_unsafe(c))
    {
        let c = match c {
            '/' | '\\' | ':' => '_',
            c => c,
        };
        if c == '.' && cleaned.ends_with('.') {
            continue;
        }
        cleaned.push(c);
    }
    let cleaned = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    let mut out = cleaned.to_string();
    if out.len() > MAX_FILE_NAME_BYTES {
        let (stem, ext) = split_extension(&out);
        let ext = if ext.len() <= 16 { ext } else { "" };
        let mut cut = MAX_FILE_NAME_BYTES.saturating_sub(ext.len());
        while !stem.is_char_boundary(cut.min(stem.len())) {
            cut -= 1;
        }
        out = format!("{}{}", &stem[..cut.min(stem.len())], ext);
    }
    if out.is_empty() {
        "page".to_string()
    } else {
        out
    }
}

/// Splits `name` into stem and extension (with its dot); a leading dot is not an extension.
pub(crate) fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// Writes `bytes` to a new owner-only file `path` and flushes them to the disk.
pub(crate) fn write_synced(path: &std::path::Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    use std::io::Write;
    let mut file = imagecast_shared::private::open_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The file names of `paths`, in their order.
#[cfg(test)]
pub(crate) fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Flushes a folder's entries (new, renamed or removed files) to the disk.
pub(crate) fn sync_dir(dir: &std::path::Path) -> Result<(), std::io::Error> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_ordinary_names() {
        assert_eq!(sanitize_file_name("scan 001.png"), "scan 001.png");
        assert_eq!(
            sanitize_file_name("Bericht-Müller.tiff"),
            "Bericht-Müller.tiff"
        );
    }

    #[test]
    fn sanitize_defuses_hostile_names() {
        assert_eq!(sanitize_file_name("../../x"), "_._x");
        assert_eq!(sanitize_file_name("a..b...png"), "a.b.png");
        assert_eq!(sanitize_file_name("/etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize_file_name("a\u{0}b\nc\u{7f}.png"), "abc.png");
        assert_eq!(
            sanitize_file_name("invoice\u{202e}fdp.exe"),
            "invoicefdp.exe"
        );
        assert_eq!(sanitize_file_name(".."), "page");
        assert_eq!(sanitize_file_name(".hidden"), "hidden");
        assert_eq!(sanitize_file_name(""), "page");
        assert_eq!(sanitize_file_name("\n\t"), "page");
        assert_eq!(sanitize_file_name("C:\\x\\y.png"), "C__x_y.png");
    }

    #[test]
    fn sanitize_cuts_long_names_but_keeps_the_extension() {
        let long = format!("{}.png", "ä".repeat(300));
        let out = sanitize_file_name(&long);
        assert!(out.len() <= MAX_FILE_NAME_BYTES, "{}", out.len());
        assert!(out.ends_with(".png"));
    }
}
