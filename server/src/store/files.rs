//! Writing the data directory's files so that a crash leaves the old version or the new one,
//! never half a file, and so that other local users can read nothing of it: the database holds
//! token digests, password hashes and the journal, the spool the documents in transit.
//!
//! Folders the server creates are `0700`, files `0600`. A file the server rewrites keeps the
//! mode it had (an operator may have opened a group file to a colleague on purpose).

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// The mode of the folders the server creates.
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of the files the server creates.
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates the folder `dir` readable by its owner only, and its missing parents as usual; a
/// folder that exists is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(PRIVATE_DIR).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

/// Creates (or empties) a file readable and writable by its owner only.
pub fn create_private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)
}

/// Writes a file atomically: a temporary file in the same folder, fsync, rename, fsync of the
/// folder. A new file is its owner's only; a file replaced keeps its mode.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let kept = std::fs::metadata(path).ok().map(|m| m.permissions());
    let result = (|| {
        let mut f = create_private_file(&tmp)?;
        if let Some(kept) = kept {
            f.set_permissions(kept)?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a file only its owner may read or write (a key, tokens), replacing what it held;
/// a file that was open to others is closed to them.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f =
        create_private_file(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.set_permissions(Permissions::from_mode(PRIVATE_FILE))
        .and_then(|_| f.write_all(bytes))
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
