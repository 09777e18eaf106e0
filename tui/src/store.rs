//! The image store ("memory means 128" of the seed): scanned images kept on disk under an
//! 8-digit image ID, with the attribute table of FIG. 19 (image ID, number of pages, image
//! size) plus when and by whom each image was stored.
//!
//! # Layout on disk
//! ```text
//! <store>/
//!   12345678/              one folder per image, named by its ID
//!     attributes.toml      the image's row of the attribute table
//!     001-scan.tif         the files of the image, byte for byte, in order
//!     002-page2.png
//!   .tmp-<uuid>/           an image being kept (renamed to its ID when complete)
//!   .trash-<uuid>/         an image being deleted
//! ```
//! Keeping is atomic and durable: the files and attributes are written and flushed into a
//! temporary folder, which is then renamed to the ID and the store folder flushed. A
//! damaged entry is reported by [`ImageStore::list`] next to the good ones and never hides them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::paper::{ScannedFile, sanitize_file_name};

/// The name of the attribute file in each image folder.
pub const ATTRIBUTES_FILE: &str = "attributes.toml";
/// The version of the attribute file format written by this program.
const FORMAT: u32 = 1;
/// Leftover temporary folders older than this are removed when the store is opened.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// How many random IDs are tried before the store is declared full.
const ID_ATTEMPTS: usize = 1000;

/// An image ID: a number shown and entered as exactly 8 digits (`00000001` to `99999999`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageId(u32);

impl ImageId {
    /// The largest image ID.
    pub const MAX: u32 = 99_999_999;

    /// The ID with this number, if it has at most 8 digits.
    pub fn new(n: u32) -> Option<Self> {
        (n <= Self::MAX).then_some(ImageId(n))
    }

    /// The ID's number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// A random ID from 1 to [`ImageId::MAX`].
    fn random() -> Self {
        let n = uuid::Uuid::new_v4().as_u128() % u128::from(Self::MAX);
        ImageId(u32::try_from(n).unwrap_or(0) + 1)
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

/// The text given as an image ID is not exactly 8 digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an image ID is exactly 8 digits, like 01234567, not {0:?}")]
pub struct ParseImageIdError(String);

impl FromStr for ImageId {
    type Err = ParseImageIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse()
                .map(ImageId)
                .map_err(|_| ParseImageIdError(s.into()))
        } else {
            Err(ParseImageIdError(s.chars().take(24).collect()))
        }
    }
}

impl TryFrom<String> for ImageId {
    type Error = ParseImageIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ImageId> for String {
    fn from(id: ImageId) -> String {
        id.to_string()
    }
}

/// Everything that can go wrong with the image store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder of the store could not be read or written.
    #[error("image store: {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// No image has this ID.
    #[error("no image with ID {0} in the image store")]
    NotFound(ImageId),
    /// An image's folder exists but its attributes or files are broken.
    #[error("image {entry} in the image store is damaged: {reason}")]
    Damaged {
        /// The folder name of the entry (normally the ID).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// There was nothing to keep.
    #[error("nothing to keep: the image has no files")]
    Empty,
    /// The attributes could not be written.
    #[error("cannot write the image attributes: {0}")]
    Encode(String),
    /// No unused ID was found.
    #[error("no free image ID found: the image store is full")]
    Full,
}

fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}

/// A file to keep in the store: its name and its bytes.
pub trait StoreFile {
    /// The file's original name.
    fn name(&self) -> &str;
    /// The file's bytes.
    fn bytes(&self) -> &[u8];
}

impl StoreFile for ScannedFile {
    fn name(&self) -> &str {
        &self.name
    }
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<N: AsRef<str>, B: AsRef<[u8]>> StoreFile for (N, B) {
    fn name(&self) -> &str {
        self.0.as_ref()
    }
    fn bytes(&self) -> &[u8] {
        self.1.as_ref()
    }
}

/// One row of the attribute table (FIG. 19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// The image ID.
    pub id: ImageId,
    /// The number of pages.
    pub pages: usize,
    /// The image size: the bytes of all its files.
    pub size: u64,
    /// When the image was stored.
    pub stored_at: SystemTime,
    /// The user who stored it.
    pub stored_by: String,
    /// The document's name as the operator knows it: its first file's original name, with
    /// "+N" when more files follow.
    pub name: String,
}

/// One file of a stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The file's original name.
    pub name: String,
    /// Where the file lies in the store.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub size: u64,
}

impl StoredFile {
    /// Reads the file, checking that it still has its recorded size.
    pub fn read(&self) -> Result<Vec<u8>, StoreError> {
        let bytes = std::fs::read(&self.path).map_err(io_err(&self.path))?;
        if bytes.len() as u64 != self.size {
            return Err(StoreError::Damaged {
                entry: entry_name(&self.path),
                reason: format!(
                    "{} has {} bytes, {} were stored",
                    self.name,
                    bytes.len(),
                    self.size
                ),
            });
        }
        Ok(bytes)
    }
}

fn entry_name(file: &Path) -> String {
    file.parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A stored image: its attributes and its files in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredImage {
    /// The image's row of the attribute table.
    pub attributes: Attributes,
    /// The image's files, in the order they were kept.
    pub files: Vec<StoredFile>,
}

impl StoredImage {
    /// Reads every file: `(original name, bytes)` in order.
    pub fn read_files(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.files
            .iter()
            .map(|f| Ok((f.name.clone(), f.read()?)))
            .collect()
    }
}

/// A store entry that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedEntry {
    /// The entry's folder name.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The attribute table: every good image, oldest first, and the damaged entries apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The readable images, sorted by stored-at time (then ID).
    pub images: Vec<Attributes>,
    /// The entries that could not be read, by folder name.
    pub damaged: Vec<DamagedEntry>,
}

/// The attribute file as written on disk.
#[derive(Debug, Serialize, Deserialize)]
struct AttributesFile {
    format: u32,
    id: String,
    pages: u64,
    size: u64,
    stored_at: String,
    stored_by: String,
    files: Vec<FileRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileRecord {
    name: String,
    stored: String,
    size: u64,
}

/// The image store: a folder of images kept under 8-digit IDs.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// Opens the store in `dir`, creating the folder if needed (durably: a power loss right
    /// after the first keep must not take the new folder, and every image in it, away) and
    /// removing what interrupted keeps and deletes left behind.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        // The folders about to be made: each one's entry is durable only once its parent is
        // flushed.
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
            .map(Path::to_path_buf)
            .collect();
        imagecast_shared::private::create_dir_all(&dir).map_err(io_err(&dir))?;
        for made in missing.iter().rev() {
            let parent = match made.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            crate::paper::sync_dir(parent).map_err(io_err(parent))?;
        }
        let store = ImageStore { dir };
        store.remove_leftovers();
        Ok(store)
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = || {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TMP)
            };
            if name.starts_with(".trash-") || (name.starts_with(".tmp-") && stale()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Keeps `files` as one image of `pages` pages stored by `user`, under a fresh random ID.
    /// The image is complete and on disk when this returns.
    pub fn keep<F: StoreFile>(
        &self,
        files: &[F],
        pages: usize,
        user: &str,
    ) -> Result<ImageId, StoreError> {
        if files.is_empty() {
            return Err(StoreError::Empty);
        }
        let tmp = self
            .dir
            .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        imagecast_shared::private::create_dir(&tmp).map_err(io_err(&tmp))?;
        let result = self.keep_in(&tmp, files, pages, user);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn keep_in<F: StoreFile>(
        &self,
        tmp: &Path,
        files: &[F],
        pages: usize,
        user: &str,
    ) -> Result<ImageId, StoreError> {
        let mut records = Vec::with_capacity(files.len());
        for (i, file) in files.iter().enumerate() {
            let stored = format!("{:03}-{}", i + 1, sanitize_file_name(file.name()));
            let path = tmp.join(&stored);
            crate::paper::write_synced(&path, file.bytes()).map_err(io_err(&path))?;
            records.push(FileRecord {
                name: file.name().to_string(),
                stored,
                size: file.bytes().len() as u64,
            });
        }
        let stored_at = SystemTime::now();
        let mut attributes = AttributesFile {
            format: FORMAT,
            id: String::new(),
            pages: pages as u64,
            size: records.iter().map(|r| r.size).sum(),
            stored_at: humantime::format_rfc3339_nanos(stored_at).to_string(),
            stored_by: user.to_string(),
            files: records,
        };
        let attributes_path = tmp.join(ATTRIBUTES_FILE);
        for _ in 0..ID_ATTEMPTS {
            let id = ImageId::random();
            let target = self.dir.join(id.to_string());
            if std::fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            attributes.id = id.to_string();
            let text =
                toml::to_string(&attributes).map_err(|e| StoreError::Encode(e.to_string()))?;
            write_over(&attributes_path, text.as_bytes()).map_err(io_err(&attributes_path))?;
            crate::paper::sync_dir(tmp).map_err(io_err(tmp))?;
            match std::fs::rename(tmp, &target) {
                Ok(()) => {
                    crate::paper::sync_dir(&self.dir).map_err(io_err(&self.dir))?;
                    return Ok(id);
                }
                // Another keeper took this ID between our check and the rename.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists
                    ) => {}
                Err(e) => {
                    return Err(StoreError::Io {
                        path: target,
                        source: e,
                    });
                }
            }
        }
        Err(StoreError::Full)
    }

    /// The image with this ID: its attributes and files.
    pub fn get(&self, id: ImageId) -> Result<StoredImage, StoreError> {
        let dir = self.dir.join(id.to_string());
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(StoreError::NotFound(id)),
            Err(e) => return Err(missing_or_io(id, dir, e)),
        }
        load(&dir, id).map_err(|reason| StoreError::Damaged {
            entry: id.to_string(),
            reason,
        })
    }

    /// The attribute table: every readable image sorted by stored-at time, and the damaged
    /// entries listed apart.
    pub fn list(&self) -> Result<Listing, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        let mut listing = Listing::default();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = name.parse::<ImageId>() else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match load(&entry.path(), id) {
                Ok(image) => listing.images.push(image.attributes),
                Err(reason) => listing.damaged.push(DamagedEntry {
                    entry: name,
                    reason,
                }),
            }
        }
        listing
            .images
            .sort_by(|a, b| a.stored_at.cmp(&b.stored_at).then(a.id.cmp(&b.id)));
        listing.damaged.sort_by(|a, b| a.entry.cmp(&b.entry));
        Ok(listing)
    }

    /// Deletes the image with this ID (files and attributes).
    pub fn delete(&self, id: ImageId) -> Result<(), StoreError> {
        let dir = self.dir.join(id.to_string());
        if !dir.is_dir() {
            return Err(StoreError::NotFound(id));
        }
        let trash = self
            .dir
            .join(format!(".trash-{}", uuid::Uuid::new_v4().simple()));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) => return Err(missing_or_io(id, dir, e)),
        }
        crate::paper::sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        std::fs::remove_dir_all(&trash).map_err(io_err(&trash))
    }
}

/// The error for image `id`, whose folder `dir` could not be used: not found, or the system's
/// reason.
fn missing_or_io(id: ImageId, dir: PathBuf, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound(id)
    } else {
        StoreError::Io {
            path: dir,
            source: e,
        }
    }
}

/// Writes (replacing) an owner-only file and flushes it to the disk.
fn write_over(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = imagecast_shared::private::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads and checks one image folder; on failure says what is wrong.
fn load(dir: &Path, id: ImageId) -> Result<StoredImage, String> {
    let path = dir.join(ATTRIBUTES_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{ATTRIBUTES_FILE}: {e}"))?;
    let file: AttributesFile =
        toml::from_str(&text).map_err(|e| format!("{ATTRIBUTES_FILE}: {}", e.message()))?;
    if file.format != FORMAT {
        return Err(format!(
            "{ATTRIBUTES_FILE} has format {}, this program reads format {FORMAT}",
            file.format
        ));
    }
    if file.id != id.to_string() {
        return Err(format!(
            "{ATTRIBUTES_FILE} names image {:?}, not {id}",
            file.id
        ));
    }
    let stored_at = humantime::parse_rfc3339(&file.stored_at)
        .map_err(|e| format!("stored_at {:?}: {e}", file.stored_at))?;
    if file.files.is_empty() {
        return Err("the image has no files".to_string());
    }
    let mut files = Vec::with_capacity(file.files.len());
    for record in &file.files {
        let plain =
            sanitize_file_name(&record.stored) == record.stored && record.stored != ATTRIBUTES_FILE;
        if !plain {
            return Err(format!("bad stored file name {:?}", record.stored));
        }
        let path = dir.join(&record.stored);
        let meta =
            std::fs::metadata(&path).map_err(|e| format!("file {:?}: {e}", record.stored))?;
        if meta.len() != record.size {
            return Err(format!(
                "file {:?} has {} bytes, {} were stored",
                record.stored,
                meta.len(),
                record.size
            ));
        }
        files.push(StoredFile {
            name: record.name.clone(),
            path,
            size: record.size,
        });
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total != file.size {
        return Err(format!(
            "the files have {total} bytes, the attributes say {}",
            file.size
        ));
    }
    Ok(StoredImage {
        attributes: Attributes {
            id,
            pages: usize::try_from(file.pages).map_err(|_| "page count".to_string())?,
            size: file.size,
            stored_at,
            stored_by: file.stored_by,
            name: document_name(&files),
        },
        files,
    })
}

/// "quote.png", or "quote.png +2" for three files.
fn document_name(files: &[StoredFile]) -> String {
    match files {
        [] => String::new(),
        [one] => one.name.clone(),
        [first, rest @ ..] => format!("{} +{}", first.name, rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ImageId {
        s.parse().expect("valid id")
    }

    #[test]
    fn ids_are_exactly_eight_digits() {
        assert_eq!(ImageId::new(42).expect("id").to_string(), "00000042");
        assert_eq!(id("00000042").get(), 42);
        assert_eq!(id("99999999").get(), 99_999_999);
        assert!(ImageId::new(100_000_000).is_none());
        for bad in [
            "",
            "1234567",
            "123456789",
            "1234567a",
            " 12345678",
            "+1234567",
            "١٢٣٤٥٦٧٨",
        ] {
            let err = bad.parse::<ImageId>().expect_err(bad);
            assert!(err.to_string().contains("exactly 8 digits"), "{err}");
        }
        for _ in 0..100 {
            let r = ImageId::random();
            assert!((1..=ImageId::MAX).contains(&r.get()));
            assert_eq!(r.to_string().len(), 8);
        }
    }

    #[test]
    fn keep_get_list_delete_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path().join("store")).expect("open");
        let files = [
            ("scan.tif", b"tiff bytes".to_vec()),
            ("../p2.png", b"png".to_vec()),
        ];
        let a = store.keep(&files, 3, "alice").expect("keep");
        let b = store
            .keep(&[("other.png", &b"x"[..])], 1, "bob")
            .expect("keep");
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 8);

        let image = store.get(a).expect("get");
        assert_eq!(image.attributes.id, a);
        assert_eq!(image.attributes.pages, 3);
        assert_eq!(image.attributes.size, 13);
        assert_eq!(image.attributes.stored_by, "alice");
        let read = image.read_files().expect("read");
        assert_eq!(read[0], ("scan.tif".to_string(), b"tiff bytes".to_vec()));
        assert_eq!(read[1], ("../p2.png".to_string(), b"png".to_vec()));
        for f in &image.files {
            assert!(
                f.path.starts_with(store.dir().join(a.to_string())),
                "{:?}",
                f.path
            );
        }

        // Restart: a new handle on the same folder sees the same table.
        drop(store);
        let store = ImageStore::open(dir.path().join("store")).expect("reopen");
        let listing = store.list().expect("list");
        assert!(listing.damaged.is_empty());
        let ids: Vec<ImageId> = listing.images.iter().map(|x| x.id).collect();
        assert_eq!(ids, [a, b], "sorted by stored-at");
        assert_eq!(listing.images[1].stored_by, "bob");

        store.delete(a).expect("delete");
        assert!(matches!(store.get(a), Err(StoreError::NotFound(x)) if x == a));
        assert!(matches!(store.delete(a), Err(StoreError::NotFound(_))));
        assert_eq!(store.list().expect("list").images.len(), 1);
        let err = store.get(id("00000001")).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "no image with ID 00000001 in the image store"
        );
        // Nothing temporary is left behind.
        let hidden = std::fs::read_dir(store.dir())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(hidden, 0);
    }

    #[cfg(unix)]
    #[test]
    fn stored_images_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let store = ImageStore::open(&root).expect("open");
        let id = store
            .keep(&[("scan.png", &b"secret"[..])], 1, "alice")
            .expect("keep");
        assert_eq!(mode(&root), 0o700);
        let image = store.get(id).expect("get");
        for f in &image.files {
            assert_eq!(mode(f.path.parent().expect("folder")), 0o700);
            assert_eq!(mode(&f.path), 0o600, "{}", f.path.display());
        }
    }

    #[test]
    fn empty_images_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open");
        let none: [(&str, &[u8]); 0] = [];
        assert!(matches!(store.keep(&none, 0, "u"), Err(StoreError::Empty)));
    }

    #[test]
    fn a_damaged_entry_does_not_hide_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open");
        let good = store.keep(&[("a.png", &b"a"[..])], 1, "u").expect("keep");
        let broken = store.keep(&[("b.png", &b"bb"[..])], 1, "u").expect("keep");
        let truncated = store.keep(&[("c.png", &b"ccc"[..])], 1, "u").expect("keep");
        let broken_dir = dir.path().join(broken.to_string());
        std::fs::write(broken_dir.join(ATTRIBUTES_FILE), "not = [valid").expect("write");
        let truncated_file = store.get(truncated).expect("get").files[0].path.clone();
        std::fs::write(&truncated_file, b"c").expect("truncate");
        // Junk that is not an entry is ignored.
        std::fs::create_dir(dir.path().join("notes")).expect("dir");

        let listing = store.list().expect("list");
        let ids: Vec<ImageId> = listing.images.iter().map(|x| x.id).collect();
        assert_eq!(ids, [good]);
        let damaged: Vec<&str> = listing.damaged.iter().map(|d| d.entry.as_str()).collect();
        let mut expected = [broken.to_string(), truncated.to_string()];
        expected.sort();
        assert_eq!(damaged, expected);
        assert!(matches!(store.get(broken), Err(StoreError::Damaged { .. })));
        let err = store.get(truncated).expect_err("damaged");
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn scanned_files_can_be_kept_directly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::open(dir.path()).expect("open");
        let scanned = ScannedFile {
            name: "s.png".to_string(),
            bytes: vec![1, 2, 3],
            pages: 1,
        };
        let id = store.keep(&[scanned], 1, "carol").expect("keep");
        assert_eq!(store.get(id).expect("get").attributes.size, 3);
    }
}
